//! Sign-out: the caller's access token and the sign-in behind their refresh cookie stop
//! working now instead of at their expiry, and the cookie is cleared.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::auth::clearing_cookie;
use super::auth_cookie;
use crate::accounts::signin;
use crate::auth::{revoke, Caller};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::AuditEntry;

/// Revokes the bearer token this request carries (REST refuses it with 401
/// `token_revoked`; open `/rtc` sockets authenticated with it are closed with
/// `token_revoked`) and the refresh token family of the cookie. Either suffices; a
/// refused bearer token still ends the cookie's sign-in. Other sign-ins of the same user stay.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "the token and the cookie's sign-in are revoked; the cookie is cleared"),
        (status = 401, body = crate::error::ErrorBody, description = "`unauthorized` (neither a token nor a cookie), `invalid_token`, `token_expired`, `token_revoked`, `token_lifetime_exceeded`, `token_not_yet_valid` or `account_disabled`")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
) -> ApiResult<(
    StatusCode,
    [(axum::http::HeaderName, axum::http::HeaderValue); 1],
)> {
    let refresh = auth_cookie::read(&headers);
    // An expired or otherwise refused bearer token still lets the cookie's sign-in end.
    let caller = match caller {
        Ok(caller) => Some(caller),
        Err(err) if refresh.is_none() => return Err(err),
        Err(_) => None,
    };
    if let Some(token) = refresh {
        signin::end(&state.store, &token).await?;
    }
    if let Some(caller) = caller {
        revoke::revoke_token(&state, &caller).await?;
        let entry = AuditEntry::by(
            &caller,
            caller.org_id.as_deref(),
            "auth.logout",
            (caller.role.as_str(), &caller.sub),
        );
        state.store.audit(entry).await?;
    }
    Ok((StatusCode::NO_CONTENT, [clearing_cookie(&state)]))
}
