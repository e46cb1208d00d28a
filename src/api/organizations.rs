//! Organizations over REST: super admins create one with its first administrator's
//! invitation; members read their own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::invitations::InvitationView;
use super::JsonBody;
use crate::accounts::onboarding::{create_organization as create, NewOrganization, Operator};
use crate::accounts::AccountError;
use crate::auth::{Caller, Role};
use crate::clock::rfc3339;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::store::organizations::Organization;

/// An organization.
#[derive(Serialize, ToSchema)]
pub struct OrganizationView {
    id: String,
    name: String,
    theraptrack_controlled: bool,
    video_sessions_enabled: bool,
    /// RFC 3339.
    created_at: String,
}

impl From<Organization> for OrganizationView {
    fn from(org: Organization) -> Self {
        Self {
            theraptrack_controlled: org.theraptrack_controlled(),
            video_sessions_enabled: org.video_sessions_enabled(),
            created_at: rfc3339(org.created_at),
            id: org.id,
            name: org.name,
        }
    }
}

/// Body of `POST /api/organizations`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    name: String,
    #[serde(default)]
    theraptrack_controlled: bool,
    admin_email: String,
    admin_name: String,
}

/// A new organization and its first administrator's invitation.
#[derive(Serialize, ToSchema)]
pub struct CreatedOrganization {
    organization: OrganizationView,
    invitation: InvitationView,
}

/// Creates an organization and invites its first administrator (super admins only).
#[utoipa::path(post, path = "/api/organizations", tag = "accounts", request_body = CreateOrganization, security(("bearer" = [])),
    responses((status = 201, body = CreatedOrganization, description = "the invitation's `invite_url` is shown this once"),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "`email_taken`")))]
pub async fn create_organization(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateOrganization>,
) -> ApiResult<(StatusCode, Json<CreatedOrganization>)> {
    let new = NewOrganization {
        name: body.name,
        theraptrack_controlled: body.theraptrack_controlled,
        admin_email: body.admin_email,
        admin_name: body.admin_name,
    };
    let (org, issued) = create(
        &state.store,
        &state.accounts,
        Operator::SuperAdmin(&caller),
        new,
    )
    .await?;
    let created = CreatedOrganization {
        organization: org.into(),
        invitation: InvitationView::issued(issued),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// An organization, for its members and super admins.
#[utoipa::path(get, path = "/api/organizations/{id}", tag = "accounts", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = OrganizationView), (status = 404, body = crate::error::ErrorBody, description = "`organization_not_found`")))]
pub async fn get_organization(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OrganizationView>> {
    let member = caller.role == Role::SuperAdmin
        || (caller.role != Role::Guest && caller.org_id.as_deref() == Some(id.as_str()));
    let org = match member {
        true => state.store.organization(&id).await?,
        false => None,
    };
    Ok(Json(org.ok_or(AccountError::OrganizationNotFound)?.into()))
}
