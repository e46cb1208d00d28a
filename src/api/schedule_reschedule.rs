//! Rescheduling a booked 1:1 session through a hold. `POST /api/schedule/holds` with
//! `session_id` holds the new slot (checked like any hold, except that the session's
//! own current interval does not count against it); confirming that hold moves the
//! session there: it keeps its id, its series and its notes, both sides are notified
//! (`booking_rescheduled`), the audit entry has the old and the new times, and a
//! `booking.rescheduled` webhook event is queued.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_json::json;
use sqlx::AnyConnection;

use super::schedule::{
    bookable, check_range, check_service_code, managed_session, notify_all, parse_instant,
    parse_time_zone, push_all, session_view, slot_conflict, ScheduleResult,
};
use super::schedule_confirm::{answer_inactive, check_active, release_failed};
use super::schedule_hold_input::{
    hold_seconds, idempotency_key, new_hold_key, request_hash, CreateHold, HoldRequest,
};
use super::schedule_holds::{
    hold_view, lost_idempotency_race, replay_of, replay_race_winner, ConfirmView,
};
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::schedule::reschedule::{self, MoveRefusal};
use crate::schedule::service_codes::ServiceCodes;
use crate::schedule::write_tx;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::notifications::{Notification, NotificationKind};
use crate::store::schedule::{self as store, Hold, ScheduledSession};
use crate::store::schedule_changes::{self as changes, SessionMove};
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// 409 `session_cancelled` / `session_completed` for a session that cannot move.
fn refusal(r: MoveRefusal) -> ApiError {
    match r {
        MoveRefusal::Cancelled => ApiError::conflict(
            "session_cancelled",
            "a cancelled session cannot be rescheduled",
        ),
        MoveRefusal::Completed => ApiError::conflict(
            "session_completed",
            "a completed session cannot be rescheduled",
        ),
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::bad_request("invalid_reschedule", message)
}

/// The new slot of a reschedule request: `date` (the session's local start and end on
/// that day in `tz`), or `start` with `end` (default: the session's length).
fn new_slot(body: &CreateHold, s: &ScheduledSession, tz: Tz) -> ApiResult<(i64, i64)> {
    if body.occurrences.is_some() || body.recurrence.is_some() {
        return Err(invalid(
            "a reschedule hold holds one slot: no occurrences or recurrence",
        ));
    }
    match (body.date.as_deref(), body.start.as_deref()) {
        (Some(_), Some(_)) => Err(invalid("give either date or start, not both")),
        (Some(date), None) => {
            let day = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
                ApiError::bad_request("invalid_timestamp", "date must be a date YYYY-MM-DD")
            })?;
            reschedule::same_local_time_on(tz, s.start_ms, s.end_ms, day)
                .ok_or_else(|| invalid("the session's local time does not exist on that date"))
        }
        (None, Some(start)) => {
            let start = parse_instant("start", start)?;
            let end = match body.end.as_deref() {
                Some(end) => parse_instant("end", end)?,
                None => start + (s.end_ms - s.start_ms),
            };
            Ok((start, end))
        }
        (None, None) => Err(ApiError::bad_request(
            "invalid_time_range",
            "a reschedule hold needs start (and end) or date",
        )),
    }
}

/// Loads the session to move and checks that the caller may move it and that it can
/// move: 404 `scheduled_session_not_found`, 400 `reschedule_mismatch` (therapist or
/// client of the body are not the session's), 409 `session_cancelled`,
/// `session_completed`, and the booking checks of [`bookable`].
async fn movable_session(
    state: &AppState,
    caller: &Caller,
    body: &CreateHold,
    session_id: &str,
) -> ApiResult<ScheduledSession> {
    let s = managed_session(state, caller, session_id).await?;
    if body.therapist_id != s.therapist_id || body.client_id != s.client_id {
        return Err(ApiError::bad_request(
            "reschedule_mismatch",
            "therapist_id and client_id must be the session's",
        ));
    }
    reschedule::check_movable(&s.status).map_err(refusal)?;
    bookable(state, caller, &s.therapist_id, &s.client_id).await?;
    Ok(s)
}

/// The validated one-slot request of a reschedule hold, in time zone `tz`.
fn reschedule_request(
    body: &CreateHold,
    s: &ScheduledSession,
    tz: Tz,
    now: i64,
) -> ApiResult<HoldRequest> {
    let slot = new_slot(body, s, tz)?;
    check_range(slot.0, slot.1)?;
    if slot.0 < now {
        return Err(ApiError::bad_request(
            "start_in_past",
            "sessions cannot be moved into the past",
        ));
    }
    Ok(HoldRequest {
        tz,
        hold_seconds: hold_seconds(body.hold_seconds)?,
        occurrences: vec![slot],
    })
}

