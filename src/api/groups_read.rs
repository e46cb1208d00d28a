//! Group therapy: listing and reading sessions and their participants.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::groups::*;
use super::groups_communities::visible_community;
use crate::auth::{Caller, Role};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::policy::is_admin_of;
use crate::state::AppState;
use crate::store::groups::SessionFilter;

/// Participants of a session.
#[derive(Serialize, ToSchema)]
pub struct ParticipantList {
    participants: Vec<ParticipantView>,
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
