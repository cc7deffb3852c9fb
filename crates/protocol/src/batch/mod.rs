//! Batches: thousands of predictions of one target, paced by the rate limit, resumable, never
//! created twice.
//!
//! [`Batch`] is a sans-IO scheduler. Unlike a [`Flow`](crate::Flow), it may have several
//! requests in flight at once: each [`BatchStep::Send`] carries a [`RequestId`], and its answer
//! comes back through [`Batch::handle_response`] or [`Batch::handle_error`] with that id, in any
//! order. The batch never has more than [`BatchOptions::max_requests`] requests in flight, nor
//! more than [`BatchOptions::max_in_flight`] predictions started and not finished.
//!
//! # Driving a batch
//!
//! ```text
//!   driver                                        batch
//!     │  poll(now) ───────────────────────────────▶ │
//!     │  ◀── Journal(record) ────────────────────── │ append record.to_line(), flush (fsync),
//!     │                                             │   THEN poll again
//!     │  ◀── Send { id, out } ───────────────────── │ start the request (a worker thread, a
//!     │                                             │   future); poll again at once
//!     │  ◀── Yield(item result) ─────────────────── │ an item is over; poll again
//!     │  ◀── Sleep { until } ────────────────────── │ nothing to start: wait for the first of
//!     │                                             │   `until` (None: no timer) and any answer
//!     │  handle_response(id, response, now) ──────▶ │ an answer (body read whole, at most
//!     │  handle_error(id, transport error, now) ──▶ │   out.read's cap) or a transport failure
//!     │  ◀── Done(summary) ──────────────────────── │ over; drop any request still in flight
//! ```
//!
//! The rules:
//!
//! 1. **A [`BatchStep::Journal`] record is durable before the next `poll`.** The intent of a
//!    create is handed out by one `poll` and the create itself by a later one, so a driver that
//!    writes and flushes each record before polling again never sends a create the journal does
//!    not know about. A driver without a journal just drops the records.
//! 2. Every `Send` gets exactly one `handle_response` or `handle_error` with its id (answers to
//!    ids the batch no longer waits for are ignored). Between `poll`s, a driver may hand in as
//!    many answers as it has.
//! 3. `poll` is cheap and must be called again after every step but `Done`; `Sleep` is the only
//!    step that may block the driver.
//! 4. The batch owns every timing decision: the driver does not retry, pace, or time out
//!    requests other than with [`Outgoing::timeout`].
//!
//! With a thread pool, one coordinator thread owns the batch; workers receive `(id, out)` on a
//! channel and send `(id, result)` back; at `Sleep { until }` the coordinator blocks on
//! `recv_timeout(until - now)` (or `recv()` when `until` is `None`). With async, the pending
//! requests are a `FuturesUnordered` of `async move { (id, send(out).await) }`, and `Sleep`
//! is a `select` of its next completion and a timer. Size the pool (or the connection pool) to
//! [`Batch::max_requests`].
//!
//! A complete driver, with a toy in-memory server as its transport and a made-up clock:
//!
//! ```
//! use std::collections::VecDeque;
//! use std::time::{Duration, Instant, SystemTime};
//! use replicate_protocol::batch::{Batch, BatchOptions, BatchSpec, BatchStep, Clock};
//! use replicate_protocol::{Config, CreatePrediction};
//! use serde_json::json;
//!
//! // The toy server: a create answers `starting`, a poll answers `succeeded`.
//! fn serve(req: &http::Request<Vec<u8>>, n: usize) -> http::Response<Vec<u8>> {
//!     let (status, body) = if req.method() == "POST" {
//!         let input: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
//!         (201, json!({"id": format!("p{n}"), "status": "starting", "input": input["input"]}))
//!     } else {
//!         let id = req.uri().path().rsplit('/').next().unwrap();
//!         (200, json!({"id": id, "status": "succeeded", "output": "https://x/out.png"}))
//!     };
//!     http::Response::builder().status(status).body(body.to_string().into_bytes()).unwrap()
//! }
//!
//! let inputs: Vec<_> = (0..3).map(|i| json!({"prompt": format!("cat {i}")})).collect();
//! let spec = BatchSpec::new(
//!     CreatePrediction::new("black-forest-labs/flux-schnell".parse()?),
//!     inputs,
//! );
//! let mut now = Instant::now();
//! let mut batch = Batch::new(
//!     Config::new("r8_token"),
//!     spec,
//!     BatchOptions::default(),
//!     Clock::new(now, SystemTime::now()),
//! )?;
//! let mut journal = String::new(); // a file, in a real driver
//! let mut in_flight = VecDeque::new();
//! let mut sent = 0;
//! let summary = loop {
//!     match batch.poll(now) {
//!         BatchStep::Journal(record) => journal.push_str(&record.to_line()),
//!         BatchStep::Send { id, out } => {
//!             sent += 1;
//!             in_flight.push_back((id, serve(&out.request, sent)));
//!         }
//!         BatchStep::Yield(item) => {
//!             let prediction = item.result?;
//!             println!("item {}: {}", item.index, prediction.output_url().unwrap());
//!         }
//!         BatchStep::Sleep { until } => {
//!             // Answers arrive 10 ms after they were sent, or the timer fires first.
//!             let answer_at = now + Duration::from_millis(10);
//!             match until {
//!                 Some(t) if t < answer_at || in_flight.is_empty() => now = t,
//!                 _ => {
//!                     now = answer_at;
//!                     while let Some((id, response)) = in_flight.pop_front() {
//!                         batch.handle_response(id, response, now);
//!                     }
//!                 }
//!             }
//!         }
//!         BatchStep::Done(summary) => break summary,
//!     }
//! };
//! assert!(summary.error.is_none());
//! assert_eq!(summary.succeeded, 3);
//! assert_eq!(journal.lines().count(), 1 + 3 * 3); // header + intent, created, done per item
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Pacing
//!
//! - **Creates** share one token bucket: at most [`BatchOptions::create_rate`] per second
//!   (default 10, Replicate's documented 600 creates a minute). Every create answer's
//!   `ratelimit-remaining` / `ratelimit-reset` feeds it: once the server's window is used up
//!   (creates still in flight counted as used), no create goes until the window resets.
//!   `ratelimit-reset` is whole seconds rounded up, so the window's end is estimated from all
//!   its answers (the earliest "now + reset"), not from the latest one, which would hold creates
//!   up to a second too long each window; answers are sorted into windows by when their
//!   request left and by their count, so a late answer from a past window does not stall the
//!   next one. A 429
//!   holds *every* create, not just the throttled one, for its `Retry-After` (header, or body
//!   `retry_after`; the window's reset when it is longer), plus jitter, and halves the bucket's
//!   rate, which then grows back linearly over [`BatchOptions::rate_recovery`] of calm. The
//!   throttled item goes first when creates resume. Jitter comes from a generator seeded by
//!   [`BatchOptions::seed`], so tests are reproducible.
//! - **Reads** (polls and the lookups of lost creates) share a second bucket, at most
//!   [`BatchOptions::read_rate`] per second (default 20, well under the API's 3,000 a minute),
//!   fed and throttled the same way. Each running prediction is polled by its own
//!   `GET /v1/predictions/{id}`, at most once per interval of the [`PollPolicy`]
//!   (0.5 s at first, backing off to 5 s by default), and the read bucket caps the total: the
//!   poll rate is `min(in-flight / interval, read_rate)`, whatever the number of items. A
//!   per-item GET was chosen over polling through the list endpoint: it returns the whole
//!   prediction (logs, metrics, output) and is exact, while a list page covers only the newest
//!   100 predictions of the whole account, interleaved with everyone else's — when
//!   [`BatchOptions::max_in_flight`] is a few dozen, per-item GETs at the capped rate cost as
//!   little.
//! - With [`Completion::Webhook`], predictions are expected to end through
//!   [`Batch::feed_webhook`] and are polled only every `safety_interval`.
//!
//! # Lost creates
//!
//! A create whose answer is lost after the request may have reached the server (a timeout, a
//! broken connection, a 5xx, an unreadable 2xx: what a single create reports as
//! [`Error::CreateOutcomeUnknown`]) is not re-sent blindly. After
//! [`BatchOptions::lost_grace`], the batch lists the account's predictions
//! (`GET /v1/predictions?created_after=…`, newest first, page after page until they are older
//! than the item's first send minus [`BatchOptions::clock_skew`]) and looks for one of the same
//! target (model `owner/name`, version id, or deployment `owner/name`) with the same `input`
//! (JSON equality), created after the item's first send minus the skew margin, and not already
//! claimed by another item of the batch. Found: the item **adopts** it. Not found: the create is
//! **resent** (with a new intent record first). One listing serves every item lost at the time.
//! Each item's [`CreateOutcome`] says which happened.
//!
//! The remaining race: a create that reaches the server *after* the listing (held in a queue
//! of a proxy or a load balancer for longer than the grace period) is not seen, so the item is
//! resent and two predictions exist. The grace period makes it unlikely, not impossible. The
//! other way round, a prediction created by someone else with the same target and input in the
//! same minutes (another process of yours) could be adopted; it has the same input, so its
//! output answers the item, but it is not billed to this batch.
//!
//! # Resuming
//!
//! [`Batch::resume`] takes a [`Journal`] read back from a previous run: items with a `done`
//! record are skipped (counted in [`BatchSummary::already_done`], not yielded again), items with
//! a `created` record are waited for without being created again, items with an `intent` and no
//! `created` are looked up like a lost create (adopted, or created again), and the rest are
//! created. A journal of another target or other inputs is refused
//! ([`JournalError::Mismatch`]).

