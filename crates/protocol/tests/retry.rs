//! Retry-After, rate-limit headers, the retry rules and the single-call flow.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant, UNIX_EPOCH};

use common::{Reply, drive, ms, pred_body, proxy_cfg, resp, resp_with, throttled};
use http::{HeaderMap, StatusCode};
use replicate_protocol::{
    ApiError, BodyRead, Call, CreatePrediction, Error, Flow, GetPrediction, Limits, RateLimit,
    RetryAfter, RetryClass, RetryPolicy, Status, Step, SyncWait, Target, Timeout, TransportError,
    TransportErrorKind, transport_failure,
};

fn api(status: u16, headers: &[(&str, &str)], body: &str) -> ApiError {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    ApiError::from_response(StatusCode::from_u16(status).unwrap(), &map, body.as_bytes())
}

fn api_err(status: u16, headers: &[(&str, &str)], body: &str) -> Error {
    Error::Api(Box::new(api(status, headers, body)))
}

fn transport(kind: TransportErrorKind) -> Error {
    Error::Transport(TransportError::new(kind, "boom"))
}

#[test]
fn retry_after_header_forms() {
    assert_eq!(RetryAfter::parse("120"), Some(RetryAfter::Seconds(120)));
    assert_eq!(RetryAfter::parse(" 7 "), Some(RetryAfter::Seconds(7)));
    assert_eq!(RetryAfter::parse("1.2"), Some(RetryAfter::Seconds(2)));
    assert_eq!(
        RetryAfter::parse("Wed, 21 Oct 2015 07:28:00 GMT"),
        Some(RetryAfter::Date(
            UNIX_EPOCH + Duration::from_secs(1_445_412_480)
        ))
    );
    for bad in [
        "",
        "soon",
        "-1",
        "NaN",
        "inf",
        "Wed, 32 Oct 2015 07:28:00 GMT",
    ] {
        assert_eq!(RetryAfter::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn retry_after_seconds_header() {
    let e = api(429, &[("retry-after", "7")], "");
    assert_eq!(e.retry_after, Some(RetryAfter::Seconds(7)));
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(7)));
}

#[test]
fn retry_after_http_date_against_date_header() {
    // The delay is measured against the server's clock, not ours.
    let e = api(
        503,
        &[
            ("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT"),
            ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ],
        "",
    );
    assert_eq!(
        e.date,
        Some(UNIX_EPOCH + Duration::from_secs(1_445_412_480))
    );
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(30)));
    // A date in the server's past means "now".
    let past = api(
        503,
        &[
            ("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT"),
            ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ],
        "",
    );
    assert_eq!(past.retry_delay(), Some(Duration::ZERO));
    // Without a Date header the HTTP-date cannot be turned into a delay; the body's value is used.
    let no_date = api(
        429,
        &[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")],
        r#"{"detail":"throttled","status":429,"retry_after":3}"#,
    );
    assert_eq!(no_date.retry_delay(), Some(Duration::from_secs(3)));
    let nothing = api(429, &[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")], "");
    assert_eq!(nothing.retry_delay(), None);
}

#[test]
fn retry_after_from_body() {
    let e = api(
        429,
        &[],
        r#"{"detail":"Request was throttled. Expected available in 5 seconds.","status":429,"retry_after":5}"#,
    );
    assert_eq!(e.retry_after, None);
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(5)));
    assert_eq!(e.problem.as_ref().unwrap().retry_after, Some(5.0));
    let frac = api(429, &[], r#"{"detail":"x","retry_after":0.25}"#);
    assert_eq!(frac.retry_delay(), Some(Duration::from_millis(250)));
    for bad in [r#"{"detail":"x","retry_after":-1}"#, r#"{"detail":"x"}"#] {
        assert_eq!(api(429, &[], bad).retry_delay(), None, "{bad}");
    }
    // The header wins over the body.
    let both = api(
        429,
        &[("retry-after", "2")],
        r#"{"detail":"x","retry_after":9}"#,
    );
    assert_eq!(both.retry_delay(), Some(Duration::from_secs(2)));
}

#[test]
fn ratelimit_headers() {
    let e = api(
        429,
        &[("ratelimit-remaining", "0"), ("ratelimit-reset", " 12 ")],
        "",
    );
    assert_eq!(
        e.rate_limit,
        RateLimit {
            remaining: Some(0),
            reset: Some(12)
        }
    );
    let junk = api(
        429,
        &[("ratelimit-remaining", "lots"), ("ratelimit-reset", "-3")],
        "",
    );
    assert_eq!(junk.rate_limit, RateLimit::default());
}

#[test]
fn api_error_bodies() {
    let html = api(502, &[], "<html><body>Bad gateway</body></html>");
    assert!(html.problem.is_none());
    assert_eq!(
        html.body_excerpt.as_deref(),
        Some("<html><body>Bad gateway</body></html>")
    );
    let long = api(500, &[], &"x".repeat(1000));
    assert_eq!(long.body_excerpt.as_deref().unwrap().chars().count(), 201);
    let empty = api(503, &[], "");
    assert_eq!(
        (empty.problem.clone(), empty.body_excerpt.clone()),
        (None, None)
    );
    assert_eq!(
        empty.to_string(),
        "the API answered HTTP 503 Service Unavailable"
    );
    // A JSON object without problem members is not problem details.
    let other = api(500, &[], r#"{"foo":1}"#);
    assert!(other.problem.is_none());
    // FastAPI-style list details are kept as JSON text.
    let list = api(
        422,
        &[],
        r#"{"detail":[{"loc":["body","input"],"msg":"field required"}]}"#,
    );
    assert!(
        list.problem
            .unwrap()
            .detail
            .unwrap()
            .contains("field required")
    );
    for (status, retryable) in [
        (429, true),
        (500, true),
        (502, true),
        (503, true),
        (504, true),
        (501, false),
        (404, false),
        (422, false),
    ] {
        assert_eq!(api(status, &[], "").is_retryable(), retryable, "{status}");
    }
}

// ---------------------------------------------------------------------------------------------
// RetryPolicy::decide

fn policy() -> RetryPolicy {
    RetryPolicy::default()
}

#[test]
fn decide_429_create_is_retried_after_retry_after() {
    let e = api_err(429, &[("retry-after", "5")], "");
    assert_eq!(
        policy().decide(RetryClass::CreateOnce, 0, &e),
        Some(Duration::from_secs(5))
    );
    assert_eq!(
        policy().decide(RetryClass::Idempotent, 0, &e),
        Some(Duration::from_secs(5))
    );
    // Without Retry-After: the backoff.
    let bare = api_err(429, &[], "");
    assert_eq!(
        policy().decide(RetryClass::CreateOnce, 2, &bare),
        Some(ms(1000))
    );
}

#[test]
fn decide_5xx_only_for_idempotent() {
    for status in [500, 502, 503, 504] {
        let e = api_err(status, &[], "");
        assert_eq!(
            policy().decide(RetryClass::CreateOnce, 0, &e),
            None,
            "{status}"
        );
        assert_eq!(
            policy().decide(RetryClass::Idempotent, 0, &e),
            Some(ms(250)),
            "{status}"
        );
    }
    let with_ra = api_err(503, &[("retry-after", "3")], "");
    assert_eq!(
        policy().decide(RetryClass::Idempotent, 0, &with_ra),
        Some(Duration::from_secs(3))
    );
    for status in [400, 401, 403, 404, 409, 422, 501] {
        let e = api_err(status, &[], "");
        assert_eq!(
            policy().decide(RetryClass::Idempotent, 0, &e),
            None,
            "{status}"
        );
    }
}

#[test]
fn decide_transport_errors() {
    use TransportErrorKind::*;
    for class in [RetryClass::CreateOnce, RetryClass::Idempotent] {
        assert_eq!(
            policy().decide(class, 0, &transport(Connect)),
            Some(ms(250))
        );
    }
    for kind in [Timeout, Io, BodyTooLarge, Other] {
        assert_eq!(
            policy().decide(RetryClass::CreateOnce, 0, &transport(kind)),
            None,
            "{kind:?}"
        );
    }
    for kind in [Timeout, Io, Other] {
        assert_eq!(
            policy().decide(RetryClass::Idempotent, 1, &transport(kind)),
            Some(ms(500)),
            "{kind:?}"
        );
    }
    // A body over the cap would be read again up to the cap: never retried.
    assert_eq!(
        policy().decide(RetryClass::Idempotent, 0, &transport(BodyTooLarge)),
        None
    );
    // A lost create answer is reported as such; everything else stays a transport error.
    for kind in [Timeout, Io, BodyTooLarge, Other] {
        let t = TransportError::new(kind, "reset");
        assert_eq!(
            transport_failure(RetryClass::CreateOnce, t.clone()),
            Error::CreateOutcomeUnknown(t.clone())
        );
        assert_eq!(
            transport_failure(RetryClass::Idempotent, t.clone()),
            Error::Transport(t)
        );
    }
    let c = TransportError::new(Connect, "refused");
    assert_eq!(
        transport_failure(RetryClass::CreateOnce, c.clone()),
        Error::Transport(c)
    );
}

#[test]
fn decide_other_errors_never_retried() {
    for e in [
        Error::InvalidToken,
        Error::InvalidInput("x".into()),
        Error::decode(200, "bad json", b"{"),
        Error::InvalidState("x"),
    ] {
        assert_eq!(
            policy().decide(RetryClass::Idempotent, 0, &e),
            None,
            "{e:?}"
        );
    }
}

#[test]
fn decide_retries_exhausted_and_backoff() {
    let p = RetryPolicy {
        max_retries: 3,
        ..RetryPolicy::default()
    };
    let e = transport(TransportErrorKind::Connect);
    assert_eq!(p.decide(RetryClass::Idempotent, 2, &e), Some(ms(1000)));
    assert_eq!(p.decide(RetryClass::Idempotent, 3, &e), None);
    assert_eq!(
        RetryPolicy::none().decide(RetryClass::Idempotent, 0, &e),
        None
    );
    let backoffs: Vec<_> = (0..8).map(|i| policy().backoff(i)).collect();
    assert_eq!(
        backoffs,
        [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000].map(ms)
    );
    assert_eq!(policy().backoff(u32::MAX), Duration::from_secs(10));
}

#[test]
fn decide_retry_after_above_max_not_waited() {
    let e = api_err(429, &[("retry-after", "121")], "");
    assert_eq!(policy().decide(RetryClass::Idempotent, 0, &e), None);
    assert_eq!(policy().decide(RetryClass::CreateOnce, 0, &e), None);
    let at_max = api_err(429, &[("retry-after", "120")], "");
    assert_eq!(
        policy().decide(RetryClass::CreateOnce, 0, &at_max),
        Some(Duration::from_secs(120))
    );
    let body = api_err(429, &[], r#"{"detail":"x","retry_after":3600}"#);
    assert_eq!(policy().decide(RetryClass::CreateOnce, 0, &body), None);
    let busy = api_err(503, &[("retry-after", "600")], "");
    assert_eq!(policy().decide(RetryClass::Idempotent, 0, &busy), None);
}

// ---------------------------------------------------------------------------------------------
// Call

fn get_call() -> Call<GetPrediction> {
    Call::with_policy(
        GetPrediction::new("abc"),
        proxy_cfg(),
        RetryPolicy::default().without_jitter(),
        None,
    )
}

fn create_call() -> Call<CreatePrediction> {
    Call::with_policy(
        create(),
        proxy_cfg(),
        RetryPolicy::default().without_jitter(),
        None,
    )
}

fn create() -> CreatePrediction {
    CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell").unwrap())
}

#[test]
fn call_success_first_time() {
    let base = Instant::now();
    let mut call = get_call();
    let t = drive(
        &mut call,
        base,
        vec![Reply::Http(resp(200, pred_body("abc", "succeeded")))],
    );
    assert_eq!(t.sent.len(), 1);
    assert_eq!(t.result.unwrap().status, Status::Succeeded);
    assert!(t.sleeps.is_empty());
    assert_eq!(call.retries(), 0);
    // Polled again after the end.
    assert!(matches!(
        call.poll(base),
        Step::Done(Err(Error::InvalidState(_)))
    ));
}

#[test]
fn call_get_retries_503_and_transport_errors() {
    let base = Instant::now();
    let mut call = get_call();
    let t = drive(
        &mut call,
        base,
        vec![
            Reply::Http(resp(503, "")),
            Reply::Fail(TransportError::new(TransportErrorKind::Io, "reset")),
            Reply::Http(resp_with(
                502,
                &[("retry-after", "3")],
                "<html>bad gateway</html>",
            )),
            Reply::Http(resp(200, pred_body("abc", "processing"))),
        ],
    );
    assert_eq!(t.sent.len(), 4);
    assert_eq!(t.result.unwrap().status, Status::Processing);
    assert_eq!(
        t.sleeps,
        vec![base + ms(250), base + ms(750), base + ms(3750)]
    );
    for (_, req) in &t.sent {
        assert_eq!(
            req.uri(),
            "https://proxy.example/replicate/v1/predictions/abc"
        );
    }
}

#[test]
fn call_create_5xx_html_or_truncated_answer_is_outcome_unknown() {
    // The server may have created the prediction before a proxy replaced its answer, or before
    // the body was cut: never re-sent, and the error says the prediction may exist.
    let answers = [
        resp(503, ""),
        resp(502, "<html><body>502 Bad Gateway</body></html>"),
        resp(504, "<html>gateway timeout</html>"),
        resp(500, r#"{"detail":"internal"}"#),
        resp(201, r#"{"id":"abc","status":"start"#),
        resp(200, "<html>not json</html>"),
    ];
    for answer in answers {
        let status = answer.status();
        let mut call = Call::new(create(), proxy_cfg());
        let t = drive(&mut call, Instant::now(), vec![Reply::Http(answer)]);
        assert_eq!(t.sent.len(), 1, "{status}");
        let err = t.result.unwrap_err();
        assert!(
            matches!(&err, Error::CreateOutcomeUnknown(_)),
            "{status}: {err:?}"
        );
        assert!(err.to_string().contains("may have been created"), "{err}");
    }
    // A well-formed 4xx: the server refused, nothing was created.
    let mut call = Call::new(create(), proxy_cfg());
    let t = drive(
        &mut call,
        Instant::now(),
        vec![Reply::Http(resp(
            422,
            r#"{"detail":"bad input","status":422}"#,
        ))],
    );
    assert_eq!(t.result.unwrap_err().status(), Some(422));
}

#[test]
fn call_create_io_error_is_outcome_unknown() {
    for kind in [TransportErrorKind::Io, TransportErrorKind::Timeout] {
        let mut call = Call::new(create(), proxy_cfg());
        let err = TransportError::new(kind, "connection reset by peer");
        let t = drive(&mut call, Instant::now(), vec![Reply::Fail(err.clone())]);
        assert_eq!(t.sent.len(), 1, "{kind:?}");
        assert_eq!(
            t.result.unwrap_err(),
            Error::CreateOutcomeUnknown(err.with_context(
                "POST /replicate/v1/models/black-forest-labs/flux-schnell/predictions, 1 attempt"
            ))
        );
    }
}

#[test]
fn timeout_errors_say_which_request_timed_out_after_how_many_attempts() {
    let mut call = get_call();
    let fail = || {
        Reply::Fail(TransportError::new(
            TransportErrorKind::Timeout,
            "timeout: global",
        ))
    };
    let t = drive(&mut call, Instant::now(), (0..6).map(|_| fail()).collect());
    let msg = t.result.unwrap_err().to_string();
    assert_eq!(
        msg,
        "timed out (GET /replicate/v1/predictions/abc, 6 attempts): timeout: global"
    );
}

#[test]
fn backoffs_have_full_jitter_and_server_delays_are_waited_in_full() {
    let base = Instant::now();
    let mut spread = std::collections::HashSet::new();
    for _ in 0..32 {
        let mut call = Call::new(GetPrediction::new("abc"), proxy_cfg());
        let t = drive(
            &mut call,
            base,
            vec![
                Reply::Http(resp(503, "")),
                Reply::Http(throttled(2)),
                Reply::Http(resp(200, pred_body("abc", "processing"))),
            ],
        );
        assert_eq!(t.sleeps.len(), 2);
        // Full jitter: somewhere in [0, 250 ms].
        let first = t.sleeps[0] - base;
        assert!(first <= ms(250), "{first:?}");
        spread.insert(first);
        // Retry-After 2 s is waited in full, plus at most one backoff (500 ms at retry 1... the
        // throttle count starts at 0: 250 ms).
        let second = t.sleeps[1] - t.sleeps[0];
        assert!(second >= ms(2000) && second <= ms(2250), "{second:?}");
    }
    assert!(spread.len() > 1, "the backoff is not jittered: {spread:?}");
}

#[test]
fn a_throttle_waits_for_the_rate_limit_window_to_reset() {
    // `ratelimit-remaining: 0` with `ratelimit-reset: 7`: the window is spent for 7 s, longer
    // than the 1 s Retry-After; waiting less would only be throttled again.
    let e = api_err(
        429,
        &[
            ("retry-after", "1"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "7"),
        ],
        "",
    );
    assert_eq!(
        policy().decide(RetryClass::CreateOnce, 0, &e),
        Some(Duration::from_secs(7))
    );
    let bare = api_err(
        429,
        &[("ratelimit-remaining", "0"), ("ratelimit-reset", "3")],
        "",
    );
    assert_eq!(
        policy().decide(RetryClass::Idempotent, 0, &bare),
        Some(Duration::from_secs(3))
    );
    // Throttles have their own budget: five earlier retries of another kind do not stop it.
    assert!(policy().decide(RetryClass::Idempotent, 5, &bare).is_some());
    assert!(
        policy()
            .decide(
                RetryClass::Idempotent,
                policy().max_throttled_retries,
                &bare
            )
            .is_none()
    );
}

#[test]
fn call_create_retried_after_connect_error_and_429() {
    let base = Instant::now();
    let mut call = create_call();
    let t = drive(
        &mut call,
        base,
        vec![
            Reply::Fail(TransportError::new(TransportErrorKind::Connect, "refused")),
            Reply::Http(throttled(2)),
            Reply::Http(resp(201, pred_body("new", "starting"))),
        ],
    );
    assert_eq!(t.sent.len(), 3);
    assert_eq!(t.sleeps, vec![base + ms(250), base + ms(2250)]);
    assert_eq!(t.result.unwrap().id, "new");
    // The same body each time.
    assert!(t.sent.windows(2).all(|w| w[0].1.body() == w[1].1.body()));
}

#[test]
fn call_retries_exhausted_returns_last_error() {
    let mut call = Call::with_policy(
        GetPrediction::new("abc"),
        proxy_cfg(),
        RetryPolicy {
            max_retries: 2,
            ..RetryPolicy::default()
        },
        None,
    );
    let t = drive(
        &mut call,
        Instant::now(),
        vec![
            Reply::Http(resp(500, "")),
            Reply::Http(resp(502, "")),
            Reply::Http(resp(504, "")),
        ],
    );
    assert_eq!(t.sent.len(), 3);
    assert_eq!(t.result.unwrap_err().status(), Some(504));
    assert_eq!(call.retries(), 2);
}

#[test]
fn call_deadline_stops_retries() {
    let base = Instant::now();
    let mut call = Call::with_policy(
        GetPrediction::new("abc"),
        proxy_cfg(),
        RetryPolicy::default(),
        Some(base + Duration::from_secs(1)),
    );
    // The 429 asks for 5 s, past the deadline: returned at once.
    let t = drive(&mut call, base, vec![Reply::Http(throttled(5))]);
    assert_eq!(t.sent.len(), 1);
    assert_eq!(t.result.unwrap_err().status(), Some(429));
}

#[test]
fn call_misuse_and_build_errors() {
    let base = Instant::now();
    let mut call = get_call();
    assert!(matches!(call.poll(base), Step::Send(_)));
    assert!(matches!(
        call.poll(base),
        Step::Done(Err(Error::InvalidState(_)))
    ));
    // The answer still counts.
    call.handle_response(resp(200, pred_body("abc", "starting")), base);
    assert!(matches!(call.poll(base), Step::Done(Ok(_))));
    // A request that cannot be built ends the call without sending.
    let mut bad = Call::new(
        GetPrediction::new("abc"),
        replicate_protocol::Config::new("bad\n"),
    );
    assert!(matches!(
        bad.poll(base),
        Step::Done(Err(Error::InvalidToken))
    ));
    // Stray answers are ignored.
    let mut idle = get_call();
    idle.handle_response(resp(500, ""), base);
    idle.handle_error(TransportError::new(TransportErrorKind::Io, "x"), base);
    assert!(matches!(idle.poll(base), Step::Send(_)));
}

#[test]
fn call_sync_create_timeout() {
    let mut call = Call::new(create().sync(SyncWait::seconds(30).unwrap()), proxy_cfg());
    let Step::Send(out) = call.poll(Instant::now()) else {
        panic!()
    };
    // The server may hold it 30 s: the timeout is at least that plus the margin.
    assert_eq!(out.timeout, Timeout::Total(Duration::from_secs(40)));
    // A longer configured timeout stays.
    let long = proxy_cfg().with_limits(Limits {
        timeout: Duration::from_secs(90),
        ..Limits::default()
    });
    let mut call = Call::new(create().sync(SyncWait::seconds(30).unwrap()), long);
    let Step::Send(out) = call.poll(Instant::now()) else {
        panic!()
    };
    assert_eq!(out.timeout, Timeout::Total(Duration::from_secs(90)));
    let mut plain = get_call();
    let Step::Send(out) = plain.poll(Instant::now()) else {
        panic!()
    };
    assert_eq!(out.timeout, Timeout::Total(Limits::default().timeout));
    assert_eq!(
        out.read,
        BodyRead::Buffered {
            max_bytes: Limits::default().max_response_bytes
        }
    );
}

#[test]
fn call_decode_error_on_success_body() {
    let mut call = get_call();
    let t = drive(
        &mut call,
        Instant::now(),
        vec![Reply::Http(resp(200, "<html>ok</html>"))],
    );
    match t.result.unwrap_err() {
        Error::Decode {
            status, excerpt, ..
        } => {
            assert_eq!(status, 200);
            assert_eq!(excerpt, "<html>ok</html>");
        }
        other => panic!("{other:?}"),
    }
}
