//! `replicate run` against the fake server: requests sent, outputs printed and downloaded.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use replicate_fake::{
    Fault, FaultRule, MULTILINE_TOKENS, Matcher, ModelScript, Options, Origin, Output,
};
use serde_json::{Value, json};

fn seed_input() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/seed/create_by_model_request.json"
    ))
    .expect("the seed's request fixture");
    let body: Value = serde_json::from_str(&text).expect("seed JSON");
    body["input"].clone()
}

#[test]
fn model_path_runs_polls_and_downloads_into_the_current_directory() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let input_file = dir.path().join("input.json");
    std::fs::write(&input_file, seed_input().to_string()).expect("write input");
    let out = cli(&server, dir.path())
        .args(["run", "black-forest-labs/flux-schnell", "--input-json"])
        .arg(&input_file)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));

    // The create: by model path, under the prefix, the seed's input exactly, no Prefer header.
    let (create, body) = the_create(&server);
    assert_eq!(
        create.path,
        "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
    );
    assert_eq!(body, json!({"input": seed_input()}));
    assert_eq!(create.header("prefer"), None);

    // Polled until done, then downloaded without the token.
    let polls = api_requests(&server)
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/replicate/v1/predictions/"))
        .count();
    assert!(polls >= 1, "at least one poll");
    // The files origin saw the download and, as the model streams, the event stream the client
    // follows to notice the end at once; neither carried the token.
    let (streams, files): (Vec<_>, Vec<_>) = server
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Files)
        .partition(|r| r.path.starts_with("/v1/streams/"));
    assert_eq!(files.len(), 1, "{files:#?}");
    assert_eq!(files[0].header("authorization"), None);
    assert!(streams.iter().all(|r| r.header("authorization").is_none()));

    // The path is printed; the file is a JPEG in the current directory.
    let printed = stdout(&out);
    assert_eq!(printed.trim_end(), "./out-0.jpg");
    let bytes = std::fs::read(dir.path().join("out-0.jpg")).expect("downloaded file");
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
    // Progress is on stderr, never on stdout.
    let err = stderr(&out);
    assert!(err.contains("succeeded"), "{err}");
    assert!(
        err.contains("Using seed: 62182"),
        "newest log lines shown: {err}"
    );
    assert!(!printed.contains("succeeded"));
}

#[test]
fn model_version_creates_with_the_bare_version_id() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let version = server.model_version("fake/text");
    cli(&server, dir.path())
        .args(["run", &format!("fake/text:{version}"), "-i", "prompt=hi"])
        .assert()
        .success()
        .stdout("Hello world!\n");
    let (create, body) = the_create(&server);
    assert_eq!(create.path, "/replicate/v1/predictions");
    assert_eq!(body, json!({"version": version, "input": {"prompt": "hi"}}));
}

#[test]
fn input_values_are_typed_and_split_at_the_first_equals() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("base.json");
    std::fs::write(&base, r#"{"kept": "from file", "steps": 1}"#).expect("write");
    cli(&server, dir.path())
        .args(["run", "fake/json", "--input-json"])
        .arg(&base)
        .args([
            "-i",
            "go_fast=true",
            "-i",
            "safe=false",
            "-i",
            "steps=4",
            "-i",
            "seed=-7",
            "-i",
            "strength=0.8",
            "-i",
            "prompt=an astronaut",
            "-i",
            "expr=a=b=c",
            "-i",
            "aspect_ratio=1:1",
            "-i",
            "zip=007",
            "-i",
            "empty=",
        ])
        .assert()
        .success();
    let (_, body) = the_create(&server);
    assert_eq!(
        body["input"],
        json!({
            "kept": "from file",
            "steps": 4,
            "go_fast": true,
            "safe": false,
            "seed": -7,
            "strength": 0.8,
            "prompt": "an astronaut",
            "expr": "a=b=c",
            "aspect_ratio": "1:1",
            "zip": "007",
            "empty": ""
        })
    );
    assert!(body["input"]["steps"].is_i64());
    assert!(body["input"]["strength"].is_f64());
}

