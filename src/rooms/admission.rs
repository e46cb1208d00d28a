//! Who may enter a room, decided once for REST registration and the signaling join.
//!
//! The rules, in order: the session exists (`session_not_found`) and is open
//! (`session_ended`); the caller is who the token says and belongs there (`forbidden`):
//! a guest of exactly this session, the session's therapist, a member of its
//! organization (clients only while they are active clients), and for restricted rooms
//! an invitee — checked on every join, so a past registration never stands in for
//! membership; nobody the therapist removed comes back (`removed`); and the therapist's
//! video access is on (`therapist_disabled`, `organization_disabled`) — except for a
//! participant of the running call, whose registration is active: running calls
//! continue when video access is switched off, so they may resume, and only the live
//! room (which knows whether this very connection instance is in the call) lets them.
//! A person a host declined in the waiting room stays out (`declined`). Capacity is the
//! live room's business (`room_full`); so is the waiting queue.

use crate::auth::{Claims, Role};
use crate::denial::Denial;
use crate::policy::therapist_video_access;
use serde_json::json;

use crate::store::audit::{self, AuditEntry};
use crate::store::participants::{self, Guest, Participant, Registrant};
use crate::store::sessions::VideoSession;
use crate::store::Store;

/// Who is entering a session, once admitted.
#[derive(Debug, Clone)]
pub struct Entrant {
    /// User id or guest id (the token subject).
    pub subject: String,
    /// True for guests.
    pub is_guest: bool,
    /// Name shown to others.
    pub display_name: String,
    /// Role, as the database knows it.
    pub role: Role,
    /// The user's organization, as the database knows it (none for guests).
    pub organization_id: Option<String>,
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

/// The outcome of [`admit_and_register`]: the session, who entered and their row.
#[derive(Debug)]
pub struct Admitted {
    /// The session entered.
    pub session: VideoSession,
    /// Who entered.
    pub entrant: Entrant,
    /// Their participant row (idempotent per user or guest and session).
    pub participant: Participant,
    /// True when the row was created by this call.
    pub newly_registered: bool,
    /// Set when video access is off but the person is in the running call: only a
    /// resume of a participant already in the room may enter; a new one gets this.
    pub resume_only: Option<Denial>,
    /// The entrant may admit and decline people in the waiting room.
    pub host: bool,
    /// The entrant must wait until a host lets them in.
    pub must_wait: bool,
}

impl Entrant {
    /// Hosts enter without waiting and decide about those who wait: the session's
    /// therapist and the organization's staff (who passed the membership rule).
    pub fn is_host(&self) -> bool {
        matches!(
            self.role,
            Role::Therapist | Role::Organization | Role::Admin
        )
    }
}

/// What the rules found: who enters, their registration as read, and a video access
/// refusal that only a resume of the running call may pass.
struct Checked {
    entrant: Entrant,
    row: Option<Participant>,
    resume_only: Option<Denial>,
}

/// Loads a session by id, or [`Denial::SessionNotFound`].
pub async fn session(store: &Store, session_id: &str) -> Result<VideoSession, Denial> {
    store
        .session(session_id)
        .await?
        .ok_or(Denial::SessionNotFound)
}

/// Decides whether `claims` may enter `session` at `now_ms` (the rules of this module).
pub async fn check(
    store: &Store,
    claims: &Claims,
    session: &VideoSession,
    now_ms: i64,
) -> Result<Entrant, Denial> {
    let checked = check_with_row(store, claims, session, now_ms).await?;
    match checked.resume_only {
        Some(denial) => Err(denial),
        None => Ok(checked.entrant),
    }
}

/// [`check`], also returning the entrant's registration as it was read for the check.
async fn check_with_row(
    store: &Store,
    claims: &Claims,
    session: &VideoSession,
    now_ms: i64,
) -> Result<Checked, Denial> {
    if !session.is_open_at(now_ms) {
        return Err(Denial::SessionEnded);
    }
    let entrant = identify(store, claims, session).await?;
    let row = store
        .participant_of(&session.id, entrant.registrant())
        .await?;
    if row.as_ref().is_some_and(|r| r.removed()) {
        return Err(Denial::Removed);
    }
    if row.as_ref().is_some_and(|r| r.declined_at.is_some()) {
        return Err(Denial::Declined);
    }
    if !entrant.is_guest {
        require_membership(store, &entrant, session).await?;
    }
    let resume_only = match therapist_video_access(store, &session.therapist_id)
        .await?
        .require()
    {
        Ok(()) => None,
        // Running calls continue: someone in the call now may come back to it.
        Err(denial) if row.as_ref().is_some_and(|r| r.is_active()) => Some(denial),
        Err(denial) => return Err(denial),
    };
    Ok(Checked {
        entrant,
        row,
        resume_only,
    })
}

/// [`check`], then registers the entrant (idempotently). Used by
/// `POST /api/sessions/{id}/participants` and by the signaling `join`.
pub async fn admit_and_register(
    store: &Store,
    claims: &Claims,
    session_id: &str,
    now_ms: i64,
) -> Result<Admitted, Denial> {
    let session = session(store, session_id).await?;
    let Checked {
        entrant,
        resume_only,
        ..
    } = check_with_row(store, claims, &session, now_ms).await?;
    let (participant, newly_registered) = store
        .register_participant(
            &session.id,
            entrant.registrant(),
            &entrant.display_name,
            entrant.role.as_str(),
        )
        .await?;
    // A removal that landed between the check and the registration still wins.
    if participant.removed() {
        return Err(Denial::Removed);
    }
    let host = entrant.is_host();
    let must_wait = session.waiting_room() && !host && participant.admitted_at.is_none();
    Ok(Admitted {
        session,
        entrant,
        participant,
        newly_registered,
        resume_only,
        host,
        must_wait,
    })
}

/// Whether `claims` may have relay (TURN) credentials for `session_id` now: they may
/// enter it, and their registration (if any) was neither removed nor left behind.
pub async fn may_relay(
    store: &Store,
    claims: &Claims,
    session_id: &str,
    now_ms: i64,
) -> Result<(), Denial> {
    let session = session(store, session_id).await?;
    let row = check_with_row(store, claims, &session, now_ms).await?.row;
    if row.is_some_and(|r| r.has_left()) {
        return Err(Denial::Forbidden);
    }
    Ok(())
}

/// Who the token holder is, from the database (not from the token's own claims). A
/// guest must be a guest of this very session and not removed.
async fn identify(
    store: &Store,
    claims: &Claims,
    session: &VideoSession,
) -> Result<Entrant, Denial> {
    if claims.role == Role::Guest {
        if claims.session_id.as_deref() != Some(session.id.as_str()) {
            return Err(Denial::Forbidden);
        }
        if session.restricted() {
            return Err(Denial::GuestsNotAllowed);
        }
        let guest = store.guest(&claims.sub).await?.ok_or(Denial::Forbidden)?;
        if guest.session_id != session.id {
            return Err(Denial::Forbidden);
        }
        if guest.removed() {
            return Err(Denial::Removed);
        }
        return Ok(Entrant {
            subject: guest.id,
            is_guest: true,
            display_name: guest.display_name,
            role: Role::Guest,
            organization_id: None,
        });
    }
    let user = store.user(&claims.sub).await?.ok_or(Denial::Forbidden)?;
    let role = Role::parse(&user.role).ok_or(Denial::Forbidden)?;
    Ok(Entrant {
        subject: user.id,
        is_guest: false,
        display_name: user.display_name,
        role,
        organization_id: user.organization_id,
    })
}

/// A user belongs in a session: its therapist; staff of its organization; an active
/// client of the organization; and, in a restricted room, only its invitees.
async fn require_membership(
    store: &Store,
    entrant: &Entrant,
    session: &VideoSession,
) -> Result<(), Denial> {
    if entrant.subject == session.therapist_id {
        return Ok(());
    }
    let same_org = entrant.organization_id.as_deref() == Some(session.organization_id.as_str());
    let allowed = match entrant.role {
        Role::Therapist | Role::Organization | Role::Admin => same_org,
        Role::Client => {
            same_org
                && store
                    .is_active_client_of(&entrant.subject, &session.organization_id)
                    .await?
        }
        Role::SuperAdmin | Role::Guest => false,
    };
    if !allowed {
        return Err(Denial::Forbidden);
    }
    if session.restricted() && !store.is_room_invitee(&session.id, &entrant.subject).await? {
        return Err(Denial::Forbidden);
    }
    Ok(())
}

/// The open session behind a share link. Unknown, ended and expired links all answer
/// [`Denial::SessionNotFound`] (a closed link reveals nothing); a link withdrawn when
/// the therapist removed a guest answers [`Denial::LinkWithdrawn`] while its session
/// is still open.
pub async fn session_by_link(
    store: &Store,
    share_token: &str,
    now_ms: i64,
) -> Result<VideoSession, Denial> {
    if let Some(session) = store.session_by_share_token(share_token).await? {
        return if session.is_open_at(now_ms) {
            Ok(session)
        } else {
            Err(Denial::SessionNotFound)
        };
    }
    let Some(session_id) = store.withdrawn_link_session(share_token).await? else {
        return Err(Denial::SessionNotFound);
    };
    match store.session(&session_id).await? {
        Some(session) if session.is_open_at(now_ms) => Err(Denial::LinkWithdrawn),
        _ => Err(Denial::SessionNotFound),
    }
}

/// Mints a guest identity for the session behind a share link (the token is signed by
/// the caller): the link must be open and not withdrawn, the room must admit guests and
/// the therapist's video access must be on. The guest row and its audit entry
/// (`session.guest.create`) are written in one transaction.
pub async fn mint_guest(
    store: &Store,
    share_token: &str,
    display_name: &str,
    now_ms: i64,
) -> Result<(Guest, VideoSession), Denial> {
    let session = session_by_link(store, share_token, now_ms).await?;
    if session.restricted() {
        return Err(Denial::GuestsNotAllowed);
    }
    therapist_video_access(store, &session.therapist_id)
        .await?
        .require()?;
    let mut tx = store.pool().begin().await?;
    let guest = participants::create_guest(&mut tx, &session.id, display_name).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            organization_id: Some(&session.organization_id),
            actor_id: &guest.id,
            actor_role: Role::Guest.as_str(),
            action: "session.guest.create",
            target_type: "session",
            target_id: &session.id,
            before: None,
            after: Some(json!({"guest_id": guest.id})),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(session_id = %session.id, guest_id = %guest.id, "guest identity issued");
    Ok((guest, session))
}
