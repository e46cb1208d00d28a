//! The `/rtc` WebSocket pump: frames in to the [`signaling::Connection`], its outbox out to the
//! socket, keepalive pings and the join deadline.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use signaling::protocol::MAX_MESSAGE_BYTES;
use signaling::{Flow, Hub, Outbound};

/// How often the server pings an idle socket, and when silence counts as a drop.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// Upgrades `GET /rtc` to a WebSocket; a bearer header may stand in for `join.token`.
pub(super) async fn upgrade(
    State(hub): State<Hub>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
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
