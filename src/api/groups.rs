//! Group therapy sessions (seed 001): moderators propose sessions to a community and
//! invite its therapists; the session is approved once every invited therapist has
//! accepted; community members then join it, up to its capacity.
//!
//! States: `pending_approval` → `approved` (all invitations accepted) → `completed`,
//! and `cancelled` from either of the first two. Invitations: `pending` → `accepted`
//! or `declined`. Participants: `registered` → `attended` / `no_show`, or `cancelled`
//! when they leave.
//!
//! Accepting an invitation and joining go through the application's one availability
//! check ([`crate::schedule::availability::conflicts`]) inside a write transaction
//! that also holds the session's lock, so seats are never oversold and nobody is
//! double booked. Notifications are stored in the same transaction and pushed live
//! after the commit.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::extract::validate_name;
use super::groups_communities::{optional_text, visible_community};
use super::JsonBody;
use crate::auth::{Caller, Role};
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::policy::is_admin_of;
use crate::rooms::open::{open_scheduled, ScheduledRoom};
use crate::schedule::availability::{self, Busy};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::groups::{
    self as store, GroupParticipant, GroupSession, Invitation, NewGroupSession, SessionFilter,
};
use crate::store::notifications::{self, NewNotification, Notification, NotificationKind};
use crate::webhooks::events::Booking;
use crate::webhooks::{emit, EventType};

/// Most therapists one session may invite.
const MAX_INVITED_THERAPISTS: usize = 10;

// ---------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------

/// Body of `POST /api/group-sessions`.
#[derive(Deserialize, ToSchema)]
pub struct CreateGroupSession {
    /// 1–200 characters.
    title: String,
    /// At most 2000 characters.
    description: Option<String>,
    /// A community the caller moderates.
    community_id: String,
    /// `virtual` or `in_person`.
    session_type: String,
    /// Start, RFC 3339; must be in the future.
    scheduled_at: String,
    /// 15–180 minutes.
    duration_minutes: i64,
    /// Seats for members, 2–50.
    max_participants: i64,
    /// Virtual only: an external `https://` link; without one the session uses a
    /// TheraRoom room (`GET /api/group-sessions/{id}/video`).
    meeting_link: Option<String>,
    /// In person only, required: the place (at most 200 characters).
    location: Option<String>,
    /// In person only: full address (at most 500 characters).
    location_address: Option<String>,
    /// Therapists of the community to invite (1–10).
    therapist_ids: Vec<String>,
}

/// A group session as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct GroupSessionView {
    id: String,
    community_id: String,
    organization_id: String,
    /// The moderator who proposed it.
    created_by: String,
    title: String,
    description: Option<String>,
    /// `virtual` or `in_person`.
    session_type: String,
    meeting_link: Option<String>,
    location: Option<String>,
    location_address: Option<String>,
    scheduled_at: String,
    ends_at: String,
    duration_minutes: i64,
    max_participants: i64,
    participant_count: i64,
    seats_left: i64,
    /// `pending_approval`, `approved`, `cancelled` or `completed`.
    status: String,
    /// True once its TheraRoom video room exists.
    has_video_room: bool,
    created_at: String,
    cancelled_at: Option<String>,
}

/// A therapist invitation.
#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    id: String,
    session_id: String,
    therapist_id: String,
    therapist_name: String,
    /// `pending`, `accepted` or `declined`.
    status: String,
    /// The therapist's message (shown to moderators, administrators and the therapist).
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    invited_at: String,
    responded_at: Option<String>,
}

/// An invitation with its session.
#[derive(Serialize, ToSchema)]
pub struct InvitationWithSession {
    invitation: InvitationView,
    session: GroupSessionView,
}

/// A therapist's invitations.
#[derive(Serialize, ToSchema)]
pub struct InvitationList {
    invitations: Vec<InvitationWithSession>,
}

/// A member's registration.
#[derive(Serialize, ToSchema)]
pub struct ParticipantView {
    id: String,
    session_id: String,
    user_id: String,
    display_name: String,
    /// `registered`, `attended`, `no_show` or `cancelled`.
    attendance_status: String,
    joined_at: String,
    left_at: Option<String>,
}

/// Participants of a session.
#[derive(Serialize, ToSchema)]
pub struct ParticipantList {
    participants: Vec<ParticipantView>,
}

/// Result of creating a session.
#[derive(Serialize, ToSchema)]
pub struct CreatedGroupSession {
    session: GroupSessionView,
    invitations: Vec<InvitationView>,
    invitations_sent: usize,
}

/// A list of group sessions.
#[derive(Serialize, ToSchema)]
pub struct GroupSessionList {
    sessions: Vec<GroupSessionView>,
}

/// One session with its invitations and the caller's place in it.
#[derive(Serialize, ToSchema)]
pub struct GroupSessionDetail {
    session: GroupSessionView,
    invitations: Vec<InvitationView>,
    /// The caller's role in the community (`member`, `moderator`) or null.
    my_community_role: Option<String>,
    /// The caller's registration, if any.
    my_participation: Option<ParticipantView>,
}

/// Body of the invitation response.
#[derive(Deserialize, ToSchema)]
pub struct RespondToInvitation {
    /// `accept` or `decline`.
    action: String,
    /// Optional message (at most 1000 characters), e.g. why the therapist declines.
    message: Option<String>,
}

/// Result of an invitation response.
#[derive(Serialize, ToSchema)]
pub struct InvitationResponse {
    invitation: InvitationView,
    /// The session's status after the response (`approved` once all accepted).
    session_status: String,
}

/// Result of joining or leaving.
#[derive(Serialize, ToSchema)]
pub struct ParticipationResponse {
    participant: ParticipantView,
    session: GroupSessionView,
    message: String,
}

/// Result of a cancellation or completion.
#[derive(Serialize, ToSchema)]
pub struct SessionStatusResponse {
    session: GroupSessionView,
    message: String,
}

/// Body of the attendance update.
#[derive(Deserialize, ToSchema)]
pub struct SetAttendance {
    /// `attended`, `no_show` or `registered`.
    attendance_status: String,
}

