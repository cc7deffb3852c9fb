//! The batch scheduler against an in-memory simulated server, in simulated time.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use http::{Request, Response};
use proptest::prelude::*;
use replicate_protocol::batch::{
    Batch, BatchOptions, BatchSpec, BatchStep, BatchSummary, Clock, Completion, CreateOutcome,
    ItemResult, Journal, JournalError, JournalRecord, RequestId, UnfinishedState,
};
use replicate_protocol::{
    Config, CreatePrediction, PollPolicy, Prediction, RetryPolicy, Status, TransportError,
    TransportErrorKind,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const TARGET: &str = "acme/painter";

/// What happens to the answer of one create (numbered from 0 in arrival order).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The server creates the prediction; the answer is lost (a timeout).
    LostAfterCreate,
    /// The request never reaches the server; the client sees a timeout.
    LostBeforeCreate,
    /// The server creates it, then a proxy answers 502.
    BadGatewayAfterCreate,
}

struct SimPred {
    id: String,
    input: Value,
    created: Instant,
    finish: Instant,
}

/// The simulated API: creates limited to `per_window` per fixed `window`, predictions that run
/// for `run_for`, a newest-first list, fault injection.
struct Sim {
    t0: Instant,
    wall0: SystemTime,
    window: Duration,
    per_window: u64,
    window_start: Instant,
    used: u64,
    /// Whether successes carry `ratelimit-remaining`/`ratelimit-reset`.
    headers: bool,
    run_for: Duration,
    page_size: usize,
    preds: Vec<SimPred>,
    by_id: HashMap<String, usize>,
    faults: HashMap<u64, Fault>,
    create_seq: u64,
    /// After this many requests, everything is 401.
    unauthorized_after: Option<u64>,
    requests: u64,
    throttles: Vec<Instant>,
    accepted: Vec<Instant>,
    post_times: Vec<Instant>,
    gets: HashMap<String, Vec<Instant>>,
    lists: u64,
}

impl Sim {
    fn new(t0: Instant, wall0: SystemTime) -> Self {
        Sim {
            t0,
            wall0,
            window: Duration::from_secs(10),
            per_window: 500,
            window_start: t0,
            used: 0,
            headers: true,
            run_for: Duration::from_secs(2),
            page_size: 100,
            preds: Vec::new(),
            by_id: HashMap::new(),
            faults: HashMap::new(),
            create_seq: 0,
            unauthorized_after: None,
            requests: 0,
            throttles: Vec::new(),
            accepted: Vec::new(),
            post_times: Vec::new(),
            gets: HashMap::new(),
            lists: 0,
        }
    }

    fn wall(&self, t: Instant) -> OffsetDateTime {
        OffsetDateTime::from(self.wall0 + (t - self.t0))
    }

    fn json(&self, p: &SimPred, now: Instant) -> Value {
        let done = now >= p.finish;
        json!({
            "id": p.id,
            "model": TARGET,
            "version": "v1",
            "input": p.input,
            "status": if done { "succeeded" } else if now > p.created { "processing" } else { "starting" },
            "output": if done { json!("https://x/out.png") } else { Value::Null },
            "created_at": self.wall(p.created).format(&Rfc3339).unwrap(),
        })
    }

    fn reply(status: u16, headers: &[(&str, String)], body: Value) -> Response<Vec<u8>> {
        let mut b = Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        b.body(body.to_string().into_bytes()).unwrap()
    }

    fn handle(
        &mut self,
        req: &Request<Vec<u8>>,
        now: Instant,
    ) -> Result<Response<Vec<u8>>, TransportError> {
        self.requests += 1;
        if self.unauthorized_after.is_some_and(|n| self.requests > n) {
            return Ok(Sim::reply(
                401,
                &[],
                json!({"title": "Unauthenticated", "status": 401}),
            ));
        }
        let path = req.uri().path().to_owned();
        if req.method() == "POST" {
            assert_eq!(path, format!("/v1/models/{TARGET}/predictions"));
            self.post_times.push(now);
            return self.create(req, now);
        }
        if path == "/v1/predictions" {
            return Ok(self.list(req, now));
        }
        let id = path.strip_prefix("/v1/predictions/").unwrap().to_owned();
        self.gets.entry(id.clone()).or_default().push(now);
        let Some(&k) = self.by_id.get(&id) else {
            return Ok(Sim::reply(404, &[], json!({"detail": "not found"})));
        };
        Ok(Sim::reply(200, &[], self.json(&self.preds[k], now)))
    }

