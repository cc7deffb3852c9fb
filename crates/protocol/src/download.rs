//! Fetching an output: who receives the token, redirects, expired links, size and progress
//! limits, retries — all of it in [`Download`], a [`Flow`] that yields the body in chunks.
//!
//! # Who receives the API token
//!
//! [`download_request`] sends `Authorization` **only** when the URL is on the same origin
//! (scheme, host and port) as the configured API base URL — the API's own
//! `/v1/files/{id}/download`, or a proxy that serves outputs under its own origin, which already
//! receives the token. Output hosts never receive it: an output URL is data from a response body,
//! and Replicate's delivery URLs need no token. Redirects are followed by the flow (at most
//! [`DownloadLimits::max_redirects`]), each hop deciding again, and once a hop has left the API
//! origin no later hop of the chain gets the token, even one that comes back to it.
//!
//! # Resuming
//!
//! A failed attempt (a reset connection, a cut body, an idle or minimum-progress timeout, a 5xx)
//! is retried by the [`RetryPolicy`], with its usual count and backoff. When it failed after
//! some bytes of a body whose `200` response had `Accept-Ranges: bytes` and no
//! `Content-Encoding`, the retry *resumes*: it goes to the hop that served the body (the last
//! URL of the redirect chain, which gets the token only if it had it: on the API origin, and no
//! hop of the chain before it had left the origin) with `Range: bytes={received}-`,
//! `Accept-Encoding: identity` and `If-Range`: the response's strong `ETag`, or, without one, its
//! `Last-Modified` when that is a strong validator (the `Date` at least a second later), or no
//! `If-Range` at all. Resumes count as retries. The answer decides:
//!
//! - `206 Partial Content` whose `Content-Range` starts at `received` and runs to the end of the
//!   complete length (known from the first `Content-Length` or from the `Content-Range`; both
//!   must agree), with a `Content-Length` (if any) that agrees, no `Content-Encoding`, and the
//!   same `ETag` / `Last-Modified` (if any): the body continues, no [`DownloadItem::Restart`].
//! - `200`: the range was ignored or the validator did not match: a [`DownloadItem::Restart`],
//!   then the whole body (which may be resumed in turn).
//! - 429 or 5xx: a failed attempt again, retried (and resumed) under the same policy.
//! - Anything else (`416`, a `206` that does not fit, a 403 from an expired signed link...):
//!   the download starts over from the original URL at once (a [`DownloadItem::Restart`] if
//!   bytes were received), counted as a retry, and never sends `Range` again: this happens at
//!   most once.
//!
//! (A driver that decodes a coded body itself and drops `Content-Encoding` makes the flow count
//! decoded bytes; the resume then asks for the identity representation from that offset, whose
//! validator a correct server does not share with the coded one: a `200`, so a restart.)
//!
//! A body whose complete length is known must arrive whole: one that ends early is a failed
//! attempt ([`TransportErrorKind::Io`]), retried (resumed) like a broken connection.
//!
//! # Verifying
//!
//! The body's SHA-256 is computed as it passes (constant memory; across a resume the hash
//! continues, and a [`DownloadItem::Restart`] starts it again) when there is something to check
//! it against:
//!
//! - the caller's digest, [`Download::expect_sha256`] (e.g. a file's `checksums.sha256`,
//!   [`FileChecksums::sha256_digest`](crate::api::FileChecksums::sha256_digest));
//! - else the response's `ETag`, when it is strong, 64 hex digits in quotes, the body is not
//!   content-coded, and the rule allows it: [`Download::verify_etag_sha256`]`(true)` for any
//!   host, `(false)` never; by default only for the API's own `{base}/v1/files/{id}/download`
//!   served by the API origin with the token (its `ETag` is the content's SHA-256). Other hosts'
//!   `ETag`s are opaque (S3's are MD5s or multipart hashes): by default they are never checked.
//!
//! A mismatch ends the download with [`OutputErrorKind::ChecksumMismatch`], whose message names
//! the expected and the actual digests; it is not retried, except once when the body was
//! assembled from resumed pieces: then it is downloaded once more whole, from the original URL
//! and without `Range` (a [`DownloadItem::Restart`] first). [`Downloaded::sha256`] is the digest
//! when it was checked.
//!
//! # Bounds
//!
//! - Size: [`DownloadLimits::max_bytes`] for the whole body, resumed pieces included (a `206`'s
//!   `Content-Length` is the remaining length, checked with what was received:
//!   [`DownloadLimits::check_remaining_length`]); over it, the download ends, not retried.
//! - Redirects: [`DownloadLimits::max_redirects`] per chain (each attempt is a new chain).
//! - Time: the client's idle timeout, and [`DownloadLimits::min_progress`].
//! - Attempts: the [`RetryPolicy`] (resumes included), plus at most one immediate start over
//!   without `Range` (an unusable answer to a resume, or a resumed body's checksum mismatch).
//!
//! # Driving it
//!
//! ```
//! use std::time::Instant;
//! use http::{HeaderMap, StatusCode};
//! use replicate_protocol::download::{Download, DownloadItem};
//! use replicate_protocol::{Config, Flow, Step};
//!
//! let cfg = Config::new("r8_token");
//! let mut download = Download::new(&cfg, "https://replicate.delivery/x/out-0.png")?;
//! let now = Instant::now();
//! let Step::Send(out) = download.poll(now) else { unreachable!() };
//! // An output host: no token.
//! assert!(out.request.headers().get("authorization").is_none());
//! download.handle_head(StatusCode::OK, &HeaderMap::new(), now);
//! assert!(matches!(download.poll(now), Step::Receive));
//! download.handle_chunk(b"\x89PNG", now);
//! assert!(matches!(download.poll(now), Step::Yield(DownloadItem::Chunk(c)) if c == b"\x89PNG"));
//! download.handle_end(now);
//! let Step::Done(Ok(done)) = download.poll(now) else { unreachable!() };
//! assert_eq!(done.bytes, 4);
//! # Ok::<(), replicate_protocol::Error>(())
//! ```

