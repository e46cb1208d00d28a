//! Working hours and time off as bookings see them: the refusal of a hold (or a group
//! session) outside a therapist's hours or in their time off, and retry hints that lie
//! inside everyone's hours. The rules are in [`crate::schedule::hours`]; this module
//! loads them and turns their verdicts into HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::schedule::{slot_views, ScheduleError, ScheduleResult, SlotView, SUGGESTION_COUNT};
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ErrorDetail};
use crate::schedule::availability::{self, Slot, SUGGESTION_HORIZON_MS};
use crate::schedule::hours::{Availability, Verdict};
use crate::store::working_hours;
use crate::store::Store;

/// Code of a booking outside the therapist's working hours.
pub const OUTSIDE_WORKING_HOURS: &str = "outside_working_hours";
/// Code of a booking that overlaps the therapist's time off.
pub const THERAPIST_TIME_OFF: &str = "therapist_time_off";

/// Body of a 409 `outside_working_hours` / `therapist_time_off`.
#[derive(Serialize, ToSchema)]
pub struct HoursRefusalBody {
    /// The code and a message.
    error: ErrorDetail,
    /// The therapist whose hours refuse the slot.
    therapist_id: String,
    /// The first refused occurrence.
    occurrence: SlotView,
    /// Free slots of the same length inside working hours, nearest first.
    suggestions: Vec<SlotView>,
}

/// A refused occurrence, answered as 409 with [`HoursRefusalBody`].
#[derive(Debug)]
pub struct HoursRefusal {
    code: &'static str,
    message: String,
    therapist_id: String,
    occurrence: (i64, i64),
    suggestions: Vec<Slot>,
}

impl HoursRefusal {
    /// The same refusal as a plain error body (routes without hints).
    pub fn into_api_error(self) -> ApiError {
        ApiError::conflict(
            self.code,
            format!("{} (therapist {})", self.message, self.therapist_id),
        )
    }
}

impl IntoResponse for HoursRefusal {
    fn into_response(self) -> Response {
        let body = HoursRefusalBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
            therapist_id: self.therapist_id,
            occurrence: SlotView {
                start: rfc3339(self.occurrence.0),
                end: rfc3339(self.occurrence.1),
            },
            suggestions: slot_views(&self.suggestions),
        };
        (StatusCode::CONFLICT, Json(body)).into_response()
    }
}

/// The window whose rules checking `occurrences` and hinting around them need: the
/// occurrences and the suggestion horizon either side.
fn window(occurrences: &[(i64, i64)]) -> (i64, i64) {
    let start = occurrences.iter().map(|o| o.0).min().unwrap_or(0);
    let end = occurrences.iter().map(|o| o.1).max().unwrap_or(0);
    let span = occurrences.iter().map(|o| o.1 - o.0).max().unwrap_or(0);
    (
        start - SUGGESTION_HORIZON_MS - span,
        end + SUGGESTION_HORIZON_MS + span,
    )
}

/// The rules of every user in `user_ids` within `(from, to)`. Only therapists have
/// working hours or time off; everyone else comes back unrestricted.
async fn rules_of(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    (from, to): (i64, i64),
) -> Result<Vec<(String, Availability)>, sqlx::Error> {
    let mut out = Vec::new();
    for id in user_ids {
        out.push((
            id.to_string(),
            working_hours::availability(conn, id, from, to).await?,
        ));
    }
    Ok(out)
}

/// Up to [`SUGGESTION_COUNT`] free slots of the length of `occurrence`, near it, free
/// for all of `user_ids` and inside the working hours of each of them. This is what a
/// 409 `slot_conflict` (and a working-hours refusal) suggests.
pub async fn suggestions(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    occurrence: (i64, i64),
) -> Result<Vec<Slot>, sqlx::Error> {
    let rules = rules_of(conn, user_ids, window(&[occurrence])).await?;
    suggest_with(conn, user_ids, occurrence, &rules).await
}