/// The video room of a virtual group session.
#[derive(Serialize, ToSchema)]
pub struct GroupVideoRoom {
    /// The instant-session id of the room (for the live-video path).
    session_id: String,
    /// Page that joins the room.
    join_url: String,
    group_session_id: String,
    expires_at: String,
}

/// Query of the session listings.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct SessionQuery {
    /// Only this community.
    community_id: Option<String>,
    /// Only this status.
    status: Option<String>,
    /// Only sessions that have not ended yet.
    #[serde(default)]
    upcoming: bool,
}

impl SessionQuery {
    /// The store filter this query asks for, after checking the status name.
    fn filter(&self) -> ApiResult<SessionFilter<'_>> {
        match self.status.as_deref() {
            None | Some("pending_approval" | "approved" | "cancelled" | "completed") => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_status",
                    "status must be pending_approval, approved, cancelled or completed",
                ))
            }
        }
        Ok(SessionFilter {
            community_id: self.community_id.as_deref(),
            status: self.status.as_deref(),
            not_ended_at: self.upcoming.then(now_ms),
        })
    }
}

/// Query of the invitation listing.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct InvitationQuery {
    /// `pending`, `accepted` or `declined`.
    status: Option<String>,
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

fn session_view(s: &GroupSession) -> GroupSessionView {
    GroupSessionView {
        id: s.id.clone(),
        community_id: s.community_id.clone(),
        organization_id: s.organization_id.clone(),
        created_by: s.created_by.clone(),
        title: s.title.clone(),
        description: s.description.clone(),
        session_type: s.session_type.clone(),
        meeting_link: s.meeting_link.clone(),
        location: s.location.clone(),
        location_address: s.location_address.clone(),
        scheduled_at: rfc3339(s.start_ms),
        ends_at: rfc3339(s.end_ms),
        duration_minutes: s.duration_minutes,
        max_participants: s.max_participants,
        participant_count: s.participant_count,
        seats_left: (s.max_participants - s.participant_count).max(0),
        status: s.status.clone(),
        has_video_room: s.video_session_id.is_some(),
        created_at: rfc3339(s.created_at),
        cancelled_at: s.cancelled_at.map(rfc3339),
    }
}

fn invitation_view(i: &Invitation, with_message: bool) -> InvitationView {
    InvitationView {
        id: i.id.clone(),
        session_id: i.session_id.clone(),
        therapist_id: i.therapist_id.clone(),
        therapist_name: i.therapist_name.clone(),
        status: i.status.clone(),
        message: if with_message {
            i.message.clone()
        } else {
            None
        },
        invited_at: rfc3339(i.invited_at),
        responded_at: i.responded_at.map(rfc3339),
    }
}

fn participant_view(p: &GroupParticipant) -> ParticipantView {
    ParticipantView {
        id: p.id.clone(),
        session_id: p.session_id.clone(),
        user_id: p.user_id.clone(),
        display_name: p.display_name.clone(),
        attendance_status: p.attendance_status.clone(),
        joined_at: rfc3339(p.joined_at),
        left_at: p.left_at.map(rfc3339),
    }
}

fn session_not_found() -> ApiError {
    ApiError::not_found("group_session_not_found", "group session not found")
}

fn not_a_moderator() -> ApiError {
    ApiError::forbidden(
        "not_a_moderator",
        "only the community's moderators and the organization's administrators may do this",
    )
}

/// The 409 for a session that is not in a state that allows the action.
fn state_conflict(session: &GroupSession) -> ApiError {
    match session.status.as_str() {
        "cancelled" => ApiError::conflict("session_cancelled", "the session was cancelled"),
        "completed" => ApiError::conflict("session_completed", "the session is completed"),
        "pending_approval" => ApiError::conflict(
            "session_not_open",
            "the session is waiting for its therapists to accept",
        ),
        _ => ApiError::conflict("session_started", "the session has already started"),
    }
}

fn schedule_conflict(busy: &[Busy]) -> ApiError {
    let first = &busy[0];
    ApiError::conflict(
        "schedule_conflict",
        format!(
            "this conflicts with your schedule ({} from {} to {})",
            first.source_id,
            rfc3339(first.start_ms),
            rfc3339(first.end_ms)
        ),
    )
}

/// What the caller is to a session.
struct Access {
    session: GroupSession,
    community_role: Option<String>,
    invitation: Option<Invitation>,
    is_admin: bool,
}

impl Access {
    /// A moderator of the session's community, or the moderator who proposed it.
    fn moderates(&self, caller: &Caller) -> bool {
        self.community_role.as_deref() == Some("moderator") || self.session.created_by == caller.sub
    }
    /// Moderators, administrators, and accepted therapists run the session.
    fn leads(&self, caller: &Caller) -> bool {
        self.moderates(caller)
            || self.is_admin
            || self
                .invitation
                .as_ref()
                .is_some_and(|i| i.status == "accepted")
    }
}

/// Loads a session of the caller's organization (super admins: any), or 404
/// `group_session_not_found`; guests get 403 `forbidden`.
async fn org_session(state: &AppState, caller: &Caller, id: &str) -> ApiResult<GroupSession> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let session = state
        .store
        .group_session(id)
        .await?
        .ok_or_else(session_not_found)?;
    if caller.role != Role::SuperAdmin
        && caller.org_id.as_deref() != Some(session.organization_id.as_str())
    {
        return Err(session_not_found());
    }
    Ok(session)
}

