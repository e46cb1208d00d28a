//! The two clocks a loop works with: `Instant` (what the sans-IO core runs on) and wall
//! time in µs since the Unix epoch (what the tags carry, shared with the sending side,
//! and what the kernel stamps received datagrams with). A [`Clock`] is one reading of
//! both, taken together, that converts between them for instants close to it.

use std::time::{Duration, Instant};

use crate::client::stats::now_micros;

/// A simultaneous reading of the monotonic and the wall clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) instant: Instant,
    pub(crate) wall_us: u64,
}

impl Clock {
    /// Reads both clocks now.
    pub(crate) fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            wall_us: now_micros(),
        }
    }

    /// The instant of a wall time `wall_us` at or before this reading (a kernel receive
    /// timestamp); a wall time after it (clock stepped) maps to the reading itself.
    pub(crate) fn instant_of(&self, wall_us: u64) -> Instant {
        let ago = Duration::from_micros(self.wall_us.saturating_sub(wall_us));
        self.instant.checked_sub(ago).unwrap_or(self.instant)
    }

    /// The wall time of an instant at or before this reading.
    pub(crate) fn wall_of(&self, at: Instant) -> u64 {
        let ago = self.instant.saturating_duration_since(at);
        self.wall_us.saturating_sub(ago.as_micros() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_for_recent_times() {
        let c = Clock {
            instant: Instant::now(),
            wall_us: 1_000_000_000,
        };
        let at = c.instant_of(999_998_500);
        assert_eq!(c.instant.duration_since(at), Duration::from_micros(1_500));
        assert_eq!(c.wall_of(at), 999_998_500);
        assert_eq!(
            c.instant_of(1_000_000_700),
            c.instant,
            "future stamps clamp"
        );
        assert_eq!(c.wall_of(c.instant + Duration::from_millis(5)), c.wall_us);
    }
}
