//! `theraroom admin ...`: onboarding from the command line, for the first organization
//! of a fresh server (nobody can sign in yet) and for platform operators, and the
//! rotation of the data key that seals notes.

use serde_json::json;
use theraroom::accounts::onboarding::{self, NewOrganization, Operator};
use theraroom::accounts::AccountsConfig;
use theraroom::clock::rfc3339;
use theraroom::config::{AdminCommand, Settings};
use theraroom::data_keys::rotate::rotate_data_key;

use crate::serve::open_store;

/// Runs one admin action and prints what the operator hands on (the invitation link,
/// the new key id) as JSON on stdout.
pub async fn admin(settings: &Settings, action: AdminCommand) -> Result<(), String> {
    let store = open_store(settings).await?;
    let tls = settings.tls_cert.is_some() || settings.tls_self_signed;
    let config: AccountsConfig = settings.accounts_config(tls, settings.bind);
    let printed = match action {
        AdminCommand::CreateOrganization {
            name,
            admin_email,
            admin_name,
            theraptrack_controlled,
        } => {
            let new = NewOrganization {
                name,
                theraptrack_controlled,
                admin_email,
                admin_name,
            };
            let (org, issued) =
                onboarding::create_organization(&store, &config, Operator::CommandLine, new)
                    .await
                    .map_err(|e| format!("cannot create the organization: {e}"))?;
            json!({
                "organization_id": org.id,
                "organization_name": org.name,
                "invitation_id": issued.invitation.id,
                "email": issued.invitation.email,
                "invite_url": issued.url,
                "expires_at": rfc3339(issued.invitation.expires_at),
            })
        }
        AdminCommand::CreateSuperAdmin { email, name } => {
            let issued = onboarding::invite_super_admin(&store, &config, &email, &name)
                .await
                .map_err(|e| format!("cannot invite the super admin: {e}"))?;
            json!({
                "invitation_id": issued.invitation.id,
                "email": issued.invitation.email,
                "invite_url": issued.url,
                "expires_at": rfc3339(issued.invitation.expires_at),
            })
        }
        AdminCommand::RotateDataKey => {
            let rotation =
                rotate_data_key(&store, &settings.data_dir, settings.data_key.as_deref()).await?;
            serde_json::to_value(&rotation).map_err(|e| e.to_string())?
        }
    };
    store.close().await;
    println!(
        "{}",
        serde_json::to_string_pretty(&printed).map_err(|e| e.to_string())?
    );
    Ok(())
}
