//! The one error type of the SDK, and the API's problem details.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::prediction::{Prediction, Status};

/// Everything that can go wrong, from a bad argument to a failed prediction.
///
/// Messages never contain the API token.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The base URL could not be used.
    #[error("invalid base URL {0}")]
    InvalidBaseUrl(String),
    /// The API token is empty or cannot be sent in an HTTP header (control or non-ASCII
    /// characters).
    #[error("the API token is empty or contains characters that cannot be sent in an HTTP header")]
    InvalidToken,
    /// An argument was rejected before anything was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
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
    Stream(String),
    /// The model reported an error on its stream.
    #[error("the prediction reported an error: {0}")]
    PredictionStreamError(String),
    /// An output could not be downloaded or decoded.
    #[error("output error: {0}")]
    Output(String),
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
    /// deadline).
    pub fn prediction(&self) -> Option<&Prediction> {
        match self {
            Error::PredictionFailed(p)
            | Error::PredictionCanceled(p)
            | Error::PredictionAborted(p) => Some(p),
            Error::DeadlineExceeded { last, .. } => last.as_deref(),
            _ => None,
        }
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} error: {message}")]
pub struct TransportError {
    /// The classification that drives retries.
    pub kind: TransportErrorKind,
    /// A human-readable description (never containing the token).
    pub message: String,
}

impl TransportError {
    /// A new transport error.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
        }
    }
}

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
