//! Group therapy (seed 001): communities, group sessions, therapist invitations and
//! member participation.
//!
//! Reads that need no transaction are [`Store`] methods; every write takes the
//! caller's transaction (`&mut AnyConnection`) so the handler can add the audit entry
//! and the notifications to the same commit. Changes that depend on a session's
//! current state (responses, joins, cancellation) first call [`lock_session`].

use serde_json::json;
use sqlx::AnyConnection;

use super::notifications::{self, NewNotification, Notification, NotificationKind};
use super::{new_id, Backend, Store};
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

/// A group therapy session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupSession {
    /// Identifier.
    pub id: String,
    /// Community whose members may join.
    pub community_id: String,
    /// Organization (the community's).
    pub organization_id: String,
    /// The moderator who proposed it.
    pub created_by: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// `virtual` or `in_person`.
    pub session_type: String,
    /// External meeting link of a virtual session (None: a TheraRoom room is used).
    pub meeting_link: Option<String>,
    /// Place of an in-person session.
    pub location: Option<String>,
    /// Full address of an in-person session.
    pub location_address: Option<String>,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// Duration in minutes (15–180).
    pub duration_minutes: i64,
    /// End, Unix ms (start + duration).
    pub end_ms: i64,
    /// Seats for members (2–50).
    pub max_participants: i64,
    /// `pending_approval`, `approved`, `cancelled` or `completed`.
    pub status: String,
    /// The TheraRoom video room, once created.
    pub video_session_id: Option<String>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
    /// When cancelled, Unix ms.
    pub cancelled_at: Option<i64>,
    /// Participants holding a seat (not cancelled).
    pub participant_count: i64,
}

/// A therapist's invitation to co-lead a group session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invitation {
    /// Identifier.
    pub id: String,
    /// Session.
    pub session_id: String,
    /// Invited therapist.
    pub therapist_id: String,
    /// `pending`, `accepted` or `declined`.
    pub status: String,
    /// Optional message left with the response.
    pub message: Option<String>,
    /// When invited, Unix ms.
    pub invited_at: i64,
    /// When answered, Unix ms.
    pub responded_at: Option<i64>,
    /// The therapist's display name.
    pub therapist_name: String,
}

/// A member's registration in a group session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupParticipant {
    /// Identifier.
    pub id: String,
    /// Session.
    pub session_id: String,
    /// Member.
    pub user_id: String,
    /// `registered`, `attended`, `no_show` or `cancelled`.
    pub attendance_status: String,
    /// When (last) joined, Unix ms.
    pub joined_at: i64,
    /// When left, Unix ms.
    pub left_at: Option<i64>,
    /// The member's display name.
    pub display_name: String,
}

/// What a new group session is made of (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewGroupSession<'a> {
    /// Community.
    pub community_id: &'a str,
    /// Organization of the community.
    pub organization_id: &'a str,
    /// Moderator.
    pub created_by: &'a str,
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// `virtual` or `in_person`.
    pub session_type: &'a str,
    /// External link (virtual).
    pub meeting_link: Option<&'a str>,
    /// Place (in person).
    pub location: Option<&'a str>,
    /// Address (in person).
    pub location_address: Option<&'a str>,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// Duration in minutes.
    pub duration_minutes: i64,
    /// Seats.
    pub max_participants: i64,
}

/// Filters of a session listing.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter<'a> {
    /// Only this community.
    pub community_id: Option<&'a str>,
    /// Only this status.
    pub status: Option<&'a str>,
    /// Only sessions that have not ended at this time (Unix ms).
    pub not_ended_at: Option<i64>,
}

const SEATS_TAKEN: &str = "(SELECT COUNT(*) FROM group_session_participants pc \
     WHERE pc.session_id = g.id AND pc.attendance_status <> 'cancelled')";

fn session_columns() -> String {
    format!(
        "g.id, g.community_id, g.organization_id, g.created_by, g.title, g.description, g.session_type, \
         g.meeting_link, g.location, g.location_address, g.start_ms, g.duration_minutes, g.end_ms, \
         g.max_participants, g.status, g.video_session_id, g.created_at, g.updated_at, g.cancelled_at, \
         {SEATS_TAKEN} AS participant_count"
    )
}

