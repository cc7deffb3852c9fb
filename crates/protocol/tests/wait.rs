//! The wait and run machines, driven by a made-up clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Reply, drive, ms, pred_body, proxy_cfg, resp, resp_with, throttled};
use replicate_protocol::{
    CreatePrediction, Error, Flow, JobKind, PollPolicy, Prediction, RetryPolicy, Run, Status, Step,
    SyncWait, Target, TransportError, TransportErrorKind, Wait, WaitOptions, parse_prediction,
};

const ID: &str = "qpt5jq1fssrmc0cmd5hvy31mdg";
const GET_URL: &str = "https://proxy.example/replicate/v1/predictions/qpt5jq1fssrmc0cmd5hvy31mdg";

fn ok(status: &str) -> Reply {
    Reply::Http(resp(200, pred_body(ID, status)))
}

fn fixed(interval_ms: u64) -> WaitOptions {
    WaitOptions {
        poll: PollPolicy::fixed(ms(interval_ms)),
        retry: RetryPolicy::default().without_jitter(),
        ..WaitOptions::default()
    }
}

fn io() -> Reply {
    Reply::Fail(TransportError::new(
        TransportErrorKind::Io,
        "connection reset",
    ))
}

#[test]
fn processing_then_succeeded() {
    let base = Instant::now();
    let mut wait = Wait::new(proxy_cfg(), ID, fixed(500));
    let t = drive(
        &mut wait,
        base,
        vec![
            ok("starting"),
            ok("processing"),
            ok("processing"),
            ok("succeeded"),
        ],
    );
    let p = t.result.unwrap();
    assert_eq!(p.status, Status::Succeeded);
    assert_eq!(
        p.output_url(),
        Some("https://replicate.delivery/xezq/abc/out-0.jpg")
    );
    let times: Vec<_> = t.sent.iter().map(|(at, _)| *at).collect();
    assert_eq!(
        times,
        [base, base + ms(500), base + ms(1000), base + ms(1500)]
    );
    for (_, req) in &t.sent {
        assert_eq!(req.method(), "GET");
        assert_eq!(req.uri(), GET_URL);
    }
    assert_eq!(wait.requests(), 4);
    assert_eq!(wait.last().unwrap().status, Status::Succeeded);
}

#[test]
fn every_terminal_status_ends_the_wait() {
    for status in ["succeeded", "failed", "canceled", "aborted"] {
        let mut wait = Wait::new(proxy_cfg(), ID, fixed(500));
        let t = drive(
            &mut wait,
            Instant::now(),
            vec![ok("processing"), ok(status)],
        );
        let p = t.result.unwrap();
        assert_eq!(p.status.as_str(), status);
        assert_eq!(
            p,
            parse_prediction(&resp(200, pred_body(ID, status))).unwrap()
        );
    }
    // An unknown status is not terminal.
    let mut wait = Wait::new(proxy_cfg(), ID, fixed(500));
    let t = drive(
        &mut wait,
        Instant::now(),
        vec![ok("quantum"), ok("succeeded")],
    );
    assert_eq!(t.sent.len(), 2);
}

#[test]
fn default_poll_policy_backs_off() {
    let base = Instant::now();
    let mut wait = Wait::new(proxy_cfg(), ID, WaitOptions::default());
    let mut replies: Vec<_> = (0..30).map(|_| ok("processing")).collect();
    replies.push(ok("succeeded"));
    let t = drive(&mut wait, base, replies);
    let gaps: Vec<_> = t
        .sent
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0))
        .collect();
    // 0.5 s for the first 10 s, then growing, capped at 5 s.
    assert!(gaps[..20].iter().all(|g| *g == ms(500)), "{gaps:?}");
    assert!(gaps[20] > ms(500), "{gaps:?}");
    assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
    assert_eq!(*gaps.last().unwrap(), Duration::from_secs(5));
}

