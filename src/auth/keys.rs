//! Minting and verifying the token itself: signature, algorithm, issuer, audience and
//! time claims. What the token's subject is in the database is checked elsewhere
//! ([`super::principal`]); this module needs no I/O.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::{Claims, Role};

/// `iss` of every token this server mints, and the only one it accepts.
pub const ISSUER: &str = "theraroom";
/// `aud` of every token this server mints, and the only one it accepts.
pub const AUDIENCE: &str = "theraroom";
/// How far in the future `iat`/`nbf` may lie (clocks of instances differ a little).
pub const CLOCK_SKEW_SECS: i64 = 60;
/// Default longest lifetime (`exp - iat`) of a user token: 24 h.
pub const DEFAULT_USER_MAX_TTL_SECS: i64 = 24 * 3600;
/// Default longest lifetime (`exp - iat`) of a guest token: 4 h.
pub const DEFAULT_GUEST_MAX_TTL_SECS: i64 = 4 * 3600;

/// Longest token lifetimes per kind of subject. A leaked token is only useful this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Longest `exp - iat` of a user token, seconds.
    pub user_max_ttl_secs: i64,
    /// Longest `exp - iat` of a guest token, seconds.
    pub guest_max_ttl_secs: i64,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            user_max_ttl_secs: DEFAULT_USER_MAX_TTL_SECS,
            guest_max_ttl_secs: DEFAULT_GUEST_MAX_TTL_SECS,
        }
    }
}

impl TokenPolicy {
    /// Longest lifetime of a token for `role`, seconds.
    pub fn max_ttl_secs(&self, role: Role) -> i64 {
        match role {
            Role::Guest => self.guest_max_ttl_secs,
            _ => self.user_max_ttl_secs,
        }
    }
}

/// Why a token (or its holder) was refused. Each variant has a stable error code
/// ([`TokenError::code`]) and an audit reason ([`TokenError::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Well signed, but `exp` has passed.
    Expired,
    /// Bad signature, wrong algorithm, issuer or audience, malformed, missing claims.
    Invalid,
    /// `exp - iat` is longer than the role's maximum lifetime.
    LifetimeExceeded,
    /// `iat` or `nbf` lies in the future (beyond [`CLOCK_SKEW_SECS`]).
    NotYetValid,
    /// The token, or every token of its subject, was revoked.
    Revoked,
    /// The subject (user or guest) does not exist (any more).
    UnknownSubject,
    /// The user's account is disabled.
    Disabled,
    /// Role, organization or session in the token differ from the database.
    ClaimsMismatch,
}

impl TokenError {
    /// Stable error code sent to clients.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Expired => "token_expired",
            TokenError::Invalid | TokenError::UnknownSubject | TokenError::ClaimsMismatch => {
                "invalid_token"
            }
            TokenError::LifetimeExceeded => "token_lifetime_exceeded",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::Revoked => "token_revoked",
            TokenError::Disabled => "account_disabled",
        }
    }

    /// Human message sent to clients.
    pub fn message(self) -> &'static str {
        match self {
            TokenError::Expired => "the token has expired",
            TokenError::Invalid => "the token is not valid",
            TokenError::LifetimeExceeded => "the token's lifetime exceeds the maximum allowed",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::Revoked => "the token has been revoked",
            TokenError::UnknownSubject => "the token's account does not exist",
            TokenError::Disabled => "the account is disabled",
            TokenError::ClaimsMismatch => "the token does not match the account",
        }
    }

    /// Reason recorded in the `auth.failed` audit entry.
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Expired => "expired",
            TokenError::Invalid => "invalid",
            TokenError::LifetimeExceeded => "lifetime_exceeded",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Revoked => "revoked",
            TokenError::UnknownSubject => "unknown_user",
            TokenError::Disabled => "disabled",
            TokenError::ClaimsMismatch => "claims_mismatch",
        }
    }
}

/// Signs and verifies tokens with one HS256 secret, under one [`TokenPolicy`].
/// Cheap to clone.
#[derive(Clone)]
pub struct JwtKeys {
    inner: Arc<KeysInner>,
}

