//! No client input panics the server, and a panic in one handler answers 500 while the server
//! keeps serving (no poisoned lock, no half-stored prediction).
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use common::{Api, Conn, fast, split_url, start};
use replicate_fake::{Fault, FaultRule, Matcher, Options};
use serde_json::json;

fn create_with(api: &Api, headers: &[(&str, &str)]) -> common::Resp {
    api.post_with(
        "/v1/models/fake/json/predictions",
        &json!({"input": {"prompt": "x"}}),
        headers,
    )
}

#[test]
fn huge_cancel_after_is_422_and_the_server_still_lists_predictions() {
    let s = start(fast());
    let api = Api::new(&s);
    for v in [
        "300000000000s",
        "300000000000",
        "1e30",
        "inf",
        "99999999999999999999999999999h",
        "8761h",
    ] {
        let r = create_with(&api, &[("Cancel-After", v)]);
        assert_eq!(r.status, 422, "Cancel-After: {v}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{v}"
        );
        let p = r.json();
        assert_eq!(p["status"], 422);
        assert_eq!(p["title"], "Invalid Cancel-After header");
        assert!(p["detail"].as_str().unwrap().contains("too large"), "{p}");
    }
    for v in ["NaN", "-5", "5x"] {
        let r = create_with(&api, &[("Cancel-After", v)]);
        assert_eq!(r.status, 422, "Cancel-After: {v}");
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("Cannot parse")
        );
    }
    assert_eq!(s.prediction_count(), 0);
    let list = api.get("/v1/predictions");
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["results"], json!([]));

    // The largest accepted value works, and its deadline renders.
    let r = create_with(&api, &[("Cancel-After", "8760h")]);
    assert_eq!(r.status, 201, "{}", r.text());
    let deadline = r.json()["deadline"].as_str().unwrap().to_owned();
    assert!(deadline.ends_with('Z'), "{deadline}");
    let list = api.get("/v1/predictions");
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["results"].as_array().unwrap().len(), 1);
}

#[test]
fn header_durations_scaled_past_the_limits_are_422_not_a_panic() {
    let s = start(Options {
        header_time_scale: 1e300,
        ..fast()
    });
    let api = Api::new(&s);
    let r = create_with(&api, &[("Cancel-After", "1h")]);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["title"], "Invalid Cancel-After header");
    let r = create_with(&api, &[("Prefer", "wait=5")]);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["title"], "Invalid Prefer header");
    assert_eq!(s.prediction_count(), 0);
    assert_eq!(api.get("/v1/predictions").status, 200);
    // Without those headers the server works as usual.
    assert_eq!(create_with(&api, &[]).status, 201);
}

#[test]
fn a_handler_panic_answers_500_and_the_next_request_succeeds() {
    let s = start(fast());
    let api = Api::new(&s);
    api.create("fake/json");
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/predictions"),
        Fault::Panic,
    ));
    let (host, _) = split_url(&s.base_url());
    let auth = api.auth();
    let mut conn = Conn::open(&host).unwrap();
    let r = conn
        .send("GET", "/v1/predictions", &[("Authorization", &auth)], b"")
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["status"], 500);
    // The same connection goes on, and the state lock the handler held is usable.
    let r = conn
        .send("GET", "/v1/predictions", &[("Authorization", &auth)], b"")
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 1);
    api.create("fake/json");
    assert_eq!(s.prediction_count(), 2);
    assert_eq!(s.requests()[1].fault, Some(Fault::Panic));
}

#[test]
fn a_panic_on_a_create_stores_nothing() {
    let s = start(fast());
    let api = Api::new(&s);
    s.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::Panic,
    ));
    let r = create_with(&api, &[]);
    assert_eq!(r.status, 500);
    assert_eq!(s.prediction_count(), 0);
    assert_eq!(api.get("/v1/predictions").json()["results"], json!([]));
    assert_eq!(create_with(&api, &[]).status, 201);
    assert_eq!(api.get("/v1/predictions").status, 200);
}
