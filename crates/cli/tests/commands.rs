//! Every other subcommand's success path: prediction, stream, files, model, account, webhook,
//! fake-server and demo.

mod common;

#[cfg(feature = "fake")]
use std::io::{BufRead, BufReader};
#[cfg(feature = "fake")]
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use replicate_fake::{FakeHandle, ModelScript, Options};
use replicate_protocol::{CreatePrediction, Target};
use replicate_ureq::{Client, Prediction};
use serde_json::{Value, json};

/// Creates a prediction directly with the library, to have something to look at.
fn create(server: &FakeHandle, model: &str) -> Prediction {
    let client = Client::builder()
        .token(server.token())
        .base_url(server.prefixed_base_url())
        .build()
        .expect("client");
    let target = Target::parse(model).expect("target");
    client
        .create(CreatePrediction::new(target).input(json!({"prompt": "x"})))
        .expect("create")
}

#[test]
fn prediction_get_shows_a_prediction() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = create(&server, "fake/text");
    let out = cli(&server, dir.path())
        .args(["prediction", "get", &p.id])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&p.id) && text.contains("status:"), "{text}");

    let out = cli(&server, dir.path())
        .args(["prediction", "get", &p.id, "--json"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["id"], p.id.as_str());
    assert_eq!(v["model"], "fake/text");
}

#[test]
fn prediction_cancel_cancels() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = create(&server, "fake/slow");
    cli(&server, dir.path())
        .args(["prediction", "cancel", &p.id])
        .assert()
        .success()
        .stdout(format!("{}: canceled\n", p.id));
    let cancels: Vec<_> = api_requests(&server)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/cancel"))
        .collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(
        cancels[0].path,
        format!("/replicate/v1/predictions/{}/cancel", p.id)
    );
}

#[test]
fn prediction_list_reads_every_page() {
    let server = fake_with(Options {
        page_size: 2,
        ..Options::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let ids: Vec<String> = (0..5).map(|_| create(&server, "fake/text").id).collect();
    let out = cli(&server, dir.path())
        .args(["prediction", "list", "--json"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let listed: Vec<&str> = v
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.reverse(); // newest first
    assert_eq!(listed, expected);
    let pages: Vec<_> = api_requests(&server)
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/replicate/v1/predictions")
        .collect();
    assert_eq!(pages.len(), 3, "three pages of two");
    assert!(
        pages[1]
            .query
            .as_deref()
            .is_some_and(|q| q.contains("cursor="))
    );

    let out = cli(&server, dir.path())
        .args(["prediction", "list"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 5);
}

#[test]
fn prediction_wait_waits_and_maps_the_outcome() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = create(&server, "fake/text");
    cli(&server, dir.path())
        .args(["prediction", "wait", &ok.id])
        .assert()
        .success()
        .stdout("Hello world!\n");
    let failed = create(&server, "fake/fail");
    let out = cli(&server, dir.path())
        .args(["prediction", "wait", &failed.id, "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["status"], "failed");
    assert!(stderr(&out).contains("Fake failure"));
}

#[test]
fn stream_follows_a_prediction() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = create(&server, "fake/text");
    cli(&server, dir.path())
        .args(["stream", &p.id])
        .assert()
        .success()
        .stdout("Hello world!");

    // A stream that reports an error exits 1 with its text.
    server.set_model(
        "test/fail-stream",
        ModelScript::fail("kaput: out of memory").streams(true),
    );
    let p = create(&server, "test/fail-stream");
    let out = cli(&server, dir.path())
        .args(["stream", &p.id])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("kaput"), "{}", stderr(&out));
}

#[test]
fn files_upload_list_get_delete() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "hello files").expect("write");
    let out = cli(&server, dir.path())
        .args([
            "files",
            "upload",
            "notes.txt",
            "--metadata",
            r#"{"k": "v"}"#,
            "--json",
        ])
        .output()
        .expect("upload");
    assert!(out.status.success(), "{}", stderr(&out));
    let file: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = file["id"].as_str().expect("id").to_owned();
    assert_eq!(file["name"], "notes.txt");
    assert_eq!(file["size"], 11);
    assert_eq!(file["metadata"], json!({"k": "v"}));

    let out = cli(&server, dir.path())
        .args(["files", "list"])
        .output()
        .expect("list");
    assert!(stdout(&out).contains(&id));
    let out = cli(&server, dir.path())
        .args(["files", "list", "--json"])
        .output()
        .expect("list");
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    let out = cli(&server, dir.path())
        .args(["files", "get", &id])
        .output()
        .expect("get");
    assert!(out.status.success());
    assert!(stdout(&out).contains("notes.txt"));

    cli(&server, dir.path())
        .args(["files", "delete", &id])
        .assert()
        .success()
        .stdout(format!("deleted {id}\n"));
    cli(&server, dir.path())
        .args(["files", "get", &id])
        .assert()
        .code(3);
}

#[test]
fn model_get_and_versions() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["model", "get", "black-forest-labs/flux-schnell"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("black-forest-labs/flux-schnell"), "{text}");
    assert!(
        text.contains(replicate_fake::FLUX_SCHNELL_VERSION),
        "{text}"
    );

    let out = cli(&server, dir.path())
        .args([
            "model",
            "versions",
            "black-forest-labs/flux-schnell",
            "--json",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    assert_eq!(v[0]["id"], replicate_fake::FLUX_SCHNELL_VERSION);
    cli(&server, dir.path())
        .args(["model", "versions", "black-forest-labs/flux-schnell"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            replicate_fake::FLUX_SCHNELL_VERSION,
        ));
    let gets: Vec<_> = api_requests(&server).into_iter().map(|r| r.path).collect();
    assert!(gets.contains(&"/replicate/v1/models/black-forest-labs/flux-schnell".to_owned()));
    assert!(
        gets.contains(&"/replicate/v1/models/black-forest-labs/flux-schnell/versions".to_owned())
    );
}

#[test]
fn account_shows_the_token_owner() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .arg("account")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("username:"));
    let out = cli(&server, dir.path())
        .args(["account", "--json"])
        .output()
        .expect("run");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["username"].is_string());
    assert_eq!(api_requests(&server)[0].path, "/replicate/v1/account");
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: &str = "1614265330";
const BODY: &str = r#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn verify(dir: &std::path::Path, body: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    bare(dir)
        .args(["webhook", "verify", "--secret", SECRET, "--id", MSG_ID])
        .args(extra)
        .write_stdin(body.as_bytes().to_vec())
        .assert()
}

