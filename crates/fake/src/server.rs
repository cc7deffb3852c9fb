//! Listeners, connections, and per-request fault handling.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::fault::{EchoFormat, Fault, RetryAfter};
use crate::http::{Resp, RespBody};
use crate::origin::Origin;
use crate::pagination::valid_cursor;
use crate::record::RecordedRequest;
use crate::request::{Req, until_shutdown};
use crate::routing::Class;
use crate::state::{RateDecision, Shared, lock};
use crate::{api, files, routing, util};

/// Per-connection control: lets a handler reset its own connection.
#[derive(Default)]
pub(crate) struct ConnCtl {
    abort: AtomicBool,
    notify: Notify,
}

impl ConnCtl {
    /// Asks the connection task to close the socket with an RST.
    fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

/// The socket handed to hyper; sets `SO_LINGER` 0 on drop when the connection is aborted, so
/// the close sends an RST.
struct ConnIo {
    inner: TcpStream,
    ctl: Arc<ConnCtl>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.ctl.abort.load(Ordering::Acquire) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, origin: Origin) {
    let stop = until_shutdown(shared.shutdown.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let counter = match origin {
                        Origin::Api => &shared.api_conns,
                        Origin::Files => &shared.files_conns,
                    };
                    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    tokio::spawn(serve_conn(shared.clone(), origin, stream, n));
                }
                Err(_) => {
                    // Out of file descriptors or similar: back off a little.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            },
            _ = &mut stop => break,
        }
    }
}

/// Counts a connection as open while it lives.
struct OpenConn(Arc<Shared>);

impl OpenConn {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open_conns.fetch_add(1, Ordering::Relaxed);
        OpenConn(shared)
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.open_conns.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_conn(shared: Arc<Shared>, origin: Origin, stream: TcpStream, conn_no: usize) {
    let _open = OpenConn::new(shared.clone());
    let _ = stream.set_nodelay(true);
    let ctl = Arc::new(ConnCtl::default());
    let io = TokioIo::new(ConnIo {
        inner: stream,
        ctl: ctl.clone(),
    });
    let svc_shared = shared.clone();
    let svc_ctl = ctl.clone();
    let svc = service_fn(move |req| {
        let shared = svc_shared.clone();
        let ctl = svc_ctl.clone();
        async move {
            let resp = handle_guarded(shared, origin, ctl, conn_no, req).await;
            Ok::<_, Infallible>(resp.into_hyper())
        }
    });
    let mut builder = http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let conn = builder.serve_connection(io, svc);
    tokio::select! {
        _ = conn => {}
        _ = ctl.notify.notified() => {}
        _ = until_shutdown(shared.shutdown.clone()) => {}
    }
}

/// Catches a panic while polling the inner future, so that one handler's bug answers 500
/// instead of dropping the connection (the server keeps serving either way: each connection is
/// its own task, and locks ignore poisoning).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Handles one request, answering 500 if the handler panics.
async fn handle_guarded(
    shared: Arc<Shared>,
    origin: Origin,
    ctl: Arc<ConnCtl>,
    conn_no: usize,
    req: hyper::Request<Incoming>,
) -> Resp {
    match CatchUnwind(Box::pin(handle(shared, origin, ctl, conn_no, req))).await {
        Ok(resp) => resp,
        Err(()) => Resp::problem(
            500,
            "Internal Server Error",
            "replicate-fake: the request handler panicked",
        ),
    }
}

/// Why a request body was not read whole.
enum BodyError {
    /// Over the limit; the bytes received so far.
    TooLarge(usize),
    /// The client went away mid-body.
    Aborted,
}

/// Reads a request body, keeping at most its first `keep` bytes (the rest is dropped as it
/// arrives) and failing once more than `max` bytes came. Returns the kept bytes and the length
/// received.
async fn read_body(
    mut body: Incoming,
    keep: usize,
    max: usize,
) -> Result<(Bytes, usize), BodyError> {
    let mut kept: Vec<Bytes> = Vec::new();
    let mut kept_len = 0usize;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(BodyError::Aborted);
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > max {
            return Err(BodyError::TooLarge(total));
        }
        let take = keep.saturating_sub(kept_len).min(data.len());
        if take > 0 {
            kept_len += take;
            kept.push(data.slice(..take));
        }
    }
    let body = match kept.len() {
        0 => Bytes::new(),
        1 => kept.swap_remove(0),
        _ => {
            let mut all = BytesMut::with_capacity(kept_len);
            for b in &kept {
                all.extend_from_slice(b);
            }
            all.freeze()
        }
    };
    Ok((body, total))
}

