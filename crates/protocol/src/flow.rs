//! The driver contract shared by every multi-step operation, and [`Call`]: one endpoint with the
//! retry rules.
//!
//! A flow never performs I/O and never reads a clock. Its driver repeats:
//!
//! 1. `match flow.poll(now)`:
//!    - [`Step::Send`]: send the request, then call [`Flow::handle_response`] with the full response,
//!      or [`Flow::handle_error`] with a classified [`TransportError`];
//!    - [`Step::Sleep`]: sleep until that instant;
//!    - [`Step::Done`]: return the result.
//!
//! `now` is whatever monotonic instant the driver uses; tests pass made-up instants.

use std::time::{Duration, Instant};

use http::{Request, Response};

use crate::endpoint::{Endpoint, RetryClass};
use crate::{Config, Error, TransportError, TransportErrorKind};

/// Extra time allowed on top of a server's deliberate hold (`Prefer: wait=N`) before a read
/// times out.
pub const SERVER_HOLD_MARGIN: Duration = Duration::from_secs(10);

/// What a flow asks its driver to do next.
// A step is moved once from `poll` to its driver and never stored: boxing would cost an
// allocation per step for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step<T> {
    /// Send this request and report the outcome.
    Send(Outgoing),
    /// Sleep until this instant, then poll again.
    Sleep(Instant),
    /// The flow is over.
    Done(T),
}

/// A request to send, with the time it may take.
#[derive(Debug)]
pub struct Outgoing {
    /// The request. It always targets the configured API base URL.
    pub request: Request<Vec<u8>>,
    /// When set, the exchange may legitimately take this long (sync mode): use at least this as
    /// the timeout for this request.
    pub min_timeout: Option<Duration>,
}

impl Outgoing {
    /// The timeout to use for this request, given the client's usual one.
    pub fn timeout(&self, default: Duration) -> Duration {
        self.min_timeout.map_or(default, |t| t.max(default))
    }
}

/// A sans-IO multi-step operation. See the module documentation for the driver loop.
pub trait Flow {
    /// The final result.
    type Output;

    /// What to do now.
    fn poll(&mut self, now: Instant) -> Step<Self::Output>;

    /// The response to the last [`Step::Send`], body read in full.
    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant);

    /// The last [`Step::Send`] failed below HTTP.
    fn handle_error(&mut self, error: TransportError, now: Instant);

    /// A server-sent-events URL whose `done` event means this flow may be finished (a streaming
    /// prediction being waited for). A driver may read it while the flow sleeps and call
    /// [`Flow::wake`] on `done`, so the flow ends then rather than at its next poll. Reading it
    /// is optional: the flow finishes by polling anyway.
    fn stream_hint(&self) -> Option<&str> {
        None
    }

    /// Something outside the flow says it may be finished: act at the next `poll` instead of
    /// sleeping until the planned instant.
    fn wake(&mut self) {}
}

/// When and how often failed requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retries).
    pub max_retries: u32,
    /// First backoff; doubled on each retry.
    pub initial_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the 429 is returned instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Whether a failed attempt is retried, and after how long. `retries` is how many retries
    /// were already made. This is the single place where the SDK decides retries.
    ///
    /// - 429: retried by every class, after `Retry-After` (header or body) or the backoff.
    /// - 500, 502, 503, 504: retried for idempotent requests only.
    /// - A connection never established: retried by every class.
    /// - A body over the size cap ([`TransportErrorKind::BodyTooLarge`]): never retried, the
    ///   same answer would be read again up to the cap.
    /// - Any other transport failure: retried for idempotent requests only.
    pub fn decide(&self, class: RetryClass, retries: u32, failure: &Error) -> Option<Duration> {
        if retries >= self.max_retries {
            return None;
        }
        if matches!(failure, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge) {
            return None;
        }
        let backoff = self.backoff(retries);
        match failure {
            Error::Api(api) if api.status == 429 => {
                let delay = api.retry_delay().unwrap_or(backoff);
                (delay <= self.max_retry_after).then_some(delay)
            }
            Error::Api(api) if api.is_retryable() && class == RetryClass::Idempotent => {
                let delay = api.retry_delay().unwrap_or(backoff);
                (delay <= self.max_retry_after).then_some(delay)
            }
            Error::Transport(t) if t.kind.certainly_not_sent() => Some(backoff),
            Error::Transport(_) if class == RetryClass::Idempotent => Some(backoff),
            _ => None,
        }
    }
}

/// The error a transport failure becomes for a request of this class: a create whose request may
/// have left becomes [`Error::CreateOutcomeUnknown`].
pub fn transport_failure(class: RetryClass, error: TransportError) -> Error {
    if class == RetryClass::CreateOnce && !error.kind.certainly_not_sent() {
        Error::CreateOutcomeUnknown(error)
    } else {
        Error::Transport(error)
    }
}

