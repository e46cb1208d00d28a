//! A therapist's working hours and time off: read and replace the weekly template
//! (`/api/therapists/{id}/working-hours`), list, add and remove time off
//! (`/api/therapists/{id}/time-off`). The rules are in [`crate::schedule::hours`];
//! who may ask is [`managed_therapist`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::schedule::{parse_instant, parse_opt_instant, parse_time_zone};
use super::JsonBody;
use crate::auth::{Caller, Role};
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::policy::is_admin_of;
use crate::schedule::hours::{
    self, format_hhmm, parse_hhmm, DateInterval, HoursError, WeeklyInterval, WorkingHours,
};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::users::Therapist;
use crate::store::working_hours::{self as store, StoredHours, TimeOff};

/// The longest time-off range: a year and a day.
pub const MAX_TIME_OFF_MS: i64 = 366 * 24 * 3_600_000;
/// The longest time-off label, in characters.
pub const MAX_LABEL_CHARS: usize = 200;

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

/// Loads therapist `id` for a caller who may manage their hours and time off: the
/// therapist, an administrator of their organization, a super admin. Unknown
/// therapists and callers of another organization get 404 `therapist_not_found`;
/// others of the same organization (colleagues, clients) and guests 403 `forbidden`.
pub async fn managed_therapist(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<Therapist> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let therapist = state
        .store
        .therapist(id)
        .await?
        .ok_or_else(|| ApiError::not_found("therapist_not_found", "therapist not found"))?;
    if therapist.id == caller.sub || is_admin_of(caller, &therapist.organization_id) {
        return Ok(therapist);
    }
    if caller.org_id.as_deref() != Some(therapist.organization_id.as_str()) {
        return Err(ApiError::not_found(
            "therapist_not_found",
            "therapist not found",
        ));
    }
    Err(ApiError::forbidden(
        "forbidden",
        "only the therapist and their organization's administrators manage working hours",
    ))
}

/// One weekly interval, in the therapist's time zone.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct WeeklyIntervalView {
    /// `monday` … `sunday`.
    weekday: String,
    /// Start, `HH:MM` (24-hour).
    start: String,
    /// End, `HH:MM`, exclusive; `24:00` for midnight.
    end: String,
}

/// Extra working hours on one date, in the therapist's time zone.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ExtraHoursView {
    /// The local date, `YYYY-MM-DD`.
    date: String,
    /// Start, `HH:MM`.
    start: String,
    /// End, `HH:MM`, exclusive; `24:00` for midnight.
    end: String,
}

/// A therapist's working hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkingHoursView {
    therapist_id: String,
    /// False: no hours set, the therapist is bookable at any time (except time off).
    configured: bool,
    /// IANA time zone of the local times; absent when not configured.
    time_zone: Option<String>,
    weekly: Vec<WeeklyIntervalView>,
    extra_hours: Vec<ExtraHoursView>,
    updated_at: Option<String>,
}

/// Body of `PUT /api/therapists/{id}/working-hours`: the whole new template. Empty
/// `weekly` and `extra_hours` remove the hours (bookable at any time again).
#[derive(Deserialize, ToSchema)]
pub struct PutWorkingHours {
    /// IANA time zone, e.g. `Europe/Berlin`; required unless removing the hours.
    time_zone: Option<String>,
    /// Weekly intervals; several per weekday, not overlapping.
    #[serde(default)]
    weekly: Vec<WeeklyIntervalView>,
    /// Extra hours on single dates (on top of the weekly template).
    #[serde(default)]
    extra_hours: Vec<ExtraHoursView>,
}

