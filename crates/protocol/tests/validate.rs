//! Local validation before a create ([`Validated`]): where each kind of target reads its schema,
//! that nothing is sent for an invalid input, warn and strict modes, per-create overrides, the
//! schema cache (one fetch per version, names resolved again after the time to live, bounded),
//! and lookups that fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use replicate_protocol::schema::ProblemKind;
use replicate_protocol::validate::{CreateFlow, SchemaCache, SchemaSource, Validated, Validation};
use replicate_protocol::{
    Call, Config, CreatePrediction, Error, Flow, Prediction, RetryPolicy, Run, Step, Target,
    TransportError, TransportErrorKind, WaitOptions,
};
use serde_json::{Value, json};

use common::{pred_body, resp};

const VERSION: &str = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa";

fn cfg() -> Config {
    Config::new("r8_token")
}

/// An OpenAPI document with an `Input` of a required `prompt`, an integer `steps` from 1 to 4
/// and an enum `size` (through `allOf`, as Cog writes it).
fn doc() -> Value {
    json!({"components": {"schemas": {
        "Input": {"type": "object", "required": ["prompt"], "properties": {
            "prompt": {"type": "string", "x-order": 0},
            "steps": {"type": "integer", "minimum": 1, "maximum": 4, "x-order": 1},
            "size": {"allOf": [{"$ref": "#/components/schemas/size"}], "x-order": 2}
        }},
        "size": {"type": "string", "enum": ["small", "large"]}
    }}})
}

fn version_json(id: &str, doc: Value) -> Value {
    json!({"id": id, "openapi_schema": doc})
}

/// A made-up API: the model `acme/m` (latest version [`VERSION`] with [`doc`]), the deployment
/// `acme/prod` running it, creates answered `succeeded`. Records every request as `METHOD
/// path`.
struct Api {
    requests: Vec<String>,
    model: Value,
    deployment: Value,
    version: Value,
}

impl Api {
    fn new() -> Api {
        Api {
            requests: Vec::new(),
            model: json!({"owner": "acme", "name": "m", "latest_version": version_json(VERSION, doc())}),
            deployment: json!({"owner": "acme", "name": "prod", "current_release": {
                "number": 1, "model": "acme/m", "version": VERSION
            }}),
            version: version_json(VERSION, doc()),
        }
    }

    fn answer(&mut self, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let path = request.uri().path().to_owned();
        self.requests.push(format!("{} {path}", request.method()));
        let json = |v: &Value| resp(200, v.to_string());
        match (request.method().as_str(), path.as_str()) {
            ("GET", "/v1/models/acme/m") => json(&self.model),
            ("GET", p) if p.starts_with("/v1/models/acme/m/versions/") => {
                match p.rsplit('/').next() {
                    Some(VERSION) => json(&self.version),
                    Some(id) => json(&version_json(id, doc())),
                    None => resp(404, ""),
                }
            }
            ("GET", "/v1/deployments/acme/prod") => json(&self.deployment),
            ("POST", _) => resp(201, pred_body("p1", "succeeded")),
            ("GET", "/v1/predictions/p1") => resp(200, pred_body("p1", "succeeded")),
            _ => resp(
                404,
                r#"{"title":"Not found","detail":"Not found","status":404}"#,
            ),
        }
    }

    /// The requests that were not schema lookups.
    fn creates(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| r.starts_with("POST"))
            .count()
    }

    fn lookups(&self) -> Vec<&str> {
        self.requests
            .iter()
            .filter(|r| r.starts_with("GET /v1/models") || r.starts_with("GET /v1/deployments"))
            .map(String::as_str)
            .collect()
    }
}

/// Drives `flow` against `api` with a made-up clock starting at `now` (a sleep moves it).
fn drive<F: Flow>(mut flow: F, api: &mut Api, mut now: Instant) -> F::Output {
    for _ in 0..100 {
        match flow.poll(now) {
            Step::Send(out) => {
                let response = api.answer(&out.request);
                flow.handle_response(response, now);
            }
            Step::Sleep { until, .. } => now = until,
            Step::Done(output) => return output,
            Step::Receive | Step::Yield(_) => panic!("a create's flow reads whole answers"),
        }
    }
    panic!("the flow did not end");
}

fn create(model: &str, input: Value) -> CreatePrediction {
    CreatePrediction::parse(model).unwrap().input(input)
}

