//! Blocking client for the [Replicate](https://replicate.com) HTTP API, built on
//! [`replicate-protocol`](replicate_protocol) and [ureq](https://docs.rs/ureq) 3.
//!
//! Every decision (what to send, when to retry, when a prediction is done) is taken by
//! `replicate-protocol`; this crate only sends requests, sleeps, and reads bodies with a size cap.
//!
//! ```no_run
//! use replicate_ureq::Client;
//! use serde_json::json;
//!
//! # fn main() -> Result<(), replicate_ureq::Error> {
//! let client = Client::from_env()?; // REPLICATE_API_TOKEN, optional REPLICATE_BASE_URL
//! let output = client.run("black-forest-labs/flux-schnell", json!({"prompt": "a cat"}))?;
//! println!("{output}");
//! # Ok(()) }
//! ```
//!
//! Against a proxy that mounts the API under a prefix:
//!
//! ```no_run
//! # fn main() -> Result<(), replicate_ureq::Error> {
//! let client = replicate_ureq::Client::builder()
//!     .token("hk-your-key")
//!     .base_url("https://proxy.example/replicate")
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! # Logging
//!
//! The client emits [`tracing`](https://docs.rs/tracing) events under the target
//! `replicate_ureq`: at `debug`, each request's method and URL (without its query), its status
//! or failure, retries, stream connections and download hops (with whether they carry the
//! token); at `trace`, the waits between polls. Headers are never logged, so neither is the
//! token.
//!
//! ureq itself logs through the `log` crate with the `Authorization` header redacted, **except**
//! its HTTP/1.1 codec, `ureq_proto`, which at `trace` level hex-dumps every byte it writes, the
//! request head and its `Authorization` header included. Never keep `trace` logs of
//! `ureq_proto` (with `env_logger` or `tracing-subscriber`'s filter:
//! `RUST_LOG=trace,ureq_proto=debug`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use replicate_protocol::{
    Call, CancelPrediction, ClientSettings, Config, CreatePrediction, Endpoint, Flow,
    GetPrediction, ListPredictions, Outgoing, Pager, PagerStep, Paginated, Resolved, Run, Step,
    TransportError, TransportErrorKind, Wait, WaitOptions,
};
use serde_json::Value;

pub use replicate_protocol as protocol;
pub use replicate_protocol::api::FileObject;
pub use replicate_protocol::output::SaveOptions;
pub use replicate_protocol::sse::ReplicateEvent;
pub use replicate_protocol::{Error, FileInput, Prediction, Status, StreamAuth, StreamOptions};

mod download;
mod files;
mod resolve;
mod stream;

pub use stream::EventStream;

pub use replicate_protocol::input::DEFAULT_UPLOAD_THRESHOLD;
pub use replicate_protocol::output::DEFAULT_MAX_DOWNLOAD_BYTES;
pub use replicate_protocol::settings::{
    BASE_URL_ENV, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, TOKEN_ENV,
};

/// A blocking Replicate client.
///
/// It holds one connection pool (a [`ureq::Agent`]) and reuses connections. Cheap to clone, and
/// `Send + Sync`: share it between threads.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Resolved,
    agent: ureq::Agent,
}

/// Builds a [`Client`].
#[derive(Debug, Default)]
pub struct ClientBuilder {
    settings: ClientSettings,
    agent: Option<ureq::Agent>,
}

impl ClientBuilder {
    replicate_protocol::client_settings_setters!();

