//! One timer heap per loop: every deadline of every connection on the loop (the sans-IO
//! core's own timeout, each local track's next packet) lives here, so the loop sleeps
//! exactly until the earliest one and no connection owns a timer of its own.
//!
//! Each key has at most one armed deadline. Re-arming pushes a new heap entry and leaves
//! the old one behind; stale entries are recognised (their deadline is no longer the
//! armed one) and skipped when they reach the top, and the heap is rebuilt from the armed
//! set when stale entries outnumber live ones.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Deadlines by key, earliest first.
pub(crate) struct TimerHeap<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    armed: HashMap<K, Instant>,
}

impl<K: Copy + Ord + Hash> Default for TimerHeap<K> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            armed: HashMap::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> TimerHeap<K> {
    /// Sets (or moves) the deadline of `key`.
    pub(crate) fn arm(&mut self, key: K, at: Instant) {
        if self.armed.insert(key, at) == Some(at) {
            return;
        }
        self.heap.push(Reverse((at, key)));
        if self.heap.len() > 2 * self.armed.len() + 64 {
            self.compact();
        }
    }

    /// Removes the deadline of `key`, if any.
    pub(crate) fn cancel(&mut self, key: K) {
        self.armed.remove(&key);
    }

    #[cfg(test)]
    /// The deadline of `key`, if armed.
    pub(crate) fn deadline(&self, key: K) -> Option<Instant> {
        self.armed.get(&key).copied()
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Disarms and returns one key whose deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.drop_stale_top();
        let Reverse((at, key)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.armed.remove(&key);
        Some(key)
    }

    #[cfg(test)]
    /// Number of armed keys.
    pub(crate) fn len(&self) -> usize {
        self.armed.len()
    }

    fn is_live(&self, at: Instant, key: &K) -> bool {
        self.armed.get(key) == Some(&at)
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if self.is_live(*at, key) {
                return;
            }
            self.heap.pop();
        }
    }

    fn compact(&mut self) {
        self.heap = self
            .armed
            .iter()
            .map(|(key, at)| Reverse((*at, *key)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t = Instant::now();
        let mut h = TimerHeap::default();
        h.arm(1u32, ms(t, 30));
        h.arm(2, ms(t, 10));
        h.arm(3, ms(t, 20));
        assert_eq!(h.next_deadline(), Some(ms(t, 10)));
        assert_eq!(h.pop_due(ms(t, 5)), None);
        assert_eq!(h.pop_due(ms(t, 25)), Some(2));
        assert_eq!(h.pop_due(ms(t, 25)), Some(3));
        assert_eq!(h.pop_due(ms(t, 25)), None);
        assert_eq!(h.pop_due(ms(t, 30)), Some(1));
        assert_eq!(h.next_deadline(), None);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn rearming_moves_the_deadline_and_stale_entries_never_fire() {
        let t = Instant::now();
        let mut h = TimerHeap::default();
        h.arm(1u32, ms(t, 10));
        h.arm(1, ms(t, 50)); // later: the 10 ms entry is stale
        assert_eq!(h.next_deadline(), Some(ms(t, 50)));
        assert_eq!(h.pop_due(ms(t, 20)), None);
        h.arm(1, ms(t, 5)); // earlier again
        assert_eq!(h.pop_due(ms(t, 6)), Some(1));
        assert_eq!(h.pop_due(ms(t, 100)), None, "one key fires once");
        h.arm(2, ms(t, 10));
        h.cancel(2);
        assert_eq!(h.pop_due(ms(t, 100)), None, "cancelled");
        assert_eq!(h.deadline(2), None);
    }

    #[test]
    fn heap_stays_bounded_under_constant_rearming() {
        let t = Instant::now();
        let mut h = TimerHeap::default();
        for i in 0..10_000u64 {
            h.arm((i % 3) as u32, ms(t, 1_000 + i));
        }
        assert_eq!(h.len(), 3);
        assert!(h.heap.len() <= 2 * 3 + 65, "compacted: {}", h.heap.len());
        let mut fired = Vec::new();
        while let Some(k) = h.pop_due(ms(t, 100_000)) {
            fired.push(k);
        }
        fired.sort_unstable();
        assert_eq!(fired, vec![0, 1, 2]);
    }
}
