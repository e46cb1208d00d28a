//! Organizations and their organization-level video switch.

use sqlx::AnyConnection;

use super::{flag, new_id, Store};
use crate::clock::now_ms;

/// An organization (a practice or clinic): the tenant boundary of all data.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Organization {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    theraptrack_controlled: i16,
    video_sessions_enabled: i16,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl Organization {
    /// Whether the organization manages per-therapist video switches and blog permissions.
    pub fn theraptrack_controlled(&self) -> bool {
        self.theraptrack_controlled != 0
    }
    /// The organization-level video switch.
    pub fn video_sessions_enabled(&self) -> bool {
        self.video_sessions_enabled != 0
    }
}

const COLUMNS: &str = "id, name, theraptrack_controlled, video_sessions_enabled, created_at";

impl Store {
    /// Creates an organization.
    pub async fn create_organization(
        &self,
        name: &str,
        theraptrack_controlled: bool,
    ) -> Result<Organization, sqlx::Error> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO organizations (id, name, theraptrack_controlled, video_sessions_enabled, created_at) \
             VALUES ($1, $2, $3, 1, $4)",
        )
        .bind(&id)
        .bind(name)
        .bind(flag(theraptrack_controlled))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        self.organization(&id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Looks an organization up by id.
    pub async fn organization(&self, id: &str) -> Result<Option<Organization>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM organizations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Looks an organization up by name (used by the idempotent demo seeding).
    pub async fn organization_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Organization>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM organizations WHERE name = $1 ORDER BY created_at LIMIT 1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await
    }
}

/// Sets the organization-level video switch inside a transaction.
pub async fn set_video_enabled(
    conn: &mut AnyConnection,
    id: &str,
    enabled: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organizations SET video_sessions_enabled = $1 WHERE id = $2")
        .bind(flag(enabled))
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}
