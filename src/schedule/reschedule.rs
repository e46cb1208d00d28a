//! Moving a booked 1:1 session to another slot (rescheduling): which sessions may
//! move, where a move by date lands in local time, and what stands in the way of the
//! new slot (everything except the session itself: its current interval does not
//! conflict with where it goes).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sqlx::AnyConnection;

use super::availability::{self, Busy};
use super::recurrence::resolve_local;

/// Why a session cannot be moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveRefusal {
    /// It was cancelled.
    Cancelled,
    /// It took place (attendance recorded).
    Completed,
}

/// Only `scheduled` sessions move; cancelled and completed ones stay where they were.
pub fn check_movable(status: &str) -> Result<(), MoveRefusal> {
    match status {
        "cancelled" => Err(MoveRefusal::Cancelled),
        "completed" => Err(MoveRefusal::Completed),
        _ => Ok(()),
    }
}

/// The interval on local date `date` in `tz` with the same wall-clock start and end
/// as `[start_ms, end_ms)` has in `tz`: a 10:00–10:50 session moved across a
/// daylight-saving change stays 10:00–10:50 local. A wall-clock time the date does
/// not have (the skipped hour) moves forward by an hour, like series occurrences.
pub fn same_local_time_on(
    tz: Tz,
    start_ms: i64,
    end_ms: i64,
    date: NaiveDate,
) -> Option<(i64, i64)> {
    let local = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.with_timezone(&tz));
    let (start, end) = (local(start_ms)?, local(end_ms)?);
    let days = (end.date_naive() - start.date_naive()).num_days();
    let new_start = resolve_local(tz, date.and_time(start.time()))?.timestamp_millis();
    let end_date = date.checked_add_signed(chrono::Duration::days(days))?;
    let mut new_end = resolve_local(tz, end_date.and_time(end.time()))?.timestamp_millis();
    if new_end <= new_start {
        new_end = new_start + (end_ms - start_ms);
    }
    Some((new_start, new_end))
}

/// What keeps the therapist or client busy during `[start_ms, end_ms)`, apart from
/// the session being moved (sessions, holds and group sessions).
pub async fn move_conflicts(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    (start_ms, end_ms): (i64, i64),
    session_id: &str,
) -> Result<Vec<Busy>, sqlx::Error> {
    let mut found = availability::conflicts(conn, user_ids, start_ms, end_ms).await?;
    found.retain(|b| b.source_id != session_id);
    Ok(found)
}

/// Like [`move_conflicts`] but ignoring holds: what stands in the way of confirming
/// a reschedule hold.
pub async fn move_booking_conflicts(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    (start_ms, end_ms): (i64, i64),
    session_id: &str,
) -> Result<Vec<Busy>, sqlx::Error> {
    let mut found = availability::booking_conflicts(conn, user_ids, start_ms, end_ms).await?;
    found.retain(|b| b.source_id != session_id);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn keeps_wall_clock_time_across_dst() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 10:00-10:50 EDT on 28 Oct 2030, moved to 4 Nov 2030 (EST).
        let moved = same_local_time_on(
            tz,
            ms("2030-10-28T14:00:00Z"),
            ms("2030-10-28T14:50:00Z"),
            NaiveDate::from_ymd_opt(2030, 11, 4).unwrap(),
        );
        assert_eq!(
            moved,
            Some((ms("2030-11-04T15:00:00Z"), ms("2030-11-04T15:50:00Z")))
        );
    }

    #[test]
    fn only_scheduled_sessions_move() {
        assert_eq!(check_movable("scheduled"), Ok(()));
        assert_eq!(check_movable("cancelled"), Err(MoveRefusal::Cancelled));
        assert_eq!(check_movable("completed"), Err(MoveRefusal::Completed));
    }
}
