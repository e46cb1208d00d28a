//! Shared application state handed to every handler.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::{AuthGuard, JwtKeys};
use crate::store::Store;
use crate::turn::TurnIssuer;

/// What REST handlers need to tell live rooms about changes made over REST.
/// The signaling hub implements it; tests and `migrate` use [`NoLiveRooms`].
pub trait LiveControl: Send + Sync {
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
}

/// A [`LiveControl`] for when no signaling hub runs.
pub struct NoLiveRooms;

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
}

impl FromRef<AppState> for JwtKeys {
    fn from_ref(state: &AppState) -> JwtKeys {
        state.jwt.clone()
    }
}
