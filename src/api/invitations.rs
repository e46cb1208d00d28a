//! Invitations over REST: administrators invite people and see or withdraw pending
//! invitations; the invited person inspects and accepts theirs with the link's token,
//! which travels in request bodies only (never in a URL a log could keep).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{session_answer, SessionAnswer};
use super::JsonBody;
use crate::accounts::invitations::{self, InviteRequest, Issued};
use crate::auth::{Caller, Role};
use crate::clock::rfc3339;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::store::invitations::Invitation;

/// An invitation as administrators see it.
#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    id: String,
    email: String,
    display_name: String,
    role: String,
    therapist_id: Option<String>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    expires_at: String,
    /// The link to hand to the person; only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    invite_url: Option<String>,
}

impl InvitationView {
    /// The view of a stored invitation, with its link when it was just issued.
    pub fn of(invitation: &Invitation, invite_url: Option<String>) -> Self {
        Self {
            id: invitation.id.clone(),
            email: invitation.email.clone(),
            display_name: invitation.display_name.clone(),
            role: invitation.role.clone(),
            therapist_id: invitation.therapist_id.clone(),
            created_at: rfc3339(invitation.created_at),
            expires_at: rfc3339(invitation.expires_at),
            invite_url,
        }
    }

    /// The view of a just-issued invitation, link included.
    pub fn issued(issued: Issued) -> Self {
        Self::of(&issued.invitation, Some(issued.url))
    }
}

/// Pending invitations.
#[derive(Serialize, ToSchema)]
pub struct InvitationList {
    invitations: Vec<InvitationView>,
}

/// Body of `POST /api/organizations/{id}/invitations`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    email: String,
    display_name: String,
    /// `therapist`, `client` or `admin`.
    role: Role,
    /// For clients: their therapist (of the same organization).
    therapist_id: Option<String>,
}

/// Body of the routes the invited person calls.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    token: String,
}

/// Body of `POST /api/invitations/accept`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    token: String,
    password: String,
    /// Overrides the name the administrator typed.
    display_name: Option<String>,
}

/// What the invited person sees before setting a password.
#[derive(Serialize, ToSchema)]
pub struct InvitationPreview {
    email: String,
    display_name: String,
    role: String,
    organization_name: Option<String>,
    /// RFC 3339.
    expires_at: String,
}

/// Invites a person to the organization.
#[utoipa::path(post, path = "/api/organizations/{id}/invitations", tag = "accounts", request_body = CreateInvitation,
    params(("id" = String, Path, description = "organization id")), security(("bearer" = [])),
    responses((status = 201, body = InvitationView, description = "the link (`invite_url`) is shown this once"),
        (status = 400, body = crate::error::ErrorBody, description = "`invalid_email`, `invalid_name`, `invalid_role`"),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "`organization_not_found`, `therapist_not_found`"),
        (status = 409, body = crate::error::ErrorBody, description = "`email_taken`")))]
pub async fn create_invitation(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<CreateInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let request = InviteRequest {
        email: body.email,
        display_name: body.display_name,
        role: body.role,
        therapist_id: body.therapist_id,
    };
    let issued =
        invitations::invite(&state.store, &state.accounts, &caller, &org_id, request).await?;
    Ok((StatusCode::CREATED, Json(InvitationView::issued(issued))))
}

/// Lists the organization's pending invitations (without links).
#[utoipa::path(get, path = "/api/organizations/{id}/invitations", tag = "accounts",
    params(("id" = String, Path, description = "organization id")), security(("bearer" = [])),
    responses((status = 200, body = InvitationList), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<InvitationList>> {
    let pending = invitations::pending(&state.store, &caller, &org_id).await?;
    let invitations = pending
        .iter()
        .map(|i| InvitationView::of(i, None))
        .collect();
    Ok(Json(InvitationList { invitations }))
}

/// Withdraws a pending invitation: its link stops working.
#[utoipa::path(delete, path = "/api/organizations/{id}/invitations/{invitation_id}", tag = "accounts",
    params(("id" = String, Path, description = "organization id"), ("invitation_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody, description = "`invitation_not_found`")))]
pub async fn withdraw_invitation(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, invitation_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    invitations::withdraw(&state.store, &caller, &org_id, &invitation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shows the invited person what the link is for.
#[utoipa::path(post, path = "/api/invitations/inspect", tag = "accounts", request_body = InvitationToken,
    responses((status = 200, body = InvitationPreview), (status = 404, body = crate::error::ErrorBody, description = "`invitation_not_found`"),
        (status = 410, body = crate::error::ErrorBody, description = "`invitation_used`, `invitation_expired`")))]
pub async fn inspect_invitation(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<InvitationToken>,
) -> ApiResult<Json<InvitationPreview>> {
    let invitation = invitations::inspect(&state.store, &body.token).await?;
    Ok(Json(InvitationPreview {
        email: invitation.email,
        display_name: invitation.display_name,
        role: invitation.role,
        organization_name: invitation.organization_name,
        expires_at: rfc3339(invitation.expires_at),
    }))
}

/// The invited person sets a password: the account is created and signed in.
#[utoipa::path(post, path = "/api/invitations/accept", tag = "accounts", request_body = AcceptInvitation,
    responses((status = 200, body = super::auth::SessionView, description = "signed in; refresh cookie set"),
        (status = 400, body = crate::error::ErrorBody, description = "`weak_password`, `invalid_name`"),
        (status = 404, body = crate::error::ErrorBody, description = "`invitation_not_found`"),
        (status = 409, body = crate::error::ErrorBody, description = "`email_taken`"),
        (status = 410, body = crate::error::ErrorBody, description = "`invitation_used`, `invitation_expired`")))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AcceptInvitation>,
) -> ApiResult<SessionAnswer> {
    let signed = invitations::accept(
        &state.store,
        &state.jwt,
        &body.token,
        &body.password,
        body.display_name.as_deref(),
    )
    .await?;
    session_answer(&state, signed, false).await
}
