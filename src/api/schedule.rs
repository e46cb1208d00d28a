//! 1:1 scheduling: the pieces shared by the scheduling handlers
//! (`schedule_holds`, `schedule_sessions`, `schedule_calendar`): the error type with the
//! 409 `slot_conflict` body, the views, the role checks, the input parsers and the
//! notification helpers.
//!
//! Roles (docs/SCHEDULING.md, "Who may do what"): therapists book their own calendar with their own
//! clients; organization administrators (`organization`, `admin`) book within their
//! organization; super admins anywhere (therapist and client still of one
//! organization); clients read their own sessions only; guests nothing.

use std::str::FromStr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono_tz::Tz;
use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult, ErrorDetail};
use crate::policy::is_admin_of;
use crate::schedule::availability::{Busy, Slot};
use crate::schedule::is_exclusion_violation;
use crate::schedule::service_codes::ServiceCodes;
use crate::state::AppState;
use crate::store::notifications::{self, NewNotification, Notification, NotificationKind};
use crate::store::schedule::{self as store, ClientRecord, ScheduledSession};
use crate::store::users::Therapist;

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
    pub(super) start: String,
    /// End (RFC 3339, exclusive).
    pub(super) end: String,
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
    /// 409 `outside_working_hours` / `therapist_time_off`, with hints.
    Hours(super::schedule_hours::HoursRefusal),
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
            ScheduleError::Hours(refusal) => refusal.into_response(),
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
    // Hints lie inside everyone's working hours and outside their time off.
    let suggestions = super::schedule_hours::suggestions(conn, user_ids, occurrence)
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
    /// Service code (CPT), if set.
    service_code: Option<String>,
    /// When the session was last moved to another slot (absent if never).
    rescheduled_at: Option<String>,
    /// Start before the last move (RFC 3339).
    previous_start: Option<String>,
    /// End before the last move (RFC 3339).
    previous_end: Option<String>,
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
        service_code: s.service_code.clone(),
        rescheduled_at: s.rescheduled_at.map(rfc3339),
        previous_start: s.previous_start_ms.map(rfc3339),
        previous_end: s.previous_end_ms.map(rfc3339),
    }
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

/// Checks an optional service code against the configured list (400
/// `invalid_service_code`); blank means none.
pub fn check_service_code(
    codes: Option<&ServiceCodes>,
    raw: Option<&str>,
) -> ApiResult<Option<String>> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let default = ServiceCodes::default();
    codes.unwrap_or(&default).check(raw).map(Some).map_err(|_| {
        ApiError::bad_request(
            "invalid_service_code",
            "service_code is not one of the accepted service codes",
        )
    })
}

/// Pushes stored notifications to connected users (after the commit).
pub fn push_all(state: &AppState, list: &[Notification]) {
    for n in list {
        state.live.notify(&n.user_id, n.to_json());
    }
}
