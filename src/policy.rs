//! Who may see and who may enter a video session. Used by the REST routes and by the
//! signaling hub, so a browser's join and a REST registration obey the same rules.

use crate::access::{decide, AccessDecision, AccessInputs};
use crate::auth::{Claims, Role};
use crate::error::{ApiError, ApiResult};
use crate::store::participants::Registrant;
use crate::store::sessions::VideoSession;
use crate::store::Store;

/// The seed 000 decision for a therapist, read from the database.
pub async fn therapist_video_access(
    store: &Store,
    therapist_id: &str,
) -> ApiResult<AccessDecision> {
    let therapist = store
        .therapist(therapist_id)
        .await?
        .ok_or_else(|| ApiError::forbidden("forbidden", "only therapists manage video sessions"))?;
    let org = store
        .organization(&therapist.organization_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(decide(AccessInputs {
        organization_enabled: org.video_sessions_enabled(),
        theraptrack_controlled: org.theraptrack_controlled(),
        therapist_enabled: therapist.video_sessions_enabled(),
    }))
}

/// True if `claims` may read `session` and its participant list: its therapist, an
/// administrator of its organization, a guest of exactly this session, or a
/// registered participant.
pub async fn can_view_session(
    store: &Store,
    claims: &Claims,
    session: &VideoSession,
) -> ApiResult<bool> {
    if claims.sub == session.therapist_id {
        return Ok(true);
    }
    if is_admin_of(claims, &session.organization_id) {
        return Ok(true);
    }
    if claims.role == Role::Guest {
        return Ok(claims.session_id.as_deref() == Some(session.id.as_str()));
    }
    Ok(store
        .participant_of(&session.id, Registrant::User(&claims.sub))
        .await?
        .is_some())
}

/// True if `claims` administers organization `org_id` (super admins administer all).
pub fn is_admin_of(claims: &Claims, org_id: &str) -> bool {
    claims.role == Role::SuperAdmin
        || (claims.role.is_org_admin() && claims.org_id.as_deref() == Some(org_id))
}

/// True if `claims` may manage `session` (end it, remove participants).
pub fn can_manage_session(claims: &Claims, session: &VideoSession) -> bool {
    claims.sub == session.therapist_id || is_admin_of(claims, &session.organization_id)
}

/// Who is entering a session, once admitted.
#[derive(Debug, Clone)]
pub struct Entrant {
    /// User id or guest id (the token subject).
    pub subject: String,
    /// True for guests.
    pub is_guest: bool,
    /// Name shown to others.
    pub display_name: String,
    /// Role name.
    pub role: Role,
}

impl Entrant {
    /// The registration key of this entrant.
    pub fn registrant(&self) -> Registrant<'_> {
        if self.is_guest {
            Registrant::Guest(&self.subject)
        } else {
            Registrant::User(&self.subject)
        }
    }
}

/// Decides whether `claims` may enter `session` now. Checks, in order: the session is
/// open (`session_ended`), the caller belongs there (`forbidden`), the caller was not
/// removed (`removed`), and the therapist's video access (`therapist_disabled`,
/// `organization_disabled`). Capacity is the room's business.
pub async fn admit(
    store: &Store,
    claims: &Claims,
    session: &VideoSession,
    now_ms: i64,
) -> ApiResult<Entrant> {
    if !session.is_open_at(now_ms) {
        return Err(ApiError::conflict(
            "session_ended",
            "this session has ended",
        ));
    }
    let entrant = identify(store, claims, session).await?;
    if let Some(existing) = store
        .participant_of(&session.id, entrant.registrant())
        .await?
    {
        if existing.removed() {
            return Err(ApiError::forbidden(
                "removed",
                "the therapist removed you from this session",
            ));
        }
    }
    therapist_video_access(store, &session.therapist_id)
        .await?
        .require()?;
    Ok(entrant)
}

async fn identify(store: &Store, claims: &Claims, session: &VideoSession) -> ApiResult<Entrant> {
    let forbidden = || ApiError::forbidden("forbidden", "you may not join this session");
    if claims.role == Role::Guest {
        if session.restricted() || claims.session_id.as_deref() != Some(session.id.as_str()) {
            return Err(forbidden());
        }
        let guest = store.guest(&claims.sub).await?.ok_or_else(forbidden)?;
        if guest.session_id != session.id {
            return Err(forbidden());
        }
        return Ok(Entrant {
            subject: guest.id,
            is_guest: true,
            display_name: guest.display_name,
            role: Role::Guest,
        });
    }
    let user = store.user(&claims.sub).await?.ok_or_else(forbidden)?;
    let role = Role::parse(&user.role).ok_or_else(forbidden)?;
    let same_org = user.organization_id.as_deref() == Some(session.organization_id.as_str())
        && claims.org_id.as_deref() == Some(session.organization_id.as_str());
    let mut allowed = if user.id == session.therapist_id {
        true
    } else {
        match role {
            Role::Therapist | Role::Organization | Role::Admin => same_org,
            Role::Client => {
                same_org
                    && store
                        .is_active_client_of(&user.id, &session.organization_id)
                        .await?
            }
            Role::SuperAdmin | Role::Guest => false,
        }
    };
    if allowed && session.restricted() && user.id != session.therapist_id {
        allowed = store.is_room_invitee(&session.id, &user.id).await?;
    }
    let registered = store
        .participant_of(&session.id, Registrant::User(&user.id))
        .await?
        .is_some();
    if !(allowed || registered) {
        return Err(forbidden());
    }
    Ok(Entrant {
        subject: user.id,
        is_guest: false,
        display_name: user.display_name,
        role,
    })
}
