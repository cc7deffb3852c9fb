//! One typed run per generated module, against the fake server, with both clients: the typed
//! input goes out as the JSON the schema describes, and the output comes back as the module's
//! `Output` type.
//!
//! A fixture's schema is served for its model with `ModelScript::openapi_schema`, with an
//! output of the shape the schema declares; the fake's own models run as they are scripted.

use std::path::PathBuf;

use replicate_fake::{
    BlockingFakeServer, FLUX_SCHNELL_VERSION, MULTILINE_TOKENS, ModelScript, Output, TEXT_TOKENS,
};
use replicate_protocol::api::TrainingOutput;
use replicate_protocol::{Error, Wait};
use replicate_tests::{Reqwest, Settings, Ureq, fast_options};
use replicate_typed_tests::*;
use serde_json::{Value, json};

/// A fake server and a client of each kind pointed at it.
struct Clients {
    fake: BlockingFakeServer,
    ureq: replicate_ureq::Client,
    reqwest: Reqwest,
}

impl Clients {
    /// The fake with its built-in models only.
    fn new() -> Clients {
        let fake = BlockingFakeServer::start_with(fast_options()).expect("fake server");
        let settings = Settings::for_fake(&fake);
        Clients {
            ureq: Ureq::new(&settings).0,
            reqwest: Reqwest::new(&settings),
            fake,
        }
    }

    /// The fake serving the schema file `path` (from the workspace root) for `model`, whose
    /// predictions end as `script` says.
    fn serving(model: &str, path: &str, script: ModelScript) -> Clients {
        let clients = Clients::new();
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path);
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&file).expect("schema file")).expect("JSON");
        clients.fake.set_model(model, script.openapi_schema(doc));
        clients
    }

    /// The inputs of the predictions created so far, in order.
    fn sent_inputs(&self) -> Vec<Value> {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/predictions"))
            .map(|r| serde_json::from_slice::<Value>(&r.body).expect("JSON body")["input"].clone())
            .collect()
    }
}

/// Runs `$module::run` with the blocking client and `$module::run_async` with the async one
/// on `$input`, checking each result with `$check` (`$out` is the `Result`), then checks that
/// both creates sent the input's JSON.
macro_rules! run_both {
    ($clients:expr, $module:ident, $input:expr, |$out:ident| $check:block) => {{
        let clients = &$clients;
        let input = $input;
        {
            let $out = $module::run(&clients.ureq, &input);
            $check
        }
        {
            let $out = clients
                .reqwest
                .runtime()
                .block_on($module::run_async(clients.reqwest.client(), &input));
            $check
        }
        let json = serde_json::to_value(&input).expect("input JSON");
        assert_eq!(clients.sent_inputs(), [json.clone(), json]);
    }};
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://127.0.0.1:")
}

// --- the fixtures ---

#[test]
fn cog_enums() {
    let c = Clients::serving(
        cog_enums::MODEL,
        "fixtures/schemas/cog-enums.json",
        ModelScript::succeed(Output::Json(json!("a string"))),
    );
    let input = cog_enums::Input::builder()
        .c(cog_enums::C::Green)
        .build()
        .expect("valid");
    let doc: Value = serde_json::from_str(include_str!("../../../fixtures/schemas/cog-enums.json"))
        .expect("JSON");
    let n_default = &doc["components"]["schemas"]["Input"]["properties"]["n"]["default"];
    assert_eq!(
        serde_json::to_value(&input).expect("JSON"),
        json!({"c": "green", "n": n_default})
    );
    run_both!(c, cog_enums, input, |out| {
        assert_eq!(out.expect("run"), "a string");
    });
}

#[test]
fn cog_output_concat_iter() {
    let c = Clients::serving(
        cog_output_concat_iter::MODEL,
        "fixtures/schemas/cog-output-concat-iter.json",
        ModelScript::text(["Hel", "lo"]),
    );
    let input = cog_output_concat_iter::Input::builder(vec!["a".into(), "b".into()])
        .build()
        .expect("valid");
    run_both!(c, cog_output_concat_iter, input, |out| {
        let out = out.expect("run");
        assert_eq!(out.text(), "Hello");
        assert_eq!(out.to_string(), "Hello");
        assert_eq!(out.0, ["Hel", "lo"]);
    });
}

