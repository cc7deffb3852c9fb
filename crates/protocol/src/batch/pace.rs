//! The token buckets that pace a batch's requests (see the [module documentation](super) for
//! the rules).

use std::time::{Duration, Instant};

use http::HeaderMap;

use crate::error::RateLimit;

/// A token bucket shared by every request of one kind (creates, or reads), fed by the server's
/// rate-limit headers and slowed by its 429s.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// The configured ceiling (requests per second).
    max_rate: f64,
    /// The current rate: `max_rate`, halved by each 429, growing back linearly.
    rate: f64,
    min_rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
    /// No request before this instant (a 429's `Retry-After`).
    hold_until: Option<Instant>,
    /// The server's window: requests left, and when it resets.
    window: Option<(u64, Instant)>,
    /// How long the rate takes to grow back from nothing to `max_rate` without a 429.
    recovery: Duration,
}

impl Bucket {
    pub(crate) fn new(max_rate: f64, burst: f64, recovery: Duration) -> Self {
        let burst = burst.max(1.0);
        Bucket {
            max_rate,
            rate: max_rate,
            min_rate: (max_rate / 64.0).min(0.05),
            burst,
            tokens: burst,
            last: None,
            hold_until: None,
            window: None,
            recovery: recovery.max(Duration::from_millis(1)),
        }
    }

    /// The current rate (requests per second).
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    fn advance(&mut self, now: Instant) {
        let dt = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.tokens = (self.tokens + self.rate * dt).min(self.burst);
        if self.rate < self.max_rate {
            self.rate =
                (self.rate + self.max_rate * dt / self.recovery.as_secs_f64()).min(self.max_rate);
        }
        self.last = Some(self.last.map_or(now, |l| l.max(now)));
    }

    /// When a request could go (`now` or later), without taking a token.
    pub(crate) fn ready_at(&mut self, now: Instant) -> Instant {
        self.advance(now);
        let mut at = now;
        if let Some(h) = self.hold_until {
            at = at.max(h);
        }
        if let Some((0, reset)) = self.window
            && reset > now
        {
            at = at.max(reset);
        }
        if self.tokens < 1.0 - 1e-9 {
            let wait = (1.0 - self.tokens) / self.rate + 1e-6;
            at = at.max(now + Duration::from_secs_f64(wait));
        }
        at
    }

    /// Takes a token, or says when one will be there.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        let at = self.ready_at(now);
        if at > now {
            return Err(at);
        }
        self.hold_until = None;
        if let Some((_, reset)) = self.window
            && reset <= now
        {
            self.window = None;
        }
        self.tokens -= 1.0;
        if let Some((left, _)) = &mut self.window {
            *left = left.saturating_sub(1);
        }
        Ok(())
    }

    /// The rate-limit headers of an answer: at most `remaining` more requests (less those still
    /// in flight, which the server may not have counted yet) until `reset` seconds from now.
    pub(crate) fn observe(&mut self, rl: RateLimit, in_flight: u64, now: Instant) {
        self.advance(now);
        match (rl.remaining, rl.reset) {
            (Some(left), Some(reset)) => {
                let left = left.saturating_sub(in_flight);
                let reset_at = now + Duration::from_secs(reset);
                // Answers arrive out of order: within one window keep the smaller count.
                self.window = match self.window {
                    Some((l, r)) if r >= reset_at => Some((l.min(left), r)),
                    _ => Some((left, reset_at)),
                };
            }
            (Some(left), None) => {
                self.tokens = self.tokens.min(left.saturating_sub(in_flight) as f64);
            }
            _ => {}
        }
    }

    /// A 429: nothing before `now + delay`, and the rate halves (it grows back over
    /// `recovery`), once per hold.
    pub(crate) fn throttle(&mut self, delay: Duration, now: Instant) {
        self.advance(now);
        let until = now + delay;
        // The 429s of requests sent before the first one came back are one signal, not many.
        let already_held = self.hold_until.is_some_and(|h| h > now);
        self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
        if !already_held {
            self.rate = (self.rate * 0.5).max(self.min_rate);
        }
        self.tokens = self.tokens.min(0.0);
    }
}

/// The `ratelimit-remaining` and `ratelimit-reset` headers of an answer.
pub(crate) fn rate_limit(headers: &HeaderMap) -> RateLimit {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    };
    RateLimit {
        remaining: header("ratelimit-remaining"),
        reset: header("ratelimit-reset"),
    }
}
