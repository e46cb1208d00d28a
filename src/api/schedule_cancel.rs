//! Cancelling booked 1:1 sessions: one session, or an occurrence of a series and
//! every later one (`scope: following`) in one transaction. Each cancelled session
//! frees its slot (and the slots of its pending reschedule holds), closes its video
//! room, gets its audit entry and webhook event; the therapist and the client get one
//! `booking_cancelled` notification per request.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::schedule::{managed_session, notify_all, push_all, session_view, ScheduledSessionView};
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::schedule::write_tx;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::notifications::{Notification, NotificationKind};
use crate::store::schedule::{self as store, ScheduledSession};
use crate::store::schedule_changes;
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// Longest cancellation reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Body of the cancellation (optional).
#[derive(Deserialize, ToSchema)]
pub struct CancelBody {
    /// Why (at most 500 characters).
    reason: Option<String>,
    /// `this` (default): this session only; `following`: this occurrence and every
    /// later scheduled occurrence of its series.
    scope: Option<String>,
}

/// Which sessions a cancellation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    This,
    Following,
}

/// A cancelled session and, for `scope: following`, every session cancelled with it.
#[derive(Serialize, ToSchema)]
pub struct CancelView {
    /// The session named in the path, as it is now.
    #[serde(flatten)]
    session: ScheduledSessionView,
    /// Ids of every session this request cancelled, in time order.
    cancelled_session_ids: Vec<String>,
}

fn parse_body(raw: &Bytes) -> ApiResult<(Option<String>, Scope)> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, Scope::This));
    }
    let body: CancelBody = serde_json::from_slice(raw)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let reason = body
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ApiError::bad_request(
            "invalid_reason",
            "reason is at most 500 characters",
        ));
    }
    let scope = match body.scope.as_deref().map(str::trim) {
        None | Some("this") => Scope::This,
        Some("following") => Scope::Following,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_scope",
                "scope must be this or following",
            ))
        }
    };
    Ok((reason, scope))
}

/// 409 for a session that is not `scheduled` any more.
fn not_cancellable(status: &str) -> ApiError {
    if status == "cancelled" {
        ApiError::conflict(
            "session_already_cancelled",
            "the session is already cancelled",
        )
    } else {
        ApiError::conflict(
            "session_completed",
            "a completed session cannot be cancelled",
        )
    }
}

/// Cancels a scheduled session, or with `{"scope": "following"}` this occurrence and
/// every later scheduled occurrence of its series (by start time; earlier ones and
/// completed ones are untouched). Slots are free again, video rooms are ended, and the
/// therapist and the client receive one `booking_cancelled` notification.
#[utoipa::path(post, path = "/api/schedule/sessions/{id}/cancel", tag = "schedule",
    params(("id" = String, Path, description = "scheduled session id")), request_body(content = Option<CancelBody>), security(("bearer" = [])),
    responses((status = 200, body = CancelView),
        (status = 400, body = ErrorBody, description = "invalid_json, invalid_reason, invalid_scope"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "scheduled_session_not_found"),
        (status = 409, body = ErrorBody, description = "session_already_cancelled, session_completed")))]
