//! Webhook signature verification.
//!
//! Replicate signs every webhook delivery following the
//! [Standard Webhooks](https://www.standardwebhooks.com/) scheme:
//!
//! - the `webhook-id` header carries a unique message id (retries reuse it),
//! - the `webhook-timestamp` header carries the send time in Unix seconds,
//! - the `webhook-signature` header carries one or more space-separated
//!   signatures of the form `v1,<base64>`.
//!
//! A `v1` signature is the HMAC-SHA256 of `{id}.{timestamp}.{body}` (the body
//! as raw bytes), keyed with the base64-decoded part of the signing secret
//! after its `whsec_` prefix. The secret is available from
//! `GET /v1/webhooks/default/secret`; see [`parse_default_secret`].
//!
//! This module performs no I/O and never reads the clock: the caller passes
//! the current time as Unix seconds (see [`unix_timestamp`] to convert a
//! [`SystemTime`]).
//!
//! # Replays and retries
//!
//! Verification proves who sent a delivery, not that it is new: a retry carries
//! the same `webhook-id`, and a captured delivery sent again within the
//! tolerance window (5 minutes by default) verifies again, as Standard Webhooks
//! specifies. A receiver that must act once per event keeps the ids it has seen
//! for at least the tolerance window and ignores a repeat (see the axum example
//! `tests/examples/webhook_receiver.rs`).
//!
//! # Example
//!
//! ```
//! use replicate_protocol::webhook::{WebhookHeaders, WebhookSecret, verify};
//!
//! let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let headers = WebhookHeaders::new(
//!     "msg_p5jXN8AQM9LWM0D4loKWxJek",
//!     "1614265330",
//!     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
//! );
//! let body = br#"{"test": 2432232314}"#;
//!
//! // `now` is supplied by the caller; here, the moment the message was sent.
//! verify(&secret, &headers, body, 1_614_265_330)?;
//!
//! // Any change to the body is detected.
//! assert!(verify(&secret, &headers, br#"{"test": 2432232315}"#, 1_614_265_330).is_err());
//! # Ok::<(), replicate_protocol::webhook::WebhookError>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Name of the header carrying the message id.
pub const HEADER_ID: &str = "webhook-id";
/// Name of the header carrying the send time in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Name of the header carrying the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Prefix of a webhook signing secret as returned by the API.
pub const SECRET_PREFIX: &str = "whsec_";

/// Default allowed clock difference between the sender and the receiver,
/// in both directions: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Length in bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// Version tag of the only signature scheme this module understands.
const SIGNATURE_VERSION: &str = "v1";

/// Why a webhook delivery (or a secret) was rejected.
///
/// Error messages never contain the secret or its key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A required header is absent. Holds the header name.
    #[error("missing webhook header `{0}`")]
    MissingHeader(&'static str),
    /// The `webhook-timestamp` header is not a non-negative integer number
    /// of seconds (or does not fit in an `i64`).
    #[error("invalid webhook timestamp: expected Unix seconds")]
    InvalidTimestamp,
    /// The timestamp is further in the past than the tolerance allows.
    #[error("webhook timestamp is too old")]
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    #[error("webhook timestamp is too far in the future")]
    TimestampTooNew,
    /// The signing secret is malformed: its key part is not valid base64,
    /// or it is empty.
    #[error("invalid webhook secret: expected `whsec_` followed by a base64 key")]
    InvalidSecret,
    /// The response of `GET /v1/webhooks/default/secret` is not a JSON
    /// object with a string `key` field.
    #[error("invalid webhook secret response: expected a JSON object with a string `key`")]
    InvalidSecretResponse,
    /// The `webhook-signature` header holds no parseable `v1,<base64>` entry
    /// (valid base64 of a 32-byte tag); entries of other versions are ignored.
    #[error("malformed webhook signature header: no valid `v1` signature")]
    MalformedSignatureHeader,
    /// The `webhook-signature` header holds `v1` signatures, but none of them
    /// matches the message.
    #[error("no matching webhook signature")]
    NoMatchingSignature,
}

/// A webhook signing secret (the HMAC key).
///
/// Parsed from the `whsec_<base64>` form returned by the API. A string
/// without the `whsec_` prefix is accepted too and decoded as base64 in its
/// entirety. Surrounding ASCII whitespace (for example a trailing newline
/// from an environment variable or a file) is ignored.
///
/// The [`Debug`] output never shows the key: it prints `WebhookSecret(***)`.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    /// HMAC state keyed with `key`, ready to be cloned for each message.
    mac: HmacSha256,
}