mod journal;
mod pace;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use http::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

pub use journal::{
    JOURNAL_FORMAT, Journal, JournalError, JournalHeader, JournalRecord, inputs_digest,
};

use crate::endpoint::{Endpoint, RetryClass, parse_json};
use crate::pagination::{Page, Paginated};
use crate::retry::final_failure;
use crate::{
    Config, CreatePrediction, Error, GetPrediction, ListPredictions, Outgoing, PollPolicy,
    Prediction, RetryPolicy, Status, Target, TransportError,
};
use pace::{Bucket, rate_limit};

/// Names one request of a batch: the answer to a [`BatchStep::Send`] is handed back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The monotonic and the wall-clock time, read together once by the driver when the batch
/// starts. The batch works with `Instant`s; it needs the wall clock only to compare with the
/// server's `created_at` when it looks for a lost create, and to date its intent records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// `Instant::now()`.
    pub now: Instant,
    /// `SystemTime::now()`, read at the same moment.
    pub wall: SystemTime,
}

impl Clock {
    /// The pair.
    pub fn new(now: Instant, wall: SystemTime) -> Self {
        Clock { now, wall }
    }

    fn wall_at(&self, t: Instant) -> OffsetDateTime {
        let wall = if t >= self.now {
            self.wall + (t - self.now)
        } else {
            self.wall - (self.now - t)
        };
        OffsetDateTime::from(wall)
    }
}

/// What a batch runs: one create (target and options: webhook, `Cancel-After`) for each input.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSpec {
    /// The create every item uses, with its own input. Its sync mode is ignored: a batch never
    /// holds a connection open.
    pub create: CreatePrediction,
    /// One input (a JSON object) per item.
    pub inputs: Vec<Value>,
    /// What identifies the inputs in the journal's header ([`inputs_digest`] of them unless
    /// set, e.g. to an inputs file's identity).
    pub inputs_id: String,
}

impl BatchSpec {
    /// A batch of `create` over `inputs`, identified by their digest.
    pub fn new(create: CreatePrediction, inputs: Vec<Value>) -> Self {
        let inputs_id = inputs_digest(&inputs);
        BatchSpec {
            create,
            inputs,
            inputs_id,
        }
    }

    /// The same batch identified by `id` in the journal instead of the inputs' digest.
    pub fn inputs_id(mut self, id: impl Into<String>) -> Self {
        self.inputs_id = id.into();
        self
    }

    /// The journal header of this batch.
    pub fn header(&self) -> JournalHeader {
        JournalHeader {
            format: JOURNAL_FORMAT,
            target: self.create.target.to_string(),
            inputs: self.inputs_id.clone(),
            items: self.inputs.len(),
        }
    }
}

