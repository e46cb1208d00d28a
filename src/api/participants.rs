//! Participant registration, listing and removal.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::sessions::{managed_session, visible_session};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::denial::Denial;
use crate::error::ApiResult;
use crate::rooms::{admission, removal};
use crate::state::AppState;
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
    responses((status = 201, body = ParticipantView), (status = 200, body = ParticipantView, description = "already registered"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "removed (the therapist removed you; it sticks), therapist_disabled, organization_disabled"), (status = 404, body = crate::error::ErrorBody, description = "session_not_found (also for sessions the caller may not enter)"), (status = 409, body = crate::error::ErrorBody, description = "session_ended")))]
pub async fn register_participant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<ParticipantView>)> {
    let admitted =
        match admission::admit_and_register(&state.store, &caller, &id, crate::clock::now_ms())
            .await
        {
            // Hide sessions of other tenants entirely.
            Err(Denial::Forbidden) => return Err(Denial::SessionNotFound.into()),
            other => other?,
        };
    let (row, created) = (admitted.participant, admitted.newly_registered);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(participant_view(&row))))
}

/// Lists a session's participants (its therapist, administrators and participants only).
#[utoipa::path(get, path = "/api/sessions/{id}/participants", tag = "participants", params(("id" = String, Path, description = "session id")), security(("bearer" = [])),
    responses((status = 200, body = ParticipantList), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "session_not_found, also for removed participants and those who left")))]
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

/// Removes a participant: they are disconnected and may not come back. Removing a
/// guest also withdraws the session's share link (read the new one with
/// `GET /api/sessions/{id}`).
#[utoipa::path(delete, path = "/api/sessions/{id}/participants/{participant_id}", tag = "participants",
    params(("id" = String, Path, description = "session id"), ("participant_id" = String, Path, description = "participant id")), security(("bearer" = [])),
    responses((status = 200, body = ParticipantView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "session_not_found, participant_not_found"), (status = 409, body = crate::error::ErrorBody, description = "participant_already_removed, cannot_remove_therapist")))]
pub async fn remove_participant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, participant_id)): Path<(String, String)>,
) -> ApiResult<Json<ParticipantView>> {
    let session = managed_session(&state, &caller, &id).await?;
    let removal = removal::remove(
        &state.store,
        state.live.as_ref(),
        &caller,
        &session,
        &participant_id,
    )
    .await?;
    let updated = removal.participant;
    Ok(Json(participant_view(&updated)))
}
