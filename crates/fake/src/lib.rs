#![doc = include_str!("../README.md")]
//!
//! # Origins
//!
//! It is an independent implementation of the Replicate HTTP API contract (it shares no code with
//! the clients it tests). It serves two origins:
//!
//! - the **API origin** ([`FakeHandle::base_url`]): `/v1/...`, and the same under a prefix
//!   ([`FakeHandle::prefixed_base_url`], `/replicate/v1/...` by default) like the pass-through
//!   proxy of the seed guide. Every `/v1` route needs `Authorization: Bearer <token>`;
//! - the **files origin** ([`FakeHandle::files_base_url`], another port), which serves output
//!   files (like `replicate.delivery`) and SSE streams at `/v1/streams/{id}` (like
//!   `stream.replicate.com`), without authentication.
//!
//! # Routes
//!
//! API origin (under `/v1` and `{prefix}/v1`, bearer token required; errors are
//! `application/problem+json` `{"title", "detail", "status"}`):
//!
//! - `POST /models/{owner}/{name}/predictions`, `POST /deployments/{owner}/{name}/predictions`,
//!   `POST /predictions` (`version`: 64-hex, opaque `dp-…`, `owner/name:id` or `owner/name`;
//!   unknown → 422). Body fields allowed: `input` (required object), `webhook`,
//!   `webhook_events_filter`, `stream`, and `version` on `/predictions` only; anything else →
//!   422. Headers `Prefer: wait[=N]` (201 when terminal, else 202 + `Location`) and
//!   `Cancel-After` (5 s to 8760h, sets `deadline`; anything else → 422).
//! - `GET /predictions` (newest first, `?cursor=`, absolute `next`/`previous`; items omit `logs`
//!   and add `source`), `GET /predictions/{id}`, `POST /predictions/{id}/cancel`.
//! - Models: `GET /models` (the public models the fake knows: built-in, scripted, created, and
//!   any other it was asked about; newest first; `sort_direction=asc|desc`),
//!   `POST /models` (201; `owner`, `name`, `visibility`, `hardware` required; 409 if it exists),
//!   `QUERY /models` (search: a `text/plain` body, every word must match the name or
//!   description; paginated), `GET`/`PATCH`/`DELETE /models/{owner}/{name}` (delete: 204, only
//!   private models without versions, else 403/409), `GET /models/{owner}/{name}/examples` (the
//!   model's succeeded predictions), `GET /models/{owner}/{name}/readme` (`text/markdown`).
//! - Versions: `GET /models/{owner}/{name}/versions` (newest first),
//!   `GET`/`DELETE /models/{owner}/{name}/versions/{id}` (delete: 202, 409 while a deployment
//!   uses it). A scripted model's versions are its [`ModelScript::version`] (the latest) and
//!   [`ModelScript::extra_versions`]; a model created with `POST /models` has none until a
//!   training pushes one.
//! - Trainings: `POST /models/{owner}/{name}/versions/{id}/trainings` (201; `destination`
//!   `owner/name` and `input` required), `GET /trainings` (newest first), `GET /trainings/{id}`,
//!   `POST /trainings/{id}/cancel`. A training follows the trained model's script like a
//!   prediction (same schedule, logs and ending); on success its output is
//!   `{"version": "<destination>:<id>", "weights": "{files}/xezq/<token>/trained_model.tar"}`
//!   and the version is added to the destination model. Its `urls` name `/v1/trainings/{id}`.
//! - Deployments: `GET /deployments` (newest first), `POST /deployments` (200; owned by the
//!   account `fake`; `version` must be a version of `model`; 409 if it exists),
//!   `GET`/`PATCH`/`DELETE /deployments/{owner}/{name}` (each update makes a new release
//!   number; delete is 204). See also [`FakeHandle::set_deployment`].
//! - `GET /collections` (paginated summaries), `GET /collections/{slug}` (with models):
//!   `text-to-image`, `language-models`, `fake-behaviours`.
//! - `GET /search?query=&limit=` (1 to 50, default 20): `{query, models: [{model, metadata}],
//!   collections, pages}`; 400 without a query.
//! - `POST /files` (multipart `content` + optional `metadata`, `filename`, `type`),
//!   `GET /files`, `GET /files/{id}`, `DELETE /files/{id}` (204), `GET /files/{id}/download`
//!   (with ranges and `ETag: "<checksums.sha256>"`).
//! - `GET /account`, `GET /webhooks/default/secret`, `GET /hardware` (a bare array).
//!
//! Every list is a page `{"previous", "next", "results"}` of [`Options::page_size`] items with
//! absolute `next`/`previous` URLs (`?cursor=`, on [`Options::api_host_in_bodies`] when set).
//!
//! Files origin (no auth): output files at the paths of their URLs (404 once expired, see
//! [`Options::output_ttl`]; `GET` and `HEAD`, with ranges, see
//! [Large outputs and downloads](#large-outputs-and-downloads)), and `GET /v1/streams/{id}` with `Accept: text/event-stream`: `: hi`,
//! then `output`/`logs` events in real time, `error` on failure, and `done`; ids `<unix>:<n>`;
//! `Last-Event-ID` resumes after event `n`.
//!
//! # Faults
//!
//! [`FakeHandle::push_fault`] makes the next matching requests fail in one of the ways of
//! [`Fault`]: a status (429 with Replicate's throttle body and headers, 502 HTML, ...), a TCP
//! reset before or after the request is applied, a delay, truncated or garbage JSON, a huge
//! body, a redirect, an SSE stream dropped after N events or silent, a made-up pagination
//! cursor, a body dripped slowly, cut short or corrupted, an answer echoing the request's
//! credentials, or a real effect hidden behind an error answer. Faulted requests are recorded with
//! [`RecordedRequest::fault`] set. [`Options::rate_limit`] throttles the whole API origin like
//! Replicate does ([`RateLimit`]).
//!
//! Fault rules and failing models also have one-line text forms, which the `replicate-fake`
//! binary and `replicate fake-server` take as `--fault METHOD:PATH_SUBSTRING:FAULT[:TIMES]` and
//! `--fail-model OWNER/NAME[:MESSAGE]`: [`FaultRule`] and [`Fault`] implement
//! [`FromStr`](std::str::FromStr), as does [`FailModel`]; [`SPEC_HELP`] is the grammar.
//!
//! # Robustness
//!
//! The fake is meant to face hostile clients too (security test suites):
//!
//! - the request log ([`FakeHandle::requests`]) is a ring of
//!   [`Options::request_log_capacity`] entries, each body cut to
//!   [`Options::max_recorded_body_bytes`]; the body of a request that fails authentication is
//!   never recorded;
//! - request bodies over [`Options::max_request_body_bytes`] are answered 413, and bodies the
//!   server does not need (unauthenticated or unknown routes, the files origin) are dropped as
//!   they arrive instead of being buffered;
//! - absurd header values (`Cancel-After: 300000000000s`) are answered 422, every duration and
//!   date computed from client input is checked, and a panic in a handler answers 500 while the
//!   server keeps serving.
//!
//! # Predictions
//!
//! A prediction follows its model's [`ModelScript`]: `starting`, then `processing`, then its
//! [`Outcome`], computed lazily from the time elapsed since creation in units of
//! [`Options::tick`]. Any `owner/name` exists and runs [`ModelScript::default`] unless
//! scripted with [`FakeHandle::set_model`]; the models in [`BUILTIN_MODELS`] have built-in
//! scripts:
//!
//! | model | behaviour |
//! |---|---|
//! | `black-forest-labs/flux-schnell` | mimics the seed: version [`FLUX_SCHNELL_VERSION`], the real model's input schema (`prompt` required, see below), seed logs, output `["{files}/xezq/<token>/out-0.jpg"]` (a real JPEG; input `num_outputs` from 1 to [`MAX_NUM_OUTPUTS`] makes that many), streams, `metrics.image_count` |
//! | `fake/fail` | fails with an error and a traceback in the logs |
//! | `fake/cancel` | cancels itself at the end of processing |
//! | `fake/abort` | `aborted` after starting; never starts (no `started_at`) |
//! | `fake/text` | streams tokens [`TEXT_TOKENS`] `"Hello", " world", "!"` (partial output while processing) |
//! | `fake/text-multiline` | streams [`MULTILINE_TOKENS`], tokens with newlines |
//! | `fake/json` | outputs a JSON object |
//! | `fake/urls` | outputs a list of 3 PNG URLs (or input `num_outputs` of them) |
//! | `fake/slow` | processes for 50 ticks |
//! | `fake/data-uri` | outputs a `data:image/png;base64,...` URI |
//! | `fake/unknown-status` | reports status `"quantum"` while processing, then succeeds with `"done"` |
//! | `fake/large-files` | outputs a list of large generated files (1 file of 1 MiB by default; input `num_outputs`, `output_bytes`, `seed`), see below |
//!
//! # Input schemas and validation
//!
//! Every version publishes an `openapi_schema` written the way Cog writes it: an `Input` object
//! schema whose properties have a `title`, a `description`, an `x-order` and a `default`;
//! enums as a property `{"allOf": [{"$ref": "#/components/schemas/NAME"}]}` referring to a
//! component `{"type": "string", "title": "NAME", "description": "An enumeration.", "enum":
//! [...]}`; integer and number ranges as `minimum`/`maximum`; and an `Output` schema.
//!
//! - `black-forest-labs/flux-schnell` serves the real model's schema: `prompt` (string,
//!   required), `aspect_ratio` (enum `1:1`, `16:9`, ..., default `1:1`), `num_outputs`
//!   (integer 1 to [`MAX_NUM_OUTPUTS`]; the real model stops at 4), `num_inference_steps`
//!   (integer 1 to 4), `seed` (integer), `output_format` (enum `webp`, `jpg`, `png`),
//!   `output_quality` (integer 0 to 100), `disable_safety_checker` and `go_fast` (booleans),
//!   `megapixels` (enum `1`, `0.25`); its output is an array of URIs.
//! - Other scripts get a schema derived from their [`Output`], where nothing is required (a
//!   scripted model takes any prompt, or none): `prompt` (string) always; a single URL or a
//!   data URI: `image` (a file: `format: uri`); [`Output::Urls`]: `num_outputs`, `guidance`
//!   (number 0 to 10) and `scheduler` (an enum); [`Output::Synthetic`]: `num_outputs`,
//!   `output_bytes` and `seed` (0 to 2^64 - 1); [`Output::Text`]: `system_prompt`,
//!   `max_tokens` (integer 1 to 4096), `temperature` (number 0 to 2), `top_p` (number 0 to 1),
//!   and an iterator output (`x-cog-array-type: iterator`, `x-cog-array-display:
//!   concatenate`). The output of [`Output::Urls`] and [`Output::Synthetic`] is an array of
//!   URIs, of [`Output::Url`] and [`Output::DataUri`] one URI, of [`Output::Json`] the shape of
//!   its value (an object's properties, ...).
//! - [`ModelScript::openapi_schema`] replaces the derived document with one of your own (a
//!   real model's, say).
//!
//! A create (by model, version or deployment) is checked against the schema its model serves
//! before anything is created; problems are answered `422 Input validation failed` with one
//! `- input.KEY: message` line each in `detail` (`- input.prompt: prompt is required`,
//! `- input.num_outputs: Must be an integer from 1 to 10`, `- input.aspect_ratio: aspect_ratio
//! must be one of the following: "1:1", ...`, `- input.seed: Invalid type. Expected: integer,
//! given: string`, `- input.temperature: Must be less than or equal to 2`). The rules: a
//! required input is present, each value has its property's JSON type (`integer` wants a number
//! without a fraction), is among its `enum`, within its `minimum`/`maximum`
//! (`exclusiveMinimum`/`exclusiveMaximum`), and an array's items likewise. `null` counts as
//! absent; inputs the schema does not list are accepted, as Replicate accepts them; a
//! `format: uri` input is only checked to be a string. The check is the fake's own: it shares
//! no code with the clients' local validation, which tests hold against it.
//!
//! # Large outputs and downloads
//!
//! A model whose output is [`Output::Synthetic`], such as the built-in `fake/large-files`,
//! outputs URLs of files of any size (up to [`MAX_OUTPUT_BYTES`], 16 GiB, each) that the fake
//! never stores: every byte is computed from the file's seed and offset (a [`SyntheticFile`]),
//! so a 1 GiB output costs no memory and any range of it is cheap. The prediction's input
//! chooses the files: `{"num_outputs": K, "output_bytes": N, "seed": S}` makes `K` files
//! (1 to [`MAX_NUM_OUTPUTS`]) `.../out-0.bin` ... `.../out-{K-1}.bin` of `N` bytes each, file
//! `i` being `SyntheticFile::new(S + i, N)`. A test gets the expected digest without
//! downloading anything:
//!
//! ```no_run
//! # fn demo(server: &replicate_fake::BlockingFakeServer, urls: Vec<String>) {
//! use replicate_fake::SyntheticFile;
//! // POST /v1/models/fake/large-files/predictions
//! //   {"input": {"num_outputs": 4, "output_bytes": 268435456, "seed": 7}}
//! // succeeds with 4 URLs of 256 MiB each (1 GiB in all):
//! for (i, url) in urls.iter().enumerate() {
//!     let file = SyntheticFile::new(7 + i as u64, 256 << 20);
//!     assert_eq!(server.synthetic_file(url), Some(file));
//!     let expected = file.sha256_hex(); // what the downloaded bytes must hash to
//!     # let _ = expected;
//! }
//! # }
//! ```
//!
//! Every output file, and `GET /v1/files/{id}/download`, is served with:
//!
//! - `Accept-Ranges: bytes` and a strong `ETag` that is the SHA-256 of the whole file in
//!   lowercase hex, quoted: `"<64 hex digits>"` ([`SyntheticFile::etag`]; for an uploaded file,
//!   its `checksums.sha256`). The digest of a synthetic file is computed once per process, in
//!   the background from the prediction's creation; its first response waits for it (a few
//!   seconds per GiB; a benchmark can warm it up with a `HEAD`, or with
//!   [`SyntheticFile::sha256`] in the same process);
//! - `Range` on `GET`: `bytes=a-b`, `bytes=a-` and `bytes=-n` are answered `206 Partial
//!   Content` with `Content-Range: bytes a-b/len`; a range that selects nothing (starting at or
//!   after the end, `bytes=-0`, any range of an empty file) is answered `416` with
//!   `Content-Range: bytes */len`; several ranges, other units and malformed values are
//!   ignored (the whole file, `200`). With `If-Range`, the range is honoured only if the value
//!   is the current `ETag` exactly (a date or a weak tag never matches: the fake sends no
//!   `Last-Modified`), else the whole file comes with `200`;
//! - a body streamed in frames of at most 64 KiB, whatever its size, paced at
//!   [`Options::connection_rate`] bytes per second per connection when set (the
//!   `--connection-rate` flag of the binary).
//!
//! [`Fault::CutAfter`] (`cut=N`) breaks such a body after `N` bytes of the response (resume
//! with `Range: bytes=N-`), [`Fault::Corrupt`] (`corrupt=OFFSET`) inverts one byte while the
//! headers and checksums describe the real file, and [`Fault::Drip`] sends it slowly.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use replicate_fake::{Fault, FaultRule, FakeServer, Matcher};
//! let server = FakeServer::start().await?;
//! server.push_fault(FaultRule::new(Matcher::new("POST", "/predictions"), Fault::throttled(1)).times(2));
//! // point a client at server.base_url() with server.token() ...
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Use [`BlockingFakeServer`] from synchronous code (it runs its own runtime on its own thread);
//! with [`FakeServer`] and a blocking client, use a multi-thread runtime and keep the blocking
//! calls off the runtime's threads.

