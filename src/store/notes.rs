//! Session notes, sealed at rest: the text of a note is stored only as AES-256-GCM
//! ciphertext under a data key of the [`Keyring`], bound to the note's id (so a
//! ciphertext copied into another row does not open). Reads open it again; callers
//! see plain [`SessionNote`]s. Rows written before encryption keep their text in
//! `body` until [`Store::seal_plaintext_notes`] (run at every start) seals them.

use std::sync::Arc;

use sqlx::AnyConnection;

use super::{new_id, Backend, Store};
use crate::data_keys::{Keyring, SealError, Sealed};

/// A session note, opened.
#[derive(Debug, Clone)]
pub struct SessionNote {
    /// Identifier.
    pub id: String,
    /// The session.
    pub session_id: String,
    /// Organization.
    pub organization_id: String,
    /// Author.
    pub author_id: String,
    /// Text (clinical: never logged, never audited).
    pub body: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
    /// Who changed it last.
    pub updated_by: Option<String>,
}

/// Why a note could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The store was opened without data keys (see [`Store::install_data_keys`]).
    #[error("no data keys are installed")]
    NoKeys,
    /// A note did not seal or open (unknown key, altered row).
    #[error("note {id}: {error}")]
    Seal {
        /// The note.
        id: String,
        /// What failed.
        error: SealError,
    },
}

/// A note row as stored.
#[derive(sqlx::FromRow)]
struct NoteRow {
    id: String,
    session_id: String,
    organization_id: String,
    author_id: String,
    body: String,
    body_key_id: Option<String>,
    body_nonce: Option<String>,
    body_sealed: Option<String>,
    created_at: i64,
    updated_at: i64,
    updated_by: Option<String>,
}

const NOTE_COLUMNS: &str = "id, session_id, organization_id, author_id, body, body_key_id, \
     body_nonce, body_sealed, created_at, updated_at, updated_by";

/// The associated data of a note's ciphertext: its row.
fn aad(id: &str) -> String {
    format!("scheduled_session_note:{id}")
}

fn seal(keys: &Keyring, id: &str, text: &str) -> Result<Sealed, NoteError> {
    keys.seal(&aad(id), text).map_err(|error| NoteError::Seal {
        id: id.to_string(),
        error,
    })
}

impl NoteRow {
    fn sealed(&self) -> Option<Sealed> {
        match (&self.body_key_id, &self.body_nonce, &self.body_sealed) {
            (Some(key_id), Some(nonce), Some(ciphertext)) => Some(Sealed {
                key_id: key_id.clone(),
                nonce: nonce.clone(),
                ciphertext: ciphertext.clone(),
            }),
            _ => None,
        }
    }

    /// The note with its text opened (a row not sealed yet keeps its plaintext).
    fn open(self, keys: &Keyring) -> Result<SessionNote, NoteError> {
        let body = match self.sealed() {
            Some(sealed) => {
                keys.open(&aad(&self.id), &sealed)
                    .map_err(|error| NoteError::Seal {
                        id: self.id.clone(),
                        error,
                    })?
            }
            None => self.body,
        };
        Ok(SessionNote {
            id: self.id,
            session_id: self.session_id,
            organization_id: self.organization_id,
            author_id: self.author_id,
            body,
            created_at: self.created_at,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
        })
    }
}