/// Creates a reschedule hold (`session_id` given): one slot for the session's
/// therapist and client, idempotent like any hold.
pub(super) async fn create_reschedule_hold(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    codes: Option<ServiceCodes>,
    body: CreateHold,
) -> ScheduleResult<Response> {
    let session_id = body.session_id.as_deref().unwrap_or_default();
    let s = movable_session(&state, &caller, &body, session_id).await?;
    let service_code = check_service_code(codes.as_ref(), body.service_code.as_deref())?;
    let tz = parse_time_zone(body.time_zone.as_deref().unwrap_or(&s.time_zone))?;
    let now = now_ms();
    let req = reschedule_request(&body, &s, tz, now)?;
    let slot = req.occurrences[0];
    let key = idempotency_key(&headers)?;
    let extra = [
        ("session_id", Some(s.id.as_str())),
        ("service_code", service_code.as_deref()),
    ];
    let hash = request_hash(&s.therapist_id, &s.client_id, &req, &extra);
    let users = [s.therapist_id.as_str(), s.client_id.as_str()];
    // A moved session follows the therapist's working hours like a new booking.
    super::schedule_hours::check_hold(&state.store, &users, &req.occurrences).await?;
    let mut tx = write_tx(&state.store, &users).await?;
    if let Some(key) = &key {
        if let Some(answer) = replay_of(&mut tx, &caller, key, &hash).await? {
            tx.rollback().await?;
            return Ok(answer);
        }
    }
    let found = reschedule::move_conflicts(&mut tx, &users, slot, &s.id).await?;
    if !found.is_empty() {
        let err = slot_conflict(&mut tx, &users, slot, found).await;
        tx.rollback().await?;
        return Err(err);
    }
    let hold = Hold {
        id: crate::store::new_id(),
        hold_key: new_hold_key(),
        organization_id: s.organization_id.clone(),
        therapist_id: s.therapist_id.clone(),
        client_id: s.client_id.clone(),
        time_zone: tz.name().to_string(),
        status: "active".into(),
        created_by: caller.sub.clone(),
        idempotency_key: key.clone(),
        request_hash: Some(hash.clone()),
        created_at: now,
        expires_at: now + req.hold_seconds * 1000,
        confirmed_at: None,
        released_at: None,
        session_id: Some(s.id.clone()),
        service_code,
    };
    let inserted = store::insert_hold(&mut tx, &hold, &req.occurrences).await;
    if let Some(key) = lost_idempotency_race(&inserted, key.as_deref()) {
        tx.rollback().await?;
        return replay_race_winner(&state, &caller, key, &hash).await;
    }
    inserted?;
    audit_hold_created(&mut tx, &caller, &hold, slot).await?;
    let view = hold_view(&mut tx, &hold).await?;
    tx.commit().await?;
    tracing::info!(hold_id = %hold.id, scheduled_session_id = %s.id, "reschedule hold created");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn audit_hold_created(
    tx: &mut AnyConnection,
    caller: &Caller,
    hold: &Hold,
    slot: (i64, i64),
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        AuditEntry::by(
            caller,
            Some(&hold.organization_id),
            "schedule.hold.create",
            ("schedule_hold", &hold.id),
        )
        .after(json!({
            "therapist_id": hold.therapist_id,
            "client_id": hold.client_id,
            "session_id": hold.session_id,
            "time_zone": hold.time_zone,
            "expires_at": rfc3339(hold.expires_at),
            "occurrences": [[rfc3339(slot.0), rfc3339(slot.1)]],
        })),
    )
    .await
}