mod account;
mod api;
mod assets;
mod body;
mod catalog;
mod cog;
mod content;
mod deployments;
mod download;
mod fault;
mod files;
mod http;
mod multipart;
mod options;
mod origin;
mod pagination;
mod predictions;
mod record;
mod request;
mod routing;
mod script;
mod server;
mod spec;
mod state;
mod synthetic;
mod trainings;
mod uploads;
mod util;
mod validate;
mod webhook;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::fault::{EchoFormat, Fault, FaultRule, Matcher, RetryAfter};
pub use crate::options::{
    DEFAULT_MAX_RECORDED_BODY_BYTES, DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_REQUEST_LOG_CAPACITY,
    DEFAULT_TOKEN, DEFAULT_WEBHOOK_SECRET, Options, RateLimit,
};
pub use crate::origin::Origin;
pub use crate::record::{RecordedRequest, WebhookDelivery};
pub use crate::script::{
    BUILTIN_MODELS, FLUX_SCHNELL_VERSION, LARGE_FILES_DEFAULT_BYTES, MAX_NUM_OUTPUTS,
    MAX_OUTPUT_BYTES, MULTILINE_TOKENS, ModelScript, Outcome, Output, Span, TEXT_TOKENS,
    builtin_script,
};
pub use crate::spec::{DEFAULT_FAIL_MESSAGE, FailModel, SPEC_HELP, SpecError};
pub use crate::synthetic::{SyntheticFile, SyntheticReader, synthetic_bytes};
pub use crate::webhook::{sign_webhook, signing_key};

