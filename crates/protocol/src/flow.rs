//! The driver contract shared by every multi-step operation.
//!
//! A flow never performs I/O and never reads a clock: it says what it needs, one [`Step`] at a
//! time, and its driver (an adapter, or [`drive`](crate::drive::drive) with a transport of
//! yours) does it and reports back. The time is an input (`now`), so tests pass made-up
//! instants.
//!
//! ```text
//!   driver                                   flow
//!     │  poll(now) ─────────────────────────▶  │
//!     │  ◀──── Step::Send(Outgoing) ────────── │  a request, how to read its answer, its timeout
//!     │        Buffered: send, read the body (at most its cap) in full, then
//!     │           handle_response(response)  or  handle_error(transport error)
//!     │        Streamed: send, then
//!     │           handle_head(status, headers) or  handle_error(transport error)
//!     │  ◀──── Step::Receive ───────────────── │  read the next chunk of the open body
//!     │           handle_chunk(bytes) | handle_end() | handle_error(e)  (idle timeout)
//!     │  ◀──── Step::Sleep { until, reason } ─ │  poll, retry or reconnect: sleep until `until`
//!     │  ◀──── Step::Yield(item) ───────────── │  hand `item` to the caller, then poll again
//!     │  ◀──── Step::Done(output) ──────────── │  the flow is over
//! ```
//!
//! The one rule of the driver: **a streamed body stays open only while the flow answers
//! [`Step::Receive`] or [`Step::Yield`]; any other step closes it first.** Everything else (which
//! timeout applies, how much of a body may be buffered, when to retry and how long to wait,
//! whether the token goes with a request) is decided by the flow.

use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response, StatusCode};

use crate::{Config, TransportError, TransportErrorKind};

/// Extra time allowed on top of a server's deliberate hold (`Prefer: wait=N`) before a read
/// times out.
pub const SERVER_HOLD_MARGIN: Duration = Duration::from_secs(10);

/// How far past its deadline a request may run, so that an answer already on its way is read.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// What a flow asks its driver to do next. See the [module documentation](self).
// A step is moved once from `poll` to its driver and never stored: boxing would cost an
// allocation per step for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step<Y, T> {
    /// Send this request and report the outcome (see [`BodyRead`] for how).
    Send(Outgoing),
    /// Read the next chunk of the body that is open, and report it with
    /// [`Flow::handle_chunk`], [`Flow::handle_end`] or [`Flow::handle_error`].
    Receive,
    /// Sleep until this instant, then poll again.
    Sleep {
        /// When to poll again.
        until: Instant,
        /// Why the flow waits (for logs and metrics).
        reason: SleepReason,
    },
    /// An item for the caller (a list item, a stream event, a chunk of a download); poll again
    /// for the next step.
    Yield(Y),
    /// The flow is over.
    Done(T),
}

/// Why a flow sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SleepReason {
    /// The next poll of a running prediction.
    Poll,
    /// A backoff before retrying a failed request.
    Retry,
    /// A backoff before reopening a stream.
    Reconnect,
}

impl SleepReason {
    /// What a log line says of the sleep: `waiting before the next poll`, `retrying after a
    /// failure`, `reconnecting the event stream`.
    pub fn describe(self) -> &'static str {
        match self {
            SleepReason::Poll => "waiting before the next poll",
            SleepReason::Retry => "retrying after a failure",
            SleepReason::Reconnect => "reconnecting the event stream",
        }
    }
}

/// How the response body of an [`Outgoing`] request is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRead {
    /// Read it whole into memory, failing with a [`TransportErrorKind::BodyTooLarge`] error
    /// past `max_bytes` (before reading, when the head announces more: see
    /// [`check_announced_length`]); then call [`Flow::handle_response`].
    Buffered {
        /// The most bytes the body may have.
        max_bytes: u64,
    },
    /// Hand the head to [`Flow::handle_head`], then read the body chunk by chunk when the flow
    /// asks ([`Step::Receive`]).
    Streamed,
}

/// Which timeout applies to an [`Outgoing`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The whole exchange, from connecting to the end of the body.
    Total(Duration),
    /// No total: each wait (connecting, the response head, every read and write of a body) may
    /// last this long. For streams, downloads and uploads, which may rightly take minutes.
    Idle(Duration),
}

