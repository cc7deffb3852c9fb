//! Inputs found by the fuzz targets under `fuzz/` that broke a property, kept as plain tests so
//! that they run on stable in CI.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use replicate_protocol::{
    BaseUrl, Call, Config, Error, Flow, GetPrediction, Page, Prediction, RetryPolicy, Step,
    parse_json, parse_prediction,
};

/// fuzz target `model_ref`: `BaseUrl::parse` kept a raw U+0085 (a Unicode space) at the end of the
/// path, and parsing the normalised base again trimmed it off, so normalising was not idempotent.
/// Non-ASCII base URLs are now refused.
#[test]
fn base_url_with_non_ascii_is_refused() {
    for input in [
        "http://LOCALHOST:8/////\u{85}//////",
        "http://~;//////\u{85}//////",
        "https://proxy.example/r\u{e9}plicate",
        "https://proxy.example/replicate\u{a0}/v1",
    ] {
        let err = BaseUrl::parse(input).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidBaseUrl(m) if m.contains("non-ASCII")),
            "{input:?}: {err}"
        );
        assert!(Config::new("t").with_base_url(input).is_err());
    }
    // Unicode spaces around the URL are still trimmed.
    let base = BaseUrl::parse("\u{a0}https://proxy.example/replicate/v1/\u{85}").unwrap();
    assert_eq!(base.as_str(), "https://proxy.example/replicate");
    assert_eq!(BaseUrl::parse(base.as_str()).unwrap(), base);
    // Percent-encoded, the same path is accepted and stays as written.
    let encoded = BaseUrl::parse("https://proxy.example/r%C3%A9plicate").unwrap();
    assert_eq!(encoded.prefix(), "/r%C3%A9plicate");
    assert_eq!(BaseUrl::parse(encoded.as_str()).unwrap(), encoded);
}

/// fuzz target `model_ref` (not a bug, recorded for the property): a prefix may itself end in
/// `/v1`, so `as_str()` of such a base does not parse back to it; the base written with the `/v1`
/// that requests add does.
#[test]
fn base_url_prefix_ending_in_v1_round_trips_through_api_url() {
    let base = BaseUrl::parse("http://LOCALHOT:8/v1//v1").unwrap();
    assert_eq!(base.as_str(), "http://localhot:8/v1");
    assert_eq!(base.prefix(), "/v1");
    assert_eq!(BaseUrl::parse(&base.api_url("")).unwrap(), base);
}

fn throttled(retry_after: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(StatusCode::TOO_MANY_REQUESTS)
        .header("retry-after", retry_after)
        .body(br#"{"title":"Too Many Requests","status":429}"#.to_vec())
        .unwrap()
}

/// fuzz target `error`: with a policy that waits for any `Retry-After` (`max_retry_after` of
/// `Duration::MAX`), a huge `Retry-After` made the retry time `now + delay` overflow `Instant` and
/// panic in `Retrier::on_failure` (flow.rs). Such a retry is now past any deadline: the call ends
/// with the 429.
#[test]
fn huge_retry_after_under_a_patient_policy_ends_the_call() {
    let patient = RetryPolicy {
        max_retry_after: Duration::MAX,
        ..RetryPolicy::default()
    };
    for retry_after in [
        "57777777777777777777777777777777777777777777777777777777777777777777777777777777",
        "18446744073709551615",
        "1e300",
    ] {
        for deadline in [None, Some(Instant::now() + Duration::from_secs(3600))] {
            let now = Instant::now();
            let mut call = Call::with_policy(
                GetPrediction::new("p"),
                Config::new("r8_test"),
                patient.clone(),
                deadline,
            );
            assert!(matches!(call.poll(now), Step::Send(_)));
            call.handle_response(throttled(retry_after), now);
            match call.poll(now) {
                Step::Done(Err(Error::Api(e))) => assert_eq!(e.status, 429),
                other => panic!("{retry_after}, deadline {deadline:?}: {other:?}"),
            }
        }
    }
    // A long but representable Retry-After is still waited for when the policy allows it.
    let now = Instant::now();
    let mut call = Call::with_policy(
        GetPrediction::new("p"),
        Config::new("r8_test"),
        patient,
        None,
    );
    assert!(matches!(call.poll(now), Step::Send(_)));
    call.handle_response(throttled("86400"), now);
    match call.poll(now) {
        // Waited in full, plus at most one backoff of jitter.
        Step::Sleep { until: at, .. } => assert!(
            at >= now + Duration::from_secs(86_400)
                && at <= now + Duration::from_secs(86_400) + Duration::from_millis(250),
            "{at:?}"
        ),
        other => panic!("{other:?}"),
    }
}

/// fuzz targets `page` and `prediction`: a parsed prediction, serialised and parsed again, was not
/// equal to itself. serde_json's default float parser may round a long or exponent-heavy number
/// (here `0.011e-162`) to a neighbouring double; its `float_roundtrip` feature parses correctly.
/// Fixed by enabling that feature in the workspace `Cargo.toml`.
#[test]
fn floats_survive_a_json_round_trip() {
    for number in [
        "0.011e-162",
        "1.1e-164",
        "2.2250738585072011e-308",
        "8.98846567431158e307",
    ] {
        let body = format!(
            r#"{{"results":[{{"id":"p","status":"succeeded","metrics":{{"predict_time":{number}}},"output":[{number}]}}],"next":null}}"#
        );
        let resp = Response::new(body.into_bytes());
        let page: Page<Prediction> = parse_json(&resp).unwrap();
        let first = &page.results[0];
        let exact: f64 = number.parse().unwrap();
        assert_eq!(
            first.metrics.as_ref().unwrap().predict_time,
            Some(exact),
            "{number}"
        );
        let again = parse_prediction(&Response::new(serde_json::to_vec(first).unwrap())).unwrap();
        assert_eq!(&again, first, "{number}");
    }
}

/// Found by reading after the `error` target's overflow: a stream told to wait an absurd
/// `Retry-After` under a patient policy overflowed `Instant + Duration`. It now ends the session.
#[test]
fn huge_retry_after_ends_a_stream_session() {
    use replicate_protocol::{Flow, StreamOptions, StreamSession};
    let cfg = Config::new("r8_token");
    let opts = StreamOptions {
        max_retry_after: Duration::MAX,
        ..StreamOptions::default()
    };
    let mut session = StreamSession::new(&cfg, "https://stream.example/v1/s/1", opts).unwrap();
    let now = Instant::now();
    assert!(matches!(session.poll(now), Step::Send(_)));
    let mut headers = http::HeaderMap::new();
    headers.insert("retry-after", "18446744073709551615".parse().unwrap());
    session.handle_head(StatusCode::TOO_MANY_REQUESTS, &headers, now);
    assert!(matches!(session.poll(now), Step::Done(Err(_))));
}