use crate::state::{Shared, State, lock};

/// A cheap, cloneable handle to a running fake server: URLs, recorded requests, faults and
/// scripts. [`FakeServer`] and [`BlockingFakeServer`] dereference to it.
#[derive(Clone)]
pub struct FakeHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHandle")
            .field("base_url", &self.shared.api_base)
            .field("files_base_url", &self.shared.files_base)
            .finish_non_exhaustive()
    }
}

impl FakeHandle {
    /// The API origin, `http://127.0.0.1:PORT` (the API is at `{base}/v1/...`).
    pub fn base_url(&self) -> String {
        self.shared.api_base.clone()
    }

    /// The API origin with the prefix, e.g. `http://127.0.0.1:PORT/replicate` (the API is also
    /// at `{prefixed}/v1/...`). Equals [`base_url`](Self::base_url) when the prefix is empty.
    pub fn prefixed_base_url(&self) -> String {
        format!("{}{}", self.shared.api_base, self.shared.opts.prefix)
    }

    /// The bearer token the API requires.
    pub fn token(&self) -> &str {
        &self.shared.opts.token
    }

    /// The files origin (another port), serving output files like `replicate.delivery`.
    pub fn files_base_url(&self) -> String {
        self.shared.files_base.clone()
    }

    /// The origin serving SSE streams at `/v1/streams/{id}` (the files origin).
    pub fn stream_base_url(&self) -> String {
        self.shared.files_base.clone()
    }

