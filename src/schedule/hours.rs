//! Working hours and time off of a therapist, as pure functions.
//!
//! A therapist's weekly template says when they work, in wall-clock time of their
//! IANA time zone (Monday 09:00–12:00 and 13:00–17:00, …); extra hours add intervals
//! on single local dates; time off removes ranges of instants (a vacation, an
//! afternoon). Expanding the template date by date in the time zone keeps the local
//! hours across daylight-saving changes: 09:00 stays 09:00 local, the UTC instant
//! moves.
//!
//! A therapist without a template ([`Availability::hours`] is `None`) is bookable at
//! any time except their time off. Intervals are half-open `[start, end)`, in Unix ms
//! once expanded; local intervals are minutes since local midnight, `end` up to 1440
//! (24:00, the next midnight).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use super::availability::{overlaps, Slot};
use super::recurrence::resolve_local;

/// Minutes in a day: the largest `end_minute` (24:00).
pub const MINUTES_PER_DAY: u16 = 1440;
/// The most intervals one weekly template (or one list of extra hours) may hold.
pub const MAX_INTERVALS: usize = 100;

/// One weekly working interval, local wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyInterval {
    /// Day of the week.
    pub weekday: Weekday,
    /// Start, minutes since local midnight.
    pub start_minute: u16,
    /// End (exclusive), minutes since local midnight, at most 1440.
    pub end_minute: u16,
}

/// Extra working hours on one local date (on top of the weekly template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateInterval {
    /// The local date.
    pub date: NaiveDate,
    /// Start, minutes since local midnight.
    pub start_minute: u16,
    /// End (exclusive), minutes since local midnight, at most 1440.
    pub end_minute: u16,
}

/// A therapist's configured working hours.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkingHours {
    /// The time zone the local times are in.
    pub tz: Tz,
    /// The weekly template.
    pub weekly: Vec<WeeklyInterval>,
    /// Extra hours on single dates.
    pub extra: Vec<DateInterval>,
}

/// Everything that limits when one therapist may be booked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Availability {
    /// The working hours; `None` when not configured (bookable at any time).
    pub hours: Option<WorkingHours>,
    /// Time off, `(start_ms, end_ms)` pairs, any order, may overlap.
    pub time_off: Vec<(i64, i64)>,
}

/// What the rules say about one requested interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Inside working hours and clear of time off.
    Bookable,
    /// Overlaps this time-off range.
    TimeOff(i64, i64),
    /// Not entirely inside working hours.
    OutsideHours,
}

/// Why a template or a list of extra hours was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoursError {
    /// An interval does not start before it ends.
    EmptyInterval,
    /// Two intervals of the same day overlap.
    Overlap,
    /// More than [`MAX_INTERVALS`] intervals.
    TooMany,
}

