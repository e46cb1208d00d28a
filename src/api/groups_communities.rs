//! Communities: groups of an organization's users whose moderators
//! propose group therapy sessions and whose members join them.
//!
//! An organization administrator creates communities and adds members and
//! moderators; a moderator may add members. Nothing crosses organizations: another
//! organization's community is `community_not_found`, another organization's user is
//! `user_not_in_organization`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::extract::validate_name;
use super::guard::administered_org;
use super::JsonBody;
use crate::auth::{Caller, Role};
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::policy::is_admin_of;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::communities::{self as store, Community, CommunityMember, CommunityWithRole};

/// Body of `POST /api/communities`.
#[derive(Deserialize, ToSchema)]
pub struct CreateCommunity {
    /// Name, 1–100 characters, unique in the organization.
    name: String,
    /// Optional description (at most 1000 characters).
    description: Option<String>,
    /// Organization (default: the caller's; required for super admins).
    organization_id: Option<String>,
}

/// A community as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct CommunityView {
    id: String,
    organization_id: String,
    name: String,
    description: Option<String>,
    created_by: String,
    created_at: String,
    /// The caller's role in it: `member`, `moderator`, or null.
    my_role: Option<String>,
    member_count: i64,
}

/// A list of communities.
#[derive(Serialize, ToSchema)]
pub struct CommunityList {
    communities: Vec<CommunityView>,
}

/// Body of `POST /api/communities/{id}/members`.
#[derive(Deserialize, ToSchema)]
pub struct AddMember {
    /// A user of the community's organization.
    user_id: String,
    /// `member` (default) or `moderator`.
    role: Option<String>,
}

/// A member of a community.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    community_id: String,
    user_id: String,
    display_name: String,
    /// `member` or `moderator`.
    role: String,
    /// Platform role of the user (`client`, `therapist`, ...).
    user_role: String,
    added_at: String,
}

/// A list of members.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    members: Vec<MemberView>,
}

fn community_view(c: &Community, my_role: Option<String>, member_count: i64) -> CommunityView {
    CommunityView {
        id: c.id.clone(),
        organization_id: c.organization_id.clone(),
        name: c.name.clone(),
        description: c.description.clone(),
        created_by: c.created_by.clone(),
        created_at: rfc3339(c.created_at),
        my_role,
        member_count,
    }
}

fn with_role_view(c: &CommunityWithRole) -> CommunityView {
    community_view(&c.community, c.my_role.clone(), c.member_count)
}

fn member_view(m: &CommunityMember) -> MemberView {
    MemberView {
        community_id: m.community_id.clone(),
        user_id: m.user_id.clone(),
        display_name: m.display_name.clone(),
        role: m.role.clone(),
        user_role: m.user_role.clone(),
        added_at: rfc3339(m.added_at),
    }
}

/// The audit action of a membership change from `previous` (None: not a member) to
/// `role`, or None when nothing changes. Moderator appointments and revocations have
/// their own actions so that they can be found without reading the states.
fn membership_action(previous: Option<&str>, role: &str) -> Option<&'static str> {
    match (previous, role) {
        (Some(before), after) if before == after => None,
        (_, "moderator") => Some("community.moderator.add"),
        (Some("moderator"), _) => Some("community.moderator.remove"),
        _ => Some("community.member.add"),
    }
}

/// Trims an optional free text; empty becomes None; longer than `max` is refused.
pub(super) fn optional_text(
    raw: Option<&str>,
    max: usize,
    code: &'static str,
    what: &str,
) -> ApiResult<Option<String>> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max {
        return Err(ApiError::bad_request(
            code,
            format!("{what} must be at most {max} characters"),
        ));
    }
    Ok(Some(text.to_string()))
}

/// Loads a community of the caller's organization (super admins see all), or 404
/// `community_not_found`.
pub(super) async fn visible_community(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<Community> {
    let not_found = || ApiError::not_found("community_not_found", "community not found");
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let community = state.store.community(id).await?.ok_or_else(not_found)?;
    if caller.role != Role::SuperAdmin
        && caller.org_id.as_deref() != Some(community.organization_id.as_str())
    {
        return Err(not_found());
    }
    Ok(community)
}

/// Creates a community (organization administrators).
#[utoipa::path(post, path = "/api/communities", tag = "group therapy", request_body = CreateCommunity, security(("bearer" = [])),
    responses((status = 201, body = CommunityView), (status = 400, body = crate::error::ErrorBody, description = "invalid_community_name, invalid_description"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "forbidden (role), not_organization_owner"), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "community_exists")))]
