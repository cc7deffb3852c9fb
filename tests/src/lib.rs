//! Shared harness for the cross-client scenario tests: one [`Driver`] trait that both clients
//! implement, so every scenario runs unchanged against the blocking and the async client.
//!
//! Scenarios are declared with [`scenario!`]; [`WebhookReceiver`] is a loopback endpoint that
//! records the webhooks the fake server delivers; [`tiny_server`] answers with canned responses
//! and reports the request heads it read.
//!
//! Examples: `tests/examples/webhook_receiver.rs` is an axum receiver that verifies webhook
//! signatures against the fake server, offline
//! (`cargo run -p replicate-tests --example webhook_receiver`); `tests/examples/custom_transport.rs`
//! drives the protocol crate with a transport of its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use replicate_fake::{BlockingFakeServer, Options};
use replicate_protocol::api::{FileObject, GetDefaultWebhookSecret};
use replicate_protocol::settings::BatchError;
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::webhook::WebhookSecret;
use replicate_protocol::{
    BatchOptions, BatchSummary, Config, CreatePrediction, DownloadLimits, Downloaded, Endpoint,
    Error, FileInput, Flow, ItemResult, OutputErrorKind, Paginated, PollPolicy, Prediction,
    RetryPolicy, SaveOptions, StreamOptions, StreamSession, SyncWait, Wait, WaitOptions,
};
use serde_json::Value;

/// Declares a scenario once; it runs as one test per client (`mod $name { fn ureq; fn reqwest }`),
/// each on its own fake server ([`fast_options`] unless options are given) with a client built by
/// [`Env::with`]. The body sees the items of the enclosing module.
///
/// ```ignore
/// use replicate_tests::scenario;
/// scenario!(runs, |env| {
///     env.driver.run("acme/model", serde_json::json!({})).expect("run");
/// });
/// ```
#[macro_export]
macro_rules! scenario {
    ($name:ident, |$env:ident| $body:block) => {
        $crate::scenario!($name, $crate::fast_options(), |$env| $body);
    };
    ($name:ident, $opts:expr, |$env:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body(which: $crate::Which) {
                #[allow(unused_mut)]
                let mut $env = $crate::Env::with(which, $opts, |_, _| {});
                $body
            }
            #[test]
            fn ureq() {
                body($crate::Which::Ureq)
            }
            #[test]
            fn reqwest() {
                body($crate::Which::Reqwest)
            }
        }
    };
}