async fn suggest_with(
    conn: &mut AnyConnection,
    user_ids: &[&str],
    occurrence: (i64, i64),
    rules: &[(String, Availability)],
) -> Result<Vec<Slot>, sqlx::Error> {
    let (from, to) = window(&[occurrence]);
    let duration = occurrence.1 - occurrence.0;
    let busy = availability::conflicts(conn, user_ids, from, to).await?;
    // Where working time begins and ends are good retry starts too.
    let mut edges = Vec::new();
    for (_, rule) in rules {
        for (s, e) in rule.bookable_intervals(from, to) {
            edges.push(s);
            edges.push(e - duration);
        }
    }
    Ok(availability::free_slots_near_where(
        &busy,
        occurrence.0,
        duration,
        now_ms(),
        SUGGESTION_COUNT,
        &edges,
        |s, e| {
            rules
                .iter()
                .all(|(_, r)| r.verdict(s, e) == Verdict::Bookable)
        },
    ))
}

/// The first of `occurrences` that some user's `rules` do not allow, as a refusal
/// without hints.
fn first_refusal(
    rules: &[(String, Availability)],
    occurrences: &[(i64, i64)],
) -> Option<HoursRefusal> {
    occurrences.iter().find_map(|&occ| {
        rules.iter().find_map(|(id, r)| {
            let (code, message) = match r.verdict(occ.0, occ.1) {
                Verdict::Bookable => return None,
                Verdict::TimeOff(s, e) => (
                    THERAPIST_TIME_OFF,
                    format!(
                        "the therapist is away from {} to {}",
                        rfc3339(s),
                        rfc3339(e)
                    ),
                ),
                Verdict::OutsideHours => (
                    OUTSIDE_WORKING_HOURS,
                    format!(
                        "the slot starting {} is outside the therapist's working hours",
                        rfc3339(occ.0)
                    ),
                ),
            };
            Some(HoursRefusal {
                code,
                message,
                therapist_id: id.clone(),
                occurrence: occ,
                suggestions: Vec::new(),
            })
        })
    })
}

/// Refuses a hold (every occurrence of a series) that falls outside the working hours
/// or into the time off of one of `user_ids` (409 with hints for the first refused
/// occurrence).
pub async fn check_hold(
    store: &Store,
    user_ids: &[&str],
    occurrences: &[(i64, i64)],
) -> ScheduleResult<()> {
    if occurrences.is_empty() {
        return Ok(());
    }
    let mut conn = store.pool().acquire().await?;
    let rules = rules_of(&mut conn, user_ids, window(occurrences)).await?;
    let Some(mut refusal) = first_refusal(&rules, occurrences) else {
        return Ok(());
    };
    refusal.suggestions = suggest_with(&mut conn, user_ids, refusal.occurrence, &rules).await?;
    tracing::info!(therapist_id = %refusal.therapist_id, code = refusal.code, "hold outside working hours");
    Err(ScheduleError::Hours(refusal))
}

/// Refuses a group session `[start_ms, end_ms)` outside the working hours or in the
/// time off of one of `therapist_ids` (409 `outside_working_hours` /
/// `therapist_time_off`, the message naming the therapist).
pub async fn check_group(
    conn: &mut AnyConnection,
    therapist_ids: &[&str],
    start_ms: i64,
    end_ms: i64,
) -> Result<(), ApiError> {
    let occurrence = [(start_ms, end_ms)];
    let rules = rules_of(conn, therapist_ids, (start_ms, end_ms)).await?;
    match first_refusal(&rules, &occurrence) {
        Some(refusal) => {
            tracing::info!(therapist_id = %refusal.therapist_id, code = refusal.code, "group session outside working hours");
            Err(refusal.into_api_error())
        }
        None => Ok(()),
    }
}

/// [`check_group`] on a connection of its own (a session being created).
pub async fn check_group_new(
    store: &Store,
    therapist_ids: &[&str],
    start_ms: i64,
    end_ms: i64,
) -> Result<(), ApiError> {
    let mut conn = store.pool().acquire().await?;
    check_group(&mut conn, therapist_ids, start_ms, end_ms).await
}
