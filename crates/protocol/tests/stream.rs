//! The stream session state machine, driven with made-up clocks and hand-written bodies.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Request, StatusCode};
use replicate_protocol::sse::{DoneReason, ReplicateEvent};
use replicate_protocol::stream::{self, LAST_EVENT_ID};
use replicate_protocol::{
    Config, Error, Flow, OutputText, Prediction, Step, StreamAuth, StreamOptions, StreamSession,
    TransportError, TransportErrorKind,
};

/// The steps of a stream session, as these tests read them.
#[derive(Debug)]
#[allow(dead_code)]
enum StreamStep {
    Connect(Request<Vec<u8>>),
    Receive,
    Sleep(Instant),
    Event(ReplicateEvent),
    Done(Result<(), Error>),
}

fn poll(s: &mut StreamSession, now: Instant) -> StreamStep {
    match Flow::poll(s, now) {
        Step::Send(out) => StreamStep::Connect(out.request),
        Step::Receive => StreamStep::Receive,
        Step::Sleep { until, .. } => StreamStep::Sleep(until),
        Step::Yield(e) => StreamStep::Event(e),
        Step::Done(r) => StreamStep::Done(r),
    }
}

const STREAM_URL: &str = "https://stream.replicate.com/v1/files/bcwr-abc";

fn cfg() -> Config {
    Config::new("r8_secret")
}

fn sse_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h
}

fn session(opts: StreamOptions) -> StreamSession {
    StreamSession::new(&cfg(), STREAM_URL, opts).unwrap()
}

fn connect(s: &mut StreamSession, now: Instant) -> Request<Vec<u8>> {
    match poll(s, now) {
        StreamStep::Connect(req) => req,
        other => panic!("expected Connect, got {other:?}"),
    }
}

fn open(s: &mut StreamSession, now: Instant) -> Request<Vec<u8>> {
    let req = connect(s, now);
    s.handle_head(StatusCode::OK, &sse_headers(), now);
    assert!(s.is_reading());
    req
}

fn drain(s: &mut StreamSession) -> Vec<Result<ReplicateEvent, Error>> {
    std::iter::from_fn(|| s.next_event()).collect()
}

fn out(s: &str) -> Result<ReplicateEvent, Error> {
    Ok(ReplicateEvent::Output(s.to_owned()))
}

fn ev(id: &str, event: &str, data: &str) -> String {
    format!("id: {id}\nevent: {event}\ndata: {data}\n\n")
}

