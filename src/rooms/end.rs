//! Ending a session: the row closes, every participant row closes, the audit entry and
//! the webhook events (`participant.left` for those in the room, `session.ended`) are
//! written in the same transaction, then everyone in the live room is told and
//! disconnected. [`close_in`] is the one way a room is closed, also when its booking or
//! group session is cancelled.

use serde_json::json;
use sqlx::AnyConnection;

use crate::auth::Claims;
use crate::denial::Denial;
use crate::state::LiveControl;
use crate::store::audit::{self, AuditEntry};
use crate::store::participants;
use crate::store::sessions::{self as session_store, VideoSession};
use crate::store::Store;
use crate::webhooks::emitters;

/// Ends `session` on the order of `actor` (who must manage it: the caller checks that).
/// Returns the session as it is now.
pub async fn end(
    store: &Store,
    live: &dyn LiveControl,
    actor: &Claims,
    session: &VideoSession,
) -> Result<VideoSession, Denial> {
    let mut tx = store.pool().begin().await?;
    if !close_in(&mut tx, &session.id, "ended_by_therapist").await? {
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

/// Closes the room `room_id` inside the caller's transaction (the session and every
/// participant row) and queues its webhook events, saying why (`ended_by_therapist`,
/// `booking_cancelled`, `group_session_cancelled`). False when it was closed already.
/// The caller tells the live room after committing.
pub async fn close_in(
    conn: &mut AnyConnection,
    room_id: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let present = participants::active_in(&mut *conn, room_id).await?;
    if !session_store::end_session(&mut *conn, room_id).await? {
        return Ok(false);
    }
    if let Some(closed) = session_store::session_in(&mut *conn, room_id).await? {
        emitters::room_closed(conn, &closed, &present, reason).await?;
    }
    Ok(true)
}
