//! Group therapy: editing a session that is still ahead (`pending_approval` or
//! `approved`). A new time sends the session back to its therapists: their
//! acceptances are re-opened and re-sent, and it is `pending_approval` until they all
//! accept again (which re-checks their availability); seated members keep their seats
//! and are told, with a warning when the new time overlaps their calendar. Fewer seats
//! than members already seated is refused. Every change is audited with before and after and told to the
//! people it concerns; the rules are in docs/GROUPS.md.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::groups::*;
use super::groups_fields::{self as fields, Place};
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::schedule::availability;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::group_edits::{self as edits, SessionFields};
use crate::store::group_seats as seats;
use crate::store::groups::{self as store, GroupSession};
use crate::store::notifications::{Notification, NotificationKind};

/// Body of `PATCH /api/group-sessions/{id}`: only the fields to change.
#[derive(Deserialize, ToSchema)]
pub struct UpdateGroupSession {
    /// 1–200 characters.
    title: Option<String>,
    /// At most 2000 characters; an empty string removes it.
    description: Option<String>,
    /// New start, RFC 3339, in the future. Re-opens the therapists' acceptances.
    scheduled_at: Option<String>,
    /// 15–180 minutes. Re-opens the therapists' acceptances.
    duration_minutes: Option<i64>,
    /// Seats, 2–50, not fewer than the members already seated.
    max_participants: Option<i64>,
    /// Virtual only: an external `https://` link; an empty string goes back to the
    /// TheraRoom room.
    meeting_link: Option<String>,
    /// In person only: the place (at most 200 characters).
    location: Option<String>,
    /// In person only: full address (at most 500 characters); empty removes it.
    location_address: Option<String>,
}

/// Result of an edit.
#[derive(Serialize, ToSchema)]
pub struct EditedGroupSession {
    session: GroupSessionView,
    invitations: Vec<InvitationView>,
    /// What changed: `title`, `description`, `time`, `capacity`, `place`.
    changed: Vec<String>,
    /// True when the edit sent the session back to `pending_approval`.
    reapproval_required: bool,
    /// Seated members whose calendars the new time overlaps (they keep their seat and
    /// are told; they may leave).
    members_with_conflicts: Vec<String>,
}

/// A session's editable state, compared before and after an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Editable {
    title: String,
    description: Option<String>,
    start_ms: i64,
    duration_minutes: i64,
    max_participants: i64,
    place: Place,
}

impl Editable {
    fn of(s: &GroupSession) -> Self {
        Editable {
            title: s.title.clone(),
            description: s.description.clone(),
            start_ms: s.start_ms,
            duration_minutes: s.duration_minutes,
            max_participants: s.max_participants,
            place: Place {
                meeting_link: s.meeting_link.clone(),
                location: s.location.clone(),
                location_address: s.location_address.clone(),
            },
        }
    }

    fn fields(&self) -> SessionFields<'_> {
        SessionFields {
            title: &self.title,
            description: self.description.as_deref(),
            meeting_link: self.place.meeting_link.as_deref(),
            location: self.place.location.as_deref(),
            location_address: self.place.location_address.as_deref(),
            start_ms: self.start_ms,
            duration_minutes: self.duration_minutes,
            max_participants: self.max_participants,
        }
    }

    /// The names of what differs from `before`.
    fn changes_from(&self, before: &Editable) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.title != before.title {
            changed.push("title");
        }
        if self.description != before.description {
            changed.push("description");
        }
        if (self.start_ms, self.duration_minutes) != (before.start_ms, before.duration_minutes) {
            changed.push("time");
        }
        if self.max_participants != before.max_participants {
            changed.push("capacity");
        }
        if self.place != before.place {
            changed.push("place");
        }
        changed
    }

    /// The audit view of the changed fields. The description is free text: only
    /// whether it is set is recorded.
    fn audit_view(&self, changed: &[&str]) -> Value {
        let mut v = json!({});
        for c in changed {
            match *c {
                "title" => v["title"] = json!(self.title),
                "description" => v["description_set"] = json!(self.description.is_some()),
                "time" => {
                    v["scheduled_at"] = json!(rfc3339(self.start_ms));
                    v["duration_minutes"] = json!(self.duration_minutes);
                }
                "capacity" => v["max_participants"] = json!(self.max_participants),
                _ => {
                    v["meeting_link"] = json!(self.place.meeting_link);
                    v["location"] = json!(self.place.location);
                    v["location_address"] = json!(self.place.location_address);
                }
            }
        }
        v
    }
}