use std::borrow::Cow;
use std::time::Instant;

use http::header::{
    ACCEPT, ACCEPT_ENCODING, ACCEPT_RANGES, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, DATE, ETAG, IF_RANGE, LAST_MODIFIED, LOCATION, RANGE, USER_AGENT,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::config::{bearer, check_url};
use crate::endpoint::RetryClass;
use crate::error::{ApiError, OutputErrorKind};
use crate::flow::{Flow, Outgoing, SleepReason, Step, check_announced_length};
use crate::output::{FileNames, OutputRef, has_prefix_ignore_case, short};
use crate::retry::RetryPolicy;
use crate::{Config, Error, Prediction, TransportError, TransportErrorKind};

/// The default cap on one downloaded output: 512 MiB (videos can be large, and a cap protects
/// the disk and memory from a runaway body).
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// The default number of redirects a download follows.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// Size, redirect and progress limits of a download (every other bound is in the
/// [module documentation](self#bounds)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// The largest body accepted, in bytes (after content decoding): the whole body, however
    /// many resumed attempts it took.
    pub max_bytes: u64,
    /// How many redirects are followed.
    pub max_redirects: u32,
    /// The minimum progress of a body: at least this many bytes in every window of this length
    /// (default [`DEFAULT_MIN_PROGRESS`]: 4 KiB per 30 s), else the attempt fails as a timeout.
    /// With the idle timeout (no byte at all for the client's timeout), it bounds the time a
    /// download can take: at most `max_bytes / (bytes per window)` windows. `None` disables it.
    pub min_progress: Option<(u64, std::time::Duration)>,
}

/// The default minimum download progress: 4 KiB in every 30 s.
pub const DEFAULT_MIN_PROGRESS: (u64, std::time::Duration) =
    (4096, std::time::Duration::from_secs(30));

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            max_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            min_progress: Some(DEFAULT_MIN_PROGRESS),
        }
    }
}

impl DownloadLimits {
    /// The error of a body over the limit: a transport error of kind
    /// [`TransportErrorKind::BodyTooLarge`].
    pub fn too_large(&self) -> Error {
        Error::Transport(TransportError::new(
            TransportErrorKind::BodyTooLarge,
            format!(
                "the output is larger than the download limit of {} bytes",
                self.max_bytes
            ),
        ))
    }

    /// Fails before reading when the head announces a body over the limit (the one rule of
    /// [`check_announced_length`], which allows for `Content-Encoding`).
    pub fn check_content_length(&self, headers: &HeaderMap) -> Result<(), Error> {
        check_announced_length(headers, self.max_bytes).map_err(|_| self.too_large())
    }

    /// For a `206 Partial Content` continuing a body after its first `received` bytes: fails
    /// before reading when `received` plus the announced remaining length (`Content-Length`) is
    /// over the limit; the same rule as [`DownloadLimits::check_content_length`] otherwise.
    pub fn check_remaining_length(&self, received: u64, headers: &HeaderMap) -> Result<(), Error> {
        let room = self.max_bytes.saturating_sub(received);
        check_announced_length(headers, room).map_err(|_| self.too_large())
    }

    /// Fails once `received` bytes exceed the limit (call it as bytes arrive).
    pub fn check_received(&self, received: u64) -> Result<(), Error> {
        if received > self.max_bytes {
            Err(self.too_large())
        } else {
            Ok(())
        }
    }
}

/// The `GET` request of an output URL (or of a redirect hop).
///
/// It carries `User-Agent` and `Accept: */*`, and `Authorization` only when `url` is on the
/// same origin as the API base URL (see the [module documentation](self)). A `data:` URI is
/// refused: it holds its content already ([`OutputRef::parse`]).
pub fn download_request(cfg: &Config, url: &str) -> Result<Request<Vec<u8>>, Error> {
    download_request_with(cfg, url, true)
}

/// [`download_request`], where `may_send_token: false` keeps the token off even on the API's
/// origin (a redirect hop of a chain that started elsewhere).
pub fn download_request_with(
    cfg: &Config,
    url: &str,
    may_send_token: bool,
) -> Result<Request<Vec<u8>>, Error> {
    if has_prefix_ignore_case(url.trim(), "data:") {
        return Err(Error::InvalidInput(
            "a data: URI holds its content; decode it with OutputRef::parse instead of downloading it"
                .to_owned(),
        ));
    }
    check_url(url)?;
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(url)
        .header(ACCEPT, HeaderValue::from_static("*/*"));
    if let Ok(ua) = HeaderValue::try_from(cfg.user_agent()) {
        builder = builder.header(USER_AGENT, ua);
    }
    if may_send_token && cfg.base_url().is_same_origin(url) {
        builder = builder.header(AUTHORIZATION, bearer(cfg)?);
    }
    builder
        .body(Vec::new())
        .map_err(|e| Error::InvalidInput(format!("cannot build the download request: {e}")))
}

