//! `replicate model schema`, and `replicate run` typing and checking its input by the model's
//! schema: coercion, validation failures (exit 2, one line per field, nothing created) and
//! `--no-validate`.

mod common;

use std::path::Path;

use common::*;
use replicate_fake::{FLUX_SCHNELL_VERSION, FakeHandle, ModelScript, Options, Output};
use replicate_protocol::schema::InputSchema;
use serde_json::{Value, json};

/// A schema fixture of `fixtures/schemas`.
fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/schemas")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("a schema fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// Serves `doc` as the schema of the model `name`.
fn serve(server: &FakeHandle, name: &str, doc: Value) {
    server.set_model(
        name,
        ModelScript::succeed(Output::Json(json!("done"))).openapi_schema(doc),
    );
}

/// The fake with the fixture `synthetic-flux-schnell.json` as `test/flux` and `cog-paths.json`
/// as `test/paths`.
fn typed_fake() -> replicate_fake::BlockingFakeServer {
    let server = fake();
    serve(&server, "test/flux", fixture("synthetic-flux-schnell.json"));
    serve(&server, "test/paths", fixture("cog-paths.json"));
    server
}

fn run_ok(server: &FakeHandle, dir: &Path, args: &[&str]) -> std::process::Output {
    let out = cli(server, dir).args(args).output().expect("run");
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

/// The input of the one create received.
fn sent_input(server: &FakeHandle) -> Value {
    the_create(server).1["input"].clone()
}

/// Exit 2, and nothing created nor uploaded.
fn refused(server: &FakeHandle, dir: &Path, args: &[&str]) -> String {
    let out = cli(server, dir).args(args).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    assert!(creates(server).is_empty(), "nothing created");
    assert_only_reads(server);
    assert_clean(&stderr(&out));
    stderr(&out)
}

// ---------------------------------------------------------------------------------------------
// model schema

#[test]
fn model_schema_prints_the_inputs_in_order_and_the_output_of_the_latest_version() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_ok(
        &server,
        dir.path(),
        &["model", "schema", "black-forest-labs/flux-schnell"],
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "model    black-forest-labs/flux-schnell",
        "{text}"
    );
    assert_eq!(
        lines[1],
        format!("version  {FLUX_SCHNELL_VERSION}"),
        "{text}"
    );
    let header = lines
        .iter()
        .position(|l| l.trim_start().starts_with("NAME "))
        .expect("a header");
    for column in ["TYPE", "DEFAULT", "CONSTRAINTS", "DESCRIPTION"] {
        assert!(lines[header].contains(column), "{text}");
    }
    // The first input is the prompt, required.
    let prompt = lines[header + 1];
    assert!(prompt.trim_start().starts_with("prompt "), "{text}");
    assert!(
        prompt.contains("string") && prompt.contains("required"),
        "{text}"
    );
    assert!(text.contains("output: an array of file (URI)"), "{text}");
    // The model, then nothing else: the latest version came with the model.
    let api = api_requests(&server);
    assert_eq!(api.len(), 1, "{api:#?}");
    assert_eq!(
        api[0].path,
        "/replicate/v1/models/black-forest-labs/flux-schnell"
    );
}

#[test]
fn model_schema_json_describes_the_schema_in_a_stable_shape() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_ok(
        &server,
        dir.path(),
        &[
            "model",
            "schema",
            "black-forest-labs/flux-schnell",
            "--json",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["model"], "black-forest-labs/flux-schnell");
    assert_eq!(v["version"], FLUX_SCHNELL_VERSION);
    let inputs = v["input"].as_array().expect("inputs");
    assert_eq!(inputs[0]["name"], "prompt");
    assert_eq!(inputs[0]["type"], "string");
    assert_eq!(inputs[0]["required"], true);
    assert_eq!(v["output"]["shape"], "array");
    assert_eq!(v["output"]["items"]["file"], true);
    assert_eq!(v["training_input"], Value::Null);
    // Every input has the same keys.
    let keys = |f: &Value| f.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>());
    assert!(inputs.iter().all(|f| keys(f) == keys(&inputs[0])), "{v:#}");
}

