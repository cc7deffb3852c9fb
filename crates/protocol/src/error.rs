//! The one error type of the SDK, and the API's problem details.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::prediction::{Prediction, Status};
use crate::text::{redact_in_place, redact_value};

/// Everything that can go wrong, from a bad argument to a failed prediction.
///
/// Messages never contain the API token.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The base URL could not be used.
    #[error("invalid base URL {0}")]
    InvalidBaseUrl(String),
    /// No API token was given: neither to the builder nor in `REPLICATE_API_TOKEN`. Nothing was
    /// sent.
    #[error("no API token: set REPLICATE_API_TOKEN or pass a token")]
    MissingToken,
    /// The API token is empty or cannot be sent in an HTTP header (control or non-ASCII
    /// characters).
    #[error("the API token is empty or contains characters that cannot be sent in an HTTP header")]
    InvalidToken,
    /// An argument was rejected before anything was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A create's input does not match its model version's schema (local validation, see
    /// [`crate::validate`]): every problem, one line per field. Nothing was sent.
    #[error("{0}")]
    Validation(crate::schema::ValidationErrors),
    /// The API answered with a non-success status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// A success response whose body could not be decoded.
    #[error(
        "could not decode the response (HTTP {status}): {reason}; body starts with {excerpt:?}"
    )]
    Decode {
        /// HTTP status of the response.
        status: u16,
        /// What the decoder said.
        reason: String,
        /// The first bytes of the body, lossily decoded.
        excerpt: String,
    },
    /// The network failed and the request can be assumed to have had no effect (or it was safe to
    /// retry and retries ran out).
    #[error("{0}")]
    Transport(TransportError),
    /// A create request was sent but its answer was lost: the prediction may exist. It is never
    /// re-sent automatically, to avoid running (and paying for) it twice.
    #[error(
        "the create request was sent but its response was lost ({0}); the prediction may have been created, check your predictions list before retrying"
    )]
    CreateOutcomeUnknown(TransportError),
    /// The prediction finished with status `failed`; `error` and `logs` are in the prediction.
    #[error("prediction {} failed: {}", .0.id, .0.error_message().unwrap_or("no error message"))]
    PredictionFailed(Box<Prediction>),
    /// The prediction was canceled.
    #[error("prediction {} was canceled", .0.id)]
    PredictionCanceled(Box<Prediction>),
    /// The prediction was aborted: its deadline passed before it started. It was not billed.
    #[error("prediction {} was aborted: its deadline passed before it started (not billed)", .0.id)]
    PredictionAborted(Box<Prediction>),
    /// A wait reached its deadline before the prediction finished.
    #[error("deadline reached while waiting for prediction {id} (last status: {}){}", .last.as_ref().map(|p| p.status.as_str()).unwrap_or("unknown"), if *.cancel_sent { "; a cancel request was sent" } else { "" })]
    DeadlineExceeded {
        /// The prediction's id.
        id: String,
        /// The last known state of the prediction.
        last: Option<Box<Prediction>>,
        /// Whether a cancel request was sent and acknowledged.
        cancel_sent: bool,
    },
    /// A prediction was asked for its result while still running.
    #[error("prediction {id} has not finished (status {status})")]
    NotFinished {
        /// The prediction's id.
        id: String,
        /// Its current status.
        status: Status,
    },
    /// A state machine was driven out of order (polled while a request was in flight, or after
    /// it finished).
    #[error("state machine misuse: {0}")]
    InvalidState(&'static str),
    /// A server-sent event stream failed.
    #[error("stream error: {0}")]
    Stream(StreamError),
    /// The model reported an error on its stream.
    #[error("the prediction reported an error: {0}")]
    PredictionStreamError(String),
    /// An output could not be downloaded, decoded or saved.
    #[error("output error: {0}")]
    Output(OutputError),
    /// The prediction was created, then following it failed (a throttled or failing poll, a
    /// broken connection). It exists and may still be running (and billing): do not create it
    /// again; resume with its id (`wait`), or cancel it.
    #[error("prediction {} was created; waiting for it failed: {source}", .prediction.id)]
    AfterCreate {
        /// The last known state of the prediction (at least its id).
        prediction: Box<Prediction>,
        /// Why following it failed.
        source: Box<Error>,
    },
    /// A webhook delivery did not verify (see [`crate::webhook::verify_prediction`]).
    #[error("webhook delivery rejected: {0}")]
    Webhook(crate::webhook::WebhookError),
    /// A paginated list went on past its page cap, or its server sent a cursor it had already
    /// sent (a cycle): the listing stops rather than loop forever.
    #[error("{0}")]
    Pagination(PaginationError),
}