/// How items learn that their prediction finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Completion {
    /// By polling, per the [`PollPolicy`].
    #[default]
    Poll,
    /// By webhook deliveries handed to [`Batch::feed_webhook`]; polled only every
    /// `safety_interval`, in case a delivery is lost. The create must carry a webhook URL.
    Webhook {
        /// The interval of the safety polls.
        safety_interval: Duration,
    },
}

/// The options of a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOptions {
    /// The most predictions started and not finished (default 32).
    pub max_in_flight: usize,
    /// The most requests in flight at once (default 8): size the driver's pool to it.
    pub max_requests: usize,
    /// The most creates a second (default 10).
    pub create_rate: f64,
    /// The most polls and lookups a second, all items together (default 20).
    pub read_rate: f64,
    /// How long a rate halved by a 429 takes to grow back to its maximum (default 60 s).
    pub rate_recovery: Duration,
    /// The retry rules of each request.
    pub retry: RetryPolicy,
    /// The poll intervals of each running prediction.
    pub poll: PollPolicy,
    /// How items learn they are finished.
    pub completion: Completion,
    /// How long after a lost create the batch looks for it (default 10 s).
    pub lost_grace: Duration,
    /// The clock-skew margin between this machine and the server (default 5 minutes).
    pub clock_skew: Duration,
    /// The most list pages one lookup reads (default 50).
    pub max_lookup_pages: usize,
    /// How many times an item's create may be resent after lookups that did not find it
    /// (default 3); past that the item ends with [`Error::CreateOutcomeUnknown`].
    pub max_resends: u32,
    /// The seed of the jitter (default: random).
    pub seed: Option<u64>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_in_flight: 32,
            max_requests: 8,
            create_rate: 10.0,
            read_rate: 20.0,
            rate_recovery: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            completion: Completion::Poll,
            lost_grace: Duration::from_secs(10),
            clock_skew: Duration::from_secs(300),
            max_lookup_pages: 50,
            max_resends: 3,
            seed: None,
        }
    }
}

/// How an item's prediction came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateOutcome {
    /// The first create was answered.
    Created,
    /// A create's answer was lost, and the prediction was found on the server.
    Adopted,
    /// A create's answer was lost, the prediction was not found, and the create was sent again
    /// (and answered).
    Resent,
}

/// An item that is over.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    /// Its index in the inputs.
    pub index: usize,
    /// Its prediction's id, when it has one.
    pub prediction_id: Option<String>,
    /// How its prediction came to exist (`None` when none was: a refused input, an unknown
    /// outcome).
    pub outcome: Option<CreateOutcome>,
    /// The terminal prediction, whatever its status (succeeded, failed, canceled, aborted: see
    /// [`Prediction::into_result`]), or why the item has none.
    pub result: Result<Prediction, Error>,
}

impl ItemResult {
    /// The result as a caller of `run` sees it: `Ok` only when the prediction succeeded.
    pub fn into_result(self) -> Result<Prediction, Error> {
        self.result.and_then(Prediction::into_result)
    }
}

/// Where an item was when the batch ended before it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnfinishedState {
    /// Nothing was sent for it.
    NotStarted,
    /// A create may have been sent, with no answer: resuming looks it up.
    OutcomeUnknown,
    /// Its prediction exists and was not finished.
    Running,
}

/// An item not over when the batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// Its index.
    pub index: usize,
    /// Its prediction, when known.
    pub prediction_id: Option<String>,
    /// Where it was.
    pub state: UnfinishedState,
}

/// How a batch went.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchSummary {
    /// What ended the batch early (401, 403, the network or the server past the retry
    /// policy), if anything did.
    pub error: Option<Error>,
    /// Whether [`Batch::stop`] ended it.
    pub stopped: bool,
    /// How many items the batch has.
    pub items: usize,
    /// Items whose prediction succeeded.
    pub succeeded: usize,
    /// Items whose prediction failed, was canceled or aborted.
    pub failed: usize,
    /// Items that ended in an error (no terminal prediction).
    pub errors: usize,
    /// Items a resumed journal says were over already (not yielded again).
    pub already_done: usize,
    /// Predictions created by a first create.
    pub created: usize,
    /// Lost creates found on the server.
    pub adopted: usize,
    /// Lost creates not found and sent again.
    pub resent: usize,
    /// Create requests sent (retries included).
    pub creates_sent: u64,
    /// Polls sent.
    pub polls_sent: u64,
    /// List pages read by lookups.
    pub list_pages: u64,
    /// 429 answers to creates.
    pub create_throttles: u64,
    /// 429 answers to reads.
    pub read_throttles: u64,
    /// The items not over, when the batch ended early.
    pub unfinished: Vec<Unfinished>,
}

/// What a [`Batch`] asks its driver to do next. See the [module documentation](self).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum BatchStep {
    /// Append this record to the journal and make it durable **before polling again**.
    Journal(JournalRecord),
    /// Start this request; report its outcome with its id. Poll again at once: there may be
    /// more to send.
    Send {
        /// The request's id.
        id: RequestId,
        /// The request, how to read its answer, its timeout.
        out: Outgoing,
    },
    /// Nothing to start now: poll again at `until` (`None`: no timer), or as soon as an answer
    /// arrives, whichever is first.
    Sleep {
        /// When to poll again at the latest.
        until: Option<Instant>,
    },
    /// An item is over; poll again.
    Yield(ItemResult),
    /// The batch is over; requests still in flight may be dropped.
    Done(BatchSummary),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Never started (in `pending`).
    Pending,
    /// Waiting for a create token (in `retry_queue`).
    Queued,
    /// Its intent was handed out; the create goes at the next opportunity (in `ready`).
    Ready,
    Creating(RequestId),
    /// A create that certainly did not reach the server, to send again (in `create_retries`).
    CreateRetry,
    /// The create's answer was lost at this instant.
    Lost(Instant),
    /// Covered by the running lookup.
    LookingUp,
    /// Its prediction exists; next poll due (in `polls_due`).
    Running(Instant),
    Polling(RequestId),
    Finished,
}

