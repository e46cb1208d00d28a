//! Removing someone from a session, so that it sticks.
//!
//! The participant row is marked removed (admission refuses it with `removed` from then
//! on). A removed guest is marked too, so their guest token admits them nowhere, and the
//! share link they came through is withdrawn: the session gets a new link for the
//! people the therapist still wants, and the old one mints no new guest identity
//! (`removed`). All of it, with its audit entry (and `participant.left`
//! for the webhook when they were in the room), is one transaction; then the live room
//! disconnects them.

use serde_json::json;

use crate::auth::Claims;
use crate::denial::Denial;
use crate::random::url_token;
use crate::state::LiveControl;
use crate::store::audit::{self, AuditEntry};
use crate::store::participants::{self, Participant};
use crate::store::sessions::{self as session_store, VideoSession};
use crate::store::Store;
use crate::webhooks::{emitters, EventType};

/// What a removal changed.
#[derive(Debug, Clone)]
pub struct Removal {
    /// The participant row after the removal.
    pub participant: Participant,
    /// True when the session's share link was replaced (a guest was removed).
    pub link_withdrawn: bool,
}

/// Removes `participant_id` from `session` on the order of `actor` (who must manage the
/// session: the caller checks that), then disconnects them from the live room.
pub async fn remove(
    store: &Store,
    live: &dyn LiveControl,
    actor: &Claims,
    session: &VideoSession,
    participant_id: &str,
) -> Result<Removal, Denial> {
    // A connection instance's participant id (`person.instance`) names its person.
    let person_id = participant_id.split('.').next().unwrap_or(participant_id);
    let participant = store
        .participant(person_id)
        .await?
        .filter(|p| p.session_id == session.id)
        .ok_or(Denial::ParticipantNotFound)?;
    if participant.user_id.as_deref() == Some(session.therapist_id.as_str()) {
        return Err(Denial::CannotRemoveTherapist);
    }
    let mut tx = store.pool().begin().await?;
    if !participants::mark_removed(&mut tx, &participant.id).await? {
        return Err(Denial::AlreadyRemoved);
    }
    if participant.is_active() {
        let org = &session.organization_id;
        emitters::presence(
            &mut tx,
            org,
            EventType::ParticipantLeft,
            &participant,
            Some("removed"),
        )
        .await?;
    }
    let link_withdrawn = participant.guest_id.is_some();
    if let Some(guest_id) = &participant.guest_id {
        participants::mark_guest_removed(&mut tx, guest_id).await?;
        session_store::withdraw_share_link(&mut tx, &session.id, &url_token()).await?;
    }
    audit::record(
        &mut tx,
        AuditEntry::by(
            actor,
            Some(&session.organization_id),
            "session.participant.remove",
            ("participant", &participant.id),
        )
        .before(json!({"is_active": participant.is_active(), "removed": false}))
        .after(
            json!({"is_active": false, "removed": true, "share_link_withdrawn": link_withdrawn}),
        ),
    )
    .await?;
    tx.commit().await?;
    live.participant_removed(&session.id, &participant.id);
    tracing::info!(session_id = %session.id, participant_id = %participant.id, link_withdrawn, "participant removed");
    let participant = store
        .participant(&participant.id)
        .await?
        .ok_or(Denial::ParticipantNotFound)?;
    Ok(Removal {
        participant,
        link_withdrawn,
    })
}