fn validated(
    create: CreatePrediction,
    validation: Validation,
    cache: &Arc<SchemaCache>,
) -> Validated<Call<CreatePrediction>> {
    Validated::new(cfg(), Call::new(create, cfg()), validation, cache.clone())
}

/// A create of the deployment `acme/prod`.
fn deployment(input: Value) -> CreatePrediction {
    CreatePrediction::new(Target::deployment("acme/prod").unwrap()).input(input)
}

/// `create` in a flow validated with `validation` (unless it says otherwise) and `cache`,
/// driven against `api` now.
fn send(
    create: CreatePrediction,
    validation: Validation,
    cache: &Arc<SchemaCache>,
    api: &mut Api,
) -> Result<Prediction, Error> {
    drive(validated(create, validation, cache), api, Instant::now())
}

fn check(model: &str, input: Value, validation: Validation) -> (Result<Prediction, Error>, Api) {
    let mut api = Api::new();
    let cache = Arc::new(SchemaCache::new());
    let result = drive(
        validated(create(model, input), validation, &cache),
        &mut api,
        Instant::now(),
    );
    (result, api)
}

#[test]
fn an_invalid_input_sends_nothing_but_the_lookup_and_lists_every_problem() {
    let (result, api) = check(
        "acme/m",
        json!({"steps": 9, "size": "huge", "sz": 1}),
        Validation::Warn,
    );
    let err = result.unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    let problems = err.validation_errors().unwrap();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    // The unknown `sz` is only a warning in Warn mode.
    assert_eq!(fields, ["prompt", "steps", "size"]);
    assert!(matches!(
        problems.problems()[0].kind,
        ProblemKind::MissingRequired
    ));
    assert_eq!(
        err.to_string(),
        "invalid input (3 problems)\n  \
         - prompt: required input is missing\n  \
         - steps: 9 is out of range (must be >= 1 and <= 4)\n  \
         - size: \"huge\" is not one of \"small\", \"large\""
    );
    assert_eq!(api.requests, ["GET /v1/models/acme/m"]);
}

#[test]
fn a_valid_input_is_created_after_its_schema() {
    let (result, api) = check(
        "acme/m",
        json!({"prompt": "a cat", "steps": 4, "size": "large", "extra": true}),
        Validation::Warn,
    );
    assert_eq!(result.unwrap().id, "p1");
    assert_eq!(
        api.requests,
        [
            "GET /v1/models/acme/m",
            "POST /v1/models/acme/m/predictions"
        ]
    );
}

#[test]
fn strict_refuses_unknown_inputs_and_warn_sends_them() {
    let input = json!({"prompt": "a cat", "promt": "typo"});
    let (result, api) = check("acme/m", input.clone(), Validation::Strict);
    let err = result.unwrap_err();
    let problems = err.validation_errors().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems.problems()[0].field, "promt");
    assert!(problems.problems()[0].kind.is_unknown_field());
    assert_eq!(api.creates(), 0);

    let (result, api) = check("acme/m", input, Validation::Warn);
    assert!(result.is_ok());
    assert_eq!(api.creates(), 1);
}

#[test]
fn off_sends_at_once_and_fetches_nothing() {
    let (result, api) = check("acme/m", json!({"steps": "nine"}), Validation::Off);
    assert!(result.is_ok(), "the API decides");
    assert_eq!(api.requests, ["POST /v1/models/acme/m/predictions"]);
}

#[test]
fn a_create_overrides_the_flows_setting() {
    let cache = Arc::new(SchemaCache::new());
    let mut api = Api::new();
    let bad = json!({"steps": 0});
    let off = create("acme/m", bad.clone()).validate(Validation::Off);
    let flow = validated(off, Validation::Strict, &cache);
    assert_eq!(flow.validation(), Validation::Off);
    assert!(drive(flow, &mut api, Instant::now()).is_ok());
    assert_eq!(api.requests, ["POST /v1/models/acme/m/predictions"]);

    let on = create("acme/m", bad).validate(Validation::Warn);
    let flow = validated(on, Validation::Off, &cache);
    assert_eq!(flow.validation(), Validation::Warn);
    assert!(
        drive(flow, &mut api, Instant::now())
            .unwrap_err()
            .is_invalid_input()
    );
    assert_eq!(api.creates(), 1, "only the first create was sent");
}

