//! Shared application state handed to every handler.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::{AuthGuard, JwtKeys};
use crate::store::Store;
use crate::turn::TurnIssuer;

/// Someone in a live room's waiting room, as REST shows them.
pub type WaitingPerson = signaling::protocol::WaitingView;

/// What REST handlers need to tell live rooms about changes made over REST.
/// The signaling hub implements it; tests and `migrate` use [`NoLiveRooms`].
#[async_trait::async_trait]
pub trait LiveControl: Send + Sync {
    /// The waiting room of a session now, longest waiting first. The defaults of the
    /// waiting-room methods answer as a server without live rooms would.
    async fn waiting(&self, _session_id: &str) -> Vec<WaitingPerson> {
        Vec::new()
    }
    /// The person behind a waiting participant id, if that participant waits now.
    async fn waiting_person(&self, _session_id: &str, _participant_id: &str) -> Option<String> {
        None
    }
    /// Lets every waiting connection of a person in (the decision is recorded); false
    /// when none waits.
    async fn admit(&self, _session_id: &str, _person_id: &str) -> bool {
        false
    }
    /// Refuses every waiting connection of a person (the decision is recorded); false
    /// when none waits.
    async fn decline(&self, _session_id: &str, _person_id: &str) -> bool {
        false
    }
    /// The session was ended: tell everyone in its room and disconnect them.
    fn session_ended(&self, session_id: &str);
    /// A participant was removed by the therapist: disconnect them.
    fn participant_removed(&self, session_id: &str, participant_id: &str);
    /// Pushes a notification to the user's open signaling connections, if any.
    fn notify(&self, user_id: &str, notification: serde_json::Value);
    /// The token with id `jti` was revoked: close the sockets opened with it.
    fn token_revoked(&self, jti: &str);
    /// Every token of `subject` was revoked: close the subject's sockets.
    fn subject_revoked(&self, subject: &str);
    /// Whether this server takes new joins now (several nodes: false while Redis,
    /// which places rooms, is out of reach). `/readyz` reports it.
    fn accepting_joins(&self) -> bool {
        true
    }
}

/// A [`LiveControl`] for when no signaling hub runs.
pub struct NoLiveRooms;

#[async_trait::async_trait]
impl LiveControl for NoLiveRooms {
    fn session_ended(&self, _session_id: &str) {}
    fn participant_removed(&self, _session_id: &str, _participant_id: &str) {}
    fn notify(&self, _user_id: &str, _notification: serde_json::Value) {}
    fn token_revoked(&self, _jti: &str) {}
    fn subject_revoked(&self, _subject: &str) {}
}

/// State of the HTTP application; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Database.
    pub store: Store,
    /// Token keys.
    pub jwt: JwtKeys,
    /// TURN credential issuer.
    pub turn: TurnIssuer,
    /// Live rooms (signaling hub).
    pub live: Arc<dyn LiveControl>,
    /// Rate limit and audit of failed authentication.
    pub auth_guard: AuthGuard,
    /// Sign-in settings and the failed sign-in limiter.
    pub accounts: crate::accounts::AccountsConfig,
}

impl FromRef<AppState> for JwtKeys {
    fn from_ref(state: &AppState) -> JwtKeys {
        state.jwt.clone()
    }
}
