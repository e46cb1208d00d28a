//! An organization's webhook: its endpoint, a test event, and the delivery log.
//!
//! Organization administrators (roles `organization`, `admin`) of that organization and
//! super admins. Other roles get 403 `forbidden`; another organization answers 404
//! `organization_not_found` like one that does not exist.
//!
//! Which URLs are accepted depends on the server's [`UrlPolicy`], handed to the router
//! as an `Extension` by `serve` (`--webhooks-allow-insecure-loopback`); without one,
//! only public `https://` endpoints are.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::guard::hidden_org;
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::store::webhooks::{AttemptRow, DeliveryRow, Endpoint};
use crate::webhooks::endpoint::{self, masked, subscribed_types, EndpointError, EndpointInput};
use crate::webhooks::UrlPolicy;

/// Default and largest page of the delivery log.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// Body of `PUT /api/organizations/{id}/webhook`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// `https://` URL of a public host.
    url: String,
    /// HMAC secret (32–256 printable characters); generated when absent for a new
    /// webhook, kept for an existing one.
    secret: Option<String>,
    /// Event types to receive; absent or empty for all.
    events: Option<Vec<String>>,
    /// Replace the current secret by a generated one.
    #[serde(default)]
    rotate_secret: bool,
}

/// A webhook endpoint as shown.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    organization_id: String,
    url: String,
    /// Subscribed event types (`ping` is always sent).
    events: Vec<&'static str>,
    /// True when subscribed to every type, also types added later.
    all_events: bool,
    /// The secret, masked (`whsec_****abcd`).
    secret_masked: String,
    /// The secret in clear: only in the answer to the `PUT` that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    created_at: String,
    updated_at: String,
}

/// Answer of the test route.
#[derive(Serialize, ToSchema)]
pub struct PingQueued {
    /// Id of the queued `ping` event (`TheraRoom-Event-Id`).
    event_id: String,
}

/// One attempt of a delivery.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    attempt: i64,
    at: String,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

/// One event of the delivery log.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    /// `pending`, `delivered`, `failed` (retries used up) or `cancelled` (webhook removed).
    status: String,
    attempts: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    /// When the next attempt is due (pending events only).
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
    attempt_log: Vec<AttemptView>,
}

/// A page of the delivery log.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; null on the last page.
    next_before: Option<String>,
}

/// Query of the delivery log.
#[derive(Deserialize, utoipa::IntoParams)]
#[allow(dead_code)]
pub struct DeliveryQuery {
    /// At most this many (1–100, default 20).
    limit: Option<i64>,
    /// Event id: only events older than it (the previous page's `next_before`).
    before: Option<String>,
}

/// The organization `org_id` if the caller administers it (see [`hidden_org`]).
async fn own_org(state: &AppState, caller: &Caller, org_id: &str) -> ApiResult<String> {
    Ok(hidden_org(&state.store, caller, org_id).await?.id)
}

fn api_error(err: EndpointError) -> ApiError {
    match err {
        EndpointError::InvalidUrl(m) => ApiError::bad_request("invalid_webhook_url", m),
        EndpointError::InvalidEvents(m) => ApiError::bad_request("invalid_webhook_events", m),
        EndpointError::InvalidSecret(m) => ApiError::bad_request("invalid_webhook_secret", m),
        EndpointError::NotFound => no_webhook(),
        EndpointError::Store(e) => e.into(),
    }
}

fn no_webhook() -> ApiError {
    ApiError::not_found("webhook_not_found", "this organization has no webhook")
}

fn view(e: &Endpoint, secret_shown: bool) -> WebhookView {
    WebhookView {
        organization_id: e.organization_id.clone(),
        url: e.url.clone(),
        events: subscribed_types(&e.events),
        all_events: e.events == "*",
        secret_masked: masked(&e.secret),
        secret: secret_shown.then(|| e.secret.clone()),
        created_at: rfc3339(e.created_at),
        updated_at: rfc3339(e.updated_at),
    }
}