#[test]
fn throttled_then_success_honours_retry_after() {
    let base = Instant::now();
    let mut wait = Wait::new(proxy_cfg(), ID, fixed(500));
    let t = drive(
        &mut wait,
        base,
        vec![ok("processing"), Reply::Http(throttled(5)), ok("succeeded")],
    );
    let times: Vec<_> = t.sent.iter().map(|(at, _)| *at).collect();
    assert_eq!(times, [base, base + ms(500), base + ms(5500)]);
    assert_eq!(t.result.unwrap().status, Status::Succeeded);
}

#[test]
fn server_errors_retried_then_given_up() {
    let base = Instant::now();
    let opts = WaitOptions {
        retry: RetryPolicy {
            max_retries: 3,
            ..RetryPolicy::default()
        },
        ..fixed(500)
    };
    let mut wait = Wait::new(proxy_cfg(), ID, opts);
    let t = drive(
        &mut wait,
        base,
        vec![
            ok("processing"),
            Reply::Http(resp(503, "")),
            io(),
            Reply::Http(resp_with(
                502,
                &[("content-type", "text/html")],
                "<html>502</html>",
            )),
            Reply::Http(resp(504, "")),
        ],
    );
    assert_eq!(t.sent.len(), 5);
    assert_eq!(t.result.unwrap_err().status(), Some(504));
    // The last prediction seen is kept.
    assert_eq!(wait.last().unwrap().status, Status::Processing);
}

#[test]
fn successful_poll_resets_the_retry_budget() {
    let base = Instant::now();
    let opts = WaitOptions {
        retry: RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        },
        ..fixed(500)
    };
    let mut wait = Wait::new(proxy_cfg(), ID, opts);
    let t = drive(
        &mut wait,
        base,
        vec![
            io(),
            ok("processing"),
            io(),
            ok("processing"),
            io(),
            ok("succeeded"),
        ],
    );
    assert_eq!(t.sent.len(), 6);
    assert!(t.result.is_ok());
}

#[test]
fn non_retryable_error_ends_the_wait() {
    let mut wait = Wait::new(proxy_cfg(), ID, fixed(500));
    let t = drive(
        &mut wait,
        Instant::now(),
        vec![Reply::Http(resp(
            404,
            r#"{"title":"Not found","detail":"The requested resource could not be found.","status":404}"#,
        ))],
    );
    assert_eq!(t.result.unwrap_err().status(), Some(404));
}

#[test]
fn wrong_prediction_in_answer_is_an_error() {
    let mut wait = Wait::new(proxy_cfg(), ID, fixed(500));
    let t = drive(
        &mut wait,
        Instant::now(),
        vec![Reply::Http(resp(
            200,
            pred_body("someoneelse", "succeeded"),
        ))],
    );
    assert!(matches!(t.result, Err(Error::Decode { status: 200, .. })));
}

