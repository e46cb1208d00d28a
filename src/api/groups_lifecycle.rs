//! Group therapy: the end of a session's life, cancelled by its moderators or marked
//! completed once it has started.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::groups::*;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::group_seats as seats;
use crate::store::groups::{self as store, GroupSession};
use crate::store::notifications::{Notification, NotificationKind};
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// Result of a cancellation or completion.
#[derive(Serialize, ToSchema)]
pub struct SessionStatusResponse {
    session: GroupSessionView,
    message: String,
}

/// Cancels a session (its community's moderators, the organization's
/// administrators). Everyone concerned is notified; its video room is ended.
#[utoipa::path(delete, path = "/api/group-sessions/{id}", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = SessionStatusResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_moderator"), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_already_cancelled, session_completed")))]
pub async fn cancel_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionStatusResponse>> {
    let access = visible_session(&state, &caller, &id).await?;
    if !(access.moderates(&caller) || access.is_admin) {
        return Err(not_a_moderator());
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let before = reload(&mut tx, &id).await?;
    match before.status.as_str() {
        "cancelled" => {
            return Err(ApiError::conflict(
                "session_already_cancelled",
                "the session is already cancelled",
            ))
        }
        "completed" => return Err(state_conflict(&before)),
        _ => {}
    }
    store::set_status(&mut tx, &id, "cancelled").await?;
    let booking = Booking::group(&id, None, &caller.sub, (before.start_ms, before.end_ms));
    emit(
        &mut tx,
        &before.organization_id,
        EventType::BookingCancelled,
        &booking,
    )
    .await?;
    let ended_room = match &before.video_session_id {
        Some(room) => crate::rooms::end::close_in(&mut tx, room, "group_session_cancelled")
            .await?
            .then(|| room.clone()),
        None => None,
    };
    let session = reload(&mut tx, &id).await?;
    let mut sent = Vec::new();
    tell_cancelled(&mut tx, &mut sent, &caller, &session).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.cancel",
            ("group_session", &session.id),
        )
        .before(json!({"status": before.status}))
        .after(json!({"status": session.status})),
    )
    .await?;
    tx.commit().await?;
    if let Some(room) = ended_room {
        state.live.session_ended(&room);
    }
    push(&state, &sent);
    tracing::info!(group_session_id = %session.id, "group session cancelled");
    Ok(Json(SessionStatusResponse {
        session: session_view(&session),
        message: "the session has been cancelled".into(),
    }))
}

/// Marks an approved session completed once it has started (moderators,
/// administrators, accepted therapists).
#[utoipa::path(post, path = "/api/group-sessions/{id}/complete", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = SessionStatusResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_not_started, session_not_open, session_cancelled, session_completed")))]
pub async fn complete_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionStatusResponse>> {
    let access = visible_session(&state, &caller, &id).await?;
    if !access.leads(&caller) {
        return Err(ApiError::forbidden(
            "forbidden",
            "only the session's moderators and therapists complete it",
        ));
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let before = reload(&mut tx, &id).await?;
    if before.status != "approved" {
        return Err(state_conflict(&before));
    }
    if before.start_ms > now_ms() {
        return Err(ApiError::conflict(
            "session_not_started",
            "the session has not started yet",
        ));
    }
    store::set_status(&mut tx, &id, "completed").await?;
    let session = reload(&mut tx, &id).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.complete",
            ("group_session", &session.id),
        )
        .before(json!({"status": before.status}))
        .after(json!({"status": session.status})),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(SessionStatusResponse {
        session: session_view(&session),
        message: "the session is completed".into(),
    }))
}

/// Tells everyone concerned but the canceller: the therapists who did not decline, the
/// seated members and the moderator who proposed the session.
async fn tell_cancelled(
    conn: &mut AnyConnection,
    sent: &mut Vec<Notification>,
    caller: &Caller,
    session: &GroupSession,
) -> ApiResult<()> {
    let mut recipients = store::team_therapist_ids(conn, &session.id).await?;
    recipients.extend(seats::seated_user_ids(conn, &session.id).await?);
    recipients.push(session.created_by.clone());
    notify_each(
        conn,
        sent,
        &recipients,
        Some(&caller.sub),
        session,
        NotificationKind::GroupSessionCancelled,
        "Group session cancelled",
        &format!("\"{}\" has been cancelled.", session.title),
        session_payload(session),
    )
    .await?;
    Ok(())
}
