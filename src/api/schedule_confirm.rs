//! Confirming a hold: all its occurrences become sessions at once (a reschedule hold
//! moves its session instead, see `schedule_reschedule`). Confirming is atomic: a
//! conflict found at confirm time books nothing and releases the hold, so that it does
//! not keep blocking the slots it could not turn into sessions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use sqlx::{Any, AnyConnection, Transaction};
use utoipa::ToSchema;

use super::schedule::{
    check_service_code, notify_all, push_all, session_view, slot_conflict, ScheduleError,
    ScheduleResult, SlotConflictBody,
};
use super::schedule_holds::{hold_for, hold_view, when_text, ConfirmView};
use super::schedule_reschedule::confirm_reschedule;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ErrorBody};
use crate::schedule::service_codes::ServiceCodes;
use crate::schedule::{availability, expiry, write_tx};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::notifications::NotificationKind;
use crate::store::schedule::{self as store, Hold, HoldOccurrence};
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// Body of the confirmation (optional).
#[derive(Deserialize, ToSchema)]
pub struct ConfirmBody {
    /// Service code (CPT) for the booked sessions, replacing the hold's.
    service_code: Option<String>,
}

/// Reads the optional confirmation body and checks its service code.
fn confirm_service_code(
    codes: Option<&ServiceCodes>,
    raw: &Bytes,
) -> ScheduleResult<Option<String>> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let body: ConfirmBody = serde_json::from_slice(raw)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    Ok(check_service_code(codes, body.service_code.as_deref())?)
}

/// What a hold that is no longer active answers to a confirmation.
pub(super) enum Inactive {
    /// Confirmed already: the same answer again (200).
    Replay(Box<ConfirmView>),
    /// Found past its expiry (now recorded): 409 `hold_expired` after the commit.
    Expired,
}

/// The sessions a confirmed hold stands for: the session it moved (reschedule hold)
/// or the sessions it became.
async fn confirmed_sessions(
    conn: &mut AnyConnection,
    hold: &Hold,
) -> Result<Vec<store::ScheduledSession>, sqlx::Error> {
    match &hold.session_id {
        Some(id) => Ok(store::session(conn, id).await?.into_iter().collect()),
        None => store::sessions_of_hold(conn, &hold.id).await,
    }
}

/// `None` when `hold` is active and may be confirmed; otherwise what to answer (409
/// `hold_released` as an error). An expired hold is recorded `expired` in `conn`.
pub(super) async fn check_active(
    conn: &mut AnyConnection,
    caller: &Caller,
    hold: &Hold,
    now: i64,
) -> ScheduleResult<Option<Inactive>> {
    match hold.status_at(now) {
        "confirmed" => {
            let sessions = confirmed_sessions(conn, hold).await?;
            Ok(Some(Inactive::Replay(Box::new(ConfirmView {
                hold: hold_view(conn, hold).await?,
                sessions: sessions.iter().map(session_view).collect(),
            }))))
        }
        "released" => Err(ApiError::conflict("hold_released", "the hold was released").into()),
        "expired" => {
            expiry::record_in(conn, hold, Some(caller), now).await?;
            Ok(Some(Inactive::Expired))
        }
        _ => Ok(None),
    }
}

/// Finishes a confirmation of an inactive hold: commits what [`check_active`] wrote.
pub(super) async fn answer_inactive(
    tx: Transaction<'static, Any>,
    inactive: Inactive,
) -> ScheduleResult<Response> {
    match inactive {
        Inactive::Replay(view) => {
            tx.rollback().await?;
            Ok((StatusCode::OK, Json(*view)).into_response())
        }
        Inactive::Expired => {
            tx.commit().await?;
            Err(ApiError::conflict("hold_expired", "the hold has expired").into())
        }
    }
}