/// When a response is a redirect (301, 302, 303, 307, 308), the absolute URL to fetch next
/// (relative `Location`s resolved against `current`): `Some(Ok(url))`; `Some(Err(_))` for a
/// redirect without a usable `Location`; `None` for any other status.
pub fn redirect_location(
    current: &str,
    status: StatusCode,
    headers: &HeaderMap,
) -> Option<Result<String, Error>> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let bad = |why: &str| {
        Some(Err(Error::output(
            OutputErrorKind::Redirect,
            format!(
                "the output host answered a redirect (HTTP {}) {why}",
                status.as_u16()
            ),
        )))
    };
    let Some(location) = headers.get(LOCATION).and_then(|l| l.to_str().ok()) else {
        return bad("without a usable Location");
    };
    let location = location.trim();
    let resolved = if has_prefix_ignore_case(location, "http://")
        || has_prefix_ignore_case(location, "https://")
    {
        location.to_owned()
    } else {
        let Ok(base) = check_url(current) else {
            return bad("from an invalid URL");
        };
        let scheme = base.scheme_str().unwrap_or("https");
        let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
        if let Some(rest) = location.strip_prefix("//") {
            format!("{scheme}://{rest}")
        } else if location.starts_with('/') {
            format!("{scheme}://{authority}{location}")
        } else if has_scheme(location) {
            return bad(&format!("to an unsupported location {:?}", short(location)));
        } else {
            let dir = base
                .path()
                .rsplit_once('/')
                .map(|(d, _)| d)
                .unwrap_or_default();
            format!("{scheme}://{authority}{dir}/{location}")
        }
    };
    match check_url(&resolved) {
        Ok(_) => Some(Ok(resolved)),
        Err(_) => bad(&format!("to an unsupported location {:?}", short(location))),
    }
}

/// Whether a URI reference starts with a scheme (`mailto:`, `file:`, ...).
fn has_scheme(reference: &str) -> bool {
    match reference.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Maps a download's status to an error; `Ok(())` for 2xx.
///
/// - 403, 404, 410: the link expired or the file was removed ([`Error::Output`] saying so, with
///   what `prediction` tells about it).
/// - 429, 5xx: [`Error::Api`] carrying the status and `Retry-After`, which
///   [`RetryPolicy::decide`](crate::RetryPolicy::decide) retries like any idempotent request.
/// - A redirect that reached this point (too many, or not followed): [`Error::Output`].
/// - Anything else: [`Error::Output`] with the status.
pub fn check_download_response(
    status: StatusCode,
    headers: &HeaderMap,
    prediction: Option<&Prediction>,
) -> Result<(), Error> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    Err(match code {
        403 | 404 | 410 => {
            let mut msg = format!(
                "output link expired or removed (HTTP {code} from the output host): outputs are \
                 kept about one hour after the prediction finished"
            );
            if let Some(p) = prediction {
                msg.push_str(&format!(
                    " (prediction {}: data_removed {}",
                    p.id, p.data_removed
                ));
                if let Some(done) = p.completed_at {
                    msg.push_str(&format!(", completed at {done}"));
                }
                msg.push(')');
            }
            msg.push_str("; get the prediction again, or run the model again");
            Error::output(OutputErrorKind::Expired, msg)
        }
        429 | 500..=599 => Error::Api(Box::new(ApiError::from_response(status, headers, &[]))),
        300..=399 => Error::output(
            OutputErrorKind::Redirect,
            format!(
                "the output host answered a redirect (HTTP {code}) that was not followed (too many redirects?)"
            ),
        ),
        _ => Error::output(
            OutputErrorKind::Status(code),
            format!("the output host answered HTTP {code}"),
        ),
    })
}

/// What a [`Download`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadItem {
    /// The next bytes of the body. After a resumed attempt (see the
    /// [module documentation](self#resuming)) the chunks simply continue where they stopped.
    Chunk(Vec<u8>),
    /// An attempt failed after some bytes and is retried from the start (it could not be
    /// resumed, or the resume was answered with the whole body): drop what was received.
    Restart,
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The response's `Content-Type`, when it had a readable one.
    pub content_type: Option<String>,
    /// How many bytes the body had.
    pub bytes: u64,
    /// How many times an attempt cut short was continued with a `Range` request (each one also
    /// counted as a retry).
    pub resumed: u32,
    /// The SHA-256 of the body, when it was computed to check an expected digest (and then
    /// matched it): [`Download::expect_sha256`], or an `ETag` taken as one (see the
    /// [module documentation](self#verifying)).
    pub sha256: Option<Sha256Digest>,
}

/// A SHA-256 digest: 32 bytes, shown (and parsed) as 64 hex digits.
///
/// ```
/// use replicate_protocol::download::Sha256Digest;
///
/// let d: Sha256Digest = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855".parse()?;
/// assert_eq!(d, Sha256Digest::of(b""));
/// assert_eq!(d.to_string(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
/// assert!("not hex".parse::<Sha256Digest>().is_err());
/// # Ok::<(), replicate_protocol::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Parses 64 hex digits (either case; surrounding whitespace ignored).
    pub fn from_hex(hex: &str) -> Result<Self, Error> {
        let hex = hex.trim();
        let bad = || {
            Error::InvalidInput(format!(
                "a SHA-256 digest is 64 hex digits, not {:?}",
                short(hex)
            ))
        };
        let digits = hex.as_bytes();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or_else(bad)?;
            let lo = hex_value(pair[1]).ok_or_else(bad)?;
            *byte = (hi << 4) | lo;
        }
        Ok(Sha256Digest(out))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl From<[u8; 32]> for Sha256Digest {
    fn from(bytes: [u8; 32]) -> Self {
        Sha256Digest(bytes)
    }
}