    fn create(
        &mut self,
        req: &Request<Vec<u8>>,
        now: Instant,
    ) -> Result<Response<Vec<u8>>, TransportError> {
        while now >= self.window_start + self.window {
            self.window_start += self.window;
            self.used = 0;
        }
        let reset = (self.window_start + self.window - now).as_secs_f64().ceil() as u64;
        if self.used >= self.per_window {
            self.throttles.push(now);
            return Ok(Sim::reply(
                429,
                &[
                    ("retry-after", reset.to_string()),
                    ("ratelimit-remaining", "0".into()),
                    ("ratelimit-reset", reset.to_string()),
                ],
                json!({"detail": "throttled", "status": 429, "retry_after": reset}),
            ));
        }
        let seq = self.create_seq;
        self.create_seq += 1;
        let fault = self.faults.get(&seq).copied();
        if fault == Some(Fault::LostBeforeCreate) {
            return Err(TransportError::new(TransportErrorKind::Timeout, "lost"));
        }
        self.used += 1;
        self.accepted.push(now);
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        let id = format!("p{}", self.preds.len());
        self.preds.push(SimPred {
            id: id.clone(),
            input: body["input"].clone(),
            created: now,
            finish: now + self.run_for,
        });
        self.by_id.insert(id, self.preds.len() - 1);
        match fault {
            Some(Fault::LostAfterCreate) => {
                return Err(TransportError::new(TransportErrorKind::Timeout, "lost"));
            }
            Some(Fault::BadGatewayAfterCreate) => {
                return Ok(Sim::reply(502, &[], json!("<html>bad gateway</html>")));
            }
            _ => {}
        }
        let headers = if self.headers {
            vec![
                (
                    "ratelimit-remaining",
                    (self.per_window - self.used).to_string(),
                ),
                ("ratelimit-reset", reset.to_string()),
            ]
        } else {
            vec![]
        };
        let p = self.json(self.preds.last().unwrap(), now);
        Ok(Sim::reply(201, &headers, p))
    }

