//! 1:1 scheduling (docs/SCHEDULING.md): holds, recurrence, booked sessions, and the availability
//! check shared with group therapy.
//!
//! No double booking, on each backend:
//! - PostgreSQL: exclusion constraints on `scheduled_sessions` (therapist and client,
//!   `int8range(start_ms, end_ms)`, non-cancelled rows) are the final guard; writers
//!   also take transaction-scoped advisory locks per therapist and client (see
//!   [`write_tx`]) so that concurrent holds are checked one after the other and get
//!   clean conflicts.
//! - SQLite: every scheduling write transaction starts with `BEGIN IMMEDIATE`, which
//!   takes the database's single write lock before the conflict check, so a check and
//!   the insert that follows cannot interleave with another writer.

pub mod availability;
pub mod expiry;
pub mod hours;
pub mod recurrence;
pub mod reschedule;
pub mod service_codes;

use sqlx::{Any, Transaction};

use crate::store::{Backend, Store};

/// Begins a write transaction in which a conflict check followed by an insert is
/// atomic with respect to other scheduling writers. `lock_keys` are the users whose
/// calendars are written (therapist, client, members): on PostgreSQL one advisory
/// transaction lock is taken per key (in sorted order, so two writers cannot deadlock);
/// on SQLite the transaction begins with `BEGIN IMMEDIATE` (the one write lock).
pub async fn write_tx(
    store: &Store,
    lock_keys: &[&str],
) -> Result<Transaction<'static, Any>, sqlx::Error> {
    match store.backend() {
        Backend::Sqlite => store.pool().begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => {
            let mut tx = store.pool().begin().await?;
            let mut keys: Vec<&str> = lock_keys.to_vec();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                sqlx::query(
                    "SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS l",
                )
                .bind(format!("theraroom.schedule:{key}"))
                .execute(&mut *tx)
                .await?;
            }
            Ok(tx)
        }
    }
}

/// True when `err` is PostgreSQL's exclusion-constraint violation (SQLSTATE 23P01):
/// the database refused an overlapping booking.
pub fn is_exclusion_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("23P01"))
}
