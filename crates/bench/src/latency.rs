//! Notice latency — from the server's `completed_at` to the moment `run` returns — and requests
//! per `run`, for each client and waiting mode.

use std::time::Duration;

use futures_util::future::join_all;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use replicate_protocol::{CreatePrediction, PollPolicy, Prediction, SyncWait, Target};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Api;
use crate::serve::{MODEL_JOB, MODEL_QUICK, MODEL_STREAM, Server};

/// How `run` waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sync mode (`Prefer: wait`) on a model that finishes within the window.
    Sync,
    /// No sync mode, a 0.7 s job whose prediction has a stream URL.
    Stream,
    /// Polling only, the default [`PollPolicy`], a 0.7 s job.
    PollDefault,
    /// Polling only at a fixed 0.5 s interval (the Python client's behaviour), a 0.7 s job.
    PollFixed,
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 4] = [Mode::Sync, Mode::Stream, Mode::PollDefault, Mode::PollFixed];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Stream => "stream",
            Mode::PollDefault => "poll-default",
            Mode::PollFixed => "poll-fixed-500ms",
        }
    }

    fn model(self) -> &'static str {
        match self {
            Mode::Sync => MODEL_QUICK,
            Mode::Stream => MODEL_STREAM,
            Mode::PollDefault | Mode::PollFixed => MODEL_JOB,
        }
    }

    fn sync(self) -> Option<SyncWait> {
        (self == Mode::Sync).then_some(SyncWait::Max)
    }

    fn policy(self) -> PollPolicy {
        match self {
            Mode::PollFixed => PollPolicy::fixed(Duration::from_millis(500)),
            _ => PollPolicy::default(),
        }
    }

    /// Runs of the 0.7 s jobs overlap (they sleep most of the time), each started [`STAGGER`]
    /// after the previous one so that no two end at the same moment and none waits for
    /// another's CPU; sync runs go one at a time for the same reason.
    fn concurrent(self) -> bool {
        self != Mode::Sync
    }

    fn create(self) -> Result<CreatePrediction, String> {
        let target = Target::parse(self.model()).map_err(|e| e.to_string())?;
        let mut create = CreatePrediction::new(target).input(json!({"prompt": "benchmark"}));
        create.sync = self.sync();
        Ok(create)
    }
}

/// The delay between the starts of two overlapping runs: more than a run's own work, so that
/// the ends of the runs never coincide (on two cores, twenty predictions ending at once would
/// queue behind each other and measure the machine, not the client).
const STAGGER: Duration = Duration::from_millis(50);

/// The latencies of one client in one mode.
#[derive(Debug, Clone)]
pub struct Latency {
    /// The client.
    pub client: &'static str,
    /// The mode.
    pub mode: Mode,
    /// Notice latency of each successful run, in ms.
    pub ms: Vec<f64>,
    /// Runs that failed.
    pub failures: usize,
    /// API requests recorded by the server, per run.
    pub api_requests_per_run: f64,
    /// Requests on the files/streams origin, per run.
    pub files_requests_per_run: f64,
}

fn notice_ms(
    completed_at: Option<OffsetDateTime>,
    returned: OffsetDateTime,
) -> Result<f64, String> {
    let completed = completed_at.ok_or("the prediction has no completed_at")?;
    Ok((returned - completed).as_seconds_f64() * 1000.0)
}

fn prediction_notice(p: Result<Prediction, String>) -> Result<f64, String> {
    let returned = OffsetDateTime::now_utc();
    notice_ms(p?.completed_at, returned)
}

fn ureq_client(api: &Api, mode: Mode) -> Result<replicate_ureq::Client, String> {
    replicate_ureq::Client::builder()
        .token(&api.token)
        .base_url(&api.base)
        .poll_policy(mode.policy())
        .sync_wait(mode.sync())
        .build()
        .map_err(|e| e.to_string())
}

fn reqwest_client(api: &Api, mode: Mode) -> Result<replicate_reqwest::Client, String> {
    replicate_reqwest::Client::builder()
        .token(&api.token)
        .base_url(&api.base)
        .poll_policy(mode.policy())
        .sync_wait(mode.sync())
        .build()
        .map_err(|e| e.to_string())
}

fn ureq_run(client: &replicate_ureq::Client, mode: Mode) -> Result<f64, String> {
    let create = mode.create()?;
    prediction_notice(
        client
            .run_with(create, client.wait_options())
            .map_err(|e| e.to_string()),
    )
}

async fn reqwest_run(client: &replicate_reqwest::Client, mode: Mode) -> Result<f64, String> {
    let create = mode.create()?;
    prediction_notice(
        client
            .run_with(create, client.wait_options())
            .await
            .map_err(|e| e.to_string()),
    )
}

