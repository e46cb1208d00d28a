//! What a hold request is: the body of `POST /api/schedule/holds`, its validation into
//! slots (explicit occurrences, or a weekly series expanded in the hold's time zone),
//! the hash that makes `Idempotency-Key` retries safe, and the hold key.

use axum::http::{HeaderMap, StatusCode};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha1::{Digest, Sha1};
use utoipa::ToSchema;

use super::schedule::{
    check_range, parse_instant, parse_time_zone, DEFAULT_HOLD_SECONDS, MAX_HOLD_SECONDS,
    MIN_HOLD_SECONDS,
};
use crate::error::{ApiError, ApiResult};
use crate::schedule::availability;
use crate::schedule::recurrence::{self, RecurrenceError, SeriesEnd, MAX_OCCURRENCES};
use crate::store::schedule::Hold;

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
    pub(super) therapist_id: String,
    /// The client.
    pub(super) client_id: String,
    /// Start of the (first) session, RFC 3339; optional when `occurrences` is given.
    #[serde(default, alias = "start_time")]
    pub(super) start: Option<String>,
    /// End of the (first) session, RFC 3339, exclusive.
    #[serde(default, alias = "end_time")]
    pub(super) end: Option<String>,
    /// Lifetime of the hold, 30–3600 seconds (default 300).
    pub(super) hold_seconds: Option<i64>,
    /// The client's IANA time zone (default UTC); recurrences keep its wall-clock time.
    pub(super) time_zone: Option<String>,
    /// Explicit slots (at most 52); excludes `recurrence`.
    pub(super) occurrences: Option<Vec<OccurrenceInput>>,
    /// A weekly series starting at `start`; excludes `occurrences`.
    pub(super) recurrence: Option<RecurrenceInput>,
    /// The booked session to move: makes this a reschedule hold (one slot; `start`
    /// and `end`, or `date` to keep the session's local time on another day).
    #[serde(default)]
    pub(super) session_id: Option<String>,
    /// Reschedule holds: the new local date `YYYY-MM-DD` in `time_zone` (default the
    /// session's); the session keeps its wall-clock start and end.
    #[serde(default)]
    pub(super) date: Option<String>,
    /// Service code (CPT) the booked session carries; one of the configured codes.
    #[serde(default)]
    pub(super) service_code: Option<String>,
}

/// A validated hold request.
pub(super) struct HoldRequest {
    pub(super) tz: Tz,
    pub(super) hold_seconds: i64,
    pub(super) occurrences: Vec<(i64, i64)>,
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

/// The lifetime of a hold in seconds (400 `invalid_hold_seconds` out of bounds).
pub(super) fn hold_seconds(asked: Option<i64>) -> ApiResult<i64> {
    let hold_seconds = asked.unwrap_or(DEFAULT_HOLD_SECONDS);
    if !(MIN_HOLD_SECONDS..=MAX_HOLD_SECONDS).contains(&hold_seconds) {
        return Err(ApiError::bad_request(
            "invalid_hold_seconds",
            format!("hold_seconds must be between {MIN_HOLD_SECONDS} and {MAX_HOLD_SECONDS}"),
        ));
    }
    Ok(hold_seconds)
}

/// The slots of an explicit `occurrences` list (1 to 52, each parsed).
fn explicit_occurrences(list: &[OccurrenceInput]) -> ApiResult<Vec<(i64, i64)>> {
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
        .collect()
}

/// Where a weekly series stops: exactly one of `count` (1–52) and `until` (not before
/// the first start).
fn series_end(r: &RecurrenceInput, tz: Tz, start: i64) -> ApiResult<SeriesEnd> {
    match (r.count, r.until.as_deref()) {
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
            Ok(SeriesEnd::Count(count))
        }
        (None, Some(until)) => {
            let until = parse_until(until, tz)?;
            if until < start {
                return Err(ApiError::bad_request(
                    "invalid_recurrence",
                    "until is before the first occurrence",
                ));
            }
            Ok(SeriesEnd::Until(until))
        }
        _ => Err(ApiError::bad_request(
            "invalid_recurrence",
            "give exactly one of count and until",
        )),
    }
}

/// The slots of a weekly series starting `[start, end)`, expanded in `tz`.
fn series_occurrences(
    r: &RecurrenceInput,
    tz: Tz,
    start: i64,
    end: i64,
) -> ApiResult<Vec<(i64, i64)>> {
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
    let until = series_end(r, tz, start)?;
    recurrence::weekly(tz, start, end, interval, until).map_err(recurrence_error)
}

/// Checks a hold request and turns it into its slots, sorted: each valid, none in the
/// past, none overlapping another.
pub(super) fn validate_hold(body: &CreateHold, now: i64) -> ApiResult<HoldRequest> {
    let hold_seconds = hold_seconds(body.hold_seconds)?;
    let tz = parse_time_zone(body.time_zone.as_deref().unwrap_or("UTC"))?;
    let mut occurrences: Vec<(i64, i64)> = match (&body.occurrences, &body.recurrence) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_recurrence",
                "give either occurrences or recurrence, not both",
            ))
        }
        (Some(list), None) => explicit_occurrences(list)?,
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
                Some(r) => series_occurrences(r, tz, start, end)?,
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

/// Hash of the normalized request; `extra` (session id, service code) only counts
/// when present, so that plain holds hash as they always did.
pub(super) fn request_hash(
    therapist_id: &str,
    client_id: &str,
    req: &HoldRequest,
    extra: &[(&str, Option<&str>)],
) -> String {
    let mut canonical = json!({
        "therapist_id": therapist_id,
        "client_id": client_id,
        "time_zone": req.tz.name(),
        "hold_seconds": req.hold_seconds,
        "occurrences": req.occurrences,
    });
    for (name, value) in extra {
        if let Some(value) = value {
            canonical[*name] = json!(value);
        }
    }
    hex::encode(Sha1::digest(canonical.to_string().as_bytes()))
}

pub(super) fn new_hold_key() -> String {
    crate::random::url_token()
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
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
pub(super) fn replay(existing: &Hold, hash: &str) -> ApiResult<()> {
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
