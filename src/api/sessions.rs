//! Instant and group video sessions: create, list, read, end.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::validate_name;
use super::JsonBody;
use crate::auth::{Caller, Role};
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::policy::{can_manage_session, can_view_session, therapist_video_access};
use crate::rooms::open::{open_instant, InstantRoom};
use crate::state::AppState;
use crate::store::sessions::VideoSession;

/// Body of `POST /api/sessions`.
#[derive(Deserialize, ToSchema)]
pub struct CreateSession {
    /// Name shown to participants (1–120 characters).
    session_name: String,
    /// Room capacity, 2–50 (default 2).
    max_participants: Option<i64>,
    /// Lifetime, 5–1440 minutes (default 120).
    expires_in_minutes: Option<i64>,
    /// `instant` or `group` (default: `group` when more than 2 participants).
    kind: Option<String>,
    /// Guests and clients wait until the therapist lets them in (default: on).
    waiting_room: Option<bool>,
}

/// A session as the API shows it. `share_token` and `join_url` are shown only to
/// those who manage the session.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: String,
    session_name: String,
    kind: String,
    therapist_id: String,
    therapist_name: String,
    organization_id: String,
    max_participants: i64,
    /// Guests and clients wait until a host lets them in.
    waiting_room: bool,
    is_active: bool,
    created_at: String,
    expires_at: String,
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    share_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    join_url: Option<String>,
}

/// A list of sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

/// Builds the API view; the link is included when `with_link`.
pub fn session_view(s: &VideoSession, with_link: bool, now_ms: i64) -> SessionView {
    SessionView {
        id: s.id.clone(),
        session_name: s.session_name.clone(),
        kind: s.kind.clone(),
        therapist_id: s.therapist_id.clone(),
        therapist_name: s.therapist_name.clone(),
        organization_id: s.organization_id.clone(),
        max_participants: s.max_participants,
        waiting_room: s.waiting_room(),
        is_active: s.is_open_at(now_ms),
        created_at: rfc3339(s.created_at),
        expires_at: rfc3339(s.expires_at),
        ended_at: s.ended_at.map(rfc3339),
        share_token: with_link.then(|| s.share_token.clone()),
        join_url: with_link.then(|| format!("/join/{}", s.share_token)),
    }
}

/// Starts a session (therapists only, when their video access is enabled).
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", request_body = CreateSession, security(("bearer" = [])),
    responses((status = 201, body = SessionView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "wrong role, therapist_disabled or organization_disabled")))]
pub async fn create_session(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateSession>,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    if caller.role != Role::Therapist {
        return Err(ApiError::forbidden(
            "forbidden",
            "only therapists start video sessions",
        ));
    }
    let name = validate_name(
        &body.session_name,
        120,
        "invalid_session_name",
        "session_name",
    )?;
    let max = body.max_participants.unwrap_or(2);
    if !(2..=50).contains(&max) {
        return Err(ApiError::bad_request(
            "invalid_max_participants",
            "max_participants must be between 2 and 50",
        ));
    }
    let minutes = body.expires_in_minutes.unwrap_or(120);
    if !(5..=1440).contains(&minutes) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_in_minutes must be between 5 and 1440",
        ));
    }
    let kind = match body.kind.as_deref() {
        None if max > 2 => "group",
        None | Some("instant") => "instant",
        Some("group") => "group",
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_kind",
                "kind must be instant or group",
            ))
        }
    };
    let now = crate::clock::now_ms();
    let session = open_instant(
        &state.store,
        &caller,
        InstantRoom {
            name: &name,
            kind,
            max_participants: max,
            expires_in_minutes: minutes,
            waiting_room: body.waiting_room.unwrap_or(true),
        },
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(session_view(&session, true, now))))
}

/// Lists sessions: a therapist's own, a client's joined ones, an organization's for
/// its administrators, all for super admins.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = SessionList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SessionList>> {
    let now = crate::clock::now_ms();
    let (sessions, with_link) = match caller.role {
        Role::Therapist => (state.store.sessions_of_therapist(&caller.sub).await?, true),
        Role::Client => (state.store.sessions_joined_by(&caller.sub).await?, false),
        Role::Organization | Role::Admin => {
            let org = caller.org_id.as_deref().ok_or_else(ApiError::wrong_role)?;
            (state.store.sessions_of_organization(org).await?, true)
        }
        Role::SuperAdmin | Role::Guest => return Err(ApiError::wrong_role()),
    };
    Ok(Json(SessionList {
        sessions: sessions
            .iter()
            .map(|s| session_view(s, with_link, now))
            .collect(),
    }))
}

/// Loads a session the caller may see, or 404 without revealing whether it exists.
pub async fn visible_session(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<VideoSession> {
    let session = state
        .store
        .session(id)
        .await?
        .ok_or_else(ApiError::session_not_found)?;
    if !can_view_session(&state.store, caller, &session).await? {
        return Err(ApiError::session_not_found());
    }
    Ok(session)
}

/// Reads one session.
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "session id")), security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionView>> {
    let session = visible_session(&state, &caller, &id).await?;
    let with_link = can_manage_session(&caller, &session);
    Ok(Json(session_view(
        &session,
        with_link,
        crate::clock::now_ms(),
    )))
}

/// Checks that the caller may manage the session now; a therapist whose video access
/// is off is read-only: they may read their sessions, not start or change them.
pub async fn managed_session(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<VideoSession> {
    let session = visible_session(state, caller, id).await?;
    if !can_manage_session(caller, &session) {
        return Err(ApiError::forbidden(
            "forbidden",
            "only the session's therapist or an organization administrator may do this",
        ));
    }
    if caller.role == Role::Therapist {
        therapist_video_access(&state.store, &caller.sub)
            .await?
            .require()?;
    }
    Ok(session)
}

/// Ends a session: everyone in its room receives `session_ended` and is disconnected.
#[utoipa::path(post, path = "/api/sessions/{id}/end", tag = "sessions", params(("id" = String, Path, description = "session id")), security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_already_ended")))]
pub async fn end_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionView>> {
    let session = managed_session(&state, &caller, &id).await?;
    let ended =
        crate::rooms::end::end(&state.store, state.live.as_ref(), &caller, &session).await?;
    Ok(Json(session_view(&ended, true, crate::clock::now_ms())))
}
