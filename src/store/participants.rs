//! Session participants and anonymous guests.

use sqlx::AnyConnection;

use super::{new_id, Store};
use crate::clock::now_ms;

/// A registration of a user or guest in a session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Participant {
    /// Identifier; also the participant id used in signaling.
    pub id: String,
    /// Session.
    pub session_id: String,
    /// Registered user, if not a guest.
    pub user_id: Option<String>,
    /// Guest, if not a user.
    pub guest_id: Option<String>,
    /// Name shown to others.
    pub display_name: String,
    /// Role in the session (the caller's role).
    pub role: String,
    is_active: i16,
    removed: i16,
    /// When registered, Unix ms.
    pub registered_at: i64,
    /// Last time the participant entered the room, Unix ms.
    pub joined_at: Option<i64>,
    /// When the participant last left, Unix ms.
    pub left_at: Option<i64>,
    /// When a host let them in from the waiting room, Unix ms.
    pub admitted_at: Option<i64>,
    /// When a host declined them in the waiting room, Unix ms: they may not enter.
    pub declined_at: Option<i64>,
}

impl Participant {
    /// True while the participant is in the room.
    pub fn is_active(&self) -> bool {
        self.is_active != 0
    }
    /// True once the therapist removed them; they may not come back.
    pub fn removed(&self) -> bool {
        self.removed != 0
    }
    /// True once they entered the room and left it again (and are not back in).
    pub fn has_left(&self) -> bool {
        !self.is_active() && self.left_at.is_some()
    }
}

/// An anonymous guest admitted through a share link.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Guest {
    /// Identifier (the guest token's subject).
    pub id: String,
    /// The one session the guest may enter.
    pub session_id: String,
    /// Name the guest typed.
    pub display_name: String,
    /// When the therapist removed this guest, Unix ms: their token admits them nowhere.
    pub removed_at: Option<i64>,
}

impl Guest {
    /// True once the therapist removed this guest.
    pub fn removed(&self) -> bool {
        self.removed_at.is_some()
    }
}

