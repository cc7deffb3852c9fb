//! Shared helpers: a fast fake server and a `replicate` command pointed at it.
#![allow(dead_code)]

pub mod raw;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use replicate_fake::{BlockingFakeServer, FakeHandle, Options, Origin, RecordedRequest};
use serde_json::Value;

/// A fake server with short ticks, so scripted predictions finish in tens of milliseconds.
pub fn fake() -> BlockingFakeServer {
    fake_with(Options::default())
}

/// A fake server with these options, and short ticks.
pub fn fake_with(opts: Options) -> BlockingFakeServer {
    BlockingFakeServer::start_with(Options {
        tick: Duration::from_millis(10),
        ..opts
    })
    .expect("start the fake server")
}

/// `replicate` with no configuration from the environment, a short poll interval, and a time
/// limit.
pub fn bare(dir: &Path) -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("replicate");
    cmd.env_remove("REPLICATE_API_TOKEN")
        .env_remove("REPLICATE_BASE_URL")
        // `--web` opens a browser only when stdout is a terminal, which it never is here; this
        // makes sure of it.
        .env("REPLICATE_NO_BROWSER", "1")
        .env("REPLICATE_POLL_INTERVAL_MS", "20")
        .current_dir(dir)
        .timeout(Duration::from_secs(20));
    cmd
}

/// `replicate --base-url {fake}/replicate --token {token}`, run in `dir`.
pub fn cli(server: &FakeHandle, dir: &Path) -> Command {
    let mut cmd = bare(dir);
    cmd.arg("--base-url")
        .arg(server.prefixed_base_url())
        .arg("--token")
        .arg(server.token());
    cmd
}

/// The requests received on the API origin.
pub fn api_requests(server: &FakeHandle) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Api)
        .collect()
}

/// The prediction creates received (faulted ones included).
pub fn creates(server: &FakeHandle) -> Vec<RecordedRequest> {
    api_requests(server)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/predictions"))
        .collect()
}

/// Nothing was created nor uploaded: every request received was a read (with a schema, `run`
/// reads the model's schema before it checks the input).
pub fn assert_only_reads(server: &FakeHandle) {
    let writes: Vec<RecordedRequest> = server
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "only reads expected: {writes:#?}");
}

/// The one create received; its JSON body.
pub fn the_create(server: &FakeHandle) -> (RecordedRequest, Value) {
    let creates = creates(server);
    assert_eq!(creates.len(), 1, "exactly one create: {creates:#?}");
    let body = creates[0].json().expect("a JSON create body");
    (creates[0].clone(), body)
}

/// stdout of a finished command, as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// stderr of a finished command, as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

/// stderr is an error in 1 to 5 lines, with no panic and no debug dump.
pub fn assert_short_error(out: &std::process::Output) {
    let err = stderr(out);
    let error_lines: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("error:"))
        .collect();
    assert!(
        (1..=5).contains(&error_lines.len()),
        "1 to 5 lines of error expected, got:\n{err}"
    );
    assert_clean(&err);
}

/// No panic message, no `Debug` dump of an error.
pub fn assert_clean(text: &str) {
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "Api(",
        "Transport(",
        "ApiError {",
        "Some(",
        "kind:",
    ] {
        assert!(!text.contains(bad), "{bad:?} in:\n{text}");
    }
}