fn hours_view(therapist_id: &str, stored: Option<&StoredHours>) -> WorkingHoursView {
    let name = |d: Weekday| WEEKDAYS.iter().find(|w| w.1 == d).map_or("", |w| w.0);
    WorkingHoursView {
        therapist_id: therapist_id.to_string(),
        configured: stored.is_some(),
        time_zone: stored.map(|s| s.row.time_zone.clone()),
        weekly: stored.map_or_else(Vec::new, |s| {
            let mut w = s.hours.weekly.clone();
            w.sort_by_key(|i| (i.weekday.number_from_monday(), i.start_minute));
            w.iter()
                .map(|i| WeeklyIntervalView {
                    weekday: name(i.weekday).to_string(),
                    start: format_hhmm(i.start_minute),
                    end: format_hhmm(i.end_minute),
                })
                .collect()
        }),
        extra_hours: stored.map_or_else(Vec::new, |s| {
            let mut e = s.hours.extra.clone();
            e.sort_by_key(|i| (i.date, i.start_minute));
            e.iter()
                .map(|i| ExtraHoursView {
                    date: i.date.format("%Y-%m-%d").to_string(),
                    start: format_hhmm(i.start_minute),
                    end: format_hhmm(i.end_minute),
                })
                .collect()
        }),
        updated_at: stored.map(|s| rfc3339(s.row.updated_at)),
    }
}

fn minutes(value: &str, end: bool) -> ApiResult<u16> {
    parse_hhmm(value.trim(), end).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_time_of_day",
            "times are HH:MM (00:00 to 23:59; 24:00 as an end)",
        )
    })
}

/// Turns the body into the rules' template; `None` means "remove the hours".
fn parse_template(body: &PutWorkingHours) -> ApiResult<Option<WorkingHours>> {
    if body.weekly.is_empty() && body.extra_hours.is_empty() {
        return Ok(None);
    }
    let tz = parse_time_zone(body.time_zone.as_deref().unwrap_or(""))?;
    let mut weekly = Vec::with_capacity(body.weekly.len());
    for w in &body.weekly {
        let day = w.weekday.trim().to_ascii_lowercase();
        let weekday = WEEKDAYS
            .iter()
            .find(|d| d.0 == day)
            .map(|d| d.1)
            .ok_or_else(|| {
                ApiError::bad_request("invalid_weekday", "weekday must be monday … sunday")
            })?;
        weekly.push(WeeklyInterval {
            weekday,
            start_minute: minutes(&w.start, false)?,
            end_minute: minutes(&w.end, true)?,
        });
    }
    let mut extra = Vec::with_capacity(body.extra_hours.len());
    for e in &body.extra_hours {
        let date = NaiveDate::parse_from_str(e.date.trim(), "%Y-%m-%d")
            .map_err(|_| ApiError::bad_request("invalid_date", "date must be YYYY-MM-DD"))?;
        extra.push(DateInterval {
            date,
            start_minute: minutes(&e.start, false)?,
            end_minute: minutes(&e.end, true)?,
        });
    }
    hours::validate(&weekly, &extra).map_err(|err| match err {
        HoursError::EmptyInterval => ApiError::bad_request(
            "invalid_interval",
            "an interval's start must be before its end",
        ),
        HoursError::Overlap => ApiError::bad_request(
            "overlapping_intervals",
            "intervals of the same day may not overlap",
        ),
        HoursError::TooMany => ApiError::bad_request(
            "too_many_intervals",
            format!("at most {} intervals", hours::MAX_INTERVALS),
        ),
    })?;
    Ok(Some(WorkingHours { tz, weekly, extra }))
}

/// Reads a therapist's working hours.
#[utoipa::path(get, path = "/api/therapists/{id}/working-hours", tag = "working hours",
    params(("id" = String, Path, description = "therapist id")), security(("bearer" = [])),
    responses((status = 200, body = WorkingHoursView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden"),
        (status = 404, body = ErrorBody, description = "therapist_not_found")))]
