//! Group therapy: members leave sessions; leaders record attendance. Joining is in
//! `groups_join`.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::groups::*;
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::group_seats as seats;
use crate::store::groups as store;
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// Result of joining or leaving.
#[derive(Serialize, ToSchema)]
pub struct ParticipationResponse {
    pub(super) participant: ParticipantView,
    pub(super) session: GroupSessionView,
    pub(super) message: String,
}

/// Body of the attendance update.
#[derive(Deserialize, ToSchema)]
pub struct SetAttendance {
    /// `attended`, `no_show` or `registered`.
    attendance_status: String,
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
    let participant = seats::participant_of(&mut tx, &id, &caller.sub)
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
    seats::set_attendance(&mut tx, &participant.id, "cancelled").await?;
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
    let participant = seats::participant_of(&mut tx, &id, &caller.sub)
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
    let before = seats::participant_by_id(&mut tx, &participant_id)
        .await?
        .filter(|p| p.session_id == id)
        .ok_or_else(|| ApiError::not_found("participant_not_found", "participant not found"))?;
    if before.attendance_status == "cancelled" {
        return Err(ApiError::conflict(
            "registration_cancelled",
            "the participant left the session",
        ));
    }
    seats::set_attendance(&mut tx, &participant_id, &status).await?;
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
    let after = seats::participant_by_id(&mut tx, &participant_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(participant_view(&after)))
}
