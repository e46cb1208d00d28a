//! Onboarding: a new organization with the invitation of its first administrator, and
//! super admins, for the command line and for super admins over the API.

use serde_json::json;

use super::invitations::{issue, InviteRequest, Issued};
use super::{normalize_email, normalize_name, AccountError, AccountsConfig};
use crate::auth::{Claims, Role};
use crate::store::audit::AuditEntry;
use crate::store::organizations::Organization;
use crate::store::Store;

/// Who asks: a signed-in super admin, or the operator at the command line.
#[derive(Debug, Clone, Copy)]
pub enum Operator<'a> {
    /// A super admin over the API.
    SuperAdmin(&'a Claims),
    /// `theraroom admin ...`.
    CommandLine,
}

impl Operator<'_> {
    fn id(&self) -> &str {
        match self {
            Operator::SuperAdmin(claims) => &claims.sub,
            Operator::CommandLine => "cli",
        }
    }
    fn role(&self) -> &'static str {
        match self {
            Operator::SuperAdmin(_) => Role::SuperAdmin.as_str(),
            Operator::CommandLine => "operator",
        }
    }
}

/// What a new organization needs.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// Its name.
    pub name: String,
    /// Whether per-therapist switches and blog permissions apply.
    pub theraptrack_controlled: bool,
    /// E-mail of its first administrator.
    pub admin_email: String,
    /// Name of its first administrator.
    pub admin_name: String,
}

/// Creates an organization and invites its first administrator (role `admin`).
pub async fn create_organization(
    store: &Store,
    config: &AccountsConfig,
    operator: Operator<'_>,
    new: NewOrganization,
) -> Result<(Organization, Issued), AccountError> {
    if let Operator::SuperAdmin(claims) = operator {
        if claims.role != Role::SuperAdmin {
            return Err(AccountError::Forbidden);
        }
    }
    let name = normalize_name(&new.name)?;
    let email = normalize_email(&new.admin_email)?;
    if store.user_by_email(&email).await?.is_some() {
        return Err(AccountError::EmailTaken);
    }
    let org = store
        .create_organization(&name, new.theraptrack_controlled)
        .await?;
    let request = InviteRequest {
        email,
        display_name: new.admin_name,
        role: Role::Admin,
        therapist_id: None,
    };
    let issued = issue(store, config, Some(&org.id), &request, None, operator.id()).await?;
    let entry = AuditEntry {
        organization_id: Some(&org.id),
        actor_id: operator.id(),
        actor_role: operator.role(),
        action: "organization.create",
        target_type: "organization",
        target_id: &org.id,
        before: None,
        after: Some(
            json!({ "theraptrack_controlled": org.theraptrack_controlled(), "admin_invitation": issued.invitation.id }),
        ),
    };
    store.audit(entry).await?;
    Ok((org, issued))
}

/// Invites a super admin (command line only: nobody signs in as one before the first).
pub async fn invite_super_admin(
    store: &Store,
    config: &AccountsConfig,
    email: &str,
    display_name: &str,
) -> Result<Issued, AccountError> {
    let request = InviteRequest {
        email: email.to_string(),
        display_name: display_name.to_string(),
        role: Role::SuperAdmin,
        therapist_id: None,
    };
    issue(
        store,
        config,
        None,
        &request,
        None,
        Operator::CommandLine.id(),
    )
    .await
}