#[test]
fn each_target_reads_its_schema_where_it_can() {
    // A model's latest version.
    let c = create("acme/m", json!({}));
    assert_eq!(
        SchemaSource::of(&c),
        SchemaSource::Model {
            owner: "acme".into(),
            name: "m".into()
        }
    );
    // A version of a named model.
    let (result, api) = check(
        &format!("acme/m:{VERSION}"),
        json!({"prompt": 1}),
        Validation::Warn,
    );
    assert!(result.unwrap_err().is_invalid_input());
    assert_eq!(
        api.requests,
        [format!("GET /v1/models/acme/m/versions/{VERSION}")]
    );
    // A bare version id: not validated (a warning), sent.
    let (result, api) = check(VERSION, json!({"prompt": 1}), Validation::Strict);
    assert!(result.is_ok());
    assert_eq!(api.requests, ["POST /v1/predictions"]);
    // ... unless its model is named.
    let named = CreatePrediction::new(Target::Version(VERSION.into()))
        .version_of("acme/m")
        .input(json!({"prompt": 1}));
    assert!(matches!(
        SchemaSource::of(&named),
        SchemaSource::Version { .. }
    ));
    // A deployment: its release's model and version.
    let mut api = Api::new();
    let cache = Arc::new(SchemaCache::new());
    let dep = deployment(json!({"prompt": "x", "steps": 5}));
    let err = send(dep, Validation::Warn, &cache, &mut api).unwrap_err();
    assert_eq!(
        err.validation_errors().unwrap().problems()[0].field,
        "steps"
    );
    assert_eq!(
        api.requests,
        [
            "GET /v1/deployments/acme/prod".to_owned(),
            format!("GET /v1/models/acme/m/versions/{VERSION}")
        ]
    );
    // A second create of the deployment uses the cache.
    let dep = deployment(json!({"prompt": "x"}));
    assert!(send(dep, Validation::Warn, &cache, &mut api).is_ok());
    assert_eq!(api.lookups().len(), 2);
    assert_eq!(api.creates(), 1);
}

#[test]
fn a_deployment_whose_release_names_no_version_is_not_validated() {
    let mut api = Api::new();
    api.deployment = json!({"owner": "acme", "name": "prod", "current_release": {"number": 1}});
    let cache = Arc::new(SchemaCache::new());
    let dep = deployment(json!({"steps": "x"}));
    assert!(send(dep, Validation::Strict, &cache, &mut api).is_ok());
    assert_eq!(
        api.requests,
        [
            "GET /v1/deployments/acme/prod",
            "POST /v1/deployments/acme/prod/predictions"
        ]
    );
}