/// Loads a session the caller may see: the organization's administrators, the
/// community's members and the invited therapists. Anyone else (including other
/// organizations) gets 404 `group_session_not_found`.
async fn visible_session(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Access> {
    let session = org_session(state, caller, id).await?;
    let is_admin = is_admin_of(caller, &session.organization_id);
    let community_role = state
        .store
        .community_role(&session.community_id, &caller.sub)
        .await?;
    let invitation = if caller.role == Role::Therapist {
        state
            .store
            .group_invitations(&session.id)
            .await?
            .into_iter()
            .find(|i| i.therapist_id == caller.sub)
    } else {
        None
    };
    if !(is_admin || community_role.is_some() || invitation.is_some()) {
        return Err(session_not_found());
    }
    Ok(Access {
        session,
        community_role,
        invitation,
        is_admin,
    })
}

/// Stores one notification per recipient (skipping `skip` and duplicates).
#[allow(clippy::too_many_arguments)]
async fn notify_each(
    conn: &mut AnyConnection,
    out: &mut Vec<Notification>,
    recipients: &[String],
    skip: Option<&str>,
    session: &GroupSession,
    kind: NotificationKind,
    title: &str,
    body: &str,
    payload: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let mut seen: Vec<&str> = Vec::new();
    for user in recipients {
        if Some(user.as_str()) == skip || seen.contains(&user.as_str()) {
            continue;
        }
        seen.push(user);
        out.push(
            notifications::create(
                &mut *conn,
                NewNotification {
                    user_id: user,
                    organization_id: Some(&session.organization_id),
                    kind,
                    title,
                    body,
                    payload: payload.clone(),
                },
            )
            .await?,
        );
    }
    Ok(())
}

/// Pushes committed notifications to their recipients' live connections.
fn push(state: &AppState, sent: &[Notification]) {
    for n in sent {
        state.live.notify(&n.user_id, n.to_json());
    }
}

fn session_payload(s: &GroupSession) -> serde_json::Value {
    json!({
        "group_session_id": s.id,
        "community_id": s.community_id,
        "title": s.title,
        "scheduled_at": rfc3339(s.start_ms),
    })
}

async fn reload(conn: &mut AnyConnection, id: &str) -> ApiResult<GroupSession> {
    store::session_in(conn, id)
        .await?
        .ok_or_else(session_not_found)
}

// ---------------------------------------------------------------------------------
// Moderators
// ---------------------------------------------------------------------------------

/// Proposes a group session (community moderators): it starts `pending_approval` and
/// every invited therapist receives an invitation notification.
#[utoipa::path(post, path = "/api/group-sessions", tag = "group therapy", request_body = CreateGroupSession, security(("bearer" = [])),
    responses((status = 201, body = CreatedGroupSession), (status = 400, body = crate::error::ErrorBody, description = "invalid_title, invalid_description, invalid_session_type, invalid_scheduled_at, scheduled_in_past, invalid_duration, invalid_max_participants, invalid_meeting_link, location_required, invalid_location, therapists_required, too_many_therapists, therapist_not_in_community"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_moderator"), (status = 404, body = crate::error::ErrorBody, description = "community_not_found"), (status = 409, body = crate::error::ErrorBody, description = "outside_working_hours, therapist_time_off (an invited therapist)")))]
pub async fn create_group_session(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateGroupSession>,
) -> ApiResult<(StatusCode, Json<CreatedGroupSession>)> {
    let community = visible_community(&state, &caller, &body.community_id).await?;
    if state
        .store
        .community_role(&community.id, &caller.sub)
        .await?
        .as_deref()
        != Some("moderator")
    {
        return Err(ApiError::forbidden(
            "not_a_moderator",
            "only the community's moderators propose group sessions",
        ));
    }
    let title = validate_name(&body.title, 200, "invalid_title", "title")?;
    let description = optional_text(
        body.description.as_deref(),
        2000,
        "invalid_description",
        "description",
    )?;
    let session_type = match body.session_type.to_ascii_lowercase().as_str() {
        "virtual" => "virtual",
        "in_person" => "in_person",
        _ => {
            return Err(ApiError::bad_request(
                "invalid_session_type",
                "session_type must be virtual or in_person",
            ))
        }
    };
    let start_ms = chrono::DateTime::parse_from_rfc3339(body.scheduled_at.trim())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_scheduled_at",
                "scheduled_at must be an RFC 3339 date-time with an offset",
            )
        })?
        .timestamp_millis();
    if start_ms <= now_ms() {
        return Err(ApiError::bad_request(
            "scheduled_in_past",
            "the session must start in the future",
        ));
    }
    if !(15..=180).contains(&body.duration_minutes) {
        return Err(ApiError::bad_request(
            "invalid_duration",
            "duration_minutes must be between 15 and 180",
        ));
    }
    if !(2..=50).contains(&body.max_participants) {
        return Err(ApiError::bad_request(
            "invalid_max_participants",
            "max_participants must be between 2 and 50",
        ));
    }
    let (meeting_link, location, location_address) = if session_type == "virtual" {
        let link = body
            .meeting_link
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty());
        if let Some(link) = link {
            let valid = link.len() <= 500
                && (link.starts_with("https://") || link.starts_with("http://"))
                && link.len() > "https://".len()
                && !link.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                return Err(ApiError::bad_request(
                    "invalid_meeting_link",
                    "meeting_link must be an http(s) URL of at most 500 characters",
                ));
            }
        }
        (link.map(str::to_string), None, None)
    } else {
        if body.location.as_deref().is_none_or(|l| l.trim().is_empty()) {
            return Err(ApiError::bad_request(
                "location_required",
                "an in-person session needs a location",
            ));
        }
        let location = optional_text(
            body.location.as_deref(),
            200,
            "invalid_location",
            "location",
        )?;
        let address = optional_text(
            body.location_address.as_deref(),
            500,
            "invalid_location",
            "location_address",
        )?;
        (None, location, address)
    };
    let mut therapist_ids: Vec<String> = Vec::new();
    for id in &body.therapist_ids {
        let id = id.trim().to_string();
        if !id.is_empty() && !therapist_ids.contains(&id) {
            therapist_ids.push(id);
        }
    }
    if therapist_ids.is_empty() {
        return Err(ApiError::bad_request(
            "therapists_required",
            "invite at least one therapist",
        ));
    }
    if therapist_ids.len() > MAX_INVITED_THERAPISTS {
        return Err(ApiError::bad_request(
            "too_many_therapists",
            format!("invite at most {MAX_INVITED_THERAPISTS} therapists"),
        ));
    }
    let found = state
        .store
        .community_therapists(&community.id, &therapist_ids)
        .await?;
    let missing: Vec<&String> = therapist_ids
        .iter()
        .filter(|id| !found.contains(id))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(
            "therapist_not_in_community",
            format!(
                "not therapists of this community: {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    let end_ms = start_ms + body.duration_minutes * 60_000;
    let invited: Vec<&str> = therapist_ids.iter().map(String::as_str).collect();
    super::schedule_hours::check_group_new(&state.store, &invited, start_ms, end_ms).await?;
    let mut tx = state.store.pool().begin().await?;
    let id = store::insert_session(
        &mut tx,
        &NewGroupSession {
            community_id: &community.id,
            organization_id: &community.organization_id,
            created_by: &caller.sub,
            title: &title,
            description: description.as_deref(),
            session_type,
            meeting_link: meeting_link.as_deref(),
            location: location.as_deref(),
            location_address: location_address.as_deref(),
            start_ms,
            duration_minutes: body.duration_minutes,
            max_participants: body.max_participants,
        },
    )
    .await?;
    for therapist in &therapist_ids {
        store::insert_invitation(&mut tx, &id, therapist).await?;
    }
    let session = reload(&mut tx, &id).await?;
    let invitations = store::invitations_of(&mut tx, &id).await?;
    let mut sent = Vec::new();
    let body_text = format!(
        "You are invited to co-lead \"{}\" on {}.",
        session.title,
        rfc3339(session.start_ms)
    );
    for inv in &invitations {
        audit::record(
            &mut tx,
            AuditEntry::by(
                &caller,
                Some(&session.organization_id),
                "group_session.invitation.create",
                ("group_session_invitation", &inv.id),
            )
            .after(json!({
                "status": inv.status,
                "group_session_id": session.id,
                "therapist_id": inv.therapist_id,
            })),
        )
        .await?;
        let mut payload = session_payload(&session);
        payload["invitation_id"] = json!(inv.id);
        notify_each(
            &mut tx,
            &mut sent,
            std::slice::from_ref(&inv.therapist_id),
            None,
            &session,
            NotificationKind::GroupSessionInvitation,
            "Group session invitation",
            &body_text,
            payload,
        )
        .await?;
    }
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.create",
            ("group_session", &session.id),
        )
        .after(json!({
            "status": session.status,
            "community_id": session.community_id,
            "scheduled_at": rfc3339(session.start_ms),
            "therapist_ids": therapist_ids,
        })),
    )
    .await?;
    tx.commit().await?;
    push(&state, &sent);
    tracing::info!(group_session_id = %session.id, community_id = %community.id, "group session proposed");
    Ok((
        StatusCode::CREATED,
        Json(CreatedGroupSession {
            session: session_view(&session),
            invitations_sent: invitations.len(),
            invitations: invitations
                .iter()
                .map(|i| invitation_view(i, true))
                .collect(),
        }),
    ))
}

