//! 1:1 scheduling: holds. `POST /api/schedule/holds` claims one slot or a
//! whole series (explicit occurrences, or a weekly recurrence expanded in the client's
//! time zone), all or nothing; `DELETE` releases it. The request body and its
//! validation are in `schedule_hold_input`, confirming in `schedule_confirm`,
//! reschedule holds (with `session_id`) in `schedule_reschedule`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::json;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::schedule::{
    bookable, check_service_code, require_booker, slot_conflict, ScheduleResult,
    ScheduledSessionView, SlotConflictBody, SlotView,
};
use super::schedule_hold_input::{
    idempotency_key, new_hold_key, replay, request_hash, validate_hold, CreateHold,
};
use super::schedule_reschedule::create_reschedule_hold;
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::policy::is_admin_of;
use crate::schedule::service_codes::ServiceCodes;
use crate::schedule::{availability, expiry, write_tx};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::schedule::{self as store, Hold};

/// A hold.
#[derive(Serialize, ToSchema)]
pub struct HoldView {
    /// The key to confirm or release it with.
    hold_key: String,
    /// `active`, `confirmed`, `released` or `expired`.
    status: String,
    organization_id: String,
    therapist_id: String,
    client_id: String,
    time_zone: String,
    created_at: String,
    expires_at: String,
    /// The held slots, in order.
    occurrences: Vec<SlotView>,
    /// The booked session this hold moves (a reschedule hold), if any.
    session_id: Option<String>,
    /// Service code (CPT) the session will carry, if any.
    service_code: Option<String>,
}

/// The API view of a hold.
pub(super) async fn hold_view(conn: &mut AnyConnection, hold: &Hold) -> ApiResult<HoldView> {
    let occ = store::hold_occurrences(conn, &hold.id).await?;
    Ok(HoldView {
        hold_key: hold.hold_key.clone(),
        status: hold.status_at(now_ms()).to_string(),
        organization_id: hold.organization_id.clone(),
        therapist_id: hold.therapist_id.clone(),
        client_id: hold.client_id.clone(),
        time_zone: hold.time_zone.clone(),
        created_at: rfc3339(hold.created_at),
        expires_at: rfc3339(hold.expires_at),
        occurrences: occ
            .iter()
            .map(|o| SlotView {
                start: rfc3339(o.start_ms),
                end: rfc3339(o.end_ms),
            })
            .collect(),
        session_id: hold.session_id.clone(),
        service_code: hold.service_code.clone(),
    })
}

/// A confirmed hold and the sessions it became (for a reschedule hold: the session it
/// moved).
#[derive(Serialize, ToSchema)]
pub struct ConfirmView {
    pub(super) hold: HoldView,
    pub(super) sessions: Vec<ScheduledSessionView>,
}

/// The `Idempotency-Key` of a hold insert that failed because a concurrent request with
/// the same key inserted first (the unique index on the creator and key), or `None`.
pub(super) fn lost_idempotency_race<'k, T>(
    inserted: &Result<T, sqlx::Error>,
    key: Option<&'k str>,
) -> Option<&'k str> {
    match (inserted, key) {
        (Err(sqlx::Error::Database(db)), Some(key)) if db.is_unique_violation() => Some(key),
        _ => None,
    }
}

/// Answers a request that lost the race of [`lost_idempotency_race`] (its transaction
/// already rolled back) as a replay of the winner's hold.
pub(super) async fn replay_race_winner(
    state: &AppState,
    caller: &Caller,
    key: &str,
    hash: &str,
) -> ScheduleResult<Response> {
    let mut conn = state.store.pool().acquire().await?;
    replay_of(&mut conn, caller, key, hash)
        .await?
        .ok_or_else(|| ApiError::internal().into())
}

/// The 200 replay of an earlier hold made with Idempotency-Key `key` (422
/// `idempotency_key_reused` when it was another request), or `None` when there is none.
pub(super) async fn replay_of(
    conn: &mut AnyConnection,
    caller: &Caller,
    key: &str,
    hash: &str,
) -> ApiResult<Option<Response>> {
    let Some(existing) = store::hold_by_idempotency_key(&mut *conn, &caller.sub, key).await? else {
        return Ok(None);
    };
    replay(&existing, hash)?;
    let view = hold_view(conn, &existing).await?;
    Ok(Some((StatusCode::OK, Json(view)).into_response()))
}