struct KeysInner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    policy: TokenPolicy,
}

impl JwtKeys {
    /// Keys for `secret` with the default lifetimes. The secret's length is checked
    /// where it is loaded ([`crate::config::load_or_create_secret`]).
    pub fn new(secret: &[u8]) -> Self {
        Self::with_policy(secret, TokenPolicy::default())
    }

    /// Keys for `secret` with the given lifetimes.
    pub fn with_policy(secret: &[u8], policy: TokenPolicy) -> Self {
        Self {
            inner: Arc::new(KeysInner {
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
                policy,
            }),
        }
    }

    /// The lifetimes tokens are minted and checked with.
    pub fn policy(&self) -> TokenPolicy {
        self.inner.policy
    }

    /// Mints a token for `claims` as they are (tests use it to craft odd tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.inner.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// Mints a token valid for `ttl_secs` from now, with a fresh random `jti`. A
    /// lifetime above the role's maximum is clamped to it.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        org_id: Option<&str>,
        session_id: Option<&str>,
        ttl_secs: i64,
    ) -> (String, Claims) {
        let now = chrono::Utc::now().timestamp();
        let ttl = ttl_secs.min(self.inner.policy.max_ttl_secs(role));
        let claims = Claims {
            iss: ISSUER.to_string(),
            aud: AUDIENCE.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            sub: sub.to_string(),
            role,
            org_id: org_id.map(str::to_string),
            session_id: session_id.map(str::to_string),
            exp: now + ttl,
            iat: now,
            nbf: Some(now),
        };
        (self.sign(&claims), claims)
    }

    /// Checks signature, algorithm, issuer, audience and the shape of the claims, but
    /// not the time claims: the result names a claimed subject even when expired.
    pub fn decode_signed(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, &validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?
            .claims;
        let guest_unscoped = claims.role == Role::Guest && claims.session_id.is_none();
        if guest_unscoped || claims.jti.trim().is_empty() || claims.sub.trim().is_empty() {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }

    /// Checks the time claims of decoded `claims` at `now` (Unix seconds): not
    /// expired (no leeway), not issued or valid only in the future, not longer-lived
    /// than the role allows.
    pub fn check_times(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        let future = |t: i64| t > now + CLOCK_SKEW_SECS;
        if future(claims.iat) || claims.nbf.is_some_and(future) {
            return Err(TokenError::NotYetValid);
        }
        if claims.exp - claims.iat > self.inner.policy.max_ttl_secs(claims.role) {
            return Err(TokenError::LifetimeExceeded);
        }
        Ok(())
    }

    /// Verifies the token alone ([`Self::decode_signed`] and [`Self::check_times`]).
    /// Callers serving requests use [`super::principal::authenticate`], which also
    /// checks the subject against the database.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = self.decode_signed(token)?;
        self.check_times(&claims, chrono::Utc::now().timestamp())?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"unit-test-secret-of-at-least-32-bytes";

    fn keys() -> JwtKeys {
        JwtKeys::new(SECRET)
    }

    #[test]
    fn round_trip_and_forgery() {
        let (token, issued) = keys().issue("u1", Role::Therapist, Some("o1"), None, 60);
        let claims = keys().verify(&token).expect("valid");
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.role, Role::Therapist);
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            (ISSUER, AUDIENCE)
        );
        assert_eq!(claims.jti, issued.jti);
        let other = JwtKeys::new(b"another-unit-test-secret-of-32-bytes");
        assert_eq!(other.verify(&token).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn every_token_gets_its_own_jti() {
        let (_, a) = keys().issue("u1", Role::Client, Some("o1"), None, 60);
        let (_, b) = keys().issue("u1", Role::Client, Some("o1"), None, 60);
        assert_ne!(a.jti, b.jti);
        assert!(uuid::Uuid::parse_str(&a.jti).is_ok());
    }

    #[test]
    fn expired_is_reported() {
        let (token, _) = keys().issue("u1", Role::Client, Some("o1"), None, -5);
        assert_eq!(keys().verify(&token).unwrap_err(), TokenError::Expired);
        // The claimed subject stays readable for the audit entry.
        assert_eq!(keys().decode_signed(&token).expect("signed").sub, "u1");
    }

    #[test]
    fn issue_clamps_to_the_role_maximum() {
        let (_, user) = keys().issue("u1", Role::Client, Some("o1"), None, 100 * 86_400);
        assert_eq!(user.exp - user.iat, DEFAULT_USER_MAX_TTL_SECS);
        let (_, guest) = keys().issue("g1", Role::Guest, Some("o1"), Some("s1"), 86_400);
        assert_eq!(guest.exp - guest.iat, DEFAULT_GUEST_MAX_TTL_SECS);
    }

    #[test]
    fn time_claims_are_checked() {
        let k = keys();
        let (_, base) = k.issue("u1", Role::Client, Some("o1"), None, 600);
        let now = base.iat;
        let long = Claims {
            exp: now + 100 * 365 * 86_400,
            ..base.clone()
        };
        assert_eq!(k.check_times(&long, now), Err(TokenError::LifetimeExceeded));
        let future_iat = Claims {
            iat: now + 3600,
            exp: now + 7200,
            ..base.clone()
        };
        assert_eq!(
            k.check_times(&future_iat, now),
            Err(TokenError::NotYetValid)
        );
        let future_nbf = Claims {
            nbf: Some(now + 3600),
            ..base.clone()
        };
        assert_eq!(
            k.check_times(&future_nbf, now),
            Err(TokenError::NotYetValid)
        );
        let small_skew = Claims {
            iat: now + 30,
            nbf: Some(now + 30),
            ..base.clone()
        };
        assert_eq!(k.check_times(&small_skew, now), Ok(()));
        let short_guest_policy = JwtKeys::with_policy(
            SECRET,
            TokenPolicy {
                user_max_ttl_secs: 600,
                guest_max_ttl_secs: 60,
            },
        );
        let guest = Claims {
            role: Role::Guest,
            session_id: Some("s1".into()),
            ..base
        };
        assert_eq!(
            short_guest_policy.check_times(&guest, now),
            Err(TokenError::LifetimeExceeded)
        );
    }

    #[test]
    fn issuer_and_audience_are_required() {
        let k = keys();
        let (_, base) = k.issue("u1", Role::Client, Some("o1"), None, 600);
        let wrong_iss = k.sign(&Claims {
            iss: "someone-else".into(),
            ..base.clone()
        });
        assert_eq!(k.verify(&wrong_iss).unwrap_err(), TokenError::Invalid);
        let wrong_aud = k.sign(&Claims {
            aud: "another-app".into(),
            ..base.clone()
        });
        assert_eq!(k.verify(&wrong_aud).unwrap_err(), TokenError::Invalid);
        let no_aud = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"iss": ISSUER, "jti": "j", "sub": "u1", "role": "client",
                "org_id": "o1", "exp": base.exp, "iat": base.iat}),
            &EncodingKey::from_secret(SECRET),
        )
        .expect("sign");
        assert_eq!(k.verify(&no_aud).unwrap_err(), TokenError::Invalid);
        let no_jti = k.sign(&Claims {
            jti: String::new(),
            ..base
        });
        assert_eq!(k.verify(&no_jti).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn alg_none_is_refused() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let exp = chrono::Utc::now().timestamp() + 600;
        let body = b64.encode(format!(
            r#"{{"iss":"theraroom","aud":"theraroom","jti":"j","sub":"u1","role":"super_admin","exp":{exp},"iat":0}}"#
        ));
        assert_eq!(
            keys().verify(&format!("{header}.{body}.")).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn guest_without_session_is_invalid() {
        let (token, _) = keys().issue("g1", Role::Guest, None, None, 60);
        assert_eq!(keys().verify(&token).unwrap_err(), TokenError::Invalid);
    }
}