    fn list(&mut self, req: &Request<Vec<u8>>, now: Instant) -> Response<Vec<u8>> {
        self.lists += 1;
        let query: HashMap<String, String> = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    percent_decode(v), // created_after has `:` and `+`
                )
            })
            .collect();
        let after = query
            .get("created_after")
            .map(|s| OffsetDateTime::parse(s, &Rfc3339).unwrap());
        let offset: usize = query.get("cursor").map_or(0, |c| c.parse().unwrap());
        let matching: Vec<&SimPred> = self
            .preds
            .iter()
            .rev()
            .filter(|p| after.is_none_or(|a| self.wall(p.created) >= a))
            .collect();
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(self.page_size)
            .map(|p| self.json(p, now))
            .collect();
        let next = (offset + self.page_size < matching.len()).then(|| {
            format!(
                "https://api.replicate.com/v1/predictions?cursor={}",
                offset + self.page_size
            )
        });
        Sim::reply(
            200,
            &[],
            json!({"results": page, "next": next, "previous": null}),
        )
    }

    /// How many predictions exist per input.
    fn per_input(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for p in &self.preds {
            *m.entry(p.input.to_string()).or_default() += 1;
        }
        m
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let h = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap();
            out.push(h);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

type Answer = Result<Response<Vec<u8>>, TransportError>;
type Hook = Box<dyn FnMut(&mut Batch, &mut Sim, Instant)>;

/// The driver: answers arrive `latency` after they were sent; time jumps to the next event.
struct Run {
    now: Instant,
    latency: Duration,
    pending: Vec<(Instant, RequestId, Answer)>,
    journal: Vec<JournalRecord>,
    results: Vec<ItemResult>,
    /// Kill the process when asked to write this journal record (0-based), after writing
    /// `cut` bytes of it.
    kill_at: Option<(usize, usize)>,
    /// The bytes of the journal file.
    file: Vec<u8>,
    /// Called after each move of the clock.
    on_time: Option<Hook>,
}

impl Run {
    fn new(now: Instant) -> Self {
        Run {
            now,
            latency: Duration::from_millis(20),
            pending: Vec::new(),
            journal: Vec::new(),
            results: Vec::new(),
            kill_at: None,
            file: Vec::new(),
            on_time: None,
        }
    }

    /// Drives `batch` to its end; `None` when killed.
    fn drive(&mut self, batch: &mut Batch, sim: &mut Sim) -> Option<BatchSummary> {
        let mut steps = 0u64;
        loop {
            steps += 1;
            assert!(steps < 5_000_000, "the batch does not end");
            match batch.poll(self.now) {
                BatchStep::Journal(record) => {
                    let line = record.to_line();
                    if let Some((k, cut)) = self.kill_at
                        && k == self.journal.len()
                    {
                        self.file
                            .extend_from_slice(&line.as_bytes()[..cut.min(line.len())]);
                        return None;
                    }
                    self.file.extend_from_slice(line.as_bytes());
                    self.journal.push(record);
                }
                BatchStep::Send { id, out } => {
                    let answer = sim.handle(&out.request, self.now);
                    self.pending.push((self.now + self.latency, id, answer));
                }
                BatchStep::Yield(r) => self.results.push(r),
                BatchStep::Sleep { until } => {
                    let next_answer = self.pending.iter().map(|p| p.0).min();
                    let next = match (until, next_answer) {
                        (Some(a), Some(b)) => a.min(b),
                        (Some(a), None) => a,
                        (None, Some(b)) => b,
                        (None, None) => panic!("deadlock: nothing in flight and no timer"),
                    };
                    assert!(next >= self.now, "time goes backwards");
                    self.now = next;
                    self.pending.sort_by_key(|p| p.0);
                    while self.pending.first().is_some_and(|p| p.0 <= self.now) {
                        let (_, id, answer) = self.pending.remove(0);
                        match answer {
                            Ok(r) => batch.handle_response(id, r, self.now),
                            Err(e) => batch.handle_error(id, e, self.now),
                        }
                    }
                    if let Some(f) = &mut self.on_time {
                        f(batch, sim, self.now);
                    }
                }
                BatchStep::Done(summary) => return Some(summary),
            }
        }
    }
}

fn inputs(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"prompt": format!("item {i}")}))
        .collect()
}

fn spec(inputs: Vec<Value>) -> BatchSpec {
    BatchSpec::new(CreatePrediction::new(TARGET.parse().unwrap()), inputs)
}

fn opts() -> BatchOptions {
    BatchOptions {
        max_in_flight: 200,
        max_requests: 16,
        create_rate: 50.0,
        read_rate: 100.0,
        poll: PollPolicy::fixed(Duration::from_millis(500)),
        retry: RetryPolicy::default(),
        lost_grace: Duration::from_secs(5),
        seed: Some(7),
        ..BatchOptions::default()
    }
}

fn cfg() -> Config {
    Config::new("r8_secret_token")
}

fn start(n: usize, o: BatchOptions) -> (Batch, Sim, Run) {
    let t0 = Instant::now();
    let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let batch = Batch::new(cfg(), spec(inputs(n)), o, Clock::new(t0, wall0)).unwrap();
    (batch, Sim::new(t0, wall0), Run::new(t0))
}

fn assert_each_item_once(results: &[ItemResult], n: usize) {
    let mut seen = vec![0; n];
    for r in results {
        seen[r.index] += 1;
    }
    assert!(seen.iter().all(|&c| c == 1), "items yielded: {seen:?}");
}

fn assert_no_duplicates(sim: &Sim) {
    let dups: Vec<_> = sim
        .per_input()
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .collect();
    assert!(dups.is_empty(), "duplicated predictions: {dups:?}");
}

