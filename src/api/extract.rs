//! Request extractors whose rejections are TheraRoom JSON errors instead of axum's
//! plain-text ones, and the name check every REST route uses.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::StatusCode;

use crate::error::ApiError;

/// Largest request body the JSON routes read, in bytes. Our bodies are small
/// (the longest is a clinical note); anything bigger is refused with 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// `Json<T>` whose rejection is a 400 `invalid_json`, 413 `payload_too_large` or
/// 415 `unsupported_media_type` error body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            // A body over the limit (by Content-Length or while reading it).
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
            ),
            other => ApiError::bad_request("invalid_json", other.body_text()),
        }
    }
}

/// Checks a human-entered name with the shared rule of [`signaling::names`]
/// (trimmed, 1..=max characters, no control or bidi control characters, not only
/// invisible characters) and returns it trimmed; refusals are 400 `code`.
pub fn validate_name(
    raw: &str,
    max: usize,
    code: &'static str,
    what: &str,
) -> Result<String, ApiError> {
    signaling::names::check_name(raw, max)
        .map(str::to_string)
        .map_err(|err| ApiError::bad_request(code, err.message(what)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(validate_name("  Ada ", 10, "x", "name").unwrap(), "Ada");
        assert!(validate_name("", 10, "x", "name").is_err());
        assert!(validate_name("   ", 10, "x", "name").is_err());
        assert!(validate_name("a\u{0007}b", 10, "x", "name").is_err());
        assert!(validate_name("abcdefghijk", 10, "x", "name").is_err());
        assert_eq!(validate_name("Zoë", 3, "x", "name").unwrap(), "Zoë");
        let err = validate_name("\u{200B}\u{3164}", 10, "invalid_name", "name").unwrap_err();
        assert_eq!(err.code, "invalid_name");
        assert_eq!(err.message, "name must contain a visible character");
        let err = validate_name("a\u{202E}b", 10, "invalid_name", "name").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }
}
