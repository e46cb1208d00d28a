//! An organization's therapists and clients: who may list, view, rename, reassign,
//! deactivate and reactivate them. Deactivation takes effect at once: the account's
//! tokens are refused on their next use, its sign-ins end and its live sockets close.

use serde_json::json;

use super::invitations::require_admin_of;
use super::{normalize_name, signin, AccountError};
use crate::auth::{revoke, Claims, Role};
use crate::state::AppState;
use crate::store::audit::AuditEntry;
use crate::store::people::{ClientPerson, PeopleQuery, TherapistPerson};
use crate::store::Store;

/// Therapists of `org_id`, for its administrators.
pub async fn therapists(
    store: &Store,
    caller: &Claims,
    org_id: &str,
    query: &PeopleQuery,
) -> Result<Vec<TherapistPerson>, AccountError> {
    require_admin_of(caller, org_id)?;
    Ok(store.list_therapist_people(org_id, query).await?)
}

/// One therapist of `org_id`, for its administrators and the therapist.
pub async fn therapist(
    store: &Store,
    caller: &Claims,
    org_id: &str,
    id: &str,
) -> Result<TherapistPerson, AccountError> {
    let own = caller.sub == id && caller.org_id.as_deref() == Some(org_id);
    if !own {
        require_admin_of(caller, org_id)?;
    }
    store
        .therapist_person(org_id, id)
        .await?
        .ok_or(AccountError::PersonNotFound)
}

/// An administrator renames a therapist.
pub async fn rename_therapist(
    store: &Store,
    caller: &Claims,
    org_id: &str,
    id: &str,
    display_name: &str,
) -> Result<TherapistPerson, AccountError> {
    require_admin_of(caller, org_id)?;
    let name = normalize_name(display_name)?;
    let before = therapist(store, caller, org_id, id).await?;
    store.set_display_name(id, &name).await?;
    let entry = AuditEntry::by(caller, Some(org_id), "therapist.update", ("therapist", id))
        .before(json!({ "display_name": before.display_name }))
        .after(json!({ "display_name": name }));
    store.audit(entry).await?;
    therapist(store, caller, org_id, id).await
}

/// An administrator deactivates (`active: false`) or reactivates a therapist.
pub async fn set_therapist_active(
    state: &AppState,
    caller: &Claims,
    org_id: &str,
    id: &str,
    active: bool,
) -> Result<TherapistPerson, AccountError> {
    require_admin_of(caller, org_id)?;
    therapist(&state.store, caller, org_id, id).await?;
    set_active(state, caller, Some(org_id), (Role::Therapist, id), active).await?;
    therapist(&state.store, caller, org_id, id).await
}

/// Clients the caller may see: an administrator's organization (a super admin names
/// one), or a therapist's own clients.
pub async fn clients(
    store: &Store,
    caller: &Claims,
    org_id: Option<&str>,
    mut query: PeopleQuery,
) -> Result<Vec<ClientPerson>, AccountError> {
    let org = match caller.role {
        Role::SuperAdmin => org_id
            .ok_or(AccountError::OrganizationNotFound)?
            .to_string(),
        Role::Organization | Role::Admin => caller.org_id.clone().ok_or(AccountError::Forbidden)?,
        Role::Therapist => {
            query.therapist_id = Some(caller.sub.clone());
            caller.org_id.clone().ok_or(AccountError::Forbidden)?
        }
        Role::Client | Role::Guest => return Err(AccountError::Forbidden),
    };
    Ok(store.list_client_people(&org, &query).await?)
}

/// One client, for its organization's administrators, its therapist and itself.
/// Anyone else is told it does not exist.
pub async fn client(
    store: &Store,
    caller: &Claims,
    id: &str,
) -> Result<ClientPerson, AccountError> {
    let client = store
        .client_person(id)
        .await?
        .ok_or(AccountError::PersonNotFound)?;
    let visible = crate::policy::is_admin_of(caller, &client.organization_id)
        || caller.sub == client.id
        || (caller.role == Role::Therapist && client.therapist_id.as_deref() == Some(&caller.sub));
    if visible {
        Ok(client)
    } else {
        Err(AccountError::PersonNotFound)
    }
}

/// What an administrator may change about a client.
#[derive(Debug, Clone, Default)]
pub struct ClientChange {
    /// New name.
    pub display_name: Option<String>,
    /// New therapist: `Some(None)` unassigns.
    pub therapist_id: Option<Option<String>>,
}

/// An administrator renames a client or assigns them to another therapist.
pub async fn update_client(
    store: &Store,
    caller: &Claims,
    id: &str,
    change: ClientChange,
) -> Result<ClientPerson, AccountError> {
    let before = admin_client(store, caller, id).await?;
    let org = before.organization_id.clone();
    let name = change
        .display_name
        .as_deref()
        .map(normalize_name)
        .transpose()?;
    if let Some(Some(therapist_id)) = &change.therapist_id {
        let therapist = store.therapist_person(&org, therapist_id).await?;
        therapist
            .filter(|t| t.disabled_at.is_none())
            .ok_or(AccountError::TherapistNotFound)?;
    }
    if let Some(name) = &name {
        store.set_display_name(id, name).await?;
    }
    if let Some(therapist_id) = &change.therapist_id {
        store
            .set_client_therapist(id, therapist_id.as_deref())
            .await?;
    }
    let after = admin_client(store, caller, id).await?;
    let entry = AuditEntry::by(caller, Some(&org), "client.update", ("client", id))
        .before(json!({ "display_name": before.display_name, "therapist_id": before.therapist_id }))
        .after(json!({ "display_name": after.display_name, "therapist_id": after.therapist_id }));
    store.audit(entry).await?;
    Ok(after)
}

/// An administrator deactivates (`active: false`) or reactivates a client.
pub async fn set_client_active(
    state: &AppState,
    caller: &Claims,
    id: &str,
    active: bool,
) -> Result<ClientPerson, AccountError> {
    let client = admin_client(&state.store, caller, id).await?;
    set_active(
        state,
        caller,
        Some(&client.organization_id),
        (Role::Client, id),
        active,
    )
    .await?;
    admin_client(&state.store, caller, id).await
}

/// A client for an administrator of its organization; anyone else does not see it.
async fn admin_client(
    store: &Store,
    caller: &Claims,
    id: &str,
) -> Result<ClientPerson, AccountError> {
    let client = store
        .client_person(id)
        .await?
        .ok_or(AccountError::PersonNotFound)?;
    match require_admin_of(caller, &client.organization_id) {
        Ok(()) => Ok(client),
        Err(AccountError::Forbidden)
            if caller.sub == client.id || caller.role == Role::Therapist =>
        {
            Err(AccountError::Forbidden)
        }
        Err(_) => Err(AccountError::PersonNotFound),
    }
}

/// Changes an account's state; deactivation also ends its sign-ins and revokes its
/// tokens (closing its live sockets). Unchanged states are not audited again.
async fn set_active(
    state: &AppState,
    caller: &Claims,
    org_id: Option<&str>,
    (role, id): (Role, &str),
    active: bool,
) -> Result<(), AccountError> {
    if !state.store.set_account_active(id, active).await? {
        return Ok(());
    }
    if !active {
        signin::end_all(&state.store, id).await?;
        revoke::revoke_subject(state, id, role).await?;
    }
    let action = if active {
        "user.reactivate"
    } else {
        "user.deactivate"
    };
    let entry = AuditEntry::by(caller, org_id, action, (role.as_str(), id))
        .after(json!({ "active": active }));
    state.store.audit(entry).await?;
    tracing::info!(user = id, active, "account state changed");
    Ok(())
}
