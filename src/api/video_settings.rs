//! Per-therapist and organization-level video access (see src/access.rs for the rules).

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::guard::{administered_org, controlled_org, therapist_of};
use super::JsonBody;
use crate::access::{decide, AccessDecision, AccessInputs};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::organizations::{self, Organization};
use crate::store::users::{self, Therapist};

/// Upper bound on therapists changed by one bulk request.
const MAX_BULK: usize = 500;

/// The organization-level switch and its meaning.
#[derive(Serialize, ToSchema)]
pub struct OrganizationVideoSettings {
    organization_id: String,
    theraptrack_controlled: bool,
    video_sessions_enabled: bool,
}

/// Body switching the organization level or one therapist.
#[derive(Deserialize, ToSchema)]
pub struct VideoSwitch {
    /// New value of the switch.
    video_sessions_enabled: bool,
    /// Why (kept in the audit log; at most 500 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// Body of the bulk update.
#[derive(Deserialize, ToSchema)]
pub struct BulkVideoSwitch {
    /// Therapists to change (also accepted as `therapistIds`).
    #[serde(alias = "therapistIds")]
    therapist_ids: Vec<String>,
    /// New value of their switch.
    video_sessions_enabled: bool,
    /// Why (kept in the audit log of every therapist changed; at most 500 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// The audited state after a switch: the value, and the reason when one was given.
fn switched(enabled: bool, reason: Option<&str>) -> serde_json::Value {
    let mut state = json!({"video_sessions_enabled": enabled});
    if let Some(reason) = reason {
        state["reason"] = json!(reason);
    }
    state
}

/// A change's reason as the audit log keeps it: trimmed, empty as none, bounded.
fn checked_reason(reason: Option<&str>) -> ApiResult<Option<String>> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match reason {
        Some(r) if r.chars().count() > 500 => Err(ApiError::bad_request(
            "invalid_reason",
            "a reason is at most 500 characters",
        )),
        other => Ok(other.map(str::to_string)),
    }
}

/// One therapist in the listing, with the effective decision and usage counts.
#[derive(Serialize, ToSchema)]
pub struct TherapistVideoSetting {
    therapist_id: String,
    name: String,
    email: String,
    partner_code: String,
    video_sessions_enabled: bool,
    access: AccessDecision,
    client_count: i64,
    session_count: i64,
}

/// The listing: organization switch, per-therapist rows and a summary.
#[derive(Serialize, ToSchema)]
pub struct TherapistVideoSettingsList {
    organization: OrganizationVideoSettings,
    therapists: Vec<TherapistVideoSetting>,
    total: usize,
    enabled: usize,
    disabled: usize,
}

fn org_view(org: &Organization) -> OrganizationVideoSettings {
    OrganizationVideoSettings {
        organization_id: org.id.clone(),
        theraptrack_controlled: org.theraptrack_controlled(),
        video_sessions_enabled: org.video_sessions_enabled(),
    }
}

/// The access decision for one therapist of `org`.
pub fn therapist_access(org: &Organization, therapist: &Therapist) -> AccessDecision {
    decide(AccessInputs {
        organization_enabled: org.video_sessions_enabled(),
        theraptrack_controlled: org.theraptrack_controlled(),
        therapist_enabled: therapist.video_sessions_enabled(),
    })
}

fn therapist_view(
    org: &Organization,
    t: &Therapist,
    client_count: i64,
    session_count: i64,
) -> TherapistVideoSetting {
    TherapistVideoSetting {
        therapist_id: t.id.clone(),
        name: t.display_name.clone(),
        email: t.email.clone(),
        partner_code: t.partner_code.clone(),
        video_sessions_enabled: t.video_sessions_enabled(),
        access: therapist_access(org, t),
        client_count,
        session_count,
    }
}

/// Reads the organization-level video switch.
#[utoipa::path(get, path = "/api/organizations/{id}/video-settings", tag = "video access",
    params(("id" = String, Path, description = "organization id")),
    security(("bearer" = [])),
    responses((status = 200, body = OrganizationVideoSettings), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_organization_video_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<OrganizationVideoSettings>> {
    let org = administered_org(&state.store, &caller, &org_id).await?;
    Ok(Json(org_view(&org)))
}

/// Switches video sessions on or off for the whole organization. Running calls are
/// not cut; new sessions and joins are refused at once.
#[utoipa::path(put, path = "/api/organizations/{id}/video-settings", tag = "video access",
    params(("id" = String, Path, description = "organization id")),
    request_body = VideoSwitch, security(("bearer" = [])),
    responses((status = 200, body = OrganizationVideoSettings), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn put_organization_video_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<VideoSwitch>,
) -> ApiResult<Json<OrganizationVideoSettings>> {
    let org = administered_org(&state.store, &caller, &org_id).await?;
    let reason = checked_reason(body.reason.as_deref())?;
    let mut tx = state.store.pool().begin().await?;
    organizations::set_video_enabled(&mut tx, &org.id, body.video_sessions_enabled).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&org.id),
            "organization.video_settings.update",
            ("organization", &org.id),
        )
        .before(json!({"video_sessions_enabled": org.video_sessions_enabled()}))
        .after(switched(body.video_sessions_enabled, reason.as_deref())),
    )
    .await?;
    tx.commit().await?;
    let org = administered_org(&state.store, &caller, &org_id).await?;
    Ok(Json(org_view(&org)))
}

