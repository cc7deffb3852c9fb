#![doc = include_str!("../README.md")]
//!
//! # How it works
//!
//! Every decision (what to send, when to retry, when a prediction is done, how long a request
//! may take and how much of an answer may be read) is taken by `replicate-protocol`: this crate
//! is one loop that sends, sleeps and reads what a [`Flow`] asks for
//! (see [`replicate_protocol::flow`]), and thin wrappers around it.
//!
//! # Common tasks
//!
//! | task | call |
//! |---|---|
//! | run a model, get its output | [`Client::run`] |
//! | watch progress, download the files | [`Client::start_from`], [`RunHandle::updates`], [`Client::download_outputs`] |
//! | stream a large output, in constant memory | [`Client::download_to`] (any writer), [`Client::open_output`] (a reader / stream) |
//! | start now, collect later with a webhook | [`CreatePrediction::webhook`], [`Client::start`], [`Client::verify_webhook`] |
//! | a timeout that cancels | [`Client::run_within`] |
//! | check inputs against the model's schema before sending | [`ClientBuilder::validate_inputs`], [`CreatePrediction::validate`] |
//! | thousands of predictions, resumable | [`Client::batch`], [`BatchBuilder::run`] |
//! | test against a fake server | [`replicate-fake`](https://docs.rs/replicate-fake)'s `BlockingFakeServer` |
//!
//! Watch progress, then download the files:
//!
//! ```no_run
//! use replicate_ureq::{Client, Update};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), replicate_ureq::Error> {
//! # let client = Client::from_env()?;
//! let handle = client.start_from("black-forest-labs/flux-schnell", json!({"prompt": "a cat"}))?;
//! println!("started {}", handle.id()); // known at once: store it
//! for update in handle.updates() {
//!     match update? {
//!         Update::Progress(p) => eprintln!("{}%", p.percentage),
//!         Update::Finished(prediction) => {
//!             let paths = client.download_outputs(&prediction.into_result()?, "out".as_ref())?;
//!             println!("{paths:?}");
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Stream a large output to a file (or any writer), holding one chunk at a time, or read it:
//!
//! ```
//! # use replicate_ureq::Client;
//! # use serde_json::json;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let fake = replicate_fake::BlockingFakeServer::start()?;
//! # let client = Client::builder().base_url(fake.base_url()).token(fake.token()).build()?;
//! use std::io::Read;
//! let output = client.run("fake/large-files", json!({"output_bytes": 8 << 20}))?;
//! let url = output[0].as_str().ok_or("no URL")?;
//! let done = client.download_to(url, &mut std::io::sink())?; // a File, a hasher...
//! assert_eq!(done.bytes, 8 << 20);
//! let mut first = [0; 16];
//! client.open_output(url)?.read_exact(&mut first)?; // an `std::io::Read`
//! # Ok(()) }
//! ```
//!
//! Start now, collect later with a webhook:
//!
//! ```no_run
//! use replicate_ureq::{Client, CreatePrediction, Target, WebhookEvent, http::HeaderMap};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), replicate_ureq::Error> {
//! # let client = Client::from_env()?;
//! let create = CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell")?)
//!     .input(json!({"prompt": "a cat"}))
//!     .webhook("https://example.com/hooks/replicate", &[WebhookEvent::Completed]);
//! let id = client.start(create)?.id().to_owned();
//! // Later, in the webhook's handler, with the raw body and the headers as received:
//! # let (headers, body) = (HeaderMap::new(), Vec::<u8>::new());
//! let secret = client.webhook_secret()?; // fetch once and keep it
//! let prediction = Client::verify_webhook(&secret, &headers, &body)?;
//! assert_eq!(prediction.id, id);
//! # Ok(()) }
//! ```
//!
//! A timeout that cancels the prediction (nothing is left running):
//!
//! ```no_run
//! # use replicate_ureq::Client;
//! # use serde_json::json;
//! # fn main() -> Result<(), replicate_ureq::Error> {
//! # let client = Client::from_env()?;
//! let timeout = std::time::Duration::from_secs(30);
//! let output = client.run_within("black-forest-labs/flux-schnell", json!({"prompt": "a cat"}), timeout)?;
//! # Ok(()) }
//! ```
//!
//! Check inputs against the model's schema before anything is sent (see
//! [`protocol::validate`]): the schema is fetched once per model version and cached, so it costs
//! one `GET` per model (off by default for that reason):
//!
//! ```
//! use replicate_ureq::{Client, Validation};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let fake = replicate_fake::BlockingFakeServer::start()?;
//! let client = Client::builder()
//! #   .base_url(fake.base_url()).token(fake.token())
//!     .validate_inputs(Validation::Warn) // Strict: unknown inputs are errors too
//!     .build()?;
//! let input = json!({"prompt": "a cat", "num_outputs": 20, "aspect_ratio": "square"});
//! let Err(err) = client.run("black-forest-labs/flux-schnell", input) else {
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
//! without creating anything twice. [`BatchBuilder::run`] returns an iterator of
//! [`ItemResult`]s in completion order, driving the batch as it is advanced with at most
//! [`BatchOptions::max_requests`] worker threads (stopped and joined when it is dropped).
//!
//! ```no_run
//! use replicate_ureq::{Client, CreateOutcome};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?;
//! let inputs = (0..1000).map(|i| json!({"prompt": format!("a cat, #{i}")})).collect();
//! let mut items = client
//!     .batch("black-forest-labs/flux-schnell", inputs)
//!     .concurrency(32) // predictions in flight
//!     .journal("cats.jsonl") // resumed if it exists: run it again after a crash
//!     .run()?;
//! for item in items.by_ref() {
//!     let item = item?; // an `Err` is the last item: what ended the batch early
//!     match item.into_result() {
//!         Ok(prediction) => println!("{}", prediction.output),
//!         Err(e) => eprintln!("an input failed: {e}"),
//!     }
//! }
//! let summary = items.summary().ok_or("not over")?;
//! println!("{} succeeded, {} adopted after a lost answer", summary.succeeded, summary.adopted);
//! # let _ = CreateOutcome::Created;
//! # Ok(()) }
//! ```
//!
//! The journal is an append-only JSON Lines file: a header (target, inputs digest, item count),
//! then an `intent` record before each create is sent, `created` once it is answered, `done`
//! once the item is over. Each record is appended and made durable (`File::sync_data`) before
//! the batch goes on, so no create is ever sent that the journal does not know about. On
//! [`BatchBuilder::run`], an existing journal is read back: a torn last line (a write cut by a
//! crash) is truncated away, one of another model or other inputs is refused
//! ([`BatchError::Journal`]) and left untouched, and the batch resumes: items done are skipped,
//! items created are waited for, items with only an intent are looked up. An item is recorded
//! done when the next one is asked for: an item yielded just before a crash is yielded again
//! (never created again).
//!
//! With webhooks, give the creates a webhook ([`BatchBuilder::webhook`]), set
//! [`Completion::Webhook`], and feed each verified delivery to [`BatchHandle::feed_webhook`]
//! (from the receiver's thread): items end on their delivery instead of being polled.
//!
//! # More
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
//! # TLS
//!
//! The cargo features choose the TLS backend of the agent [`ClientBuilder::build`] makes:
//!
//! - `rustls` (default): rustls with the *ring* crypto provider and Mozilla's root certificates
//!   (ureq's `rustls` feature, with `webpki-roots`);
//! - `native-tls`: the platform's TLS library (OpenSSL on Linux, Secure Transport on macOS,
//!   SChannel on Windows) with the platform's trust store. When both features are enabled,
//!   `native-tls` is the one used;
//! - neither: plain `http://` only (a local proxy, `replicate-fake`); an `https://` URL fails to
//!   connect, before anything is sent.
//!
//! A failed handshake or a refused certificate is a [`TransportErrorKind::Connect`] error:
//! nothing was sent. Certificate verification is never disabled. An agent supplied with
//! [`ClientBuilder::agent`] keeps its own TLS settings.
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
use std::time::Duration;

