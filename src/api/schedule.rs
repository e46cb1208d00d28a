//! 1:1 scheduling (seed 002), part 1: holds. `POST /api/schedule/holds` claims one
//! slot or a whole series (explicit occurrences, or a weekly recurrence expanded in the
//! client's time zone), all or nothing; `POST .../confirm` turns a hold into sessions;
//! `DELETE` releases it. Also the pieces shared by the other scheduling modules: the
//! error type with the 409 `slot_conflict` body, the views, and the role checks.
//!
//! Roles (seed 002 guard matrix): therapists book their own calendar with their own
//! clients; organization administrators (`organization`, `admin`) book within their
//! organization; super admins anywhere (therapist and client still of one
//! organization); clients read their own sessions only; guests nothing.

use std::str::FromStr;

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

use super::JsonBody;
use crate::auth::{Caller, Role};
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
use crate::policy::is_admin_of;
use crate::schedule::availability::{self, Busy, Slot};
use crate::schedule::recurrence::{self, RecurrenceError, SeriesEnd, MAX_OCCURRENCES};
use crate::schedule::{is_exclusion_violation, write_tx};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::notifications::{self, NewNotification, Notification, NotificationKind};
use crate::store::schedule::{self as store, ClientRecord, Hold, ScheduledSession};
use crate::store::users::Therapist;
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// Default lifetime of a hold, in seconds.
pub const DEFAULT_HOLD_SECONDS: i64 = 300;
/// Shortest allowed hold, in seconds.
pub const MIN_HOLD_SECONDS: i64 = 30;
/// Longest allowed hold, in seconds.
pub const MAX_HOLD_SECONDS: i64 = 3600;
/// Longest allowed session.
pub const MAX_SESSION_MS: i64 = 12 * 3_600_000;
/// How many free slots a 409 suggests.
pub const SUGGESTION_COUNT: usize = 3;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A busy interval as a 409 shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConflictView {
    /// The busy user.
    user_id: String,
    /// Start of the busy interval.
    start: String,
    /// End of the busy interval (exclusive).
    end: String,
}

/// A time slot.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlotView {
    /// Start (RFC 3339).
    start: String,
    /// End (RFC 3339, exclusive).
    end: String,
}

/// Body of a 409 `slot_conflict`: the error, what is in the way, and free slots nearby
/// to retry with.
#[derive(Serialize, ToSchema)]
pub struct SlotConflictBody {
    /// Code `slot_conflict` and a message.
    error: ErrorDetail,
    /// Busy intervals overlapping the request.
    conflicts: Vec<ConflictView>,
    /// The nearest free slots of the same length (retry hints).
    suggestions: Vec<SlotView>,
}

/// Errors of the scheduling routes: any [`ApiError`], or a slot conflict with hints.
#[derive(Debug)]
pub enum ScheduleError {
    /// A plain API error.
    Api(ApiError),
    /// 409 `slot_conflict`.
    Conflict {
        /// Human-readable explanation.
        message: String,
        /// What is in the way.
        conflicts: Vec<Busy>,
        /// Free slots nearby.
        suggestions: Vec<Slot>,
    },
}

/// Result type of the scheduling handlers.
pub type ScheduleResult<T> = Result<T, ScheduleError>;

impl From<ApiError> for ScheduleError {
    fn from(err: ApiError) -> Self {
        ScheduleError::Api(err)
    }
}

impl From<sqlx::Error> for ScheduleError {
    fn from(err: sqlx::Error) -> Self {
        if is_exclusion_violation(&err) {
            return ScheduleError::Conflict {
                message: "the slot is already booked".into(),
                conflicts: Vec::new(),
                suggestions: Vec::new(),
            };
        }
        ScheduleError::Api(ApiError::from(err))
    }
}

/// Formats busy intervals for a response.
pub fn conflict_views(conflicts: &[Busy]) -> Vec<ConflictView> {
    conflicts
        .iter()
        .map(|b| ConflictView {
            user_id: b.user_id.clone(),
            start: rfc3339(b.start_ms),
            end: rfc3339(b.end_ms),
        })
        .collect()
}

/// Formats slots for a response.
pub fn slot_views(slots: &[Slot]) -> Vec<SlotView> {
    slots
        .iter()
        .map(|s| SlotView {
            start: rfc3339(s.start_ms),
            end: rfc3339(s.end_ms),
        })
        .collect()
}

