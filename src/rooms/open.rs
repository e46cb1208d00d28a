//! Opening rooms: an instant session a therapist starts, and the restricted rooms of
//! booked 1:1 and group sessions. Each goes through [`crate::store::sessions::insert_room`]
//! with a share token from [`crate::random::url_token`], and is audited — and reported
//! to the organization's webhook as `session.started` — in the same transaction.

use serde_json::json;
use sqlx::AnyConnection;

use super::{MAX_ROOM_PARTICIPANTS, ROOM_GRACE_MS};
use crate::auth::{Claims, Role};
use crate::denial::Denial;
use crate::policy::video_access_of;
use crate::random::url_token;
use crate::store::audit::{self, AuditEntry};
use crate::store::sessions::{self as session_store, NewRoom, VideoSession};
use crate::store::Store;
use crate::webhooks::emitters::{self, Serves};

/// An instant session as a therapist asks for it (already validated by the API).
#[derive(Debug, Clone)]
pub struct InstantRoom<'a> {
    /// Name shown to participants.
    pub name: &'a str,
    /// `instant` or `group`.
    pub kind: &'a str,
    /// Capacity.
    pub max_participants: i64,
    /// Lifetime from now, minutes.
    pub expires_in_minutes: i64,
    /// Guests and clients wait until the therapist lets them in.
    pub waiting_room: bool,
}

/// Starts an instant session for the calling therapist, whose video access must be on.
/// Audited as `session.create`.
pub async fn open_instant(
    store: &Store,
    caller: &Claims,
    room: InstantRoom<'_>,
    now_ms: i64,
) -> Result<VideoSession, Denial> {
    if caller.role != Role::Therapist {
        return Err(Denial::WrongRole);
    }
    let therapist = store
        .therapist(&caller.sub)
        .await?
        .ok_or(Denial::WrongRole)?;
    video_access_of(store, &therapist).await?.require()?;
    let share_token = url_token();
    let mut tx = store.pool().begin().await?;
    let id = session_store::insert_room(
        &mut tx,
        &NewRoom {
            session_name: room.name,
            therapist_id: &therapist.id,
            organization_id: &therapist.organization_id,
            kind: room.kind,
            max_participants: room.max_participants,
            expires_at: now_ms + room.expires_in_minutes * 60_000,
            share_token: &share_token,
            restricted: false,
            waiting_room: room.waiting_room,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            caller,
            Some(&therapist.organization_id),
            "session.create",
            ("session", &id),
        )
        .after(json!({
            "session_name": room.name,
            "max_participants": room.max_participants,
            "kind": room.kind,
            "waiting_room": room.waiting_room,
        })),
    )
    .await?;
    let session = session_store::session_in(&mut tx, &id)
        .await?
        .ok_or(Denial::Store(sqlx::Error::RowNotFound))?;
    emitters::room_opened(&mut tx, &session, Serves::Nothing).await?;
    tx.commit().await?;
    tracing::info!(session_id = %session.id, therapist_id = %therapist.id, "session created");
    Ok(session)
}

/// A restricted room for a scheduled (booked 1:1 or group) session.
#[derive(Debug, Clone)]
pub struct ScheduledRoom<'a> {
    /// What the room serves: `scheduled_session` or `group_session`.
    pub serves: &'a str,
    /// Id of the booked or group session.
    pub serves_id: &'a str,
    /// Name shown to participants (cut to 120 characters here).
    pub name: &'a str,
    /// `instant` (1:1) or `group`.
    pub kind: &'a str,
    /// Therapist who owns the room.
    pub therapist_id: &'a str,
    /// Owning organization.
    pub organization_id: &'a str,
    /// Capacity (2 to [`MAX_ROOM_PARTICIPANTS`]).
    pub max_participants: i64,
    /// Scheduled end of the session, Unix ms: the room closes [`ROOM_GRACE_MS`] later.
    pub ends_at: i64,
}

/// Opens the restricted room of a scheduled session inside the caller's transaction
/// (which also links it to the scheduled session). Audited as `room.open`. Returns the
/// room's id.
pub async fn open_scheduled(
    conn: &mut AnyConnection,
    actor: &Claims,
    room: ScheduledRoom<'_>,
) -> Result<String, sqlx::Error> {
    let name: String = room.name.chars().take(120).collect();
    let expires_at = room.ends_at + ROOM_GRACE_MS;
    let id = session_store::insert_room(
        &mut *conn,
        &NewRoom {
            session_name: &name,
            therapist_id: room.therapist_id,
            organization_id: room.organization_id,
            kind: room.kind,
            max_participants: room.max_participants.clamp(2, MAX_ROOM_PARTICIPANTS),
            expires_at,
            share_token: &url_token(),
            restricted: true,
            waiting_room: false,
        },
    )
    .await?;
    audit::record(
        conn,
        AuditEntry::by(
            actor,
            Some(room.organization_id),
            "room.open",
            (room.serves, room.serves_id),
        )
        .before(json!({"video_session_id": null}))
        .after(json!({
            "video_session_id": id,
            "max_participants": room.max_participants,
            "expires_at": expires_at,
        })),
    )
    .await?;
    if let Some(opened) = session_store::session_in(&mut *conn, &id).await? {
        let serves = Serves::from_kind(room.serves, room.serves_id);
        emitters::room_opened(conn, &opened, serves).await?;
    }
    tracing::info!(room_id = %id, serves = room.serves, serves_id = room.serves_id, "room opened");
    Ok(id)
}

/// Makes an open restricted room follow its scheduled session after an edit: its
/// capacity becomes `max_participants` and it closes [`ROOM_GRACE_MS`] after the new
/// end. Audited as `room.resize` with before and after, inside the caller's
/// transaction. Does nothing for a room that has already ended.
pub async fn follow_schedule(
    conn: &mut AnyConnection,
    actor: &Claims,
    room_id: &str,
    serves: (&str, &str),
    max_participants: i64,
    ends_at: i64,
) -> Result<(), sqlx::Error> {
    let Some(before) = session_store::session_in(&mut *conn, room_id).await? else {
        return Ok(());
    };
    let capacity = max_participants.clamp(2, MAX_ROOM_PARTICIPANTS);
    let expires_at = ends_at + ROOM_GRACE_MS;
    if (before.max_participants, before.expires_at) == (capacity, expires_at)
        || !session_store::set_room_limits(&mut *conn, room_id, capacity, expires_at).await?
    {
        return Ok(());
    }
    audit::record(
        conn,
        AuditEntry::by(actor, Some(&before.organization_id), "room.resize", serves)
            .before(json!({
                "video_session_id": room_id,
                "max_participants": before.max_participants,
                "expires_at": before.expires_at,
            }))
            .after(json!({
                "video_session_id": room_id,
                "max_participants": capacity,
                "expires_at": expires_at,
            })),
    )
    .await?;
    tracing::info!(
        room_id,
        max_participants = capacity,
        "room follows its schedule"
    );
    Ok(())
}