    /// The options the server runs with (normalized).
    pub fn options(&self) -> &Options {
        &self.shared.opts
    }

    /// The requests received so far on both origins, in order of arrival (after their bodies
    /// were read; a request reset before its body was read is recorded with an empty body).
    ///
    /// The log keeps the last [`Options::request_log_capacity`] requests (see
    /// [`dropped_requests`](Self::dropped_requests)), each body cut to
    /// [`Options::max_recorded_body_bytes`]; it is empty when [`Options::record_requests`] is
    /// false.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).iter().cloned().collect()
    }

    /// How many requests the log dropped (oldest first) because it was full, since the start or
    /// the last [`clear_requests`](Self::clear_requests).
    pub fn dropped_requests(&self) -> usize {
        self.shared.dropped_requests.load(Ordering::Relaxed)
    }

    /// Forgets the recorded requests (and resets [`dropped_requests`](Self::dropped_requests)).
    pub fn clear_requests(&self) {
        let mut log = lock(&self.shared.requests);
        log.clear();
        self.shared.dropped_requests.store(0, Ordering::Relaxed);
    }

    /// Adds a fault rule (after those already pending).
    pub fn push_fault(&self, rule: FaultRule) {
        lock(&self.shared.faults).push(rule);
    }

    /// The fault rules that have not been used up.
    pub fn pending_faults(&self) -> Vec<FaultRule> {
        lock(&self.shared.faults)
            .iter()
            .filter(|r| r.times > 0)
            .cloned()
            .collect()
    }

    /// Removes all pending fault rules.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Scripts the behaviour of `owner/name` for predictions created from now on (replacing a
    /// built-in script too). Its version id(s) resolve to it in `POST /v1/predictions`.
    pub fn set_model(&self, owner_name: &str, script: ModelScript) {
        lock(&self.shared.state).register_model(owner_name, Arc::new(script));
    }

    /// Makes the deployment `owner/name` run the model `model` (by default a deployment runs
    /// the model of the same name).
    ///
    /// The deployment then also appears in `GET /v1/deployments` (owner and name from
    /// `deployment`, on `gpu-t4`, 0 to 1 instances), running the model's current version.
    pub fn set_deployment(&self, deployment: &str, model: &str) {
        let mut st = lock(&self.shared.state);
        let (owner, name) = deployment.split_once('/').unwrap_or((deployment, ""));
        let (seq, release) = match st.deployments.get(deployment) {
            Some(d) => (d.seq, d.release + 1),
            None => {
                st.deployment_seq += 1;
                (st.deployment_seq - 1, 1)
            }
        };
        st.deleted_deployments.remove(deployment);
        st.deployments.insert(
            deployment.to_owned(),
            state::DeploymentRec {
                seq,
                owner: owner.to_owned(),
                name: name.to_owned(),
                model: model.to_owned(),
                version: None,
                hardware: "gpu-t4".to_owned(),
                min_instances: 0,
                max_instances: 1,
                release,
                release_at: std::time::SystemTime::now(),
            },
        );
    }

    /// The version id the fake reports for a model (a stable 64-hex id unless scripted).
    pub fn model_version(&self, owner_name: &str) -> String {
        let st = lock(&self.shared.state);
        match st.models.get(owner_name) {
            Some(s) => state::version_of(owner_name, s),
            None => state::version_of(owner_name, &ModelScript::default()),
        }
    }

    /// The number of predictions created so far.
    pub fn prediction_count(&self) -> usize {
        lock(&self.shared.state).order.len()
    }

    /// TCP connections accepted on the API origin (benchmarks check keep-alive reuse).
    pub fn connections_accepted(&self) -> usize {
        self.shared.api_conns.load(Ordering::Relaxed)
    }

    /// TCP connections accepted on the files origin.
    pub fn files_connections_accepted(&self) -> usize {
        self.shared.files_conns.load(Ordering::Relaxed)
    }

    /// TCP connections open now on both origins (a connection counts until the server has
    /// noticed it closed): tests check that a stream or a slow body stops when the client
    /// goes away.
    pub fn open_connections(&self) -> usize {
        self.shared.open_conns.load(Ordering::Relaxed)
    }

    /// Every webhook POST attempted so far, in order (the last
    /// [`Options::request_log_capacity`] of them).
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        lock(&self.shared.deliveries).iter().cloned().collect()
    }

    /// The webhook signing secret (`whsec_...`), as `GET /v1/webhooks/default/secret` returns it.
    pub fn webhook_secret(&self) -> &str {
        &self.shared.opts.webhook_secret
    }

    /// The contents of a synthetic output file (of an [`Output::Synthetic`] model such as
    /// `fake/large-files`), from its URL (or its path on the files origin); `None` for other
    /// URLs. Its [`SyntheticFile::sha256`] is what a download of the URL must hash to, and its
    /// [`SyntheticFile::etag`] the `ETag` the fake sends.
    pub fn synthetic_file(&self, url: &str) -> Option<SyntheticFile> {
        let path = url.strip_prefix(&self.shared.files_base).unwrap_or(url);
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let st = lock(&self.shared.state);
        let (pred, i) = st.outputs.get(path)?;
        pred.synthetic.get(*i).copied()
    }
}

