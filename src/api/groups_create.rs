//! Group therapy: a moderator proposes a session to a community and invites its
//! therapists.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::groups::*;
use super::groups_communities::visible_community;
use super::groups_fields as fields;
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::groups::{self as store, NewGroupSession};

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

/// Result of creating a session.
#[derive(Serialize, ToSchema)]
pub struct CreatedGroupSession {
    session: GroupSessionView,
    invitations: Vec<InvitationView>,
    invitations_sent: usize,
}

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
    let title = fields::title(&body.title)?;
    let description = fields::description(body.description.as_deref())?;
    let session_type = fields::session_type(&body.session_type)?;
    let start_ms = fields::start(&body.scheduled_at)?;
    let duration_minutes = fields::duration(body.duration_minutes)?;
    let max_participants = fields::seats(body.max_participants)?;
    let place = fields::place(
        session_type,
        body.meeting_link.as_deref(),
        body.location.as_deref(),
        body.location_address.as_deref(),
    )?;
    let therapist_ids = fields::therapist_ids(&body.therapist_ids)?;
    fields::in_community(&state, &community.id, &therapist_ids).await?;
    let end_ms = start_ms + duration_minutes * 60_000;
    let invited: Vec<&str> = therapist_ids.iter().map(String::as_str).collect();
    super::schedule_hours::check_group_new(&state.store, &invited, start_ms, end_ms).await?;
    let new = NewGroupSession {
        community_id: &community.id,
        organization_id: &community.organization_id,
        created_by: &caller.sub,
        title: &title,
        description: description.as_deref(),
        session_type,
        meeting_link: place.meeting_link.as_deref(),
        location: place.location.as_deref(),
        location_address: place.location_address.as_deref(),
        start_ms,
        duration_minutes,
        max_participants,
    };
    let created = insert_and_invite(&state, &caller, &new, &therapist_ids).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Stores the session and its invitations, notifies the invited therapists and
/// audits it all in one transaction.
async fn insert_and_invite(
    state: &AppState,
    caller: &Caller,
    new: &NewGroupSession<'_>,
    therapist_ids: &[String],
) -> ApiResult<CreatedGroupSession> {
    let mut tx = state.store.pool().begin().await?;
    let id = store::insert_session(&mut tx, new).await?;
    for therapist in therapist_ids {
        store::insert_invitation(&mut tx, &id, therapist).await?;
    }
    let session = reload(&mut tx, &id).await?;
    let invitations = store::invitations_of(&mut tx, &id).await?;
    let mut sent = Vec::new();
    for inv in &invitations {
        let invitation = (inv.id.as_str(), inv.therapist_id.as_str(), None);
        send_invitation(
            &mut tx,
            &mut sent,
            caller,
            &session,
            invitation,
            InviteReason::New,
        )
        .await?;
    }
    audit::record(
        &mut tx,
        AuditEntry::by(
            caller,
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
    push(state, &sent);
    tracing::info!(group_session_id = %session.id, community_id = %session.community_id, "group session proposed");
    Ok(CreatedGroupSession {
        session: session_view(&session),
        invitations_sent: invitations.len(),
        invitations: invitations
            .iter()
            .map(|i| invitation_view(i, true))
            .collect(),
    })
}