#[derive(Debug)]
struct Item {
    phase: Phase,
    id: Option<String>,
    outcome: Option<CreateOutcome>,
    /// The next answered create is a resend.
    resent: bool,
    /// The current attempt's intent is in the journal.
    intent_written: bool,
    /// The wall time of the item's first intent.
    first_sent: Option<OffsetDateTime>,
    /// When its prediction was known to exist (poll backoff).
    created: Option<Instant>,
    interval: Duration,
    retries: u32,
    throttled: u32,
    resends: u32,
    lost_error: Option<TransportError>,
    last: Option<Prediction>,
    /// Counted in `active`.
    active: bool,
}

impl Item {
    fn new(interval: Duration) -> Self {
        Item {
            phase: Phase::Pending,
            id: None,
            outcome: None,
            resent: false,
            intent_written: false,
            first_sent: None,
            created: None,
            interval,
            retries: 0,
            throttled: 0,
            resends: 0,
            lost_error: None,
            last: None,
            active: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Req {
    Create(usize),
    Poll(usize),
    List,
}

#[derive(Debug)]
struct Lookup {
    covers: Vec<usize>,
    cutoff: OffsetDateTime,
    next: Option<ListPredictions>,
    pages: usize,
    candidates: Vec<Prediction>,
    in_flight: bool,
    retry_at: Option<Instant>,
    retries: u32,
    throttled: u32,
}

// Moved once from the queue to the driver.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Emit {
    Journal(JournalRecord),
    Yield(ItemResult),
}

/// The batch scheduler. See the [module documentation](self).
#[derive(Debug)]
pub struct Batch {
    cfg: Config,
    spec: BatchSpec,
    opts: BatchOptions,
    clock: Clock,
    items: Vec<Item>,
    pending: VecDeque<usize>,
    retry_queue: VecDeque<usize>,
    ready: VecDeque<usize>,
    create_retries: BTreeSet<(Instant, usize)>,
    polls_due: BTreeSet<(Instant, usize)>,
    lost: Vec<usize>,
    lookup: Option<Lookup>,
    requests: HashMap<RequestId, (Req, Instant)>,
    creates_in_flight: u64,
    next_request: u64,
    active: usize,
    finished: usize,
    claimed: HashSet<String>,
    by_id: HashMap<String, usize>,
    creates: Bucket,
    reads: Bucket,
    rng: fastrand::Rng,
    out: VecDeque<Emit>,
    stopping: bool,
    summary: BatchSummary,
    done: bool,
}

impl Batch {
    /// A new batch. Its first step is the journal's header.
    pub fn new(
        cfg: Config,
        spec: BatchSpec,
        opts: BatchOptions,
        clock: Clock,
    ) -> Result<Batch, Error> {
        let mut batch = Batch::build(cfg, spec, opts, clock)?;
        batch.pending = (0..batch.items.len()).collect();
        batch
            .out
            .push_back(Emit::Journal(JournalRecord::Header(batch.spec.header())));
        Ok(batch)
    }

    /// A batch resuming from the journal of an earlier run of the same spec (see the
    /// [module documentation](self#resuming)). Nothing is written again for the header:
    /// append the new records to the same file (truncated to [`Journal::valid_len`]).
    pub fn resume(
        cfg: Config,
        spec: BatchSpec,
        opts: BatchOptions,
        clock: Clock,
        journal: &Journal,
    ) -> Result<Batch, JournalError> {
        journal.check(&spec.header())?;
        let mut batch = Batch::build(cfg, spec, opts, clock).map_err(JournalError::Invalid)?;
        let now = clock.now;
        #[derive(Default, Clone)]
        struct Replay {
            intent: Option<OffsetDateTime>,
            created: Option<(String, CreateOutcome)>,
            done: bool,
        }
        let mut replay = vec![Replay::default(); batch.items.len()];
        for record in &journal.records {
            match record {
                JournalRecord::Header(_) => {}
                JournalRecord::Intent { item, at } => {
                    let r = &mut replay[*item];
                    r.intent = Some(r.intent.map_or(*at, |t| t.min(*at)));
                }
                JournalRecord::Created { item, id, outcome } => {
                    replay[*item].created = Some((id.clone(), *outcome));
                }
                JournalRecord::Done { item, id, .. } => {
                    let r = &mut replay[*item];
                    r.done = true;
                    if let Some(id) = id {
                        r.created
                            .get_or_insert((id.clone(), CreateOutcome::Created));
                    }
                }
            }
        }
        for (i, r) in replay.into_iter().enumerate() {
            if let Some((id, _)) = &r.created {
                batch.claimed.insert(id.clone());
            }
            let item = &mut batch.items[i];
            item.first_sent = r.intent;
            if r.done {
                item.phase = Phase::Finished;
                batch.finished += 1;
                batch.summary.already_done += 1;
            } else if let Some((id, outcome)) = r.created {
                item.id = Some(id.clone());
                item.outcome = Some(outcome);
                item.created = Some(now);
                item.active = true;
                item.phase = Phase::Running(now);
                batch.active += 1;
                batch.by_id.insert(id, i);
                batch.polls_due.insert((now, i));
            } else if r.intent.is_some() {
                item.intent_written = true;
                item.active = true;
                item.phase = Phase::Lost(now);
                item.lost_error = Some(TransportError::new(
                    crate::TransportErrorKind::Other,
                    "the journal has the intent of this create but not its answer",
                ));
                batch.active += 1;
                batch.lost.push(i);
            } else {
                batch.pending.push_back(i);
            }
        }
        Ok(batch)
    }

    fn build(
        cfg: Config,
        mut spec: BatchSpec,
        opts: BatchOptions,
        clock: Clock,
    ) -> Result<Batch, Error> {
        let bad = |what: &str| Err(Error::InvalidInput(format!("batch options: {what}")));
        if opts.max_in_flight == 0 || opts.max_requests == 0 {
            return bad("max_in_flight and max_requests must be at least 1");
        }
        let positive = |r: f64| r.is_finite() && r > 0.0;
        if !positive(opts.create_rate) || !positive(opts.read_rate) {
            return bad("create_rate and read_rate must be positive");
        }
        if matches!(opts.completion, Completion::Webhook { .. }) && spec.create.webhook.is_none() {
            return bad("webhook completion needs a create with a webhook URL");
        }
        spec.create.sync = None;
        let seed = opts.seed.unwrap_or_else(|| fastrand::u64(..));
        let items = (0..spec.inputs.len())
            .map(|_| Item::new(opts.poll.initial_interval))
            .collect();
        Ok(Batch {
            creates: Bucket::new(opts.create_rate, 1.0, opts.rate_recovery),
            reads: Bucket::new(opts.read_rate, 1.0, opts.rate_recovery),
            rng: fastrand::Rng::with_seed(seed),
            summary: BatchSummary {
                items: spec.inputs.len(),
                ..BatchSummary::default()
            },
            cfg,
            spec,
            opts,
            clock,
            items,
            pending: VecDeque::new(),
            retry_queue: VecDeque::new(),
            ready: VecDeque::new(),
            create_retries: BTreeSet::new(),
            polls_due: BTreeSet::new(),
            lost: Vec::new(),
            lookup: None,
            requests: HashMap::new(),
            creates_in_flight: 0,
            next_request: 0,
            active: 0,
            finished: 0,
            claimed: HashSet::new(),
            by_id: HashMap::new(),
            out: VecDeque::new(),
            stopping: false,
            done: false,
        })
    }

    /// The most requests the batch has in flight at once.
    pub fn max_requests(&self) -> usize {
        self.opts.max_requests
    }

    /// How many requests are in flight.
    pub fn requests_in_flight(&self) -> usize {
        self.requests.len()
    }

    /// The counts so far (the summary `Done` will carry, without its unfinished items).
    pub fn progress(&self) -> &BatchSummary {
        &self.summary
    }

    /// The current create rate (creates a second), lowered by 429s.
    pub fn create_rate(&self) -> f64 {
        self.creates.rate()
    }

    /// Stops the batch: nothing new is sent; once the requests in flight are answered, `Done`
    /// reports the unfinished items (resume them from the journal).
    pub fn stop(&mut self) {
        self.stopping = true;
        self.summary.stopped = true;
    }

    /// What to do now. See the [module documentation](self) for the driver rules.
    pub fn poll(&mut self, now: Instant) -> BatchStep {
        loop {
            if let Some(e) = self.out.pop_front() {
                return match e {
                    Emit::Journal(r) => BatchStep::Journal(r),
                    Emit::Yield(r) => BatchStep::Yield(r),
                };
            }
            if self.done
                || self.finished == self.items.len()
                || (self.stopping && self.requests.is_empty())
            {
                return BatchStep::Done(self.finish_summary());
            }
            if self.stopping {
                return BatchStep::Sleep { until: None };
            }
            match self.schedule(now) {
                Some(step) => return step,
                None if !self.out.is_empty() => continue,
                None => {
                    return BatchStep::Sleep {
                        until: self.next_wake(now),
                    };
                }
            }
        }
    }

    fn finish_summary(&mut self) -> BatchSummary {
        self.done = true;
        let mut summary = self.summary.clone();
        summary.unfinished = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.phase != Phase::Finished)
            .map(|(index, it)| Unfinished {
                index,
                prediction_id: it.id.clone(),
                state: if it.id.is_some() {
                    UnfinishedState::Running
                } else if it.intent_written || it.first_sent.is_some() {
                    UnfinishedState::OutcomeUnknown
                } else {
                    UnfinishedState::NotStarted
                },
            })
            .collect();
        summary
    }

    fn new_request(&mut self, req: Req, now: Instant) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.requests.insert(id, (req, now));
        id
    }

