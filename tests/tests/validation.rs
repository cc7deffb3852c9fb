//! Local input validation in both clients, against the fake server: an invalid input is a typed
//! error and nothing is created; a valid one runs; unknown inputs are a warning or, in strict
//! mode, an error; one schema fetch per model; a create's own setting wins over the client's;
//! every kind of target; and the agreement of the clients' check with the fake's own (which
//! answers 422 exactly when the client refuses), for every built-in model.
#![allow(missing_docs)]

use std::time::Duration;

use replicate_fake::{BUILTIN_MODELS, BlockingFakeServer, Options};
use replicate_protocol::api::GetModel;
use replicate_protocol::schema::{FieldType, InputSchema};
use replicate_protocol::{CreatePrediction, Error, Prediction, Target, Validation};
use serde_json::{Value, json};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;

const FLUX: &str = "black-forest-labs/flux-schnell";

#[derive(Debug, Clone, Copy)]
enum Kind {
    Ureq,
    Reqwest,
}

const KINDS: [Kind; 2] = [Kind::Ureq, Kind::Reqwest];

/// Either client, blocking (the async one on a current-thread runtime, so its flows run on the
/// calling thread, where a test's tracing subscriber is).
enum Sdk {
    Ureq(replicate_ureq::Client),
    Reqwest(replicate_reqwest::Client, tokio::runtime::Runtime),
}

macro_rules! builder {
    ($client:ty, $fake:expr, $validation:expr) => {
        <$client>::builder()
            .token($fake.token())
            .base_url($fake.base_url())
            .timeout(Duration::from_secs(5))
            .sync_wait(None)
            .poll_policy(replicate_protocol::PollPolicy::fixed(
                Duration::from_millis(20),
            ))
            .validate_inputs($validation)
    };
}

impl Sdk {
    fn new(kind: Kind, fake: &BlockingFakeServer, validation: Validation) -> Sdk {
        match kind {
            Kind::Ureq => Sdk::Ureq(
                builder!(replicate_ureq::Client, fake, validation)
                    .build()
                    .expect("client"),
            ),
            Kind::Reqwest => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let client = builder!(replicate_reqwest::Client, fake, validation)
                    .build()
                    .expect("client");
                Sdk::Reqwest(client, rt)
            }
        }
    }

    fn run(&self, model: &str, input: Value) -> Result<Value, Error> {
        match self {
            Sdk::Ureq(c) => c.run(model, input),
            Sdk::Reqwest(c, rt) => rt.block_on(c.run(model, input)),
        }
    }

    fn create(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        match self {
            Sdk::Ureq(c) => c.create(create),
            Sdk::Reqwest(c, rt) => rt.block_on(c.create(create)),
        }
    }

    fn start_from(&self, model: &str, input: Value) -> Result<String, Error> {
        match self {
            Sdk::Ureq(c) => c.start_from(model, input).map(|h| h.id().to_owned()),
            Sdk::Reqwest(c, rt) => {
                rt.block_on(async { c.start_from(model, input).await.map(|h| h.id().to_owned()) })
            }
        }
    }

    fn model_schema(&self, model: &str) -> InputSchema {
        let (owner, name) = model.split_once('/').expect("owner/name");
        let m = match self {
            Sdk::Ureq(c) => c.execute(GetModel::new(owner, name)),
            Sdk::Reqwest(c, rt) => rt.block_on(c.execute(GetModel::new(owner, name))),
        }
        .expect("model");
        let doc = m
            .latest_version
            .and_then(|v| v.openapi_schema)
            .expect("a schema");
        InputSchema::from_openapi(&doc).expect("an Input")
    }
}

fn fake() -> BlockingFakeServer {
    BlockingFakeServer::start_with(Options {
        tick: Duration::from_millis(5),
        ..Options::default()
    })
    .expect("fake server")
}

/// The creates the fake received (answered or refused).
fn creates(fake: &BlockingFakeServer) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/predictions"))
        .count()
}

/// The schema lookups the fake received: `GET` of models, versions and deployments.
fn lookups(fake: &BlockingFakeServer) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && (r.path.starts_with("/v1/models/") || r.path.starts_with("/v1/deployments/"))
        })
        .map(|r| r.path.clone())
        .collect()
}

mod capture;