const COMMUNITY_COLUMNS: &str =
    "c.id, c.organization_id, c.name, c.description, c.created_by, c.created_at";

const INVITATION_COLUMNS: &str =
    "i.id, i.session_id, i.therapist_id, i.status, i.message, i.invited_at, \
     i.responded_at, u.display_name AS therapist_name";

const PARTICIPANT_COLUMNS: &str =
    "p.id, p.session_id, p.user_id, p.attendance_status, p.joined_at, \
     p.left_at, u.display_name";

/// Appends the filter clauses to `sql`, numbering parameters from `next`; returns the
/// values to bind, in order.
fn filter_sql(sql: &mut String, filter: &SessionFilter<'_>, mut next: usize) -> Vec<FilterValue> {
    let mut values = Vec::new();
    if let Some(c) = filter.community_id {
        sql.push_str(&format!(" AND g.community_id = ${next}"));
        values.push(FilterValue::Text(c.to_string()));
        next += 1;
    }
    if let Some(s) = filter.status {
        sql.push_str(&format!(" AND g.status = ${next}"));
        values.push(FilterValue::Text(s.to_string()));
        next += 1;
    }
    if let Some(t) = filter.not_ended_at {
        sql.push_str(&format!(" AND g.end_ms > ${next}"));
        values.push(FilterValue::Int(t));
    }
    values
}

enum FilterValue {
    Text(String),
    Int(i64),
}

