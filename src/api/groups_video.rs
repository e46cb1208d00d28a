//! Group therapy: the TheraRoom video room of a virtual session.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::groups::*;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::rooms::open::{follow_schedule, open_scheduled, ScheduledRoom};
use crate::state::AppState;
use crate::store::groups::{self as store, GroupSession, Invitation};

/// The video room of a virtual group session.
#[derive(Serialize, ToSchema)]
pub struct GroupVideoRoom {
    /// The instant-session id of the room (for the live-video path).
    session_id: String,
    /// Page that joins the room.
    join_url: String,
    group_session_id: String,
    expires_at: String,
}

/// How many people the room of `session` holds: every seat, every accepted therapist
/// and the moderator.
pub(super) fn room_capacity(session: &GroupSession, accepted_therapists: usize) -> i64 {
    session.max_participants + accepted_therapists as i64 + 1
}

/// After a session changed (seats, time, team), makes its video room, if it has one,
/// hold [`room_capacity`] people and close with the session's new end.
pub(super) async fn follow_session(
    conn: &mut AnyConnection,
    caller: &Caller,
    session: &GroupSession,
) -> ApiResult<()> {
    let Some(room) = session.video_session_id.as_deref() else {
        return Ok(());
    };
    let session = reload(conn, &session.id).await?;
    let accepted = store::invitations_of(conn, &session.id)
        .await?
        .iter()
        .filter(|i| i.status == "accepted")
        .count();
    follow_schedule(
        conn,
        caller,
        room,
        ("group_session", &session.id),
        room_capacity(&session, accepted),
        session.end_ms,
    )
    .await?;
    Ok(())
}

/// The TheraRoom video room of a virtual group session, created on first use: a
/// restricted group room that admits only the session's accepted therapists, joined
/// members and moderator, sized by [`room_capacity`].
#[utoipa::path(get, path = "/api/group-sessions/{id}/video", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = GroupVideoRoom), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_invited"), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "not_virtual, external_meeting_link, session_not_open, session_cancelled, session_completed, session_ended")))]
pub async fn group_video_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupVideoRoom>> {
    let access = visible_session(&state, &caller, &id).await?;
    let accepted = access
        .invitation
        .as_ref()
        .is_some_and(|i| i.status == "accepted");
    let seated = state
        .store
        .group_participant_of(&id, &caller.sub)
        .await?
        .is_some_and(|p| matches!(p.attendance_status.as_str(), "registered" | "attended"));
    if !(accepted || seated || access.session.created_by == caller.sub) {
        return Err(ApiError::forbidden(
            "not_invited",
            "only the session's therapists, participants and moderator enter its room",
        ));
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let session = reload(&mut tx, &id).await?;
    if session.session_type != "virtual" {
        return Err(ApiError::conflict(
            "not_virtual",
            "an in-person session has no video room",
        ));
    }
    if session.meeting_link.is_some() {
        return Err(ApiError::conflict(
            "external_meeting_link",
            "this session meets at its meeting_link",
        ));
    }
    if session.status != "approved" {
        return Err(state_conflict(&session));
    }
    if session.end_ms <= now_ms() {
        return Err(ApiError::conflict("session_ended", "the session has ended"));
    }
    let room_id = match session.video_session_id.clone() {
        Some(room) => room,
        None => open_room(&mut tx, &caller, &session).await?,
    };
    tx.commit().await?;
    let room = state
        .store
        .session(&room_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Json(GroupVideoRoom {
        session_id: room.id.clone(),
        join_url: format!("/join/{}", room.share_token),
        group_session_id: session.id,
        expires_at: rfc3339(room.expires_at),
    }))
}

/// Opens the session's restricted room, owned by the therapist who accepted first and
/// sized by [`room_capacity`], and links it to the session.
async fn open_room(
    conn: &mut AnyConnection,
    caller: &Caller,
    session: &GroupSession,
) -> ApiResult<String> {
    let therapists: Vec<Invitation> = store::invitations_of(conn, &session.id)
        .await?
        .into_iter()
        .filter(|i| i.status == "accepted")
        .collect();
    let owner = therapists
        .iter()
        .min_by_key(|i| (i.responded_at, i.id.clone()))
        .ok_or_else(ApiError::internal)?;
    let room = open_scheduled(
        conn,
        caller,
        ScheduledRoom {
            serves: "group_session",
            serves_id: &session.id,
            name: &session.title,
            kind: "group",
            therapist_id: &owner.therapist_id,
            organization_id: &session.organization_id,
            max_participants: room_capacity(session, therapists.len()),
            ends_at: session.end_ms,
        },
    )
    .await?;
    store::link_room(conn, &session.id, &room).await?;
    tracing::info!(group_session_id = %session.id, room_id = %room, "group video room created");
    Ok(room)
}
