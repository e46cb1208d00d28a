//! The service code (CPT) of a booked 1:1 session: set or cleared by whoever manages
//! the session (its therapist, its organization's administrators), checked against
//! the configured list, audited.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::schedule::{check_service_code, managed_session, session_view, ScheduledSessionView};
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::schedule::service_codes::ServiceCodes;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::schedule as store;
use crate::store::schedule_changes;

/// Body of the service code update.
#[derive(Deserialize, ToSchema)]
pub struct ServiceCodeBody {
    /// One of the configured codes, or null (or empty) to clear it.
    service_code: Option<String>,
}

/// The accepted service codes.
#[derive(Serialize, ToSchema)]
pub struct ServiceCodeList {
    /// Sorted.
    service_codes: Vec<String>,
}

/// Sets or clears the service code of a booked session, whatever its status (a
/// completed or late-cancelled session is billed too). 400 `invalid_service_code`
/// for a code outside the configured list.
#[utoipa::path(put, path = "/api/schedule/sessions/{id}/service-code", tag = "schedule",
    params(("id" = String, Path, description = "scheduled session id")), request_body = ServiceCodeBody, security(("bearer" = [])),
    responses((status = 200, body = ScheduledSessionView),
        (status = 400, body = ErrorBody, description = "invalid_service_code"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "scheduled_session_not_found")))]
pub async fn set_service_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    codes: Option<Extension<ServiceCodes>>,
    JsonBody(body): JsonBody<ServiceCodeBody>,
) -> ApiResult<Json<ScheduledSessionView>> {
    let s = managed_session(&state, &caller, &id).await?;
    let codes = codes.map(|Extension(c)| c);
    let code = check_service_code(codes.as_ref(), body.service_code.as_deref())?;
    let mut tx = state.store.pool().begin().await?;
    schedule_changes::set_service_code(&mut tx, &s.id, code.as_deref(), now_ms()).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&s.organization_id),
            "schedule.session.service_code",
            ("scheduled_session", &s.id),
        )
        .before(json!({"service_code": s.service_code}))
        .after(json!({"service_code": code})),
    )
    .await?;
    let updated = store::session(&mut tx, &s.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(session_view(&updated)))
}

/// The service codes a session may carry (for booking forms). Anyone signed in.
#[utoipa::path(get, path = "/api/schedule/service-codes", tag = "schedule", security(("bearer" = [])),
    responses((status = 200, body = ServiceCodeList), (status = 401, body = ErrorBody)))]
pub async fn list_service_codes(
    _caller: Caller,
    codes: Option<Extension<ServiceCodes>>,
) -> Json<ServiceCodeList> {
    let codes = codes.map(|Extension(c)| c).unwrap_or_default();
    Json(ServiceCodeList {
        service_codes: codes.list().to_vec(),
    })
}
