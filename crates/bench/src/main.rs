//! `replicate-bench`: what it costs a program to use the Replicate clients, and how soon it
//! learns that a prediction is done, measured against `replicate-fake` on loopback.
//!
//! One run reports, side by side:
//!
//! - **cost per call**: client CPU time (user + system) per get-prediction over keep-alive with
//!   `replicate-ureq` and `replicate-reqwest`, next to the same GET made with bare ureq / reqwest
//!   and parsed into a `serde_json::Value`, and the SDK overhead over it;
//! - **connections** opened for sequential calls on one client;
//! - **notice latency** (the server's `completed_at` → `run` returns) in sync mode, with a
//!   streaming prediction, and polling only (default policy vs a fixed 0.5 s interval), with the
//!   **requests per run** the server saw;
//! - **following a run**: `RunHandle::updates()` against `RunHandle::wait()` on the same jobs,
//!   requests and client CPU per run, with a stream and without;
//! - **downloads**: a large output (1 GiB) with each client against bare ureq / reqwest
//!   writing to the same sink (throughput, RSS growth, first byte), and a prediction's 8 files
//!   one at a time against four at once from a server pacing each connection;
//! - **batches**: 2,000 inputs under a limit of 50 creates a second, for both clients: time
//!   against the floor, 429s, duplicates, failures, requests per item, peak RSS, clean and with
//!   2 % of the creates' answers lost;
//! - **fan-out**: many predictions waited at once by the async client: completions per second,
//!   peak RSS and bytes per prediction in flight.
//!
//! The fake server runs in a child process (`replicate-bench serve`), so the measuring process
//! spends CPU on client code only; the fan-out runs in another child (`replicate-bench fanout`)
//! so that its peak RSS is its own. `--quick` runs every measurement with small counts (for the
//! smoke test); `--json` prints the report as JSON instead of a table.

mod batch;
mod cpu;
mod fanout;
mod handles;
mod latency;
mod report;
mod serve;
mod sys;
mod throughput;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use replicate_protocol::{CreatePrediction, Status, SyncWait, Target};
use serde_json::Value;

use crate::latency::{Latency, Mode};
use crate::report::{Report, Row, Verdict, median, percentile};
use crate::serve::{MODEL_SEED, Server};

/// Targets of issue 7.
const TARGET_CPU_US: f64 = 25.0;
const TARGET_OVERHEAD_PERCENT: f64 = 15.0;
const TARGET_SYNC_MS: f64 = 1.0;
const TARGET_STREAM_MS: f64 = 2.0;
const TARGET_BYTES_PER_PREDICTION: f64 = 8.0 * 1024.0;
/// Two polled runs on the same schedule differ by this much from noise alone.
const POLL_NOISE_MS: f64 = 5.0;

/// The API origin and token of the fake server.
#[derive(Debug, Clone)]
pub struct Api {
    /// The API origin, e.g. `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bearer token.
    pub token: String,
}

#[derive(Parser, Debug)]
#[command(
    name = "replicate-bench",
    about = "Benchmarks of the Replicate clients against replicate-fake"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// (internal) Runs the fake server and answers control commands on stdin.
    Serve {
        /// Length of the fan-out model's jobs, in ms.
        #[arg(long, default_value_t = 1000)]
        fanout_job_ms: u64,
        /// Pace each connection's file bodies to this many bytes per second.
        #[arg(long)]
        connection_rate: Option<u64>,
        /// Limit prediction creates to this many a second.
        #[arg(long)]
        create_rate_limit: Option<u32>,
    },
    /// (internal) Runs a fan-out against a server and prints one JSON line.
    Fanout {
        /// The API origin.
        #[arg(long)]
        url: String,
        /// The bearer token.
        #[arg(long)]
        token: String,
        /// Predictions at once.
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// Spread the launches over this many ms.
        #[arg(long, default_value_t = 0)]
        ramp_ms: u64,
        /// `pool_max_idle_per_host` of the reqwest client.
        #[arg(long, default_value_t = 64)]
        max_idle: usize,
        /// Use sync mode for the creates.
        #[arg(long)]
        sync: bool,
        /// Use bare reqwest instead of the SDK.
        #[arg(long)]
        bare: bool,
        /// Poll at this fixed interval, in ms.
        #[arg(long)]
        poll_ms: Option<u64>,
    },
    /// Makes get-prediction calls with one client only, against its own fake server: a target
    /// for a profiler (`perf record`, `valgrind --tool=callgrind`).
    Calls {
        /// replicate-ureq, bare-ureq, replicate-reqwest or bare-reqwest.
        #[arg(long)]
        client: String,
        /// Calls to make.
        #[arg(long, default_value_t = 2000)]
        n: usize,
    },
}