/// Cancels a session (its community's moderators, the organization's
/// administrators). Everyone concerned is notified; its video room is ended.
#[utoipa::path(delete, path = "/api/group-sessions/{id}", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = SessionStatusResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_moderator"), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_already_cancelled, session_completed")))]
pub async fn cancel_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionStatusResponse>> {
    let access = visible_session(&state, &caller, &id).await?;
    if !(access.moderates(&caller) || access.is_admin) {
        return Err(not_a_moderator());
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let before = reload(&mut tx, &id).await?;
    match before.status.as_str() {
        "cancelled" => {
            return Err(ApiError::conflict(
                "session_already_cancelled",
                "the session is already cancelled",
            ))
        }
        "completed" => return Err(state_conflict(&before)),
        _ => {}
    }
    store::set_status(&mut tx, &id, "cancelled").await?;
    let booking = Booking::group(&id, None, &caller.sub, (before.start_ms, before.end_ms));
    emit(
        &mut tx,
        &before.organization_id,
        EventType::BookingCancelled,
        &booking,
    )
    .await?;
    let ended_room = match &before.video_session_id {
        Some(room) => crate::rooms::end::close_in(&mut tx, room, "group_session_cancelled")
            .await?
            .then(|| room.clone()),
        None => None,
    };
    let session = reload(&mut tx, &id).await?;
    let mut recipients: Vec<String> = store::invitations_of(&mut tx, &id)
        .await?
        .into_iter()
        .filter(|i| i.status != "declined")
        .map(|i| i.therapist_id)
        .collect();
    recipients.extend(store::seated_user_ids(&mut tx, &id).await?);
    recipients.push(session.created_by.clone());
    let mut sent = Vec::new();
    notify_each(
        &mut tx,
        &mut sent,
        &recipients,
        Some(&caller.sub),
        &session,
        NotificationKind::GroupSessionCancelled,
        "Group session cancelled",
        &format!("\"{}\" has been cancelled.", session.title),
        session_payload(&session),
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.cancel",
            ("group_session", &session.id),
        )
        .before(json!({"status": before.status}))
        .after(json!({"status": session.status})),
    )
    .await?;
    tx.commit().await?;
    if let Some(room) = ended_room {
        state.live.session_ended(&room);
    }
    push(&state, &sent);
    tracing::info!(group_session_id = %session.id, "group session cancelled");
    Ok(Json(SessionStatusResponse {
        session: session_view(&session),
        message: "the session has been cancelled".into(),
    }))
}

