//! Fan-out: many predictions waited at once by one async client on a multi-thread runtime.
//!
//! It runs in a process of its own (`replicate-bench fanout ...`), so that its peak RSS is the
//! fan-out's alone, and prints one JSON line with its figures. The same fan-out made with bare
//! reqwest (create, then poll unless in sync mode, each answer parsed into a `Value`) is the
//! baseline that tells the SDK's share of the memory from the HTTP stack's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use replicate_protocol::{CreatePrediction, PollPolicy, SyncWait, Target};
use serde_json::{Value, json};

use crate::report::{median, percentile};
use crate::serve::MODEL_FANOUT;
use crate::sys;

/// The settings of a fan-out.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The API origin.
    pub base: String,
    /// The bearer token.
    pub token: String,
    /// Predictions to run at once.
    pub n: usize,
    /// Use sync mode (`Prefer: wait`) for the creates.
    pub sync: bool,
    /// Spread the launches over this long (0: all at once).
    pub ramp: Duration,
    /// `pool_max_idle_per_host` of the reqwest client.
    pub max_idle: usize,
    /// Use bare reqwest instead of the SDK.
    pub bare: bool,
    /// Poll at this fixed interval (default: the SDK's default policy; 0.5 s for bare reqwest).
    pub poll: Option<Duration>,
}

/// The seed's flux-schnell input: what each fan-out prediction sends (and holds while in flight).
const SEED_REQUEST: &str = include_str!("../../../fixtures/seed/create_by_model_request.json");

type Job = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Makes the future of one prediction, end to end.
trait Launcher: Send + Sync {
    fn launch(&self) -> Job;
    /// The size of one prediction's future before it is boxed.
    fn future_bytes(&self) -> usize;
}

struct Sdk {
    client: replicate_reqwest::Client,
    create: CreatePrediction,
}

