//! The outgoing side of one WebSocket: a bounded queue the transport drains.
//!
//! Senders never wait: a client that stops reading fills its queue and is then
//! disconnected (close code 4408, `slow_consumer`), instead of stalling the room that
//! broadcasts to it. The close travels on a separate one-slot lane, so it gets through
//! even when the message queue is full.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::protocol::ServerMessage;
use crate::throttle::LogThrottle;

/// How many messages may wait for a slow client before it is cut off.
const OUTBOX_CAPACITY: usize = 1024;

/// WebSocket close code for a client that does not read fast enough (PROTOCOL.md).
pub const SLOW_CONSUMER_CLOSE: u16 = 4408;

/// One "client is not reading" line per second for the whole process, however many
/// clients or messages.
static SLOW_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(1));

/// What the transport must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// Send this message as a text frame.
    Message(ServerMessage),
    /// Send a close frame with this code and reason, then stop.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Handle to push messages to one connection.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    /// The close lane: used when `tx` is full.
    urgent: mpsc::Sender<Outbound>,
    /// Set once the queue overflowed: later messages are dropped silently.
    overflowed: Arc<AtomicBool>,
}

/// The transport's end of an [`Outbox`]: messages in order, and an overflow close ahead
/// of everything still queued.
#[derive(Debug)]
pub struct OutboundQueue {
    rx: mpsc::Receiver<Outbound>,
    urgent: mpsc::Receiver<Outbound>,
}

impl OutboundQueue {
    /// The next thing to do; `None` once every [`Outbox`] handle is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        tokio::select! {
            biased;
            Some(close) = self.urgent.recv() => Some(close),
            next = self.rx.recv() => next,
        }
    }
}

impl Outbox {
    /// A new outbox and the queue the transport drains.
    pub fn new() -> (Outbox, OutboundQueue) {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (urgent_tx, urgent_rx) = mpsc::channel(1);
        (
            Outbox {
                tx,
                urgent: urgent_tx,
                overflowed: Arc::new(AtomicBool::new(false)),
            },
            OutboundQueue {
                rx,
                urgent: urgent_rx,
            },
        )
    }

    /// Queues a message; when the client is not keeping up, drops it and closes the
    /// connection with [`SLOW_CONSUMER_CLOSE`] (logged once per second process-wide).
    pub fn send(&self, message: ServerMessage) {
        if self.overflowed.load(Ordering::Relaxed) {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.tx.try_send(Outbound::Message(message))
        {
            self.overflow();
        }
    }

    fn overflow(&self) {
        if self.overflowed.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(suppressed) = SLOW_LOG.allow() {
            tracing::warn!(suppressed, "signaling client is not reading; closing it");
        }
        let _ = self.urgent.try_send(Outbound::Close {
            code: SLOW_CONSUMER_CLOSE,
            reason: "slow_consumer".into(),
        });
    }

    /// Queues a fatal error followed by a close frame.
    pub fn fail(&self, code: &str, message: impl Into<String>) {
        self.send(ServerMessage::error(code, message, true));
        self.close(crate::protocol::close_code_for(code), code);
    }

    /// Queues a close frame (after the messages already queued).
    pub fn close(&self, code: u16, reason: &str) {
        let close = Outbound::Close {
            code,
            reason: reason.to_string(),
        };
        if let Err(mpsc::error::TrySendError::Full(close)) = self.tx.try_send(close) {
            // The queue is full: the client is not reading, close it ahead of the rest.
            let _ = self.urgent.try_send(close);
        }
    }

    /// True once the transport is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_closes_ahead_of_the_queue_and_drops_the_rest() {
        let (outbox, mut queue) = Outbox::new();
        for _ in 0..OUTBOX_CAPACITY + 500 {
            outbox.send(ServerMessage::Left);
        }
        assert_eq!(
            queue.recv().await,
            Some(Outbound::Close {
                code: SLOW_CONSUMER_CLOSE,
                reason: "slow_consumer".into()
            })
        );
        let mut queued = 0;
        while let Ok(Outbound::Message(_)) = queue.rx.try_recv() {
            queued += 1;
        }
        assert_eq!(queued, OUTBOX_CAPACITY, "nothing queued after the overflow");
    }
}