pub async fn cancel_scheduled_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<CancelView>> {
    let s = managed_session(&state, &caller, &id).await?;
    let (reason, scope) = parse_body(&raw)?;
    let mut tx = write_tx(&state.store, &[&s.therapist_id, &s.client_id]).await?;
    let current = store::session(&mut tx, &s.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    if current.status != "scheduled" {
        return Err(not_cancellable(&current.status));
    }
    let targets = match (scope, current.series_id.as_deref()) {
        (Scope::Following, Some(series)) => {
            schedule_changes::scheduled_in_series_from(&mut tx, series, current.start_ms).await?
        }
        _ => vec![current.clone()],
    };
    let now = now_ms();
    let mut ended_rooms = Vec::new();
    for target in &targets {
        if let Some(room) = cancel_one(&mut tx, &caller, target, reason.as_deref(), now).await? {
            ended_rooms.push(room);
        }
    }
    let sent = notify_cancelled(&mut tx, &targets, reason.as_deref()).await?;
    let updated = store::session(&mut tx, &s.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    push_all(&state, &sent);
    for room in &ended_rooms {
        state.live.session_ended(room);
    }
    tracing::info!(scheduled_session_id = %s.id, cancelled = targets.len(), "scheduled sessions cancelled");
    Ok(Json(CancelView {
        session: session_view(&updated),
        cancelled_session_ids: targets.iter().map(|t| t.id.clone()).collect(),
    }))
}

/// Cancels one session inside the transaction: status, webhook event, video room,
/// audit entry. Returns the room it ended, if any (to tell the live room after the
/// commit).
async fn cancel_one(
    tx: &mut AnyConnection,
    caller: &Caller,
    s: &ScheduledSession,
    reason: Option<&str>,
    now: i64,
) -> ApiResult<Option<String>> {
    if !store::cancel_session(&mut *tx, &s.id, &caller.sub, reason, now).await? {
        return Err(not_cancellable("cancelled"));
    }
    let people = (s.therapist_id.as_str(), s.client_id.as_str());
    let booking = Booking::one_to_one(
        &s.id,
        s.series_id.as_deref(),
        people,
        &caller.sub,
        (s.start_ms, s.end_ms),
    );
    emit(
        &mut *tx,
        &s.organization_id,
        EventType::BookingCancelled,
        &booking,
    )
    .await?;
    let mut ended_room = None;
    if let Some(room) = &s.video_session_id {
        if crate::rooms::end::close_in(&mut *tx, room, "booking_cancelled").await? {
            ended_room = Some(room.clone());
        }
    }
    audit::record(
        &mut *tx,
        AuditEntry::by(
            caller,
            Some(&s.organization_id),
            "schedule.session.cancel",
            ("scheduled_session", &s.id),
        )
        .before(json!({"status": s.status}))
        .after(json!({"status": "cancelled", "reason": reason})),
    )
    .await?;
    release_reschedule_holds(tx, caller, &s.id, now).await?;
    Ok(ended_room)
}

/// Releases the active reschedule holds of a cancelled session (audited): there is
/// nothing left to move, and their slots would stay blocked until they expire.
async fn release_reschedule_holds(
    tx: &mut AnyConnection,
    caller: &Caller,
    session_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    for hold in schedule_changes::active_holds_of_session(&mut *tx, session_id).await? {
        if store::set_hold_status(&mut *tx, &hold.id, "active", "released", now).await? {
            audit::record(
                &mut *tx,
                AuditEntry::by(
                    caller,
                    Some(&hold.organization_id),
                    "schedule.hold.release",
                    ("schedule_hold", &hold.id),
                )
                .before(json!({"status": "active"}))
                .after(json!({"status": "released", "reason": "session_cancelled"})),
            )
            .await?;
        }
    }
    Ok(())
}

/// One `booking_cancelled` notification each for the therapist and the client,
/// however many sessions were cancelled.
async fn notify_cancelled(
    tx: &mut AnyConnection,
    cancelled: &[ScheduledSession],
    reason: Option<&str>,
) -> ApiResult<Vec<Notification>> {
    let first = cancelled.first().ok_or_else(ApiError::internal)?;
    let when = rfc3339(first.start_ms);
    let text = |other: &str| {
        if cancelled.len() > 1 {
            format!(
                "{} sessions of the series with {other} from {when} were cancelled",
                cancelled.len()
            )
        } else {
            format!("Session with {other} on {when} was cancelled")
        }
    };
    let to_therapist = text(&first.client_name);
    let to_client = text(&first.therapist_name);
    let ids: Vec<&str> = cancelled.iter().map(|c| c.id.as_str()).collect();
    Ok(notify_all(
        tx,
        &[
            (first.therapist_id.as_str(), to_therapist.as_str()),
            (first.client_id.as_str(), to_client.as_str()),
        ],
        &first.organization_id,
        NotificationKind::BookingCancelled,
        if cancelled.len() > 1 {
            "Sessions cancelled"
        } else {
            "Session cancelled"
        },
        json!({
            "session_id": first.id,
            "session_ids": ids,
            "series_id": first.series_id,
            "start": when,
            "end": rfc3339(first.end_ms),
            "reason": reason,
        }),
    )
    .await?)
}
