//! The commands that cover the rest of the API (hardware, models, collections, search,
//! trainings, deployments), `run --deployment`, `--cancel-after`, `--web`, chaining through
//! stdin and shell completions: each against the fake server, success and failure.

mod common;

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::raw::{RawServer, respond_json};
use common::*;
use replicate_fake::{FakeHandle, ModelScript, Options, RecordedRequest};
use serde_json::{Value, json};

/// Runs `replicate ARGS` against `server` in a fresh directory.
fn run(server: &FakeHandle, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    cli(server, dir.path()).args(args).output().expect("run")
}

/// Runs `replicate LINE` against `server`, the line split at whitespace into arguments.
fn run_words(server: &FakeHandle, line: &str) -> Output {
    let args: Vec<&str> = line.split_whitespace().collect();
    run(server, &args)
}

/// Runs `replicate ARGS` against `server` with `stdin`.
fn run_with_stdin(server: &FakeHandle, args: &[&str], stdin: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    cli(server, dir.path())
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("run")
}

/// The command succeeded; its stdout.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// The command exited with `code`, in 1 to 5 clean lines of error; its stderr.
fn failed(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
    assert_short_error(out);
    stderr(out)
}

/// stdout as one JSON document.
fn json_of(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).expect("one JSON document on stdout")
}

/// The API requests with this method whose path ends with `suffix`.
fn sent(server: &FakeHandle, method: &str, suffix: &str) -> Vec<RecordedRequest> {
    api_requests(server)
        .into_iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .collect()
}

/// Each command line (its words split at whitespace) is a usage error (exit 2), and nothing
/// reaches the API.
fn all_refused_locally(server: &FakeHandle, lines: &[&str]) {
    server.clear_requests();
    for line in lines {
        let out = run_words(server, line);
        assert_eq!(out.status.code(), Some(2), "{line}: {}", stderr(&out));
    }
    let sent = api_requests(server);
    assert!(sent.is_empty(), "{sent:#?}");
}

/// A fake where models and deployments the fake was not told about do not exist (404).
fn strict_fake() -> replicate_fake::BlockingFakeServer {
    fake_with(Options {
        unknown_models_exist: false,
        ..Options::default()
    })
}

// ---------------------------------------------------------------------------------------------
// hardware

#[test]
fn hardware_lists_the_skus_in_a_table_or_as_json() {
    let server = fake();
    let text = ok(&run(&server, &["hardware"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("cpu ") && lines[0].ends_with("  CPU"),
        "{text}"
    );
    // The names start in one column.
    let column = |l: &str| {
        l.find("  ")
            .map(|i| i + l[i..].len() - l[i..].trim_start().len())
    };
    let first = column(lines[0]);
    assert!(lines.iter().all(|l| column(l) == first), "{text}");
    assert!(
        text.contains("gpu-a100-large  Nvidia A100 (80GB) GPU"),
        "{text}"
    );

    let v = json_of(&run(&server, &["hardware", "--json"]));
    let skus: Vec<&str> = v
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|h| h["sku"].as_str())
        .collect();
    assert_eq!(skus, ["cpu", "gpu-t4", "gpu-a40-large", "gpu-a100-large"]);
}

#[test]
fn hardware_with_a_wrong_token_exits_3_and_without_one_exits_2() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare(dir.path())
        .args([
            "--base-url",
            &server.prefixed_base_url(),
            "--token",
            "wrong",
        ])
        .arg("hardware")
        .output()
        .expect("run");
    let err = failed(&out, 3);
    assert!(
        err.contains("401") && err.contains("check the API token"),
        "{err}"
    );
    let out = bare(dir.path())
        .args(["--base-url", &server.prefixed_base_url(), "hardware"])
        .output()
        .expect("run");
    failed(&out, 2);
}

// ---------------------------------------------------------------------------------------------
// model list | create | delete