#[test]
fn cog_output_object() {
    let output = json!({
        "b": true, "f": 1.5, "i": 3, "s": "x",
        "path": "https://example.com/out.txt", "secret": "**********"
    });
    let c = Clients::serving(
        cog_output_object::MODEL,
        "fixtures/schemas/cog-output-object.json",
        ModelScript::succeed(Output::Json(output)),
    );
    let input = cog_output_object::Input::builder(
        true,
        0.5,
        7,
        "text",
        "https://example.com/in.txt",
        "hunter2",
    )
    .build()
    .expect("valid");
    let debug = format!("{input:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("<redacted>"),
        "{debug}"
    );
    run_both!(c, cog_output_object, input, |out| {
        let out = out.expect("run");
        assert!(out.b);
        assert_eq!((out.f, out.i, out.s.as_str()), (1.5, 3, "x"));
        assert_eq!(out.path, "https://example.com/out.txt");
    });
}

#[test]
fn cog_paths() {
    let c = Clients::serving(
        cog_paths::MODEL,
        "fixtures/schemas/cog-paths.json",
        ModelScript::succeed(Output::Json(json!(["https://example.com/a.txt"]))),
    );
    let input = cog_paths::Input::builder("https://example.com/p1.txt")
        .build()
        .expect("valid");
    // File defaults name files inside the model: they are left to it, not sent.
    assert_eq!(
        serde_json::to_value(&input).expect("JSON"),
        json!({"p1": "https://example.com/p1.txt"})
    );
    run_both!(c, cog_paths, input, |out| {
        assert_eq!(out.expect("run"), ["https://example.com/a.txt"]);
    });
}

#[test]
fn cog_range() {
    let c = Clients::serving(
        cog_range::MODEL,
        "fixtures/schemas/cog-range.json",
        ModelScript::succeed(Output::Json(json!("ok"))),
    );
    let input = || cog_range::Input::builder(0, 10, 5, 2.8, 3.0, 3.0, 0.0, 10.0, 5.0);
    let err = input().int_ge_le_wd(11).build().expect_err("out of range");
    assert_eq!(err.field, "int_ge_le_wd");
    assert_eq!(
        err.problem,
        cog_range::InputProblem::AboveMaximum {
            value: 11.0,
            maximum: 10.0
        }
    );
    assert_eq!(
        err.to_string(),
        "int_ge_le_wd: 11 is greater than the maximum 10"
    );

    // A value changed after `build` is caught before anything is sent.
    let mut bad = input().build().expect("valid");
    bad.float_ge = 2.0;
    let err = cog_range::run(&c.ureq, &bad).expect_err("invalid");
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("float_ge: 2 is less than the minimum 2.71")),
        "{err}"
    );
    assert!(c.sent_inputs().is_empty());

    run_both!(c, cog_range, input().build().expect("valid"), |out| {
        assert_eq!(out.expect("run"), "ok");
    });
}

#[test]
fn synthetic_flux_schnell() {
    let c = Clients::serving(
        synthetic_flux_schnell::MODEL,
        "fixtures/schemas/synthetic-flux-schnell.json",
        ModelScript::succeed(Output::Urls(1)),
    );
    let input = synthetic_flux_schnell::Input::builder("an astronaut")
        .num_outputs(2)
        .aspect_ratio(synthetic_flux_schnell::AspectRatio::V16_9)
        .seed(42)
        .build()
        .expect("valid");
    run_both!(c, synthetic_flux_schnell, input, |out| {
        let urls = out.expect("run");
        assert_eq!(urls.len(), 2);
        assert!(urls.iter().all(|u| is_url(u)), "{urls:?}");
    });
}

#[test]
fn synthetic_llama_3_instruct() {
    let c = Clients::serving(
        synthetic_llama_3_instruct::MODEL,
        "fixtures/schemas/synthetic-llama-3-instruct.json",
        ModelScript::text(["The", " sky", " is blue."]),
    );
    let input = synthetic_llama_3_instruct::Input::builder()
        .prompt("Why is the sky blue?")
        .temperature(0.2)
        .build()
        .expect("valid");
    run_both!(c, synthetic_llama_3_instruct, input, |out| {
        assert_eq!(out.expect("run").text(), "The sky is blue.");
    });
}

