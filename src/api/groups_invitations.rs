//! Group therapy: a therapist's invitations, and the answers that approve a session.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::groups::*;
use super::groups_communities::optional_text;
use super::JsonBody;
use crate::auth::{Caller, Role};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::schedule::availability;
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::groups::{self as store, GroupSession, Invitation};
use crate::store::notifications::{Notification, NotificationKind};

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

/// Query of the invitation listing.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct InvitationQuery {
    /// `pending`, `accepted` or `declined`.
    status: Option<String>,
}

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

fn invitation_not_found() -> ApiError {
    ApiError::not_found("invitation_not_found", "invitation not found")
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
    let invitation = state
        .store
        .group_invitation(&id)
        .await?
        .filter(|i| i.therapist_id == caller.sub)
        .ok_or_else(invitation_not_found)?;

    let mut tx = crate::schedule::write_tx(&state.store, &[caller.sub.as_str()]).await?;
    store::lock_session(&mut tx, state.store.backend(), &invitation.session_id).await?;
    let session = answerable(&mut tx, &caller, &invitation, accept).await?;
    let status = if accept { "accepted" } else { "declined" };
    store::answer_invitation(&mut tx, &invitation.id, status, message.as_deref()).await?;
    let mut sent = Vec::new();
    tell_moderator(
        &mut tx,
        &mut sent,
        &session,
        &invitation,
        accept,
        message.as_deref(),
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
        // The message is the therapist's free text: the audit row only says one was left.
        .after(json!({
            "status": status,
            "message_given": message.is_some(),
            "group_session_id": session.id,
        })),
    )
    .await?;
    let session_status = if accept {
        approve_if_ready(&mut tx, &mut sent, &caller, &session.id).await?
    } else {
        session.status.clone()
    };
    let invitations = store::invitations_of(&mut tx, &session.id).await?;
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

/// Under the session's lock: the invitation still exists and is `pending`, the
/// session is not over and has not started, and, to accept, the therapist's calendar
/// is free. Returns the session.
async fn answerable(
    conn: &mut AnyConnection,
    caller: &Caller,
    invitation: &Invitation,
    accept: bool,
) -> ApiResult<GroupSession> {
    let session = reload(conn, &invitation.session_id).await?;
    let current = store::invitations_of(conn, &session.id)
        .await?
        .into_iter()
        .find(|i| i.id == invitation.id)
        .ok_or_else(invitation_not_found)?;
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
            conn,
            &[caller.sub.as_str()],
            session.start_ms,
            session.end_ms,
        )
        .await?;
        if !busy.is_empty() {
            return Err(schedule_conflict(&busy));
        }
        let me = [caller.sub.as_str()];
        super::schedule_hours::check_group(conn, &me, session.start_ms, session.end_ms).await?;
    }
    Ok(session)
}

/// Tells the moderator who proposed the session of the answer (a decline with the
/// therapist's message).
async fn tell_moderator(
    conn: &mut AnyConnection,
    sent: &mut Vec<Notification>,
    session: &GroupSession,
    invitation: &Invitation,
    accept: bool,
    message: Option<&str>,
) -> ApiResult<()> {
    let mut payload = session_payload(session);
    payload["invitation_id"] = json!(invitation.id);
    payload["therapist_id"] = json!(invitation.therapist_id);
    if !accept {
        payload["message"] = json!(message);
    }
    let name = &invitation.therapist_name;
    let (kind, title, text) = if accept {
        (
            NotificationKind::GroupSessionInvitationAccepted,
            "Invitation accepted",
            format!("{name} accepted to co-lead \"{}\".", session.title),
        )
    } else {
        (
            NotificationKind::GroupSessionInvitationDeclined,
            "Invitation declined",
            match message {
                Some(m) => format!("{name} declined to co-lead \"{}\": {m}", session.title),
                None => format!("{name} declined to co-lead \"{}\".", session.title),
            },
        )
    };
    notify_each(
        conn,
        sent,
        std::slice::from_ref(&session.created_by),
        None,
        session,
        kind,
        title,
        &text,
        payload,
    )
    .await?;
    Ok(())
}