#[test]
fn model_schema_reads_every_fixture_as_the_protocol_does() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/schemas");
    let mut seen = 0;
    for entry in std::fs::read_dir(&fixtures).expect("fixtures").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".json") else {
            continue;
        };
        let doc = fixture(&file);
        let model = format!("test/{stem}");
        serve(&server, &model, doc.clone());
        let out = run_ok(&server, dir.path(), &["model", "schema", &model, "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let names: Vec<&str> = v["input"]
            .as_array()
            .expect("inputs")
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        let expected = InputSchema::from_openapi(&doc).expect("an Input");
        let expected: Vec<&str> = expected.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, expected, "{file}");
        assert!(v["output"].is_object(), "{file}: {v:#}");
        // And the table, for the same version.
        let text = stdout(&run_ok(&server, dir.path(), &["model", "schema", &model]));
        assert!(text.contains("inputs ("), "{file}: {text}");
        assert!(text.contains("output: "), "{file}: {text}");
        seen += 1;
    }
    assert!(seen >= 9, "{seen} fixtures");
}

#[test]
fn model_schema_shows_enums_files_ranges_iterators_objects_and_trainings() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, file) in [
        ("test/flux", "synthetic-flux-schnell.json"),
        ("test/whisper", "synthetic-whisper.json"),
        ("test/llama", "synthetic-llama-3-instruct.json"),
        ("test/trainer", "synthetic-lora-trainer.json"),
        ("test/paths", "cog-paths.json"),
    ] {
        serve(&server, name, fixture(file));
    }
    let show = |model: &str| stdout(&run_ok(&server, dir.path(), &["model", "schema", model]));
    let row = |text: &str, name: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name} in\n{text}"))
            .to_owned()
    };

    let flux = show("test/flux");
    let order: Vec<&str> = flux
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("NAME "))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // In x-order (`model_schema_reads_every_fixture_as_the_protocol_does` holds the whole
    // order against the protocol's).
    assert_eq!(order.len(), 10, "{flux}");
    assert_eq!(order.first(), Some(&"prompt"), "{flux}");
    assert_eq!(order[4], "seed", "x-order 4: {flux}");
    assert_eq!(order.last(), Some(&"megapixels"), "{flux}");
    let aspect = row(&flux, "aspect_ratio");
    assert!(aspect.contains(r#""1:1""#), "{aspect}");
    assert!(aspect.contains(r#"one of "1:1", "16:9""#), "{aspect}");
    assert!(row(&flux, "num_outputs").contains("1 to 4"), "{flux}");
    assert!(
        row(&flux, "megapixels").contains(r#"one of "1", "0.25""#),
        "{flux}"
    );

    let whisper = show("test/whisper");
    let audio = row(&whisper, "audio");
    assert!(
        audio.contains("file (URI)") && audio.contains("required") && audio.contains("@path"),
        "{audio}"
    );
    assert!(whisper.contains("output: an object with"), "{whisper}");
    // The output's properties, after the inputs.
    let output = whisper.split("output: ").nth(1).expect("the output");
    assert!(
        row(output, "transcription").contains("required"),
        "{whisper}"
    );
    assert!(!row(output, "segments").contains("required"), "{whisper}");

    let llama = show("test/llama");
    assert!(
        llama.contains("output: an iterator of string (streamed; concatenate"),
        "{llama}"
    );

    let trainer = show("test/trainer");
    assert!(trainer.contains("training inputs ("), "{trainer}");
    assert!(row(&trainer, "hf_token").contains("secret"), "{trainer}");
    assert!(row(&trainer, "learning_rate").contains("> 0"), "{trainer}");
    assert!(trainer.contains("training output: an object"), "{trainer}");

    let paths = show("test/paths");
    assert!(row(&paths, "ps").contains("URLs or @path"), "{paths}");
}

#[test]
fn model_schema_of_a_pinned_version_reads_that_version() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let version = server.model_version("fake/text");
    let model = format!("fake/text:{version}");
    let out = run_ok(&server, dir.path(), &["model", "schema", &model, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["version"], version);
    let api = api_requests(&server);
    assert_eq!(api.len(), 1, "{api:#?}");
    assert_eq!(
        api[0].path,
        format!("/replicate/v1/models/fake/text/versions/{version}")
    );
}

#[test]
fn model_schema_of_an_unknown_model_or_version_fails() {
    let server = fake_with(Options {
        unknown_models_exist: false,
        ..Options::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    for model in ["nobody/nothing", "fake/text:0000"] {
        let out = cli(&server, dir.path())
            .args(["model", "schema", model])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(3), "{model}: {}", stderr(&out));
        assert!(stderr(&out).contains("404"), "{}", stderr(&out));
        assert_short_error(&out);
        assert!(out.stdout.is_empty());
    }
    // A malformed reference is a usage error, sent nowhere.
    server.clear_requests();
    for bad in ["nothing", "a/", "a/b:"] {
        cli(&server, dir.path())
            .args(["model", "schema", bad])
            .assert()
            .code(2);
    }
    assert!(server.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// run: coercion

#[test]
fn text_takes_the_type_of_its_field() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    run_ok(
        &server,
        dir.path(),
        &[
            "run",
            "test/flux",
            "-i",
            "prompt=007",
            "-i",
            "seed=007",
            "-i",
            "megapixels=1",
            "-i",
            "go_fast=false",
            "-i",
            "aspect_ratio=16:9",
            "-i",
            "num_outputs=2",
        ],
    );
    assert_eq!(
        sent_input(&server),
        json!({
            "prompt": "007",
            "seed": 7,
            "megapixels": "1",
            "go_fast": false,
            "aspect_ratio": "16:9",
            "num_outputs": 2
        })
    );
    // The schema was read first: the model, then the create.
    let api = api_requests(&server);
    assert_eq!(api[0].method, "GET");
    assert_eq!(api[0].path, "/replicate/v1/models/test/flux");
}

#[test]
fn without_a_schema_the_rules_stay() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "run",
        "test/flux",
        "--no-validate",
        "-i",
        "prompt=007",
        "-i",
        "seed=007",
        "-i",
        "megapixels=1",
        "-i",
        "aspect_ratio=2:7",
    ];
    let out = cli(&server, dir.path()).args(args).output().expect("run");
    // The input reaches the server as the rules without a schema type it; the server may
    // refuse it (422, exit 3).
    let (create, body) = the_create(&server);
    assert_eq!(
        body["input"],
        json!({"prompt": "007", "seed": "007", "megapixels": 1, "aspect_ratio": "2:7"})
    );
    match out.status.code() {
        Some(0) => {}
        Some(3) => assert!(stderr(&out).contains("422"), "{}", stderr(&out)),
        other => panic!("exit {other:?}: {}", stderr(&out)),
    }
    // No schema was asked for.
    let gets: Vec<_> = api_requests(&server)
        .into_iter()
        .filter(|r| r.path.starts_with("/replicate/v1/models/test/flux") && r.method == "GET")
        .collect();
    assert!(gets.is_empty(), "{gets:#?}");
    assert_eq!(create.path, "/replicate/v1/models/test/flux/predictions");
}

#[test]
fn a_file_only_for_a_file_input() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("cat.png"), b"\x89PNG tiny").expect("write");
    run_ok(
        &server,
        dir.path(),
        &[
            "run",
            "test/paths",
            "-i",
            "p1=@cat.png",
            "-i",
            "ps=@cat.png",
            "-i",
            "p2=@@handle",
        ],
    );
    let input = sent_input(&server);
    let p1 = input["p1"].as_str().expect("p1");
    assert!(p1.starts_with("data:image/png;base64,"), "{p1}");
    assert_eq!(input["ps"], json!([p1]), "a list of one file");
    assert_eq!(input["p2"], "@handle");

    // For a string input, @path is text: no file is read, even a missing one.
    server.clear_requests();
    run_ok(
        &server,
        dir.path(),
        &["run", "test/flux", "-i", "prompt=@missing.png"],
    );
    assert_eq!(sent_input(&server), json!({"prompt": "@missing.png"}));

    // A missing file for a file input is a usage error, nothing created.
    server.clear_requests();
    let err = refused(
        &server,
        dir.path(),
        &["run", "test/paths", "-i", "p1=@missing.png"],
    );
    assert!(err.contains("missing.png"), "{err}");
}

#[test]
fn a_large_file_for_a_file_input_is_uploaded_first() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 2 * 1024 * 1024]).expect("write");
    run_ok(
        &server,
        dir.path(),
        &["run", "test/paths", "-i", "p1=@big.bin"],
    );
    let uploads: Vec<_> = api_requests(&server)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/files"))
        .collect();
    assert_eq!(uploads.len(), 1, "one upload");
    let p1 = sent_input(&server)["p1"].as_str().expect("p1").to_owned();
    assert!(p1.starts_with("http"), "the uploaded file's URL: {p1}");
}