/// The parts of a run.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Cost per call.
    Cpu,
    /// Connections for sequential calls.
    Connections,
    /// Notice latency and requests per run.
    Latency,
    /// Fan-out.
    Fanout,
    /// `RunHandle::updates()` against `wait()`: requests and CPU per run.
    Follow,
    /// Downloads: throughput, memory and first byte of a large output; files one at a time
    /// against several at once.
    Download,
    /// Batches under a create rate limit: time against the floor, 429s, duplicates, requests.
    Batch,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Run only these parts (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
    /// Small counts everywhere (a smoke run: the figures are not meaningful).
    #[arg(long)]
    quick: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
    /// Get-prediction calls per round for the cost per call.
    #[arg(long)]
    calls: Option<usize>,
    /// Rounds of `--calls` calls per client (the median round is reported).
    #[arg(long)]
    rounds: Option<usize>,
    /// Sequential calls on one client for the connection count.
    #[arg(long)]
    seq_calls: Option<usize>,
    /// Runs per notice-latency figure.
    #[arg(long)]
    runs: Option<usize>,
    /// Predictions in the fan-out.
    #[arg(long)]
    fanout: Option<usize>,
    /// Length of the fan-out jobs, in ms.
    #[arg(long, default_value_t = 1000)]
    fanout_job_ms: u64,
    /// Spread the sync-mode fan-out launches over this many ms (0: all at once).
    #[arg(long, default_value_t = 0)]
    fanout_ramp_ms: u64,
    /// Spread the polling fan-out launches over this many ms (default 10000; 500 with
    /// `--quick`).
    #[arg(long)]
    fanout_poll_ramp_ms: Option<u64>,
    /// The fixed poll interval of the polling fan-out, in ms (default 12000; 1000 with
    /// `--quick`): longer than the launch ramp, so that every prediction is in flight at once,
    /// and long enough for two cores to serve the polls of all of them.
    #[arg(long)]
    fanout_poll_ms: Option<u64>,
    /// `pool_max_idle_per_host` of the fan-out's reqwest client.
    #[arg(long, default_value_t = 64)]
    fanout_max_idle: usize,
}

/// The counts of a run, after `--quick` and explicit flags.
#[derive(Debug, Clone, Copy)]
struct Counts {
    calls: usize,
    rounds: usize,
    warmup: usize,
    seq_calls: usize,
    runs: usize,
    fanout: usize,
    fanout_poll_ramp_ms: u64,
    fanout_poll_ms: u64,
}

impl RunArgs {
    fn wants(&self, section: Section) -> bool {
        self.only.is_empty() || self.only.contains(&section)
    }

