//! Time-limited TURN credentials in the TURN REST convention (coturn `use-auth-secret`):
//! username `<unix-expiry>:<subject>`, password `base64(HMAC-SHA1(secret, username))`.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

/// Issues TURN credentials with one shared secret.
#[derive(Clone)]
pub struct TurnIssuer {
    secret: Vec<u8>,
    uris: Vec<String>,
    ttl_secs: u64,
}

/// A credential as handed to clients.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TurnCredential {
    /// `<unix-expiry>:<subject>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub password: String,
    /// Lifetime in seconds.
    pub ttl: u64,
    /// TURN/STUN URIs.
    pub uris: Vec<String>,
}

impl TurnIssuer {
    /// Builds an issuer.
    pub fn new(secret: Vec<u8>, uris: Vec<String>, ttl_secs: u64) -> Self {
        Self {
            secret,
            uris,
            ttl_secs,
        }
    }

    /// Credential for `subject`, valid from `now_unix` for the configured TTL.
    pub fn issue_at(&self, subject: &str, now_unix: i64) -> TurnCredential {
        let expiry = now_unix + self.ttl_secs as i64;
        let username = format!("{expiry}:{subject}");
        TurnCredential {
            password: self.sign(&username),
            username,
            ttl: self.ttl_secs,
            uris: self.uris.clone(),
        }
    }

    /// Credential for `subject`, valid from now.
    pub fn issue(&self, subject: &str) -> TurnCredential {
        self.issue_at(subject, chrono::Utc::now().timestamp())
    }

    /// The password for a username.
    pub fn sign(&self, username: &str) -> String {
        let mut mac =
            Hmac::<Sha1>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(username.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The URIs handed out.
    pub fn uris(&self) -> &[String] {
        &self.uris
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc2104_hmac_sha1_vector() {
        // RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?".
        let issuer = TurnIssuer::new(b"Jefe".to_vec(), vec![], 60);
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap());
        assert_eq!(issuer.sign("what do ya want for nothing?"), expected);
    }

    #[test]
    fn username_carries_expiry_and_subject() {
        let issuer = TurnIssuer::new(b"k".to_vec(), vec!["turn:127.0.0.1:3478".into()], 600);
        let cred = issuer.issue_at("user-1", 1_000);
        assert_eq!(cred.username, "1600:user-1");
        assert_eq!(cred.ttl, 600);
        assert_eq!(cred.uris, vec!["turn:127.0.0.1:3478".to_string()]);
    }
}