/// Notes of a session, oldest first.
pub async fn notes_of(
    conn: &mut AnyConnection,
    keys: &Keyring,
    session_id: &str,
) -> Result<Vec<SessionNote>, NoteError> {
    let rows: Vec<NoteRow> = sqlx::query_as(&format!(
        "SELECT {NOTE_COLUMNS} FROM scheduled_session_notes WHERE session_id = $1 ORDER BY created_at, id"
    ))
    .bind(session_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(|row| row.open(keys)).collect()
}

/// One note of a session.
pub async fn note(
    conn: &mut AnyConnection,
    keys: &Keyring,
    session_id: &str,
    id: &str,
) -> Result<Option<SessionNote>, NoteError> {
    let row: Option<NoteRow> = sqlx::query_as(&format!(
        "SELECT {NOTE_COLUMNS} FROM scheduled_session_notes WHERE id = $1 AND session_id = $2"
    ))
    .bind(id)
    .bind(session_id)
    .fetch_optional(conn)
    .await?;
    row.map(|row| row.open(keys)).transpose()
}

/// Adds a note (sealed with the current key) and returns it.
pub async fn insert_note(
    conn: &mut AnyConnection,
    keys: &Keyring,
    session_id: &str,
    organization_id: &str,
    author_id: &str,
    body: &str,
    now_ms: i64,
) -> Result<SessionNote, NoteError> {
    let id = new_id();
    let sealed = seal(keys, &id, body)?;
    sqlx::query(&format!(
        "INSERT INTO scheduled_session_notes ({NOTE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8, $9, NULL)"
    ))
    .bind(&id)
    .bind(session_id)
    .bind(organization_id)
    .bind(author_id)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(now_ms)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(SessionNote {
        id,
        session_id: session_id.to_string(),
        organization_id: organization_id.to_string(),
        author_id: author_id.to_string(),
        body: body.to_string(),
        created_at: now_ms,
        updated_at: now_ms,
        updated_by: None,
    })
}

/// Replaces a note's text (sealed with the current key).
pub async fn update_note(
    conn: &mut AnyConnection,
    keys: &Keyring,
    id: &str,
    body: &str,
    by: &str,
    now_ms: i64,
) -> Result<(), NoteError> {
    let sealed = seal(keys, id, body)?;
    sqlx::query(
        "UPDATE scheduled_session_notes SET body = '', body_key_id = $1, body_nonce = $2, \
         body_sealed = $3, updated_at = $4, updated_by = $5 WHERE id = $6",
    )
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(now_ms)
    .bind(by)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a row must still hold for [`replace_sealed`] to write it.
enum Holding<'a> {
    /// Its plaintext (not sealed yet).
    Plaintext,
    /// The ciphertext read, known by its nonce (random for every sealing, so a
    /// concurrent edit, even under the same key, changes it).
    Nonce(&'a str),
}

/// Stores `sealed` as the text of note `id` and clears the plaintext column, if the
/// row still holds what the caller read (a concurrent edit wins). True when written.
async fn replace_sealed(
    conn: &mut AnyConnection,
    id: &str,
    sealed: &Sealed,
    holding: Holding<'_>,
) -> Result<bool, sqlx::Error> {
    let set = "UPDATE scheduled_session_notes SET body = '', body_key_id = $1, body_nonce = $2, \
               body_sealed = $3 WHERE id = $4";
    let done = match holding {
        Holding::Plaintext => {
            sqlx::query(&format!("{set} AND body_sealed IS NULL"))
                .bind(&sealed.key_id)
                .bind(&sealed.nonce)
                .bind(&sealed.ciphertext)
                .bind(id)
                .execute(conn)
                .await?
        }
        Holding::Nonce(nonce) => {
            sqlx::query(&format!("{set} AND body_nonce = $5"))
                .bind(&sealed.key_id)
                .bind(&sealed.nonce)
                .bind(&sealed.ciphertext)
                .bind(id)
                .bind(nonce)
                .execute(conn)
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Rows handled per batch by the sealing jobs.
const BATCH: i64 = 200;

impl Store {
    /// Makes `keys` the data keys of this store and of every clone of it.
    pub fn install_data_keys(&self, keys: Keyring) {
        let mut slot = self
            .data_keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(Arc::new(keys));
    }

    /// The installed data keys; reloaded first when the keyring file changed since
    /// they were loaded (a rotation run while the server is up), so every clone of the
    /// store opens rows re-sealed with the new key and seals with it from then on.
    pub fn data_keys(&self) -> Result<Arc<Keyring>, NoteError> {
        let ring = self
            .data_keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or(NoteError::NoKeys)?;
        match ring.reloaded_if_changed() {
            Some(newer) => {
                let newer = Arc::new(newer);
                *self
                    .data_keys
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(newer.clone());
                Ok(newer)
            }
            None => Ok(ring),
        }
    }

    /// Seals every note still stored in plaintext (rows from before encryption) and
    /// clears its plaintext; idempotent, run at every start. On SQLite the connection
    /// turns on `secure_delete`, so the replaced text is overwritten in the file.
    /// Returns how many rows were sealed.
    pub async fn seal_plaintext_notes(&self) -> Result<u64, NoteError> {
        let keys = self.data_keys()?;
        let mut conn = self.pool().acquire().await?;
        if self.backend() == Backend::Sqlite {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *conn)
                .await?;
        }
        let mut sealed = 0;
        let mut last = String::new();
        loop {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, body FROM scheduled_session_notes \
                 WHERE body_sealed IS NULL AND id > $1 ORDER BY id LIMIT $2",
            )
            .bind(&last)
            .bind(BATCH)
            .fetch_all(&mut *conn)
            .await?;
            let Some((id, _)) = rows.last() else { break };
            last = id.clone();
            for (id, body) in rows {
                let value = seal(&keys, &id, &body)?;
                if replace_sealed(&mut conn, &id, &value, Holding::Plaintext).await? {
                    sealed += 1;
                }
            }
        }
        if sealed > 0 {
            tracing::info!(
                notes = sealed,
                key_id = keys.current_id(),
                "sealed notes stored in plaintext"
            );
        }
        Ok(sealed)
    }

    /// Seals every note again with the current key (after a rotation); rows sealed by
    /// another key are opened with it first. Returns how many rows were re-sealed.
    pub async fn reseal_notes(&self) -> Result<u64, NoteError> {
        self.seal_plaintext_notes().await?;
        let keys = self.data_keys()?;
        let current = keys.current_id().to_string();
        let mut conn = self.pool().acquire().await?;
        let mut resealed = 0;
        let mut last = String::new();
        loop {
            let rows: Vec<NoteRow> = sqlx::query_as(&format!(
                "SELECT {NOTE_COLUMNS} FROM scheduled_session_notes \
                 WHERE body_key_id <> $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .bind(&current)
            .bind(&last)
            .bind(BATCH)
            .fetch_all(&mut *conn)
            .await?;
            let Some(row) = rows.last() else { break };
            last = row.id.clone();
            for row in rows {
                let read = row.body_nonce.clone().unwrap_or_default();
                let note = row.open(&keys)?;
                let value = seal(&keys, &note.id, &note.body)?;
                if replace_sealed(&mut conn, &note.id, &value, Holding::Nonce(&read)).await? {
                    resealed += 1;
                }
            }
        }
        tracing::info!(notes = resealed, key_id = %current, "re-sealed notes with the current data key");
        Ok(resealed)
    }
}
