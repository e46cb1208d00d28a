//! Who is in a live room, as the database and the organization's webhook see it: the
//! signaling hub reports a person entering, leaving and waiting (through
//! [`crate::rtc::StoreGatekeeper`]); the participant row changes and the webhook event
//! (`participant.joined`, `participant.left`, `participant.waiting`) is queued in one
//! transaction. A reconnect of someone already in the room is no new entry, and a
//! person who is gone already does not leave twice.

use sqlx::AnyConnection;

use crate::store::participants::{self, Participant};
use crate::store::sessions as session_store;
use crate::store::Store;
use crate::webhooks::{emitters, EventType};

/// The person registered as `person_id` entered the room.
pub async fn joined(store: &Store, person_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    if participants::mark_joined_in(&mut tx, person_id).await? {
        report(&mut tx, person_id, EventType::ParticipantJoined, None).await?;
    }
    tx.commit().await
}

/// The person's last connection left the room for good.
pub async fn left(store: &Store, person_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    if participants::mark_left_in(&mut tx, person_id).await? {
        report(&mut tx, person_id, EventType::ParticipantLeft, Some("left")).await?;
    }
    tx.commit().await
}

/// A connection of the person entered the waiting room (no row changes: the queue is
/// live state of the hub).
pub async fn waiting(store: &Store, person_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    report(&mut tx, person_id, EventType::ParticipantWaiting, None).await?;
    tx.commit().await
}

/// Queues `kind` about the participant, in their session's organization.
async fn report(
    conn: &mut AnyConnection,
    person_id: &str,
    kind: EventType,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    let Some(p): Option<Participant> = participants::participant_in(&mut *conn, person_id).await?
    else {
        return Ok(());
    };
    let Some(session) = session_store::session_in(&mut *conn, &p.session_id).await? else {
        return Ok(());
    };
    emitters::presence(conn, &session.organization_id, kind, &p, reason).await
}