#[test]
fn a_thousand_items_at_fifty_creates_a_second_finish_near_the_floor_without_duplicates() {
    let n = 1000;
    let (mut batch, mut sim, mut run) = start(n, opts());
    let summary = run.drive(&mut batch, &mut sim).unwrap();
    assert!(summary.error.is_none(), "{:?}", summary.error);
    assert_eq!(summary.succeeded, n);
    assert_eq!(summary.created, n);
    assert_each_item_once(&run.results, n);
    assert_no_duplicates(&sim);
    assert_eq!(sim.preds.len(), n);
    let took = run.now - sim.t0;
    // The floor: 1,000 creates at 50/s, then the last prediction's 2 s.
    let floor = Duration::from_secs(20);
    eprintln!(
        "took {took:?}, 429s {}, polls {}, lists {}",
        sim.throttles.len(),
        summary.polls_sent,
        sim.lists
    );
    assert!(took >= floor, "faster than the server allows: {took:?}");
    assert!(
        took <= floor.mul_f64(1.25) + sim.run_for,
        "too slow: {took:?} (429s: {})",
        sim.throttles.len()
    );
    // The ratelimit headers keep the batch under the limit.
    assert!(sim.throttles.len() <= 5, "429s: {}", sim.throttles.len());
    // Polls: at most one per item per interval, at most `read_rate` a second overall.
    let max_per_item = sim.gets.values().map(Vec::len).max().unwrap();
    assert!(
        max_per_item <= 2 * 2 + 3,
        "polls of one item: {max_per_item}"
    );
    let mut all: Vec<Instant> = sim.gets.values().flatten().copied().collect();
    all.sort();
    for (k, t) in all.iter().enumerate() {
        let in_a_second = all[k..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(1))
            .count();
        assert!(in_a_second <= 101, "{in_a_second} polls within a second");
    }
    // Items end in completion order, each with its id, and the journal has all of it.
    for r in &run.results {
        assert_eq!(r.outcome, Some(CreateOutcome::Created));
        assert_eq!(r.result.as_ref().unwrap().status, Status::Succeeded);
        assert!(r.prediction_id.is_some());
    }
    assert_eq!(run.journal.len(), 1 + 3 * n);
}

#[test]
fn after_one_429_every_create_waits_and_the_rate_halves() {
    let n = 300;
    let mut o = opts();
    o.create_rate = 100.0;
    let (mut batch, mut sim, mut run) = start(n, o);
    sim.headers = false; // only 429s tell the batch about the limit
    sim.window = Duration::from_secs(1);
    sim.per_window = 50;
    let summary = run.drive(&mut batch, &mut sim).unwrap();
    assert!(summary.error.is_none(), "{:?}", summary.error);
    assert_eq!(summary.succeeded, n);
    assert_no_duplicates(&sim);
    assert!(summary.create_throttles >= 1);
    assert_eq!(summary.create_throttles as usize, sim.throttles.len());
    let first = sim.throttles[0];
    // Retry-After is the rest of the window: once the batch knows (an answer's latency after
    // the server sent it), nothing is sent before the window ends.
    let known = first + run.latency;
    let resume_at = sim.post_times.iter().copied().find(|t| *t > known).unwrap();
    let window_end = sim.t0 + Duration::from_secs((first - sim.t0).as_secs() + 1);
    assert!(
        resume_at >= window_end,
        "a create went at {:?}, before the window reset at {:?}",
        resume_at - sim.t0,
        window_end - sim.t0
    );
    let before = sim.post_times.iter().filter(|t| **t <= first).count();
    assert!(before >= 50, "{before} creates before the 429");
    // Then the whole batch creates at about half the rate.
    let after = sim
        .post_times
        .iter()
        .filter(|t| **t >= resume_at && **t < resume_at + Duration::from_secs(1))
        .count();
    eprintln!(
        "429s {}, {before} creates before, {after} in the second after, took {:?}",
        sim.throttles.len(),
        run.now - sim.t0
    );
    assert!(after <= 56, "{after} creates in the second after the 429");
    assert!(batch.create_rate() <= 100.0);
}

