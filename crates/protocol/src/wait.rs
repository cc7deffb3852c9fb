//! Waiting for a prediction to finish ([`Wait`]) and running one end to end ([`Run`]).

use std::time::{Duration, Instant};

use http::Response;

use std::convert::Infallible;

use crate::api::{CancelTraining, GetTraining};
use crate::call::Call;
use crate::endpoint::{Endpoint, RetryClass, parse_json};
use crate::flow::{Flow, Outgoing, SleepReason, Step, time_left};
use crate::retry::{Retrier, RetryPolicy};
use crate::{CancelPrediction, GetPrediction};
use crate::{Config, CreatePrediction, Error, Prediction, SyncWait, TransportError};

/// How often a running prediction is polled.
///
/// The interval stays at `initial_interval` for the first `backoff_after` of waiting, so short
/// jobs are noticed at least as soon as with a fixed 0.5 s poll, then grows by `multiplier` up to
/// `max_interval`, so long jobs cost few requests.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    /// The first interval (0.5 s by default).
    pub initial_interval: Duration,
    /// How long to poll at the initial interval before backing off.
    pub backoff_after: Duration,
    /// Growth factor of the interval once backing off.
    pub multiplier: f64,
    /// The interval cap.
    pub max_interval: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial_interval: Duration::from_millis(500),
            backoff_after: Duration::from_secs(10),
            multiplier: 1.5,
            max_interval: Duration::from_secs(5),
        }
    }
}

impl PollPolicy {
    /// A fixed interval, never backing off.
    pub fn fixed(interval: Duration) -> Self {
        PollPolicy {
            initial_interval: interval,
            backoff_after: Duration::MAX,
            multiplier: 1.0,
            max_interval: interval,
        }
    }

    pub(crate) fn next_interval(&self, current: Duration, waited: Duration) -> Duration {
        if waited < self.backoff_after {
            return self.initial_interval;
        }
        let m = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        current
            .mul_f64(m)
            .min(self.max_interval)
            .max(self.initial_interval.min(self.max_interval))
    }
}

/// Options of a [`Wait`] or [`Run`].
#[derive(Debug, Clone, PartialEq)]
pub struct WaitOptions {
    /// The poll interval policy.
    pub poll: PollPolicy,
    /// The retry policy for each poll.
    pub retry: RetryPolicy,
    /// An overall deadline.
    pub deadline: Option<Instant>,
    /// Whether to send a cancel request when the deadline passes (default: yes).
    pub cancel_at_deadline: bool,
    /// The sync-mode hold ([`SyncWait`], `Prefer: wait=N`) a [`Run`] asks for when its create
    /// does not set one itself: a client's options carry the client's setting
    /// ([`ClientSettings::sync_wait`](crate::ClientSettings::sync_wait)), so `run` and
    /// `run_with` behave alike; `None` sends no hold. A [`Wait`] ignores it.
    pub sync: Option<SyncWait>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            poll: PollPolicy::default(),
            retry: RetryPolicy::default(),
            deadline: None,
            cancel_at_deadline: true,
            sync: None,
        }
    }
}

/// What a [`Wait`] polls: predictions and trainings share one object shape and one status
/// machine, so they share one wait machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobKind {
    /// `GET /v1/predictions/{id}`, `POST /v1/predictions/{id}/cancel`.
    #[default]
    Prediction,
    /// `GET /v1/trainings/{id}`, `POST /v1/trainings/{id}/cancel`.
    Training,
}

impl JobKind {
    /// The request that reads the job ([`GetPrediction`] or [`GetTraining`]).
    pub fn get_request(self, cfg: &Config, id: &str) -> Result<http::Request<Vec<u8>>, Error> {
        match self {
            JobKind::Prediction => GetPrediction::new(id).request(cfg),
            JobKind::Training => GetTraining::new(id).request(cfg),
        }
    }

