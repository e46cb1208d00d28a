//! TURN credentials, for someone about to take part in a session.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Role};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::rooms::admission::may_relay;
use crate::state::AppState;
use crate::turn::TurnCredential;

/// Query of `GET /api/turn-credentials`.
#[derive(Deserialize, IntoParams)]
pub struct TurnQuery {
    /// The session the relay is for; guests may omit it (their token names one).
    session_id: Option<String>,
}

/// Issues a time-limited TURN credential (TURN REST convention, coturn `use-auth-secret`).
/// Guests get one only while they may take part in their session (not removed, not
/// left, session open). Users naming a session get one only if they may enter it;
/// without a session, members of an organization (not super admins) get one for
/// calls they are about to start.
#[utoipa::path(get, path = "/api/turn-credentials", tag = "turn", params(TurnQuery), security(("bearer" = [])),
    responses((status = 200, body = TurnCredential), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "removed, forbidden (left or not a participant), therapist_disabled, organization_disabled"),
        (status = 404, body = crate::error::ErrorBody, description = "session_not_found"),
        (status = 409, body = crate::error::ErrorBody, description = "session_ended")))]
pub async fn turn_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<TurnQuery>,
) -> ApiResult<Json<TurnCredential>> {
    let session_id = match (caller.role, query.session_id, caller.session_id.clone()) {
        (Role::Guest, Some(asked), Some(own)) if asked != own => {
            return Err(ApiError::forbidden(
                "forbidden",
                "your token is for another session",
            ))
        }
        (Role::Guest, _, own) => own,
        (_, asked, _) => asked,
    };
    match session_id {
        Some(id) => may_relay(&state.store, &caller, &id, now_ms()).await?,
        None if caller.role == Role::SuperAdmin => return Err(ApiError::wrong_role()),
        None => {}
    }
    Ok(Json(state.turn.issue(&caller.sub)))
}
