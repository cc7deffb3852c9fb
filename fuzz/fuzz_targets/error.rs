//! `ApiError::from_response` with arbitrary `retry-after`, `ratelimit-*` and `date` headers and
//! body: never panics; `retry_delay()`, `Display` and the retry decision neither; the parsed
//! headers agree with the header values.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use replicate_protocol::{
    ApiError, Call, Config, Error, Flow, GetPrediction, RetryAfter, RetryClass, RetryPolicy, Step,
    check_status,
};
use replicate_protocol_fuzz::response;

fuzz_target!(|data: &[u8]| {
    let Some(resp) = response(data) else {
        return;
    };
    let status = resp.status();
    let headers = resp.headers();
    let body = *resp.body();

    let e = ApiError::from_response(status, headers, body);
    assert_eq!(e.status, status.as_u16());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(
        e.retry_after,
        header("retry-after").and_then(RetryAfter::parse)
    );
    assert_eq!(
        e.rate_limit.remaining.is_some(),
        header("ratelimit-remaining")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some()
    );
    // Exactly one of problem details and excerpt describes a non-empty body.
    if !body.is_empty() {
        assert!(e.problem.is_some() != e.body_excerpt.is_some());
    }
    if let Some(x) = &e.body_excerpt {
        assert!(
            x.chars().count() <= 201,
            "excerpt too long: {} chars",
            x.chars().count()
        );
    }

    let delay = e.retry_delay();
    if let (Some(d), Some(p)) = (delay, &e.problem) {
        if e.retry_after.is_none() {
            assert!(
                d <= Duration::from_secs(86_400),
                "body retry_after is capped: {d:?} from {p:?}"
            );
        }
    }
    let shown = e.to_string();
    assert!(shown.contains(&format!("HTTP {}", status.as_u16())));
    let _ = e.is_retryable();

    // `check_status` agrees with the status class.
    let checked = check_status(&resp);
    assert_eq!(checked.is_ok(), status.is_success());
    if let Err(err) = &checked {
        assert_eq!(err.api(), Some(&e));
        let _ = err.to_string();
    }

    // The retry decision, with the default policy and with one that waits for any Retry-After.
    let failure = Error::Api(Box::new(e));
    let patient = RetryPolicy {
        max_retry_after: Duration::MAX,
        ..RetryPolicy::default()
    };
    for policy in [RetryPolicy::default(), patient] {
        for class in [RetryClass::Idempotent, RetryClass::CreateOnce] {
            if let Some(d) = policy.decide(class, 0, &failure) {
                assert!(d <= policy.max_retry_after);
            }
        }
        // A whole call fed this response: never panics, whatever the delay asked for.
        let now = Instant::now();
        let mut call = Call::with_policy(
            GetPrediction::new("p"),
            Config::new("r8_fuzz"),
            policy.clone(),
            Some(now + Duration::from_secs(3600)),
        );
        let Step::Send(_) = call.poll(now) else {
            panic!("a call starts by sending");
        };
        call.handle_response(resp.clone().map(<[u8]>::to_vec), now);
        match call.poll(now) {
            Step::Sleep(at) => assert!(at <= now + Duration::from_secs(3600)),
            Step::Done(r) => {
                let _ = r.map_err(|e| e.to_string());
            }
            // `Retry-After: 0`: retried at once.
            Step::Send(_) => {}
        }
    }
});
