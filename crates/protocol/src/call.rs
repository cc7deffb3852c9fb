//! [`Call`]: one endpoint, sent with the retry rules of its class.

use std::convert::Infallible;
use std::time::Instant;

use http::Response;

use crate::endpoint::Endpoint;
use crate::flow::{Flow, Outgoing, SERVER_HOLD_MARGIN, SleepReason, Step, time_left};
use crate::retry::{Retrier, RetryPolicy};
use crate::{Config, Error, TransportError};

#[derive(Debug)]
enum CallState<T> {
    Ready(Option<Instant>),
    InFlight,
    Done(Option<Result<T, Error>>),
}

/// One endpoint, sent with the retry rules of its [`RetryClass`](crate::RetryClass).
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
/// assert!(matches!(call.poll(now), Step::Sleep { .. }));
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

    /// A call with a retry policy and an optional deadline past which no retry is scheduled
    /// and no request runs.
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

    /// The endpoint, to adjust it before its next attempt.
    pub(crate) fn endpoint_mut(&mut self) -> &mut E {
        &mut self.endpoint
    }

    /// How many retries were made so far (throttled ones included).
    pub fn retries(&self) -> u32 {
        self.retrier.retries + self.retrier.throttled
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
    type Item = Infallible;
    type Output = Result<E::Output, Error>;

    fn poll(&mut self, now: Instant) -> Step<Infallible, Self::Output> {
        match &mut self.state {
            CallState::Ready(Some(at)) if *at > now => Step::Sleep {
                until: *at,
                reason: SleepReason::Retry,
            },
            CallState::Ready(_) => match self.endpoint.request(&self.cfg) {
                Ok(request) => {
                    self.state = CallState::InFlight;
                    self.retrier.sent(&request);
                    let mut out = Outgoing::buffered(&self.cfg, request).bounded(
                        self.endpoint.server_hold().map(|h| h + SERVER_HOLD_MARGIN),
                        time_left(self.retrier.deadline, now),
                    );
                    if self.endpoint.long_transfer() {
                        out = out.idle();
                    }
                    Step::Send(out)
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
                    .unwrap_or(Err(Error::InvalidState("polled after it finished")))
                    .map_err(|e| e.redact(self.cfg.token().expose())),
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

    fn describe(&self) -> crate::FlowInfo {
        self.endpoint.describe()
    }
}
