//! The one error type every REST handler returns.
//!
//! Each variant maps to an HTTP status; each error carries a stable machine-readable
//! `code` (clients switch on it) and a human message. The body is always
//! `{"error":{"code":"...","message":"..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// A refusal or failure that a REST client receives as a JSON error body.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status sent to the client.
    pub status: StatusCode,
    /// Stable code, e.g. `therapist_disabled`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// For 429: seconds until a retry may succeed (sent as `Retry-After`).
    pub retry_after_secs: Option<u64>,
}

/// Wire shape of an error body, also used by the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// Code and message of an [`ErrorBody`].
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// Builds an error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }
    /// 400: the request is malformed or violates a rule.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 401: no valid credentials.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    /// 403: authenticated but not allowed.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    /// 404: not found, or not visible to the caller.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    /// 409: conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// 403 for a caller whose role may not use this route.
    pub fn wrong_role() -> Self {
        Self::forbidden("forbidden", "your role may not perform this action")
    }
    /// 404 for a session that does not exist or that the caller may not see.
    pub fn session_not_found() -> Self {
        Self::not_found("session_not_found", "session not found")
    }
    /// 429 `rate_limited`, with the seconds to wait in `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64, message: impl Into<String>) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }
    /// Refusal of a signaling socket at its connection caps: 503 when the server is
    /// full, 429 when the caller's address holds too many sockets.
    pub fn too_many_connections(cap: signaling::CapExceeded) -> Self {
        match cap {
            signaling::CapExceeded::Total => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                "the server holds its maximum number of live connections; retry later",
            ),
            signaling::CapExceeded::PerAddress => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "too many live connections from your address",
            ),
        }
    }
    /// 500 without details: the cause goes to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error");
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return ApiError::conflict("conflict", "conflicts with existing data");
            }
            if db.is_foreign_key_violation() {
                return ApiError::bad_request(
                    "invalid_reference",
                    "a referenced record does not exist",
                );
            }
        }
        ApiError::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Result type of REST handlers.
pub type ApiResult<T> = Result<T, ApiError>;
