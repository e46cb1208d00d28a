//! Group therapy: the checks of a session's fields, one per field, shared by the
//! proposal (`POST /api/group-sessions`) and the edit (`PATCH /api/group-sessions/{id}`)
//! so that both refuse the same input with the same code.

use super::extract::validate_name;
use super::groups_communities::optional_text;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Most therapists one session may invite (invitations not declined).
pub(super) const MAX_INVITED_THERAPISTS: usize = 10;

/// Most seats for members. The session's room holds these plus its therapists and
/// moderator.
pub(super) const MAX_SEATS: i64 = 50;

/// 1–200 characters (`invalid_title`).
pub(super) fn title(raw: &str) -> ApiResult<String> {
    validate_name(raw, 200, "invalid_title", "title")
}

/// At most 2000 characters; blank means none (`invalid_description`).
pub(super) fn description(raw: Option<&str>) -> ApiResult<Option<String>> {
    optional_text(raw, 2000, "invalid_description", "description")
}

/// `virtual` or `in_person` (`invalid_session_type`).
pub(super) fn session_type(raw: &str) -> ApiResult<&'static str> {
    match raw.to_ascii_lowercase().as_str() {
        "virtual" => Ok("virtual"),
        "in_person" => Ok("in_person"),
        _ => Err(ApiError::bad_request(
            "invalid_session_type",
            "session_type must be virtual or in_person",
        )),
    }
}

/// An RFC 3339 start in the future, as Unix ms (`invalid_scheduled_at`,
/// `scheduled_in_past`).
pub(super) fn start(raw: &str) -> ApiResult<i64> {
    let start_ms = chrono::DateTime::parse_from_rfc3339(raw.trim())
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
    Ok(start_ms)
}

/// 15–180 minutes (`invalid_duration`).
pub(super) fn duration(minutes: i64) -> ApiResult<i64> {
    if !(15..=180).contains(&minutes) {
        return Err(ApiError::bad_request(
            "invalid_duration",
            "duration_minutes must be between 15 and 180",
        ));
    }
    Ok(minutes)
}

/// 2–[`MAX_SEATS`] seats (`invalid_max_participants`).
pub(super) fn seats(count: i64) -> ApiResult<i64> {
    if !(2..=MAX_SEATS).contains(&count) {
        return Err(ApiError::bad_request(
            "invalid_max_participants",
            format!("max_participants must be between 2 and {MAX_SEATS}"),
        ));
    }
    Ok(count)
}

/// Where a session meets: a virtual one at its external link (or, without one, in
/// its TheraRoom room), an in-person one at its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Place {
    /// External link of a virtual session.
    pub(super) meeting_link: Option<String>,
    /// Place of an in-person session.
    pub(super) location: Option<String>,
    /// Full address of an in-person session.
    pub(super) location_address: Option<String>,
}

/// The place of a session of `session_type` (`invalid_meeting_link`,
/// `location_required`, `invalid_location`). Fields of the other type are dropped.
pub(super) fn place(
    session_type: &str,
    meeting_link: Option<&str>,
    location: Option<&str>,
    location_address: Option<&str>,
) -> ApiResult<Place> {
    if session_type == "virtual" {
        let link = meeting_link.map(str::trim).filter(|l| !l.is_empty());
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
        return Ok(Place {
            meeting_link: link.map(str::to_string),
            location: None,
            location_address: None,
        });
    }
    if location.is_none_or(|l| l.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "location_required",
            "an in-person session needs a location",
        ));
    }
    Ok(Place {
        meeting_link: None,
        location: optional_text(location, 200, "invalid_location", "location")?,
        location_address: optional_text(
            location_address,
            500,
            "invalid_location",
            "location_address",
        )?,
    })
}

/// The distinct, non-blank ids of `raw` (`therapists_required`,
/// `too_many_therapists` past [`MAX_INVITED_THERAPISTS`]).
pub(super) fn therapist_ids(raw: &[String]) -> ApiResult<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for id in raw {
        let id = id.trim().to_string();
        if !id.is_empty() && !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "therapists_required",
            "invite at least one therapist",
        ));
    }
    if ids.len() > MAX_INVITED_THERAPISTS {
        return Err(too_many_therapists());
    }
    Ok(ids)
}

/// 400 `too_many_therapists`.
pub(super) fn too_many_therapists() -> ApiError {
    ApiError::bad_request(
        "too_many_therapists",
        format!("invite at most {MAX_INVITED_THERAPISTS} therapists"),
    )
}

/// Every id must be a therapist of the community, of its organization (400
/// `therapist_not_in_community` naming the others).
pub(super) async fn in_community(
    state: &AppState,
    community_id: &str,
    therapist_ids: &[String],
) -> ApiResult<()> {
    let found = state
        .store
        .community_therapists(community_id, therapist_ids)
        .await?;
    let missing: Vec<&str> = therapist_ids
        .iter()
        .filter(|id| !found.contains(id))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(
            "therapist_not_in_community",
            format!("not therapists of this community: {}", missing.join(", ")),
        ));
    }
    Ok(())
}
