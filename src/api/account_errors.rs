//! The one place where an [`AccountError`] gets its HTTP status.

use axum::http::StatusCode;

use crate::accounts::AccountError;
use crate::error::ApiError;

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let err = match err {
            AccountError::Store(db) => return ApiError::from(db),
            other => other,
        };
        let status = match &err {
            AccountError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AccountError::Internal(what) => {
                tracing::error!(what, "account action failed");
                return ApiError::internal();
            }
            AccountError::TooManyAttempts(wait) => {
                let mut limited = ApiError::rate_limited(*wait, err.to_string());
                limited.code = err.code();
                return limited;
            }
            AccountError::InvalidCredentials | AccountError::InvalidRefreshToken => {
                StatusCode::UNAUTHORIZED
            }
            AccountError::WeakPassword
            | AccountError::InvalidEmail
            | AccountError::InvalidName
            | AccountError::InvalidRole => StatusCode::BAD_REQUEST,
            AccountError::EmailTaken => StatusCode::CONFLICT,
            AccountError::InvitationUsed | AccountError::InvitationExpired => StatusCode::GONE,
            AccountError::InvitationNotFound
            | AccountError::OrganizationNotFound
            | AccountError::PersonNotFound
            | AccountError::TherapistNotFound => StatusCode::NOT_FOUND,
            AccountError::Forbidden => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, err.code(), err.to_string())
    }
}
