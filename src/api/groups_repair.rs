//! Group therapy: the moderator repairs a session's team while it waits for approval.
//! One declined invitation must not leave a session pending for ever: the moderator
//! invites a replacement (the same community checks as the proposal), invites the
//! therapist who declined once more, or withdraws an invitation that was not
//! accepted. When every remaining invitation is accepted the session is approved.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Any, Transaction};
use utoipa::ToSchema;

use super::groups::*;
use super::groups_fields::{self as fields, MAX_INVITED_THERAPISTS};
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::group_edits as edits;
use crate::store::groups::{self as store, GroupSession, Invitation};
use crate::store::notifications::NotificationKind;

/// Body of `POST /api/group-sessions/{id}/invitations`.
#[derive(Deserialize, ToSchema)]
pub struct InviteTherapist {
    /// A therapist of the session's community who is not invited yet.
    therapist_id: String,
}

/// A session's team after a repair.
#[derive(Serialize, ToSchema)]
pub struct TeamChange {
    session: GroupSessionView,
    invitations: Vec<InvitationView>,
    /// The session's status afterwards (`approved` once every invitation is accepted).
    session_status: String,
}

fn invitation_not_found() -> ApiError {
    ApiError::not_found("invitation_not_found", "invitation not found")
}

/// The session, if the caller moderates it (or administers its organization).
async fn repairable(state: &AppState, caller: &Caller, id: &str) -> ApiResult<GroupSession> {
    let access = visible_session(state, caller, id).await?;
    if !(access.moderates(caller) || access.is_admin) {
        return Err(not_a_moderator());
    }
    Ok(access.session)
}

/// Opens the repair of a session the caller may repair (see [`repairable`]): the
/// session, locked, still waits for approval and has not started.
async fn lock_pending(
    state: &AppState,
    id: &str,
) -> ApiResult<(Transaction<'static, Any>, GroupSession)> {
    let mut tx = state.store.pool().begin().await?;
    store::lock_session(&mut tx, state.store.backend(), id).await?;
    let session = reload(&mut tx, id).await?;
    match session.status.as_str() {
        "pending_approval" => {}
        "approved" => {
            return Err(ApiError::conflict(
                "session_already_approved",
                "every therapist has accepted; a new time asks them again",
            ))
        }
        _ => return Err(state_conflict(&session)),
    }
    if session.start_ms <= now_ms() {
        return Err(ApiError::conflict(
            "session_started",
            "the session has already started",
        ));
    }
    Ok((tx, session))
}

/// Refuses one more open invitation past [`MAX_INVITED_THERAPISTS`].
fn room_for_one_more(invitations: &[Invitation]) -> ApiResult<()> {
    let open = invitations
        .iter()
        .filter(|i| i.status != "declined")
        .count();
    if open >= MAX_INVITED_THERAPISTS {
        return Err(fields::too_many_therapists());
    }
    Ok(())
}

/// Commits the repair and answers with the session's team.
async fn finish(
    state: &AppState,
    mut tx: Transaction<'static, Any>,
    sent: &[crate::store::notifications::Notification],
    id: &str,
    session_status: String,
) -> ApiResult<TeamChange> {
    let session = reload(&mut tx, id).await?;
    let invitations = store::invitations_of(&mut tx, id).await?;
    tx.commit().await?;
    push(state, sent);
    Ok(TeamChange {
        session: session_view(&session),
        invitations: invitations
            .iter()
            .map(|i| invitation_view(i, true))
            .collect(),
        session_status,
    })
}