    /// The next request to send (or a record to hand out, in `out`), if any.
    fn schedule(&mut self, now: Instant) -> Option<BatchStep> {
        if self.requests.len() >= self.opts.max_requests {
            return None;
        }
        // A create whose intent is out goes first: its token is taken.
        if let Some(i) = self.ready.pop_front() {
            return self.send_create(i, now);
        }
        if let Some(step) = self.next_lookup(now) {
            return Some(step);
        }
        if let Some(step) = self.next_poll(now) {
            return Some(step);
        }
        self.next_create(now)
    }

    fn next_create(&mut self, now: Instant) -> Option<BatchStep> {
        while let Some(&(t, i)) = self.create_retries.first() {
            if t > now {
                break;
            }
            self.create_retries.pop_first();
            self.retry_queue.push_front(i);
            self.items[i].phase = Phase::Queued;
        }
        let from_retry = !self.retry_queue.is_empty();
        if !from_retry && (self.pending.is_empty() || self.active >= self.opts.max_in_flight) {
            return None;
        }
        self.creates.try_take(now).ok()?;
        let i = if from_retry {
            self.retry_queue.pop_front()?
        } else {
            self.pending.pop_front()?
        };
        let item = &mut self.items[i];
        if !item.active {
            item.active = true;
            self.active += 1;
        }
        if item.intent_written {
            return self.send_create(i, now);
        }
        let at = self.clock.wall_at(now);
        item.intent_written = true;
        item.first_sent.get_or_insert(at);
        item.phase = Phase::Ready;
        self.ready.push_back(i);
        Some(BatchStep::Journal(JournalRecord::Intent { item: i, at }))
    }

    fn send_create(&mut self, i: usize, now: Instant) -> Option<BatchStep> {
        let mut create = self.spec.create.clone();
        create.input = self.spec.inputs[i].clone();
        match create.request(&self.cfg) {
            Ok(request) => {
                let id = self.new_request(Req::Create(i), now);
                self.items[i].phase = Phase::Creating(id);
                self.creates_in_flight += 1;
                self.summary.creates_sent += 1;
                Some(BatchStep::Send {
                    id,
                    out: Outgoing::buffered(&self.cfg, request),
                })
            }
            Err(e) => {
                self.finish(i, Err(e), now);
                None
            }
        }
    }

    fn next_poll(&mut self, now: Instant) -> Option<BatchStep> {
        let &(t, i) = self.polls_due.first()?;
        if t > now {
            return None;
        }
        self.reads.try_take(now).ok()?;
        self.polls_due.pop_first();
        let pid = self.items[i].id.clone().unwrap_or_default();
        match GetPrediction::new(pid).request(&self.cfg) {
            Ok(request) => {
                let id = self.new_request(Req::Poll(i), now);
                self.items[i].phase = Phase::Polling(id);
                self.summary.polls_sent += 1;
                Some(BatchStep::Send {
                    id,
                    out: Outgoing::buffered(&self.cfg, request),
                })
            }
            Err(e) => {
                self.finish(i, Err(e), now);
                None
            }
        }
    }

