//! One timer heap per core: `(deadline, key)` entries with lazy invalidation. Each key has
//! at most one live deadline (the last one scheduled); older entries stay in the heap and
//! are skipped when they surface, so rescheduling after every datagram costs one push and
//! no search. The top of the heap is kept live, so [`TimerHeap::next`] is exact.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Deadlines by key.
#[derive(Debug)]
pub(crate) struct TimerHeap<K: Copy + Ord + Hash> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    live: HashMap<K, Instant>,
}

impl<K: Copy + Ord + Hash> Default for TimerHeap<K> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> TimerHeap<K> {
    /// Sets (or with `None` clears) the deadline of `key`, replacing any earlier one.
    pub(crate) fn schedule(&mut self, key: K, deadline: Option<Instant>) {
        match deadline {
            Some(at) => {
                if self.live.insert(key, at) == Some(at) {
                    return; // unchanged: its entry is still in the heap
                }
                self.heap.push(Reverse((at, key)));
            }
            None => {
                self.live.remove(&key);
            }
        }
        self.settle();
    }

    /// Forgets `key` entirely.
    pub(crate) fn remove(&mut self, key: K) {
        self.schedule(key, None);
    }

    /// The earliest live deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the key of the earliest live deadline if it is due at `now`; its deadline is
    /// cleared (the owner schedules the next one after handling it).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let Reverse((at, key)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.live.remove(&key);
        self.settle();
        Some(key)
    }

    #[cfg(test)]
    /// Number of live deadlines.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Pops dead entries off the top, and rebuilds the heap when dead entries dominate
    /// (a connection rescheduled on every packet leaves one behind each time).
    fn settle(&mut self) {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if self.live.get(key) == Some(at) {
                break;
            }
            self.heap.pop();
        }
        if self.heap.len() > 64 && self.heap.len() > 4 * self.live.len() {
            let live = &self.live;
            let mut entries = std::mem::take(&mut self.heap).into_vec();
            entries.retain(|Reverse((at, key))| live.get(key) == Some(at));
            self.heap = BinaryHeap::from(entries);
        }
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_only_when_due() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut h = TimerHeap::default();
        h.schedule(3u32, Some(ms(30)));
        h.schedule(1, Some(ms(10)));
        h.schedule(2, Some(ms(20)));
        assert_eq!(h.next(), Some(ms(10)));
        assert_eq!(h.pop_due(ms(5)), None, "nothing due yet");
        assert_eq!(h.pop_due(ms(25)), Some(1));
        assert_eq!(h.pop_due(ms(25)), Some(2));
        assert_eq!(h.pop_due(ms(25)), None);
        assert_eq!(h.next(), Some(ms(30)));
        assert_eq!(h.pop_due(ms(30)), Some(3));
        assert_eq!(h.next(), None);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn rescheduling_invalidates_the_old_deadline() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut h = TimerHeap::default();
        h.schedule(1u32, Some(ms(10)));
        h.schedule(2, Some(ms(15)));
        h.schedule(1, Some(ms(50))); // later: the 10 ms entry is dead
        assert_eq!(h.next(), Some(ms(15)), "dead entry not reported");
        assert_eq!(h.pop_due(ms(20)), Some(2));
        assert_eq!(h.pop_due(ms(20)), None, "key 1 not due at its old deadline");
        h.schedule(1, Some(ms(5))); // earlier
        assert_eq!(h.pop_due(ms(6)), Some(1));
        assert_eq!(
            h.pop_due(ms(100)),
            None,
            "the 50 ms entry died with the reschedule"
        );
        h.schedule(7, Some(ms(1)));
        h.remove(7);
        assert_eq!(h.next(), None);
    }

    #[test]
    fn dead_entries_do_not_accumulate() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.schedule(0u32, Some(t0)); // an early live entry keeps the dead ones below the top
        for i in 0..10_000u64 {
            h.schedule(1, Some(t0 + Duration::from_micros(10_000 - i)));
            h.schedule(2, Some(t0 + Duration::from_micros(20_000 + i)));
        }
        assert!(
            h.entries() <= 64.max(4 * h.len()) + 1,
            "{} entries",
            h.entries()
        );
        assert_eq!(h.pop_due(t0), Some(0));
        assert_eq!(h.next(), Some(t0 + Duration::from_micros(1)));
    }
}
