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

use std::time::Instant;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

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

/// Size and redirect limits of a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// The largest body accepted, in bytes (after content decoding).
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
    /// The next bytes of the body.
    Chunk(Vec<u8>),
    /// An attempt failed after some bytes and is retried from the start: drop what was received.
    Restart,
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The response's `Content-Type`, when it had a readable one.
    pub content_type: Option<String>,
    /// How many bytes the body had.
    pub bytes: u64,
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
/// whether it may carry the token), the status, size and progress checks, and retries by the
/// shared [`RetryPolicy`]. It yields the body in [`DownloadItem::Chunk`]s and ends with
/// [`Downloaded`]. Every request is [streamed](crate::flow::BodyRead::Streamed) under an idle
/// timeout: a download may rightly take minutes, but not go silent, and not drip (see
/// [`DownloadLimits::min_progress`]).
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
}

impl Download {
    /// A download of `url` (an absolute `http(s)` URL; a `data:` URI holds its content already,
    /// see [`OutputRef::parse`]) with the default limits and retry policy.
    pub fn new(cfg: &Config, url: &str) -> Result<Self, Error> {
        // Fails early on a data: URI or an unusable URL.
        download_request(cfg, url)?;
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
            left_origin: !cfg.base_url().is_same_origin(url),
            window: None,
            content_type: None,
            pending: None,
            restart: false,
            rng: fastrand::Rng::new(),
            state: State::Ready(None),
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

    /// The URL of the current hop.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many retries were scheduled so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The bytes of the body received so far in this attempt.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the request of the current hop carries the API token.
    pub fn sends_token(&self) -> bool {
        !self.left_origin && self.cfg.base_url().is_same_origin(&self.url)
    }

    /// The request of the current hop ([`download_request_with`]: the token only for the API's
    /// origin, and only while no earlier hop of the chain left it).
    pub fn request(&self) -> Result<Request<Vec<u8>>, Error> {
        download_request_with(&self.cfg, &self.url, !self.left_origin)
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

    /// A failed attempt: retried from the original URL after a delay, or the end.
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
        self.restart = self.received > 0;
        self.url.clone_from(&self.start);
        self.redirects = 0;
        self.received = 0;
        self.left_origin = !self.cfg.base_url().is_same_origin(&self.start);
        self.window = None;
        self.pending = None;
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
        check_download_response(status, headers, self.prediction.as_deref())?;
        self.limits.check_content_length(headers)?;
        self.content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(State::Body)
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
        if !matches!(self.state, State::Body) {
            return;
        }
        match self.count(chunk.len(), now) {
            Ok(()) => {
                let pending = self.pending.get_or_insert_with(Vec::new);
                pending.extend_from_slice(chunk);
            }
            Err(e) => self.fail(e, now),
        }
    }

    fn handle_end(&mut self, _now: Instant) {
        if matches!(self.state, State::Body) {
            self.state = State::Done(Some(Ok(Downloaded {
                content_type: self.content_type.take(),
                bytes: self.received,
            })));
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
