//! Records of what the server received and sent.

use crate::fault::Fault;
use crate::origin::Origin;

/// A request as the fake received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    /// The origin it arrived on.
    pub origin: Origin,
    /// The method, e.g. `"POST"`.
    pub method: String,
    /// The path, as sent (with the prefix if any), without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// Headers with lowercase names, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as recorded: empty when the request was reset before it was read or failed
    /// authentication on the API origin, and at most
    /// [`Options::max_recorded_body_bytes`](crate::Options::max_recorded_body_bytes) long (see
    /// [`body_truncated`](Self::body_truncated)).
    pub body: Vec<u8>,
    /// The length of the body as received, in bytes (`body.len()` unless the recorded body was
    /// cut or withheld). For a body over
    /// [`Options::max_request_body_bytes`](crate::Options::max_request_body_bytes), the bytes
    /// read before the server gave up, or the announced `Content-Length` when it did not read it.
    pub body_len: usize,
    /// Whether [`body`](Self::body) is shorter than the body received (cut to
    /// [`Options::max_recorded_body_bytes`](crate::Options::max_recorded_body_bytes), or withheld
    /// because the request failed authentication).
    pub body_truncated: bool,
    /// The fault applied to it, if any.
    pub fault: Option<Fault>,
    /// Whether the server-wide [`RateLimit`](crate::RateLimit) answered it `429`.
    pub rate_limited: bool,
    /// The number of the TCP connection it came on (1-based, counted per origin), to check
    /// keep-alive reuse.
    pub connection: usize,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The path with the query, as in the request line.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }
}

/// One webhook POST the fake attempted.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookDelivery {
    /// The event: `start`, `output`, `logs` or `completed`.
    pub event: String,
    /// The target URL.
    pub url: String,
    /// The `webhook-id` header (the same on retries).
    pub webhook_id: String,
    /// The `webhook-timestamp` header (Unix seconds).
    pub timestamp: u64,
    /// The `webhook-signature` header.
    pub signature: String,
    /// The body: the prediction JSON.
    pub body: Vec<u8>,
    /// The receiver's status code, or `None` when the POST failed or the URL is not loopback
    /// `http://`.
    pub status: Option<u16>,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: usize,
}
