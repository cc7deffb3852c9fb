//! Server configuration.

use std::time::Duration;

/// The default bearer token the fake accepts.
pub const DEFAULT_TOKEN: &str = "hk-fake-token";

/// The default webhook signing secret (`whsec_` + base64 of 32 fixed bytes).
///
/// The key bytes are `replicate-fake-webhook-secret-32`.
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_cmVwbGljYXRlLWZha2Utd2ViaG9vay1zZWNyZXQtMzI=";

/// Configuration of a [`FakeServer`](crate::FakeServer).
///
/// Build it with struct-update syntax:
///
/// ```
/// use std::time::Duration;
/// let opts = replicate_fake::Options {
///     tick: Duration::from_millis(10),
///     page_size: 2,
///     ..Default::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// The bearer token every `/v1` route of the API origin requires (default `"hk-fake-token"`).
    pub token: String,
    /// A second path prefix under which the API is also served, like the seed's proxy
    /// (default `"/replicate"`, so `{base}/replicate/v1/...`). Empty disables it.
    pub prefix: String,
    /// Port of the API origin on 127.0.0.1; 0 picks a free one (default 0).
    pub port: u16,
    /// Port of the files/stream origin on 127.0.0.1; 0 picks a free one (default 0).
    pub files_port: u16,
    /// When set (e.g. `Some("https://api.replicate.com".into())`), the absolute URLs the API writes
    /// in bodies and in `Location` (`urls.get`, `urls.cancel`, pagination `next`/`previous`,
    /// `urls.get` of files) name this host instead of the fake's own, as a pass-through proxy
    /// does. Output file and stream URLs always name the fake's files origin.
    pub api_host_in_bodies: Option<String>,
    /// The scheduling unit of scripted models (default 100 ms); tests use e.g. 10 ms.
    pub tick: Duration,
    /// Items per page of list endpoints (default 100).
    pub page_size: usize,
    /// Output data lifetime, measured from the end of a prediction (default 1 h). After it, the
    /// prediction shows `data_removed: true`, `output: null`, `input: {}` and its files answer 404.
    pub output_ttl: Duration,
    /// The webhook signing secret, `whsec_` followed by the base64 of the key
    /// (default [`DEFAULT_WEBHOOK_SECRET`]). If what follows `whsec_` is not base64, its raw bytes
    /// are the key.
    pub webhook_secret: String,
    /// Minimum interval between two `output`/`logs` webhooks of one prediction (default 500 ms, as
    /// Replicate documents). `start` and `completed` are never throttled.
    pub webhook_throttle: Duration,
    /// How many times a `completed` webhook is attempted in all when the receiver does not answer
    /// 2xx (default 3). Retries keep the same `webhook-id`.
    pub webhook_attempts: usize,
    /// Factor applied to the durations clients give in headers: `Prefer: wait=N` and
    /// `Cancel-After` (default 1.0). With 0.01, `Cancel-After: 5s` cancels after 50 ms (validation
    /// still sees 5 s, and `deadline` shows the scaled instant). A scaled duration too large to
    /// represent is answered 422, like an invalid header.
    pub header_time_scale: f64,
    /// Whether any `owner/name` that was not scripted exists and behaves like
    /// [`ModelScript::default`](crate::ModelScript::default) (default true). When false, unknown
    /// models answer 404.
    pub unknown_models_exist: bool,
    /// Whether to record requests for [`FakeHandle::requests`](crate::FakeHandle::requests)
    /// (default true; benchmarks may turn it off).
    pub record_requests: bool,
    /// How many requests the request log keeps (default [`DEFAULT_REQUEST_LOG_CAPACITY`],
    /// 10 000): it is a ring buffer, and once full each new request drops the oldest one (see
    /// [`FakeHandle::dropped_requests`](crate::FakeHandle::dropped_requests)). 0 records nothing.
    /// The webhook delivery log keeps as many entries.
    pub request_log_capacity: usize,
    /// The most bytes of a request body the log keeps (default
    /// [`DEFAULT_MAX_RECORDED_BODY_BYTES`], 64 KiB). A longer body is recorded cut to this
    /// length, with [`RecordedRequest::body_truncated`](crate::RecordedRequest::body_truncated)
    /// set and its real length in [`RecordedRequest::body_len`](crate::RecordedRequest::body_len).
    /// The handlers always see the whole body.
    ///
    /// Whatever this is, the body of a request that fails authentication on the API origin is
    /// never recorded (nor kept in memory).
    pub max_recorded_body_bytes: usize,
    /// The largest request body the server reads (default [`DEFAULT_MAX_REQUEST_BODY_BYTES`],
    /// 128 MiB). A request announcing a larger `Content-Length`, or sending more bytes than
    /// this, is answered `413` without being applied. (`POST /v1/files` still answers 413 for
    /// files over 100 MiB, as Replicate does.)
    ///
    /// Bodies the server does not need (unauthenticated or unknown API routes, the files
    /// origin, requests a fault or the rate limit answers by itself) are read and dropped as
    /// they arrive, never buffered whole.
    pub max_request_body_bytes: usize,
    /// A server-wide rate limit on the API origin (default `None`: unlimited). See
    /// [`RateLimit`].
    pub rate_limit: Option<RateLimit>,
    /// A limit on prediction creates alone (`POST` to a model's, a version's or a deployment's
    /// predictions), like Replicate's 600 creates a minute: the same fixed windows, headers
    /// and throttle answer as [`RateLimit`], counted on creates only (default: none). With
    /// [`Options::rate_limit`] too, a create counts against both.
    pub create_rate_limit: Option<RateLimit>,
    /// The most bytes per second each connection sends of a file body: output files on the
    /// files origin and `GET /v1/files/{id}/download` (default `None`: as fast as the client
    /// reads). Other answers are not paced.
    ///
    /// A body of `n` bytes is sent in frames of about a twentieth of the rate (at most 64 KiB),
    /// each no earlier than `start + bytes_sent_including_it / rate`, so it takes at least
    /// `n / rate` seconds: downloading several files over several connections at once is then
    /// measurably faster than one after the other, even on loopback. (An HTTP/1.1 connection
    /// carries one response at a time, so this caps each connection; each response starts its
    /// own budget.) The pacing waits on tokio timers and holds no more than a frame. 0 counts
    /// as `None`.
    pub connection_rate: Option<u64>,
}

