//! The events a practice's systems can receive, and how one is put in the outbox.
//!
//! Every payload is `{id, type, created_at, organization_id, data}`, and `data` is one of
//! the structs below: ids, roles, kinds and times only — never names, e-mail
//! addresses, notes, chat, session titles or free-text reasons (health data stays in
//! TheraRoom). The structs are the guarantee: nothing else can be serialized into
//! `data`.
//!
//! What each event means (docs/WEBHOOKS.md says the same to receivers):
//! - `session.started`: a video room was opened — an instant session was created, or
//!   the room of a booked 1:1 or group session was opened (the first time someone asked
//!   for its video link). This is the one meaning of "started".
//! - `session.ended`: the room was closed by someone (ended by its therapist, or its
//!   booking or group session was cancelled); rooms that simply expire send nothing.
//! - `participant.joined` / `participant.left`: a person's registration entered / left
//!   the live room (not each reconnect of the same person within the grace period).
//! - `participant.waiting`: a connection of a person entered the waiting room.
//! - `participant.admitted`: a host let a waiting person in.
//! - `booking.created` / `booking.cancelled`: a 1:1 session was booked (one per
//!   occurrence of a series) or cancelled; a member took or gave up a seat in a group
//!   session; a group session was cancelled.
//! - `booking.rescheduled`: a booked 1:1 session (or one occurrence of a series) was
//!   moved to another slot; `start`/`end` are the new times, `previous_start`/
//!   `previous_end` the old ones.
//! - `ping`: sent by `POST /api/organizations/{id}/webhook/test`.

use serde::Serialize;
use serde_json::json;
use sqlx::AnyConnection;

use crate::clock::{now_ms, rfc3339};
use crate::store::webhooks::{self as store, NewEvent};

/// The type of an event (its `type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A video room opened.
    SessionStarted,
    /// A video room was closed.
    SessionEnded,
    /// A person entered the live room.
    ParticipantJoined,
    /// A person left the live room.
    ParticipantLeft,
    /// A person waits in the waiting room.
    ParticipantWaiting,
    /// A host let a waiting person in.
    ParticipantAdmitted,
    /// Something was booked.
    BookingCreated,
    /// A booking was cancelled.
    BookingCancelled,
    /// A booked 1:1 session moved to another slot.
    BookingRescheduled,
    /// A test event.
    Ping,
}

impl EventType {
    /// Every type an endpoint may subscribe to (`ping` is always delivered).
    pub const SUBSCRIBABLE: [EventType; 9] = [
        EventType::SessionStarted,
        EventType::SessionEnded,
        EventType::ParticipantJoined,
        EventType::ParticipantLeft,
        EventType::ParticipantWaiting,
        EventType::ParticipantAdmitted,
        EventType::BookingCreated,
        EventType::BookingCancelled,
        EventType::BookingRescheduled,
    ];

    /// The wire name, e.g. `session.started`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionStarted => "session.started",
            EventType::SessionEnded => "session.ended",
            EventType::ParticipantJoined => "participant.joined",
            EventType::ParticipantLeft => "participant.left",
            EventType::ParticipantWaiting => "participant.waiting",
            EventType::ParticipantAdmitted => "participant.admitted",
            EventType::BookingCreated => "booking.created",
            EventType::BookingCancelled => "booking.cancelled",
            EventType::BookingRescheduled => "booking.rescheduled",
            EventType::Ping => "ping",
        }
    }

    /// Parses a subscribable wire name.
    pub fn parse(name: &str) -> Option<EventType> {
        Self::SUBSCRIBABLE.into_iter().find(|t| t.as_str() == name)
    }
}

/// `data` of `session.started`.
#[derive(Debug, Clone, Serialize)]
pub struct RoomOpened<'a> {
    /// The video room (instant session) id.
    pub session_id: &'a str,
    /// `instant` or `group`.
    pub kind: &'a str,
    /// The therapist who owns the room.
    pub therapist_id: &'a str,
    /// The booked 1:1 session the room serves, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_session_id: Option<&'a str>,
    /// The group session the room serves, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_session_id: Option<&'a str>,
    /// When the room closes at the latest (RFC 3339).
    pub expires_at: String,
}

/// `data` of `session.ended`.
#[derive(Debug, Clone, Serialize)]
pub struct RoomClosed<'a> {
    /// The video room id.
    pub session_id: &'a str,
    /// The therapist who owns the room.
    pub therapist_id: &'a str,
    /// `ended_by_therapist`, `booking_cancelled`, `booking_rescheduled` or `group_session_cancelled`.
    pub reason: &'a str,
    /// When (RFC 3339).
    pub ended_at: String,
}

/// `data` of the `participant.*` events.
#[derive(Debug, Clone, Serialize)]
pub struct Presence<'a> {
    /// The video room id.
    pub session_id: &'a str,
    /// The person's registration id (the `person_id` of signaling).
    pub participant_id: &'a str,
    /// Their role: `therapist`, `client`, `organization`, `admin`, `guest`.
    pub role: &'a str,
    /// The user, for signed-in people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    /// The guest identity, for guests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<&'a str>,
    /// For `participant.left`: `left`, `removed` or `session_ended`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// When (RFC 3339).
    pub at: String,
}