/// Confirms a reschedule hold: moves its session to the held slot. The session must
/// still be `scheduled` and the slot free of other bookings; otherwise nothing moves
/// and the hold is released (409).
pub(super) async fn confirm_reschedule(
    state: &AppState,
    caller: &Caller,
    hold: Hold,
    service_code: Option<String>,
) -> ScheduleResult<Response> {
    let hold_key = hold.hold_key.as_str();
    let users = [hold.therapist_id.as_str(), hold.client_id.as_str()];
    let mut tx = write_tx(&state.store, &users).await?;
    let hold = store::hold_by_key(&mut tx, hold_key)
        .await?
        .ok_or_else(|| ApiError::not_found("hold_not_found", "hold not found"))?;
    let now = now_ms();
    if let Some(inactive) = check_active(&mut tx, caller, &hold, now).await? {
        return answer_inactive(tx, inactive).await;
    }
    let session_id = hold.session_id.clone().unwrap_or_default();
    let before = store::session(&mut tx, &session_id)
        .await?
        .ok_or_else(|| ApiError::not_found("scheduled_session_not_found", "session not found"))?;
    let occurrence = store::hold_occurrences(&mut tx, &hold.id)
        .await?
        .first()
        .copied()
        .ok_or_else(ApiError::internal)?;
    let slot = (occurrence.start_ms, occurrence.end_ms);
    if let Err(r) = reschedule::check_movable(&before.status) {
        tx.rollback().await?;
        return release_failed(state, caller, &hold, refusal(r).into()).await;
    }
    let found = reschedule::move_booking_conflicts(&mut tx, &users, slot, &before.id).await?;
    if !found.is_empty() {
        let err = slot_conflict(&mut tx, &users, slot, found).await;
        tx.rollback().await?;
        return release_failed(state, caller, &hold, err).await;
    }
    let code = service_code.or_else(|| hold.service_code.clone());
    let moved = match move_in(&mut tx, caller, &hold, &before, slot, code.as_deref(), now).await {
        Ok(moved) => moved,
        Err(err) => {
            tx.rollback().await?;
            return release_failed(state, caller, &hold, err).await;
        }
    };
    let sent = announce_move(&mut tx, &before, &moved).await?;
    let confirmed = store::hold_by_key(&mut tx, hold_key)
        .await?
        .ok_or_else(ApiError::internal)?;
    let view = ConfirmView {
        hold: hold_view(&mut tx, &confirmed).await?,
        sessions: vec![session_view(&moved)],
    };
    tx.commit().await?;
    push_all(state, &sent);
    if let Some(room) = &before.video_session_id {
        state.live.session_ended(room);
    }
    tracing::info!(hold_id = %hold.id, scheduled_session_id = %moved.id, "session rescheduled");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The writes of a move, in the caller's transaction: hold confirmed, video room (if
/// any) closed, session moved, webhook event, audit entries. Returns the moved session.
async fn move_in(
    tx: &mut AnyConnection,
    caller: &Caller,
    hold: &Hold,
    before: &ScheduledSession,
    slot: (i64, i64),
    service_code: Option<&str>,
    now: i64,
) -> ScheduleResult<ScheduledSession> {
    if !store::set_hold_status(&mut *tx, &hold.id, "active", "confirmed", now).await? {
        return Err(ApiError::conflict("hold_not_active", "the hold is no longer active").into());
    }
    if let Some(room) = &before.video_session_id {
        crate::rooms::end::close_in(&mut *tx, room, "booking_rescheduled").await?;
    }
    let m = SessionMove {
        id: &before.id,
        start_ms: slot.0,
        end_ms: slot.1,
        time_zone: &hold.time_zone,
        service_code,
        now_ms: now,
    };
    if !changes::move_session(&mut *tx, m).await? {
        return Err(refusal(MoveRefusal::Cancelled).into());
    }
    let moved = store::session(&mut *tx, &before.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    record_move(tx, caller, hold, before, &moved).await?;
    Ok(moved)
}

/// The webhook event and the audit entries of a move (session: old and new times;
/// hold: confirmed).
async fn record_move(
    tx: &mut AnyConnection,
    caller: &Caller,
    hold: &Hold,
    before: &ScheduledSession,
    moved: &ScheduledSession,
) -> Result<(), sqlx::Error> {
    let people = (moved.therapist_id.as_str(), moved.client_id.as_str());
    let slot = (moved.start_ms, moved.end_ms);
    let booking = Booking::one_to_one(
        &moved.id,
        moved.series_id.as_deref(),
        people,
        &caller.sub,
        slot,
    )
    .moved_from((before.start_ms, before.end_ms));
    let org = Some(moved.organization_id.as_str());
    emit(
        &mut *tx,
        &moved.organization_id,
        EventType::BookingRescheduled,
        &booking,
    )
    .await?;
    let times = |s: &ScheduledSession| {
        json!({
            "start": rfc3339(s.start_ms),
            "end": rfc3339(s.end_ms),
            "time_zone": s.time_zone,
            "service_code": s.service_code,
        })
    };
    let mut after = times(moved);
    after["hold_id"] = json!(hold.id);
    audit::record(
        &mut *tx,
        AuditEntry::by(
            caller,
            org,
            "schedule.session.reschedule",
            ("scheduled_session", &moved.id),
        )
        .before(times(before))
        .after(after),
    )
    .await?;
    audit::record(
        tx,
        AuditEntry::by(
            caller,
            org,
            "schedule.hold.confirm",
            ("schedule_hold", &hold.id),
        )
        .before(json!({"status": "active"}))
        .after(json!({"status": "confirmed", "session_id": moved.id})),
    )
    .await
}

/// Notifies the therapist and the client of a move (one `booking_rescheduled` each).
async fn announce_move(
    tx: &mut AnyConnection,
    before: &ScheduledSession,
    moved: &ScheduledSession,
) -> Result<Vec<Notification>, sqlx::Error> {
    let (from, to) = (rfc3339(before.start_ms), rfc3339(moved.start_ms));
    let to_therapist = format!(
        "Session with {} moved from {from} to {to}",
        moved.client_name
    );
    let to_client = format!(
        "Session with {} moved from {from} to {to}",
        moved.therapist_name
    );
    notify_all(
        tx,
        &[
            (moved.therapist_id.as_str(), to_therapist.as_str()),
            (moved.client_id.as_str(), to_client.as_str()),
        ],
        &moved.organization_id,
        NotificationKind::BookingRescheduled,
        "Session rescheduled",
        json!({
            "session_id": moved.id,
            "series_id": moved.series_id,
            "previous_start": from,
            "previous_end": rfc3339(before.end_ms),
            "start": to,
            "end": rfc3339(moved.end_ms),
        }),
    )
    .await
}