impl UpdateGroupSession {
    fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.scheduled_at.is_none()
            && self.duration_minutes.is_none()
            && self.max_participants.is_none()
            && self.meeting_link.is_none()
            && self.location.is_none()
            && self.location_address.is_none()
    }

    /// The session after this edit, every given field checked like at creation.
    fn apply_to(&self, session: &GroupSession) -> ApiResult<Editable> {
        let mut next = Editable::of(session);
        if let Some(t) = &self.title {
            next.title = fields::title(t)?;
        }
        if let Some(d) = &self.description {
            next.description = fields::description(Some(d))?;
        }
        if let Some(at) = &self.scheduled_at {
            next.start_ms = fields::start(at)?;
        }
        if let Some(minutes) = self.duration_minutes {
            next.duration_minutes = fields::duration(minutes)?;
        }
        if let Some(seats) = self.max_participants {
            next.max_participants = fields::seats(seats)?;
        }
        let pick = |given: &Option<String>, old: &Option<String>| given.clone().or(old.clone());
        let current = next.place.clone();
        next.place = fields::place(
            &session.session_type,
            pick(&self.meeting_link, &current.meeting_link).as_deref(),
            pick(&self.location, &current.location).as_deref(),
            pick(&self.location_address, &current.location_address).as_deref(),
        )?;
        if next.max_participants < session.participant_count {
            return Err(ApiError::bad_request(
                "capacity_below_participants",
                format!(
                    "{} members already hold a seat: max_participants cannot be lower",
                    session.participant_count
                ),
            ));
        }
        Ok(next)
    }
}

/// Edits a session before it starts (its community's moderators, the moderator who
/// proposed it, the organization's administrators). A new time or duration re-opens
/// every acceptance and re-sends the invitations: the session is `pending_approval`
/// until all its therapists accept again. Therapists are told of every change,
/// seated members of a new time or place. Sending the current values changes
/// nothing.
#[utoipa::path(patch, path = "/api/group-sessions/{id}", tag = "group therapy", params(("id" = String, Path, description = "group session id")), request_body = UpdateGroupSession, security(("bearer" = [])),
    responses((status = 200, body = EditedGroupSession), (status = 400, body = crate::error::ErrorBody, description = "empty_update, invalid_title, invalid_description, invalid_scheduled_at, scheduled_in_past, invalid_duration, invalid_max_participants, capacity_below_participants, invalid_meeting_link, location_required, invalid_location"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_moderator"), (status = 404, body = crate::error::ErrorBody, description = "group_session_not_found"), (status = 409, body = crate::error::ErrorBody, description = "session_cancelled, session_completed, session_started, outside_working_hours, therapist_time_off (a therapist of the team, new time)")))]
pub async fn update_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateGroupSession>,
) -> ApiResult<Json<EditedGroupSession>> {
    let access = visible_session(&state, &caller, &id).await?;
    if !(access.moderates(&caller) || access.is_admin) {
        return Err(not_a_moderator());
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_update",
            "give at least one field to change",
        ));
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let before = reload(&mut tx, &id).await?;
    if !matches!(before.status.as_str(), "pending_approval" | "approved") {
        return Err(state_conflict(&before));
    }
    if before.start_ms <= now_ms() {
        return Err(ApiError::conflict(
            "session_started",
            "the session has already started",
        ));
    }
    let next = body.apply_to(&before)?;
    let old = Editable::of(&before);
    let changed = next.changes_from(&old);
    if changed.contains(&"time") {
        // Like a proposal: the new time must be inside the working hours of every
        // therapist still on the team.
        let team = store::team_therapist_ids(&mut tx, &id).await?;
        let team: Vec<&str> = team.iter().map(String::as_str).collect();
        let end_ms = next.start_ms + next.duration_minutes * 60_000;
        super::schedule_hours::check_group(&mut tx, &team, next.start_ms, end_ms).await?;
    }
    let mut sent = Vec::new();
    let mut clashing = Vec::new();
    if !changed.is_empty() {
        edits::update_fields(&mut tx, &id, &next.fields()).await?;
        audit::record(
            &mut tx,
            AuditEntry::by(
                &caller,
                Some(&before.organization_id),
                "group_session.update",
                ("group_session", &id),
            )
            .before(old.audit_view(&changed))
            .after(next.audit_view(&changed)),
        )
        .await?;
        let session = reload(&mut tx, &id).await?;
        if changed.contains(&"time") {
            reopen(&mut tx, &mut sent, &caller, &before).await?;
            clashing = members_now_busy(&mut tx, &session).await?;
        }
        let session = reload(&mut tx, &id).await?;
        let told = Told {
            changed: &changed,
            clashing: &clashing,
        };
        tell_concerned(&mut tx, &mut sent, &caller, &session, told).await?;
        super::groups_video::follow_session(&mut tx, &caller, &session).await?;
    }
    let session = reload(&mut tx, &id).await?;
    let invitations = store::invitations_of(&mut tx, &id).await?;
    tx.commit().await?;
    push(&state, &sent);
    tracing::info!(group_session_id = %id, changed = ?changed, "group session edited");
    Ok(Json(EditedGroupSession {
        reapproval_required: before.status == "approved" && session.status == "pending_approval",
        session: session_view(&session),
        invitations: invitations
            .iter()
            .map(|i| invitation_view(i, true))
            .collect(),
        changed: changed.into_iter().map(str::to_string).collect(),
        members_with_conflicts: clashing,
    }))
}

