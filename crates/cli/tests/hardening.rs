//! The hardening of the command line: listings printed as they arrive and bounded, files never
//! replaced, failures after the create that say how to resume, timeouts, inert server text, the
//! token never printed, capped outputs and inputs, partial downloads removed on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::raw::{RawServer, respond_json};
use common::*;
use replicate_fake::{FakeHandle, Fault, FaultRule, Matcher, ModelScript, Options, Origin, Output};
use replicate_protocol::{CreatePrediction, Target};
use replicate_ureq::{Client, Prediction};
use serde_json::{Value, json};

/// Creates a prediction directly with the library.
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

/// `replicate` as a child process with piped stdout and stderr, not through assert_cmd (which
/// waits for the end).
fn spawn(dir: &Path, base_url: &str, token: &str, args: &[&str]) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_replicate"))
        .env_remove("REPLICATE_API_TOKEN")
        .env_remove("REPLICATE_BASE_URL")
        .env("REPLICATE_POLL_INTERVAL_MS", "20")
        .current_dir(dir)
        .args(["--base-url", base_url, "--token", token])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn replicate")
}

/// Waits for a child at most `limit`; kills it (and fails) past that.
fn wait_at_most(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No character that could drive a terminal (newlines and tabs are fine).
fn assert_inert(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && c != '\t' && replicate_protocol::text::is_unsafe_char(c))
        .collect();
    assert!(bad.is_empty(), "{what} holds {bad:?}:\n{text}");
}

fn prediction_json(id: &str) -> Value {
    json!({"id": id, "status": "succeeded", "model": "owner/model", "input": {}, "output": null})
}

fn page(base: &str, ids: &[&str], next: Option<&str>) -> Value {
    json!({
        "results": ids.iter().map(|id| prediction_json(id)).collect::<Vec<_>>(),
        "next": next.map(|c| format!("{base}/v1/predictions?cursor={c}")),
        "previous": null,
    })
}

// ---------------------------------------------------------------------------------------------
// 2. Listings: printed as pages arrive, --max-pages, cursor cycles.

/// A server whose second page waits until `release` says so (or 10 s), recording whether it was
/// served.
fn two_page_server(release: mpsc::Receiver<()>, served: Arc<AtomicBool>) -> RawServer {
    let release = Mutex::new(release);
    let base = Arc::new(Mutex::new(String::new()));
    let base_in = Arc::clone(&base);
    let server = RawServer::start(10, move |req, stream| {
        let base = base_in.lock().expect("base").clone();
        match req.query("cursor") {
            None => respond_json(stream, 200, &page(&base, &["p1", "p2"], Some("B"))),
            Some(_) => {
                let _ = release
                    .lock()
                    .expect("release")
                    .recv_timeout(Duration::from_secs(10));
                served.store(true, Ordering::SeqCst);
                respond_json(stream, 200, &page(&base, &["p3"], None));
            }
        }
    });
    *base.lock().expect("base") = server.base_url();
    server
}

#[test]
fn prediction_list_prints_each_page_as_it_arrives() {
    for json in [false, true] {
        let (release, wait) = mpsc::channel();
        let served = Arc::new(AtomicBool::new(false));
        let server = two_page_server(wait, Arc::clone(&served));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec!["prediction", "list"];
        if json {
            args.push("--json");
        }
        let mut child = spawn(dir.path(), &server.base_url(), "r8_token", &args);
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut seen = String::new();
        // The first page's items come out while the second page is still held back.
        while !seen.contains("p1") {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).expect("read") > 0,
                "stdout ended: {seen}"
            );
            seen.push_str(&line);
        }
        assert!(
            !served.load(Ordering::SeqCst),
            "the first item was printed only after the last page (json: {json})"
        );
        release.send(()).expect("release the second page");
        stdout.read_to_string(&mut seen).expect("the rest");
        assert!(wait_at_most(&mut child, Duration::from_secs(20)).success());
        if json {
            // The same pretty array as before, written incrementally.
            let v: Value = serde_json::from_str(&seen).expect("one JSON array");
            let ids: Vec<&str> = v
                .as_array()
                .expect("array")
                .iter()
                .filter_map(|p| p["id"].as_str())
                .collect();
            assert_eq!(ids, ["p1", "p2", "p3"]);
            let whole: Vec<Value> = ["p1", "p2", "p3"]
                .iter()
                .map(|id| prediction_json(id))
                .collect();
            let expected: Vec<Prediction> = whole
                .into_iter()
                .map(|p| serde_json::from_value(p).expect("prediction"))
                .collect();
            assert_eq!(
                seen,
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&expected).expect("json")
                )
            );
        } else {
            assert_eq!(seen.lines().count(), 3, "{seen}");
        }
    }
}

