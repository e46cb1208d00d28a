//! 1:1 scheduling (seed 002): holds. `POST /api/schedule/holds` claims one slot or a
//! whole series (explicit occurrences, or a weekly recurrence expanded in the client's
//! time zone), all or nothing; `POST .../confirm` turns a hold into sessions; `DELETE`
//! releases it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha1::{Digest, Sha1};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::schedule::{
    bookable, check_range, notify_all, parse_instant, parse_time_zone, push_all, require_booker,
    session_view, slot_conflict, ScheduleResult, ScheduledSessionView, SlotConflictBody, SlotView,
    DEFAULT_HOLD_SECONDS, MAX_HOLD_SECONDS, MIN_HOLD_SECONDS,
};
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::policy::is_admin_of;
use crate::schedule::availability;
use crate::schedule::recurrence::{self, RecurrenceError, SeriesEnd, MAX_OCCURRENCES};
use crate::schedule::write_tx;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::notifications::NotificationKind;
use crate::store::schedule::{self as store, Hold};
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

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
}

async fn hold_view(conn: &mut AnyConnection, hold: &Hold) -> ApiResult<HoldView> {
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
    })
}

/// A confirmed hold and the sessions it became.
#[derive(Serialize, ToSchema)]
pub struct ConfirmView {
    hold: HoldView,
    sessions: Vec<ScheduledSessionView>,
}

// ---------------------------------------------------------------------------
// Holds
// ---------------------------------------------------------------------------

/// One explicit occurrence of a hold request.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct OccurrenceInput {
    /// Start (RFC 3339).
    #[serde(alias = "start_time")]
    start: String,
    /// End (RFC 3339, exclusive).
    #[serde(alias = "end_time")]
    end: String,
}

/// A weekly series.
#[derive(Deserialize, ToSchema)]
pub struct RecurrenceInput {
    /// `weekly` (the only frequency).
    frequency: String,
    /// Every `interval` weeks, 1–52 (default 1).
    interval: Option<u32>,
    /// Number of occurrences, 1–52; give this or `until`.
    count: Option<u32>,
    /// No occurrence starts after this instant (RFC 3339, or a date `YYYY-MM-DD`
    /// meaning the end of that day in `time_zone`); give this or `count`.
    until: Option<String>,
}

/// Body of `POST /api/schedule/holds`.
#[derive(Deserialize, ToSchema)]
pub struct CreateHold {
    /// The therapist.
    therapist_id: String,
    /// The client.
    client_id: String,
    /// Start of the (first) session, RFC 3339; optional when `occurrences` is given.
    #[serde(default, alias = "start_time")]
    start: Option<String>,
    /// End of the (first) session, RFC 3339, exclusive.
    #[serde(default, alias = "end_time")]
    end: Option<String>,
    /// Lifetime of the hold, 30–3600 seconds (default 300).
    hold_seconds: Option<i64>,
    /// The client's IANA time zone (default UTC); recurrences keep its wall-clock time.
    time_zone: Option<String>,
    /// Explicit slots (at most 52); excludes `recurrence`.
    occurrences: Option<Vec<OccurrenceInput>>,
    /// A weekly series starting at `start`; excludes `occurrences`.
    recurrence: Option<RecurrenceInput>,
}

/// A validated hold request.
struct HoldRequest {
    tz: Tz,
    hold_seconds: i64,
    occurrences: Vec<(i64, i64)>,
}

fn recurrence_error(err: RecurrenceError) -> ApiError {
    match err {
        RecurrenceError::TooMany => ApiError::bad_request(
            "too_many_occurrences",
            format!("a series has at most {MAX_OCCURRENCES} occurrences"),
        ),
        RecurrenceError::Unrepresentable => {
            ApiError::bad_request("invalid_recurrence", "the series cannot be expanded")
        }
    }
}

fn parse_until(raw: &str, tz: Tz) -> ApiResult<i64> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_recurrence",
            "until must be an RFC 3339 timestamp or a date YYYY-MM-DD",
        )
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw.trim()) {
        return Ok(t.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| invalid())?;
    let next_day = date.succ_opt().ok_or_else(invalid)?;
    let midnight = next_day.and_hms_opt(0, 0, 0).ok_or_else(invalid)?;
    recurrence::resolve_local(tz, midnight)
        .map(|t| t.timestamp_millis() - 1)
        .ok_or_else(invalid)
}