impl WebhookSecret {
    /// Parses a secret of the form `whsec_<base64>` (or bare `<base64>`).
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidSecret`] if the key part is not valid
    /// (padded, standard-alphabet) base64 or decodes to nothing.
    pub fn parse(secret: &str) -> Result<Self, WebhookError> {
        let secret = secret.trim_ascii();
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| WebhookError::InvalidSecret)?;
        Self::from_key_bytes(key)
    }

    /// Builds a secret from raw key bytes (the already-decoded key).
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidSecret`] if `key` is empty.
    pub fn from_key_bytes(key: impl Into<Vec<u8>>) -> Result<Self, WebhookError> {
        let key = key.into();
        if key.is_empty() {
            return Err(WebhookError::InvalidSecret);
        }
        // HMAC accepts keys of any length, so this never fails in practice.
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| WebhookError::InvalidSecret)?;
        Ok(Self { key, mac })
    }

    /// Returns the secret in its `whsec_<base64>` form.
    ///
    /// This reveals the key; use it only to hand the secret to something
    /// that needs it (for example a fake server answering
    /// `GET /v1/webhooks/default/secret`), never for logging.
    pub fn expose_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// Computes the raw HMAC-SHA256 tag of `{id}.{timestamp}.{body}`.
    fn tag(&self, id: &[u8], timestamp: &[u8], body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(id);
        mac.update(b".");
        mac.update(timestamp);
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl FromStr for WebhookSecret {
    type Err = WebhookError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Parses the body of the `GET /v1/webhooks/default/secret` response,
/// `{"key": "whsec_..."}`, into a [`WebhookSecret`].
///
/// # Errors
///
/// [`WebhookError::InvalidSecretResponse`] if the body is not a JSON object
/// with a string `key` field; [`WebhookError::InvalidSecret`] if the key
/// itself is malformed.
pub fn parse_default_secret(body: &[u8]) -> Result<WebhookSecret, WebhookError> {
    // Parsed as a `Value` rather than a derived struct, which would also
    // accept a one-element array. The serde error is dropped on purpose: it
    // could quote parts of the body.
    let response: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| WebhookError::InvalidSecretResponse)?;
    let key = response
        .as_object()
        .and_then(|object| object.get("key"))
        .and_then(serde_json::Value::as_str)
        .ok_or(WebhookError::InvalidSecretResponse)?;
    WebhookSecret::parse(key)
}

/// The three webhook headers of one delivery, borrowed from wherever the
/// caller keeps them.
///
/// Build it with [`WebhookHeaders::new`] from strings or with
/// [`WebhookHeaders::from_header_map`] from an [`http::HeaderMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    id: &'a [u8],
    timestamp: &'a [u8],
    signature: &'a [u8],
}

impl<'a> WebhookHeaders<'a> {
    /// Wraps the values of the `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature` headers.
    pub fn new(id: &'a str, timestamp: &'a str, signature: &'a str) -> Self {
        Self::from_bytes(id.as_bytes(), timestamp.as_bytes(), signature.as_bytes())
    }

    /// Like [`WebhookHeaders::new`], for header values that are not
    /// necessarily UTF-8.
    pub fn from_bytes(id: &'a [u8], timestamp: &'a [u8], signature: &'a [u8]) -> Self {
        Self {
            id,
            timestamp,
            signature,
        }
    }

    /// Extracts the three headers from an [`http::HeaderMap`]. If a header
    /// is repeated, its first value is used.
    ///
    /// # Errors
    ///
    /// [`WebhookError::MissingHeader`] naming the first absent header, in the
    /// order `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub fn from_header_map(headers: &'a http::HeaderMap) -> Result<Self, WebhookError> {
        let get = |name: &'static str| {
            headers
                .get(name)
                .map(http::HeaderValue::as_bytes)
                .ok_or(WebhookError::MissingHeader(name))
        };
        Ok(Self {
            id: get(HEADER_ID)?,
            timestamp: get(HEADER_TIMESTAMP)?,
            signature: get(HEADER_SIGNATURE)?,
        })
    }

    /// The raw `webhook-id` value, for example to deduplicate retries.
    pub fn id(&self) -> &'a [u8] {
        self.id
    }
}

/// Verifies a delivery with the [`DEFAULT_TOLERANCE`] of 5 minutes.
///
/// `now_unix` is the current time in Unix seconds.
///
/// # Errors
///
/// See [`verify_with_tolerance`].
pub fn verify(
    secret: &WebhookSecret,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), WebhookError> {
    verify_with_tolerance(secret, headers, body, now_unix, Some(DEFAULT_TOLERANCE))
}

