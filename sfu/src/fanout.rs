//! Non-blocking fan-out from one publisher track to its subscriber legs.
//!
//! The reader of a publisher track must never wait for a subscriber: the driver-to-track
//! channel of webrtc 0.21 holds 256 packets and drops when full. Each leg therefore has a
//! bounded queue fed with `try_send`; a full queue drops the packet for that leg only and
//! counts it.

use std::sync::RwLock;

use tokio::sync::mpsc::{self, error::TrySendError};

/// Packets queued per subscriber leg before dropping (~1 s of 1 Mbit/s video).
pub const LEG_QUEUE_CAPACITY: usize = 512;

struct Slot<T> {
    subscriber: String,
    tx: mpsc::Sender<T>,
}

/// Result of one [`Fanout::push`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Legs the item was queued for.
    pub queued: usize,
    /// Legs whose queue was full (item dropped for them).
    pub dropped: usize,
}

struct State<T> {
    closed: bool,
    slots: Vec<Slot<T>>,
}

/// The set of legs one published track feeds.
pub struct Fanout<T> {
    state: RwLock<State<T>>,
}

impl<T> Default for Fanout<T> {
    fn default() -> Self {
        Fanout {
            state: RwLock::new(State {
                closed: false,
                slots: Vec::new(),
            }),
        }
    }
}

impl<T: Clone> Fanout<T> {
    /// Adds (or replaces) the leg of `subscriber`. Returns false (and drops `tx`) once the
    /// fanout has been cleared for good.
    pub fn attach(&self, subscriber: &str, tx: mpsc::Sender<T>) -> bool {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        if st.closed {
            return false;
        }
        st.slots.retain(|s| s.subscriber != subscriber);
        st.slots.push(Slot {
            subscriber: subscriber.to_owned(),
            tx,
        });
        true
    }

    /// Removes the leg of `subscriber`; its writer sees the queue close. Returns whether
    /// there was one.
    pub fn detach(&self, subscriber: &str) -> bool {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        let before = st.slots.len();
        st.slots.retain(|s| s.subscriber != subscriber);
        before != st.slots.len()
    }

    /// Removes every leg and refuses new ones (track unpublished).
    pub fn clear(&self) {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        st.closed = true;
        st.slots.clear();
    }

    /// Number of legs.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .slots
            .len()
    }

    /// Whether no leg is attached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `item` for every leg without ever waiting.
    pub fn push(&self, item: T) -> PushOutcome {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        let slots = &st.slots;
        let mut out = PushOutcome::default();
        let n = slots.len();
        let mut item = Some(item);
        for (i, slot) in slots.iter().enumerate() {
            // The last leg gets the original, the others a clone.
            let it = if i + 1 == n {
                match item.take() {
                    Some(it) => it,
                    None => break,
                }
            } else {
                match item.as_ref() {
                    Some(it) => it.clone(),
                    None => break,
                }
            };
            match slot.tx.try_send(it) {
                Ok(()) => out.queued += 1,
                Err(TrySendError::Full(_)) => out.dropped += 1,
                Err(TrySendError::Closed(_)) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn slow_leg_never_blocks_the_publisher_nor_starves_others() {
        let fan = Fanout::<u32>::default();
        let (slow_tx, _slow_rx) = mpsc::channel(4); // never read
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        assert!(fan.attach("slow", slow_tx));
        assert!(fan.attach("fast", fast_tx));

        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(v) = fast_rx.recv().await {
                got.push(v);
            }
            got
        });

        let mut dropped = 0;
        for i in 0..1000u32 {
            let o = fan.push(i);
            dropped += o.dropped;
            if i % 4 == 3 {
                // Let the fast reader keep up, as a live subscriber would.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_micros(50)).await;
            }
        }
        fan.clear();
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("reader finishes once the fanout is cleared")
            .unwrap();
        assert_eq!(
            got.len(),
            1000,
            "fast leg lost packets because of the slow one"
        );
        assert_eq!(
            dropped,
            1000 - 4,
            "slow leg drops everything beyond its queue"
        );
    }

    #[test]
    fn attach_replaces_and_detach_closes() {
        let fan = Fanout::<u8>::default();
        let (tx1, mut rx1) = mpsc::channel(2);
        let (tx2, mut rx2) = mpsc::channel(2);
        assert!(fan.attach("a", tx1));
        assert!(fan.attach("a", tx2));
        assert_eq!(fan.len(), 1);
        assert!(rx1.try_recv().is_err());
        assert_eq!(fan.push(7).queued, 1);
        assert_eq!(rx2.try_recv().unwrap(), 7);
        assert!(fan.detach("a"));
        assert!(!fan.detach("a"));
        assert!(fan.is_empty());
        fan.clear();
        let (tx3, _rx3) = mpsc::channel(1);
        assert!(!fan.attach("b", tx3), "no leg after the track is gone");
        assert!(matches!(
            rx2.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
