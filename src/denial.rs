//! Why the room rules say no: the domain answer of [`crate::rooms`], [`crate::policy`]
//! and [`crate::access`].
//!
//! A denial knows its stable code and a sentence for the person refused, never an HTTP
//! status or a close code: REST maps it once in `src/api/denial.rs`, signaling once in
//! `src/rtc/gate.rs`.

use crate::access::AccessReason;

/// A refusal by the room and access rules, or a storage failure while deciding.
#[derive(Debug, thiserror::Error)]
pub enum Denial {
    /// No such session, or one the caller may not know about.
    #[error("session not found")]
    SessionNotFound,
    /// The session was ended or has expired.
    #[error("this session has ended")]
    SessionEnded,
    /// The caller does not belong in this session (other organization, not an invitee,
    /// guest token of another session, unknown account).
    #[error("you may not join this session")]
    Forbidden,
    /// The caller's role may not do this (e.g. only therapists start sessions).
    #[error("your role may not perform this action")]
    WrongRole,
    /// The therapist removed this person or guest from the session; it sticks.
    #[error("the therapist removed you from this session")]
    Removed,
    /// A share link that was withdrawn when the therapist removed a guest: it mints
    /// no more guest identities.
    #[error("this link was withdrawn by the therapist; ask them for a new one")]
    LinkWithdrawn,
    /// Restricted rooms (booked 1:1 and group sessions) admit invitees only.
    #[error("this session admits invited participants only")]
    GuestsNotAllowed,
    /// No such participant in this session.
    #[error("participant not found in this session")]
    ParticipantNotFound,
    /// The session's own therapist cannot be removed from it.
    #[error("the session's therapist cannot be removed")]
    CannotRemoveTherapist,
    /// A host declined this person in the waiting room; it sticks for this session.
    #[error("the therapist did not let you in to this session")]
    Declined,
    /// Nobody of that id waits in this session's waiting room now.
    #[error("nobody of that id is waiting in this session")]
    NotWaiting,
    /// The participant was already removed.
    #[error("the participant was already removed")]
    AlreadyRemoved,
    /// The session was already ended.
    #[error("the session has already ended")]
    AlreadyEnded,
    /// The therapist's or the organization's video access is switched off.
    #[error("{}", .0.message())]
    VideoAccess(AccessReason),
    /// The database failed while deciding; the cause goes to the log only.
    #[error("storage error: {0}")]
    Store(#[from] sqlx::Error),
}

impl Denial {
    /// The stable code clients switch on, shared by REST and signaling.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::SessionNotFound => "session_not_found",
            Denial::SessionEnded => "session_ended",
            Denial::Forbidden | Denial::WrongRole => "forbidden",
            Denial::Removed | Denial::LinkWithdrawn => "removed",
            Denial::GuestsNotAllowed => "guests_not_allowed",
            Denial::Declined => "declined",
            Denial::NotWaiting => "not_waiting",
            Denial::ParticipantNotFound => "participant_not_found",
            Denial::CannotRemoveTherapist => "cannot_remove_therapist",
            Denial::AlreadyRemoved => "participant_already_removed",
            Denial::AlreadyEnded => "session_already_ended",
            Denial::VideoAccess(reason) => reason.code(),
            Denial::Store(_) => "internal",
        }
    }

    /// The sentence shown to the refused person (no internal detail).
    pub fn message(&self) -> String {
        match self {
            Denial::Store(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_store_errors_say_nothing() {
        assert_eq!(Denial::Removed.code(), "removed");
        assert_eq!(Denial::LinkWithdrawn.code(), "removed");
        assert_eq!(
            Denial::VideoAccess(AccessReason::TherapistDisabled).code(),
            "therapist_disabled"
        );
        let store = Denial::Store(sqlx::Error::PoolTimedOut);
        assert_eq!(store.code(), "internal");
        assert_eq!(store.message(), "internal error");
    }
}