/// Runs `f` with a subscriber of warnings for this thread, and returns what it printed.
fn warnings<T>(f: impl FnOnce() -> T) -> (String, T) {
    capture::traced(LevelFilter::WARN, FmtSpan::NONE, f)
}

#[test]
fn an_invalid_input_is_a_typed_error_and_nothing_is_created() {
    for kind in KINDS {
        let fake = fake();
        let sdk = Sdk::new(kind, &fake, Validation::Warn);
        let input =
            json!({"prompt": "a cat", "num_outputs": 0, "aspect_ratio": "square", "seed": "x"});
        let err = sdk.run(FLUX, input.clone()).expect_err("refused");
        assert!(err.is_invalid_input(), "{kind:?}: {err:?}");
        let problems = err.validation_errors().expect("validation errors");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["aspect_ratio", "num_outputs", "seed"], "{kind:?}");
        // One line per field, under a heading.
        let text = err.to_string();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(
            text.contains("aspect_ratio: \"square\" is not one of \"1:1\""),
            "{text}"
        );
        assert!(
            text.contains("num_outputs: 0 is out of range (must be >= 1 and <= 10)"),
            "{text}"
        );
        assert!(
            text.contains("seed: expected integer, got string"),
            "{text}"
        );

        // Every way to create refuses it alike.
        let create = CreatePrediction::parse(FLUX)
            .expect("model")
            .input(input.clone());
        assert!(sdk.create(create).expect_err("refused").is_invalid_input());
        let err = sdk.start_from(FLUX, json!({})).expect_err("refused");
        assert_eq!(err.validation_errors().map(|e| e.len()), Some(1), "{err}");
        assert_eq!(creates(&fake), 0, "{kind:?}: nothing was sent");
        assert_eq!(fake.prediction_count(), 0);
        assert_eq!(lookups(&fake), [format!("/v1/models/{FLUX}")], "{kind:?}");
    }
}

#[test]
fn a_valid_input_runs() {
    for kind in KINDS {
        let fake = fake();
        let sdk = Sdk::new(kind, &fake, Validation::Strict);
        let input = json!({
            "prompt": "a cat", "aspect_ratio": "16:9", "num_outputs": 2, "seed": 7,
            "output_format": "png", "output_quality": 100, "go_fast": false, "megapixels": "0.25"
        });
        let output = sdk.run(FLUX, input).expect("runs");
        assert_eq!(
            output.as_array().map(Vec::len),
            Some(2),
            "{kind:?}: {output}"
        );
        assert_eq!(creates(&fake), 1);
        assert_eq!(lookups(&fake).len(), 1, "{kind:?}");
    }
}

#[test]
fn unknown_inputs_are_a_warning_by_default_and_an_error_in_strict_mode() {
    for kind in KINDS {
        let fake = fake();
        let input = json!({"prompt": "a cat", "promt": "a typo"});
        let warn = Sdk::new(kind, &fake, Validation::Warn);
        let (text, result) = warnings(|| warn.run(FLUX, input.clone()));
        result.expect("sent anyway");
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("not in the model's schema"))
            .collect();
        assert_eq!(lines.len(), 1, "{kind:?}: {text}");
        assert!(
            lines[0].contains("WARN") && lines[0].contains("promt"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains(FLUX), "{}", lines[0]);
        assert_eq!(creates(&fake), 1);

        let strict = Sdk::new(kind, &fake, Validation::Strict);
        let err = strict.run(FLUX, input).expect_err("refused");
        let problems = err.validation_errors().expect("validation errors");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems.problems()[0].field, "promt");
        assert!(problems.problems()[0].kind.is_unknown_field());
        assert_eq!(
            creates(&fake),
            1,
            "{kind:?}: the strict create was not sent"
        );
    }
}

#[test]
fn a_schema_is_fetched_once_per_model() {
    for kind in KINDS {
        let fake = fake();
        let sdk = Sdk::new(kind, &fake, Validation::Warn);
        for i in 0..5 {
            sdk.run(FLUX, json!({"prompt": format!("cat {i}")}))
                .expect("runs");
            sdk.run("fake/json", json!({"prompt": format!("cat {i}")}))
                .expect("runs");
        }
        let mut fetched = lookups(&fake);
        fetched.sort();
        assert_eq!(
            fetched,
            [
                format!("/v1/models/{FLUX}"),
                "/v1/models/fake/json".to_owned()
            ],
            "{kind:?}"
        );
        assert_eq!(creates(&fake), 10);
        // A clone shares the cache.
        let input = json!({"prompt": "again"});
        match &sdk {
            Sdk::Ureq(c) => c.clone().run(FLUX, input),
            Sdk::Reqwest(c, rt) => rt.block_on(c.clone().run(FLUX, input)),
        }
        .expect("runs");
        assert_eq!(lookups(&fake).len(), 2, "{kind:?}");
    }
}