/// After a confirmation failed (its transaction rolled back): releases the hold in a
/// transaction of its own, audited, so that its slots are free again, then answers
/// `err`.
pub(super) async fn release_failed(
    state: &AppState,
    caller: &Caller,
    hold: &Hold,
    err: ScheduleError,
) -> ScheduleResult<Response> {
    let mut tx = write_tx(&state.store, &[&hold.therapist_id, &hold.client_id]).await?;
    let now = now_ms();
    if store::set_hold_status(&mut tx, &hold.id, "active", "released", now).await? {
        audit::record(
            &mut tx,
            AuditEntry::by(
                caller,
                Some(&hold.organization_id),
                "schedule.hold.release",
                ("schedule_hold", &hold.id),
            )
            .before(json!({"status": "active"}))
            .after(json!({"status": "released", "reason": "confirm_failed"})),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(hold_id = %hold.id, "hold released after a failed confirmation");
    Err(err)
}

/// Turns a hold into sessions, all occurrences at once, or moves the session of a
/// reschedule hold. An expired hold is 409 `hold_expired` (and recorded `expired`), a
/// released one 409 `hold_released`; confirming twice returns the sessions again
/// (200). When a slot turned out to be taken (409 `slot_conflict`), nothing is booked
/// and the hold is released. The therapist and the client receive a
/// `booking_confirmed` (or `booking_rescheduled`) notification.
#[utoipa::path(post, path = "/api/schedule/holds/{hold_key}/confirm", tag = "schedule",
    params(("hold_key" = String, Path, description = "the hold's key")),
    request_body(content = Option<ConfirmBody>), security(("bearer" = [])),
    responses(
        (status = 201, body = ConfirmView, description = "booked (or moved)"),
        (status = 200, body = ConfirmView, description = "already confirmed"),
        (status = 400, body = ErrorBody, description = "invalid_json, invalid_service_code"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "hold_not_found"),
        (status = 409, body = SlotConflictBody, description = "slot_conflict, hold_expired, hold_released, session_cancelled, session_completed")))]