    /// The request that cancels the job ([`CancelPrediction`] or [`CancelTraining`]).
    pub fn cancel_request(self, cfg: &Config, id: &str) -> Result<http::Request<Vec<u8>>, Error> {
        match self {
            JobKind::Prediction => CancelPrediction::new(id).request(cfg),
            JobKind::Training => CancelTraining::new(id).request(cfg),
        }
    }
}

#[derive(Debug)]
enum WaitState {
    /// Next poll not before this instant (`None`: at once).
    Idle(Option<Instant>),
    Polling,
    Canceling,
    // Boxed: the result is large and a wait spends most of its life idle.
    Done(Option<Box<Result<Prediction, Error>>>),
}

/// Polls a prediction until it reaches a terminal status, or the deadline passes.
///
/// The result is the terminal prediction, whatever its status (see [`Prediction::into_result`]
/// for what it means), or an error: the poll's last error once retries ran out, or
/// [`Error::DeadlineExceeded`] carrying the last known prediction (after a cancel request, if
/// [`WaitOptions::cancel_at_deadline`]).
///
/// Every request goes to the configured base URL, never to `urls.get`.
///
/// A complete driver with a hand-written transport:
///
/// ```
/// use std::time::Instant;
/// use replicate_protocol::{Config, Flow, Step, Wait, WaitOptions, Status};
///
/// // A transport is any function from a request to a response. This one fakes the API.
/// let mut polls = 0;
/// let mut transport = |req: http::Request<Vec<u8>>| -> http::Response<Vec<u8>> {
///     assert_eq!(req.uri(), "https://proxy.example/replicate/v1/predictions/abc");
///     polls += 1;
///     let status = if polls < 3 { "processing" } else { "succeeded" };
///     let body = format!(r#"{{"id":"abc","status":"{status}","output":"https://x/out.png"}}"#);
///     http::Response::builder().status(200).body(body.into_bytes()).unwrap()
/// };
///
/// let cfg = Config::new("hk-key").with_base_url("https://proxy.example/replicate").unwrap();
/// let mut wait = Wait::new(cfg, "abc", WaitOptions::default());
/// // A made-up clock: sleeping just moves it forward.
/// let mut now = Instant::now();
/// let prediction = loop {
///     match wait.poll(now) {
///         Step::Send(out) => {
///             let resp = transport(out.request);
///             wait.handle_response(resp, now);
///         }
///         Step::Sleep { until, .. } => now = until,
///         Step::Done(result) => break result.unwrap(),
///         // A wait reads whole answers and yields nothing.
///         Step::Receive | Step::Yield(_) => unreachable!(),
///     }
/// };
/// assert_eq!(prediction.status, Status::Succeeded);
/// assert_eq!(prediction.output_url(), Some("https://x/out.png"));
/// ```
#[derive(Debug)]
pub struct Wait {
    cfg: Config,
    kind: JobKind,
    id: String,
    opts: WaitOptions,
    retrier: Retrier,
    last: Option<Prediction>,
    interval: Duration,
    started: Option<Instant>,
    requests: u32,
    delay_first: bool,
    state: WaitState,
}

impl Wait {
    /// Waits for the prediction `id`, polling at once.
    pub fn new(cfg: Config, id: impl Into<String>, opts: WaitOptions) -> Self {
        Wait {
            cfg,
            kind: JobKind::Prediction,
            id: id.into(),
            // No deadline here: poll() caps every sleep at the deadline and cancels there.
            retrier: Retrier::new(opts.retry.clone(), None),
            interval: opts.poll.initial_interval,
            opts,
            last: None,
            started: None,
            requests: 0,
            delay_first: false,
            state: WaitState::Idle(None),
        }
    }

    /// Waits for a prediction already fetched (from a create, say): done at once if it is
    /// terminal, otherwise the first poll comes after one interval.
    pub fn from_prediction(cfg: Config, prediction: Prediction, opts: WaitOptions) -> Self {
        let mut wait = Wait::new(cfg, prediction.id.clone(), opts);
        wait.state = if prediction.status.is_terminal() {
            WaitState::Done(Some(Box::new(Ok(prediction.clone()))))
        } else {
            WaitState::Idle(None)
        };
        wait.delay_first = true;
        wait.last = Some(prediction);
        wait
    }

