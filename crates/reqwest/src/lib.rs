//! Async client for the [Replicate](https://replicate.com) HTTP API, built on
//! [`replicate-protocol`](replicate_protocol), [reqwest](https://docs.rs/reqwest) 0.13 and
//! [tokio](https://tokio.rs).
//!
//! Every decision (what to send, when to retry, when a prediction is done) is taken by
//! `replicate-protocol`; this crate only sends requests, sleeps on tokio timers, and reads bodies
//! with a size cap. Its API is the one of the blocking `replicate-ureq` client, with `async`
//! methods and a [`Stream`] instead of an iterator.
//!
//! A [`Client`] is cheap to clone and `Send + Sync`: share one per process so every task uses
//! the same connection pool (HTTP/2 multiplexes concurrent requests on one connection).
//!
//! ```no_run
//! use futures_util::future::join_all;
//! use replicate_reqwest::Client;
//! use serde_json::json;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), replicate_reqwest::Error> {
//!     let client = Client::from_env()?; // REPLICATE_API_TOKEN, optional REPLICATE_BASE_URL
//!     let prompts = ["a cat", "a dog", "a fox"];
//!     // Three predictions at once, on one connection pool.
//!     let runs = prompts.iter().map(|prompt| {
//!         client.run("black-forest-labs/flux-schnell", json!({ "prompt": prompt }))
//!     });
//!     for (prompt, output) in prompts.iter().zip(join_all(runs).await) {
//!         println!("{prompt}: {}", output?);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Against a proxy that mounts the API under a prefix:
//!
//! ```no_run
//! # fn main() -> Result<(), replicate_reqwest::Error> {
//! let client = replicate_reqwest::Client::builder()
//!     .token("hk-your-key")
//!     .base_url("https://proxy.example/replicate")
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! Listing every prediction, page after page:
//!
//! ```no_run
//! use futures_util::StreamExt;
//! # async fn list(client: replicate_reqwest::Client) -> Result<(), replicate_reqwest::Error> {
//! let mut predictions = client.list();
//! while let Some(prediction) = predictions.next().await {
//!     let prediction = prediction?;
//!     println!("{} {}", prediction.id, prediction.status);
//! }
//! # Ok(()) }
//! ```
//!
//! # Runtime and clock
//!
//! The futures of this crate need a tokio runtime with its time and I/O drivers enabled (what
//! `#[tokio::main]` gives). Flows are driven with tokio's clock ([`tokio::time::Instant`]), so a
//! runtime with paused time sees consistent deadlines and sleeps.
//!
//! Dropping a future stops the work on this side only: a prediction already created keeps running
//! on Replicate. To give up on a prediction *and* cancel it, give [`Client::wait_with`] or
//! [`Client::run_with`] a deadline ([`WaitOptions::deadline`], with
//! [`WaitOptions::cancel_at_deadline`]).
//!
//! # TLS
//!
//! Clients built by this crate use [rustls](https://docs.rs/rustls) with the *ring* crypto provider
//! (the one `replicate-ureq` uses, so a program with both builds a single provider) and the
//! [platform verifier](https://docs.rs/rustls-platform-verifier): the operating system's trust store
//! (on Linux, the CA bundle that `rustls-native-certs` finds), as reqwest does by default. When no
//! root certificate can be loaded, [`ClientBuilder::build`] fails. Certificate verification is
//! never disabled.
//!
//! The configuration is handed to reqwest directly (this crate enables reqwest's
//! `rustls-no-provider` feature), so no process-wide crypto provider is installed. To build a
//! customised `reqwest::Client` for [`ClientBuilder::client`], start from
//! [`http_client_builder`]. Building reqwest clients with reqwest's own builder
//! (`reqwest::Client::new()`) panics unless something in your dependency graph enables a reqwest
//! feature that brings a provider (`rustls`, `default-tls`) or a process-wide provider was
//! installed first (`rustls::crypto::ring::default_provider().install_default()`).
//!
//! # Redirects
//!
//! Clients built by this crate never follow redirects: a 3xx answer is handed to
//! `replicate-protocol`, which reports it as an [`Error::Api`]. A `reqwest::Client` supplied with
//! [`ClientBuilder::client`] keeps its own redirect policy, which cannot be changed per request;
//! build it with `.redirect(reqwest::redirect::Policy::none())`. If it does follow redirects,
//! reqwest removes `Authorization` (and `Cookie`, `Proxy-Authorization`, `WWW-Authenticate`) from
//! a redirected request whose scheme, host or port differs from the previous one, so the token is
//! not sent to another origin; a same-origin redirect keeps it. reqwest matches these headers by
//! name: the *sensitive* mark `replicate-protocol` puts on `Authorization` is not what strips it,
//! it keeps the value out of `Debug` output and out of HTTP/2 header compression tables.
//!
//! # Logging
//!
//! The client emits [`tracing`](https://docs.rs/tracing) events under the target
//! `replicate_reqwest`: at `debug`, each request's method and URL (without its query), its
//! status or failure, retries, stream connections and download hops (with whether they carry
//! the token); at `trace`, the waits between polls. Headers are never logged, so neither is the
//! token; reqwest and hyper do not log headers either.
//!
//! # Retries
//!
//! Retries are decided by [`RetryPolicy`](replicate_protocol::RetryPolicy). Below it, the transport re-sends only requests it knows
//! the server never processed: hyper re-sends a request that could not be written on a reused
//! pooled connection, and reqwest re-sends an HTTP/2 request the server refused
//! (`REFUSED_STREAM`) or declined with a graceful `GOAWAY`.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::{Either, select};
use futures_util::stream::{BoxStream, Stream};
use replicate_protocol::{
    Call, CancelPrediction, ClientSettings, Config, CreatePrediction, Endpoint, Flow,
    GetPrediction, ListPredictions, Outgoing, PagerStep, Paginated, Resolved, Run, Step,
    TransportError, TransportErrorKind, Wait, WaitOptions,
};
use serde_json::Value;

