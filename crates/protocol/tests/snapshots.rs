//! Snapshot tests: every fixture parsed, every request the crate builds rendered as text, and the
//! API's error answers as the SDK reports them.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{PROXY, TOKEN, body_json, fixture, fixture_json, proxy_cfg, render, resp, resp_with};
use http::StatusCode;
use replicate_protocol::{
    ApiError, CancelAfter, CancelPrediction, Config, CreatePrediction, Endpoint, Error, Flow,
    GetPrediction, ListPredictions, Page, Paginated, PollPolicy, Prediction, Step, SyncWait,
    Target, Wait, WaitOptions, WebhookEvent, check_status, parse_prediction,
};
use serde_json::json;
use time::macros::datetime;

const LORA_VERSION: &str = "2a6b576af31790b470f0a8442e1e9791213fa13799cbb65a9fc1436e96389574";

const PROMPT: &str = "Japanese cartoon anime style, (1 person) (Gender: Male, Age: 30, Hair: Short black hair, Outfit: Dark blue hunting attire, includes a fitted jacket and trousers.) (A dimly lit room filled with tension, is questioning Female, 27 years old, long black hair, pink tulle dress., who stands nervously in her pink dress, the sound of rain pattering against the window.)";

fn seed_by_model() -> CreatePrediction {
    CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell").unwrap()).input(json!({
        "prompt": PROMPT,
        "go_fast": true,
        "megapixels": "1",
        "num_outputs": 1,
        "aspect_ratio": "1:1",
        "output_format": "jpg",
        "output_quality": 80,
        "num_inference_steps": 4
    }))
}

fn seed_by_version() -> CreatePrediction {
    CreatePrediction::new(
        Target::parse(&format!("lucataco/flux-schnell-lora:{LORA_VERSION}")).unwrap(),
    )
    .input(json!({
        "prompt": PROMPT,
        "hf_lora": "alvdansen/frosting_lane_flux",
        "lora_scale": 0.8,
        "num_outputs": 1,
        "aspect_ratio": "1:1",
        "output_format": "webp",
        "output_quality": 80,
        "prompt_strength": 0.8,
        "num_inference_steps": 4
    }))
}