fn validate_hold(body: &CreateHold, now: i64) -> ApiResult<HoldRequest> {
    let hold_seconds = body.hold_seconds.unwrap_or(DEFAULT_HOLD_SECONDS);
    if !(MIN_HOLD_SECONDS..=MAX_HOLD_SECONDS).contains(&hold_seconds) {
        return Err(ApiError::bad_request(
            "invalid_hold_seconds",
            format!("hold_seconds must be between {MIN_HOLD_SECONDS} and {MAX_HOLD_SECONDS}"),
        ));
    }
    let tz = parse_time_zone(body.time_zone.as_deref().unwrap_or("UTC"))?;
    let mut occurrences: Vec<(i64, i64)> = match (&body.occurrences, &body.recurrence) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_recurrence",
                "give either occurrences or recurrence, not both",
            ))
        }
        (Some(list), None) => {
            if list.is_empty() {
                return Err(ApiError::bad_request(
                    "invalid_time_range",
                    "occurrences may not be empty",
                ));
            }
            if list.len() > MAX_OCCURRENCES {
                return Err(recurrence_error(RecurrenceError::TooMany));
            }
            list.iter()
                .map(|o| {
                    Ok((
                        parse_instant("occurrences.start", &o.start)?,
                        parse_instant("occurrences.end", &o.end)?,
                    ))
                })
                .collect::<ApiResult<_>>()?
        }
        (None, recurrence) => {
            let (Some(start), Some(end)) = (body.start.as_deref(), body.end.as_deref()) else {
                return Err(ApiError::bad_request(
                    "invalid_time_range",
                    "start and end are required",
                ));
            };
            let start = parse_instant("start", start)?;
            let end = parse_instant("end", end)?;
            check_range(start, end)?;
            match recurrence {
                None => vec![(start, end)],
                Some(r) => {
                    if r.frequency != "weekly" {
                        return Err(ApiError::bad_request(
                            "invalid_recurrence",
                            "frequency must be weekly",
                        ));
                    }
                    let interval = r.interval.unwrap_or(1);
                    if !(1..=52).contains(&interval) {
                        return Err(ApiError::bad_request(
                            "invalid_recurrence",
                            "interval must be between 1 and 52 weeks",
                        ));
                    }
                    let series_end = match (r.count, r.until.as_deref()) {
                        (Some(count), None) => {
                            if count == 0 {
                                return Err(ApiError::bad_request(
                                    "invalid_recurrence",
                                    "count must be at least 1",
                                ));
                            }
                            if count as usize > MAX_OCCURRENCES {
                                return Err(recurrence_error(RecurrenceError::TooMany));
                            }
                            SeriesEnd::Count(count)
                        }
                        (None, Some(until)) => {
                            let until = parse_until(until, tz)?;
                            if until < start {
                                return Err(ApiError::bad_request(
                                    "invalid_recurrence",
                                    "until is before the first occurrence",
                                ));
                            }
                            SeriesEnd::Until(until)
                        }
                        _ => {
                            return Err(ApiError::bad_request(
                                "invalid_recurrence",
                                "give exactly one of count and until",
                            ))
                        }
                    };
                    recurrence::weekly(tz, start, end, interval, series_end)
                        .map_err(recurrence_error)?
                }
            }
        }
    };
    occurrences.sort_unstable();
    for &(s, e) in &occurrences {
        check_range(s, e)?;
        if s < now {
            return Err(ApiError::bad_request(
                "start_in_past",
                "sessions cannot be booked in the past",
            ));
        }
    }
    if occurrences
        .windows(2)
        .any(|w| availability::overlaps(w[0].0, w[0].1, w[1].0, w[1].1))
    {
        return Err(ApiError::bad_request(
            "overlapping_occurrences",
            "the occurrences overlap each other",
        ));
    }
    Ok(HoldRequest {
        tz,
        hold_seconds,
        occurrences,
    })
}

fn request_hash(therapist_id: &str, client_id: &str, req: &HoldRequest) -> String {
    let canonical = json!({
        "therapist_id": therapist_id,
        "client_id": client_id,
        "time_zone": req.tz.name(),
        "hold_seconds": req.hold_seconds,
        "occurrences": req.occurrences,
    });
    hex::encode(Sha1::digest(canonical.to_string().as_bytes()))
}

fn new_hold_key() -> String {
    crate::random::url_token()
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_string()))
}