use replicate_protocol::{Flow, Paginated, TransportError, TransportErrorKind};

/// The most idle connections the client keeps (all on the API's host, usually): enough for a
/// batch's requests in flight and a prediction's concurrent downloads.
const MAX_IDLE_CONNECTIONS: usize = 64;

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

mod batch;
mod download;
mod driver;
mod files;
mod resolve;
mod stream;

pub use batch::{BatchBuilder, BatchHandle, BatchIter};
pub use download::OutputReader;
pub use driver::{EventStream, Items, Pages};
pub use replicate_protocol::settings::BatchError;
pub use replicate_protocol::{
    BatchOptions, BatchSummary, Completion, CreateOutcome, ItemResult, JournalError,
};

pub use replicate_protocol::download::DEFAULT_MAX_DOWNLOAD_BYTES;
pub use replicate_protocol::input::DEFAULT_UPLOAD_THRESHOLD;
pub use replicate_protocol::settings::{
    BASE_URL_ENV, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DOWNLOAD_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, TOKEN_ENV,
};

replicate_protocol::client_struct!(
    /// A blocking Replicate client.
    ///
    /// It holds one connection pool (a [`ureq::Agent`]) and reuses connections. Cheap to clone,
    /// and `Send + Sync`: share it between threads.
    ;
    agent: ureq::Agent,
    /// The total timeout the agent applies by itself, when this client built it: a request
    /// under that same timeout configures nothing of its own (and costs no `setsockopt`).
    agent_timeout: Option<Duration>,
);

