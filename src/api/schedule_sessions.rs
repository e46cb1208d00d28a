//! 1:1 scheduling, part 2: booked sessions. List and read (therapists
//! their own, clients their own read-only, administrators their organization's),
//! record attendance (cancelling: `schedule_cancel`; notes: [`super::schedule_notes`]), and the video
//! room of a session, open from a little before its start until its end.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::schedule::{
    managed_session, parse_opt_instant, session_view, visible_session, ScheduledSessionView,
};
use super::JsonBody;
use crate::auth::{Caller, Role};
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::policy::therapist_video_access;
use crate::rooms::open::{open_scheduled, ScheduledRoom};
use crate::schedule::write_tx;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::schedule::{self as store, SessionFilter};

/// Default minutes before the start when a session's video room opens.
pub const DEFAULT_JOIN_WINDOW_MINUTES: i64 = 10;

/// Minutes before the start when the video room opens: `THERAROOM_JOIN_WINDOW_MINUTES`
/// (0–1440), else [`DEFAULT_JOIN_WINDOW_MINUTES`].
pub fn join_window_minutes() -> i64 {
    std::env::var("THERAROOM_JOIN_WINDOW_MINUTES")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|m| (0..=1440).contains(m))
        .unwrap_or(DEFAULT_JOIN_WINDOW_MINUTES)
}

/// Query of the session listing.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct SessionsQuery {
    /// Only sessions ending after this instant (RFC 3339).
    start: Option<String>,
    /// Only sessions starting before this instant (RFC 3339).
    end: Option<String>,
    /// Only this therapist's sessions.
    therapist_id: Option<String>,
    /// Only this client's sessions.
    client_id: Option<String>,
    /// Only this status (`scheduled`, `completed`, `cancelled`).
    status: Option<String>,
    /// At most this many (1–500, default 200).
    limit: Option<i64>,
}

/// A list of sessions.
#[derive(Serialize, ToSchema)]
pub struct ScheduledSessionList {
    sessions: Vec<ScheduledSessionView>,
}

/// Lists booked sessions in time order: a therapist's own, a client's own, an
/// organization's for its administrators, any for super admins.
#[utoipa::path(get, path = "/api/schedule/sessions", tag = "schedule", params(SessionsQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = ScheduledSessionList),
        (status = 400, body = ErrorBody, description = "invalid_timestamp, invalid_status, invalid_limit"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden, not_own_calendar")))]
pub async fn list_scheduled_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionsQuery>,
) -> ApiResult<Json<ScheduledSessionList>> {
    let limit = q.limit.unwrap_or(200);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 500",
        ));
    }
    if let Some(status) = q.status.as_deref() {
        if !["scheduled", "completed", "cancelled"].contains(&status) {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status must be scheduled, completed or cancelled",
            ));
        }
    }
    let mut filter = SessionFilter {
        therapist_id: q.therapist_id.as_deref(),
        client_id: q.client_id.as_deref(),
        status: q.status.as_deref(),
        from_ms: parse_opt_instant("start", q.start.as_deref())?,
        to_ms: parse_opt_instant("end", q.end.as_deref())?,
        limit,
        ..SessionFilter::default()
    };
    match caller.role {
        Role::Therapist => {
            if filter.therapist_id.is_some_and(|t| t != caller.sub) {
                return Err(ApiError::forbidden(
                    "not_own_calendar",
                    "therapists see their own calendar only",
                ));
            }
            filter.therapist_id = Some(&caller.sub);
        }
        Role::Client => {
            if filter.client_id.is_some_and(|c| c != caller.sub) {
                return Err(ApiError::forbidden(
                    "forbidden",
                    "clients see their own sessions only",
                ));
            }
            filter.client_id = Some(&caller.sub);
        }
        Role::Organization | Role::Admin => {
            filter.organization_id =
                Some(caller.org_id.as_deref().ok_or_else(ApiError::wrong_role)?);
        }
        Role::SuperAdmin => {}
        Role::Guest => return Err(ApiError::wrong_role()),
    }
    let mut conn = state.store.pool().acquire().await?;
    let sessions = store::list_sessions(&mut conn, &filter).await?;
    Ok(Json(ScheduledSessionList {
        sessions: sessions.iter().map(session_view).collect(),
    }))
}

/// Reads one booked session (its therapist, its client, its organization's
/// administrators); 404 for anyone else.
#[utoipa::path(get, path = "/api/schedule/sessions/{id}", tag = "schedule",
    params(("id" = String, Path, description = "scheduled session id")), security(("bearer" = [])),
    responses((status = 200, body = ScheduledSessionView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "scheduled_session_not_found")))]
pub async fn get_scheduled_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduledSessionView>> {
    let s = visible_session(&state, &caller, &id).await?;
    Ok(Json(session_view(&s)))
}

/// Body of the attendance update.
#[derive(Deserialize, ToSchema)]
pub struct AttendanceBody {
    /// `attended` or `no_show` (the session then counts as completed; only once it has
    /// started), `late_cancel` (cancelled sessions only), or `unknown` (reset).
    attendance: String,
}

