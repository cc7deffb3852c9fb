//! The request log is bounded: a ring buffer of `request_log_capacity` entries, bodies cut to
//! `max_recorded_body_bytes`, no body for unauthenticated requests, bodies over
//! `max_request_body_bytes` refused with 413, and nothing at all with `record_requests: false`.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Api, fast, request, split_url, start};
use replicate_fake::{
    DEFAULT_MAX_RECORDED_BODY_BYTES, DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_REQUEST_LOG_CAPACITY,
    Fault, FaultRule, Matcher, Options, Origin, RateLimit,
};
use serde_json::json;

#[test]
fn defaults_are_documented_values() {
    let o = Options::default();
    assert_eq!(o.request_log_capacity, DEFAULT_REQUEST_LOG_CAPACITY);
    assert_eq!(DEFAULT_REQUEST_LOG_CAPACITY, 10_000);
    assert_eq!(o.max_recorded_body_bytes, DEFAULT_MAX_RECORDED_BODY_BYTES);
    assert_eq!(DEFAULT_MAX_RECORDED_BODY_BYTES, 64 * 1024);
    assert_eq!(o.max_request_body_bytes, DEFAULT_MAX_REQUEST_BODY_BYTES);
    assert_eq!(DEFAULT_MAX_REQUEST_BODY_BYTES, 128 * 1024 * 1024);
    assert!(o.record_requests);
    assert!(o.rate_limit.is_none());
}

#[test]
fn request_log_is_a_ring_buffer_dropping_the_oldest() {
    let s = start(Options {
        request_log_capacity: 3,
        ..fast()
    });
    let api = Api::new(&s);
    for i in 0..5 {
        assert_eq!(api.get(&format!("/v1/predictions?i={i}")).status, 200);
    }
    let reqs = s.requests();
    assert_eq!(reqs.len(), 3);
    let queries: Vec<_> = reqs.iter().map(|r| r.query.clone().unwrap()).collect();
    assert_eq!(queries, ["i=2", "i=3", "i=4"]);
    assert_eq!(s.dropped_requests(), 2);
    s.clear_requests();
    assert!(s.requests().is_empty());
    assert_eq!(s.dropped_requests(), 0);
    assert_eq!(api.get("/v1/account").status, 200);
    assert_eq!(s.requests().len(), 1);
}