/// A new time: every acceptance is re-opened, every invitation not declined is sent
/// again, and an approved session goes back to `pending_approval`.
async fn reopen(
    conn: &mut AnyConnection,
    sent: &mut Vec<Notification>,
    caller: &Caller,
    before: &GroupSession,
) -> ApiResult<()> {
    let invitations = store::invitations_of(conn, &before.id).await?;
    edits::reopen_acceptances(conn, &before.id).await?;
    if before.status == "approved" {
        store::set_status(conn, &before.id, "pending_approval").await?;
        audit::record(
            &mut *conn,
            AuditEntry::by(
                caller,
                Some(&before.organization_id),
                "group_session.reapproval",
                ("group_session", &before.id),
            )
            .before(json!({"status": "approved"}))
            .after(json!({"status": "pending_approval"})),
        )
        .await?;
    }
    let session = reload(conn, &before.id).await?;
    for inv in invitations.iter().filter(|i| i.status != "declined") {
        let invitation = (
            inv.id.as_str(),
            inv.therapist_id.as_str(),
            Some(inv.status.as_str()),
        );
        send_invitation(
            conn,
            sent,
            caller,
            &session,
            invitation,
            InviteReason::Rescheduled,
        )
        .await?;
    }
    Ok(())
}

/// Seated members whose calendars overlap the session's (new) time, apart from the
/// session itself: the application's one availability check, per member.
async fn members_now_busy(
    conn: &mut AnyConnection,
    session: &GroupSession,
) -> ApiResult<Vec<String>> {
    let mut clashing = Vec::new();
    for member in seats::seated_user_ids(conn, &session.id).await? {
        let busy =
            availability::conflicts(conn, &[member.as_str()], session.start_ms, session.end_ms)
                .await?;
        if busy.iter().any(|b| b.source_id != session.id) {
            clashing.push(member);
        }
    }
    Ok(clashing)
}

/// What an edit changed, and which seated members the new time clashes for.
struct Told<'a> {
    changed: &'a [&'a str],
    clashing: &'a [String],
}

/// Tells the people an edit concerns, except its author: the moderator who proposed
/// the session, its therapists (not declined; after a new time they have their
/// re-sent invitation instead), and, for a new time or place, its seated members
/// (those whose calendars the new time overlaps are told so).
async fn tell_concerned(
    conn: &mut AnyConnection,
    sent: &mut Vec<Notification>,
    caller: &Caller,
    session: &GroupSession,
    told: Told<'_>,
) -> ApiResult<()> {
    let changed = told.changed;
    let rescheduled = changed.contains(&"time");
    let mut recipients = vec![session.created_by.clone()];
    if !rescheduled {
        recipients.extend(store::team_therapist_ids(conn, &session.id).await?);
    }
    if rescheduled || changed.contains(&"place") {
        recipients.extend(seats::seated_user_ids(conn, &session.id).await?);
    }
    let (clashing, others): (Vec<String>, Vec<String>) = recipients
        .into_iter()
        .partition(|r| told.clashing.contains(r));
    let text = format!(
        "\"{}\" changed ({}); it starts {}.",
        session.title,
        changed.join(", "),
        rfc3339(session.start_ms)
    );
    for (who, clash) in [(others, false), (clashing, true)] {
        let mut payload = session_payload(session);
        payload["changed"] = json!(changed);
        payload["duration_minutes"] = json!(session.duration_minutes);
        payload["schedule_conflict"] = json!(clash);
        let body = if clash {
            format!("{text} It now overlaps something else in your calendar.")
        } else {
            text.clone()
        };
        notify_each(
            conn,
            sent,
            &who,
            Some(&caller.sub),
            session,
            NotificationKind::GroupSessionUpdated,
            "Group session changed",
            &body,
            payload,
        )
        .await?;
    }
    Ok(())
}
