//! 1:1 scheduling tables: booked sessions and the unified-schedule read, with the
//! hold tables re-exported from [`super::holds`] (session notes: [`super::notes`]). Functions take a connection so the
//! callers can run them inside their write transaction (see
//! [`crate::schedule::write_tx`]).

use sqlx::AnyConnection;

use super::new_id;

pub use super::holds::{
    hold_by_idempotency_key, hold_by_key, hold_occurrences, insert_hold, set_hold_status, Hold,
    HoldOccurrence,
};

/// A client row: organization and assigned therapist.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRecord {
    /// Identifier (the user id).
    pub id: String,
    /// Organization.
    pub organization_id: String,
    /// Assigned therapist, if any.
    pub therapist_id: Option<String>,
    /// Soft-deletion time, Unix ms.
    pub deleted_at: Option<i64>,
    /// Display name.
    pub display_name: String,
}

/// Looks a client up.
pub async fn client(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<ClientRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id, c.organization_id, c.therapist_id, c.deleted_at, u.display_name \
         FROM clients c JOIN users u ON u.id = c.id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A booked 1:1 session, with the names of its therapist and client.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduledSession {
    /// Identifier.
    pub id: String,
    /// Organization.
    pub organization_id: String,
    /// Therapist.
    pub therapist_id: String,
    /// Client.
    pub client_id: String,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms (exclusive).
    pub end_ms: i64,
    /// IANA time zone it was booked in.
    pub time_zone: String,
    /// `scheduled`, `completed` or `cancelled`.
    pub status: String,
    /// `unknown`, `attended`, `no_show` or `late_cancel`.
    pub attendance: String,
    /// The hold it was booked through.
    pub hold_id: Option<String>,
    /// The series (hold) it belongs to when booked as a recurrence.
    pub series_id: Option<String>,
    /// Linked video room (an `instant_sessions` row), once created.
    pub video_session_id: Option<String>,
    /// Who booked it.
    pub created_by: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
    /// Cancellation time, Unix ms.
    pub cancelled_at: Option<i64>,
    /// Who cancelled it.
    pub cancelled_by: Option<String>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// Therapist's display name.
    pub therapist_name: String,
    /// Client's display name.
    pub client_name: String,
    /// Service code (CPT), if set.
    pub service_code: Option<String>,
    /// When the session was last moved to another slot, Unix ms.
    pub rescheduled_at: Option<i64>,
    /// Start before the last move, Unix ms.
    pub previous_start_ms: Option<i64>,
    /// End before the last move, Unix ms.
    pub previous_end_ms: Option<i64>,
}

pub(super) const SESSION_COLUMNS: &str = "s.id, s.organization_id, s.therapist_id, s.client_id, s.start_ms, s.end_ms, s.time_zone, \
     s.status, s.attendance, s.hold_id, s.series_id, s.video_session_id, s.created_by, s.created_at, s.updated_at, \
     s.cancelled_at, s.cancelled_by, s.cancel_reason, tu.display_name AS therapist_name, cu.display_name AS client_name, \
     s.service_code, s.rescheduled_at, s.previous_start_ms, s.previous_end_ms";
pub(super) const SESSION_FROM: &str = "scheduled_sessions s JOIN users tu ON tu.id = s.therapist_id JOIN users cu ON cu.id = s.client_id";

/// A session to insert.
#[derive(Debug, Clone)]
pub struct NewScheduledSession<'a> {
    /// Organization.
    pub organization_id: &'a str,
    /// Therapist.
    pub therapist_id: &'a str,
    /// Client.
    pub client_id: &'a str,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms.
    pub end_ms: i64,
    /// IANA time zone.
    pub time_zone: &'a str,
    /// Hold it comes from.
    pub hold_id: Option<&'a str>,
    /// Series it belongs to.
    pub series_id: Option<&'a str>,
    /// Who books it.
    pub created_by: &'a str,
    /// Service code (CPT), already validated.
    pub service_code: Option<&'a str>,
    /// Now, Unix ms.
    pub now_ms: i64,
}

/// Inserts a session and returns its id. On PostgreSQL an overlap is refused by the
/// exclusion constraints (SQLSTATE 23P01).
pub async fn insert_session(
    conn: &mut AnyConnection,
    new: NewScheduledSession<'_>,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO scheduled_sessions (id, organization_id, therapist_id, client_id, start_ms, end_ms, time_zone, \
         status, attendance, hold_id, series_id, created_by, created_at, updated_at, service_code) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', 'unknown', $8, $9, $10, $11, $11, $12)",
    )
    .bind(&id)
    .bind(new.organization_id)
    .bind(new.therapist_id)
    .bind(new.client_id)
    .bind(new.start_ms)
    .bind(new.end_ms)
    .bind(new.time_zone)
    .bind(new.hold_id)
    .bind(new.series_id)
    .bind(new.created_by)
    .bind(new.now_ms)
    .bind(new.service_code)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Looks a session up.