/// Marks an approved session completed once it has started (moderators,
/// administrators, accepted therapists).
#[utoipa::path(post, path = "/api/group-sessions/{id}/complete", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = SessionStatusResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_not_started, session_not_open, session_cancelled, session_completed")))]
pub async fn complete_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionStatusResponse>> {
    let access = visible_session(&state, &caller, &id).await?;
    if !access.leads(&caller) {
        return Err(ApiError::forbidden(
            "forbidden",
            "only the session's moderators and therapists complete it",
        ));
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let before = reload(&mut tx, &id).await?;
    if before.status != "approved" {
        return Err(state_conflict(&before));
    }
    if before.start_ms > now_ms() {
        return Err(ApiError::conflict(
            "session_not_started",
            "the session has not started yet",
        ));
    }
    store::set_status(&mut tx, &id, "completed").await?;
    let session = reload(&mut tx, &id).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.complete",
            ("group_session", &session.id),
        )
        .before(json!({"status": before.status}))
        .after(json!({"status": session.status})),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(SessionStatusResponse {
        session: session_view(&session),
        message: "the session is completed".into(),
    }))
}

// ---------------------------------------------------------------------------------
// Listing and reading
// ---------------------------------------------------------------------------------

/// Lists the sessions of the caller's communities (members see approved, cancelled
/// and completed ones; moderators also pending ones); organization administrators
/// see all of their organization's.
#[utoipa::path(get, path = "/api/group-sessions", tag = "group therapy", params(SessionQuery), security(("bearer" = [])),
    responses((status = 200, body = GroupSessionList), (status = 400, body = crate::error::ErrorBody, description = "invalid_status"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_member"), (status = 404, body = crate::error::ErrorBody, description = "community_not_found")))]
pub async fn list_group_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
) -> ApiResult<Json<GroupSessionList>> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let filter = q.filter()?;
    let org_admin = caller.role.is_org_admin() && caller.org_id.is_some();
    if let Some(community_id) = q.community_id.as_deref() {
        let community = visible_community(&state, &caller, community_id).await?;
        if !is_admin_of(&caller, &community.organization_id)
            && state
                .store
                .community_role(&community.id, &caller.sub)
                .await?
                .is_none()
        {
            return Err(ApiError::forbidden(
                "not_a_member",
                "you are not a member of this community",
            ));
        }
    }
    let sessions = if org_admin {
        let org = caller.org_id.as_deref().unwrap_or_default();
        state
            .store
            .group_sessions_of_organization(org, &filter)
            .await?
    } else {
        let moderated: Vec<String> = state
            .store
            .communities_of_member(&caller.sub)
            .await?
            .into_iter()
            .filter(|c| c.my_role.as_deref() == Some("moderator"))
            .map(|c| c.community.id)
            .collect();
        state
            .store
            .group_sessions_for_member(&caller.sub, &filter)
            .await?
            .into_iter()
            .filter(|s| s.status != "pending_approval" || moderated.contains(&s.community_id))
            .collect()
    };
    Ok(Json(GroupSessionList {
        sessions: sessions.iter().map(session_view).collect(),
    }))
}

/// Lists the sessions the caller has joined (registrations not cancelled).
#[utoipa::path(get, path = "/api/group-sessions/my-sessions", tag = "group therapy", params(SessionQuery), security(("bearer" = [])),
    responses((status = 200, body = GroupSessionList), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn my_group_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
) -> ApiResult<Json<GroupSessionList>> {
    if caller.role == Role::Guest {
        return Err(ApiError::wrong_role());
    }
    let filter = q.filter()?;
    let sessions = state
        .store
        .group_sessions_joined_by(&caller.sub, &filter)
        .await?;
    Ok(Json(GroupSessionList {
        sessions: sessions.iter().map(session_view).collect(),
    }))
}

/// Reads one session with its invitations and the caller's registration.
#[utoipa::path(get, path = "/api/group-sessions/{id}", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = GroupSessionDetail), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupSessionDetail>> {
    let access = visible_session(&state, &caller, &id).await?;
    let with_messages = access.moderates(&caller) || access.is_admin;
    let invitations = state.store.group_invitations(&id).await?;
    let mine = state.store.group_participant_of(&id, &caller.sub).await?;
    Ok(Json(GroupSessionDetail {
        session: session_view(&access.session),
        invitations: invitations
            .iter()
            .map(|i| invitation_view(i, with_messages || i.therapist_id == caller.sub))
            .collect(),
        my_community_role: access.community_role,
        my_participation: mine.as_ref().map(participant_view),
    }))
}

/// Lists a session's participants with their attendance (moderators,
/// administrators, accepted therapists).
#[utoipa::path(get, path = "/api/group-sessions/{id}/participants", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = ParticipantList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_group_participants(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ParticipantList>> {
    let access = visible_session(&state, &caller, &id).await?;
    if !access.leads(&caller) {
        return Err(ApiError::forbidden(
            "forbidden",
            "only the session's moderators and therapists see its participants",
        ));
    }
    let participants = state.store.group_participants(&id).await?;
    Ok(Json(ParticipantList {
        participants: participants.iter().map(participant_view).collect(),
    }))
}

// ---------------------------------------------------------------------------------
// Therapists
// ---------------------------------------------------------------------------------

/// Lists the calling therapist's invitations, soonest session first.
#[utoipa::path(get, path = "/api/group-sessions/therapist/invitations", tag = "group therapy", params(InvitationQuery), security(("bearer" = [])),
    responses((status = 200, body = InvitationList), (status = 400, body = crate::error::ErrorBody, description = "invalid_status"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "forbidden (not a therapist)")))]
pub async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InvitationQuery>,
) -> ApiResult<Json<InvitationList>> {
    if caller.role != Role::Therapist {
        return Err(ApiError::wrong_role());
    }
    let status = q.status.as_deref().map(str::to_ascii_lowercase);
    if !matches!(
        status.as_deref(),
        None | Some("pending" | "accepted" | "declined")
    ) {
        return Err(ApiError::bad_request(
            "invalid_status",
            "status must be pending, accepted or declined",
        ));
    }
    let rows = state
        .store
        .invitations_of_therapist(&caller.sub, status.as_deref())
        .await?;
    Ok(Json(InvitationList {
        invitations: rows
            .iter()
            .map(|(i, s)| InvitationWithSession {
                invitation: invitation_view(i, true),
                session: session_view(s),
            })
            .collect(),
    }))
}

