//! The one place where a [`Denial`] of the room and access rules gets its HTTP status.

use axum::http::StatusCode;

use crate::denial::Denial;
use crate::error::ApiError;

impl From<Denial> for ApiError {
    fn from(denial: Denial) -> Self {
        // A storage error carries its own mapping (and logs the cause).
        let denial = match denial {
            Denial::Store(err) => return ApiError::from(err),
            other => other,
        };
        let status = match &denial {
            Denial::SessionNotFound | Denial::ParticipantNotFound | Denial::NotWaiting => {
                StatusCode::NOT_FOUND
            }
            Denial::SessionEnded
            | Denial::CannotRemoveTherapist
            | Denial::AlreadyRemoved
            | Denial::AlreadyEnded => StatusCode::CONFLICT,
            Denial::Forbidden
            | Denial::WrongRole
            | Denial::Removed
            | Denial::LinkWithdrawn
            | Denial::GuestsNotAllowed
            | Denial::Declined
            | Denial::VideoAccess(_) => StatusCode::FORBIDDEN,
            Denial::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, denial.code(), denial.message())
    }
}