/// Holds one slot or a whole series for a therapist and a client (with `session_id`: a
/// reschedule hold for that booked session, see `schedule_reschedule`). Every occurrence is
/// checked against the therapist's and the client's calendars (sessions, holds, group
/// sessions); either all are held or none (409 `slot_conflict` with `conflicts` and
/// `suggestions`). An occurrence outside the therapist's working hours or in their
/// time off is 409 `outside_working_hours` / `therapist_time_off` with the refused
/// `occurrence` and `suggestions` inside the hours. With an `Idempotency-Key` header, a retry with the same body
/// returns the same hold (200) and creates nothing; another body is 422
/// `idempotency_key_reused`.
#[utoipa::path(post, path = "/api/schedule/holds", tag = "schedule", request_body = CreateHold,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes retries safe")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = HoldView, description = "held"),
        (status = 200, body = HoldView, description = "replay of an earlier request with the same Idempotency-Key"),
        (status = 400, body = ErrorBody, description = "invalid_time_range, invalid_timestamp, invalid_time_zone, invalid_recurrence, too_many_occurrences, invalid_hold_seconds, start_in_past, overlapping_occurrences, invalid_service_code, invalid_reschedule, reschedule_mismatch"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients), not_own_calendar, not_your_client, therapist_not_in_organization, client_not_in_organization"),
        (status = 404, body = ErrorBody, description = "therapist_not_found, client_not_found, scheduled_session_not_found (reschedule)"),
        (status = 409, body = SlotConflictBody, description = "slot_conflict; session_cancelled, session_completed (reschedule); or outside_working_hours, therapist_time_off (body HoursRefusalBody)"),
        (status = 422, body = ErrorBody, description = "idempotency_key_reused")))]
pub async fn create_hold(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    codes: Option<Extension<ServiceCodes>>,
    JsonBody(body): JsonBody<CreateHold>,
) -> ScheduleResult<Response> {
    require_booker(&caller)?;
    let codes = codes.map(|Extension(c)| c);
    if body.session_id.is_some() {
        return create_reschedule_hold(state, caller, headers, codes, body).await;
    }
    let service_code = check_service_code(codes.as_ref(), body.service_code.as_deref())?;
    let now = now_ms();
    let req = validate_hold(&body, now)?;
    let key = idempotency_key(&headers)?;
    let (therapist, client) =
        bookable(&state, &caller, &body.therapist_id, &body.client_id).await?;
    let hash = request_hash(
        &therapist.id,
        &client.id,
        &req,
        &[("service_code", service_code.as_deref())],
    );

    if let Some(key) = &key {
        let mut conn = state.store.pool().acquire().await?;
        if let Some(answer) = replay_of(&mut conn, &caller, key, &hash).await? {
            return Ok(answer);
        }
    }

    let users = [therapist.id.as_str(), client.id.as_str()];
    super::schedule_hours::check_hold(&state.store, &users, &req.occurrences).await?;
    let mut tx = write_tx(&state.store, &users).await?;
    if let Some(key) = &key {
        if let Some(answer) = replay_of(&mut tx, &caller, key, &hash).await? {
            tx.rollback().await?;
            return Ok(answer);
        }
    }
    for &occ in &req.occurrences {
        let found = availability::conflicts(&mut tx, &users, occ.0, occ.1).await?;
        if !found.is_empty() {
            let err = slot_conflict(&mut tx, &users, occ, found).await;
            tx.rollback().await?;
            return Err(err);
        }
    }
    let hold = Hold {
        id: crate::store::new_id(),
        hold_key: new_hold_key(),
        organization_id: therapist.organization_id.clone(),
        therapist_id: therapist.id.clone(),
        client_id: client.id.clone(),
        time_zone: req.tz.name().to_string(),
        status: "active".into(),
        created_by: caller.sub.clone(),
        idempotency_key: key.clone(),
        request_hash: Some(hash.clone()),
        created_at: now,
        expires_at: now + req.hold_seconds * 1000,
        confirmed_at: None,
        released_at: None,
        session_id: None,
        service_code,
    };
    let inserted = store::insert_hold(&mut tx, &hold, &req.occurrences).await;
    if let Some(key) = lost_idempotency_race(&inserted, key.as_deref()) {
        tx.rollback().await?;
        return replay_race_winner(&state, &caller, key, &hash).await;
    }
    inserted?;
    audit::record(
        &mut tx,
        AuditEntry::by(&caller, Some(&hold.organization_id), "schedule.hold.create", ("schedule_hold", &hold.id)).after(json!({
                "therapist_id": hold.therapist_id,
                "client_id": hold.client_id,
                "time_zone": hold.time_zone,
                "expires_at": rfc3339(hold.expires_at),
                "occurrences": req.occurrences.iter().map(|o| json!([rfc3339(o.0), rfc3339(o.1)])).collect::<Vec<_>>(),
            })),
    )
    .await?;
    let view = hold_view(&mut tx, &hold).await?;
    tx.commit().await?;
    tracing::info!(hold_id = %hold.id, therapist_id = %hold.therapist_id, occurrences = req.occurrences.len(), "hold created");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Loads a hold by key for a booker allowed to act on it (its creator, its therapist,
/// an administrator of its organization); 404 `hold_not_found` otherwise.
pub(super) async fn hold_for(state: &AppState, caller: &Caller, key: &str) -> ApiResult<Hold> {
    require_booker(caller)?;
    let mut conn = state.store.pool().acquire().await?;
    store::hold_by_key(&mut conn, key)
        .await?
        .filter(|h| {
            h.created_by == caller.sub
                || h.therapist_id == caller.sub
                || is_admin_of(caller, &h.organization_id)
        })
        .ok_or_else(|| ApiError::not_found("hold_not_found", "hold not found"))
}

pub(super) fn when_text(occurrences: usize, first_start: i64) -> String {
    if occurrences > 1 {
        format!("{} (first of {occurrences})", rfc3339(first_start))
    } else {
        rfc3339(first_start)
    }
}

/// Reads a hold (its creator, its therapist, its organization's administrators). A
/// hold found past its expiry is recorded `expired` (audited) and shown so.
#[utoipa::path(get, path = "/api/schedule/holds/{hold_key}", tag = "schedule",
    params(("hold_key" = String, Path, description = "the hold's key")), security(("bearer" = [])),
    responses(
        (status = 200, body = HoldView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "hold_not_found")))]