    fn next_lookup(&mut self, now: Instant) -> Option<BatchStep> {
        if self.lookup.is_none() {
            let grace = self.opts.lost_grace;
            let due: Vec<usize> = self
                .lost
                .iter()
                .copied()
                .filter(|&i| matches!(self.items[i].phase, Phase::Lost(t) if t + grace <= now))
                .collect();
            if due.is_empty() {
                return None;
            }
            self.lost.retain(|i| !due.contains(i));
            let skew = self.opts.clock_skew;
            let now_wall = self.clock.wall_at(now);
            let cutoff = due
                .iter()
                .map(|&i| self.items[i].first_sent.unwrap_or(now_wall))
                .min()
                .unwrap_or(now_wall)
                - skew;
            for &i in &due {
                self.items[i].phase = Phase::LookingUp;
            }
            self.lookup = Some(Lookup {
                covers: due,
                cutoff,
                next: Some(ListPredictions {
                    created_after: Some(cutoff),
                    ..ListPredictions::default()
                }),
                pages: 0,
                candidates: Vec::new(),
                in_flight: false,
                retry_at: None,
                retries: 0,
                throttled: 0,
            });
        }
        let lk = self.lookup.as_ref()?;
        if lk.in_flight || lk.retry_at.is_some_and(|t| t > now) {
            return None;
        }
        let list = lk.next.clone()?;
        self.reads.try_take(now).ok()?;
        match list.request(&self.cfg) {
            Ok(request) => {
                let id = self.new_request(Req::List, now);
                if let Some(lk) = &mut self.lookup {
                    lk.in_flight = true;
                }
                self.summary.list_pages += 1;
                Some(BatchStep::Send {
                    id,
                    out: Outgoing::buffered(&self.cfg, request),
                })
            }
            Err(e) => {
                self.fatal(e);
                None
            }
        }
    }

    fn next_wake(&mut self, now: Instant) -> Option<Instant> {
        if self.requests.len() >= self.opts.max_requests {
            return None;
        }
        let mut at: Option<Instant> = None;
        let mut consider = |t: Instant| at = Some(at.map_or(t, |a: Instant| a.min(t)));
        if let Some(&(t, _)) = self.create_retries.first() {
            consider(t);
        }
        if !self.retry_queue.is_empty()
            || (!self.pending.is_empty() && self.active < self.opts.max_in_flight)
        {
            consider(self.creates.ready_at(now));
        }
        if let Some(&(t, _)) = self.polls_due.first() {
            consider(t.max(self.reads.ready_at(now)));
        }
        match &self.lookup {
            Some(lk) if !lk.in_flight && lk.next.is_some() => {
                let t = self.reads.ready_at(now);
                consider(lk.retry_at.map_or(t, |r| r.max(t)));
            }
            Some(_) => {}
            None => {
                for &i in &self.lost {
                    if let Phase::Lost(t) = self.items[i].phase {
                        consider(t + self.opts.lost_grace);
                    }
                }
            }
        }
        at.map(|t| t.max(now + Duration::from_micros(1)))
    }

    /// The answer to request `id`, body read in full.
    pub fn handle_response(&mut self, id: RequestId, response: Response<Vec<u8>>, now: Instant) {
        self.handle(id, Ok(response), now);
    }

    /// Request `id` failed below HTTP.
    pub fn handle_error(&mut self, id: RequestId, error: TransportError, now: Instant) {
        self.handle(id, Err(error), now);
    }

    fn handle(
        &mut self,
        id: RequestId,
        r: Result<Response<Vec<u8>>, TransportError>,
        now: Instant,
    ) {
        if self.done {
            return;
        }
        let Some((req, sent)) = self.requests.remove(&id) else {
            return;
        };
        match req {
            Req::Create(i) => {
                self.creates_in_flight = self.creates_in_flight.saturating_sub(1);
                if self.items[i].phase == Phase::Creating(id) {
                    self.on_create(i, r, sent, now);
                }
            }
            Req::Poll(i) => {
                if self.items[i].phase == Phase::Polling(id) {
                    self.on_poll(i, r, sent, now);
                }
            }
            Req::List => self.on_list(r, sent, now),
        }
    }

    /// Whether `failure` is a throttle (a 429), and the jittered delay before retrying the
    /// request of this class that failed with it, given how many times it was throttled and
    /// retried so far (`None`: it is not retried).
    fn retry_delay(
        &mut self,
        class: RetryClass,
        (throttles, retries): (u32, u32),
        failure: &Error,
    ) -> (bool, Option<Duration>) {
        let throttled = failure.status() == Some(429);
        let count = if throttled { throttles } else { retries };
        let Some(d) = self.opts.retry.decide(class, count, failure) else {
            return (throttled, None);
        };
        let unit = self.rng.f64();
        let d = self.opts.retry.jittered(d, count, failure, unit);
        (throttled, Some(d))
    }

    fn on_create(
        &mut self,
        i: usize,
        r: Result<Response<Vec<u8>>, TransportError>,
        sent: Instant,
        now: Instant,
    ) {
        let parsed = match r {
            Ok(resp) => {
                self.creates.observe(
                    rate_limit(resp.headers()),
                    sent,
                    self.creates_in_flight,
                    now,
                );
                parse_json::<Prediction, _>(&resp)
            }
            Err(t) => Err(Error::Transport(t)),
        };
        let failure = match parsed {
            Ok(p) if !p.id.is_empty() => {
                let item = &mut self.items[i];
                item.retries = 0;
                item.throttled = 0;
                let outcome = if item.resent {
                    CreateOutcome::Resent
                } else {
                    CreateOutcome::Created
                };
                self.created(i, p, outcome, false, now);
                return;
            }
            Ok(_) => Error::decode(201, "the created prediction has no id", b""),
            Err(e) => e,
        };
        let counts = (self.items[i].throttled, self.items[i].retries);
        let (throttled, delay) = self.retry_delay(RetryClass::CreateOnce, counts, &failure);
        if let Some(d) = delay {
            let item = &mut self.items[i];
            if throttled {
                item.throttled += 1;
                self.summary.create_throttles += 1;
                // The whole batch waits, and slows down.
                self.creates.throttle(d, now);
                item.phase = Phase::Queued;
                self.retry_queue.push_front(i);
            } else {
                item.retries += 1;
                item.phase = Phase::CreateRetry;
                self.create_retries.insert((now + d, i));
            }
            return;
        }
        if throttled {
            self.summary.create_throttles += 1;
        }
        match final_failure(RetryClass::CreateOnce, failure) {
            Error::CreateOutcomeUnknown(t) => {
                let item = &mut self.items[i];
                item.lost_error = Some(t);
                item.phase = Phase::Lost(now);
                self.lost.push(i);
            }
            e if is_fatal(&e) => {
                // Certainly not created (a refused token, a connection never made): the item
                // is not started, as far as a resume is concerned it only has an intent.
                self.items[i].phase = Phase::Queued;
                self.fatal(e);
            }
            e => self.finish(i, Err(e), now),
        }
    }

