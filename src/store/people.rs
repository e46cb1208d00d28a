//! An organization's people as its administrators see them: therapists and clients with
//! their account state, searchable by name or e-mail and filterable by status.

use super::{flag, Store};
use crate::clock::now_ms;

/// Which accounts a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not deactivated.
    Active,
    /// Deactivated.
    Deactivated,
    /// Both.
    All,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Deactivated => "deactivated",
            Status::All => "all",
        }
    }
}

/// A listing's filters.
#[derive(Debug, Clone)]
pub struct PeopleQuery {
    /// Case-insensitive substring of the name or e-mail; empty matches everyone.
    pub text: String,
    /// Account state.
    pub status: Status,
    /// Clients only: of this therapist.
    pub therapist_id: Option<String>,
    /// Therapists only: with video on (`Some(true)`) or off.
    pub video: Option<bool>,
}

/// A therapist with account state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TherapistPerson {
    /// User id.
    pub id: String,
    /// E-mail.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// When deactivated, Unix ms.
    pub disabled_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Partner code of the seed documents.
    pub partner_code: String,
    /// The therapist's own video switch (0/1).
    pub video_sessions_enabled: i16,
    /// Blog permission (0/1).
    pub can_post_blogs: i16,
}

/// A client with account state and therapist.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientPerson {
    /// User id.
    pub id: String,
    /// E-mail.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// When deactivated, Unix ms.
    pub disabled_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Organization.
    pub organization_id: String,
    /// Their therapist.
    pub therapist_id: Option<String>,
    /// That therapist's name.
    pub therapist_name: Option<String>,
}

const THERAPIST_SELECT: &str =
    "SELECT u.id, u.email, u.display_name, u.disabled_at, u.created_at, \
       t.partner_code, t.video_sessions_enabled, t.can_post_blogs \
     FROM therapists t JOIN users u ON u.id = t.id";

const CLIENT_SELECT: &str = "SELECT u.id, u.email, u.display_name, u.disabled_at, u.created_at, \
       c.organization_id, c.therapist_id, tu.display_name AS therapist_name \
     FROM clients c JOIN users u ON u.id = c.id LEFT JOIN users tu ON tu.id = c.therapist_id";

/// Matches `$2` (pattern) and `$3` (status) against `u`.
const PERSON_FILTER: &str =
    "(LOWER(u.display_name) LIKE $2 ESCAPE '\\' OR LOWER(u.email) LIKE $2 ESCAPE '\\') \
     AND ($3 = 'all' OR ($3 = 'active' AND u.disabled_at IS NULL) \
          OR ($3 = 'deactivated' AND u.disabled_at IS NOT NULL))";

/// A LIKE pattern matching `text` anywhere, with LIKE's own characters escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Therapists of an organization matching `query`, by name.
    pub async fn list_therapist_people(
        &self,
        organization_id: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<TherapistPerson>, sqlx::Error> {
        let video = query.video.map_or(-1, |on| i64::from(flag(on)));
        sqlx::query_as(&format!(
            "{THERAPIST_SELECT} WHERE t.organization_id = $1 AND {PERSON_FILTER} \
               AND ($4 < 0 OR t.video_sessions_enabled = $4) \
             ORDER BY u.display_name, u.id LIMIT 500"
        ))
        .bind(organization_id)
        .bind(contains_pattern(&query.text))
        .bind(query.status.as_str())
        .bind(video)
        .fetch_all(self.pool())
        .await
    }

    /// One therapist of an organization.
    pub async fn therapist_person(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<TherapistPerson>, sqlx::Error> {
        sqlx::query_as(&format!(
            "{THERAPIST_SELECT} WHERE t.organization_id = $1 AND t.id = $2"
        ))
        .bind(organization_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Clients of an organization matching `query`, by name.
    pub async fn list_client_people(
        &self,
        organization_id: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<ClientPerson>, sqlx::Error> {
        sqlx::query_as(&format!(
            "{CLIENT_SELECT} WHERE c.organization_id = $1 AND {PERSON_FILTER} \
               AND ($4 = '' OR c.therapist_id = $4) AND c.deleted_at IS NULL \
             ORDER BY u.display_name, u.id LIMIT 500"
        ))
        .bind(organization_id)
        .bind(contains_pattern(&query.text))
        .bind(query.status.as_str())
        .bind(query.therapist_id.clone().unwrap_or_default())
        .fetch_all(self.pool())
        .await
    }

    /// One client, wherever it belongs (the caller checks the organization).
    pub async fn client_person(&self, id: &str) -> Result<Option<ClientPerson>, sqlx::Error> {
        sqlx::query_as(&format!(
            "{CLIENT_SELECT} WHERE c.id = $1 AND c.deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Renames an account.
    pub async fn set_display_name(&self, user_id: &str, name: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
            .bind(name)
            .bind(user_id)
            .execute(self.pool())
            .await
            .map(|_| ())
    }

    /// Assigns a client to a therapist (or to none).
    pub async fn set_client_therapist(
        &self,
        client_id: &str,
        therapist_id: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE clients SET therapist_id = $1 WHERE id = $2")
            .bind(therapist_id)
            .bind(client_id)
            .execute(self.pool())
            .await
            .map(|_| ())
    }

    /// Deactivates (`true`) or reactivates an account, unless it already is; true when
    /// the state changed.
    pub async fn set_account_active(
        &self,
        user_id: &str,
        active: bool,
    ) -> Result<bool, sqlx::Error> {
        let done = if active {
            sqlx::query(
                "UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL",
            )
            .bind(user_id)
            .execute(self.pool())
            .await?
        } else {
            sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(now_ms())
                .bind(user_id)
                .execute(self.pool())
                .await?
        };
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(super::contains_pattern(" Ada "), "%ada%");
        assert_eq!(super::contains_pattern("50%_\\"), "%50\\%\\_\\\\%");
        assert_eq!(super::contains_pattern(""), "%%");
    }
}