/// Lists the sessions the calling therapist co-leads (accepted invitations).
#[utoipa::path(get, path = "/api/group-sessions/therapist/sessions", tag = "group therapy", params(SessionQuery), security(("bearer" = [])),
    responses((status = 200, body = GroupSessionList), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn therapist_group_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
) -> ApiResult<Json<GroupSessionList>> {
    if caller.role != Role::Therapist {
        return Err(ApiError::wrong_role());
    }
    let filter = q.filter()?;
    let sessions = state
        .store
        .group_sessions_led_by(&caller.sub, &filter)
        .await?;
    Ok(Json(GroupSessionList {
        sessions: sessions.iter().map(session_view).collect(),
    }))
}

/// Accepts or declines an invitation. Accepting is refused with 409
/// `schedule_conflict` when the session overlaps the therapist's schedule; when every
/// invited therapist has accepted, the session becomes `approved` and the community
/// is told. A decline (with its optional message) is reported to the moderator.
#[utoipa::path(post, path = "/api/group-sessions/therapist/invitations/{id}/respond", tag = "group therapy", params(("id" = String, Path, description = "invitation id")), request_body = RespondToInvitation, security(("bearer" = [])),
    responses((status = 200, body = InvitationResponse), (status = 400, body = crate::error::ErrorBody, description = "invalid_action, invalid_message"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "forbidden (not a therapist)"), (status = 404, body = crate::error::ErrorBody, description = "invitation_not_found"), (status = 409, body = crate::error::ErrorBody, description = "schedule_conflict, outside_working_hours, therapist_time_off, invitation_already_answered, session_cancelled, session_completed, session_started")))]
pub async fn respond_to_invitation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RespondToInvitation>,
) -> ApiResult<Json<InvitationResponse>> {
    if caller.role != Role::Therapist {
        return Err(ApiError::wrong_role());
    }
    let accept = match body.action.trim().to_ascii_lowercase().as_str() {
        "accept" => true,
        "decline" => false,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_action",
                "action must be accept or decline",
            ))
        }
    };
    let message = optional_text(body.message.as_deref(), 1000, "invalid_message", "message")?;
    let not_found = || ApiError::not_found("invitation_not_found", "invitation not found");
    let invitation = state
        .store
        .group_invitation(&id)
        .await?
        .filter(|i| i.therapist_id == caller.sub)
        .ok_or_else(not_found)?;

    let mut tx = crate::schedule::write_tx(&state.store, &[caller.sub.as_str()]).await?;
    store::lock_session(&mut tx, state.store.backend(), &invitation.session_id).await?;
    let session = reload(&mut tx, &invitation.session_id).await?;
    let current = store::invitations_of(&mut tx, &session.id)
        .await?
        .into_iter()
        .find(|i| i.id == invitation.id)
        .ok_or_else(not_found)?;
    if session.status == "cancelled" || session.status == "completed" {
        return Err(state_conflict(&session));
    }
    if session.start_ms <= now_ms() {
        return Err(ApiError::conflict(
            "session_started",
            "the session has already started",
        ));
    }
    if current.status != "pending" {
        return Err(ApiError::conflict(
            "invitation_already_answered",
            format!("you have already {} this invitation", current.status),
        ));
    }
    if accept {
        let busy = availability::conflicts(
            &mut tx,
            &[caller.sub.as_str()],
            session.start_ms,
            session.end_ms,
        )
        .await?;
        if !busy.is_empty() {
            return Err(schedule_conflict(&busy));
        }
        let me = [caller.sub.as_str()];
        super::schedule_hours::check_group(&mut tx, &me, session.start_ms, session.end_ms).await?;
    }
    let status = if accept { "accepted" } else { "declined" };
    store::answer_invitation(&mut tx, &invitation.id, status, message.as_deref()).await?;
    let mut sent = Vec::new();
    let mut payload = session_payload(&session);
    payload["invitation_id"] = json!(invitation.id);
    payload["therapist_id"] = json!(caller.sub);
    if !accept {
        payload["message"] = json!(message);
    }
    let (kind, title, text) = if accept {
        (
            NotificationKind::GroupSessionInvitationAccepted,
            "Invitation accepted",
            format!(
                "{} accepted to co-lead \"{}\".",
                invitation.therapist_name, session.title
            ),
        )
    } else {
        (
            NotificationKind::GroupSessionInvitationDeclined,
            "Invitation declined",
            match &message {
                Some(m) => format!(
                    "{} declined to co-lead \"{}\": {m}",
                    invitation.therapist_name, session.title
                ),
                None => format!(
                    "{} declined to co-lead \"{}\".",
                    invitation.therapist_name, session.title
                ),
            },
        )
    };
    notify_each(
        &mut tx,
        &mut sent,
        std::slice::from_ref(&session.created_by),
        None,
        &session,
        kind,
        title,
        &text,
        payload,
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            if accept {
                "group_session.invitation.accept"
            } else {
                "group_session.invitation.decline"
            },
            ("group_session_invitation", &invitation.id),
        )
        .before(json!({"status": "pending"}))
        .after(json!({"status": status, "message": message, "group_session_id": session.id})),
    )
    .await?;
    let invitations = store::invitations_of(&mut tx, &session.id).await?;
    let mut session_status = session.status.clone();
    if accept
        && session.status == "pending_approval"
        && invitations.iter().all(|i| i.status == "accepted")
    {
        store::set_status(&mut tx, &session.id, "approved").await?;
        session_status = "approved".into();
        let mut recipients = store::community_user_ids(&mut tx, &session.community_id).await?;
        recipients.push(session.created_by.clone());
        recipients.extend(invitations.iter().map(|i| i.therapist_id.clone()));
        notify_each(
            &mut tx,
            &mut sent,
            &recipients,
            None,
            &session,
            NotificationKind::GroupSessionApproved,
            "Group session approved",
            &format!(
                "\"{}\" on {} is open for joining.",
                session.title,
                rfc3339(session.start_ms)
            ),
            session_payload(&session),
        )
        .await?;
        audit::record(
            &mut tx,
            AuditEntry::by(
                &caller,
                Some(&session.organization_id),
                "group_session.approve",
                ("group_session", &session.id),
            )
            .before(json!({"status": "pending_approval"}))
            .after(json!({"status": "approved"})),
        )
        .await?;
    }
    let answered = invitations
        .iter()
        .find(|i| i.id == invitation.id)
        .cloned()
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    push(&state, &sent);
    tracing::info!(invitation_id = %invitation.id, status, "group invitation answered");
    Ok(Json(InvitationResponse {
        invitation: invitation_view(&answered, true),
        session_status,
    }))
}