/// The 413 answer to a body over [`Options::max_request_body_bytes`](crate::Options).
fn too_large(path: &str, max: usize) -> Resp {
    let detail = if path.trim_end_matches('/').ends_with("/files") {
        "Files must be less than 100MB in size".to_owned()
    } else {
        format!("The request body is larger than the server's limit of {max} bytes")
    };
    Resp::problem(413, "Content Too Large", &detail)
}

/// Handles one request: faults, rate limit, recording, then the origin's router.
async fn handle(
    shared: Arc<Shared>,
    origin: Origin,
    ctl: Arc<ConnCtl>,
    conn_no: usize,
    req: hyper::Request<Incoming>,
) -> Resp {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let mut query = parts.uri.query().map(str::to_owned);
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let is_stream = origin == Origin::Files && path.starts_with("/v1/streams/");
    let fault = shared.take_fault(origin, &method, &target, is_stream);
    let recording = shared.recording();
    let record_cap = if recording {
        shared.opts.max_recorded_body_bytes
    } else {
        0
    };
    let headers: Vec<(String, String)> = if recording {
        parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let record = |body: &[u8], body_len: usize, rate_limited: bool| {
        if !recording {
            return;
        }
        let kept = &body[..body.len().min(record_cap)];
        shared.record(RecordedRequest {
            origin,
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers: headers.clone(),
            body: kept.to_vec(),
            body_len,
            body_truncated: kept.len() < body_len,
            fault: fault.clone(),
            rate_limited,
            connection: conn_no,
        });
    };

    if fault == Some(Fault::ResetBeforeRead) {
        record(&[], 0, false);
        ctl.abort();
        return std::future::pending().await;
    }

    let max = shared.opts.max_request_body_bytes;
    let announced = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if let Some(n) = announced
        && n > max
    {
        // Not read at all: hyper closes the connection after this answer.
        record(&[], n, false);
        return too_large(&path, max);
    }

    let answered_by_fault = fault.as_ref().is_some_and(Fault::answers_alone);
    let class = (origin == Origin::Api)
        .then(|| routing::classify(&shared, &parts.method, &path, &parts.headers));
    let rate = if origin == Origin::Api && !answered_by_fault {
        shared.rate_check(routing::is_prediction_create(&shared, &parts.method, &path))
    } else {
        None
    };
    let throttled = match rate {
        Some(RateDecision::Throttled { reset_secs }) => Some(reset_secs),
        _ => None,
    };
    // Keep the whole body only when a handler will use it; a request that fails authentication
    // keeps none of it (not even for the log, whatever else happens to it), others only what
    // the log records.
    let keep = match class {
        Some(Class::Unauthenticated) => 0,
        _ if answered_by_fault || throttled.is_some() => record_cap,
        Some(Class::Served) => max,
        _ => record_cap,
    };
    let body = match read_body(body, keep, max).await {
        Ok((body, len)) => {
            record(&body, len, throttled.is_some());
            body
        }
        Err(BodyError::TooLarge(n)) => {
            record(&[], n, false);
            return too_large(&path, max);
        }
        // The client went away mid-body: nothing to answer.
        Err(BodyError::Aborted) => return Resp::empty(400),
    };

    if let Some(secs) = throttled {
        return status_fault(429, Some(RetryAfter::Seconds(secs)), None);
    }

    match &fault {
        Some(Fault::Status {
            status,
            retry_after,
            body,
        }) => return status_fault(*status, *retry_after, body.as_deref()),
        Some(Fault::Redirect(url)) => {
            return Resp::empty(302).header("location", url.clone());
        }
        Some(Fault::HugeBody(n)) => {
            return Resp {
                status: 200,
                headers: vec![("content-type", "application/json".to_owned())],
                body: RespBody::Huge { total: *n, sent: 0 },
            };
        }
        Some(Fault::Echo { status, format }) => return echo(*status, *format, &parts.headers),
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        Some(Fault::Panic) => {
            let _state = lock(&shared.state);
            panic!("replicate-fake: Fault::Panic");
        }
        Some(Fault::NextCursor(_)) => {
            // A cursor the fake did not make (one a NextCursor made up) serves the first page.
            let bad =
                util::query_param(query.as_deref(), "cursor").is_some_and(|c| !valid_cursor(&c));
            if bad {
                query = without_param(query.as_deref(), "cursor");
            }
        }
        _ => {}
    }

    let req = Req {
        method: parts.method,
        path,
        query,
        headers: parts.headers,
        body,
    };
    let stream_mode = match &fault {
        Some(Fault::DropStreamAfter(n)) => files::StreamMode::DropAfter(*n),
        Some(Fault::SilentStream) => files::StreamMode::Silent,
        _ => files::StreamMode::Normal,
    };
    let resp = match origin {
        Origin::Api => api::handle(&shared, &req).await,
        Origin::Files => files::handle(&shared, &req, stream_mode).await,
    };

    let mut resp = match fault {
        Some(Fault::ResetAfterRead) => {
            drop(resp);
            ctl.abort();
            std::future::pending().await
        }
        Some(Fault::TruncatedJson) => Resp {
            body: resp.body.halved(),
            ..resp
        },
        Some(Fault::GarbageJson) => {
            let mut headers: Vec<_> = resp
                .headers
                .into_iter()
                .filter(|(n, _)| *n != "content-type")
                .collect();
            headers.push(("content-type", "application/json".to_owned()));
            Resp {
                status: resp.status,
                headers,
                body: RespBody::full(Bytes::from_static(
                    b"{\"id\": \"oops\", \"status\": <<garbage>> \x01\x02 ]]}",
                )),
            }
        }
        Some(Fault::NextCursor(cursor)) => with_next_cursor(&shared, &req, resp, &cursor),
        Some(Fault::Drip { interval, chunk }) => Resp {
            body: resp.body.drip(interval, chunk),
            ..resp
        },
        Some(Fault::CutAfter(n)) => Resp {
            body: resp.body.cut_after(n),
            ..resp
        },
        Some(Fault::Corrupt(n)) => Resp {
            body: resp.body.corrupt(n),
            ..resp
        },
        Some(Fault::ApplyThen { status }) => {
            drop(resp);
            status_fault(status, None, None)
        }
        _ => resp,
    };
    if let Some(RateDecision::Allowed {
        remaining,
        reset_secs,
    }) = rate
    {
        resp = resp
            .header("ratelimit-remaining", remaining.to_string())
            .header("ratelimit-reset", reset_secs.to_string());
    }
    resp
}

/// `query` without the parameter `key` (`None` when nothing is left).
fn without_param(query: Option<&str>, key: &str) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|kv| kv.split('=').next() != Some(key))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// A URL with its `cursor` parameter set to `cursor` (first, as in real `next` URLs).
fn set_cursor(url: &str, cursor: &str) -> String {
    let (base, q) = url.split_once('?').unwrap_or((url, ""));
    let mut out = format!("{base}?cursor={}", util::percent_encode(cursor));
    if let Some(rest) = without_param(Some(q), "cursor").filter(|r| !r.is_empty()) {
        out.push('&');
        out.push_str(&rest);
    }
    out
}