pub use replicate_protocol as protocol;
pub use replicate_protocol::api::FileObject;
pub use replicate_protocol::output::SaveOptions;
pub use replicate_protocol::sse::ReplicateEvent;
pub use replicate_protocol::{Error, FileInput, Prediction, Status, StreamAuth, StreamOptions};

pub use replicate_protocol::input::DEFAULT_UPLOAD_THRESHOLD;
pub use replicate_protocol::output::DEFAULT_MAX_DOWNLOAD_BYTES;
pub use replicate_protocol::settings::{
    BASE_URL_ENV, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, TOKEN_ENV,
};

mod download;
mod files;
mod stream;

pub use stream::EventStream;

/// The most memory reserved up front from a `Content-Length`; the body grows past it as it comes.
const MAX_PREALLOCATION: u64 = 1024 * 1024;

/// An async Replicate client.
///
/// It holds one connection pool (a [`reqwest::Client`]) and reuses connections. Cheap to clone,
/// and `Send + Sync`: share it between tasks.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Resolved,
    http: reqwest::Client,
}

/// Builds a [`Client`].
#[derive(Debug, Default)]
pub struct ClientBuilder {
    settings: ClientSettings,
    client: Option<reqwest::Client>,
}

impl ClientBuilder {
    replicate_protocol::client_settings_setters!();

    /// Reuse an existing `reqwest::Client` (its connection pool, proxy and TLS settings). The
    /// timeout is still set per request by this client, and the body cap still applies; the
    /// connect timeout of this builder is ignored. To customise one from this crate's settings,
    /// start from [`http_client_builder`].
    ///
    /// Its redirect policy cannot be changed per request: build it with
    /// `.redirect(reqwest::redirect::Policy::none())`. If it follows redirects, reqwest drops the
    /// `Authorization` header on any redirect to another scheme, host or port, but keeps it on a
    /// same-origin redirect (see the [crate documentation](crate#redirects)).
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Builds the client.
    ///
    /// Fails without a token, with an invalid base URL or user agent, or when TLS cannot be set
    /// up (no root certificate found on the system).
    pub fn build(self) -> Result<Client, Error> {
        let settings = self.settings.resolve()?;
        let http = match self.client {
            Some(client) => client,
            None => http_client_builder()?
                .connect_timeout(settings.connect_timeout)
                .build()
                .map_err(|e| setup_error(format!("cannot build the HTTP client: {}", chain(&e))))?,
        };
        Ok(Client {
            inner: Arc::new(Inner { settings, http }),
        })
    }
}

