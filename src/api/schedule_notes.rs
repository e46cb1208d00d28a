//! Session notes of booked 1:1 sessions: list, add, change. Notes are clinical
//! records: shown to the session's therapist and the organization's administrators,
//! never to clients; sealed at rest ([`crate::store::notes`]); every change audited
//! with its length only, never its text.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::schedule::managed_session;
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::policy::is_admin_of;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::notes::{self as store, NoteError, SessionNote};

/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 10_000;

impl From<NoteError> for ApiError {
    /// A note that cannot be sealed or opened is a server fault (missing or wrong
    /// data key): 500, with the cause (ids only) in the log.
    fn from(err: NoteError) -> Self {
        match err {
            NoteError::Db(e) => e.into(),
            other => {
                tracing::error!(error = %other, "session note sealing failed");
                ApiError::internal()
            }
        }
    }
}

/// A session note.
#[derive(Serialize, ToSchema)]
pub struct NoteView {
    id: String,
    session_id: String,
    author_id: String,
    body: String,
    created_at: String,
    updated_at: String,
    updated_by: Option<String>,
}

fn note_view(n: &SessionNote) -> NoteView {
    NoteView {
        id: n.id.clone(),
        session_id: n.session_id.clone(),
        author_id: n.author_id.clone(),
        body: n.body.clone(),
        created_at: rfc3339(n.created_at),
        updated_at: rfc3339(n.updated_at),
        updated_by: n.updated_by.clone(),
    }
}

/// The notes of a session.
#[derive(Serialize, ToSchema)]
pub struct NoteList {
    notes: Vec<NoteView>,
}

/// Body of a note.
#[derive(Deserialize, ToSchema)]
pub struct NoteBody {
    /// Text, 1–10000 characters.
    body: String,
}

/// What the audit log keeps of a note: which session, who wrote it, and how long it
/// is. Never the text: notes are health data and must not be copied out of
/// `scheduled_session_notes`, where it is sealed (migration 0007 scrubbed the audit
/// rows written before this rule).
fn note_audit_state(session_id: &str, author_id: &str, text: &str) -> serde_json::Value {
    json!({
        "session_id": session_id,
        "author_id": author_id,
        "length": text.chars().count(),
    })
}

fn validate_note(raw: &str) -> ApiResult<String> {
    let text = raw.trim();
    let len = text.chars().count();
    if len == 0 || len > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request(
            "invalid_note",
            format!("a note is 1 to {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(text.to_string())
}

/// Lists a session's notes (its therapist and its organization's administrators;
/// notes are clinical records, not shown to clients).
#[utoipa::path(get, path = "/api/schedule/sessions/{id}/notes", tag = "schedule",
    params(("id" = String, Path, description = "scheduled session id")), security(("bearer" = [])),
    responses((status = 200, body = NoteList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "scheduled_session_not_found")))]
pub async fn list_notes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<NoteList>> {
    let s = managed_session(&state, &caller, &id).await?;
    let keys = state.store.data_keys()?;
    let mut conn = state.store.pool().acquire().await?;
    let notes = store::notes_of(&mut conn, &keys, &s.id).await?;
    Ok(Json(NoteList {
        notes: notes.iter().map(note_view).collect(),
    }))
}

/// Adds a note to a session (audited without its text).
#[utoipa::path(post, path = "/api/schedule/sessions/{id}/notes", tag = "schedule",
    params(("id" = String, Path, description = "scheduled session id")), request_body = NoteBody, security(("bearer" = [])),
    responses((status = 201, body = NoteView),
        (status = 400, body = ErrorBody, description = "invalid_note"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "scheduled_session_not_found")))]
pub async fn create_note(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NoteBody>,
) -> ApiResult<(StatusCode, Json<NoteView>)> {
    let s = managed_session(&state, &caller, &id).await?;
    let text = validate_note(&body.body)?;
    let keys = state.store.data_keys()?;
    let mut tx = state.store.pool().begin().await?;
    let note = store::insert_note(
        &mut tx,
        &keys,
        &s.id,
        &s.organization_id,
        &caller.sub,
        &text,
        now_ms(),
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&s.organization_id),
            "schedule.note.create",
            ("scheduled_session_note", &note.id),
        )
        .after(note_audit_state(
            &note.session_id,
            &note.author_id,
            &note.body,
        )),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(note_view(&note))))
}

/// Changes a note (its author or an administrator of the organization); audited with
/// who changed it and the length before and after, never the text.
#[utoipa::path(put, path = "/api/schedule/sessions/{id}/notes/{note_id}", tag = "schedule",
    params(("id" = String, Path, description = "scheduled session id"), ("note_id" = String, Path, description = "note id")),
    request_body = NoteBody, security(("bearer" = [])),
    responses((status = 200, body = NoteView),
        (status = 400, body = ErrorBody, description = "invalid_note"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients), not_note_author"),
        (status = 404, body = ErrorBody, description = "scheduled_session_not_found, note_not_found")))]
pub async fn update_note(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, note_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<NoteBody>,
) -> ApiResult<Json<NoteView>> {
    let s = managed_session(&state, &caller, &id).await?;
    let text = validate_note(&body.body)?;
    let keys = state.store.data_keys()?;
    let mut tx = state.store.pool().begin().await?;
    let before = store::note(&mut tx, &keys, &s.id, &note_id)
        .await?
        .ok_or_else(|| ApiError::not_found("note_not_found", "note not found"))?;
    if before.author_id != caller.sub && !is_admin_of(&caller, &s.organization_id) {
        return Err(ApiError::forbidden(
            "not_note_author",
            "only the author or an administrator may change a note",
        ));
    }
    store::update_note(&mut tx, &keys, &before.id, &text, &caller.sub, now_ms()).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&s.organization_id),
            "schedule.note.update",
            ("scheduled_session_note", &before.id),
        )
        .before(note_audit_state(
            &before.session_id,
            &before.author_id,
            &before.body,
        ))
        .after(note_audit_state(
            &before.session_id,
            &before.author_id,
            &text,
        )),
    )
    .await?;
    let after = store::note(&mut tx, &keys, &s.id, &note_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(note_view(&after)))
}
