//! The token buckets that pace a batch's requests (see the [module documentation](super) for
//! the rules).

use std::time::{Duration, Instant};

use http::HeaderMap;

use crate::error::RateLimit;

/// The server's current rate-limit window, as the answers tell it.
///
/// `ratelimit-reset` is whole seconds rounded up, so one answer only bounds the window's end:
/// it is at most `reset` seconds after the answer arrived. The earliest such bound among the
/// window's answers is the estimate; with one-second windows that is the first answer after the
/// window began, plus a second: a few milliseconds late, where trusting the latest answer's
/// `reset` would wait up to a whole second too long each time the budget runs out.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Requests surely left: the lowest `remaining`, less the requests in flight when it came
    /// and those sent since (the server may not have counted them yet).
    left: u64,
    /// The lowest `remaining` any answer in this window gave, and when it came.
    lowest: u64,
    lowest_at: Instant,
    /// The window has surely ended by then.
    ends_by: Instant,
}

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
    /// What the answers say of the server's current window.
    window: Option<Window>,
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
        if let Some(w) = self.window
            && w.left == 0
            && w.ends_by > now
        {
            at = at.max(w.ends_by);
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
        if self.window.is_some_and(|w| w.ends_by <= now) {
            self.window = None;
        }
        self.tokens -= 1.0;
        if let Some(w) = &mut self.window {
            w.left = w.left.saturating_sub(1);
        }
        Ok(())
    }

    /// The rate-limit headers of the answer to a request sent at `sent`: at most `remaining`
    /// more requests (less the `in_flight` ones, which the server may not have counted yet)
    /// until at most `reset` seconds from now.
    ///
    /// Answers come back out of order, so each is first placed in a window:
    /// - a new one when its request left after the current window surely ended, or when its
    ///   `remaining` is at least the window's lowest although its request left after that
    ///   lowest answer came (a later request in the same window would have found less), or
    ///   higher than the requests in flight can explain by reordering;
    /// - an earlier one, which says nothing of the current window, when its `remaining` is
    ///   below what the current window surely has left;
    /// - unknown when it arrives after the current window surely ended without being surely
    ///   new: the window is forgotten, and the bucket alone paces until the next clear answer;
    /// - otherwise the current one: its counts and end bound are folded in.
    pub(crate) fn observe(&mut self, rl: RateLimit, sent: Instant, in_flight: u64, now: Instant) {
        self.advance(now);
        match (rl.remaining, rl.reset) {
            (Some(remaining), Some(reset)) => {
                let fresh = Window {
                    left: remaining.saturating_sub(in_flight),
                    lowest: remaining,
                    lowest_at: now,
                    ends_by: now + Duration::from_secs(reset),
                };
                let Some(w) = &mut self.window else {
                    self.window = Some(fresh);
                    return;
                };
                let new_window = sent >= w.ends_by
                    || (sent >= w.lowest_at && remaining >= w.lowest)
                    || remaining > w.lowest.saturating_add(in_flight);
                if new_window {
                    self.window = Some(fresh);
                } else if remaining < w.left {
                    // Counted in an earlier window.
                } else if now >= w.ends_by {
                    self.window = None;
                } else {
                    if remaining < w.lowest {
                        w.lowest = remaining;
                        w.lowest_at = now;
                    }
                    w.left = w.left.min(fresh.left);
                    w.ends_by = w.ends_by.min(fresh.ends_by);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What a simulated run against a fixed-window limit gave.
    #[derive(Debug)]
    struct Run {
        accepted: u64,
        throttled: u64,
    }

    /// Drives a create bucket against a simulated server that allows `limit` requests per fixed
    /// window of `window`, whose boundaries fall `phase` after the start, and answers with
    /// `ratelimit-remaining` and a `ratelimit-reset` rounded up to whole seconds, as Replicate
    /// and the fake do. At most `max_in_flight` requests are outstanding; `latency` gives each
    /// request's trip to the server and back. Simulated time only.
    fn simulate(
        rate: f64,
        limit: u64,
        window: Duration,
        phase: Duration,
        max_in_flight: u64,
        secs: u64,
        mut latency: impl FnMut() -> (Duration, Duration),
    ) -> Run {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(secs);
        let step = Duration::from_micros(250);
        let mut bucket = Bucket::new(rate, 1.0, Duration::from_secs(60));
        // (arrives at the server, back at the client)
        let mut arriving: Vec<(Instant, Duration, Instant)> = Vec::new();
        // (back at the client, answer)
        let mut answers: Vec<(Instant, Result<RateLimit, u64>, Instant)> = Vec::new();
        let mut counts: (u64, u64) = (u64::MAX, 0);
        let mut run = Run {
            accepted: 0,
            throttled: 0,
        };
        let mut now = t0;
        while now < end {
            arriving.sort_by_key(|a| a.0);
            while arriving.first().is_some_and(|a| a.0 <= now) {
                let (at, back, sent) = arriving.remove(0);
                let since = (at - t0 + phase).as_nanos();
                let w = window.as_nanos();
                let idx = (since / w) as u64;
                let left_ns = w - since % w;
                let reset = left_ns.div_ceil(1_000_000_000).max(1) as u64;
                if counts.0 != idx {
                    counts = (idx, 0);
                }
                let answer = if counts.1 >= limit {
                    Err(reset)
                } else {
                    counts.1 += 1;
                    run.accepted += 1;
                    Ok(RateLimit {
                        remaining: Some(limit - counts.1),
                        reset: Some(reset),
                    })
                };
                answers.push((at + back, answer, sent));
            }
            answers.sort_by_key(|a| a.0);
            while answers.first().is_some_and(|a| a.0 <= now) {
                let (_, answer, sent) = answers.remove(0);
                let in_flight = (arriving.len() + answers.len()) as u64;
                match answer {
                    Ok(rl) => {
                        bucket.observe(rl, sent, in_flight, now);
                    }
                    Err(reset) => {
                        run.throttled += 1;
                        bucket.throttle(Duration::from_secs(reset), now);
                    }
                }
            }
            while ((arriving.len() + answers.len()) as u64) < max_in_flight
                && bucket.try_take(now).is_ok()
            {
                let (up, down) = latency();
                arriving.push((now + up, down, now));
            }
            now += step;
        }
        run
    }

    #[test]
    fn a_one_second_window_is_used_to_the_full_without_throttles() {
        // The configured rate equal to the server's, or above it (then the window's count, not
        // the bucket, is what paces).
        for rate in [50.0, 80.0, 500.0] {
            for (in_flight, ms) in [(16, 1), (16, 4), (64, 2), (4, 1)] {
                for phase_ms in [0, 130, 500, 990] {
                    let lat = Duration::from_millis(ms);
                    let run = simulate(
                        rate,
                        50,
                        Duration::from_secs(1),
                        Duration::from_millis(phase_ms),
                        in_flight,
                        40,
                        || (lat / 2, lat / 2),
                    );
                    let case =
                        format!("{rate}/s, {in_flight} in flight, {ms} ms, phase {phase_ms} ms");
                    assert_eq!(run.throttled, 0, "{case}: {run:?}");
                    assert!(run.accepted >= 1_900, "{case}: {run:?} (floor 2,000)");
                }
            }
        }
    }

    #[test]
    fn answers_out_of_order_do_not_stall_the_window() {
        for rate in [50.0, 80.0] {
            let mut rng = fastrand::Rng::with_seed(7);
            let run = simulate(
                rate,
                50,
                Duration::from_secs(1),
                Duration::from_millis(300),
                16,
                40,
                || {
                    let up = Duration::from_micros(rng.u64(200..6_000));
                    let down = Duration::from_micros(rng.u64(200..6_000));
                    (up, down)
                },
            );
            assert_eq!(run.throttled, 0, "{rate}/s: {run:?}");
            assert!(run.accepted >= 1_900, "{rate}/s: {run:?} (floor 2,000)");
        }
    }

    #[test]
    fn a_long_window_is_paced_by_its_reset() {
        // 600 a minute, a configured rate above it: the window's budget, then its reset.
        let run = simulate(
            50.0,
            600,
            Duration::from_secs(60),
            Duration::from_secs(17),
            16,
            130,
            || (Duration::from_millis(2), Duration::from_millis(2)),
        );
        assert_eq!(run.throttled, 0, "{run:?}");
        // Windows at 43 s and 103 s: three budgets fit in 130 s.
        assert!(run.accepted >= 1_790, "{run:?}");
    }
}
