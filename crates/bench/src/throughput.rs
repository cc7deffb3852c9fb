//! Downloads: the throughput of one large output with each client against bare ureq / reqwest
//! writing to the same kind of sink, the resident memory the download adds, and the time to the
//! first byte written; then a prediction's files one at a time against several at once when
//! the server paces each connection (as a CDN does per stream).

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use replicate_protocol::Prediction;
use serde_json::json;

use crate::Api;
use crate::report::{Row, median};
use crate::serve::Server;
use crate::sys::status_kib;

/// The sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The large output, in bytes.
    pub big: u64,
    /// Downloads of it per client.
    pub rounds: usize,
    /// The paced prediction's files.
    pub files: usize,
    /// Each of its files, in bytes.
    pub file_bytes: u64,
    /// The pace of each connection, in bytes per second.
    pub rate: u64,
}

impl Sizes {
    /// The sizes: 1 GiB; 8 files of 64 MiB at 32 MiB/s per connection.
    pub const FULL: Sizes = Sizes {
        big: 1 << 30,
        rounds: 3,
        files: 8,
        file_bytes: 64 << 20,
        rate: 32 << 20,
    };
    /// A smoke run's.
    pub const QUICK: Sizes = Sizes {
        big: 32 << 20,
        rounds: 1,
        files: 8,
        file_bytes: 1 << 20,
        rate: 4 << 20,
    };
}

/// A sink that counts the bytes written and notes when the first came.
struct Sink {
    bytes: u64,
    first: Option<Instant>,
}

impl Sink {
    fn new() -> Self {
        Sink {
            bytes: 0,
            first: None,
        }
    }