    /// The same wait, for a training instead of a prediction.
    pub fn for_training(mut self) -> Self {
        self.kind = JobKind::Training;
        self
    }

    /// The prediction id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The last prediction seen.
    pub fn last(&self) -> Option<&Prediction> {
        self.last.as_ref()
    }

    /// How many requests were asked for so far.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// Poll at the next opportunity instead of waiting for the interval: call it when something
    /// else (a stream's `done` event, a webhook) says the prediction may have finished.
    pub fn wake(&mut self) {
        self.delay_first = false;
        if let WaitState::Idle(at) = &mut self.state {
            *at = None;
        }
    }

    fn deadline_error(&mut self, cancel_sent: bool) -> Error {
        Error::DeadlineExceeded {
            id: self.id.clone(),
            last: self.last.take().map(Box::new),
            cancel_sent,
        }
    }

    fn send(
        &mut self,
        next: WaitState,
        now: Instant,
    ) -> Step<Infallible, Result<Prediction, Error>> {
        let canceling = matches!(next, WaitState::Canceling);
        let request = if canceling {
            self.kind.cancel_request(&self.cfg, &self.id)
        } else {
            self.kind.get_request(&self.cfg, &self.id)
        };
        match request {
            Ok(request) => {
                self.requests += 1;
                self.state = next;
                self.retrier.sent(&request);
                // A poll ends by the deadline; the cancel sent at the deadline gets the usual
                // timeout.
                let max = if canceling {
                    None
                } else {
                    time_left(self.opts.deadline, now)
                };
                Step::Send(Outgoing::buffered(&self.cfg, request).bounded(None, max))
            }
            Err(e) => {
                self.state = WaitState::Done(None);
                Step::Done(Err(e))
            }
        }
    }

    fn failure(&mut self, failure: Error, now: Instant) {
        self.state = match self
            .retrier
            .on_failure(RetryClass::Idempotent, failure, now)
        {
            // A failed poll is never retried sooner than a normal poll would come: the retry
            // budget is reset by every successful poll, so without this floor a flapping server
            // (or `Retry-After: 0`) would make the wait send requests back to back.
            Ok(at) => WaitState::Idle(Some(at.max(now + self.opts.poll.initial_interval))),
            Err(e) => WaitState::Done(Some(Box::new(Err(e)))),
        };
    }
}

impl Flow for Wait {
    type Item = Infallible;
    type Output = Result<Prediction, Error>;

