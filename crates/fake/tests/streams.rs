//! Server-sent event streams on the files origin.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Api, Conn, fast, split_url, start};
use replicate_fake::{Fault, FaultRule, Matcher, ModelScript, Origin};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
struct Ev {
    id: String,
    event: String,
    data: String,
}

fn parse_sse(text: &str) -> Vec<Ev> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        if block.trim().is_empty() || block.starts_with(':') {
            continue;
        }
        let mut ev = Ev {
            id: String::new(),
            event: "message".into(),
            data: String::new(),
        };
        let mut datas = Vec::new();
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => ev.id = value.to_owned(),
                "event" => ev.event = value.to_owned(),
                "data" => datas.push(value.to_owned()),
                _ => {}
            }
        }
        ev.data = datas.join("\n");
        out.push(ev);
    }
    out
}

/// Opens a stream; returns the connection after the head, and the status.
fn open(url: &str, extra: &[(&str, &str)]) -> (Conn, u16, Vec<(String, String)>) {
    let (host, target) = split_url(url);
    let mut conn = Conn::open(&host).unwrap();
    let mut headers = vec![("Accept", "text/event-stream")];
    headers.extend_from_slice(extra);
    conn.write_request("GET", &target, &headers, b"").unwrap();
    let (status, headers) = conn.read_head().unwrap();
    (conn, status, headers)
}

/// Reads a whole chunked stream, with the arrival time of each chunk.
fn read_all(conn: &mut Conn) -> (String, Vec<(Instant, String)>) {
    let mut text = String::new();
    let mut chunks = Vec::new();
    while let Some(c) = conn.read_chunk().unwrap() {
        let s = String::from_utf8(c).unwrap();
        text.push_str(&s);
        chunks.push((Instant::now(), s));
    }
    (text, chunks)
}

#[test]
fn text_stream_in_real_time_then_resume() {
    let s = start(fast());
    s.set_model(
        "acme/story",
        ModelScript::text(["Hello", " world", "!"])
            .starting_ticks(0)
            .processing_time(Duration::from_millis(400))
            .logs(["warming up"]),
    );
    let api = Api::new(&s);
    let p = api.create("acme/story");
    let url = p["urls"]["stream"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&s.stream_base_url()));
    let (mut conn, status, headers) = open(&url, &[]);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "text/event-stream")
    );
    let (text, chunks) = read_all(&mut conn);
    assert!(text.starts_with(": hi\n\n"), "{text:?}");
    assert!(text.contains("data:  world\n"), "{text:?}");
    let evs = parse_sse(&text);
    let kinds: Vec<(&str, &str)> = evs
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("logs", "warming up"),
            ("output", "Hello"),
            ("output", " world"),
            ("output", "!"),
            ("done", "{}")
        ]
    );
    for (i, e) in evs.iter().enumerate() {
        let (unix, n) = e.id.split_once(':').unwrap();
        assert!(unix.parse::<u64>().unwrap() > 1_700_000_000);
        assert_eq!(n.parse::<usize>().unwrap(), i);
    }
    // Tokens arrived over time, not all at once.
    let at = |needle: &str| chunks.iter().find(|(_, c)| c.contains(needle)).unwrap().0;
    assert!(at("data: !") - at("data: Hello") >= Duration::from_millis(150));

    // Resume after the second event.
    let (mut conn, status, _) = open(&url, &[("Last-Event-ID", &evs[1].id)]);
    assert_eq!(status, 200);
    let (text, _) = read_all(&mut conn);
    let resumed = parse_sse(&text);
    assert_eq!(resumed, evs[2..].to_vec());

    // The stream needs no auth; what the client sent is recorded.
    let (mut conn, _, _) = open(&url, &[("Authorization", "Bearer leaked")]);
    read_all(&mut conn);
    let stream_reqs: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Files)
        .collect();
    assert_eq!(stream_reqs.len(), 3);
    assert_eq!(stream_reqs[0].header("authorization"), None);
    assert_eq!(
        stream_reqs[2].header("authorization"),
        Some("Bearer leaked")
    );
}

