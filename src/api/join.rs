//! Public share-link routes: what a link points to, and guest tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::validate_name;
use super::JsonBody;
use crate::auth::Role;
use crate::clock::{now_ms, rfc3339};
use crate::error::ApiResult;
use crate::rooms::admission::{mint_guest, session_by_link};
use crate::state::AppState;

/// What a share link shows before joining.
#[derive(Serialize, ToSchema)]
pub struct JoinInfo {
    session_id: String,
    session_name: String,
    therapist_name: String,
    expires_at: String,
    kind: String,
    max_participants: i64,
}

/// Body of the guest token request.
#[derive(Deserialize, ToSchema)]
pub struct GuestRequest {
    /// Name shown to others (1–80 characters, no control characters).
    name: String,
}

/// A guest token scoped to one session.
#[derive(Serialize, ToSchema)]
pub struct GuestToken {
    token: String,
    expires_at: String,
    session_id: String,
    guest_id: String,
}

/// Describes the session behind a share link while it is open.
#[utoipa::path(get, path = "/api/join/{share_token}", tag = "share links", params(("share_token" = String, Path, description = "token from the share link")),
    responses((status = 200, body = JoinInfo), (status = 403, body = crate::error::ErrorBody, description = "removed: the link was withdrawn when the therapist removed a guest"), (status = 404, body = crate::error::ErrorBody, description = "session_not_found: unknown, ended or expired link")))]
pub async fn join_info(
    State(state): State<AppState>,
    Path(share_token): Path<String>,
) -> ApiResult<Json<JoinInfo>> {
    let s = session_by_link(&state.store, &share_token, now_ms()).await?;
    Ok(Json(JoinInfo {
        session_id: s.id,
        session_name: s.session_name,
        therapist_name: s.therapist_name,
        expires_at: rfc3339(s.expires_at),
        kind: s.kind,
        max_participants: s.max_participants,
    }))
}

/// Issues a guest token for the session behind a share link.
#[utoipa::path(post, path = "/api/join/{share_token}/guest", tag = "share links", params(("share_token" = String, Path, description = "token from the share link")),
    request_body = GuestRequest,
    responses((status = 201, body = GuestToken), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "therapist_disabled, organization_disabled, guests_not_allowed, removed (withdrawn link)"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn guest_token(
    State(state): State<AppState>,
    Path(share_token): Path<String>,
    JsonBody(body): JsonBody<GuestRequest>,
) -> ApiResult<(StatusCode, Json<GuestToken>)> {
    let name = validate_name(&body.name, 80, "invalid_name", "name")?;
    let (guest, session) = mint_guest(&state.store, &share_token, &name, now_ms()).await?;
    let until_session_end = (session.expires_at - now_ms()) / 1000;
    // Until the session ends (at least a minute), within the guest token lifetime
    // policy (`--max-guest-token-ttl`).
    let ttl = until_session_end
        .max(60)
        .min(state.jwt.policy().max_ttl_secs(Role::Guest));
    let (token, claims) = state.jwt.issue(
        &guest.id,
        Role::Guest,
        Some(&session.organization_id),
        Some(&session.id),
        ttl,
    );
    Ok((
        StatusCode::CREATED,
        Json(GuestToken {
            token,
            expires_at: rfc3339(claims.exp * 1000),
            session_id: session.id,
            guest_id: guest.id,
        }),
    ))
}
