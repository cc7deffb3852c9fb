//! One output download as a sans-IO plan: the request of each hop (redirects followed by hand,
//! each hop deciding again whether it may carry the token), the status and size checks, and the
//! retry decision. Every adapter drives it the same way, so the blocking and the async client
//! follow the same redirects, enforce the same cap and retry the same failures.
//!
//! A driver repeats:
//!
//! 1. send [`DownloadPlan::request`] without following redirects (no total timeout: a download
//!    may take long; a per-read timeout instead);
//! 2. call [`DownloadPlan::handle_head`] with the response status and headers:
//!    - [`DownloadHead::Redirect`]: the plan now names the redirect target: go to 1;
//!    - [`DownloadHead::Body`]: stream the body, calling [`DownloadPlan::handle_bytes`] with the
//!      length of each chunk *before* keeping it (it fails once the cap is passed);
//! 3. when anything of the attempt fails (the send, classified as [`Error::Transport`], the head,
//!    the cap, a read), ask [`DownloadPlan::retry_delay`]: `Some(delay)` to sleep that long, empty
//!    what was received and start again at 1 (from the original URL), `None` to fail with that
//!    error.
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use replicate_protocol::download_plan::{DownloadHead, DownloadPlan};
//! use replicate_protocol::{Config, DownloadLimits, RetryPolicy};
//!
//! let cfg = Config::new("r8_token");
//! let url = "https://replicate.delivery/x/out-0.png";
//! let mut plan = DownloadPlan::new(&cfg, url, DownloadLimits::default(), RetryPolicy::default())?;
//! let request = plan.request()?;
//! // An output host: no token.
//! assert!(request.headers().get("authorization").is_none());
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", "image/png".parse().unwrap());
//! let head = plan.handle_head(StatusCode::OK, &headers, None)?;
//! assert_eq!(head, DownloadHead::Body { content_type: Some("image/png".into()) });
//! plan.handle_bytes(1024)?;
//! # Ok::<(), replicate_protocol::Error>(())
//! ```

use std::time::{Duration, Instant};

use http::header::CONTENT_TYPE;
use http::{HeaderMap, Request, StatusCode};

use crate::output::{self, FileNames, OutputRef};
use crate::{
    Config, DownloadLimits, Error, Prediction, RetryClass, RetryPolicy, TransportError,
    TransportErrorKind,
};

/// What the response head of a [`DownloadPlan`] hop means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadHead {
    /// A redirect to follow: send [`DownloadPlan::request`] again (it names the new URL).
    Redirect,
    /// The body to read, with the response's `Content-Type` when it has a readable one.
    Body {
        /// The `Content-Type` of the response.
        content_type: Option<String>,
    },
}

/// The sans-IO plan of one download. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct DownloadPlan {
    cfg: Config,
    start: String,
    url: String,
    limits: DownloadLimits,
    retry: RetryPolicy,
    redirects: u32,
    retries: u32,
    received: u64,
    /// Whether a hop of this attempt left the API origin: from then on no hop carries the
    /// token, even one that comes back to the API origin.
    left_origin: bool,
    /// The minimum-progress window: when it started and how many bytes arrived in it.
    window: Option<(Instant, u64)>,
    rng: fastrand::Rng,
}

impl DownloadPlan {
    /// A plan fetching `url` (an absolute `http(s)` URL; a `data:` URI holds its content
    /// already, see [`OutputRef::parse`]).
    pub fn new(
        cfg: &Config,
        url: &str,
        limits: DownloadLimits,
        retry: RetryPolicy,
    ) -> Result<Self, Error> {
        // Fails early on a data: URI or an unusable URL.
        output::download_request(cfg, url)?;
        Ok(DownloadPlan {
            cfg: cfg.clone(),
            start: url.to_owned(),
            url: url.to_owned(),
            limits,
            retry,
            redirects: 0,
            retries: 0,
            received: 0,
            left_origin: !cfg.base_url().is_same_origin(url),
            window: None,
            rng: fastrand::Rng::new(),
        })
    }

