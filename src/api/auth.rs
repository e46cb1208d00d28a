//! Sign-in over REST: e-mail + password for a short access token and a rotating
//! refresh token in a cookie, the refresh itself, and "who am I". The rules are in
//! [`crate::accounts`] and `docs/ACCOUNTS.md`.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{auth_cookie, JsonBody};
use crate::accounts::me::{me_of, Me};
use crate::accounts::signin::{self, SignedIn};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The client's address (the sign-in limiter's key), when the server knows it.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(crate::auth::client_ip(parts)))
    }
}

/// Body of `POST /api/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// Also put the refresh token in the answer (scripts without a cookie jar).
    #[serde(default)]
    return_refresh_token: bool,
}

/// Body of `POST /api/auth/refresh` for clients without the cookie.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: Option<String>,
    /// Also put the new refresh token in the answer.
    #[serde(default)]
    return_refresh_token: bool,
}

/// A signed-in session: the access token and who it is for.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Only when asked for with `return_refresh_token`; otherwise in the cookie only.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    me: Me,
}

/// The answer to a sign-in: the session, with the cookie set.
pub type SessionAnswer = (HeaderMap, Json<SessionView>);

/// Turns a [`SignedIn`] into the answer: the cookie, and the body for the caller.
pub async fn session_answer(
    state: &AppState,
    signed: SignedIn,
    return_refresh_token: bool,
) -> ApiResult<SessionAnswer> {
    let me = me_of(&state.store, &signed.user_id).await?;
    let mut headers = HeaderMap::new();
    let max_age = crate::accounts::REFRESH_TTL.as_secs();
    headers.insert(
        SET_COOKIE,
        auth_cookie::set(&signed.refresh_token, max_age, state.accounts.secure_cookie),
    );
    let view = SessionView {
        access_token: signed.access_token,
        token_type: "Bearer",
        expires_in: signed.expires_in,
        refresh_token: return_refresh_token.then_some(signed.refresh_token),
        me,
    };
    Ok((headers, Json(view)))
}

/// Signs in with e-mail and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = SessionView, description = "signed in; the refresh token is in the `theraroom_refresh` cookie"),
        (status = 401, body = crate::error::ErrorBody, description = "`invalid_credentials` (unknown e-mail, wrong password and deactivated account alike)"),
        (status = 429, body = crate::error::ErrorBody, description = "`too_many_attempts`, with `Retry-After`")))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(address): ClientIp,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<SessionAnswer> {
    let signed = signin::sign_in(
        &state.store,
        &state.jwt,
        &state.accounts,
        &body.email,
        &body.password,
        address,
    )
    .await?;
    session_answer(&state, signed, body.return_refresh_token).await
}

/// Exchanges the refresh token (cookie, or body) for a new access and refresh token.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body(content = RefreshRequest, description = "optional: only for clients without the cookie"),
    responses(
        (status = 200, body = SessionView),
        (status = 401, body = crate::error::ErrorBody, description = "`invalid_refresh_token` (unknown, expired, revoked, or used before: then its whole sign-in is revoked); the cookie is cleared")))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<SessionAnswer, (HeaderMap, ApiError)> {
    let body: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| {
            (
                HeaderMap::new(),
                ApiError::bad_request("invalid_json", err.to_string()),
            )
        })?
    };
    let token = body.refresh_token.or_else(|| auth_cookie::read(&headers));
    let clear = || {
        let mut headers = HeaderMap::new();
        headers.insert(SET_COOKIE, auth_cookie::clear(state.accounts.secure_cookie));
        headers
    };
    let outcome = async {
        let token = token.ok_or(crate::accounts::AccountError::InvalidRefreshToken)?;
        let signed = signin::refresh(&state.store, &state.jwt, &token).await?;
        session_answer(&state, signed, body.return_refresh_token).await
    };
    outcome.await.map_err(|err: ApiError| (clear(), err))
}

/// Who the caller is: account, organization, and for therapists the video access
/// decision and blog permission.
#[utoipa::path(get, path = "/api/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "guests have no account")))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    Ok(Json(crate::accounts::me::me(&state.store, &caller).await?))
}

/// Clears the refresh cookie (sign-out).
pub fn clearing_cookie(state: &AppState) -> (axum::http::HeaderName, HeaderValue) {
    (SET_COOKIE, auth_cookie::clear(state.accounts.secure_cookie))
}