pub async fn get_working_hours(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkingHoursView>> {
    let therapist = managed_therapist(&state, &caller, &id).await?;
    let mut conn = state.store.pool().acquire().await?;
    let stored = store::hours(&mut conn, &therapist.id).await?;
    Ok(Json(hours_view(&therapist.id, stored.as_ref())))
}

/// Replaces a therapist's working hours (weekly template and extra hours) as a whole.
/// Existing bookings are kept; the new hours apply to bookings made from now on.
#[utoipa::path(put, path = "/api/therapists/{id}/working-hours", tag = "working hours",
    params(("id" = String, Path, description = "therapist id")), request_body = PutWorkingHours,
    security(("bearer" = [])),
    responses((status = 200, body = WorkingHoursView),
        (status = 400, body = ErrorBody, description = "invalid_time_zone, invalid_weekday, invalid_date, invalid_time_of_day, invalid_interval, overlapping_intervals, too_many_intervals"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "forbidden"),
        (status = 404, body = ErrorBody, description = "therapist_not_found")))]
pub async fn put_working_hours(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PutWorkingHours>,
) -> ApiResult<Json<WorkingHoursView>> {
    let therapist = managed_therapist(&state, &caller, &id).await?;
    let template = parse_template(&body)?;
    let mut tx = state.store.pool().begin().await?;
    let before = store::hours(&mut tx, &therapist.id).await?;
    store::replace_hours(
        &mut tx,
        &therapist.id,
        template.as_ref(),
        &caller.sub,
        now_ms(),
    )
    .await?;
    let after = store::hours(&mut tx, &therapist.id).await?;
    let (before, after) = (
        hours_view(&therapist.id, before.as_ref()),
        hours_view(&therapist.id, after.as_ref()),
    );
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&therapist.organization_id),
            "therapist.working_hours.update",
            ("therapist", &therapist.id),
        )
        .before(json!(before))
        .after(json!(after)),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(therapist_id = %therapist.id, configured = after.configured, "working hours replaced");
    Ok(Json(after))
}

/// One time-off range.
#[derive(Serialize, ToSchema)]
pub struct TimeOffView {
    id: String,
    therapist_id: String,
    /// RFC 3339.
    start: String,
    /// RFC 3339, exclusive.
    end: String,
    label: Option<String>,
    created_at: String,
}

fn time_off_view(t: &TimeOff) -> TimeOffView {
    TimeOffView {
        id: t.id.clone(),
        therapist_id: t.therapist_id.clone(),
        start: rfc3339(t.start_ms),
        end: rfc3339(t.end_ms),
        label: t.label.clone(),
        created_at: rfc3339(t.created_at),
    }
}

/// A therapist's time off.
#[derive(Serialize, ToSchema)]
pub struct TimeOffList {
    time_off: Vec<TimeOffView>,
}

/// Window of the time-off listing.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct TimeOffQuery {
    /// List ranges ending after this instant (RFC 3339, default now).
    from: Option<String>,
    /// List ranges starting before this instant (RFC 3339, default: no limit).
    to: Option<String>,
}

/// Body of `POST /api/therapists/{id}/time-off`.
#[derive(Deserialize, ToSchema)]
pub struct CreateTimeOff {
    /// Start (RFC 3339).
    start: String,
    /// End (RFC 3339, exclusive); at most 366 days after the start.
    end: String,
    /// A short label such as "vacation" (at most 200 characters).
    label: Option<String>,
}

/// Lists a therapist's time off, by start.
#[utoipa::path(get, path = "/api/therapists/{id}/time-off", tag = "working hours",
    params(("id" = String, Path, description = "therapist id"), TimeOffQuery), security(("bearer" = [])),
    responses((status = 200, body = TimeOffList),
        (status = 400, body = ErrorBody, description = "invalid_timestamp"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "forbidden"),
        (status = 404, body = ErrorBody, description = "therapist_not_found")))]
