//! The one availability check, shared by 1:1 holds and bookings, group invitation
//! acceptance and group joins.
//!
//! Busy time is read from two views: `scheduled_busy` (1:1 sessions that are not
//! cancelled, and active unexpired holds; migration 0003) and `group_busy` (group
//! sessions; the group-therapy migration). Both have the columns
//! `(user_id, start_ms, end_ms, source_id)`. Intervals are half-open,
//! `[start_ms, end_ms)`: a session ending at 10:00 does not conflict with one starting
//! at 10:00. Two intervals overlap when `start < other_end AND other_start < end`.
//!
//! Call these functions inside the write transaction that creates the booking (see
//! [`super::write_tx`]), so that the check and the insert cannot interleave with
//! another writer.

use serde::Serialize;
use sqlx::AnyConnection;

/// One busy interval of one user that overlaps the interval asked about.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Busy {
    /// The busy user (therapist, client or group member).
    pub user_id: String,
    /// Start, Unix ms (inclusive).
    pub start_ms: i64,
    /// End, Unix ms (exclusive).
    pub end_ms: i64,
    /// What makes the user busy: a 1:1 session id, a hold id, or a group session id.
    pub source_id: String,
}

/// A free interval proposed as a retry hint after a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Slot {
    /// Start, Unix ms (inclusive).
    pub start_ms: i64,
    /// End, Unix ms (exclusive).
    pub end_ms: i64,
}

/// True when the half-open intervals `[a_start, a_end)` and `[b_start, b_end)` overlap.
pub fn overlaps(a_start: i64, a_end: i64, b_start: i64, b_end: i64) -> bool {
    a_start < b_end && b_start < a_end
}

/// Which busy sources a check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// Sessions, holds and group sessions.
    All,
    /// Sessions and group sessions, not holds (confirming a hold: the hold itself is
    /// the right to book, and holds never overlap each other by construction).
    Bookings,
}

