//! Streams, webhooks, files and outputs: rows of the cross-client scenario table, run against
//! both clients and the fake server. Each row asserts on what the client returned and on the
//! server's request log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use replicate_fake::{
    Fault, FaultRule, MULTILINE_TOKENS, Matcher, Options, Origin, RecordedRequest, TEXT_TOKENS,
    builtin_script,
};
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::webhook::{self, WebhookError};
use replicate_protocol::{
    CreatePrediction, Error, PollPolicy, Prediction, Status, StreamOptions, Target,
    TransportErrorKind, WaitOptions, WebhookEvent,
};
use replicate_tests::{Env, ReceivedWebhook, WebhookReceiver, fast_options, outputs, scenario};
use serde_json::{Value, json};

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fn create(env: &Env, model: &str) -> Prediction {
    env.driver
        .create(CreatePrediction::new(Target::parse(model).expect("target")))
        .expect("create")
}

fn run(env: &Env, model: &str) -> Prediction {
    let create = CreatePrediction::new(Target::parse(model).expect("target"));
    env.driver
        .run_with(create, env.driver.wait_options())
        .expect("run")
}

/// The stream reads of the log (files origin, `/v1/streams/...`).
fn stream_requests(env: &Env) -> Vec<RecordedRequest> {
    env.fake
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Files && r.path.starts_with("/v1/streams/"))
        .collect()
}

fn logs(events: &[ReplicateEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ReplicateEvent::Logs(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

fn dones(events: &[ReplicateEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ReplicateEvent::Done(_)))
        .count()
}

fn output_urls(p: &Prediction) -> Vec<String> {
    p.output
        .as_array()
        .expect("a list of outputs")
        .iter()
        .map(|u| u.as_str().expect("a URL").to_owned())
        .collect()
}

/// A bare HTTP/1.1 GET on a fresh connection, with no client of the SDK: the status and body
/// the server really sends for `url` (`http://host:port/path`, `Content-Length` bodies only).
fn raw_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut conn = TcpStream::connect(authority).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: raw-get\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .expect("a Content-Length");
    let body = raw[split + 4..].to_vec();
    assert_eq!(body.len(), len, "the whole body");
    (status, body)
}

fn now_unix() -> i64 {
    webhook::unix_timestamp(SystemTime::now())
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).expect("read dir").count()
}

// ----------------------------------------------------------------------------------------------
// Streams
// ----------------------------------------------------------------------------------------------

scenario!(stream_text_tokens_to_done, |env| {
    let p = create(&env, "fake/text");
    let stream_url = p.stream_url().expect("fake/text streams").to_owned();
    assert!(
        stream_url.starts_with(&env.fake.stream_base_url()),
        "{stream_url}"
    );

    let text = env.driver.stream_text(&p).expect("stream_text");
    assert_eq!(text, "Hello world!");

    let events = env.driver.stream_events(&p).expect("stream_events");
    assert_eq!(outputs(&events), TEXT_TOKENS, "each token once, in order");
    assert_eq!(logs(&events), ["Generating text"]);
    assert_eq!(dones(&events), 1);
    assert_eq!(
        events.last(),
        Some(&ReplicateEvent::Done(None)),
        "ends at done"
    );

    let streams = stream_requests(&env);
    assert_eq!(streams.len(), 2, "one connection per call: {streams:?}");
    for r in &streams {
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, format!("/v1/streams/{}", p.id));
        assert!(
            r.header("accept")
                .is_some_and(|a| a.contains("text/event-stream"))
        );
        assert_eq!(r.header("last-event-id"), None, "a fresh stream");
        assert!(r.fault.is_none());
    }
});