pub async fn list_time_off(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<TimeOffQuery>,
) -> ApiResult<Json<TimeOffList>> {
    let therapist = managed_therapist(&state, &caller, &id).await?;
    let from = parse_opt_instant("from", q.from.as_deref())?.unwrap_or_else(now_ms);
    let to = parse_opt_instant("to", q.to.as_deref())?.unwrap_or(i64::MAX);
    let mut conn = state.store.pool().acquire().await?;
    let rows = store::time_off_between(&mut conn, &therapist.id, from, to).await?;
    Ok(Json(TimeOffList {
        time_off: rows.iter().map(time_off_view).collect(),
    }))
}

/// Adds time off: no booking may overlap it (holds and group sessions are refused
/// with 409 `therapist_time_off`). Existing bookings are kept.
#[utoipa::path(post, path = "/api/therapists/{id}/time-off", tag = "working hours",
    params(("id" = String, Path, description = "therapist id")), request_body = CreateTimeOff,
    security(("bearer" = [])),
    responses((status = 201, body = TimeOffView),
        (status = 400, body = ErrorBody, description = "invalid_timestamp, invalid_time_range, invalid_label"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "forbidden"),
        (status = 404, body = ErrorBody, description = "therapist_not_found")))]
pub async fn create_time_off(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateTimeOff>,
) -> ApiResult<(StatusCode, Json<TimeOffView>)> {
    let therapist = managed_therapist(&state, &caller, &id).await?;
    let start = parse_instant("start", &body.start)?;
    let end = parse_instant("end", &body.end)?;
    if end <= start || end - start > MAX_TIME_OFF_MS {
        return Err(ApiError::bad_request(
            "invalid_time_range",
            "end must be after start, at most 366 days later",
        ));
    }
    let label = body
        .label
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    if label.is_some_and(|l| l.chars().count() > MAX_LABEL_CHARS || l.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "invalid_label",
            format!("a label is at most {MAX_LABEL_CHARS} characters, without control characters"),
        ));
    }
    let row = TimeOff {
        id: crate::store::new_id(),
        therapist_id: therapist.id.clone(),
        start_ms: start,
        end_ms: end,
        label: label.map(str::to_string),
        created_by: caller.sub.clone(),
        created_at: now_ms(),
    };
    let mut tx = state.store.pool().begin().await?;
    store::insert_time_off(&mut tx, &row).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&therapist.organization_id),
            "therapist.time_off.create",
            ("therapist_time_off", &row.id),
        )
        // The label is the therapist's own words: not copied into the audit log.
        .after(
            json!({"therapist_id": row.therapist_id, "start": rfc3339(start), "end": rfc3339(end)}),
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(therapist_id = %therapist.id, time_off_id = %row.id, "time off added");
    Ok((StatusCode::CREATED, Json(time_off_view(&row))))
}

/// Removes a time-off range.
#[utoipa::path(delete, path = "/api/therapists/{id}/time-off/{time_off_id}", tag = "working hours",
    params(("id" = String, Path, description = "therapist id"), ("time_off_id" = String, Path, description = "time-off id")),
    security(("bearer" = [])),
    responses((status = 200, body = TimeOffView, description = "removed"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "forbidden"),
        (status = 404, body = ErrorBody, description = "therapist_not_found, time_off_not_found")))]
pub async fn delete_time_off(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, time_off_id)): Path<(String, String)>,
) -> ApiResult<Json<TimeOffView>> {
    let therapist = managed_therapist(&state, &caller, &id).await?;
    let not_found = || ApiError::not_found("time_off_not_found", "time off not found");
    let mut tx = state.store.pool().begin().await?;
    let row = store::time_off(&mut tx, &therapist.id, &time_off_id)
        .await?
        .ok_or_else(not_found)?;
    if !store::delete_time_off(&mut tx, &therapist.id, &row.id).await? {
        return Err(not_found());
    }
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&therapist.organization_id),
            "therapist.time_off.delete",
            ("therapist_time_off", &row.id),
        )
        .before(json!({"therapist_id": row.therapist_id, "start": rfc3339(row.start_ms), "end": rfc3339(row.end_ms)})),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(time_off_view(&row)))
}
