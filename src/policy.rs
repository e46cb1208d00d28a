//! Who may see and manage a video session, and the video access of its
//! therapist read from the database. Who may *enter* a room is decided in one place,
//! [`crate::rooms::admission`].

use crate::access::{decide, AccessDecision, AccessInputs};
use crate::auth::{Claims, Role};
use crate::denial::Denial;
use crate::store::participants::{Participant, Registrant};
use crate::store::sessions::VideoSession;
use crate::store::users::Therapist;
use crate::store::Store;

/// The video access decision for a therapist, read from the database. A caller who is not
/// a therapist gets [`Denial::WrongRole`].
pub async fn therapist_video_access(
    store: &Store,
    therapist_id: &str,
) -> Result<AccessDecision, Denial> {
    let therapist = store
        .therapist(therapist_id)
        .await?
        .ok_or(Denial::WrongRole)?;
    video_access_of(store, &therapist).await
}

/// The video access decision for a therapist already loaded (reads their organization).
pub async fn video_access_of(
    store: &Store,
    therapist: &Therapist,
) -> Result<AccessDecision, Denial> {
    let org = store
        .organization(&therapist.organization_id)
        .await?
        .ok_or(Denial::Store(sqlx::Error::RowNotFound))?;
    Ok(decide(AccessInputs {
        organization_enabled: org.video_sessions_enabled(),
        theraptrack_controlled: org.theraptrack_controlled(),
        therapist_enabled: therapist.video_sessions_enabled(),
    }))
}

/// True if `claims` may read `session` and its participant list: its therapist, an
/// administrator of its organization, or someone taking part in it now — a guest of
/// exactly this session or a registered user (of a restricted room: a current invitee)
/// — who was not removed and has not left.
pub async fn can_view_session(
    store: &Store,
    claims: &Claims,
    session: &VideoSession,
) -> Result<bool, Denial> {
    if claims.sub == session.therapist_id || is_admin_of(claims, &session.organization_id) {
        return Ok(true);
    }
    if claims.role == Role::Guest {
        if claims.session_id.as_deref() != Some(session.id.as_str()) {
            return Ok(false);
        }
        let Some(guest) = store.guest(&claims.sub).await? else {
            return Ok(false);
        };
        if guest.session_id != session.id || guest.removed() {
            return Ok(false);
        }
        let row = store
            .participant_of(&session.id, Registrant::Guest(&claims.sub))
            .await?;
        return Ok(row.as_ref().is_none_or(takes_part));
    }
    let row = store
        .participant_of(&session.id, Registrant::User(&claims.sub))
        .await?;
    if !row.as_ref().is_some_and(takes_part) {
        return Ok(false);
    }
    // A restricted room's readers are its current invitees: leaving the group ends it.
    Ok(!session.restricted() || store.is_room_invitee(&session.id, &claims.sub).await?)
}

/// A registration that still gives read access: not removed, and in the room or not
/// yet entered (a row that entered and left is history, not access).
fn takes_part(row: &Participant) -> bool {
    !row.removed() && !row.has_left()
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