/// Parses `HH:MM` (24-hour, two digits each) into minutes since midnight. `24:00` is
/// accepted only when `allow_midnight_end` (as an end time).
pub fn parse_hhmm(text: &str, allow_midnight_end: bool) -> Option<u16> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let digits = |i: usize| -> Option<u16> {
        let (a, b) = (bytes[i], bytes[i + 1]);
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u16::from(a - b'0') * 10 + u16::from(b - b'0'))
    };
    let (h, m) = (digits(0)?, digits(3)?);
    match (h, m) {
        (24, 0) if allow_midnight_end => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Formats minutes since midnight as `HH:MM` (1440 as `24:00`).
pub fn format_hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Checks intervals keyed by day (weekday or date): each starts before it ends, none
/// overlaps another of the same day, at most [`MAX_INTERVALS`].
fn validate_days<K: Ord + Copy>(items: &[(K, u16, u16)]) -> Result<(), HoursError> {
    if items.len() > MAX_INTERVALS {
        return Err(HoursError::TooMany);
    }
    if items.iter().any(|&(_, s, e)| s >= e || e > MINUTES_PER_DAY) {
        return Err(HoursError::EmptyInterval);
    }
    let mut sorted = items.to_vec();
    sorted.sort_unstable();
    if sorted
        .windows(2)
        .any(|w| w[0].0 == w[1].0 && w[1].1 < w[0].2)
    {
        return Err(HoursError::Overlap);
    }
    Ok(())
}

/// Validates a weekly template and its extra hours.
pub fn validate(weekly: &[WeeklyInterval], extra: &[DateInterval]) -> Result<(), HoursError> {
    let w: Vec<_> = weekly
        .iter()
        .map(|i| (i.weekday.number_from_monday(), i.start_minute, i.end_minute))
        .collect();
    validate_days(&w)?;
    let d: Vec<_> = extra
        .iter()
        .map(|i| (i.date, i.start_minute, i.end_minute))
        .collect();
    validate_days(&d)
}

/// Sorts intervals and joins overlapping or touching ones.
pub fn merge(mut intervals: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    intervals.retain(|&(s, e)| s < e);
    intervals.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
    for (s, e) in intervals {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `base` minus every interval of `remove`; both merged first. Sorted, disjoint.
pub fn subtract(base: &[(i64, i64)], remove: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let remove = merge(remove.to_vec());
    let mut out = Vec::new();
    for &(s, e) in &merge(base.to_vec()) {
        let mut cursor = s;
        for &(rs, re) in remove.iter().filter(|r| overlaps(s, e, r.0, r.1)) {
            if rs > cursor {
                out.push((cursor, rs));
            }
            cursor = cursor.max(re);
        }
        if cursor < e {
            out.push((cursor, e));
        }
    }
    out
}

/// The instant of `minute` minutes after local midnight of `date` in `tz` (1440 is
/// the next midnight). A skipped local time moves forward an hour, a repeated one
/// takes its first instant (as recurrences do).
fn local_instant(tz: Tz, date: NaiveDate, minute: u16) -> Option<i64> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    let local = midnight + Duration::minutes(i64::from(minute));
    resolve_local(tz, local).map(|t| t.timestamp_millis())
}

impl WorkingHours {
    /// The working intervals overlapping `[from_ms, to_ms)` as merged UTC intervals
    /// (not clipped: an interval may start before `from_ms`).
    pub fn open_intervals(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        let local_date = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms)
                .map(|t| t.with_timezone(&self.tz).date_naive())
        };
        let (Some(first), Some(last)) = (local_date(from_ms), local_date(to_ms)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut date = first.pred_opt().unwrap_or(first);
        let end = last.succ_opt().unwrap_or(last);
        while date <= end {
            let weekly = self
                .weekly
                .iter()
                .filter(|i| i.weekday == date.weekday())
                .map(|i| (i.start_minute, i.end_minute));
            let extra = self
                .extra
                .iter()
                .filter(|i| i.date == date)
                .map(|i| (i.start_minute, i.end_minute));
            for (s, e) in weekly.chain(extra) {
                if let (Some(s), Some(e)) = (
                    local_instant(self.tz, date, s),
                    local_instant(self.tz, date, e),
                ) {
                    out.push((s, e));
                }
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
        merge(out)
            .into_iter()
            .filter(|&(s, e)| overlaps(s, e, from_ms, to_ms))
            .collect()
    }
}

impl Availability {
    /// When the therapist may be booked within `[from_ms, to_ms)`: working hours (all
    /// of the range when none are configured) minus time off, clipped to the range.
    pub fn bookable_intervals(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        if from_ms >= to_ms {
            return Vec::new();
        }
        let open = match &self.hours {
            Some(h) => h.open_intervals(from_ms, to_ms),
            None => vec![(from_ms, to_ms)],
        };
        let clipped: Vec<_> = open
            .into_iter()
            .map(|(s, e)| (s.max(from_ms), e.min(to_ms)))
            .collect();
        subtract(&clipped, &self.time_off)
    }

    /// Whether `[start_ms, end_ms)` may be booked. Time off is reported first (it is
    /// the more specific reason), then working hours.
    pub fn verdict(&self, start_ms: i64, end_ms: i64) -> Verdict {
        let mut off: Vec<_> = self
            .time_off
            .iter()
            .copied()
            .filter(|&(s, e)| overlaps(s, e, start_ms, end_ms))
            .collect();
        off.sort_unstable();
        if let Some(&(s, e)) = off.first() {
            return Verdict::TimeOff(s, e);
        }
        let Some(hours) = &self.hours else {
            return Verdict::Bookable;
        };
        let inside = hours
            .open_intervals(start_ms, end_ms)
            .iter()
            .any(|&(s, e)| s <= start_ms && end_ms <= e);
        if inside {
            Verdict::Bookable
        } else {
            Verdict::OutsideHours
        }
    }
}

/// Free slots of `duration_ms` inside `open` (sorted, disjoint) that overlap no
/// interval of `busy`, starting on the grid of `step_ms` (multiples of `step_ms` since
/// the Unix epoch), not before `not_before_ms`. At most `limit`; the flag says more
/// were left off.
pub fn free_slots(
    open: &[(i64, i64)],
    busy: &[(i64, i64)],
    duration_ms: i64,
    step_ms: i64,
    not_before_ms: i64,
    limit: usize,
) -> (Vec<Slot>, bool) {
    let mut out = Vec::new();
    if duration_ms <= 0 || step_ms <= 0 {
        return (out, false);
    }
    let busy = merge(busy.to_vec());
    for &(s, e) in open {
        let from = s.max(not_before_ms);
        let mut start = from.div_euclid(step_ms) * step_ms;
        if start < from {
            start += step_ms;
        }
        while start + duration_ms <= e {
            let end = start + duration_ms;
            if let Some(b) = busy.iter().find(|b| overlaps(start, end, b.0, b.1)) {
                // Jump to the first grid point at or after the busy interval's end.
                let next = b.1.div_euclid(step_ms) * step_ms;
                start = if next < b.1 { next + step_ms } else { next }.max(start + step_ms);
                continue;
            }
            if out.len() == limit {
                return (out, true);
            }
            out.push(Slot {
                start_ms: start,
                end_ms: end,
            });
            start += step_ms;
        }
    }
    (out, false)
}

#[cfg(test)]
#[path = "hours_tests.rs"]
mod tests;
