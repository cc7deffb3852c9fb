//! The `replicate-fake` binary: `--fault`, `--fail-model`, `--rate-limit` and
//! `--connection-rate` are read, bad values are usage errors (exit 2), and a scripted fault,
//! failure and pacing happen.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::request;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_replicate-fake");

/// Kills the server it holds when dropped, so a failing test leaves nothing behind.
struct Server {
    child: Child,
    base: String,
    token: String,
    banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on free ports with these flags, and reads its banner (20 s at most).
fn serve(flags: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--files-port", "0", "--tick-ms", "10"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn replicate-fake");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let last = line.starts_with("Press Ctrl-C");
            if tx.send(line).is_err() || last {
                break;
            }
        }
    });
    let mut server = Server {
        child,
        base: String::new(),
        token: String::new(),
        banner: Vec::new(),
    };
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the banner of replicate-fake");
        if let Some(b) = line.strip_prefix("base_url: ") {
            server.base = b.to_owned();
        } else if let Some(t) = line.strip_prefix("token: ") {
            server.token = t.to_owned();
        }
        let last = line.starts_with("Press Ctrl-C");
        server.banner.push(line);
        if last {
            return server;
        }
    }
}

impl Server {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> common::Resp {
        let auth = format!("Bearer {}", self.token);
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        request(method, &format!("{}{path}", self.base), &headers, &bytes).unwrap()
    }
}

/// Runs the binary with these arguments, expecting it to exit at once.
fn run_to_end(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn replicate-fake");
    // Bounded: a server that started after all would be killed here.
    let until = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn help_documents_the_fault_grammar() {
    let out = run_to_end(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--fault <METHOD:PATH_SUBSTRING:FAULT[:TIMES]>",
        "--fail-model <OWNER/NAME[:MESSAGE]>",
        "--rate-limit <N>",
        "--connection-rate <BYTES_PER_SEC>",
        "corrupt[=OFFSET]",
        "reset-after",
        "delay=MS",
        "truncated",
        "garbage",
        "drop-stream=N",
    ] {
        assert!(help.contains(needle), "{needle:?} not in:\n{help}");
    }
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for (args, message) in [
        (
            &["--fault", "POST:/predictions:teapot"][..],
            "unknown fault",
        ),
        (
            &["--fault", "POST:/predictions"][..],
            "METHOD:PATH_SUBSTRING:FAULT",
        ),
        (&["--fault", "POST:/predictions:503:0"][..], "TIMES"),
        (&["--fault", "POST:/predictions:delay=soon"][..], "delay"),
        (&["--fail-model", "not-a-model"][..], "OWNER/NAME"),
        (&["--rate-limit", "many"][..], "--rate-limit"),
        (&["--rate-limit=-1"][..], "--rate-limit"),
        (&["--connection-rate", "fast"][..], "--connection-rate"),
        (&["--fault", "GET:/xezq/:corrupt=x"][..], "corrupt"),
    ] {
        let out = run_to_end(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(message), "{args:?}: {message:?} not in {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing served");
    }
}

#[test]
fn scripted_faults_failures_and_rate_limit_happen() {
    let s = serve(&[
        "--fault",
        "POST:/predictions:503",
        "--fault",
        "get:/v1/account:garbage:2",
        "--fail-model",
        "acme/broken:CUDA error: out of memory",
        "--rate-limit",
        "1000",
    ]);
    assert!(
        s.banner.iter().any(|l| l == "failing model: acme/broken"),
        "{:?}",
        s.banner
    );
    assert!(
        s.banner.iter().any(|l| l == "fault rules: 2"),
        "{:?}",
        s.banner
    );

    // The first create meets the fault (and creates nothing); the next one is served.
    let body = json!({"input": {"prompt": "x"}});
    let r = s.call("POST", "/v1/models/acme/broken/predictions", Some(&body));
    assert_eq!(r.status, 503, "{}", r.text());
    let r = s.call("POST", "/v1/models/acme/broken/predictions", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    // The rate limit counts requests.
    assert!(r.header("ratelimit-remaining").is_some(), "{:?}", r.headers);
    let id = r.json()["id"].as_str().unwrap().to_owned();

    // Twice garbage, then the real answer.
    for _ in 0..2 {
        let r = s.call("GET", "/v1/account", None);
        assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    }
    assert_eq!(
        s.call("GET", "/v1/account", None).json()["username"],
        "fake"
    );

    // The failing model fails with the message.
    let until = Instant::now() + Duration::from_secs(20);
    let p = loop {
        let p = s.call("GET", &format!("/v1/predictions/{id}"), None).json();
        if p["status"] != "starting" && p["status"] != "processing" {
            break p;
        }
        assert!(Instant::now() < until, "still running: {p}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(p["status"], "failed");
    assert_eq!(p["error"], "CUDA error: out of memory");
    assert!(p["logs"].as_str().unwrap().contains("Traceback"), "{p}");
}

#[test]
fn a_rate_limit_of_zero_throttles_everything() {
    let s = serve(&["--rate-limit", "0"]);
    let r = s.call("GET", "/v1/account", None);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["status"], 429);
}

#[test]
fn connection_rate_paces_downloads_and_corrupt_spoils_one() {
    let s = serve(&[
        "--connection-rate",
        "200000",
        "--fault",
        "GET:/xezq/:corrupt=7",
    ]);
    assert!(
        s.banner
            .iter()
            .any(|l| l == "connection rate: 200000 bytes per second"),
        "{:?}",
        s.banner
    );
    let body = json!({"input": {"output_bytes": 100_000, "seed": 1}});
    let r = s.call(
        "POST",
        "/v1/models/fake/large-files/predictions",
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let until = Instant::now() + Duration::from_secs(20);
    let p = loop {
        let p = s.call("GET", &format!("/v1/predictions/{id}"), None).json();
        if p["status"] == "succeeded" {
            break p;
        }
        assert!(Instant::now() < until, "still running: {p}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let url = p["output"][0].as_str().unwrap();
    let good = replicate_fake::synthetic_bytes(1, 0, 100_000);
    // The first download meets the fault: one byte inverted under the real ETag.
    let r = request("GET", url, &[], b"").unwrap();
    assert_eq!(r.status, 200);
    let diffs: Vec<usize> = (0..good.len()).filter(|&i| r.body[i] != good[i]).collect();
    assert_eq!(diffs, [7]);
    let etag = replicate_fake::SyntheticFile::new(1, 100_000).etag();
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    // 100 000 bytes at 200 000 bytes per second: half a second at least.
    let t = Instant::now();
    let r = request("GET", url, &[], b"").unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r.body, good);
}
