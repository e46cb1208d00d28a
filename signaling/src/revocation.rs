//! Revoked tokens end live connections: the hub indexes connections by the id (`jti`)
//! of the token they were admitted with, and closes them with a fatal `token_revoked`
//! when the application revokes that token or every token of a subject.

use std::collections::HashMap;

use dashmap::DashMap;

use crate::hub::Hub;
use crate::outbox::Outbox;

/// Error code sent to connections whose token was revoked.
pub const TOKEN_REVOKED: &str = "token_revoked";

/// Connections per token id.
pub(crate) type TokenIndex = DashMap<String, HashMap<u64, Outbox>>;

impl Hub {
    /// Closes every connection admitted with token `token_id` (fatal `token_revoked`).
    /// Returns how many were closed.
    pub fn revoke_token(&self, token_id: &str) -> usize {
        let Some((_, connections)) = self.inner.tokens.remove(token_id) else {
            return 0;
        };
        close_all(connections.values())
    }

    /// Closes every connection of `subject` (joined or listening), whatever its token
    /// (fatal `token_revoked`). Returns how many were closed.
    pub fn revoke_subject(&self, subject: &str) -> usize {
        let Some((_, connections)) = self.inner.listeners.remove(subject) else {
            return 0;
        };
        close_all(connections.values())
    }

    pub(crate) fn add_token_connection(&self, token_id: &str, connection_id: u64, outbox: &Outbox) {
        self.inner
            .tokens
            .entry(token_id.to_string())
            .or_default()
            .insert(connection_id, outbox.clone());
    }

    pub(crate) fn remove_token_connection(&self, token_id: &str, connection_id: u64) {
        self.inner.tokens.remove_if_mut(token_id, |_, connections| {
            connections.remove(&connection_id);
            connections.is_empty()
        });
    }
}

fn close_all<'a>(outboxes: impl Iterator<Item = &'a Outbox>) -> usize {
    let mut closed = 0;
    for outbox in outboxes.filter(|o| !o.is_closed()) {
        outbox.fail(TOKEN_REVOKED, "your token has been revoked");
        closed += 1;
    }
    if closed > 0 {
        tracing::info!(closed, "connections closed: token revoked");
    }
    closed
}
