//! The outgoing side of one WebSocket: a bounded queue the transport drains.
//!
//! Senders never wait: a client that stops reading fills its queue and is then
//! disconnected, instead of stalling the room that broadcasts to it.

use tokio::sync::mpsc;

use crate::protocol::ServerMessage;

/// How many messages may wait for a slow client before it is cut off.
const OUTBOX_CAPACITY: usize = 1024;

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
}

impl Outbox {
    /// A new outbox and the receiver the transport drains.
    pub fn new() -> (Outbox, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        (Outbox { tx }, rx)
    }

    /// Queues a message; drops it (and logs) when the client is not keeping up.
    pub fn send(&self, message: ServerMessage) {
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.tx.try_send(Outbound::Message(message))
        {
            tracing::warn!("signaling client is not reading; closing it");
            let _ = self.tx.try_send(Outbound::Close {
                code: 4408,
                reason: "slow_consumer".into(),
            });
        }
    }

    /// Queues a fatal error followed by a close frame.
    pub fn fail(&self, code: &str, message: impl Into<String>) {
        self.send(ServerMessage::error(code, message, true));
        self.close(crate::protocol::close_code_for(code), code);
    }

    /// Queues a close frame.
    pub fn close(&self, code: u16, reason: &str) {
        let _ = self.tx.try_send(Outbound::Close {
            code,
            reason: reason.to_string(),
        });
    }

    /// True once the transport is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
