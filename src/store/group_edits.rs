//! Repairs of a group session after it was proposed: its fields edited, its therapist
//! invitations re-opened, re-sent or withdrawn. Every write takes the caller's
//! transaction, which has already called [`super::groups::lock_session`], so the
//! handler can add the audit entry and the notifications to the same commit.

use sqlx::AnyConnection;

use crate::clock::now_ms;

/// The editable fields of a group session after an edit (validated by the caller):
/// the whole new state, not a difference.
#[derive(Debug, Clone)]
pub struct SessionFields<'a> {
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// External link (virtual).
    pub meeting_link: Option<&'a str>,
    /// Place (in person).
    pub location: Option<&'a str>,
    /// Address (in person).
    pub location_address: Option<&'a str>,
    /// Start, Unix ms.
    pub start_ms: i64,
    /// Duration in minutes.
    pub duration_minutes: i64,
    /// Seats.
    pub max_participants: i64,
}

/// Writes a session's editable fields (and its end, start + duration). A new start
/// also forgets that the reminder was sent, so the new time gets its own.
pub async fn update_fields(
    conn: &mut AnyConnection,
    id: &str,
    f: &SessionFields<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE group_sessions SET title = $1, description = $2, meeting_link = $3, location = $4, \
           location_address = $5, start_ms = $6, duration_minutes = $7, end_ms = $8, \
           max_participants = $9, updated_at = $10, \
           reminded_at = CASE WHEN start_ms = $6 THEN reminded_at ELSE NULL END \
         WHERE id = $11",
    )
    .bind(f.title)
    .bind(f.description)
    .bind(f.meeting_link)
    .bind(f.location)
    .bind(f.location_address)
    .bind(f.start_ms)
    .bind(f.duration_minutes)
    .bind(f.start_ms + f.duration_minutes * 60_000)
    .bind(f.max_participants)
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Sends every accepted invitation of a session back to `pending` (its answer and
/// message cleared, invited again now): a new time needs a new yes. Declined
/// invitations stay declined. Returns how many were re-opened.
pub async fn reopen_acceptances(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE group_session_invitations SET status = 'pending', message = NULL, \
           responded_at = NULL, invited_at = $1 \
         WHERE session_id = $2 AND status = 'accepted'",
    )
    .bind(now_ms())
    .bind(session_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Invites a therapist who declined once more: the invitation goes back to `pending`.
/// False when it was not declined.
pub async fn reinvite(conn: &mut AnyConnection, invitation_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE group_session_invitations SET status = 'pending', message = NULL, \
           responded_at = NULL, invited_at = $1 \
         WHERE id = $2 AND status = 'declined'",
    )
    .bind(now_ms())
    .bind(invitation_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes an invitation that was not accepted (declined or still pending). False
/// when there is no such invitation.
pub async fn remove_unaccepted(
    conn: &mut AnyConnection,
    invitation_id: &str,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM group_session_invitations WHERE id = $1 AND status <> 'accepted'")
            .bind(invitation_id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