// ---------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------

/// Joins an approved session of one of the caller's communities. Refused when the
/// session is full (409 `session_full`), conflicts with the caller's schedule (409
/// `schedule_conflict`), or the caller is not a member (403 `not_a_member`). The
/// seat count and the insert are atomic per session.
#[utoipa::path(post, path = "/api/group-sessions/{id}/join", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 201, body = ParticipationResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_member"), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "session_full, schedule_conflict, already_joined, session_not_open, session_cancelled, session_completed, session_started")))]
pub async fn join_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<ParticipationResponse>)> {
    let session = org_session(&state, &caller, &id).await?;
    if state
        .store
        .community_role(&session.community_id, &caller.sub)
        .await?
        .is_none()
    {
        return Err(ApiError::forbidden(
            "not_a_member",
            "only members of the session's community may join it",
        ));
    }
    let mut tx = crate::schedule::write_tx(&state.store, &[caller.sub.as_str()]).await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let session = reload(&mut tx, &id).await?;
    if session.status != "approved" {
        return Err(state_conflict(&session));
    }
    if session.start_ms <= now_ms() {
        return Err(ApiError::conflict(
            "session_started",
            "the session has already started",
        ));
    }
    let existing = store::participant_of(&mut tx, &id, &caller.sub).await?;
    if existing
        .as_ref()
        .is_some_and(|p| p.attendance_status != "cancelled")
    {
        return Err(ApiError::conflict(
            "already_joined",
            "you have already joined this session",
        ));
    }
    let full = || ApiError::conflict("session_full", "the session is full");
    if session.participant_count >= session.max_participants {
        return Err(full());
    }
    let busy = availability::conflicts(
        &mut tx,
        &[caller.sub.as_str()],
        session.start_ms,
        session.end_ms,
    )
    .await?;
    if !busy.is_empty() {
        return Err(schedule_conflict(&busy));
    }
    if !store::take_seat(
        &mut tx,
        &id,
        &caller.sub,
        session.max_participants,
        existing.as_ref(),
    )
    .await?
    {
        return Err(full());
    }
    let participant = store::participant_of(&mut tx, &id, &caller.sub)
        .await?
        .ok_or_else(ApiError::internal)?;
    let session = reload(&mut tx, &id).await?;
    let seat = Some((participant.id.as_str(), caller.sub.as_str()));
    let booking = Booking::group(&id, seat, &caller.sub, (session.start_ms, session.end_ms));
    emit(
        &mut tx,
        &session.organization_id,
        EventType::BookingCreated,
        &booking,
    )
    .await?;
    let mut recipients: Vec<String> = store::invitations_of(&mut tx, &id)
        .await?
        .into_iter()
        .filter(|i| i.status == "accepted")
        .map(|i| i.therapist_id)
        .collect();
    recipients.push(session.created_by.clone());
    let mut payload = session_payload(&session);
    payload["user_id"] = json!(caller.sub);
    payload["participant_count"] = json!(session.participant_count);
    let mut sent = Vec::new();
    notify_each(
        &mut tx,
        &mut sent,
        &recipients,
        Some(&caller.sub),
        &session,
        NotificationKind::GroupSessionMemberJoined,
        "New participant",
        &format!(
            "{} joined \"{}\" ({} of {} seats taken).",
            participant.display_name,
            session.title,
            session.participant_count,
            session.max_participants
        ),
        payload,
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.join",
            ("group_session_participant", &participant.id),
        )
        .before(json!({
            "attendance_status": existing.as_ref().map(|p| p.attendance_status.as_str()),
        }))
        .after(json!({
            "attendance_status": participant.attendance_status,
            "group_session_id": session.id,
            "user_id": participant.user_id,
        })),
    )
    .await?;
    tx.commit().await?;
    push(&state, &sent);
    tracing::info!(group_session_id = %session.id, participant_id = %participant.id, "group session joined");
    Ok((
        StatusCode::CREATED,
        Json(ParticipationResponse {
            participant: participant_view(&participant),
            session: session_view(&session),
            message: "you have joined the session".into(),
        }),
    ))
}

/// Leaves a session before it starts (the registration becomes `cancelled` and the
/// seat is freed).
#[utoipa::path(delete, path = "/api/group-sessions/{id}/leave", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = ParticipationResponse), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "group_session_not_found, not_joined"), (status = 409, body = crate::error::ErrorBody, description = "session_started, session_cancelled, session_completed")))]
pub async fn leave_group_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ParticipationResponse>> {
    visible_session(&state, &caller, &id).await?;
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let session = reload(&mut tx, &id).await?;
    let participant = store::participant_of(&mut tx, &id, &caller.sub)
        .await?
        .filter(|p| p.attendance_status == "registered")
        .ok_or_else(|| ApiError::not_found("not_joined", "you have not joined this session"))?;
    if session.status == "cancelled" || session.status == "completed" {
        return Err(state_conflict(&session));
    }
    if session.start_ms <= now_ms() {
        return Err(ApiError::conflict(
            "session_started",
            "the session has already started",
        ));
    }
    store::set_attendance(&mut tx, &participant.id, "cancelled").await?;
    let seat = Some((participant.id.as_str(), caller.sub.as_str()));
    let booking = Booking::group(&id, seat, &caller.sub, (session.start_ms, session.end_ms));
    emit(
        &mut tx,
        &session.organization_id,
        EventType::BookingCancelled,
        &booking,
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.leave",
            ("group_session_participant", &participant.id),
        )
        .before(json!({"attendance_status": participant.attendance_status}))
        .after(json!({
            "attendance_status": "cancelled",
            "group_session_id": session.id,
            "user_id": participant.user_id,
        })),
    )
    .await?;
    let participant = store::participant_of(&mut tx, &id, &caller.sub)
        .await?
        .ok_or_else(ApiError::internal)?;
    let session = reload(&mut tx, &id).await?;
    tx.commit().await?;
    tracing::info!(group_session_id = %session.id, participant_id = %participant.id, "group session left");
    Ok(Json(ParticipationResponse {
        participant: participant_view(&participant),
        session: session_view(&session),
        message: "you have left the session".into(),
    }))
}