#[test]
fn a_cursor_cycle_ends_the_listing_with_exit_3_after_the_items_printed() {
    for json in [false, true] {
        let base = Arc::new(Mutex::new(String::new()));
        let base_in = Arc::clone(&base);
        // Pages: (first) -> A -> B -> A -> ...: the server would loop forever.
        let server = RawServer::start(20, move |req, stream| {
            let base = base_in.lock().expect("base").clone();
            let body = match req.query("cursor") {
                None => page(&base, &["first"], Some("A")),
                Some("A") => page(&base, &["on-a"], Some("B")),
                _ => page(&base, &["on-b"], Some("A")),
            };
            respond_json(stream, 200, &body);
        });
        *base.lock().expect("base") = server.base_url();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec!["prediction", "list"];
        if json {
            args.push("--json");
        }
        let mut child = spawn(dir.path(), &server.base_url(), "r8_token", &args);
        let status = wait_at_most(&mut child, Duration::from_secs(20));
        let mut out = String::new();
        let mut err = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("stdout");
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        assert_eq!(status.code(), Some(3), "{err}");
        assert!(err.contains("cycle"), "{err}");
        assert!(err.lines().count() <= 5, "{err}");
        // Bounded: the three pages were read once each, and their items printed.
        assert_eq!(server.requests().len(), 3, "{:?}", server.requests());
        if json {
            let v: Value = serde_json::from_str(&out).expect("a closed JSON array");
            assert_eq!(v.as_array().map(Vec::len), Some(3), "{out}");
        } else {
            assert_eq!(out.lines().count(), 3, "{out}");
            assert!(out.contains("first") && out.contains("on-a") && out.contains("on-b"));
        }
    }
}