    fn take(&mut self, n: usize) {
        if self.first.is_none() && n > 0 {
            self.first = Some(Instant::now());
        }
        self.bytes += n as u64;
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.take(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncWrite for Sink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.take(buf.len());
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The highest `VmRSS` of this process while it runs, sampled every 2 ms by a thread.
struct RssPeak {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssPeak {
    fn start() -> RssPeak {
        let peak = Arc::new(AtomicU64::new(status_kib("VmRSS").unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib("VmRSS") {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        RssPeak {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// The peak, in KiB.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// One download's figures.
#[derive(Debug, Clone, Copy)]
struct Sample {
    mb_per_s: f64,
    first_byte_ms: f64,
    rss_growth_kib: f64,
}

/// The clients compared, in the order they run in each round.
const KINDS: [&str; 4] = [
    "bare-ureq",
    "replicate-ureq",
    "bare-reqwest",
    "replicate-reqwest",
];

struct Clients {
    agent: ureq::Agent,
    ureq: replicate_ureq::Client,
    bare_reqwest: reqwest::Client,
    reqwest: replicate_reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Clients {
    fn new(api: &Api, concurrency: usize) -> Result<Clients, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        Ok(Clients {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .new_agent(),
            ureq: replicate_ureq::Client::builder()
                .token(&api.token)
                .base_url(&api.base)
                .max_download_bytes(u64::MAX)
                .download_concurrency(concurrency)
                .build()
                .map_err(|e| err(&e))?,
            // Built like the SDK's (its TLS provider, its pool settings).
            bare_reqwest: replicate_reqwest::http_client_builder()
                .map_err(|e| err(&e))?
                .build()
                .map_err(|e| err(&e))?,
            reqwest: replicate_reqwest::Client::builder()
                .token(&api.token)
                .base_url(&api.base)
                .max_download_bytes(u64::MAX)
                .download_concurrency(concurrency)
                .build()
                .map_err(|e| err(&e))?,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| err(&e))?,
        })
    }

    /// Downloads `url` into a fresh sink with client `kind`; returns the sink.
    fn download(&self, kind: &str, url: &str) -> Result<Sink, String> {
        let mut sink = Sink::new();
        match kind {
            "bare-ureq" => {
                let mut resp = self.agent.get(url).call().map_err(|e| e.to_string())?;
                let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    sink.take(n);
                }
            }
            "replicate-ureq" => {
                self.ureq
                    .download_to(url, &mut sink)
                    .map_err(|e| e.to_string())?;
            }
            "bare-reqwest" => self.rt.block_on(async {
                let mut resp = self
                    .bare_reqwest
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                    sink.take(chunk.len());
                }
                Ok::<_, String>(())
            })?,
            _ => self.rt.block_on(async {
                self.reqwest
                    .download_to(url, &mut sink)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })?,
        }
        Ok(sink)
    }

    fn sample(&self, kind: &str, url: &str, expected: u64) -> Result<Sample, String> {
        let rss = RssPeak::start();
        let base = status_kib("VmRSS").unwrap_or(0);
        let start = Instant::now();
        let sink = self.download(kind, url)?;
        let secs = start.elapsed().as_secs_f64();
        let peak = rss.finish();
        if sink.bytes != expected {
            return Err(format!("{kind}: {} bytes of {expected}", sink.bytes));
        }
        Ok(Sample {
            mb_per_s: expected as f64 / (1 << 20) as f64 / secs,
            first_byte_ms: sink
                .first
                .map_or(f64::NAN, |f| (f - start).as_secs_f64() * 1000.0),
            rss_growth_kib: peak.saturating_sub(base) as f64,
        })
    }
}

/// A succeeded prediction of the fake's `fake/large-files`.
fn large_files(api: &Api, files: usize, bytes: u64) -> Result<Prediction, String> {
    let client = replicate_ureq::Client::builder()
        .token(&api.token)
        .base_url(&api.base)
        .build()
        .map_err(|e| e.to_string())?;
    let input = json!({"num_outputs": files, "output_bytes": bytes, "seed": 11});
    let created = client
        .create_from("fake/large-files", input)
        .map_err(|e| e.to_string())?;
    client
        .wait(&created.id, Some(Duration::from_secs(120)))
        .and_then(Prediction::into_result)
        .map_err(|e| e.to_string())
}

/// The report's rows for the large output.
pub fn large_output(api: &Api, sizes: Sizes) -> Result<Vec<Row>, String> {
    let done = large_files(api, 1, sizes.big)?;
    let url = done.output_url().ok_or("no output URL")?.to_owned();
    let clients = Clients::new(api, 1)?;
    // Warm-up: the server computes the file's digest (its ETag) on the first request; each
    // client opens its connection.
    for kind in KINDS {
        clients.sample(kind, &url, sizes.big)?;
    }
    let mut samples: Vec<(&str, Vec<Sample>)> = KINDS.iter().map(|k| (*k, Vec::new())).collect();
    for _ in 0..sizes.rounds {
        for (kind, runs) in &mut samples {
            runs.push(clients.sample(kind, &url, sizes.big)?);
        }
    }
    let med = |kind: &str, f: fn(&Sample) -> f64| {
        samples
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(f64::NAN, |(_, s)| {
                median(&s.iter().map(f).collect::<Vec<_>>())
            })
    };
    let size = format!("{} MiB", sizes.big >> 20);
    let mut rows = Vec::new();
    for kind in KINDS {
        let rate = med(kind, |s| s.mb_per_s);
        let rss = med(kind, |s| s.rss_growth_kib) / 1024.0;
        let first = med(kind, |s| s.first_byte_ms);
        let id = format!("download.{kind}");
        let detail = format!(
            "{size} to a counting sink, median of {}; first byte after {first:.2} ms",
            sizes.rounds
        );
        rows.push(match kind.strip_prefix("replicate-") {
            Some(stack) => {
                let bare = med(&format!("bare-{stack}"), |s| s.mb_per_s);
                let ratio = rate / bare;
                Row::target(
                    format!("{id}.throughput"),
                    rate,
                    "MiB/s",
                    ">= 0.9 x bare",
                    ratio >= 0.9,
                )
                .detail(format!("{detail}; x{ratio:.2} of bare {stack}"))
            }
            None => Row::info(format!("{id}.throughput"), rate, "MiB/s").detail(detail),
        });
        rows.push(if kind.starts_with("replicate-") {
            Row::target(format!("{id}.rss-growth"), rss, "MiB", "<= 8", rss <= 8.0)
        } else {
            Row::info(format!("{id}.rss-growth"), rss, "MiB")
        });
    }
    Ok(rows)
}

/// The report's rows for a prediction's files, one at a time against four at once, on a server
/// pacing each connection to `sizes.rate`.
pub fn paced_files(sizes: Sizes) -> Result<Vec<Row>, String> {
    let server = Server::spawn_paced(Duration::from_secs(1), Some(sizes.rate))
        .map_err(|e| format!("starting the paced fake: {e}"))?;
    let api = Api {
        base: server.url.clone(),
        token: server.token.clone(),
    };
    let done = large_files(&api, sizes.files, sizes.file_bytes)?;
    let dir = std::env::temp_dir().join(format!("replicate-bench-{}", std::process::id()));
    let mut rows = Vec::new();
    for client in ["replicate-ureq", "replicate-reqwest"] {
        let mut secs = Vec::new();
        for concurrency in [1, 4] {
            let clients = Clients::new(&api, concurrency)?;
            let _ = std::fs::remove_dir_all(&dir);
            let start = Instant::now();
            let paths = if client == "replicate-ureq" {
                clients.ureq.download_outputs(&done, &dir)
            } else {
                clients
                    .rt
                    .block_on(clients.reqwest.download_outputs(&done, &dir))
            }
            .map_err(|e| e.to_string())?;
            secs.push(start.elapsed().as_secs_f64());
            let _ = std::fs::remove_dir_all(&dir);
            if paths.len() != sizes.files {
                return Err(format!(
                    "{client}: {} files of {}",
                    paths.len(),
                    sizes.files
                ));
            }
        }
        let speedup = secs[0] / secs[1];
        rows.push(
            Row::target(
                format!("download.files.{client}.speedup"),
                speedup,
                "x",
                ">= 2",
                speedup >= 2.0,
            )
            .detail(format!(
                "{} files of {} MiB, each connection paced to {} MiB/s: {:.2} s one at a time, \
                 {:.2} s four at once",
                sizes.files,
                sizes.file_bytes >> 20,
                sizes.rate >> 20,
                secs[0],
                secs[1]
            )),
        );
    }
    Ok(rows)
}