impl IntoResponse for ScheduleError {
    fn into_response(self) -> Response {
        match self {
            ScheduleError::Api(err) => err.into_response(),
            ScheduleError::Conflict {
                message,
                conflicts,
                suggestions,
            } => (
                StatusCode::CONFLICT,
                Json(SlotConflictBody {
                    error: ErrorDetail {
                        code: "slot_conflict".into(),
                        message,
                    },
                    conflicts: conflict_views(&conflicts),
                    suggestions: slot_views(&suggestions),
                }),
            )
                .into_response(),
        }
    }
}

/// Builds the 409 for occurrences that are not free, with hints for the first one.
pub async fn slot_conflict(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    occurrence: (i64, i64),
    conflicts: Vec<Busy>,
) -> ScheduleError {
    let suggestions = availability::suggest_free_slots(
        conn,
        user_ids,
        occurrence.0,
        occurrence.1,
        now_ms(),
        SUGGESTION_COUNT,
    )
    .await
    .unwrap_or_default();
    ScheduleError::Conflict {
        message: format!("the slot starting {} is not free", rfc3339(occurrence.0)),
        conflicts,
        suggestions,
    }
}

// ---------------------------------------------------------------------------
// Parsing helpers
// ---------------------------------------------------------------------------

/// Parses an RFC 3339 instant into Unix ms (400 `invalid_timestamp`).
pub fn parse_instant(field: &str, value: &str) -> ApiResult<i64> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_timestamp",
                format!("{field} must be an RFC 3339 timestamp"),
            )
        })
}

/// Parses an optional RFC 3339 instant.
pub fn parse_opt_instant(field: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value.map(|v| parse_instant(field, v)).transpose()
}

/// Parses an IANA time zone name (400 `invalid_time_zone`).
pub fn parse_time_zone(name: &str) -> ApiResult<Tz> {
    Tz::from_str(name.trim()).map_err(|_| {
        ApiError::bad_request(
            "invalid_time_zone",
            "time_zone must be an IANA time zone name such as America/New_York",
        )
    })
}