/// Records a participant's attendance (`attended`, `no_show`, or back to
/// `registered`) — moderators, administrators and accepted therapists.
#[utoipa::path(put, path = "/api/group-sessions/{id}/participants/{participant_id}/attendance", tag = "group therapy",
    params(("id" = String, Path, description = "group session id"), ("participant_id" = String, Path, description = "participant id")),
    request_body = SetAttendance, security(("bearer" = [])),
    responses((status = 200, body = ParticipantView), (status = 400, body = crate::error::ErrorBody, description = "invalid_attendance_status"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "group_session_not_found, participant_not_found"), (status = 409, body = crate::error::ErrorBody, description = "registration_cancelled, session_not_open, session_cancelled")))]
pub async fn set_attendance(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, participant_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetAttendance>,
) -> ApiResult<Json<ParticipantView>> {
    let access = visible_session(&state, &caller, &id).await?;
    if !access.leads(&caller) {
        return Err(ApiError::forbidden(
            "forbidden",
            "only the session's moderators and therapists record attendance",
        ));
    }
    let status = body.attendance_status.trim().to_ascii_lowercase();
    if !matches!(status.as_str(), "attended" | "no_show" | "registered") {
        return Err(ApiError::bad_request(
            "invalid_attendance_status",
            "attendance_status must be attended, no_show or registered",
        ));
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let session = reload(&mut tx, &id).await?;
    if !matches!(session.status.as_str(), "approved" | "completed") {
        return Err(state_conflict(&session));
    }
    let before = store::participant_by_id(&mut tx, &participant_id)
        .await?
        .filter(|p| p.session_id == id)
        .ok_or_else(|| ApiError::not_found("participant_not_found", "participant not found"))?;
    if before.attendance_status == "cancelled" {
        return Err(ApiError::conflict(
            "registration_cancelled",
            "the participant left the session",
        ));
    }
    store::set_attendance(&mut tx, &participant_id, &status).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.attendance",
            ("group_session_participant", &participant_id),
        )
        .before(json!({"attendance_status": before.attendance_status}))
        .after(json!({"attendance_status": status})),
    )
    .await?;
    let after = store::participant_by_id(&mut tx, &participant_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(participant_view(&after)))
}

// ---------------------------------------------------------------------------------
// Video room
// ---------------------------------------------------------------------------------

/// The TheraRoom video room of a virtual group session, created on first use: a
/// restricted group room that admits only the session's accepted therapists, joined
/// members and moderator.
#[utoipa::path(get, path = "/api/group-sessions/{id}/video", tag = "group therapy", params(("id" = String, Path, description = "group session id")), security(("bearer" = [])),
    responses((status = 200, body = GroupVideoRoom), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_invited"), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "not_virtual, external_meeting_link, session_not_open, session_cancelled, session_completed, session_ended")))]
pub async fn group_video_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupVideoRoom>> {
    let access = visible_session(&state, &caller, &id).await?;
    let accepted = access
        .invitation
        .as_ref()
        .is_some_and(|i| i.status == "accepted");
    let seated = state
        .store
        .group_participant_of(&id, &caller.sub)
        .await?
        .is_some_and(|p| matches!(p.attendance_status.as_str(), "registered" | "attended"));
    if !(accepted || seated || access.session.created_by == caller.sub) {
        return Err(ApiError::forbidden(
            "not_invited",
            "only the session's therapists, participants and moderator enter its room",
        ));
    }
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), &id).await?;
    let session = reload(&mut tx, &id).await?;
    if session.session_type != "virtual" {
        return Err(ApiError::conflict(
            "not_virtual",
            "an in-person session has no video room",
        ));
    }
    if session.meeting_link.is_some() {
        return Err(ApiError::conflict(
            "external_meeting_link",
            "this session meets at its meeting_link",
        ));
    }
    if session.status != "approved" {
        return Err(state_conflict(&session));
    }
    if session.end_ms <= now_ms() {
        return Err(ApiError::conflict("session_ended", "the session has ended"));
    }
    let room_id = match session.video_session_id.clone() {
        Some(room) => room,
        None => {
            let therapists: Vec<Invitation> = store::invitations_of(&mut tx, &id)
                .await?
                .into_iter()
                .filter(|i| i.status == "accepted")
                .collect();
            let owner = therapists
                .iter()
                .min_by_key(|i| (i.responded_at, i.id.clone()))
                .ok_or_else(ApiError::internal)?;
            let capacity = (session.max_participants + therapists.len() as i64 + 1).min(50);
            let room = open_scheduled(
                &mut tx,
                &caller,
                ScheduledRoom {
                    serves: "group_session",
                    serves_id: &session.id,
                    name: &session.title,
                    kind: "group",
                    therapist_id: &owner.therapist_id,
                    organization_id: &session.organization_id,
                    max_participants: capacity,
                    ends_at: session.end_ms,
                },
            )
            .await?;
            store::link_room(&mut tx, &session.id, &room).await?;
            tracing::info!(group_session_id = %session.id, room_id = %room, "group video room created");
            room
        }
    };
    tx.commit().await?;
    let room = state
        .store
        .session(&room_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Json(GroupVideoRoom {
        session_id: room.id.clone(),
        join_url: format!("/join/{}", room.share_token),
        group_session_id: session.id,
        expires_at: rfc3339(room.expires_at),
    }))
}