#[test]
fn a_version_without_an_input_schema_is_not_validated_and_not_fetched_again() {
    let mut api = Api::new();
    api.model = json!({"owner": "acme", "name": "m", "latest_version": {"id": VERSION, "openapi_schema": null}});
    let cache = Arc::new(SchemaCache::new());
    let now = Instant::now();
    for _ in 0..3 {
        let c = create("acme/m", json!({"anything": 1}));
        assert!(drive(validated(c, Validation::Strict, &cache), &mut api, now).is_ok());
    }
    assert_eq!(api.lookups(), ["GET /v1/models/acme/m"]);
    assert_eq!(api.creates(), 3);
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_schema_is_fetched_once_and_a_name_resolved_again_after_its_time_to_live() {
    let mut api = Api::new();
    let cache = Arc::new(SchemaCache::with_limits(8, Duration::from_secs(60)));
    let start = Instant::now();
    for i in 0..5 {
        let c = create("acme/m", json!({"prompt": format!("cat {i}")}));
        let at = start + Duration::from_secs(i * 10);
        assert!(drive(validated(c, Validation::Warn, &cache), &mut api, at).is_ok());
    }
    assert_eq!(api.lookups(), ["GET /v1/models/acme/m"]);
    // The version by its id: cached by the model's lookup.
    let c = create(&format!("acme/m:{VERSION}"), json!({"prompt": "x"}));
    assert!(drive(validated(c, Validation::Warn, &cache), &mut api, start).is_ok());
    assert_eq!(api.lookups().len(), 1);
    // Past the time to live, the name is resolved again (a new version may exist).
    let c = create("acme/m", json!({"prompt": "x"}));
    let later = start + Duration::from_secs(61);
    assert!(drive(validated(c, Validation::Warn, &cache), &mut api, later).is_ok());
    assert_eq!(
        api.lookups(),
        ["GET /v1/models/acme/m", "GET /v1/models/acme/m"]
    );
    assert_eq!(api.creates(), 7);
}

#[test]
fn the_cache_is_bounded_and_drops_the_least_recently_used() {
    let cache = Arc::new(SchemaCache::with_limits(2, Duration::from_secs(60)));
    let mut api = Api::new();
    let now = Instant::now();
    let ids = ["a".repeat(64), "b".repeat(64), "c".repeat(64)];
    for id in &ids {
        let c = create(&format!("acme/m:{id}"), json!({"prompt": "x"}));
        assert!(drive(validated(c, Validation::Warn, &cache), &mut api, now).is_ok());
    }
    assert_eq!(api.lookups().len(), 3);
    assert_eq!(cache.len(), 2, "bounded");
    // The last version is still there: the create goes at once. The first was dropped.
    let first_step = |id: &str| {
        let c = create(&format!("acme/m:{id}"), json!({"prompt": "x"}));
        match validated(c, Validation::Warn, &cache).poll(now) {
            Step::Send(out) => out.request.method().to_string(),
            other => panic!("a request, not {other:?}"),
        }
    };
    assert_eq!(first_step(&ids[2]), "POST", "cached");
    assert_eq!(first_step(&ids[0]), "GET", "dropped: fetched again");
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn a_lookup_that_fails_ends_the_flow_with_its_error_and_creates_nothing() {
    // An unknown model: the API's 404.
    let (result, api) = check("acme/nope", json!({"prompt": "x"}), Validation::Warn);
    let err = result.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(api.creates(), 0);

    // A network failure, once the retry policy gave up.
    let cache = Arc::new(SchemaCache::new());
    let policy = RetryPolicy {
        max_retries: 1,
        ..RetryPolicy::default()
    };
    let mut flow =
        validated(create("acme/m", json!({})), Validation::Warn, &cache).retry_policy(policy);
    let mut now = Instant::now();
    let mut sent = Vec::new();
    let result = loop {
        match flow.poll(now) {
            Step::Send(out) => {
                sent.push(out.request.method().to_string());
                let e = TransportError::new(TransportErrorKind::Connect, "connection refused");
                flow.handle_error(e, now);
            }
            Step::Sleep { until, .. } => now = until,
            Step::Done(result) => break result,
            _ => panic!("unexpected step"),
        }
    };
    assert!(matches!(result, Err(Error::Transport(_))), "{result:?}");
    assert_eq!(sent, ["GET", "GET"], "retried once, never created");
}

#[test]
fn a_run_is_validated_before_its_create_and_waits_after_it() {
    let cache = Arc::new(SchemaCache::new());
    let mut api = Api::new();
    let run = Run::new(
        cfg(),
        create("acme/m", json!({"size": "tiny"})),
        WaitOptions::default(),
    );
    assert!(run.pending_create().is_some());
    let flow = Validated::new(cfg(), run, Validation::Warn, cache.clone());
    let err = drive(flow, &mut api, Instant::now()).unwrap_err();
    assert!(err.is_invalid_input());
    assert_eq!(api.creates(), 0);

    let run = Run::new(
        cfg(),
        create("acme/m", json!({"prompt": "a cat", "size": "small"})),
        WaitOptions::default(),
    );
    let flow = Validated::new(cfg(), run, Validation::Warn, cache);
    assert_eq!(flow.describe().operation, "run");
    let prediction = drive(flow, &mut api, Instant::now()).unwrap();
    assert_eq!(prediction.id, "p1");
    assert_eq!(api.creates(), 1);
    assert_eq!(api.lookups().len(), 1, "the cache from the first run");
}

#[test]
fn parse_keeps_the_model_of_a_version() {
    let c = CreatePrediction::parse(&format!("acme/m:{VERSION}")).unwrap();
    assert_eq!(c.target, Target::Version(VERSION.into()));
    assert_eq!(c.version_of.as_deref(), Some("acme/m"));
    let c = CreatePrediction::parse(VERSION).unwrap();
    assert_eq!(c.version_of, None);
    let c = CreatePrediction::parse("acme/m").unwrap();
    assert_eq!(c.version_of, None);
    assert!(CreatePrediction::parse("not a model").is_err());
    // Neither is sent.
    let c = c.input(json!({"prompt": "x"})).validate(Validation::Strict);
    let request = replicate_protocol::Endpoint::request(&c, &cfg()).unwrap();
    let body: Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body, json!({"input": {"prompt": "x"}}));
}