pub async fn get_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(hold_key): Path<String>,
) -> ScheduleResult<Json<HoldView>> {
    let hold = hold_for(&state, &caller, &hold_key).await?;
    let now = now_ms();
    if hold.status == "active" && hold.status_at(now) == "expired" {
        let mut tx = write_tx(&state.store, &[&hold.therapist_id, &hold.client_id]).await?;
        if let Some(current) = store::hold_by_key(&mut tx, &hold_key).await? {
            expiry::record_in(&mut tx, &current, Some(&caller), now).await?;
        }
        tx.commit().await?;
    }
    let mut conn = state.store.pool().acquire().await?;
    let current = store::hold_by_key(&mut conn, &hold_key)
        .await?
        .ok_or_else(|| ApiError::not_found("hold_not_found", "hold not found"))?;
    Ok(Json(hold_view(&mut conn, &current).await?))
}

/// Releases a hold so its slots are free again. Releasing twice is harmless (200); a
/// confirmed hold cannot be released (409 `hold_already_confirmed`: cancel the
/// sessions instead); an expired hold is recorded `expired` and shown (200).
#[utoipa::path(delete, path = "/api/schedule/holds/{hold_key}", tag = "schedule",
    params(("hold_key" = String, Path, description = "the hold's key")), security(("bearer" = [])),
    responses(
        (status = 200, body = HoldView, description = "released (or found expired)"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "hold_not_found"),
        (status = 409, body = ErrorBody, description = "hold_already_confirmed")))]
pub async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(hold_key): Path<String>,
) -> ScheduleResult<Json<HoldView>> {
    let hold = hold_for(&state, &caller, &hold_key).await?;
    let users = [hold.therapist_id.as_str(), hold.client_id.as_str()];
    let mut tx = write_tx(&state.store, &users).await?;
    let hold = store::hold_by_key(&mut tx, &hold_key)
        .await?
        .ok_or_else(|| ApiError::not_found("hold_not_found", "hold not found"))?;
    let now = now_ms();
    match hold.status_at(now) {
        "confirmed" => {
            return Err(ApiError::conflict(
                "hold_already_confirmed",
                "the hold was confirmed; cancel its sessions instead",
            )
            .into())
        }
        "released" => {
            let view = hold_view(&mut tx, &hold).await?;
            tx.rollback().await?;
            return Ok(Json(view));
        }
        "expired" => {
            // Nothing left to release: record the expiry (once) and show it.
            expiry::record_in(&mut tx, &hold, Some(&caller), now).await?;
            let expired = store::hold_by_key(&mut tx, &hold_key)
                .await?
                .ok_or_else(ApiError::internal)?;
            let view = hold_view(&mut tx, &expired).await?;
            tx.commit().await?;
            return Ok(Json(view));
        }
        _ => {}
    }
    store::set_hold_status(&mut tx, &hold.id, &hold.status, "released", now).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&hold.organization_id),
            "schedule.hold.release",
            ("schedule_hold", &hold.id),
        )
        .before(json!({"status": hold.status_at(now)}))
        .after(json!({"status": "released"})),
    )
    .await?;
    let released = store::hold_by_key(&mut tx, &hold_key)
        .await?
        .ok_or_else(ApiError::internal)?;
    let view = hold_view(&mut tx, &released).await?;
    tx.commit().await?;
    Ok(Json(view))
}
