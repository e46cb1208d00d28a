//! Group therapy sessions: moderators propose sessions to a community and
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
//!
//! This module holds what the group routes share (views, access checks, error
//! shapes, notification helpers); the routes live by job in `groups_create`,
//! `groups_lifecycle`, `groups_read`, `groups_invitations`, `groups_members` and
//! `groups_video`. The rules are written out for newcomers in docs/GROUPS.md.

use serde::Serialize;
use serde_json::json;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::policy::is_admin_of;
use crate::schedule::availability::Busy;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::communities::community_user_ids;
use crate::store::group_seats::GroupParticipant;
use crate::store::groups::{self as store, GroupSession, Invitation};
use crate::store::notifications::{self, NewNotification, Notification, NotificationKind};

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

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

pub(super) fn session_view(s: &GroupSession) -> GroupSessionView {
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

pub(super) fn invitation_view(i: &Invitation, with_message: bool) -> InvitationView {
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

pub(super) fn participant_view(p: &GroupParticipant) -> ParticipantView {
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

pub(super) fn session_not_found() -> ApiError {
    ApiError::not_found("group_session_not_found", "group session not found")
}

pub(super) fn not_a_moderator() -> ApiError {
    ApiError::forbidden(
        "not_a_moderator",
        "only the community's moderators and the organization's administrators may do this",
    )
}

/// The 409 for a session that is not in a state that allows the action.
pub(super) fn state_conflict(session: &GroupSession) -> ApiError {
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

pub(super) fn schedule_conflict(busy: &[Busy]) -> ApiError {
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
pub(super) struct Access {
    pub(super) session: GroupSession,
    pub(super) community_role: Option<String>,
    pub(super) invitation: Option<Invitation>,
    pub(super) is_admin: bool,
}

impl Access {
    /// A moderator of the session's community, or the moderator who proposed it.
    pub(super) fn moderates(&self, caller: &Caller) -> bool {
        self.community_role.as_deref() == Some("moderator") || self.session.created_by == caller.sub
    }
    /// Moderators, administrators, and accepted therapists run the session.
    pub(super) fn leads(&self, caller: &Caller) -> bool {
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
pub(super) async fn org_session(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<GroupSession> {
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
pub(super) async fn visible_session(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<Access> {
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
pub(super) async fn notify_each(
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
pub(super) fn push(state: &AppState, sent: &[Notification]) {
    for n in sent {
        state.live.notify(&n.user_id, n.to_json());
    }
}

pub(super) fn session_payload(s: &GroupSession) -> serde_json::Value {
    json!({
        "group_session_id": s.id,
        "community_id": s.community_id,
        "title": s.title,
        "scheduled_at": rfc3339(s.start_ms),
    })
}

pub(super) async fn reload(conn: &mut AnyConnection, id: &str) -> ApiResult<GroupSession> {
    store::session_in(conn, id)
        .await?
        .ok_or_else(session_not_found)
}

/// Why a therapist receives a (new) invitation notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InviteReason {
    /// Invited for the first time (proposal, or a replacement).
    New,
    /// Invited again after declining.
    Again,
    /// The session moved: the earlier acceptance no longer holds.
    Rescheduled,
}

impl InviteReason {
    fn action(self) -> &'static str {
        match self {
            Self::New => "group_session.invitation.create",
            Self::Again => "group_session.invitation.reinvite",
            Self::Rescheduled => "group_session.invitation.reopen",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Again => "reinvited",
            Self::Rescheduled => "rescheduled",
        }
    }
}

/// Audits a (re-)sent invitation, now `pending`, and notifies its therapist with a
/// `group_session_invitation` whose payload carries the reason. `invitation` is its
/// id, its therapist and its status before (None when new).
pub(super) async fn send_invitation(
    conn: &mut AnyConnection,
    sent: &mut Vec<Notification>,
    caller: &Caller,
    session: &GroupSession,
    invitation: (&str, &str, Option<&str>),
    reason: InviteReason,
) -> ApiResult<()> {
    let (invitation_id, therapist_id, previous) = invitation;
    let before = match previous {
        None => serde_json::Value::Null,
        Some(status) => json!({"status": status}),
    };
    audit::record(
        &mut *conn,
        AuditEntry::by(
            caller,
            Some(&session.organization_id),
            reason.action(),
            ("group_session_invitation", invitation_id),
        )
        .before(before)
        .after(json!({
            "status": "pending",
            "group_session_id": session.id,
            "therapist_id": therapist_id,
        })),
    )
    .await?;
    let when = rfc3339(session.start_ms);
    let text = match reason {
        InviteReason::New => format!(
            "You are invited to co-lead \"{}\" on {when}.",
            session.title
        ),
        InviteReason::Again => format!(
            "You are invited again to co-lead \"{}\" on {when}.",
            session.title
        ),
        InviteReason::Rescheduled => format!(
            "\"{}\" moved to {when}: please answer your invitation again.",
            session.title
        ),
    };
    let mut payload = session_payload(session);
    payload["invitation_id"] = json!(invitation_id);
    payload["reason"] = json!(reason.name());
    notify_each(
        conn,
        sent,
        &[therapist_id.to_string()],
        None,
        session,
        NotificationKind::GroupSessionInvitation,
        "Group session invitation",
        &text,
        payload,
    )
    .await?;
    Ok(())
}

/// Approves a `pending_approval` session once every one of its invitations (at least
/// one) is accepted: the community, the moderator and the therapists are told, the
/// video room (if any) grows to the new team, and it is audited as
/// `group_session.approve`. Returns the session's status afterwards.
pub(super) async fn approve_if_ready(
    conn: &mut AnyConnection,
    sent: &mut Vec<Notification>,
    caller: &Caller,
    session_id: &str,
) -> ApiResult<String> {
    let session = reload(conn, session_id).await?;
    let invitations = store::invitations_of(conn, session_id).await?;
    if session.status != "pending_approval"
        || invitations.is_empty()
        || !invitations.iter().all(|i| i.status == "accepted")
    {
        return Ok(session.status);
    }
    store::set_status(conn, session_id, "approved").await?;
    let mut recipients = community_user_ids(conn, &session.community_id).await?;
    recipients.push(session.created_by.clone());
    recipients.extend(invitations.iter().map(|i| i.therapist_id.clone()));
    notify_each(
        conn,
        sent,
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
        &mut *conn,
        AuditEntry::by(
            caller,
            Some(&session.organization_id),
            "group_session.approve",
            ("group_session", &session.id),
        )
        .before(json!({"status": "pending_approval"}))
        .after(json!({"status": "approved"})),
    )
    .await?;
    super::groups_video::follow_session(conn, caller, &session).await?;
    Ok("approved".into())
}
