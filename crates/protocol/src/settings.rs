//! What a client is configured with, shared by every adapter so that the blocking and the async
//! client read the same environment, apply the same defaults and build the same flows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::batch::{Batch, BatchOptions, BatchSpec, Clock, Journal, JournalError};
use crate::config::Limits;
use crate::pagination::{DEFAULT_MAX_PAGES, Pager, Paginated};
use crate::validate::{CreateFlow, SchemaCache, Validated, Validation};
use crate::{
    ApiToken, Config, CreatePrediction, Error, PollPolicy, RetryPolicy, StreamOptions, SyncWait,
    WaitOptions,
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
/// Default number of files `download_outputs` fetches at once.
pub const DEFAULT_DOWNLOAD_CONCURRENCY: usize = 4;

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
    /// Cap on one downloaded output (default [`crate::download::DEFAULT_MAX_DOWNLOAD_BYTES`]).
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
    /// [`crate::download::DEFAULT_MIN_PROGRESS`]; `Some(None)` disables it).
    pub min_download_progress: Option<Option<(u64, Duration)>>,
    /// How many files of one prediction `download_outputs` fetches at once (default
    /// [`DEFAULT_DOWNLOAD_CONCURRENCY`]; 0 counts as 1).
    pub download_concurrency: Option<usize>,
    /// Whether a strong `ETag` of 64 hex digits on any output host is taken as the SHA-256 of
    /// the body and checked (default: no; only the API's own file downloads are trusted, see
    /// [`Download::verify_etag_sha256`](crate::Download::verify_etag_sha256)).
    pub verify_etag_sha256: Option<bool>,
    /// Local validation of every create's input against its model version's schema (default
    /// [`Validation::Off`]: see [`crate::validate`]).
    pub validate_inputs: Option<Validation>,
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
        let token = self.token.as_ref().ok_or(Error::MissingToken)?;
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
        Ok(cfg.with_limits(Limits {
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        }))
    }

    /// The settings with every default filled in, and the configuration.
    pub fn resolve(&self) -> Result<EffectiveSettings, Error> {
        Ok(EffectiveSettings {
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
                .unwrap_or(crate::download::DEFAULT_MAX_DOWNLOAD_BYTES),
            upload_threshold: self
                .upload_threshold
                .unwrap_or(crate::input::DEFAULT_UPLOAD_THRESHOLD),
            follow_stream: self.follow_stream.unwrap_or(true),
            max_pages: self.max_pages.unwrap_or(DEFAULT_MAX_PAGES).max(1),
            stream: self.stream.clone().unwrap_or_default(),
            min_download_progress: self
                .min_download_progress
                .unwrap_or(Some(crate::download::DEFAULT_MIN_PROGRESS)),
            download_concurrency: self
                .download_concurrency
                .unwrap_or(DEFAULT_DOWNLOAD_CONCURRENCY)
                .max(1),
            verify_etag_sha256: self.verify_etag_sha256.unwrap_or(false),
            validation: self.validate_inputs.unwrap_or_default(),
            schemas: Arc::new(SchemaCache::new()),
        })
    }
}

/// Client settings with every default applied: what a built client holds.
#[derive(Debug, Clone)]
pub struct EffectiveSettings {
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
    /// How many files of one prediction `download_outputs` fetches at once (at least 1).
    pub download_concurrency: usize,
    /// Whether content-hash `ETag`s of every output host are checked.
    pub verify_etag_sha256: bool,
    /// Local validation of creates' inputs.
    pub validation: Validation,
    /// The input schemas fetched for local validation (shared by the clones of a client).
    pub schemas: Arc<SchemaCache>,
}

impl EffectiveSettings {
    /// The limits a download runs with.
    pub fn download_limits(&self) -> crate::DownloadLimits {
        crate::DownloadLimits {
            max_bytes: self.max_download_bytes,
            min_progress: self.min_download_progress,
            ..crate::DownloadLimits::default()
        }
    }