/// The default of [`Options::request_log_capacity`].
pub const DEFAULT_REQUEST_LOG_CAPACITY: usize = 10_000;

/// The default of [`Options::max_recorded_body_bytes`]: 64 KiB.
pub const DEFAULT_MAX_RECORDED_BODY_BYTES: usize = 64 * 1024;

/// The default of [`Options::max_request_body_bytes`]: 128 MiB.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: usize = 128 * 1024 * 1024;

/// A fixed-window rate limit on the whole API origin, like Replicate's throttling.
///
/// Time is cut into consecutive windows of [`window`](Self::window) from the server's start;
/// within a window the first [`requests`](Self::requests) requests on the API origin are served
/// (with `ratelimit-remaining: <left in this window>` and `ratelimit-reset: <seconds until the
/// window ends, rounded up>`), and the others are answered `429` with Replicate's throttle body
/// (`{"detail":"Request was throttled. Expected available in N seconds.","status":429,"retry_after":N}`),
/// `Retry-After: N`, `ratelimit-remaining: 0` and `ratelimit-reset: N`, where `N` is the
/// seconds until the window ends, rounded up. A throttled request does not take effect (a
/// throttled create creates nothing) and is recorded with
/// [`RecordedRequest::rate_limited`](crate::RecordedRequest::rate_limited) set.
///
/// Every request on the API origin counts (whatever its path or token), except those a
/// [`Fault`](crate::Fault) answers by itself ([`Status`](crate::Fault::Status),
/// [`Redirect`](crate::Fault::Redirect), [`HugeBody`](crate::Fault::HugeBody),
/// [`Echo`](crate::Fault::Echo), [`ResetBeforeRead`](crate::Fault::ResetBeforeRead)), which
/// neither count nor are throttled.
///
/// ```
/// let opts = replicate_fake::Options {
///     rate_limit: Some(replicate_fake::RateLimit::per_second(20)),
///     ..Default::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (0 throttles every request).
    pub requests: u32,
    /// The window length (a zero window is taken as 1 s).
    pub window: Duration,
}

impl RateLimit {
    /// `requests` per `window`.
    pub fn new(requests: u32, window: Duration) -> Self {
        RateLimit { requests, window }
    }

    /// `requests` per second.
    pub fn per_second(requests: u32) -> Self {
        RateLimit::new(requests, Duration::from_secs(1))
    }
}

impl Default for RateLimit {
    /// 20 requests per second.
    fn default() -> Self {
        RateLimit::per_second(20)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: DEFAULT_TOKEN.to_owned(),
            prefix: "/replicate".to_owned(),
            port: 0,
            files_port: 0,
            api_host_in_bodies: None,
            tick: Duration::from_millis(100),
            page_size: 100,
            output_ttl: Duration::from_secs(3600),
            webhook_secret: DEFAULT_WEBHOOK_SECRET.to_owned(),
            webhook_throttle: Duration::from_millis(500),
            webhook_attempts: 3,
            header_time_scale: 1.0,
            unknown_models_exist: true,
            record_requests: true,
            request_log_capacity: DEFAULT_REQUEST_LOG_CAPACITY,
            max_recorded_body_bytes: DEFAULT_MAX_RECORDED_BODY_BYTES,
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            rate_limit: None,
            create_rate_limit: None,
            connection_rate: None,
        }
    }
}

impl Options {
    /// Normalizes the prefix (leading `/`, no trailing `/`) and clamps nonsensical values.
    pub(crate) fn normalized(mut self) -> Self {
        let p = self.prefix.trim().trim_end_matches('/');
        self.prefix = if p.is_empty() {
            String::new()
        } else if p.starts_with('/') {
            p.to_owned()
        } else {
            format!("/{p}")
        };
        if self.page_size == 0 {
            self.page_size = 1;
        }
        if self.tick.is_zero() {
            self.tick = Duration::from_millis(1);
        }
        if !(self.header_time_scale.is_finite() && self.header_time_scale > 0.0) {
            self.header_time_scale = 1.0;
        }
        if self.webhook_attempts == 0 {
            self.webhook_attempts = 1;
        }
        if let Some(rl) = &mut self.rate_limit
            && rl.window.is_zero()
        {
            rl.window = Duration::from_secs(1);
        }
        if let Some(rl) = &mut self.create_rate_limit
            && rl.window.is_zero()
        {
            rl.window = Duration::from_secs(1);
        }
        if self.connection_rate == Some(0) {
            self.connection_rate = None;
        }
        if let Some(h) = &self.api_host_in_bodies {
            self.api_host_in_bodies = Some(h.trim_end_matches('/').to_owned());
        }
        self
    }
}