    /// The URL of the current hop.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The limits the plan enforces.
    pub fn limits(&self) -> &DownloadLimits {
        &self.limits
    }

    /// How many retries were scheduled so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The bytes of the body counted so far in this attempt.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The request of the current hop ([`output::download_request`]: the token only for the API's
    /// origin, and only while no earlier hop of the chain left it: a redirect chain that starts
    /// on, or passes through, another host never gets the token, wherever it ends).
    pub fn request(&self) -> Result<Request<Vec<u8>>, Error> {
        output::download_request_with(&self.cfg, &self.url, !self.left_origin)
    }

    /// Whether the request of the current hop carries the API token.
    pub fn sends_token(&self) -> bool {
        !self.left_origin && self.cfg.base_url().is_same_origin(&self.url)
    }

    /// The response head of the current hop: a redirect to follow (at most
    /// [`DownloadLimits::max_redirects`]), or a body to read once the status
    /// ([`output::check_download_response`], `prediction` explaining an expired link) and the
    /// announced length are acceptable.
    pub fn handle_head(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        prediction: Option<&Prediction>,
    ) -> Result<DownloadHead, Error> {
        if let Some(next) = output::redirect_location(&self.url, status, headers) {
            self.redirects += 1;
            if self.redirects > self.limits.max_redirects {
                return Err(Error::Output(format!(
                    "too many redirects (more than {}) downloading an output",
                    self.limits.max_redirects
                )));
            }
            self.url = next?;
            if !self.cfg.base_url().is_same_origin(&self.url) {
                self.left_origin = true;
            }
            return Ok(DownloadHead::Redirect);
        }
        output::check_download_response(status, headers, prediction)?;
        self.limits.check_content_length(headers)?;
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(DownloadHead::Body { content_type })
    }

    /// Counts `len` more bytes of the body; fails (a transport error of kind
    /// [`TransportErrorKind::BodyTooLarge`]) once the total exceeds the cap. Call it before
    /// keeping the chunk.
    pub fn handle_bytes(&mut self, len: usize) -> Result<(), Error> {
        self.received = self
            .received
            .saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
        self.limits.check_received(self.received)
    }