#[test]
fn max_pages_caps_listings() {
    let server = fake_with(Options {
        page_size: 2,
        ..Options::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    for _ in 0..5 {
        create(&server, "fake/json");
    }
    let out = cli(&server, dir.path())
        .args(["prediction", "list", "--max-pages", "2"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 4, "{}", stdout(&out));
    assert!(stderr(&out).contains("--max-pages"), "{}", stderr(&out));
    assert_short_error(&out);
    // The whole list with the default cap.
    let out = cli(&server, dir.path())
        .args(["prediction", "list"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 5);

    // Files too, in JSON: a valid array of what was read.
    for name in ["a.txt", "b.txt", "c.txt"] {
        std::fs::write(dir.path().join(name), name).expect("write");
        cli(&server, dir.path())
            .args(["files", "upload", name])
            .assert()
            .success();
    }
    let out = cli(&server, dir.path())
        .args(["files", "list", "--json", "--max-pages", "1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    cli(&server, dir.path())
        .args(["model", "versions", "fake/text", "--max-pages", "1"])
        .assert()
        .success();
    // 0 pages is not a cap.
    cli(&server, dir.path())
        .args(["prediction", "list", "--max-pages", "0"])
        .assert()
        .code(2);
    // The default is documented.
    for cmd in [
        &["prediction", "list", "--help"][..],
        &["files", "list", "--help"],
        &["model", "versions", "--help"],
    ] {
        let help = cli(&server, dir.path()).args(cmd).output().expect("help");
        assert!(
            stdout(&help).contains("--max-pages") && stdout(&help).contains("1000"),
            "{}",
            stdout(&help)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. and 10. Output files: never replaced unless --overwrite; at most --max-files.

#[test]
fn run_never_replaces_an_existing_file_unless_overwrite() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("out-0.jpg"), "keep me").expect("write");
    let out = cli(&server, dir.path())
        .args(["run", "black-forest-labs/flux-schnell", "-i", "prompt=x"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim_end(), "./out-0-1.jpg");
    assert_eq!(
        std::fs::read(dir.path().join("out-0.jpg")).expect("kept"),
        b"keep me"
    );
    let new = std::fs::read(dir.path().join("out-0-1.jpg")).expect("written beside it");
    assert!(new.starts_with(&[0xFF, 0xD8, 0xFF]));

    let out = cli(&server, dir.path())
        .args([
            "run",
            "black-forest-labs/flux-schnell",
            "-i",
            "prompt=x",
            "--overwrite",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim_end(), "./out-0.jpg");
    let replaced = std::fs::read(dir.path().join("out-0.jpg")).expect("replaced");
    assert!(replaced.starts_with(&[0xFF, 0xD8, 0xFF]));
}

#[test]
fn max_files_caps_the_outputs_written() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args([
            "run",
            "fake/urls",
            "-i",
            "prompt=p",
            "--output-dir",
            "out",
            "--max-files",
            "2",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("more than the cap of 2"), "{err}");
    assert!(err.contains("--max-files"), "{err}");
    assert_short_error(&out);
    // Nothing written, nothing downloaded; the URLs are printed instead.
    let written: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .expect("out")
        .collect();
    assert!(written.is_empty(), "{written:?}");
    assert!(
        server.requests().iter().all(|r| r.origin == Origin::Api),
        "no download"
    );
    let printed = stdout(&out);
    assert_eq!(printed.lines().count(), 3, "{printed}");
    assert!(printed.lines().all(|l| l.starts_with("http://")));
    // Within the cap, everything is written.
    cli(&server, dir.path())
        .args([
            "run",
            "fake/urls",
            "-i",
            "prompt=p",
            "--output-dir",
            "out",
            "--max-files",
            "3",
        ])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_dir(dir.path().join("out"))
            .expect("out")
            .count(),
        3
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Failures after the create.

#[test]
fn a_failure_after_the_create_prints_the_id_and_how_to_resume() {
    let server = fake();
    // Every poll is throttled, for longer than the client waits for (`Retry-After` over its
    // `max_retry_after`): the wait gives up at once, after the create succeeded.
    server.push_fault(
        FaultRule::new(
            Matcher::new("GET", "/v1/predictions/"),
            Fault::throttled(100_000),
        )
        .times(1000),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "fake/json", "-i", "prompt=p"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    let (_, body) = the_create(&server);
    assert!(body["input"].is_object());
    let polls = api_requests(&server)
        .into_iter()
        .filter(|r| r.method == "GET")
        .count();
    assert!(polls >= 1, "the prediction was polled");
    let id = server_prediction_id(&server);
    let error = err
        .lines()
        .skip_while(|l| !l.starts_with("error:"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        error.contains(&format!("prediction {id} was created")),
        "{err}"
    );
    assert!(error.contains("429"), "{err}");
    assert!(
        error.contains(&format!("replicate prediction wait {id}")),
        "{err}"
    );
    assert_short_error(&out);
}

/// The id of the one prediction the fake server holds.
fn server_prediction_id(server: &FakeHandle) -> String {
    let client = Client::builder()
        .token(server.token())
        .base_url(server.prefixed_base_url())
        .build()
        .expect("client");
    server.clear_faults();
    let ids: Vec<String> = client.list().map(|p| p.expect("list").id).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

// ---------------------------------------------------------------------------------------------
// 6. and 13. Timeouts, and errors that say enough.

fn cancels(server: &FakeHandle) -> usize {
    api_requests(server)
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/cancel"))
        .count()
}

#[test]
fn timeouts_exit_3_say_what_timed_out_and_cancel_unless_told_not_to() {
    let server = fake();
    server.set_model(
        "test/forever",
        ModelScript::succeed(Output::Json(json!(1)))
            .starting_ticks(1)
            .processing_time(Duration::from_secs(60)),
    );
    server.set_model(
        "test/forever-text",
        ModelScript::text(["a", "b"])
            .starting_ticks(1)
            .processing_time(Duration::from_secs(60)),
    );
    let dir = tempfile::tempdir().expect("tempdir");

    // run: canceled at the timeout.
    let out = cli(&server, dir.path())
        .args(["run", "test/forever", "-i", "prompt=p", "--timeout", "0.5"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: timed out after 0.5 s waiting for prediction "),
        "{err}"
    );
    assert!(err.contains("was canceled"), "{err}");
    assert_short_error(&out);
    assert_eq!(cancels(&server), 1);

    // run --no-cancel: left running, and how to resume is said.
    let out = cli(&server, dir.path())
        .args([
            "run",
            "test/forever",
            "-i",
            "prompt=p",
            "--timeout",
            "0.5",
            "--no-cancel",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("timed out after 0.5 s waiting for prediction"),
        "{err}"
    );
    assert!(err.contains("replicate prediction wait "), "{err}");
    assert_eq!(cancels(&server), 1, "no cancel with --no-cancel");
    // --no-cancel means nothing without --timeout.
    cli(&server, dir.path())
        .args(["run", "test/forever", "--no-cancel"])
        .assert()
        .code(2);

    // run --stream: the stream is bounded too.
    let out = cli(&server, dir.path())
        .args([
            "run",
            "test/forever-text",
            "-i",
            "prompt=p",
            "--stream",
            "--timeout",
            "0.5",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out after 0.5 s"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cancels(&server), 2);

    // prediction wait: says what it waited for, never cancels.
    let p = create(&server, "test/forever");
    let out = cli(&server, dir.path())
        .args(["prediction", "wait", &p.id, "--timeout", "0.5"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "timed out after 0.5 s waiting for prediction {}",
            p.id
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("replicate prediction wait {}", p.id)),
        "{err}"
    );
    assert_eq!(cancels(&server), 2);

    // stream: the whole read is bounded.
    let p = create(&server, "test/forever-text");
    let out = cli(&server, dir.path())
        .args(["stream", &p.id, "--timeout", "0.5"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "timed out after 0.5 s streaming the output of prediction {}",
            p.id
        )),
        "{err}"
    );
    assert_eq!(cancels(&server), 2);

    for bad in ["0", "-1", "soon"] {
        cli(&server, dir.path())
            .args(["run", "test/forever", "--timeout", bad])
            .assert()
            .code(2);
    }
}

#[test]
fn errors_say_what_timed_out_and_where_a_redirect_pointed() {
    let server = fake();
    server.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/predictions/abc"),
        Fault::Redirect("http://elsewhere.invalid/v1/predictions/abc".into()),
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["prediction", "get", "abc"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("302"), "{err}");
    assert!(
        err.contains("http://elsewhere.invalid/v1/predictions/abc"),
        "{err}"
    );
    assert!(err.contains("base URL"), "{err}");
    assert_short_error(&out);

    // A timeout names what it was waiting for.
    server.set_model(
        "test/slow",
        ModelScript::succeed(Output::Json(json!(1))).processing_time(Duration::from_secs(60)),
    );
    let p = create(&server, "test/slow");
    let out = cli(&server, dir.path())
        .args(["prediction", "wait", &p.id, "--timeout", "0.2"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: timed out after 0.2 s waiting for prediction {} (last status: ",
            p.id
        )),
        "{err}"
    );
    assert_short_error(&out);
}

// ---------------------------------------------------------------------------------------------
// 8. Server text: inert, and never the token.

#[test]
fn server_text_cannot_drive_the_terminal() {
    let server = fake();
    let evil = "done\u{1b}]52;c;cHduZWQ=\u{7} \u{1b}[2J\u{9b}31m \u{202e}gpj.exe\rover";
    server.set_model(
        "test/evil",
        ModelScript::succeed(Output::Json(json!(evil)))
            .logs(["loading \u{1b}[2J", "step \u{1b}]0;title\u{7}"]),
    );
    server.set_model(
        "test/evil-fail",
        ModelScript::fail("boom \u{1b}[31mred\u{1b}[0m").logs(["\u{1b}[1A up"]),
    );
    server.set_model(
        "test/evil-stream",
        ModelScript::text(["a\u{1b}[2J", "b\u{7}"]),
    );
    let dir = tempfile::tempdir().expect("tempdir");

    let out = cli(&server, dir.path())
        .args(["run", "test/evil", "-i", "prompt=p"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_inert("stdout", &stdout(&out));
    assert_inert("stderr", &stderr(&out));
    assert!(
        stdout(&out).contains("done\\u{1b}]52;c;"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("loading \\u{1b}[2J"),
        "{}",
        stderr(&out)
    );

    let out = cli(&server, dir.path())
        .args(["run", "test/evil-fail", "-i", "prompt=p"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_inert("stderr", &stderr(&out));
    assert!(
        stderr(&out).contains("boom \\u{1b}[31mred"),
        "{}",
        stderr(&out)
    );

    let out = cli(&server, dir.path())
        .args(["run", "test/evil-stream", "-i", "prompt=p", "--stream"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a\\u{1b}[2Jb\\u{7}");

    let p = create(&server, "test/evil");
    cli(&server, dir.path())
        .args(["prediction", "wait", &p.id])
        .assert()
        .success();
    let out = cli(&server, dir.path())
        .args(["prediction", "get", &p.id])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_inert("summary", &stdout(&out));
    assert!(
        stdout(&out).contains("loading \\u{1b}[2J"),
        "{}",
        stdout(&out)
    );
    // JSON stays exact: the same string once decoded, with nothing raw in the text.
    for args in [
        &["prediction", "get", &p.id, "--json"][..],
        &["prediction", "list", "--json"],
        &["run", "test/evil", "-i", "prompt=p", "--json"],
    ] {
        let out = cli(&server, dir.path()).args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        let text = stdout(&out);
        assert_inert("JSON", &text);
        let v: Value = serde_json::from_str(&text).expect("valid JSON");
        let p = if v.is_array() { v[0].clone() } else { v };
        if p["status"] == "succeeded" {
            assert_eq!(p["output"], json!(evil), "{args:?}");
        }
    }
}

#[test]
fn the_token_is_never_printed_even_when_a_server_echoes_it() {
    let token = "r8_EchoedSecret123";
    let server = fake_with(Options {
        token: token.to_owned(),
        ..Options::default()
    });
    server.set_model(
        "test/echo",
        ModelScript::fail(format!("bad credentials: Bearer {token}"))
            .logs([format!("Authorization: Bearer {token}")]),
    );
    // The token split across two stream events.
    server.set_model(
        "test/echo-stream",
        ModelScript::text(["tok: r8_Echo", "edSecret123 done"]),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |out: &std::process::Output| {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(!all.contains(token), "{all}");
        assert!(!all.contains("EchoedSecret"), "{all}");
    };

    let out = cli(&server, dir.path())
        .args(["run", "test/echo", "-i", "prompt=p"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    check(&out);
    assert!(stderr(&out).contains("Bearer ***"), "{}", stderr(&out));

    let out = cli(&server, dir.path())
        .args(["run", "test/echo", "-i", "prompt=p", "--json"])
        .output()
        .expect("run");
    check(&out);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["error"], "bad credentials: Bearer ***");

    let p = create(&server, "test/echo");
    cli(&server, dir.path())
        .args(["prediction", "wait", &p.id])
        .assert()
        .code(1);
    for args in [
        &["prediction", "get", &p.id][..],
        &["prediction", "get", &p.id, "--json"],
        &["prediction", "list", "--json"],
        &["prediction", "wait", &p.id, "--json"],
    ] {
        let out = cli(&server, dir.path()).args(args).output().expect("run");
        check(&out);
    }

    let out = cli(&server, dir.path())
        .args(["run", "test/echo-stream", "-i", "prompt=p", "--stream"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    check(&out);
    assert_eq!(stdout(&out), "tok: *** done");
    let p = create(&server, "test/echo-stream");
    let out = cli(&server, dir.path())
        .args(["stream", &p.id])
        .output()
        .expect("run");
    check(&out);
    assert_eq!(stdout(&out), "tok: *** done");

    // An API error that echoes it.
    server.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/predictions/nope"),
        Fault::Status {
            status: 404,
            retry_after: None,
            body: Some(format!(
                r#"{{"title":"Not found","detail":"no such prediction for token {token}"}}"#
            )),
        },
    ));
    let out = cli(&server, dir.path())
        .args(["prediction", "get", "nope"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    check(&out);
    assert!(stderr(&out).contains("for token ***"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// 11. SIGTERM during a download.

#[cfg(unix)]
#[test]
fn sigterm_during_a_download_removes_the_partial_file_and_exits_130() {
    let base = Arc::new(Mutex::new(String::new()));
    let base_in = Arc::clone(&base);
    let server = RawServer::start(10, move |req, stream| {
        let base = base_in.lock().expect("base").clone();
        if req.method == "POST" {
            respond_json(
                stream,
                201,
                &json!({
                    "id": "dl1", "status": "succeeded", "model": "test/slow-file",
                    "input": {}, "output": format!("{base}/files/big.bin"),
                    "urls": {"get": format!("{base}/v1/predictions/dl1")}
                }),
            );
        } else if req.path() == "/files/big.bin" {
            drip(stream);
        } else {
            respond_json(stream, 404, &json!({"detail": "not found"}));
        }
    });
    *base.lock().expect("base") = server.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn(
        dir.path(),
        &server.base_url(),
        "r8_token",
        &[
            "run",
            "test/slow-file",
            // This server knows no model: the schema is not asked for.
            "--no-validate",
            "--output-dir",
            "out",
        ],
    );
    let out_dir = dir.path().join("out");
    let prefix = format!(".replicate-download-{}-", child.id());
    let partial = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&prefix) && n.ends_with(".part"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let start = Instant::now();
    while partial(&out_dir).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no partial download appeared"
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "it ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The shell's `kill`, which needs no kill binary.
    let killed = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_at_most(&mut child, Duration::from_secs(20));
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(partial(&out_dir).is_empty(), "{:?}", partial(&out_dir));
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("out")
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A 10 MB body sent 4 KiB every 50 ms (until the client goes away, or 60 s).
fn drip(stream: &mut TcpStream) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 10000000\r\nconnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = [7u8; 4096];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if stream
            .write_all(&chunk)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// 12. Local inputs: capped, special files refused.

/// A sparse file of `len` bytes.
fn sparse(path: &Path, len: u64) {
    let f = std::fs::File::create(path).expect("create");
    f.set_len(len).expect("set_len");
}

#[test]
fn local_inputs_are_capped_and_special_files_refused() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    #[cfg(unix)]
    {
        for args in [
            &[
                "run",
                "fake/json",
                "-i",
                "prompt=p",
                "--input-json",
                "/dev/zero",
            ][..],
            &[
                "run",
                "fake/json",
                "-i",
                "prompt=p",
                "-i",
                "data=@/dev/zero",
            ],
            &["files", "upload", "/dev/zero"],
        ] {
            let out = cli(&server, dir.path()).args(args).output().expect("run");
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("not a regular file"),
                "{}",
                stderr(&out)
            );
            assert_short_error(&out);
        }
    }
    sparse(&dir.path().join("huge.json"), 64 * 1024 * 1024 + 1);
    let out = cli(&server, dir.path())
        .args([
            "run",
            "fake/json",
            "-i",
            "prompt=p",
            "--input-json",
            "huge.json",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("64 MiB"), "{}", stderr(&out));
    sparse(&dir.path().join("huge.bin"), 100 * 1024 * 1024 + 1);
    let out = cli(&server, dir.path())
        .args([
            "run",
            "fake/json",
            "-i",
            "prompt=p",
            "-i",
            "weights=@huge.bin",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("100 MiB"), "{}", stderr(&out));
    assert_only_reads(&server);

    // `--input-json -` reads stdin.
    cli(&server, dir.path())
        .args(["run", "fake/json", "--input-json", "-"])
        .write_stdin(r#"{"prompt": "from stdin"}"#)
        .assert()
        .success();
    let (_, body) = the_create(&server);
    assert_eq!(body["input"], json!({"prompt": "from stdin"}));
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn verify_cmd(dir: &Path, timestamp: &str, signature: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_replicate"));
    cmd.current_dir(dir)
        .args(["webhook", "verify", "--secret", SECRET, "--id", "msg_1"])
        .args(["--timestamp", timestamp, "--signature", signature])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn webhook_verify_checks_its_arguments_before_reading_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    // stdin stays open and empty: only a check made before reading it can end the command.
    for (timestamp, signature, expected) in [
        ("1614265330", "garbage", "--signature"),
        ("1614265330", "v1,notbase64!", "--signature"),
        ("yesterday", SIGNATURE, "--timestamp"),
    ] {
        let mut child = verify_cmd(dir.path(), timestamp, signature)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take();
        let status = wait_at_most(&mut child, Duration::from_secs(20));
        drop(stdin);
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        assert_eq!(status.code(), Some(2), "{signature}: {err}");
        assert!(err.contains(expected), "{err}");
    }
    // A body over 32 MiB is refused.
    let big = dir.path().join("big.body");
    sparse(&big, 32 * 1024 * 1024 + 1);
    let out = verify_cmd(dir.path(), "1614265330", SIGNATURE)
        .stdin(std::fs::File::open(&big).expect("open"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("32 MiB"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// 16. --help and credentials in the environment.

#[test]
fn run_help_does_not_show_credentials_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["run", "--help"][..],
        &["--help"],
        &["prediction", "list", "--help"],
    ] {
        let out = bare(dir.path())
            .env("REPLICATE_BASE_URL", "http://alice:hunter2@host.example")
            .env("REPLICATE_API_TOKEN", "r8_help-secret")
            .args(args)
            .output()
            .expect("help");
        assert!(out.status.success());
        let help = format!("{}{}", stdout(&out), stderr(&out));
        assert!(help.contains("REPLICATE_BASE_URL"), "{help}");
        assert!(!help.contains("hunter2"), "{help}");
        assert!(!help.contains("alice"), "{help}");
        assert!(!help.contains("r8_help-secret"), "{help}");
    }
}

// ---------------------------------------------------------------------------------------------
// 21. The output directory: checked before the create; outputs still shown when saving fails.

#[test]
fn output_dir_is_checked_before_the_create() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("taken"), "a file").expect("write");
    let out = cli(&server, dir.path())
        .args([
            "run",
            "fake/urls",
            "-i",
            "prompt=p",
            "--output-dir",
            "taken",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
    assert_short_error(&out);
    assert!(server.requests().is_empty(), "nothing sent");
    // A missing one is created before the create, even for a text output.
    cli(&server, dir.path())
        .args([
            "run",
            "fake/text",
            "-i",
            "prompt=p",
            "--output-dir",
            "new/dir",
        ])
        .assert()
        .success();
    assert!(dir.path().join("new/dir").is_dir());
}

#[test]
fn when_saving_fails_the_output_urls_are_printed() {
    let server = fake();
    server.push_fault(
        FaultRule::new(Matcher::any().origin(Origin::Files), Fault::status(404)).times(100),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "fake/urls", "-i", "prompt=p", "--output-dir", "out"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let printed = stdout(&out);
    assert_eq!(printed.lines().count(), 3, "{printed}");
    assert!(
        printed.lines().all(|l| l.starts_with("http://")),
        "{printed}"
    );
    let err = stderr(&out);
    assert!(err.contains("succeeded"), "{err}");
    assert_short_error(&out);
}

// ---------------------------------------------------------------------------------------------
// 22. Integers stay exact; a key is given once.

#[test]
fn integers_stay_exact_and_a_key_is_given_once() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    cli(&server, dir.path())
        .args([
            "run",
            "fake/json",
            "-i",
            "prompt=p",
            "-i",
            "big=18446744073709551615",
            "-i",
            "low=-9223372036854775808",
        ])
        .assert()
        .success();
    let (create, _) = the_create(&server);
    let raw = String::from_utf8(create.body.clone()).expect("utf-8 body");
    assert!(raw.contains("18446744073709551615"), "{raw}");
    assert!(raw.contains("-9223372036854775808"), "{raw}");
    server.clear_requests();

    for (args, expected) in [
        (&["-i", "n=18446744073709551616"][..], "--input-json"),
        (&["-i", "n=-9223372036854775809"], "--input-json"),
        (&["-i", "text=a", "-i", "text=b"], "\"text\""),
    ] {
        let out = cli(&server, dir.path())
            .args(["run", "fake/json", "-i", "prompt=p"])
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(expected), "{}", stderr(&out));
        assert_short_error(&out);
    }
    assert_only_reads(&server);
}
