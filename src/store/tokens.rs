//! What a token's holder is in the database right now: the account behind a user token
//! or the guest behind a guest token, together with the token's revocation state, read
//! in one query per authenticated request. Also the revocation lists themselves.

use super::Store;
use crate::clock::now_ms;

/// The database view of a user token's subject.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserPrincipal {
    /// Role name, see [`crate::auth::Role`].
    pub role: String,
    /// Home organization (none for super admins).
    pub organization_id: Option<String>,
    /// When the account was disabled, Unix ms.
    pub disabled_at: Option<i64>,
    /// When this very token (`jti`) was revoked, Unix ms.
    pub token_revoked_at: Option<i64>,
    /// When all tokens of the subject issued until then were revoked, Unix ms.
    pub subject_revoked_at: Option<i64>,
}

/// The database view of a guest token's subject.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GuestPrincipal {
    /// The only session the guest was created for.
    pub session_id: String,
    /// Organization owning that session.
    pub organization_id: String,
    /// When this very token (`jti`) was revoked, Unix ms.
    pub token_revoked_at: Option<i64>,
    /// When all tokens of the guest issued until then were revoked, Unix ms.
    pub subject_revoked_at: Option<i64>,
}

/// Revocation columns shared by both principal queries (`$1` subject, `$2` jti).
const REVOCATION_COLUMNS: &str =
    "(SELECT r.revoked_at FROM revoked_tokens r WHERE r.jti = $2) AS token_revoked_at, \
     (SELECT rs.revoked_at FROM revoked_subjects rs WHERE rs.subject = $1) AS subject_revoked_at";

impl Store {
    /// The account `user_id` and the revocation state of token `jti`; `None` when no
    /// such user exists (deleted).
    pub async fn user_principal(
        &self,
        user_id: &str,
        jti: &str,
    ) -> Result<Option<UserPrincipal>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT u.role, u.organization_id, u.disabled_at, {REVOCATION_COLUMNS} \
             FROM users u WHERE u.id = $1"
        ))
        .bind(user_id)
        .bind(jti)
        .fetch_optional(self.pool())
        .await
    }

    /// The guest `guest_id` with its session's organization and the revocation state
    /// of token `jti`; `None` when no such guest exists.
    pub async fn guest_principal(
        &self,
        guest_id: &str,
        jti: &str,
    ) -> Result<Option<GuestPrincipal>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT g.session_id, s.organization_id, {REVOCATION_COLUMNS} \
             FROM guests g JOIN instant_sessions s ON s.id = g.session_id WHERE g.id = $1"
        ))
        .bind(guest_id)
        .bind(jti)
        .fetch_optional(self.pool())
        .await
    }

    /// Revokes one token until it would expire anyway (`expires_at`, Unix ms).
    /// Revoking twice keeps the first revocation.
    pub async fn revoke_token(
        &self,
        jti: &str,
        subject: &str,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        self.purge_expired_revocations().await?;
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, subject, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(subject)
        .bind(expires_at)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map(|_| ())
    }

    /// Revokes every token of `subject` issued until now; the entry is kept until
    /// `expires_at` (Unix ms), when all such tokens have expired.
    pub async fn revoke_subject(&self, subject: &str, expires_at: i64) -> Result<(), sqlx::Error> {
        self.purge_expired_revocations().await?;
        sqlx::query(
            "INSERT INTO revoked_subjects (subject, expires_at, revoked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (subject) DO UPDATE SET expires_at = excluded.expires_at, revoked_at = excluded.revoked_at",
        )
        .bind(subject)
        .bind(expires_at)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map(|_| ())
    }

    /// Deletes revocation entries whose tokens have all expired; returns how many.
    pub async fn purge_expired_revocations(&self) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        let tokens = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        let subjects = sqlx::query("DELETE FROM revoked_subjects WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(tokens + subjects)
    }

    /// Disables (or re-enables) an account; a disabled account's tokens are refused.
    /// Returns false when there is no such user.
    pub async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
    ) -> Result<bool, sqlx::Error> {
        let at = disabled.then(now_ms);
        let done = sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
            .bind(at)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

impl Store {
    /// Records an `auth.failed` audit entry: why, from which address, and whom a
    /// well-signed token claimed to be. Never the token itself.
    pub async fn record_auth_failure(
        &self,
        client_ip: Option<&str>,
        reason: &str,
        claimed_subject: Option<&str>,
        claimed_role: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let ip = client_ip.unwrap_or("unknown");
        let entry = super::audit::AuditEntry {
            organization_id: None,
            actor_id: claimed_subject.unwrap_or("anonymous"),
            actor_role: claimed_role.unwrap_or("anonymous"),
            action: "auth.failed",
            target_type: "client_ip",
            target_id: ip,
            before: None,
            after: Some(serde_json::json!({
                "reason": reason,
                "client_ip": ip,
                "claimed_subject": claimed_subject,
            })),
        };
        self.audit(entry).await
    }
}