impl Timeout {
    /// The duration, whichever kind it is.
    pub fn duration(self) -> Duration {
        match self {
            Timeout::Total(d) | Timeout::Idle(d) => d,
        }
    }
}

/// A request to send, how to read its answer, and its timeout.
#[derive(Debug)]
pub struct Outgoing {
    /// The request.
    pub request: Request<Vec<u8>>,
    /// How to read the response body.
    pub read: BodyRead,
    /// Which timeout applies.
    pub timeout: Timeout,
}

impl Outgoing {
    /// A request whose answer is read whole (at most the configuration's
    /// [`max_response_bytes`](crate::Limits::max_response_bytes)) under the configuration's
    /// total [`timeout`](crate::Limits::timeout).
    pub fn buffered(cfg: &Config, request: Request<Vec<u8>>) -> Self {
        Outgoing {
            request,
            read: BodyRead::Buffered {
                max_bytes: cfg.limits().max_response_bytes,
            },
            timeout: Timeout::Total(cfg.limits().timeout),
        }
    }

    /// A request whose answer is read as a stream, under the configuration's timeout as an idle
    /// timeout.
    pub fn streamed(cfg: &Config, request: Request<Vec<u8>>) -> Self {
        Outgoing {
            request,
            read: BodyRead::Streamed,
            timeout: Timeout::Idle(cfg.limits().timeout),
        }
    }

    /// The same request with its timeout raised to at least `min` (a server's deliberate hold)
    /// and capped at `max` (a deadline close by), never below one millisecond.
    pub fn bounded(mut self, min: Option<Duration>, max: Option<Duration>) -> Self {
        let clamp = |d: Duration| {
            let d = min.map_or(d, |m| d.max(m));
            max.map_or(d, |m| d.min(m)).max(Duration::from_millis(1))
        };
        self.timeout = match self.timeout {
            Timeout::Total(d) => Timeout::Total(clamp(d)),
            Timeout::Idle(d) => Timeout::Idle(clamp(d)),
        };
        self
    }

    /// The same request under an idle timeout instead of a total one (uploads).
    pub fn idle(mut self) -> Self {
        self.timeout = Timeout::Idle(self.timeout.duration());
        self
    }
}

impl Outgoing {
    /// What a log line may say of this request: its method, its URL without query or userinfo,
    /// and whether it carries the token (never the token itself). `Display` is
    /// `GET https://host/path`. Cheap: nothing is formatted unless it is displayed.
    pub fn summary(&self) -> RequestSummary {
        RequestSummary {
            method: self.request.method().clone(),
            uri: self.request.uri().clone(),
            authorized: self
                .request
                .headers()
                .contains_key(http::header::AUTHORIZATION),
        }
    }
}

/// What a log line may say of a request (see [`Outgoing::summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    /// The method.
    pub method: http::Method,
    /// The URL; shown without its query, fragment or userinfo.
    uri: http::Uri,
    /// Whether the request carries the API token.
    pub authorized: bool,
}

impl RequestSummary {
    /// The URL as it may be logged ([`loggable_url`](crate::config::loggable_url)).
    pub fn url(&self) -> String {
        crate::config::loggable_uri(&self.uri)
    }
}

impl std::fmt::Display for RequestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.url())
    }
}

/// Fails with a [`TransportErrorKind::BodyTooLarge`] error when a response head announces a body
/// larger than `max_bytes`, so that it is refused before anything is read. A content-encoded
/// body's `Content-Length` says nothing of its decoded size, which the cap applies to: it is
/// then checked while reading.
pub fn check_announced_length(headers: &HeaderMap, max_bytes: u64) -> Result<(), TransportError> {
    let encoded = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    if encoded {
        return Ok(());
    }
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(len) if len > max_bytes => Err(body_too_large(len, max_bytes)),
        _ => Ok(()),
    }
}

/// The error of a body over its cap.
pub fn body_too_large(len: u64, max_bytes: u64) -> TransportError {
    TransportError::new(
        TransportErrorKind::BodyTooLarge,
        format!(
            "the response body ({len} bytes or more) is larger than the limit of {max_bytes} bytes"
        ),
    )
}