/// The operations a scenario uses, implemented by both clients.
pub trait Driver {
    /// `ureq` or `reqwest`.
    fn name(&self) -> &'static str;
    /// `Client::run`.
    fn run(&self, model: &str, input: Value) -> Result<Value, Error>;
    /// `Client::run_with`.
    fn run_with(&self, create: CreatePrediction, opts: WaitOptions) -> Result<Prediction, Error>;
    /// `Client::create`.
    fn create(&self, create: CreatePrediction) -> Result<Prediction, Error>;
    /// `Client::get`.
    fn get(&self, id: &str) -> Result<Prediction, Error>;
    /// `Client::cancel`.
    fn cancel(&self, id: &str) -> Result<Prediction, Error>;
    /// Every prediction, through `Client::list`.
    fn list_all(&self) -> Result<Vec<Prediction>, Error>;
    /// `Client::wait_with`.
    fn wait_with(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error>;
    /// `Client::wait_options`.
    fn wait_options(&self) -> WaitOptions;
    /// `Client::wait_options_within`.
    fn wait_options_within(&self, timeout: Duration) -> WaitOptions;
    /// Every event of `Client::stream` until the stream ends (`done` included); the first error
    /// ends the collection and is returned instead.
    fn stream_events(&self, prediction: &Prediction) -> Result<Vec<ReplicateEvent>, Error> {
        self.stream_events_with(prediction, StreamOptions::default())
    }
    /// [`Driver::stream_events`] through `Client::stream_with`.
    fn stream_events_with(
        &self,
        prediction: &Prediction,
        opts: StreamOptions,
    ) -> Result<Vec<ReplicateEvent>, Error>;
    /// `Client::stream` (`opts` `None`) or `Client::stream_with`, read to its end: every item,
    /// errors included, with what the session says (see [`StreamRun`]).
    fn stream_run(
        &self,
        prediction: &Prediction,
        opts: Option<StreamOptions>,
    ) -> Result<StreamRun, Error>;
    /// `Client::stream_url`, read to its end like [`Driver::stream_run`].
    fn stream_url_run(&self, url: &str, opts: StreamOptions) -> Result<StreamRun, Error>;
    /// `Client::stream_text`.
    fn stream_text(&self, prediction: &Prediction) -> Result<String, Error>;
    /// `Client::run_within`.
    fn run_within(&self, model: &str, input: Value, timeout: Duration) -> Result<Value, Error>;
    /// `Client::start`: the handle's first snapshot, and every update of
    /// `RunHandle::updates` (the first error ends the collection and is returned instead).
    fn start_and_watch(
        &self,
        create: CreatePrediction,
    ) -> Result<(Prediction, Vec<replicate_protocol::Update>), Error>;
    /// `Client::start`, then `RunHandle::cancel` as soon as the prediction is `processing`
    /// (seen through `RunHandle::refresh`), then `RunHandle::wait`.
    fn start_and_cancel(&self, create: CreatePrediction) -> Result<Prediction, Error>;
    /// `Client::stream_run`, read to its end.
    fn create_and_stream(&self, model: &str, input: Value) -> Result<Vec<ReplicateEvent>, Error>;
    /// `Client::download`.
    fn download(&self, url_or_data_uri: &str) -> Result<Vec<u8>, Error>;
    /// `Client::download_to` into a blocking writer (the async client's through an adapter
    /// that writes at once).
    fn download_to(&self, url: &str, sink: &mut (dyn Write + Send)) -> Result<Downloaded, Error>;
    /// `Client::open_output`, read to its end into `sink` (the reader through `Read`, the
    /// stream chunk by chunk); the first error ends it and is returned. Returns the bytes read
    /// and the reader's or stream's `downloaded()` at the end.
    fn open_output_into(
        &self,
        url: &str,
        sink: &mut (dyn Write + Send),
    ) -> Result<(u64, Option<Downloaded>), Error>;
    /// Tasks of the client's runtime still alive after it ran idle for 50 ms (the async
    /// client's: only the connection tasks of hyper's pool should be left; 0 for the blocking
    /// client, whose downloads run on scoped threads).
    fn background_tasks(&self) -> usize;
    /// `Client::download_outputs`.
    fn download_outputs(&self, prediction: &Prediction, dir: &Path) -> Result<Vec<PathBuf>, Error>;
    /// `Client::download_outputs_with`.
    fn download_outputs_with(
        &self,
        prediction: &Prediction,
        dir: &Path,
        options: SaveOptions,
    ) -> Result<Vec<PathBuf>, Error>;
    /// `Client::download_limits`.
    fn download_limits(&self) -> DownloadLimits;
    /// `Client::upload_file`.
    fn upload_file(
        &self,
        bytes: Vec<u8>,
        name: &str,
        mime: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<FileObject, Error>;
    /// `Client::upload_path`.
    fn upload_path(&self, path: &Path, metadata: Option<Value>) -> Result<FileObject, Error>;
    /// `Client::get_file`.
    fn get_file(&self, id: &str) -> Result<FileObject, Error>;
    /// Every file, through `Client::list_files`.
    fn list_files_all(&self) -> Result<Vec<FileObject>, Error>;
    /// `Client::delete_file`.
    fn delete_file(&self, id: &str) -> Result<(), Error>;
    /// `Client::prepare_input_file`.
    fn prepare_input_file(&self, path: &Path) -> Result<Value, Error>;
    /// `Client::prepare_input`.
    fn prepare_input(&self, input: FileInput) -> Result<Value, Error>;
    /// The default webhook secret, through `Client::execute(GetDefaultWebhookSecret)`.
    fn webhook_secret(&self) -> Result<WebhookSecret, Error>;
    /// `Client::batch`, started (`run` / `stream`) and read until it ends or
    /// [`BatchRequest::take`] items were read (then dropped); deliveries sent on
    /// [`BatchRequest::feed`] are handed to its `BatchHandle::feed_webhook` meanwhile.
    fn batch(&self, request: BatchRequest) -> Result<BatchRun, BatchError>;
}

/// A batch for [`Driver::batch`].
#[derive(Debug, Default)]
pub struct BatchRequest {
    /// The model.
    pub model: String,
    /// The inputs.
    pub inputs: Vec<Value>,
    /// `BatchBuilder::journal`.
    pub journal: Option<PathBuf>,
    /// `BatchBuilder::options` (`None`: the builder's defaults).
    pub options: Option<BatchOptions>,
    /// `BatchBuilder::concurrency`, applied after the options.
    pub concurrency: Option<usize>,
    /// `BatchBuilder::webhook` with the `completed` event.
    pub webhook: Option<String>,
    /// `BatchBuilder::inputs_id`.
    pub inputs_id: Option<String>,
    /// Drop the batch after reading this many items (a process killed mid-batch).
    pub take: Option<usize>,
    /// Predictions to feed to the batch's handle as they arrive.
    pub feed: Option<mpsc::Receiver<Prediction>>,
}

impl BatchRequest {
    /// A batch of `model` over `inputs`, with the builder's defaults.
    pub fn new(model: &str, inputs: Vec<Value>) -> BatchRequest {
        BatchRequest {
            model: model.to_owned(),
            inputs,
            ..BatchRequest::default()
        }
    }
}

/// What [`Driver::batch`] read.
#[derive(Debug)]
pub struct BatchRun {
    /// The items, in the order they came.
    pub items: Vec<ItemResult>,
    /// The `Err` item that ended the batch, if one did.
    pub error: Option<BatchError>,
    /// The summary, when the batch was read to its end.
    pub summary: Option<BatchSummary>,
    /// The most worker threads (ureq) or requests in flight (reqwest) seen, and the pool's cap.
    pub pool: (usize, usize),
}

/// Hands what `feed` receives to `handle` until `done` is raised or `feed` is closed.
fn forward_deliveries(
    feed: &mpsc::Receiver<Prediction>,
    done: &std::sync::atomic::AtomicBool,
    handle: impl Fn(Prediction) -> bool,
) {
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        match feed.recv_timeout(Duration::from_millis(10)) {
            Ok(prediction) => {
                handle(prediction);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Applies a [`BatchRequest`]'s settings to either client's `BatchBuilder`.
macro_rules! configure_batch {
    ($builder:expr, $request:expr) => {{
        let mut b = $builder;
        let r = &$request;
        if let Some(options) = &r.options {
            b = b.options(options.clone());
        }
        if let Some(n) = r.concurrency {
            b = b.concurrency(n);
        }
        if let Some(path) = &r.journal {
            b = b.journal(path);
        }
        if let Some(url) = &r.webhook {
            b = b.webhook(url, &[replicate_protocol::WebhookEvent::Completed]);
        }
        if let Some(id) = &r.inputs_id {
            b = b.inputs_id(id);
        }
        b
    }};
}

/// How the clients under test are configured: fast polls and retries so scenarios take
/// milliseconds.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL (the fake's, possibly with its `/replicate` prefix).
    pub base_url: String,
    /// Token.
    pub token: String,
    /// Sync mode for `run`.
    pub sync_wait: Option<SyncWait>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Poll policy.
    pub poll: PollPolicy,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// `follow_stream` (`None`: the client's default, on).
    pub follow_stream: Option<bool>,
    /// `upload_threshold` (`None`: the client's default, 256 KiB).
    pub upload_threshold: Option<usize>,
    /// `max_download_bytes` (`None`: the client's default, 512 MiB).
    pub max_download_bytes: Option<u64>,
    /// `download_concurrency` (`None`: the client's default, 4). [`Settings::for_fake`] sets
    /// 1: the scenarios written before downloads were concurrent count and order the requests
    /// of `download_outputs`; `output_streams.rs` sets the concurrency it tests.
    pub download_concurrency: Option<usize>,
    /// `verify_etag_sha256` (the fake's file ETags are the SHA-256 of their content).
    pub verify_etag_sha256: bool,
}

impl Settings {
    /// Settings for a fake server: 20 ms polls, 10 ms backoff, 3 retries, 2 s timeout, sync off,
    /// one output file downloaded at a time.
    pub fn for_fake(fake: &BlockingFakeServer) -> Settings {
        Settings {
            base_url: fake.base_url(),
            token: fake.token().to_owned(),
            sync_wait: None,
            timeout: Duration::from_secs(2),
            poll: PollPolicy::fixed(Duration::from_millis(20)),
            retry: RetryPolicy {
                max_retries: 3,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(100),
                max_retry_after: Duration::from_secs(5),
                ..RetryPolicy::default()
            },
            follow_stream: None,
            upload_threshold: None,
            max_download_bytes: None,
            download_concurrency: Some(1),
            verify_etag_sha256: false,
        }
    }
}

/// The blocking client.
pub struct Ureq(pub replicate_ureq::Client);

impl Ureq {
    /// Builds it.
    pub fn new(s: &Settings) -> Ureq {
        let mut builder = replicate_ureq::Client::builder()
            .token(&s.token)
            .base_url(&s.base_url)
            .timeout(s.timeout)
            .poll_policy(s.poll.clone())
            .retry_policy(s.retry.clone())
            .sync_wait(s.sync_wait);
        if let Some(follow) = s.follow_stream {
            builder = builder.follow_stream(follow);
        }
        if let Some(bytes) = s.upload_threshold {
            builder = builder.upload_threshold(bytes);
        }
        if let Some(bytes) = s.max_download_bytes {
            builder = builder.max_download_bytes(bytes);
        }
        if let Some(files) = s.download_concurrency {
            builder = builder.download_concurrency(files);
        }
        builder = builder.verify_etag_sha256(s.verify_etag_sha256);
        let client = builder.build().expect("ureq client");
        Ureq(client)
    }
}

impl Driver for Ureq {
    fn name(&self) -> &'static str {
        "ureq"
    }
    fn run(&self, model: &str, input: Value) -> Result<Value, Error> {
        self.0.run(model, input)
    }
    fn run_with(&self, create: CreatePrediction, opts: WaitOptions) -> Result<Prediction, Error> {
        self.0.run_with(create, opts)
    }
    fn create(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        self.0.create(create)
    }
    fn get(&self, id: &str) -> Result<Prediction, Error> {
        self.0.get(id)
    }
    fn cancel(&self, id: &str) -> Result<Prediction, Error> {
        self.0.cancel(id)
    }
    fn list_all(&self) -> Result<Vec<Prediction>, Error> {
        self.0.list().collect()
    }
    fn wait_with(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error> {
        self.0.wait_with(id, opts)
    }
    fn wait_options(&self) -> WaitOptions {
        self.0.wait_options()
    }
    fn wait_options_within(&self, timeout: Duration) -> WaitOptions {
        self.0.wait_options_within(timeout)
    }
    fn stream_events_with(
        &self,
        prediction: &Prediction,
        opts: StreamOptions,
    ) -> Result<Vec<ReplicateEvent>, Error> {
        self.0.stream_with(prediction, opts)?.collect()
    }
    fn stream_run(
        &self,
        prediction: &Prediction,
        opts: Option<StreamOptions>,
    ) -> Result<StreamRun, Error> {
        let stream = match opts {
            None => self.0.stream(prediction)?,
            Some(opts) => self.0.stream_with(prediction, opts)?,
        };
        Ok(StreamRun::read_ureq(stream))
    }
    fn stream_url_run(&self, url: &str, opts: StreamOptions) -> Result<StreamRun, Error> {
        Ok(StreamRun::read_ureq(self.0.stream_url(url, opts)?))
    }
    fn stream_text(&self, prediction: &Prediction) -> Result<String, Error> {
        self.0.stream_text(prediction)
    }
    fn download(&self, url_or_data_uri: &str) -> Result<Vec<u8>, Error> {
        self.0.download(url_or_data_uri)
    }
    fn download_to(&self, url: &str, sink: &mut (dyn Write + Send)) -> Result<Downloaded, Error> {
        self.0.download_to(url, sink)
    }
    fn open_output_into(
        &self,
        url: &str,
        sink: &mut (dyn Write + Send),
    ) -> Result<(u64, Option<Downloaded>), Error> {
        let mut reader = self.0.open_output(url)?;
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    return Err(replicate_ureq::OutputReader::error_of(&e)
                        .cloned()
                        .unwrap_or_else(|| sink_error(&e)));
                }
            };
            sink.write_all(&buf[..n]).map_err(|e| sink_error(&e))?;
        }
        Ok((reader.bytes_read(), reader.downloaded().cloned()))
    }
    fn background_tasks(&self) -> usize {
        0
    }
    fn download_outputs(&self, prediction: &Prediction, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        self.0.download_outputs(prediction, dir)
    }
    fn download_outputs_with(
        &self,
        prediction: &Prediction,
        dir: &Path,
        options: SaveOptions,
    ) -> Result<Vec<PathBuf>, Error> {
        self.0.download_outputs_with(prediction, dir, options)
    }
    fn download_limits(&self) -> DownloadLimits {
        self.0.download_limits()
    }
    fn upload_file(
        &self,
        bytes: Vec<u8>,
        name: &str,
        mime: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<FileObject, Error> {
        self.0.upload_file(bytes, name, mime, metadata)
    }
    fn upload_path(&self, path: &Path, metadata: Option<Value>) -> Result<FileObject, Error> {
        self.0.upload_path(path, metadata)
    }
    fn get_file(&self, id: &str) -> Result<FileObject, Error> {
        self.0.get_file(id)
    }
    fn list_files_all(&self) -> Result<Vec<FileObject>, Error> {
        self.0.list_files().collect()
    }
    fn delete_file(&self, id: &str) -> Result<(), Error> {
        self.0.delete_file(id)
    }
    fn prepare_input_file(&self, path: &Path) -> Result<Value, Error> {
        self.0.prepare_input_file(path)
    }
    fn prepare_input(&self, input: FileInput) -> Result<Value, Error> {
        self.0.prepare_input(input)
    }
    fn webhook_secret(&self) -> Result<WebhookSecret, Error> {
        self.0.execute(GetDefaultWebhookSecret::new())
    }
    fn start_and_watch(
        &self,
        create: CreatePrediction,
    ) -> Result<(Prediction, Vec<replicate_protocol::Update>), Error> {
        let handle = self.0.start(create)?;
        let first = handle.prediction().clone();
        let updates = handle.updates().collect::<Result<Vec<_>, _>>()?;
        Ok((first, updates))
    }
    fn run_within(&self, model: &str, input: Value, timeout: Duration) -> Result<Value, Error> {
        self.0.run_within(model, input, timeout)
    }
    fn start_and_cancel(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        let mut handle = self.0.start(create)?;
        while handle.prediction().status != replicate_protocol::Status::Processing {
            std::thread::sleep(Duration::from_millis(5));
            handle.refresh()?;
        }
        handle.cancel()?;
        handle.wait()
    }
    fn create_and_stream(&self, model: &str, input: Value) -> Result<Vec<ReplicateEvent>, Error> {
        self.0.stream_run(model, input)?.collect()
    }
    fn batch(&self, mut request: BatchRequest) -> Result<BatchRun, BatchError> {
        let builder = configure_batch!(
            self.0
                .batch(&request.model, std::mem::take(&mut request.inputs)),
            request
        );
        let mut iter = builder.run()?;
        let handle = iter.handle();
        let done = std::sync::atomic::AtomicBool::new(false);
        let feed = request.feed.take();
        std::thread::scope(|s| {
            if let Some(feed) = feed {
                let (done, handle) = (&done, handle.clone());
                s.spawn(move || forward_deliveries(&feed, done, |p| handle.feed_webhook(p)));
            }
            let mut run = BatchRun {
                items: Vec::new(),
                error: None,
                summary: None,
                pool: (0, iter.max_requests()),
            };
            while request.take.is_none_or(|n| run.items.len() < n) {
                let Some(item) = iter.next() else { break };
                run.pool.0 = run.pool.0.max(iter.threads());
                match item {
                    Ok(item) => run.items.push(item),
                    Err(e) => run.error = Some(e),
                }
            }
            run.summary = iter.summary().cloned();
            drop(iter);
            done.store(true, std::sync::atomic::Ordering::Release);
            Ok(run)
        })
    }
}

/// The async client, driven from a current-thread runtime.
pub struct Reqwest {
    client: replicate_reqwest::Client,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Reqwest {
    /// Builds it.
    pub fn new(s: &Settings) -> Reqwest {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut builder = replicate_reqwest::Client::builder()
            .token(&s.token)
            .base_url(&s.base_url)
            .timeout(s.timeout)
            .poll_policy(s.poll.clone())
            .retry_policy(s.retry.clone())
            .sync_wait(s.sync_wait);
        if let Some(follow) = s.follow_stream {
            builder = builder.follow_stream(follow);
        }
        if let Some(bytes) = s.upload_threshold {
            builder = builder.upload_threshold(bytes);
        }
        if let Some(bytes) = s.max_download_bytes {
            builder = builder.max_download_bytes(bytes);
        }
        if let Some(files) = s.download_concurrency {
            builder = builder.download_concurrency(files);
        }
        builder = builder.verify_etag_sha256(s.verify_etag_sha256);
        let client = builder.build().expect("reqwest client");
        Reqwest {
            client,
            rt: Arc::new(rt),
        }
    }

    /// The client.
    pub fn client(&self) -> &replicate_reqwest::Client {
        &self.client
    }

    /// The runtime.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

impl Driver for Reqwest {
    fn name(&self) -> &'static str {
        "reqwest"
    }
    fn run(&self, model: &str, input: Value) -> Result<Value, Error> {
        self.rt.block_on(self.client.run(model, input))
    }
    fn run_with(&self, create: CreatePrediction, opts: WaitOptions) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.run_with(create, opts))
    }
    fn create(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.create(create))
    }
    fn get(&self, id: &str) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.get(id))
    }
    fn cancel(&self, id: &str) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.cancel(id))
    }
    fn list_all(&self) -> Result<Vec<Prediction>, Error> {
        use futures_util::TryStreamExt;
        self.rt.block_on(self.client.list().try_collect())
    }
    fn wait_with(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.wait_with(id, opts))
    }
    fn wait_options(&self) -> WaitOptions {
        self.client.wait_options()
    }
    fn wait_options_within(&self, timeout: Duration) -> WaitOptions {
        self.client.wait_options_within(timeout)
    }
    fn stream_events_with(
        &self,
        prediction: &Prediction,
        opts: StreamOptions,
    ) -> Result<Vec<ReplicateEvent>, Error> {
        use futures_util::TryStreamExt;
        self.rt.block_on(async {
            self.client
                .stream_with(prediction, opts)
                .await?
                .try_collect()
                .await
        })
    }
    fn stream_run(
        &self,
        prediction: &Prediction,
        opts: Option<StreamOptions>,
    ) -> Result<StreamRun, Error> {
        self.rt.block_on(async {
            let stream = match opts {
                None => self.client.stream(prediction).await?,
                Some(opts) => self.client.stream_with(prediction, opts).await?,
            };
            Ok(StreamRun::read_reqwest(stream).await)
        })
    }
    fn stream_url_run(&self, url: &str, opts: StreamOptions) -> Result<StreamRun, Error> {
        self.rt.block_on(async {
            let stream = self.client.stream_url(url, opts).await?;
            Ok(StreamRun::read_reqwest(stream).await)
        })
    }
    fn stream_text(&self, prediction: &Prediction) -> Result<String, Error> {
        self.rt.block_on(self.client.stream_text(prediction))
    }
    fn download(&self, url_or_data_uri: &str) -> Result<Vec<u8>, Error> {
        self.rt.block_on(self.client.download(url_or_data_uri))
    }
    fn download_to(&self, url: &str, sink: &mut (dyn Write + Send)) -> Result<Downloaded, Error> {
        self.rt
            .block_on(self.client.download_to(url, &mut WriteNow(sink)))
    }
    fn open_output_into(
        &self,
        url: &str,
        sink: &mut (dyn Write + Send),
    ) -> Result<(u64, Option<Downloaded>), Error> {
        use futures_util::StreamExt;
        self.rt.block_on(async {
            let mut stream = self.client.open_output(url).await?;
            while let Some(chunk) = stream.next().await {
                sink.write_all(&chunk?).map_err(|e| sink_error(&e))?;
            }
            Ok((stream.bytes_read(), stream.downloaded().cloned()))
        })
    }
    fn background_tasks(&self) -> usize {
        // Lets tasks that were told to end (connections closed) see it first.
        self.rt
            .block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        self.rt.metrics().num_alive_tasks()
    }
    fn download_outputs(&self, prediction: &Prediction, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        self.rt
            .block_on(self.client.download_outputs(prediction, dir))
    }
    fn download_outputs_with(
        &self,
        prediction: &Prediction,
        dir: &Path,
        options: SaveOptions,
    ) -> Result<Vec<PathBuf>, Error> {
        self.rt
            .block_on(self.client.download_outputs_with(prediction, dir, options))
    }
    fn download_limits(&self) -> DownloadLimits {
        self.client.download_limits()
    }
    fn upload_file(
        &self,
        bytes: Vec<u8>,
        name: &str,
        mime: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<FileObject, Error> {
        self.rt
            .block_on(self.client.upload_file(bytes, name, mime, metadata))
    }
    fn upload_path(&self, path: &Path, metadata: Option<Value>) -> Result<FileObject, Error> {
        self.rt.block_on(self.client.upload_path(path, metadata))
    }
    fn get_file(&self, id: &str) -> Result<FileObject, Error> {
        self.rt.block_on(self.client.get_file(id))
    }
    fn list_files_all(&self) -> Result<Vec<FileObject>, Error> {
        use futures_util::TryStreamExt;
        self.rt.block_on(self.client.list_files().try_collect())
    }
    fn delete_file(&self, id: &str) -> Result<(), Error> {
        self.rt.block_on(self.client.delete_file(id))
    }
    fn prepare_input_file(&self, path: &Path) -> Result<Value, Error> {
        self.rt.block_on(self.client.prepare_input_file(path))
    }
    fn prepare_input(&self, input: FileInput) -> Result<Value, Error> {
        self.rt.block_on(self.client.prepare_input(input))
    }
    fn webhook_secret(&self) -> Result<WebhookSecret, Error> {
        self.rt
            .block_on(self.client.execute(GetDefaultWebhookSecret::new()))
    }
    fn start_and_watch(
        &self,
        create: CreatePrediction,
    ) -> Result<(Prediction, Vec<replicate_protocol::Update>), Error> {
        use futures_util::TryStreamExt;
        self.rt.block_on(async {
            let handle = self.client.start(create).await?;
            let first = handle.prediction().clone();
            let updates = handle.updates().try_collect().await?;
            Ok((first, updates))
        })
    }
    fn run_within(&self, model: &str, input: Value, timeout: Duration) -> Result<Value, Error> {
        self.rt
            .block_on(self.client.run_within(model, input, timeout))
    }
    fn start_and_cancel(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        self.rt.block_on(async {
            let mut handle = self.client.start(create).await?;
            while handle.prediction().status != replicate_protocol::Status::Processing {
                tokio::time::sleep(Duration::from_millis(5)).await;
                handle.refresh().await?;
            }
            handle.cancel().await?;
            handle.wait().await
        })
    }
    fn create_and_stream(&self, model: &str, input: Value) -> Result<Vec<ReplicateEvent>, Error> {
        use futures_util::TryStreamExt;
        self.rt.block_on(async {
            self.client
                .stream_run(model, input)
                .await?
                .try_collect()
                .await
        })
    }
    fn batch(&self, mut request: BatchRequest) -> Result<BatchRun, BatchError> {
        use futures_util::StreamExt;
        let builder = configure_batch!(
            self.client
                .batch(&request.model, std::mem::take(&mut request.inputs)),
            request
        );
        let mut stream = self.rt.block_on(builder.stream())?;
        let handle = stream.handle();
        let done = std::sync::atomic::AtomicBool::new(false);
        let feed = request.feed.take();
        std::thread::scope(|s| {
            if let Some(feed) = feed {
                let (done, handle) = (&done, handle.clone());
                s.spawn(move || forward_deliveries(&feed, done, |p| handle.feed_webhook(p)));
            }
            let mut run = BatchRun {
                items: Vec::new(),
                error: None,
                summary: None,
                pool: (0, stream.max_requests()),
            };
            self.rt.block_on(async {
                while request.take.is_none_or(|n| run.items.len() < n) {
                    let Some(item) = stream.next().await else {
                        break;
                    };
                    run.pool.0 = run.pool.0.max(stream.requests_in_flight());
                    match item {
                        Ok(item) => run.items.push(item),
                        Err(e) => run.error = Some(e),
                    }
                }
            });
            run.summary = stream.summary().cloned();
            drop(stream);
            done.store(true, std::sync::atomic::Ordering::Release);
            Ok(run)
        })
    }
}

