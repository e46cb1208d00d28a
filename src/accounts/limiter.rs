//! Failed sign-ins, counted per e-mail address and per client address in fixed windows:
//! after [`MAX_FAILURES`] failures within [`WINDOW`], that e-mail (or address) is refused
//! until the window ends, even with the right password, so passwords cannot be guessed
//! online. Successful sign-ins do not count. In memory: one node's view, as the other
//! rate limits.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Failures allowed per window.
pub const MAX_FAILURES: u32 = 5;
/// Length of a counting window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Past this many tracked keys, windows that ended are forgotten.
const SOFT_CAP: usize = 10_000;

/// What a failure is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Email(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// The failed sign-in counter. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct SignInLimiter {
    windows: Arc<DashMap<Key, Window>>,
    max_failures: u32,
    window: Duration,
}

impl Default for SignInLimiter {
    fn default() -> Self {
        Self::new(MAX_FAILURES, WINDOW)
    }
}

impl SignInLimiter {
    /// A limiter allowing `max_failures` per `window` (tests shorten both).
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            windows: Arc::new(DashMap::new()),
            max_failures: max_failures.max(1),
            window,
        }
    }

    /// Seconds until `email` and `address` may try again, or `None` when both may now.
    pub fn locked_for(&self, email: &str, address: Option<IpAddr>) -> Option<u64> {
        let now = Instant::now();
        keys(email, address)
            .filter_map(|key| {
                let window = *self.windows.get(&key)?;
                let ends = window.started + self.window;
                (window.failures >= self.max_failures && ends > now)
                    .then(|| (ends - now).as_secs().max(1))
            })
            .max()
    }

    /// Counts one failed sign-in against `email` and `address`.
    pub fn record_failure(&self, email: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        if self.windows.len() > SOFT_CAP {
            self.windows
                .retain(|_, window| window.started + self.window > now);
        }
        for key in keys(email, address) {
            let mut entry = self.windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if entry.started + self.window <= now {
                *entry = Window {
                    started: now,
                    failures: 0,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
        }
    }
}

fn keys(email: &str, address: Option<IpAddr>) -> impl Iterator<Item = Key> {
    std::iter::once(Key::Email(email.to_string())).chain(address.map(Key::Address))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn the_fifth_failure_locks_the_email_and_the_address() {
        let limiter = SignInLimiter::default();
        for _ in 0..4 {
            limiter.record_failure("a@x.org", HERE);
        }
        assert_eq!(limiter.locked_for("a@x.org", HERE), None);
        limiter.record_failure("a@x.org", HERE);
        assert!(
            limiter.locked_for("a@x.org", None).is_some(),
            "e-mail locked"
        );
        assert!(
            limiter.locked_for("b@x.org", HERE).is_some(),
            "address locked"
        );
        assert_eq!(limiter.locked_for("b@x.org", None), None);
    }

    #[test]
    fn a_window_that_ended_counts_from_zero() {
        let limiter = SignInLimiter::new(1, Duration::from_millis(1));
        limiter.record_failure("a@x.org", None);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(limiter.locked_for("a@x.org", None), None);
    }
}
