//! Batches: N inputs of a 0.5 s model against a fake that limits creates like Replicate (with
//! its `ratelimit-*` headers and 429s), for both clients: the total time against the floor the
//! limit sets (N / limit), the 429s received, duplicate creates, requests per item and the
//! peak resident memory; then the same with 2 % of the creates lost (applied by the server,
//! whose answer is reset), which the batch recovers by looking them up.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use replicate_protocol::{BatchOptions, PollPolicy};
use serde_json::{Value, json};

use crate::report::Row;
use crate::serve::{MODEL_BATCH, Server};
use crate::sys::status_kib;

/// The sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Inputs per batch.
    pub items: usize,
    /// Creates allowed per second.
    pub limit: u32,
}

impl Sizes {
    /// The issue's: 2,000 inputs at 50 creates a second.
    pub const FULL: Sizes = Sizes {
        items: 2000,
        limit: 50,
    };
    /// A smoke run's.
    pub const QUICK: Sizes = Sizes {
        items: 60,
        limit: 50,
    };
}

/// One batch's figures.
struct Run {
    secs: f64,
    failed: usize,
    created: usize,
    throttled: usize,
    requests: usize,
    adopted: usize,
    resent: usize,
    peak_rss_kib: u64,
}

fn inputs(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"prompt": format!("item {i}")}))
        .collect()
}

fn options(sizes: Sizes) -> BatchOptions {
    BatchOptions {
        max_in_flight: 64,
        max_requests: 16,
        create_rate: f64::from(sizes.limit),
        read_rate: 100.0,
        poll: PollPolicy::default(),
        lost_grace: Duration::from_secs(2),
        ..BatchOptions::default()
    }
}

/// Runs one batch with `client`, resetting the answer of one create every `lose_every` items
/// finished (0: none).
fn run_one(
    server: &mut Server,
    client: &str,
    sizes: Sizes,
    lose_every: usize,
) -> Result<Run, String> {
    server.clear_requests().map_err(|e| e.to_string())?;
    let (before, _) = server.stats().map_err(|e| e.to_string())?;
    let base_rss = status_kib("VmHWM").unwrap_or(0);
    let api_base = server.url.clone();
    let token = server.token.clone();
    let start = Instant::now();
    let mut finished = 0;
    let (mut failed, mut adopted, mut resent) = (0, 0, 0);
    let mut on_item = |server: &mut Server, item: replicate_protocol::ItemResult| {
        finished += 1;
        match item.outcome {
            Some(replicate_protocol::CreateOutcome::Adopted) => adopted += 1,
            Some(replicate_protocol::CreateOutcome::Resent) => resent += 1,
            _ => {}
        }
        if item.result.is_err() {
            failed += 1;
        }
        if lose_every > 0 && finished % lose_every == 0 {
            let _ = server.fault_next_create();
        }
    };
    if client == "replicate-ureq" {
        let c = replicate_ureq::Client::builder()
            .token(&token)
            .base_url(&api_base)
            .build()
            .map_err(|e| e.to_string())?;
        let items = c
            .batch(MODEL_BATCH, inputs(sizes.items))
            .options(options(sizes))
            .run()
            .map_err(|e| e.to_string())?;
        for item in items {
            on_item(server, item.map_err(|e| e.to_string())?);
        }
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let c = replicate_reqwest::Client::builder()
                .token(&token)
                .base_url(&api_base)
                .build()
                .map_err(|e| e.to_string())?;
            let mut items = c
                .batch(MODEL_BATCH, inputs(sizes.items))
                .options(options(sizes))
                .stream()
                .await
                .map_err(|e| e.to_string())?;
            while let Some(item) = items.next().await {
                on_item(server, item.map_err(|e| e.to_string())?);
            }
            Ok::<_, String>(())
        })?;
    }
    let secs = start.elapsed().as_secs_f64();
    let (after, throttled) = server.stats().map_err(|e| e.to_string())?;
    let (requests, _) = server.request_counts().map_err(|e| e.to_string())?;
    Ok(Run {
        secs,
        failed,
        created: after - before,
        throttled,
        requests,
        adopted,
        resent,
        peak_rss_kib: status_kib("VmHWM").unwrap_or(0).saturating_sub(base_rss),
    })
}

/// The report's rows.
pub fn measure(sizes: Sizes) -> Result<Vec<Row>, String> {
    let mut server = Server::spawn_with(Duration::from_secs(1), None, Some(sizes.limit))
        .map_err(|e| format!("starting the rate-limited fake: {e}"))?;
    let floor = sizes.items as f64 / f64::from(sizes.limit);
    let mut rows = Vec::new();
    for client in ["replicate-ureq", "replicate-reqwest"] {
        for (label, lose_every) in [("clean", 0), ("lost-2pct", 50)] {
            let r = run_one(&mut server, client, sizes, lose_every)?;
            let duplicates = r.created.saturating_sub(sizes.items);
            let id = format!("batch.{label}.{client}");
            let ratio = r.secs / floor;
            let per_item = r.requests as f64 / sizes.items as f64;
            rows.push(
                Row::target(
                    format!("{id}.time"),
                    ratio,
                    "x floor",
                    "<= 1.10",
                    ratio <= 1.10,
                )
                .detail(format!(
                    "{} items at {} creates/s: {:.1} s against a floor of {floor:.0} s; {} x 429; \
                     {} adopted, {} resent; peak RSS +{:.1} MiB",
                    sizes.items,
                    sizes.limit,
                    r.secs,
                    r.throttled,
                    r.adopted,
                    r.resent,
                    r.peak_rss_kib as f64 / 1024.0
                )),
            );
            rows.push(Row::target(
                format!("{id}.duplicates"),
                duplicates as f64,
                "creates",
                "0",
                duplicates == 0,
            ));
            rows.push(Row::target(
                format!("{id}.failed"),
                r.failed as f64,
                "items",
                "0",
                r.failed == 0,
            ));
            rows.push(Row::target(
                format!("{id}.requests"),
                per_item,
                "req/item",
                "<= 3",
                per_item <= 3.0,
            ));
        }
    }
    Ok(rows)
}