pub async fn session(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<ScheduledSession>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM {SESSION_FROM} WHERE s.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The sessions booked through a hold, in time order.
pub async fn sessions_of_hold(
    conn: &mut AnyConnection,
    hold_id: &str,
) -> Result<Vec<ScheduledSession>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM {SESSION_FROM} WHERE s.hold_id = $1 ORDER BY s.start_ms, s.id"
    ))
    .bind(hold_id)
    .fetch_all(conn)
    .await
}

/// Filters of a session listing. `None` means no filter.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter<'a> {
    /// Only this organization.
    pub organization_id: Option<&'a str>,
    /// Only this therapist.
    pub therapist_id: Option<&'a str>,
    /// Only this client.
    pub client_id: Option<&'a str>,
    /// Only this status.
    pub status: Option<&'a str>,
    /// Only sessions ending after this instant (Unix ms).
    pub from_ms: Option<i64>,
    /// Only sessions starting before this instant (Unix ms).
    pub to_ms: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// Sessions matching `filter`, in time order.
pub async fn list_sessions(
    conn: &mut AnyConnection,
    filter: &SessionFilter<'_>,
) -> Result<Vec<ScheduledSession>, sqlx::Error> {
    let mut clauses = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let mut texts: Vec<&str> = Vec::new();
    let mut ints: Vec<i64> = Vec::new();
    for (column, value) in [
        ("s.organization_id", filter.organization_id),
        ("s.therapist_id", filter.therapist_id),
        ("s.client_id", filter.client_id),
        ("s.status", filter.status),
    ] {
        if let Some(v) = value {
            clauses.push(format!("{column} = ${}", next()));
            texts.push(v);
        }
    }
    let mut int_clauses = Vec::new();
    if let Some(from) = filter.from_ms {
        int_clauses.push(format!("s.end_ms > ${}", next()));
        ints.push(from);
    }
    if let Some(to) = filter.to_ms {
        int_clauses.push(format!("s.start_ms < ${}", next()));
        ints.push(to);
    }
    clauses.extend(int_clauses);
    let limit_param = next();
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM {SESSION_FROM}{where_clause} ORDER BY s.start_ms, s.id LIMIT ${limit_param}"
    );
    let mut query = sqlx::query_as::<_, ScheduledSession>(&sql);
    for t in texts {
        query = query.bind(t);
    }
    for i in ints {
        query = query.bind(i);
    }
    query.bind(filter.limit).fetch_all(conn).await
}

/// Cancels a scheduled session; false if it was not `scheduled` any more.
pub async fn cancel_session(
    conn: &mut AnyConnection,
    id: &str,
    by: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE scheduled_sessions SET status = 'cancelled', cancelled_at = $1, cancelled_by = $2, cancel_reason = $3, updated_at = $1 \
         WHERE id = $4 AND status = 'scheduled'",
    )
    .bind(now_ms)
    .bind(by)
    .bind(reason)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets attendance and status of a session.
pub async fn set_attendance(
    conn: &mut AnyConnection,
    id: &str,
    attendance: &str,
    status: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scheduled_sessions SET attendance = $1, status = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(attendance)
    .bind(status)
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Links a video room to a session that has none yet; false if one was linked meanwhile.
pub async fn link_video(
    conn: &mut AnyConnection,
    id: &str,
    video_session_id: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE scheduled_sessions SET video_session_id = $1, updated_at = $2 WHERE id = $3 AND video_session_id IS NULL",
    )
    .bind(video_session_id)
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One event of the unified schedule (a 1:1 session or a group session).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduleEvent {
    /// Event id (scheduled or group session id).
    pub event_id: String,
    /// `one_on_one` or the group feature's type.
    pub event_type: String,
    /// Title shown in the calendar.
    pub title: String,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms (exclusive).
    pub end_ms: i64,
    /// Status as its feature names it.
    pub status: String,
}

/// A user's events overlapping `[from_ms, to_ms)` from `scheduled_events` and
/// `group_events`, sorted by start. Cancelled events are left out, and completed ones
/// unless `include_completed`.
pub async fn events_of(
    conn: &mut AnyConnection,
    user_id: &str,
    from_ms: i64,
    to_ms: i64,
    include_completed: bool,
) -> Result<Vec<ScheduleEvent>, sqlx::Error> {
    let completed = if include_completed {
        ""
    } else {
        " AND LOWER(e.status) <> 'completed'"
    };
    sqlx::query_as(&format!(
        "SELECT e.event_id, e.event_type, e.title, e.start_ms, e.end_ms, e.status FROM ( \
           SELECT user_id, event_id, event_type, title, start_ms, end_ms, status FROM scheduled_events \
           UNION ALL \
           SELECT user_id, event_id, event_type, title, start_ms, end_ms, status FROM group_events \
         ) e \
         WHERE e.user_id = $1 AND e.start_ms < $3 AND $2 < e.end_ms \
           AND LOWER(e.status) NOT IN ('cancelled', 'canceled'){completed} \
         ORDER BY e.start_ms, e.end_ms, e.event_id"
    ))
    .bind(user_id)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(conn)
    .await
}