#[test]
fn a_small_file_input_is_inlined_as_a_data_url() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("cat.png"), b"\x89PNG tiny").expect("write");
    cli(&server, dir.path())
        .args(["run", "fake/json", "-i", "prompt=p", "-i", "image=@cat.png"])
        .assert()
        .success();
    let (_, body) = the_create(&server);
    let image = body["input"]["image"].as_str().expect("a string");
    assert!(image.starts_with("data:image/png;base64,"), "{image}");
}

#[test]
fn a_large_file_input_is_uploaded_first() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 2 * 1024 * 1024]).expect("write");
    cli(&server, dir.path())
        .args([
            "run",
            "fake/json",
            "-i",
            "prompt=p",
            "-i",
            "weights=@big.bin",
        ])
        .assert()
        .success();
    let api = api_requests(&server);
    let upload = api
        .iter()
        .position(|r| r.method == "POST" && r.path == "/replicate/v1/files")
        .expect("an upload");
    let create = api
        .iter()
        .position(|r| r.method == "POST" && r.path.ends_with("/predictions"))
        .expect("a create");
    assert!(upload < create);
    let (_, body) = the_create(&server);
    let url = body["input"]["weights"].as_str().expect("a URL");
    assert!(url.starts_with("http"), "{url}");
}

#[test]
fn wait_sends_prefer_wait_n() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    cli(&server, dir.path())
        .args(["run", "fake/text", "-i", "prompt=p", "--wait", "5"])
        .assert()
        .success()
        .stdout("Hello world!\n");
    let (create, _) = the_create(&server);
    assert_eq!(create.header("prefer"), Some("wait=5"));
}

#[test]
fn no_download_prints_urls_and_writes_nothing() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "fake/urls", "-i", "prompt=p", "--no-download"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert_eq!(printed.lines().count(), 3, "{printed}");
    assert!(printed.lines().all(|l| l.starts_with("http://")));
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    assert!(
        server.requests().iter().all(|r| r.origin == Origin::Api),
        "no download"
    );
}

#[test]
fn output_dir_is_created_and_every_url_downloaded() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args([
            "run",
            "fake/urls",
            "-i",
            "prompt=p",
            "--output-dir",
            "out/nested",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let paths: Vec<&str> = printed.lines().collect();
    assert_eq!(paths.len(), 3, "{printed}");
    for p in paths {
        assert!(p.starts_with("out/nested/"), "{p}");
        let bytes = std::fs::read(dir.path().join(p)).expect("downloaded");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    }
}

#[test]
fn json_is_the_whole_of_stdout() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args([
            "run",
            "fake/urls",
            "-i",
            "prompt=p",
            "--json",
            "--output-dir",
            "o",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert!(v.is_object());
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["output"].as_array().map(Vec::len), Some(3));
    // Downloads still happen; their paths go to stderr.
    assert_eq!(
        std::fs::read_dir(dir.path().join("o")).expect("o").count(),
        3
    );
    assert!(stderr(&out).contains("Saved"));
}

#[test]
fn json_of_a_failed_prediction_exits_1() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "fake/fail", "-i", "prompt=p", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["status"], "failed");
    assert!(stderr(&out).contains("Fake failure"));
}

#[test]
fn text_and_json_outputs_are_printed() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    cli(&server, dir.path())
        .args(["run", "fake/text", "-i", "prompt=p"])
        .assert()
        .success()
        .stdout("Hello world!\n");
    let out = cli(&server, dir.path())
        .args(["run", "fake/json", "-i", "prompt=p"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["answer"], 42);
}

#[test]
fn stream_writes_the_exact_text() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    cli(&server, dir.path())
        .args(["run", "fake/text", "-i", "prompt=p", "--stream"])
        .assert()
        .success()
        .stdout("Hello world!");
    cli(&server, dir.path())
        .args(["run", "fake/text-multiline", "-i", "prompt=p", "--stream"])
        .assert()
        .success()
        .stdout(MULTILINE_TOKENS.concat());
    // The stream is read without the token.
    let streams: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Files)
        .collect();
    assert_eq!(streams.len(), 2);
    assert!(streams.iter().all(|r| r.header("authorization").is_none()));
}