/// A `reqwest::ClientBuilder` set up as this crate sets up its own: rustls with the ring provider
/// and the platform's trust roots, HTTP/2 and HTTP/1.1, no redirects, a 10 s connect timeout.
///
/// Start from it to customise the HTTP client (proxy, pool, local address...) and pass the result
/// to [`ClientBuilder::client`]:
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let http = replicate_reqwest::http_client_builder()?
///     .pool_max_idle_per_host(4)
///     .build()?;
/// let client = replicate_reqwest::Client::builder()
///     .token("r8_...")
///     .client(http)
///     .build()?;
/// # Ok(()) }
/// ```
///
/// `reqwest::Client::new()` and `reqwest::Client::builder()` panic when no reqwest feature of your
/// dependency graph brings a crypto provider (this crate brings none to reqwest; see the
/// [crate documentation](crate#tls)); this builder does not need one.
pub fn http_client_builder() -> Result<reqwest::ClientBuilder, Error> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .tls_backend_preconfigured(tls_config()?))
}

/// rustls with ring and the platform's trust roots, offering HTTP/2 and HTTP/1.1 (reqwest does
/// not add ALPN to a preconfigured TLS backend).
fn tls_config() -> Result<rustls::ClientConfig, Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| setup_error(format!("cannot set up TLS: {e}")))?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The HTTP stack could not be set up. Nothing was sent.
fn setup_error(message: String) -> Error {
    Error::Transport(TransportError::new(TransportErrorKind::Other, message))
}

/// The instant flows are driven with: tokio's clock, the one `sleep_until` uses.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// An instant of [`now`]'s clock as a tokio instant, to sleep until it.
fn tokio_instant(at: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(at)
}

/// `what` stayed silent for a whole `timeout`.
fn idle_timeout(timeout: Duration, what: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Timeout,
        format!("{what} made no progress for {timeout:?}"),
    )
}

impl Client {
    /// A client for the public API with this token and default settings.
    pub fn new(token: impl Into<String>) -> Result<Client, Error> {
        Client::builder().token(token).build()
    }

    /// A client from `REPLICATE_API_TOKEN` and, when set, `REPLICATE_BASE_URL`.
    pub fn from_env() -> Result<Client, Error> {
        Self::builder_from_env().build()
    }

    /// A builder preset from the environment, to adjust before building. Empty variables count
    /// as unset.
    pub fn builder_from_env() -> ClientBuilder {
        ClientBuilder {
            settings: ClientSettings::from_env_with(|k| std::env::var(k).ok()),
            client: None,
        }
    }

    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The configuration requests are built from.
    pub fn config(&self) -> &Config {
        &self.inner.settings.cfg
    }

    /// Options for [`Client::wait_with`] and [`Client::run_with`]: this client's policies, with
    /// an optional deadline from now.
    pub fn wait_options(&self, timeout: Option<Duration>) -> WaitOptions {
        self.inner.settings.wait_options(now(), timeout)
    }

    /// Drives any flow of `replicate-protocol` to its end with this client's connection pool,
    /// sleeping on tokio timers in between.
    ///
    /// While the flow sleeps waiting for a streaming prediction, this future also reads the
    /// prediction's event stream (unless [`ClientBuilder::follow_stream`] turned that off) and
    /// wakes the flow on `done`, so it ends then rather than at its next poll. A failing stream
    /// only means the flow goes on polling. Nothing is spawned: the stream is read only while
    /// this future is polled, and closed when it ends or is dropped.
    pub async fn drive<F: Flow>(&self, mut flow: F) -> F::Output {
        let mut watcher: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
        let mut watched = false;
        // Whether the last exchange failed, so that the next sleep is a retry's backoff.
        let mut failed = false;
        loop {
            match flow.poll(now()) {
                // Boxed: a request's future is large (reqwest's `Pending`, the body read) and
                // lives only while the request is out, whereas a waiting flow spends most of
                // its life asleep; inline, its size would be paid for the whole wait.
                Step::Send(out) => match Box::pin(self.send(out)).await {
                    Ok(response) => {
                        failed = !response.status().is_success();
                        flow.handle_response(response, now());
                    }
                    Err(error) => {
                        failed = true;
                        flow.handle_error(error, now());
                    }
                },
                Step::Sleep(until) => {
                    let delay = until.saturating_duration_since(now());
                    if failed {
                        tracing::debug!(
                            delay_ms = millis(delay),
                            "replicate: retrying after a failure"
                        );
                    } else {
                        tracing::trace!(
                            delay_ms = millis(delay),
                            "replicate: waiting before the next poll"
                        );
                    }
                    if !watched
                        && self.inner.settings.follow_stream
                        && let Some(url) = flow.stream_hint()
                    {
                        watched = true;
                        watcher = Some(Box::pin(self.clone().watch_stream(url.to_owned())));
                    }
                    let sleep = tokio::time::sleep_until(tokio_instant(until));
                    match watcher.as_mut() {
                        None => sleep.await,
                        Some(watch) => {
                            let sleep = std::pin::pin!(sleep);
                            if let Either::Right(_) = select(sleep, watch.as_mut()).await {
                                watcher = None;
                                flow.wake();
                            }
                        }
                    }
                }
                Step::Done(output) => return output,
            }
        }
    }