#[test]
fn an_enum_value_is_checked() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    run_ok(
        &server,
        dir.path(),
        &[
            "run",
            "test/flux",
            "-i",
            "prompt=a",
            "-i",
            "output_format=png",
        ],
    );
    assert_eq!(sent_input(&server)["output_format"], "png");
    server.clear_requests();
    let err = refused(
        &server,
        dir.path(),
        &[
            "run",
            "test/flux",
            "-i",
            "prompt=a",
            "-i",
            "output_format=gif",
        ],
    );
    let line = err
        .lines()
        .find(|l| l.trim_start().starts_with("output_format:"))
        .unwrap_or_else(|| panic!("a line for output_format in\n{err}"));
    assert!(
        line.contains("\"gif\"") && line.contains("\"webp\", \"jpg\", \"png\""),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------------
// run: validation

#[test]
fn every_problem_is_one_line_and_nothing_is_created() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let err = refused(
        &server,
        dir.path(),
        &[
            "run",
            "test/flux",
            "-i",
            "seed=abc",
            "-i",
            "aspect_ratio=2:7",
            "-i",
            "num_outputs=9",
            "-i",
            "go_fast=maybe",
            "-i",
            "output_quality=101",
        ],
    );
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("error: the input does not match the schema of test/flux:"),
        "{err}"
    );
    assert!(lines[0].contains("(6 problems)"), "{err}");
    // One line per field, in the schema's order.
    let fields: Vec<&str> = lines[1..]
        .iter()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.trim_start().split(':').next())
        .collect();
    assert_eq!(
        fields,
        [
            "prompt",
            "aspect_ratio",
            "num_outputs",
            "seed",
            "output_quality",
            "go_fast"
        ],
        "{err}"
    );
    assert!(err.contains("prompt: required input is missing"), "{err}");
    assert!(err.contains("num_outputs: 9 is out of range"), "{err}");
    assert!(
        lines.last().is_some_and(|l| l.starts_with("hint: ")
            && l.contains("replicate model schema test/flux")
            && l.contains("--no-validate")),
        "{err}"
    );
}