replicate_protocol::client_builder!(
    /// Reuse an existing agent (its connection pool, proxy and TLS settings). Timeouts, status
    /// handling and redirects are still set per request by this client.
    agent: ureq::Agent
);

impl ClientBuilder {
    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let settings = self.settings.resolve()?;
        let (agent, agent_timeout) = match self.agent {
            Some(agent) => (agent, None),
            None => {
                let config = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .allow_non_standard_methods(true)
                    .timeout_connect(Some(settings.connect_timeout))
                    .timeout_global(Some(settings.timeout))
                    // Each read and write may wait a little less than the whole exchange: ureq
                    // then gives the socket that same timeout on every call of a pooled
                    // connection, rather than the time left (which differs at every call and
                    // costs a `setsockopt` each time). The exchange is still bounded by
                    // `timeout` as a whole.
                    .timeout_per_read(Some(io_timeout(settings.timeout)))
                    .timeout_per_write(Some(io_timeout(settings.timeout)))
                    .user_agent(settings.cfg.user_agent())
                    // Batches and concurrent downloads run many requests at once on one host:
                    // keep their connections (ureq keeps 3 per host by default, and opens a new
                    // connection for every request beyond that).
                    .max_idle_connections(MAX_IDLE_CONNECTIONS)
                    .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS);
                // With `rustls` alone, ureq's defaults: rustls, ring, Mozilla's roots.
                #[cfg(feature = "native-tls")]
                let config = config.tls_config(native_tls_config());
                let config = config.build();
                // Not `new_agent()`: its resolver spawns a thread per request (see `resolve`).
                let agent = ureq::Agent::with_parts(
                    config,
                    ureq::unversioned::transport::DefaultConnector::default(),
                    resolve::CachingResolver::default(),
                );
                (agent, Some(settings.timeout))
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                settings,
                agent,
                agent_timeout,
            }),
        })
    }
}

impl Client {
    replicate_protocol::client_constructors!();
    replicate_protocol::client_methods!(;);

    /// Drives any flow of `replicate-protocol` to its end with this client's connection pool,
    /// dropping the items it yields (iterate [`Items`] to get them).
    ///
    /// While the flow sleeps waiting for a streaming prediction, a thread follows the
    /// prediction's event stream (unless [`ClientBuilder::follow_stream`] turned that off) with
    /// the client's stream options, and wakes the flow on `done`, so it ends then rather than at
    /// its next poll. The thread never outlives the flow: when this call returns it stops
    /// reading and reconnecting at once, and is gone at most one read timeout
    /// ([`ClientBuilder::timeout`]) later, when a read in progress returns.
    pub fn drive<F: Flow>(&self, flow: F) -> F::Output {
        driver::Driver::new(self.clone(), flow).finish()
    }

    /// Every item of any paginated list, starting at `first`. The iterator ends after the last
    /// page, or after yielding the error that stopped it.
    pub fn paginate<P: Paginated>(&self, first: P) -> Pages<P> {
        self.items(self.inner.settings.pager(first))
    }

