//! Participant registration, listing and removal.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::sessions::{managed_session, visible_session};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::policy::admit;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::participants::Participant;

/// A participant as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ParticipantView {
    id: String,
    session_id: String,
    user_id: Option<String>,
    guest_id: Option<String>,
    is_guest: bool,
    display_name: String,
    role: String,
    is_active: bool,
    removed: bool,
    registered_at: String,
    joined_at: Option<String>,
    left_at: Option<String>,
}

/// The participants of a session.
#[derive(Serialize, ToSchema)]
pub struct ParticipantList {
    participants: Vec<ParticipantView>,
}

/// Builds the API view of a participant row.
pub fn participant_view(p: &Participant) -> ParticipantView {
    ParticipantView {
        id: p.id.clone(),
        session_id: p.session_id.clone(),
        user_id: p.user_id.clone(),
        guest_id: p.guest_id.clone(),
        is_guest: p.guest_id.is_some(),
        display_name: p.display_name.clone(),
        role: p.role.clone(),
        is_active: p.is_active(),
        removed: p.removed(),
        registered_at: rfc3339(p.registered_at),
        joined_at: p.joined_at.map(rfc3339),
        left_at: p.left_at.map(rfc3339),
    }
}

/// Registers the caller (user or guest) in the session; idempotent: a second call
/// returns the same row with 200 instead of 201. The row becomes active when the
/// caller enters the room over signaling.
#[utoipa::path(post, path = "/api/sessions/{id}/participants", tag = "participants", params(("id" = String, Path, description = "session id")), security(("bearer" = [])),
    responses((status = 201, body = ParticipantView), (status = 200, body = ParticipantView, description = "already registered"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_ended")))]
pub async fn register_participant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<ParticipantView>)> {
    let session = state
        .store
        .session(&id)
        .await?
        .ok_or_else(ApiError::session_not_found)?;
    let entrant = match admit(&state.store, &caller, &session, crate::clock::now_ms()).await {
        // Hide sessions of other tenants entirely.
        Err(err) if err.code == "forbidden" => return Err(ApiError::session_not_found()),
        other => other?,
    };
    let (row, created) = state
        .store
        .register_participant(
            &session.id,
            entrant.registrant(),
            &entrant.display_name,
            entrant.role.as_str(),
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(participant_view(&row))))
}

/// Lists a session's participants (its therapist, administrators and participants only).
#[utoipa::path(get, path = "/api/sessions/{id}/participants", tag = "participants", params(("id" = String, Path, description = "session id")), security(("bearer" = [])),
    responses((status = 200, body = ParticipantList), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_participants(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ParticipantList>> {
    let session = visible_session(&state, &caller, &id).await?;
    let rows = state.store.participants(&session.id).await?;
    Ok(Json(ParticipantList {
        participants: rows.iter().map(participant_view).collect(),
    }))
}

/// Removes a participant: they are disconnected and may not come back.
#[utoipa::path(delete, path = "/api/sessions/{id}/participants/{participant_id}", tag = "participants",
    params(("id" = String, Path, description = "session id"), ("participant_id" = String, Path, description = "participant id")), security(("bearer" = [])),
    responses((status = 200, body = ParticipantView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "already removed or not removable")))]
pub async fn remove_participant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, participant_id)): Path<(String, String)>,
) -> ApiResult<Json<ParticipantView>> {
    let session = managed_session(&state, &caller, &id).await?;
    let participant = state
        .store
        .participant(&participant_id)
        .await?
        .filter(|p| p.session_id == session.id)
        .ok_or_else(|| {
            ApiError::not_found(
                "participant_not_found",
                "participant not found in this session",
            )
        })?;
    if participant.user_id.as_deref() == Some(session.therapist_id.as_str()) {
        return Err(ApiError::conflict(
            "cannot_remove_therapist",
            "the session's therapist cannot be removed",
        ));
    }
    if participant.removed() {
        return Err(ApiError::conflict(
            "participant_already_removed",
            "the participant was already removed",
        ));
    }
    state
        .store
        .mark_participant_removed(&participant.id)
        .await?;
    let mut conn = state.store.pool().acquire().await?;
    audit::record(
        &mut conn,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "session.participant.remove",
            ("participant", &participant.id),
        )
        .before(json!({"is_active": participant.is_active(), "removed": false}))
        .after(json!({"is_active": false, "removed": true})),
    )
    .await?;
    state.live.participant_removed(&session.id, &participant.id);
    let updated = state
        .store
        .participant(&participant.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Json(participant_view(&updated)))
}