#[test]
fn input_json_is_checked_as_it_is() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("in.json"),
        r#"{"prompt": "a", "seed": "007", "num_outputs": 2.5}"#,
    )
    .expect("write");
    let err = refused(
        &server,
        dir.path(),
        &["run", "test/flux", "--input-json", "in.json"],
    );
    assert!(err.contains("seed: expected integer, got string"), "{err}");
    assert!(err.contains("num_outputs: expected integer"), "{err}");
    // -i fields over the file's are typed, and the whole is checked.
    run_ok(
        &server,
        dir.path(),
        &[
            "run",
            "test/flux",
            "--input-json",
            "in.json",
            "-i",
            "seed=007",
            "-i",
            "num_outputs=3",
        ],
    );
    assert_eq!(
        sent_input(&server),
        json!({"prompt": "a", "seed": 7, "num_outputs": 3})
    );
}

#[test]
fn unknown_inputs_are_a_warning_and_sent() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_ok(
        &server,
        dir.path(),
        &["run", "test/flux", "-i", "prompt=a", "-i", "sead=007"],
    );
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("sead: unknown input"), "{err}");
    // Typed by the rules without a schema.
    assert_eq!(sent_input(&server), json!({"prompt": "a", "sead": "007"}));
}

#[test]
fn a_pinned_version_is_checked_against_that_version() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let version = server.model_version("test/flux");
    let model = format!("test/flux:{version}");
    run_ok(
        &server,
        dir.path(),
        &["run", &model, "-i", "prompt=a", "-i", "seed=007"],
    );
    let (create, body) = the_create(&server);
    assert_eq!(body["version"], version.as_str());
    assert_eq!(body["input"]["seed"], 7);
    assert_eq!(create.path, "/replicate/v1/predictions");
    let reads: Vec<String> = api_requests(&server)
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        reads.first().map(String::as_str),
        Some(format!("/replicate/v1/models/test/flux/versions/{version}").as_str())
    );
    server.clear_requests();
    refused(&server, dir.path(), &["run", &model, "-i", "seed=007"]);
}

