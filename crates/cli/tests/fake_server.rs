//! `replicate fake-server`: its own options (not the client's), scripted failures, faults and a
//! rate limit from flags, and usage errors for bad values.
#![cfg(feature = "fake")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

/// A `replicate fake-server` child, killed when dropped so a failing test leaves nothing behind.
struct Served {
    child: Child,
    base: String,
    token: String,
    banner: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `replicate fake-server` on free ports with these flags and `env`, and reads its
/// banner up to the blank line (20 s at most).
fn serve(flags: &[&str], env: &[(&str, &str)]) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_replicate"));
    cmd.env_remove("REPLICATE_API_TOKEN")
        .env_remove("REPLICATE_BASE_URL")
        .args([
            "fake-server",
            "--port",
            "0",
            "--files-port",
            "0",
            "--tick-ms",
            "10",
        ])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn replicate fake-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let last = line.is_empty();
            if tx.send(line).is_err() || last {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        base: String::new(),
        token: String::new(),
        banner: Vec::new(),
    };
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the banner of replicate fake-server");
        if line.is_empty() {
            return served;
        }
        if let Some(b) = line.strip_prefix("base_url: ") {
            served.base = b.to_owned();
        } else if let Some(t) = line.strip_prefix("token: ") {
            served.token = t.to_owned();
        }
        served.banner.push(line);
    }
}

/// One request on a fresh connection (`Connection: close`): the status and the body.
fn http(url: &str, method: &str, token: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn fake_server_help_shows_its_own_options_not_the_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [&["fake-server", "--help"][..], &["help", "fake-server"][..]] {
        let out = bare(dir.path()).args(args).output().expect("help");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let help = stdout(&out);
        for absent in [
            "missing token is a usage error",
            "API token (default: $REPLICATE_API_TOKEN)",
            "API base URL",
            "--base-url",
            "REPLICATE_BASE_URL",
            "proxy.example",
        ] {
            assert!(!help.contains(absent), "{args:?}: {absent:?} in:\n{help}");
        }
        for present in [
            "--token <TOKEN>",
            "The bearer token the server accepts",
            "--fail-model <OWNER/NAME[:MESSAGE]>",
            "--fault <METHOD:PATH_SUBSTRING:FAULT[:TIMES]>",
            "--rate-limit <N>",
            "reset-after",
            "delay=MS",
            "truncated",
            "garbage",
        ] {
            assert!(
                help.contains(present),
                "{args:?}: {present:?} not in:\n{help}"
            );
        }
    }
}

#[test]
fn fake_server_flag_errors_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, message) in [
        (
            &["--fault", "POST:/predictions:teapot"][..],
            "unknown fault",
        ),
        (
            &["--fault", "POST:/predictions"][..],
            "METHOD:PATH_SUBSTRING:FAULT",
        ),
        (&["--fault", "GET:/v1/account:503:0"][..], "TIMES"),
        (&["--fail-model", "no-slash"][..], "OWNER/NAME"),
        (&["--rate-limit", "fast"][..], "--rate-limit"),
        (
            &["--base-url", "http://127.0.0.1:9"][..],
            "takes no --base-url",
        ),
        (&["--token", ""][..], "--token must not be empty"),
    ] {
        let out = bare(dir.path())
            .arg("fake-server")
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(message), "{args:?}: {message:?} not in {err}");
        assert!(stdout(&out).is_empty(), "{args:?}: nothing served");
    }
}

#[test]
fn fake_server_never_serves_the_api_token_of_the_environment() {
    const REAL: &str = "r8_a-real-token-from-the-environment";
    let s = serve(&[], &[("REPLICATE_API_TOKEN", REAL)]);
    assert_eq!(s.token, replicate_fake::DEFAULT_TOKEN);
    assert!(!s.banner.iter().any(|l| l.contains(REAL)), "{:?}", s.banner);
    let (status, _) = http(&format!("{}/v1/account", s.base), "GET", REAL, "");
    assert_eq!(status, 401);
    // A --token given on the command line is served.
    let s = serve(&["--token", "tok-given"], &[("REPLICATE_API_TOKEN", REAL)]);
    assert_eq!(s.token, "tok-given");
    let (status, _) = http(&format!("{}/v1/account", s.base), "GET", "tok-given", "");
    assert_eq!(status, 200);
}

#[test]
fn fake_server_scripts_failures_faults_and_a_rate_limit_from_flags() {
    let s = serve(
        &[
            "--token",
            "tok-e2e",
            "--fail-model",
            "acme/broken:CUDA error: out of memory",
            "--fault",
            "POST:/predictions:503",
            "--rate-limit",
            "1000",
        ],
        &[],
    );
    assert_eq!(s.token, "tok-e2e");
    assert!(
        s.banner.iter().any(|l| l == "failing model: acme/broken"),
        "{:?}",
        s.banner
    );
    assert!(
        s.banner.iter().any(|l| l == "fault rules: 1"),
        "{:?}",
        s.banner
    );
    assert!(
        s.banner
            .iter()
            .any(|l| l == "rate limit: 1000 requests per second"),
        "{:?}",
        s.banner
    );

    // The first create meets the fault.
    let create = format!("{}/v1/models/acme/broken/predictions", s.base);
    let (status, body) = http(&create, "POST", &s.token, r#"{"input":{"prompt":"x"}}"#);
    assert_eq!(status, 503, "{body}");

    // The next one is served, and the prediction fails with the scripted message: exit 1.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare(dir.path())
        .args(["--base-url", &s.base, "--token", &s.token])
        .args(["run", "acme/broken", "-i", "prompt=x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("CUDA error: out of memory"), "{err}");
    assert_clean(&err);

    // Other models still succeed.
    bare(dir.path())
        .args(["--base-url", &s.base, "--token", &s.token])
        .args(["run", "fake/text", "-i", "prompt=p"])
        .assert()
        .success()
        .stdout("Hello world!\n");
}

#[test]
fn fake_server_rate_limit_zero_throttles_every_request() {
    let s = serve(&["--rate-limit", "0"], &[]);
    let (status, body) = http(&format!("{}/v1/account", s.base), "GET", &s.token, "");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Request was throttled"), "{body}");
}