#[test]
fn model_list_reads_every_page_as_it_arrives() {
    let server = fake_with(Options {
        page_size: 2,
        ..Options::default()
    });
    let v = json_of(&run(&server, &["model", "list", "--json"]));
    let names: Vec<String> = v
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["owner"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(names.len() > 4, "{names:?}");
    assert!(names.iter().any(|n| n == "fake/text"), "{names:?}");
    let pages = sent(&server, "GET", "/v1/models").len();
    assert_eq!(pages, names.len().div_ceil(2), "one request a page");

    let text = ok(&run(&server, &["model", "list"]));
    assert_eq!(text.lines().count(), names.len(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("fake/text ") && l.contains("public")),
        "{text}"
    );

    // Over --max-pages: exit 3 after the first page, the JSON array closed.
    let out = run(&server, &["model", "list", "--json", "--max-pages", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("a closed JSON array");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert!(stderr(&out).contains("--max-pages"), "{}", stderr(&out));
}

#[test]
fn model_create_sends_the_fields_and_shows_the_model() {
    let server = fake();
    let text = ok(&run(
        &server,
        &[
            "model",
            "create",
            "acme/new-model",
            "--hardware",
            "gpu-t4",
            "--visibility",
            "private",
            "--description",
            "Upscales\u{1b}[2J things",
        ],
    ));
    let creates = sent(&server, "POST", "/v1/models");
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].json(),
        Some(json!({
            "owner": "acme", "name": "new-model", "visibility": "private",
            "hardware": "gpu-t4", "description": "Upscales\u{1b}[2J things"
        }))
    );
    assert!(text.contains("model:           acme/new-model"), "{text}");
    assert!(text.contains("visibility:      private"), "{text}");
    // The server's text is printed inert.
    assert!(text.contains("Upscales\\u{1b}[2J things"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");

    let v = json_of(&run(&server, &["model", "get", "acme/new-model", "--json"]));
    assert_eq!(v["visibility"], "private");
    let v = json_of(&run_words(
        &server,
        "model create acme/public-one --hardware cpu --visibility public --json",
    ));
    assert_eq!(v["owner"], "acme");
    assert_eq!(v["visibility"], "public");
}

#[test]
fn model_create_failures() {
    let server = fake();
    // Refused by the API (an unknown SKU): exit 3 with its message.
    let out = run_words(
        &server,
        "model create acme/m --hardware gpu-h1000 --visibility public",
    );
    let err = failed(&out, 3);
    assert!(err.contains("422") && err.contains("gpu-h1000"), "{err}");
    // Taken: 409.
    ok(&run_words(
        &server,
        "model create acme/m --hardware cpu --visibility public",
    ));
    let out = run_words(
        &server,
        "model create acme/m --hardware cpu --visibility public",
    );
    assert!(failed(&out, 3).contains("409"));
    // Bad arguments: exit 2, nothing sent.
    all_refused_locally(
        &server,
        &[
            "model create acme/x --hardware cpu --visibility secret",
            "model create no-owner --hardware cpu --visibility public",
            "model create acme/x:v1 --hardware cpu --visibility public",
            "model create acme/x --visibility public",
        ],
    );
}

#[test]
fn model_delete_deletes_private_models_only() {
    let server = strict_fake();
    ok(&run_words(
        &server,
        "model create acme/gone --hardware cpu --visibility private",
    ));
    assert_eq!(
        ok(&run(&server, &["model", "delete", "acme/gone"])),
        "deleted acme/gone\n"
    );
    assert_eq!(sent(&server, "DELETE", "/v1/models/acme/gone").len(), 1);
    failed(&run(&server, &["model", "get", "acme/gone"]), 3);
    // Gone already: 404; a public model: 403.
    assert!(failed(&run(&server, &["model", "delete", "acme/gone"]), 3).contains("404"));
    let err = failed(&run(&server, &["model", "delete", "fake/text"]), 3);
    assert!(err.contains("403") && err.contains("private"), "{err}");
    assert_eq!(
        run(&server, &["model", "delete", "nope"]).status.code(),
        Some(2)
    );
}

// ---------------------------------------------------------------------------------------------
// collection list | get, search

#[test]
fn collections_list_and_get() {
    let server = fake_with(Options {
        page_size: 2,
        ..Options::default()
    });
    let text = ok(&run(&server, &["collection", "list"]));
    let slugs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(slugs.len(), 3, "{text}");
    assert!(slugs.contains(&"language-models"), "{text}");
    assert_eq!(
        sent(&server, "GET", "/v1/collections").len(),
        2,
        "two pages"
    );
    let v = json_of(&run(&server, &["collection", "list", "--json"]));
    assert_eq!(v.as_array().map(Vec::len), Some(3));

    let text = ok(&run(&server, &["collection", "get", "language-models"]));
    assert!(text.contains("collection:   language-models"), "{text}");
    assert!(text.contains("models (2):"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("fake/text-multiline")),
        "{text}"
    );
    let v = json_of(&run(
        &server,
        &["collection", "get", "language-models", "--json"],
    ));
    assert_eq!(v["slug"], "language-models");
    assert_eq!(v["models"].as_array().map(Vec::len), Some(2));

    let err = failed(
        &run(&server, &["collection", "get", "no-such-collection"]),
        3,
    );
    assert!(err.contains("404"), "{err}");
}

#[test]
fn search_finds_models_collections_and_pages() {
    let server = fake();
    let text = ok(&run(&server, &["search", "text", "--limit", "1"]));
    let searches = sent(&server, "GET", "/v1/search");
    assert_eq!(searches.len(), 1);
    let query = searches[0].query.clone().unwrap_or_default();
    assert!(
        query.contains("query=text") && query.contains("limit=1"),
        "{query}"
    );
    assert!(text.contains("models (1):"), "{text}");
    assert!(text.contains("collections ("), "{text}");

    let v = json_of(&run(&server, &["search", "fine-tune", "--json"]));
    assert_eq!(v["query"], "fine-tune");
    assert!(
        v["pages"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["href"] == "/docs/guides/fine-tune")),
        "{v}"
    );
    // Nothing found: exit 0, said on stderr.
    let out = run(&server, &["search", "zzzz-nothing"]);
    assert_eq!(ok(&out), "");
    assert!(stderr(&out).contains("Nothing found"), "{}", stderr(&out));

    // Bad arguments: exit 2, nothing sent.
    all_refused_locally(&server, &["search x --limit 0", "search"]);
    // A blank query (one argument) is refused before it is sent, too.
    assert_eq!(run(&server, &["search", "  "]).status.code(), Some(2));
    assert!(api_requests(&server).is_empty());
}

// ---------------------------------------------------------------------------------------------
// training create | get | list | cancel | wait

#[test]
fn training_create_then_wait_prints_the_new_version() {
    let server = fake();
    let version = server.model_version("fake/text");
    ok(&run_words(
        &server,
        "model create acme/tuned --hardware cpu --visibility private",
    ));
    let trained = format!("fake/text:{version}");
    let out = run_words(
        &server,
        &format!(
            "training create {trained} --destination acme/tuned -i steps=100 -i lr=0.5 --webhook https://example.com/hook --json"
        ),
    );
    let t = json_of(&out);
    let id = t["id"].as_str().expect("an id").to_owned();
    let creates = sent(&server, "POST", "/trainings");
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].path,
        format!("/replicate/v1/models/fake/text/versions/{version}/trainings")
    );
    assert_eq!(
        creates[0].json(),
        Some(json!({
            "destination": "acme/tuned", "input": {"steps": 100, "lr": 0.5},
            "webhook": "https://example.com/hook"
        }))
    );
    assert!(stderr(&out).contains(&format!("Created training {id}")));

    let text = ok(&run(&server, &["training", "wait", &id]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("version:  acme/tuned:"), "{text}");
    assert!(
        lines[1].starts_with("weights:  http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        !sent(&server, "GET", &format!("/v1/trainings/{id}")).is_empty(),
        "polled the training"
    );
    // The new version is on the destination.
    let versions = json_of(&run(
        &server,
        &["model", "versions", "acme/tuned", "--json"],
    ));
    assert_eq!(versions.as_array().map(Vec::len), Some(1));

    // --wait in one go.
    let text = ok(&run_words(
        &server,
        &format!("training create {trained} --destination acme/tuned --wait"),
    ));
    assert!(text.starts_with("version:  acme/tuned:"), "{text}");
}

#[test]
fn training_create_failures() {
    let server = strict_fake();
    let version = server.model_version("fake/fail");
    // A training that fails: exit 1, named.
    let out = run_words(
        &server,
        &format!("training create fake/fail:{version} --destination fake/text --wait"),
    );
    let err = failed(&out, 1);
    assert!(err.contains("training ") && err.contains("failed"), "{err}");
    // A destination that does not exist: the API's 422, exit 3.
    let v = server.model_version("fake/text");
    let out = run_words(
        &server,
        &format!("training create fake/text:{v} --destination acme/nowhere"),
    );
    assert!(failed(&out, 3).contains("422"));
    // Bad arguments: exit 2, nothing sent.
    all_refused_locally(
        &server,
        &[
            "training create fake/text --destination fake/text",
            &format!("training create fake/text:{v} --destination fake/text:x"),
            &format!("training create fake/text:{v} --destination fake/text --webhook ftp://x/y"),
            &format!("training create fake/text:{v} --destination fake/text -i oops"),
            &format!("training create fake/text:{v} --destination fake/text --timeout 5"),
        ],
    );
}

#[test]
fn training_get_list_cancel_and_wait() {
    let server = fake();
    server.set_model(
        "test/long-train",
        ModelScript::default().processing_time(Duration::from_secs(3600)),
    );
    let version = server.model_version("test/long-train");
    let t = json_of(&run_words(
        &server,
        &format!("training create test/long-train:{version} --destination fake/text --json"),
    ));
    let id = t["id"].as_str().expect("id").to_owned();

    let text = ok(&run(&server, &["training", "get", &id]));
    assert!(text.contains(&format!("id:          {id}")), "{text}");
    assert!(text.contains("model:       test/long-train"), "{text}");
    assert_eq!(
        json_of(&run(&server, &["training", "get", &id, "--json"]))["id"],
        id.as_str()
    );
    let listed = json_of(&run(&server, &["training", "list", "--json"]));
    assert_eq!(listed[0]["id"], id.as_str());
    let text = ok(&run(&server, &["training", "list"]));
    assert!(
        text.starts_with(&id) && text.contains("test/long-train"),
        "{text}"
    );

    // A wait that times out: exit 3; the training keeps running.
    let err = failed(
        &run(&server, &["training", "wait", &id, "--timeout", "0.3"]),
        3,
    );
    assert!(
        err.contains(&format!("timed out after 0.3 s waiting for training {id}")),
        "{err}"
    );
    assert!(
        err.contains(&format!("replicate training wait {id}")),
        "{err}"
    );
    assert!(
        sent(&server, "POST", "/cancel").is_empty(),
        "never canceled"
    );

    assert_eq!(
        ok(&run(&server, &["training", "cancel", &id])),
        format!("{id}: canceled\n")
    );
    assert_eq!(
        sent(&server, "POST", &format!("/v1/trainings/{id}/cancel")).len(),
        1
    );
    let err = failed(&run(&server, &["training", "wait", &id]), 1);
    assert!(
        err.contains(&format!("training {id} was canceled")),
        "{err}"
    );

    // Unknown ids: 404, exit 3.
    for cmd in ["get", "cancel", "wait"] {
        let err = failed(&run(&server, &["training", cmd, "no-such-training"]), 3);
        assert!(err.contains("404"), "{cmd}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// deployment list | get | create | update | delete, run --deployment

#[test]
fn deployment_lifecycle() {
    let server = strict_fake();
    let version = server.model_version("fake/text");
    let text = ok(&run_words(
        &server,
        &format!(
            "deployment create my-text --model fake/text --version {version} --hardware gpu-t4 --min-instances 0 --max-instances 2"
        ),
    ));
    let creates = sent(&server, "POST", "/v1/deployments");
    assert_eq!(
        creates[0].json(),
        Some(json!({
            "name": "my-text", "model": "fake/text", "version": version,
            "hardware": "gpu-t4", "min_instances": 0, "max_instances": 2
        }))
    );
    assert!(text.contains("deployment:     fake/my-text"), "{text}");
    assert!(text.contains("release:        1"), "{text}");
    assert!(text.contains("instances:      0-2"), "{text}");

    let v = json_of(&run_words(
        &server,
        "deployment update fake/my-text --max-instances 3 --hardware cpu --json",
    ));
    assert_eq!(v["current_release"]["number"], 2);
    assert_eq!(v["current_release"]["configuration"]["max_instances"], 3);
    let updates = sent(&server, "PATCH", "/v1/deployments/fake/my-text");
    assert_eq!(
        updates[0].json(),
        Some(json!({"hardware": "cpu", "max_instances": 3}))
    );

    let text = ok(&run(&server, &["deployment", "get", "fake/my-text"]));
    assert!(
        text.contains("hardware:       cpu") && text.contains("release:        2"),
        "{text}"
    );
    let text = ok(&run(&server, &["deployment", "list"]));
    assert!(
        text.starts_with("fake/my-text ") && text.contains("release 2"),
        "{text}"
    );
    let v = json_of(&run(&server, &["deployment", "list", "--json"]));
    assert_eq!(v[0]["name"], "my-text");

    // A prediction on it.
    let out = ok(&run(
        &server,
        &["run", "--deployment", "fake/my-text", "-i", "prompt=hi"],
    ));
    assert_eq!(out, "Hello world!\n");
    let (create, body) = the_create(&server);
    assert_eq!(
        create.path,
        "/replicate/v1/deployments/fake/my-text/predictions"
    );
    assert_eq!(body, json!({"input": {"prompt": "hi"}}));

    assert_eq!(
        ok(&run(&server, &["deployment", "delete", "fake/my-text"])),
        "deleted fake/my-text\n"
    );
    assert!(failed(&run(&server, &["deployment", "get", "fake/my-text"]), 3).contains("404"));
    let err = failed(&run(&server, &["run", "--deployment", "fake/my-text"]), 3);
    assert!(err.contains("404"), "{err}");
}

#[test]
fn deployment_failures() {
    let server = strict_fake();
    let version = server.model_version("fake/text");
    let create = |extra: &[&str]| {
        let mut args = vec![
            "deployment",
            "create",
            "d1",
            "--model",
            "fake/text",
            "--hardware",
            "gpu-t4",
            "--min-instances",
            "1",
            "--max-instances",
            "2",
        ];
        args.extend_from_slice(extra);
        run(&server, &args)
    };
    // Refused by the API: a version of another model.
    let err = failed(&create(&["--version", &"0".repeat(64)]), 3);
    assert!(
        err.contains("422") && err.contains("not a version"),
        "{err}"
    );
    ok(&create(&["--version", &version]));
    assert!(failed(&create(&["--version", &version]), 3).contains("409"));
    let err = failed(
        &run(
            &server,
            &["deployment", "update", "fake/d1", "--version", "nope"],
        ),
        3,
    );
    assert!(err.contains("422"), "{err}");
    assert!(
        failed(
            &run(
                &server,
                &["deployment", "update", "fake/none", "--min-instances", "1"]
            ),
            3
        )
        .contains("404")
    );
    assert!(failed(&run(&server, &["deployment", "delete", "fake/none"]), 3).contains("404"));

    // Bad arguments: exit 2, nothing sent.
    all_refused_locally(
        &server,
        &[
            "deployment update fake/d1",
            "deployment update fake/d1 --min-instances 3 --max-instances 2",
            "deployment create d2 --model fake/text --version v --hardware cpu --min-instances 2 --max-instances 1",
            "deployment create d2 --model fake --version v --hardware cpu --min-instances 0 --max-instances 1",
            "deployment create d2 --model fake/text --version v --hardware cpu --min-instances -1 --max-instances 1",
            "deployment get no-slash",
            "run fake/text --deployment fake/d1",
            "run --deployment fake/d1:v1",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// run --cancel-after

#[test]
fn cancel_after_is_sent_as_the_header() {
    let server = fake();
    for (given, header) in [("1h30m", "1h30m"), ("90", "1m30s"), ("5s", "5s")] {
        server.clear_requests();
        ok(&run(
            &server,
            &[
                "run",
                "fake/text",
                "-i",
                "prompt=x",
                "--cancel-after",
                given,
            ],
        ));
        let (create, _) = the_create(&server);
        assert_eq!(create.header("cancel-after"), Some(header), "{given}");
    }
    server.clear_requests();
    ok(&run(&server, &["run", "fake/text", "-i", "prompt=x"]));
    assert_eq!(the_create(&server).0.header("cancel-after"), None);
}

#[test]
fn cancel_after_below_5s_or_malformed_is_refused_before_anything_is_sent() {
    let server = fake();
    for bad in ["4s", "0", "5x", "1m1h", "", "-5s", "1.5s"] {
        let flag = format!("--cancel-after={bad}");
        let out = run(&server, &["run", "fake/text", "-i", "prompt=x", &flag]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--cancel-after"), "{}", stderr(&out));
    }
    assert!(api_requests(&server).is_empty());
}

// ---------------------------------------------------------------------------------------------
// --web

#[test]
fn web_prints_the_prediction_page() {
    let server = fake();
    let out = run(
        &server,
        &["run", "fake/text", "-i", "prompt=x", "--web", "--json"],
    );
    let p = json_of(&out);
    let id = p["id"].as_str().expect("id");
    let url = format!("https://replicate.com/p/{id}");
    // stdout keeps the results (here, the JSON); the page is on stderr.
    assert!(
        stderr(&out).contains(&format!("Web: {url}")),
        "{}",
        stderr(&out)
    );

    let printed = ok(&run(&server, &["prediction", "get", id, "--web"]));
    assert_eq!(printed, format!("{url}\n"));
    assert_eq!(
        run(&server, &["prediction", "get", id, "--web", "--json"])
            .status
            .code(),
        Some(2)
    );
    assert!(failed(&run(&server, &["prediction", "get", "nope", "--web"]), 3).contains("404"));
}

#[test]
fn web_refuses_a_url_that_is_not_clean_http() {
    let web = Arc::new(Mutex::new(Value::Null));
    let web_in = Arc::clone(&web);
    let server = RawServer::start(10, move |req, stream| {
        let id = req.path().rsplit('/').next().unwrap_or("").to_owned();
        let web = web_in.lock().expect("web").clone();
        respond_json(
            stream,
            200,
            &json!({"id": id, "status": "succeeded", "output": "x", "urls": {"web": web}}),
        );
    });
    let dir = tempfile::tempdir().expect("tempdir");
    // `prediction get ID --web` with the server's urls.web set to `value`.
    let get_web = |value: Value| {
        *web.lock().expect("web") = value;
        bare(dir.path())
            .args(["--base-url", &server.base_url(), "--token", "r8_t"])
            .args(["prediction", "get", "p1", "--web"])
            .output()
            .expect("run")
    };
    for bad in [
        "javascript:alert(1)",
        "https://x.example/p/\u{1b}]52;c;aGk=\u{7}",
        "file:///etc/passwd",
    ] {
        let out = get_web(json!(bad));
        let err = failed(&out, 3);
        assert!(err.contains("web URL"), "{err}");
        assert!(out.stdout.is_empty(), "nothing printed: {}", stdout(&out));
        assert!(!err.contains('\u{1b}'), "{err}");
    }
    let out = get_web(Value::Null);
    assert!(failed(&out, 3).contains("no web page"));
}

// ---------------------------------------------------------------------------------------------
// Chaining: -i placeholders from the prediction JSON on stdin

#[test]
fn placeholders_take_values_from_the_prediction_on_stdin() {
    let server = fake();
    // A model that takes any input (the derived schemas of the fake's models ask for a prompt).
    server.set_model(
        "test/any-input",
        ModelScript::default().openapi_schema(json!({
            "openapi": "3.0.2",
            "components": {"schemas": {
                "Input": {"type": "object", "title": "Input", "properties": {}},
                "Output": {"title": "Output"}
            }}
        })),
    );
    let first = ok(&run_words(
        &server,
        "run fake/urls -i prompt=x --json --no-download",
    ));
    let p: Value = serde_json::from_str(&first).expect("JSON");
    let id = p["id"].as_str().expect("id").to_owned();
    let urls = p["output"].clone();
    server.clear_requests();

    ok(&run_with_stdin(
        &server,
        &[
            "run",
            "test/any-input",
            "-i",
            "image={{.output[1]}}",
            "-i",
            "all={{ .output }}",
            "-i",
            "note=from {{.id}}, {{not a placeholder}}",
            "-i",
            "plain=1",
        ],
        &first,
    ));
    let (_, body) = the_create(&server);
    assert_eq!(
        body["input"],
        json!({
            "image": urls[1], "all": urls,
            "note": format!("from {id}, {{{{not a placeholder}}}}"), "plain": 1
        })
    );

    // Trainings take them too.
    server.clear_requests();
    let version = server.model_version("fake/text");
    ok(&run_with_stdin(
        &server,
        &[
            "training",
            "create",
            &format!("fake/text:{version}"),
            "--destination",
            "fake/text",
            "-i",
            "data={{.output[0]}}",
        ],
        &first,
    ));
    let body = sent(&server, "POST", "/trainings")[0].json().expect("JSON");
    assert_eq!(body["input"], json!({"data": urls[0]}));
}

#[test]
fn unresolvable_placeholders_exit_2_with_nothing_sent() {
    let server = fake();
    let prediction = r#"{"id": "p1", "status": "failed", "output": null}"#;
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["-i", "x={{.output}}"],
            prediction,
            "no .output (status: failed)",
        ),
        (&["-i", "x={{.id[3]}}"], prediction, "no .id[3]"),
        (&["-i", "x={{.output[0]}}"], "", "stdin is empty"),
        (&["-i", "x={{.id}}"], "not json", "not JSON"),
        (&["-i", "x={{.id}}"], "[1, 2]", "one object"),
        (&["-i", "x={{.output[}}"], prediction, "expected .field"),
    ];
    for (args, stdin, expected) in cases {
        let mut all = vec!["run", "fake/text"];
        all.extend_from_slice(args);
        let err = failed(&run_with_stdin(&server, &all, stdin), 2);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // stdin cannot feed both.
    let out = run_with_stdin(
        &server,
        &["run", "fake/text", "--input-json", "-", "-i", "x={{.id}}"],
        prediction,
    );
    assert!(failed(&out, 2).contains("--input-json -"));
    assert!(
        api_requests(&server).is_empty(),
        "{:#?}",
        api_requests(&server)
    );

    // Without a placeholder, stdin is not read: a run with garbage on stdin is fine.
    ok(&run_with_stdin(
        &server,
        &["run", "fake/text", "-i", "prompt={{y}}"],
        "garbage",
    ));
}

// ---------------------------------------------------------------------------------------------
// completions

#[test]
fn completions_for_each_shell_need_no_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shell, marker) in [
        ("bash", "_replicate()"),
        ("zsh", "#compdef replicate"),
        ("fish", "complete -c replicate"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = bare(dir.path())
            .args(["completions", shell])
            .output()
            .expect("run");
        let script = ok(&out);
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..script.len().min(300)]
        );
        for sub in ["deployment", "training", "hardware", "completions"] {
            assert!(script.contains(sub), "{shell} lacks {sub}");
        }
    }
    let out = bare(dir.path())
        .args(["completions", "tcsh"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