#[test]
fn recorded_bodies_are_capped_and_flagged_but_handlers_see_them_whole() {
    let s = start(Options {
        max_recorded_body_bytes: 1000,
        ..fast()
    });
    let api = Api::new(&s);
    let prompt = "p".repeat(10_000);
    let r = api.post(
        "/v1/models/fake/json/predictions",
        &json!({"input": {"prompt": prompt}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["input"]["prompt"].as_str().unwrap().len(), 10_000);
    let small = api.post(
        "/v1/models/fake/json/predictions",
        &json!({"input": {"prompt": "x"}}),
    );
    assert_eq!(small.status, 201);

    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    let big = &reqs[0];
    assert_eq!(big.body.len(), 1000);
    assert!(big.body_truncated);
    assert!(big.body_len > 10_000);
    assert!(big.body.starts_with(b"{\"input\":{\"prompt\":\"ppp"));
    assert!(big.json().is_none());
    let small = &reqs[1];
    assert!(!small.body_truncated);
    assert_eq!(small.body_len, small.body.len());
    assert_eq!(small.json().unwrap()["input"]["prompt"], "x");
}

#[test]
fn unauthenticated_bodies_are_never_recorded() {
    let s = start(fast());
    let secret = "s".repeat(100_000);
    let body = serde_json::to_vec(&json!({"input": {"secret": secret}})).unwrap();
    let url = format!("{}/v1/models/fake/json/predictions", s.base_url());
    let wrong = request(
        "POST",
        &url,
        &[
            ("Authorization", "Bearer wrong-token"),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    let missing = request("POST", &url, &[("Content-Type", "application/json")], &body).unwrap();
    assert_eq!(missing.status, 401);
    // Under the prefix too.
    let prefixed = request(
        "POST",
        &format!("{}/v1/models/fake/json/predictions", s.prefixed_base_url()),
        &[("Authorization", "Bearer nope")],
        &body,
    )
    .unwrap();
    assert_eq!(prefixed.status, 401);
    // Nor when a fault answers instead.
    s.push_fault(FaultRule::new(Matcher::any(), Fault::status(503)));
    let faulted = request("POST", &url, &[("Authorization", "Bearer bad")], &body).unwrap();
    assert_eq!(faulted.status, 503);
    assert_eq!(s.prediction_count(), 0);

    let reqs = s.requests();
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        assert!(r.body.is_empty(), "an unauthenticated body was recorded");
        assert_eq!(r.body_len, body.len());
        assert!(r.body_truncated);
    }
    assert_eq!(reqs[3].fault, Some(Fault::status(503)));
    // The headers are still there, for tests of what clients send.
    assert_eq!(reqs[0].header("authorization"), Some("Bearer wrong-token"));
}

#[test]
fn bodies_sent_to_unknown_routes_are_kept_only_up_to_the_record_cap() {
    let s = start(Options {
        max_recorded_body_bytes: 100,
        ..fast()
    });
    let api = Api::new(&s);
    let body = vec![b'z'; 1 << 20];
    let auth = api.auth();
    let r = request(
        "POST",
        &format!("{}/v1/no/such/route", s.base_url()),
        &[("Authorization", &auth)],
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 404);
    let r = request("POST", &format!("{}/x.png", s.files_base_url()), &[], &body).unwrap();
    assert_eq!(r.status, 405);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].origin, Origin::Api);
    assert_eq!(reqs[1].origin, Origin::Files);
    for r in &reqs {
        assert_eq!(r.body.len(), 100);
        assert_eq!(r.body_len, 1 << 20);
        assert!(r.body_truncated);
    }
}

#[test]
fn record_requests_false_records_nothing() {
    let s = start(Options {
        record_requests: false,
        ..fast()
    });
    let api = Api::new(&s);
    assert_eq!(api.get("/v1/account").status, 200);
    api.create("fake/json");
    assert!(s.requests().is_empty());
    assert_eq!(s.dropped_requests(), 0);

    let s = start(Options {
        request_log_capacity: 0,
        ..fast()
    });
    assert_eq!(Api::new(&s).get("/v1/account").status, 200);
    assert!(s.requests().is_empty());
}

/// Sends a request head announcing `len` body bytes, then `body` (maybe fewer), and reads the
/// answer's status line.
fn status_of_raw(host: &str, head: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before taking the whole body.
    let _ = s.write_all(body);
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed without an answer");
        got.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&got).into_owned();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn request_bodies_over_the_limit_answer_413_and_take_no_effect() {
    let s = start(Options {
        max_request_body_bytes: 64 * 1024,
        ..fast()
    });
    let (host, _) = split_url(&s.base_url());
    let auth = format!("Bearer {}", s.token());

    // An announced Content-Length over the limit: refused before the body is read.
    let head = format!(
        "POST /v1/models/fake/json/predictions HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
    );
    assert_eq!(status_of_raw(&host, &head, b""), 413);

    // A chunked body that turns out too large: refused once it passes the limit.
    let head = format!(
        "POST /v1/models/fake/json/predictions HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut body = Vec::new();
    for _ in 0..4 {
        body.extend_from_slice(format!("{:x}\r\n", 32 * 1024).as_bytes());
        body.extend_from_slice(&vec![b' '; 32 * 1024]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(status_of_raw(&host, &head, &body), 413);
    assert_eq!(s.prediction_count(), 0);

    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body_len, 10_000_000);
    assert!(reqs[0].body.is_empty() && reqs[0].body_truncated);
    assert!(reqs[1].body_len > 64 * 1024);

    // A body under the limit works, on a fresh connection.
    let api = Api::new(&s);
    let prompt = "q".repeat(60 * 1024);
    let r = api.post(
        "/v1/models/fake/json/predictions",
        &json!({"input": {"prompt": prompt}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.prediction_count(), 1);
}

#[test]
fn throttled_unauthenticated_bodies_are_not_recorded_either() {
    let s = start(Options {
        rate_limit: Some(RateLimit::new(0, Duration::from_secs(60))),
        ..fast()
    });
    let r = request(
        "POST",
        &format!("{}/v1/predictions", s.base_url()),
        &[("Authorization", "Bearer bad")],
        b"{\"secret\":1}",
    )
    .unwrap();
    assert_eq!(r.status, 429);
    let reqs = s.requests();
    assert!(reqs[0].rate_limited);
    assert!(reqs[0].body.is_empty());
    assert_eq!(reqs[0].body_len, 12);
}
