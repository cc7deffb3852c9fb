//! What a client is configured with, shared by every adapter so that the blocking and the async
//! client read the same environment, apply the same defaults and build the same flows.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::endpoint::Paginated;
use crate::{
    ApiToken, Config, CreatePrediction, Error, Page, PaginationError, PollPolicy, RetryPolicy,
    StreamOptions, SyncWait, Target, WaitOptions,
};

/// The environment variable holding the API token.
pub const TOKEN_ENV: &str = "REPLICATE_API_TOKEN";
/// The environment variable holding an alternative base URL (e.g. a proxy).
pub const BASE_URL_ENV: &str = "REPLICATE_BASE_URL";
/// Default timeout of one HTTP exchange (a sync-mode create gets its wait on top).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connection timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on an API response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// The settings of a client, before it is built. Adapters' builders are thin wrappers around it.
///
/// `Debug` never shows the token.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// The API token (required to build).
    pub token: Option<ApiToken>,
    /// The base URL (default `https://api.replicate.com`).
    pub base_url: Option<String>,
    /// The `User-Agent` (default `replicate-rust/{version}`).
    pub user_agent: Option<String>,
    /// Timeout of one exchange (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Option<Duration>,
    /// Connection timeout (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Option<Duration>,
    /// Cap on an API response body (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub max_response_bytes: Option<u64>,
    /// Poll policy.
    pub poll: Option<PollPolicy>,
    /// Retry policy.
    pub retry: Option<RetryPolicy>,
    /// Sync mode of `run` (`None` here means the default, `Prefer: wait`; `Some(None)` turns it
    /// off).
    pub sync_wait: Option<Option<SyncWait>>,
    /// Cap on one downloaded output (default [`crate::output::DEFAULT_MAX_DOWNLOAD_BYTES`]).
    pub max_download_bytes: Option<u64>,
    /// File inputs up to this size are sent inline as data URLs, larger ones uploaded (default
    /// [`crate::input::DEFAULT_UPLOAD_THRESHOLD`]).
    pub upload_threshold: Option<usize>,
    /// Whether `run` reads a streaming prediction's event stream alongside its polls, to finish
    /// on the stream's `done` event instead of the next poll (default: yes). The stream is read
    /// without the API token unless it is on the API's own origin.
    pub follow_stream: Option<bool>,
    /// How many pages a listing reads at most (default [`DEFAULT_MAX_PAGES`]).
    pub max_pages: Option<usize>,
    /// How event streams are followed, by `stream` and by the stream watcher of waits and runs
    /// (default [`StreamOptions::default`]).
    pub stream: Option<StreamOptions>,
    /// The minimum progress of a download (default
    /// [`crate::output::DEFAULT_MIN_PROGRESS`]; `Some(None)` disables it).
    pub min_download_progress: Option<Option<(u64, Duration)>>,
}

impl ClientSettings {
    /// Settings preset from an environment lookup (`REPLICATE_API_TOKEN`, `REPLICATE_BASE_URL`);
    /// empty values count as unset. Pass `|k| std::env::var(k).ok()` for the process environment.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        ClientSettings {
            token: get(TOKEN_ENV).map(ApiToken::new),
            base_url: get(BASE_URL_ENV),
            ..Self::default()
        }
    }

    /// The request configuration, or why it cannot be built.
    pub fn config(&self) -> Result<Config, Error> {
        let token = self.token.as_ref().ok_or_else(|| {
            Error::InvalidInput(format!("no API token: set {TOKEN_ENV} or pass a token"))
        })?;
        let mut cfg = Config::new(token.expose());
        if let Some(url) = &self.base_url {
            cfg = cfg.with_base_url(url)?;
        }
        if let Some(ua) = &self.user_agent {
            cfg = cfg.with_user_agent(ua)?;
        }
        if cfg.request(http::Method::GET, "/", None).is_err() {
            return Err(Error::InvalidToken);
        }
        Ok(cfg)
    }

    /// The settings with every default filled in, and the configuration.
    pub fn resolve(&self) -> Result<Resolved, Error> {
        Ok(Resolved {
            cfg: self.config()?,
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            poll: self.poll.clone().unwrap_or_default(),
            retry: self.retry.clone().unwrap_or_default(),
            sync_wait: self.sync_wait.unwrap_or(Some(SyncWait::Max)),
            max_download_bytes: self
                .max_download_bytes
                .unwrap_or(crate::output::DEFAULT_MAX_DOWNLOAD_BYTES),
            upload_threshold: self
                .upload_threshold
                .unwrap_or(crate::input::DEFAULT_UPLOAD_THRESHOLD),
            follow_stream: self.follow_stream.unwrap_or(true),
            max_pages: self.max_pages.unwrap_or(DEFAULT_MAX_PAGES).max(1),
            stream: self.stream.clone().unwrap_or_default(),
            min_download_progress: self
                .min_download_progress
                .unwrap_or(Some(crate::output::DEFAULT_MIN_PROGRESS)),
        })
    }
}