    fn poll(&mut self, now: Instant) -> Step<Infallible, Self::Output> {
        let started = *self.started.get_or_insert(now);
        if self.delay_first {
            // Created just now and not terminal: the first poll comes after one interval.
            self.delay_first = false;
            if let WaitState::Idle(None) = self.state {
                self.state = WaitState::Idle(Some(started + self.interval));
            }
        }
        match &mut self.state {
            WaitState::Done(result) => {
                let secret = self.cfg.token().expose();
                return Step::Done(
                    match result
                        .take()
                        .map_or(Err(Error::InvalidState("polled after it finished")), |r| *r)
                    {
                        Ok(mut p) => {
                            p.redact(secret);
                            Ok(p)
                        }
                        Err(e) => Err(e.redact(secret)),
                    },
                );
            }
            WaitState::Polling | WaitState::Canceling => {
                return Step::Done(Err(Error::InvalidState(
                    "polled while a request was in flight",
                )));
            }
            WaitState::Idle(_) => {}
        }
        if let Some(deadline) = self.opts.deadline
            && now >= deadline
        {
            if self.opts.cancel_at_deadline {
                return self.send(WaitState::Canceling, now);
            }
            let err = self.deadline_error(false);
            self.state = WaitState::Done(None);
            return Step::Done(Err(err));
        }
        match self.state {
            WaitState::Idle(Some(at)) if at > now => Step::Sleep {
                until: self.opts.deadline.map_or(at, |d| at.min(d)),
                reason: if self.retrier.retries + self.retrier.throttled > 0 {
                    SleepReason::Retry
                } else {
                    SleepReason::Poll
                },
            },
            _ => self.send(WaitState::Polling, now),
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        match self.state {
            WaitState::Polling => match parse_json::<Prediction, _>(&response) {
                Ok(p) if p.id != self.id && !p.id.is_empty() => {
                    self.state = WaitState::Done(Some(Box::new(Err(Error::Decode {
                        status: 200,
                        reason: format!("asked for prediction {} but got {}", self.id, p.id),
                        excerpt: String::new(),
                    }))));
                }
                Ok(p) => {
                    self.retrier.on_success();
                    if p.status.is_terminal() {
                        self.last = Some(p.clone());
                        self.state = WaitState::Done(Some(Box::new(Ok(p))));
                        return;
                    }
                    let waited = now.saturating_duration_since(self.started.unwrap_or(now));
                    self.interval = self.opts.poll.next_interval(self.interval, waited);
                    self.last = Some(p);
                    self.state = WaitState::Idle(Some(now + self.interval));
                }
                Err(e) => self.failure(e, now),
            },
            WaitState::Canceling => {
                let canceled = parse_json::<Prediction, _>(&response);
                let cancel_sent = canceled.is_ok();
                if let Ok(p) = canceled {
                    self.last = Some(p);
                }
                let err = self.deadline_error(cancel_sent);
                self.state = WaitState::Done(Some(Box::new(Err(err))));
            }
            _ => {}
        }
    }

    fn stream_hint(&self) -> Option<&str> {
        match self.state {
            WaitState::Idle(_) => self.last.as_ref()?.stream_url(),
            _ => None,
        }
    }

    fn wake(&mut self) {
        Wait::wake(self);
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        match self.state {
            WaitState::Polling => self.failure(Error::Transport(error), now),
            WaitState::Canceling => {
                let err = self.deadline_error(false);
                self.state = WaitState::Done(Some(Box::new(Err(err))));
            }
            _ => {}
        }
    }

    fn describe(&self) -> crate::FlowInfo {
        crate::FlowInfo::new("wait").prediction(self.id())
    }
}

#[derive(Debug)]
enum RunState {
    Creating(Box<Call<CreatePrediction>>),
    Waiting(Box<Wait>),
    Done,
}

/// Creates a prediction and waits for it: the whole of `run()`.
///
/// The create is sent once (see [`RetryClass::CreateOnce`]). A sync-mode answer that is still
/// `starting` or `processing` — even with partial output — is not the end: the prediction is then
/// polled until it is terminal. The result is the terminal prediction.
#[derive(Debug)]
pub struct Run {
    cfg: Config,
    opts: WaitOptions,
    state: RunState,
}

impl Run {
    /// A run of `create` with these options. The options' deadline also bounds the create's
    /// retries (and the sync-mode hold); the options' [`sync`](WaitOptions::sync) applies when
    /// the create sets none.
    pub fn new(cfg: Config, mut create: CreatePrediction, opts: WaitOptions) -> Self {
        if create.sync.is_none() {
            create.sync = opts.sync;
        }
        let call = Call::with_policy(create, cfg.clone(), opts.retry.clone(), opts.deadline);
        Run {
            cfg,
            opts,
            state: RunState::Creating(Box::new(call)),
        }
    }

    /// The id of the prediction, once created.
    pub fn prediction_id(&self) -> Option<&str> {
        match &self.state {
            RunState::Waiting(w) => Some(w.id()),
            _ => None,
        }
    }

    /// The create, until it is answered.
    pub(crate) fn create(&self) -> Option<&CreatePrediction> {
        match &self.state {
            RunState::Creating(call) => Some(call.endpoint()),
            _ => None,
        }
    }

