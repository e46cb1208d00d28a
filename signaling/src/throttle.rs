//! Small rate limiters: the per-connection message budget ([`MessageLimiter`]), and the
//! log throttle ([`LogThrottle`]) so a flood produces a handful of lines.
//!
//! A hand-written token bucket instead of `governor`: each limiter is owned by one
//! connection's task (no sharing, no atomics needed), and it takes the time as an
//! argument so tests drive it with made-up instants. `governor`'s direct limiter keeps
//! its own `quanta` clock and atomic state, which buys nothing here.

use std::time::Duration;

use std::time::Instant;

/// A classic token bucket: `capacity` tokens, refilled at `per_sec`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(per_sec: f64, capacity: f64, now: Instant) -> Self {
        let capacity = capacity.max(1.0);
        TokenBucket {
            capacity,
            per_sec: per_sec.max(0.0),
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the budget: handle it.
    Allow,
    /// Over the budget: drop it; `notify` is true at most once per second, when the
    /// client should receive a non-fatal `rate_limited` error.
    Refuse {
        /// Send the client a `rate_limited` error now.
        notify: bool,
    },
    /// Sustained abuse: close the connection.
    Abuse,
}

/// How many refused messages a connection may accumulate (forgiven at the message rate)
/// before it is closed for abuse.
pub const ABUSE_TOLERANCE: u32 = 500;

/// How often a refused client is told so.
const NOTICE_EVERY: Duration = Duration::from_secs(1);

/// The message budget of one connection: `rate` messages per second with bursts of
/// `burst`. Refused messages drain a second bucket of [`ABUSE_TOLERANCE`] tokens that
/// refills at the same rate; when it is empty the client keeps flooding and is closed.
#[derive(Debug)]
pub(crate) struct MessageLimiter {
    budget: TokenBucket,
    tolerance: TokenBucket,
    last_notice: Option<Instant>,
}

impl MessageLimiter {
    /// A limiter allowing `rate` messages per second with bursts of `burst`.
    pub(crate) fn new(rate: f64, burst: u32, now: Instant) -> Self {
        MessageLimiter {
            budget: TokenBucket::new(rate, f64::from(burst), now),
            tolerance: TokenBucket::new(rate, f64::from(ABUSE_TOLERANCE), now),
            last_notice: None,
        }
    }

    /// Decides about one incoming message arriving at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        if self.budget.try_take(now) {
            return Verdict::Allow;
        }
        if !self.tolerance.try_take(now) {
            return Verdict::Abuse;
        }
        let notify = self
            .last_notice
            .is_none_or(|t| now.saturating_duration_since(t) >= NOTICE_EVERY);
        if notify {
            self.last_notice = Some(now);
        }
        Verdict::Refuse { notify }
    }
}

/// Lets one log line through per interval and counts the ones held back, so a flood of
/// identical events logs a handful of lines. Usable in a `static`; the binary uses it too.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    /// When a line was last let through, and how many were held back since.
    state: std::sync::Mutex<(Option<Instant>, u64)>,
}

impl LogThrottle {
    /// A throttle letting one line through per `every`.
    pub const fn new(every: Duration) -> Self {
        LogThrottle {
            every,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    /// `Some(suppressed)` when a line may be logged now, with the number of lines held
    /// back since the last one; `None` when this one should be skipped.
    pub fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if state.0.is_none_or(|t| now.duration_since(t) >= self.every) {
            state.0 = Some(now);
            Some(std::mem::take(&mut state.1))
        } else {
            state.1 += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_throttle_counts_suppressed() {
        let throttle = LogThrottle::new(Duration::from_secs(3600));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
    }

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut limiter = MessageLimiter::new(50.0, 100, t0);
        let allowed = (0..1000)
            .filter(|_| limiter.check(t0) == Verdict::Allow)
            .count();
        assert_eq!(allowed, 100, "the burst, nothing more without time passing");
        let t1 = t0 + Duration::from_secs(1);
        let allowed = (0..100)
            .filter(|_| limiter.check(t1) == Verdict::Allow)
            .count();
        assert_eq!(allowed, 50, "one second refills the rate");
    }

    #[test]
    fn notices_once_per_second_and_abuse_closes() {
        let t0 = Instant::now();
        let mut limiter = MessageLimiter::new(50.0, 100, t0);
        for _ in 0..100 {
            assert_eq!(limiter.check(t0), Verdict::Allow);
        }
        let verdicts: Vec<Verdict> = (0..ABUSE_TOLERANCE + 1)
            .map(|_| limiter.check(t0))
            .collect();
        let notices = verdicts
            .iter()
            .filter(|v| **v == Verdict::Refuse { notify: true })
            .count();
        assert_eq!(notices, 1, "one notice within the same second");
        assert_eq!(verdicts.last(), Some(&Verdict::Abuse));
    }

    #[test]
    fn twice_the_rate_is_refused_but_not_abuse() {
        let t0 = Instant::now();
        let mut limiter = MessageLimiter::new(50.0, 100, t0);
        let mut refused = 0;
        for tick in 0..600u32 {
            let now = t0 + Duration::from_millis(100) * tick;
            for _ in 0..10 {
                match limiter.check(now) {
                    Verdict::Allow => {}
                    Verdict::Refuse { .. } => refused += 1,
                    Verdict::Abuse => panic!("100/s against 50/s is not abuse (tick {tick})"),
                }
            }
        }
        assert!(refused > 2000, "about half of 6000 refused, got {refused}");
    }
}
