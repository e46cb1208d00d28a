//! Group therapy sessions and their therapist invitations. Communities are in
//! [`super::communities`], members' seats in [`super::group_seats`], reminders in
//! [`super::group_reminders`], later repairs (edits, re-invitations) in
//! [`super::group_edits`].
//!
//! Reads that need no transaction are [`Store`] methods; every write takes the
//! caller's transaction (`&mut AnyConnection`) so the handler can add the audit entry
//! and the notifications to the same commit. Changes that depend on a session's
//! current state (responses, joins, cancellation) first call [`lock_session`].

use sqlx::AnyConnection;

use super::{new_id, Backend, Store};
use crate::clock::now_ms;

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

const INVITATION_COLUMNS: &str =
    "i.id, i.session_id, i.therapist_id, i.status, i.message, i.invited_at, \
     i.responded_at, u.display_name AS therapist_name";

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

/// The therapists still on a session's team (every invitation not declined), in
/// invitation order: who must be free at its time and who is told of changes.
pub async fn team_therapist_ids(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    Ok(invitations_of(conn, session_id)
        .await?
        .into_iter()
        .filter(|i| i.status != "declined")
        .map(|i| i.therapist_id)
        .collect())
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