scenario!(stream_multiline_tokens_joined_exactly, |env| {
    let p = create(&env, "fake/text-multiline");
    let text = env.driver.stream_text(&p).expect("stream_text");
    assert_eq!(
        text, "first line\nsecond line\n\nafter a blank line",
        "data lines rejoined with \\n, blank token kept"
    );
    assert_eq!(text, MULTILINE_TOKENS.concat());
    let events = env.driver.stream_events(&p).expect("stream_events");
    assert_eq!(outputs(&events), MULTILINE_TOKENS, "token boundaries kept");
    assert_eq!(dones(&events), 1);
    assert_eq!(stream_requests(&env).len(), 2);
});

scenario!(dropped_stream_resumes_with_last_event_id, |env| {
    env.fake.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/streams/"),
        Fault::DropStreamAfter(2),
    ));
    let p = create(&env, "fake/text");
    let opts = StreamOptions {
        initial_backoff: Duration::from_millis(20),
        ..StreamOptions::default()
    };
    let run = env.driver.stream_run(&p, Some(opts)).expect("resumed");
    let events = run.events();
    assert_eq!(outputs(&events).concat(), "Hello world!");
    assert_eq!(
        outputs(&events),
        TEXT_TOKENS,
        "nothing duplicated, nothing lost"
    );
    assert_eq!(logs(&events), ["Generating text"], "the log line once");
    assert_eq!(dones(&events), 1);
    assert_eq!(events.last(), Some(&ReplicateEvent::Done(None)), "to done");
    assert!(run.fused, "nothing after done");
    assert_eq!(run.reconnects, 1, "the session counted the reconnection");
    assert!(run.last_event_id.is_some());

    let streams = stream_requests(&env);
    assert_eq!(streams.len(), 2, "dropped once, resumed once: {streams:?}");
    assert_eq!(streams[0].fault, Some(Fault::DropStreamAfter(2)));
    assert_eq!(streams[0].header("last-event-id"), None);
    let resumed_from = streams[1]
        .header("last-event-id")
        .expect("the reconnection carries Last-Event-ID");
    // The fake's ids are `<unix>:<n>`; two events (0 and 1) arrived before the drop.
    assert!(resumed_from.ends_with(":1"), "{resumed_from}");
    assert_eq!(streams[1].header("authorization"), None);
    assert!(streams[1].fault.is_none());
});

scenario!(stream_error_event_is_a_prediction_stream_error, |env| {
    // `fake/fail`'s failure, on a model that streams.
    env.fake.set_model(
        "acme/streaming-fail",
        builtin_script("fake/fail").expect("built-in").streams(true),
    );
    let p = create(&env, "acme/streaming-fail");
    let err = env.driver.stream_text(&p).expect_err("error event");
    let Error::PredictionStreamError(detail) = &err else {
        panic!("expected PredictionStreamError, got {err:?}");
    };
    assert!(
        detail.contains("Fake failure: the model raised an exception"),
        "{detail}"
    );
    let err = env.driver.stream_events(&p).expect_err("error event");
    assert!(
        matches!(err, Error::PredictionStreamError(ref d) if d.contains("Fake failure")),
        "{err:?}"
    );
    let streams = stream_requests(&env);
    assert_eq!(streams.len(), 2, "no reconnection after an error event");
    assert!(streams.iter().all(|r| r.header("last-event-id").is_none()));
});

scenario!(stream_request_carries_no_token, |env| {
    let p = create(&env, "fake/text");
    env.driver.stream_text(&p).expect("stream");
    assert_ne!(
        env.fake.stream_base_url(),
        env.fake.base_url(),
        "the stream is on another origin"
    );
    let bearer = format!("Bearer {}", env.fake.token());
    let log = env.fake.requests();
    let (api, other): (Vec<_>, Vec<_>) = log.iter().partition(|r| r.origin == Origin::Api);
    assert!(!api.is_empty());
    assert!(
        api.iter()
            .all(|r| r.header("authorization") == Some(bearer.as_str()))
    );
    assert_eq!(other.len(), 1, "{other:?}");
    assert!(other[0].path.starts_with("/v1/streams/"));
    assert_eq!(other[0].header("authorization"), None);
    assert!(
        other[0]
            .headers
            .iter()
            .all(|(_, v)| !v.contains(env.fake.token())),
        "the token is in no header of the stream request"
    );
});

