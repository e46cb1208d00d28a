//! The token's subject as the database knows it now: a signed token is only as good
//! as the account (or guest) behind it. Deleted, disabled, revoked or role-escalated
//! tokens stop working at once, not when they expire. One indexed query per request.

use super::keys::{JwtKeys, TokenError};
use super::{Claims, Role};
use crate::store::tokens::{GuestPrincipal, UserPrincipal};
use crate::store::Store;

/// A refused token: why, and who it claimed to be when it was well signed.
#[derive(Debug, Clone)]
pub struct Denial {
    /// Why.
    pub error: TokenError,
    /// Claimed subject and role, only for a token signed with our key.
    pub claimed: Option<(String, Role)>,
}

/// Authentication did not produce a caller.
#[derive(Debug)]
pub enum AuthError {
    /// The token or its holder is refused.
    Denied(Denial),
    /// The database could not be asked (not the caller's fault).
    Store(sqlx::Error),
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        AuthError::Store(err)
    }
}

/// Verifies `token` and checks its subject against the database: the user exists,
/// is not disabled and has the role and organization the token claims (a guest exists
/// and belongs to the token's session and organization), and neither the token nor
/// its subject is revoked. Returns the claims, which then agree with the database.
pub async fn authenticate(store: &Store, keys: &JwtKeys, token: &str) -> Result<Claims, AuthError> {
    let claims = keys.decode_signed(token).map_err(|error| {
        AuthError::Denied(Denial {
            error,
            claimed: None,
        })
    })?;
    let deny = |error: TokenError, claims: &Claims| {
        AuthError::Denied(Denial {
            error,
            claimed: Some((claims.sub.clone(), claims.role)),
        })
    };
    keys.check_times(&claims, chrono::Utc::now().timestamp())
        .map_err(|e| deny(e, &claims))?;
    let checked = match claims.role {
        Role::Guest => check_guest(
            store.guest_principal(&claims.sub, &claims.jti).await?,
            &claims,
        ),
        _ => check_user(
            store.user_principal(&claims.sub, &claims.jti).await?,
            &claims,
        ),
    };
    checked.map_err(|e| deny(e, &claims))?;
    Ok(claims)
}

/// True when the token or all tokens of its subject issued until then were revoked.
fn revoked(
    claims: &Claims,
    token_revoked_at: Option<i64>,
    subject_revoked_at: Option<i64>,
) -> bool {
    token_revoked_at.is_some() || subject_revoked_at.is_some_and(|at| at >= claims.iat * 1000)
}

fn check_user(row: Option<UserPrincipal>, claims: &Claims) -> Result<(), TokenError> {
    let row = row.ok_or(TokenError::UnknownSubject)?;
    // A deactivated account says so, rather than that its tokens were revoked with it.
    if row.disabled_at.is_some() {
        return Err(TokenError::Disabled);
    }
    if revoked(claims, row.token_revoked_at, row.subject_revoked_at) {
        return Err(TokenError::Revoked);
    }
    if row.role != claims.role.as_str() || row.organization_id != claims.org_id {
        return Err(TokenError::ClaimsMismatch);
    }
    Ok(())
}

fn check_guest(row: Option<GuestPrincipal>, claims: &Claims) -> Result<(), TokenError> {
    let row = row.ok_or(TokenError::UnknownSubject)?;
    if revoked(claims, row.token_revoked_at, row.subject_revoked_at) {
        return Err(TokenError::Revoked);
    }
    let same_session = claims.session_id.as_deref() == Some(row.session_id.as_str());
    let same_org = claims.org_id.as_deref() == Some(row.organization_id.as_str());
    if !(same_session && same_org) {
        return Err(TokenError::ClaimsMismatch);
    }
    Ok(())
}