/// How long a request sent at `now` may take so that it ends by `deadline` (plus
/// [`DEADLINE_GRACE`]); `None` without a deadline.
pub(crate) fn time_left(deadline: Option<Instant>, now: Instant) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(now) + DEADLINE_GRACE)
}

/// A sans-IO multi-step operation. See the [module documentation](self) for the driver rule.
pub trait Flow {
    /// What the flow hands out as it goes ([`std::convert::Infallible`] when nothing).
    type Item;
    /// The final result.
    type Output;

    /// What to do now.
    fn poll(&mut self, now: Instant) -> Step<Self::Item, Self::Output>;

    /// The answer to the last buffered [`Step::Send`], body read in full.
    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant);

    /// The last [`Step::Send`] or [`Step::Receive`] failed below HTTP.
    fn handle_error(&mut self, error: TransportError, now: Instant);

    /// The head of the answer to the last streamed [`Step::Send`]. Flows that never stream
    /// leave the default, which ignores it.
    fn handle_head(&mut self, status: StatusCode, headers: &HeaderMap, now: Instant) {
        let _ = (status, headers, now);
    }

    /// The next chunk of the open body, after a [`Step::Receive`].
    fn handle_chunk(&mut self, chunk: &[u8], now: Instant) {
        let _ = (chunk, now);
    }

    /// [`Flow::handle_chunk`] for a driver that can give the chunk away: a flow that keeps the
    /// bytes (a download handing them out) takes them without a copy. By default, the same as
    /// `handle_chunk`.
    fn handle_chunk_owned(&mut self, chunk: Vec<u8>, now: Instant) {
        self.handle_chunk(&chunk, now);
    }

    /// The open body ended, after a [`Step::Receive`].
    fn handle_end(&mut self, now: Instant) {
        let _ = now;
    }

    /// A server-sent-events URL whose `done` event means this flow may be finished (a streaming
    /// prediction being waited for). A driver may follow it (a
    /// [`StreamSession`](crate::StreamSession) is a flow too) while this flow sleeps, and call
    /// [`Flow::wake`] on `done`, so the flow ends then rather than at its next poll; the
    /// watcher ends with the flow. Following it is optional: the flow finishes by polling anyway.
    fn stream_hint(&self) -> Option<&str> {
        None
    }

    /// Something outside the flow says it may be finished: act at the next `poll` instead of
    /// sleeping until the planned instant.
    fn wake(&mut self) {}

    /// What the flow is about, for the span a driver runs it in (see [`crate::trace`]): its
    /// operation, and the model and prediction when known at the start. Asked once, and only
    /// when the span is enabled.
    fn describe(&self) -> FlowInfo {
        FlowInfo::new(short_type_name::<Self>())
    }

    /// The id of the prediction the flow is about, once known (a run learns it from the
    /// create's answer): a driver records it on the flow's span.
    fn prediction_id(&self) -> Option<&str> {
        None
    }
}

/// What a [`Flow`] is about: the fields of its tracing span (see [`crate::trace`]).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowInfo {
    /// What it does: `create`, `get`, `cancel`, `run`, `wait`, `watch`, `stream`, `download`,
    /// `list`, `upload`; other endpoints give their type's name (`ListModels`, ...).
    pub operation: &'static str,
    /// The model: `owner/name`, `owner/name:version`, a version id, or `deployment owner/name`.
    pub model: Option<String>,
    /// The prediction, when the flow knows it from the start.
    pub prediction_id: Option<String>,
}

impl FlowInfo {
    /// An operation with no model or prediction yet.
    pub fn new(operation: &'static str) -> Self {
        FlowInfo {
            operation,
            ..FlowInfo::default()
        }
    }

    /// With the model it runs.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// With the prediction it is about.
    pub fn prediction(mut self, id: impl Into<String>) -> Self {
        self.prediction_id = Some(id.into());
        self
    }
}

/// The last segment of a type's path, generics left out: `ListModels` for
/// `replicate_protocol::api::models::ListModels`.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}
