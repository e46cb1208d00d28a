//! Hold tables of 1:1 scheduling: `schedule_holds` and `schedule_hold_occurrences`
//! (the hold row, its held slots, the lookups by key and by idempotency key, and its
//! status moves). Re-exported by [`super::schedule`], where the callers reach them.
//! Functions take a connection so the callers can run them inside their write
//! transaction (see [`crate::schedule::write_tx`]).

use sqlx::AnyConnection;

use super::new_id;

/// A hold on one or more slots.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Hold {
    /// Internal identifier (the `source_id` of its busy intervals).
    pub id: String,
    /// Secret key the API hands out to confirm or release the hold.
    pub hold_key: String,
    /// Organization.
    pub organization_id: String,
    /// Therapist.
    pub therapist_id: String,
    /// Client.
    pub client_id: String,
    /// IANA time zone the occurrences were generated in.
    pub time_zone: String,
    /// `active`, `confirmed`, `released` or `expired`.
    pub status: String,
    /// Who asked for the hold.
    pub created_by: String,
    /// The caller's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// Hash of the normalized request, compared on a retry with the same key.
    pub request_hash: Option<String>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Expiry, Unix ms.
    pub expires_at: i64,
    /// Confirmation time, Unix ms.
    pub confirmed_at: Option<i64>,
    /// Release time, Unix ms.
    pub released_at: Option<i64>,
    /// The booked session this hold moves (a reschedule hold), if any.
    pub session_id: Option<String>,
    /// Service code (CPT) the booked session will carry, if any.
    pub service_code: Option<String>,
}

impl Hold {
    /// The status as the API shows it at `now_ms`: an active hold past its expiry is
    /// `expired`.
    pub fn status_at(&self, now_ms: i64) -> &str {
        if self.status == "active" && self.expires_at <= now_ms {
            "expired"
        } else {
            &self.status
        }
    }
}

/// One held slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldOccurrence {
    /// Position in the series, from 0.
    pub position: i64,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms (exclusive).
    pub end_ms: i64,
}

pub(super) const HOLD_COLUMNS: &str =
    "id, hold_key, organization_id, therapist_id, client_id, time_zone, status, created_by, \
     idempotency_key, request_hash, created_at, expires_at, confirmed_at, released_at, session_id, service_code";

/// Looks a hold up by its key.
pub async fn hold_by_key(conn: &mut AnyConnection, key: &str) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM schedule_holds WHERE hold_key = $1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Looks up the hold a caller created with an idempotency key.
pub async fn hold_by_idempotency_key(
    conn: &mut AnyConnection,
    created_by: &str,
    key: &str,
) -> Result<Option<Hold>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM schedule_holds WHERE created_by = $1 AND idempotency_key = $2"
    ))
    .bind(created_by)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// The occurrences of a hold, in order.
pub async fn hold_occurrences(
    conn: &mut AnyConnection,
    hold_id: &str,
) -> Result<Vec<HoldOccurrence>, sqlx::Error> {
    sqlx::query_as(
        "SELECT position, start_ms, end_ms FROM schedule_hold_occurrences WHERE hold_id = $1 ORDER BY position",
    )
    .bind(hold_id)
    .fetch_all(conn)
    .await
}

/// Inserts a hold (already built, with its id and key) and its occurrences.
pub async fn insert_hold(
    conn: &mut AnyConnection,
    hold: &Hold,
    occurrences: &[(i64, i64)],
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO schedule_holds ({HOLD_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&hold.id)
    .bind(&hold.hold_key)
    .bind(&hold.organization_id)
    .bind(&hold.therapist_id)
    .bind(&hold.client_id)
    .bind(&hold.time_zone)
    .bind(&hold.status)
    .bind(&hold.created_by)
    .bind(&hold.idempotency_key)
    .bind(&hold.request_hash)
    .bind(hold.created_at)
    .bind(hold.expires_at)
    .bind(hold.confirmed_at)
    .bind(hold.released_at)
    .bind(&hold.session_id)
    .bind(&hold.service_code)
    .execute(&mut *conn)
    .await?;
    for (position, (start, end)) in occurrences.iter().enumerate() {
        sqlx::query(
            "INSERT INTO schedule_hold_occurrences (id, hold_id, position, start_ms, end_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id())
        .bind(&hold.id)
        .bind(position as i64)
        .bind(*start)
        .bind(*end)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Moves a hold from status `from` to `to`, stamping `confirmed_at` or `released_at`.
/// Returns false when the hold was not in status `from` (someone else got there first).
pub async fn set_hold_status(
    conn: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    at_ms: i64,
) -> Result<bool, sqlx::Error> {
    let stamp = match to {
        "confirmed" => ", confirmed_at = $4",
        "released" => ", released_at = $4",
        _ => ", released_at = COALESCE(released_at, $4)",
    };
    let done = sqlx::query(&format!(
        "UPDATE schedule_holds SET status = $1{stamp} WHERE id = $2 AND status = $3"
    ))
    .bind(to)
    .bind(id)
    .bind(from)
    .bind(at_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
