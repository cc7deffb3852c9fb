#![doc = include_str!("../README.md")]
//!
//! # How it works
//!
//! Every decision (what to send, when to retry, when a prediction is done) is taken by
//! `replicate-protocol`; this crate only sends requests, sleeps on tokio timers, and reads bodies
//! with a size cap. Its API is the one of the blocking `replicate-ureq` client, with `async`
//! methods and a [`Stream`](futures_util::Stream) instead of an iterator.
//!
//! # Common tasks
//!
//! | task | call |
//! |---|---|
//! | run a model, get its output | [`Client::run`] |
//! | watch progress, download the files | [`Client::start_from`], [`RunHandle::updates`], [`Client::download_outputs`] |
//! | stream a large output, in constant memory | [`Client::download_to`] (any writer), [`Client::open_output`] (a reader / stream) |
//! | start now, collect later with a webhook | [`CreatePrediction::webhook`], [`Client::start`], [`Client::verify_webhook`] |
//! | a timeout that cancels | [`Client::run_within`], [`RunHandle::cancel_on_drop`] |
//! | check inputs against the model's schema before sending | [`ClientBuilder::validate_inputs`], [`CreatePrediction::validate`] |
//! | thousands of predictions, resumable | [`Client::batch`], [`BatchBuilder::stream`] |
//! | test against a fake server | [`replicate-fake`](https://docs.rs/replicate-fake)'s `FakeServer` |
//!
//! Watch progress, then download the files:
//!
//! ```no_run
//! use replicate_reqwest::{Client, StreamExt, Update};
//! use serde_json::json;
//!
//! # async fn example(client: Client) -> Result<(), replicate_reqwest::Error> {
//! let handle = client.start_from("black-forest-labs/flux-schnell", json!({"prompt": "a cat"})).await?;
//! println!("started {}", handle.id()); // known at once: store it
//! let mut updates = handle.updates();
//! while let Some(update) = updates.next().await {
//!     match update? {
//!         Update::Progress(p) => eprintln!("{}%", p.percentage),
//!         Update::Finished(prediction) => {
//!             let prediction = prediction.into_result()?;
//!             let paths = client.download_outputs(&prediction, "out".as_ref()).await?;
//!             println!("{paths:?}");
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Stream a large output to a file (or any writer), holding one chunk at a time, or read it
//! as a stream of [`Bytes`](bytes::Bytes):
//!
//! ```
//! # use replicate_reqwest::Client;
//! # use serde_json::json;
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let fake = replicate_fake::FakeServer::start().await?;
//! # let client = Client::builder().base_url(fake.base_url()).token(fake.token()).build()?;
//! use replicate_reqwest::StreamExt;
//! let output = client.run("fake/large-files", json!({"output_bytes": 8 << 20})).await?;
//! let url = output[0].as_str().ok_or("no URL")?;
//! let done = client.download_to(url, &mut tokio::io::sink()).await?; // a File, a hasher...
//! assert_eq!(done.bytes, 8 << 20);
//! let mut chunks = client.open_output(url).await?;
//! while let Some(chunk) = chunks.next().await {
//!     let chunk = chunk?; // an error ends the stream: it never ends short silently
//! #   let _ = chunk;
//! }
//! # Ok(()) }
//! ```
//!
//! Start now, collect later with a webhook:
//!
//! ```no_run
//! use replicate_reqwest::{Client, CreatePrediction, Target, WebhookEvent, http::HeaderMap};
//! use serde_json::json;
//!
//! # async fn example(client: Client) -> Result<(), replicate_reqwest::Error> {
//! let create = CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell")?)
//!     .input(json!({"prompt": "a cat"}))
//!     .webhook("https://example.com/hooks/replicate", &[WebhookEvent::Completed]);
//! let id = client.start(create).await?.id().to_owned();
//! // Later, in the webhook's handler, with the raw body and the headers as received:
//! # let (headers, body) = (HeaderMap::new(), Vec::<u8>::new());
//! let secret = client.webhook_secret().await?; // fetch once and keep it
//! let prediction = Client::verify_webhook(&secret, &headers, &body)?;
//! assert_eq!(prediction.id, id);
//! # Ok(()) }
//! ```
//!
//! A timeout that cancels the prediction: `tokio::time::timeout(d, client.run(..))` would drop
//! the future and leave the prediction running (and billing). Use `run_within`, or a handle
//! that cancels when dropped before the end:
//!
//! ```no_run
//! # use replicate_reqwest::Client;
//! # use serde_json::json;
//! # async fn example(client: Client) -> Result<(), replicate_reqwest::Error> {
//! let timeout = std::time::Duration::from_secs(30);
//! let output = client.run_within("black-forest-labs/flux-schnell", json!({"prompt": "a cat"}), timeout).await?;
//!
//! let mut guarded = client
//!     .start_from("black-forest-labs/flux-schnell", json!({"prompt": "a dog"}))
//!     .await?
//!     .cancel_on_drop();
//! let output = tokio::time::timeout(timeout, guarded.output()).await; // elapsed: canceled on drop
//! # Ok(()) }
//! ```
//!
//! Check inputs against the model's schema before anything is sent (see
//! [`protocol::validate`]): the schema is fetched once per model version and cached, so it costs
//! one `GET` per model (off by default for that reason):
//!
//! ```
//! use replicate_reqwest::{Client, Validation};
//! use serde_json::json;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let fake = replicate_fake::FakeServer::start().await?;
//! let client = Client::builder()
//! #   .base_url(fake.base_url()).token(fake.token())
//!     .validate_inputs(Validation::Warn) // Strict: unknown inputs are errors too
//!     .build()?;
//! let input = json!({"prompt": "a cat", "num_outputs": 20, "aspect_ratio": "square"});
//! let Err(err) = client.run("black-forest-labs/flux-schnell", input).await else {
//!     return Err("accepted".into());
//! };
//! let problems = err.validation_errors().ok_or("not a validation error")?;
//! assert_eq!(problems.len(), 2); // every problem at once, one line each in `err.to_string()`
//! assert_eq!(fake.prediction_count(), 0); // nothing was sent
//! # Ok(()) }
//! ```
//!
//! # Batches
//!
//! [`Client::batch`] runs one prediction per input, many at once, driven by
//! [`replicate_protocol::batch`]: creates and polls paced under Replicate's rate limits (and
//! slowed by a 429), a lost create answer looked up and adopted (or, when it was not created,
//! sent again) rather than blindly resent, and, with a journal file, resumable after a crash
//! without creating anything twice. [`BatchBuilder::stream`] returns a stream of
//! [`ItemResult`]s in completion order; its requests (at most [`BatchOptions::max_requests`] at
//! once) are futures polled inside the stream: nothing is spawned.
//!
//! ```no_run
//! use replicate_reqwest::{Client, StreamExt};
//! use serde_json::json;
//!
//! # async fn example(client: Client) -> Result<(), Box<dyn std::error::Error>> {
//! let inputs = (0..1000).map(|i| json!({"prompt": format!("a cat, #{i}")})).collect();
//! let mut items = client
//!     .batch("black-forest-labs/flux-schnell", inputs)
//!     .concurrency(32) // predictions in flight
//!     .journal("cats.jsonl") // resumed if it exists: run it again after a crash
//!     .stream()
//!     .await?;
//! while let Some(item) = items.next().await {
//!     let item = item?; // an `Err` is the last item: what ended the batch early
//!     match item.into_result() {
//!         Ok(prediction) => println!("{}", prediction.output),
//!         Err(e) => eprintln!("an input failed: {e}"),
//!     }
//! }
//! let summary = items.summary().ok_or("not over")?;
//! println!("{} succeeded, {} adopted after a lost answer", summary.succeeded, summary.adopted);
//! # Ok(()) }
//! ```
//!
//! The journal is an append-only JSON Lines file: a header (target, inputs digest, item count),
//! then an `intent` record before each create is sent, `created` once it is answered, `done`
//! once the item is over. Each record is appended and made durable (`sync_data`) before the
//! batch goes on, so no create is ever sent that the journal does not know about. On
//! [`BatchBuilder::stream`], an existing journal is read back: a torn last line (a write cut by
//! a crash) is truncated away, one of another model or other inputs is refused
//! ([`BatchError::Journal`]) and left untouched, and the batch resumes: items done are skipped,
//! items created are waited for, items with only an intent are looked up. An item is recorded
//! done when the next one is asked for: an item yielded just before a crash is yielded again
//! (never created again).
//!
//! With webhooks, give the creates a webhook ([`BatchBuilder::webhook`]), set
//! [`Completion::Webhook`], and feed each verified delivery to [`BatchHandle::feed_webhook`]
//! (from any task or thread): items end on their delivery instead of being polled.
//!
//! # More
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
//! The cargo features choose the TLS backend. With `rustls` (the default), clients built by this
//! crate use [rustls](https://docs.rs/rustls) with the *ring* crypto provider (the one
//! `replicate-ureq` uses, so a program with both builds a single provider) and the
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
//! With `native-tls`, clients use reqwest's native-tls backend instead: the platform's TLS library
//! (OpenSSL on Linux, Secure Transport on macOS, SChannel on Windows), its trust store, and ALPN
//! for HTTP/2. When both features are enabled, `native-tls` is the one used. With neither, the
//! client speaks plain `http://` only (a local proxy, `replicate-fake`): an `https://` URL fails
//! before anything is sent.
//!
//! # Compression
//!
//! With the `gzip` feature (on by default), requests carry `Accept-Encoding: gzip` and gzip
//! answers are decoded as they are read, as `replicate-ureq` does; the size caps
//! ([`ClientBuilder::max_response_bytes`], the download limits) count the decoded bytes, so a
//! small compressed answer cannot expand past them. A download resumed with `Range` asks for
//! `Accept-Encoding: identity`.
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use replicate_protocol::{Flow, Paginated, TransportError, TransportErrorKind};

