//! Listeners, connections, and per-request fault handling.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::fault::{Fault, RetryAfter};
use crate::http::{Resp, RespBody};
use crate::record::{Origin, RecordedRequest};
use crate::state::Shared;
use crate::{api, files};

/// Largest request body read (uploads are limited to 100 MiB by the API).
const MAX_BODY: usize = 110 * 1024 * 1024;

/// A request after its body has been read.
pub(crate) struct Req {
    pub method: hyper::Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Resolves when the server is shut down (or its handle is gone).
pub(crate) async fn until_shutdown(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

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

async fn serve_conn(shared: Arc<Shared>, origin: Origin, stream: TcpStream, conn_no: usize) {
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
            let resp = handle(shared, origin, ctl, conn_no, req).await;
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

/// Handles one request: faults, recording, then the origin's router.
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
    let query = parts.uri.query().map(str::to_owned);
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let is_stream = origin == Origin::Files && path.starts_with("/v1/streams/");
    let fault = shared.take_fault(origin, &method, &target, is_stream);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let record = |body: &[u8]| RecordedRequest {
        origin,
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: headers.clone(),
        body: body.to_vec(),
        fault: fault.clone(),
        connection: conn_no,
    };

    if fault == Some(Fault::ResetBeforeRead) {
        shared.record(record(&[]));
        ctl.abort();
        return std::future::pending().await;
    }

    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                shared.record(record(&[]));
                return Resp::problem(
                    413,
                    "Content Too Large",
                    "Files must be less than 100MB in size",
                );
            }
            // The client went away mid-body: nothing to answer.
            return Resp::empty(400);
        }
    };
    shared.record(record(&body));

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
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }

    let req = Req {
        method: parts.method,
        path,
        query,
        headers: parts.headers,
        body,
    };
    let drop_after = match &fault {
        Some(Fault::DropStreamAfter(n)) => Some(*n),
        _ => None,
    };
    let resp = match origin {
        Origin::Api => api::handle(&shared, &req).await,
        Origin::Files => files::handle(&shared, &req, drop_after).await,
    };

    match fault {
        Some(Fault::ResetAfterRead) => {
            drop(resp);
            ctl.abort();
            std::future::pending().await
        }
        Some(Fault::TruncatedJson) => match resp.body.as_full() {
            Some(b) => {
                let cut = b.slice(..b.len() / 2);
                Resp {
                    status: resp.status,
                    headers: resp.headers,
                    body: RespBody::full(cut),
                }
            }
            None => resp,
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
        _ => resp,
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
        Some(RetryAfter::HttpDate(t)) => {
            resp = resp.header("retry-after", httpdate::fmt_http_date(t))
        }
        None => {}
    }
    resp
}
