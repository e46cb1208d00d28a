//! Instant and group video sessions.

use sqlx::AnyConnection;

use super::{flag, new_id, Store};
use crate::clock::now_ms;

/// A video session: a room that lives until it is ended or expires.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VideoSession {
    /// Identifier.
    pub id: String,
    /// Name chosen by the therapist.
    pub session_name: String,
    /// Secret part of the share link (256 random bits, URL-safe base64).
    pub share_token: String,
    /// Owning therapist.
    pub therapist_id: String,
    /// Owning organization (the therapist's).
    pub organization_id: String,
    /// `instant` (1:1 by default) or `group`.
    pub kind: String,
    /// Room capacity.
    pub max_participants: i64,
    is_active: i16,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Expiry, Unix ms.
    pub expires_at: i64,
    /// When it was ended, Unix ms.
    pub ended_at: Option<i64>,
    /// The therapist's display name (joined in).
    pub therapist_name: String,
    restricted: i16,
    waiting_room: i16,
}

impl VideoSession {
    /// False once ended.
    pub fn is_active(&self) -> bool {
        self.is_active != 0
    }
    /// True for rooms of booked or group sessions: only their invitees may enter.
    pub fn restricted(&self) -> bool {
        self.restricted != 0
    }
    /// True when guests and clients wait until a host lets them in.
    pub fn waiting_room(&self) -> bool {
        self.waiting_room != 0
    }
    /// Active and not past its expiry at `now_ms`.
    pub fn is_open_at(&self, now_ms: i64) -> bool {
        self.is_active() && now_ms < self.expires_at
    }
}

/// What a new video room is made of. Every room — instant, booked 1:1, group — is
/// inserted through [`insert_room`] from one of these.
#[derive(Debug, Clone)]
pub struct NewRoom<'a> {
    /// Name shown to participants.
    pub session_name: &'a str,
    /// Owning therapist.
    pub therapist_id: &'a str,
    /// Owning organization.
    pub organization_id: &'a str,
    /// `instant` or `group`.
    pub kind: &'a str,
    /// Capacity.
    pub max_participants: i64,
    /// Expiry, Unix ms.
    pub expires_at: i64,
    /// Secret part of the share link.
    pub share_token: &'a str,
    /// Invitees only (booked and group sessions).
    pub restricted: bool,
    /// Guests and clients wait until a host lets them in.
    pub waiting_room: bool,
}

const COLUMNS: &str = "s.id, s.session_name, s.share_token, s.therapist_id, s.organization_id, s.kind, \
     s.max_participants, s.is_active, s.created_at, s.expires_at, s.ended_at, u.display_name AS therapist_name, s.restricted, s.waiting_room";

impl Store {
    /// Looks a session up by id.
    pub async fn session(&self, id: &str) -> Result<Option<VideoSession>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM instant_sessions s JOIN users u ON u.id = s.therapist_id WHERE s.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Looks a session up by its share token.
    pub async fn session_by_share_token(
        &self,
        token: &str,
    ) -> Result<Option<VideoSession>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM instant_sessions s JOIN users u ON u.id = s.therapist_id WHERE s.share_token = $1"
        ))
        .bind(token)
        .fetch_optional(self.pool())
        .await
    }

    /// Sessions a therapist created, newest first.
    pub async fn sessions_of_therapist(
        &self,
        therapist_id: &str,
    ) -> Result<Vec<VideoSession>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM instant_sessions s JOIN users u ON u.id = s.therapist_id \
             WHERE s.therapist_id = $1 ORDER BY s.created_at DESC, s.id"
        ))
        .bind(therapist_id)
        .fetch_all(self.pool())
        .await
    }

    /// Sessions of an organization, newest first.
    pub async fn sessions_of_organization(
        &self,
        org_id: &str,
    ) -> Result<Vec<VideoSession>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM instant_sessions s JOIN users u ON u.id = s.therapist_id \
             WHERE s.organization_id = $1 ORDER BY s.created_at DESC, s.id"
        ))
        .bind(org_id)
        .fetch_all(self.pool())
        .await
    }

    /// Sessions a user takes part in (registered, not removed, not left), newest first.
    pub async fn sessions_joined_by(
        &self,
        user_id: &str,
    ) -> Result<Vec<VideoSession>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM instant_sessions s JOIN users u ON u.id = s.therapist_id \
             WHERE s.id IN (SELECT p.session_id FROM session_participants p WHERE p.user_id = $1 \
               AND p.removed = 0 AND NOT (p.is_active = 0 AND p.left_at IS NOT NULL)) \
             ORDER BY s.created_at DESC, s.id"
        ))
        .bind(user_id)
        .fetch_all(self.pool())
        .await
    }
}

/// Ends a session and closes every participant row, inside a transaction.
/// Returns false when the session was already ended.
pub async fn end_session(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE instant_sessions SET is_active = 0, ended_at = $1 WHERE id = $2 AND is_active = 1",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE session_participants SET is_active = 0, left_at = $1 WHERE session_id = $2 AND is_active = 1")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Inserts a video room inside the caller's transaction and returns its id.
pub async fn insert_room(
    conn: &mut AnyConnection,
    new: &NewRoom<'_>,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO instant_sessions (id, session_name, share_token, therapist_id, organization_id, kind, \
         max_participants, is_active, created_at, expires_at, restricted, waiting_room) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(new.session_name)
    .bind(new.share_token)
    .bind(new.therapist_id)
    .bind(new.organization_id)
    .bind(new.kind)
    .bind(new.max_participants)
    .bind(now_ms())
    .bind(new.expires_at)
    .bind(flag(new.restricted))
    .bind(flag(new.waiting_room))
    .execute(conn)
    .await?;
    Ok(id)
}

/// Reads a session inside the caller's transaction.
pub async fn session_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<VideoSession>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM instant_sessions s JOIN users u ON u.id = s.therapist_id WHERE s.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Gives a session a new share link inside the caller's transaction and records the
/// old one as withdrawn.
pub async fn withdraw_share_link(
    conn: &mut AnyConnection,
    session_id: &str,
    new_token: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO withdrawn_share_links (share_token, session_id, withdrawn_at) \
         SELECT share_token, id, $1 FROM instant_sessions WHERE id = $2",
    )
    .bind(now)
    .bind(session_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE instant_sessions SET share_token = $1 WHERE id = $2")
        .bind(new_token)
        .bind(session_id)
        .execute(conn)
        .await
        .map(|_| ())
}

impl Store {
    /// The session a withdrawn share link used to open, if the token is one.
    pub async fn withdrawn_link_session(&self, token: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT session_id FROM withdrawn_share_links WHERE share_token = $1")
                .bind(token)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(id,)| id))
    }
}

/// Switches a session's waiting room on or off, inside the caller's transaction. False
/// when the session does not exist.
pub async fn set_waiting_room(
    conn: &mut AnyConnection,
    id: &str,
    on: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE instant_sessions SET waiting_room = $1 WHERE id = $2")
        .bind(flag(on))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets how many people a restricted room holds and when it closes, inside the
/// caller's transaction (a scheduled room follows its session when that changes).
/// False when the room does not exist or has already ended.
pub async fn set_room_limits(
    conn: &mut AnyConnection,
    id: &str,
    max_participants: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE instant_sessions SET max_participants = $1, expires_at = $2 \
         WHERE id = $3 AND is_active = 1",
    )
    .bind(max_participants)
    .bind(expires_at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