#[test]
fn synthetic_lora_trainer() {
    let version = synthetic_lora_trainer::VERSION.expect("the trainer's version is set");
    let c = Clients::serving(
        synthetic_lora_trainer::MODEL,
        "fixtures/schemas/synthetic-lora-trainer.json",
        ModelScript::succeed(Output::Urls(1)).version(version),
    );
    c.fake.set_model("acme/my-lora", ModelScript::default());
    let input = synthetic_lora_trainer::Input::builder("TOK riding a horse")
        .lora_scale(-0.5)
        .build()
        .expect("valid");
    run_both!(c, synthetic_lora_trainer, input, |out| {
        assert_eq!(out.expect("run").len(), 1);
    });

    let training = synthetic_lora_trainer::TrainingInput::builder("https://example.com/data.zip")
        .steps(100)
        .optimizer(synthetic_lora_trainer::Optimizer::Prodigy)
        .build()
        .expect("valid");
    let err = synthetic_lora_trainer::TrainingInput::builder("https://example.com/data.zip")
        .learning_rate(0.0)
        .build()
        .expect_err("exclusive minimum");
    assert_eq!(err.to_string(), "learning_rate: 0 must be greater than 0");

    let created = synthetic_lora_trainer::train(&c.ureq, "acme/my-lora", &training).expect("train");
    let wait =
        Wait::new(c.ureq.config().clone(), &created.id, c.ureq.wait_options()).for_training();
    let done = c.ureq.drive(wait).expect("training");
    let output: synthetic_lora_trainer::TrainingOutput = done.output_as().expect("typed output");
    assert!(is_url(&output.weights), "{output:?}");

    let rt = c.reqwest.runtime();
    let client = c.reqwest.client();
    let created = rt
        .block_on(synthetic_lora_trainer::train_async(
            client,
            "acme/my-lora",
            &training,
        ))
        .expect("train");
    let wait =
        Wait::new(client.config().clone(), &created.id, client.wait_options()).for_training();
    let done = rt.block_on(client.drive(wait)).expect("training");
    let output: TrainingOutput = done.output_as().expect("output");
    assert!(
        output
            .version
            .is_some_and(|v| v.starts_with("acme/my-lora:"))
    );

    let sent: Vec<Value> = c
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/trainings"))
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("JSON")["input"].clone())
        .collect();
    let json = serde_json::to_value(&training).expect("JSON");
    assert_eq!(sent, [json.clone(), json]);
}

#[test]
fn synthetic_whisper() {
    let c = Clients::serving(
        synthetic_whisper::MODEL,
        "fixtures/schemas/synthetic-whisper.json",
        ModelScript::succeed(Output::Json(json!({
            "segments": [{"id": 0, "text": "hello"}],
            "transcription": "hello",
            "detected_language": "english"
        }))),
    );
    let input = synthetic_whisper::Input::builder("https://example.com/speech.wav")
        .language(synthetic_whisper::Language::En)
        .transcription(synthetic_whisper::Transcription::Srt)
        .build()
        .expect("valid");
    run_both!(c, synthetic_whisper, input, |out| {
        let out = out.expect("run");
        assert_eq!(out.transcription, "hello");
        assert_eq!(out.detected_language, "english");
        assert_eq!(out.srt_file, None);
        assert_eq!(out.segments, Some(json!([{"id": 0, "text": "hello"}])));
    });
}

#[test]
fn hostile() {
    let c = Clients::serving(
        hostile::MODEL,
        "crates/codegen/tests/data/hostile.json",
        ModelScript::succeed(Output::Json(
            json!({"type": "t", "match": 2, "list": [0.5]}),
        )),
    );
    let input = hostile::Input::builder(
        "type",
        -5,
        true,
        false,
        "key",
        "r1",
        0,
        1.0,
        false,
        vec![],
        "https://example.com/r6",
        0,
    )
    .build_(String::from("not the method"))
    .format(hostile::ResultChoice::SelfChoice2)
    .tags(vec![hostile::TagsItem::AB2])
    .build()
    .expect("valid");
    let json = serde_json::to_value(&input).expect("JSON");
    assert_eq!(json["type"], "type");
    assert_eq!(json["build"], "not the method");
    assert_eq!(json["format"], "Self");
    assert_eq!(json["tags"], json!(["a b"]));
    assert_eq!(json["1st"], true);
    assert!(
        json.get("steps").is_none(),
        "an invalid default is not applied"
    );
    run_both!(c, hostile, input, |out| {
        let out = out.expect("run");
        assert_eq!((out.type_.as_str(), out.match_), ("t", Some(2)));
        assert_eq!(out.list, Some(vec![0.5]));
        assert_eq!(out.any, None);
    });
}