/// `data` of the `booking.*` events.
#[derive(Debug, Clone, Serialize)]
pub struct Booking<'a> {
    /// What was booked: `scheduled_session` (1:1), `group_seat` (a member's seat in a
    /// group session) or `group_session` (the group session as a whole).
    pub booking_type: &'a str,
    /// The booked 1:1 session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_session_id: Option<&'a str>,
    /// The recurring series of a 1:1 session, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_id: Option<&'a str>,
    /// The group session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_session_id: Option<&'a str>,
    /// The seat (group participant registration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_participant_id: Option<&'a str>,
    /// The therapist of a 1:1 session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub therapist_id: Option<&'a str>,
    /// The client of a 1:1 session, or the member taking the seat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    /// Who made the change (user id).
    pub actor_id: &'a str,
    /// Scheduled start (RFC 3339).
    pub start: String,
    /// Scheduled end (RFC 3339).
    pub end: String,
    /// For `booking.rescheduled`: the start before the move (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_start: Option<String>,
    /// For `booking.rescheduled`: the end before the move (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_end: Option<String>,
}

impl<'a> Booking<'a> {
    /// A booked 1:1 session (one occurrence of a series, if any).
    pub fn one_to_one(
        scheduled_session_id: &'a str,
        series_id: Option<&'a str>,
        (therapist_id, client_id): (&'a str, &'a str),
        actor_id: &'a str,
        (start_ms, end_ms): (i64, i64),
    ) -> Booking<'a> {
        Booking {
            booking_type: "scheduled_session",
            scheduled_session_id: Some(scheduled_session_id),
            series_id,
            group_session_id: None,
            group_participant_id: None,
            therapist_id: Some(therapist_id),
            client_id: Some(client_id),
            actor_id,
            start: rfc3339(start_ms),
            end: rfc3339(end_ms),
            previous_start: None,
            previous_end: None,
        }
    }

    /// This booking moved from `[previous_start_ms, previous_end_ms)`.
    pub fn moved_from(mut self, (previous_start_ms, previous_end_ms): (i64, i64)) -> Booking<'a> {
        self.previous_start = Some(rfc3339(previous_start_ms));
        self.previous_end = Some(rfc3339(previous_end_ms));
        self
    }

    /// A member's seat in a group session (`group_participant_id` none for the group
    /// session as a whole).
    pub fn group(
        group_session_id: &'a str,
        seat: Option<(&'a str, &'a str)>,
        actor_id: &'a str,
        (start_ms, end_ms): (i64, i64),
    ) -> Booking<'a> {
        Booking {
            booking_type: if seat.is_some() {
                "group_seat"
            } else {
                "group_session"
            },
            scheduled_session_id: None,
            series_id: None,
            group_session_id: Some(group_session_id),
            group_participant_id: seat.map(|s| s.0),
            therapist_id: None,
            client_id: seat.map(|s| s.1),
            actor_id,
            start: rfc3339(start_ms),
            end: rfc3339(end_ms),
            previous_start: None,
            previous_end: None,
        }
    }
}

/// `data` of `ping`.
#[derive(Debug, Clone, Serialize)]
pub struct Ping<'a> {
    /// Who asked for it (user id).
    pub requested_by: &'a str,
}

/// Whether an endpoint's subscription (`*` or a comma-separated list) takes `kind`.
pub fn subscribed(events: &str, kind: EventType) -> bool {
    kind == EventType::Ping || events == "*" || events.split(',').any(|e| e.trim() == kind.as_str())
}

/// Puts an event in the outbox of `organization_id` inside the caller's transaction,
/// when the organization has an endpoint subscribed to `kind`. Returns the event id
/// when one was queued.
pub async fn emit<T: Serialize>(
    conn: &mut AnyConnection,
    organization_id: &str,
    kind: EventType,
    data: &T,
) -> Result<Option<String>, sqlx::Error> {
    let Some(endpoint) = store::endpoint_in(&mut *conn, organization_id).await? else {
        return Ok(None);
    };
    if !subscribed(&endpoint.events, kind) {
        return Ok(None);
    }
    let id = crate::store::new_id();
    let now = now_ms();
    let payload = json!({
        "id": id,
        "type": kind.as_str(),
        "created_at": rfc3339(now),
        "organization_id": organization_id,
        "data": data,
    })
    .to_string();
    store::insert_event(
        conn,
        NewEvent {
            id: &id,
            organization_id,
            event_type: kind.as_str(),
            payload: &payload,
            now_ms: now,
        },
    )
    .await?;
    tracing::debug!(event_id = %id, event_type = kind.as_str(), organization_id, "webhook event queued");
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ping_is_always_subscribed() {
        for kind in EventType::SUBSCRIBABLE {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("ping"), None);
        assert!(subscribed("booking.created", EventType::Ping));
        assert!(subscribed("*", EventType::SessionEnded));
        assert!(subscribed(
            "session.started,session.ended",
            EventType::SessionEnded
        ));
        assert!(!subscribed("session.started", EventType::SessionEnded));
    }
}