impl std::str::FromStr for Sha256Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Sha256Digest::from_hex(s)
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

/// Whether a response's body is content-coded (`Content-Encoding` other than `identity`): its
/// length and byte offsets are then those of the coded bytes, not of what the flow receives.
fn is_encoded(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"))
}

/// A header as trimmed text.
fn header_str<'h>(headers: &'h HeaderMap, name: &http::HeaderName) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A decimal number of bytes (digits only: no sign, no space inside).
fn parse_length(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A strong entity tag: a quoted string without the `W/` prefix.
fn strong_etag(headers: &HeaderMap) -> Option<&str> {
    let tag = header_str(headers, &ETAG)?;
    let quoted = tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"');
    (quoted && !tag[1..tag.len() - 1].contains('"')).then_some(tag)
}

/// The digest a strong `ETag` of 64 quoted hex digits names, when it is one.
fn etag_digest(tag: &str) -> Option<Sha256Digest> {
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    (inner.len() == 64)
        .then(|| Sha256Digest::from_hex(inner).ok())
        .flatten()
}

/// `Last-Modified` when it is a strong validator (RFC 9110 section 8.8.2.2): the response's
/// `Date` is at least one second after it.
fn strong_last_modified(headers: &HeaderMap) -> Option<&str> {
    let modified = header_str(headers, &LAST_MODIFIED)?;
    let date = httpdate::parse_http_date(header_str(headers, &DATE)?).ok()?;
    let at = httpdate::parse_http_date(modified).ok()?;
    (date.duration_since(at).ok()? >= std::time::Duration::from_secs(1)).then_some(modified)
}

/// Whether `Accept-Ranges` lists `bytes`.
fn accepts_byte_ranges(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT_RANGES).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|u| u.trim().eq_ignore_ascii_case("bytes")))
    })
}

/// A `Content-Range: bytes first-last/complete` (`complete` may be `*`).
fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let value = value.trim();
    let unit = value.get(..6)?;
    if !unit.eq_ignore_ascii_case("bytes ") {
        return None;
    }
    let (range, complete) = value[6..].trim_start().split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last) = (parse_length(first)?, parse_length(last)?);
    let complete = match complete.trim() {
        "*" => None,
        n => Some(parse_length(n)?),
    };
    (first <= last && complete.is_none_or(|c| last < c)).then_some((first, last, complete))
}

