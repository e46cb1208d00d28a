//! Therapists' working hours (weekly template, extra hours on dates) and time off
//! (migration 0011). The rules over them live in [`crate::schedule::hours`].

use std::str::FromStr;

use chrono::{NaiveDate, Weekday};
use chrono_tz::Tz;
use sqlx::AnyConnection;

use super::new_id;
use crate::schedule::hours::{Availability, DateInterval, WeeklyInterval, WorkingHours};

/// The stored header of a therapist's working hours.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HoursRow {
    /// IANA time zone the local times are in.
    pub time_zone: String,
    /// Who last replaced them.
    pub updated_by: String,
    /// When, Unix ms.
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct IntervalRow {
    weekday: Option<i64>,
    on_date: Option<String>,
    start_minute: i64,
    end_minute: i64,
}

/// One time-off range.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TimeOff {
    /// Identifier.
    pub id: String,
    /// The therapist.
    pub therapist_id: String,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms (exclusive).
    pub end_ms: i64,
    /// The therapist's label, if any.
    pub label: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When, Unix ms.
    pub created_at: i64,
}

/// A therapist's stored working hours: header and the rules' view of them.
#[derive(Debug, Clone)]
pub struct StoredHours {
    /// Time zone, author, time.
    pub row: HoursRow,
    /// The template and extra hours, parsed.
    pub hours: WorkingHours,
}

fn weekday_of(n: i64) -> Option<Weekday> {
    let n = u8::try_from(n).ok()?.checked_sub(1)?;
    Weekday::try_from(n).ok()
}

/// The working hours of `therapist_id`, if configured.
pub async fn hours(
    conn: &mut AnyConnection,
    therapist_id: &str,
) -> Result<Option<StoredHours>, sqlx::Error> {
    let row: Option<HoursRow> = sqlx::query_as(
        "SELECT time_zone, updated_by, updated_at FROM therapist_hours WHERE therapist_id = $1",
    )
    .bind(therapist_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Ok(tz) = Tz::from_str(&row.time_zone) else {
        tracing::warn!(
            therapist_id,
            "stored working hours have an unknown time zone"
        );
        return Ok(None);
    };
    let intervals: Vec<IntervalRow> = sqlx::query_as(
        "SELECT weekday, on_date, start_minute, end_minute FROM therapist_hours_intervals \
         WHERE therapist_id = $1 ORDER BY weekday, on_date, start_minute",
    )
    .bind(therapist_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut hours = WorkingHours {
        tz,
        weekly: Vec::new(),
        extra: Vec::new(),
    };
    for i in intervals {
        let (Ok(start_minute), Ok(end_minute)) =
            (u16::try_from(i.start_minute), u16::try_from(i.end_minute))
        else {
            continue;
        };
        match (i.weekday.and_then(weekday_of), i.on_date.as_deref()) {
            (Some(weekday), _) => hours.weekly.push(WeeklyInterval {
                weekday,
                start_minute,
                end_minute,
            }),
            (None, Some(date)) => {
                if let Ok(date) = NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                    hours.extra.push(DateInterval {
                        date,
                        start_minute,
                        end_minute,
                    });
                }
            }
            (None, None) => {}
        }
    }
    Ok(Some(StoredHours { row, hours }))
}

/// Replaces the working hours of `therapist_id`; `None` removes them (bookable at any
/// time again).
pub async fn replace_hours(
    conn: &mut AnyConnection,
    therapist_id: &str,
    hours: Option<&WorkingHours>,
    updated_by: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM therapist_hours_intervals WHERE therapist_id = $1")
        .bind(therapist_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM therapist_hours WHERE therapist_id = $1")
        .bind(therapist_id)
        .execute(&mut *conn)
        .await?;
    let Some(hours) = hours else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO therapist_hours (therapist_id, time_zone, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(therapist_id)
    .bind(hours.tz.name())
    .bind(updated_by)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    let weekly = hours.weekly.iter().map(|i| {
        let day = i64::from(i.weekday.number_from_monday());
        (Some(day), None, i.start_minute, i.end_minute)
    });
    let extra = hours.extra.iter().map(|i| {
        let date = i.date.format("%Y-%m-%d").to_string();
        (None, Some(date), i.start_minute, i.end_minute)
    });
    for (weekday, on_date, start, end) in weekly.chain(extra) {
        sqlx::query(
            "INSERT INTO therapist_hours_intervals \
             (id, therapist_id, weekday, on_date, start_minute, end_minute) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(therapist_id)
        .bind(weekday)
        .bind(on_date)
        .bind(i64::from(start))
        .bind(i64::from(end))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const TIME_OFF_COLUMNS: &str = "id, therapist_id, start_ms, end_ms, label, created_by, created_at";

/// Time off of `therapist_id` overlapping `[from_ms, to_ms)`, by start.
pub async fn time_off_between(
    conn: &mut AnyConnection,
    therapist_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<TimeOff>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TIME_OFF_COLUMNS} FROM therapist_time_off \
         WHERE therapist_id = $1 AND start_ms < $3 AND $2 < end_ms ORDER BY start_ms, id"
    ))
    .bind(therapist_id)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(conn)
    .await
}

/// One time-off range of `therapist_id`.
pub async fn time_off(
    conn: &mut AnyConnection,
    therapist_id: &str,
    id: &str,
) -> Result<Option<TimeOff>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TIME_OFF_COLUMNS} FROM therapist_time_off WHERE therapist_id = $1 AND id = $2"
    ))
    .bind(therapist_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Stores a time-off range.
pub async fn insert_time_off(conn: &mut AnyConnection, t: &TimeOff) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO therapist_time_off ({TIME_OFF_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&t.id)
    .bind(&t.therapist_id)
    .bind(t.start_ms)
    .bind(t.end_ms)
    .bind(&t.label)
    .bind(&t.created_by)
    .bind(t.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a time-off range; false when there was none.
pub async fn delete_time_off(
    conn: &mut AnyConnection,
    therapist_id: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM therapist_time_off WHERE therapist_id = $1 AND id = $2")
        .bind(therapist_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// What limits when `therapist_id` may be booked around `[from_ms, to_ms)`: their
/// working hours (if configured) and the time off overlapping the range.
pub async fn availability(
    conn: &mut AnyConnection,
    therapist_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Availability, sqlx::Error> {
    let hours = hours(conn, therapist_id).await?.map(|h| h.hours);
    let time_off = time_off_between(conn, therapist_id, from_ms, to_ms)
        .await?
        .into_iter()
        .map(|t| (t.start_ms, t.end_ms))
        .collect();
    Ok(Availability { hours, time_off })
}