    /// Reads an event stream until `done` (or a failure).
    async fn watch_stream(self, url: String) {
        let opts = self.inner.settings.stream.clone();
        if let Ok(mut events) = self.stream_url(&url, opts).await {
            while let Some(event) = events.next().await {
                if matches!(event, Ok(ReplicateEvent::Done(_)) | Err(_)) {
                    break;
                }
            }
        }
    }

    /// Executes one endpoint of `replicate-protocol` with this client's retry policy.
    pub async fn execute<E: Endpoint>(&self, endpoint: E) -> Result<E::Output, Error> {
        let call = Call::with_policy(
            endpoint,
            self.inner.settings.cfg.clone(),
            self.inner.settings.retry.clone(),
            None,
        );
        self.drive(call).await
    }

    /// Creates a prediction. It is sent once: see [`Error::CreateOutcomeUnknown`].
    pub async fn create(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        self.execute(create).await
    }

    /// Gets a prediction.
    pub async fn get(&self, id: &str) -> Result<Prediction, Error> {
        self.execute(GetPrediction::new(id)).await
    }

    /// Cancels a prediction.
    pub async fn cancel(&self, id: &str) -> Result<Prediction, Error> {
        self.execute(CancelPrediction::new(id)).await
    }

    /// Every prediction, newest first, fetching pages as the stream is polled.
    pub fn list(&self) -> Pages<ListPredictions> {
        self.paginate(ListPredictions::new())
    }

    /// Every item of any paginated list, starting at `first`. The stream ends after the last
    /// page, or after yielding the first error.
    pub fn paginate<P>(&self, first: P) -> Pages<P>
    where
        P: Paginated + Send + Sync + 'static,
        P::Item: Send + 'static,
    {
        let state = (self.clone(), self.inner.settings.pager(first));
        let stream = futures_util::stream::unfold(state, |(client, mut pager)| async move {
            loop {
                let request = match pager.next_step() {
                    PagerStep::Item(item) => return Some((Ok(item), (client, pager))),
                    PagerStep::End => return None,
                    PagerStep::Failed(e) => return Some((Err(e), (client, pager))),
                    PagerStep::Fetch(request) => client.execute(request),
                };
                match request.await {
                    Ok(page) => pager.push_page(page),
                    Err(e) => {
                        pager.fail();
                        return Some((Err(e), (client, pager)));
                    }
                }
            }
        });
        Pages {
            inner: Box::pin(stream),
        }
    }

    /// Waits until the prediction is terminal, or `timeout` passes (then a cancel is sent and
    /// [`Error::DeadlineExceeded`] returned). The terminal prediction is returned whatever its
    /// status; see [`Prediction::into_result`].
    pub async fn wait(&self, id: &str, timeout: Option<Duration>) -> Result<Prediction, Error> {
        self.wait_with(id, self.wait_options(timeout)).await
    }

