//! An organization's therapists and clients over REST: list with search and filters,
//! view, update, deactivate and reactivate. The rules are in [`crate::accounts::people`].

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::JsonBody;
use crate::accounts::people::{self, ClientChange};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::people::{ClientPerson, PeopleQuery, Status, TherapistPerson};

/// Search and filters of the listings.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct PeopleFilter {
    /// Case-insensitive part of the name or e-mail.
    q: Option<String>,
    /// `active` (default), `deactivated` or `all`.
    status: Option<String>,
    /// Therapists: `on` or `off` (their own video switch).
    video: Option<String>,
    /// Clients: of this therapist.
    therapist_id: Option<String>,
    /// Clients, super admins only: of this organization.
    organization_id: Option<String>,
}

impl PeopleFilter {
    fn query(&self) -> Result<PeopleQuery, ApiError> {
        let status = match self.status.as_deref().unwrap_or("active") {
            "active" => Status::Active,
            "deactivated" => Status::Deactivated,
            "all" => Status::All,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_filter",
                    "status is active, deactivated or all",
                ))
            }
        };
        let video = match self.video.as_deref() {
            None | Some("") => None,
            Some("on") => Some(true),
            Some("off") => Some(false),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_filter",
                    "video is on or off",
                ))
            }
        };
        let text: String = self.q.clone().unwrap_or_default();
        if text.chars().count() > 200 {
            return Err(ApiError::bad_request(
                "invalid_filter",
                "q is at most 200 characters",
            ));
        }
        Ok(PeopleQuery {
            text,
            status,
            therapist_id: self.therapist_id.clone(),
            video,
        })
    }
}

/// A therapist as administrators see them.
#[derive(Serialize, ToSchema)]
pub struct TherapistView {
    id: String,
    email: String,
    display_name: String,
    role: &'static str,
    active: bool,
    /// RFC 3339.
    created_at: String,
    partner_code: String,
    video_sessions_enabled: bool,
    can_post_blogs: bool,
}

impl From<TherapistPerson> for TherapistView {
    fn from(t: TherapistPerson) -> Self {
        Self {
            id: t.id,
            email: t.email,
            display_name: t.display_name,
            role: "therapist",
            active: t.disabled_at.is_none(),
            created_at: rfc3339(t.created_at),
            partner_code: t.partner_code,
            video_sessions_enabled: t.video_sessions_enabled != 0,
            can_post_blogs: t.can_post_blogs != 0,
        }
    }
}

/// A client as administrators and their therapist see them.
#[derive(Serialize, ToSchema)]
pub struct ClientView {
    id: String,
    email: String,
    display_name: String,
    role: &'static str,
    active: bool,
    /// RFC 3339.
    created_at: String,
    organization_id: String,
    therapist_id: Option<String>,
    therapist_name: Option<String>,
}

impl From<ClientPerson> for ClientView {
    fn from(c: ClientPerson) -> Self {
        Self {
            id: c.id,
            email: c.email,
            display_name: c.display_name,
            role: "client",
            active: c.disabled_at.is_none(),
            created_at: rfc3339(c.created_at),
            organization_id: c.organization_id,
            therapist_id: c.therapist_id,
            therapist_name: c.therapist_name,
        }
    }
}

/// Therapists of an organization.
#[derive(Serialize, ToSchema)]
pub struct TherapistList {
    therapists: Vec<TherapistView>,
}

/// Clients.
#[derive(Serialize, ToSchema)]
pub struct ClientList {
    clients: Vec<ClientView>,
}

/// Body of `PATCH .../therapists/{therapist_id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTherapist {
    display_name: String,
}

/// Body of `PATCH /api/clients/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    display_name: Option<String>,
    /// A therapist of the same organization; `null` unassigns.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    therapist_id: Option<Option<String>>,
}

/// A field that is present (even as `null`) becomes `Some`; an absent one stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

type ErrorBody = crate::error::ErrorBody;