/// Invites one more therapist of the community to a session waiting for approval,
/// typically to replace one who declined. The therapist is notified.
#[utoipa::path(post, path = "/api/group-sessions/{id}/invitations", tag = "group therapy", params(("id" = String, Path, description = "group session id")), request_body = InviteTherapist, security(("bearer" = [])),
    responses((status = 201, body = TeamChange), (status = 400, body = crate::error::ErrorBody, description = "therapists_required, too_many_therapists, therapist_not_in_community"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_moderator"), (status = 404, body = crate::error::ErrorBody, description = "group_session_not_found"), (status = 409, body = crate::error::ErrorBody, description = "already_invited, session_already_approved, session_cancelled, session_completed, session_started, outside_working_hours, therapist_time_off")))]
pub async fn invite_therapist(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InviteTherapist>,
) -> ApiResult<(StatusCode, Json<TeamChange>)> {
    let therapist = fields::therapist_ids(std::slice::from_ref(&body.therapist_id))?;
    let before = repairable(&state, &caller, &id).await?;
    fields::in_community(&state, &before.community_id, &therapist).await?;
    let invited = [therapist[0].as_str()];
    super::schedule_hours::check_group_new(&state.store, &invited, before.start_ms, before.end_ms)
        .await?;
    let (mut tx, session) = lock_pending(&state, &id).await?;
    let therapist = &therapist[0];
    let invitations = store::invitations_of(&mut tx, &id).await?;
    if let Some(existing) = invitations.iter().find(|i| &i.therapist_id == therapist) {
        return Err(ApiError::conflict(
            "already_invited",
            format!(
                "this therapist is already invited ({}); invite a therapist who declined again with .../reinvite",
                existing.status
            ),
        ));
    }
    room_for_one_more(&invitations)?;
    let invitation_id = store::insert_invitation(&mut tx, &id, therapist).await?;
    let mut sent = Vec::new();
    let invitation = (invitation_id.as_str(), therapist.as_str(), None);
    send_invitation(
        &mut tx,
        &mut sent,
        &caller,
        &session,
        invitation,
        InviteReason::New,
    )
    .await?;
    tracing::info!(group_session_id = %id, invitation_id = %invitation_id, "group therapist invited");
    let team = finish(&state, tx, &sent, &id, session.status.clone()).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// Invites a therapist who declined once more: the invitation is `pending` again and
/// the therapist is notified.
#[utoipa::path(post, path = "/api/group-sessions/{id}/invitations/{invitation_id}/reinvite", tag = "group therapy",
    params(("id" = String, Path, description = "group session id"), ("invitation_id" = String, Path, description = "invitation id")), security(("bearer" = [])),
    responses((status = 200, body = TeamChange), (status = 400, body = crate::error::ErrorBody, description = "too_many_therapists"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_moderator"), (status = 404, body = crate::error::ErrorBody, description = "group_session_not_found, invitation_not_found"), (status = 409, body = crate::error::ErrorBody, description = "invitation_not_declined, session_already_approved, session_cancelled, session_completed, session_started")))]
pub async fn reinvite_therapist(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, invitation_id)): Path<(String, String)>,
) -> ApiResult<Json<TeamChange>> {
    repairable(&state, &caller, &id).await?;
    let (mut tx, session) = lock_pending(&state, &id).await?;
    let invitations = store::invitations_of(&mut tx, &id).await?;
    let declined = invitations
        .iter()
        .find(|i| i.id == invitation_id)
        .ok_or_else(invitation_not_found)?;
    if declined.status != "declined" {
        return Err(ApiError::conflict(
            "invitation_not_declined",
            format!("the invitation is {}, not declined", declined.status),
        ));
    }
    room_for_one_more(&invitations)?;
    edits::reinvite(&mut tx, &invitation_id).await?;
    let mut sent = Vec::new();
    let invitation = (
        invitation_id.as_str(),
        declined.therapist_id.as_str(),
        Some("declined"),
    );
    send_invitation(
        &mut tx,
        &mut sent,
        &caller,
        &session,
        invitation,
        InviteReason::Again,
    )
    .await?;
    tracing::info!(group_session_id = %id, invitation_id = %invitation_id, "group therapist invited again");
    let team = finish(&state, tx, &sent, &id, session.status.clone()).await?;
    Ok(Json(team))
}

/// Withdraws an invitation that was not accepted (declined, or still pending: that
/// therapist is told). The session keeps at least one invitation, and is approved
/// when every remaining one is accepted.
#[utoipa::path(delete, path = "/api/group-sessions/{id}/invitations/{invitation_id}", tag = "group therapy",
    params(("id" = String, Path, description = "group session id"), ("invitation_id" = String, Path, description = "invitation id")), security(("bearer" = [])),
    responses((status = 200, body = TeamChange), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody, description = "not_a_moderator"), (status = 404, body = crate::error::ErrorBody, description = "group_session_not_found, invitation_not_found"), (status = 409, body = crate::error::ErrorBody, description = "invitation_accepted, last_invitation, session_already_approved, session_cancelled, session_completed, session_started")))]
pub async fn remove_invitation(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, invitation_id)): Path<(String, String)>,
) -> ApiResult<Json<TeamChange>> {
    repairable(&state, &caller, &id).await?;
    let (mut tx, session) = lock_pending(&state, &id).await?;
    let invitations = store::invitations_of(&mut tx, &id).await?;
    let removed = invitations
        .iter()
        .find(|i| i.id == invitation_id)
        .ok_or_else(invitation_not_found)?;
    if removed.status == "accepted" {
        return Err(ApiError::conflict(
            "invitation_accepted",
            "an accepted invitation stays; a new time asks its therapist again",
        ));
    }
    if invitations.len() == 1 {
        return Err(ApiError::conflict(
            "last_invitation",
            "a session keeps at least one therapist: invite a replacement first",
        ));
    }
    edits::remove_unaccepted(&mut tx, &invitation_id).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            &caller,
            Some(&session.organization_id),
            "group_session.invitation.remove",
            ("group_session_invitation", &invitation_id),
        )
        .before(json!({
            "status": removed.status,
            "group_session_id": session.id,
            "therapist_id": removed.therapist_id,
        })),
    )
    .await?;
    let mut sent = Vec::new();
    if removed.status == "pending" {
        let mut payload = session_payload(&session);
        payload["invitation_id"] = json!(invitation_id);
        notify_each(
            &mut tx,
            &mut sent,
            std::slice::from_ref(&removed.therapist_id),
            None,
            &session,
            NotificationKind::GroupSessionInvitationWithdrawn,
            "Invitation withdrawn",
            &format!(
                "Your invitation to co-lead \"{}\" was withdrawn.",
                session.title
            ),
            payload,
        )
        .await?;
    }
    let status = approve_if_ready(&mut tx, &mut sent, &caller, &id).await?;
    tracing::info!(group_session_id = %id, invitation_id = %invitation_id, "group invitation removed");
    let team = finish(&state, tx, &sent, &id, status).await?;
    Ok(Json(team))
}