#[test]
fn stream_writes_each_token_as_it_arrives() {
    let server = fake();
    server.set_model(
        "test/slow-text",
        ModelScript::succeed(Output::Text(vec![
            "first".into(),
            " second".into(),
            " third".into(),
        ]))
        .starting_ticks(1)
        .processing_time(Duration::from_millis(1500)),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_replicate"))
        .env_remove("REPLICATE_API_TOKEN")
        .env_remove("REPLICATE_BASE_URL")
        .env("REPLICATE_POLL_INTERVAL_MS", "20")
        .current_dir(dir.path())
        .arg("--base-url")
        .arg(server.prefixed_base_url())
        .arg("--token")
        .arg(server.token())
        .args(["run", "test/slow-text", "-i", "prompt=p", "--stream"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 5];
    stdout.read_exact(&mut first).expect("the first token");
    assert_eq!(&first, b"first");
    // The first token came while the prediction was still running.
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the process had already finished: output was not streamed"
    );
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("the rest");
    assert_eq!(rest, " second third");
    assert!(child.wait().expect("wait").success());
}

#[test]
fn a_throttled_create_is_retried_after_retry_after() {
    let server = fake();
    server.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::throttled(1),
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    cli(&server, dir.path())
        .args(["run", "fake/text", "-i", "prompt=p"])
        .assert()
        .success()
        .stdout("Hello world!\n");
    let creates = creates(&server);
    assert_eq!(creates.len(), 2);
    assert!(creates[0].fault.is_some());
    assert!(creates[1].fault.is_none());
    assert_eq!(server.prediction_count(), 1);
}

#[test]
fn polls_survive_503s() {
    let server = fake();
    server.push_fault(
        FaultRule::new(Matcher::new("GET", "/v1/predictions/"), Fault::status(503)).times(2),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    cli(&server, dir.path())
        .args(["run", "fake/text", "-i", "prompt=p"])
        .assert()
        .success()
        .stdout("Hello world!\n");
    assert!(server.pending_faults().is_empty(), "both 503s were served");
}

#[test]
fn every_request_goes_under_the_base_url_with_the_bearer_token() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    cli(&server, dir.path())
        .args([
            "run",
            "black-forest-labs/flux-schnell",
            "-i",
            "prompt=a cat",
        ])
        .assert()
        .success();
    cli(&server, dir.path())
        .args(["prediction", "list"])
        .assert()
        .success();
    let bearer = format!("Bearer {}", server.token());
    let api = api_requests(&server);
    assert!(api.len() >= 3);
    for r in &api {
        assert!(r.path.starts_with("/replicate/v1/"), "{}", r.path);
        assert_eq!(r.header("authorization"), Some(bearer.as_str()));
    }

    // Without the prefix, the same requests go to /v1.
    let server = fake_with(Options {
        prefix: String::new(),
        ..Options::default()
    });
    bare(dir.path())
        .args(["--base-url", &server.base_url(), "--token", server.token()])
        .args(["run", "fake/text", "-i", "prompt=p"])
        .assert()
        .success();
    assert!(
        api_requests(&server)
            .iter()
            .all(|r| r.path.starts_with("/v1/"))
    );
}

#[test]
fn global_options_are_accepted_after_the_subcommand_and_from_the_environment() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    bare(dir.path())
        .args([
            "run",
            "fake/text",
            "-i",
            "prompt=p",
            "--token",
            server.token(),
            "--base-url",
        ])
        .arg(server.prefixed_base_url())
        .assert()
        .success()
        .stdout("Hello world!\n");
    bare(dir.path())
        .env("REPLICATE_API_TOKEN", server.token())
        .env("REPLICATE_BASE_URL", server.prefixed_base_url())
        .args(["run", "fake/text", "-i", "prompt=p"])
        .assert()
        .success()
        .stdout("Hello world!\n");
    assert_eq!(creates(&server).len(), 2);
}