/// Records attendance. Audited with the state before and after.
#[utoipa::path(put, path = "/api/schedule/sessions/{id}/attendance", tag = "schedule",
    params(("id" = String, Path, description = "scheduled session id")), request_body = AttendanceBody, security(("bearer" = [])),
    responses((status = 200, body = ScheduledSessionView),
        (status = 400, body = ErrorBody, description = "invalid_attendance"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (clients)"),
        (status = 404, body = ErrorBody, description = "scheduled_session_not_found"),
        (status = 409, body = ErrorBody, description = "session_cancelled, session_not_started, session_not_cancelled")))]
pub async fn set_attendance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AttendanceBody>,
) -> ApiResult<Json<ScheduledSessionView>> {
    let s = managed_session(&state, &caller, &id).await?;
    let attendance = body.attendance.as_str();
    let now = now_ms();
    let status = match attendance {
        "attended" | "no_show" => {
            if s.status == "cancelled" {
                return Err(ApiError::conflict(
                    "session_cancelled",
                    "the session was cancelled",
                ));
            }
            if now < s.start_ms {
                return Err(ApiError::conflict(
                    "session_not_started",
                    "attendance is recorded once the session has started",
                ));
            }
            "completed"
        }
        "late_cancel" => {
            if s.status != "cancelled" {
                return Err(ApiError::conflict(
                    "session_not_cancelled",
                    "late_cancel applies to cancelled sessions",
                ));
            }
            "cancelled"
        }
        "unknown" => {
            if s.status == "completed" {
                "scheduled"
            } else {
                s.status.as_str()
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_attendance",
                "attendance must be unknown, attended, no_show or late_cancel",
            ))
        }
    };
    let mut tx = write_tx(&state.store, &[&s.therapist_id, &s.client_id]).await?;
    store::set_attendance(&mut tx, &s.id, attendance, status, now).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&s.organization_id),
            "schedule.session.attendance",
            ("scheduled_session", &s.id),
        )
        .before(json!({"status": s.status, "attendance": s.attendance}))
        .after(json!({"status": status, "attendance": attendance})),
    )
    .await?;
    let updated = store::session(&mut tx, &s.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(session_view(&updated)))
}

/// The video room of a booked session.
#[derive(Serialize, ToSchema)]
pub struct VideoLinkView {
    /// The room (video session) id, for the live-video path.
    session_id: String,
    /// Link to join the room.
    join_url: String,
    /// The booked session.
    scheduled_session_id: String,
    /// When the room closes.
    expires_at: String,
}

/// The video room of a booked session, for its therapist and its client, from
/// `THERAROOM_JOIN_WINDOW_MINUTES` (default 10) minutes before the start until the
/// end. The room is created on the first call (a restricted 1:1 room: only the
/// session's therapist and client may enter) and returned on the next ones.
#[utoipa::path(get, path = "/api/schedule/sessions/{id}/video", tag = "schedule",
    params(("id" = String, Path, description = "scheduled session id")), security(("bearer" = [])),
    responses((status = 200, body = VideoLinkView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "not_a_participant, therapist_disabled, organization_disabled"),
        (status = 404, body = ErrorBody, description = "scheduled_session_not_found"),
        (status = 409, body = ErrorBody, description = "too_early, session_over, session_cancelled")))]
pub async fn session_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<VideoLinkView>> {
    let s = visible_session(&state, &caller, &id).await?;
    if caller.sub != s.therapist_id && caller.sub != s.client_id {
        return Err(ApiError::forbidden(
            "not_a_participant",
            "only the session's therapist and client join its video room",
        ));
    }
    if s.status == "cancelled" {
        return Err(ApiError::conflict(
            "session_cancelled",
            "the session was cancelled",
        ));
    }
    let now = now_ms();
    let opens_at = s.start_ms - join_window_minutes() * 60_000;
    if now < opens_at {
        return Err(ApiError::conflict(
            "too_early",
            format!("the video room opens at {}", rfc3339(opens_at)),
        ));
    }
    if now >= s.end_ms {
        return Err(ApiError::conflict("session_over", "the session is over"));
    }
    therapist_video_access(&state.store, &s.therapist_id)
        .await?
        .require()?;
    let mut tx = write_tx(&state.store, &[&s.therapist_id, &s.client_id]).await?;
    let current = store::session(&mut tx, &s.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    let room_id = match &current.video_session_id {
        Some(room_id) => {
            tx.rollback().await?;
            room_id.clone()
        }
        None => {
            let room_id = open_scheduled(
                &mut tx,
                &caller,
                ScheduledRoom {
                    serves: "scheduled_session",
                    serves_id: &s.id,
                    name: &format!("Session with {} and {}", s.therapist_name, s.client_name),
                    kind: "instant",
                    therapist_id: &s.therapist_id,
                    organization_id: &s.organization_id,
                    max_participants: 2,
                    ends_at: s.end_ms,
                },
            )
            .await?;
            store::link_video(&mut tx, &s.id, &room_id, now).await?;
            tx.commit().await?;
            room_id
        }
    };
    let room = state
        .store
        .session(&room_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Json(VideoLinkView {
        session_id: room.id,
        join_url: format!("/join/{}", room.share_token),
        scheduled_session_id: s.id,
        expires_at: rfc3339(room.expires_at),
    }))
}