    /// Item `i`'s prediction exists: record it, and wait for it (at once when `poll_now`, e.g.
    /// a list item, which lacks logs and metrics).
    fn created(
        &mut self,
        i: usize,
        p: Prediction,
        outcome: CreateOutcome,
        poll_now: bool,
        now: Instant,
    ) {
        self.claimed.insert(p.id.clone());
        self.by_id.insert(p.id.clone(), i);
        match outcome {
            CreateOutcome::Created => self.summary.created += 1,
            CreateOutcome::Adopted => self.summary.adopted += 1,
            CreateOutcome::Resent => self.summary.resent += 1,
        }
        let item = &mut self.items[i];
        item.id = Some(p.id.clone());
        item.outcome = Some(outcome);
        item.created = Some(now);
        self.out.push_back(Emit::Journal(JournalRecord::Created {
            item: i,
            id: p.id.clone(),
            outcome,
        }));
        if p.status.is_terminal() && !poll_now {
            self.finish(i, Ok(p), now);
            return;
        }
        self.items[i].last = Some(p);
        let first = if poll_now {
            now
        } else {
            now + self.first_interval()
        };
        self.schedule_poll(i, first);
    }

    fn first_interval(&self) -> Duration {
        match self.opts.completion {
            Completion::Poll => self.opts.poll.initial_interval,
            Completion::Webhook { safety_interval } => safety_interval,
        }
    }

    fn schedule_poll(&mut self, i: usize, at: Instant) {
        self.items[i].phase = Phase::Running(at);
        self.polls_due.insert((at, i));
    }

    fn on_poll(
        &mut self,
        i: usize,
        r: Result<Response<Vec<u8>>, TransportError>,
        sent: Instant,
        now: Instant,
    ) {
        let expected = self.items[i].id.clone().unwrap_or_default();
        let parsed = match r {
            Ok(resp) => {
                self.reads.observe(rate_limit(resp.headers()), sent, 0, now);
                parse_json::<Prediction, _>(&resp)
            }
            Err(t) => Err(Error::Transport(t)),
        };
        let failure = match parsed {
            Ok(p) if p.id == expected => {
                let item = &mut self.items[i];
                item.retries = 0;
                item.throttled = 0;
                if p.status.is_terminal() {
                    self.finish(i, Ok(p), now);
                    return;
                }
                let waited = now.saturating_duration_since(item.created.unwrap_or(now));
                let next = match self.opts.completion {
                    Completion::Poll => self.opts.poll.next_interval(item.interval, waited),
                    Completion::Webhook { safety_interval } => safety_interval,
                };
                item.interval = next;
                item.last = Some(p);
                self.schedule_poll(i, now + next);
                return;
            }
            Ok(p) => Error::decode(
                200,
                format!("asked for prediction {expected} but got {}", p.id),
                b"",
            ),
            Err(e) => e,
        };
        let counts = (self.items[i].throttled, self.items[i].retries);
        let (throttled, delay) = self.retry_delay(RetryClass::Idempotent, counts, &failure);
        if let Some(d) = delay {
            let item = &mut self.items[i];
            if throttled {
                item.throttled += 1;
                self.summary.read_throttles += 1;
                self.reads.throttle(d, now);
            } else {
                item.retries += 1;
            }
            // Never sooner than a normal poll (see `Wait`).
            let at = now + d.max(self.opts.poll.initial_interval);
            self.schedule_poll(i, at);
            return;
        }
        if throttled {
            self.summary.read_throttles += 1;
        }
        let e = final_failure(RetryClass::Idempotent, failure);
        if is_fatal(&e) {
            self.items[i].phase = Phase::Running(now);
            self.fatal(e);
            return;
        }
        let item = &self.items[i];
        let prediction = item
            .last
            .clone()
            .unwrap_or_else(|| Prediction::with_id(expected));
        let e = Error::AfterCreate {
            prediction: Box::new(prediction),
            source: Box::new(e),
        };
        self.finish(i, Err(e), now);
    }

    fn on_list(
        &mut self,
        r: Result<Response<Vec<u8>>, TransportError>,
        sent: Instant,
        now: Instant,
    ) {
        let Some(lk) = &mut self.lookup else {
            return;
        };
        lk.in_flight = false;
        let parsed = match r {
            Ok(resp) => {
                self.reads.observe(rate_limit(resp.headers()), sent, 0, now);
                parse_json::<Page<Prediction>, _>(&resp)
            }
            Err(t) => Err(Error::Transport(t)),
        };
        let failure = match parsed {
            Ok(page) => {
                lk.pages += 1;
                lk.retries = 0;
                lk.throttled = 0;
                let mut older = false;
                let next = lk.next.as_ref().and_then(|l| l.next_page(&page));
                for p in page.results {
                    if p.created_at.is_some_and(|c| c < lk.cutoff) {
                        older = true;
                        continue;
                    }
                    if same_target(&self.spec.create.target, &p) && !self.claimed.contains(&p.id) {
                        lk.candidates.push(p);
                    }
                }
                lk.next = if older { None } else { next };
                if lk.next.is_none() {
                    self.conclude_lookup(true, now);
                } else if lk.pages >= self.opts.max_lookup_pages {
                    self.conclude_lookup(false, now);
                }
                return;
            }
            Err(e) => e,
        };
        let counts = (lk.throttled, lk.retries);
        let (throttled, delay) = self.retry_delay(RetryClass::Idempotent, counts, &failure);
        if let Some(d) = delay {
            let Some(lk) = &mut self.lookup else {
                return;
            };
            if throttled {
                lk.throttled += 1;
                self.summary.read_throttles += 1;
                self.reads.throttle(d, now);
            } else {
                lk.retries += 1;
            }
            lk.retry_at = Some(now + d);
            return;
        }
        let e = final_failure(RetryClass::Idempotent, failure);
        if is_fatal(&e) {
            self.fatal(e);
        } else {
            self.conclude_lookup(false, now);
        }
    }