/// The retry bookkeeping shared by every flow: how many retries were made and until when the flow
/// may keep trying.
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub(crate) policy: RetryPolicy,
    pub(crate) retries: u32,
    pub(crate) deadline: Option<Instant>,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy, deadline: Option<Instant>) -> Self {
        Retrier {
            policy,
            retries: 0,
            deadline,
        }
    }

    /// After a failure: `Ok(instant)` to retry at, or `Err(final error)`.
    pub(crate) fn on_failure(
        &mut self,
        class: RetryClass,
        failure: Error,
        now: Instant,
    ) -> Result<Instant, Error> {
        let Some(delay) = self.policy.decide(class, self.retries, &failure) else {
            return Err(match failure {
                Error::Transport(t) => transport_failure(class, t),
                other => other,
            });
        };
        // A delay too long to add to `now` (a huge `Retry-After` under a policy whose
        // `max_retry_after` allows it) is past any deadline: give up rather than overflow.
        let at = now.checked_add(delay);
        let Some(at) = at.filter(|&at| self.deadline.is_none_or(|d| at <= d)) else {
            return Err(match failure {
                Error::Transport(t) => transport_failure(class, t),
                other => other,
            });
        };
        self.retries += 1;
        Ok(at)
    }

    pub(crate) fn on_success(&mut self) {
        self.retries = 0;
    }
}

#[derive(Debug)]
enum CallState<T> {
    Ready(Option<Instant>),
    InFlight,
    Done(Option<Result<T, Error>>),
}

/// One endpoint, sent with the retry rules of its [`RetryClass`].
///
/// ```
/// use std::time::Instant;
/// use replicate_protocol::{Call, Config, Flow, GetPrediction, Step};
/// let cfg = Config::new("r8_token");
/// let mut call = Call::new(GetPrediction::new("abc"), cfg);
/// let now = Instant::now();
/// let Step::Send(out) = call.poll(now) else { panic!() };
/// assert_eq!(out.request.uri(), "https://api.replicate.com/v1/predictions/abc");
/// // A 503 is retried after a backoff...
/// call.handle_response(http::Response::builder().status(503).body(Vec::new()).unwrap(), now);
/// assert!(matches!(call.poll(now), Step::Sleep(_)));
/// ```
#[derive(Debug)]
pub struct Call<E: Endpoint> {
    endpoint: E,
    cfg: Config,
    retrier: Retrier,
    state: CallState<E::Output>,
}

impl<E: Endpoint> Call<E> {
    /// A call with the default retry policy and no deadline.
    pub fn new(endpoint: E, cfg: Config) -> Self {
        Self::with_policy(endpoint, cfg, RetryPolicy::default(), None)
    }

    /// A call with a retry policy and an optional deadline past which no retry is scheduled.
    pub fn with_policy(
        endpoint: E,
        cfg: Config,
        policy: RetryPolicy,
        deadline: Option<Instant>,
    ) -> Self {
        Call {
            endpoint,
            cfg,
            retrier: Retrier::new(policy, deadline),
            state: CallState::Ready(None),
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &E {
        &self.endpoint
    }

    /// How many retries were made so far.
    pub fn retries(&self) -> u32 {
        self.retrier.retries
    }

    fn fail_or_retry(&mut self, failure: Error, now: Instant) {
        self.state = match self
            .retrier
            .on_failure(self.endpoint.retry_class(), failure, now)
        {
            Ok(at) => CallState::Ready(Some(at)),
            Err(e) => CallState::Done(Some(Err(e))),
        };
    }
}

impl<E: Endpoint> Flow for Call<E> {
    type Output = Result<E::Output, Error>;

    fn poll(&mut self, now: Instant) -> Step<Self::Output> {
        match &mut self.state {
            CallState::Ready(Some(at)) if *at > now => Step::Sleep(*at),
            CallState::Ready(_) => match self.endpoint.request(&self.cfg) {
                Ok(request) => {
                    self.state = CallState::InFlight;
                    Step::Send(Outgoing {
                        request,
                        min_timeout: self.endpoint.server_hold().map(|h| h + SERVER_HOLD_MARGIN),
                    })
                }
                Err(e) => {
                    self.state = CallState::Done(None);
                    Step::Done(Err(e))
                }
            },
            CallState::InFlight => Step::Done(Err(Error::InvalidState(
                "polled while a request was in flight",
            ))),
            CallState::Done(result) => Step::Done(
                result
                    .take()
                    .unwrap_or(Err(Error::InvalidState("polled after it finished"))),
            ),
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        if !matches!(self.state, CallState::InFlight) {
            return;
        }
        match self.endpoint.parse(response) {
            Ok(v) => {
                self.retrier.on_success();
                self.state = CallState::Done(Some(Ok(v)));
            }
            Err(e) => self.fail_or_retry(e, now),
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        if !matches!(self.state, CallState::InFlight) {
            return;
        }
        self.fail_or_retry(Error::Transport(error), now);
    }
}