/// The answer of a [`Fault::NextCursor`]: the real page with `next` naming `cursor`.
fn with_next_cursor(shared: &Shared, req: &Req, resp: Resp, cursor: &str) -> Resp {
    let Some(bytes) = resp.body.as_full() else {
        return resp;
    };
    let Ok(serde_json::Value::Object(mut page)) = serde_json::from_slice(bytes) else {
        return resp;
    };
    if !page.contains_key("results") {
        return resp;
    }
    let real = ["next", "previous"]
        .iter()
        .find_map(|k| page.get(*k).and_then(|v| v.as_str()).map(str::to_owned));
    let url = match real {
        Some(u) => set_cursor(&u, cursor),
        None => {
            let path = routing::api_path(shared, &req.path).unwrap_or_else(|| req.path.clone());
            let mut u = format!("{}{path}", shared.body_host());
            if let Some(q) = &req.query {
                u.push('?');
                u.push_str(q);
            }
            set_cursor(&u, cursor)
        }
    };
    page.insert("next".to_owned(), serde_json::Value::String(url));
    let body = serde_json::to_vec(&page).unwrap_or_default();
    Resp {
        status: resp.status,
        headers: resp.headers,
        body: RespBody::full(Bytes::from(body)),
    }
}

/// The answer of a [`Fault::Echo`]: the request's headers, `Authorization` included.
fn echo(status: u16, format: EchoFormat, headers: &hyper::HeaderMap) -> Resp {
    let value = |v: &hyper::header::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let lines: Vec<String> = headers
        .iter()
        .map(|(n, v)| format!("{}: {}", n.as_str(), value(v)))
        .collect();
    match format {
        EchoFormat::ProblemJson => {
            let auth = headers
                .get(hyper::header::AUTHORIZATION)
                .map(value)
                .unwrap_or_default();
            let v = json!({
                "title": "Unauthenticated",
                "detail": format!("bad credentials: {auth}"),
                "status": status,
            });
            Resp::new(status, "application/problem+json", v.to_string())
        }
        EchoFormat::Html => {
            let r = reason(status);
            let mut html = format!(
                "<!DOCTYPE html>\n<html>\n<head><title>{status} {r}</title></head>\n<body>\n<h1>{status} {r}</h1>\n<p>Your request headers:</p>\n<pre>\n"
            );
            for l in &lines {
                html.push_str(l);
                html.push('\n');
            }
            html.push_str("</pre>\n</body>\n</html>\n");
            Resp::new(status, "text/html; charset=utf-8", html)
        }
        EchoFormat::Text => {
            let mut text = format!("{status} {}\nrequest headers:\n", reason(status));
            for l in &lines {
                text.push_str(l);
                text.push('\n');
            }
            Resp::new(status, "text/plain; charset=utf-8", text)
        }
    }
}