#[test]
fn a_creates_own_setting_wins_over_the_clients() {
    for kind in KINDS {
        let fake = fake();
        let bad = json!({"prompt": "a cat", "num_outputs": 11});
        // The client does not validate; this create does.
        let off = Sdk::new(kind, &fake, Validation::Off);
        let create = CreatePrediction::parse(FLUX)
            .expect("model")
            .input(bad.clone())
            .validate(Validation::Warn);
        assert!(off.create(create).expect_err("refused").is_invalid_input());
        assert_eq!(creates(&fake), 0, "{kind:?}");
        // The client validates strictly; this create is sent unchecked, and the fake refuses it.
        let strict = Sdk::new(kind, &fake, Validation::Strict);
        let create = CreatePrediction::parse(FLUX)
            .expect("model")
            .input(bad)
            .validate(Validation::Off);
        let err = strict.create(create).expect_err("the fake's 422");
        assert_eq!(err.status(), Some(422), "{kind:?}: {err}");
        assert!(err.validation_errors().is_none());
        assert_eq!(creates(&fake), 1);
        assert_eq!(
            lookups(&fake).len(),
            1,
            "{kind:?}: only the first client looked"
        );
        // Off by default.
        let default = match kind {
            Kind::Ureq => replicate_ureq::Client::builder()
                .token(fake.token())
                .base_url(fake.base_url())
                .build()
                .map(|c| c.run(FLUX, json!({"num_outputs": 11}))),
            Kind::Reqwest => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                replicate_reqwest::Client::builder()
                    .token(fake.token())
                    .base_url(fake.base_url())
                    .build()
                    .map(|c| rt.block_on(c.run(FLUX, json!({"num_outputs": 11}))))
            }
        }
        .expect("client");
        assert_eq!(default.expect_err("422").status(), Some(422));
        assert_eq!(lookups(&fake).len(), 1, "{kind:?}");
    }
}

#[test]
fn versions_deployments_and_bare_version_ids() {
    for kind in KINDS {
        let fake = fake();
        let sdk = Sdk::new(kind, &fake, Validation::Warn);
        // A version of a named model: its own schema.
        let version = fake.model_version("fake/text");
        let model = format!("fake/text:{version}");
        let err = sdk
            .run(&model, json!({"temperature": 3}))
            .expect_err("refused");
        assert_eq!(
            err.validation_errors()
                .map(|e| e.problems()[0].field.clone()),
            Some("temperature".to_owned())
        );
        sdk.run(&model, json!({"prompt": "hi", "temperature": 0.5}))
            .expect("runs");
        assert_eq!(
            lookups(&fake),
            [format!("/v1/models/fake/text/versions/{version}")],
            "{kind:?}"
        );

        // A deployment: its release's version.
        fake.set_deployment("acme/prod", "fake/urls");
        let dep = |input: Value| {
            CreatePrediction::new(Target::deployment("acme/prod").expect("deployment")).input(input)
        };
        let err = sdk
            .create(dep(json!({"scheduler": "EULER"})))
            .expect_err("refused");
        assert!(err.is_invalid_input(), "{err}");
        sdk.create(dep(json!({"scheduler": "DDIM", "num_outputs": 2})))
            .expect("created");
        let deployment_version = fake.model_version("fake/urls");
        assert_eq!(
            lookups(&fake)[1..],
            [
                "/v1/deployments/acme/prod".to_owned(),
                format!("/v1/models/fake/urls/versions/{deployment_version}")
            ],
            "{kind:?}"
        );

        // A bare version id: a warning, and the fake decides.
        let before = creates(&fake);
        let (text, result) = warnings(|| sdk.run(&version, json!({"temperature": 3})));
        assert_eq!(result.expect_err("the fake's 422").status(), Some(422));
        assert!(text.contains("bare version id"), "{kind:?}: {text}");
        assert_eq!(creates(&fake), before + 1);
    }
}