/// Checks a `[start, end)` pair: ordered and at most [`MAX_SESSION_MS`] long.
pub fn check_range(start_ms: i64, end_ms: i64) -> ApiResult<()> {
    if end_ms <= start_ms {
        return Err(ApiError::bad_request(
            "invalid_time_range",
            "end must be after start",
        ));
    }
    if end_ms - start_ms > MAX_SESSION_MS {
        return Err(ApiError::bad_request(
            "invalid_time_range",
            "a session lasts at most 12 hours",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Role checks
// ---------------------------------------------------------------------------

/// 403 for clients and guests, who may not book or change anything.
pub fn require_booker(caller: &Caller) -> ApiResult<()> {
    match caller.role {
        Role::Therapist | Role::Organization | Role::Admin | Role::SuperAdmin => Ok(()),
        Role::Client => Err(ApiError::forbidden(
            "forbidden",
            "clients have read-only access to their schedule",
        )),
        Role::Guest => Err(ApiError::wrong_role()),
    }
}

/// Checks that the caller may book `therapist_id` with `client_id` and returns both.
/// 404 `therapist_not_found` / `client_not_found`; 403 `not_own_calendar` (a
/// therapist booking someone else's calendar), `therapist_not_in_organization` (an
/// administrator reaching into another organization), `client_not_in_organization`
/// (client and therapist of different organizations), `not_your_client` (a therapist
/// booking a client not assigned to them).
pub async fn bookable(
    state: &AppState,
    caller: &Caller,
    therapist_id: &str,
    client_id: &str,
) -> ApiResult<(Therapist, ClientRecord)> {
    require_booker(caller)?;
    let therapist = state
        .store
        .therapist(therapist_id)
        .await?
        .ok_or_else(|| ApiError::not_found("therapist_not_found", "therapist not found"))?;
    match caller.role {
        Role::Therapist if therapist.id != caller.sub => {
            return Err(ApiError::forbidden(
                "not_own_calendar",
                "therapists book their own calendar only",
            ))
        }
        Role::Organization | Role::Admin if !is_admin_of(caller, &therapist.organization_id) => {
            return Err(ApiError::forbidden(
                "therapist_not_in_organization",
                "the therapist does not belong to your organization",
            ))
        }
        _ => {}
    }
    let client = {
        let mut conn = state.store.pool().acquire().await?;
        store::client(&mut conn, client_id).await?
    }
    .filter(|c| c.deleted_at.is_none())
    .ok_or_else(|| ApiError::not_found("client_not_found", "client not found"))?;
    if client.organization_id != therapist.organization_id {
        return Err(ApiError::forbidden(
            "client_not_in_organization",
            "the client does not belong to the therapist's organization",
        ));
    }
    if caller.role == Role::Therapist && client.therapist_id.as_deref() != Some(&caller.sub) {
        return Err(ApiError::forbidden(
            "not_your_client",
            "the client is not assigned to you",
        ));
    }
    Ok((therapist, client))
}

/// True if the caller may read `s`: its therapist or client, an administrator of its
/// organization, a super admin.
pub fn can_view(caller: &Caller, s: &ScheduledSession) -> bool {
    caller.role != Role::Guest
        && (caller.sub == s.therapist_id
            || caller.sub == s.client_id
            || is_admin_of(caller, &s.organization_id))
}

/// True if the caller may change `s`: its therapist, an administrator of its
/// organization, a super admin.
pub fn can_manage(caller: &Caller, s: &ScheduledSession) -> bool {
    caller.role != Role::Guest
        && (caller.sub == s.therapist_id || is_admin_of(caller, &s.organization_id))
}

/// Loads a session the caller may see, else 404 `scheduled_session_not_found`.
pub async fn visible_session(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<ScheduledSession> {
    let mut conn = state.store.pool().acquire().await?;
    store::session(&mut conn, id)
        .await?
        .filter(|s| can_view(caller, s))
        .ok_or_else(|| ApiError::not_found("scheduled_session_not_found", "session not found"))
}

/// Loads a session the caller may change: 404 when not visible, 403 `forbidden` when
/// visible but read-only (its client).
pub async fn managed_session(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<ScheduledSession> {
    let s = visible_session(state, caller, id).await?;
    if !can_manage(caller, &s) {
        return Err(ApiError::forbidden(
            "forbidden",
            "clients have read-only access to their sessions",
        ));
    }
    Ok(s)
}

// ---------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------

/// A booked 1:1 session.
#[derive(Serialize, ToSchema)]
pub struct ScheduledSessionView {
    id: String,
    organization_id: String,
    therapist_id: String,
    therapist_name: String,
    client_id: String,
    client_name: String,
    /// RFC 3339.
    start: String,
    /// RFC 3339, exclusive.
    end: String,
    time_zone: String,
    /// `scheduled`, `completed` or `cancelled`.
    status: String,
    /// `unknown`, `attended`, `no_show` or `late_cancel`.
    attendance: String,
    series_id: Option<String>,
    /// The linked video room, once created.
    video_session_id: Option<String>,
    created_at: String,
    cancelled_at: Option<String>,
    cancel_reason: Option<String>,
}

/// Builds the API view of a session.
pub fn session_view(s: &ScheduledSession) -> ScheduledSessionView {
    ScheduledSessionView {
        id: s.id.clone(),
        organization_id: s.organization_id.clone(),
        therapist_id: s.therapist_id.clone(),
        therapist_name: s.therapist_name.clone(),
        client_id: s.client_id.clone(),
        client_name: s.client_name.clone(),
        start: rfc3339(s.start_ms),
        end: rfc3339(s.end_ms),
        time_zone: s.time_zone.clone(),
        status: s.status.clone(),
        attendance: s.attendance.clone(),
        series_id: s.series_id.clone(),
        video_session_id: s.video_session_id.clone(),
        created_at: rfc3339(s.created_at),
        cancelled_at: s.cancelled_at.map(rfc3339),
        cancel_reason: s.cancel_reason.clone(),
    }
}

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
/// `suggestions`). With an `Idempotency-Key` header, a retry with the same body
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
        (status = 409, body = SlotConflictBody, description = "slot_conflict"),
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

/// Creates one notification per recipient inside the transaction.
pub async fn notify_all(
    conn: &mut AnyConnection,
    recipients: &[(&str, &str)],
    organization_id: &str,
    kind: NotificationKind,
    title: &str,
    payload: serde_json::Value,
) -> Result<Vec<Notification>, sqlx::Error> {
    let mut out = Vec::new();
    for (user_id, body) in recipients {
        out.push(
            notifications::create(
                conn,
                NewNotification {
                    user_id,
                    organization_id: Some(organization_id),
                    kind,
                    title,
                    body,
                    payload: payload.clone(),
                },
            )
            .await?,
        );
    }
    Ok(out)
}

/// Pushes stored notifications to connected users (after the commit).
pub fn push_all(state: &AppState, list: &[Notification]) {
    for n in list {
        state.live.notify(&n.user_id, n.to_json());
    }
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