async fn busy_overlapping(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    start_ms: i64,
    end_ms: i64,
    sources: Sources,
) -> Result<Vec<Busy>, sqlx::Error> {
    if user_ids.is_empty() || start_ms >= end_ms {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..user_ids.len()).map(|i| format!("${}", i + 3)).collect();
    let holds_filter = match sources {
        Sources::All => "",
        Sources::Bookings => " AND b.source_id NOT IN (SELECT h.id FROM schedule_holds h)",
    };
    let sql = format!(
        "SELECT b.user_id, b.start_ms, b.end_ms, b.source_id FROM ( \
           SELECT user_id, start_ms, end_ms, source_id FROM scheduled_busy \
           UNION ALL \
           SELECT user_id, start_ms, end_ms, source_id FROM group_busy \
         ) b \
         WHERE b.start_ms < $2 AND $1 < b.end_ms AND b.user_id IN ({}){holds_filter} \
         ORDER BY b.start_ms, b.user_id, b.source_id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, Busy>(&sql).bind(start_ms).bind(end_ms);
    for user in user_ids {
        query = query.bind(*user);
    }
    let mut rows = query.fetch_all(&mut *conn).await?;
    rows.dedup();
    Ok(rows)
}

/// Everything that keeps any of `user_ids` busy during `[start_ms, end_ms)`: 1:1
/// sessions that are not cancelled, active unexpired holds, and group sessions.
/// Empty means the slot is free for all of them. Ordered by start.
///
/// This is the availability function of the whole application; its signature is
/// stable.
pub async fn conflicts(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Busy>, sqlx::Error> {
    busy_overlapping(conn, user_ids, start_ms, end_ms, Sources::All).await
}

/// Like [`conflicts`] but ignoring holds: what stands in the way of turning a hold
/// into sessions (the hold's own occurrences must not block it).
pub async fn booking_conflicts(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Busy>, sqlx::Error> {
    busy_overlapping(conn, user_ids, start_ms, end_ms, Sources::Bookings).await
}

/// How far from the requested slot [`suggest_free_slots`] looks, each way.
pub const SUGGESTION_HORIZON_MS: i64 = 7 * 24 * 3_600_000;
/// Granularity of suggested start times.
pub const SUGGESTION_STEP_MS: i64 = 15 * 60_000;

/// Up to `count` free slots of the same length as `[start_ms, end_ms)` for all of
/// `user_ids`, nearest to the requested start first (the later one on a tie), none starting before
/// `not_before_ms`, within [`SUGGESTION_HORIZON_MS`] of the request. Candidates are
/// the requested start shifted by multiples of [`SUGGESTION_STEP_MS`] and the edges of
/// the busy intervals nearby (right after one ends, right before one starts).
pub async fn suggest_free_slots(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    start_ms: i64,
    end_ms: i64,
    not_before_ms: i64,
    count: usize,
) -> Result<Vec<Slot>, sqlx::Error> {
    let duration = end_ms - start_ms;
    if duration <= 0 || count == 0 {
        return Ok(Vec::new());
    }
    let lo = start_ms - SUGGESTION_HORIZON_MS;
    let hi = end_ms + SUGGESTION_HORIZON_MS;
    let busy = conflicts(conn, user_ids, lo - duration, hi + duration).await?;
    Ok(free_slots_near(
        &busy,
        start_ms,
        duration,
        not_before_ms,
        count,
    ))
}

/// The pure part of [`suggest_free_slots`]: picks free candidates among `busy`.
pub fn free_slots_near(
    busy: &[Busy],
    start_ms: i64,
    duration: i64,
    not_before_ms: i64,
    count: usize,
) -> Vec<Slot> {
    free_slots_near_where(
        busy,
        start_ms,
        duration,
        not_before_ms,
        count,
        &[],
        |_, _| true,
    )
}

/// Like [`free_slots_near`], with more candidate starts (`extra`, e.g. where working
/// hours begin) and only slots `allowed(start, end)` accepts (e.g. inside working
/// hours and clear of time off; see [`super::hours`]).
pub fn free_slots_near_where(
    busy: &[Busy],
    start_ms: i64,
    duration: i64,
    not_before_ms: i64,
    count: usize,
    extra: &[i64],
    allowed: impl Fn(i64, i64) -> bool,
) -> Vec<Slot> {
    let mut candidates: Vec<i64> = extra.to_vec();
    let steps = SUGGESTION_HORIZON_MS / SUGGESTION_STEP_MS;
    for k in 1..=steps {
        candidates.push(start_ms + k * SUGGESTION_STEP_MS);
        candidates.push(start_ms - k * SUGGESTION_STEP_MS);
    }
    for b in busy {
        candidates.push(b.end_ms);
        candidates.push(b.start_ms - duration);
    }
    candidates.retain(|&c| {
        c != start_ms && c >= not_before_ms && (c - start_ms).abs() <= SUGGESTION_HORIZON_MS
    });
    candidates.sort_by_key(|&c| ((c - start_ms).abs(), std::cmp::Reverse(c)));
    candidates.dedup();
    let mut found = Vec::new();
    for c in candidates {
        let end = c + duration;
        if busy.iter().all(|b| !overlaps(c, end, b.start_ms, b.end_ms))
            && !found.iter().any(|s: &Slot| s.start_ms == c)
            && allowed(c, end)
        {
            found.push(Slot {
                start_ms: c,
                end_ms: end,
            });
            if found.len() == count {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(start: i64, end: i64) -> Busy {
        Busy {
            user_id: "u".into(),
            start_ms: start,
            end_ms: end,
            source_id: "s".into(),
        }
    }

    #[test]
    fn half_open_intervals() {
        assert!(!overlaps(0, 10, 10, 20));
        assert!(!overlaps(10, 20, 0, 10));
        assert!(overlaps(0, 11, 10, 20));
        assert!(overlaps(5, 6, 0, 10));
    }

    #[test]
    fn suggestions_are_free_and_nearest() {
        let h = 3_600_000;
        let b = vec![busy(10 * h, 11 * h)];
        let s = free_slots_near(&b, 10 * h, h, 0, 3);
        assert_eq!(
            s[0],
            Slot {
                start_ms: 11 * h,
                end_ms: 12 * h
            }
        );
        assert_eq!(
            s[1],
            Slot {
                start_ms: 9 * h,
                end_ms: 10 * h
            }
        );
        assert!(s
            .iter()
            .all(|x| !overlaps(x.start_ms, x.end_ms, 10 * h, 11 * h)));
        // Nothing before not_before.
        let s = free_slots_near(&b, 10 * h, h, 10 * h, 2);
        assert!(s.iter().all(|x| x.start_ms >= 10 * h));
    }
}