async fn fetch_sessions(
    store: &Store,
    sql: &str,
    fixed: &[&str],
    values: Vec<FilterValue>,
) -> Result<Vec<GroupSession>, sqlx::Error> {
    let mut query = sqlx::query_as::<_, GroupSession>(sql);
    for f in fixed {
        query = query.bind(f.to_string());
    }
    for v in values {
        query = match v {
            FilterValue::Text(t) => query.bind(t),
            FilterValue::Int(i) => query.bind(i),
        };
    }
    query.fetch_all(store.pool()).await
}

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

    /// Looks a group session up by id.
    pub async fn group_session(&self, id: &str) -> Result<Option<GroupSession>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {} FROM group_sessions g WHERE g.id = $1",
            session_columns()
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Sessions of the communities `user_id` belongs to, soonest first.
    pub async fn group_sessions_for_member(
        &self,
        user_id: &str,
        filter: &SessionFilter<'_>,
    ) -> Result<Vec<GroupSession>, sqlx::Error> {
        let mut sql = format!(
            "SELECT {} FROM group_sessions g WHERE g.community_id IN \
             (SELECT m.community_id FROM community_members m WHERE m.user_id = $1)",
            session_columns()
        );
        let values = filter_sql(&mut sql, filter, 2);
        sql.push_str(" ORDER BY g.start_ms, g.id");
        fetch_sessions(self, &sql, &[user_id], values).await
    }

    /// Sessions of an organization (for its administrators), soonest first.
    pub async fn group_sessions_of_organization(
        &self,
        organization_id: &str,
        filter: &SessionFilter<'_>,
    ) -> Result<Vec<GroupSession>, sqlx::Error> {
        let mut sql = format!(
            "SELECT {} FROM group_sessions g WHERE g.organization_id = $1",
            session_columns()
        );
        let values = filter_sql(&mut sql, filter, 2);
        sql.push_str(" ORDER BY g.start_ms, g.id");
        fetch_sessions(self, &sql, &[organization_id], values).await
    }

    /// Sessions a user holds a seat in (registration not cancelled), soonest first.
    pub async fn group_sessions_joined_by(
        &self,
        user_id: &str,
        filter: &SessionFilter<'_>,
    ) -> Result<Vec<GroupSession>, sqlx::Error> {
        let mut sql = format!(
            "SELECT {} FROM group_sessions g WHERE g.id IN \
             (SELECT p.session_id FROM group_session_participants p \
              WHERE p.user_id = $1 AND p.attendance_status <> 'cancelled')",
            session_columns()
        );
        let values = filter_sql(&mut sql, filter, 2);
        sql.push_str(" ORDER BY g.start_ms, g.id");
        fetch_sessions(self, &sql, &[user_id], values).await
    }

    /// Sessions a therapist has accepted to co-lead, soonest first.
    pub async fn group_sessions_led_by(
        &self,
        therapist_id: &str,
        filter: &SessionFilter<'_>,
    ) -> Result<Vec<GroupSession>, sqlx::Error> {
        let mut sql = format!(
            "SELECT {} FROM group_sessions g WHERE g.id IN \
             (SELECT i.session_id FROM group_session_invitations i \
              WHERE i.therapist_id = $1 AND i.status = 'accepted')",
            session_columns()
        );
        let values = filter_sql(&mut sql, filter, 2);
        sql.push_str(" ORDER BY g.start_ms, g.id");
        fetch_sessions(self, &sql, &[therapist_id], values).await
    }

    /// Invitations of a session, in invitation order.
    pub async fn group_invitations(
        &self,
        session_id: &str,
    ) -> Result<Vec<Invitation>, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        invitations_of(&mut conn, session_id).await
    }

    /// A therapist's invitations (optionally of one status) with their sessions,
    /// soonest session first.
    pub async fn invitations_of_therapist(
        &self,
        therapist_id: &str,
        status: Option<&str>,
    ) -> Result<Vec<(Invitation, GroupSession)>, sqlx::Error> {
        let status_clause = if status.is_some() {
            " AND i.status = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {INVITATION_COLUMNS} FROM group_session_invitations i JOIN users u ON u.id = i.therapist_id \
             WHERE i.therapist_id = $1{status_clause}"
        );
        let mut q = sqlx::query_as::<_, Invitation>(&sql).bind(therapist_id);
        if let Some(s) = status {
            q = q.bind(s);
        }
        let invitations = q.fetch_all(self.pool()).await?;
        let sessions: Vec<GroupSession> = sqlx::query_as(&format!(
            "SELECT {} FROM group_sessions g WHERE g.id IN \
             (SELECT i.session_id FROM group_session_invitations i WHERE i.therapist_id = $1)",
            session_columns()
        ))
        .bind(therapist_id)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<(Invitation, GroupSession)> = invitations
            .into_iter()
            .filter_map(|inv| {
                let s = sessions.iter().find(|s| s.id == inv.session_id)?.clone();
                Some((inv, s))
            })
            .collect();
        out.sort_by(|a, b| (a.1.start_ms, &a.0.id).cmp(&(b.1.start_ms, &b.0.id)));
        Ok(out)
    }

    /// Looks an invitation up by id.
    pub async fn group_invitation(&self, id: &str) -> Result<Option<Invitation>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {INVITATION_COLUMNS} FROM group_session_invitations i JOIN users u ON u.id = i.therapist_id \
             WHERE i.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Participants of a session (cancelled registrations included), by join time.
    pub async fn group_participants(
        &self,
        session_id: &str,
    ) -> Result<Vec<GroupParticipant>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM group_session_participants p JOIN users u ON u.id = p.user_id \
             WHERE p.session_id = $1 ORDER BY p.joined_at, p.id"
        ))
        .bind(session_id)
        .fetch_all(self.pool())
        .await
    }

    /// A user's registration in a session, if any (cancelled ones included).
    pub async fn group_participant_of(
        &self,
        session_id: &str,
        user_id: &str,
    ) -> Result<Option<GroupParticipant>, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        participant_of(&mut conn, session_id, user_id).await
    }
}

/// Takes the per-session write lock for the rest of the transaction, so that
/// decisions that read a session's state (seats left, invitation answers, status)
/// and the write that follows are serialized per session: `SELECT ... FOR UPDATE` on
/// PostgreSQL; on SQLite a first write, which takes the database write lock (other
/// writers wait on `busy_timeout`). Must be the transaction's first statement on
/// SQLite. Returns false when the session does not exist.
pub async fn lock_session(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &str,
) -> Result<bool, sqlx::Error> {
    match backend {
        Backend::Postgres => {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT id FROM group_sessions WHERE id = $1 FOR UPDATE")
                    .bind(id)
                    .fetch_optional(conn)
                    .await?;
            Ok(row.is_some())
        }
        Backend::Sqlite => {
            let done =
                sqlx::query("UPDATE group_sessions SET updated_at = updated_at WHERE id = $1")
                    .bind(id)
                    .execute(conn)
                    .await?;
            Ok(done.rows_affected() == 1)
        }
    }
}

