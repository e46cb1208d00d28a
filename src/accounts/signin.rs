//! Signing in, refreshing and signing out: the password check, the short access token,
//! and the refresh token family of one sign-in (rotation, replay detection).

use std::net::IpAddr;

use serde_json::json;

use super::{password, AccountError, AccountsConfig, ACCESS_TTL, REFRESH_TTL};
use crate::auth::{JwtKeys, Role};
use crate::clock::now_ms;
use crate::random::{digest, url_token};
use crate::store::audit::AuditEntry;
use crate::store::credentials::RefreshRow;
use crate::store::Store;

/// A successful sign-in or refresh: what the client keeps.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The bearer token for REST and `/rtc` (short-lived).
    pub access_token: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    /// The next refresh token (the cookie); single use.
    pub refresh_token: String,
    /// The account signed in.
    pub user_id: String,
}

/// Checks e-mail and password and starts a sign-in. Every refusal is the same
/// [`AccountError::InvalidCredentials`] (after the same argon2 work), counted by the
/// limiter and audited as `auth.login_failed` with the e-mail's digest.
pub async fn sign_in(
    store: &Store,
    keys: &JwtKeys,
    config: &AccountsConfig,
    email: &str,
    password_given: &str,
    address: Option<IpAddr>,
) -> Result<SignedIn, AccountError> {
    let email = super::normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
    if let Some(wait) = config.limiter.locked_for(&email, address) {
        return Err(AccountError::TooManyAttempts(wait));
    }
    let account = store.credentials_by_email(&email).await?;
    let hash = account.as_ref().and_then(|a| a.password_hash.clone());
    let matches = password::verify(password_given, hash).await;
    let account = account.filter(|a| matches && a.disabled_at.is_none());
    let Some(account) = account else {
        config.limiter.record_failure(&email, address);
        audit_failure(store, &email, address).await?;
        return Err(AccountError::InvalidCredentials);
    };
    let role = Role::parse(&account.role).ok_or(AccountError::Internal("unknown role"))?;
    store.purge_expired_refresh_tokens().await?;
    let org = account.organization_id.as_deref();
    let signed = start(store, keys, &account.user_id, role, org).await?;
    audit_user(store, &account.user_id, role, org, "auth.login").await?;
    tracing::info!(user = %account.user_id, "signed in");
    Ok(signed)
}

/// Exchanges a refresh token for a new access token and a new refresh token of the same
/// family. A token used before is a replay: its whole family is revoked.
pub async fn refresh(
    store: &Store,
    keys: &JwtKeys,
    refresh_token: &str,
) -> Result<SignedIn, AccountError> {
    let row = store
        .refresh_token(&digest(refresh_token))
        .await?
        .ok_or(AccountError::InvalidRefreshToken)?;
    if row.revoked_at.is_some() || row.expires_at <= now_ms() {
        return Err(AccountError::InvalidRefreshToken);
    }
    if row.used_at.is_some() || !store.claim_refresh_token(&row.id).await? {
        return Err(replayed(store, &row).await);
    }
    let principal = store.user_principal(&row.user_id, "").await?;
    let usable = principal.filter(|p| p.disabled_at.is_none());
    let Some(principal) = usable else {
        store.revoke_refresh_family(&row.family_id).await?;
        return Err(AccountError::InvalidRefreshToken);
    };
    let role = Role::parse(&principal.role).ok_or(AccountError::Internal("unknown role"))?;
    let org = principal.organization_id.as_deref();
    mint(
        store,
        keys,
        &row.user_id,
        role,
        org,
        &row.family_id,
        row.expires_at,
    )
    .await
}

/// Ends the sign-in a refresh token belongs to (sign-out); unknown tokens are ignored.
pub async fn end(store: &Store, refresh_token: &str) -> Result<(), AccountError> {
    if let Some(row) = store.refresh_token(&digest(refresh_token)).await? {
        store.revoke_refresh_family(&row.family_id).await?;
    }
    Ok(())
}

/// Ends every sign-in of an account (deactivation).
pub async fn end_all(store: &Store, user_id: &str) -> Result<(), AccountError> {
    store.revoke_refresh_tokens_of(user_id).await?;
    Ok(())
}

/// Starts a sign-in for an account that just proved itself another way (an accepted
/// invitation).
pub async fn start(
    store: &Store,
    keys: &JwtKeys,
    user_id: &str,
    role: Role,
    org_id: Option<&str>,
) -> Result<SignedIn, AccountError> {
    let family = uuid::Uuid::new_v4().to_string();
    let expires_at = now_ms() + REFRESH_TTL.as_millis() as i64;
    mint(store, keys, user_id, role, org_id, &family, expires_at).await
}

async fn mint(
    store: &Store,
    keys: &JwtKeys,
    user_id: &str,
    role: Role,
    org_id: Option<&str>,
    family: &str,
    family_expires_at: i64,
) -> Result<SignedIn, AccountError> {
    let refresh_token = url_token();
    store
        .insert_refresh_token(family, user_id, &digest(&refresh_token), family_expires_at)
        .await?;
    let (access_token, claims) =
        keys.issue(user_id, role, org_id, None, ACCESS_TTL.as_secs() as i64);
    Ok(SignedIn {
        access_token,
        expires_in: (claims.exp - claims.iat).max(0) as u64,
        refresh_token,
        user_id: user_id.to_string(),
    })
}

async fn replayed(store: &Store, row: &RefreshRow) -> AccountError {
    tracing::warn!(user = %row.user_id, "a used refresh token was presented again; its sign-in is revoked");
    let outcome = async {
        store.revoke_refresh_family(&row.family_id).await?;
        let entry = AuditEntry {
            organization_id: None,
            actor_id: &row.user_id,
            actor_role: "unknown",
            action: "auth.refresh_replayed",
            target_type: "user",
            target_id: &row.user_id,
            before: None,
            after: Some(json!({ "family_id": row.family_id })),
        };
        store.audit(entry).await
    };
    match outcome.await {
        Ok(()) => AccountError::InvalidRefreshToken,
        Err(err) => AccountError::Store(err),
    }
}

async fn audit_failure(
    store: &Store,
    email: &str,
    address: Option<IpAddr>,
) -> Result<(), sqlx::Error> {
    let email_digest = digest(email);
    let address = address.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let entry = AuditEntry {
        organization_id: None,
        actor_id: "anonymous",
        actor_role: "anonymous",
        action: "auth.login_failed",
        target_type: "email_digest",
        target_id: &email_digest,
        before: None,
        after: Some(json!({ "client_ip": address })),
    };
    store.audit(entry).await
}

async fn audit_user(
    store: &Store,
    user_id: &str,
    role: Role,
    org: Option<&str>,
    action: &str,
) -> Result<(), sqlx::Error> {
    let entry = AuditEntry {
        organization_id: org,
        actor_id: user_id,
        actor_role: role.as_str(),
        action,
        target_type: "user",
        target_id: user_id,
        before: None,
        after: None,
    };
    store.audit(entry).await
}
