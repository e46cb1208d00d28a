//! Recorded hold expiry. A hold stops blocking its slots the moment `expires_at`
//! passes (the busy views compare with the clock); this module writes that down: the
//! hold's status becomes `expired` and the audit log gets `schedule.hold.expire`,
//! either when a request finds the hold expired (confirm, release) or when the
//! periodic sweeper started by `serve` comes by.

use std::time::Duration;

use serde_json::json;
use sqlx::AnyConnection;

use super::write_tx;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::store::audit::{self, AuditEntry};
use crate::store::schedule::{self as store, Hold};
use crate::store::schedule_changes;
use crate::store::Store;

/// How often the sweeper looks for expired holds.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Holds recorded per sweep round (the next round takes the rest).
const SWEEP_BATCH: i64 = 200;

/// Marks `hold` expired inside the caller's transaction and audits it, by `actor`
/// (the request that found it) or by the system (the sweeper). False when the hold
/// was not active any more (nothing written).
pub async fn record_in(
    conn: &mut AnyConnection,
    hold: &Hold,
    actor: Option<&Caller>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    if !store::set_hold_status(&mut *conn, &hold.id, "active", "expired", now).await? {
        return Ok(false);
    }
    let target = ("schedule_hold", hold.id.as_str());
    let action = "schedule.hold.expire";
    let entry = match actor {
        Some(caller) => AuditEntry::by(caller, Some(&hold.organization_id), action, target),
        None => AuditEntry {
            organization_id: Some(&hold.organization_id),
            actor_id: "system",
            actor_role: "system",
            action,
            target_type: target.0,
            target_id: target.1,
            before: None,
            after: None,
        },
    };
    audit::record(
        conn,
        entry
            .before(json!({"status": "active"}))
            .after(json!({"status": "expired", "expires_at": rfc3339(hold.expires_at)})),
    )
    .await?;
    Ok(true)
}

/// Records every active hold past its expiry at `now`; returns how many.
pub async fn sweep(store: &Store, now: i64) -> Result<usize, sqlx::Error> {
    let mut done = 0;
    loop {
        let due = {
            let mut conn = store.pool().acquire().await?;
            schedule_changes::expired_active_holds(&mut conn, now, SWEEP_BATCH).await?
        };
        if due.is_empty() {
            return Ok(done);
        }
        let mut progressed = false;
        for hold in &due {
            let mut tx = write_tx(store, &[&hold.therapist_id, &hold.client_id]).await?;
            if record_in(&mut tx, hold, None, now).await? {
                done += 1;
                progressed = true;
            }
            tx.commit().await?;
        }
        if !progressed || (due.len() as i64) < SWEEP_BATCH {
            return Ok(done);
        }
    }
}

/// Starts the sweeper: every [`SWEEP_EVERY`], [`sweep`] at the current time.
pub fn spawn_sweeper(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            match sweep(&store, now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(holds = n, "expired holds recorded"),
                Err(err) => tracing::warn!(error = %err, "hold expiry sweep failed"),
            }
        }
    })
}
