//! Group-session reminders: one `group_session_reminder` per person shortly before an
//! approved session starts, sent by the server's periodic task.

use serde_json::json;

use super::group_seats::seated_user_ids;
use super::groups::{invitations_of, session_in};
use super::notifications::{self, NewNotification, Notification, NotificationKind};
use super::Store;

/// Creates the `group_session_reminder` notifications of approved sessions that start
/// within `lead_ms` of `now` and were not reminded yet (accepted therapists and seated
/// participants), marking them reminded, in one transaction. Returns the stored
/// notifications; push them with [`crate::state::LiveControl::notify`]. Meant to be
/// called periodically.
pub async fn send_due_reminders(
    store: &Store,
    now: i64,
    lead_ms: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    // Mark first: the write comes first in the transaction (SQLite write lock), and
    // a concurrent run finds nothing left to mark.
    sqlx::query(
        "UPDATE group_sessions SET reminded_at = $1 WHERE status = 'approved' AND reminded_at IS NULL \
         AND start_ms > $1 AND start_ms <= $2",
    )
    .bind(now)
    .bind(now + lead_ms)
    .execute(&mut *tx)
    .await?;
    let due: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM group_sessions WHERE status = 'approved' AND reminded_at = $1 \
         AND start_ms > $1 AND start_ms <= $2 ORDER BY start_ms, id",
    )
    .bind(now)
    .bind(now + lead_ms)
    .fetch_all(&mut *tx)
    .await?;
    let mut created = Vec::new();
    for (id,) in due {
        let Some(session) = session_in(&mut tx, &id).await? else {
            continue;
        };
        let mut recipients: Vec<String> = invitations_of(&mut tx, &id)
            .await?
            .into_iter()
            .filter(|i| i.status == "accepted")
            .map(|i| i.therapist_id)
            .collect();
        recipients.extend(seated_user_ids(&mut tx, &id).await?);
        recipients.sort();
        recipients.dedup();
        let minutes = ((session.start_ms - now) + 59_999) / 60_000;
        let body = format!("\"{}\" starts in {minutes} minutes.", session.title);
        for user in &recipients {
            created.push(
                notifications::create(
                    &mut tx,
                    NewNotification {
                        user_id: user,
                        organization_id: Some(&session.organization_id),
                        kind: NotificationKind::GroupSessionReminder,
                        title: "Group session starting soon",
                        body: &body,
                        payload: json!({"group_session_id": session.id, "starts_at": crate::clock::rfc3339(session.start_ms)}),
                    },
                )
                .await?,
            );
        }
    }
    tx.commit().await?;
    Ok(created)
}
