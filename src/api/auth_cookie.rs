//! The refresh token's cookie: HttpOnly (page scripts never see it), SameSite=Strict
//! (other sites cannot make the browser send it), scoped to `/api/auth` (no other
//! route receives it) and Secure unless the server runs plain HTTP on loopback.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};

/// Name of the cookie.
pub const NAME: &str = "theraroom_refresh";
const PATH: &str = "/api/auth";

/// A `Set-Cookie` value holding `token` for `max_age_secs`.
pub fn set(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    header(token, max_age_secs, secure)
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear(secure: bool) -> HeaderValue {
    header("", 0, secure)
}

fn header(value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{NAME}={value}; Path={PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    // Tokens are URL-safe base64, so the value is always a valid header.
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("theraroom_refresh=; Max-Age=0"))
}

/// The refresh token the request's cookies carry, if any.
pub fn read(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == NAME && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped() {
        let value = set("abc", 60, true);
        let text = value.to_str().unwrap();
        assert!(text.starts_with(
            "theraroom_refresh=abc; Path=/api/auth; HttpOnly; SameSite=Strict; Max-Age=60"
        ));
        assert!(text.ends_with("; Secure"));
        assert!(!clear(false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn the_token_is_read_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; theraroom_refresh=tok; b=2"),
        );
        assert_eq!(read(&headers).as_deref(), Some("tok"));
        headers.insert(COOKIE, HeaderValue::from_static("theraroom_refresh="));
        assert_eq!(read(&headers), None);
    }
}