#[test]
fn deadline_sends_cancel_and_reports_it() {
    let base = Instant::now();
    let opts = WaitOptions {
        deadline: Some(base + ms(1200)),
        ..fixed(500)
    };
    let mut wait = Wait::new(proxy_cfg(), ID, opts);
    let t = drive(
        &mut wait,
        base,
        vec![
            ok("processing"),
            ok("processing"),
            ok("processing"),
            Reply::Http(resp(200, pred_body(ID, "canceled"))),
        ],
    );
    let times: Vec<_> = t.sent.iter().map(|(at, _)| *at).collect();
    assert_eq!(
        times,
        [base, base + ms(500), base + ms(1000), base + ms(1200)]
    );
    // The last sleep stops at the deadline, not at the next poll.
    assert_eq!(*t.sleeps.last().unwrap(), base + ms(1200));
    let (_, cancel) = t.sent.last().unwrap();
    assert_eq!(cancel.method(), "POST");
    assert_eq!(cancel.uri(), format!("{GET_URL}/cancel").as_str());
    match t.result.unwrap_err() {
        Error::DeadlineExceeded {
            id,
            last,
            cancel_sent,
        } => {
            assert_eq!(id, ID);
            assert!(cancel_sent);
            assert_eq!(last.unwrap().status, Status::Canceled);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cancel_failure_reports_cancel_not_sent() {
    for failure in [
        Reply::Http(resp(500, "")),
        Reply::Fail(TransportError::new(
            TransportErrorKind::Timeout,
            "timed out",
        )),
    ] {
        let base = Instant::now();
        let opts = WaitOptions {
            deadline: Some(base + ms(700)),
            ..fixed(500)
        };
        let mut wait = Wait::new(proxy_cfg(), ID, opts);
        let t = drive(
            &mut wait,
            base,
            vec![ok("processing"), ok("processing"), failure],
        );
        assert_eq!(t.sent.len(), 3);
        match t.result.unwrap_err() {
            Error::DeadlineExceeded {
                last, cancel_sent, ..
            } => {
                assert!(!cancel_sent);
                // The last prediction the poll saw.
                assert_eq!(last.unwrap().status, Status::Processing);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn deadline_without_cancel() {
    let base = Instant::now();
    let opts = WaitOptions {
        deadline: Some(base + ms(700)),
        cancel_at_deadline: false,
        ..fixed(500)
    };
    let mut wait = Wait::new(proxy_cfg(), ID, opts);
    let t = drive(&mut wait, base, vec![ok("processing"), ok("starting")]);
    assert_eq!(t.sent.len(), 2);
    assert!(t.sent.iter().all(|(_, r)| r.method() == "GET"));
    assert_eq!(t.end, base + ms(700));
    assert!(matches!(
        t.result,
        Err(Error::DeadlineExceeded {
            cancel_sent: false,
            ..
        })
    ));
}

#[test]
fn retry_sleep_capped_at_deadline() {
    let base = Instant::now();
    let opts = WaitOptions {
        deadline: Some(base + Duration::from_secs(2)),
        ..fixed(500)
    };
    let mut wait = Wait::new(proxy_cfg(), ID, opts);
    let t = drive(
        &mut wait,
        base,
        vec![
            Reply::Http(throttled(30)),
            Reply::Http(resp(200, pred_body(ID, "canceled"))),
        ],
    );
    assert_eq!(t.sleeps, vec![base + Duration::from_secs(2)]);
    assert!(matches!(
        t.result,
        Err(Error::DeadlineExceeded {
            cancel_sent: true,
            ..
        })
    ));
}

#[test]
fn poll_while_in_flight_is_invalid_state() {
    let base = Instant::now();
    let mut wait = Wait::new(proxy_cfg(), ID, fixed(500));
    assert!(matches!(wait.poll(base), Step::Send(_)));
    assert!(matches!(
        wait.poll(base),
        Step::Done(Err(Error::InvalidState(_)))
    ));
    // The machine is still usable once the answer comes.
    wait.handle_response(resp(200, pred_body(ID, "succeeded")), base);
    assert!(matches!(wait.poll(base), Step::Done(Ok(_))));
    assert!(matches!(
        wait.poll(base),
        Step::Done(Err(Error::InvalidState(_)))
    ));
}

#[test]
fn from_terminal_prediction_is_done_without_request() {
    let p = parse_prediction(&resp(200, common::fixture("seed/get_response.json"))).unwrap();
    let mut wait = Wait::from_prediction(proxy_cfg(), p.clone(), WaitOptions::default());
    match wait.poll(Instant::now()) {
        Step::Done(Ok(done)) => assert_eq!(done, p),
        other => panic!("{other:?}"),
    }
    assert_eq!(wait.requests(), 0);
}

#[test]
fn from_running_prediction_waits_one_interval_first() {
    let base = Instant::now();
    let p = parse_prediction(&resp(200, pred_body(ID, "starting"))).unwrap();
    let mut wait = Wait::from_prediction(proxy_cfg(), p, fixed(800));
    assert_eq!(wait.id(), ID);
    assert_eq!(wait.last().unwrap().status, Status::Starting);
    let t = drive(&mut wait, base, vec![ok("succeeded")]);
    assert_eq!(t.sleeps, vec![base + ms(800)]);
    assert_eq!(t.sent[0].0, base + ms(800));
}

#[test]
fn wake_polls_at_once() {
    let base = Instant::now();
    let mut wait = Wait::new(proxy_cfg(), ID, fixed(5000));
    assert!(matches!(wait.poll(base), Step::Send(_)));
    wait.handle_response(resp(200, pred_body(ID, "processing")), base);
    assert!(
        matches!(wait.poll(base + ms(10)), Step::Sleep { until: at, .. } if at == base + ms(5000))
    );
    wait.wake();
    assert!(matches!(wait.poll(base + ms(20)), Step::Send(_)));
}

#[test]
fn training_wait_uses_training_routes() {
    let mut wait = Wait::new(proxy_cfg(), "zz4ibbonubfz7carwiefibzgga", fixed(500)).for_training();
    let Step::Send(out) = wait.poll(Instant::now()) else {
        panic!()
    };
    assert_eq!(
        out.request.uri(),
        "https://proxy.example/replicate/v1/trainings/zz4ibbonubfz7carwiefibzgga"
    );
    let cancel = JobKind::Training
        .cancel_request(&proxy_cfg(), "zz4ibbonubfz7carwiefibzgga")
        .unwrap();
    assert_eq!(
        cancel.uri(),
        "https://proxy.example/replicate/v1/trainings/zz4ibbonubfz7carwiefibzgga/cancel"
    );
    assert!(JobKind::Prediction.get_request(&proxy_cfg(), "").is_err());
}

#[test]
fn wait_never_follows_urls_get() {
    // The body's urls name api.replicate.com; polls stay on the proxy.
    let mut wait = Wait::new(proxy_cfg(), ID, fixed(500));
    let t = drive(
        &mut wait,
        Instant::now(),
        vec![
            Reply::Http(resp(200, common::fixture("seed/create_response.json"))),
            ok("succeeded"),
        ],
    );
    assert!(t.sent.iter().all(|(_, r)| r.uri() == GET_URL));
}

// ---------------------------------------------------------------------------------------------
// Run

fn create() -> CreatePrediction {
    CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell").unwrap())
        .input(serde_json::json!({"prompt": "a cat"}))
}

#[test]
fn run_sync_partial_output_is_not_returned() {
    let base = Instant::now();
    let mut run = Run::new(proxy_cfg(), create().sync(SyncWait::Max), fixed(500));
    let mut partial: serde_json::Value =
        serde_json::from_slice(&pred_body(ID, "processing")).unwrap();
    partial["output"] = serde_json::json!(["https://replicate.delivery/xezq/partial/out-0.jpg"]);
    let t = drive(
        &mut run,
        base,
        vec![
            Reply::Http(resp_with(
                202,
                &[("location", GET_URL)],
                serde_json::to_vec(&partial).unwrap(),
            )),
            ok("processing"),
            ok("succeeded"),
        ],
    );
    assert_eq!(t.sent.len(), 3);
    assert_eq!(t.sent[0].1.method(), "POST");
    assert_eq!(t.sent[0].1.headers()["prefer"], "wait");
    assert_eq!(t.sent[1].1.uri(), GET_URL);
    let p = t.result.unwrap();
    assert_eq!(p.status, Status::Succeeded);
    assert_eq!(
        p.output_url(),
        Some("https://replicate.delivery/xezq/abc/out-0.jpg")
    );
    assert_eq!(run.prediction_id(), Some(ID));
}

#[test]
fn run_sync_terminal_answer_needs_no_poll() {
    let mut run = Run::new(proxy_cfg(), create().sync(SyncWait::Max), fixed(500));
    let t = drive(
        &mut run,
        Instant::now(),
        vec![Reply::Http(resp(201, pred_body(ID, "succeeded")))],
    );
    assert_eq!(t.sent.len(), 1);
    assert_eq!(t.result.unwrap().status, Status::Succeeded);
    assert!(run.wait_mut().is_some());
}

#[test]
fn run_failed_prediction_is_returned_as_the_terminal_prediction() {
    let mut run = Run::new(proxy_cfg(), create(), fixed(500));
    let t = drive(
        &mut run,
        Instant::now(),
        vec![
            Reply::Http(resp(201, pred_body(ID, "starting"))),
            ok("failed"),
        ],
    );
    let p: Prediction = t.result.unwrap();
    assert!(matches!(p.into_result(), Err(Error::PredictionFailed(_))));
}

#[test]
fn run_create_io_error_is_outcome_unknown_after_one_create() {
    for kind in [TransportErrorKind::Io, TransportErrorKind::Timeout] {
        let mut run = Run::new(proxy_cfg(), create(), WaitOptions::default());
        let err = TransportError::new(kind, "connection closed before the response");
        let t = drive(&mut run, Instant::now(), vec![Reply::Fail(err.clone())]);
        assert_eq!(t.sent.len(), 1);
        assert_eq!(
            t.result.unwrap_err(),
            Error::CreateOutcomeUnknown(err.with_context(
                "POST /replicate/v1/models/black-forest-labs/flux-schnell/predictions, 1 attempt"
            ))
        );
        assert_eq!(run.prediction_id(), None);
        assert!(matches!(
            run.poll(Instant::now()),
            Step::Done(Err(Error::InvalidState(_)))
        ));
    }
}

#[test]
fn run_create_429_is_retried() {
    let base = Instant::now();
    let mut run = Run::new(proxy_cfg(), create(), fixed(500));
    let t = drive(
        &mut run,
        base,
        vec![
            Reply::Http(throttled(3)),
            Reply::Http(resp(201, pred_body(ID, "starting"))),
            ok("succeeded"),
        ],
    );
    let sent: Vec<_> = t
        .sent
        .iter()
        .map(|(at, r)| (at.duration_since(base), r.method().as_str().to_owned()))
        .collect();
    assert_eq!(
        sent,
        [
            (Duration::ZERO, "POST".to_owned()),
            (ms(3000), "POST".to_owned()),
            (ms(3500), "GET".to_owned()),
        ]
    );
    assert!(t.result.is_ok());
}

#[test]
fn run_create_503_is_not_retried_and_may_have_created() {
    let mut run = Run::new(proxy_cfg(), create(), WaitOptions::default());
    let t = drive(&mut run, Instant::now(), vec![Reply::Http(resp(503, ""))]);
    assert_eq!(t.sent.len(), 1);
    assert!(matches!(
        t.result.unwrap_err(),
        Error::CreateOutcomeUnknown(_)
    ));
}

#[test]
fn throttled_polls_after_a_create_say_the_prediction_exists() {
    // The create succeeded; then every poll is throttled until retries run out. The error must
    // carry the prediction (a caller that retried a bare 429 would create a second one).
    let opts = WaitOptions {
        retry: RetryPolicy {
            max_throttled_retries: 2,
            ..RetryPolicy::default()
        },
        ..fixed(500)
    };
    let mut run = Run::new(proxy_cfg(), create(), opts);
    let t = drive(
        &mut run,
        Instant::now(),
        vec![
            Reply::Http(resp(201, pred_body(ID, "starting"))),
            Reply::Http(throttled(1)),
            Reply::Http(throttled(1)),
            Reply::Http(throttled(1)),
        ],
    );
    let err = t.result.unwrap_err();
    assert_eq!(err.prediction_id(), Some(ID));
    match &err {
        Error::AfterCreate { prediction, source } => {
            assert_eq!(prediction.id, ID);
            assert_eq!(source.status(), Some(429));
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "prediction {ID} was created; waiting for it failed: "
        )),
        "{msg}"
    );
}

#[test]
fn a_deadline_bounds_a_sync_mode_create() {
    // `Prefer: wait` would let the server hold the create 60 s; with 2 s left it asks for 2 s at
    // most, and the request's timeout ends by the deadline (plus a 1 s grace).
    let base = Instant::now();
    let opts = WaitOptions {
        deadline: Some(base + ms(2500)),
        ..fixed(500)
    };
    let mut run = Run::new(proxy_cfg(), create().sync(SyncWait::Max), opts);
    let Step::Send(out) = run.poll(base) else {
        panic!()
    };
    assert_eq!(out.request.headers()["prefer"], "wait=2");
    assert_eq!(out.timeout, replicate_protocol::Timeout::Total(ms(3500)));
    // With under a second left, no sync mode at all.
    let opts = WaitOptions {
        deadline: Some(base + ms(800)),
        ..fixed(500)
    };
    let mut run = Run::new(proxy_cfg(), create().sync(SyncWait::Max), opts);
    let Step::Send(out) = run.poll(base) else {
        panic!()
    };
    assert!(out.request.headers().get("prefer").is_none());
    // The create answers `processing` at the deadline: the prediction is canceled, as when
    // polling.
    run.handle_response(resp(201, pred_body(ID, "processing")), base + ms(800));
    let Step::Send(cancel) = run.poll(base + ms(800)) else {
        panic!()
    };
    assert!(cancel.request.uri().path().ends_with("/cancel"));
}

#[test]
fn polls_end_by_the_deadline() {
    let base = Instant::now();
    let opts = WaitOptions {
        deadline: Some(base + Duration::from_secs(4)),
        ..fixed(500)
    };
    let mut wait = Wait::new(proxy_cfg(), ID, opts);
    let Step::Send(out) = wait.poll(base) else {
        panic!()
    };
    assert_eq!(
        out.timeout,
        replicate_protocol::Timeout::Total(Duration::from_secs(5))
    );
}

#[test]
fn run_deadline_cancels_the_created_prediction() {
    let base = Instant::now();
    let opts = WaitOptions {
        deadline: Some(base + ms(1000)),
        ..fixed(400)
    };
    let mut run = Run::new(proxy_cfg(), create(), opts);
    let t = drive(
        &mut run,
        base,
        vec![
            Reply::Http(resp(201, pred_body(ID, "starting"))),
            ok("processing"),
            ok("processing"),
            Reply::Http(resp(200, pred_body(ID, "canceled"))),
        ],
    );
    let methods: Vec<_> = t.sent.iter().map(|(_, r)| r.method().as_str()).collect();
    assert_eq!(methods, ["POST", "GET", "GET", "POST"]);
    assert_eq!(t.sent[3].1.uri(), format!("{GET_URL}/cancel").as_str());
    assert_eq!(t.sent[3].0, base + ms(1000));
    assert!(matches!(
        t.result,
        Err(Error::DeadlineExceeded {
            cancel_sent: true,
            ..
        })
    ));
}

/// The first request a run sends for `create` with these options.
fn first_create(create: CreatePrediction, opts: WaitOptions) -> http::Request<Vec<u8>> {
    let mut run = Run::new(proxy_cfg(), create, opts);
    let t = drive(
        &mut run,
        Instant::now(),
        vec![Reply::Http(resp(201, pred_body(ID, "succeeded")))],
    );
    t.sent.into_iter().next().unwrap().1
}

#[test]
fn run_takes_the_sync_hold_of_its_options_unless_the_create_sets_one() {
    let client_like = WaitOptions {
        sync: Some(SyncWait::seconds(30).unwrap()),
        ..fixed(500)
    };
    // The options' hold (a client's setting) applies to a create that sets none...
    let sent = first_create(create(), client_like.clone());
    assert_eq!(sent.headers()["prefer"], "wait=30");
    // ...the create's own hold wins...
    let sent = first_create(create().sync(SyncWait::seconds(5).unwrap()), client_like);
    assert_eq!(sent.headers()["prefer"], "wait=5");
    // ...and options without one send none.
    let sent = first_create(create(), fixed(500));
    assert!(sent.headers().get("prefer").is_none());
}