    /// A pager over the list `first`, with the configured retry policy and page cap.
    pub fn pager<P: Paginated>(&self, first: P) -> Pager<P> {
        Pager::new(self.cfg.clone(), first)
            .retry_policy(self.retry.clone())
            .max_pages(self.max_pages)
    }

    /// Wait options with these policies and, when `timeout` is given, a deadline that long after
    /// `now`.
    pub fn wait_options(&self, now: Instant, timeout: Option<Duration>) -> WaitOptions {
        WaitOptions {
            poll: self.poll.clone(),
            retry: self.retry.clone(),
            deadline: timeout.and_then(|t| now.checked_add(t)),
            cancel_at_deadline: true,
            sync: self.sync_wait,
        }
    }

    /// The create that `run(model, input)` sends: `model` is `owner/name`, `owner/name:version`
    /// or a version id ([`CreatePrediction::parse`]). The sync-mode hold comes from the wait
    /// options ([`WaitOptions::sync`]).
    pub fn run_create(&self, model: &str, input: Value) -> Result<CreatePrediction, Error> {
        Ok(CreatePrediction::parse(model)?.input(input))
    }

    /// `flow` (a create's) with its input validated first, as configured
    /// ([`EffectiveSettings::validation`], or the create's own
    /// [`CreatePrediction::validate`]): schemas fetched with this configuration and retry
    /// policy, no later than `deadline`, and kept in [`EffectiveSettings::schemas`].
    pub fn validated<F: CreateFlow>(&self, flow: F, deadline: Option<Instant>) -> Validated<F> {
        Validated::new(
            self.cfg.clone(),
            flow,
            self.validation,
            self.schemas.clone(),
        )
        .retry_policy(self.retry.clone())
        .deadline(deadline)
    }
}

/// What a client's batch builder holds (`Client::batch` in either client): the create every
/// item uses, the inputs, the journal file and the scheduler's options. Shared by both clients,
/// so that they open, check and resume journals alike.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// The create every item uses (its input replaced by the item's).
    pub create: CreatePrediction,
    /// One input per item.
    pub inputs: Vec<Value>,
    /// What identifies the inputs in the journal's header (`None`: their
    /// [`inputs_digest`](crate::batch::inputs_digest)).
    pub inputs_id: Option<String>,
    /// The journal file, when the batch keeps one.
    pub journal: Option<PathBuf>,
    /// The scheduler's options.
    pub options: BatchOptions,
}

impl BatchSettings {
    /// A batch of `create` over `inputs`, with no journal, and the scheduler's default options
    /// but the client's retry and poll policies.
    pub fn new(create: CreatePrediction, inputs: Vec<Value>, client: &EffectiveSettings) -> Self {
        BatchSettings {
            create,
            inputs,
            inputs_id: None,
            journal: None,
            options: BatchOptions {
                retry: client.retry.clone(),
                poll: client.poll.clone(),
                ..BatchOptions::default()
            },
        }
    }

    /// The scheduler's spec.
    pub fn spec(&self) -> BatchSpec {
        let spec = BatchSpec::new(self.create.clone(), self.inputs.clone());
        match &self.inputs_id {
            Some(id) => spec.inputs_id(id.clone()),
            None => spec,
        }
    }

    /// The scheduler: a new batch, or one resumed from `journal` (which must be this batch's:
    /// else [`JournalError::Mismatch`], as [`BatchError::Journal`]).
    pub fn start(
        &self,
        cfg: &Config,
        journal: Option<&Journal>,
        clock: Clock,
    ) -> Result<Batch, BatchError> {
        let (cfg, spec, opts) = (cfg.clone(), self.spec(), self.options.clone());
        match journal {
            None => Batch::new(cfg, spec, opts, clock).map_err(BatchError::Start),
            Some(journal) => Batch::resume(cfg, spec, opts, clock, journal).map_err(|e| match e {
                JournalError::Invalid(e) => BatchError::Start(e),
                e => BatchError::Journal {
                    path: self.journal.clone().unwrap_or_default(),
                    source: e,
                },
            }),
        }
    }

