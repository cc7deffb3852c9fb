//! The fake server, in a process of its own so that the measured process runs only client code,
//! and the measuring side's handle to it.
//!
//! `replicate-bench serve` starts a [`BlockingFakeServer`], registers the benchmark models,
//! prints `url <base>` and `token <token>`, then answers one line per command read on stdin:
//!
//! - `conns`: `<api connections accepted> <files connections accepted>`;
//! - `clear`: forgets the recorded requests and the faults not used yet, answers `ok`;
//! - `stats`: `<predictions created> <requests throttled since the last clear>`;
//! - `fault-create`: the next create is applied and its connection reset, answers `ok`;
//! - `count`: `<API requests> <files requests>` recorded since the last `clear`;
//! - `quit` (or the end of stdin): stops the server and exits.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use replicate_fake::{BlockingFakeServer, ModelScript, Options, Origin, Output};

/// Finishes 50 ms after it is created: well within a sync-mode wait.
pub const MODEL_QUICK: &str = "bench/quick";
/// A 0.7 s job without a stream.
pub const MODEL_JOB: &str = "bench/job";
/// A 0.7 s job that streams text tokens (its predictions have `urls.stream`).
pub const MODEL_STREAM: &str = "bench/stream";
/// The batch job: 0.5 s.
pub const MODEL_BATCH: &str = "bench/batch";
/// The fan-out job (duration set by `serve --fanout-job-ms`).
pub const MODEL_FANOUT: &str = "bench/fanout";
/// The built-in mimic of the seed's model: GET answers shaped like the seed's.
pub const MODEL_SEED: &str = "black-forest-labs/flux-schnell";

/// Length of the polled jobs.
pub const JOB: Duration = Duration::from_millis(700);

/// Runs the server until `quit` or the end of stdin.
pub fn serve(
    fanout_job: Duration,
    connection_rate: Option<u64>,
    create_rate_limit: Option<u32>,
) -> io::Result<()> {
    crate::sys::raise_nofile();
    let server = BlockingFakeServer::start_with(Options {
        // The request log is what `count` reads.
        record_requests: true,
        request_log_capacity: 100_000,
        connection_rate,
        create_rate_limit: create_rate_limit.map(replicate_fake::RateLimit::per_second),
        ..Options::default()
    })?;
    server.set_model(
        MODEL_BATCH,
        ModelScript::succeed(Output::Url)
            .starting_time(Duration::ZERO)
            .processing_time(Duration::from_millis(500))
            .streams(false),
    );
    let quick = ModelScript::succeed(Output::Url)
        .starting_time(Duration::from_millis(10))
        .processing_time(Duration::from_millis(40))
        .streams(false);
    server.set_model(MODEL_QUICK, quick);
    server.set_model(
        MODEL_JOB,
        ModelScript::succeed(Output::Url)
            .starting_time(Duration::ZERO)
            .processing_time(JOB)
            .streams(false),
    );
    server.set_model(
        MODEL_STREAM,
        ModelScript::text(["Hello", ",", " world", "!"])
            .starting_time(Duration::ZERO)
            .processing_time(JOB)
            .streams(true),
    );
    server.set_model(
        MODEL_FANOUT,
        ModelScript::succeed(Output::Url)
            .starting_time(Duration::ZERO)
            .processing_time(fanout_job)
            .streams(false),
    );
    let mut out = io::stdout().lock();
    writeln!(out, "url {}", server.base_url())?;
    writeln!(out, "token {}", server.token())?;
    out.flush()?;
    for line in io::stdin().lock().lines() {
        let line = line?;
        match line.trim() {
            "conns" => writeln!(
                out,
                "{} {}",
                server.connections_accepted(),
                server.files_connections_accepted()
            )?,
            "clear" => {
                server.clear_requests();
                server.clear_faults();
                writeln!(out, "ok")?;
            }
            "count" => {
                let requests = server.requests();
                let api = requests.iter().filter(|r| r.origin == Origin::Api).count();
                writeln!(out, "{} {}", api, requests.len() - api)?;
            }
            "stats" => {
                let requests = server.requests();
                let throttled = requests.iter().filter(|r| r.rate_limited).count();
                writeln!(out, "{} {}", server.prediction_count(), throttled)?;
            }
            "fault-create" => {
                server.push_fault(replicate_fake::FaultRule::new(
                    replicate_fake::Matcher::new("POST", "/predictions"),
                    replicate_fake::Fault::ResetAfterRead,
                ));
                writeln!(out, "ok")?;
            }
            "quit" => break,
            other => writeln!(out, "error unknown command {other:?}")?,
        }
        out.flush()?;
    }
    drop(out);
    server.shutdown();
    Ok(())
}