/// What an idempotency-key lookup found.
fn replay(existing: &Hold, hash: &str) -> ApiResult<()> {
    if existing.request_hash.as_deref() == Some(hash) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        ))
    }
}

/// Holds one slot or a whole series for a therapist and a client. Every occurrence is
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
        (status = 400, body = ErrorBody, description = "invalid_time_range, invalid_timestamp, invalid_time_zone, invalid_recurrence, too_many_occurrences, invalid_hold_seconds, start_in_past, overlapping_occurrences"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients), not_own_calendar, not_your_client, therapist_not_in_organization, client_not_in_organization"),
        (status = 404, body = ErrorBody, description = "therapist_not_found, client_not_found"),
        (status = 409, body = SlotConflictBody, description = "slot_conflict; or outside_working_hours, therapist_time_off (body HoursRefusalBody)"),
        (status = 422, body = ErrorBody, description = "idempotency_key_reused")))]
pub async fn create_hold(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateHold>,
) -> ScheduleResult<Response> {
    require_booker(&caller)?;
    let now = now_ms();
    let req = validate_hold(&body, now)?;
    let key = idempotency_key(&headers)?;
    let (therapist, client) =
        bookable(&state, &caller, &body.therapist_id, &body.client_id).await?;
    let hash = request_hash(&therapist.id, &client.id, &req);

    if let Some(key) = &key {
        let mut conn = state.store.pool().acquire().await?;
        if let Some(existing) = store::hold_by_idempotency_key(&mut conn, &caller.sub, key).await? {
            replay(&existing, &hash)?;
            let view = hold_view(&mut conn, &existing).await?;
            return Ok((StatusCode::OK, Json(view)).into_response());
        }
    }

    let users = [therapist.id.as_str(), client.id.as_str()];
    super::schedule_hours::check_hold(&state.store, &users, &req.occurrences).await?;
    let mut tx = write_tx(&state.store, &users).await?;
    if let Some(key) = &key {
        if let Some(existing) = store::hold_by_idempotency_key(&mut tx, &caller.sub, key).await? {
            replay(&existing, &hash)?;
            let view = hold_view(&mut tx, &existing).await?;
            tx.rollback().await?;
            return Ok((StatusCode::OK, Json(view)).into_response());
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
    };
    let inserted = store::insert_hold(&mut tx, &hold, &req.occurrences).await;
    if let (Err(sqlx::Error::Database(db)), Some(key)) = (&inserted, &key) {
        if db.is_unique_violation() {
            // A concurrent request with the same key won the race: answer as a replay.
            tx.rollback().await?;
            let mut conn = state.store.pool().acquire().await?;
            let existing = store::hold_by_idempotency_key(&mut conn, &caller.sub, key)
                .await?
                .ok_or_else(ApiError::internal)?;
            replay(&existing, &hash)?;
            let view = hold_view(&mut conn, &existing).await?;
            return Ok((StatusCode::OK, Json(view)).into_response());
        }
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
async fn hold_for(state: &AppState, caller: &Caller, key: &str) -> ApiResult<Hold> {
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

fn when_text(occurrences: usize, first_start: i64) -> String {
    if occurrences > 1 {
        format!("{} (first of {occurrences})", rfc3339(first_start))
    } else {
        rfc3339(first_start)
    }
}

/// Turns a hold into sessions, all occurrences at once. An expired hold is 409
/// `hold_expired`, a released one 409 `hold_released`; confirming twice returns the
/// sessions again (200). The therapist and the client receive a `booking_confirmed`
/// notification.
#[utoipa::path(post, path = "/api/schedule/holds/{hold_key}/confirm", tag = "schedule",
    params(("hold_key" = String, Path, description = "the hold's key")), security(("bearer" = [])),
    responses(
        (status = 201, body = ConfirmView, description = "booked"),
        (status = 200, body = ConfirmView, description = "already confirmed"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "hold_not_found"),
        (status = 409, body = SlotConflictBody, description = "slot_conflict, hold_expired, hold_released")))]
pub async fn confirm_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(hold_key): Path<String>,
) -> ScheduleResult<Response> {
    let hold = hold_for(&state, &caller, &hold_key).await?;
    let users = [hold.therapist_id.as_str(), hold.client_id.as_str()];
    let mut tx = write_tx(&state.store, &users).await?;
    let hold = store::hold_by_key(&mut tx, &hold_key)
        .await?
        .ok_or_else(|| ApiError::not_found("hold_not_found", "hold not found"))?;
    let now = now_ms();
    match hold.status_at(now) {
        "confirmed" => {
            let sessions = store::sessions_of_hold(&mut tx, &hold.id).await?;
            let view = ConfirmView {
                hold: hold_view(&mut tx, &hold).await?,
                sessions: sessions.iter().map(session_view).collect(),
            };
            tx.rollback().await?;
            return Ok((StatusCode::OK, Json(view)).into_response());
        }
        "released" => {
            return Err(ApiError::conflict("hold_released", "the hold was released").into())
        }
        "expired" => {
            store::set_hold_status(&mut tx, &hold.id, "active", "expired", now).await?;
            tx.commit().await?;
            return Err(ApiError::conflict("hold_expired", "the hold has expired").into());
        }
        _ => {}
    }
    if !store::set_hold_status(&mut tx, &hold.id, "active", "confirmed", now).await? {
        return Err(ApiError::conflict("hold_not_active", "the hold is no longer active").into());
    }
    let occurrences = store::hold_occurrences(&mut tx, &hold.id).await?;
    for occ in &occurrences {
        let found =
            availability::booking_conflicts(&mut tx, &users, occ.start_ms, occ.end_ms).await?;
        if !found.is_empty() {
            let err = slot_conflict(&mut tx, &users, (occ.start_ms, occ.end_ms), found).await;
            tx.rollback().await?;
            return Err(err);
        }
    }
    let series_id = (occurrences.len() > 1).then_some(hold.id.as_str());
    let mut session_ids = Vec::new();
    for occ in &occurrences {
        let inserted = store::insert_session(
            &mut tx,
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
                now_ms: now,
            },
        )
        .await;
        match inserted {
            Ok(id) => session_ids.push(id),
            Err(err) => {
                tx.rollback().await?;
                return Err(err.into());
            }
        }
    }
    for (id, occ) in session_ids.iter().zip(&occurrences) {
        let people = (hold.therapist_id.as_str(), hold.client_id.as_str());
        let booking = Booking::one_to_one(
            id,
            series_id,
            people,
            &caller.sub,
            (occ.start_ms, occ.end_ms),
        );
        emit(
            &mut tx,
            &hold.organization_id,
            EventType::BookingCreated,
            &booking,
        )
        .await?;
        audit::record(
            &mut tx,
            AuditEntry::by(
                &caller,
                Some(&hold.organization_id),
                "schedule.session.book",
                ("scheduled_session", id),
            )
            .after(json!({
                "therapist_id": hold.therapist_id,
                "client_id": hold.client_id,
                "start": rfc3339(occ.start_ms),
                "end": rfc3339(occ.end_ms),
                "status": "scheduled",
                "hold_id": hold.id,
            })),
        )
        .await?;
    }
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&hold.organization_id),
            "schedule.hold.confirm",
            ("schedule_hold", &hold.id),
        )
        .before(json!({"status": "active"}))
        .after(json!({"status": "confirmed", "session_ids": session_ids})),
    )
    .await?;
    let sessions = store::sessions_of_hold(&mut tx, &hold.id).await?;
    let first = sessions.first().ok_or_else(ApiError::internal)?;
    let when = when_text(sessions.len(), first.start_ms);
    let to_therapist = format!("Session with {} booked for {when}", first.client_name);
    let to_client = format!("Session with {} booked for {when}", first.therapist_name);
    let sent = notify_all(
        &mut tx,
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
    let confirmed = store::hold_by_key(&mut tx, &hold_key)
        .await?
        .ok_or_else(ApiError::internal)?;
    let view = ConfirmView {
        hold: hold_view(&mut tx, &confirmed).await?,
        sessions: sessions.iter().map(session_view).collect(),
    };
    tx.commit().await?;
    push_all(&state, &sent);
    tracing::info!(hold_id = %hold.id, sessions = session_ids.len(), "hold confirmed");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Releases a hold so its slots are free again. Releasing twice is harmless (200); a
/// confirmed hold cannot be released (409 `hold_already_confirmed`: cancel the
/// sessions instead).
#[utoipa::path(delete, path = "/api/schedule/holds/{hold_key}", tag = "schedule",
    params(("hold_key" = String, Path, description = "the hold's key")), security(("bearer" = [])),
    responses(
        (status = 200, body = HoldView, description = "released"),
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
    match hold.status.as_str() {
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
        _ => {}
    }
    let now = now_ms();
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
