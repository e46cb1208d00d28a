//! What the hub asks of the application: may this token enter this session, and
//! bookkeeping of participant rows. The binary implements it over its database; tests
//! implement it in memory.

use async_trait::async_trait;

use crate::protocol::{IceServerInfo, SessionSummary};

/// A successful admission: who enters, as which participant.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Participant id (stable for the same user or guest in the same session).
    pub participant_id: String,
    /// Token subject (user id or guest id).
    pub subject: String,
    /// Name shown to others.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// True for anonymous guests.
    pub is_guest: bool,
    /// The session entered.
    pub session: SessionSummary,
    /// Session expiry, Unix ms (the room ends then).
    pub expires_at_ms: i64,
    /// ICE servers for the client, with fresh TURN credentials.
    pub ice_servers: Vec<IceServerInfo>,
    /// Id (`jti`) of the token admitted, so that revoking it closes this connection.
    pub token_id: Option<String>,
}

/// A token verified for a connection that only listens for notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Token subject (user or guest id).
    pub subject: String,
    /// Id (`jti`) of the token, so that revoking it closes this connection.
    pub token_id: Option<String>,
}

/// A refused admission, with a protocol error code (`unauthorized`,
/// `token_revoked`, `session_not_found`, `session_ended`, `forbidden`,
/// `therapist_disabled`, `organization_disabled`, `internal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Error code.
    pub code: String,
    /// Human message.
    pub message: String,
}

/// Decisions and bookkeeping the hub delegates to the application.
#[async_trait]
pub trait Gatekeeper: Send + Sync + 'static {
    /// Verifies `token`, checks that its holder may enter `session_id` now, and
    /// registers (idempotently) the participant row.
    async fn admit(&self, token: &str, session_id: &str) -> Result<Admission, Refusal>;
    /// Verifies `token` alone and returns its subject (user or guest id) and id, for
    /// connections that only listen for notifications.
    async fn authenticate(&self, token: &str) -> Result<Authenticated, Refusal>;
    /// The participant entered the room (row becomes active).
    async fn participant_joined(&self, participant_id: &str);
    /// The participant is gone for good (row inactive, `left_at` set).
    async fn participant_left(&self, participant_id: &str);
}