#[test]
fn webhook_verify_checks_the_signature_of_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vector = [
        "--timestamp",
        TIMESTAMP,
        "--signature",
        SIGNATURE,
        "--tolerance",
        "0",
    ];
    verify(dir.path(), BODY, &vector).code(0).stdout("valid\n");
    // One byte changed, or a newline added: invalid.
    verify(dir.path(), r#"{"test": 2432232315}"#, &vector)
        .code(1)
        .stdout(predicates::str::contains("no matching webhook signature"));
    verify(dir.path(), &format!("{BODY}\n"), &vector).code(1);
    // Any of several signatures may match.
    let several = format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {SIGNATURE}");
    verify(
        dir.path(),
        BODY,
        &[
            "--timestamp",
            TIMESTAMP,
            "--signature",
            &several,
            "--tolerance",
            "0",
        ],
    )
    .code(0);
    // With the default tolerance of 5 minutes, a 2021 timestamp is too old.
    verify(
        dir.path(),
        BODY,
        &["--timestamp", TIMESTAMP, "--signature", SIGNATURE],
    )
    .code(1)
    .stdout(predicates::str::contains("too old"));
    // A fresh delivery verifies with the default tolerance.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let secret = replicate_protocol::webhook::WebhookSecret::parse(SECRET).expect("secret");
    let sig = replicate_protocol::webhook::sign(&secret, MSG_ID, now, BODY.as_bytes());
    verify(
        dir.path(),
        BODY,
        &["--timestamp", &now.to_string(), "--signature", &sig],
    )
    .code(0);
    // A secret that is not one is a usage error.
    bare(dir.path())
        .args(["webhook", "verify", "--secret", "whsec_!!!", "--id", MSG_ID])
        .args(["--timestamp", TIMESTAMP, "--signature", SIGNATURE])
        .write_stdin(BODY)
        .assert()
        .code(2);
}

#[cfg(feature = "fake")]
/// Kills the child it holds when dropped, so a failing test leaves no server behind.
struct KillOnDrop(std::process::Child);

#[cfg(feature = "fake")]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(feature = "fake")]
#[test]
fn fake_server_prints_its_base_url_and_token_and_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_replicate"))
        .args(["fake-server", "--tick-ms", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    let mut token = None;
    while base.is_none() || token.is_none() {
        let line = lines.next().expect("a line").expect("utf-8");
        if let Some(b) = line.strip_prefix("base_url: ") {
            base = Some(b.to_owned());
        } else if let Some(t) = line.strip_prefix("token: ") {
            token = Some(t.to_owned());
        }
    }
    let (base, token) = (base.unwrap_or_default(), token.unwrap_or_default());
    assert!(base.ends_with("/replicate"), "{base}");
    bare(dir.path())
        .args([
            "--base-url",
            &base,
            "--token",
            &token,
            "run",
            "fake/text",
            "-i",
            "prompt=p",
        ])
        .assert()
        .success()
        .stdout("Hello world!\n");
    // Still serving until killed.
    assert!(child.0.try_wait().expect("try_wait").is_none());
}

#[cfg(feature = "fake")]
#[test]
fn demo_runs_offline_without_a_token_and_writes_the_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare(dir.path())
        .env_remove("REPLICATE_POLL_INTERVAL_MS")
        .arg("demo")
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("demo");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let path = dir.path().join("replicate-demo-output").join("out-0.jpg");
    let bytes = std::fs::read(&path).expect("the demo's output file");
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
    assert!(text.contains("Created prediction"), "{text}");
    assert!(text.contains("Statuses seen: starting -> "), "{text}");
    assert!(text.contains("-> succeeded"), "{text}");
    assert!(text.contains("Output URL: http://127.0.0.1:"), "{text}");
    assert!(text.contains(&format!("({} bytes", bytes.len())), "{text}");
    assert!(text.contains("replicate-demo-output/out-0.jpg"), "{text}");

    // --output-dir chooses where.
    bare(dir.path())
        .args(["demo", "--output-dir", "elsewhere"])
        .assert()
        .success();
    assert!(dir.path().join("elsewhere/out-0.jpg").is_file());
}
