//! Free-slot search: `GET /api/therapists/{id}/availability` lists the start times at
//! which a session of a given length could be booked with a therapist: inside their
//! working hours, outside their time off, clear of their sessions, holds and group
//! sessions. Busy details are never shown, only free slots.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schedule::{parse_opt_instant, slot_views, SlotView};
use crate::auth::{Caller, Role};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::policy::is_admin_of;
use crate::schedule::availability;
use crate::schedule::hours::free_slots;
use crate::state::AppState;
use crate::store::schedule as schedule_store;
use crate::store::users::Therapist;
use crate::store::working_hours;

/// The widest search range.
pub const MAX_RANGE_MS: i64 = 31 * 24 * 3_600_000;
/// The range searched when `to` is not given.
pub const DEFAULT_RANGE_MS: i64 = 7 * 24 * 3_600_000;
/// Session length searched when `duration_minutes` is not given.
pub const DEFAULT_DURATION_MINUTES: i64 = 50;
/// Slots start on this grid (every quarter hour on the clock).
pub const STEP_MS: i64 = 15 * 60_000;
/// The most slots one answer lists (`truncated` says more exist).
pub const MAX_SLOTS: usize = 500;

/// Query of the free-slot search.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct AvailabilityQuery {
    /// Range start (RFC 3339, default now; slots never start in the past).
    from: Option<String>,
    /// Range end (RFC 3339, default 7 days after `from`; at most 31 days after it).
    to: Option<String>,
    /// Session length in minutes, 5–720 (default 50).
    duration_minutes: Option<String>,
}

/// Free slots of one therapist.
#[derive(Serialize, ToSchema)]
pub struct AvailabilityView {
    therapist_id: String,
    /// The searched range, as used (RFC 3339).
    from: String,
    to: String,
    duration_minutes: i64,
    /// Minutes between possible start times.
    step_minutes: i64,
    /// False when the therapist has no working hours set (any time outside time off).
    working_hours_configured: bool,
    slots: Vec<SlotView>,
    /// True when more than the listed slots exist (narrow the range).
    truncated: bool,
}

/// Loads therapist `id` for a caller who may search their free time: the therapist,
/// staff of their organization (therapists, administrators), super admins, and the
/// therapist's own clients. Another organization's callers get 404
/// `therapist_not_found`; a client of another therapist 403 `not_your_therapist`.
async fn searchable_therapist(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Therapist> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let not_found = || ApiError::not_found("therapist_not_found", "therapist not found");
    let therapist = state.store.therapist(id).await?.ok_or_else(not_found)?;
    if is_admin_of(caller, &therapist.organization_id) {
        return Ok(therapist);
    }
    if caller.org_id.as_deref() != Some(therapist.organization_id.as_str()) {
        return Err(not_found());
    }
    if caller.role != Role::Client {
        return Ok(therapist);
    }
    let mut conn = state.store.pool().acquire().await?;
    let own = schedule_store::client(&mut conn, &caller.sub)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .is_some_and(|c| c.therapist_id.as_deref() == Some(therapist.id.as_str()));
    if own {
        Ok(therapist)
    } else {
        Err(ApiError::forbidden(
            "not_your_therapist",
            "clients search the free time of their own therapist only",
        ))
    }
}

/// Free slots of a therapist for a session of `duration_minutes`, starting every 15
/// minutes on the clock, in `[from, to)`. A client searching also has their own busy
/// time left out.
#[utoipa::path(get, path = "/api/therapists/{id}/availability", tag = "working hours",
    params(("id" = String, Path, description = "therapist id"), AvailabilityQuery), security(("bearer" = [])),
    responses((status = 200, body = AvailabilityView),
        (status = 400, body = ErrorBody, description = "invalid_timestamp, invalid_time_range, range_too_long, invalid_duration"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden, not_your_therapist"),
        (status = 404, body = ErrorBody, description = "therapist_not_found")))]
pub async fn therapist_availability(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<AvailabilityQuery>,
) -> ApiResult<Json<AvailabilityView>> {
    let therapist = searchable_therapist(&state, &caller, &id).await?;
    let now = now_ms();
    let from = parse_opt_instant("from", q.from.as_deref())?.unwrap_or(now);
    let to = parse_opt_instant("to", q.to.as_deref())?.unwrap_or(from + DEFAULT_RANGE_MS);
    if to <= from {
        return Err(ApiError::bad_request(
            "invalid_time_range",
            "to must be after from",
        ));
    }
    if to - from > MAX_RANGE_MS {
        return Err(ApiError::bad_request(
            "range_too_long",
            "search at most 31 days at once",
        ));
    }
    let duration_minutes = match q.duration_minutes.as_deref().map(str::trim) {
        None => DEFAULT_DURATION_MINUTES,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|m| (5..=720).contains(m))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_duration",
                    "duration_minutes must be a whole number from 5 to 720",
                )
            })?,
    };
    let duration = duration_minutes * 60_000;
    let mut conn = state.store.pool().acquire().await?;
    let rules = working_hours::availability(&mut conn, &therapist.id, from, to).await?;
    let open = rules.bookable_intervals(from, to);
    // A client searching sees only the times free for both of them.
    let mut people = vec![therapist.id.as_str()];
    if caller.role == Role::Client {
        people.push(caller.sub.as_str());
    }
    let busy: Vec<(i64, i64)> = availability::conflicts(&mut conn, &people, from, to)
        .await?
        .iter()
        .map(|b| (b.start_ms, b.end_ms))
        .collect();
    let (slots, truncated) = free_slots(&open, &busy, duration, STEP_MS, from.max(now), MAX_SLOTS);
    Ok(Json(AvailabilityView {
        therapist_id: therapist.id,
        from: crate::clock::rfc3339(from),
        to: crate::clock::rfc3339(to),
        duration_minutes,
        step_minutes: STEP_MS / 60_000,
        working_hours_configured: rules.hours.is_some(),
        slots: slot_views(&slots),
        truncated,
    }))
}
