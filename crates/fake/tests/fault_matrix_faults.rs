//! The faults the cross-client fault matrix uses: cursor cycles, dripped and cut bodies, silent
//! streams, echoed credentials, applied-then-replaced answers, and the server-wide rate limit.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Api, Conn, fast, request, split_url, start};
use replicate_fake::{
    EchoFormat, Fault, FaultRule, Matcher, ModelScript, Options, Origin, RateLimit,
};
use serde_json::{Value, json};

/// One request with `Connection: close`: the status, the headers, and every body byte that came
/// before the server closed the connection.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn raw(url: &str, auth: Option<&str>) -> Raw {
    let (host, target) = split_url(url);
    let mut s = TcpStream::connect(&host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{e}"),
        }
    }
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: all[split + 4..].to_vec(),
    }
}

fn create_body() -> Value {
    json!({"input": {"prompt": "x"}})
}

/// Waits until `cond` holds, for at most 5 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn next_cursor_builds_cursor_cycles_on_real_pages() {
    let s = start(fast());
    let api = Api::new(&s);
    let p = api.create("fake/json");
    // Specific rules first: the first matching rule applies.
    s.push_fault(
        FaultRule::new(
            Matcher::new("GET", "cursor=A"),
            Fault::NextCursor("B".into()),
        )
        .times(5),
    );
    s.push_fault(
        FaultRule::new(
            Matcher::new("GET", "cursor=B"),
            Fault::NextCursor("A".into()),
        )
        .times(5),
    );
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/predictions"),
        Fault::NextCursor("A".into()),
    ));
    let base = s.base_url();
    let page = api.get("/v1/predictions").json();
    assert_eq!(page["results"][0]["id"], p["id"]);
    assert_eq!(page["next"], format!("{base}/v1/predictions?cursor=A"));
    let mut url = page["next"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let path = url.strip_prefix(&base).unwrap().to_owned();
        let page = api.get(&path).json();
        // Served for real (the made-up cursor is ignored), with the made-up next.
        assert_eq!(page["results"].as_array().unwrap().len(), 1, "{page}");
        assert_eq!(page["results"][0]["id"], p["id"]);
        url = page["next"].as_str().unwrap().to_owned();
        seen.push(url.rsplit('=').next().unwrap().to_owned());
    }
    assert_eq!(seen, ["B", "A", "B", "A"]);
    let faulted = s.requests().iter().filter(|r| r.fault.is_some()).count();
    assert_eq!(faulted, 5);

    // Other query parameters are kept, the cursor is percent-encoded, and answers that are not
    // pages are left alone.
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/models"),
        Fault::NextCursor("x y/z".into()),
    ));
    let page = api.get("/v1/models?sort_direction=asc").json();
    assert_eq!(
        page["next"],
        format!("{base}/v1/models?cursor=x%20y%2Fz&sort_direction=asc")
    );
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::NextCursor("A".into()),
    ));
    let account = api.get("/v1/account").json();
    assert!(account.get("next").is_none());
    assert_eq!(account["username"], "fake");
}

#[test]
fn drip_sends_the_real_response_slowly_on_both_origins() {
    let s = start(fast());
    let api = Api::new(&s);
    let full = api.get("/v1/account");
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::Drip {
            interval: Duration::from_millis(20),
            chunk: 16,
        },
    ));
    let t = Instant::now();
    let r = raw(&format!("{}/v1/account", s.base_url()), Some(&api.auth()));
    let chunks = full.body.len().div_ceil(16) as u32;
    assert!(chunks >= 3);
    assert!(t.elapsed() >= Duration::from_millis(20) * (chunks - 1));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(full.body.len().to_string().as_str())
    );
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body, full.body);

    // An output file on the files origin.
    let p = api.create("fake/urls");
    let p = api.wait(p["id"].as_str().unwrap(), Duration::from_secs(5));
    let url = p["output"][0].as_str().unwrap().to_owned();
    let file = request("GET", &url, &[], b"").unwrap();
    assert_eq!(file.status, 200);
    s.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files),
        Fault::Drip {
            interval: Duration::from_millis(5),
            chunk: 7,
        },
    ));
    let r = raw(&url, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), file.header("content-type"));
    assert_eq!(r.body, file.body);
}

#[test]
fn drip_stops_when_the_client_disconnects() {
    let s = start(fast());
    let api = Api::new(&s);
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/hardware"),
        Fault::Drip {
            interval: Duration::from_millis(100),
            chunk: 1,
        },
    ));
    let (host, _) = split_url(&s.base_url());
    let mut conn = Conn::open(&host).unwrap();
    conn.write_request(
        "GET",
        "/v1/hardware",
        &[("Authorization", &api.auth())],
        b"",
    )
    .unwrap();
    let (status, _) = conn.read_head().unwrap();
    assert_eq!(status, 200);
    eventually("the connection to open", || s.open_connections() == 1);
    drop(conn);
    // The body would take many seconds; the server notices the client left at its next write.
    eventually("the dripping connection to close", || {
        s.open_connections() == 0
    });
    assert_eq!(api.get("/v1/hardware").status, 200);
}