    /// The items a flow yields, as an iterator that drives it (see [`Items`]).
    pub fn items<F: Flow<Output = Result<(), Error>>>(&self, flow: F) -> Items<F> {
        Items::new(driver::Driver::new(self.clone(), flow))
    }
}

replicate_protocol::run_handle!(;);

/// The `native-tls` feature's TLS (see the [crate documentation](crate#tls)): the platform's
/// library and trust store, in place of rustls even when `rustls` is enabled too.
#[cfg(feature = "native-tls")]
fn native_tls_config() -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build()
}

/// The longest a single read or write of an exchange bounded by `total` may wait: a little less
/// than `total` (by a tenth, at most a second), so that it is the socket timeout of a fast call
/// from start to end.
fn io_timeout(total: Duration) -> Duration {
    total.saturating_sub((total / 10).min(Duration::from_secs(1)))
}

/// The instant flows are driven with.
pub(crate) fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Maps a ureq error to the protocol's transport error kinds.
fn classify(err: ureq::Error) -> TransportError {
    use ureq::Error as E;
    use ureq::Timeout as T;
    let kind = match &err {
        // `TlsRequired`: an `https://` URL without a TLS feature, refused once connected and
        // before anything is written.
        E::HostNotFound | E::ConnectionFailed | E::BadUri(_) | E::Tls(_) | E::TlsRequired => {
            TransportErrorKind::Connect
        }
        // TLS errors are raised by the handshake, before anything is sent.
        #[cfg(feature = "rustls")]
        E::Rustls(_) => TransportErrorKind::Connect,
        #[cfg(feature = "native-tls")]
        E::NativeTls(_) => TransportErrorKind::Connect,
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
#[cfg(feature = "rustls")]
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

/// Whether an I/O error is rustls refusing the server's certificate: never without rustls
/// (native-tls handshake failures are `ureq::Error::NativeTls`).
#[cfg(not(feature = "rustls"))]
fn is_certificate_error(_io: &std::io::Error) -> bool {
    false
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_clone_send_sync() {
        fn assert<T: Clone + Send + Sync>() {}
        assert::<Client>();
    }

    #[test]
    fn output_reader_is_send() {
        fn assert<T: Send>() {}
        assert::<OutputReader>();
    }

    #[test]
    fn debug_hides_token() {
        let c = Client::new("r8_supersecret").expect("client");
        assert!(!format!("{c:?}").contains("supersecret"));
    }

    /// An `https://` URL whose server does not speak TLS fails before the request is sent. With
    /// native-tls (the handshake is part of connecting) and with no TLS feature (refused once
    /// connected) it is a connection error, so a create is not "outcome unknown".
    #[test]
    fn an_https_url_without_a_tls_server_fails() {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            // At most one connection attempt (no retries), bounded by the client's timeout.
            if let Ok((mut conn, _)) = listener.accept() {
                let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            }
        });
        let client = Client::builder()
            .token("r8_test")
            .base_url(format!("https://{addr}"))
            .retry_policy(replicate_protocol::RetryPolicy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let create = CreatePrediction::new(Target::parse("owner/model").expect("target"))
            .input(serde_json::json!({}));
        let err = client.create(create).expect_err("no TLS server");
        if cfg!(any(feature = "native-tls", not(feature = "rustls"))) {
            assert!(
                matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Connect),
                "{err:?}"
            );
        } else {
            // rustls: ureq runs the handshake in the request's first write and reports its
            // failure as an I/O error, which cannot be told from a later one (only certificate
            // errors are known to be the handshake's).
            assert!(
                matches!(&err, Error::Transport(t) | Error::CreateOutcomeUnknown(t)
                    if matches!(t.kind, TransportErrorKind::Io | TransportErrorKind::Connect)),
                "{err:?}"
            );
        }
        // Without a TLS feature nothing connects at all: unblock the accept.
        drop(std::net::TcpStream::connect(addr));
        server.join().expect("server thread");
    }

    #[test]
    fn missing_token_is_an_error() {
        let e = Client::builder().build().expect_err("no token");
        assert!(e.is_missing_token(), "{e:?}");
    }
}