    /// Reuse an existing agent (its connection pool, proxy and TLS settings). Timeouts, status
    /// handling and redirects are still set per request by this client.
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let settings = self.settings.resolve()?;
        let agent = self.agent.unwrap_or_else(|| {
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_connect(Some(settings.connect_timeout))
                .user_agent(settings.cfg.user_agent())
                .build();
            // Not `new_agent()`: its resolver spawns a thread per request (see `resolve`).
            ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::default(),
                resolve::CachingResolver::default(),
            )
        });
        Ok(Client {
            inner: Arc::new(Inner { settings, agent }),
        })
    }
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

    /// A builder preset from the environment, to adjust before building.
    pub fn builder_from_env() -> ClientBuilder {
        ClientBuilder {
            settings: ClientSettings::from_env_with(|k| std::env::var(k).ok()),
            agent: None,
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
        self.inner.settings.wait_options(Instant::now(), timeout)
    }

    /// Drives any flow of `replicate-protocol` to its end with this client's connection pool.
    ///
    /// While the flow sleeps waiting for a streaming prediction, a thread reads the prediction's
    /// event stream (unless [`ClientBuilder::follow_stream`] turned that off) with the client's
    /// stream options, and wakes the flow on `done`, so it ends then rather than at its next
    /// poll. A failing stream only means the flow goes on polling. The thread never outlives
    /// the flow: when this call returns it stops reading and reconnecting at once, and is gone
    /// at most one read timeout ([`ClientBuilder::timeout`]) later, when a read in progress
    /// returns.
    pub fn drive<F: Flow>(&self, mut flow: F) -> F::Output {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        // Dropped when this call returns, which stops the watcher.
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let mut stop_rx = Some(stop_rx);
        let _stop = stop_tx;
        let mut watching = false;
        // Whether the last exchange failed, so that the next sleep is a retry's backoff.
        let mut failed = false;
        loop {
            match flow.poll(Instant::now()) {
                Step::Send(out) => match self.send(out) {
                    Ok(resp) => {
                        failed = !resp.status().is_success();
                        flow.handle_response(resp, Instant::now());
                    }
                    Err(err) => {
                        failed = true;
                        flow.handle_error(err, Instant::now());
                    }
                },
                Step::Sleep(until) => {
                    let delay = until.saturating_duration_since(Instant::now());
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
                    if !watching
                        && self.inner.settings.follow_stream
                        && let Some(url) = flow.stream_hint()
                        && let Some(stop) = stop_rx.take()
                    {
                        watching = true;
                        self.watch_stream(url.to_owned(), done_tx.clone(), stop);
                    }
                    let wait = until.saturating_duration_since(Instant::now());
                    if !watching {
                        std::thread::sleep(wait);
                    } else if done_rx.recv_timeout(wait).is_ok() {
                        flow.wake();
                    }
                }
                Step::Done(out) => return out,
            }
        }
    }

    /// Reads an event stream on its own thread until `done`, a failure, or `stop`'s sender is
    /// dropped, then signals.
    fn watch_stream(
        &self,
        url: String,
        done: std::sync::mpsc::Sender<()>,
        stop: std::sync::mpsc::Receiver<()>,
    ) {
        let client = self.clone();
        let opts = self.inner.settings.stream.clone();
        std::thread::spawn(move || {
            if let Ok(events) = client.stream_url_until(&url, opts, stop) {
                for event in events {
                    if matches!(event, Ok(ReplicateEvent::Done(_)) | Err(_)) {
                        break;
                    }
                }
            }
            let _ = done.send(());
        });
    }

    /// Executes one endpoint of `replicate-protocol` with this client's retry policy.
    pub fn execute<E: Endpoint>(&self, endpoint: E) -> Result<E::Output, Error> {
        let call = Call::with_policy(
            endpoint,
            self.inner.settings.cfg.clone(),
            self.inner.settings.retry.clone(),
            None,
        );
        self.drive(call)
    }

    /// Creates a prediction. It is sent once: see [`Error::CreateOutcomeUnknown`].
    pub fn create(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        self.execute(create)
    }

    /// Gets a prediction.
    pub fn get(&self, id: &str) -> Result<Prediction, Error> {
        self.execute(GetPrediction::new(id))
    }

    /// Cancels a prediction.
    pub fn cancel(&self, id: &str) -> Result<Prediction, Error> {
        self.execute(CancelPrediction::new(id))
    }

    /// Every prediction, newest first, fetching pages as the iterator advances.
    pub fn list(&self) -> Pages<ListPredictions> {
        self.paginate(ListPredictions::new())
    }

    /// Every item of any paginated list, starting at `first`.
    pub fn paginate<P: Paginated>(&self, first: P) -> Pages<P> {
        Pages {
            client: self.clone(),
            pager: self.inner.settings.pager(first),
        }
    }

    /// Waits until the prediction is terminal, or `timeout` passes (then a cancel is sent and
    /// [`Error::DeadlineExceeded`] returned). The terminal prediction is returned whatever its
    /// status; see [`Prediction::into_result`].
    pub fn wait(&self, id: &str, timeout: Option<Duration>) -> Result<Prediction, Error> {
        self.wait_with(id, self.wait_options(timeout))
    }

    /// [`Client::wait`] with explicit options.
    pub fn wait_with(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error> {
        self.drive(Wait::new(self.inner.settings.cfg.clone(), id, opts))
    }

    /// Runs a model and returns its output.
    ///
    /// `model` is `owner/name`, `owner/name:version` or a version id. The create uses sync mode
    /// (see [`ClientBuilder::sync_wait`]) and the prediction is polled if the answer is not
    /// terminal yet. A failed, canceled or aborted prediction is an error carrying it.
    pub fn run(&self, model: &str, input: Value) -> Result<Value, Error> {
        let create = self.inner.settings.run_create(model, input)?;
        let prediction = self.run_with(create, self.wait_options(None))?;
        Ok(prediction.output)
    }

    /// Creates and waits for a prediction with explicit options; the prediction is returned when
    /// it succeeded, otherwise the matching error.
    pub fn run_with(
        &self,
        create: CreatePrediction,
        opts: WaitOptions,
    ) -> Result<Prediction, Error> {
        self.drive(Run::new(self.inner.settings.cfg.clone(), create, opts))?
            .into_result()
    }

    /// Sends one request of the protocol and reads its whole body (up to the cap).
    ///
    /// Logs the method, the URL without its query, the status and failures at `debug` level
    /// (target `replicate_ureq`); never a header, so never the token.
    fn send(&self, out: Outgoing) -> Result<http::Response<Vec<u8>>, TransportError> {
        let timeout = out.timeout(self.inner.settings.timeout);
        let method = out.request.method().clone();
        let url = loggable_uri(out.request.uri());
        tracing::debug!(%method, %url, timeout_ms = millis(timeout), "replicate: sending request");
        let result = self.send_inner(out, timeout);
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

    fn send_inner(
        &self,
        out: Outgoing,
        timeout: Duration,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        use ureq::RequestExt;
        let resp = out
            .request
            .with_agent(&self.inner.agent)
            .configure()
            // QUERY /v1/models (model search) is not a standard method to ureq.
            .allow_non_standard_methods(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .run()
            .map_err(classify)?;
        let (parts, mut body) = resp.into_parts();
        let cap = self.inner.settings.max_response_bytes;
        // Fail before reading when the announced length is over the cap, rather than after
        // buffering `cap` bytes (the body is then dropped and its connection closed).
        if let Some(len) = announced_length(&parts.headers)
            && len > cap
        {
            return Err(TransportError::new(
                TransportErrorKind::BodyTooLarge,
                format!("the response body ({len} bytes) is larger than the limit of {cap} bytes"),
            ));
        }
        let bytes = body
            .with_config()
            .limit(cap)
            .read_to_vec()
            .map_err(classify)?;
        Ok(http::Response::from_parts(parts, bytes))
    }
}

/// The `Content-Length` of a response whose body is not content-encoded (the cap applies to the
/// decoded body, whose length an encoded body's `Content-Length` does not give).
fn announced_length(headers: &http::HeaderMap) -> Option<u64> {
    let encoded = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    if encoded {
        return None;
    }
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
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

/// Maps a ureq error to the protocol's transport error kinds.
fn classify(err: ureq::Error) -> TransportError {
    use ureq::Error as E;
    use ureq::Timeout as T;
    let kind = match &err {
        E::HostNotFound | E::ConnectionFailed | E::BadUri(_) | E::Tls(_) | E::Rustls(_) => {
            TransportErrorKind::Connect
        }
        E::Timeout(T::Resolve | T::Connect) => TransportErrorKind::Connect,
        E::Timeout(_) => TransportErrorKind::Timeout,
        E::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            TransportErrorKind::Connect
        }
        // ureq reports a failed certificate check as an I/O error of the handshake: nothing was
        // sent (certificates are only checked during the handshake).
        E::Io(io) if is_certificate_error(io) => TransportErrorKind::Connect,
        E::Io(_) | E::Protocol(_) | E::BodyStalled => TransportErrorKind::Io,
        E::BodyExceedsLimit(_) => TransportErrorKind::BodyTooLarge,
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, err.to_string())
}

/// Whether an I/O error is rustls refusing the server's certificate.
fn is_certificate_error(io: &std::io::Error) -> bool {
    use rustls::Error as R;
    matches!(
        io.get_ref().and_then(|e| e.downcast_ref::<R>()),
        Some(
            R::InvalidCertificate(_)
                | R::NoCertificatesPresented
                | R::UnsupportedNameType
                | R::InvalidCertRevocationList(_)
        )
    )
}

/// Maps an error of a body reader (which wraps ureq's errors) to a transport error.
fn classify_io(err: std::io::Error) -> TransportError {
    if matches!(
        err.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    ) && err.get_ref().is_none_or(|e| !e.is::<ureq::Error>())
    {
        return TransportError::new(TransportErrorKind::Timeout, err.to_string());
    }
    classify(ureq::Error::from(err))
}

/// An iterator over every item of a paginated list; pages are fetched lazily, each request going
/// to the configured base URL with only the cursor of the previous page.
#[derive(Debug)]
pub struct Pages<P: Paginated> {
    client: Client,
    pager: Pager<P>,
}

impl<P: Paginated> Iterator for Pages<P> {
    type Item = Result<P::Item, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let page = match self.pager.next_step() {
                PagerStep::Item(item) => return Some(Ok(item)),
                PagerStep::End => return None,
                PagerStep::Failed(e) => return Some(Err(e)),
                PagerStep::Fetch(request) => self.client.execute(request),
            };
            match page {
                Ok(page) => self.pager.push_page(page),
                Err(e) => {
                    self.pager.fail();
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_clone_send_sync() {
        fn assert<T: Clone + Send + Sync>() {}
        assert::<Client>();
    }

    #[test]
    fn debug_hides_token() {
        let c = Client::new("r8_supersecret").expect("client");
        assert!(!format!("{c:?}").contains("supersecret"));
    }

    #[test]
    fn missing_token_is_an_error() {
        let e = Client::builder().build().expect_err("no token");
        assert!(matches!(e, Error::InvalidInput(_)));
    }
}
