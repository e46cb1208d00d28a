//! Group therapy: a moderator proposes a session to a community and invites its
//! therapists.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::extract::validate_name;
use super::groups::*;
use super::groups_communities::{optional_text, visible_community};
use super::JsonBody;
use crate::auth::Caller;
use crate::clock::{now_ms, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::audit::{self, AuditEntry};
use crate::store::groups::{self as store, NewGroupSession};
use crate::store::notifications::NotificationKind;

/// Most therapists one session may invite.
const MAX_INVITED_THERAPISTS: usize = 10;

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