fn reason(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// The answer of a [`Fault::Status`].
fn status_fault(status: u16, retry_after: Option<RetryAfter>, body: Option<&str>) -> Resp {
    let secs = match retry_after {
        Some(RetryAfter::Seconds(s)) => s,
        Some(RetryAfter::HttpDate(t)) => t
            .duration_since(SystemTime::now())
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0),
        None => 1,
    };
    let mut resp = match body {
        Some(b) => {
            let ct = if serde_json::from_str::<serde_json::Value>(b).is_ok() {
                "application/json"
            } else if b.trim_start().starts_with('<') {
                "text/html"
            } else {
                "text/plain"
            };
            Resp::new(status, ct, b.to_owned())
        }
        None => match status {
            429 => {
                let unit = if secs == 1 { "second" } else { "seconds" };
                let v = json!({
                    "detail": format!("Request was throttled. Expected available in {secs} {unit}."),
                    "status": 429,
                    "retry_after": secs,
                });
                Resp::new(429, "application/problem+json", v.to_string())
            }
            502 | 504 => {
                let r = reason(status);
                let html = format!(
                    "<html>\r\n<head><title>{status} {r}</title></head>\r\n<body>\r\n<center><h1>{status} {r}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
                );
                Resp::new(status, "text/html", html)
            }
            _ => Resp::problem(status, reason(status), "Fault injected by replicate-fake"),
        },
    };
    if status == 429 {
        resp = resp
            .header("ratelimit-remaining", "0")
            .header("ratelimit-reset", secs.to_string());
    }
    match retry_after {
        Some(RetryAfter::Seconds(s)) => resp = resp.header("retry-after", s.to_string()),
        Some(RetryAfter::HttpDate(t)) => resp = resp.header("retry-after", util::http_date(t)),
        None => {}
    }
    resp
}
