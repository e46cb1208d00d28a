//! The events of video rooms, built from the rows the rules already hold, so each call
//! site is one line inside its own transaction.

use sqlx::AnyConnection;

use super::events::{emit, EventType, Presence, RoomClosed, RoomOpened};
use crate::clock::{now_ms, rfc3339};
use crate::store::participants::Participant;
use crate::store::sessions::VideoSession;

/// What a room serves, for `session.started`.
#[derive(Debug, Clone, Copy)]
pub enum Serves<'a> {
    /// An instant session: nothing else.
    Nothing,
    /// A booked 1:1 session.
    Scheduled(&'a str),
    /// A group session.
    Group(&'a str),
}

impl<'a> Serves<'a> {
    /// From the `serves` pair of [`crate::rooms::open::ScheduledRoom`].
    pub fn from_kind(serves: &str, id: &'a str) -> Serves<'a> {
        match serves {
            "scheduled_session" => Serves::Scheduled(id),
            "group_session" => Serves::Group(id),
            _ => Serves::Nothing,
        }
    }
}

/// `session.started` for a room just opened.
pub async fn room_opened(
    conn: &mut AnyConnection,
    session: &VideoSession,
    serves: Serves<'_>,
) -> Result<(), sqlx::Error> {
    let (scheduled_session_id, group_session_id) = match serves {
        Serves::Nothing => (None, None),
        Serves::Scheduled(id) => (Some(id), None),
        Serves::Group(id) => (None, Some(id)),
    };
    let data = RoomOpened {
        session_id: &session.id,
        kind: &session.kind,
        therapist_id: &session.therapist_id,
        scheduled_session_id,
        group_session_id,
        expires_at: rfc3339(session.expires_at),
    };
    emit(
        conn,
        &session.organization_id,
        EventType::SessionStarted,
        &data,
    )
    .await
    .map(|_| ())
}

/// `session.ended`, with `participant.left` (`session_ended`) for each of `present`
/// (those in the room when it closed).
pub async fn room_closed(
    conn: &mut AnyConnection,
    session: &VideoSession,
    present: &[Participant],
    reason: &str,
) -> Result<(), sqlx::Error> {
    for p in present {
        presence(
            conn,
            &session.organization_id,
            EventType::ParticipantLeft,
            p,
            Some("session_ended"),
        )
        .await?;
    }
    let data = RoomClosed {
        session_id: &session.id,
        therapist_id: &session.therapist_id,
        reason,
        ended_at: rfc3339(session.ended_at.unwrap_or_else(now_ms)),
    };
    emit(
        conn,
        &session.organization_id,
        EventType::SessionEnded,
        &data,
    )
    .await
    .map(|_| ())
}

/// A `participant.*` event about `p` in a room of `organization_id`.
pub async fn presence(
    conn: &mut AnyConnection,
    organization_id: &str,
    kind: EventType,
    p: &Participant,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    let data = Presence {
        session_id: &p.session_id,
        participant_id: &p.id,
        role: &p.role,
        user_id: p.user_id.as_deref(),
        guest_id: p.guest_id.as_deref(),
        reason,
        at: rfc3339(now_ms()),
    };
    emit(conn, organization_id, kind, &data).await.map(|_| ())
}
