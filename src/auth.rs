//! JWT authentication: who is asking.
//!
//! Tokens are HS256 JWTs signed with the configured secret. Only HS256 is accepted, so
//! `alg: none` and algorithm-confusion tokens are rejected. The [`Caller`] extractor
//! turns the `Authorization: Bearer` header into a verified identity or a 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// What a token holder is. Organization-scoped roles carry an `org_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A patient of a therapist.
    Client,
    /// A therapist (a "partner" in the seed documents).
    Therapist,
    /// An organization's own account (seed 000/003 "organization" role).
    Organization,
    /// An administrator of one organization.
    Admin,
    /// A platform operator, not bound to an organization.
    SuperAdmin,
    /// An anonymous participant admitted through a share link, scoped to one session.
    Guest,
}

impl Role {
    /// The wire name, as stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Therapist => "therapist",
            Role::Organization => "organization",
            Role::Admin => "admin",
            Role::SuperAdmin => "super_admin",
            Role::Guest => "guest",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Role> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }

    /// Roles that administer an organization's data.
    pub fn is_org_admin(self) -> bool {
        matches!(self, Role::Organization | Role::Admin)
    }
}

/// The claims TheraRoom puts in every token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: user id, or guest id for guests.
    pub sub: String,
    /// Role of the subject.
    pub role: Role,
    /// Organization the subject belongs to (absent for super admins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// For guests: the only session the token admits to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
}

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// The token was well formed and signed but `exp` has passed.
    Expired,
    /// Anything else: bad signature, wrong algorithm, malformed, missing claims.
    Invalid,
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Expired => ApiError::unauthorized("token_expired", "the token has expired"),
            TokenError::Invalid => {
                ApiError::unauthorized("invalid_token", "the token is not valid")
            }
        }
    }
}

impl JwtKeys {
    /// Builds keys from the shared secret.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Mints a token for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// Mints a token valid for `ttl_secs` from now.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        org_id: Option<&str>,
        session_id: Option<&str>,
        ttl_secs: i64,
    ) -> (String, Claims) {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: sub.to_string(),
            role,
            org_id: org_id.map(str::to_string),
            session_id: session_id.map(str::to_string),
            exp: now + ttl_secs,
            iat: now,
        };
        (self.sign(&claims), claims)
    }

    /// Verifies signature, algorithm and expiry (no leeway).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => {
                if data.claims.role == Role::Guest && data.claims.session_id.is_none() {
                    return Err(TokenError::Invalid);
                }
                Ok(data.claims)
            }
            Err(err) if matches!(err.kind(), ErrorKind::ExpiredSignature) => {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

/// A verified caller of a REST route.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl std::ops::Deref for Caller {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl Caller {
    /// True if the caller administers organization `org_id` (or is a super admin).
    pub fn administers(&self, org_id: &str) -> bool {
        self.role == Role::SuperAdmin
            || (self.role.is_org_admin() && self.org_id.as_deref() == Some(org_id))
    }
}

/// Extracts the bearer token of a request, if any.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    JwtKeys: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = <JwtKeys as axum::extract::FromRef<S>>::from_ref(state);
        let token = bearer_token(parts)
            .ok_or_else(|| ApiError::unauthorized("unauthorized", "missing bearer token"))?;
        Ok(Caller(keys.verify(token)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let keys = JwtKeys::new(b"secret-one");
        let (token, _) = keys.issue("u1", Role::Therapist, Some("o1"), None, 60);
        let claims = keys.verify(&token).expect("valid");
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.role, Role::Therapist);
        let other = JwtKeys::new(b"secret-two");
        assert_eq!(other.verify(&token).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn expired_is_reported() {
        let keys = JwtKeys::new(b"s");
        let (token, _) = keys.issue("u1", Role::Client, Some("o1"), None, -5);
        assert_eq!(keys.verify(&token).unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn alg_none_is_refused() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let exp = chrono::Utc::now().timestamp() + 600;
        let body = b64.encode(format!(
            r#"{{"sub":"u1","role":"super_admin","exp":{exp},"iat":0}}"#
        ));
        let keys = JwtKeys::new(b"s");
        assert_eq!(
            keys.verify(&format!("{header}.{body}.")).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn guest_without_session_is_invalid() {
        let keys = JwtKeys::new(b"s");
        let (token, _) = keys.issue("g1", Role::Guest, None, None, 60);
        assert_eq!(keys.verify(&token).unwrap_err(), TokenError::Invalid);
    }
}
