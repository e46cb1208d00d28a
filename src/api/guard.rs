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

/// The organization `org_id` if the caller administers it, for routes that do not
/// reveal other organizations: 403 `forbidden` for other roles, 404
/// `organization_not_found` for another organization as for an unknown one.
pub async fn hidden_org(store: &Store, caller: &Caller, org_id: &str) -> ApiResult<Organization> {
    if !(caller.role.is_org_admin() || caller.role == crate::auth::Role::SuperAdmin) {
        return Err(ApiError::wrong_role());
    }
    let missing = || ApiError::not_found("organization_not_found", "organization not found");
    if !caller.administers(org_id) {
        return Err(missing());
    }
    store.organization(org_id).await?.ok_or_else(missing)
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
    in_org(therapist, org)
}

/// Like [`therapist_of`], by partner code (`partnerId`) or, failing that, by id.
pub async fn therapist_by_partner_or_id(
    store: &Store,
    org: &Organization,
    reference: &str,
) -> ApiResult<Therapist> {
    match store.therapist_by_partner_code(reference).await? {
        Some(therapist) => in_org(therapist, org),
        None => therapist_of(store, org, reference).await,
    }
}

fn in_org(therapist: Therapist, org: &Organization) -> ApiResult<Therapist> {
    if therapist.organization_id != org.id {
        return Err(ApiError::forbidden(
            "therapist_not_in_organization",
            "the therapist does not belong to this organization",
        ));
    }
    Ok(therapist)
}