// --- the fake's own models ---

#[test]
fn fake_flux_schnell() {
    assert_eq!(
        black_forest_labs_flux_schnell::VERSION,
        Some(FLUX_SCHNELL_VERSION)
    );
    let input = black_forest_labs_flux_schnell::Input::builder("a cat")
        .num_outputs(2)
        .build()
        .expect("valid");
    run_both!(
        Clients::new(),
        black_forest_labs_flux_schnell,
        input,
        |out| {
            let urls = out.expect("run");
            assert_eq!(urls.len(), 2);
            assert!(urls.iter().all(|u| is_url(u)), "{urls:?}");
        }
    );
}

#[test]
fn fake_fail() {
    let input = fake_fail::Input::builder()
        .prompt("x")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_fail, input, |out| {
        assert!(matches!(out, Err(Error::PredictionFailed(_))), "{out:?}");
    });
}

#[test]
fn fake_cancel() {
    let input = fake_cancel::Input::builder()
        .prompt("x")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_cancel, input, |out| {
        assert!(matches!(out, Err(Error::PredictionCanceled(_))), "{out:?}");
    });
}

#[test]
fn fake_abort() {
    let input = fake_abort::Input::builder()
        .prompt("x")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_abort, input, |out| {
        assert!(matches!(out, Err(Error::PredictionAborted(_))), "{out:?}");
    });
}

#[test]
fn fake_text() {
    let input = fake_text::Input::builder()
        .prompt("hi")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_text, input, |out| {
        assert_eq!(out.expect("run").text(), TEXT_TOKENS.concat());
    });
}

#[test]
fn fake_text_multiline() {
    let input = fake_text_multiline::Input::builder()
        .prompt("hi")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_text_multiline, input, |out| {
        assert_eq!(out.expect("run").0, MULTILINE_TOKENS);
    });
}

#[test]
fn fake_json() {
    let input = fake_json::Input::builder()
        .prompt("hi")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_json, input, |out| {
        let out = out.expect("run");
        assert_eq!((out.answer, out.label.as_str()), (42, "cat"));
        assert_eq!(out.scores, [0.9, 0.1]);
    });
}

#[test]
fn fake_urls() {
    let input = fake_urls::Input::builder()
        .prompt("hi")
        .build()
        .expect("valid");
    assert_eq!(input.num_outputs, 3, "the schema's default");
    run_both!(Clients::new(), fake_urls, input, |out| {
        assert_eq!(out.expect("run").len(), 3);
    });
}

#[test]
fn fake_slow() {
    let input = fake_slow::Input::builder()
        .prompt("hi")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_slow, input, |out| {
        assert!(is_url(&out.expect("run")));
    });
}

#[test]
fn fake_data_uri() {
    let input = fake_data_uri::Input::builder()
        .prompt("hi")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_data_uri, input, |out| {
        assert!(out.expect("run").starts_with("data:image/png;base64,"));
    });
}

#[test]
fn fake_unknown_status() {
    let input = fake_unknown_status::Input::builder()
        .prompt("hi")
        .build()
        .expect("valid");
    run_both!(Clients::new(), fake_unknown_status, input, |out| {
        assert_eq!(out.expect("run"), "done");
    });
}

#[test]
fn fake_large_files() {
    let input = fake_large_files::Input::builder()
        .prompt("hi")
        .output_bytes(1024)
        .seed(7)
        .build()
        .expect("valid");
    let err = fake_large_files::Input::builder()
        .prompt("hi")
        .num_outputs(11)
        .build()
        .expect_err("above the maximum");
    assert_eq!(err.field, "num_outputs");
    run_both!(Clients::new(), fake_large_files, input, |out| {
        let urls = out.expect("run");
        assert_eq!(urls.len(), 1);
        assert!(urls[0].ends_with(".bin"), "{urls:?}");
    });
}
