//! Request extractors whose rejections are TheraRoom JSON errors instead of axum's
//! plain-text ones.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;

use crate::error::ApiError;

/// `Json<T>` whose rejection is a 400 `invalid_json` (or 415) error body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            other => ApiError::bad_request("invalid_json", other.body_text()),
        }
    }
}

/// Checks a human-entered name: trimmed, 1..=max characters, no control characters.
pub fn validate_name(
    raw: &str,
    max: usize,
    code: &'static str,
    what: &str,
) -> Result<String, ApiError> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 || len > max {
        return Err(ApiError::bad_request(
            code,
            format!("{what} must be 1 to {max} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            code,
            format!("{what} may not contain control characters"),
        ));
    }
    Ok(name.to_string())
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
    }
}
