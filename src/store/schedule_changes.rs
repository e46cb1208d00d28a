//! Changes to booked 1:1 sessions beyond booking and single cancellation: moving a
//! session to another slot, the later occurrences of a series, the service code, and
//! the holds whose expiry is not recorded yet.

use sqlx::AnyConnection;

use super::holds::{Hold, HOLD_COLUMNS};
use super::schedule::{ScheduledSession, SESSION_COLUMNS, SESSION_FROM};

/// Where a session moves.
#[derive(Debug, Clone)]
pub struct SessionMove<'a> {
    /// The session.
    pub id: &'a str,
    /// New start, Unix ms.
    pub start_ms: i64,
    /// New end, Unix ms (exclusive).
    pub end_ms: i64,
    /// Time zone of the new slot.
    pub time_zone: &'a str,
    /// New service code; `None` keeps the current one.
    pub service_code: Option<&'a str>,
    /// Now, Unix ms.
    pub now_ms: i64,
}

/// Moves a `scheduled` session, remembering its previous interval and unlinking its
/// video room (a new one is opened for the new time). False when the session was not
/// `scheduled` any more. On PostgreSQL an overlap with another session is refused by
/// the exclusion constraints (SQLSTATE 23P01).
pub async fn move_session(
    conn: &mut AnyConnection,
    m: SessionMove<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE scheduled_sessions SET previous_start_ms = start_ms, previous_end_ms = end_ms, \
         start_ms = $1, end_ms = $2, time_zone = $3, service_code = COALESCE($4, service_code), \
         rescheduled_at = $5, updated_at = $5, video_session_id = NULL \
         WHERE id = $6 AND status = 'scheduled'",
    )
    .bind(m.start_ms)
    .bind(m.end_ms)
    .bind(m.time_zone)
    .bind(m.service_code)
    .bind(m.now_ms)
    .bind(m.id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The `scheduled` sessions of series `series_id` starting at or after `from_ms`, in
/// time order.
pub async fn scheduled_in_series_from(
    conn: &mut AnyConnection,
    series_id: &str,
    from_ms: i64,
) -> Result<Vec<ScheduledSession>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM {SESSION_FROM} \
         WHERE s.series_id = $1 AND s.start_ms >= $2 AND s.status = 'scheduled' ORDER BY s.start_ms, s.id"
    ))
    .bind(series_id)
    .bind(from_ms)
    .fetch_all(conn)
    .await
}

/// Sets (or clears, with `None`) the service code of a session.
pub async fn set_service_code(
    conn: &mut AnyConnection,
    id: &str,
    code: Option<&str>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE scheduled_sessions SET service_code = $1, updated_at = $2 WHERE id = $3")
        .bind(code)
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Up to `limit` holds still `active` although their expiry is at or before `now_ms`,
/// oldest expiry first.
pub async fn expired_active_holds(
    conn: &mut AnyConnection,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<Hold>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM schedule_holds WHERE status = 'active' AND expires_at <= $1 \
         ORDER BY expires_at, id LIMIT $2"
    ))
    .bind(now_ms)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The active reschedule holds of a session (the slots someone is about to move it to).
pub async fn active_holds_of_session(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<Vec<Hold>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM schedule_holds WHERE session_id = $1 AND status = 'active' ORDER BY created_at, id"
    ))
    .bind(session_id)
    .fetch_all(conn)
    .await
}