/// `next()` and the other combinators of the [`Stream`](futures_util::Stream)s this client
/// returns (pages, events, updates), so that callers need not depend on `futures-util`.
pub use futures_util::StreamExt;
/// The `http` crate the requests and responses of [`protocol`] are made of (to implement a
/// [`Flow`] of your own).
pub use http;
pub use replicate_protocol as protocol;
pub use replicate_protocol::api::FileObject;
pub use replicate_protocol::sse::ReplicateEvent;
pub use replicate_protocol::{
    CreatePrediction, Error, FileInput, Prediction, Progress, SaveOptions, Status, StreamAuth,
    StreamOptions, SyncWait, Target, Update, Validation, WaitOptions, WebhookEvent, webhook,
};

pub use replicate_protocol::download::DEFAULT_MAX_DOWNLOAD_BYTES;
pub use replicate_protocol::input::DEFAULT_UPLOAD_THRESHOLD;
pub use replicate_protocol::settings::{
    BASE_URL_ENV, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DOWNLOAD_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, TOKEN_ENV,
};

mod batch;
mod download;
mod driver;
mod files;
mod stream;

pub use batch::{BatchBuilder, BatchHandle, BatchStream};
pub use download::OutputStream;
pub use driver::{EventStream, Items, Pages};
pub use replicate_protocol::settings::BatchError;
pub use replicate_protocol::{
    BatchOptions, BatchSummary, Completion, CreateOutcome, ItemResult, JournalError,
};

