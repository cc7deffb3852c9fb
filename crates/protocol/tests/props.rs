//! Property tests: model references round-trip, parsers never panic, and the wait and run
//! machines keep their promises under any scripted sequence of answers.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{fixture, pred_body, proxy_cfg, resp, resp_with};
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use replicate_protocol::{
    ApiError, BaseUrl, CancelAfter, CreatePrediction, Endpoint, Error, Flow, ListPredictions,
    ModelRef, PollPolicy, RetryAfter, RetryPolicy, Run, Status, Step, Target, TransportError,
    TransportErrorKind, Wait, WaitOptions, cursor_of, parse_prediction,
};

// ---------------------------------------------------------------------------------------------
// Model references.

fn part() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,40}".prop_filter("dot segments are not names", |s| s != "." && s != "..")
}

fn version() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}",
        "dp-[0-9a-f]{32}",
        "[A-Za-z0-9_.-]{1,70}".prop_filter("dot segments", |s| s != "." && s != ".."),
    ]
}

proptest! {
    #[test]
    fn model_ref_round_trips(owner in part(), name in part(), version in proptest::option::of(version())) {
        let text = match &version {
            Some(v) => format!("{owner}/{name}:{v}"),
            None => format!("{owner}/{name}"),
        };
        let parsed: ModelRef = text.parse().unwrap();
        prop_assert_eq!(&parsed.owner, &owner);
        prop_assert_eq!(&parsed.name, &name);
        prop_assert_eq!(&parsed.version, &version);
        let shown = parsed.to_string();
        prop_assert_eq!(&shown, &text);
        prop_assert_eq!(shown.parse::<ModelRef>().unwrap(), parsed);
        // As a target: a model, or the bare version.
        let target = Target::parse(&text).unwrap();
        match version {
            Some(v) => prop_assert_eq!(target, Target::Version(v)),
            None => prop_assert_eq!(target, Target::Model { owner, name }),
        }
    }

    #[test]
    fn cancel_after_display_round_trips(secs in 5u64..10_000_000) {
        let d = CancelAfter::new(Duration::from_secs(secs)).unwrap();
        let back: CancelAfter = d.to_string().parse().unwrap();
        prop_assert_eq!(back, d);
        let plain: CancelAfter = secs.to_string().parse().unwrap();
        prop_assert_eq!(plain, d);
    }
}

// ---------------------------------------------------------------------------------------------
// No panics on any input.

/// Bytes: anything, or a fixture with a few bytes changed or cut short.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    let fixtures = [
        "seed/get_response.json",
        "seed/create_response.json",
        "predictions/unknown_status_and_fields.json",
        "predictions/output_json.json",
        "pages/predictions_page1.json",
        "errors/422.json",
        "errors/429.json",
        "errors/502.html",
    ];
    let mutated = (
        proptest::sample::select(fixtures.to_vec()),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(name, edits, cut, truncate)| {
            let mut b = fixture(name);
            for (i, byte) in edits {
                let at = i.index(b.len());
                b[at] = byte;
            }
            if truncate {
                b.truncate(cut.index(b.len() + 1));
            }
            b
        });
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..512), mutated]
}

fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "[0-9]{0,25}",
        "-?[0-9]{1,5}\\.[0-9]{0,5}",
        "(Mon|Tue|Wed), [0-9]{2} (Jan|Oct) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
    ]
}