/// Client settings with every default applied: what a built client holds.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The request configuration.
    pub cfg: Config,
    /// Timeout of one exchange.
    pub timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Cap on an API response body.
    pub max_response_bytes: u64,
    /// Poll policy.
    pub poll: PollPolicy,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Sync mode of `run`.
    pub sync_wait: Option<SyncWait>,
    /// Cap on one downloaded output.
    pub max_download_bytes: u64,
    /// Inline-or-upload threshold of file inputs.
    pub upload_threshold: usize,
    /// Whether `run` finishes on a stream's `done` event.
    pub follow_stream: bool,
    /// How many pages a listing reads at most.
    pub max_pages: usize,
    /// How event streams are followed.
    pub stream: StreamOptions,
    /// The minimum progress of a download.
    pub min_download_progress: Option<(u64, Duration)>,
}

impl Resolved {
    /// The limits a download runs with.
    pub fn download_limits(&self) -> crate::DownloadLimits {
        crate::DownloadLimits {
            max_bytes: self.max_download_bytes,
            min_progress: self.min_download_progress,
            ..crate::DownloadLimits::default()
        }
    }

    /// A pager over the list `first`, with the configured page cap.
    pub fn pager<P: Paginated>(&self, first: P) -> Pager<P> {
        Pager::new(first).max_pages(self.max_pages)
    }

    /// Wait options with these policies and, when `timeout` is given, a deadline that long after
    /// `now`.
    pub fn wait_options(&self, now: Instant, timeout: Option<Duration>) -> WaitOptions {
        WaitOptions {
            poll: self.poll.clone(),
            retry: self.retry.clone(),
            deadline: timeout.and_then(|t| now.checked_add(t)),
            cancel_at_deadline: true,
        }
    }

    /// The create that `run(model, input)` sends: `model` is `owner/name`, `owner/name:version`
    /// or a version id; sync mode as configured.
    pub fn run_create(&self, model: &str, input: Value) -> Result<CreatePrediction, Error> {
        let mut create = CreatePrediction::new(Target::parse(model)?).input(input);
        create.sync = self.sync_wait;
        Ok(create)
    }
}

/// How many pages a [`Pager`] reads by default before it stops with
/// [`PaginationError::TooManyPages`] (at the API's 100 items a page, 100,000 items). Raise it with
/// [`Pager::max_pages`].
pub const DEFAULT_MAX_PAGES: usize = 1_000;

/// What a [`Pager`] wants next.
#[derive(Debug)]
pub enum PagerStep<'a, T, P> {
    /// The next item.
    Item(T),
    /// Fetch this page (execute the endpoint), then call [`Pager::push_page`] or
    /// [`Pager::fail`].
    Fetch(&'a P),
    /// The listing stopped: the server's cursors form a cycle, or the page cap was reached
    /// ([`Error::Pagination`]). Every item of the pages read before was handed out; the next
    /// step is [`PagerStep::End`].
    Failed(Error),
    /// The listing is over.
    End,
}