#[test]
fn silent_stream_sends_headers_then_nothing_until_the_client_leaves() {
    let s = start(fast());
    let api = Api::new(&s);
    s.set_model(
        "fake/long-text",
        ModelScript::text(["a", "b"]).processing_time(Duration::from_secs(30)),
    );
    let p = api.create("fake/long-text");
    let stream_url = p["urls"]["stream"].as_str().unwrap().to_owned();
    s.push_fault(FaultRule::new(Matcher::any(), Fault::SilentStream));
    // Non-stream requests don't consume it.
    assert_eq!(api.get("/v1/account").status, 200);
    assert_eq!(s.pending_faults().len(), 1);

    let (host, target) = split_url(&stream_url);
    let mut conn = Conn::open(&host).unwrap();
    conn.write_request("GET", &target, &[("Accept", "text/event-stream")], b"")
        .unwrap();
    let (status, headers) = conn.read_head().unwrap();
    assert_eq!(status, 200);
    let ct = headers.iter().find(|(n, _)| n == "content-type").unwrap();
    assert_eq!(ct.1, "text/event-stream");
    assert!(s.pending_faults().is_empty());

    // Nothing comes, not even the `: hi` comment a real stream starts with.
    let mut raw_sock = conn.into_stream();
    raw_sock
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 64];
    let err = raw_sock.read(&mut buf).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    eventually("only the silent stream to stay open", || {
        s.open_connections() == 1
    });
    drop(raw_sock);
    eventually("the silent stream to close", || s.open_connections() == 0);

    // The next stream request is served for real.
    let (host, target) = split_url(&stream_url);
    let mut conn = Conn::open(&host).unwrap();
    conn.write_request("GET", &target, &[("Accept", "text/event-stream")], b"")
        .unwrap();
    assert_eq!(conn.read_head().unwrap().0, 200);
    assert_eq!(conn.read_chunk().unwrap().unwrap(), b": hi\n\n");
}

#[test]
fn silent_stream_ends_when_the_server_shuts_down() {
    let s = start(fast());
    let api = Api::new(&s);
    s.set_model(
        "fake/long-text",
        ModelScript::text(["a"]).processing_time(Duration::from_secs(60)),
    );
    let p = api.create("fake/long-text");
    s.push_fault(FaultRule::new(Matcher::any(), Fault::SilentStream));
    let (host, target) = split_url(p["urls"]["stream"].as_str().unwrap());
    let mut conn = Conn::open(&host).unwrap();
    conn.write_request("GET", &target, &[("Accept", "text/event-stream")], b"")
        .unwrap();
    assert_eq!(conn.read_head().unwrap().0, 200);
    let t = Instant::now();
    s.shutdown();
    assert!(t.elapsed() < Duration::from_secs(5));
    // The connection is closed: the read ends (EOF or reset) instead of timing out.
    let mut sock = conn.into_stream();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    match sock.read_to_end(&mut rest) {
        // At most the end of the chunked body, if it was sent before the close.
        Ok(_) => assert!(rest.is_empty() || rest == b"0\r\n\r\n", "{rest:?}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e:?}"),
    }
}

#[test]
fn echo_reflects_the_credentials_and_takes_no_effect() {
    let s = start(fast());
    let api = Api::new(&s);
    let token = s.token().to_owned();
    let create = Matcher::new("POST", "/predictions");
    s.push_fault(FaultRule::new(
        create.clone(),
        Fault::Echo {
            status: 401,
            format: EchoFormat::ProblemJson,
        },
    ));
    s.push_fault(FaultRule::new(
        create.clone(),
        Fault::Echo {
            status: 502,
            format: EchoFormat::Html,
        },
    ));
    s.push_fault(FaultRule::new(
        create,
        Fault::Echo {
            status: 200,
            format: EchoFormat::Text,
        },
    ));
    let path = "/v1/models/fake/json/predictions";

    let r = api.post_with(path, &create_body(), &[("X-Custom", "custom-value")]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        r.json(),
        json!({"title": "Unauthenticated", "detail": format!("bad credentials: Bearer {token}"), "status": 401})
    );

    let r = api.post_with(path, &create_body(), &[("X-Custom", "custom-value")]);
    assert_eq!(r.status, 502);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = r.text();
    assert!(html.contains("<html>"), "{html}");
    assert!(
        html.contains(&format!("authorization: Bearer {token}")),
        "{html}"
    );
    assert!(html.contains("x-custom: custom-value"), "{html}");
    assert!(html.contains("content-type: application/json"), "{html}");

    let r = api.post_with(path, &create_body(), &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    assert!(r.text().contains(&format!("authorization: Bearer {token}")));

    assert_eq!(s.prediction_count(), 0);
    assert_eq!(api.post(path, &create_body()).status, 201);
}

#[test]
fn apply_then_replaces_the_answer_after_the_create_took_effect() {
    let s = start(fast());
    let api = Api::new(&s);
    let create = Matcher::new("POST", "/predictions");
    for status in [502, 504, 500] {
        s.push_fault(FaultRule::new(create.clone(), Fault::ApplyThen { status }));
    }
    let path = "/v1/models/fake/json/predictions";
    let r = api.post(path, &create_body());
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.text().contains("<h1>502 Bad Gateway</h1>"));
    assert_eq!(s.prediction_count(), 1);
    let r = api.post(path, &create_body());
    assert_eq!(r.status, 504);
    assert!(r.text().contains("<h1>504 Gateway Timeout</h1>"));
    assert_eq!(s.prediction_count(), 2);
    let r = api.post(path, &create_body());
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["status"], 500);
    assert_eq!(s.prediction_count(), 3);
    // The predictions are really there.
    let list = api.get("/v1/predictions").json();
    assert_eq!(list["results"].as_array().unwrap().len(), 3);
}