/// What went wrong with an event stream (see [`Error::Stream`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamErrorKind {
    /// The stream answered `204 No Content` before its `done` event: the server asks not to
    /// reconnect.
    NoContent,
    /// A success whose `Content-Type` is not `text/event-stream`.
    NotEventStream,
    /// A redirect: streams never follow one.
    Redirected,
    /// A line or an event over the decoder's limits.
    Malformed,
    /// The stream stayed silent through every allowed reopening.
    Silent,
    /// The stream ended before its `done` event and could not be resumed.
    Ended,
}

/// An event stream failure: its kind, and what happened in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StreamError {
    /// What kind of failure it is.
    pub kind: StreamErrorKind,
    /// What happened.
    pub message: String,
}

/// What went wrong with an output (see [`Error::Output`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputErrorKind {
    /// Not a usable `http(s)` URL or `data:` URI.
    InvalidReference,
    /// The link expired or the file was removed (HTTP 403, 404, 410, or `data_removed`).
    Expired,
    /// A redirect without a usable `Location`, to an unsupported place, or one too many.
    Redirect,
    /// Another status from the output host.
    Status(u16),
    /// More output files than allowed to save.
    TooManyFiles,
    /// A local file could not be written.
    Write,
    /// The downloaded bytes do not have the expected SHA-256 (given by the caller, or named by a
    /// content-hash `ETag`); the message names both digests.
    ChecksumMismatch,
}

/// An output failure: its kind, and what happened in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OutputError {
    /// What kind of failure it is.
    pub kind: OutputErrorKind,
    /// What happened.
    pub message: String,
}

/// Why a listing was stopped (see [`Error::Pagination`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaginationError {
    /// The server sent a `next` cursor it had already sent in this listing.
    #[error(
        "the list's next cursor {cursor:?} was already visited (page {page}): the server's pages form a cycle; stopped"
    )]
    CursorCycle {
        /// The repeated cursor.
        cursor: String,
        /// How many pages were read.
        page: usize,
    },
    /// More pages than the cap allow.
    #[error(
        "the list has more than {max_pages} pages: stopped at the cap (raise it to read further)"
    )]
    TooManyPages {
        /// The cap.
        max_pages: usize,
    },
}

impl Error {
    /// The API error, when this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status of an API error or decode error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The prediction this error is about, when it carries one (failed, canceled, aborted,
    /// deadline, a failure after the create).
    pub fn prediction(&self) -> Option<&Prediction> {
        match self {
            Error::PredictionFailed(p)
            | Error::PredictionCanceled(p)
            | Error::PredictionAborted(p)
            | Error::AfterCreate { prediction: p, .. } => Some(p),
            Error::DeadlineExceeded { last, .. } => last.as_deref(),
            _ => None,
        }
    }