/// Verifies a delivery, allowing the timestamp to differ from `now_unix`
/// by at most `tolerance` in either direction (inclusive).
///
/// A `tolerance` of `None` or of zero disables the timestamp check (the
/// timestamp must still be a valid integer, since it is signed). Sub-second
/// parts of the tolerance are ignored.
///
/// Checks happen in this order: timestamp syntax, timestamp freshness,
/// signature header syntax, signature match.
///
/// # Errors
///
/// - [`WebhookError::InvalidTimestamp`] if the timestamp is not an integer,
/// - [`WebhookError::TimestampTooOld`] / [`WebhookError::TimestampTooNew`]
///   if it is outside the tolerance,
/// - [`WebhookError::MalformedSignatureHeader`] if the signature header has
///   no `v1` entry holding valid base64 of a 32-byte tag,
/// - [`WebhookError::NoMatchingSignature`] if no `v1` entry matches.
pub fn verify_with_tolerance(
    secret: &WebhookSecret,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    now_unix: i64,
    tolerance: Option<Duration>,
) -> Result<(), WebhookError> {
    let timestamp = parse_timestamp(headers.timestamp)?;
    check_tolerance(timestamp, now_unix, tolerance)?;

    let candidates = v1_signatures(headers.signature);
    if candidates.is_empty() {
        return Err(WebhookError::MalformedSignatureHeader);
    }
    let expected = secret.tag(headers.id, headers.timestamp, body);
    // Each comparison is constant-time; stopping at the first match only
    // reveals which attacker-supplied entry matched, nothing about the key.
    if candidates
        .iter()
        .any(|candidate| bool::from(expected[..].ct_eq(candidate)))
    {
        Ok(())
    } else {
        Err(WebhookError::NoMatchingSignature)
    }
}

/// Verifies a delivery whose headers are in an [`http::HeaderMap`], with the
/// [`DEFAULT_TOLERANCE`].
///
/// # Errors
///
/// [`WebhookError::MissingHeader`] if a header is absent, otherwise as
/// [`verify_with_tolerance`].
pub fn verify_http(
    secret: &WebhookSecret,
    headers: &http::HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), WebhookError> {
    verify_http_with_tolerance(secret, headers, body, now_unix, Some(DEFAULT_TOLERANCE))
}

/// Verifies a delivery (its headers and raw body, at `now_unix`) and returns the prediction it
/// carries: the one call a webhook receiver needs. A signature that does not check out is
/// [`Error::Webhook`](crate::Error::Webhook); a verified body that is not a prediction,
/// [`Error::Decode`](crate::Error::Decode). The clients offer it with the system clock
/// (`Client::verify_webhook`).
///
/// ```
/// use replicate_protocol::webhook::{WebhookSecret, sign, verify_prediction};
/// let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let body = br#"{"id":"p1","status":"succeeded","output":"hi"}"#;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("webhook-id", "msg_1".parse()?);
/// headers.insert("webhook-timestamp", "1700000000".parse()?);
/// headers.insert("webhook-signature", sign(&secret, "msg_1", 1_700_000_000, body).parse()?);
/// let p = verify_prediction(&secret, &headers, body, 1_700_000_010)?;
/// assert_eq!(p.id, "p1");
/// assert!(verify_prediction(&secret, &headers, b"{}", 1_700_000_010).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_prediction(
    secret: &WebhookSecret,
    headers: &http::HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<crate::Prediction, crate::Error> {
    verify_http(secret, headers, body, now_unix).map_err(crate::Error::Webhook)?;
    serde_json::from_slice(body).map_err(|e| crate::Error::decode(200, e, body))
}

/// Verifies a delivery whose headers are in an [`http::HeaderMap`], with a
/// custom tolerance (`None` or zero disables the timestamp check).
///
/// # Errors
///
/// [`WebhookError::MissingHeader`] if a header is absent, otherwise as
/// [`verify_with_tolerance`].
pub fn verify_http_with_tolerance(
    secret: &WebhookSecret,
    headers: &http::HeaderMap,
    body: &[u8],
    now_unix: i64,
    tolerance: Option<Duration>,
) -> Result<(), WebhookError> {
    let headers = WebhookHeaders::from_header_map(headers)?;
    verify_with_tolerance(secret, &headers, body, now_unix, tolerance)
}

