//! What following a run costs: `RunHandle::updates()` (every status, log and output change)
//! against `RunHandle::wait()` (the end only) on the same jobs, in requests and client CPU per
//! run, for both clients, on a streaming model (updates read the event stream) and on a model
//! without a stream (updates poll like a wait).

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::json;

use crate::Api;
use crate::report::Row;
use crate::serve::{MODEL_JOB, MODEL_STREAM, Server};
use crate::sys::cpu_time;

/// How a run is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// `start`, then `wait()`.
    Wait,
    /// `start`, then every item of `updates()`.
    Updates,
}

impl Follow {
    fn name(self) -> &'static str {
        match self {
            Follow::Wait => "wait",
            Follow::Updates => "updates",
        }
    }
}

/// The cost of one way of following runs, for one client and one model.
#[derive(Debug, Clone)]
pub struct Cost {
    /// The client.
    pub client: &'static str,
    /// The model's label.
    pub model: &'static str,
    /// How the runs were followed.
    pub follow: Follow,
    /// API requests per run.
    pub api_requests: f64,
    /// Stream requests per run.
    pub stream_requests: f64,
    /// Client CPU per run, in µs.
    pub cpu_us: f64,
    /// Updates received per run (0 for `wait`).
    pub updates: f64,
    /// Runs that failed.
    pub failures: usize,
}

/// Runs overlap, started this far apart (as in the latency figures).
const STAGGER: Duration = Duration::from_millis(50);

const MODELS: [(&str, &str); 2] = [("stream", MODEL_STREAM), ("poll", MODEL_JOB)];

fn ureq_follow(
    client: &replicate_ureq::Client,
    model: &str,
    follow: Follow,
) -> Result<usize, String> {
    let handle = client
        .start_from(model, json!({"prompt": "benchmark"}))
        .map_err(|e| e.to_string())?;
    match follow {
        Follow::Wait => handle.wait().map(|_| 0).map_err(|e| e.to_string()),
        Follow::Updates => handle
            .updates()
            .try_fold(0, |n, u| u.map(|_| n + 1))
            .map_err(|e| e.to_string()),
    }
}

async fn reqwest_follow(
    client: &replicate_reqwest::Client,
    model: &str,
    follow: Follow,
) -> Result<usize, String> {
    let handle = client
        .start_from(model, json!({"prompt": "benchmark"}))
        .await
        .map_err(|e| e.to_string())?;
    match follow {
        Follow::Wait => handle.wait().await.map(|_| 0).map_err(|e| e.to_string()),
        Follow::Updates => {
            let mut updates = handle.updates();
            let mut n = 0;
            while let Some(update) = updates.next().await {
                update.map_err(|e| e.to_string())?;
                n += 1;
            }
            Ok(n)
        }
    }
}

/// Runs `runs` overlapping runs (after one warm-up) and measures them.
fn measure_one(
    server: &mut Server,
    (client, model, follow): (&'static str, &'static str, Follow),
    runs: usize,
    mut run_all: impl FnMut(usize) -> Vec<Result<usize, String>>,
) -> Result<Cost, String> {
    let _ = run_all(1);
    server.clear_requests().map_err(|e| e.to_string())?;
    let cpu = cpu_time();
    let results = run_all(runs);
    let cpu = cpu_time().saturating_sub(cpu);
    let (api, files) = server.request_counts().map_err(|e| e.to_string())?;
    let failures = results.iter().filter(|r| r.is_err()).count();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        eprintln!(
            "replicate-bench: {client} {model} {} failed: {e}",
            follow.name()
        );
    }
    let n = runs.max(1) as f64;
    Ok(Cost {
        client,
        model,
        follow,
        api_requests: api as f64 / n,
        stream_requests: files as f64 / n,
        cpu_us: cpu.as_secs_f64() * 1e6 / n,
        updates: results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .sum::<usize>() as f64
            / n,
        failures,
    })
}

/// Measures `wait()` and `updates()` on both models with both clients.
pub fn measure(server: &mut Server, api: &Api, runs: usize) -> Result<Vec<Cost>, String> {
    let mut out = Vec::new();
    let ureq = replicate_ureq::Client::builder()
        .token(&api.token)
        .base_url(&api.base)
        .sync_wait(None)
        .build()
        .map_err(|e| e.to_string())?;
    let reqwest = replicate_reqwest::Client::builder()
        .token(&api.token)
        .base_url(&api.base)
        .sync_wait(None)
        .build()
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    for (label, model) in MODELS {
        for follow in [Follow::Wait, Follow::Updates] {
            out.push(measure_one(
                server,
                ("replicate-ureq", label, follow),
                runs,
                |k| {
                    std::thread::scope(|s| {
                        let handles: Vec<_> = (0..k)
                            .map(|i| {
                                let ureq = &ureq;
                                s.spawn(move || {
                                    std::thread::sleep(STAGGER * i as u32);
                                    ureq_follow(ureq, model, follow)
                                })
                            })
                            .collect();
                        handles
                            .into_iter()
                            .map(|h| h.join().unwrap_or_else(|_| Err("panicked".to_owned())))
                            .collect()
                    })
                },
            )?);
            out.push(measure_one(
                server,
                ("replicate-reqwest", label, follow),
                runs,
                |k| {
                    rt.block_on(join_all((0..k).map(|i| {
                        let reqwest = &reqwest;
                        async move {
                            tokio::time::sleep(STAGGER * i as u32).await;
                            reqwest_follow(reqwest, model, follow).await
                        }
                    })))
                },
            )?);
        }
    }
    Ok(out)
}

/// The report's rows: requests and CPU per run of each, and the ratio of `updates()` to `wait()`.
pub fn rows(costs: &[Cost]) -> Vec<Row> {
    let mut rows = Vec::new();
    for c in costs {
        let id = format!("follow.{}.{}.{}", c.model, c.follow.name(), c.client);
        let wait = costs
            .iter()
            .find(|w| w.client == c.client && w.model == c.model && w.follow == Follow::Wait);
        let ratio = wait.map_or(String::new(), |w| {
            if c.follow == Follow::Updates {
                format!("; CPU x{:.2} of wait()", c.cpu_us / w.cpu_us)
            } else {
                String::new()
            }
        });
        let failures = if c.failures > 0 {
            format!("; {} FAILED", c.failures)
        } else {
            String::new()
        };
        rows.push(
            Row::info(format!("{id}.cpu"), c.cpu_us, "us/run").detail(format!(
                "{:.2} API + {:.2} stream requests per run, {:.1} updates per run{ratio}{failures}",
                c.api_requests, c.stream_requests, c.updates
            )),
        );
    }
    rows
}