    /// Whether an input or argument was refused before anything was sent: an
    /// [`Error::Validation`] (the input does not match the model's schema) or an
    /// [`Error::InvalidInput`].
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::InvalidInput(_) | Error::Validation(_))
    }

    /// The problems of an input that local validation refused ([`Error::Validation`]).
    pub fn validation_errors(&self) -> Option<&crate::schema::ValidationErrors> {
        match self {
            Error::Validation(errors) => Some(errors),
            _ => None,
        }
    }

    /// Whether no API token was configured ([`Error::MissingToken`]).
    pub fn is_missing_token(&self) -> bool {
        matches!(self, Error::MissingToken)
    }

    /// Whether the API refused the token (HTTP 401), or no usable token was configured.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::MissingToken | Error::InvalidToken) || self.api_status() == Some(401)
    }

    /// Whether the API answered HTTP 404 (an unknown prediction, model, file...).
    pub fn is_not_found(&self) -> bool {
        self.api_status() == Some(404)
    }

    /// Whether the API answered HTTP 429 and retries ran out (see
    /// [`ApiError::retry_delay`] for how long it asked to wait).
    pub fn is_rate_limited(&self) -> bool {
        self.api_status() == Some(429)
    }

    /// The status of an API error, also when it is the cause of a failure after a create.
    fn api_status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::AfterCreate { source, .. } => source.api_status(),
            _ => None,
        }
    }

    /// The id of a prediction that this error shows to exist: when it is `Some`, the prediction
    /// was created, and creating it again would run (and bill) it twice.
    pub fn prediction_id(&self) -> Option<&str> {
        match self {
            Error::DeadlineExceeded { id, .. } => Some(id),
            _ => self
                .prediction()
                .map(|p| p.id.as_str())
                .filter(|id| !id.is_empty()),
        }
    }

    /// The error with every occurrence of `secret` (the API token) removed from the text it
    /// carries: problem details, body excerpts, transport, stream and output messages, and the
    /// logs, error and output of a carried prediction (see [`crate::text::redact`]). Every flow
    /// of this crate applies it with its configured token before handing an error out.
    pub fn redact(mut self, secret: &str) -> Error {
        self.redact_in_place(secret);
        self
    }

    fn redact_in_place(&mut self, secret: &str) {
        let r = |s: &mut String| redact_in_place(s, secret);
        match self {
            Error::InvalidBaseUrl(s) | Error::InvalidInput(s) | Error::PredictionStreamError(s) => {
                r(s)
            }
            Error::Stream(e) => r(&mut e.message),
            Error::Output(e) => r(&mut e.message),
            Error::Api(api) => api.redact_in_place(secret),
            Error::Decode {
                reason, excerpt, ..
            } => {
                r(reason);
                r(excerpt);
            }
            Error::Transport(t) | Error::CreateOutcomeUnknown(t) => r(&mut t.message),
            Error::PredictionFailed(p)
            | Error::PredictionCanceled(p)
            | Error::PredictionAborted(p) => p.redact(secret),
            Error::DeadlineExceeded { id, last, .. } => {
                r(id);
                if let Some(p) = last {
                    p.redact(secret);
                }
            }
            Error::AfterCreate { prediction, source } => {
                prediction.redact(secret);
                source.redact_in_place(secret);
            }
            Error::Pagination(PaginationError::CursorCycle { cursor, .. }) => r(cursor),
            // The caller's own input, and the names and values of the schema.
            Error::Validation(_)
            | Error::Pagination(_)
            | Error::Webhook(_)
            | Error::MissingToken
            | Error::InvalidToken
            | Error::NotFinished { .. }
            | Error::InvalidState(_) => {}
        }
    }

    /// An [`Error::Stream`] of this kind.
    pub fn stream(kind: StreamErrorKind, message: impl Into<String>) -> Error {
        Error::Stream(StreamError {
            kind,
            message: message.into(),
        })
    }

    /// An [`Error::Output`] of this kind.
    pub fn output(kind: OutputErrorKind, message: impl Into<String>) -> Error {
        Error::Output(OutputError {
            kind,
            message: message.into(),
        })
    }

    /// Builds a decode error with a short excerpt of the body.
    pub fn decode(status: u16, reason: impl std::fmt::Display, body: &[u8]) -> Error {
        Error::Decode {
            status,
            reason: reason.to_string(),
            excerpt: excerpt(body),
        }
    }
}

/// The first 200 bytes of a body, lossily decoded and cut at a character boundary.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let cut = &body[..body.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if body.len() > MAX {
        s.push('…');
    }
    s
}

/// What kind of transport failure happened. Adapters classify their errors into these kinds; the
/// retry rules of this crate decide from the kind alone.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportErrorKind {
    /// The connection could not be established (refused, DNS failure, TLS handshake): the request
    /// certainly did not reach the server.
    Connect,
    /// A timeout after the request may have been sent.
    Timeout,
    /// The connection broke after the request may have been sent (reset, closed early, truncated
    /// body).
    Io,
    /// The response body was larger than the configured limit.
    BodyTooLarge,
    /// Anything else.
    Other,
}

impl TransportErrorKind {
    /// Whether the request certainly never reached the server, so that even a create may be sent
    /// again.
    pub fn certainly_not_sent(self) -> bool {
        matches!(self, TransportErrorKind::Connect)
    }
}

/// A failure below HTTP: connection, timeout, broken body.
///
/// Its message says what failed; once a flow gives up, [`TransportError::context`] also says
/// which request it was and after how many attempts:
/// `timed out (GET /v1/predictions/abc, 3 attempts): no response within 30 s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// The classification that drives retries.
    pub kind: TransportErrorKind,
    /// A human-readable description (never containing the token).
    pub message: String,
    /// Which request failed and how many attempts were made, set by the flow that gave up
    /// (`GET /v1/predictions/abc, 3 attempts`).
    pub context: Option<String>,
}

