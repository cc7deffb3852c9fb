//! Bad input and failures: exit codes 1, 2 and 3, short messages, nothing sent when nothing
//! should be.

mod common;

use common::*;
use replicate_fake::{Fault, FaultRule, Matcher, Options};

#[test]
fn help_documents_the_exit_codes_and_the_missing_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare(dir.path()).arg("--help").output().expect("help");
    assert!(out.status.success());
    let help = stdout(&out);
    assert!(help.contains("Exit codes"), "{help}");
    assert!(help.contains("no API token"), "{help}");
}

#[test]
fn unknown_flags_and_commands_are_usage_errors() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "fake/text", "--frobnicate"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--frobnicate"));
    cli(&server, dir.path())
        .arg("launch-rockets")
        .assert()
        .code(2);
    cli(&server, dir.path()).arg("run").assert().code(2);
    assert!(server.requests().is_empty());
}

#[test]
fn malformed_input_is_a_usage_error_and_nothing_is_sent() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["prompt", "=value", ""] {
        let out = cli(&server, dir.path())
            .args(["run", "fake/text", "-i", "ok=1", "-i", bad])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "-i {bad:?}");
        assert_short_error(&out);
    }
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[test]
fn an_unreadable_file_is_a_usage_error_and_nothing_is_sent() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    // Without a schema (`tests/schema.rs` has the files of a schema's file inputs), every
    // `@path` is a file, read before anything is sent.
    let out = cli(&server, dir.path())
        .args([
            "run",
            "fake/text",
            "--no-validate",
            "-i",
            "image=@missing.png",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.png"));
    assert_short_error(&out);
    // A directory is not a file either.
    cli(&server, dir.path())
        .args(["run", "fake/text", "--no-validate", "-i", "image=@."])
        .assert()
        .code(2);
    // Nor is a missing or malformed --input-json.
    cli(&server, dir.path())
        .args(["run", "fake/text", "--input-json", "nope.json"])
        .assert()
        .code(2);
    std::fs::write(dir.path().join("list.json"), "[1, 2]").expect("write");
    cli(&server, dir.path())
        .args(["run", "fake/text", "--input-json", "list.json"])
        .assert()
        .code(2);
    assert!(server.requests().is_empty());
}

#[test]
fn wait_must_be_1_to_60_seconds() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["0", "61", "x"] {
        cli(&server, dir.path())
            .args(["run", "fake/text", "--wait", bad])
            .assert()
            .code(2);
    }
    assert!(server.requests().is_empty());
}

#[test]
fn a_malformed_model_reference_is_a_usage_error() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["not a model", "owner/", "a/b:"] {
        cli(&server, dir.path()).args(["run", bad]).assert().code(2);
    }
    cli(&server, dir.path())
        .args(["model", "get", "owner/name:v1"])
        .assert()
        .code(2);
    assert!(server.requests().is_empty());
}

#[test]
fn a_missing_token_is_a_usage_error_and_nothing_is_sent() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare(dir.path())
        .args([
            "--base-url",
            &server.prefixed_base_url(),
            "run",
            "fake/text",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("REPLICATE_API_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert_short_error(&out);
    // An empty token is no token.
    bare(dir.path())
        .env("REPLICATE_API_TOKEN", "")
        .args(["--base-url", &server.prefixed_base_url(), "account"])
        .assert()
        .code(2);
    assert!(server.requests().is_empty());
}

#[test]
fn a_wrong_token_exits_3_without_printing_it() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "r8_wrong-and-secret-token";
    for args in [
        &["run", "fake/text"][..],
        &["account"],
        &["prediction", "list"],
    ] {
        let out = bare(dir.path())
            .args(["--base-url", &server.prefixed_base_url(), "--token", secret])
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("401"), "{err}");
        assert_short_error(&out);
        assert!(!err.contains(secret) && !stdout(&out).contains(secret));
    }
    // The token is not shown in --help either, even when it comes from the environment.
    let out = bare(dir.path())
        .env("REPLICATE_API_TOKEN", secret)
        .arg("--help")
        .output()
        .expect("help");
    assert!(!stdout(&out).contains(secret));
}

#[test]
fn an_unknown_model_exits_3() {
    let server = fake_with(Options {
        unknown_models_exist: false,
        ..Options::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "nobody/nothing", "-i", "prompt=x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert_short_error(&out);
    // An unknown version is a 422.
    let out = cli(&server, dir.path())
        .args(["run", "nobody/nothing:0123abcd"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert_short_error(&out);
    cli(&server, dir.path())
        .args(["prediction", "get", "doesnotexist"])
        .assert()
        .code(3);
}

#[test]
fn failed_canceled_and_aborted_predictions_exit_1() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    for (model, expected) in [
        ("fake/fail", "Fake failure: the model raised an exception"),
        ("fake/cancel", "canceled"),
        ("fake/abort", "aborted"),
    ] {
        let out = cli(&server, dir.path())
            .args(["run", model, "-i", "prompt=p"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{model}");
        let err = stderr(&out);
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: ") && last.contains(expected),
            "{model}: {err}"
        );
        assert_clean(&err);
        assert!(stdout(&out).is_empty(), "{model}: no output on stdout");
    }
}

#[test]
fn a_lost_create_response_exits_3_and_is_not_sent_again() {
    let server = fake();
    server.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::ResetAfterRead,
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "fake/text", "-i", "prompt=p"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("may have been created"), "{err}");
    assert_short_error(&out);
    assert_eq!(creates(&server).len(), 1, "exactly one create");
    // The server did create it.
    assert_eq!(server.prediction_count(), 1);
}

#[test]
fn an_unreachable_server_exits_3() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare(dir.path())
        .args([
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            "t",
        ])
        .args(["prediction", "get", "abc"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert_short_error(&out);
    // A base URL that is not one is a usage error.
    bare(dir.path())
        .args(["--base-url", "ftp://example.com", "--token", "t", "account"])
        .assert()
        .code(2);
}

#[test]
fn bad_file_arguments_are_usage_errors() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), "hello").expect("write");
    for meta in ["not json", "[1]"] {
        cli(&server, dir.path())
            .args(["files", "upload", "a.txt", "--metadata", meta])
            .assert()
            .code(2);
    }
    cli(&server, dir.path())
        .args(["files", "upload", "missing.txt"])
        .assert()
        .code(2);
    assert!(server.requests().is_empty());
}
