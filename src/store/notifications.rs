//! Stored notifications: invitations, approvals, bookings, reminders...

use serde::Serialize;
use serde_json::Value;
use sqlx::AnyConnection;

use super::{new_id, Store};
use crate::clock::{now_ms, rfc3339};

/// The notification types of group therapy, plus bookings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A therapist is invited to co-lead a group session.
    GroupSessionInvitation,
    /// An invited therapist accepted (to the moderator).
    GroupSessionInvitationAccepted,
    /// An invited therapist declined (to the moderator).
    GroupSessionInvitationDeclined,
    /// Every invited therapist accepted: the session is open for joining.
    GroupSessionApproved,
    /// The group session was cancelled.
    GroupSessionCancelled,
    /// A group session starts soon.
    GroupSessionReminder,
    /// A member joined a group session (to its therapists).
    GroupSessionMemberJoined,
    /// The member's own confirmation that they hold a seat in a group session.
    GroupJoinConfirmed,
    /// A group session's time, place or details changed (to the people concerned).
    GroupSessionUpdated,
    /// A therapist's pending invitation to a group session was withdrawn.
    GroupSessionInvitationWithdrawn,
    /// A 1:1 session was booked.
    BookingConfirmed,
    /// A 1:1 session was cancelled.
    BookingCancelled,
    /// A 1:1 session was moved to another slot.
    BookingRescheduled,
}

impl NotificationKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GroupSessionInvitation => "group_session_invitation",
            Self::GroupSessionInvitationAccepted => "group_session_invitation_accepted",
            Self::GroupSessionInvitationDeclined => "group_session_invitation_declined",
            Self::GroupSessionApproved => "group_session_approved",
            Self::GroupSessionCancelled => "group_session_cancelled",
            Self::GroupSessionReminder => "group_session_reminder",
            Self::GroupSessionMemberJoined => "group_session_member_joined",
            Self::GroupJoinConfirmed => "group_join_confirmed",
            Self::GroupSessionUpdated => "group_session_updated",
            Self::GroupSessionInvitationWithdrawn => "group_session_invitation_withdrawn",
            Self::BookingConfirmed => "booking_confirmed",
            Self::BookingCancelled => "booking_cancelled",
            Self::BookingRescheduled => "booking_rescheduled",
        }
    }
}

/// A notification to create.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// Recipient.
    pub user_id: &'a str,
    /// Recipient's organization.
    pub organization_id: Option<&'a str>,
    /// Type.
    pub kind: NotificationKind,
    /// Short title.
    pub title: &'a str,
    /// Sentence shown to the user.
    pub body: &'a str,
    /// Machine-readable details (ids of the session, invitation...).
    pub payload: Value,
}

/// A stored notification.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notification {
    /// Identifier.
    pub id: String,
    /// Recipient.
    pub user_id: String,
    /// Type name.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// JSON payload.
    pub payload: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// When read, Unix ms.
    pub read_at: Option<i64>,
}

impl Notification {
    /// The JSON shape used by the API and the signaling `notification` message.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "type": self.kind,
            "title": self.title,
            "body": self.body,
            "payload": serde_json::from_str::<Value>(&self.payload).unwrap_or(Value::Null),
            "created_at": rfc3339(self.created_at),
            "read": self.read_at.is_some(),
            "read_at": self.read_at.map(rfc3339),
        })
    }
}

const COLUMNS: &str = "id, user_id, kind, title, body, payload, created_at, read_at";

/// Stores a notification inside the caller's transaction. Push it with
/// [`crate::state::LiveControl::notify`] after the commit.
pub async fn create(
    conn: &mut AnyConnection,
    n: NewNotification<'_>,
) -> Result<Notification, sqlx::Error> {
    let stored = Notification {
        id: new_id(),
        user_id: n.user_id.to_string(),
        kind: n.kind.as_str().to_string(),
        title: n.title.to_string(),
        body: n.body.to_string(),
        payload: n.payload.to_string(),
        created_at: now_ms(),
        read_at: None,
    };
    sqlx::query(
        "INSERT INTO notifications (id, user_id, organization_id, kind, title, body, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&stored.id)
    .bind(&stored.user_id)
    .bind(n.organization_id)
    .bind(&stored.kind)
    .bind(&stored.title)
    .bind(&stored.body)
    .bind(&stored.payload)
    .bind(stored.created_at)
    .execute(conn)
    .await?;
    Ok(stored)
}

impl Store {
    /// A user's notifications, newest first (at most `limit`).
    pub async fn notifications_of(
        &self,
        user_id: &str,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<Notification>, sqlx::Error> {
        let filter = if unread_only {
            " AND read_at IS NULL"
        } else {
            ""
        };
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1{filter} ORDER BY created_at DESC, id LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    /// Number of unread notifications of a user.
    pub async fn unread_notification_count(&self, user_id: &str) -> Result<i64, sqlx::Error> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }

    /// Marks one of the user's notifications read; None if it is not theirs.
    pub async fn mark_notification_read(
        &self,
        id: &str,
        user_id: &str,
    ) -> Result<Option<Notification>, sqlx::Error> {
        sqlx::query("UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3")
            .bind(now_ms())
            .bind(id)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE id = $1 AND user_id = $2"
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await
    }
}
