//! Authorization checks shared by the organization-scoped routes.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::store::organizations::Organization;
use crate::store::users::Therapist;
use crate::store::Store;

/// Checks that the caller administers organization `org_id` and returns it.
/// Order: wrong role (403 `forbidden`) → other organization (403
/// `not_organization_owner`) → unknown organization (404 `organization_not_found`).
pub async fn administered_org(
    store: &Store,
    caller: &Caller,
    org_id: &str,
) -> ApiResult<Organization> {
    if !(caller.role.is_org_admin() || caller.role == crate::auth::Role::SuperAdmin) {
        return Err(ApiError::wrong_role());
    }
    if !caller.administers(org_id) {
        return Err(ApiError::forbidden(
            "not_organization_owner",
            "you do not administer this organization",
        ));
    }
    store
        .organization(org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization_not_found", "organization not found"))
}

/// Like [`administered_org`], and also requires the organization to be
/// theraptrack-controlled (403 `not_theraptrack_controlled`).
pub async fn controlled_org(
    store: &Store,
    caller: &Caller,
    org_id: &str,
) -> ApiResult<Organization> {
    let org = administered_org(store, caller, org_id).await?;
    if !org.theraptrack_controlled() {
        return Err(ApiError::forbidden(
            "not_theraptrack_controlled",
            "only theraptrack-controlled organizations manage per-therapist settings",
        ));
    }
    Ok(org)
}

/// Loads a therapist that must belong to `org`: 404 `therapist_not_found`, or 403
/// `therapist_not_in_organization` for another organization's therapist.
pub async fn therapist_of(
    store: &Store,
    org: &Organization,
    therapist_id: &str,
) -> ApiResult<Therapist> {
    let therapist = store
        .therapist(therapist_id)
        .await?
        .ok_or_else(|| ApiError::not_found("therapist_not_found", "therapist not found"))?;
    if therapist.organization_id != org.id {
        return Err(ApiError::forbidden(
            "therapist_not_in_organization",
            "the therapist does not belong to this organization",
        ));
    }
    Ok(therapist)
}
