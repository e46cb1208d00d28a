//! A user's stored notifications. New ones are also pushed live over signaling.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Query of the listing.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct NotificationQuery {
    /// Only unread ones.
    #[serde(default)]
    unread: bool,
    /// At most this many (1–200, default 50).
    limit: Option<i64>,
}

/// Lists the caller's notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", params(NotificationQuery), security(("bearer" = [])),
    responses((status = 200, description = "`{notifications: [...], unread_count}`"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<NotificationQuery>,
) -> ApiResult<Json<Value>> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 200",
        ));
    }
    let rows = state
        .store
        .notifications_of(&caller.sub, q.unread, limit)
        .await?;
    let unread = state.store.unread_notification_count(&caller.sub).await?;
    Ok(Json(json!({
        "notifications": rows.iter().map(|n| n.to_json()).collect::<Vec<_>>(),
        "unread_count": unread,
    })))
}

/// Marks one of the caller's notifications as read.
#[utoipa::path(post, path = "/api/notifications/{id}/read", tag = "notifications", params(("id" = String, Path, description = "notification id")), security(("bearer" = [])),
    responses((status = 200, description = "the notification"), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let n = state
        .store
        .mark_notification_read(&id, &caller.sub)
        .await?
        .ok_or_else(|| ApiError::not_found("notification_not_found", "notification not found"))?;
    Ok(Json(n.to_json()))
}