#[test]
fn multiline_failure_and_cancel_streams() {
    let s = start(fast());
    s.set_model(
        "acme/broken",
        ModelScript::fail("CUDA out of memory")
            .streams(true)
            .logs(["loading"]),
    );
    s.set_model(
        "acme/endless",
        ModelScript::text(["a", "b"])
            .starting_ticks(0)
            .processing_time(Duration::from_secs(30)),
    );
    let api = Api::new(&s);

    let p = api.create("fake/text-multiline");
    let (mut conn, _, _) = open(p["urls"]["stream"].as_str().unwrap(), &[]);
    let (text, _) = read_all(&mut conn);
    assert!(
        text.contains("data: first line\ndata: second line\n"),
        "{text:?}"
    );
    let outs: Vec<String> = parse_sse(&text)
        .into_iter()
        .filter(|e| e.event == "output")
        .map(|e| e.data)
        .collect();
    assert_eq!(outs, replicate_fake::MULTILINE_TOKENS);

    let p = api.create("acme/broken");
    let (mut conn, _, _) = open(p["urls"]["stream"].as_str().unwrap(), &[]);
    let (text, _) = read_all(&mut conn);
    let evs = parse_sse(&text);
    let n = evs.len();
    assert_eq!(evs[n - 2].event, "error");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&evs[n - 2].data).unwrap(),
        json!({"detail": "CUDA out of memory"})
    );
    assert_eq!(evs[n - 1].event, "done");
    assert_eq!(evs[n - 1].data, r#"{"reason":"error"}"#);

    let p = api.create("acme/endless");
    let id = p["id"].as_str().unwrap().to_owned();
    let (mut conn, _, _) = open(p["urls"]["stream"].as_str().unwrap(), &[]);
    let canceler = {
        let api = Api {
            base: api.base.clone(),
            token: api.token.clone(),
        };
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            api.post(&format!("/v1/predictions/{id}/cancel"), &json!({}))
        })
    };
    let (text, _) = read_all(&mut conn);
    assert_eq!(canceler.join().unwrap().status, 200);
    let evs = parse_sse(&text);
    assert_eq!(evs.last().unwrap().data, r#"{"reason":"canceled"}"#);

    // Not streaming / unknown / no Accept.
    let p = api.create("fake/json");
    assert!(p["urls"].get("stream").is_none());
    let bogus = format!(
        "{}/v1/streams/{}",
        s.stream_base_url(),
        p["id"].as_str().unwrap()
    );
    let (_, status, _) = open(&bogus, &[]);
    assert_eq!(status, 404);
    let text_p = api.create("fake/text");
    let r = common::request("GET", text_p["urls"]["stream"].as_str().unwrap(), &[], b"").unwrap();
    assert_eq!(r.status, 406);
}

#[test]
fn drop_stream_after_n_events() {
    let s = start(fast());
    let api = Api::new(&s);
    s.push_fault(FaultRule::new(Matcher::any(), Fault::DropStreamAfter(2)));
    // Non-stream requests don't consume it.
    let p = api.create("fake/text");
    assert_eq!(s.pending_faults().len(), 1);
    let (mut conn, status, _) = open(p["urls"]["stream"].as_str().unwrap(), &[]);
    assert_eq!(status, 200);
    let mut text = String::new();
    let err = loop {
        match conn.read_chunk() {
            Ok(Some(c)) => text.push_str(&String::from_utf8(c).unwrap()),
            Ok(None) => panic!("stream ended cleanly: {text:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(parse_sse(&text).len(), 2, "{text:?}");
    assert!(s.pending_faults().is_empty());
    // The next connection gets the whole stream.
    let (mut conn, _, _) = open(p["urls"]["stream"].as_str().unwrap(), &[]);
    let (text, _) = read_all(&mut conn);
    assert_eq!(parse_sse(&text).last().unwrap().event, "done");
    let faulted: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.fault.is_some())
        .collect();
    assert_eq!(faulted.len(), 1);
    assert_eq!(faulted[0].origin, Origin::Files);
}
