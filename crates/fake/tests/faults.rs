//! Fault injection: each fault fires exactly `times` times and is recorded.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{Api, Conn, fast, request, split_url, start};
use replicate_fake::{Fault, FaultRule, Matcher, Origin, RetryAfter};
use serde_json::{Value, json};

fn create_body() -> Vec<u8> {
    serde_json::to_vec(&json!({"input": {"prompt": "x"}})).unwrap()
}

fn raw_create(base: &str, token: &str) -> std::io::Result<common::Resp> {
    let auth = format!("Bearer {token}");
    request(
        "POST",
        &format!("{base}/v1/models/fake/json/predictions"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &create_body(),
    )
}

#[test]
fn throttle_fires_exactly_times_then_passes() {
    let s = start(fast());
    let api = Api::new(&s);
    s.push_fault(
        FaultRule::new(Matcher::new("post", "/predictions"), Fault::throttled(1)).times(2),
    );
    assert_eq!(s.pending_faults().len(), 1);
    for _ in 0..2 {
        let r = raw_create(&s.base_url(), s.token()).unwrap();
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.header("ratelimit-remaining"), Some("0"));
        assert_eq!(r.header("ratelimit-reset"), Some("1"));
        assert_eq!(
            r.json(),
            json!({"detail":"Request was throttled. Expected available in 1 second.","status":429,"retry_after":1})
        );
    }
    assert!(s.pending_faults().is_empty());
    assert_eq!(raw_create(&s.base_url(), s.token()).unwrap().status, 201);
    // Throttled creates did not take effect; all three were recorded, two with the fault.
    assert_eq!(s.prediction_count(), 1);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs.iter().filter(|r| r.fault.is_some()).count(), 2);
    assert_eq!(reqs[0].json().unwrap()["input"]["prompt"], "x");
    // GETs were never matched.
    assert_eq!(api.get("/v1/predictions").status, 200);
}

#[test]
fn status_faults_502_html_503_and_http_date() {
    let s = start(fast());
    let api = Api::new(&s);
    let when = SystemTime::now() + Duration::from_secs(120);
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::status(502),
    ));
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::Status {
            status: 503,
            retry_after: Some(RetryAfter::HttpDate(when)),
            body: None,
        },
    ));
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::Status {
            status: 500,
            retry_after: None,
            body: Some("{\"detail\":\"boom\"}".into()),
        },
    ));
    let r = api.get("/v1/account");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.text().contains("<h1>502 Bad Gateway</h1>"));
    let r = api.get("/v1/account");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.header("retry-after"),
        Some(httpdate::fmt_http_date(when).as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let r = api.get("/v1/account");
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["detail"], "boom");
    assert_eq!(api.get("/v1/account").status, 200);
}

#[test]
fn reset_before_read_does_not_create() {
    let s = start(fast());
    s.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::ResetBeforeRead,
    ));
    let err = raw_create(&s.base_url(), s.token()).unwrap_err();
    assert!(err.kind() == std::io::ErrorKind::ConnectionReset, "{err:?}");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(s.prediction_count(), 0);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].fault, Some(Fault::ResetBeforeRead));
    assert!(reqs[0].body.is_empty());
    // The rule is used up: the retry works.
    assert_eq!(raw_create(&s.base_url(), s.token()).unwrap().status, 201);
    assert_eq!(s.prediction_count(), 1);
}

#[test]
fn reset_after_read_creates_the_prediction() {
    let s = start(fast());
    s.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::ResetAfterRead,
    ));
    let err = raw_create(&s.base_url(), s.token()).unwrap_err();
    assert!(err.kind() == std::io::ErrorKind::ConnectionReset, "{err:?}");
    assert_eq!(s.prediction_count(), 1);
    let api = Api::new(&s);
    let list = api.get("/v1/predictions").json();
    assert_eq!(list["results"].as_array().unwrap().len(), 1);
    assert_eq!(s.requests()[0].fault, Some(Fault::ResetAfterRead));
    assert_eq!(s.requests()[0].json().unwrap()["input"]["prompt"], "x");
}

#[test]
fn truncated_and_garbage_json() {
    let s = start(fast());
    let api = Api::new(&s);
    let full = api.get("/v1/account");
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::TruncatedJson,
    ));
    let r = api.get("/v1/account");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), full.body.len() / 2);
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    assert_eq!(&r.body[..], &full.body[..r.body.len()]);

    s.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::GarbageJson,
    ));
    let r = raw_create(&s.base_url(), s.token()).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    // Garbage answers still applied the request.
    assert_eq!(s.prediction_count(), 1);
    assert_eq!(api.get("/v1/account").json()["username"], "fake");
}

#[test]
fn huge_body_delay_and_redirect() {
    let s = start(fast());
    let api = Api::new(&s);
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/predictions"),
        Fault::HugeBody(5 * 1024 * 1024),
    ));
    let r = api.get("/v1/predictions");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 5 * 1024 * 1024);
    assert_eq!(r.header("content-length"), Some("5242880"));
    assert!(r.body.starts_with(b"{\"padding\":\"xxx"));
    assert!(serde_json::from_slice::<Value>(&r.body).is_ok());

    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::Delay(Duration::from_millis(300)),
    ));
    let t = Instant::now();
    assert_eq!(api.get("/v1/account").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // The fault applied once: the next request is answered normally.
    assert_eq!(api.get("/v1/account").status, 200);

    let target = format!("{}/elsewhere/account", s.files_base_url());
    s.push_fault(FaultRule::new(
        Matcher::any()
            .origin(Origin::Api)
            .path_contains("/v1/account"),
        Fault::Redirect(target.clone()),
    ));
    let r = api.get("/v1/account");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(target.as_str()));
    // Follow it like a careful client: without Authorization.
    let followed = request("GET", &target, &[], b"").unwrap();
    assert_eq!(followed.status, 404);
    let last = s.requests().pop().unwrap();
    assert_eq!(last.origin, Origin::Files);
    assert_eq!(last.path, "/elsewhere/account");
    assert_eq!(last.header("authorization"), None);
}

#[test]
fn faults_match_origin_and_connection_survives_status_faults() {
    let s = start(fast());
    let (host, _) = split_url(&s.base_url());
    let auth = format!("Bearer {}", s.token());
    s.push_fault(FaultRule::new(Matcher::any().origin(Origin::Files), Fault::status(500)).times(3));
    let mut conn = Conn::open(&host).unwrap();
    for _ in 0..3 {
        assert_eq!(
            conn.send("GET", "/v1/account", &[("Authorization", &auth)], b"")
                .unwrap()
                .status,
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(
            request("GET", &format!("{}/x", s.files_base_url()), &[], b"")
                .unwrap()
                .status,
            500
        );
    }
    assert_eq!(
        request("GET", &format!("{}/x", s.files_base_url()), &[], b"")
            .unwrap()
            .status,
        404
    );
    assert_eq!(s.connections_accepted(), 1);
    assert_eq!(s.files_connections_accepted(), 4);
    // A zero-times rule never fires.
    s.push_fault(FaultRule::new(Matcher::any(), Fault::status(500)).times(0));
    assert_eq!(
        conn.send("GET", "/v1/account", &[("Authorization", &auth)], b"")
            .unwrap()
            .status,
        200
    );
}