pub async fn confirm_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(hold_key): Path<String>,
    codes: Option<Extension<ServiceCodes>>,
    raw: Bytes,
) -> ScheduleResult<Response> {
    let hold = hold_for(&state, &caller, &hold_key).await?;
    let code = confirm_service_code(codes.as_ref().map(|Extension(c)| c), &raw)?;
    if hold.session_id.is_some() {
        return confirm_reschedule(&state, &caller, hold, code).await;
    }
    let users = [hold.therapist_id.as_str(), hold.client_id.as_str()];
    let mut tx = write_tx(&state.store, &users).await?;
    let hold = store::hold_by_key(&mut tx, &hold_key)
        .await?
        .ok_or_else(|| ApiError::not_found("hold_not_found", "hold not found"))?;
    let now = now_ms();
    if let Some(inactive) = check_active(&mut tx, &caller, &hold, now).await? {
        return answer_inactive(tx, inactive).await;
    }
    let occurrences = store::hold_occurrences(&mut tx, &hold.id).await?;
    for occ in &occurrences {
        let found =
            availability::booking_conflicts(&mut tx, &users, occ.start_ms, occ.end_ms).await?;
        if !found.is_empty() {
            let err = slot_conflict(&mut tx, &users, (occ.start_ms, occ.end_ms), found).await;
            tx.rollback().await?;
            return release_failed(&state, &caller, &hold, err).await;
        }
    }
    if !store::set_hold_status(&mut tx, &hold.id, "active", "confirmed", now).await? {
        return Err(ApiError::conflict("hold_not_active", "the hold is no longer active").into());
    }
    let code = code.or_else(|| hold.service_code.clone());
    let session_ids =
        match book_occurrences(&mut tx, &caller, &hold, &occurrences, code.as_deref(), now).await {
            Ok(ids) => ids,
            Err(err) => {
                tx.rollback().await?;
                return release_failed(&state, &caller, &hold, err).await;
            }
        };
    let (view, sent) = announce_booking(&mut tx, &caller, &hold, &session_ids).await?;
    tx.commit().await?;
    push_all(&state, &sent);
    tracing::info!(hold_id = %hold.id, sessions = session_ids.len(), "hold confirmed");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Inserts one session per occurrence, each with its webhook event and audit entry;
/// returns their ids in order.
async fn book_occurrences(
    tx: &mut AnyConnection,
    caller: &Caller,
    hold: &Hold,
    occurrences: &[HoldOccurrence],
    service_code: Option<&str>,
    now: i64,
) -> ScheduleResult<Vec<String>> {
    let series_id = (occurrences.len() > 1).then_some(hold.id.as_str());
    let people = (hold.therapist_id.as_str(), hold.client_id.as_str());
    let mut session_ids = Vec::new();
    for occ in occurrences {
        let id = store::insert_session(
            &mut *tx,
            store::NewScheduledSession {
                organization_id: &hold.organization_id,
                therapist_id: &hold.therapist_id,
                client_id: &hold.client_id,
                start_ms: occ.start_ms,
                end_ms: occ.end_ms,
                time_zone: &hold.time_zone,
                hold_id: Some(&hold.id),
                series_id,
                created_by: &caller.sub,
                service_code,
                now_ms: now,
            },
        )
        .await?;
        let interval = (occ.start_ms, occ.end_ms);
        let booking = Booking::one_to_one(&id, series_id, people, &caller.sub, interval);
        emit(
            &mut *tx,
            &hold.organization_id,
            EventType::BookingCreated,
            &booking,
        )
        .await?;
        audit::record(
            &mut *tx,
            AuditEntry::by(
                caller,
                Some(&hold.organization_id),
                "schedule.session.book",
                ("scheduled_session", &id),
            )
            .after(json!({
                "therapist_id": hold.therapist_id,
                "client_id": hold.client_id,
                "start": rfc3339(occ.start_ms),
                "end": rfc3339(occ.end_ms),
                "status": "scheduled",
                "hold_id": hold.id,
                "service_code": service_code,
            })),
        )
        .await?;
        session_ids.push(id);
    }
    Ok(session_ids)
}

/// Audits the confirmation, notifies the therapist and the client, and builds the
/// answer; the notifications are pushed after the commit.
async fn announce_booking(
    tx: &mut AnyConnection,
    caller: &Caller,
    hold: &Hold,
    session_ids: &[String],
) -> ScheduleResult<(ConfirmView, Vec<crate::store::notifications::Notification>)> {
    audit::record(
        &mut *tx,
        AuditEntry::by(
            caller,
            Some(&hold.organization_id),
            "schedule.hold.confirm",
            ("schedule_hold", &hold.id),
        )
        .before(json!({"status": "active"}))
        .after(json!({"status": "confirmed", "session_ids": session_ids})),
    )
    .await?;
    let sessions = store::sessions_of_hold(&mut *tx, &hold.id).await?;
    let first = sessions.first().ok_or_else(ApiError::internal)?;
    let series_id = (sessions.len() > 1).then_some(hold.id.as_str());
    let when = when_text(sessions.len(), first.start_ms);
    let to_therapist = format!("Session with {} booked for {when}", first.client_name);
    let to_client = format!("Session with {} booked for {when}", first.therapist_name);
    let sent = notify_all(
        &mut *tx,
        &[
            (hold.therapist_id.as_str(), to_therapist.as_str()),
            (hold.client_id.as_str(), to_client.as_str()),
        ],
        &hold.organization_id,
        NotificationKind::BookingConfirmed,
        "Session booked",
        json!({
            "session_ids": session_ids,
            "series_id": series_id,
            "start": rfc3339(first.start_ms),
            "end": rfc3339(first.end_ms),
        }),
    )
    .await?;
    let confirmed = store::hold_by_key(&mut *tx, &hold.hold_key)
        .await?
        .ok_or_else(ApiError::internal)?;
    let view = ConfirmView {
        hold: hold_view(&mut *tx, &confirmed).await?,
        sessions: sessions.iter().map(session_view).collect(),
    };
    Ok((view, sent))
}