fn prediction_fixture(rel: &str) -> Prediction {
    parse_prediction(&resp(200, fixture(rel))).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The seed's documented requests.

#[test]
fn seed_create_by_model_request() {
    let req = seed_by_model().request(&proxy_cfg()).unwrap();
    assert_eq!(
        req.uri(),
        "https://proxy.example/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
    );
    assert_eq!(req.method(), "POST");
    assert_eq!(
        req.headers()["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(req.headers()["content-type"], "application/json");
    assert_eq!(
        body_json(&req),
        fixture_json("seed/create_by_model_request.json")
    );
    insta::assert_snapshot!("request_seed_create_by_model", render(&req));
}

#[test]
fn seed_create_by_version_request() {
    let req = seed_by_version().request(&proxy_cfg()).unwrap();
    assert_eq!(req.uri(), "https://proxy.example/replicate/v1/predictions");
    assert_eq!(req.method(), "POST");
    assert_eq!(
        req.headers()["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(
        body_json(&req),
        fixture_json("seed/create_by_version_request.json")
    );
    // The documented body names the bare version id, not owner/name:version.
    assert_eq!(body_json(&req)["version"], LORA_VERSION);
    insta::assert_snapshot!("request_seed_create_by_version", render(&req));
}

// ---------------------------------------------------------------------------------------------
// Every other request the crate builds.

#[test]
fn get_and_cancel_requests() {
    let cfg = proxy_cfg();
    let get = GetPrediction::new("ctdwaehfz1rm80cmd5nsjd8114")
        .request(&cfg)
        .unwrap();
    assert_eq!(
        get.uri(),
        "https://proxy.example/replicate/v1/predictions/ctdwaehfz1rm80cmd5nsjd8114"
    );
    insta::assert_snapshot!("request_get", render(&get));
    let cancel = CancelPrediction::new("ctdwaehfz1rm80cmd5nsjd8114")
        .request(&cfg)
        .unwrap();
    assert_eq!(cancel.method(), "POST");
    assert!(cancel.body().is_empty());
    insta::assert_snapshot!("request_cancel", render(&cancel));
}

#[test]
fn list_requests() {
    let cfg = proxy_cfg();
    let first = ListPredictions::new().request(&cfg).unwrap();
    assert_eq!(
        first.uri(),
        "https://proxy.example/replicate/v1/predictions"
    );
    insta::assert_snapshot!("request_list_first_page", render(&first));

    let filtered = ListPredictions {
        cursor: Some("cD0yMDI1LTAxLTE1KzEwJTNBMDM=".to_owned()),
        created_after: Some(datetime!(2025-01-01 00:00:00 UTC)),
        created_before: Some(datetime!(2025-01-15 12:30:00.5 +01:00)),
    }
    .request(&cfg)
    .unwrap();
    assert_eq!(
        filtered.uri(),
        "https://proxy.example/replicate/v1/predictions?cursor=cD0yMDI1LTAxLTE1KzEwJTNBMDM%3D&created_after=2025-01-01T00%3A00%3A00Z&created_before=2025-01-15T12%3A30%3A00.5%2B01%3A00"
    );
    insta::assert_snapshot!("request_list_cursor_and_dates", render(&filtered));
}

#[test]
fn create_by_deployment_request() {
    let req = CreatePrediction::new(Target::deployment("acme/upscaler-prod").unwrap())
        .input(json!({"image": "https://example.com/photo.jpg", "scale": 4}))
        .request(&proxy_cfg())
        .unwrap();
    assert_eq!(
        req.uri(),
        "https://proxy.example/replicate/v1/deployments/acme/upscaler-prod/predictions"
    );
    assert!(body_json(&req).get("version").is_none());
    insta::assert_snapshot!("request_create_by_deployment", render(&req));
}

#[test]
fn create_with_webhook_request() {
    let req = seed_by_model()
        .input(json!({"prompt": "a cat"}))
        .webhook(
            "https://hooks.example.com/replicate?source=sdk",
            &[WebhookEvent::Start, WebhookEvent::Completed],
        )
        .request(&proxy_cfg())
        .unwrap();
    let body = body_json(&req);
    assert_eq!(body["webhook_events_filter"], json!(["start", "completed"]));
    assert_eq!(
        body["webhook"],
        "https://hooks.example.com/replicate?source=sdk"
    );
    insta::assert_snapshot!("request_create_with_webhook", render(&req));

    // Without events, the filter is left out (the API then sends every event).
    let all = CreatePrediction::new(Target::parse("a/b").unwrap())
        .webhook("https://hooks.example.com/x", &[])
        .request(&proxy_cfg())
        .unwrap();
    assert!(body_json(&all).get("webhook_events_filter").is_none());
}

#[test]
fn create_with_prefer_wait_requests() {
    let cfg = proxy_cfg();
    let max = seed_by_version()
        .input(json!({"prompt": "a cat"}))
        .sync(SyncWait::Max)
        .request(&cfg)
        .unwrap();
    assert_eq!(max.headers()["prefer"], "wait");
    insta::assert_snapshot!("request_create_prefer_wait", render(&max));

    let ten = seed_by_model()
        .input(json!({"prompt": "a cat"}))
        .sync(SyncWait::seconds(10).unwrap())
        .request(&cfg)
        .unwrap();
    assert_eq!(ten.headers()["prefer"], "wait=10");
    insta::assert_snapshot!("request_create_prefer_wait_10", render(&ten));
}

#[test]
fn create_with_cancel_after_and_stream_request() {
    let req = seed_by_model()
        .input(json!({"prompt": "a cat"}))
        .cancel_after("1h30m45s".parse::<CancelAfter>().unwrap())
        .stream(true)
        .request(&proxy_cfg())
        .unwrap();
    assert_eq!(req.headers()["cancel-after"], "1h30m45s");
    assert_eq!(body_json(&req)["stream"], true);
    insta::assert_snapshot!("request_create_cancel_after_stream", render(&req));
}

#[test]
fn wait_machine_requests() {
    let base = Instant::now();
    let opts = WaitOptions {
        poll: PollPolicy::fixed(Duration::from_secs(1)),
        deadline: Some(base + Duration::from_secs(1)),
        ..WaitOptions::default()
    };
    let mut wait = Wait::new(proxy_cfg(), "qpt5jq1fssrmc0cmd5hvy31mdg", opts.clone());
    let Step::Send(poll) = wait.poll(base) else {
        panic!("expected a poll")
    };
    assert_eq!(poll.request.method(), "GET");
    insta::assert_snapshot!("request_wait_poll", render(&poll.request));
    wait.handle_response(
        resp(
            200,
            common::pred_body("qpt5jq1fssrmc0cmd5hvy31mdg", "processing"),
        ),
        base,
    );
    let Step::Send(cancel) = wait.poll(base + Duration::from_secs(1)) else {
        panic!("expected a cancel at the deadline")
    };
    insta::assert_snapshot!("request_wait_cancel", render(&cancel.request));

    // The same machine for a training.
    let mut training = Wait::new(proxy_cfg(), "zz4ibbonubfz7carwiefibzgga", opts).for_training();
    let Step::Send(poll) = training.poll(base) else {
        panic!("expected a poll")
    };
    assert_eq!(
        poll.request.uri(),
        "https://proxy.example/replicate/v1/trainings/zz4ibbonubfz7carwiefibzgga"
    );
    insta::assert_snapshot!("request_training_poll", render(&poll.request));
    training.handle_response(
        resp(
            200,
            common::pred_body("zz4ibbonubfz7carwiefibzgga", "processing"),
        ),
        base,
    );
    let Step::Send(cancel) = training.poll(base + Duration::from_secs(1)) else {
        panic!("expected a cancel at the deadline")
    };
    assert_eq!(
        cancel.request.uri(),
        "https://proxy.example/replicate/v1/trainings/zz4ibbonubfz7carwiefibzgga/cancel"
    );
    insta::assert_snapshot!("request_training_cancel", render(&cancel.request));
}

#[test]
fn next_page_request_goes_to_the_proxy() {
    let page: Page<Prediction> = ListPredictions::new()
        .parse(resp(200, fixture("pages/predictions_page1.json")))
        .unwrap();
    let next = ListPredictions::new().next_page(&page).unwrap();
    let req = next.request(&proxy_cfg()).unwrap();
    assert!(req.uri().to_string().starts_with(PROXY));
    insta::assert_snapshot!("request_list_next_page", render(&req));
}

#[test]
fn public_api_request_with_custom_user_agent() {
    let cfg = Config::new("r8_0123456789abcdef")
        .with_user_agent("my-app/2.1 (+https://example.com)")
        .unwrap();
    let req = GetPrediction::new("gm3qorzdhgbfurvjtvhg6dckhu")
        .request(&cfg)
        .unwrap();
    assert_eq!(
        req.uri(),
        "https://api.replicate.com/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu"
    );
    insta::assert_snapshot!("request_public_api_custom_user_agent", render(&req));
}

// ---------------------------------------------------------------------------------------------
// Fixtures parsed.

#[test]
fn seed_responses_parsed() {
    let created = prediction_fixture("seed/create_response.json");
    insta::assert_debug_snapshot!("parsed_seed_create_response", created);
    let got = prediction_fixture("seed/get_response.json");
    insta::assert_debug_snapshot!("parsed_seed_get_response", got);
    // Re-serialising keeps every documented field.
    insta::assert_json_snapshot!("reserialised_seed_get_response", got);
}

#[test]
fn prediction_fixtures_parsed() {
    for name in [
        "processing_partial_logs",
        "failed",
        "canceled",
        "aborted",
        "output_string",
        "output_json",
        "output_text_tokens",
        "unknown_status_and_fields",
        "hidden_version",
        "data_removed",
        "deadline",
    ] {
        let p = prediction_fixture(&format!("predictions/{name}.json"));
        insta::assert_json_snapshot!(format!("prediction_{name}"), p);
    }
}

#[test]
fn prediction_fixture_summaries() {
    let mut out = String::new();
    for name in [
        "processing_partial_logs",
        "failed",
        "canceled",
        "aborted",
        "output_string",
        "output_json",
        "output_text_tokens",
        "unknown_status_and_fields",
        "hidden_version",
        "data_removed",
        "deadline",
    ] {
        let p = prediction_fixture(&format!("predictions/{name}.json"));
        out.push_str(&format!(
            "{name}: status={:?} terminal={} url={:?} urls={} text={:?} error={:?} extra_keys={:?}\n  result: {}\n",
            p.status,
            p.status.is_terminal(),
            p.output_url(),
            p.output_urls().len(),
            p.output_text().map(|t| t.chars().take(40).collect::<String>()),
            p.error_message(),
            p.extra.keys().collect::<Vec<_>>(),
            match p.clone().into_result() {
                Ok(p) => format!("Ok({})", p.id),
                Err(e) => format!("Err({e})"),
            }
        ));
    }
    insta::assert_snapshot!("prediction_summaries", out);
}

#[test]
fn page_fixtures_parsed() {
    let first: Page<Prediction> = ListPredictions::new()
        .parse(resp(200, fixture("pages/predictions_page1.json")))
        .unwrap();
    assert_eq!(first.results.len(), 2);
    assert_eq!(
        first.next_cursor().as_deref(),
        Some("cD0yMDI1LTAxLTE1KzEwJTNBMDMlM0EzOS44OTYwMDAlMkIwMCUzQTAw")
    );
    insta::assert_json_snapshot!("page_predictions_page1", first);
    let last: Page<Prediction> = ListPredictions::new()
        .parse(resp(200, fixture("pages/predictions_last.json")))
        .unwrap();
    assert_eq!(last.next_cursor(), None);
    assert_eq!(
        last.previous_cursor().as_deref(),
        Some("cj0xJnA9MjAyNS0wMS0xNSswOSUzQTU0JTNBNTUuNTY2MDAwJTJCMDAlM0EwMA==")
    );
    insta::assert_json_snapshot!("page_predictions_last", last);
}

// ---------------------------------------------------------------------------------------------
// Errors.

fn error_text(err: &Error) -> String {
    format!("Display:\n{err}\n\nDebug:\n{err:#?}\n")
}

fn api_error(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Error {
    check_status(&resp_with(status, headers, body)).unwrap_err()
}

#[test]
fn error_401() {
    let err = api_error(
        401,
        &[("content-type", "application/problem+json")],
        fixture("errors/401.json"),
    );
    assert_eq!(err.status(), Some(401));
    assert_eq!(
        err.to_string(),
        "the API answered HTTP 401 Unauthorized: Unauthenticated: You did not pass a valid authentication token"
    );
    insta::assert_snapshot!("error_401", error_text(&err));
}

#[test]
fn error_404() {
    let err = api_error(
        404,
        &[("content-type", "application/problem+json")],
        fixture("errors/404.json"),
    );
    assert_eq!(
        err.api()
            .unwrap()
            .problem
            .as_ref()
            .unwrap()
            .title
            .as_deref(),
        Some("Not found")
    );
    insta::assert_snapshot!("error_404", error_text(&err));
}

#[test]
fn error_422() {
    let err = api_error(
        422,
        &[("content-type", "application/problem+json")],
        fixture("errors/422.json"),
    );
    let problem = err.api().unwrap().problem.as_ref().unwrap();
    assert!(
        problem
            .detail
            .as_deref()
            .unwrap()
            .contains("input.num_outputs")
    );
    assert_eq!(problem.extra["invalid_fields"].as_array().unwrap().len(), 3);
    insta::assert_snapshot!("error_422", error_text(&err));
}

#[test]
fn error_429() {
    let err = api_error(
        429,
        &[
            ("content-type", "application/problem+json"),
            ("retry-after", "5"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "5"),
        ],
        fixture("errors/429.json"),
    );
    let api = err.api().unwrap();
    assert_eq!(api.retry_delay(), Some(Duration::from_secs(5)));
    assert_eq!(api.rate_limit.remaining, Some(0));
    assert!(err.to_string().ends_with("(retry after 5s)"));
    insta::assert_snapshot!("error_429", error_text(&err));
}

#[test]
fn error_502_html() {
    let err = api_error(
        502,
        &[("content-type", "text/html"), ("server", "nginx/1.24.0")],
        fixture("errors/502.html"),
    );
    let api = err.api().unwrap();
    assert!(api.problem.is_none());
    assert!(
        api.body_excerpt
            .as_deref()
            .unwrap()
            .contains("502 Bad Gateway")
    );
    assert!(api.is_retryable());
    insta::assert_snapshot!("error_502_html", error_text(&err));
    // The same through a prediction parse: an HTML error is an API error, not a decode error.
    let via_parse = parse_prediction(&resp(502, fixture("errors/502.html"))).unwrap_err();
    assert_eq!(via_parse.status(), Some(502));
    assert!(matches!(via_parse, Error::Api(_)));
    let direct = ApiError::from_response(
        StatusCode::BAD_GATEWAY,
        &http::HeaderMap::new(),
        &fixture("errors/502.html"),
    );
    assert_eq!(via_parse.api(), Some(&direct));
}

#[test]
fn outcome_errors_rendered() {
    let failed = prediction_fixture("predictions/failed.json")
        .into_result()
        .unwrap_err();
    let aborted = prediction_fixture("predictions/aborted.json")
        .into_result()
        .unwrap_err();
    let not_finished = prediction_fixture("predictions/deadline.json")
        .into_result()
        .unwrap_err();
    let decode = parse_prediction(&resp(200, b"{\"id\": 12}".to_vec())).unwrap_err();
    let unknown = replicate_protocol::transport_failure(
        replicate_protocol::RetryClass::CreateOnce,
        replicate_protocol::TransportError::new(
            replicate_protocol::TransportErrorKind::Timeout,
            "read timed out after 70s",
        ),
    );
    let text = [failed, aborted, not_finished, decode, unknown]
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("outcome_errors_display", text);
}

#[test]
fn run_first_request_is_the_create() {
    let mut run = replicate_protocol::Run::new(
        proxy_cfg(),
        seed_by_model().sync(SyncWait::Max),
        WaitOptions::default(),
    );
    let Step::Send(out) = run.poll(Instant::now()) else {
        panic!("expected the create")
    };
    assert_eq!(
        out.timeout,
        replicate_protocol::Timeout::Total(Duration::from_secs(70))
    );
    assert_eq!(
        render(&out.request),
        render(
            &seed_by_model()
                .sync(SyncWait::Max)
                .request(&proxy_cfg())
                .unwrap()
        )
    );
}