/// Reads a session inside a transaction.
pub async fn session_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<GroupSession>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {} FROM group_sessions g WHERE g.id = $1",
        session_columns()
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
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

/// Inserts a group session in `pending_approval` and returns its id.
pub async fn insert_session(
    conn: &mut AnyConnection,
    new: &NewGroupSession<'_>,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO group_sessions (id, community_id, organization_id, created_by, title, description, \
           session_type, meeting_link, location, location_address, start_ms, duration_minutes, end_ms, \
           max_participants, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending_approval', $15, $15)",
    )
    .bind(&id)
    .bind(new.community_id)
    .bind(new.organization_id)
    .bind(new.created_by)
    .bind(new.title)
    .bind(new.description)
    .bind(new.session_type)
    .bind(new.meeting_link)
    .bind(new.location)
    .bind(new.location_address)
    .bind(new.start_ms)
    .bind(new.duration_minutes)
    .bind(new.start_ms + new.duration_minutes * 60_000)
    .bind(new.max_participants)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Invites a therapist (status `pending`) and returns the invitation id.
pub async fn insert_invitation(
    conn: &mut AnyConnection,
    session_id: &str,
    therapist_id: &str,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO group_session_invitations (id, session_id, therapist_id, status, invited_at) \
         VALUES ($1, $2, $3, 'pending', $4)",
    )
    .bind(&id)
    .bind(session_id)
    .bind(therapist_id)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(id)
}

/// Invitations of a session inside a transaction, in invitation order.
pub async fn invitations_of(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<Vec<Invitation>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INVITATION_COLUMNS} FROM group_session_invitations i JOIN users u ON u.id = i.therapist_id \
         WHERE i.session_id = $1 ORDER BY i.invited_at, u.display_name, i.id"
    ))
    .bind(session_id)
    .fetch_all(conn)
    .await
}