/// Whether `url`'s path is `{base prefix}/v1/files/{id}/download` of the API (the API's own file
/// download, whose `ETag` is the content's SHA-256).
fn is_api_file_download(cfg: &Config, url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let Some(rest) = uri
        .path()
        .strip_prefix(cfg.base_url().prefix())
        .and_then(|p| p.strip_prefix("/v1/files/"))
    else {
        return false;
    };
    rest.strip_suffix("/download")
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// How the current body may be continued after a cut.
#[derive(Debug, Clone)]
struct Resume {
    /// The strong `ETag` of the body's response, which a `206` must repeat when it has one.
    etag: Option<String>,
    /// What is sent as `If-Range`: the strong `ETag`, else a strong `Last-Modified`.
    if_range: Option<String>,
    /// The `Last-Modified` sent as `If-Range`, which a `206` must repeat when it has one.
    last_modified: Option<String>,
}

impl Resume {
    /// The resume rule of a body's `200` head, `None` when it cannot be resumed.
    fn of(headers: &HeaderMap) -> Option<Resume> {
        if !accepts_byte_ranges(headers) || is_encoded(headers) {
            return None;
        }
        let etag = strong_etag(headers).map(str::to_owned);
        let last_modified = match etag {
            Some(_) => None,
            None => strong_last_modified(headers).map(str::to_owned),
        };
        Some(Resume {
            if_range: etag.clone().or_else(|| last_modified.clone()),
            etag,
            last_modified,
        })
    }
}

#[derive(Debug)]
enum State {
    /// The next attempt or hop, not before this instant.
    Ready(Option<Instant>),
    /// A request is out; its head is awaited.
    Head,
    /// The body is being read.
    Body,
    Done(Option<Result<Downloaded, Error>>),
}

/// One output download as a [`Flow`]: redirects followed by hand (each hop deciding again
/// whether it may carry the token), the status, size and progress checks, retries by the
/// shared [`RetryPolicy`] (resumed with `Range` when the server allows it), and an optional
/// SHA-256 check. It yields the body in [`DownloadItem::Chunk`]s and ends with [`Downloaded`].
/// Every request is [streamed](crate::flow::BodyRead::Streamed) under an idle timeout: a
/// download may rightly take minutes, but not go silent, and not drip (see
/// [`DownloadLimits::min_progress`]). See the [module documentation](self) for every rule.
#[derive(Debug)]
pub struct Download {
    cfg: Config,
    start: String,
    url: String,
    limits: DownloadLimits,
    retry: RetryPolicy,
    prediction: Option<Box<Prediction>>,
    redirects: u32,
    retries: u32,
    received: u64,
    left_origin: bool,
    window: Option<(Instant, u64)>,
    content_type: Option<String>,
    pending: Option<Vec<u8>>,
    restart: bool,
    rng: fastrand::Rng,
    state: State,
    /// The hop that served the current body, and whether its chain had left the API origin.
    body_url: String,
    body_left_origin: bool,
    /// How the current body may be resumed; `None` when it cannot.
    resume: Option<Resume>,
    /// The request out (or about to be) asks for the body from this byte on.
    resume_from: Option<u64>,
    /// The complete length of the body, when known.
    total: Option<u64>,
    /// Whether the current body was continued at least once since it started.
    stitched: bool,
    /// How many times a body was continued.
    resumes: u32,
    /// Set once a resume was answered unusably: no `Range` is sent any more.
    range_disabled: bool,
    /// The caller's expected SHA-256.
    expected: Option<Sha256Digest>,
    /// `Some(on)`: whether a content-hash `ETag` is checked, set by the caller.
    verify_etag: Option<bool>,
    /// The SHA-256 the current body's `ETag` names, when it is checked.
    etag_sha256: Option<Sha256Digest>,
    /// The hash of the current body so far, while something is to be checked.
    hasher: Option<Sha256>,
}

impl Download {
    /// A download of `url` (an absolute `http(s)` URL; a `data:` URI holds its content already,
    /// see [`OutputRef::parse`]) with the default limits and retry policy.
    pub fn new(cfg: &Config, url: &str) -> Result<Self, Error> {
        // Fails early on a data: URI or an unusable URL.
        download_request(cfg, url)?;
        let left_origin = !cfg.base_url().is_same_origin(url);
        Ok(Download {
            cfg: cfg.clone(),
            start: url.to_owned(),
            url: url.to_owned(),
            limits: DownloadLimits::default(),
            retry: RetryPolicy::default(),
            prediction: None,
            redirects: 0,
            retries: 0,
            received: 0,
            left_origin,
            window: None,
            content_type: None,
            pending: None,
            restart: false,
            rng: fastrand::Rng::new(),
            state: State::Ready(None),
            body_url: url.to_owned(),
            body_left_origin: left_origin,
            resume: None,
            resume_from: None,
            total: None,
            stitched: false,
            resumes: 0,
            range_disabled: false,
            expected: None,
            verify_etag: None,
            etag_sha256: None,
            hasher: None,
        })
    }

    /// The same download under these limits.
    pub fn limits(mut self, limits: DownloadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same download, retried with `policy`.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The prediction the output belongs to, so that an expired link is explained with it.
    pub fn for_prediction(mut self, prediction: &Prediction) -> Self {
        self.prediction = Some(Box::new(prediction.clone()));
        self
    }

    /// The same download, whose body must have this SHA-256 (a file's `checksums.sha256`, see
    /// [`FileChecksums::sha256_digest`](crate::api::FileChecksums::sha256_digest)); otherwise it
    /// ends with [`OutputErrorKind::ChecksumMismatch`]. See the
    /// [module documentation](self#verifying).
    pub fn expect_sha256(mut self, digest: impl Into<Sha256Digest>) -> Self {
        self.expected = Some(digest.into());
        self
    }

    /// [`Download::expect_sha256`] with the digest in hex (64 digits, either case); an
    /// [`Error::InvalidInput`] if it is not one.
    pub fn expect_sha256_hex(self, hex: &str) -> Result<Self, Error> {
        Ok(self.expect_sha256(Sha256Digest::from_hex(hex)?))
    }

    /// Whether a strong `ETag` of 64 quoted hex digits is taken as the body's SHA-256 and
    /// checked: `true` for any host, `false` never. Without this call, only for the API's own
    /// `/v1/files/{id}/download` served on the API origin (see the
    /// [module documentation](self#verifying)).
    pub fn verify_etag_sha256(mut self, on: bool) -> Self {
        self.verify_etag = Some(on);
        self
    }

    /// The SHA-256 the body is checked against: the caller's
    /// ([`Download::expect_sha256`]), else the one the current body's `ETag` names when it is
    /// checked (known once the body's head arrived).
    pub fn expected_sha256(&self) -> Option<Sha256Digest> {
        self.expected.or(self.etag_sha256)
    }

    /// The URL of the current hop.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many retries were scheduled so far (resumes included).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The next bytes of the body: counted, hashed, and handed out (without a copy when they
    /// are owned and nothing is pending).
    fn take_chunk(&mut self, chunk: Cow<'_, [u8]>, now: Instant) {
        if !matches!(self.state, State::Body) {
            return;
        }
        match self.count(chunk.len(), now) {
            Ok(()) => {
                if let Some(hasher) = &mut self.hasher {
                    hasher.update(&chunk);
                }
                match &mut self.pending {
                    Some(pending) => pending.extend_from_slice(&chunk),
                    None => self.pending = Some(chunk.into_owned()),
                }
            }
            Err(e) => self.fail(e, now),
        }
    }

    /// The length of the whole body, once a response announced it (its `Content-Length`, or a
    /// range's total); `None` before, or for a content-coded body.
    pub fn expected_len(&self) -> Option<u64> {
        self.total
    }

    /// How many times a cut body was continued with a `Range` request so far.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    /// The bytes of the body received so far: since the start, or since the last
    /// [`DownloadItem::Restart`] (a resumed attempt continues the count).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the request of the current hop carries the API token.
    pub fn sends_token(&self) -> bool {
        !self.left_origin && self.cfg.base_url().is_same_origin(&self.url)
    }

    /// The request of the current hop ([`download_request_with`]: the token only for the API's
    /// origin, and only while no earlier hop of the chain left it). A resumed attempt also
    /// carries `Range: bytes={received}-`, `If-Range` (when there is a strong validator) and
    /// `Accept-Encoding: identity`.
    pub fn request(&self) -> Result<Request<Vec<u8>>, Error> {
        let mut request = download_request_with(&self.cfg, &self.url, !self.left_origin)?;
        if let Some(from) = self.resume_from {
            let headers = request.headers_mut();
            let range = HeaderValue::try_from(format!("bytes={from}-"))
                .map_err(|_| Error::InvalidState("unusable Range header"))?;
            headers.insert(RANGE, range);
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            if let Some(tag) = self.resume.as_ref().and_then(|r| r.if_range.as_deref())
                && let Ok(value) = HeaderValue::from_str(tag)
            {
                headers.insert(IF_RANGE, value);
            }
        }
        Ok(request)
    }

    /// Counts a chunk against the cap and the minimum-progress rule.
    fn count(&mut self, len: usize, now: Instant) -> Result<(), Error> {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        self.received = self.received.saturating_add(len);
        self.limits.check_received(self.received)?;
        let Some((min_bytes, window)) = self.limits.min_progress else {
            return Ok(());
        };
        let (start, bytes) = self.window.get_or_insert((now, 0));
        *bytes = bytes.saturating_add(len);
        let elapsed = now.saturating_duration_since(*start);
        if elapsed >= window {
            if *bytes < min_bytes {
                return Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!(
                        "the download made too little progress: {bytes} bytes in {elapsed:?} (the minimum is {min_bytes} bytes per {window:?})"
                    ),
                )));
            }
            self.window = Some((now, 0));
        }
        Ok(())
    }

    /// Drops the body received so far (a [`DownloadItem::Restart`] when there was some) and what
    /// was known about it.
    fn start_over(&mut self) {
        self.restart |= self.received > 0;
        self.received = 0;
        self.pending = None;
        self.hasher = None;
        self.resume = None;
        self.resume_from = None;
        self.total = None;
        self.stitched = false;
        self.etag_sha256 = None;
    }

    /// The next request goes to the original URL, as a new redirect chain.
    fn back_to_start(&mut self) {
        self.url.clone_from(&self.start);
        self.redirects = 0;
        self.left_origin = !self.cfg.base_url().is_same_origin(&self.start);
        self.resume_from = None;
        self.window = None;
    }

    /// A resume answered unusably (or a stitched body failed its checksum): download again from
    /// the start, at once and never with `Range` again. Counted as a retry; happens at most once,
    /// since it disables ranges.
    fn start_over_without_range(&mut self) -> State {
        self.range_disabled = true;
        self.retries += 1;
        self.start_over();
        self.back_to_start();
        State::Ready(None)
    }

    /// A failed attempt: after a delay, resumed from the hop that served the body when it can
    /// be, else retried from the original URL; or the end.
    fn fail(&mut self, error: Error, now: Instant) {
        let retryable =
            !matches!(&error, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge);
        let delay = retryable
            .then(|| {
                self.retry
                    .decide(RetryClass::Idempotent, self.retries, &error)
            })
            .flatten()
            .map(|d| self.retry.jittered(d, self.retries, &error, self.rng.f64()))
            .and_then(|d| now.checked_add(d));
        let Some(at) = delay else {
            self.state = State::Done(Some(Err(error.redact(self.cfg.token().expose()))));
            return;
        };
        self.retries += 1;
        if self.received > 0 && self.resume.is_some() && !self.range_disabled {
            // Bytes received so far (even the pending ones) are kept, and so is the hash.
            self.resume_from = Some(self.received);
            self.url.clone_from(&self.body_url);
            self.left_origin = self.body_left_origin;
            self.redirects = 0;
            self.window = None;
        } else {
            self.start_over();
            self.back_to_start();
        }
        self.state = State::Ready(Some(at));
    }

    /// The head of the current hop: a redirect to follow, or a body to read once its status and
    /// announced length are acceptable.
    fn head(&mut self, status: StatusCode, headers: &HeaderMap) -> Result<State, Error> {
        if let Some(next) = redirect_location(&self.url, status, headers) {
            self.redirects += 1;
            if self.redirects > self.limits.max_redirects {
                return Err(Error::output(
                    OutputErrorKind::Redirect,
                    format!(
                        "too many redirects (more than {}) downloading an output",
                        self.limits.max_redirects
                    ),
                ));
            }
            self.url = next?;
            if !self.cfg.base_url().is_same_origin(&self.url) {
                self.left_origin = true;
            }
            return Ok(State::Ready(None));
        }
        match self.resume_from.take() {
            Some(from) => self.resumed_head(from, status, headers),
            None => self.body_head(status, headers),
        }
    }

    /// The head of a resumed attempt: a `206` continuing at `from`, a `200` that starts over, an
    /// error to retry, or anything else: start over without `Range`.
    fn resumed_head(
        &mut self,
        from: u64,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<State, Error> {
        match status.as_u16() {
            206 => {
                let Some(end) = self.continuation_end(from, headers) else {
                    return Ok(self.start_over_without_range());
                };
                self.limits.check_received(end)?;
                self.limits.check_remaining_length(from, headers)?;
                self.resumes += 1;
                self.stitched = true;
                self.total = Some(end);
                self.body_url.clone_from(&self.url);
                self.body_left_origin = self.left_origin;
                if self.content_type.is_none() {
                    self.content_type = header_str(headers, &CONTENT_TYPE).map(str::to_owned);
                }
                Ok(State::Body)
            }
            200 => {
                // The range was ignored, or If-Range did not match: the whole body again.
                self.start_over();
                self.body_head(status, headers)
            }
            // Throttled or failing: retried (and resumed again) like any failed attempt.
            429 | 500..=599 => match check_download_response(status, headers, None) {
                Err(e) => Err(e),
                Ok(()) => Ok(self.start_over_without_range()),
            },
            _ => Ok(self.start_over_without_range()),
        }
    }

    /// Where a `206` answering `Range: bytes={from}-` ends (exclusive), when it continues the
    /// same body exactly: `Content-Range` starts at `from` and runs to the end of the known
    /// complete length, `Content-Length` (if any) agrees, the body is not content-coded, and the
    /// validator (if any) is the same. `None` otherwise.
    fn continuation_end(&self, from: u64, headers: &HeaderMap) -> Option<u64> {
        if is_encoded(headers) {
            return None;
        }
        let (first, last, complete) = parse_content_range(header_str(headers, &CONTENT_RANGE)?)?;
        let total = match (complete, self.total) {
            (Some(a), Some(b)) if a != b => return None,
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => return None,
        };
        let end = last.checked_add(1)?;
        if first != from || end != total {
            return None;
        }
        if let Some(len) = header_str(headers, &CONTENT_LENGTH)
            && parse_length(len)? != end - first
        {
            return None;
        }
        let resume = self.resume.as_ref()?;
        if let (Some(known), Some(tag)) = (&resume.etag, header_str(headers, &ETAG))
            && known != tag
        {
            return None;
        }
        if let (Some(known), Some(date)) =
            (&resume.last_modified, header_str(headers, &LAST_MODIFIED))
            && known != date
        {
            return None;
        }
        Some(end)
    }

    /// The head of a body from its start.
    fn body_head(&mut self, status: StatusCode, headers: &HeaderMap) -> Result<State, Error> {
        check_download_response(status, headers, self.prediction.as_deref())?;
        if status == StatusCode::PARTIAL_CONTENT {
            return Err(Error::output(
                OutputErrorKind::Status(206),
                "the output host answered 206 Partial Content to a request without Range",
            ));
        }
        self.limits.check_content_length(headers)?;
        let encoded = is_encoded(headers);
        self.content_type = header_str(headers, &CONTENT_TYPE).map(str::to_owned);
        self.total = if encoded {
            None
        } else {
            header_str(headers, &CONTENT_LENGTH).and_then(parse_length)
        };
        self.resume = if status == StatusCode::OK && !self.range_disabled {
            Resume::of(headers)
        } else {
            None
        };
        self.body_url.clone_from(&self.url);
        self.body_left_origin = self.left_origin;
        let etag_checked = self
            .verify_etag
            .unwrap_or_else(|| self.sends_token() && is_api_file_download(&self.cfg, &self.url));
        self.etag_sha256 = if etag_checked && !encoded {
            strong_etag(headers).and_then(etag_digest)
        } else {
            None
        };
        self.hasher = (self.expected.is_some() || self.etag_sha256.is_some()).then(Sha256::new);
        Ok(State::Body)
    }

    /// The end of the body: its length and digest checked.
    fn end(&mut self, now: Instant) {
        if let Some(total) = self.total
            && self.received < total
        {
            let error = Error::Transport(TransportError::new(
                TransportErrorKind::Io,
                format!(
                    "the output's body ended after {} of its {total} bytes",
                    self.received
                ),
            ));
            self.fail(error, now);
            return;
        }
        let sha256 = self
            .hasher
            .take()
            .map(|h| Sha256Digest(h.finalize().into()));
        let wanted = match (self.expected, self.etag_sha256) {
            (Some(d), _) => Some((d, "the expected SHA-256")),
            (None, Some(d)) => Some((d, "the SHA-256 named by the ETag")),
            (None, None) => None,
        };
        if let (Some(actual), Some((expected, what))) = (sha256, wanted)
            && actual != expected
        {
            if self.stitched && !self.range_disabled {
                // Resumed pieces that do not add up: once more, whole.
                self.state = self.start_over_without_range();
                return;
            }
            self.state = State::Done(Some(Err(Error::output(
                OutputErrorKind::ChecksumMismatch,
                format!(
                    "the downloaded output ({} bytes) has SHA-256 {actual}, but {what} is {expected}",
                    self.received
                ),
            ))));
            return;
        }
        self.state = State::Done(Some(Ok(Downloaded {
            content_type: self.content_type.take(),
            bytes: self.received,
            resumed: self.resumes,
            sha256,
        })));
    }
}