/// Who is registering.
#[derive(Debug, Clone, Copy)]
pub enum Registrant<'a> {
    /// A signed-in user.
    User(&'a str),
    /// A guest.
    Guest(&'a str),
}

const COLUMNS: &str = "id, session_id, user_id, guest_id, display_name, role, is_active, removed, registered_at, joined_at, left_at, admitted_at, declined_at";

impl Store {
    /// Registers a user or guest in a session; idempotent on (session, user) and
    /// (session, guest). Returns the row and whether it was created now.
    pub async fn register_participant(
        &self,
        session_id: &str,
        who: Registrant<'_>,
        display_name: &str,
        role: &str,
    ) -> Result<(Participant, bool), sqlx::Error> {
        let (column, subject) = match who {
            Registrant::User(id) => ("user_id", id),
            Registrant::Guest(id) => ("guest_id", id),
        };
        let inserted = sqlx::query(&format!(
            "INSERT INTO session_participants (id, session_id, {column}, display_name, role, is_active, removed, registered_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 0, $6) ON CONFLICT (session_id, {column}) DO NOTHING"
        ))
        .bind(new_id())
        .bind(session_id)
        .bind(subject)
        .bind(display_name)
        .bind(role)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        let row = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM session_participants WHERE session_id = $1 AND {column} = $2"
        ))
        .bind(session_id)
        .bind(subject)
        .fetch_one(self.pool())
        .await?;
        Ok((row, inserted.rows_affected() == 1))
    }

    /// The registration of a user or guest in a session, if any.
    pub async fn participant_of(
        &self,
        session_id: &str,
        who: Registrant<'_>,
    ) -> Result<Option<Participant>, sqlx::Error> {
        let (column, subject) = match who {
            Registrant::User(id) => ("user_id", id),
            Registrant::Guest(id) => ("guest_id", id),
        };
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM session_participants WHERE session_id = $1 AND {column} = $2"
        ))
        .bind(session_id)
        .bind(subject)
        .fetch_optional(self.pool())
        .await
    }

    /// One participant by id.
    pub async fn participant(&self, id: &str) -> Result<Option<Participant>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM session_participants WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Every participant of a session, in registration order.
    pub async fn participants(&self, session_id: &str) -> Result<Vec<Participant>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM session_participants WHERE session_id = $1 ORDER BY registered_at, id"
        ))
        .bind(session_id)
        .fetch_all(self.pool())
        .await
    }

    /// Marks a participant as in the room now.
    pub async fn mark_participant_joined(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE session_participants SET is_active = 1, joined_at = $1, left_at = NULL WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await
            .map(|_| ())
    }

    /// Marks a participant as gone (left, dropped past the grace period, session ended).
    pub async fn mark_participant_left(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE session_participants SET is_active = 0, left_at = $1 WHERE id = $2 AND is_active = 1")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await
            .map(|_| ())
    }

    /// Closes every active participant row (at server start: nobody is connected yet).
    pub async fn close_all_active_participants(&self) -> Result<u64, sqlx::Error> {
        sqlx::query(
            "UPDATE session_participants SET is_active = 0, left_at = $1 WHERE is_active = 1",
        )
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map(|r| r.rows_affected())
    }

    /// Whether a user is an invitee of a restricted room (booked 1:1 or group session).
    pub async fn is_room_invitee(
        &self,
        instant_session_id: &str,
        user_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT user_id FROM scheduled_room_invitees WHERE instant_session_id = $1 AND user_id = $2 \
             UNION SELECT user_id FROM group_room_invitees WHERE instant_session_id = $1 AND user_id = $2",
        )
        .bind(instant_session_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Looks a guest up by id.
    pub async fn guest(&self, id: &str) -> Result<Option<Guest>, sqlx::Error> {
        sqlx::query_as("SELECT id, session_id, display_name, removed_at FROM guests WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }
}

/// Marks a participant as removed by the therapist (and gone), inside the caller's
/// transaction. Returns false when the row was already removed.
pub async fn mark_removed(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE session_participants SET removed = 1, is_active = 0, \
         left_at = COALESCE(CASE WHEN is_active = 1 THEN $1 END, left_at) WHERE id = $2 AND removed = 0",
    )
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a guest as removed, inside the caller's transaction: their token admits them
/// nowhere any more.
pub async fn mark_guest_removed(
    conn: &mut AnyConnection,
    guest_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE guests SET removed_at = $1 WHERE id = $2 AND removed_at IS NULL")
        .bind(now_ms())
        .bind(guest_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Creates a guest for one session.
pub async fn create_guest(
    conn: &mut AnyConnection,
    session_id: &str,
    display_name: &str,
) -> Result<Guest, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO guests (id, session_id, display_name, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(session_id)
    .bind(display_name)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(Guest {
        id,
        session_id: session_id.to_string(),
        display_name: display_name.to_string(),
        removed_at: None,
    })
}

/// Records a host's waiting-room decision on a registration of `session_id`, inside the
/// caller's transaction: admitted people enter directly from then on, declined people
/// are refused. False when no such registration is in that session.
pub async fn record_waiting_decision(
    conn: &mut AnyConnection,
    session_id: &str,
    id: &str,
    admitted: bool,
) -> Result<bool, sqlx::Error> {
    let sql = if admitted {
        "UPDATE session_participants SET admitted_at = $1, declined_at = NULL WHERE id = $2 AND session_id = $3"
    } else {
        "UPDATE session_participants SET declined_at = $1, admitted_at = NULL WHERE id = $2 AND session_id = $3"
    };
    let done = sqlx::query(sql)
        .bind(now_ms())
        .bind(id)
        .bind(session_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// One participant by id, inside the caller's transaction.
pub async fn participant_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<Participant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM session_participants WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The participants in a session's room now, inside the caller's transaction.
pub async fn active_in(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<Vec<Participant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM session_participants WHERE session_id = $1 AND is_active = 1 \
         ORDER BY registered_at, id"
    ))
    .bind(session_id)
    .fetch_all(conn)
    .await
}

/// Marks a participant as in the room now, inside the caller's transaction. True when
/// they were not in it before (an entry, not a reconnect of someone already in).
pub async fn mark_joined_in(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let entered = sqlx::query(
        "UPDATE session_participants SET is_active = 1, joined_at = $1, left_at = NULL \
         WHERE id = $2 AND is_active = 0",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if entered.rows_affected() == 1 {
        return Ok(true);
    }
    sqlx::query("UPDATE session_participants SET joined_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(false)
}

/// Marks a participant as gone, inside the caller's transaction. True when they were
/// in the room until now.
pub async fn mark_left_in(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE session_participants SET is_active = 0, left_at = $1 WHERE id = $2 AND is_active = 1",
    )
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