/// A test's writer failed.
fn sink_error(e: &std::io::Error) -> Error {
    Error::output(
        OutputErrorKind::Write,
        format!("the test's writer failed: {e}"),
    )
}

/// A blocking writer as an async one whose writes complete at once (for writers that do not
/// block: memory, checks).
struct WriteNow<'a>(&'a mut (dyn Write + Send));

impl tokio::io::AsyncWrite for WriteNow<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(self.get_mut().0.write(buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(self.get_mut().0.flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Everything one stream yielded, read until it ended ([`Driver::stream_run`]).
#[derive(Debug, Default)]
pub struct StreamRun {
    /// Every item, errors included, in order, until the stream said it ended.
    pub items: Vec<Result<ReplicateEvent, Error>>,
    /// Whether asking once more after the end still gave nothing.
    pub fused: bool,
    /// `StreamSession::reconnects` as of the last item or the end, whichever came later with
    /// the session available.
    pub reconnects: u32,
    /// `EventStream::last_event_id` as of the last item or the end, likewise.
    pub last_event_id: Option<String>,
}

impl StreamRun {
    /// More items than any stream of the tests yields: a stream that goes past it is a bug.
    const MAX_ITEMS: usize = 100_000;

    /// The events, panicking on an error item.
    pub fn events(&self) -> Vec<ReplicateEvent> {
        self.items
            .iter()
            .map(|item| item.clone().expect("an event, not an error"))
            .collect()
    }

    fn push(&mut self, item: Result<ReplicateEvent, Error>) {
        assert!(
            self.items.len() < Self::MAX_ITEMS,
            "a stream of over {} items: {:?}",
            Self::MAX_ITEMS,
            self.items.last()
        );
        self.items.push(item);
    }

    fn note(&mut self, session: Option<&StreamSession>) {
        if let Some(session) = session {
            self.reconnects = session.reconnects();
            self.last_event_id = session.last_event_id().map(str::to_owned);
        }
    }

    fn read_ureq(mut stream: replicate_ureq::EventStream) -> StreamRun {
        let mut run = StreamRun::default();
        while let Some(item) = stream.next() {
            run.push(item);
            run.note(Some(stream.session()));
        }
        run.fused = stream.next().is_none();
        run.note(Some(stream.session()));
        run
    }

    async fn read_reqwest(mut stream: replicate_reqwest::EventStream) -> StreamRun {
        use futures_util::StreamExt;
        let mut run = StreamRun::default();
        while let Some(item) = stream.next().await {
            run.push(item);
            run.note(stream.session());
        }
        run.fused = stream.next().await.is_none();
        run.note(stream.session());
        run
    }
}

/// The text of the `output` events, in order.
pub fn outputs(events: &[ReplicateEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ReplicateEvent::Output(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

/// Which client a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `replicate-ureq`.
    Ureq,
    /// `replicate-reqwest`.
    Reqwest,
}

/// A fake server and a client of the chosen kind pointed at it.
pub struct Env {
    /// The fake server.
    pub fake: BlockingFakeServer,
    /// The settings the client was built with.
    pub settings: Settings,
    /// The client.
    pub driver: Box<dyn Driver>,
    which: Which,
    client: AnyClient,
}

/// The concrete client behind [`Env::driver`], for generic calls (endpoints, flows, pages).
enum AnyClient {
    Ureq(replicate_ureq::Client),
    Reqwest(replicate_reqwest::Client, Arc<tokio::runtime::Runtime>),
}

impl Env {
    /// A fake with short ticks (5 ms) and a client on its plain base URL.
    pub fn new(which: Which) -> Env {
        Env::with(which, fast_options(), |_, _| {})
    }

    /// A fake with these options, and client settings adjusted by `tweak`.
    pub fn with(
        which: Which,
        opts: Options,
        tweak: impl FnOnce(&BlockingFakeServer, &mut Settings),
    ) -> Env {
        let fake = BlockingFakeServer::start_with(opts).expect("fake server");
        let mut settings = Settings::for_fake(&fake);
        tweak(&fake, &mut settings);
        let (driver, client) = make_clients(which, &settings);
        Env {
            fake,
            settings,
            driver,
            which,
            client,
        }
    }

    /// Rebuilds the client with other settings, on the same fake.
    pub fn rebuild(&mut self, tweak: impl FnOnce(&mut Settings)) {
        tweak(&mut self.settings);
        (self.driver, self.client) = make_clients(self.which, &self.settings);
    }

    /// Which client this environment drives.
    pub fn which(&self) -> Which {
        self.which
    }

    /// The client's protocol configuration (base URL, token).
    pub fn config(&self) -> Config {
        match &self.client {
            AnyClient::Ureq(c) => c.config().clone(),
            AnyClient::Reqwest(c, _) => c.config().clone(),
        }
    }

    /// Executes any endpoint with the client's `execute` (blocking on it for `reqwest`).
    pub fn execute<E: Endpoint>(&self, endpoint: E) -> Result<E::Output, Error> {
        match &self.client {
            AnyClient::Ureq(c) => c.execute(endpoint),
            AnyClient::Reqwest(c, rt) => rt.block_on(c.execute(endpoint)),
        }
    }

    /// Drives any flow with the client's `drive`.
    pub fn drive<F: Flow>(&self, flow: F) -> F::Output {
        match &self.client {
            AnyClient::Ureq(c) => c.drive(flow),
            AnyClient::Reqwest(c, rt) => rt.block_on(c.drive(flow)),
        }
    }

    /// Every item of a paginated list, through the client's `paginate`.
    pub fn collect_all<P>(&self, first: P) -> Result<Vec<P::Item>, Error>
    where
        P: Paginated + Send + Sync + 'static,
        P::Item: Send + 'static,
    {
        match &self.client {
            AnyClient::Ureq(c) => c.paginate(first).collect(),
            AnyClient::Reqwest(c, rt) => {
                use futures_util::TryStreamExt;
                rt.block_on(c.paginate(first).try_collect())
            }
        }
    }

    /// Waits for a training with the shared wait machine:
    /// `drive(Wait::new(cfg, id, opts).for_training())`.
    pub fn wait_training(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error> {
        self.drive(Wait::new(self.config(), id, opts).for_training())
    }

    /// The recorded API requests whose path ends like this and with this method.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_suffix))
            .count()
    }
}

/// A client of this kind built with these settings, apart from any [`Env`] (for another thread).
pub fn driver(which: Which, settings: &Settings) -> Box<dyn Driver> {
    make_clients(which, settings).0
}

fn make_clients(which: Which, s: &Settings) -> (Box<dyn Driver>, AnyClient) {
    match which {
        Which::Ureq => {
            let d = Ureq::new(s);
            let c = AnyClient::Ureq(d.0.clone());
            (Box::new(d), c)
        }
        Which::Reqwest => {
            let d = Reqwest::new(s);
            let c = AnyClient::Reqwest(d.client.clone(), d.rt.clone());
            (Box::new(d), c)
        }
    }
}

/// Fake server options for fast tests: 5 ms ticks.
pub fn fast_options() -> Options {
    Options {
        tick: Duration::from_millis(5),
        ..Options::default()
    }
}

/// One request a [`WebhookReceiver`] received.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    /// The request target (path and query).
    pub target: String,
    /// Its headers.
    pub headers: http::HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

/// A tiny HTTP/1.1 endpoint on 127.0.0.1, on a thread of its own, that answers every request
/// `200 OK` and hands it over through [`WebhookReceiver::recv_timeout`]: a webhook target for
/// the fake server (which delivers only to loopback `http://` URLs).
pub struct WebhookReceiver {
    url: String,
    addr: std::net::SocketAddr,
    rx: mpsc::Receiver<ReceivedWebhook>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl WebhookReceiver {
    /// Binds 127.0.0.1:0 and starts accepting.
    pub fn start() -> std::io::Result<WebhookReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::Builder::new()
            .name("webhook-receiver".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopping.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    if let Ok(request) = read_request(conn)
                        && tx.send(request).is_err()
                    {
                        return;
                    }
                }
            })?;
        Ok(WebhookReceiver {
            url: format!("http://{addr}/hooks/replicate"),
            addr,
            rx,
            stop,
        })
    }

    /// The URL to give as `webhook`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next request received, waiting at most `timeout` for it.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<ReceivedWebhook> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The requests received so far that were not taken yet.
    pub fn drain(&self) -> Vec<ReceivedWebhook> {
        self.rx.try_iter().collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        // Wakes the accepting thread so it sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Reads one request (head, then a `Content-Length` body) and answers `200 OK`.
fn read_request(conn: TcpStream) -> std::io::Result<ReceivedWebhook> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| bad("no request line"))?
        .to_owned();
    let mut headers = http::HeaderMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("head cut short"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("bad name"))?,
            http::HeaderValue::from_str(value.trim()).map_err(|_| bad("bad value"))?,
        );
    }
    let len = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let mut conn = conn;
    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
    conn.flush()?;
    Ok(ReceivedWebhook {
        target,
        headers,
        body,
    })
}

/// A tiny HTTP/1.1 server on 127.0.0.1 answering each connection with the next canned response
/// (then closing it): its base URL (`http://127.0.0.1:port`), and each request head it read
/// (request line and headers, `\r\n`-separated).
pub fn tiny_server(responses: Vec<String>) -> (String, mpsc::Receiver<String>) {
    tiny_server_holding(responses.into_iter().map(|r| (r, Duration::ZERO)).collect())
}

/// [`tiny_server`], keeping each connection open for a while after its response.
pub fn tiny_server_holding(responses: Vec<(String, Duration)>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("tiny-server".into())
        .spawn(move || {
            for (response, hold) in responses {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(read_half) = conn.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(read_half);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let _ = tx.send(head);
                let _ = conn.write_all(response.as_bytes());
                let _ = conn.flush();
                std::thread::spawn(move || {
                    std::thread::sleep(hold);
                    drop(conn);
                });
            }
        })
        .expect("spawn");
    (base, rx)
}

/// The value of a header in a request head from [`tiny_server`] (the first, name in any case).
pub fn head_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The README's Rust examples, compiled by `cargo test --doc` (run too, when not `no_run`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

/// Runs `f` on its own thread (named `name`) and fails when it has not ended after `limit`: the
/// guard of tests that must stop by themselves (a hang fails the test instead of the run).
pub fn watchdog(name: &str, limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .expect("spawn");
    match rx.recv_timeout(limit) {
        Ok(()) => worker.join().expect("test thread"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: still running after {limit:?}: a hang")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(()) => panic!("{name}: ended without reporting"),
            Err(panic) => std::panic::resume_unwind(panic),
        },
    }
}