/// Polls every 5 s with a 2 s deadline: only the stream's `done` can end the run in time.
fn slow_poll_run(env: &Env) -> (Result<Prediction, Error>, Duration) {
    let create = CreatePrediction::new(Target::parse("fake/text").expect("target"));
    let opts = WaitOptions {
        poll: PollPolicy::fixed(Duration::from_secs(5)),
        ..env.driver.wait_options_within(Duration::from_secs(2))
    };
    let started = Instant::now();
    let result = env.driver.run_with(create, opts);
    (result, started.elapsed())
}

scenario!(follow_stream_ends_a_run_on_done, |env| {
    let (result, _) = slow_poll_run(&env);
    let p = result.expect("ends on the stream's done, before the deadline");
    assert_eq!(p.status, Status::Succeeded);
    assert_eq!(p.output, json!(TEXT_TOKENS));
    let streams = stream_requests(&env);
    assert_eq!(streams.len(), 1, "the run read the stream: {streams:?}");
    assert_eq!(streams[0].header("authorization"), None);
    let polls = env.count("GET", &format!("/v1/predictions/{}", p.id));
    assert_eq!(polls, 1, "one poll, right after done");
    assert_eq!(env.count("POST", "/cancel"), 0);
});

scenario!(
    without_follow_stream_the_same_run_hits_the_deadline,
    |env| {
        env.rebuild(|s| s.follow_stream = Some(false));
        let (result, took) = slow_poll_run(&env);
        let err = result.expect_err("no stream: the 5 s poll comes after the 2 s deadline");
        let Error::DeadlineExceeded { id, .. } = &err else {
            panic!("expected DeadlineExceeded, got {err:?}");
        };
        assert!(took >= Duration::from_millis(1900), "took {took:?}");
        assert!(stream_requests(&env).is_empty(), "the stream was not read");
        assert_eq!(env.count("GET", &format!("/v1/predictions/{id}")), 0);
        assert_eq!(
            env.count("POST", &format!("/v1/predictions/{id}/cancel")),
            1
        );
    }
);

scenario!(
    a_stream_that_fails_does_not_cut_later_poll_intervals_short,
    Options {
        tick: Duration::from_millis(60),
        ..fast_options()
    },
    |env| {
        // The stream is gone at once: the watcher ends, and the run must go on polling at its
        // interval (a finished watcher once made every later sleep return at once).
        env.fake.push_fault(
            FaultRule::new(
                Matcher::any()
                    .origin(Origin::Files)
                    .path_contains("/v1/streams/"),
                Fault::status(404),
            )
            .times(100),
        );
        let create = CreatePrediction::new(Target::parse("fake/text").expect("target"));
        let opts = WaitOptions {
            poll: PollPolicy::fixed(Duration::from_millis(200)),
            ..env.driver.wait_options_within(Duration::from_secs(20))
        };
        let started = Instant::now();
        let p = env.driver.run_with(create, opts).expect("run");
        let took = started.elapsed();
        let polls = env.count("GET", &format!("/v1/predictions/{}", p.id));
        // One poll per 200 ms at most, plus the one the watcher's end woke early.
        let bound = took.as_millis() / 200 + 2;
        assert!(
            polls as u128 <= bound,
            "{polls} polls in {took:?} (at most {bound} at a 200 ms interval)"
        );
        assert!(!stream_requests(&env).is_empty(), "the stream was tried");
    }
);

// ----------------------------------------------------------------------------------------------
// Webhooks
// ----------------------------------------------------------------------------------------------

