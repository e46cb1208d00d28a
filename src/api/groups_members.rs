//! Group therapy: members join and leave sessions; leaders record attendance.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::groups::*;
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::schedule::availability;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::groups as store;
use crate::store::notifications::NotificationKind;
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// Result of joining or leaving.
#[derive(Serialize, ToSchema)]
pub struct ParticipationResponse {
    participant: ParticipantView,
    session: GroupSessionView,
    message: String,
}

/// Body of the attendance update.
#[derive(Deserialize, ToSchema)]
pub struct SetAttendance {
    /// `attended`, `no_show` or `registered`.
    attendance_status: String,
}

/// Joins an approved session of one of the caller's communities. Refused when the
/// session is full (409 `session_full`), conflicts with the caller's schedule (409
/// `schedule_conflict`), or the caller is not a member (403 `not_a_member`). The
/// seat count and the insert are atomic per session.
#[utoipa::path(post, path = "/api/group-sessions/{id}/join", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 201, body = ParticipationResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_member"), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_full, schedule_conflict, already_joined, session_not_open, session_cancelled, session_completed, session_started")))]
pub async fn join_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<ParticipationResponse>)> {
    let session = org_session(&state, &caller, &id).await?;
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
    let session = reload(&mut tx, &id).await?;
    if session.status != "approved" {
        return Err(state_conflict(&session));
    }
    if session.start_ms <= now_ms() {
        return Err(ApiError::conflict(
            "session_started",
            "the session has already started",
        ));
    }
    let existing = store::participant_of(&mut tx, &id, &caller.sub).await?;
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
        &mut tx,
        &[caller.sub.as_str()],
        session.start_ms,
        session.end_ms,
    )
    .await?;
    if !busy.is_empty() {
        return Err(schedule_conflict(&busy));
    }
    if !store::take_seat(
        &mut tx,
        &id,
        &caller.sub,
        session.max_participants,
        existing.as_ref(),
    )
    .await?
    {
        return Err(full());
    }
    let participant = store::participant_of(&mut tx, &id, &caller.sub)
        .await?
        .ok_or_else(ApiError::internal)?;
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
    let mut recipients: Vec<String> = store::invitations_of(&mut tx, &id)
        .await?
        .into_iter()
        .filter(|i| i.status == "accepted")
        .map(|i| i.therapist_id)
        .collect();
    recipients.push(session.created_by.clone());
    let mut payload = session_payload(&session);
    payload["user_id"] = json!(caller.sub);
    payload["participant_count"] = json!(session.participant_count);
    let mut sent = Vec::new();
    notify_each(
        &mut tx,
        &mut sent,
        &recipients,
        Some(&caller.sub),
        &session,
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
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.join",
            ("group_session_participant", &participant.id),
        )
        .before(json!({
            "attendance_status": existing.as_ref().map(|p| p.attendance_status.as_str()),
        }))
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

/// Leaves a session before it starts (the registration becomes `cancelled` and the
/// seat is freed).
#[utoipa::path(delete, path = "/api/group-sessions/{id}/leave", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = ParticipationResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "group_session_not_found, not_joined"), (status = 409, body = crate::error::ErrorBody, description = "session_started, session_cancelled, session_completed")))]
pub async fn leave_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ParticipationResponse>> {
    visible_session(&state, &caller, &id).await?;
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let session = reload(&mut tx, &id).await?;
    let participant = store::participant_of(&mut tx, &id, &caller.sub)
        .await?
        .filter(|p| p.attendance_status == "registered")
        .ok_or_else(|| ApiError::not_found("not_joined", "you have not joined this session"))?;
    if session.status == "cancelled" || session.status == "completed" {
        return Err(state_conflict(&session));
    }
    if session.start_ms <= now_ms() {
        return Err(ApiError::conflict(
            "session_started",
            "the session has already started",
        ));
    }
    store::set_attendance(&mut tx, &participant.id, "cancelled").await?;
    let seat = Some((participant.id.as_str(), caller.sub.as_str()));
    let booking = Booking::group(&id, seat, &caller.sub, (session.start_ms, session.end_ms));
    emit(
        &mut tx,
        &session.organization_id,
        EventType::BookingCancelled,
        &booking,
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.leave",
            ("group_session_participant", &participant.id),
        )
        .before(json!({"attendance_status": participant.attendance_status}))
        .after(json!({
            "attendance_status": "cancelled",
            "group_session_id": session.id,
            "user_id": participant.user_id,
        })),
    )
    .await?;
    let participant = store::participant_of(&mut tx, &id, &caller.sub)
        .await?
        .ok_or_else(ApiError::internal)?;
    let session = reload(&mut tx, &id).await?;
    tx.commit().await?;
    tracing::info!(group_session_id = %session.id, participant_id = %participant.id, "group session left");
    Ok(Json(ParticipationResponse {
        participant: participant_view(&participant),
        session: session_view(&session),
        message: "you have left the session".into(),
    }))
}

/// Records a participant's attendance (`attended`, `no_show`, or back to
/// `registered`) — moderators, administrators and accepted therapists.
#[utoipa::path(put, path = "/api/group-sessions/{id}/participants/{participant_id}/attendance", tag = "group therapy",
    params(("id" = String, Path, description = "group session id"), ("participant_id" = String, Path, description = "participant id")),
    request_body = SetAttendance, security(("bearer" = [])),
    responses((status = 200, body = ParticipantView), (status = 400, body = crate::error::ErrorBody, description = "invalid_attendance_status"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "group_session_not_found, participant_not_found"), (status = 409, body = crate::error::ErrorBody, description = "registration_cancelled, session_not_open, session_cancelled")))]
pub async fn set_attendance(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, participant_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetAttendance>,
) -> ApiResult<Json<ParticipantView>> {
    let access = visible_session(&state, &caller, &id).await?;
    if !access.leads(&caller) {
        return Err(ApiError::forbidden(
            "forbidden",
            "only the session's moderators and therapists record attendance",
        ));
    }
    let status = body.attendance_status.trim().to_ascii_lowercase();
    if !matches!(status.as_str(), "attended" | "no_show" | "registered") {
        return Err(ApiError::bad_request(
            "invalid_attendance_status",
            "attendance_status must be attended, no_show or registered",
        ));
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let session = reload(&mut tx, &id).await?;
    if !matches!(session.status.as_str(), "approved" | "completed") {
        return Err(state_conflict(&session));
    }
    let before = store::participant_by_id(&mut tx, &participant_id)
        .await?
        .filter(|p| p.session_id == id)
        .ok_or_else(|| ApiError::not_found("participant_not_found", "participant not found"))?;
    if before.attendance_status == "cancelled" {
        return Err(ApiError::conflict(
            "registration_cancelled",
            "the participant left the session",
        ));
    }
    store::set_attendance(&mut tx, &participant_id, &status).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.attendance",
            ("group_session_participant", &participant_id),
        )
        .before(json!({"attendance_status": before.attendance_status}))
        .after(json!({"attendance_status": status})),
    )
    .await?;
    let after = store::participant_by_id(&mut tx, &participant_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(participant_view(&after)))
}