    /// Reads the bytes of an existing journal file: `None` when it holds no complete line (a
    /// new file, or one cut before its header was whole: nothing was sent for it), else the
    /// journal (its torn last line dropped: truncate the file to [`Journal::valid_len`] before
    /// appending).
    pub fn read_journal(&self, bytes: &[u8]) -> Result<Option<Journal>, BatchError> {
        if !bytes.contains(&b'\n') {
            return Ok(None);
        }
        Journal::parse(bytes)
            .map(Some)
            .map_err(|source| BatchError::Journal {
                path: self.journal.clone().unwrap_or_default(),
                source,
            })
    }

    /// The I/O error of the journal file.
    pub fn io_error(&self, source: std::io::Error) -> BatchError {
        BatchError::Io {
            path: self.journal.clone().unwrap_or_default(),
            source,
        }
    }
}

/// The largest journal file a batch reads back (1 GiB: some 3 million items). A larger file,
/// or one that is not a regular file (a device, a pipe), is refused with [`BatchError::Io`].
pub const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// Why a batch of a client could not start, or ended early.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The batch cannot start: an invalid model, an invalid option (see
    /// [`Batch::new`](crate::batch::Batch::new)).
    #[error("the batch cannot start: {0}")]
    Start(#[source] Error),
    /// The journal file belongs to another batch ([`JournalError::Mismatch`]: another target,
    /// other inputs, another number of items) or is not a journal. The file was left as it was.
    #[error("the journal {} cannot be used: {source}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: JournalError,
    },
    /// The journal file could not be opened, read, written or made durable. When this ends a
    /// running batch, nothing was sent after the failed record (the requests in flight were
    /// answered), and resuming from the journal is safe.
    #[error("the journal {} failed: {source}", path.display())]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The batch ended early ([`BatchSummary::error`](crate::batch::BatchSummary::error)): a
    /// refused token or target, the network or the server failing past the retry policy.
    #[error("the batch ended early: {0}")]
    Failed(#[source] Error),
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

        /// How many files of one prediction
        /// [`Client::download_outputs`](crate::Client::download_outputs) fetches at once
        /// (default 4; 0 counts as 1, which downloads one file after the other on the calling
        /// thread or task). The blocking client runs that many scoped threads, the async one
        /// that many downloads within the calling task; none outlives the call.
        pub fn download_concurrency(mut self, files: usize) -> Self {
            self.settings.download_concurrency = Some(files);
            self
        }

        /// Takes a strong `ETag` of 64 hex digits from any output host as the SHA-256 of the
        /// body, and checks it as the body streams (a mismatch is an
        /// [`OutputErrorKind::ChecksumMismatch`]($crate::OutputErrorKind::ChecksumMismatch)
        /// error, and `download_outputs` removes the partial file). Off by default: only the
        /// API's own file downloads are known to use content-hash ETags (other hosts' ETags are
        /// opaque, an S3 ETag is an MD5 or a multipart hash); turn it on for a proxy or CDN you
        /// know hashes its content this way.
        pub fn verify_etag_sha256(mut self, on: bool) -> Self {
            self.settings.verify_etag_sha256 = Some(on);
            self
        }

        /// How event streams are followed (reconnections, backoff, who gets the token): used by
        /// `stream` and by the watcher that finishes waits and runs on a stream's `done` event.
        pub fn stream_options(mut self, options: $crate::StreamOptions) -> Self {
            self.settings.stream = Some(options);
            self
        }

        /// Checks every create's input (`run`, `create`, `start`, `stream_run`...; not
        /// batches) against its model version's schema before sending it
        /// ([`replicate_protocol::validate`]($crate::validate)): a bad input is an
        /// [`Error::Validation`]($crate::Error::Validation) listing every problem, and nothing
        /// is created. [`Validation::Warn`]($crate::Validation::Warn) lets inputs the schema
        /// does not list through with a `tracing` warning, [`Validation::Strict`]($crate::Validation::Strict)
        /// refuses them.
        ///
        /// Off by default: the schema costs one more request (`GET` of the model, of the
        /// version or of the deployment) the first time each model, version or deployment is
        /// run, and again every 5 minutes for names (a new version may have been pushed). The
        /// client keeps the schemas of the last 64 versions. One create can say otherwise
        /// ([`CreatePrediction::validate`]($crate::CreatePrediction::validate)).
        pub fn validate_inputs(mut self, validation: $crate::Validation) -> Self {
            self.settings.validate_inputs = Some(validation);
            self
        }
    };
}