/// A running fake server on the current tokio runtime. Dropping it shuts the server down.
///
/// Its tasks run on the runtime that called [`start`](Self::start): with a current-thread
/// runtime (plain `#[tokio::test]`), the test must only `await` while the server works, so use an
/// async client there, or a multi-thread runtime, or [`BlockingFakeServer`].
#[derive(Debug)]
pub struct FakeServer {
    handle: FakeHandle,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Deref for FakeServer {
    type Target = FakeHandle;
    fn deref(&self) -> &FakeHandle {
        &self.handle
    }
}

/// Binds 127.0.0.1:port with a deep accept backlog (benchmarks open thousands of connections
/// at once).
fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    let l = socket.listen(8192)?;
    let addr = l.local_addr()?;
    Ok((l, addr))
}

impl FakeServer {
    /// Starts a server with default [`Options`] on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<FakeServer> {
        Self::start_with(Options::default()).await
    }

    /// Starts a server with these options.
    pub async fn start_with(opts: Options) -> std::io::Result<FakeServer> {
        let opts = opts.normalized();
        let (api, api_addr) = bind(opts.port)?;
        let (files, files_addr) = bind(opts.files_port)?;
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            api_base: format!("http://{api_addr}"),
            files_base: format!("http://{files_addr}"),
            opts,
            state: Mutex::new(State::with_builtins()),
            requests: Mutex::new(VecDeque::new()),
            dropped_requests: Default::default(),
            faults: Mutex::new(Vec::new()),
            deliveries: Mutex::new(VecDeque::new()),
            api_conns: Default::default(),
            files_conns: Default::default(),
            open_conns: Default::default(),
            shutdown: stop_rx,
            started: std::time::Instant::now(),
            rate_window: Mutex::new((0, 0)),
            create_window: Mutex::new((0, 0)),
        });
        let tasks = vec![
            tokio::spawn(server::accept_loop(shared.clone(), api, Origin::Api)),
            tokio::spawn(server::accept_loop(shared.clone(), files, Origin::Files)),
        ];
        Ok(FakeServer {
            handle: FakeHandle { shared },
            stop,
            tasks,
        })
    }

    /// A cloneable handle to this server.
    pub fn handle(&self) -> FakeHandle {
        self.handle.clone()
    }

    /// Stops accepting connections, closes the open ones, and waits for the listeners to close.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A fake server for synchronous code: it runs a multi-thread tokio runtime on its own thread.
/// Dropping it shuts the server down and joins that thread.
#[derive(Debug)]
pub struct BlockingFakeServer {
    handle: FakeHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Deref for BlockingFakeServer {
    type Target = FakeHandle;
    fn deref(&self) -> &FakeHandle {
        &self.handle
    }
}

impl BlockingFakeServer {
    /// Starts a server with default [`Options`].
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(Options::default())
    }

    /// Starts a server with these options.
    pub fn start_with(opts: Options) -> std::io::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("replicate-fake".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("replicate-fake-worker")
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    match FakeServer::start_with(opts).await {
                        Ok(server) => {
                            let _ = ready_tx.send(Ok(server.handle()));
                            let _ = stop_rx.await;
                            server.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                rt.shutdown_timeout(std::time::Duration::from_secs(1));
            })?;
        let handle = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the fake server thread died"))??;
        Ok(BlockingFakeServer {
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// A cloneable handle to this server.
    pub fn handle(&self) -> FakeHandle {
        self.handle.clone()
    }

    /// Shuts the server down and joins its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BlockingFakeServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