#[test]
fn a_deployment_is_checked_against_its_release() {
    let server = typed_fake();
    server.set_deployment("acme/flux", "test/flux");
    let dir = tempfile::tempdir().expect("tempdir");
    run_ok(
        &server,
        dir.path(),
        &[
            "run",
            "--deployment",
            "acme/flux",
            "-i",
            "prompt=a",
            "-i",
            "seed=007",
        ],
    );
    let (create, body) = the_create(&server);
    assert_eq!(
        create.path,
        "/replicate/v1/deployments/acme/flux/predictions"
    );
    assert_eq!(body["input"], json!({"prompt": "a", "seed": 7}));
    server.clear_requests();
    let err = refused(
        &server,
        dir.path(),
        &["run", "--deployment", "acme/flux", "-i", "seed=x"],
    );
    assert!(err.contains("seed: \"x\" is not a valid integer"), "{err}");
}

#[test]
fn a_bare_version_id_is_not_checked() {
    let server = typed_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let version = server.model_version("test/flux");
    let out = cli(&server, dir.path())
        .args(["run", &version, "-i", "prompt=a", "-i", "seed=007"])
        .output()
        .expect("run");
    assert!(
        stderr(&out).contains("not checked against a schema"),
        "{}",
        stderr(&out)
    );
    // Typed by the rules without a schema; the server may refuse it (422, exit 3).
    assert_eq!(sent_input(&server), json!({"prompt": "a", "seed": "007"}));
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "{}",
        stderr(&out)
    );
    assert!(
        !api_requests(&server)
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/models/")),
        "no schema asked for"
    );
}

#[test]
fn an_unknown_model_fails_as_its_create_would_and_nothing_is_created() {
    let server = fake_with(Options {
        unknown_models_exist: false,
        ..Options::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "nobody/nothing", "-i", "prompt=a"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert_short_error(&out);
    assert!(creates(&server).is_empty());
    // Without the schema, the create itself says so, with the same exit code.
    let out = cli(&server, dir.path())
        .args(["run", "nobody/nothing", "--no-validate", "-i", "prompt=a"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(creates(&server).len(), 1);
}