    /// Counts a chunk of `len` bytes received at `now`: [`DownloadPlan::handle_bytes`] plus the
    /// minimum-progress rule ([`DownloadLimits::min_progress`]): once a window has passed with
    /// fewer bytes than the minimum, the attempt fails with a [`TransportErrorKind::Timeout`]
    /// (a body dripped a byte at a time would otherwise never end, each read arriving within
    /// the idle timeout). Drivers call it for every chunk, with the time it arrived.
    pub fn handle_chunk(&mut self, len: usize, now: Instant) -> Result<(), Error> {
        self.handle_bytes(len)?;
        let Some((min_bytes, window)) = self.limits.min_progress else {
            return Ok(());
        };
        let (start, bytes) = self.window.get_or_insert((now, 0));
        *bytes = bytes.saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
        if now.saturating_duration_since(*start) >= window {
            if *bytes < min_bytes {
                return Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!(
                        "the download made too little progress: {bytes} bytes in {:?} (the minimum is {min_bytes} bytes per {window:?})",
                        now.saturating_duration_since(*start),
                    ),
                )));
            }
            self.window = Some((now, 0));
        }
        Ok(())
    }

    /// After a failed attempt: how long to wait before trying again from the original URL
    /// (the plan is reset for it: drop what was received), or `None` to give up with `error`.
    ///
    /// Decided by [`RetryPolicy::decide`] as an idempotent request (429, 5xx and network
    /// failures), except that a body over the cap is never retried.
    pub fn retry_delay(&mut self, error: &Error) -> Option<Duration> {
        if matches!(error, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge) {
            return None;
        }
        let delay = self
            .retry
            .decide(RetryClass::Idempotent, self.retries, error)?;
        let delay = self
            .retry
            .jittered(delay, self.retries, error, self.rng.f64());
        self.retries += 1;
        self.url.clone_from(&self.start);
        self.redirects = 0;
        self.received = 0;
        self.left_origin = !self.cfg.base_url().is_same_origin(&self.start);
        self.window = None;
        Some(delay)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::TransportError;
    use http::HeaderValue;

    fn plan(cfg: &Config, url: &str) -> DownloadPlan {
        DownloadPlan::new(cfg, url, DownloadLimits::default(), RetryPolicy::default()).unwrap()
    }

    fn redirect_to(location: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("location", HeaderValue::from_str(location).unwrap());
        h
    }

    #[test]
    fn redirects_are_followed_and_reset_on_retry() {
        let cfg = Config::new("r8_x")
            .with_base_url("https://proxy.example/replicate")
            .unwrap();
        let mut p = plan(&cfg, "https://proxy.example/out/a.png");
        assert!(p.request().unwrap().headers().contains_key("authorization"));
        let head = p
            .handle_head(
                StatusCode::FOUND,
                &redirect_to("https://files.example/a.png"),
                None,
            )
            .unwrap();
        assert_eq!(head, DownloadHead::Redirect);
        assert_eq!(p.url(), "https://files.example/a.png");
        assert!(!p.request().unwrap().headers().contains_key("authorization"));

        let e = Error::Transport(TransportError::new(TransportErrorKind::Io, "reset"));
        assert!(p.retry_delay(&e).is_some());
        assert_eq!(p.url(), "https://proxy.example/out/a.png");
        assert_eq!(p.retries(), 1);
    }

    #[test]
    fn redirect_loops_end() {
        let cfg = Config::new("r8_x");
        let mut p = plan(&cfg, "https://files.example/loop");
        for _ in 0..5 {
            p.handle_head(StatusCode::FOUND, &redirect_to("/loop"), None)
                .unwrap();
        }
        let e = p
            .handle_head(StatusCode::FOUND, &redirect_to("/loop"), None)
            .unwrap_err();
        assert!(e.to_string().contains("too many redirects"), "{e}");
    }

    #[test]
    fn cap_is_enforced_and_never_retried() {
        let cfg = Config::new("r8_x");
        let limits = DownloadLimits {
            max_bytes: 10,
            ..DownloadLimits::default()
        };
        let mut p =
            DownloadPlan::new(&cfg, "https://f.example/x", limits, RetryPolicy::default()).unwrap();
        p.handle_bytes(6).unwrap();
        let e = p.handle_bytes(6).unwrap_err();
        assert!(matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge));
        assert_eq!(p.retry_delay(&e), None);

        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("11"));
        assert!(p.handle_head(StatusCode::OK, &h, None).is_err());
    }

    #[test]
    fn expired_links_are_not_retried_and_server_errors_are() {
        let cfg = Config::new("r8_x");
        let mut p = plan(&cfg, "https://f.example/x");
        let e = p
            .handle_head(StatusCode::NOT_FOUND, &HeaderMap::new(), None)
            .unwrap_err();
        assert!(matches!(e, Error::Output(_)));
        assert_eq!(p.retry_delay(&e), None);
        let e = p
            .handle_head(StatusCode::BAD_GATEWAY, &HeaderMap::new(), None)
            .unwrap_err();
        assert!(p.retry_delay(&e).is_some());
    }

    #[test]
    fn data_uris_are_refused_and_named_by_type() {
        let cfg = Config::new("r8_x");
        assert!(
            DownloadPlan::new(
                &cfg,
                "data:,x",
                DownloadLimits::default(),
                RetryPolicy::default()
            )
            .is_err()
        );
        let mut names = FileNames::new();
        let data = OutputRef::parse("data:image/png;base64,AAAA").unwrap();
        assert_eq!(output_file_name(&mut names, &data, 0, None), "output-0.png");
        let url = OutputRef::parse("https://f.example/a/out").unwrap();
        assert_eq!(
            output_file_name(&mut names, &url, 1, Some("image/webp")),
            "out.webp"
        );
        assert!(temp_file_name(3).ends_with("-3.part"));
    }
}
