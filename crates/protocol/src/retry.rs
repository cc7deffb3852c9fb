//! When a failed request is tried again: [`RetryPolicy`], the single place where the SDK decides
//! retries, and the bookkeeping every flow shares.

use std::time::{Duration, Instant};

use crate::endpoint::RetryClass;
use crate::error::RateLimit;
use crate::{Error, TransportError, TransportErrorKind};

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
    /// Retries after a 429 (throttled) answer, counted apart from `max_retries` (default 30):
    /// a throttled request certainly had no effect, and under a shared rate limit many clients
    /// need several windows to get through. Each wait is still bounded by `max_retry_after`
    /// and by the flow's deadline.
    pub max_throttled_retries: u32,
    /// Whether delays get random jitter (default: yes). A backoff of `d` becomes a uniform draw
    /// in `[0, d]` ("full jitter"); a delay the server asked for (`Retry-After`, or the
    /// `ratelimit-reset` of an exhausted window) is waited in full, plus a uniform draw in
    /// `[0, backoff]`, so that clients throttled together do not come back together.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
            max_throttled_retries: 30,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            max_throttled_retries: 0,
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

    /// The same policy without jitter: every delay is exactly what [`RetryPolicy::decide`] says
    /// (for tests and reproducible runs).
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Whether a failed attempt is retried, and after how long (before jitter, see
    /// [`RetryPolicy::jittered`]). `retries` is how many retries of the same kind were already
    /// made: throttled ones for a 429 (capped by `max_throttled_retries`), others otherwise
    /// (capped by `max_retries`). This is the single place where the SDK decides retries.
    ///
    /// - 429: retried by every class, after the longest of `Retry-After` (header or body) and,
    ///   when the window is exhausted (`ratelimit-remaining: 0`), `ratelimit-reset`; else after
    ///   the backoff.
    /// - 500, 502, 503, 504: retried for idempotent requests only.
    /// - A connection never established: retried by every class.
    /// - A body over the size cap ([`TransportErrorKind::BodyTooLarge`]): never retried, the
    ///   same answer would be read again up to the cap.
    /// - Any other transport failure: retried for idempotent requests only.
    pub fn decide(&self, class: RetryClass, retries: u32, failure: &Error) -> Option<Duration> {
        let throttled = matches!(failure, Error::Api(api) if api.status == 429);
        let cap = if throttled {
            self.max_throttled_retries
        } else {
            self.max_retries
        };
        if retries >= cap {
            return None;
        }
        if matches!(failure, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge) {
            return None;
        }
        let backoff = self.backoff(retries);
        match failure {
            Error::Api(api) if api.status == 429 => {
                let reset = match api.rate_limit {
                    RateLimit {
                        remaining: Some(0),
                        reset: Some(secs),
                    } => Some(Duration::from_secs(secs)),
                    _ => None,
                };
                let delay = match (api.retry_delay(), reset) {
                    (Some(a), Some(b)) => a.max(b),
                    (a, b) => a.or(b).unwrap_or(backoff),
                };
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

impl RetryPolicy {
    /// The delay [`RetryPolicy::decide`] chose, with jitter: `unit` is a uniform draw in
    /// `[0, 1)` supplied by the flow. A delay the server asked for (see `decide`) is kept and a
    /// share of the backoff is added; a plain backoff is scaled down ("full jitter"). Without
    /// [`RetryPolicy::jitter`], `delay` unchanged.
    pub fn jittered(&self, delay: Duration, retries: u32, failure: &Error, unit: f64) -> Duration {
        if !self.jitter {
            return delay;
        }
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let server_asked = matches!(failure, Error::Api(api)
            if api.retry_delay().is_some()
                || (api.status == 429 && api.rate_limit.remaining == Some(0) && api.rate_limit.reset.is_some()));
        if server_asked {
            delay.saturating_add(self.backoff(retries).mul_f64(unit))
        } else {
            delay.mul_f64(unit)
        }
    }
}

/// The error a failure becomes for a request of this class once it is not retried: a create
/// whose request may have been acted on becomes [`Error::CreateOutcomeUnknown`]. That is any
/// failure other than a well-formed 4xx answer: a transport failure after the request may have
/// left, a 5xx (a proxy's HTML page, a gateway timeout), or a success whose body could not be
/// read (truncated, not JSON).
pub fn final_failure(class: RetryClass, failure: Error) -> Error {
    match failure {
        Error::Transport(t) => transport_failure(class, t),
        Error::Api(api) if class == RetryClass::CreateOnce && api.status >= 500 => {
            Error::CreateOutcomeUnknown(TransportError::new(
                TransportErrorKind::Other,
                format!("{api}; the server may have acted on it before failing"),
            ))
        }
        Error::Decode {
            status,
            reason,
            excerpt,
        } if class == RetryClass::CreateOnce && (200..300).contains(&status) => {
            Error::CreateOutcomeUnknown(TransportError::new(
                TransportErrorKind::Io,
                format!(
                    "the answer (HTTP {status}) could not be read: {reason}; body starts with {excerpt:?}"
                ),
            ))
        }
        other => other,
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

/// The retry bookkeeping shared by every flow: how many retries were made, until when the flow
/// may keep trying, and which request is being retried (for the final error's context).
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub(crate) policy: RetryPolicy,
    pub(crate) retries: u32,
    pub(crate) throttled: u32,
    pub(crate) deadline: Option<Instant>,
    attempts: u32,
    /// The request being retried (formatted only when a final error needs it).
    request: Option<(http::Method, http::Uri)>,
    rng: fastrand::Rng,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy, deadline: Option<Instant>) -> Self {
        Retrier {
            policy,
            retries: 0,
            throttled: 0,
            deadline,
            attempts: 0,
            request: None,
            rng: fastrand::Rng::new(),
        }
    }

    /// Notes a request being sent: `GET /v1/predictions/abc` (no host, no query).
    pub(crate) fn sent<B>(&mut self, request: &http::Request<B>) {
        let same = self
            .request
            .as_ref()
            .is_some_and(|(m, u)| m == request.method() && u.path() == request.uri().path());
        if !same {
            self.request = Some((request.method().clone(), request.uri().clone()));
            self.attempts = 0;
        }
        self.attempts = self.attempts.saturating_add(1);
    }

    /// After a failure: `Ok(instant)` to retry at, or `Err(final error)`.
    pub(crate) fn on_failure(
        &mut self,
        class: RetryClass,
        failure: Error,
        now: Instant,
    ) -> Result<Instant, Error> {
        let throttled = matches!(&failure, Error::Api(api) if api.status == 429);
        let count = if throttled {
            self.throttled
        } else {
            self.retries
        };
        let delay = self
            .policy
            .decide(class, count, &failure)
            .map(|d| self.policy.jittered(d, count, &failure, self.rng.f64()));
        // A delay too long to add to `now` (a huge `Retry-After` under a policy whose
        // `max_retry_after` allows it) is past any deadline: give up rather than overflow.
        let at = delay
            .and_then(|d| now.checked_add(d))
            .filter(|&at| self.deadline.is_none_or(|d| at <= d));
        let Some(at) = at else {
            return Err(self.give_up(class, failure));
        };
        if throttled {
            self.throttled += 1;
        } else {
            self.retries += 1;
        }
        Ok(at)
    }

    fn give_up(&self, class: RetryClass, failure: Error) -> Error {
        let mut error = final_failure(class, failure);
        if let Error::Transport(t) | Error::CreateOutcomeUnknown(t) = &mut error
            && t.context.is_none()
            && let Some((method, uri)) = &self.request
        {
            let n = self.attempts.max(1);
            t.context = Some(format!(
                "{method} {}, {n} attempt{}",
                uri.path(),
                if n == 1 { "" } else { "s" }
            ));
        }
        error
    }

    pub(crate) fn on_success(&mut self) {
        self.retries = 0;
        self.throttled = 0;
    }
}