/// Records a therapist's answer to a pending invitation. Returns false when the
/// invitation was no longer pending.
pub async fn answer_invitation(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    message: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE group_session_invitations SET status = $1, message = $2, responded_at = $3 \
         WHERE id = $4 AND status = 'pending'",
    )
    .bind(status)
    .bind(message)
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a session to `status` (and stamps `cancelled_at` when cancelling).
pub async fn set_status(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let cancelled_at = (status == "cancelled").then_some(now);
    sqlx::query(
        "UPDATE group_sessions SET status = $1, updated_at = $2, cancelled_at = COALESCE($3, cancelled_at) WHERE id = $4",
    )
    .bind(status)
    .bind(now)
    .bind(cancelled_at)
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A user's registration in a session inside a transaction.
pub async fn participant_of(
    conn: &mut AnyConnection,
    session_id: &str,
    user_id: &str,
) -> Result<Option<GroupParticipant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM group_session_participants p JOIN users u ON u.id = p.user_id \
         WHERE p.session_id = $1 AND p.user_id = $2"
    ))
    .bind(session_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// A registration by its id inside a transaction.
pub async fn participant_by_id(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<GroupParticipant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM group_session_participants p JOIN users u ON u.id = p.user_id \
         WHERE p.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Takes a seat for `user_id` if one is left: a single conditional statement (insert,
/// or re-registration of a cancelled row) whose seat count and write happen together.
/// Call it under [`lock_session`]. Returns false when the session is full.
pub async fn take_seat(
    conn: &mut AnyConnection,
    session_id: &str,
    user_id: &str,
    max_participants: i64,
    existing: Option<&GroupParticipant>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let done = match existing {
        None => {
            sqlx::query(
                "INSERT INTO group_session_participants (id, session_id, user_id, attendance_status, joined_at, updated_at) \
                 SELECT $1, $2, $3, 'registered', $4, $4 \
                 WHERE (SELECT COUNT(*) FROM group_session_participants \
                        WHERE session_id = $2 AND attendance_status <> 'cancelled') < $5",
            )
            .bind(new_id())
            .bind(session_id)
            .bind(user_id)
            .bind(now)
            .bind(max_participants)
            .execute(conn)
            .await?
        }
        Some(p) => {
            sqlx::query(
                "UPDATE group_session_participants SET attendance_status = 'registered', joined_at = $1, \
                   left_at = NULL, updated_at = $1 \
                 WHERE id = $2 AND attendance_status = 'cancelled' \
                   AND (SELECT COUNT(*) FROM group_session_participants \
                        WHERE session_id = $3 AND attendance_status <> 'cancelled') < $4",
            )
            .bind(now)
            .bind(&p.id)
            .bind(session_id)
            .bind(max_participants)
            .execute(conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Sets a registration's attendance status (`cancelled` also stamps `left_at`).
pub async fn set_attendance(
    conn: &mut AnyConnection,
    participant_id: &str,
    status: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let left_at = (status == "cancelled").then_some(now);
    sqlx::query(
        "UPDATE group_session_participants SET attendance_status = $1, updated_at = $2, left_at = $3 WHERE id = $4",
    )
    .bind(status)
    .bind(now)
    .bind(left_at)
    .bind(participant_id)
    .execute(conn)
    .await
    .map(|_| ())
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

/// Users holding a seat (registered or attended) in a session.
pub async fn seated_user_ids(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT user_id FROM group_session_participants \
         WHERE session_id = $1 AND attendance_status IN ('registered', 'attended') ORDER BY user_id",
    )
    .bind(session_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Links a virtual group session to its video room (opened by
/// [`crate::rooms::open::open_scheduled`]), inside the caller's transaction.
pub async fn link_room(
    conn: &mut AnyConnection,
    group_session_id: &str,
    room_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE group_sessions SET video_session_id = $1, updated_at = $2 WHERE id = $3")
        .bind(room_id)
        .bind(now_ms())
        .bind(group_session_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Creates the `group_session_reminder` notifications of approved sessions that start
/// within `lead_ms` of `now` and were not reminded yet (accepted therapists and seated
/// participants), marking them reminded, in one transaction. Returns the stored
/// notifications; push them with [`crate::state::LiveControl::notify`]. Meant to be
/// called periodically.
pub async fn send_due_reminders(
    store: &Store,
    now: i64,
    lead_ms: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    // Mark first: the write comes first in the transaction (SQLite write lock), and
    // a concurrent run finds nothing left to mark.
    sqlx::query(
        "UPDATE group_sessions SET reminded_at = $1 WHERE status = 'approved' AND reminded_at IS NULL \
         AND start_ms > $1 AND start_ms <= $2",
    )
    .bind(now)
    .bind(now + lead_ms)
    .execute(&mut *tx)
    .await?;
    let due: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM group_sessions WHERE status = 'approved' AND reminded_at = $1 \
         AND start_ms > $1 AND start_ms <= $2 ORDER BY start_ms, id",
    )
    .bind(now)
    .bind(now + lead_ms)
    .fetch_all(&mut *tx)
    .await?;
    let mut created = Vec::new();
    for (id,) in due {
        let Some(session) = session_in(&mut tx, &id).await? else {
            continue;
        };
        let mut recipients: Vec<String> = invitations_of(&mut tx, &id)
            .await?
            .into_iter()
            .filter(|i| i.status == "accepted")
            .map(|i| i.therapist_id)
            .collect();
        recipients.extend(seated_user_ids(&mut tx, &id).await?);
        recipients.sort();
        recipients.dedup();
        let minutes = ((session.start_ms - now) + 59_999) / 60_000;
        let body = format!("\"{}\" starts in {minutes} minutes.", session.title);
        for user in &recipients {
            created.push(
                notifications::create(
                    &mut tx,
                    NewNotification {
                        user_id: user,
                        organization_id: Some(&session.organization_id),
                        kind: NotificationKind::GroupSessionReminder,
                        title: "Group session starting soon",
                        body: &body,
                        payload: json!({"group_session_id": session.id, "starts_at": crate::clock::rfc3339(session.start_ms)}),
                    },
                )
                .await?,
            );
        }
    }
    tx.commit().await?;
    Ok(created)
}