scenario!(webhooks_delivered_verified_and_filtered, |env| {
    let receiver = WebhookReceiver::start().expect("receiver");
    let create = CreatePrediction::new(Target::parse("fake/text").expect("target"))
        .input(json!({"prompt": "hi"}))
        .webhook(
            receiver.url(),
            &[WebhookEvent::Start, WebhookEvent::Completed],
        );
    let p = env
        .driver
        .run_with(create, env.driver.wait_options())
        .expect("run");

    let mut got: Vec<ReceivedWebhook> = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(5);
    let completed = |w: &ReceivedWebhook| {
        serde_json::from_slice::<Value>(&w.body).is_ok_and(|b| b["status"] == json!("succeeded"))
    };
    while !got.iter().any(completed) {
        let left = give_up.saturating_duration_since(Instant::now());
        let w = receiver
            .recv_timeout(left)
            .expect("the completed webhook within 5 s");
        got.push(w);
    }
    // Nothing else comes: `output` and `logs` events were filtered out.
    assert!(receiver.recv_timeout(Duration::from_millis(100)).is_none());
    assert_eq!(got.len(), 2, "start and completed: {got:?}");

    let secret = env.driver.webhook_secret().expect("secret");
    assert_eq!(secret.expose_whsec(), env.fake.webhook_secret());
    for w in &got {
        assert_eq!(w.target, "/hooks/replicate");
        webhook::verify_http(&secret, &w.headers, &w.body, now_unix()).expect("a valid signature");
        let mut tampered = w.body.clone();
        tampered.extend_from_slice(b" ");
        assert!(webhook::verify_http(&secret, &w.headers, &tampered, now_unix()).is_err());
        let body: Prediction = serde_json::from_slice(&w.body).expect("a prediction");
        assert_eq!(body.id, p.id);
    }
    // The one call: verify at the system clock's time and get the prediction.
    for w in &got {
        let a = replicate_ureq::Client::verify_webhook(&secret, &w.headers, &w.body)
            .expect("ureq verifies");
        let b = replicate_reqwest::Client::verify_webhook(&secret, &w.headers, &w.body)
            .expect("reqwest verifies");
        assert_eq!(a.id, p.id);
        assert_eq!(a, b);
        let mut tampered = w.body.clone();
        tampered.push(b' ');
        assert!(matches!(
            replicate_ureq::Client::verify_webhook(&secret, &w.headers, &tampered),
            Err(Error::Webhook(WebhookError::NoMatchingSignature))
        ));
    }
    let first: Prediction = serde_json::from_slice(&got[0].body).expect("json");
    assert!(!first.status.is_terminal(), "start comes first: {first:?}");
    let last: Prediction = serde_json::from_slice(&got[1].body).expect("json");
    assert_eq!(last.status, Status::Succeeded);
    assert_eq!(last.output, json!(TEXT_TOKENS));
    // A secret other than the account's rejects them.
    let other = webhook::WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("s");
    assert_eq!(
        webhook::verify_http(&other, &got[0].headers, &got[0].body, now_unix()),
        Err(WebhookError::NoMatchingSignature)
    );

    // The fake's record: exactly the filtered events, each delivered once and answered 200.
    let deliveries = env.fake.webhook_deliveries();
    let events: Vec<&str> = deliveries.iter().map(|d| d.event.as_str()).collect();
    assert_eq!(events, ["start", "completed"]);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == Some(200) && d.attempt == 1 && d.url == receiver.url())
    );
    for (d, w) in deliveries.iter().zip(&got) {
        assert_eq!(
            w.headers
                .get(webhook::HEADER_ID)
                .and_then(|v| v.to_str().ok()),
            Some(d.webhook_id.as_str())
        );
        assert_eq!(d.body, w.body);
    }
    // The request log: the create asked for the filter, the secret came from the API.
    let create = env
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/predictions"))
        .expect("a create");
    let body = create.json().expect("json");
    assert_eq!(body["webhook"], json!(receiver.url()));
    assert_eq!(body["webhook_events_filter"], json!(["start", "completed"]));
    assert_eq!(env.count("GET", "/v1/webhooks/default/secret"), 1);
});

