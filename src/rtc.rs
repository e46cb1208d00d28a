//! Wiring of live video into the server: the `/rtc` WebSocket route, the
//! [`signaling::Gatekeeper`] backed by the store and the access rules, and the
//! [`LiveControl`] that lets REST changes reach live rooms.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use signaling::protocol::{IceServerInfo, SessionSummary, MAX_MESSAGE_BYTES};
use signaling::{Admission, Flow, Gatekeeper, Hub, Outbound, Refusal};

use crate::auth::{JwtKeys, TokenError};
use crate::clock::{now_ms, rfc3339};
use crate::policy::admit;
use crate::state::LiveControl;
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

#[async_trait]
impl Gatekeeper for StoreGatekeeper {
    async fn admit(&self, token: &str, session_id: &str) -> Result<Admission, Refusal> {
        let claims = self.jwt.verify(token).map_err(|e| match e {
            TokenError::Expired => refusal("unauthorized", "the token has expired"),
            TokenError::Invalid => refusal("unauthorized", "the token is not valid"),
        })?;
        let internal = |err: sqlx::Error| {
            tracing::error!(error = %err, "database error during admission");
            refusal("internal", "internal error")
        };
        let session = self
            .store
            .session(session_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| refusal("session_not_found", "session not found"))?;
        let entrant = admit(&self.store, &claims, &session, now_ms())
            .await
            .map_err(|err| match err.code {
                "removed" => refusal("forbidden", err.message),
                code => refusal(code, err.message),
            })?;
        let (row, _) = self
            .store
            .register_participant(
                &session.id,
                entrant.registrant(),
                &entrant.display_name,
                entrant.role.as_str(),
            )
            .await
            .map_err(internal)?;
        let ice_servers = if self.turn.uris().is_empty() {
            Vec::new()
        } else {
            let credential = self.turn.issue(&row.id);
            vec![IceServerInfo {
                urls: credential.uris,
                username: Some(credential.username),
                credential: Some(credential.password),
            }]
        };
        Ok(Admission {
            participant_id: row.id,
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
            },
            expires_at_ms: session.expires_at,
            ice_servers,
        })
    }

    async fn authenticate(&self, token: &str) -> Result<String, Refusal> {
        self.jwt
            .verify(token)
            .map(|claims| claims.sub)
            .map_err(|_| refusal("unauthorized", "the token is not valid"))
    }

    async fn participant_joined(&self, participant_id: &str) {
        if let Err(err) = self.store.mark_participant_joined(participant_id).await {
            tracing::error!(error = %err, participant_id, "could not mark participant joined");
        }
    }

    async fn participant_left(&self, participant_id: &str) {
        if let Err(err) = self.store.mark_participant_left(participant_id).await {
            tracing::error!(error = %err, participant_id, "could not mark participant left");
        }
    }
}

/// REST → live rooms.
pub struct HubControl(pub Hub);

impl LiveControl for HubControl {
    fn session_ended(&self, session_id: &str) {
        let hub = self.0.clone();
        let id = session_id.to_string();
        tokio::spawn(async move { hub.end_session(&id, "ended_by_therapist").await });
    }

    fn notify(&self, user_id: &str, notification: serde_json::Value) {
        self.0.notify(user_id, notification);
    }

    fn participant_removed(&self, session_id: &str, participant_id: &str) {
        let hub = self.0.clone();
        let (sid, pid) = (session_id.to_string(), participant_id.to_string());
        tokio::spawn(async move { hub.remove_participant(&sid, &pid).await });
    }
}

/// How often the server pings an idle socket, and when silence counts as a drop.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// The `/rtc` route.
pub fn routes(hub: Hub) -> Router {
    Router::new().route("/rtc", get(upgrade)).with_state(hub)
}

async fn upgrade(State(hub): State<Hub>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let header_token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    ws.max_message_size(MAX_MESSAGE_BYTES + 1024)
        .max_frame_size(MAX_MESSAGE_BYTES + 1024)
        .on_upgrade(move |socket| run_socket(hub, socket, header_token))
}

/// Pumps one WebSocket: frames in → connection; outbox → frames out.
async fn run_socket(hub: Hub, mut socket: WebSocket, header_token: Option<String>) {
    let (mut connection, mut outbound) = hub.connect(header_token);
    let join_deadline = tokio::time::sleep(hub.config().join_timeout);
    tokio::pin!(join_deadline);
    // First ping after one period: pinging at once would race the client's `join`.
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = tokio::time::Instant::now();
    let mut reading = true;
    loop {
        tokio::select! {
            incoming = socket.recv(), if reading => {
                last_heard = tokio::time::Instant::now();
                let flow = match incoming {
                    Some(Ok(Message::Text(text))) => connection.handle_text(text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => connection.handle_binary(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "websocket receive error");
                        if err.to_string().contains("too long") || err.to_string().contains("Space limit") {
                            connection.handle_oversize()
                        } else {
                            break;
                        }
                    }
                };
                if flow == Flow::Stop {
                    reading = false;
                }
            }
            out = outbound.recv() => match out {
                Some(Outbound::Message(message)) => {
                    let Ok(text) = serde_json::to_string(&message) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close { code, reason }) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    // Closing handshake: read until the client's close reply (bounded). Dropping
                    // the socket with unread client data (a pong, a late answer) makes the kernel
                    // send RST, and the client loses the error and close frame (sees 1006).
                    let drain = async { while let Some(Ok(_)) = socket.recv().await {} };
                    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
                    break;
                }
                None => break,
            },
            _ = &mut join_deadline, if !connection.is_joined() && reading => {
                if connection.join_timed_out() == Flow::Stop {
                    reading = false;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    tracing::info!("websocket silent too long; treating as dropped");
                    break;
                }
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    connection.disconnected().await;
}

/// Builds the hub over `sfu` with the store-backed gatekeeper.
pub fn hub(sfu: sfu::Sfu, gate: StoreGatekeeper, config: signaling::HubConfig) -> Hub {
    Hub::new(sfu, Arc::new(gate), config)
}