/// A sync-mode create made with bare ureq and parsed into a `Value`: the floor the fake server
/// and the loopback transport set for sync-mode notice latency.
fn bare_ureq_sync_run(agent: &ureq::Agent, api: &Api) -> Result<f64, String> {
    let url = format!("{}/v1/models/{MODEL_QUICK}/predictions", api.base);
    let body = json!({"input": {"prompt": "benchmark"}}).to_string();
    let mut resp = agent
        .post(&url)
        .header(AUTHORIZATION, format!("Bearer {}", api.token))
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/json")
        .header("prefer", "wait")
        .send(body.as_bytes())
        .map_err(|e| e.to_string())?;
    let bytes = resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let returned = OffsetDateTime::now_utc();
    let completed = v
        .get("completed_at")
        .and_then(Value::as_str)
        .ok_or("no completed_at in the sync answer")?;
    let completed = OffsetDateTime::parse(completed, &Rfc3339).map_err(|e| e.to_string())?;
    notice_ms(Some(completed), returned)
}

/// Runs `runs` predictions (plus one warm-up run) and collects their notice latencies and the
/// requests the server saw for them.
fn batch(
    server: &mut Server,
    client: &'static str,
    mode: Mode,
    runs: usize,
    mut run_all: impl FnMut(usize) -> Vec<Result<f64, String>>,
) -> Result<Latency, String> {
    // Warm-up: a connection, the runtime, lazily initialised state.
    let _ = run_all(1);
    server.clear_requests().map_err(|e| e.to_string())?;
    let results = run_all(runs);
    let (api, files) = server.request_counts().map_err(|e| e.to_string())?;
    let mut ms = Vec::new();
    let mut failures = 0;
    for r in results {
        match r {
            Ok(v) => ms.push(v),
            Err(e) => {
                failures += 1;
                eprintln!("replicate-bench: {client} {} run failed: {e}", mode.name());
            }
        }
    }
    let n = runs.max(1) as f64;
    Ok(Latency {
        client,
        mode,
        ms,
        failures,
        api_requests_per_run: api as f64 / n,
        files_requests_per_run: files as f64 / n,
    })
}

/// Measures every mode with both clients, then the bare sync baseline.
pub fn measure(server: &mut Server, api: &Api, runs: usize) -> Result<Vec<Latency>, String> {
    let mut out = Vec::new();
    for mode in Mode::ALL {
        let client = ureq_client(api, mode)?;
        out.push(batch(server, "replicate-ureq", mode, runs, |k| {
            if mode.concurrent() {
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..k)
                        .map(|i| {
                            let client = &client;
                            s.spawn(move || {
                                std::thread::sleep(STAGGER * i as u32);
                                ureq_run(client, mode)
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|_| Err("panicked".to_owned())))
                        .collect()
                })
            } else {
                (0..k).map(|_| ureq_run(&client, mode)).collect()
            }
        })?);

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = reqwest_client(api, mode)?;
        out.push(batch(server, "replicate-reqwest", mode, runs, |k| {
            rt.block_on(async {
                if mode.concurrent() {
                    join_all((0..k).map(|i| {
                        let client = &client;
                        async move {
                            tokio::time::sleep(STAGGER * i as u32).await;
                            reqwest_run(client, mode).await
                        }
                    }))
                    .await
                } else {
                    let mut v = Vec::with_capacity(k);
                    for _ in 0..k {
                        v.push(reqwest_run(&client, mode).await);
                    }
                    v
                }
            })
        })?);
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    out.push(batch(server, "bare-ureq", Mode::Sync, runs, |k| {
        (0..k).map(|_| bare_ureq_sync_run(&agent, api)).collect()
    })?);
    Ok(out)
}

/// How late a tokio timer fires, in ms, on a multi-thread runtime like the fake server's: the
/// fake answers a sync-mode create, and sends a stream's `done`, when a `sleep_until` to the
/// prediction's end fires, so no client can notice the end sooner than this.
pub fn timer_lateness(samples: usize) -> Result<Vec<f64>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(rt.block_on(async {
        let mut out = Vec::with_capacity(samples);
        for i in 0..samples {
            // Deadlines spread over the millisecond, as prediction ends are.
            let offset = Duration::from_micros(2000 + (i as u64 * 137) % 1000);
            let deadline = tokio::time::Instant::now() + offset;
            tokio::time::sleep_until(deadline).await;
            out.push(deadline.elapsed().as_secs_f64() * 1000.0);
        }
        out
    }))
}
