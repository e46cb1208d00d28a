//! Unguessable tokens: share links, hold keys and any other secret that travels in a
//! URL or a header. One generator, so every such secret has the same strength.

use base64::Engine;
use rand::RngCore;

/// 256 random bits from the OS-seeded CSPRNG, URL-safe base64 without padding
/// (43 characters).
pub fn url_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a token, hex: what the database keeps of refresh tokens and
/// invitation links, so a copy of the database does not hand out sign-ins.
pub fn digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_url_safe_and_distinct() {
        let a = super::url_token();
        let b = super::url_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