proptest! {
    #[test]
    fn parse_prediction_never_panics(status in 100u16..600, body in body_bytes()) {
        let r = resp(status, body);
        match parse_prediction(&r) {
            Ok(p) => {
                prop_assert!((200..300).contains(&status));
                let _ = (p.output_url(), p.output_urls(), p.output_text(), p.error_message());
                let _ = p.into_result();
            }
            Err(e) => {
                let _ = (e.to_string(), format!("{e:?}"));
            }
        }
    }

    #[test]
    fn page_parse_never_panics(status in 100u16..600, body in body_bytes()) {
        let list = ListPredictions::new();
        if let Ok(page) = list.parse(resp(status, body)) {
            let _ = (page.next_cursor(), page.previous_cursor());
            if let Some(next) = replicate_protocol::Paginated::next_page(&list, &page) {
                prop_assert!(next.request(&proxy_cfg()).is_ok());
            }
        }
    }

    #[test]
    fn api_error_never_panics(
        status in 100u16..1000,
        retry_after in header_text(),
        date in header_text(),
        remaining in header_text(),
        body in body_bytes(),
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in [("retry-after", &retry_after), ("date", &date), ("ratelimit-remaining", &remaining), ("ratelimit-reset", &remaining)] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
        let e = ApiError::from_response(StatusCode::from_u16(status).unwrap(), &headers, &body);
        prop_assert_eq!(e.status, status);
        let _ = (e.to_string(), e.retry_delay(), e.is_retryable());
        if let Some(excerpt) = &e.body_excerpt {
            prop_assert!(excerpt.chars().count() <= 201);
        }
        let _ = RetryPolicy::default().decide(replicate_protocol::RetryClass::CreateOnce, 0, &Error::Api(Box::new(e)));
    }

    #[test]
    fn text_parsers_never_panic(s in prop_oneof![any::<String>(), "[a-z0-9:/._@?#%-]{0,60}", "[0-9hms]{0,30}"]) {
        if let Ok(t) = Target::parse(&s) {
            let _ = CreatePrediction::new(t).request(&proxy_cfg());
        }
        let _ = Target::deployment(&s);
        if let Ok(c) = s.parse::<CancelAfter>() {
            prop_assert!(c.duration() >= CancelAfter::MIN);
            prop_assert_eq!(c.to_string().parse::<CancelAfter>().unwrap(), c);
        }
        let _ = s.parse::<ModelRef>();
        let _ = RetryAfter::parse(&s);
        let _ = cursor_of(&s);
        let _ = Status::parse(&s);
    }

    #[test]
    fn base_url_parse_never_panics(
        s in prop_oneof![
            any::<String>(),
            "(https?|ftp|HTTPS)://[a-zA-Z0-9.:@\\[\\]-]{0,20}(/[a-zA-Z0-9%._~-]{0,10}|/v1|/V1){0,3}/?(\\?[a-z=]{0,5})?(#x)?",
        ],
        other in "(https?)://[a-zA-Z0-9.:@-]{0,20}(/[a-z]{0,5})?",
    ) {
        if let Ok(base) = BaseUrl::parse(&s) {
            prop_assert!(base.as_str().starts_with("http://") || base.as_str().starts_with("https://"));
            prop_assert!(!base.as_str().ends_with('/'));
            prop_assert!(!base.as_str().contains('@'));
            prop_assert_eq!(format!("{}{}", base.origin(), base.prefix()), base.as_str());
            // Only one trailing /v1 is dropped: a prefix may itself end in /v1 (".../v1/v1").
            if base.as_str().ends_with("/v1") {
                prop_assert!(s.matches("/v1").count() >= 2, "{}", s);
            } else {
                // Normalisation is idempotent.
                prop_assert_eq!(BaseUrl::parse(base.as_str()).unwrap(), base.clone());
            }
            // The base is on its own origin.
            prop_assert!(base.is_same_origin(&base.api_url("/predictions")));
            let _ = base.is_same_origin(&other);
            let cfg = replicate_protocol::Config::new("t").with_base_url(&s).unwrap();
            prop_assert!(replicate_protocol::GetPrediction::new("x").request(&cfg).is_ok());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The wait machine under scripted answers.

#[derive(Debug, Clone)]
enum Answer {
    /// A non-terminal status; `true` for processing, `false` for starting.
    Running(bool),
    /// 429 with this Retry-After (seconds).
    Throttled(u64),
    /// 503, no Retry-After.
    Unavailable,
    /// A transport failure.
    Transport(TransportErrorKind),
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => any::<bool>().prop_map(Answer::Running),
        2 => prop_oneof![0u64..4, Just(0), 100u64..200].prop_map(Answer::Throttled),
        1 => Just(Answer::Unavailable),
        2 => prop_oneof![
            Just(TransportErrorKind::Connect),
            Just(TransportErrorKind::Timeout),
            Just(TransportErrorKind::Io),
            Just(TransportErrorKind::Other),
        ]
        .prop_map(Answer::Transport),
    ]
}

/// How the cancel request at the deadline is answered.
#[derive(Debug, Clone, Copy)]
enum CancelAnswer {
    Canceled,
    ServerError,
    Lost,
}

#[derive(Debug, Clone)]
struct Scenario {
    answers: Vec<Answer>,
    terminal: Option<&'static str>,
    deadline_ms: u64,
    poll: PollPolicy,
    retry: RetryPolicy,
    cancel_at_deadline: bool,
    cancel_answer: CancelAnswer,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(answer(), 0..40),
        proptest::option::of(proptest::sample::select(vec![
            "succeeded",
            "failed",
            "canceled",
            "aborted",
        ])),
        1u64..30_000,
        (10u64..2_000, 0u64..20_000, 1.0f64..3.0, 0u64..6_000),
        (0u32..6, 0u64..1_000, 0u64..10_000),
        any::<bool>(),
        prop_oneof![
            Just(CancelAnswer::Canceled),
            Just(CancelAnswer::ServerError),
            Just(CancelAnswer::Lost)
        ],
    )
        .prop_map(
            |(
                mut answers,
                terminal,
                deadline_ms,
                poll,
                retry,
                cancel_at_deadline,
                cancel_answer,
            )| {
                // Statuses only move forward: once processing, never starting again.
                let mut processing = false;
                for a in &mut answers {
                    if let Answer::Running(p) = a {
                        processing |= *p;
                        *p = processing;
                    }
                }
                // Aborted only follows starting.
                let terminal = terminal.map(|t| {
                    if t == "aborted" && processing {
                        "canceled"
                    } else {
                        t
                    }
                });
                let (initial, backoff_after, multiplier, extra) = poll;
                let (max_retries, backoff_ms, max_backoff_extra) = retry;
                Scenario {
                    answers,
                    terminal,
                    deadline_ms,
                    poll: PollPolicy {
                        initial_interval: Duration::from_millis(initial),
                        backoff_after: Duration::from_millis(backoff_after),
                        multiplier,
                        max_interval: Duration::from_millis(initial + extra),
                    },
                    retry: RetryPolicy {
                        max_retries,
                        initial_backoff: Duration::from_millis(backoff_ms),
                        max_backoff: Duration::from_millis(backoff_ms + max_backoff_extra),
                        max_retry_after: Duration::from_secs(120),
                        ..RetryPolicy::default()
                    },
                    cancel_at_deadline,
                    cancel_answer,
                }
            },
        )
}

const ID: &str = "rrr4z55ocneqzikepnug6xezpe";

fn reply_for(answer: &Answer) -> Result<http::Response<Vec<u8>>, TransportError> {
    match answer {
        Answer::Running(true) => Ok(resp(200, pred_body(ID, "processing"))),
        Answer::Running(false) => Ok(resp(200, pred_body(ID, "starting"))),
        Answer::Throttled(secs) => Ok(common::throttled(*secs)),
        Answer::Unavailable => Ok(resp_with(
            503,
            &[("content-type", "text/html")],
            "<html>503</html>",
        )),
        Answer::Transport(kind) => Err(TransportError::new(*kind, "scripted failure")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wait_machine_keeps_its_promises(sc in scenario()) {
        let base = Instant::now();
        let deadline = base + Duration::from_millis(sc.deadline_ms);
        let opts = WaitOptions {
            poll: sc.poll.clone(),
            retry: sc.retry.clone(),
            deadline: Some(deadline),
            cancel_at_deadline: sc.cancel_at_deadline,
            sync: None,
        };
        let mut wait = Wait::new(proxy_cfg(), ID, opts);
        let mut script = sc.answers.iter();
        let mut last_running = Answer::Running(false);
        let mut terminal_sent: Option<replicate_protocol::Prediction> = None;
        let mut cancel_sent = false;
        let mut sent = 0u64;
        let mut now = base;
        let bound = sc.deadline_ms / sc.poll.initial_interval.as_millis() as u64
            + u64::from(sc.retry.max_retries)
            + 2;

        let mut finished = None;
        for _ in 0..100_000 {
            match wait.poll(now) {
                Step::Send(out) => {
                    sent += 1;
                    prop_assert!(sent <= bound, "{} requests, bound {}", sent, bound);
                    prop_assert!(terminal_sent.is_none(), "a request after the terminal answer");
                    prop_assert!(!cancel_sent, "a request after the cancel");
                    let req = out.request;
                    prop_assert!(req.uri().to_string().starts_with("https://proxy.example/replicate/v1/predictions/"));
                    if req.method() == "POST" {
                        prop_assert!(req.uri().path().ends_with("/cancel"));
                        prop_assert!(sc.cancel_at_deadline);
                        prop_assert!(now >= deadline, "cancel before the deadline");
                        cancel_sent = true;
                        match sc.cancel_answer {
                            CancelAnswer::Canceled => wait.handle_response(resp(200, pred_body(ID, "canceled")), now),
                            CancelAnswer::ServerError => wait.handle_response(resp(500, ""), now),
                            CancelAnswer::Lost => wait.handle_error(TransportError::new(TransportErrorKind::Timeout, "lost"), now),
                        }
                        continue;
                    }
                    prop_assert!(now < deadline, "a poll at or after the deadline");
                    let answer = match script.next() {
                        Some(a) => {
                            if let Answer::Running(_) = a {
                                last_running = a.clone();
                            }
                            a.clone()
                        }
                        None => match sc.terminal {
                            Some(t) if terminal_sent.is_none() => {
                                let body = pred_body(ID, t);
                                terminal_sent = Some(parse_prediction(&resp(200, body.clone())).unwrap());
                                wait.handle_response(resp(200, body), now);
                                continue;
                            }
                            _ => last_running.clone(),
                        },
                    };
                    match reply_for(&answer) {
                        Ok(r) => wait.handle_response(r, now),
                        Err(e) => wait.handle_error(e, now),
                    }
                }
                Step::Sleep { until, .. } => {
                    prop_assert!(until > now, "sleep to {:?} from {:?}", until, now);
                    prop_assert!(until <= deadline, "sleep past the deadline");
                    now = until;
                }
                Step::Receive | Step::Yield(_) => prop_assert!(false, "a wait reads whole answers"),
                Step::Done(result) => {
                    finished = Some(result);
                    break;
                }
            }
        }
        let Some(result) = finished else {
            return Err(TestCaseError::fail("the wait never finished"));
        };
        prop_assert_eq!(u64::from(wait.requests()), sent);
        match (&terminal_sent, result) {
            (Some(expected), Ok(p)) => prop_assert_eq!(&p, expected),
            (Some(_), Err(e)) => return Err(TestCaseError::fail(format!("terminal answer lost: {e}"))),
            (None, Ok(p)) => return Err(TestCaseError::fail(format!("done without a terminal answer: {p:?}"))),
            (None, Err(Error::DeadlineExceeded { id, last, cancel_sent: acked })) => {
                prop_assert_eq!(id, ID);
                prop_assert!(now >= deadline);
                prop_assert_eq!(cancel_sent, sc.cancel_at_deadline);
                prop_assert_eq!(acked, cancel_sent && matches!(sc.cancel_answer, CancelAnswer::Canceled));
                if acked {
                    prop_assert_eq!(last.unwrap().status, Status::Canceled);
                }
            }
            (None, Err(e)) => {
                // Retries ran out, or a Retry-After too long to wait for.
                prop_assert!(now < deadline);
                prop_assert!(!cancel_sent);
                prop_assert!(
                    matches!(e, Error::Transport(_)) || matches!(e.status(), Some(429 | 503)),
                    "unexpected error {:?}", e
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run machine never re-sends a create that may have reached the server.

#[derive(Debug, Clone)]
enum CreateAnswer {
    Throttled(u64),
    Unavailable,
    Transport(TransportErrorKind),
    Created(&'static str),
}

fn create_answer() -> impl Strategy<Value = CreateAnswer> {
    prop_oneof![
        (0u64..3).prop_map(CreateAnswer::Throttled),
        Just(CreateAnswer::Unavailable),
        prop_oneof![
            Just(TransportErrorKind::Connect),
            Just(TransportErrorKind::Timeout),
            Just(TransportErrorKind::Io),
        ]
        .prop_map(CreateAnswer::Transport),
        proptest::sample::select(vec!["starting", "processing", "succeeded", "failed"])
            .prop_map(CreateAnswer::Created),
    ]
}

proptest! {
    #[test]
    fn run_never_resends_an_ambiguous_create(answers in proptest::collection::vec(create_answer(), 1..12), max_retries in 0u32..6) {
        let base = Instant::now();
        let opts = WaitOptions {
            retry: RetryPolicy { max_retries, ..RetryPolicy::default() },
            poll: PollPolicy::fixed(Duration::from_millis(500)),
            ..WaitOptions::default()
        };
        let create = CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell").unwrap());
        let mut run = Run::new(proxy_cfg(), create, opts);
        let mut script = answers.iter();
        let mut creates = Vec::new();
        let mut now = base;
        let result = loop {
            match run.poll(now) {
                Step::Send(out) => {
                    if out.request.method() == "GET" {
                        run.handle_response(resp(200, pred_body(ID, "succeeded")), now);
                        continue;
                    }
                    prop_assert!(out.request.uri().path().ends_with("/models/black-forest-labs/flux-schnell/predictions"));
                    // Once the script runs out, the create succeeds.
                    let a = script.next().cloned().unwrap_or(CreateAnswer::Created("succeeded"));
                    if let Some(prev) = creates.last() {
                        // Only a 429 or a connection never made allows another create.
                        prop_assert!(
                            matches!(prev, CreateAnswer::Throttled(_) | CreateAnswer::Transport(TransportErrorKind::Connect)),
                            "create re-sent after {:?}", prev
                        );
                    }
                    creates.push(a.clone());
                    match &a {
                        CreateAnswer::Throttled(s) => run.handle_response(common::throttled(*s), now),
                        CreateAnswer::Unavailable => run.handle_response(resp(503, ""), now),
                        CreateAnswer::Transport(k) => run.handle_error(TransportError::new(*k, "scripted"), now),
                        CreateAnswer::Created(s) => run.handle_response(resp(201, pred_body(ID, s)), now),
                    }
                }
                Step::Sleep { until, .. } => {
                    prop_assert!(until > now);
                    now = until;
                }
                Step::Receive | Step::Yield(_) => prop_assert!(false, "a run reads whole answers"),
                Step::Done(r) => break r,
            }
        };
        prop_assert!(creates.len() as u32 <= max_retries + RetryPolicy::default().max_throttled_retries + 1);
        match (creates.last().unwrap(), result) {
            (CreateAnswer::Created(_), Ok(p)) => prop_assert!(p.status.is_terminal()),
            (CreateAnswer::Transport(TransportErrorKind::Timeout | TransportErrorKind::Io), Err(Error::CreateOutcomeUnknown(_))) => {}
            (CreateAnswer::Transport(TransportErrorKind::Connect), Err(Error::Transport(_))) => {}
            // A 5xx may come after the server acted: the outcome is unknown, never re-sent.
            (CreateAnswer::Unavailable, Err(Error::CreateOutcomeUnknown(t))) => prop_assert!(t.message.contains("503"), "{}", t.message),
            (CreateAnswer::Throttled(_), Err(e)) => prop_assert_eq!(e.status(), Some(429)),
            (last, r) => return Err(TestCaseError::fail(format!("after {last:?}: {r:?}"))),
        }
    }
}