impl Sdk {
    fn run(&self) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let client = self.client.clone();
        let create = self.create.clone();
        async move {
            client
                .run_with(create, client.wait_options())
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

impl Launcher for Sdk {
    fn launch(&self) -> Job {
        Box::pin(self.run())
    }
    fn future_bytes(&self) -> usize {
        std::mem::size_of_val(&self.run())
    }
}

struct Bare {
    http: reqwest::Client,
    base: String,
    auth: String,
    body: Arc<Vec<u8>>,
    sync: bool,
    poll: Duration,
}

impl Bare {
    fn run(&self) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let (http, base, auth, body, sync, poll) = (
            self.http.clone(),
            self.base.clone(),
            self.auth.clone(),
            self.body.clone(),
            self.sync,
            self.poll,
        );
        async move {
            let e = |e: reqwest::Error| e.to_string();
            let mut req = http
                .post(format!("{base}/v1/models/{MODEL_FANOUT}/predictions"))
                .header(AUTHORIZATION, &auth)
                .header(ACCEPT, "application/json")
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
            if sync {
                req = req.header("prefer", "wait");
            }
            let bytes = req.send().await.map_err(e)?.bytes().await.map_err(e)?;
            let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            let url = format!("{base}/v1/predictions/{id}");
            while !matches!(
                v["status"].as_str(),
                Some("succeeded" | "failed" | "canceled" | "aborted")
            ) {
                tokio::time::sleep(poll).await;
                let resp = http
                    .get(&url)
                    .header(AUTHORIZATION, &auth)
                    .header(ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(e)?;
                v = serde_json::from_slice(&resp.bytes().await.map_err(e)?)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}

impl Launcher for Bare {
    fn launch(&self) -> Job {
        Box::pin(self.run())
    }
    fn future_bytes(&self) -> usize {
        std::mem::size_of_val(&self.run())
    }
}

/// Runs the fan-out and returns its figures as JSON.
pub fn run(s: &Settings) -> Result<Value, String> {
    let nofile = sys::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let input = serde_json::from_str::<Value>(SEED_REQUEST)
        .map_err(|e| e.to_string())?
        .get("input")
        .cloned()
        .ok_or("the seed request has no input")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    rt.block_on(async move {
        let http = replicate_reqwest::http_client_builder()
            .map_err(|e| e.to_string())?
            .pool_max_idle_per_host(s.max_idle)
            .build()
            .map_err(|e| e.to_string())?;
        let launcher: Arc<dyn Launcher> = if s.bare {
            Arc::new(Bare {
                http,
                base: s.base.clone(),
                auth: format!("Bearer {}", s.token),
                body: Arc::new(json!({ "input": input }).to_string().into_bytes()),
                sync: s.sync,
                poll: s.poll.unwrap_or(Duration::from_millis(500)),
            })
        } else {
            let mut builder = replicate_reqwest::Client::builder()
                .token(&s.token)
                .base_url(&s.base)
                .client(http);
            if let Some(interval) = s.poll {
                builder = builder.poll_policy(PollPolicy::fixed(interval));
            }
            let client = builder.build().map_err(|e| e.to_string())?;
            let target = Target::parse(MODEL_FANOUT).map_err(|e| e.to_string())?;
            let mut create = CreatePrediction::new(target).input(input);
            create.sync = s.sync.then_some(SyncWait::Max);
            Arc::new(Sdk { client, create })
        };
        // Warm-up: runtime threads, the connection pool, lazily initialised state.
        launcher.launch().await?;
        let baseline_kib = sys::status_kib("VmRSS").unwrap_or(0);

        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::with_capacity(s.n);
        for i in 0..s.n {
            if !s.ramp.is_zero() {
                let at = start + s.ramp.mul_f64(i as f64 / s.n as f64);
                tokio::time::sleep_until(at).await;
            }
            let job = launcher.launch();
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let launched = Instant::now();
                let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                peak.fetch_max(now, Ordering::Relaxed);
                let result = job.await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                (result, launched.elapsed())
            }));
        }
        let mut failures = 0usize;
        let mut first_error = None;
        let mut durations = Vec::with_capacity(s.n);
        for t in tasks {
            match t.await {
                Ok((Ok(()), d)) => durations.push(d.as_secs_f64()),
                Ok((Err(e), _)) => {
                    failures += 1;
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    failures += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        let wall = start.elapsed().as_secs_f64();
        let peak_kib = sys::status_kib("VmHWM").unwrap_or(0);
        let peak_in_flight = peak.load(Ordering::Relaxed);
        let growth = peak_kib.saturating_sub(baseline_kib) as f64 * 1024.0;
        Ok(json!({
            "client": if s.bare { "bare-reqwest" } else { "replicate-reqwest" },
            "n": s.n,
            "sync": s.sync,
            "ramp_ms": s.ramp.as_millis() as u64,
            "max_idle": s.max_idle,
            "poll_ms": s.poll.map(|p| p.as_millis() as u64),
            "worker_threads": threads,
            "nofile": nofile,
            "failures": failures,
            "first_error": first_error,
            "wall_s": wall,
            "completions_per_s": durations.len() as f64 / wall,
            "run_median_s": median(&durations),
            "run_max_s": percentile(&durations, 1.0),
            "baseline_rss_kib": baseline_kib,
            "peak_rss_kib": peak_kib,
            "peak_in_flight": peak_in_flight,
            "future_bytes": launcher.future_bytes(),
            "bytes_per_prediction": growth / peak_in_flight.max(1) as f64,
        }))
    })
}

/// Runs `replicate-bench fanout` as a child process and reads its JSON line.
pub fn spawn(s: &Settings) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("fanout")
        .args(["--url", &s.base, "--token", &s.token])
        .args(["--n", &s.n.to_string()])
        .args(["--ramp-ms", &s.ramp.as_millis().to_string()])
        .args(["--max-idle", &s.max_idle.to_string()]);
    if s.sync {
        cmd.arg("--sync");
    }
    if s.bare {
        cmd.arg("--bare");
    }
    if let Some(poll) = s.poll {
        cmd.args(["--poll-ms", &poll.as_millis().to_string()]);
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    if !out.status.success() {
        return Err(format!(
            "the fan-out process failed ({}): {line}",
            out.status
        ));
    }
    serde_json::from_str(line).map_err(|e| format!("bad fan-out output {line:?}: {e}"))
}