    /// The wait, once the prediction exists (e.g. to [`Wait::wake`] it).
    pub fn wait_mut(&mut self) -> Option<&mut Wait> {
        match &mut self.state {
            RunState::Waiting(w) => Some(w),
            _ => None,
        }
    }
}

/// Shrinks a create's `Prefer: wait=N` so that the server's hold ends by the deadline: the
/// deadline bounds the sync-mode create as it bounds the polls (`N` rounds down to whole
/// seconds; under one second left, no sync mode at all).
fn clamp_sync_wait(create: &mut CreatePrediction, deadline: Option<Instant>, now: Instant) {
    let (Some(wait), Some(deadline)) = (create.sync, deadline) else {
        return;
    };
    let left = deadline.saturating_duration_since(now);
    if wait.duration() > left {
        create.sync = SyncWait::seconds(left.as_secs()).ok();
    }
}

/// A failure of the wait after the create succeeded: the prediction exists, so the error says
/// so and carries it ([`Error::AfterCreate`]), unless it carries it already.
fn after_create(wait: &Wait, error: Error) -> Error {
    match error {
        e @ (Error::DeadlineExceeded { .. }
        | Error::AfterCreate { .. }
        | Error::PredictionFailed(_)
        | Error::PredictionCanceled(_)
        | Error::PredictionAborted(_)
        | Error::InvalidState(_)) => e,
        source => {
            let mut prediction = wait
                .last()
                .cloned()
                .unwrap_or_else(|| Prediction::with_id(wait.id()));
            prediction.redact(wait.cfg.token().expose());
            Error::AfterCreate {
                prediction: Box::new(prediction),
                source: Box::new(source),
            }
        }
    }
}

impl Flow for Run {
    type Item = Infallible;
    type Output = Result<Prediction, Error>;

    fn poll(&mut self, now: Instant) -> Step<Infallible, Self::Output> {
        loop {
            match &mut self.state {
                RunState::Creating(call) => {
                    clamp_sync_wait(call.endpoint_mut(), self.opts.deadline, now);
                    let step = call.poll(now);
                    match step {
                        Step::Done(Ok(p)) => {
                            self.state = RunState::Waiting(Box::new(Wait::from_prediction(
                                self.cfg.clone(),
                                p,
                                self.opts.clone(),
                            )));
                        }
                        Step::Done(Err(e)) => {
                            self.state = RunState::Done;
                            return Step::Done(Err(e));
                        }
                        other => return other,
                    }
                }
                RunState::Waiting(wait) => {
                    return match wait.poll(now) {
                        Step::Done(Err(e)) => Step::Done(Err(after_create(wait, e))),
                        other => other,
                    };
                }
                RunState::Done => {
                    return Step::Done(Err(Error::InvalidState("polled after it finished")));
                }
            }
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        match &mut self.state {
            RunState::Creating(call) => call.handle_response(response, now),
            RunState::Waiting(wait) => wait.handle_response(response, now),
            RunState::Done => {}
        }
    }

    fn stream_hint(&self) -> Option<&str> {
        match &self.state {
            RunState::Waiting(w) => w.stream_hint(),
            _ => None,
        }
    }

    fn wake(&mut self) {
        if let RunState::Waiting(w) = &mut self.state {
            w.wake();
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        match &mut self.state {
            RunState::Creating(call) => call.handle_error(error, now),
            RunState::Waiting(wait) => wait.handle_error(error, now),
            RunState::Done => {}
        }
    }

    fn describe(&self) -> crate::FlowInfo {
        let info = match &self.state {
            RunState::Creating(call) => call.describe(),
            _ => crate::FlowInfo::default(),
        };
        crate::FlowInfo {
            operation: "run",
            ..info
        }
    }

    fn prediction_id(&self) -> Option<&str> {
        Run::prediction_id(self)
    }
}