pub async fn create_community(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateCommunity>,
) -> ApiResult<(StatusCode, Json<CommunityView>)> {
    if !(caller.role.is_org_admin() || caller.role == Role::SuperAdmin) {
        return Err(ApiError::wrong_role());
    }
    let org_id = body
        .organization_id
        .clone()
        .or_else(|| caller.org_id.clone())
        .ok_or_else(|| {
            ApiError::bad_request("organization_required", "organization_id is required")
        })?;
    let org = administered_org(&state.store, &caller, &org_id).await?;
    let name = validate_name(&body.name, 100, "invalid_community_name", "name")?;
    let description = optional_text(
        body.description.as_deref(),
        1000,
        "invalid_description",
        "description",
    )?;
    let mut tx = state.store.pool().begin().await?;
    let created =
        store::create_community(&mut tx, &org.id, &name, description.as_deref(), &caller.sub)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => ApiError::conflict(
                    "community_exists",
                    "a community with this name already exists in the organization",
                ),
                _ => ApiError::from(e),
            })?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&created.organization_id),
            "community.create",
            ("community", &created.id),
        )
        .after(json!({"name": created.name, "organization_id": created.organization_id})),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(community_id = %created.id, organization_id = %org.id, "community created");
    Ok((StatusCode::CREATED, Json(community_view(&created, None, 0))))
}

/// Lists the caller's communities; organization administrators see all of their
/// organization's.
#[utoipa::path(get, path = "/api/communities", tag = "group therapy", security(("bearer" = [])),
    responses((status = 200, body = CommunityList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_communities(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<CommunityList>> {
    let rows = match (caller.role, caller.org_id.as_deref()) {
        (Role::Guest, _) => return Err(ApiError::wrong_role()),
        (role, Some(org)) if role.is_org_admin() => {
            state
                .store
                .communities_of_organization(org, &caller.sub)
                .await?
        }
        _ => state.store.communities_of_member(&caller.sub).await?,
    };
    Ok(Json(CommunityList {
        communities: rows.iter().map(with_role_view).collect(),
    }))
}

/// Adds a member or moderator to a community, or changes a member's role.
/// Organization administrators may do both; moderators may add members.
#[utoipa::path(post, path = "/api/communities/{id}/members", tag = "group therapy", params(("id" = String, Path, description = "community id")), request_body = AddMember, security(("bearer" = [])),
    responses((status = 201, body = MemberView, description = "added"), (status = 200, body = MemberView, description = "role changed"), (status = 400, body = crate::error::ErrorBody, description = "invalid_member_role"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_moderator, user_not_in_organization"), (status = 404, body = crate::error::ErrorBody, description = "community_not_found, user_not_found")))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AddMember>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let community = visible_community(&state, &caller, &id).await?;
    let role = match body.role.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("member") => "member",
        Some("moderator") => "moderator",
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_member_role",
                "role must be member or moderator",
            ))
        }
    };
    if !is_admin_of(&caller, &community.organization_id) {
        let mine = state
            .store
            .community_role(&community.id, &caller.sub)
            .await?;
        if mine.as_deref() != Some("moderator") {
            return Err(ApiError::forbidden(
                "not_a_moderator",
                "only the organization's administrators and the community's moderators add members",
            ));
        }
        if role == "moderator" {
            return Err(ApiError::forbidden(
                "not_organization_owner",
                "only the organization's administrators appoint moderators",
            ));
        }
    }
    let user = state
        .store
        .user(&body.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user_not_found", "user not found"))?;
    if user.organization_id.as_deref() != Some(community.organization_id.as_str()) {
        return Err(ApiError::forbidden(
            "user_not_in_organization",
            "the user does not belong to the community's organization",
        ));
    }
    let mut tx = state.store.pool().begin().await?;
    let previous = store::upsert_member(&mut tx, &community.id, &user.id, role).await?;
    if let Some(action) = membership_action(previous.as_deref(), role) {
        audit::record(
            &mut tx,
            AuditEntry::by(
                &caller,
                Some(&community.organization_id),
                action,
                ("community", &community.id),
            )
            .before(json!({"user_id": user.id, "role": previous}))
            .after(json!({"user_id": user.id, "role": role})),
        )
        .await?;
    }
    tx.commit().await?;
    if previous.as_deref() != Some(role) {
        tracing::info!(community_id = %community.id, user_id = %user.id, role, "community membership changed");
    }
    let added = previous.is_none();
    let member = state
        .store
        .community_members(&community.id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user.id)
        .ok_or_else(ApiError::internal)?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(member_view(&member))))
}

/// Lists a community's members (for its members and the organization's
/// administrators).
#[utoipa::path(get, path = "/api/communities/{id}/members", tag = "group therapy", params(("id" = String, Path, description = "community id")), security(("bearer" = [])),
    responses((status = 200, body = MemberList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_member"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MemberList>> {
    let community = visible_community(&state, &caller, &id).await?;
    if !is_admin_of(&caller, &community.organization_id)
        && state
            .store
            .community_role(&community.id, &caller.sub)
            .await?
            .is_none()
    {
        return Err(ApiError::forbidden(
            "not_a_member",
            "you are not a member of this community",
        ));
    }
    let members = state.store.community_members(&community.id).await?;
    Ok(Json(MemberList {
        members: members.iter().map(member_view).collect(),
    }))
}