impl Flow for Download {
    type Item = DownloadItem;
    type Output = Result<Downloaded, Error>;

    fn poll(&mut self, now: Instant) -> Step<DownloadItem, Self::Output> {
        if std::mem::take(&mut self.restart) {
            return Step::Yield(DownloadItem::Restart);
        }
        if let Some(chunk) = self.pending.take() {
            return Step::Yield(DownloadItem::Chunk(chunk));
        }
        match &mut self.state {
            State::Done(result) => Step::Done(
                result
                    .take()
                    .unwrap_or(Err(Error::InvalidState("polled after it finished"))),
            ),
            State::Ready(Some(at)) if *at > now => Step::Sleep {
                until: *at,
                reason: SleepReason::Retry,
            },
            State::Ready(_) => match self.request() {
                Ok(request) => {
                    self.state = State::Head;
                    Step::Send(Outgoing::streamed(&self.cfg, request))
                }
                Err(e) => {
                    self.state = State::Done(None);
                    Step::Done(Err(e))
                }
            },
            State::Head => Step::Done(Err(Error::InvalidState(
                "polled while a request was in flight",
            ))),
            State::Body => Step::Receive,
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        // A driver that read the body whole: the same as a head, one chunk and the end.
        let (parts, body) = response.into_parts();
        self.handle_head(parts.status, &parts.headers, now);
        if matches!(self.state, State::Body) {
            if !body.is_empty() {
                self.handle_chunk(&body, now);
            }
            self.handle_end(now);
        }
    }

    fn handle_head(&mut self, status: StatusCode, headers: &HeaderMap, now: Instant) {
        if !matches!(self.state, State::Head) {
            return;
        }
        match self.head(status, headers) {
            Ok(next) => self.state = next,
            Err(e) => self.fail(e, now),
        }
    }

    fn handle_chunk(&mut self, chunk: &[u8], now: Instant) {
        self.take_chunk(Cow::Borrowed(chunk), now);
    }

    fn handle_chunk_owned(&mut self, chunk: Vec<u8>, now: Instant) {
        self.take_chunk(Cow::Owned(chunk), now);
    }

    fn handle_end(&mut self, now: Instant) {
        if matches!(self.state, State::Body) {
            self.end(now);
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        if matches!(self.state, State::Head | State::Body) {
            self.fail(Error::Transport(error), now);
        }
    }

    fn describe(&self) -> crate::FlowInfo {
        let info = crate::FlowInfo::new("download");
        match &self.prediction {
            Some(p) => info.prediction(&p.id),
            None => info,
        }
    }
}

/// The local file name of output number `index` of a batch: for a URL, its name after the
/// download ([`FileNames::name_for`] with the response's `content_type`); for a `data:` URI,
/// `output-{index}` with an extension from its media type.
pub fn output_file_name(
    names: &mut FileNames,
    output: &OutputRef,
    index: usize,
    content_type: Option<&str>,
) -> String {
    match output {
        OutputRef::Url(url) => names.name_for(url, index, content_type),
        OutputRef::DataUri { mime, .. } => {
            names.name_for(&format!("data:{mime},"), index, Some(mime))
        }
    }
}

/// The name of the temporary file an output is streamed to before it is renamed: hidden, ending
/// in `.part`, unique per process and `n`.
pub fn temp_file_name(n: u64) -> String {
    format!(".replicate-download-{}-{n}.part", std::process::id())
}

/// Counters of the bytes and files a save of several outputs moved, updated by the client as
/// chunks are written and readable from another thread at any time (a progress bar's). See
/// `Client::download_outputs_with_progress` in either client.
///
/// ```
/// use replicate_protocol::download::TransferProgress;
///
/// let progress = TransferProgress::default();
/// progress.expect_bytes(1000);
/// progress.add_bytes(250);
/// let now = progress.snapshot();
/// assert_eq!((now.bytes, now.total), (250, Some(1000)));
/// ```
#[derive(Debug, Default)]
pub struct TransferProgress {
    bytes: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
    /// Files whose length is not known (yet).
    unknown: std::sync::atomic::AtomicU64,
    files: std::sync::atomic::AtomicU64,
    files_done: std::sync::atomic::AtomicU64,
}

/// What a [`TransferProgress`] says at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferSnapshot {
    /// Bytes written so far (a download that starts over takes its bytes back).
    pub bytes: u64,
    /// The bytes of all the files, once every file started has announced its length.
    pub total: Option<u64>,
    /// Files started.
    pub files: u64,
    /// Files complete.
    pub files_done: u64,
}

impl TransferProgress {
    /// A file starts; its length is not known yet.
    pub fn start_file(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.files.fetch_add(1, Relaxed);
        self.unknown.fetch_add(1, Relaxed);
    }

    /// A started file announced its length (once per file).
    pub fn expect_bytes(&self, len: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.total.fetch_add(len, Relaxed);
        let _ = self
            .unknown
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Bytes were written.
    pub fn add_bytes(&self, n: u64) {
        self.bytes
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes written were taken back (a download that started over).
    pub fn remove_bytes(&self, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let _ = self
            .bytes
            .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(n)));
    }

    /// A file is complete.
    pub fn finish_file(&self) {
        self.files_done
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> TransferSnapshot {
        use std::sync::atomic::Ordering::Relaxed;
        TransferSnapshot {
            bytes: self.bytes.load(Relaxed),
            total: (self.unknown.load(Relaxed) == 0).then(|| self.total.load(Relaxed)),
            files: self.files.load(Relaxed),
            files_done: self.files_done.load(Relaxed),
        }
    }
}