replicate_protocol::client_struct!(
    /// An async Replicate client.
    ///
    /// It holds one connection pool (a [`reqwest::Client`]) and reuses connections. Cheap to
    /// clone, and `Send + Sync`: share it between tasks.
    ;
    http: reqwest::Client,
);

replicate_protocol::client_builder!(
    /// Reuse an existing `reqwest::Client` (its connection pool, proxy and TLS settings). The
    /// timeout is still set per request by this client, and the body cap still applies; the
    /// connect timeout of this builder is ignored. To customise one from this crate's settings,
    /// start from [`http_client_builder`].
    ///
    /// Its redirect policy cannot be changed per request: build it with
    /// `.redirect(reqwest::redirect::Policy::none())`. If it follows redirects, reqwest drops the
    /// `Authorization` header on any redirect to another scheme, host or port, but keeps it on a
    /// same-origin redirect (see the [crate documentation](crate#redirects)).
    client: reqwest::Client
);

impl ClientBuilder {
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

/// A `reqwest::ClientBuilder` set up as this crate sets up its own: the TLS backend of the cargo
/// features (by default rustls with the ring provider and the platform's trust roots; see the
/// [crate documentation](crate#tls)), HTTP/2 and HTTP/1.1, gzip (with the `gzip` feature), no
/// redirects, a 10 s connect timeout.
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
/// With the `rustls` feature, `reqwest::Client::new()` and `reqwest::Client::builder()` panic when
/// no reqwest feature of your dependency graph brings a crypto provider (this crate brings none to
/// reqwest; see the [crate documentation](crate#tls)); this builder does not need one.
pub fn http_client_builder() -> Result<reqwest::ClientBuilder, Error> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    with_tls(builder)
}