#[test]
fn lost_creates_are_adopted_when_the_server_has_them_and_resent_when_not() {
    let n = 40;
    let (mut batch, mut sim, mut run) = start(n, opts());
    sim.faults.insert(5, Fault::LostAfterCreate);
    sim.faults.insert(9, Fault::LostBeforeCreate);
    sim.faults.insert(12, Fault::BadGatewayAfterCreate);
    let summary = run.drive(&mut batch, &mut sim).unwrap();
    assert!(summary.error.is_none(), "{:?}", summary.error);
    assert_eq!(summary.succeeded, n);
    assert_each_item_once(&run.results, n);
    assert_no_duplicates(&sim);
    assert_eq!(sim.preds.len(), n);
    assert_eq!((summary.adopted, summary.resent), (2, 1));
    assert_eq!(summary.created, n - 3);
    let outcome = |i: usize| run.results.iter().find(|r| r.index == i).unwrap().outcome;
    // Creates arrive in index order here: create k is item k, the lost-before one is resent
    // after the others.
    assert_eq!(outcome(5), Some(CreateOutcome::Adopted));
    assert_eq!(outcome(9), Some(CreateOutcome::Resent));
    assert_eq!(outcome(12), Some(CreateOutcome::Adopted));
    assert!(sim.lists >= 1);
    // The journal: a second intent for the resent item, before its second create.
    let intents_9 = run
        .journal
        .iter()
        .filter(|r| matches!(r, JournalRecord::Intent { item: 9, .. }))
        .count();
    assert_eq!(intents_9, 2);
    assert!(run.journal.iter().any(|r| matches!(
        r,
        JournalRecord::Created {
            item: 5,
            outcome: CreateOutcome::Adopted,
            ..
        }
    )));
}

#[test]
fn two_identical_inputs_never_adopt_the_same_prediction() {
    // Both lost after the server created them: each adopts its own.
    let mut ins = inputs(6);
    ins[3] = ins[2].clone();
    let t0 = Instant::now();
    let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let mut batch = Batch::new(cfg(), spec(ins.clone()), opts(), Clock::new(t0, wall0)).unwrap();
    let mut sim = Sim::new(t0, wall0);
    sim.faults.insert(2, Fault::LostAfterCreate);
    sim.faults.insert(3, Fault::LostAfterCreate);
    let mut run = Run::new(t0);
    let summary = run.drive(&mut batch, &mut sim).unwrap();
    assert_eq!(summary.adopted, 2);
    let ids: HashSet<_> = run
        .results
        .iter()
        .filter(|r| r.index == 2 || r.index == 3)
        .map(|r| r.prediction_id.clone().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "both items adopted the same prediction");
    assert_eq!(sim.preds.len(), 6);

    // One answered, its twin lost before the server: the twin must not adopt the answered one.
    let mut batch = Batch::new(cfg(), spec(ins), opts(), Clock::new(t0, wall0)).unwrap();
    let mut sim = Sim::new(t0, wall0);
    sim.faults.insert(3, Fault::LostBeforeCreate);
    let mut run = Run::new(t0);
    let summary = run.drive(&mut batch, &mut sim).unwrap();
    assert_eq!((summary.adopted, summary.resent), (0, 1));
    let r2 = run.results.iter().find(|r| r.index == 2).unwrap();
    let r3 = run.results.iter().find(|r| r.index == 3).unwrap();
    assert_ne!(r2.prediction_id, r3.prediction_id);
    assert_eq!(r3.outcome, Some(CreateOutcome::Resent));
    assert_eq!(sim.preds.len(), 6);
}

#[test]
fn a_401_ends_the_batch_and_reports_every_unfinished_item() {
    let n = 100;
    let (mut batch, mut sim, mut run) = start(n, opts());
    sim.unauthorized_after = Some(30);
    let summary = run.drive(&mut batch, &mut sim).unwrap();
    let err = summary.error.as_ref().expect("a fatal error");
    assert!(err.is_unauthorized(), "{err}");
    assert!(!err.to_string().contains("r8_secret_token"));
    assert_eq!(run.results.len() + summary.unfinished.len(), n);
    assert!(
        summary
            .unfinished
            .iter()
            .any(|u| u.state == UnfinishedState::NotStarted)
    );
    // Items whose prediction exists say so, with its id.
    for u in &summary.unfinished {
        if u.state == UnfinishedState::Running {
            assert!(u.prediction_id.is_some());
        }
    }
    // Nothing was sent after the 401s began, but the answers in flight.
    assert!(sim.requests <= 30 + 16);
}

