//! Per-therapist blog posting permission: theraptrack-controlled organizations grant
//! and revoke it for their therapists, by partner id (or therapist id). See
//! docs/RECORDS.md for the rules and codes.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::guard::{controlled_org, therapist_by_partner_or_id, therapist_of};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::users::{self, Therapist};

/// A therapist and their blog permission.
#[derive(Serialize, ToSchema)]
pub struct BlogTherapist {
    id: String,
    name: String,
    email: String,
    partner_id: String,
    can_post_blogs: bool,
    created_at: String,
}

/// Listing of blog permissions.
#[derive(Serialize, ToSchema)]
pub struct BlogPermissionList {
    success: bool,
    therapists: Vec<BlogTherapist>,
}

/// Result of a grant or revoke.
#[derive(Serialize, ToSchema)]
pub struct BlogPermissionChange {
    success: bool,
    message: String,
    therapist: BlogTherapist,
}

fn view(t: &Therapist) -> BlogTherapist {
    BlogTherapist {
        id: t.id.clone(),
        name: t.display_name.clone(),
        email: t.email.clone(),
        partner_id: t.partner_code.clone(),
        can_post_blogs: t.can_post_blogs(),
        created_at: rfc3339(t.created_at),
    }
}

/// Lists the organization's therapists with their blog permission.
#[utoipa::path(get, path = "/api/organizations/{id}/therapists/blog-permissions", tag = "blog permission",
    params(("id" = String, Path, description = "organization id")), security(("bearer" = [])),
    responses((status = 200, body = BlogPermissionList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_blog_permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<BlogPermissionList>> {
    let org = controlled_org(&state.store, &caller, &org_id).await?;
    let therapists = state.store.therapists_of(&org.id).await?;
    Ok(Json(BlogPermissionList {
        success: true,
        therapists: therapists.iter().map(view).collect(),
    }))
}

/// The refusal of a grant (revoke) that finds the permission granted (revoked).
fn unchanged(grant: bool) -> ApiError {
    if grant {
        ApiError::bad_request(
            "permission_already_granted",
            "Blog posting permission is already granted",
        )
    } else {
        ApiError::bad_request(
            "permission_already_revoked",
            "Blog posting permission is already revoked",
        )
    }
}

/// Grants or revokes: the conditional update decides, so of concurrent identical
/// requests one changes the permission (and is audited) and the others are refused.
async fn change(
    state: AppState,
    caller: Caller,
    org_id: String,
    partner_id: String,
    grant: bool,
) -> ApiResult<Json<BlogPermissionChange>> {
    let org = controlled_org(&state.store, &caller, &org_id).await?;
    let therapist = therapist_by_partner_or_id(&state.store, &org, &partner_id).await?;
    let mut tx = state.store.begin_write().await?;
    if !users::set_blog_permission(&mut tx, &therapist.id, grant).await? {
        return Err(unchanged(grant));
    }
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&org.id),
            if grant {
                "therapist.blog_permission.grant"
            } else {
                "therapist.blog_permission.revoke"
            },
            ("therapist", &therapist.id),
        )
        .before(json!({"can_post_blogs": !grant}))
        .after(json!({"can_post_blogs": grant})),
    )
    .await?;
    tx.commit().await?;
    let updated = therapist_of(&state.store, &org, &therapist.id).await?;
    Ok(Json(BlogPermissionChange {
        success: true,
        message: if grant {
            "Blog posting permission granted successfully".into()
        } else {
            "Blog posting permission revoked successfully".into()
        },
        therapist: view(&updated),
    }))
}

/// Grants blog posting permission to a therapist.
#[utoipa::path(post, path = "/api/organizations/{id}/therapists/{therapist_id}/blog-permission/grant", tag = "blog permission",
    params(("id" = String, Path, description = "organization id"), ("therapist_id" = String, Path, description = "the therapist's partner id (`partner_id` of the listing) or therapist id")), security(("bearer" = [])),
    responses((status = 200, body = BlogPermissionChange), (status = 400, body = crate::error::ErrorBody, description = "permission_already_granted"), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "forbidden, not_organization_owner, not_theraptrack_controlled, therapist_not_in_organization"),
        (status = 404, body = crate::error::ErrorBody, description = "organization_not_found, therapist_not_found")))]
pub async fn grant_blog_permission(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, partner_id)): Path<(String, String)>,
) -> ApiResult<Json<BlogPermissionChange>> {
    change(state, caller, org_id, partner_id, true).await
}

/// Revokes blog posting permission from a therapist (existing posts stay).
#[utoipa::path(post, path = "/api/organizations/{id}/therapists/{therapist_id}/blog-permission/revoke", tag = "blog permission",
    params(("id" = String, Path, description = "organization id"), ("therapist_id" = String, Path, description = "the therapist's partner id (`partner_id` of the listing) or therapist id")), security(("bearer" = [])),
    responses((status = 200, body = BlogPermissionChange), (status = 400, body = crate::error::ErrorBody, description = "permission_already_revoked"), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "forbidden, not_organization_owner, not_theraptrack_controlled, therapist_not_in_organization"),
        (status = 404, body = crate::error::ErrorBody, description = "organization_not_found, therapist_not_found")))]
pub async fn revoke_blog_permission(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, partner_id)): Path<(String, String)>,
) -> ApiResult<Json<BlogPermissionChange>> {
    change(state, caller, org_id, partner_id, false).await
}
