//! `theraroom demo`: an idempotent demo organization with ready-to-use tokens, so the
//! README walkthrough works on a fresh machine.

use serde::Serialize;

use crate::auth::{JwtKeys, Role};
use crate::store::Store;

const ORG_NAME: &str = "TheraRoom Demo Practice";

/// One demo account and its token.
#[derive(Debug, Serialize)]
pub struct Account {
    /// User id.
    pub id: String,
    /// E-mail to sign in with (with [`DemoData::password`]).
    pub email: String,
    /// JWT for that user.
    pub token: String,
}

/// What `theraroom demo --json` prints.
#[derive(Debug, Serialize)]
pub struct DemoData {
    /// The demo organization (theraptrack-controlled).
    pub organization_id: String,
    /// Its administrator (role `organization`).
    pub org_admin: Account,
    /// Two therapists.
    pub therapists: Vec<Account>,
    /// One client, assigned to the first therapist.
    pub client: Account,
    /// The password of every demo account (kept in the data directory).
    pub password: String,
}

/// Creates what is missing of the demo data, sets `password` on every demo account and
/// mints fresh tokens for them.
pub async fn ensure_demo(
    store: &Store,
    keys: &JwtKeys,
    ttl_secs: i64,
    password: &str,
) -> Result<DemoData, sqlx::Error> {
    let org = match store.organization_by_name(ORG_NAME).await? {
        Some(org) => org,
        None => store.create_organization(ORG_NAME, true).await?,
    };
    let org_id = org.id.clone();
    let admin = match store.user_by_email("admin@demo.theraroom.test").await? {
        Some(user) => user,
        None => {
            store
                .create_user(
                    Some(&org_id),
                    Role::Organization,
                    "Demo Practice Admin",
                    "admin@demo.theraroom.test",
                )
                .await?
        }
    };
    let mut therapists = Vec::new();
    for (name, email) in [
        ("Dr. Ada Lovelace", "ada@demo.theraroom.test"),
        ("Dr. Carl Rogers", "carl@demo.theraroom.test"),
    ] {
        let id = match store.user_by_email(email).await? {
            Some(user) => user.id,
            None => store.create_therapist(&org_id, name, email).await?.id,
        };
        therapists.push(id);
    }
    let client = match store.user_by_email("client@demo.theraroom.test").await? {
        Some(user) => user,
        None => {
            store
                .create_client(
                    &org_id,
                    Some(&therapists[0]),
                    "Casey Client",
                    "client@demo.theraroom.test",
                )
                .await?
        }
    };
    let hash = crate::accounts::password::hash(password)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let mut accounts = vec![(admin.id.clone(), Role::Organization)];
    accounts.extend(therapists.iter().map(|id| (id.clone(), Role::Therapist)));
    accounts.push((client.id.clone(), Role::Client));
    let mut minted = Vec::new();
    for (id, role) in accounts {
        store.set_password_hash(&id, &hash).await?;
        let email = store.user(&id).await?.map(|u| u.email).unwrap_or_default();
        let token = keys.issue(&id, role, Some(&org_id), None, ttl_secs).0;
        minted.push(Account { id, email, token });
    }
    let client = minted.pop().ok_or(sqlx::Error::RowNotFound)?;
    let mut minted = minted.into_iter();
    let org_admin = minted.next().ok_or(sqlx::Error::RowNotFound)?;
    Ok(DemoData {
        organization_id: org_id,
        org_admin,
        therapists: minted.collect(),
        client,
        password: password.to_string(),
    })
}