#[test]
fn webhook_fed_items_are_not_polled() {
    let n = 20;
    let mut o = opts();
    o.completion = Completion::Webhook {
        safety_interval: Duration::from_secs(30),
    };
    let t0 = Instant::now();
    let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let create = CreatePrediction::new(TARGET.parse().unwrap())
        .webhook("https://hooks.example/replicate", &[]);
    let mut batch = Batch::new(
        cfg(),
        BatchSpec::new(create, inputs(n)),
        o,
        Clock::new(t0, wall0),
    )
    .unwrap();
    let mut sim = Sim::new(t0, wall0);
    let mut run = Run::new(t0);
    // Deliver each completion as a webhook, except p7's (lost delivery).
    let mut delivered = HashSet::new();
    run.on_time = Some(Box::new(move |batch, sim, now| {
        for k in 0..sim.preds.len() {
            let p = &sim.preds[k];
            if now >= p.finish && p.id != "p7" && delivered.insert(p.id.clone()) {
                let prediction: Prediction = serde_json::from_value(sim.json(p, now)).unwrap();
                assert!(batch.feed_webhook(prediction, now));
            }
        }
    }));
    let summary = run.drive(&mut batch, &mut sim).unwrap();
    assert_eq!(summary.succeeded, n);
    assert_each_item_once(&run.results, n);
    for (id, gets) in &sim.gets {
        assert_eq!(id, "p7", "{id} was polled though its webhook came");
        assert_eq!(gets.len(), 1, "one safety poll");
    }
    assert!(sim.gets.contains_key("p7"));
}

#[test]
fn a_webhook_stops_the_polls_of_its_item() {
    let (mut batch, mut sim, mut run) = start(3, opts());
    sim.run_for = Duration::from_secs(10);
    run.on_time = Some(Box::new(|batch, sim, now| {
        if now >= sim.t0 + Duration::from_secs(3) && sim.preds.len() == 3 {
            let p = &sim.preds[1];
            let mut prediction: Prediction = serde_json::from_value(sim.json(p, now)).unwrap();
            prediction.status = Status::Canceled;
            let fed = batch.feed_webhook(prediction, now);
            let _ = fed;
        }
    }));
    let summary = run.drive(&mut batch, &mut sim).unwrap();
    assert_eq!((summary.succeeded, summary.failed), (2, 1));
    let last_get = sim.gets["p1"].iter().max().unwrap();
    assert!(*last_get <= sim.t0 + Duration::from_secs(3));
    assert!(sim.gets["p0"].len() > sim.gets["p1"].len());
}