// ----------------------------------------------------------------------------------------------
// Files
// ----------------------------------------------------------------------------------------------

scenario!(files_upload_get_list_delete, |env| {
    let content = b"hello, files\n".to_vec();
    let first = env
        .driver
        .upload_file(
            content.clone(),
            "hello.txt",
            Some("text/plain"),
            Some(json!({"purpose": "test"})),
        )
        .expect("upload");
    assert_eq!(first.name.as_deref(), Some("hello.txt"));
    assert_eq!(first.content_type.as_deref(), Some("text/plain"));
    assert_eq!(first.size, Some(content.len() as u64));
    assert_eq!(first.metadata, json!({"purpose": "test"}));
    assert!(first.urls.get.is_some());

    let got = env.driver.get_file(&first.id).expect("get");
    assert_eq!(got.id, first.id);
    assert_eq!(got.name, first.name);
    assert_eq!(got.size, first.size);
    assert_eq!(got.metadata, first.metadata);

    let second = env
        .driver
        .upload_file(vec![0, 1, 2, 3], "data.bin", None, None)
        .expect("upload");
    let ids = |files: Vec<replicate_protocol::api::FileObject>| -> Vec<String> {
        files.into_iter().map(|f| f.id).collect()
    };
    assert_eq!(
        ids(env.driver.list_files_all().expect("list")),
        [second.id.clone(), first.id.clone()],
        "newest first"
    );

    env.driver.delete_file(&first.id).expect("delete");
    let err = env.driver.get_file(&first.id).expect_err("deleted");
    assert_eq!(err.status(), Some(404));
    assert_eq!(ids(env.driver.list_files_all().expect("list")), [second.id]);

    // The log: two multipart uploads, one delete, two gets.
    let uploads: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/files")
        .collect();
    assert_eq!(uploads.len(), 2);
    for r in &uploads {
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("multipart/form-data; boundary=")),
            "{:?}",
            r.header("content-type")
        );
    }
    let body = String::from_utf8_lossy(&uploads[0].body);
    assert!(
        body.contains("name=\"content\"; filename=\"hello.txt\""),
        "{body}"
    );
    assert!(body.contains("content-type: text/plain"), "{body}");
    assert!(body.contains("hello, files\n"), "{body}");
    assert!(body.contains("name=\"metadata\""), "{body}");
    assert!(body.contains(r#"{"purpose":"test"}"#), "{body}");
    assert_eq!(env.count("DELETE", &format!("/v1/files/{}", first.id)), 1);
    assert_eq!(env.count("GET", &format!("/v1/files/{}", first.id)), 2);
});

scenario!(small_input_file_becomes_a_data_url, |env| {
    env.rebuild(|s| s.upload_threshold = Some(64));
    let dir = tempfile::tempdir().expect("tempdir");
    let tiny = dir.path().join("note.txt");
    std::fs::write(&tiny, b"tiny input").expect("write");
    let at_threshold = dir.path().join("edge.png");
    std::fs::write(&at_threshold, [7u8; 64]).expect("write");

    let v = env.driver.prepare_input_file(&tiny).expect("prepare");
    assert_eq!(v, json!("data:text/plain;base64,dGlueSBpbnB1dA=="));
    let v = env
        .driver
        .prepare_input_file(&at_threshold)
        .expect("prepare");
    let b64 = v
        .as_str()
        .and_then(|s| s.strip_prefix("data:image/png;base64,"))
        .expect("a data URL: at most the threshold is inlined");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    assert_eq!(decoded, [7u8; 64]);

    assert!(
        env.fake.requests().is_empty(),
        "no upload, no request at all"
    );
});