/// Signs a delivery: returns the `webhook-signature` header value
/// `v1,<base64>` for the given id, timestamp (Unix seconds) and body.
///
/// A negative `timestamp` yields a signature that [`verify`] rejects with
/// [`WebhookError::InvalidTimestamp`].
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.tag(id.as_bytes(), timestamp.to_string().as_bytes(), body);
    format!("{SIGNATURE_VERSION},{}", STANDARD.encode(tag))
}

/// A reusable verifier: a secret plus a timestamp tolerance.
///
/// ```
/// use std::time::Duration;
/// use replicate_protocol::webhook::{Verifier, WebhookSecret};
///
/// let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// // `--tolerance 0` on a command line maps to `Some(Duration::ZERO)`: no check.
/// let verifier = Verifier::new(secret).with_tolerance(Some(Duration::ZERO));
/// let mut headers = http::HeaderMap::new();
/// headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap());
/// headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
/// headers.insert(
///     "webhook-signature",
///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".parse().unwrap(),
/// );
/// // Years later, still accepted because the tolerance is disabled.
/// verifier.verify_http(&headers, br#"{"test": 2432232314}"#, 1_900_000_000)?;
/// # Ok::<(), replicate_protocol::webhook::WebhookError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    secret: WebhookSecret,
    tolerance: Option<Duration>,
}

impl Verifier {
    /// Creates a verifier with the [`DEFAULT_TOLERANCE`].
    pub fn new(secret: WebhookSecret) -> Self {
        Self {
            secret,
            tolerance: Some(DEFAULT_TOLERANCE),
        }
    }

    /// Sets the timestamp tolerance; `None` or zero disables the check.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Option<Duration>) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The secret this verifier checks signatures against.
    pub fn secret(&self) -> &WebhookSecret {
        &self.secret
    }

    /// Verifies a delivery; see [`verify_with_tolerance`].
    ///
    /// # Errors
    ///
    /// As [`verify_with_tolerance`].
    pub fn verify(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), WebhookError> {
        verify_with_tolerance(&self.secret, headers, body, now_unix, self.tolerance)
    }

    /// Verifies a delivery whose headers are in an [`http::HeaderMap`].
    ///
    /// # Errors
    ///
    /// As [`verify_http_with_tolerance`].
    pub fn verify_http(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), WebhookError> {
        verify_http_with_tolerance(&self.secret, headers, body, now_unix, self.tolerance)
    }
}

/// Converts a [`SystemTime`] to whole Unix seconds (negative before 1970,
/// saturating at the `i64` range). A convenience for callers, who read the
/// clock themselves.
pub fn unix_timestamp(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let secs = before.duration().as_secs();
            // Round towards negative infinity for a partial second.
            let secs = if before.duration().subsec_nanos() > 0 {
                secs.saturating_add(1)
            } else {
                secs
            };
            i64::try_from(secs).map_or(i64::MIN, |s| -s)
        }
    }
}

/// Parses the timestamp header: ASCII digits only, fitting in an `i64`.
fn parse_timestamp(raw: &[u8]) -> Result<i64, WebhookError> {
    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
        return Err(WebhookError::InvalidTimestamp);
    }
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(WebhookError::InvalidTimestamp)
}

fn check_tolerance(
    timestamp: i64,
    now_unix: i64,
    tolerance: Option<Duration>,
) -> Result<(), WebhookError> {
    let Some(tolerance) = tolerance.filter(|t| !t.is_zero()) else {
        return Ok(());
    };
    // i128 holds every difference of two i64s and every u64 tolerance.
    let tolerance = i128::from(tolerance.as_secs());
    let age = i128::from(now_unix) - i128::from(timestamp);
    if age > tolerance {
        Err(WebhookError::TimestampTooOld)
    } else if -age > tolerance {
        Err(WebhookError::TimestampTooNew)
    } else {
        Ok(())
    }
}

/// Decodes every `v1,<base64>` entry of the signature header, skipping other
/// versions, entries that are not valid base64 and entries that do not decode
/// to a 32-byte HMAC-SHA256 tag.
fn v1_signatures(header: &[u8]) -> Vec<Vec<u8>> {
    header
        .split(u8::is_ascii_whitespace)
        .filter_map(|entry| {
            let comma = entry.iter().position(|&b| b == b',')?;
            let (version, rest) = entry.split_at(comma);
            if version != SIGNATURE_VERSION.as_bytes() {
                return None;
            }
            STANDARD
                .decode(rest.get(1..)?)
                .ok()
                .filter(|tag| tag.len() == TAG_LEN)
        })
        .collect()
}