#[test]
fn a_journal_of_another_batch_is_refused() {
    let (mut batch, mut sim, mut run) = start(5, opts());
    run.drive(&mut batch, &mut sim).unwrap();
    let journal = Journal::parse(&run.file).unwrap();
    let t0 = Instant::now();
    let clock = Clock::new(t0, SystemTime::now());
    let other_inputs = Batch::resume(cfg(), spec(inputs(6)), opts(), clock, &journal).unwrap_err();
    assert!(matches!(
        other_inputs,
        JournalError::Mismatch {
            field: "inputs",
            ..
        }
    ));
    let mut moved = inputs(5);
    moved.swap(0, 1);
    assert!(matches!(
        Batch::resume(cfg(), spec(moved), opts(), clock, &journal).unwrap_err(),
        JournalError::Mismatch {
            field: "inputs",
            ..
        }
    ));
    let other_target = BatchSpec::new(
        CreatePrediction::new("acme/other".parse().unwrap()),
        inputs(5),
    );
    assert!(matches!(
        Batch::resume(cfg(), other_target, opts(), clock, &journal).unwrap_err(),
        JournalError::Mismatch {
            field: "target",
            ..
        }
    ));
    // The same batch resumes, and has nothing left to do.
    let mut again = Batch::resume(cfg(), spec(inputs(5)), opts(), clock, &journal).unwrap();
    match again.poll(t0) {
        BatchStep::Done(s) => assert_eq!(s.already_done, 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn journal_parsing_drops_a_torn_last_line_only() {
    let header = r#"{"type":"header","format":1,"target":"acme/painter","inputs":"x","items":2}"#;
    let intent = r#"{"type":"intent","item":0,"at":"2025-06-15T10:00:00Z"}"#;
    let full = format!("{header}\n{intent}\n");
    let j = Journal::parse(full.as_bytes()).unwrap();
    assert_eq!(
        (j.records.len(), j.valid_len, j.torn),
        (1, full.len(), false)
    );
    // A complete record without its newline is torn too: the create was not sent yet.
    let torn = format!("{header}\n{intent}");
    let j = Journal::parse(torn.as_bytes()).unwrap();
    assert_eq!(
        (j.records.len(), j.valid_len, j.torn),
        (0, header.len() + 1, true)
    );
    let torn = format!("{header}\n{{\"type\":\"crea");
    assert!(Journal::parse(torn.as_bytes()).unwrap().torn);
    // A broken line in the middle is an error.
    let broken = format!("{header}\n{{oops\n{intent}\n");
    assert!(matches!(
        Journal::parse(broken.as_bytes()),
        Err(JournalError::Corrupt { line: 2, .. })
    ));
    assert!(matches!(
        Journal::parse(b""),
        Err(JournalError::MissingHeader)
    ));
    assert!(matches!(
        Journal::parse(format!("{intent}\n").as_bytes()),
        Err(JournalError::MissingHeader)
    ));
    let far =
        format!("{header}\n{{\"type\":\"intent\",\"item\":9,\"at\":\"2025-06-15T10:00:00Z\"}}\n");
    assert!(matches!(
        Journal::parse(far.as_bytes()),
        Err(JournalError::ItemOutOfRange { item: 9, .. })
    ));
}

/// Runs a batch, kills it while it writes journal record `record` (after `cut` bytes of it),
/// resumes it from the file, and checks that no input was created twice and that every item
/// ends exactly once in the journal.
fn kill_and_resume(n: usize, record: usize, cut: usize, lost: Option<u64>) {
    let (mut batch, mut sim, mut run) = start(n, opts());
    if let Some(k) = lost {
        sim.faults.insert(k, Fault::LostAfterCreate);
    }
    run.kill_at = Some((record, cut));
    let first = run.drive(&mut batch, &mut sim);
    drop(batch);
    let file = run.file.clone();
    let journal = Journal::parse(&file).ok();
    let mut records = Vec::new();
    let mut later = Run::new(run.now + Duration::from_secs(1));
    let clock = Clock::new(
        later.now,
        sim.wall0 + (later.now - sim.t0) + Duration::from_millis(3),
    );
    let mut resumed = match &journal {
        Some(j) => {
            records.extend(j.records.iter().cloned());
            Batch::resume(cfg(), spec(inputs(n)), opts(), clock, j).unwrap()
        }
        // Killed before the header was whole: start again.
        None => Batch::new(cfg(), spec(inputs(n)), opts(), clock).unwrap(),
    };
    if first.is_some() {
        // Not killed: nothing to resume.
        return;
    }
    let summary = later.drive(&mut resumed, &mut sim).unwrap();
    assert!(summary.error.is_none(), "{:?}", summary.error);
    records.extend(
        later
            .journal
            .iter()
            .filter(|r| !matches!(r, JournalRecord::Header(_)))
            .cloned(),
    );
    assert_no_duplicates(&sim);
    assert_eq!(sim.preds.len(), n);
    let mut done = BTreeMap::new();
    for r in &records {
        if let JournalRecord::Done { item, .. } = r {
            *done.entry(*item).or_insert(0) += 1;
        }
    }
    assert_eq!(done.len(), n, "every item ends");
    assert!(done.values().all(|&c| c == 1), "an item ended twice");
    assert_eq!(summary.already_done + later.results.len(), n);
}

#[test]
fn resume_after_a_kill_at_every_record_never_duplicates() {
    let n = 6;
    for record in 0..(1 + 3 * n) {
        for cut in [0, 5, 1000] {
            kill_and_resume(n, record, cut, None);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn resume_from_a_journal_cut_anywhere_never_duplicates(
        n in 1usize..25,
        record in 0usize..80,
        cut in 0usize..120,
        lost in proptest::option::of(0u64..25),
    ) {
        kill_and_resume(n, record, cut, lost);
    }
}
