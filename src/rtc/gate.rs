//! Admission over the database: the [`Gatekeeper`] the signaling hub asks before a
//! socket enters a room, and the participant-row bookkeeping that follows. The room
//! rules live in [`crate::rooms::admission`]; this file only translates their
//! [`Denial`] into signaling error codes, once.

use async_trait::async_trait;
use signaling::protocol::{IceServerInfo, SessionSummary};
use signaling::{Admission, Authenticated, Gatekeeper, Refusal, WaitingDecision};

use crate::auth::{authenticate, AuthError, Claims, JwtKeys, TokenError};
use crate::clock::{now_ms, rfc3339};
use crate::denial::Denial;
use crate::rooms::admission::{self, admit_and_register};
use crate::rooms::presence;
use crate::rooms::waiting::{decide, Decider};
use crate::store::Store;
use crate::turn::TurnIssuer;

/// Admission and participant bookkeeping over the database.
pub struct StoreGatekeeper {
    /// Database.
    pub store: Store,
    /// Token verification.
    pub jwt: JwtKeys,
    /// TURN credentials for `joined.ice_servers`.
    pub turn: TurnIssuer,
}

fn refusal(code: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        code: code.to_string(),
        message: message.into(),
    }
}

/// The signaling answer to a denial of the room rules: the same code as REST, and a
/// message without internal detail (storage errors are logged here, not sent).
fn refusal_for(denial: Denial) -> Refusal {
    if let Denial::Store(err) = &denial {
        tracing::error!(error = %err, "database error during admission");
    }
    refusal(denial.code(), denial.message())
}

impl StoreGatekeeper {
    /// ICE servers for `holder`'s connections: TURN with fresh credentials when TURN
    /// is configured.
    fn ice_servers(&self, holder: &str) -> Vec<IceServerInfo> {
        if self.turn.uris().is_empty() {
            return Vec::new();
        }
        let credential = self.turn.issue(holder);
        vec![IceServerInfo {
            urls: credential.uris,
            username: Some(credential.username),
            credential: Some(credential.password),
        }]
    }

    /// Verifies `token` and its subject against the database, as REST does. A revoked
    /// token is `token_revoked`; every other refusal is `unauthorized`.
    async fn verified(&self, token: &str) -> Result<Claims, Refusal> {
        authenticate(&self.store, &self.jwt, token)
            .await
            .map_err(|err| match err {
                AuthError::Denied(denial) => {
                    tracing::info!(
                        reason = denial.error.reason(),
                        "signaling authentication failed"
                    );
                    match denial.error {
                        TokenError::Revoked => refusal("token_revoked", denial.error.message()),
                        other => refusal("unauthorized", other.message()),
                    }
                }
                AuthError::Store(err) => {
                    tracing::error!(error = %err, "database error during authentication");
                    refusal("internal", "internal error")
                }
            })
    }
}

#[async_trait]
impl Gatekeeper for StoreGatekeeper {
    async fn admit(&self, token: &str, session_id: &str) -> Result<Admission, Refusal> {
        let claims = self.verified(token).await?;
        let admitted = admit_and_register(&self.store, &claims, session_id, now_ms())
            .await
            .map_err(refusal_for)?;
        let (session, entrant, row) = (admitted.session, admitted.entrant, admitted.participant);
        let ice_servers = self.ice_servers(&row.id);
        Ok(Admission {
            person_id: row.id,
            subject: entrant.subject,
            display_name: entrant.display_name,
            role: entrant.role.as_str().to_string(),
            is_guest: entrant.is_guest,
            session: SessionSummary {
                id: session.id.clone(),
                name: session.session_name.clone(),
                kind: session.kind.clone(),
                max_participants: u32::try_from(session.max_participants).unwrap_or(2),
                expires_at: rfc3339(session.expires_at),
                waiting_room: session.waiting_room(),
            },
            expires_at_ms: session.expires_at,
            ice_servers,
            token_id: Some(claims.jti),
            host: admitted.host,
            must_wait: admitted.must_wait,
            therapist_name: session.therapist_name.clone(),
            resume_only: admitted.resume_only.map(refusal_for),
        })
    }

    async fn probe(&self, token: &str, session_id: &str) -> Result<Vec<IceServerInfo>, Refusal> {
        let claims = self.verified(token).await?;
        let session = admission::session(&self.store, session_id)
            .await
            .map_err(refusal_for)?;
        admission::check(&self.store, &claims, &session, now_ms())
            .await
            .map_err(refusal_for)?;
        Ok(self.ice_servers(&format!("probe-{}", claims.sub)))
    }

    async fn waiting_decision(&self, decision: WaitingDecision<'_>) -> Result<(), Refusal> {
        let session = admission::session(&self.store, decision.session_id)
            .await
            .map_err(refusal_for)?;
        let decider = Decider {
            subject: decision.actor_subject,
            role: decision.actor_role,
        };
        decide(
            &self.store,
            decider,
            &session,
            decision.person_id,
            decision.admitted,
        )
        .await
        .map_err(refusal_for)
    }

    async fn authenticate(&self, token: &str) -> Result<Authenticated, Refusal> {
        let claims = self.verified(token).await?;
        Ok(Authenticated {
            subject: claims.sub,
            token_id: Some(claims.jti),
        })
    }

    async fn participant_joined(&self, participant_id: &str) {
        if let Err(err) = presence::joined(&self.store, participant_id).await {
            tracing::error!(error = %err, participant_id, "could not mark participant joined");
        }
    }

    async fn participant_left(&self, participant_id: &str) {
        if let Err(err) = presence::left(&self.store, participant_id).await {
            tracing::error!(error = %err, participant_id, "could not mark participant left");
        }
    }

    async fn participant_waiting(&self, participant_id: &str) {
        if let Err(err) = presence::waiting(&self.store, participant_id).await {
            tracing::error!(error = %err, participant_id, "could not report a waiting participant");
        }
    }
}