/// Walks every item of a paginated list, one page at a time, each page requested from the
/// configured base URL with only the previous page's cursor.
///
/// Memory is bounded by one page; time by the page cap ([`DEFAULT_MAX_PAGES`], see
/// [`Pager::max_pages`]). A server whose `next` cursor names a page already read (A → B → A) ends
/// the listing with [`PaginationError::CursorCycle`] instead of looping.
///
/// ```
/// use replicate_protocol::{ListPredictions, Page, Pager, PagerStep};
/// let mut pager = Pager::new(ListPredictions::new());
/// assert!(matches!(pager.next_step(), PagerStep::Fetch(_)));
/// pager.push_page(Page { results: vec![], next: None, previous: None });
/// assert!(matches!(pager.next_step(), PagerStep::End));
/// ```
pub struct Pager<P: Paginated> {
    next: Option<P>,
    buffer: std::collections::VecDeque<P::Item>,
    seen: std::collections::HashSet<String>,
    pages: usize,
    max_pages: usize,
    failure: Option<Error>,
}

impl<P: Paginated + std::fmt::Debug> std::fmt::Debug for Pager<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("next", &self.next)
            .field("buffered", &self.buffer.len())
            .field("pages", &self.pages)
            .field("max_pages", &self.max_pages)
            .finish()
    }
}

impl<P: Paginated> Pager<P> {
    /// A pager starting at `first`, with the default page cap ([`DEFAULT_MAX_PAGES`]).
    pub fn new(first: P) -> Self {
        let mut seen = std::collections::HashSet::new();
        if let Some(c) = first.cursor() {
            seen.insert(c.to_owned());
        }
        Pager {
            next: Some(first),
            buffer: Default::default(),
            seen,
            pages: 0,
            max_pages: DEFAULT_MAX_PAGES,
            failure: None,
        }
    }

    /// The same pager, reading at most `max_pages` pages (at least 1) before it stops with
    /// [`PaginationError::TooManyPages`].
    pub fn max_pages(mut self, max_pages: usize) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    /// How many pages were read so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The next item, the next page to fetch, the reason the listing stopped, or the end.
    pub fn next_step(&mut self) -> PagerStep<'_, P::Item, P> {
        if let Some(item) = self.buffer.pop_front() {
            return PagerStep::Item(item);
        }
        if let Some(e) = self.failure.take() {
            return PagerStep::Failed(e);
        }
        match &self.next {
            Some(p) => PagerStep::Fetch(p),
            None => PagerStep::End,
        }
    }

    /// The page fetched for the last [`PagerStep::Fetch`].
    pub fn push_page(&mut self, page: Page<P::Item>) {
        self.pages += 1;
        let next = self.next.take().and_then(|p| p.next_page(&page));
        self.buffer.extend(page.results);
        let Some(next) = next else { return };
        let cursor = next.cursor().unwrap_or_default().to_owned();
        if !self.seen.insert(cursor.clone()) {
            self.failure = Some(Error::Pagination(PaginationError::CursorCycle {
                cursor,
                page: self.pages,
            }));
        } else if self.pages >= self.max_pages {
            self.failure = Some(Error::Pagination(PaginationError::TooManyPages {
                max_pages: self.max_pages,
            }));
        } else {
            self.next = Some(next);
        }
    }

    /// The fetch failed: the listing ends after this error.
    pub fn fail(&mut self) {
        self.next = None;
        self.buffer.clear();
    }
}

