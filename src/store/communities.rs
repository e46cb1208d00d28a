//! Communities: the groups of an organization's users whose moderators propose group
//! sessions and whose members join them. Reads are [`Store`] methods; writes take the
//! caller's transaction so the handler can audit them in the same commit.

use sqlx::AnyConnection;

use super::{new_id, Store};
use crate::clock::now_ms;

/// A community of an organization: the audience of group sessions.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Community {
    /// Identifier.
    pub id: String,
    /// Owning organization.
    pub organization_id: String,
    /// Name, unique within the organization.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// Who created it (an organization administrator).
    pub created_by: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

/// A community with the caller's role in it (None for administrators who are not
/// members).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommunityWithRole {
    /// The community.
    #[sqlx(flatten)]
    pub community: Community,
    /// `member`, `moderator` or None.
    pub my_role: Option<String>,
    /// Number of members (moderators included).
    pub member_count: i64,
}

/// A member of a community, with the user's name and platform role.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommunityMember {
    /// Community.
    pub community_id: String,
    /// User.
    pub user_id: String,
    /// `member` or `moderator`.
    pub role: String,
    /// When added, Unix ms.
    pub added_at: i64,
    /// The user's display name.
    pub display_name: String,
    /// The user's platform role (`client`, `therapist`, ...).
    pub user_role: String,
}

const COMMUNITY_COLUMNS: &str =
    "c.id, c.organization_id, c.name, c.description, c.created_by, c.created_at";

impl Store {
    /// Looks a community up by id.
    pub async fn community(&self, id: &str) -> Result<Option<Community>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COMMUNITY_COLUMNS} FROM communities c WHERE c.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Communities a user belongs to, with the user's role, by name.
    pub async fn communities_of_member(
        &self,
        user_id: &str,
    ) -> Result<Vec<CommunityWithRole>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COMMUNITY_COLUMNS}, m.role AS my_role, \
               (SELECT COUNT(*) FROM community_members mc WHERE mc.community_id = c.id) AS member_count \
             FROM communities c JOIN community_members m ON m.community_id = c.id \
             WHERE m.user_id = $1 ORDER BY c.name, c.id"
        ))
        .bind(user_id)
        .fetch_all(self.pool())
        .await
    }

    /// All communities of an organization (for its administrators), with the role of
    /// `user_id` in each, by name.
    pub async fn communities_of_organization(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> Result<Vec<CommunityWithRole>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COMMUNITY_COLUMNS}, \
               (SELECT m.role FROM community_members m WHERE m.community_id = c.id AND m.user_id = $2) AS my_role, \
               (SELECT COUNT(*) FROM community_members mc WHERE mc.community_id = c.id) AS member_count \
             FROM communities c WHERE c.organization_id = $1 ORDER BY c.name, c.id"
        ))
        .bind(organization_id)
        .bind(user_id)
        .fetch_all(self.pool())
        .await
    }

    /// The role (`member` or `moderator`) of a user in a community, if any.
    pub async fn community_role(
        &self,
        community_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT role FROM community_members WHERE community_id = $1 AND user_id = $2",
        )
        .bind(community_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Members of a community, moderators first, then by name.
    pub async fn community_members(
        &self,
        community_id: &str,
    ) -> Result<Vec<CommunityMember>, sqlx::Error> {
        sqlx::query_as(
            "SELECT m.community_id, m.user_id, m.role, m.added_at, u.display_name, u.role AS user_role \
             FROM community_members m JOIN users u ON u.id = m.user_id \
             WHERE m.community_id = $1 ORDER BY m.role DESC, u.display_name, m.user_id",
        )
        .bind(community_id)
        .fetch_all(self.pool())
        .await
    }

    /// Which of `therapist_ids` are therapists who belong to the community (any role).
    pub async fn community_therapists(
        &self,
        community_id: &str,
        therapist_ids: &[String],
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut found = Vec::new();
        for id in therapist_ids {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT t.id FROM therapists t JOIN community_members m ON m.user_id = t.id \
                 JOIN communities c ON c.id = m.community_id \
                 WHERE m.community_id = $1 AND t.id = $2 AND t.organization_id = c.organization_id",
            )
            .bind(community_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
            if let Some((tid,)) = row {
                found.push(tid);
            }
        }
        Ok(found)
    }
}

/// Creates a community.
pub async fn create_community(
    conn: &mut AnyConnection,
    organization_id: &str,
    name: &str,
    description: Option<&str>,
    created_by: &str,
) -> Result<Community, sqlx::Error> {
    let c = Community {
        id: new_id(),
        organization_id: organization_id.to_string(),
        name: name.to_string(),
        description: description.map(str::to_string),
        created_by: created_by.to_string(),
        created_at: now_ms(),
    };
    sqlx::query(
        "INSERT INTO communities (id, organization_id, name, description, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&c.id)
    .bind(&c.organization_id)
    .bind(&c.name)
    .bind(c.description.as_deref())
    .bind(&c.created_by)
    .bind(c.created_at)
    .execute(conn)
    .await?;
    Ok(c)
}

/// Adds a member or changes the role of an existing one. Returns the role the user
/// had before (None when newly added), so the caller can audit what changed.
pub async fn upsert_member(
    conn: &mut AnyConnection,
    community_id: &str,
    user_id: &str,
    role: &str,
) -> Result<Option<String>, sqlx::Error> {
    // A write first: it takes SQLite's write lock (and PostgreSQL's row lock) before
    // the read, so the role read and the change cannot interleave with another writer.
    sqlx::query(
        "UPDATE community_members SET role = role WHERE community_id = $1 AND user_id = $2",
    )
    .bind(community_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    let previous: Option<(String,)> = sqlx::query_as(
        "SELECT role FROM community_members WHERE community_id = $1 AND user_id = $2",
    )
    .bind(community_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((previous,)) = previous {
        sqlx::query(
            "UPDATE community_members SET role = $1 WHERE community_id = $2 AND user_id = $3",
        )
        .bind(role)
        .bind(community_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
        return Ok(Some(previous));
    }
    sqlx::query(
        "INSERT INTO community_members (community_id, user_id, role, added_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(community_id)
    .bind(user_id)
    .bind(role)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(None)
}

/// Users of a community (members and moderators).
pub async fn community_user_ids(
    conn: &mut AnyConnection,
    community_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT user_id FROM community_members WHERE community_id = $1 ORDER BY user_id",
    )
    .bind(community_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