/// Lists the organization's therapists with their video switch, effective access,
/// and client and session counts.
#[utoipa::path(get, path = "/api/organizations/{id}/therapists/video-settings", tag = "video access",
    params(("id" = String, Path, description = "organization id")),
    security(("bearer" = [])),
    responses((status = 200, body = TherapistVideoSettingsList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_therapist_video_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<TherapistVideoSettingsList>> {
    let org = controlled_org(&state.store, &caller, &org_id).await?;
    let rows = state.store.therapist_usage(&org.id).await?;
    let therapists: Vec<_> = rows
        .iter()
        .map(|r| therapist_view(&org, &r.therapist, r.client_count, r.session_count))
        .collect();
    let enabled = therapists
        .iter()
        .filter(|t| t.video_sessions_enabled)
        .count();
    Ok(Json(TherapistVideoSettingsList {
        organization: org_view(&org),
        total: therapists.len(),
        enabled,
        disabled: therapists.len() - enabled,
        therapists,
    }))
}

/// Switches video sessions on or off for one therapist.
#[utoipa::path(put, path = "/api/organizations/{id}/therapists/{therapist_id}/video-settings", tag = "video access",
    params(("id" = String, Path, description = "organization id"), ("therapist_id" = String, Path, description = "therapist id")),
    request_body = VideoSwitch, security(("bearer" = [])),
    responses((status = 200, body = TherapistVideoSetting), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn put_therapist_video_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, therapist_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<VideoSwitch>,
) -> ApiResult<Json<TherapistVideoSetting>> {
    let org = controlled_org(&state.store, &caller, &org_id).await?;
    let therapist = therapist_of(&state.store, &org, &therapist_id).await?;
    let reason = checked_reason(body.reason.as_deref())?;
    let mut tx = state.store.pool().begin().await?;
    set_and_audit(
        &mut tx,
        &caller,
        &org,
        &therapist,
        (body.video_sessions_enabled, reason.as_deref()),
    )
    .await?;
    tx.commit().await?;
    // Answer with the same row as the listing, usage counts included.
    let row = state
        .store
        .therapist_usage(&org.id)
        .await?
        .into_iter()
        .find(|r| r.therapist.id == therapist.id)
        .ok_or_else(ApiError::internal)?;
    Ok(Json(therapist_view(
        &org,
        &row.therapist,
        row.client_count,
        row.session_count,
    )))
}

async fn set_and_audit(
    tx: &mut sqlx::AnyConnection,
    caller: &Caller,
    org: &Organization,
    therapist: &Therapist,
    (enabled, reason): (bool, Option<&str>),
) -> ApiResult<()> {
    users::set_therapist_video(tx, &therapist.id, enabled).await?;
    audit::record(
        tx,
        AuditEntry::by(
            caller,
            Some(&org.id),
            "therapist.video_settings.update",
            ("therapist", &therapist.id),
        )
        .before(json!({"video_sessions_enabled": therapist.video_sessions_enabled()}))
        .after(switched(enabled, reason)),
    )
    .await?;
    Ok(())
}

/// Result of a bulk update.
#[derive(Serialize, ToSchema)]
pub struct BulkResult {
    updated: usize,
    video_sessions_enabled: bool,
    therapist_ids: Vec<String>,
}

/// Switches video sessions on or off for many therapists at once; all or nothing.
#[utoipa::path(put, path = "/api/organizations/{id}/therapists/video-settings/bulk", tag = "video access",
    params(("id" = String, Path, description = "organization id")),
    request_body = BulkVideoSwitch, security(("bearer" = [])),
    responses((status = 200, body = BulkResult), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn bulk_therapist_video_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<BulkVideoSwitch>,
) -> ApiResult<Json<BulkResult>> {
    let org = controlled_org(&state.store, &caller, &org_id).await?;
    let mut ids = body.therapist_ids;
    ids.sort();
    ids.dedup();
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(ApiError::bad_request(
            "invalid_therapist_ids",
            format!("therapist_ids must list 1 to {MAX_BULK} therapists"),
        ));
    }
    let reason = checked_reason(body.reason.as_deref())?;
    let mut therapists = Vec::with_capacity(ids.len());
    for id in &ids {
        therapists.push(therapist_of(&state.store, &org, id).await?);
    }
    let mut tx = state.store.pool().begin().await?;
    for therapist in &therapists {
        set_and_audit(
            &mut tx,
            &caller,
            &org,
            therapist,
            (body.video_sessions_enabled, reason.as_deref()),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(BulkResult {
        updated: ids.len(),
        video_sessions_enabled: body.video_sessions_enabled,
        therapist_ids: ids,
    }))
}
