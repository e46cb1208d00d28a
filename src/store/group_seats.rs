//! Seats in group sessions: a member's registration, its attendance, and the one
//! conditional statement that takes a seat only while one is left. Writes take the
//! caller's transaction, which has called [`super::groups::lock_session`].

use sqlx::AnyConnection;

use super::{new_id, Store};
use crate::clock::now_ms;

/// A member's registration in a group session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupParticipant {
    /// Identifier.
    pub id: String,
    /// Session.
    pub session_id: String,
    /// Member.
    pub user_id: String,
    /// `registered`, `attended`, `no_show` or `cancelled`.
    pub attendance_status: String,
    /// When (last) joined, Unix ms.
    pub joined_at: i64,
    /// When left, Unix ms.
    pub left_at: Option<i64>,
    /// The member's display name.
    pub display_name: String,
}

const PARTICIPANT_COLUMNS: &str =
    "p.id, p.session_id, p.user_id, p.attendance_status, p.joined_at, \
     p.left_at, u.display_name";

impl Store {
    /// Participants of a session (cancelled registrations included), by join time.
    pub async fn group_participants(
        &self,
        session_id: &str,
    ) -> Result<Vec<GroupParticipant>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM group_session_participants p JOIN users u ON u.id = p.user_id \
             WHERE p.session_id = $1 ORDER BY p.joined_at, p.id"
        ))
        .bind(session_id)
        .fetch_all(self.pool())
        .await
    }

    /// A user's registration in a session, if any (cancelled ones included).
    pub async fn group_participant_of(
        &self,
        session_id: &str,
        user_id: &str,
    ) -> Result<Option<GroupParticipant>, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        participant_of(&mut conn, session_id, user_id).await
    }
}

/// A user's registration in a session inside a transaction.
pub async fn participant_of(
    conn: &mut AnyConnection,
    session_id: &str,
    user_id: &str,
) -> Result<Option<GroupParticipant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM group_session_participants p JOIN users u ON u.id = p.user_id \
         WHERE p.session_id = $1 AND p.user_id = $2"
    ))
    .bind(session_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

/// A registration by its id inside a transaction.
pub async fn participant_by_id(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<GroupParticipant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM group_session_participants p JOIN users u ON u.id = p.user_id \
         WHERE p.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Takes a seat for `user_id` if one is left: a single conditional statement (insert,
/// or re-registration of a cancelled row) whose seat count and write happen together.
/// Call it under [`lock_session`]. Returns false when the session is full.
pub async fn take_seat(
    conn: &mut AnyConnection,
    session_id: &str,
    user_id: &str,
    max_participants: i64,
    existing: Option<&GroupParticipant>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let done = match existing {
        None => {
            sqlx::query(
                "INSERT INTO group_session_participants (id, session_id, user_id, attendance_status, joined_at, updated_at) \
                 SELECT $1, $2, $3, 'registered', $4, $4 \
                 WHERE (SELECT COUNT(*) FROM group_session_participants \
                        WHERE session_id = $2 AND attendance_status <> 'cancelled') < $5",
            )
            .bind(new_id())
            .bind(session_id)
            .bind(user_id)
            .bind(now)
            .bind(max_participants)
            .execute(conn)
            .await?
        }
        Some(p) => {
            sqlx::query(
                "UPDATE group_session_participants SET attendance_status = 'registered', joined_at = $1, \
                   left_at = NULL, updated_at = $1 \
                 WHERE id = $2 AND attendance_status = 'cancelled' \
                   AND (SELECT COUNT(*) FROM group_session_participants \
                        WHERE session_id = $3 AND attendance_status <> 'cancelled') < $4",
            )
            .bind(now)
            .bind(&p.id)
            .bind(session_id)
            .bind(max_participants)
            .execute(conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Sets a registration's attendance status (`cancelled` also stamps `left_at`).
pub async fn set_attendance(
    conn: &mut AnyConnection,
    participant_id: &str,
    status: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let left_at = (status == "cancelled").then_some(now);
    sqlx::query(
        "UPDATE group_session_participants SET attendance_status = $1, updated_at = $2, left_at = $3 WHERE id = $4",
    )
    .bind(status)
    .bind(now)
    .bind(left_at)
    .bind(participant_id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Users holding a seat (registered or attended) in a session.
pub async fn seated_user_ids(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT user_id FROM group_session_participants \
         WHERE session_id = $1 AND attendance_status IN ('registered', 'attended') ORDER BY user_id",
    )
    .bind(session_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