    /// [`Client::wait`] with explicit options.
    pub async fn wait_with(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error> {
        self.drive(Wait::new(self.inner.settings.cfg.clone(), id, opts))
            .await
    }

    /// Runs a model and returns its output.
    ///
    /// `model` is `owner/name`, `owner/name:version` or a version id. The create uses sync mode
    /// (see [`ClientBuilder::sync_wait`]) and the prediction is polled if the answer is not
    /// terminal yet. A failed, canceled or aborted prediction is an error carrying it.
    pub async fn run(&self, model: &str, input: Value) -> Result<Value, Error> {
        let create = self.inner.settings.run_create(model, input)?;
        let prediction = self.run_with(create, self.wait_options(None)).await?;
        Ok(prediction.output)
    }

    /// Creates and waits for a prediction with explicit options; the prediction is returned when
    /// it succeeded, otherwise the matching error.
    pub async fn run_with(
        &self,
        create: CreatePrediction,
        opts: WaitOptions,
    ) -> Result<Prediction, Error> {
        self.drive(Run::new(self.inner.settings.cfg.clone(), create, opts))
            .await?
            .into_result()
    }

    /// Sends one request of the protocol and reads its whole body (up to the cap).
    ///
    /// Logs the method, the URL without its query, the status and failures at `debug` level
    /// (target `replicate_reqwest`); never a header, so never the token.
    async fn send(&self, out: Outgoing) -> Result<http::Response<Vec<u8>>, TransportError> {
        let timeout = out.timeout(self.inner.settings.timeout);
        let method = out.request.method().clone();
        let url = loggable_uri(out.request.uri());
        tracing::debug!(%method, %url, timeout_ms = millis(timeout), "replicate: sending request");
        let result = self.send_inner(out, timeout).await;
        match &result {
            Ok(resp) => tracing::debug!(
                %method,
                %url,
                status = resp.status().as_u16(),
                bytes = resp.body().len(),
                "replicate: response"
            ),
            Err(e) => tracing::debug!(
                %method,
                %url,
                kind = ?e.kind,
                error = %e.message,
                "replicate: request failed"
            ),
        }
        result
    }

    async fn send_inner(
        &self,
        out: Outgoing,
        timeout: Duration,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let mut request = reqwest::Request::try_from(out.request).map_err(classify)?;
        *request.timeout_mut() = Some(timeout);
        let mut response = self.inner.http.execute(request).await.map_err(classify)?;
        let status = response.status();
        let version = response.version();
        let headers = std::mem::take(response.headers_mut());
        let body = read_body(response, self.inner.settings.max_response_bytes).await?;
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// A URL as logged: scheme, host, port and path, without the query (download links may be
/// signed) and without anything else.
pub(crate) fn loggable_uri(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("");
    let host = uri.host().unwrap_or("");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}{}", uri.path()),
        None => format!("{scheme}://{host}{}", uri.path()),
    }
}

/// [`loggable_uri`] of a URL string.
pub(crate) fn loggable_url(url: &str) -> String {
    url.parse::<http::Uri>()
        .map(|uri| loggable_uri(&uri))
        .unwrap_or_else(|_| "<invalid URL>".to_owned())
}

/// A duration in whole milliseconds, for logs.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads a body of at most `cap` bytes, failing as soon as it is known to be larger: from its
/// `Content-Length` before reading anything, else at the chunk that crosses the cap. Dropping the
/// response then closes its connection rather than draining it.
async fn read_body(response: reqwest::Response, cap: u64) -> Result<Vec<u8>, TransportError> {
    read_body_with(response, cap, || ()).await
}

/// [`read_body`], calling `on_chunk` as each chunk arrives.
async fn read_body_with(
    mut response: reqwest::Response,
    cap: u64,
    mut on_chunk: impl FnMut(),
) -> Result<Vec<u8>, TransportError> {
    let too_large = || {
        TransportError::new(
            TransportErrorKind::BodyTooLarge,
            format!("the response body is larger than the limit of {cap} bytes"),
        )
    };
    let declared = response.content_length();
    if declared.is_some_and(|len| len > cap) {
        return Err(too_large());
    }
    let reserve = declared.unwrap_or(0).min(MAX_PREALLOCATION);
    let mut body = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        on_chunk();
        let len = u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX);
        if len > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Maps a reqwest error to the protocol's transport error kinds.
///
/// `is_connect` is true only for errors of hyper-util's connector or pool checkout (TCP connect,
/// DNS, TLS handshake, proxy tunnel), which happen before the request is handed to a connection,
/// so it wins over `is_timeout` (a connect timeout is both). Timeouts of the whole exchange are
/// never `is_connect`.
fn classify(err: reqwest::Error) -> TransportError {
    let kind = if err.is_connect() {
        TransportErrorKind::Connect
    } else if err.is_timeout() {
        TransportErrorKind::Timeout
    } else if err.is_body() || err.is_decode() || err.is_request() {
        TransportErrorKind::Io
    } else {
        TransportErrorKind::Other
    };
    // reqwest's messages name the URL (never credentials: the base URL cannot carry any) and
    // never the headers, so the token cannot appear here.
    TransportError::new(kind, chain(&err))
}

/// An error and its sources, `outer: inner: innermost`, skipping repeats.
fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A stream of every item of a paginated list; pages are fetched as it is polled, each request
/// going to the configured base URL with only the cursor of the previous page.
///
/// It is `Send` and `Unpin`: use it with [`futures_util::StreamExt`].
pub struct Pages<P: Paginated> {
    inner: BoxStream<'static, Result<P::Item, Error>>,
}

impl<P: Paginated> fmt::Debug for Pages<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl<P: Paginated> Stream for Pages<P> {
    type Item = Result<P::Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests;
