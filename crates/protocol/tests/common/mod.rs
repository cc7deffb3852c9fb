//! Helpers shared by the integration tests: fixtures, request rendering, canned responses and a
//! made-up clock.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::{Request, Response};
use replicate_protocol::{BodyRead, Config, Flow, Step};
use serde_json::Value;

/// The proxy base URL of the seed guide.
pub const PROXY: &str = "https://proxy.example/replicate";
/// The token of the seed guide.
pub const TOKEN: &str = "hk-your-key";

/// A configuration for the seed's proxy.
pub fn proxy_cfg() -> Config {
    Config::new(TOKEN).with_base_url(PROXY).unwrap()
}

/// The path of a file under the workspace's `fixtures/`.
pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

/// The bytes of a fixture.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = fixture_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A fixture parsed as JSON.
pub fn fixture_json(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

/// A response with a status and a body.
pub fn resp(status: u16, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .body(body.into())
        .unwrap()
}

/// A response with a status, headers and a body.
pub fn resp_with(
    status: u16,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
) -> Response<Vec<u8>> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}

/// A minimal prediction body with an id and a status.
pub fn pred_body(id: &str, status: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "model": "black-forest-labs/flux-schnell",
        "version": "dp-4d0bcc010b3049749a251855f12800be",
        "input": {"prompt": "a cat"},
        "logs": "",
        "output": if status == "succeeded" { serde_json::json!(["https://replicate.delivery/xezq/abc/out-0.jpg"]) } else { Value::Null },
        "error": if status == "failed" { Value::from("boom") } else { Value::Null },
        "status": status,
        "created_at": "2025-01-15T10:03:39.896Z",
        "urls": {
            "get": format!("https://api.replicate.com/v1/predictions/{id}"),
            "cancel": format!("https://api.replicate.com/v1/predictions/{id}/cancel"),
        }
    }))
    .unwrap()
}

/// A 429 response in the API's shape, with a `Retry-After` header.
pub fn throttled(retry_after_secs: u64) -> Response<Vec<u8>> {
    let ra = retry_after_secs.to_string();
    let body = format!(
        r#"{{"detail":"Request was throttled. Expected available in {ra} seconds.","status":429,"retry_after":{ra}}}"#
    );
    resp_with(
        429,
        &[
            ("content-type", "application/problem+json"),
            ("retry-after", &ra),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", &ra),
        ],
        body,
    )
}

/// Renders a request as text: method and URI, headers sorted by name with the token redacted,
/// then the body pretty-printed as JSON (or `(empty)`).
pub fn render(req: &Request<Vec<u8>>) -> String {
    let mut out = format!("{} {}\n", req.method(), req.uri());
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = if k == http::header::AUTHORIZATION {
                let raw = v.to_str().unwrap_or("");
                if raw.starts_with("Bearer ") {
                    "Bearer [REDACTED]".to_owned()
                } else {
                    "[REDACTED]".to_owned()
                }
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push('\n');
    let body = req.body();
    if body.is_empty() {
        out.push_str("(empty)\n");
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => {
                out.push_str(&serde_json::to_string_pretty(&v).unwrap());
                out.push('\n');
            }
            Err(_) => {
                out.push_str(&String::from_utf8_lossy(body));
                out.push('\n');
            }
        }
    }
    out
}

/// The body of a request as JSON.
pub fn body_json(req: &Request<Vec<u8>>) -> Value {
    serde_json::from_slice(req.body()).unwrap()
}

/// One answer of a scripted transport.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP response.
    Http(Response<Vec<u8>>),
    /// A transport failure.
    Fail(replicate_protocol::TransportError),
}

/// What a scripted drive saw.
#[derive(Debug)]
pub struct Trace<T> {
    /// Every request sent, with the instant it was sent.
    pub sent: Vec<(Instant, Request<Vec<u8>>)>,
    /// Every sleep asked for.
    pub sleeps: Vec<Instant>,
    /// The result.
    pub result: T,
    /// The clock when the flow finished.
    pub end: Instant,
}

/// Drives a flow with a made-up clock that jumps to each sleep instant, answering each request
/// with the next reply of `replies` (panics when the script runs out). A streamed answer is
/// handed over as its head, its body in one chunk, and its end; yielded items are collected.
pub fn drive<F: Flow>(flow: &mut F, start: Instant, replies: Vec<Reply>) -> Trace<F::Output> {
    drive_collect(flow, start, replies).0
}

/// [`drive`], also returning the items the flow yielded.
pub fn drive_collect<F: Flow>(
    flow: &mut F,
    start: Instant,
    replies: Vec<Reply>,
) -> (Trace<F::Output>, Vec<F::Item>) {
    let mut replies = replies.into_iter();
    let mut now = start;
    let mut sent = Vec::new();
    let mut sleeps = Vec::new();
    let mut items = Vec::new();
    let mut body: Option<Option<Vec<u8>>> = None;
    for _ in 0..10_000 {
        let step = flow.poll(now);
        if !matches!(step, Step::Receive | Step::Yield(_)) {
            body = None;
        }
        match step {
            Step::Send(out) => {
                let streamed = matches!(out.read, BodyRead::Streamed);
                let request = out.request;
                sent.push((now, request));
                match replies.next() {
                    Some(Reply::Http(r)) if streamed => {
                        let (parts, b) = r.into_parts();
                        flow.handle_head(parts.status, &parts.headers, now);
                        body = Some(Some(b));
                    }
                    Some(Reply::Http(r)) => flow.handle_response(r, now),
                    Some(Reply::Fail(e)) => flow.handle_error(e, now),
                    None => panic!("script ran out after {} requests", sent.len()),
                }
            }
            Step::Receive => match body.as_mut().and_then(Option::take) {
                Some(b) if !b.is_empty() => flow.handle_chunk(&b, now),
                _ => flow.handle_end(now),
            },
            Step::Sleep { until, .. } => {
                assert!(
                    until > now,
                    "sleep to the past or present: {until:?} <= {now:?}"
                );
                sleeps.push(until);
                now = until;
            }
            Step::Yield(item) => items.push(item),
            Step::Done(result) => {
                assert!(
                    replies.next().is_none(),
                    "unused replies left in the script"
                );
                return (
                    Trace {
                        sent,
                        sleeps,
                        result,
                        end: now,
                    },
                    items,
                );
            }
        }
    }
    panic!("the flow did not finish in 10000 steps");
}

/// Shorthand for a duration in milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
