//! What the hub asks of the application: may this token enter this session, and
//! bookkeeping of participant rows. The binary implements it over its database; tests
//! implement it in memory.

use async_trait::async_trait;

use crate::protocol::{IceServerInfo, SessionSummary};

/// A successful admission: who enters, as which participant.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The person's registration id (stable for the same user or guest in the same
    /// session). The participant id is this, plus the connection instance if any.
    pub person_id: String,
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
    /// May admit and decline waiting participants (the session's therapist, staff).
    pub host: bool,
    /// Must wait in the waiting room until a host admits them.
    pub must_wait: bool,
    /// The session's therapist, for "Dr. X will let you in".
    pub therapist_name: String,
    /// Set when only a participant of the running call may enter (video access was
    /// switched off meanwhile: running calls continue, new joins are refused with this).
    pub resume_only: Option<Refusal>,
}

/// A host's decision about a waiting person, for the application to record (audit log,
/// and the person's admission state so that a reload does not wait again).
#[derive(Debug, Clone, Copy)]
pub struct WaitingDecision<'a> {
    /// The session.
    pub session_id: &'a str,
    /// The waiting person's registration id.
    pub person_id: &'a str,
    /// Admitted (true) or declined (false).
    pub admitted: bool,
    /// The host's token subject.
    pub actor_subject: &'a str,
    /// The host's role name.
    pub actor_role: &'a str,
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
    /// Verifies `token` and checks that its holder may enter `session_id` now, without
    /// registering anyone: the connectivity probe. Returns the ICE servers to use.
    async fn probe(&self, token: &str, session_id: &str) -> Result<Vec<IceServerInfo>, Refusal>;
    /// Records a host's admit or decline of a waiting person.
    async fn waiting_decision(&self, decision: WaitingDecision<'_>) -> Result<(), Refusal>;
    /// A participant of the person entered the room (row becomes active).
    async fn participant_joined(&self, person_id: &str);
    /// The person's last participant is gone for good (row inactive, `left_at` set).
    async fn participant_left(&self, person_id: &str);
    /// A connection of the person entered the waiting room (for the application's own
    /// reporting; nothing to record by default).
    async fn participant_waiting(&self, _person_id: &str) {}
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            code: code.to_string(),
            message: message.into(),
        }
    }
}