scenario!(large_input_file_is_uploaded, |env| {
    env.rebuild(|s| s.upload_threshold = Some(64));
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.bin");
    let content: Vec<u8> = (0..=64u8).collect();
    std::fs::write(&big, &content).expect("write");

    let v = env.driver.prepare_input_file(&big).expect("prepare");
    let url = v.as_str().expect("a URL");
    assert!(!url.starts_with("data:"), "{url}");

    let uploads: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/files")
        .collect();
    assert_eq!(uploads.len(), 1, "one upload");
    assert_eq!(
        env.fake.requests().len(),
        1,
        "and nothing else: {:?}",
        env.fake.requests()
    );
    let body = &uploads[0].body;
    assert!(
        body.windows(content.len()).any(|w| w == content.as_slice()),
        "the file's bytes are the content part"
    );
    assert!(String::from_utf8_lossy(body).contains("filename=\"big.bin\""));

    let files = env.driver.list_files_all().expect("list");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].urls.get.as_deref(), Some(url), "its urls.get");
    assert_eq!(files[0].size, Some(content.len() as u64));
    assert_eq!(files[0].name.as_deref(), Some("big.bin"));
});

// ----------------------------------------------------------------------------------------------
// Outputs
// ----------------------------------------------------------------------------------------------

scenario!(download_outputs_writes_the_served_bytes, |env| {
    let p = run(&env, "fake/urls");
    let urls = output_urls(&p);
    assert_eq!(urls.len(), 3);
    assert!(
        urls.iter()
            .all(|u| u.starts_with(&env.fake.files_base_url()))
    );
    let dir = tempfile::tempdir().expect("tempdir");
    env.fake.clear_requests();

    let paths = env
        .driver
        .download_outputs(&p, dir.path())
        .expect("download_outputs");
    assert_eq!(paths.len(), 3);
    assert_eq!(files_in(dir.path()), 3, "no temporary file left");
    let mut names: Vec<_> = paths
        .iter()
        .map(|p| p.file_name().expect("name").to_owned())
        .collect();
    names.dedup();
    assert_eq!(names.len(), 3, "distinct names: {paths:?}");

    // Only the files origin was asked, once per output, without a token.
    let log = env.fake.requests();
    assert_eq!(log.len(), 3, "{log:?}");
    for (r, url) in log.iter().zip(&urls) {
        assert_eq!(r.origin, Origin::Files);
        assert_eq!(r.method, "GET");
        assert!(url.ends_with(&r.path), "{url} vs {}", r.path);
        assert_eq!(r.header("authorization"), None);
    }

    for (path, url) in paths.iter().zip(&urls) {
        assert!(path.starts_with(dir.path()));
        let written = std::fs::read(path).expect("read");
        let (status, served) = raw_get(url);
        assert_eq!(status, 200);
        assert!(served.starts_with(PNG_MAGIC), "a real PNG");
        assert_eq!(written, served, "{}", path.display());
        assert_eq!(env.driver.download(url).expect("download"), served);
    }
    assert!(
        env.fake
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none())
    );
});

scenario!(data_uri_output_is_decoded_without_a_request, |env| {
    let p = run(&env, "fake/data-uri");
    let uri = p.output.as_str().expect("a data URI").to_owned();
    let b64 = uri
        .strip_prefix("data:image/png;base64,")
        .expect("a PNG data URI");
    let expected = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    env.fake.clear_requests();

    assert_eq!(env.driver.download(&uri).expect("download"), expected);
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = env
        .driver
        .download_outputs(&p, dir.path())
        .expect("download_outputs");
    assert_eq!(paths, [dir.path().join("output-0.png")]);
    assert_eq!(std::fs::read(&paths[0]).expect("read"), expected);
    assert!(expected.starts_with(PNG_MAGIC));
    assert!(env.fake.requests().is_empty(), "{:?}", env.fake.requests());

    // A text output has no files.
    let p = run(&env, "fake/text");
    let paths = env
        .driver
        .download_outputs(&p, dir.path())
        .expect("download_outputs");
    assert!(paths.is_empty(), "{paths:?}");
});