#[test]
fn normal_flow_to_done() {
    let mut s = session(StreamOptions::default());
    let now = Instant::now();
    let req = open(&mut s, now);
    assert_eq!(req.method(), "GET");
    assert_eq!(req.uri(), STREAM_URL);
    assert_eq!(req.headers()["accept"], "text/event-stream");
    assert_eq!(req.headers()["cache-control"], "no-store");
    assert!(
        req.headers()["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("replicate-rust/")
    );
    assert!(req.headers().get(LAST_EVENT_ID).is_none());

    // Chunks cut anywhere; a leading comment; multi-line data.
    let body = format!(
        ": hi\n\n{}{}{}{}",
        ev("1:0", "logs", "booting"),
        ev("1:1", "output", "Hello"),
        "id: 1:2\nevent: output\ndata:  big\ndata: world\n\n",
        ev("1:3", "done", "{}"),
    );
    let mut got = Vec::new();
    for chunk in body.as_bytes().chunks(7) {
        s.feed(chunk);
        got.extend(drain(&mut s));
    }
    assert_eq!(
        got,
        vec![
            Ok(ReplicateEvent::Logs("booting".into())),
            out("Hello"),
            out(" big\nworld"),
            Ok(ReplicateEvent::Done(None)),
        ]
    );
    assert!(!s.is_reading());
    assert!(matches!(poll(&mut s, now), StreamStep::Done(Ok(()))));
    // Polling again repeats the outcome.
    assert!(matches!(poll(&mut s, now), StreamStep::Done(Ok(()))));

    let mut text = OutputText::new();
    for e in got.iter().flatten() {
        text.push(e).unwrap();
    }
    assert_eq!(text.as_str(), "Hello big\nworld");
}

#[test]
fn events_after_done_are_dropped_and_eof_after_done_is_harmless() {
    let mut s = session(StreamOptions::default());
    let now = Instant::now();
    open(&mut s, now);
    s.feed(
        format!(
            "{}{}",
            ev("1:0", "done", r#"{"reason":"canceled"}"#),
            ev("1:1", "output", "late")
        )
        .as_bytes(),
    );
    assert_eq!(
        drain(&mut s),
        vec![Ok(ReplicateEvent::Done(Some(DoneReason::Canceled)))]
    );
    s.handle_end(now);
    s.feed(b"event: output\ndata: later\n\n");
    assert!(drain(&mut s).is_empty());
    assert!(matches!(poll(&mut s, now), StreamStep::Done(Ok(()))));
}

#[test]
fn error_event_ends_the_session() {
    let mut s = session(StreamOptions::default());
    let now = Instant::now();
    open(&mut s, now);
    s.feed(ev("1:0", "output", "par").as_bytes());
    s.feed(ev("1:1", "error", r#"{"detail":"CUDA out of memory"}"#).as_bytes());
    s.feed(ev("1:2", "done", r#"{"reason":"error"}"#).as_bytes());
    let got = drain(&mut s);
    assert_eq!(
        got,
        vec![
            out("par"),
            Err(Error::PredictionStreamError("CUDA out of memory".into()))
        ]
    );
    match poll(&mut s, now) {
        StreamStep::Done(Err(Error::PredictionStreamError(d))) => {
            assert_eq!(d, "CUDA out of memory")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn eof_midway_reconnects_with_last_event_id_and_dedups() {
    let mut s = session(StreamOptions::default());
    let t0 = Instant::now();
    open(&mut s, t0);
    s.feed(format!("{}{}", ev("7:0", "output", "a"), ev("7:1", "output", "b")).as_bytes());
    // A partial event is lost with the connection.
    s.feed(b"id: 7:2\nevent: output\ndata: c");
    assert_eq!(drain(&mut s), vec![out("a"), out("b")]);
    s.handle_end(t0);
    assert!(!s.is_reading());
    assert_eq!(s.last_event_id(), Some("7:1"));

    // The first reconnection waits the initial backoff.
    let at = match poll(&mut s, t0) {
        StreamStep::Sleep(at) => at,
        other => panic!("{other:?}"),
    };
    assert_eq!(at, t0 + Duration::from_millis(500));
    let req = open(&mut s, at);
    assert_eq!(req.headers()[LAST_EVENT_ID], "7:1");
    assert_eq!(s.reconnects(), 1);

    // A server that replays from the start: the replayed events are dropped.
    s.feed(
        format!(
            "{}{}{}{}",
            ev("7:0", "output", "a"),
            ev("7:1", "output", "b"),
            ev("7:2", "output", "c"),
            ev("7:3", "done", "{}")
        )
        .as_bytes(),
    );
    assert_eq!(
        drain(&mut s),
        vec![out("c"), Ok(ReplicateEvent::Done(None))]
    );
    assert!(matches!(poll(&mut s, at), StreamStep::Done(Ok(()))));
}

#[test]
fn events_without_their_own_id_are_never_dropped() {
    let mut s = session(StreamOptions::default());
    let now = Instant::now();
    open(&mut s, now);
    // The second and third events carry the first one's id forward.
    s.feed(
        b"id: 1\nevent: output\ndata: x\n\nevent: output\ndata: x\n\nevent: output\ndata: y\n\n",
    );
    assert_eq!(drain(&mut s), vec![out("x"), out("x"), out("y")]);
    s.handle_end(now);
    let StreamStep::Sleep(at) = poll(&mut s, now) else {
        panic!()
    };
    let req = open(&mut s, at);
    assert_eq!(req.headers()[LAST_EVENT_ID], "1");
    // A well-behaved server resumes after id 1: an event without an id is new.
    s.feed(b"event: output\ndata: z\n\n");
    assert_eq!(drain(&mut s), vec![out("z")]);
}

#[test]
fn retry_field_sets_the_reconnect_delay() {
    let mut s = session(StreamOptions::default());
    let t0 = Instant::now();
    open(&mut s, t0);
    s.feed(b"retry: 2000\n\n");
    s.feed(ev("1:0", "output", "a").as_bytes());
    assert_eq!(drain(&mut s), vec![out("a")]);
    s.handle_end(t0);
    assert!(matches!(poll(&mut s, t0), StreamStep::Sleep(at) if at == t0 + Duration::from_secs(2)));
    // Not yet time: still sleeping.
    assert!(matches!(
        poll(&mut s, t0 + Duration::from_secs(1)),
        StreamStep::Sleep(_)
    ));
    // A second consecutive failure doubles it.
    let t1 = t0 + Duration::from_secs(2);
    connect(&mut s, t1);
    s.handle_error(
        TransportError::new(TransportErrorKind::Connect, "refused"),
        t1,
    );
    assert!(matches!(poll(&mut s, t1), StreamStep::Sleep(at) if at == t1 + Duration::from_secs(4)));
}

#[test]
fn huge_retry_field_is_capped() {
    let opts = StreamOptions {
        max_retry_after: Duration::from_secs(10),
        ..StreamOptions::default()
    };
    let mut s = session(opts);
    let t0 = Instant::now();
    open(&mut s, t0);
    s.feed(b"retry: 99999999999\n\n");
    s.handle_end(t0);
    assert!(
        matches!(poll(&mut s, t0), StreamStep::Sleep(at) if at == t0 + Duration::from_secs(10))
    );
}

#[test]
fn max_reconnects_exhausted_is_an_error() {
    let opts = StreamOptions {
        max_reconnects: 2,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(150),
        ..StreamOptions::default()
    };
    let mut s = session(opts);
    let mut now = Instant::now();
    let mut sleeps = Vec::new();
    loop {
        match poll(&mut s, now) {
            StreamStep::Connect(_) => {
                s.handle_head(StatusCode::OK, &sse_headers(), now);
                s.feed(b": keepalive\n\n");
                s.handle_end(now);
            }
            StreamStep::Sleep(at) => {
                sleeps.push(at - now);
                now = at;
            }
            StreamStep::Done(r) => {
                let err = r.unwrap_err();
                assert!(
                    matches!(err, Error::Stream(ref m) if m.message.contains("done")),
                    "{err}"
                );
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    // Two reconnections, the second delay doubled but capped.
    assert_eq!(
        sleeps,
        vec![Duration::from_millis(100), Duration::from_millis(150)]
    );
    assert_eq!(s.reconnects(), 2);
}

#[test]
fn counter_resets_after_events() {
    let opts = StreamOptions {
        max_reconnects: 1,
        ..StreamOptions::default()
    };
    let mut s = session(opts);
    let mut now = Instant::now();
    // Each connection delivers one event then drops: never more than one failure in a row.
    for i in 0..10 {
        open(&mut s, now);
        s.feed(ev(&format!("1:{i}"), "output", "t").as_bytes());
        assert_eq!(drain(&mut s), vec![out("t")]);
        s.handle_end(now);
        let StreamStep::Sleep(at) = poll(&mut s, now) else {
            panic!("gave up at {i}")
        };
        now = at;
    }
    assert_eq!(s.reconnects(), 10);
}

#[test]
fn transport_errors_reconnect_like_eof() {
    let opts = StreamOptions {
        max_reconnects: 1,
        ..StreamOptions::default()
    };
    let mut s = session(opts);
    let now = Instant::now();
    connect(&mut s, now);
    s.handle_error(
        TransportError::new(TransportErrorKind::Connect, "refused"),
        now,
    );
    let StreamStep::Sleep(at) = poll(&mut s, now) else {
        panic!()
    };
    connect(&mut s, at);
    s.handle_error(TransportError::new(TransportErrorKind::Io, "reset"), at);
    match poll(&mut s, at) {
        StreamStep::Done(Err(Error::Transport(t))) => assert_eq!(t.kind, TransportErrorKind::Io),
        other => panic!("{other:?}"),
    }
}

#[test]
fn silent_stream_reopens_count_so_a_silent_host_is_not_reopened_forever() {
    // A host that answers headers and then nothing: each idle read timeout reopens the stream,
    // and counts, so the session ends after `max_reconnects` silent reopenings.
    let opts = StreamOptions {
        max_reconnects: 3,
        ..StreamOptions::default()
    };
    let mut s = session(opts);
    let mut now = Instant::now();
    let mut reopenings = 0;
    let err = loop {
        open(&mut s, now);
        s.handle_error(
            TransportError::new(TransportErrorKind::Timeout, "read timed out"),
            now,
        );
        match poll(&mut s, now) {
            StreamStep::Sleep(at) => {
                reopenings += 1;
                assert!(reopenings <= 3, "reopened more than max_reconnects times");
                now = at;
            }
            StreamStep::Done(Err(e)) => break e,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(reopenings, 3);
    assert!(
        matches!(&err, Error::Stream(m) if m.message.contains("silent")),
        "{err:?}"
    );
}

#[test]
fn an_event_resets_the_silent_reopen_count() {
    let opts = StreamOptions {
        max_reconnects: 1,
        ..StreamOptions::default()
    };
    let mut s = session(opts);
    let mut now = Instant::now();
    for _ in 0..5 {
        open(&mut s, now);
        s.feed(b"event: output\nid: x\ndata: a\n\n");
        while s.next_event().is_some() {}
        s.handle_error(
            TransportError::new(TransportErrorKind::Timeout, "read timed out"),
            now,
        );
        let StreamStep::Sleep(at) = poll(&mut s, now) else {
            panic!("a stream that delivers events gave up")
        };
        now = at;
    }
}

#[test]
fn server_errors_reconnect_with_backoff_and_retry_after() {
    let mut s = session(StreamOptions::default());
    let t0 = Instant::now();
    connect(&mut s, t0);
    s.handle_head(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), t0);
    assert!(!s.is_reading());
    assert!(
        matches!(poll(&mut s, t0), StreamStep::Sleep(at) if at == t0 + Duration::from_millis(500))
    );
    let t1 = t0 + Duration::from_millis(500);
    connect(&mut s, t1);
    s.handle_head(StatusCode::BAD_GATEWAY, &HeaderMap::new(), t1);
    assert!(matches!(poll(&mut s, t1), StreamStep::Sleep(at) if at == t1 + Duration::from_secs(1)));
    // 429 with Retry-After: that delay.
    let t2 = t1 + Duration::from_secs(1);
    connect(&mut s, t2);
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("7"));
    s.handle_head(StatusCode::TOO_MANY_REQUESTS, &h, t2);
    assert!(matches!(poll(&mut s, t2), StreamStep::Sleep(at) if at == t2 + Duration::from_secs(7)));
    let t3 = t2 + Duration::from_secs(7);
    open(&mut s, t3);
    s.feed(ev("1", "done", "{}").as_bytes());
    drain(&mut s);
    assert!(matches!(poll(&mut s, t3), StreamStep::Done(Ok(()))));
}

#[test]
fn too_long_retry_after_gives_up() {
    let mut s = session(StreamOptions::default());
    let now = Instant::now();
    connect(&mut s, now);
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("3600"));
    s.handle_head(StatusCode::SERVICE_UNAVAILABLE, &h, now);
    match poll(&mut s, now) {
        StreamStep::Done(Err(e)) => assert_eq!(e.status(), Some(503)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gone_streams_are_a_typed_error() {
    for status in [StatusCode::NOT_FOUND, StatusCode::GONE] {
        let mut s = session(StreamOptions::default());
        let now = Instant::now();
        connect(&mut s, now);
        s.handle_head(status, &HeaderMap::new(), now);
        match poll(&mut s, now) {
            StreamStep::Done(Err(e)) => {
                assert!(stream::is_stream_gone(&e), "{e}");
                assert_eq!(e.status(), Some(status.as_u16()));
                assert!(e.to_string().contains("expired"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Other 4xx are errors too, without reconnecting.
    let mut s = session(StreamOptions::default());
    let now = Instant::now();
    connect(&mut s, now);
    s.handle_head(StatusCode::UNAUTHORIZED, &HeaderMap::new(), now);
    match poll(&mut s, now) {
        StreamStep::Done(Err(e)) => {
            assert_eq!(e.status(), Some(401));
            assert!(!stream::is_stream_gone(&e));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_content_type_redirects_and_204_end_the_session() {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("text/html"));
    let mut s = session(StreamOptions::default());
    let now = Instant::now();
    connect(&mut s, now);
    s.handle_head(StatusCode::OK, &h, now);
    assert!(
        matches!(poll(&mut s, now), StreamStep::Done(Err(Error::Stream(m))) if m.message.contains("text/html"))
    );

    // Parameters and case are fine.
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("Text/Event-Stream; charset=utf-8"),
    );
    let mut s = session(StreamOptions::default());
    connect(&mut s, now);
    s.handle_head(StatusCode::OK, &h, now);
    assert!(s.is_reading());

    let mut h = HeaderMap::new();
    h.insert(
        "location",
        HeaderValue::from_static("https://evil.example/"),
    );
    let mut s = session(StreamOptions::default());
    connect(&mut s, now);
    s.handle_head(StatusCode::FOUND, &h, now);
    assert!(
        matches!(poll(&mut s, now), StreamStep::Done(Err(Error::Stream(m))) if m.message.contains("redirect"))
    );

    let mut s = session(StreamOptions::default());
    connect(&mut s, now);
    s.handle_head(StatusCode::NO_CONTENT, &HeaderMap::new(), now);
    assert!(matches!(
        poll(&mut s, now),
        StreamStep::Done(Err(Error::Stream(_)))
    ));
}

#[test]
fn oversized_events_end_the_session() {
    let opts = StreamOptions {
        limits: replicate_protocol::sse::Limits {
            max_line_bytes: 64,
            max_event_bytes: 64,
        },
        ..StreamOptions::default()
    };
    let mut s = session(opts);
    let now = Instant::now();
    open(&mut s, now);
    s.feed(ev("1", "output", "ok").as_bytes());
    s.feed(format!("event: output\ndata: {}\n\n", "x".repeat(100)).as_bytes());
    let got = drain(&mut s);
    assert_eq!(got[0], out("ok"));
    assert!(matches!(&got[1], Err(Error::Stream(_))));
    assert!(matches!(
        poll(&mut s, now),
        StreamStep::Done(Err(Error::Stream(_)))
    ));
}

#[test]
fn auth_header_follows_the_policy() {
    let auth = |cfg: &Config, url: &str, auth: StreamAuth| {
        let opts = StreamOptions {
            auth,
            ..StreamOptions::default()
        };
        let mut s = StreamSession::new(cfg, url, opts).unwrap();
        let req = connect(&mut s, Instant::now());
        req.headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let public = cfg();
    let proxy = cfg()
        .with_base_url("https://proxy.example/replicate")
        .unwrap();

    // Default: only on the API's origin.
    assert_eq!(auth(&public, STREAM_URL, StreamAuth::default()), None);
    assert_eq!(
        auth(
            &proxy,
            "https://stream.replicate.com/x",
            StreamAuth::ApiOriginOnly
        ),
        None
    );
    assert_eq!(
        auth(
            &proxy,
            "https://proxy.example/replicate/streams/x",
            StreamAuth::ApiOriginOnly
        ),
        Some("Bearer r8_secret".to_owned())
    );
    assert_eq!(
        auth(
            &proxy,
            "https://PROXY.example:443/s",
            StreamAuth::ApiOriginOnly
        ),
        Some("Bearer r8_secret".to_owned())
    );
    // Another scheme or port is another origin.
    assert_eq!(
        auth(&proxy, "http://proxy.example/s", StreamAuth::ApiOriginOnly),
        None
    );
    assert_eq!(
        auth(
            &proxy,
            "https://proxy.example:8443/s",
            StreamAuth::ApiOriginOnly
        ),
        None
    );
    // Never and Always.
    assert_eq!(
        auth(&proxy, "https://proxy.example/s", StreamAuth::Never),
        None
    );
    assert_eq!(
        auth(&public, STREAM_URL, StreamAuth::Always),
        Some("Bearer r8_secret".to_owned())
    );
}

#[test]
fn the_token_header_is_sensitive_and_bad_tokens_fail() {
    let opts = StreamOptions {
        auth: StreamAuth::Always,
        ..StreamOptions::default()
    };
    let mut s = StreamSession::new(&cfg(), STREAM_URL, opts.clone()).unwrap();
    let req = connect(&mut s, Instant::now());
    assert!(req.headers()["authorization"].is_sensitive());

    let bad = Config::new("bad\ntoken");
    let mut s = StreamSession::new(&bad, STREAM_URL, opts).unwrap();
    assert!(matches!(
        poll(&mut s, Instant::now()),
        StreamStep::Done(Err(Error::InvalidToken))
    ));
    // Without the token, a bad one does not matter.
    let mut s = StreamSession::new(&bad, STREAM_URL, StreamOptions::default()).unwrap();
    assert!(matches!(
        poll(&mut s, Instant::now()),
        StreamStep::Connect(_)
    ));
}

#[test]
fn invalid_urls_and_predictions_without_stream() {
    for url in [
        "",
        "stream.replicate.com/x",
        "ftp://h/x",
        "https://user:pw@h/x",
    ] {
        assert!(
            StreamSession::new(&cfg(), url, StreamOptions::default()).is_err(),
            "{url}"
        );
    }
    let p: Prediction = serde_json::from_value(serde_json::json!({
        "id": "p1", "status": "processing", "urls": {"get": "https://api.replicate.com/v1/predictions/p1"}
    }))
    .unwrap();
    let e = StreamSession::for_prediction(&cfg(), &p, StreamOptions::default()).unwrap_err();
    assert!(e.to_string().contains("does not stream"), "{e}");

    let p: Prediction = serde_json::from_value(serde_json::json!({
        "id": "p1", "status": "processing", "urls": {"stream": STREAM_URL}
    }))
    .unwrap();
    let s = StreamSession::for_prediction(&cfg(), &p, StreamOptions::default()).unwrap();
    assert_eq!(s.url(), STREAM_URL);
}

#[test]
fn misuse_never_panics() {
    let mut s = session(StreamOptions::default());
    let now = Instant::now();
    // Out-of-order calls are ignored.
    s.feed(b"event: output\ndata: x\n\n");
    s.handle_end(now);
    s.handle_head(StatusCode::OK, &sse_headers(), now);
    s.handle_error(TransportError::new(TransportErrorKind::Io, "x"), now);
    assert!(s.next_event().is_none());
    connect(&mut s, now);
    // Polling with a connection in flight is reported, without losing the connection.
    assert!(matches!(
        poll(&mut s, now),
        StreamStep::Done(Err(Error::InvalidState(_)))
    ));
    s.handle_head(StatusCode::OK, &sse_headers(), now);
    assert!(s.is_reading());
}

#[test]
fn output_text_limit() {
    let mut t = OutputText::with_limit(5);
    t.push(&ReplicateEvent::Output("abc".into())).unwrap();
    let e = t.push(&ReplicateEvent::Output("def".into())).unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge));
    assert_eq!(t.as_str(), "abc");
    t.push(&ReplicateEvent::Done(None)).unwrap();
    assert_eq!(t.into_string(), "abc");
}
