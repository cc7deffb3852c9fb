//! Image models (`Output::Urls`) honour the input `num_outputs`, like real ones.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Api, fast, request, start};
use replicate_fake::{MAX_NUM_OUTPUTS, ModelScript, Output};
use serde_json::{Value, json};

const FLUX: &str = "black-forest-labs/flux-schnell";

/// Creates a prediction of `model` with this input; asserts 201 and waits for the end.
fn run(api: &Api, model: &str, input: Value) -> Value {
    let r = api.post(
        &format!("/v1/models/{model}/predictions"),
        &json!({ "input": input }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    api.wait(&id, Duration::from_secs(20))
}

fn urls(p: &Value) -> Vec<String> {
    p["output"]
        .as_array()
        .unwrap_or_else(|| panic!("a list output: {p}"))
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn num_outputs_chooses_how_many_files_an_image_model_makes() {
    let s = start(fast());
    let api = Api::new(&s);

    // Default: one file for flux-schnell (as the real model), the script's count otherwise.
    let p = run(&api, FLUX, json!({"prompt": "a cat"}));
    assert_eq!(p["status"], "succeeded");
    assert_eq!(urls(&p).len(), 1);
    assert_eq!(p["metrics"]["image_count"], 1);
    let p = run(&api, "fake/urls", json!({"prompt": "a cat"}));
    assert_eq!(urls(&p).len(), 3);
    // `null` counts as absent.
    let p = run(&api, FLUX, json!({"prompt": "a cat", "num_outputs": null}));
    assert_eq!(urls(&p).len(), 1);

    // Two: two distinct files, each served by the files origin, and counted in the metrics.
    let p = run(&api, FLUX, json!({"prompt": "a cat", "num_outputs": 2}));
    assert_eq!(p["status"], "succeeded");
    let two = urls(&p);
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1]);
    assert!(two[0].ends_with("/out-0.jpg") && two[1].ends_with("/out-1.jpg"));
    assert_eq!(p["metrics"]["image_count"], 2);
    for url in &two {
        let r = request("GET", url, &[], b"").unwrap();
        assert_eq!(r.status, 200, "{url}");
        assert!(r.body.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG at {url}");
    }

    // The maximum, on a scripted model too; and fewer than the script's default.
    s.set_model("acme/gallery", ModelScript::succeed(Output::Urls(4)));
    let p = run(
        &api,
        "acme/gallery",
        json!({"prompt": "x", "num_outputs": MAX_NUM_OUTPUTS}),
    );
    assert_eq!(urls(&p).len(), MAX_NUM_OUTPUTS);
    let p = run(&api, "fake/urls", json!({"prompt": "x", "num_outputs": 1}));
    assert_eq!(urls(&p).len(), 1);
}

#[test]
fn a_bad_num_outputs_is_answered_422_and_creates_nothing() {
    let s = start(fast());
    let api = Api::new(&s);
    let bad = [
        (json!(0), "Must be an integer from 1 to 10"),
        (
            json!(MAX_NUM_OUTPUTS + 1),
            "Must be an integer from 1 to 10",
        ),
        (json!(-1), "Must be an integer from 1 to 10"),
        (json!(2.5), "Must be an integer from 1 to 10"),
        (json!(1e30), "Must be an integer from 1 to 10"),
        (json!("2"), "Invalid type. Expected: integer, given: string"),
        (
            json!(true),
            "Invalid type. Expected: integer, given: boolean",
        ),
        (json!([2]), "Invalid type. Expected: integer, given: array"),
    ];
    for (value, message) in bad {
        for path in [
            format!("/v1/models/{FLUX}/predictions"),
            format!("/v1/deployments/{FLUX}/predictions"),
            "/replicate/v1/models/fake/urls/predictions".to_owned(),
        ] {
            let r = api.post(
                &path,
                &json!({"input": {"prompt": "x", "num_outputs": value}}),
            );
            assert_eq!(r.status, 422, "{path} {value}: {}", r.text());
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            let body = r.json();
            assert_eq!(body["title"], "Input validation failed");
            assert_eq!(
                body["detail"],
                format!("- input.num_outputs: {message}\n"),
                "{value}"
            );
        }
        let r = api.post(
            "/v1/predictions",
            &json!({"version": FLUX, "input": {"num_outputs": value}}),
        );
        assert_eq!(r.status, 422, "{value}: {}", r.text());
    }
    assert_eq!(s.prediction_count(), 0);
}

#[test]
fn models_without_file_lists_ignore_num_outputs() {
    let s = start(fast());
    let api = Api::new(&s);
    // A single-URL model (any unscripted model) and a JSON model take no `num_outputs`.
    let p = run(&api, "someone/anything", json!({"num_outputs": 3}));
    assert!(p["output"].is_string(), "{p}");
    let p = run(&api, "fake/json", json!({"num_outputs": "many"}));
    assert_eq!(p["output"]["answer"], 42);
}

#[test]
fn image_models_list_num_outputs_in_their_input_schema() {
    let s = start(fast());
    let api = Api::new(&s);
    let m = api.get(&format!("/v1/models/{FLUX}")).json();
    let input = &m["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"];
    let n = &input["properties"]["num_outputs"];
    assert_eq!(n["type"], "integer");
    assert_eq!(n["minimum"], 1);
    assert_eq!(n["maximum"], MAX_NUM_OUTPUTS);
    assert_eq!(n["default"], 1);
    let m = api.get("/v1/models/fake/json").json();
    let input = &m["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"];
    assert!(input["properties"]["prompt"].is_object());
    assert!(input["properties"].get("num_outputs").is_none());
}
