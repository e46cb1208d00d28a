//! TURN credentials for any authenticated caller.

use axum::extract::State;
use axum::Json;

use crate::auth::Caller;
use crate::state::AppState;
use crate::turn::TurnCredential;

/// Issues a time-limited TURN credential (TURN REST convention, coturn `use-auth-secret`).
#[utoipa::path(get, path = "/api/turn-credentials", tag = "turn", security(("bearer" = [])),
    responses((status = 200, body = TurnCredential), (status = 401, body = crate::error::ErrorBody)))]
pub async fn turn_credentials(
    State(state): State<AppState>,
    caller: Caller,
) -> Json<TurnCredential> {
    Json(state.turn.issue(&caller.sub))
}
