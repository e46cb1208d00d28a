//! Ending tokens before they expire: one token (sign-out) or every token of a subject
//! (e.g. a guest removed from a session). The revocation is stored, so REST and new
//! signaling admissions refuse the tokens, and live `/rtc` sockets opened with them are
//! closed with `token_revoked`.

use super::keys::CLOCK_SKEW_SECS;
use super::{Claims, Role};
use crate::clock::now_ms;
use crate::state::AppState;

/// Revokes the token `claims` came from (its `jti`) and closes its live sockets.
pub async fn revoke_token(state: &AppState, claims: &Claims) -> Result<(), sqlx::Error> {
    state
        .store
        .revoke_token(&claims.jti, &claims.sub, claims.exp.saturating_mul(1000))
        .await?;
    state.live.token_revoked(&claims.jti);
    tracing::info!(subject = %claims.sub, "token revoked");
    Ok(())
}

/// Revokes every token of `subject` (of kind `role`) issued until now and closes the
/// subject's live sockets. Tokens minted afterwards are not affected.
pub async fn revoke_subject(
    state: &AppState,
    subject: &str,
    role: Role,
) -> Result<(), sqlx::Error> {
    // No token issued until now outlives its maximum lifetime (plus clock skew).
    let longest_ms = (state.jwt.policy().max_ttl_secs(role) + CLOCK_SKEW_SECS) * 1000;
    state
        .store
        .revoke_subject(subject, now_ms() + longest_ms)
        .await?;
    state.live.subject_revoked(subject);
    tracing::info!(subject, "all tokens of the subject revoked");
    Ok(())
}
