//! "Who am I": the signed-in person with their organization and, for therapists, the
//! video access decision and blog permission, so pages can show them before acting.

use serde::Serialize;

use super::AccountError;
use crate::access::AccessDecision;
use crate::auth::{Claims, Role};
use crate::store::Store;

/// The caller's organization, as a member sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyOrganization {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Whether per-therapist switches and blog permissions apply.
    pub theraptrack_controlled: bool,
    /// The organization-level video switch.
    pub video_sessions_enabled: bool,
}

/// Therapist-only facts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyTherapist {
    /// Partner code.
    pub partner_code: String,
    /// Blog permission (docs/RECORDS.md).
    pub can_post_blogs: bool,
    /// Whether new video sessions are allowed now, and why not.
    pub video_access: AccessDecision,
}

/// Client-only facts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyClient {
    /// Their therapist.
    pub therapist_id: Option<String>,
}

/// `GET /api/me`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// User id.
    pub id: String,
    /// E-mail.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Home organization (none for super admins).
    pub organization: Option<MyOrganization>,
    /// For therapists.
    pub therapist: Option<MyTherapist>,
    /// For clients.
    pub client: Option<MyClient>,
}

/// Builds [`Me`] for an authenticated (non-guest) caller.
pub async fn me(store: &Store, caller: &Claims) -> Result<Me, AccountError> {
    me_of(store, &caller.sub).await
}

/// Builds [`Me`] for the account `user_id`.
pub async fn me_of(store: &Store, user_id: &str) -> Result<Me, AccountError> {
    let user = store
        .user(user_id)
        .await?
        .ok_or(AccountError::PersonNotFound)?;
    let role = Role::parse(&user.role).ok_or(AccountError::Internal("unknown role"))?;
    let organization = match user.organization_id.as_deref() {
        Some(id) => store.organization(id).await?.map(|org| MyOrganization {
            theraptrack_controlled: org.theraptrack_controlled(),
            video_sessions_enabled: org.video_sessions_enabled(),
            id: org.id,
            name: org.name,
        }),
        None => None,
    };
    let therapist = match role {
        Role::Therapist => match store.therapist(&user.id).await? {
            Some(t) => Some(MyTherapist {
                video_access: crate::policy::video_access_of(store, &t)
                    .await
                    .map_err(|_| AccountError::Internal("video access decision failed"))?,
                partner_code: t.partner_code.clone(),
                can_post_blogs: t.can_post_blogs(),
            }),
            None => None,
        },
        _ => None,
    };
    let client = match role {
        Role::Client => store.client_person(&user.id).await?.map(|c| MyClient {
            therapist_id: c.therapist_id,
        }),
        _ => None,
    };
    Ok(Me {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        role,
        organization,
        therapist,
        client,
    })
}