/// Sets the organization's webhook endpoint (creating or replacing it).
#[utoipa::path(put, path = "/api/organizations/{id}/webhook", tag = "webhooks",
    params(("id" = String, Path, description = "organization id")),
    request_body = WebhookInput, security(("bearer" = [])),
    responses((status = 200, body = WebhookView, description = "the webhook; `secret` in clear when it was set or generated now"),
        (status = 400, body = ErrorBody, description = "invalid_json, invalid_webhook_url, invalid_webhook_events, invalid_webhook_secret"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_webhook(
    State(state): State<AppState>,
    policy: Option<Extension<UrlPolicy>>,
    caller: Caller,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<WebhookInput>,
) -> ApiResult<Json<WebhookView>> {
    let org = own_org(&state, &caller, &org_id).await?;
    let policy = policy.map(|Extension(p)| p).unwrap_or_default();
    let input = EndpointInput {
        url: &body.url,
        secret: body.secret.as_deref(),
        events: body.events.as_deref(),
        rotate_secret: body.rotate_secret,
    };
    let configured = endpoint::configure(&state.store, &caller, &org, policy, input)
        .await
        .map_err(api_error)?;
    Ok(Json(view(&configured.endpoint, configured.secret_changed)))
}

/// Reads the organization's webhook endpoint (secret masked).
#[utoipa::path(get, path = "/api/organizations/{id}/webhook", tag = "webhooks",
    params(("id" = String, Path, description = "organization id")), security(("bearer" = [])),
    responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "organization_not_found, webhook_not_found")))]
pub async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    let org = own_org(&state, &caller, &org_id).await?;
    let found = state.store.webhook_endpoint(&org).await?;
    Ok(Json(view(&found.ok_or_else(no_webhook)?, false)))
}

/// Removes the organization's webhook; undelivered events are cancelled.
#[utoipa::path(delete, path = "/api/organizations/{id}/webhook", tag = "webhooks",
    params(("id" = String, Path, description = "organization id")), security(("bearer" = [])),
    responses((status = 204, description = "removed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "organization_not_found, webhook_not_found")))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<StatusCode> {
    let org = own_org(&state, &caller, &org_id).await?;
    endpoint::remove(&state.store, &caller, &org)
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a `ping` event for the organization's webhook.
#[utoipa::path(post, path = "/api/organizations/{id}/webhook/test", tag = "webhooks",
    params(("id" = String, Path, description = "organization id")), security(("bearer" = [])),
    responses((status = 202, body = PingQueued), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "organization_not_found, webhook_not_found")))]
pub async fn test_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<(StatusCode, Json<PingQueued>)> {
    let org = own_org(&state, &caller, &org_id).await?;
    let event_id = endpoint::ping(&state.store, &caller, &org)
        .await
        .map_err(api_error)?;
    Ok((StatusCode::ACCEPTED, Json(PingQueued { event_id })))
}

/// The delivery log, newest first: every event with its attempts.
#[utoipa::path(get, path = "/api/organizations/{id}/webhook/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "organization id"), DeliveryQuery), security(("bearer" = [])),
    responses((status = 200, body = DeliveryPage), (status = 400, body = ErrorBody, description = "invalid_limit, invalid_cursor"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<DeliveryPage>> {
    let org = own_org(&state, &caller, &org_id).await?;
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be between 1 and {MAX_LIMIT}"),
                )
            })?,
    };
    let cursor = match params.get("before") {
        None => None,
        Some(id) => {
            let at = state
                .store
                .webhook_event_created_at(&org, id)
                .await?
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_cursor", "before is not an event of this log")
                })?;
            Some((at, id.as_str()))
        }
    };
    let rows = state
        .store
        .webhook_deliveries(&org, cursor, limit + 1)
        .await?;
    page(&state, &org, rows, limit).await
}

/// Builds a page from up to `limit + 1` rows (the extra one says there is more).
async fn page(
    state: &AppState,
    org: &str,
    mut rows: Vec<DeliveryRow>,
    limit: i64,
) -> ApiResult<Json<DeliveryPage>> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let attempts = match (rows.last(), rows.first()) {
        (Some(oldest), Some(newest)) => {
            state
                .store
                .webhook_attempts_between(org, oldest.created_at, newest.created_at)
                .await?
        }
        _ => Vec::new(),
    };
    let next_before = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    let deliveries = rows
        .into_iter()
        .map(|r| delivery_view(r, &attempts))
        .collect();
    Ok(Json(DeliveryPage {
        deliveries,
        next_before,
    }))
}

fn delivery_view(r: DeliveryRow, attempts: &[AttemptRow]) -> DeliveryView {
    let attempt_log = attempts
        .iter()
        .filter(|a| a.event_id == r.id)
        .map(|a| AttemptView {
            attempt: a.attempt,
            at: rfc3339(a.at),
            status_code: a.status_code,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
        })
        .collect();
    let pending = r.status == "pending";
    DeliveryView {
        event_id: r.id,
        event_type: r.event_type,
        attempts: r.attempts,
        last_status_code: r.last_status_code,
        last_error: r.last_error,
        next_attempt_at: r.next_attempt_at.filter(|_| pending).map(rfc3339),
        delivered_at: r.delivered_at.map(rfc3339),
        created_at: rfc3339(r.created_at),
        status: r.status,
        attempt_log,
    }
}
