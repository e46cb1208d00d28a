//! Invitations: an administrator names a person and a role, the person receives a
//! single-use, expiring link, sets a password through it and is signed in.

use serde_json::json;

use super::signin::{self, SignedIn};
use super::{
    normalize_email, normalize_name, password, AccountError, AccountsConfig, INVITATION_TTL,
};
use crate::auth::{Claims, JwtKeys, Role};
use crate::clock::now_ms;
use crate::random::{digest, url_token};
use crate::store::audit::AuditEntry;
use crate::store::invitations::{Acceptance, Invitation, NewInvitation};
use crate::store::Store;

/// What an administrator asks for.
#[derive(Debug, Clone)]
pub struct InviteRequest {
    /// E-mail of the person.
    pub email: String,
    /// Name of the person.
    pub display_name: String,
    /// Role of the account to be.
    pub role: Role,
    /// For clients: their therapist.
    pub therapist_id: Option<String>,
}

/// A stored invitation and its link, which exists only in this answer.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The stored invitation.
    pub invitation: Invitation,
    /// `<public URL>/invite.html#token=<token>`.
    pub url: String,
}

/// Who may act on organization `org_id`'s people: its administrators and super admins.
/// Members of the organization get `Forbidden`; everyone else does not see it at all.
pub fn require_admin_of(caller: &Claims, org_id: &str) -> Result<(), AccountError> {
    if crate::policy::is_admin_of(caller, org_id) {
        Ok(())
    } else if caller.org_id.as_deref() == Some(org_id) {
        Err(AccountError::Forbidden)
    } else {
        Err(AccountError::OrganizationNotFound)
    }
}

/// An administrator of `org_id` invites a therapist, a client or another administrator.
pub async fn invite(
    store: &Store,
    config: &AccountsConfig,
    caller: &Claims,
    org_id: &str,
    request: InviteRequest,
) -> Result<Issued, AccountError> {
    require_admin_of(caller, org_id)?;
    if store.organization(org_id).await?.is_none() {
        return Err(AccountError::OrganizationNotFound);
    }
    if !matches!(request.role, Role::Therapist | Role::Client | Role::Admin) {
        return Err(AccountError::InvalidRole);
    }
    let therapist_id = match (request.role, request.therapist_id.as_deref()) {
        (Role::Client, Some(id)) => {
            let therapist = store.therapist(id).await?;
            therapist
                .filter(|t| t.organization_id == org_id)
                .ok_or(AccountError::TherapistNotFound)?;
            Some(id)
        }
        _ => None,
    };
    let issued = issue(
        store,
        config,
        Some(org_id),
        &request,
        therapist_id,
        &caller.sub,
    )
    .await?;
    audit(
        store,
        caller.sub.as_str(),
        caller.role.as_str(),
        "invitation.create",
        &issued.invitation,
    )
    .await?;
    Ok(issued)
}

/// Issues an invitation without a caller's permission check: for the command line and
/// for a super admin creating an organization with its first administrator.
pub async fn issue(
    store: &Store,
    config: &AccountsConfig,
    org_id: Option<&str>,
    request: &InviteRequest,
    therapist_id: Option<&str>,
    invited_by: &str,
) -> Result<Issued, AccountError> {
    let email = normalize_email(&request.email)?;
    let display_name = normalize_name(&request.display_name)?;
    if store.user_by_email(&email).await?.is_some() {
        return Err(AccountError::EmailTaken);
    }
    let token = url_token();
    let token_hash = digest(&token);
    let new = NewInvitation {
        organization_id: org_id,
        email: &email,
        display_name: &display_name,
        role: request.role,
        therapist_id,
        invited_by,
        token_hash: &token_hash,
        expires_at: now_ms() + INVITATION_TTL.as_millis() as i64,
    };
    let invitation = store.insert_invitation(&new).await?;
    let url = format!(
        "{}/invite.html#token={token}",
        config.public_url.trim_end_matches('/')
    );
    Ok(Issued { invitation, url })
}

/// The invitation a link's token names, if it can still be accepted.
pub async fn inspect(store: &Store, token: &str) -> Result<Invitation, AccountError> {
    let invitation = store
        .invitation_by_token_hash(&digest(token))
        .await?
        .ok_or(AccountError::InvitationNotFound)?;
    if invitation.withdrawn_at.is_some() {
        Err(AccountError::InvitationNotFound)
    } else if invitation.accepted_at.is_some() {
        Err(AccountError::InvitationUsed)
    } else if invitation.expires_at <= now_ms() {
        Err(AccountError::InvitationExpired)
    } else {
        Ok(invitation)
    }
}

/// The person behind a link sets their password: the account is created and signed in.
pub async fn accept(
    store: &Store,
    keys: &JwtKeys,
    token: &str,
    password_given: &str,
    display_name: Option<&str>,
) -> Result<SignedIn, AccountError> {
    let invitation = inspect(store, token).await?;
    password::check_strength(password_given)?;
    let name = match display_name {
        Some(name) => normalize_name(name)?,
        None => invitation.display_name.clone(),
    };
    let hash = password::hash(password_given).await?;
    let user_id = match store.accept_invitation(&invitation, &name, &hash).await {
        Ok(Acceptance::Created(user_id)) => user_id,
        Ok(Acceptance::Gone) => return Err(AccountError::InvitationUsed),
        Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
            return Err(AccountError::EmailTaken)
        }
        Err(err) => return Err(err.into()),
    };
    let role = Role::parse(&invitation.role).ok_or(AccountError::Internal("unknown role"))?;
    audit(
        store,
        &user_id,
        role.as_str(),
        "invitation.accept",
        &invitation,
    )
    .await?;
    tracing::info!(user = %user_id, role = role.as_str(), "invitation accepted");
    signin::start(
        store,
        keys,
        &user_id,
        role,
        invitation.organization_id.as_deref(),
    )
    .await
}

/// The pending invitations of an organization, for its administrators.
pub async fn pending(
    store: &Store,
    caller: &Claims,
    org_id: &str,
) -> Result<Vec<Invitation>, AccountError> {
    require_admin_of(caller, org_id)?;
    Ok(store.pending_invitations(org_id).await?)
}

/// An administrator withdraws a pending invitation: its link stops working.
pub async fn withdraw(
    store: &Store,
    caller: &Claims,
    org_id: &str,
    id: &str,
) -> Result<(), AccountError> {
    require_admin_of(caller, org_id)?;
    let invitation = store.invitation(id).await?;
    let invitation = invitation
        .filter(|i| i.organization_id.as_deref() == Some(org_id))
        .ok_or(AccountError::InvitationNotFound)?;
    if !store.withdraw_invitation(org_id, id).await? {
        return Err(AccountError::InvitationNotFound);
    }
    audit(
        store,
        &caller.sub,
        caller.role.as_str(),
        "invitation.withdraw",
        &invitation,
    )
    .await?;
    Ok(())
}

/// Audits an invitation event: ids and the role only, not the e-mail or the name.
async fn audit(
    store: &Store,
    actor: &str,
    actor_role: &str,
    action: &str,
    invitation: &Invitation,
) -> Result<(), sqlx::Error> {
    let entry = AuditEntry {
        organization_id: invitation.organization_id.as_deref(),
        actor_id: actor,
        actor_role,
        action,
        target_type: "invitation",
        target_id: &invitation.id,
        before: None,
        after: Some(json!({ "role": invitation.role, "expires_at": invitation.expires_at })),
    };
    store.audit(entry).await
}
