//! Users, therapists and clients.

use sqlx::AnyConnection;

use super::{flag, new_id, Store};
use crate::auth::Role;
use crate::clock::now_ms;

/// A person who can sign in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// Identifier (the JWT subject).
    pub id: String,
    /// Home organization (none for super admins).
    pub organization_id: Option<String>,
    /// Role name, see [`Role`].
    pub role: String,
    /// Name shown to others.
    pub display_name: String,
    /// Unique e-mail address.
    pub email: String,
}

/// A therapist with the user fields joined in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Therapist {
    /// Identifier, equal to the user id.
    pub id: String,
    /// Organization the therapist works for.
    pub organization_id: String,
    /// The partner code of the seed documents.
    pub partner_code: String,
    video_sessions_enabled: i16,
    can_post_blogs: i16,
    /// Name shown to others.
    pub display_name: String,
    /// E-mail address.
    pub email: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl Therapist {
    /// Therapist-level video switch.
    pub fn video_sessions_enabled(&self) -> bool {
        self.video_sessions_enabled != 0
    }
    /// Blog posting permission (docs/RECORDS.md).
    pub fn can_post_blogs(&self) -> bool {
        self.can_post_blogs != 0
    }
}

/// A therapist with usage counts, for the video-settings listing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TherapistUsage {
    /// The therapist.
    #[sqlx(flatten)]
    pub therapist: Therapist,
    /// Active (not soft-deleted) clients assigned to the therapist.
    pub client_count: i64,
    /// Video sessions the therapist has created.
    pub session_count: i64,
}

const THERAPIST_COLUMNS: &str =
    "t.id, t.organization_id, t.partner_code, t.video_sessions_enabled, \
     t.can_post_blogs, u.display_name, u.email, t.created_at";

impl Store {
    /// Creates a user row.
    pub async fn create_user(
        &self,
        organization_id: Option<&str>,
        role: Role,
        display_name: &str,
        email: &str,
    ) -> Result<User, sqlx::Error> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO users (id, organization_id, role, display_name, email, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(organization_id)
        .bind(role.as_str())
        .bind(display_name)
        .bind(email)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(User {
            id,
            organization_id: organization_id.map(str::to_string),
            role: role.as_str().to_string(),
            display_name: display_name.to_string(),
            email: email.to_string(),
        })
    }

    /// Looks a user up by id.
    pub async fn user(&self, id: &str) -> Result<Option<User>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, organization_id, role, display_name, email FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Looks a user up by e-mail.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, organization_id, role, display_name, email FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(self.pool())
        .await
    }

    /// Creates a therapist (user + therapist rows) in one transaction.
    pub async fn create_therapist(
        &self,
        organization_id: &str,
        display_name: &str,
        email: &str,
    ) -> Result<Therapist, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let person = NewPerson {
            organization_id: Some(organization_id),
            role: Role::Therapist,
            display_name,
            email,
            therapist_id: None,
        };
        let id = insert_person(&mut tx, &person).await?;
        tx.commit().await?;
        self.therapist(&id).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// Creates a client (user + client rows), optionally assigned to a therapist.
    pub async fn create_client(
        &self,
        organization_id: &str,
        therapist_id: Option<&str>,
        display_name: &str,
        email: &str,
    ) -> Result<User, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let person = NewPerson {
            organization_id: Some(organization_id),
            role: Role::Client,
            display_name,
            email,
            therapist_id,
        };
        let id = insert_person(&mut tx, &person).await?;
        tx.commit().await?;
        self.user(&id).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// Looks a therapist up by id.
    pub async fn therapist(&self, id: &str) -> Result<Option<Therapist>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {THERAPIST_COLUMNS} FROM therapists t JOIN users u ON u.id = t.id WHERE t.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Looks a therapist up by partner code (the seed documents' `partnerId`).
    pub async fn therapist_by_partner_code(
        &self,
        partner_code: &str,
    ) -> Result<Option<Therapist>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {THERAPIST_COLUMNS} FROM therapists t JOIN users u ON u.id = t.id WHERE t.partner_code = $1"
        ))
        .bind(partner_code)
        .fetch_optional(self.pool())
        .await
    }

    /// All therapists of an organization, by name.
    pub async fn therapists_of(
        &self,
        organization_id: &str,
    ) -> Result<Vec<Therapist>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {THERAPIST_COLUMNS} FROM therapists t JOIN users u ON u.id = t.id \
             WHERE t.organization_id = $1 ORDER BY u.display_name, t.id"
        ))
        .bind(organization_id)
        .fetch_all(self.pool())
        .await
    }

    /// All therapists of an organization with client and session counts, in one query.
    pub async fn therapist_usage(
        &self,
        organization_id: &str,
    ) -> Result<Vec<TherapistUsage>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {THERAPIST_COLUMNS}, \
               (SELECT COUNT(*) FROM clients c WHERE c.therapist_id = t.id AND c.deleted_at IS NULL) AS client_count, \
               (SELECT COUNT(*) FROM instant_sessions s WHERE s.therapist_id = t.id) AS session_count \
             FROM therapists t JOIN users u ON u.id = t.id \
             WHERE t.organization_id = $1 ORDER BY u.display_name, t.id"
        ))
        .bind(organization_id)
        .fetch_all(self.pool())
        .await
    }

    /// Whether `client_id` is an active (not soft-deleted) client of organization `org_id`.
    pub async fn is_active_client_of(
        &self,
        client_id: &str,
        org_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM clients WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL",
        )
        .bind(client_id)
        .bind(org_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }
}

/// Sets a therapist's video switch inside a transaction.
pub async fn set_therapist_video(
    conn: &mut AnyConnection,
    id: &str,
    enabled: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE therapists SET video_sessions_enabled = $1 WHERE id = $2")
        .bind(flag(enabled))
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Sets a therapist's blog permission inside a transaction, only if it is not set so
/// already: false when nothing changed (it was already granted or revoked). The check
/// and the change are one statement, so of concurrent identical requests exactly one
/// changes the row.
pub async fn set_blog_permission(
    conn: &mut AnyConnection,
    id: &str,
    allowed: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE therapists SET can_post_blogs = $1 WHERE id = $2 AND can_post_blogs <> $1",
    )
    .bind(flag(allowed))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A person to create: the account, plus the therapist or client row its role needs.
#[derive(Debug, Clone)]
pub struct NewPerson<'a> {
    /// Home organization (none for super admins).
    pub organization_id: Option<&'a str>,
    /// Role of the account.
    pub role: Role,
    /// Name shown to others.
    pub display_name: &'a str,
    /// E-mail address, already lower-cased.
    pub email: &'a str,
    /// For clients: their therapist, if any.
    pub therapist_id: Option<&'a str>,
}

/// Inserts a person inside a transaction: the `users` row and, for therapists and
/// clients, the row of their role (a therapist gets a fresh partner code). Returns the id.
pub async fn insert_person(
    conn: &mut AnyConnection,
    person: &NewPerson<'_>,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO users (id, organization_id, role, display_name, email, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(person.organization_id)
    .bind(person.role.as_str())
    .bind(person.display_name)
    .bind(person.email)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    match (person.role, person.organization_id) {
        (Role::Therapist, Some(org)) => {
            let partner_code = format!("TR{}", &id.replace('-', "")[..10].to_uppercase());
            sqlx::query(
                "INSERT INTO therapists (id, organization_id, partner_code, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(org)
            .bind(&partner_code)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        (Role::Client, Some(org)) => {
            sqlx::query("INSERT INTO clients (id, organization_id, therapist_id, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&id)
                .bind(org)
                .bind(person.therapist_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(id)
}