/// Expands, inside an adapter's `impl ClientBuilder`, to the setters of every
/// [`ClientSettings`] field, so the blocking and async clients offer the same builder with the
/// same documentation. The builder needs a `settings: ClientSettings` field.
#[doc(hidden)]
#[macro_export]
macro_rules! client_settings_setters {
    () => {
        /// The API token (required).
        pub fn token(mut self, token: impl Into<String>) -> Self {
            self.settings.token = Some($crate::ApiToken::new(token));
            self
        }

        /// The API base URL: `https://api.replicate.com` (default) or a proxy such as
        /// `https://proxy.example/replicate`. Every request goes to `{base}/v1/...`.
        pub fn base_url(mut self, url: impl Into<String>) -> Self {
            self.settings.base_url = Some(url.into());
            self
        }

        /// The `User-Agent` (default `replicate-rust/{version}`).
        pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
            self.settings.user_agent = Some(ua.into());
            self
        }

        /// Timeout of one HTTP exchange, from connecting to the end of the body (default 30 s).
        /// A sync-mode create is allowed its wait plus a margin on top.
        ///
        /// Streams, downloads and uploads have no total timeout (they may rightly take minutes):
        /// for them this is how long they may go without progress.
        pub fn timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.settings.timeout = Some(timeout);
            self
        }

        /// Connection timeout (default 10 s). Ignored when an HTTP client of your own is
        /// supplied.
        pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.settings.connect_timeout = Some(timeout);
            self
        }

        /// Cap on an API response body (default 32 MiB); a larger body is an error, never
        /// buffered.
        pub fn max_response_bytes(mut self, bytes: u64) -> Self {
            self.settings.max_response_bytes = Some(bytes);
            self
        }

        /// How predictions are polled.
        pub fn poll_policy(mut self, poll: $crate::PollPolicy) -> Self {
            self.settings.poll = Some(poll);
            self
        }

        /// How failed requests are retried.
        pub fn retry_policy(mut self, retry: $crate::RetryPolicy) -> Self {
            self.settings.retry = Some(retry);
            self
        }

        /// The sync mode `run` asks for (default `Prefer: wait`, i.e. up to 60 s); `None` turns
        /// sync mode off so `run` only polls.
        pub fn sync_wait(mut self, wait: Option<$crate::SyncWait>) -> Self {
            self.settings.sync_wait = Some(wait);
            self
        }

        /// Cap on one downloaded output (default 512 MiB): downloads stop and fail past it.
        pub fn max_download_bytes(mut self, bytes: u64) -> Self {
            self.settings.max_download_bytes = Some(bytes);
            self
        }

        /// File inputs up to this many bytes are inlined as `data:` URLs; larger ones are
        /// uploaded (default 256 KiB).
        pub fn upload_threshold(mut self, bytes: usize) -> Self {
            self.settings.upload_threshold = Some(bytes);
            self
        }

        /// Whether waits and runs read a streaming prediction's event stream to finish on its
        /// `done` event rather than at the next poll (default: yes). The stream gets no API token
        /// unless it is on the API's own origin.
        pub fn follow_stream(mut self, follow: bool) -> Self {
            self.settings.follow_stream = Some(follow);
            self
        }

        /// How many pages a listing reads at most (default 1,000): past it, the listing ends
        /// with [`Error::Pagination`]. A listing also stops when the server sends a cursor it
        /// already sent (a cycle).
        pub fn max_pages(mut self, pages: usize) -> Self {
            self.settings.max_pages = Some(pages);
            self
        }

        /// The minimum progress of a download: at least `bytes` in every `window` (default
        /// 4 KiB per 30 s), else the attempt fails as a timeout and is retried. With the idle
        /// timeout ([`timeout`](Self::timeout)) it bounds how long a dripped body can last.
        /// `None` turns the rule off.
        pub fn min_download_progress(
            mut self,
            progress: Option<(u64, ::std::time::Duration)>,
        ) -> Self {
            self.settings.min_download_progress = Some(progress);
            self
        }

        /// How event streams are followed (reconnections, backoff, who gets the token): used by
        /// `stream` and by the watcher that finishes waits and runs on a stream's `done` event.
        pub fn stream_options(mut self, options: $crate::StreamOptions) -> Self {
            self.settings.stream = Some(options);
            self
        }
    };
}
