//! JWT authentication: who is asking.
//!
//! Tokens are HS256 JWTs signed with the configured secret ([`keys`]): only HS256 is
//! accepted (so `alg: none` and algorithm-confusion tokens are rejected), `iss`/`aud`
//! must be TheraRoom's, lifetimes are bounded per role. Every request then checks the
//! subject against the database and the revocation list ([`principal`]); failures are
//! rate limited per client address and audited ([`guard`]). The [`Caller`] extractor
//! ties these together for REST routes; [`revoke`] ends tokens early.

pub mod guard;
pub mod keys;
pub mod principal;
pub mod revoke;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

pub use guard::AuthGuard;
pub use keys::{JwtKeys, TokenError, TokenPolicy, AUDIENCE, ISSUER};
pub use principal::{authenticate, AuthError, Denial};

use crate::error::ApiError;
use crate::state::AppState;

/// What a token holder is. Organization-scoped roles carry an `org_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A patient of a therapist.
    Client,
    /// A therapist (a "partner" in the seed documents).
    Therapist,
    /// An organization's own account (the "organization" role of the video-access and blog-permission rules).
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
    /// Issuer: always [`ISSUER`].
    pub iss: String,
    /// Audience: always [`AUDIENCE`].
    pub aud: String,
    /// Token id (random), the key of the revocation list.
    pub jti: String,
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
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        ApiError::unauthorized(err.code(), err.message())
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

/// The client address of a request, when the server was started with connect info.
pub fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = bearer_token(parts)
            .ok_or_else(|| ApiError::unauthorized("unauthorized", "missing bearer token"))?;
        match authenticate(&state.store, &state.jwt, token).await {
            Ok(claims) => Ok(Caller(claims)),
            Err(AuthError::Store(err)) => Err(err.into()),
            Err(AuthError::Denied(denial)) => Err(state
                .auth_guard
                .refuse(&state.store, client_ip(parts), &denial)
                .await),
        }
    }
}
