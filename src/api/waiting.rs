//! The waiting room over REST: list who waits, admit or decline them, and switch a
//! session's waiting room on or off (`PATCH /api/sessions/{id}`), so that a back office
//! or a script can do what the therapist does in the call. The rules are in
//! [`crate::rooms::waiting`]; the queue is the live room's.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sessions::{managed_session, session_view, SessionView};
use super::JsonBody;
use crate::auth::Caller;
use crate::denial::Denial;
use crate::error::ApiResult;
use crate::rooms::waiting::{decide, set_waiting_room, Decider};
use crate::state::AppState;
use crate::store::sessions::VideoSession;

/// Someone in the waiting room.
#[derive(Serialize, ToSchema)]
pub struct WaitingView {
    /// Their participant id once admitted (use it to admit or decline).
    participant_id: String,
    /// Their registration.
    person_id: String,
    display_name: String,
    role: String,
    is_guest: bool,
    /// When they started waiting, RFC 3339.
    since: String,
}

/// The waiting room of a session, longest waiting first.
#[derive(Serialize, ToSchema)]
pub struct WaitingList {
    waiting: Vec<WaitingView>,
}

/// The outcome of an admit or decline.
#[derive(Serialize, ToSchema)]
pub struct WaitingOutcome {
    /// The person decided about (every waiting connection of theirs).
    person_id: String,
    /// `admitted` or `declined`.
    outcome: &'static str,
}

/// Body of `PATCH /api/sessions/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSession {
    /// Switch the waiting room on or off; off admits everyone waiting.
    waiting_room: Option<bool>,
}

fn decider(caller: &Caller) -> Decider<'_> {
    Decider {
        subject: &caller.sub,
        role: caller.role.as_str(),
    }
}

/// Lists the session's waiting room.
#[utoipa::path(get, path = "/api/sessions/{id}/waiting", tag = "waiting room", params(("id" = String, Path, description = "session id")), security(("bearer" = [])),
    responses((status = 200, body = WaitingList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_waiting(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WaitingList>> {
    let session = managed_session(&state, &caller, &id).await?;
    let waiting = state
        .live
        .waiting(&session.id)
        .await
        .into_iter()
        .map(|w| WaitingView {
            participant_id: w.participant_id,
            person_id: w.person_id,
            display_name: w.display_name,
            role: w.role,
            is_guest: w.is_guest,
            since: w.since,
        })
        .collect();
    Ok(Json(WaitingList { waiting }))
}

/// Admits or declines the person waiting as `participant_id`.
async fn decide_waiting(
    state: &AppState,
    caller: &Caller,
    session: &VideoSession,
    participant_id: &str,
    admitted: bool,
) -> ApiResult<Json<WaitingOutcome>> {
    let person_id = state
        .live
        .waiting_person(&session.id, participant_id)
        .await
        .ok_or(Denial::NotWaiting)?;
    decide(&state.store, decider(caller), session, &person_id, admitted).await?;
    let acted = if admitted {
        state.live.admit(&session.id, &person_id).await
    } else {
        state.live.decline(&session.id, &person_id).await
    };
    if !acted {
        // They left the queue between the lookup and now; the decision stands.
        return Err(Denial::NotWaiting.into());
    }
    Ok(Json(WaitingOutcome {
        person_id,
        outcome: if admitted { "admitted" } else { "declined" },
    }))
}

/// Lets a waiting person in (every waiting connection of theirs); recorded in the
/// audit log, and they enter directly from then on.
#[utoipa::path(post, path = "/api/sessions/{id}/waiting/{participant_id}/admit", tag = "waiting room",
    params(("id" = String, Path, description = "session id"), ("participant_id" = String, Path, description = "waiting participant id")), security(("bearer" = [])),
    responses((status = 200, body = WaitingOutcome), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "session_not_found, not_waiting")))]
pub async fn admit_waiting(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, participant_id)): Path<(String, String)>,
) -> ApiResult<Json<WaitingOutcome>> {
    let session = managed_session(&state, &caller, &id).await?;
    decide_waiting(&state, &caller, &session, &participant_id, true).await
}

/// Refuses a waiting person; they stay refused in this session. Audited.
#[utoipa::path(post, path = "/api/sessions/{id}/waiting/{participant_id}/decline", tag = "waiting room",
    params(("id" = String, Path, description = "session id"), ("participant_id" = String, Path, description = "waiting participant id")), security(("bearer" = [])),
    responses((status = 200, body = WaitingOutcome), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "session_not_found, not_waiting")))]
pub async fn decline_waiting(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, participant_id)): Path<(String, String)>,
) -> ApiResult<Json<WaitingOutcome>> {
    let session = managed_session(&state, &caller, &id).await?;
    decide_waiting(&state, &caller, &session, &participant_id, false).await
}

/// Changes a session: today, its waiting room switch. Switching it off admits everyone
/// waiting (each admission audited).
#[utoipa::path(patch, path = "/api/sessions/{id}", tag = "sessions", request_body = UpdateSession, params(("id" = String, Path, description = "session id")), security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_ended")))]
pub async fn update_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateSession>,
) -> ApiResult<Json<SessionView>> {
    let session = managed_session(&state, &caller, &id).await?;
    let now = crate::clock::now_ms();
    if !session.is_open_at(now) {
        return Err(Denial::SessionEnded.into());
    }
    if let Some(on) = body.waiting_room {
        set_waiting_room(&state.store, decider(&caller), &session, on).await?;
        if !on {
            // One decision per person, whatever number of connections they wait with.
            let people: std::collections::BTreeSet<String> = state
                .live
                .waiting(&session.id)
                .await
                .into_iter()
                .map(|w| w.person_id)
                .collect();
            for person in people {
                decide(&state.store, decider(&caller), &session, &person, true).await?;
                state.live.admit(&session.id, &person).await;
            }
        }
    }
    let updated = state
        .store
        .session(&session.id)
        .await?
        .ok_or(Denial::SessionNotFound)?;
    Ok(Json(session_view(&updated, true, now)))
}
