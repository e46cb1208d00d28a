//! Sign-out: the caller's own token stops working now instead of at its expiry.

use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::{revoke, Caller};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::store::audit::AuditEntry;

/// Revokes the token this request carries: REST refuses it (401 `token_revoked`) and
/// open `/rtc` sockets authenticated with it are closed with `token_revoked`. Other
/// tokens of the same user stay valid.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "the token is revoked"),
        (status = 401, body = crate::error::ErrorBody, description = "`unauthorized` (no token), `invalid_token`, `token_expired`, `token_revoked`, `token_lifetime_exceeded`, `token_not_yet_valid` or `account_disabled`")))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    revoke::revoke_token(&state, &caller).await?;
    let mut conn = state.store.pool().acquire().await?;
    crate::store::audit::record(
        &mut conn,
        AuditEntry::by(
            &caller,
            caller.org_id.as_deref(),
            "auth.logout",
            (caller.role.as_str(), &caller.sub),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