/// The measuring process's handle to a `serve` child.
#[derive(Debug)]
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The API origin.
    pub url: String,
    /// The bearer token.
    pub token: String,
}

impl Server {
    /// Starts `replicate-bench serve` (this very executable) and reads its URL and token.
    pub fn spawn(fanout_job: Duration) -> io::Result<Server> {
        Self::spawn_paced(fanout_job, None)
    }

    /// [`Server::spawn`], each connection's file bodies paced to `connection_rate` bytes per
    /// second when given.
    pub fn spawn_paced(fanout_job: Duration, connection_rate: Option<u64>) -> io::Result<Server> {
        Self::spawn_with(fanout_job, connection_rate, None)
    }

    /// [`Server::spawn_paced`], creates limited to `create_rate_limit` a second when given.
    pub fn spawn_with(
        fanout_job: Duration,
        connection_rate: Option<u64>,
        create_rate_limit: Option<u32>,
    ) -> io::Result<Server> {
        let exe = std::env::current_exe()?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--fanout-job-ms")
            .arg(fanout_job.as_millis().to_string());
        if let Some(rate) = connection_rate {
            command.arg("--connection-rate").arg(rate.to_string());
        }
        if let Some(n) = create_rate_limit {
            command.arg("--create-rate-limit").arg(n.to_string());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(io::Error::other("no pipes to the server process"));
        };
        let mut server = Server {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            url: String::new(),
            token: String::new(),
        };
        server.url = server.read_field("url")?;
        server.token = server.read_field("token")?;
        Ok(server)
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other("the server process exited"));
        }
        Ok(line.trim_end().to_owned())
    }

    fn read_field(&mut self, name: &str) -> io::Result<String> {
        let line = self.read_line()?;
        line.strip_prefix(name)
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| io::Error::other(format!("expected `{name} ...`, got {line:?}")))
    }

    fn command(&mut self, cmd: &str) -> io::Result<String> {
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        self.read_line()
    }

    fn pair(&mut self, cmd: &str) -> io::Result<(usize, usize)> {
        let line = self.command(cmd)?;
        let mut it = line.split_whitespace().map(str::parse::<usize>);
        match (it.next(), it.next()) {
            (Some(Ok(a)), Some(Ok(b))) => Ok((a, b)),
            _ => Err(io::Error::other(format!("bad answer to {cmd}: {line:?}"))),
        }
    }

    /// TCP connections the API origin accepted so far.
    pub fn api_connections(&mut self) -> io::Result<usize> {
        Ok(self.pair("conns")?.0)
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&mut self) -> io::Result<()> {
        let line = self.command("clear")?;
        if line == "ok" {
            Ok(())
        } else {
            Err(io::Error::other(format!("bad answer to clear: {line:?}")))
        }
    }

    /// Predictions created so far, and requests throttled since the last
    /// [`Server::clear_requests`].
    pub fn stats(&mut self) -> io::Result<(usize, usize)> {
        self.pair("stats")
    }

    /// The next create is applied and its connection reset before the answer.
    pub fn fault_next_create(&mut self) -> io::Result<()> {
        let line = self.command("fault-create")?;
        if line == "ok" {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "bad answer to fault-create: {line:?}"
            )))
        }
    }

    /// API and files-origin requests recorded since the last [`Server::clear_requests`].
    pub fn request_counts(&mut self) -> io::Result<(usize, usize)> {
        self.pair("count")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