#[test]
fn cut_after_sends_the_full_length_then_part_of_the_body() {
    let s = start(fast());
    let api = Api::new(&s);
    let full = api.get("/v1/account");
    assert!(full.body.len() > 10);
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::CutAfter(10),
    ));
    let r = raw(&format!("{}/v1/account", s.base_url()), Some(&api.auth()));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(full.body.len().to_string().as_str())
    );
    assert_eq!(r.body, &full.body[..10]);

    // A truncated download on the files origin.
    let p = api.create("fake/urls");
    let p = api.wait(p["id"].as_str().unwrap(), Duration::from_secs(5));
    let url = p["output"][0].as_str().unwrap().to_owned();
    let file = request("GET", &url, &[], b"").unwrap();
    s.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files),
        Fault::CutAfter(5),
    ));
    let r = raw(&url, None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(file.body.len().to_string().as_str())
    );
    assert_eq!(r.body, &file.body[..5]);

    // Cutting at 0 sends the head alone; cutting past the end sends everything.
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::CutAfter(0),
    ));
    let r = raw(&format!("{}/v1/account", s.base_url()), Some(&api.auth()));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    s.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/account"),
        Fault::CutAfter(1 << 20),
    ));
    assert_eq!(api.get("/v1/account").body, full.body);
    assert_eq!(api.get("/v1/account").body, full.body);
}

#[test]
fn rate_limit_throttles_beyond_the_window_budget() {
    let s = start(Options {
        rate_limit: Some(RateLimit::new(3, Duration::from_secs(60))),
        ..fast()
    });
    let api = Api::new(&s);
    let path = "/v1/models/fake/json/predictions";
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = api.post(path, &create_body());
        assert_eq!(r.status, 201);
        remaining.push(r.header("ratelimit-remaining").unwrap().to_owned());
        let reset: u64 = r.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }
    assert_eq!(remaining, ["2", "1", "0"]);

    let r = api.post(path, &create_body());
    assert_eq!(r.status, 429);
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("ratelimit-reset"), Some(secs.to_string().as_str()));
    let unit = if secs == 1 { "second" } else { "seconds" };
    assert_eq!(
        r.json(),
        json!({"detail": format!("Request was throttled. Expected available in {secs} {unit}."), "status": 429, "retry_after": secs})
    );
    // The throttled create created nothing, and any API request is throttled now.
    assert_eq!(s.prediction_count(), 3);
    assert_eq!(api.get("/v1/account").status, 429);
    let last = s.requests().pop().unwrap();
    assert!(last.rate_limited);
    assert!(last.fault.is_none());
    // The files origin is not limited.
    let r = request("GET", &format!("{}/nothing", s.files_base_url()), &[], b"").unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn a_create_rate_limit_throttles_creates_only() {
    let s = start(Options {
        create_rate_limit: Some(RateLimit::new(2, Duration::from_secs(60))),
        ..fast()
    });
    let api = Api::new(&s);
    let path = "/v1/models/fake/json/predictions";
    let first = api.post(path, &create_body());
    assert_eq!(first.status, 201);
    assert_eq!(first.header("ratelimit-remaining"), Some("1"));
    assert_eq!(api.post(path, &create_body()).status, 201);
    let r = api.post(path, &create_body());
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert_eq!(s.prediction_count(), 2);
    // Reads are not creates: served, and without the create limit's headers.
    let id = first.json()["id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let r = api.get(&format!("/v1/predictions/{id}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-remaining"), None);
    }
}

#[test]
fn rate_limit_windows_reset() {
    let window = Duration::from_millis(300);
    let s = start(Options {
        rate_limit: Some(RateLimit::new(2, window)),
        ..fast()
    });
    let api = Api::new(&s);
    // Spend the window's budget (the first window may end while doing so).
    let mut throttled = false;
    for _ in 0..10 {
        let r = api.get("/v1/account");
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), Some("1"));
            assert_eq!(r.header("ratelimit-reset"), Some("1"));
            throttled = true;
            break;
        }
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-reset"), Some("1"));
    }
    assert!(throttled);
    std::thread::sleep(window);
    let r = api.get("/v1/account");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-remaining"), Some("1"));
    assert_eq!(RateLimit::default(), RateLimit::per_second(20));
}