impl TransportError {
    /// A new transport error.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
            context: None,
        }
    }

    /// The same error, saying which request failed after how many attempts.
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Io => "the connection broke",
            TransportErrorKind::BodyTooLarge => "the response body is too large",
            TransportErrorKind::Other => "transport error",
        })?;
        if let Some(c) = &self.context {
            write!(f, " ({c})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TransportError {}

/// A non-success answer from the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// The problem details of the body, when it had them.
    pub problem: Option<Problem>,
    /// An excerpt of the body when it was not problem details (a proxy's HTML page, say).
    pub body_excerpt: Option<String>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<RetryAfter>,
    /// The server's `Date` header, used to turn an HTTP-date `Retry-After` into a delay.
    pub date: Option<SystemTime>,
    /// `ratelimit-remaining` / `ratelimit-reset` headers.
    pub rate_limit: RateLimit,
    /// The `Location` header of a redirect (3xx) answer, cleaned for display.
    pub location: Option<String>,
}

impl ApiError {
    /// Builds the error from a non-success response.
    pub fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiError {
        let problem = serde_json::from_slice::<Problem>(body)
            .ok()
            .filter(|p| p.title.is_some() || p.detail.is_some() || p.status.is_some());
        let body_excerpt = if problem.is_none() && !body.is_empty() {
            Some(excerpt(body))
        } else {
            None
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        ApiError {
            status: status.as_u16(),
            problem,
            body_excerpt,
            retry_after: header("retry-after").and_then(RetryAfter::parse),
            date: header("date").and_then(|d| httpdate::parse_http_date(d).ok()),
            rate_limit: RateLimit {
                remaining: header("ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
                reset: header("ratelimit-reset").and_then(|v| v.trim().parse().ok()),
            },
            location: status
                .is_redirection()
                .then(|| header("location"))
                .flatten()
                .map(|l| excerpt(l.as_bytes())),
        }
    }

    fn redact_in_place(&mut self, secret: &str) {
        let r = |s: &mut String| redact_in_place(s, secret);
        if let Some(p) = &mut self.problem {
            for field in [&mut p.type_, &mut p.title, &mut p.detail, &mut p.instance]
                .into_iter()
                .flatten()
            {
                r(field);
            }
            for v in p.extra.values_mut() {
                redact_value(v, secret);
            }
        }
        for field in [&mut self.body_excerpt, &mut self.location]
            .into_iter()
            .flatten()
        {
            r(field);
        }
    }

    /// How long the server asked us to wait before retrying: the `Retry-After` header (seconds, or
    /// an HTTP-date measured against the response's `Date`), else the body's `retry_after`.
    pub fn retry_delay(&self) -> Option<Duration> {
        match self.retry_after {
            Some(RetryAfter::Seconds(s)) => return Some(Duration::from_secs(s)),
            Some(RetryAfter::Date(at)) => {
                if let Some(date) = self.date {
                    return Some(at.duration_since(date).unwrap_or(Duration::ZERO));
                }
            }
            None => {}
        }
        let secs = self.problem.as_ref()?.retry_after?;
        if secs.is_finite() && secs >= 0.0 {
            Some(Duration::from_secs_f64(secs.min(86_400.0)))
        } else {
            None
        }
    }

    /// Whether the status asks for a later retry (429) or is a server-side failure (5xx) that an
    /// idempotent request may retry.
    pub fn is_retryable(&self) -> bool {
        matches!(self.status, 429 | 500 | 502 | 503 | 504)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        write!(f, "the API answered HTTP {} {}", self.status, reason)?;
        if let Some(p) = &self.problem {
            match (&p.title, &p.detail) {
                (Some(t), Some(d)) => write!(f, ": {t}: {d}")?,
                (Some(t), None) => write!(f, ": {t}")?,
                (None, Some(d)) => write!(f, ": {d}")?,
                (None, None) => {}
            }
        } else if let Some(e) = &self.body_excerpt {
            write!(f, "; body starts with {e:?}")?;
        }
        if let Some(l) = &self.location {
            write!(
                f,
                " (redirecting to {l:?}; the API does not redirect: check the base URL)"
            )?;
        }
        if let Some(d) = self.retry_delay() {
            write!(f, " (retry after {}s)", d.as_secs())?;
        }
        Ok(())
    }
}

/// The API's problem details (RFC 7807), as in
/// `{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// A short summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The HTTP status, as the server wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A human-readable explanation (for 422, the invalid fields).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_detail"
    )]
    pub detail: Option<String>,
    /// A URI naming this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Seconds to wait, in 429 bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<f64>,
    /// Any other member, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `detail` is usually a string, but some servers (FastAPI-style validation) send a list.
fn de_detail<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// A `Retry-After` header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// A number of seconds.
    Seconds(u64),
    /// An HTTP-date.
    Date(SystemTime),
}

impl RetryAfter {
    /// Parses `120` or `Wed, 21 Oct 2015 07:28:00 GMT`.
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let v = value.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Some(RetryAfter::Seconds(secs));
        }
        if let Ok(secs) = v.parse::<f64>()
            && secs.is_finite()
            && secs >= 0.0
        {
            return Some(RetryAfter::Seconds(secs.ceil().min(u64::MAX as f64) as u64));
        }
        httpdate::parse_http_date(v).ok().map(RetryAfter::Date)
    }
}

/// Rate-limit headers of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// `ratelimit-remaining`: requests left in the window.
    pub remaining: Option<u64>,
    /// `ratelimit-reset`: seconds until the window resets.
    pub reset: Option<u64>,
}