scenario!(
    expired_output_link_is_an_output_error,
    Options {
        output_ttl: Duration::from_millis(150),
        ..fast_options()
    },
    |env| {
        let p = run(&env, "fake/urls");
        assert!(!p.data_removed);
        let urls = output_urls(&p);
        std::thread::sleep(Duration::from_millis(400));
        env.fake.clear_requests();

        let err = env.driver.download(&urls[0]).expect_err("expired");
        let Error::Output(message) = &err else {
            panic!("expected Error::Output, got {err:?}");
        };
        assert!(message.message.contains("expired"), "{message}");
        assert!(message.message.contains("404"), "{message}");
        assert!(message.message.contains("one hour"), "{message}");
        // The prediction as fetched earlier still lists the URLs: the first download fails, and
        // nothing is left in the directory.
        let dir = tempfile::tempdir().expect("tempdir");
        let err = env
            .driver
            .download_outputs(&p, dir.path())
            .expect_err("expired");
        assert!(
            matches!(&err, Error::Output(m) if m.message.contains("expired")),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&p.id),
            "names the prediction: {err}"
        );
        assert_eq!(files_in(dir.path()), 0);

        let log = env.fake.requests();
        assert_eq!(log.len(), 2, "a 404 is not retried: {log:?}");
        assert!(
            log.iter()
                .all(|r| r.origin == Origin::Files && r.header("authorization").is_none())
        );
    }
);

scenario!(
    data_removed_prediction_fails_before_any_request,
    Options {
        output_ttl: Duration::from_millis(150),
        ..fast_options()
    },
    |env| {
        let p = run(&env, "fake/urls");
        std::thread::sleep(Duration::from_millis(400));
        let removed = env.driver.get(&p.id).expect("get");
        assert!(removed.data_removed);
        assert_eq!(removed.output, Value::Null);
        env.fake.clear_requests();

        let dir = tempfile::tempdir().expect("tempdir");
        let err = env
            .driver
            .download_outputs(&removed, dir.path())
            .expect_err("data removed");
        let Error::Output(message) = &err else {
            panic!("expected Error::Output, got {err:?}");
        };
        assert!(message.message.contains("data_removed"), "{message}");
        assert!(message.message.contains(&p.id), "{message}");
        assert!(env.fake.requests().is_empty(), "{:?}", env.fake.requests());
        assert_eq!(files_in(dir.path()), 0);
    }
);

scenario!(download_over_the_size_cap_is_body_too_large, |env| {
    let p = run(&env, "fake/urls");
    let urls = output_urls(&p);
    let (_, served) = raw_get(&urls[0]);
    assert!(served.len() > 16);
    env.rebuild(|s| s.max_download_bytes = Some(16));
    assert_eq!(env.driver.download_limits().max_bytes, 16);
    env.fake.clear_requests();

    let err = env.driver.download(&urls[0]).expect_err("too large");
    let Error::Transport(t) = &err else {
        panic!("expected a transport error, got {err:?}");
    };
    assert_eq!(t.kind, TransportErrorKind::BodyTooLarge);

    let dir = tempfile::tempdir().expect("tempdir");
    let err = env
        .driver
        .download_outputs(&p, dir.path())
        .expect_err("too large");
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge),
        "{err:?}"
    );
    assert_eq!(files_in(dir.path()), 0, "the partial file is removed");
    let log = env.fake.requests();
    assert_eq!(log.len(), 2, "not retried: {log:?}");
    assert!(log.iter().all(|r| r.origin == Origin::Files));

    // Data URIs are capped too.
    let p = run(&env, "fake/data-uri");
    let uri = p.output.as_str().expect("a data URI");
    let err = env.driver.download(uri).expect_err("too large");
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge),
        "{err:?}"
    );
});
