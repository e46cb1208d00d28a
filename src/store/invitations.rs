//! Invitations: a pending account waiting for its person to set a password. The link's
//! token is stored as its SHA-256 only.

use super::credentials::set_password_hash;
use super::users::{insert_person, NewPerson};
use super::{new_id, Store};
use crate::auth::Role;
use crate::clock::now_ms;

/// An invitation row, with its organization's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invitation {
    /// Identifier.
    pub id: String,
    /// Organization the person will belong to (none for a super admin).
    pub organization_id: Option<String>,
    /// That organization's name.
    pub organization_name: Option<String>,
    /// Lower-cased e-mail address of the account to be.
    pub email: String,
    /// Name of the account to be.
    pub display_name: String,
    /// Role name of the account to be.
    pub role: String,
    /// For clients: their therapist.
    pub therapist_id: Option<String>,
    /// Who invited (user id, or `cli`).
    pub invited_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// When the person set their password.
    pub accepted_at: Option<i64>,
    /// When an administrator withdrew it (or a newer invitation replaced it).
    pub withdrawn_at: Option<i64>,
}

/// What a new invitation says.
#[derive(Debug, Clone)]
pub struct NewInvitation<'a> {
    /// Organization (none for a super admin).
    pub organization_id: Option<&'a str>,
    /// Lower-cased e-mail.
    pub email: &'a str,
    /// Name.
    pub display_name: &'a str,
    /// Role of the account to be.
    pub role: Role,
    /// For clients: their therapist.
    pub therapist_id: Option<&'a str>,
    /// Who invites.
    pub invited_by: &'a str,
    /// SHA-256 of the link's token.
    pub token_hash: &'a str,
    /// Unix ms.
    pub expires_at: i64,
}

/// How accepting went, decided inside the accepting transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// The account was created: its id.
    Created(String),
    /// Someone accepted it first (a concurrent accept), or it was withdrawn meanwhile.
    Gone,
}

const COLUMNS: &str = "i.id, i.organization_id, o.name AS organization_name, i.email, i.display_name, \
     i.role, i.therapist_id, i.invited_by, i.created_at, i.expires_at, i.accepted_at, i.withdrawn_at";

impl Store {
    /// Stores an invitation; a pending one for the same e-mail is withdrawn (replaced).
    pub async fn insert_invitation(
        &self,
        new: &NewInvitation<'_>,
    ) -> Result<Invitation, sqlx::Error> {
        let id = new_id();
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE invitations SET withdrawn_at = $1 \
             WHERE email = $2 AND accepted_at IS NULL AND withdrawn_at IS NULL",
        )
        .bind(now)
        .bind(new.email)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO invitations (id, organization_id, email, display_name, role, therapist_id, \
               token_hash, invited_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(new.organization_id)
        .bind(new.email)
        .bind(new.display_name)
        .bind(new.role.as_str())
        .bind(new.therapist_id)
        .bind(new.token_hash)
        .bind(new.invited_by)
        .bind(now)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.invitation(&id).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// An invitation by id.
    pub async fn invitation(&self, id: &str) -> Result<Option<Invitation>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invitations i LEFT JOIN organizations o ON o.id = i.organization_id \
             WHERE i.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// An invitation by the digest of its link's token.
    pub async fn invitation_by_token_hash(
        &self,
        hash: &str,
    ) -> Result<Option<Invitation>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invitations i LEFT JOIN organizations o ON o.id = i.organization_id \
             WHERE i.token_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await
    }

    /// An organization's invitations that can still be accepted, newest first.
    pub async fn pending_invitations(
        &self,
        organization_id: &str,
    ) -> Result<Vec<Invitation>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invitations i LEFT JOIN organizations o ON o.id = i.organization_id \
             WHERE i.organization_id = $1 AND i.accepted_at IS NULL AND i.withdrawn_at IS NULL \
               AND i.expires_at > $2 \
             ORDER BY i.created_at DESC, i.id"
        ))
        .bind(organization_id)
        .bind(now_ms())
        .fetch_all(self.pool())
        .await
    }

    /// Withdraws a pending invitation of `organization_id`; false when there is none.
    pub async fn withdraw_invitation(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE invitations SET withdrawn_at = $1 \
             WHERE id = $2 AND organization_id = $3 AND accepted_at IS NULL AND withdrawn_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .bind(organization_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Accepts an invitation in one transaction: creates the account with its password
    /// hash and marks the invitation used, only if it is still pending and unexpired.
    /// A duplicate e-mail surfaces as the database's unique violation.
    pub async fn accept_invitation(
        &self,
        invitation: &Invitation,
        display_name: &str,
        password_hash: &str,
    ) -> Result<Acceptance, sqlx::Error> {
        let role = Role::parse(&invitation.role).ok_or(sqlx::Error::RowNotFound)?;
        let mut tx = self.pool().begin().await?;
        let person = NewPerson {
            organization_id: invitation.organization_id.as_deref(),
            role,
            display_name,
            email: &invitation.email,
            therapist_id: invitation.therapist_id.as_deref(),
        };
        let user_id = insert_person(&mut tx, &person).await?;
        set_password_hash(&mut tx, &user_id, password_hash).await?;
        let now = now_ms();
        let marked = sqlx::query(
            "UPDATE invitations SET accepted_at = $1, user_id = $2 \
             WHERE id = $3 AND accepted_at IS NULL AND withdrawn_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&user_id)
        .bind(&invitation.id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Acceptance::Gone);
        }
        tx.commit().await?;
        Ok(Acceptance::Created(user_id))
    }
}