    fn counts(&self) -> Counts {
        let (calls, rounds, seq_calls, runs, fanout) = if self.quick {
            (50, 1, 50, 3, 200)
        } else {
            (2000, 5, 1000, 20, 10_000)
        };
        let calls = self.calls.unwrap_or(calls).max(1);
        Counts {
            calls,
            rounds: self.rounds.unwrap_or(rounds).max(1),
            warmup: (calls / 10).clamp(1, 200),
            seq_calls: self.seq_calls.unwrap_or(seq_calls).max(1),
            runs: self.runs.unwrap_or(runs).max(1),
            fanout: self.fanout.unwrap_or(fanout).max(1),
            fanout_poll_ramp_ms: self.fanout_poll_ramp_ms.unwrap_or(if self.quick {
                500
            } else {
                10_000
            }),
            fanout_poll_ms: self
                .fanout_poll_ms
                .unwrap_or(if self.quick { 1000 } else { 12_000 })
                .max(1),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Some(Cmd::Serve {
            fanout_job_ms,
            connection_rate,
            create_rate_limit,
        }) => serve::serve(
            Duration::from_millis(fanout_job_ms),
            connection_rate,
            create_rate_limit,
        )
        .map_err(|e| e.to_string()),
        Some(Cmd::Fanout {
            url,
            token,
            n,
            ramp_ms,
            max_idle,
            sync,
            bare,
            poll_ms,
        }) => fanout::run(&fanout::Settings {
            base: url,
            token,
            n,
            sync,
            ramp: Duration::from_millis(ramp_ms),
            max_idle,
            bare,
            poll: poll_ms.map(Duration::from_millis),
        })
        .map(|v| println!("{v}")),
        Some(Cmd::Calls { client, n }) => calls(&client, n),
        None => bench(&cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("replicate-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn progress(what: &str) {
    eprintln!("replicate-bench: {what}");
}

/// Runs every measurement and prints the report.
fn bench(args: &RunArgs) -> Result<(), String> {
    let counts = args.counts();
    let machine = sys::Machine::read();
    let settings = vec![
        ("quick", args.quick.to_string()),
        (
            "only",
            if args.only.is_empty() {
                "all".to_owned()
            } else {
                format!("{:?}", args.only).to_lowercase()
            },
        ),
        ("calls", counts.calls.to_string()),
        ("rounds", counts.rounds.to_string()),
        ("seq_calls", counts.seq_calls.to_string()),
        ("runs", counts.runs.to_string()),
        ("fanout", counts.fanout.to_string()),
        ("fanout_job_ms", args.fanout_job_ms.to_string()),
        ("fanout_ramp_ms", args.fanout_ramp_ms.to_string()),
        ("fanout_max_idle", args.fanout_max_idle.to_string()),
        (
            "fanout_poll_ramp_ms",
            counts.fanout_poll_ramp_ms.to_string(),
        ),
        ("fanout_poll_ms", counts.fanout_poll_ms.to_string()),
        (
            "profile",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_owned(),
        ),
    ];
    let mut report = Report {
        settings,
        ..Report::default()
    };
    let fanout_job = Duration::from_millis(args.fanout_job_ms);
    let mut server = Server::spawn(fanout_job).map_err(|e| format!("starting the fake: {e}"))?;
    let api = Api {
        base: server.url.clone(),
        token: server.token.clone(),
    };

    progress("creating the prediction to get");
    let id = seed_prediction(&api)?;
    let target = cpu::Target {
        base: api.base.clone(),
        token: api.token.clone(),
        id,
    };

    if args.wants(Section::Cpu) {
        progress(&format!(
            "cost per call: {} rounds of {} gets per client",
            counts.rounds, counts.calls
        ));
        let mut callers = cpu::callers(&target)?;
        let costs = cpu::measure(&mut callers, counts.calls, counts.rounds, counts.warmup)?;
        drop(callers);
        cost_rows(&mut report, &costs);
    }

    if args.wants(Section::Connections) {
        progress(&format!(
            "connections: {} sequential gets per client",
            counts.seq_calls
        ));
        for mut caller in cpu::callers(&target)? {
            let before = server.api_connections().map_err(|e| e.to_string())?;
            caller.calls(counts.seq_calls)?;
            let opened = server
                .api_connections()
                .map_err(|e| e.to_string())?
                .saturating_sub(before);
            let id = format!("connections.{}", caller.name());
            let detail = format!("{} sequential gets on one client", counts.seq_calls);
            let row = if caller.name().starts_with("bare") {
                Row::info(id, opened as f64, "conns")
            } else {
                Row::target(id, opened as f64, "conns", "1", opened == 1)
            };
            report.push(row.detail(detail));
        }
    }
    if args.wants(Section::Latency) {
        progress(&format!("notice latency: {} runs per figure", counts.runs));
        let latencies = latency::measure(&mut server, &api, counts.runs)?;
        latency_rows(&mut report, &latencies);
        let late = latency::timer_lateness(counts.runs.max(20))?;
        report.push(
            Row::info("floor.timer-lateness", median(&late), "ms").detail(format!(
                "tokio sleep_until fires this late (p90 {:.2} ms): the fake answers sync waits and \
                 sends `done` on such timers",
                percentile(&late, 0.9)
            )),
        );
    }
    if args.wants(Section::Follow) {
        progress(&format!(
            "updates() vs wait(): {} runs per figure",
            counts.runs
        ));
        for row in handles::rows(&handles::measure(&mut server, &api, counts.runs)?) {
            report.push(row);
        }
    }
    if args.wants(Section::Download) {
        let sizes = if args.quick {
            throughput::Sizes::QUICK
        } else {
            throughput::Sizes::FULL
        };
        progress(&format!(
            "downloads: {} MiB x {} per client; {} files of {} MiB paced",
            sizes.big >> 20,
            sizes.rounds,
            sizes.files,
            sizes.file_bytes >> 20
        ));
        for row in throughput::large_output(&api, sizes)? {
            report.push(row);
        }
        for row in throughput::paced_files(sizes)? {
            report.push(row);
        }
    }
    if args.wants(Section::Batch) {
        let sizes = if args.quick {
            batch::Sizes::QUICK
        } else {
            batch::Sizes::FULL
        };
        progress(&format!(
            "batches: {} inputs at {} creates/s, clean and with 2 % of creates lost",
            sizes.items, sizes.limit
        ));
        for row in batch::measure(sizes)? {
            report.push(row);
        }
    }
    if args.wants(Section::Fanout) {
        // Sync mode is what `run` does by default; the fake speaks HTTP/1.1 only, so each
        // held create is a connection of its own. Polling only needs few connections per
        // prediction but 2 requests per second each. Bare reqwest is the baseline.
        for (mode, sync, bare) in [
            ("sync", true, false),
            ("sync", true, true),
            ("poll", false, false),
            ("poll", false, true),
        ] {
            let client = if bare {
                "bare-reqwest"
            } else {
                "replicate-reqwest"
            };
            progress(&format!(
                "fan-out: {} predictions of {} ms, {mode}, {client}",
                counts.fanout, args.fanout_job_ms
            ));
            let before = server.api_connections().map_err(|e| e.to_string())?;
            let fan = fanout::spawn(&fanout::Settings {
                base: api.base.clone(),
                token: api.token.clone(),
                n: counts.fanout,
                sync,
                ramp: Duration::from_millis(if sync {
                    args.fanout_ramp_ms
                } else {
                    counts.fanout_poll_ramp_ms
                }),
                max_idle: args.fanout_max_idle,
                bare,
                poll: (!sync).then_some(Duration::from_millis(counts.fanout_poll_ms)),
            })?;
            let opened = server
                .api_connections()
                .map_err(|e| e.to_string())?
                .saturating_sub(before);
            fanout_rows(
                &mut report,
                &format!("fanout.{mode}.{client}"),
                &fan,
                opened,
                !bare,
            );
        }
    }
    drop(server);

    if let Some(path) = &args.json_out {
        let doc = report.json(&machine);
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if args.json {
        let doc = report.json(&machine);
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report.table(&machine));
    }
    Ok(())
}

/// `replicate-bench calls`: one client's calls, and their cost on stderr.
fn calls(client: &str, n: usize) -> Result<(), String> {
    let server = Server::spawn(Duration::from_secs(1)).map_err(|e| e.to_string())?;
    let api = Api {
        base: server.url.clone(),
        token: server.token.clone(),
    };
    let target = cpu::Target {
        id: seed_prediction(&api)?,
        base: api.base,
        token: api.token,
    };
    let mut caller = cpu::callers(&target)?
        .into_iter()
        .find(|c| c.name() == client)
        .ok_or_else(|| format!("unknown client {client:?}"))?;
    caller.calls(n.div_ceil(10))?;
    let cpu0 = sys::cpu_time();
    let wall0 = std::time::Instant::now();
    caller.calls(n)?;
    eprintln!(
        "{client}: {n} calls, {:.1} us CPU and {:.1} us wall per call",
        sys::cpu_time().saturating_sub(cpu0).as_secs_f64() * 1e6 / n.max(1) as f64,
        wall0.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64
    );
    Ok(())
}

/// Creates (and waits for) a flux-schnell prediction with the seed's input, so that the GET
/// answers are shaped like the seed's `get_response.json`.
fn seed_prediction(api: &Api) -> Result<String, String> {
    const SEED_REQUEST: &str = include_str!("../../../fixtures/seed/create_by_model_request.json");
    let input = serde_json::from_str::<Value>(SEED_REQUEST)
        .map_err(|e| e.to_string())?
        .get("input")
        .cloned()
        .ok_or("the seed request has no input")?;
    let client = replicate_ureq::Client::builder()
        .token(&api.token)
        .base_url(&api.base)
        .build()
        .map_err(|e| e.to_string())?;
    let create = CreatePrediction::new(Target::parse(MODEL_SEED).map_err(|e| e.to_string())?)
        .input(input)
        .sync(SyncWait::Max);
    let p = client
        .run_with(create, client.wait_options())
        .map_err(|e| format!("creating the seed prediction: {e}"))?;
    if p.status != Status::Succeeded {
        return Err(format!("the seed prediction ended {}", p.status));
    }
    Ok(p.id)
}

fn spread(v: &[f64]) -> String {
    format!("{:.1}..{:.1}", percentile(v, 0.0), percentile(v, 1.0))
}

fn cost_rows(report: &mut Report, costs: &[cpu::Cost]) {
    let cpu_of = |name: &str| {
        costs
            .iter()
            .find(|c| c.name == name)
            .map_or(f64::NAN, |c| median(&c.cpu_us))
    };
    for c in costs {
        let cpu = median(&c.cpu_us);
        let detail = format!(
            "wall {:.1} us/call, sys {:.0}% of CPU, rounds {} us",
            median(&c.wall_us),
            c.sys_percent,
            spread(&c.cpu_us)
        );
        let id = format!("cpu.get.{}", c.name);
        if let Some(lib) = c.name.strip_prefix("replicate-") {
            report.push(
                Row::target(id, cpu, "us/call", "<= 25", cpu <= TARGET_CPU_US).detail(detail),
            );
            let bare = cpu_of(&format!("bare-{lib}"));
            let overhead = 100.0 * (cpu - bare) / bare;
            report.push(
                Row::target(
                    format!("overhead.get.{}", c.name),
                    overhead,
                    "%",
                    "<= 15",
                    overhead <= TARGET_OVERHEAD_PERCENT,
                )
                .detail(format!("vs bare-{lib} {bare:.1} us/call")),
            );
        } else {
            report.push(Row::info(id, cpu, "us/call").detail(detail));
        }
    }
}

fn latency_rows(report: &mut Report, all: &[Latency]) {
    let find = |client: &str, mode: Mode| all.iter().find(|l| l.client == client && l.mode == mode);
    for l in all {
        let med = median(&l.ms);
        let detail = format!(
            "p90 {:.2} ms, max {:.2} ms, {} runs{}",
            percentile(&l.ms, 0.9),
            percentile(&l.ms, 1.0),
            l.ms.len(),
            if l.failures > 0 {
                format!(", {} FAILED", l.failures)
            } else {
                String::new()
            }
        );
        let id = format!("notice.{}.{}", l.mode.name(), l.client);
        let row = if l.client.starts_with("bare") {
            Row::info(id, med, "ms").detail(format!("{detail}; floor set by the fake + loopback"))
        } else {
            match l.mode {
                Mode::Sync => Row::target(id, med, "ms", "<= 1", med <= TARGET_SYNC_MS),
                Mode::Stream => {
                    let row = Row::target(id, med, "ms", "<= 2", med <= TARGET_STREAM_MS);
                    if l.files_requests_per_run > 0.0 {
                        row
                    } else {
                        row.verdict(Verdict::Pending)
                    }
                }
                Mode::PollDefault => {
                    let fixed = find(l.client, Mode::PollFixed).map_or(f64::NAN, |f| median(&f.ms));
                    Row::target(
                        id,
                        med,
                        "ms",
                        format!("<= fixed 0.5 s ({fixed:.0})"),
                        med <= fixed + POLL_NOISE_MS,
                    )
                }
                Mode::PollFixed => Row::info(id, med, "ms"),
            }
            .detail(match l.mode {
                Mode::Stream if l.files_requests_per_run > 0.0 => {
                    format!("{detail}; finishes on the stream's done event")
                }
                Mode::Stream => {
                    format!("{detail}; run() does not follow the stream: polling-only figure")
                }
                _ => detail,
            })
        };
        report.push(row);
    }
    for l in all {
        let id = format!("requests.{}.{}", l.mode.name(), l.client);
        let v = l.api_requests_per_run;
        let detail = if l.files_requests_per_run > 0.0 {
            format!("+ {:.2} stream requests per run", l.files_requests_per_run)
        } else {
            String::new()
        };
        let row = match l.mode {
            Mode::Sync if !l.client.starts_with("bare") => {
                Row::target(id, v, "req/run", "1", (v - 1.0).abs() < 1e-9)
            }
            Mode::PollDefault => {
                let fixed =
                    find(l.client, Mode::PollFixed).map_or(f64::NAN, |f| f.api_requests_per_run);
                Row::target(
                    id,
                    v,
                    "req/run",
                    format!("<= fixed 0.5 s ({fixed:.1})"),
                    v <= fixed + 1e-9,
                )
            }
            _ => Row::info(id, v, "req/run"),
        };
        report.push(row.detail(detail));
    }
}

fn fanout_rows(report: &mut Report, prefix: &str, fan: &Value, opened: usize, target: bool) {
    let num = |k: &str| fan.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let failures = num("failures");
    let mode = if fan.get("sync").and_then(Value::as_bool) == Some(true) {
        "sync mode"
    } else {
        "polling only"
    };
    let mode = match fan.get("poll_ms").and_then(Value::as_u64) {
        Some(ms) => format!("{mode} every {ms} ms"),
        None => mode.to_owned(),
    };
    let mut detail = format!(
        "{} predictions launched over {} ms, {mode}, wall {:.2} s, run median {:.2} s / max {:.2} s, {} worker threads",
        num("n"),
        num("ramp_ms"),
        num("wall_s"),
        num("run_median_s"),
        num("run_max_s"),
        num("worker_threads"),
    );
    if failures > 0.0 {
        detail.push_str(&format!(
            ", {failures} FAILED (first: {})",
            fan.get("first_error")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ));
    }
    report.push(
        Row::info(
            format!("{prefix}.completions"),
            num("completions_per_s"),
            "/s",
        )
        .detail(detail),
    );
    report.push(
        Row::info(
            format!("{prefix}.peak-rss"),
            num("peak_rss_kib") / 1024.0,
            "MiB",
        )
        .detail(format!(
            "baseline {:.1} MiB before launching",
            num("baseline_rss_kib") / 1024.0
        )),
    );
    let per = num("bytes_per_prediction");
    let id = format!("{prefix}.bytes-per-prediction");
    let row = if target {
        Row::target(
            id,
            per,
            "B",
            "<= 8192",
            per <= TARGET_BYTES_PER_PREDICTION && failures == 0.0,
        )
    } else {
        Row::info(id, per, "B")
    };
    report.push(row.detail(format!(
        "(peak RSS - baseline) / peak in flight ({})",
        num("peak_in_flight")
    )));
    report.push(
        Row::info(format!("{prefix}.future-bytes"), num("future_bytes"), "B")
            .detail("size of one prediction's future (the task), before any request"),
    );
    report.push(
        Row::info(format!("{prefix}.connections"), opened as f64, "conns").detail(format!(
            "opened on the fake during the fan-out; pool_max_idle_per_host {}, RLIMIT_NOFILE {}",
            num("max_idle"),
            num("nofile")
        )),
    );
}
