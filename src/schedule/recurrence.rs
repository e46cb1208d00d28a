//! Weekly recurrence expanded in the client's IANA time zone: the wall-clock time
//! stays the same across daylight-saving changes (10:00 local stays 10:00 local, so
//! the UTC instant moves by the offset change).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The most occurrences one hold (a series) may have.
pub const MAX_OCCURRENCES: usize = 52;

/// Where a series stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesEnd {
    /// After this many occurrences (the first included).
    Count(u32),
    /// No occurrence starts after this instant (Unix ms, inclusive).
    Until(i64),
}

/// Why a series could not be expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecurrenceError {
    /// It would have more than [`MAX_OCCURRENCES`] occurrences.
    TooMany,
    /// A local time could not be converted back to an instant.
    Unrepresentable,
}

/// Converts a local wall-clock time to an instant. An ambiguous time (the repeated
/// hour when clocks go back) takes the first instant; a time that does not exist (the
/// skipped hour when clocks go forward) is moved forward by an hour.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => tz
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

/// Expands a weekly series: the first occurrence is `[start_ms, end_ms)`; each next
/// one is `interval_weeks` weeks later in `tz`'s wall-clock time. Returns the
/// occurrences as `(start_ms, end_ms)` pairs, in order.
pub fn weekly(
    tz: Tz,
    start_ms: i64,
    end_ms: i64,
    interval_weeks: u32,
    end: SeriesEnd,
) -> Result<Vec<(i64, i64)>, RecurrenceError> {
    let to_local = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&tz).naive_local())
            .ok_or(RecurrenceError::Unrepresentable)
    };
    let local_start = to_local(start_ms)?;
    let local_end = to_local(end_ms)?;
    let duration = end_ms - start_ms;
    let interval = i64::from(interval_weeks.max(1));
    let mut out = Vec::new();
    for k in 0.. {
        if let SeriesEnd::Count(n) = end {
            if out.len() >= n as usize {
                break;
            }
        }
        let shift = Duration::weeks(k * interval);
        let s = resolve_local(tz, local_start + shift)
            .ok_or(RecurrenceError::Unrepresentable)?
            .timestamp_millis();
        if let SeriesEnd::Until(until) = end {
            if s > until {
                break;
            }
        }
        let mut e = resolve_local(tz, local_end + shift)
            .ok_or(RecurrenceError::Unrepresentable)?
            .timestamp_millis();
        if e <= s {
            e = s + duration;
        }
        if out.len() == MAX_OCCURRENCES {
            return Err(RecurrenceError::TooMany);
        }
        out.push((s, e));
    }
    Ok(out)
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
    fn keeps_local_time_across_november_change() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let occ = weekly(
            tz,
            ms("2030-10-21T14:00:00Z"),
            ms("2030-10-21T14:50:00Z"),
            1,
            SeriesEnd::Count(3),
        )
        .unwrap();
        assert_eq!(
            occ,
            vec![
                (ms("2030-10-21T14:00:00Z"), ms("2030-10-21T14:50:00Z")),
                (ms("2030-10-28T14:00:00Z"), ms("2030-10-28T14:50:00Z")),
                (ms("2030-11-04T15:00:00Z"), ms("2030-11-04T15:50:00Z")),
            ]
        );
    }

    #[test]
    fn keeps_local_time_across_march_change_every_two_weeks_until() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let occ = weekly(
            tz,
            ms("2031-02-24T15:00:00Z"),
            ms("2031-02-24T16:00:00Z"),
            2,
            SeriesEnd::Until(ms("2031-03-24T14:00:00Z")),
        )
        .unwrap();
        assert_eq!(
            occ,
            vec![
                (ms("2031-02-24T15:00:00Z"), ms("2031-02-24T16:00:00Z")),
                (ms("2031-03-10T14:00:00Z"), ms("2031-03-10T15:00:00Z")),
                (ms("2031-03-24T14:00:00Z"), ms("2031-03-24T15:00:00Z")),
            ]
        );
    }

    #[test]
    fn caps_the_series() {
        let tz: Tz = "UTC".parse().unwrap();
        let start = ms("2030-01-07T10:00:00Z");
        assert_eq!(
            weekly(tz, start, start + 3_600_000, 1, SeriesEnd::Count(52))
                .unwrap()
                .len(),
            52
        );
        assert_eq!(
            weekly(tz, start, start + 3_600_000, 1, SeriesEnd::Count(53)),
            Err(RecurrenceError::TooMany)
        );
        assert_eq!(
            weekly(
                tz,
                start,
                start + 3_600_000,
                1,
                SeriesEnd::Until(ms("2032-01-01T00:00:00Z"))
            ),
            Err(RecurrenceError::TooMany)
        );
    }

    #[test]
    fn skipped_hour_moves_forward() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let local = chrono::NaiveDate::from_ymd_opt(2031, 3, 9)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        let t = resolve_local(tz, local).unwrap();
        assert_eq!(t.timestamp_millis(), ms("2031-03-09T07:30:00Z"));
    }
}
