//! Ending a session: the row closes, every participant row closes, the audit entry is
//! written in the same transaction, then everyone in the live room is told and
//! disconnected.

use serde_json::json;

use crate::auth::Claims;
use crate::denial::Denial;
use crate::state::LiveControl;
use crate::store::audit::{self, AuditEntry};
use crate::store::sessions::{self as session_store, VideoSession};
use crate::store::Store;

/// Ends `session` on the order of `actor` (who must manage it: the caller checks that).
/// Returns the session as it is now.
pub async fn end(
    store: &Store,
    live: &dyn LiveControl,
    actor: &Claims,
    session: &VideoSession,
) -> Result<VideoSession, Denial> {
    let mut tx = store.pool().begin().await?;
    if !session_store::end_session(&mut tx, &session.id).await? {
        return Err(Denial::AlreadyEnded);
    }
    audit::record(
        &mut tx,
        AuditEntry::by(
            actor,
            Some(&session.organization_id),
            "session.end",
            ("session", &session.id),
        )
        .before(json!({"is_active": true}))
        .after(json!({"is_active": false})),
    )
    .await?;
    let ended = session_store::session_in(&mut tx, &session.id)
        .await?
        .ok_or(Denial::SessionNotFound)?;
    tx.commit().await?;
    live.session_ended(&session.id);
    tracing::info!(session_id = %session.id, "session ended");
    Ok(ended)
}