/// native-tls (with ALPN, the platform's trust store) when the `native-tls` feature is enabled.
#[cfg(feature = "native-tls")]
fn with_tls(builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, Error> {
    Ok(builder.tls_backend_native())
}

/// rustls with ring and the platform's trust roots when only the `rustls` feature is enabled.
#[cfg(all(feature = "rustls", not(feature = "native-tls")))]
fn with_tls(builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, Error> {
    Ok(builder.tls_backend_preconfigured(tls_config()?))
}

/// No TLS feature: plain `http://` only (an `https://` request fails before anything is sent).
#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
fn with_tls(builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, Error> {
    Ok(builder)
}

/// rustls with ring and the platform's trust roots, offering HTTP/2 and HTTP/1.1 (reqwest does
/// not add ALPN to a preconfigured TLS backend).
#[cfg(all(feature = "rustls", not(feature = "native-tls")))]
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

impl Client {
    replicate_protocol::client_constructors!();
    replicate_protocol::client_methods!(async; .await);

    /// Drives any flow of `replicate-protocol` to its end with this client's connection pool,
    /// sleeping on tokio timers in between, and dropping the items it yields (stream [`Items`]
    /// to get them).
    ///
    /// While the flow sleeps waiting for a streaming prediction, this future also follows the
    /// prediction's event stream (unless [`ClientBuilder::follow_stream`] turned that off) and
    /// wakes the flow on `done`, so it ends then rather than at its next poll. A failing stream
    /// only means the flow goes on polling. Nothing is spawned: the stream is read only while
    /// this future is polled, and closed when it ends or is dropped.
    pub async fn drive<F: Flow>(&self, flow: F) -> F::Output {
        driver::Driver::new(self.clone(), flow).finish().await
    }

    /// Every item of any paginated list, starting at `first`. The stream ends after the last
    /// page, or after yielding the error that stopped it.
    pub fn paginate<P>(&self, first: P) -> Pages<P>
    where
        P: Paginated + Send + 'static,
        P::Item: Send + 'static,
    {
        self.items(self.inner.settings.pager(first))
    }

    /// The items a flow yields, as a stream that drives it (see [`Items`]).
    pub fn items<F>(&self, flow: F) -> Items<F>
    where
        F: Flow<Output = Result<(), Error>> + Send + 'static,
        F::Item: Send + 'static,
    {
        Items::new(driver::Driver::new(self.clone(), flow))
    }
}

replicate_protocol::run_handle!(async; .await);

impl RunHandle {
    /// The same handle, canceling the prediction when it is dropped before it was seen
    /// terminal: the guard for `tokio::time::timeout(…, handle.output())` and for tasks that
    /// may be aborted, which would otherwise leave the prediction running (and billing).
    ///
    /// The cancel is one request, sent from a task spawned on the current tokio runtime when
    /// the guard is dropped (there is no async drop): it may run after the guard's owner is
    /// gone, and is lost if the runtime shuts down first or there is none. Awaiting
    /// [`CancelOnDrop::wait`] or [`CancelOnDrop::output`] to the end, or calling
    /// [`CancelOnDrop::disarm`], means no cancel.
    pub fn cancel_on_drop(self) -> CancelOnDrop {
        CancelOnDrop {
            handle: self,
            armed: true,
        }
    }
}

/// A [`RunHandle`] that cancels its prediction when dropped before it was seen terminal (see
/// [`RunHandle::cancel_on_drop`]).
#[derive(Debug)]
pub struct CancelOnDrop {
    handle: RunHandle,
    armed: bool,
}

impl CancelOnDrop {
    /// The handle.
    pub fn handle(&self) -> &RunHandle {
        &self.handle
    }

    /// [`RunHandle::wait`]; once it returns the terminal prediction, dropping sends no cancel.
    pub async fn wait(&mut self) -> Result<Prediction, Error> {
        let result = self.handle.wait().await;
        if result.as_ref().is_ok_and(|p| p.status.is_terminal()) {
            self.armed = false;
        }
        result
    }

    /// [`RunHandle::output`]; once the prediction is terminal, dropping sends no cancel.
    pub async fn output(&mut self) -> Result<serde_json::Value, Error> {
        Ok(self.wait().await?.into_result()?.output)
    }

    /// The handle back, without the guard: dropping it sends nothing.
    pub fn disarm(mut self) -> RunHandle {
        self.armed = false;
        self.handle.clone()
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed || self.handle.prediction.status.is_terminal() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let handle = self.handle.clone();
            tracing::debug!(target: "replicate_reqwest", id = %handle.id(), "replicate: canceling a prediction whose handle was dropped");
            runtime.spawn(async move {
                let _ = handle.cancel().await;
            });
        }
    }
}

/// The instant flows are driven with: tokio's clock, the one `sleep_until` uses.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// `what` stayed silent for a whole `timeout`.
pub(crate) fn idle_timeout(timeout: Duration, what: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Timeout,
        format!("{what} made no progress for {timeout:?}"),
    )
}

/// The HTTP stack could not be set up. Nothing was sent.
fn setup_error(message: String) -> Error {
    Error::Transport(TransportError::new(TransportErrorKind::Other, message))
}

/// Maps a reqwest error to the protocol's transport error kinds.
///
/// `is_connect` is true only for errors of hyper-util's connector or pool checkout (TCP connect,
/// DNS, TLS handshake, proxy tunnel), which happen before the request is handed to a connection,
/// so it wins over `is_timeout` (a connect timeout is both). Timeouts of the whole exchange are
/// never `is_connect`.
pub(crate) fn classify(err: reqwest::Error) -> TransportError {
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
