//! Group therapy: a community member joins an approved session. The checks follow
//! the product's rules in order: the session must be open for joining (400), the
//! caller a member of its community (403), not already seated (409), a seat must be
//! left (409 `session_full`) and the caller's calendar free (409
//! `schedule_conflict`). The seat count and the insert are atomic per session; the
//! member gets a stored and live-pushed `group_join_confirmed`, and the session's
//! leaders a `group_session_member_joined`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;
use sqlx::AnyConnection;

use super::groups::*;
use super::groups_members::ParticipationResponse;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::schedule::availability;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::group_seats::{self as seats, GroupParticipant};
use crate::store::groups::{self as store, GroupSession};
use crate::store::notifications::{Notification, NotificationKind};
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// The 400 for a session that is not open for joining (not `approved`).
fn not_open_for_joining(session: &GroupSession) -> ApiError {
    match session.status.as_str() {
        "cancelled" => ApiError::bad_request("session_cancelled", "the session was cancelled"),
        "completed" => ApiError::bad_request("session_completed", "the session is completed"),
        _ => ApiError::bad_request(
            "session_not_open",
            "the session is not open for joining: it waits for its therapists to accept",
        ),
    }
}

/// Joins an approved session of one of the caller's communities. Refused when the
/// session is not approved (400 `session_not_open`, `session_cancelled`,
/// `session_completed`), the caller is not a member (403 `not_a_member`), already
/// holds a seat (409 `already_joined`), the session is full (409 `session_full`) or
/// conflicts with the caller's schedule (409 `schedule_conflict`).
#[utoipa::path(post, path = "/api/group-sessions/{id}/join", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 201, body = ParticipationResponse), (status = 400, body = crate::error::ErrorBody, description = "session_not_open, session_cancelled, session_completed"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_member"), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_full, schedule_conflict, already_joined, session_started")))]
pub async fn join_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<ParticipationResponse>)> {
    let session = org_session(&state, &caller, &id).await?;
    if session.status != "approved" {
        return Err(not_open_for_joining(&session));
    }
    if state
        .store
        .community_role(&session.community_id, &caller.sub)
        .await?
        .is_none()
    {
        return Err(ApiError::forbidden(
            "not_a_member",
            "only members of the session's community may join it",
        ));
    }
    let mut tx = crate::schedule::write_tx(&state.store, &[caller.sub.as_str()]).await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let (participant, before) = take_seat(&mut tx, &caller, &id).await?;
    let session = reload(&mut tx, &id).await?;
    let seat = Some((participant.id.as_str(), caller.sub.as_str()));
    let booking = Booking::group(&id, seat, &caller.sub, (session.start_ms, session.end_ms));
    emit(
        &mut tx,
        &session.organization_id,
        EventType::BookingCreated,
        &booking,
    )
    .await?;
    let mut sent = Vec::new();
    tell_join(&mut tx, &mut sent, &caller, &session, &participant).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.join",
            ("group_session_participant", &participant.id),
        )
        .before(json!({"attendance_status": before}))
        .after(json!({
            "attendance_status": participant.attendance_status,
            "group_session_id": session.id,
            "user_id": participant.user_id,
        })),
    )
    .await?;
    tx.commit().await?;
    push(&state, &sent);
    tracing::info!(group_session_id = %session.id, participant_id = %participant.id, "group session joined");
    Ok((
        StatusCode::CREATED,
        Json(ParticipationResponse {
            participant: participant_view(&participant),
            session: session_view(&session),
            message: "you have joined the session".into(),
        }),
    ))
}

/// Under the session's lock: re-checks that it is open, then seats the caller if
/// they are not seated yet, a seat is left and their calendar is free. Returns the
/// registration and its attendance status before (None when new).
async fn take_seat(
    conn: &mut AnyConnection,
    caller: &Caller,
    id: &str,
) -> ApiResult<(GroupParticipant, Option<String>)> {
    let session = reload(conn, id).await?;
    if session.status != "approved" {
        return Err(not_open_for_joining(&session));
    }
    if session.start_ms <= now_ms() {
        return Err(ApiError::conflict(
            "session_started",
            "the session has already started",
        ));
    }
    let existing = seats::participant_of(conn, id, &caller.sub).await?;
    if existing
        .as_ref()
        .is_some_and(|p| p.attendance_status != "cancelled")
    {
        return Err(ApiError::conflict(
            "already_joined",
            "you have already joined this session",
        ));
    }
    let full = || ApiError::conflict("session_full", "the session is full");
    if session.participant_count >= session.max_participants {
        return Err(full());
    }
    let busy = availability::conflicts(
        conn,
        &[caller.sub.as_str()],
        session.start_ms,
        session.end_ms,
    )
    .await?;
    if !busy.is_empty() {
        return Err(schedule_conflict(&busy));
    }
    let seated = seats::take_seat(
        conn,
        id,
        &caller.sub,
        session.max_participants,
        existing.as_ref(),
    )
    .await?;
    if !seated {
        return Err(full());
    }
    let participant = seats::participant_of(conn, id, &caller.sub)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((participant, existing.map(|p| p.attendance_status)))
}

/// The join's notifications: the member's own confirmation (`group_join_confirmed`,
/// the seat and the session's time), and `group_session_member_joined` to the
/// accepted therapists and the moderator.
async fn tell_join(
    conn: &mut AnyConnection,
    sent: &mut Vec<Notification>,
    caller: &Caller,
    session: &GroupSession,
    participant: &GroupParticipant,
) -> ApiResult<()> {
    let mut payload = session_payload(session);
    payload["participant_id"] = json!(participant.id);
    payload["ends_at"] = json!(rfc3339(session.end_ms));
    notify_each(
        conn,
        sent,
        std::slice::from_ref(&caller.sub),
        None,
        session,
        NotificationKind::GroupJoinConfirmed,
        "You joined a group session",
        &format!(
            "You have a seat in \"{}\" on {}.",
            session.title,
            rfc3339(session.start_ms)
        ),
        payload,
    )
    .await?;
    let mut recipients: Vec<String> = store::invitations_of(conn, &session.id)
        .await?
        .into_iter()
        .filter(|i| i.status == "accepted")
        .map(|i| i.therapist_id)
        .collect();
    recipients.push(session.created_by.clone());
    let mut payload = session_payload(session);
    payload["user_id"] = json!(caller.sub);
    payload["participant_count"] = json!(session.participant_count);
    notify_each(
        conn,
        sent,
        &recipients,
        Some(&caller.sub),
        session,
        NotificationKind::GroupSessionMemberJoined,
        "New participant",
        &format!(
            "{} joined \"{}\" ({} of {} seats taken).",
            participant.display_name,
            session.title,
            session.participant_count,
            session.max_participants
        ),
        payload,
    )
    .await?;
    Ok(())
}