/// Lists the organization's therapists.
#[utoipa::path(get, path = "/api/organizations/{id}/therapists", tag = "people", params(("id" = String, Path), PeopleFilter), security(("bearer" = [])),
    responses((status = 200, body = TherapistList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_therapists(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(filter): Query<PeopleFilter>,
) -> ApiResult<Json<TherapistList>> {
    let found = people::therapists(&state.store, &caller, &org_id, &filter.query()?).await?;
    Ok(Json(TherapistList {
        therapists: found.into_iter().map(Into::into).collect(),
    }))
}

/// One therapist.
#[utoipa::path(get, path = "/api/organizations/{id}/therapists/{therapist_id}", tag = "people", params(("id" = String, Path), ("therapist_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = TherapistView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_therapist(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, id)): Path<(String, String)>,
) -> ApiResult<Json<TherapistView>> {
    Ok(Json(
        people::therapist(&state.store, &caller, &org_id, &id)
            .await?
            .into(),
    ))
}

/// Renames a therapist.
#[utoipa::path(patch, path = "/api/organizations/{id}/therapists/{therapist_id}", tag = "people", request_body = UpdateTherapist, params(("id" = String, Path), ("therapist_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = TherapistView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_therapist(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateTherapist>,
) -> ApiResult<Json<TherapistView>> {
    let updated =
        people::rename_therapist(&state.store, &caller, &org_id, &id, &body.display_name).await?;
    Ok(Json(updated.into()))
}

/// Deactivates a therapist: their tokens are refused at once.
#[utoipa::path(post, path = "/api/organizations/{id}/therapists/{therapist_id}/deactivate", tag = "people", params(("id" = String, Path), ("therapist_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = TherapistView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deactivate_therapist(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, id)): Path<(String, String)>,
) -> ApiResult<Json<TherapistView>> {
    Ok(Json(
        people::set_therapist_active(&state, &caller, &org_id, &id, false)
            .await?
            .into(),
    ))
}

/// Reactivates a therapist (they sign in again; old tokens stay refused).
#[utoipa::path(post, path = "/api/organizations/{id}/therapists/{therapist_id}/reactivate", tag = "people", params(("id" = String, Path), ("therapist_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = TherapistView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reactivate_therapist(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, id)): Path<(String, String)>,
) -> ApiResult<Json<TherapistView>> {
    Ok(Json(
        people::set_therapist_active(&state, &caller, &org_id, &id, true)
            .await?
            .into(),
    ))
}

/// Lists clients: an administrator's organization, or a therapist's own clients.
#[utoipa::path(get, path = "/api/clients", tag = "people", params(PeopleFilter), security(("bearer" = [])),
    responses((status = 200, body = ClientList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<PeopleFilter>,
) -> ApiResult<Json<ClientList>> {
    let query = filter.query()?;
    let found = people::clients(
        &state.store,
        &caller,
        filter.organization_id.as_deref(),
        query,
    )
    .await?;
    Ok(Json(ClientList {
        clients: found.into_iter().map(Into::into).collect(),
    }))
}

/// One client.
#[utoipa::path(get, path = "/api/clients/{id}", tag = "people", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ClientView), (status = 404, body = ErrorBody)))]
pub async fn get_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientView>> {
    Ok(Json(
        people::client(&state.store, &caller, &id).await?.into(),
    ))
}

/// Renames a client or assigns them to another therapist.
#[utoipa::path(patch, path = "/api/clients/{id}", tag = "people", request_body = UpdateClient, params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ClientView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateClient>,
) -> ApiResult<Json<ClientView>> {
    let change = ClientChange {
        display_name: body.display_name,
        therapist_id: body.therapist_id,
    };
    Ok(Json(
        people::update_client(&state.store, &caller, &id, change)
            .await?
            .into(),
    ))
}

/// Deactivates a client: their tokens are refused at once.
#[utoipa::path(post, path = "/api/clients/{id}/deactivate", tag = "people", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ClientView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deactivate_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientView>> {
    Ok(Json(
        people::set_client_active(&state, &caller, &id, false)
            .await?
            .into(),
    ))
}

/// Reactivates a client.
#[utoipa::path(post, path = "/api/clients/{id}/reactivate", tag = "people", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ClientView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reactivate_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ClientView>> {
    Ok(Json(
        people::set_client_active(&state, &caller, &id, true)
            .await?
            .into(),
    ))
}