/// Inputs for a model built from its schema: valid ones and one broken way per rule and field.
fn table(schema: &InputSchema) -> Vec<Value> {
    let mut base = serde_json::Map::new();
    for field in schema.required() {
        base.insert(field.name.clone(), json!("a cat"));
    }
    let with = |name: &str, value: Value| {
        let mut input = base.clone();
        input.insert(name.to_owned(), value);
        Value::Object(input)
    };
    let mut inputs = vec![
        Value::Object(base.clone()),
        json!({}),
        with("not_an_input", json!(1)),
    ];
    for field in &schema.fields {
        let wrong = match field.ty {
            FieldType::String => json!(5),
            FieldType::Integer | FieldType::Number => json!("5"),
            FieldType::Boolean => json!("yes"),
            _ => json!(null),
        };
        inputs.push(with(&field.name, wrong));
        inputs.push(with(&field.name, json!(null)));
        inputs.push(with(&field.name, json!([1])));
        if let Some(default) = &field.default {
            inputs.push(with(&field.name, default.clone()));
        }
        if !field.allowed.is_empty() {
            inputs.push(with(&field.name, json!("not-a-choice")));
            inputs.push(with(
                &field.name,
                field.allowed[field.allowed.len() - 1].clone(),
            ));
        }
        if field.ty == FieldType::Integer {
            inputs.push(with(&field.name, json!(1.5)));
            inputs.push(with(&field.name, json!(2.0)));
            inputs.push(with(&field.name, json!(-1)));
        }
        if field.ty == FieldType::Number {
            inputs.push(with(&field.name, json!(0.5)));
        }
        let step = if field.ty == FieldType::Integer {
            1.0
        } else {
            0.25
        };
        for bound in [field.minimum, field.maximum].into_iter().flatten() {
            for delta in [-step, 0.0, step] {
                let x = bound + delta;
                let within =
                    field.minimum.is_none_or(|m| x >= m) && field.maximum.is_none_or(|m| x <= m);
                if within && x > 1e9 {
                    // Valid, and costly: `fake/large-files` would make (and hash) files that
                    // large.
                    continue;
                }
                let value = if field.ty == FieldType::Integer {
                    json!(x as i64)
                } else {
                    json!(x)
                };
                inputs.push(with(&field.name, value));
            }
        }
        if field.required {
            let mut input = base.clone();
            input.remove(&field.name);
            inputs.push(Value::Object(input));
        }
    }
    inputs
}

#[test]
fn the_clients_refuse_exactly_what_the_fake_answers_422() {
    for kind in KINDS {
        let fake = fake();
        let local = Sdk::new(kind, &fake, Validation::Warn);
        let remote = Sdk::new(kind, &fake, Validation::Off);
        let mut checked = 0;
        let mut refused = 0;
        for model in BUILTIN_MODELS {
            let schema = local.model_schema(model);
            for input in table(&schema) {
                let create = || {
                    CreatePrediction::parse(model)
                        .expect("model")
                        .input(input.clone())
                };
                fake.clear_requests();
                let local_refused = match local.create(create()) {
                    Ok(_) => false,
                    Err(e) if e.validation_errors().is_some() => true,
                    Err(e) => panic!("{kind:?} {model} {input}: {e}"),
                };
                // Nothing sent when refused, one create when not.
                let sent = creates(&fake);
                assert_eq!(sent, usize::from(!local_refused), "{model} {input}");
                let fake_refused = match remote.create(create()) {
                    Ok(_) => false,
                    Err(e) if e.status() == Some(422) => true,
                    Err(e) => panic!("{kind:?} {model} {input}: {e}"),
                };
                assert_eq!(
                    local_refused,
                    fake_refused,
                    "{kind:?} {model} {input}: the client {} it, the fake {} it",
                    if local_refused { "refused" } else { "accepted" },
                    if fake_refused { "refused" } else { "accepted" },
                );
                checked += 1;
                refused += usize::from(local_refused);
            }
        }
        eprintln!("{kind:?}: {checked} inputs, {refused} refused");
        // The table exercises both answers, many times.
        assert!(checked > 150, "{checked}");
        assert!(
            refused > 50 && checked - refused > 50,
            "{refused} of {checked}"
        );
    }
}
