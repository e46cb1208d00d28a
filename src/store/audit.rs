//! The audit log: who changed what, with the state before and after.

use serde_json::Value;
use sqlx::AnyConnection;

use super::new_id;
use crate::clock::now_ms;

/// One audit entry, written in the same transaction as the change it describes.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// Organization the target belongs to.
    pub organization_id: Option<&'a str>,
    /// Who made the change (token subject).
    pub actor_id: &'a str,
    /// The actor's role.
    pub actor_role: &'a str,
    /// What was done, e.g. `therapist.video_settings.update`.
    pub action: &'a str,
    /// Kind of the changed record, e.g. `therapist`.
    pub target_type: &'a str,
    /// Id of the changed record.
    pub target_id: &'a str,
    /// State before (JSON), if any.
    pub before: Option<Value>,
    /// State after (JSON), if any.
    pub after: Option<Value>,
}

impl<'a> AuditEntry<'a> {
    /// An entry for `action` on `target` (kind, id) made by the authenticated `actor`.
    pub fn by(
        actor: &'a crate::auth::Claims,
        organization_id: Option<&'a str>,
        action: &'a str,
        (target_type, target_id): (&'a str, &'a str),
    ) -> Self {
        AuditEntry {
            organization_id,
            actor_id: &actor.sub,
            actor_role: actor.role.as_str(),
            action,
            target_type,
            target_id,
            before: None,
            after: None,
        }
    }

    /// The state before the change.
    pub fn before(mut self, state: Value) -> Self {
        self.before = Some(state);
        self
    }

    /// The state after the change.
    pub fn after(mut self, state: Value) -> Self {
        self.after = Some(state);
        self
    }
}

/// A stored audit entry, as read back.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AuditRecord {
    /// Identifier.
    pub id: String,
    /// Organization.
    pub organization_id: Option<String>,
    /// Actor.
    pub actor_id: String,
    /// Actor role.
    pub actor_role: String,
    /// Action name.
    pub action: String,
    /// Target kind.
    pub target_type: String,
    /// Target id.
    pub target_id: String,
    /// JSON before.
    pub before_state: Option<String>,
    /// JSON after.
    pub after_state: Option<String>,
    /// When, Unix ms.
    pub at: i64,
}

/// Appends `entry` to the audit log.
pub async fn record(conn: &mut AnyConnection, entry: AuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (id, organization_id, actor_id, actor_role, action, target_type, target_id, before_state, after_state, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new_id())
    .bind(entry.organization_id)
    .bind(entry.actor_id)
    .bind(entry.actor_role)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(entry.target_id)
    .bind(entry.before.map(|v| v.to_string()))
    .bind(entry.after.map(|v| v.to_string()))
    .bind(now_ms())
    .execute(conn)
    .await
    .map(|_| ())
}

impl super::Store {
    /// Records an entry on its own, for events that change nothing else in the database
    /// (sign-ins, failures, decisions already committed).
    pub async fn audit(&self, entry: AuditEntry<'_>) -> Result<(), sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        record(&mut conn, entry).await
    }

    /// Audit entries about one target, oldest first.
    pub async fn audit_for_target(
        &self,
        target_type: &str,
        target_id: &str,
    ) -> Result<Vec<AuditRecord>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, organization_id, actor_id, actor_role, action, target_type, target_id, before_state, after_state, at \
             FROM audit_log WHERE target_type = $1 AND target_id = $2 ORDER BY at, id",
        )
        .bind(target_type)
        .bind(target_id)
        .fetch_all(self.pool())
        .await
    }
}
