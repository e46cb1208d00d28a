//! Sign-in credentials: the password hash on an account and the rotating refresh tokens
//! of its sign-ins. Tokens are stored as SHA-256 hex digests, never as themselves.

use sqlx::AnyConnection;

use super::{new_id, Store};
use crate::clock::now_ms;

/// What sign-in needs to know about an account, looked up by e-mail.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    /// The account.
    pub user_id: String,
    /// Role name, see [`crate::auth::Role`].
    pub role: String,
    /// Home organization (none for super admins).
    pub organization_id: Option<String>,
    /// The argon2id PHC string; `None` until the person set a password.
    pub password_hash: Option<String>,
    /// Set when the account is deactivated.
    pub disabled_at: Option<i64>,
}

/// One refresh token's row, found by its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    /// Row id.
    pub id: String,
    /// The sign-in this token descends from.
    pub family_id: String,
    /// The account.
    pub user_id: String,
    /// When the family ends (fixed at sign-in), Unix ms.
    pub expires_at: i64,
    /// When it was exchanged for a new one; a used token presented again is a replay.
    pub used_at: Option<i64>,
    /// When it (or its family) was revoked.
    pub revoked_at: Option<i64>,
}

impl Store {
    /// The credentials of the account with this (lower-cased) e-mail, if any.
    pub async fn credentials_by_email(
        &self,
        email: &str,
    ) -> Result<Option<Credentials>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id AS user_id, role, organization_id, password_hash, disabled_at \
             FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(self.pool())
        .await
    }

    /// Sets (or replaces) the password hash of an account.
    pub async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<(), sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        set_password_hash(&mut conn, user_id, hash).await
    }

    /// Stores a new refresh token of `family_id` (a new sign-in passes a new family).
    pub async fn insert_refresh_token(
        &self,
        family_id: &str,
        user_id: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(family_id)
        .bind(user_id)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The refresh token with this hash, if it was ever issued.
    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, family_id, user_id, expires_at, used_at, revoked_at \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Marks a refresh token used, only if nobody did before (two concurrent refreshes
    /// with one token: exactly one wins). True when this call marked it.
    pub async fn claim_refresh_token(&self, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 \
             WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes every token of a sign-in (replay, sign-out).
    pub async fn revoke_refresh_family(&self, family_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(family_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Revokes every refresh token of an account (deactivation).
    pub async fn revoke_refresh_tokens_of(&self, user_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes refresh tokens whose family ended; returns how many.
    pub async fn purge_expired_refresh_tokens(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

/// Sets (or replaces) the password hash of an account inside a transaction.
pub async fn set_password_hash(
    conn: &mut AnyConnection,
    user_id: &str,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(conn)
        .await
        .map(|_| ())
}
