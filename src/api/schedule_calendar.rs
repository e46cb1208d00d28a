//! The unified schedule (the caller's 1:1 and group events, merged and sorted) and
//! the availability check of a slot.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schedule::{
    check_range, conflict_views, parse_instant, parse_opt_instant, slot_views, ConflictView,
    SlotView,
};
use crate::auth::{Caller, Role};
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::policy::is_admin_of;
use crate::schedule::availability;
use crate::state::AppState;
use crate::store::schedule as store;

/// Default length of the unified schedule window.
pub const DEFAULT_WINDOW_MS: i64 = 30 * 24 * 3_600_000;
/// Longest unified schedule window.
pub const MAX_WINDOW_MS: i64 = 366 * 24 * 3_600_000;

/// Query of the unified schedule.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ScheduleQuery {
    /// Window start (RFC 3339, default now).
    start: Option<String>,
    /// Window end (RFC 3339, default 30 days after the start; at most 366 days).
    end: Option<String>,
    /// Also list completed events (default false). Cancelled events are never listed.
    #[serde(rename = "includeCompleted", alias = "include_completed")]
    #[param(rename = "includeCompleted")]
    include_completed: Option<bool>,
}

/// One calendar event.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    /// Id of the 1:1 or group session.
    event_id: String,
    /// `one_on_one`, or the group feature's type.
    event_type: String,
    title: String,
    /// RFC 3339.
    start: String,
    /// RFC 3339, exclusive.
    end: String,
    status: String,
}

/// The caller's events in a window.
#[derive(Serialize, ToSchema)]
pub struct ScheduleView {
    start: String,
    end: String,
    /// Sorted by start.
    events: Vec<EventView>,
}

/// The caller's schedule: 1:1 sessions and group sessions overlapping the window,
/// merged and sorted by start.
#[utoipa::path(get, path = "/api/schedule", tag = "schedule", params(ScheduleQuery), security(("bearer" = [])),
    responses((status = 200, body = ScheduleView),
        (status = 400, body = ErrorBody, description = "invalid_timestamp, invalid_time_range"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (guests)")))]
pub async fn unified_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ScheduleQuery>,
) -> ApiResult<Json<ScheduleView>> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let start = parse_opt_instant("start", q.start.as_deref())?.unwrap_or_else(now_ms);
    let end = parse_opt_instant("end", q.end.as_deref())?.unwrap_or(start + DEFAULT_WINDOW_MS);
    if end <= start || end - start > MAX_WINDOW_MS {
        return Err(ApiError::bad_request(
            "invalid_time_range",
            "end must be after start, at most 366 days later",
        ));
    }
    let mut conn = state.store.pool().acquire().await?;
    let events = store::events_of(
        &mut conn,
        &caller.sub,
        start,
        end,
        q.include_completed.unwrap_or(false),
    )
    .await?;
    Ok(Json(ScheduleView {
        start: rfc3339(start),
        end: rfc3339(end),
        events: events
            .into_iter()
            .map(|e| EventView {
                event_id: e.event_id,
                event_type: e.event_type,
                title: e.title,
                start: rfc3339(e.start_ms),
                end: rfc3339(e.end_ms),
                status: e.status,
            })
            .collect(),
    }))
}

/// Query of the availability check.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ConflictsQuery {
    /// Slot start (RFC 3339).
    start: String,
    /// Slot end (RFC 3339, exclusive).
    end: String,
    /// Check this therapist (default: the caller).
    therapist_id: Option<String>,
    /// Also check this client.
    client_id: Option<String>,
}

/// Whether a slot is free.
#[derive(Serialize, ToSchema)]
pub struct ConflictCheckView {
    /// True when nothing overlaps the slot.
    free: bool,
    /// What overlaps it.
    conflicts: Vec<ConflictView>,
    /// The nearest free slots of the same length, when it is not free.
    suggestions: Vec<SlotView>,
}

/// Tells whether `[start, end)` is free for a therapist (default: the caller) and
/// optionally a client, counting 1:1 sessions, active holds and group sessions.
/// Therapists check their own calendar and their clients; administrators their
/// organization's people; clients only themselves.
#[utoipa::path(get, path = "/api/schedule/conflicts", tag = "schedule", params(ConflictsQuery), security(("bearer" = [])),
    responses((status = 200, body = ConflictCheckView),
        (status = 400, body = ErrorBody, description = "invalid_timestamp, invalid_time_range"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden, not_own_calendar, not_your_client, therapist_not_in_organization, client_not_in_organization"),
        (status = 404, body = ErrorBody, description = "therapist_not_found, client_not_found")))]
pub async fn check_conflicts(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ConflictsQuery>,
) -> ApiResult<Json<ConflictCheckView>> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let start = parse_instant("start", &q.start)?;
    let end = parse_instant("end", &q.end)?;
    check_range(start, end)?;
    let mut users: Vec<String> = Vec::new();
    if let Some(tid) = q.therapist_id.as_deref() {
        let therapist = state
            .store
            .therapist(tid)
            .await?
            .ok_or_else(|| ApiError::not_found("therapist_not_found", "therapist not found"))?;
        match caller.role {
            Role::Client => {
                return Err(ApiError::forbidden(
                    "forbidden",
                    "clients check their own schedule only",
                ))
            }
            Role::Therapist if therapist.id != caller.sub => {
                return Err(ApiError::forbidden(
                    "not_own_calendar",
                    "therapists check their own calendar only",
                ))
            }
            Role::Organization | Role::Admin
                if !is_admin_of(&caller, &therapist.organization_id) =>
            {
                return Err(ApiError::forbidden(
                    "therapist_not_in_organization",
                    "the therapist does not belong to your organization",
                ))
            }
            _ => {}
        }
        users.push(therapist.id);
    }
    if let Some(cid) = q.client_id.as_deref() {
        let client = {
            let mut conn = state.store.pool().acquire().await?;
            store::client(&mut conn, cid).await?
        }
        .filter(|c| c.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("client_not_found", "client not found"))?;
        let allowed = match caller.role {
            Role::Client => client.id == caller.sub,
            Role::Therapist => client.therapist_id.as_deref() == Some(&caller.sub),
            _ => is_admin_of(&caller, &client.organization_id),
        };
        if !allowed {
            return Err(match caller.role {
                Role::Client => {
                    ApiError::forbidden("forbidden", "clients check their own schedule only")
                }
                Role::Therapist => {
                    ApiError::forbidden("not_your_client", "the client is not assigned to you")
                }
                _ => ApiError::forbidden(
                    "client_not_in_organization",
                    "the client does not belong to your organization",
                ),
            });
        }
        users.push(client.id);
    }
    if users.is_empty() {
        users.push(caller.sub.clone());
    }
    let ids: Vec<&str> = users.iter().map(String::as_str).collect();
    let mut conn = state.store.pool().acquire().await?;
    let found = availability::conflicts(&mut conn, &ids, start, end).await?;
    let suggestions = if found.is_empty() {
        Vec::new()
    } else {
        super::schedule_hours::suggestions(&mut conn, &ids, (start, end)).await?
    };
    Ok(Json(ConflictCheckView {
        free: found.is_empty(),
        conflicts: conflict_views(&found),
        suggestions: slot_views(&suggestions),
    }))
}