    /// Ends the lookup: each covered item adopts a match, or is resent (only when the listing
    /// was `complete`), or ends with its outcome unknown.
    fn conclude_lookup(&mut self, complete: bool, now: Instant) {
        let Some(lk) = self.lookup.take() else {
            return;
        };
        let mut candidates = lk.candidates;
        // Oldest first: the first create of an item is the likeliest to have landed.
        candidates.sort_by_key(|p| p.created_at);
        let mut covers = lk.covers;
        covers.sort_unstable();
        for i in covers {
            let since = self.items[i]
                .first_sent
                .map(|t| t - self.opts.clock_skew)
                .unwrap_or(lk.cutoff);
            let input = &self.spec.inputs[i];
            let found = candidates.iter().position(|p| {
                !self.claimed.contains(&p.id)
                    && p.created_at.is_none_or(|c| c >= since)
                    && &p.input == input
            });
            if let Some(k) = found {
                let p = candidates.swap_remove(k);
                candidates.sort_by_key(|p| p.created_at);
                self.created(i, p, CreateOutcome::Adopted, true, now);
                continue;
            }
            let item = &mut self.items[i];
            if complete && item.resends < self.opts.max_resends {
                item.resends += 1;
                item.resent = true;
                item.intent_written = false;
                item.phase = Phase::Queued;
                self.retry_queue.push_back(i);
            } else {
                let t = item.lost_error.clone().unwrap_or_else(|| {
                    TransportError::new(crate::TransportErrorKind::Other, "the answer was lost")
                });
                self.finish(i, Err(Error::CreateOutcomeUnknown(t)), now);
            }
        }
    }

    fn fatal(&mut self, e: Error) {
        if self.summary.error.is_none() {
            self.summary.error = Some(e.redact(self.cfg.token().expose()));
        }
        self.stopping = true;
    }

    fn finish(&mut self, i: usize, result: Result<Prediction, Error>, now: Instant) {
        let _ = now;
        let item = &mut self.items[i];
        if item.phase == Phase::Finished {
            return;
        }
        if let Phase::Running(t) = item.phase {
            self.polls_due.remove(&(t, i));
        }
        item.phase = Phase::Finished;
        if item.active {
            item.active = false;
            self.active -= 1;
        }
        self.finished += 1;
        let secret = self.cfg.token().expose();
        let result = match result {
            Ok(mut p) => {
                p.redact(secret);
                Ok(p)
            }
            Err(e) => Err(e.redact(secret)),
        };
        let (status, error) = match &result {
            Ok(p) => {
                if p.status == Status::Succeeded {
                    self.summary.succeeded += 1;
                } else {
                    self.summary.failed += 1;
                }
                (Some(p.status.as_str().to_owned()), None)
            }
            Err(e) => {
                self.summary.errors += 1;
                (None, Some(e.to_string()))
            }
        };
        let id = item.id.clone();
        self.out.push_back(Emit::Yield(ItemResult {
            index: i,
            prediction_id: id.clone(),
            outcome: item.outcome,
            result,
        }));
        self.out.push_back(Emit::Journal(JournalRecord::Done {
            item: i,
            id,
            status,
            error,
        }));
    }

    /// A verified webhook delivery (verify it first: [`crate::webhook`]). A terminal prediction
    /// of this batch ends its item, which is not polled any more; a running one updates it.
    /// Returns whether the prediction belongs to an unfinished item of this batch.
    pub fn feed_webhook(&mut self, prediction: Prediction, now: Instant) -> bool {
        let Some(&i) = self.by_id.get(&prediction.id) else {
            return false;
        };
        if self.items[i].phase == Phase::Finished || self.done {
            return false;
        }
        if prediction.status.is_terminal() {
            // A poll in flight is ignored when it comes back.
            self.finish(i, Ok(prediction), now);
        } else {
            self.items[i].last = Some(prediction);
        }
        true
    }
}

/// Whether a failure past the retry policy ends the whole batch: a refused token or forbidden
/// target, or the network or the server failing past the retry policy.
fn is_fatal(e: &Error) -> bool {
    match e {
        Error::Api(api) => matches!(api.status, 401 | 403 | 429) || api.status >= 500,
        Error::Transport(_) => true,
        _ => false,
    }
}

/// Whether a listed prediction runs the batch's target.
fn same_target(target: &Target, p: &Prediction) -> bool {
    match target {
        Target::Model { owner, name } => {
            p.model.as_deref().is_some_and(|m| {
                m.split_once('/')
                    .is_some_and(|(o, n)| o == owner && n == name)
            }) && p.deployment.is_none()
        }
        Target::Version(v) => p.version.as_deref() == Some(v.as_str()) && p.deployment.is_none(),
        Target::Deployment { owner, name } => p.deployment.as_deref().is_some_and(|d| {
            d.split_once('/')
                .is_some_and(|(o, n)| o == owner && n == name)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_target_rules() {
        let mut p = Prediction::with_id("p");
        p.model = Some("a/b".into());
        p.version = Some("v1".into());
        assert!(same_target(
            &Target::Model {
                owner: "a".into(),
                name: "b".into()
            },
            &p
        ));
        assert!(same_target(&Target::Version("v1".into()), &p));
        assert!(!same_target(&Target::Version("v2".into()), &p));
        p.deployment = Some("me/dep".into());
        assert!(same_target(
            &Target::deployment("me/dep").expect("a deployment"),
            &p
        ));
        assert!(!same_target(&Target::Version("v1".into()), &p));
    }
}