/// Expands, inside an adapter's `impl Client`, to the methods both clients offer with the same
/// body, blocking or async: `client_methods!(;)` in a blocking client, `client_methods!(async;
/// .await)` in an async one. The client needs `settings: EffectiveSettings` in `self.inner`,
/// and the methods `drive`, `execute` and `paginate`, and a `Pages` type.
#[doc(hidden)]
#[macro_export]
// `crate::now` and `crate::ClientBuilder` are the invoking adapter's, on purpose.
#[allow(clippy::crate_in_macro_def)]
macro_rules! client_methods {
    ($($async_:ident)?; $($await_:tt)*) => {
        /// The configuration requests are built from.
        pub fn config(&self) -> &$crate::Config {
            &self.inner.settings.cfg
        }

        /// This client's wait options (its poll and retry policies, its sync-mode hold), with no
        /// deadline: what [`Client::wait`] and [`Client::run`] use, to adjust and pass to
        /// [`Client::wait_with`], [`Client::run_with`] or [`RunHandle::wait_with`](crate::RunHandle::wait_with).
        pub fn wait_options(&self) -> $crate::WaitOptions {
            self.inner.settings.wait_options(crate::now(), None)
        }

        /// [`Client::wait_options`] with a deadline `timeout` from now, at which the wait
        /// cancels the prediction and ends with
        /// [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded).
        pub fn wait_options_within(&self, timeout: ::std::time::Duration) -> $crate::WaitOptions {
            self.inner.settings.wait_options(crate::now(), Some(timeout))
        }

        /// Executes one endpoint of `replicate-protocol` with this client's retry policy.
        pub $($async_)? fn execute<E: $crate::Endpoint>(
            &self,
            endpoint: E,
        ) -> Result<E::Output, $crate::Error> {
            self.drive($crate::Call::with_policy(
                endpoint,
                self.inner.settings.cfg.clone(),
                self.inner.settings.retry.clone(),
                None,
            )) $($await_)*
        }

        /// The limits downloads run with
        /// ([`ClientBuilder::max_download_bytes`](crate::ClientBuilder::max_download_bytes),
        /// [`ClientBuilder::min_download_progress`](crate::ClientBuilder::min_download_progress)).
        pub fn download_limits(&self) -> $crate::DownloadLimits {
            self.inner.settings.download_limits()
        }

        /// The options event streams are followed with
        /// ([`ClientBuilder::stream_options`](crate::ClientBuilder::stream_options)).
        pub fn stream_options(&self) -> $crate::StreamOptions {
            self.inner.settings.stream.clone()
        }

        /// Creates a prediction. It is sent once: see [`Error::CreateOutcomeUnknown`](crate::Error::CreateOutcomeUnknown).
        /// Its input is validated first when the client or the create asks for it
        /// ([`ClientBuilder::validate_inputs`](crate::ClientBuilder::validate_inputs)).
        pub $($async_)? fn create(
            &self,
            create: $crate::CreatePrediction,
        ) -> Result<$crate::Prediction, $crate::Error> {
            let settings = &self.inner.settings;
            let call = $crate::Call::with_policy(
                create,
                settings.cfg.clone(),
                settings.retry.clone(),
                None,
            );
            self.drive(settings.validated(call, None)) $($await_)*
        }

        /// Gets a prediction.
        pub $($async_)? fn get(&self, id: &str) -> Result<$crate::Prediction, $crate::Error> {
            self.execute($crate::GetPrediction::new(id)) $($await_)*
        }

        /// Cancels a prediction.
        pub $($async_)? fn cancel(&self, id: &str) -> Result<$crate::Prediction, $crate::Error> {
            self.execute($crate::CancelPrediction::new(id)) $($await_)*
        }

        /// Every prediction, newest first, fetching pages as they are read (at most the page
        /// cap, see [`ClientBuilder::max_pages`](crate::ClientBuilder::max_pages)).
        pub fn list(&self) -> Pages<$crate::ListPredictions> {
            self.paginate($crate::ListPredictions::new())
        }

        /// Waits until the prediction is terminal, or `timeout` passes (then a cancel is sent
        /// and [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded) returned). The
        /// terminal prediction is returned whatever its status; see
        /// [`Prediction::into_result`](crate::Prediction::into_result).
        pub $($async_)? fn wait(
            &self,
            id: &str,
            timeout: Option<::std::time::Duration>,
        ) -> Result<$crate::Prediction, $crate::Error> {
            self.wait_with(id, self.inner.settings.wait_options(crate::now(), timeout)) $($await_)*
        }

        /// [`Client::wait`] with explicit options.
        pub $($async_)? fn wait_with(
            &self,
            id: &str,
            opts: $crate::WaitOptions,
        ) -> Result<$crate::Prediction, $crate::Error> {
            self.drive($crate::Wait::new(self.inner.settings.cfg.clone(), id, opts)) $($await_)*
        }

        /// Runs a model and returns its output.
        ///
        /// `model` is `owner/name`, `owner/name:version` or a version id. The create uses sync
        /// mode (see [`ClientBuilder::sync_wait`](crate::ClientBuilder::sync_wait)) and the
        /// prediction is polled if the answer is not terminal yet. A failed, canceled or aborted
        /// prediction is an error carrying it; any failure after the create is
        /// [`Error::AfterCreate`](crate::Error::AfterCreate), carrying the prediction's id.
        pub $($async_)? fn run(
            &self,
            model: &str,
            input: ::serde_json::Value,
        ) -> Result<::serde_json::Value, $crate::Error> {
            let create = self.inner.settings.run_create(model, input)?;
            let prediction = self.run_with(create, self.wait_options()) $($await_)* ?;
            Ok(prediction.output)
        }

        /// [`Client::run`] that gives up at `timeout`: the prediction is then canceled, and the
        /// error is [`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded) (with
        /// `cancel_sent`). Unlike wrapping `run` in a timeout of your own, nothing is left
        /// running: the sync-mode hold and every poll end by the deadline too.
        pub $($async_)? fn run_within(
            &self,
            model: &str,
            input: ::serde_json::Value,
            timeout: ::std::time::Duration,
        ) -> Result<::serde_json::Value, $crate::Error> {
            let create = self.inner.settings.run_create(model, input)?;
            let prediction = self.run_with(create, self.wait_options_within(timeout)) $($await_)* ?;
            Ok(prediction.output)
        }

        /// Creates and waits for a prediction with explicit options; the prediction is returned
        /// when it succeeded, otherwise the matching error. The input is validated first when
        /// the client or the create asks for it
        /// ([`ClientBuilder::validate_inputs`](crate::ClientBuilder::validate_inputs)).
        pub $($async_)? fn run_with(
            &self,
            create: $crate::CreatePrediction,
            opts: $crate::WaitOptions,
        ) -> Result<$crate::Prediction, $crate::Error> {
            let settings = &self.inner.settings;
            let deadline = opts.deadline;
            let run = $crate::Run::new(settings.cfg.clone(), create, opts);
            self.drive(settings.validated(run, deadline)) $($await_)*
                ?
                .into_result()
        }

        /// The signing secret of the account's webhooks (`GET /v1/webhooks/default/secret`).
        pub $($async_)? fn webhook_secret(
            &self,
        ) -> Result<$crate::webhook::WebhookSecret, $crate::Error> {
            self.execute($crate::api::GetDefaultWebhookSecret::new()) $($await_)*
        }

        /// Verifies a webhook delivery (its headers and raw body) against `secret` at the
        /// system clock's time, and returns the prediction it carries (see
        /// [`webhook::verify_prediction`]($crate::webhook::verify_prediction)). A delivery
        /// verifies again when it is sent again within the tolerance window: deduplicate by
        /// its `webhook-id`.
        pub fn verify_webhook(
            secret: &$crate::webhook::WebhookSecret,
            headers: &::http::HeaderMap,
            body: &[u8],
        ) -> Result<$crate::Prediction, $crate::Error> {
            let now = $crate::webhook::unix_timestamp(::std::time::SystemTime::now());
            $crate::webhook::verify_prediction(secret, headers, body, now)
        }

        /// Gets a file's details (`GET /v1/files/{id}`).
        pub $($async_)? fn get_file(
            &self,
            id: &str,
        ) -> Result<$crate::api::FileObject, $crate::Error> {
            self.execute($crate::api::GetFile::new(id)) $($await_)*
        }

        /// Every file, newest first, fetching pages as they are read.
        pub fn list_files(&self) -> Pages<$crate::api::ListFiles> {
            self.paginate($crate::api::ListFiles::new())
        }

        /// Deletes a file (`DELETE /v1/files/{id}`).
        pub $($async_)? fn delete_file(&self, id: &str) -> Result<(), $crate::Error> {
            self.execute($crate::api::DeleteFile::new(id)) $($await_)*
        }

        /// Uploads a file (`POST /v1/files`). `mime` defaults to a guess from the name's
        /// extension, `metadata` to `{}`. The upload is sent once (never repeated when its
        /// answer is lost), under an idle timeout rather than a total one, so large files have
        /// time to go. The API accepts files up to about 100 MiB.
        pub $($async_)? fn upload_file(
            &self,
            bytes: impl Into<Vec<u8>>,
            name: &str,
            mime: Option<&str>,
            metadata: Option<::serde_json::Value>,
        ) -> Result<$crate::api::FileObject, $crate::Error> {
            let mut file = $crate::api::CreateFile::new(bytes, name);
            if let Some(mime) = mime {
                file = file.content_type(mime);
            }
            if let Some(metadata) = metadata {
                file = file.metadata(metadata);
            }
            self.upload(file) $($await_)*
        }

        /// Sends an upload request built by hand.
        pub $($async_)? fn upload(
            &self,
            file: $crate::api::CreateFile,
        ) -> Result<$crate::api::FileObject, $crate::Error> {
            self.execute(file) $($await_)*
        }

        /// [`Client::prepare_input_file`] for bytes in memory: a `data:` URL when at most the
        /// upload threshold, otherwise uploaded and its `urls.get` returned.
        pub $($async_)? fn prepare_input(
            &self,
            input: $crate::FileInput,
        ) -> Result<::serde_json::Value, $crate::Error> {
            match input.prepare(self.inner.settings.upload_threshold) {
                $crate::Prepared::DataUrl(url) => Ok(::serde_json::Value::String(url)),
                $crate::Prepared::Upload => {
                    let file = self.upload(input.into_upload()) $($await_)* ?;
                    $crate::input::uploaded_value(file)
                }
            }
        }
    };
}

/// Expands to an adapter's `ClientBuilder` constructors on `Client`: `new`, `from_env`,
/// `builder_from_env` and `builder`. The builder must implement `Default` and have a
/// `settings: ClientSettings` field.
#[doc(hidden)]
#[macro_export]
macro_rules! client_constructors {
    () => {
        /// A client for the public API with this token and default settings.
        pub fn new(token: impl Into<String>) -> Result<Client, $crate::Error> {
            Client::builder().token(token).build()
        }

        /// A client from `REPLICATE_API_TOKEN` and, when set, `REPLICATE_BASE_URL`.
        pub fn from_env() -> Result<Client, $crate::Error> {
            Self::builder_from_env().build()
        }

        /// A builder preset from the environment, to adjust before building.
        pub fn builder_from_env() -> ClientBuilder {
            ClientBuilder {
                settings: $crate::ClientSettings::from_env_with(|k| ::std::env::var(k).ok()),
                ..ClientBuilder::default()
            }
        }

        /// A builder.
        pub fn builder() -> ClientBuilder {
            ClientBuilder::default()
        }
    };
}
