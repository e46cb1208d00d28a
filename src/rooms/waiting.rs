//! Decisions about the waiting room: a host admits or declines a waiting person, or
//! switches the session's waiting room on or off. The decision is written to the
//! person's registration (so a reload or a second device of an admitted person enters
//! directly, and a declined person stays out) together with its audit entry, in one
//! transaction (with `participant.admitted` for the webhook); the live room acts on it
//! afterwards. The queue itself is live state of
//! the signaling hub.

use serde_json::json;

use crate::denial::Denial;
use crate::store::audit::{self, AuditEntry};
use crate::store::participants;
use crate::store::sessions::{self as session_store, VideoSession};
use crate::store::Store;
use crate::webhooks::{emitters, EventType};

/// Who decides: a host's token subject and role.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    /// Token subject.
    pub subject: &'a str,
    /// Role name.
    pub role: &'a str,
}

impl<'a> Decider<'a> {
    /// An audit entry of this decider's, about `target` in `session`'s organization.
    fn audit_entry(
        self,
        session: &'a VideoSession,
        action: &'a str,
        target: (&'a str, &'a str),
    ) -> AuditEntry<'a> {
        AuditEntry {
            organization_id: Some(&session.organization_id),
            actor_id: self.subject,
            actor_role: self.role,
            action,
            target_type: target.0,
            target_id: target.1,
            before: None,
            after: None,
        }
    }
}

/// Records that `decider` admitted (or declined) the person registered as `person_id`
/// in `session`. Audited as `session.waiting.admit` / `session.waiting.decline`.
pub async fn decide(
    store: &Store,
    decider: Decider<'_>,
    session: &VideoSession,
    person_id: &str,
    admitted: bool,
) -> Result<(), Denial> {
    let mut tx = store.pool().begin().await?;
    if !participants::record_waiting_decision(&mut tx, &session.id, person_id, admitted).await? {
        return Err(Denial::ParticipantNotFound);
    }
    if admitted {
        if let Some(p) = participants::participant_in(&mut tx, person_id).await? {
            let org = &session.organization_id;
            emitters::presence(&mut tx, org, EventType::ParticipantAdmitted, &p, None).await?;
        }
    }
    let (action, outcome) = if admitted {
        ("session.waiting.admit", "admitted")
    } else {
        ("session.waiting.decline", "declined")
    };
    audit::record(
        &mut tx,
        decider
            .audit_entry(session, action, ("participant", person_id))
            .before(json!({"waiting": true}))
            .after(json!({"waiting": false, "outcome": outcome, "session_id": session.id})),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(session_id = %session.id, person_id, outcome, "waiting room decision");
    Ok(())
}

/// Switches the session's waiting room on or off. Audited as
/// `session.waiting_room.update`. The caller admits whoever waits when it goes off.
pub async fn set_waiting_room(
    store: &Store,
    decider: Decider<'_>,
    session: &VideoSession,
    on: bool,
) -> Result<(), Denial> {
    let mut tx = store.pool().begin().await?;
    if !session_store::set_waiting_room(&mut tx, &session.id, on).await? {
        return Err(Denial::SessionNotFound);
    }
    audit::record(
        &mut tx,
        decider
            .audit_entry(
                session,
                "session.waiting_room.update",
                ("session", &session.id),
            )
            .before(json!({"waiting_room": session.waiting_room()}))
            .after(json!({"waiting_room": on})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
