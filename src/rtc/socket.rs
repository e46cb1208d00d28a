//! The `/rtc` WebSocket pump: frames in to the [`signaling::Connection`], its outbox out to the
//! socket, keepalive pings and the join deadline.
//!
//! Reading and writing run in separate tasks so a client that stops reading cannot stall
//! the join deadline or the silence check: every write has a deadline
//! ([`signaling::HubConfig::write_timeout`]), after which the client is closed with 4408
//! `slow_consumer` and the socket, its tasks and its queue are freed. Before the upgrade
//! the connection takes a place under the connection caps, or is refused with an HTTP
//! error.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use signaling::protocol::MAX_MESSAGE_BYTES;
use signaling::{
    ConnectionPermit, Flow, Hub, LogThrottle, Outbound, OutboundQueue, SLOW_CONSUMER_CLOSE,
};

use crate::error::ApiError;

/// How often the server pings an idle socket, and when silence counts as a drop.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// How long the last-chance close frame to a client that stopped reading may take.
const SLOW_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the closing handshake may take after the server sent its close frame.
const CLOSING_HANDSHAKE: Duration = Duration::from_secs(2);

/// One "slow consumer closed" line per second for the whole process.
static SLOW_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(1));

/// Upgrades `GET /rtc` to a WebSocket; a bearer header may stand in for `join.token`.
/// Refused with `too_many_connections` when the connection caps are reached.
pub(super) async fn upgrade(
    State(hub): State<Hub>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let address = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let permit = match hub.reserve_connection(address) {
        Ok(permit) => permit,
        Err(cap) => return ApiError::too_many_connections(cap).into_response(),
    };
    let header_token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    ws.max_message_size(MAX_MESSAGE_BYTES + 1024)
        .max_frame_size(MAX_MESSAGE_BYTES + 1024)
        .on_upgrade(move |socket| run_socket(hub, socket, header_token, permit))
}

/// How the writer task ended.
#[derive(Debug, PartialEq, Eq)]
enum WriterEnd {
    /// It sent a close frame: wait for the client's close reply.
    Closed,
    /// A write missed its deadline: the client stopped reading.
    SlowConsumer,
    /// The socket failed, or the connection dropped its outbox.
    Gone,
}

/// Pumps one WebSocket: frames in → connection (this task); outbox → frames out (a
/// writer task). The permit is held until both are done.
async fn run_socket(
    hub: Hub,
    socket: WebSocket,
    header_token: Option<String>,
    permit: ConnectionPermit,
) {
    let (sink, mut stream) = socket.split();
    let (mut connection, outbound) = hub.connect(header_token);
    let mut writer = tokio::spawn(write_loop(sink, outbound, hub.config().write_timeout));
    let join_deadline = tokio::time::sleep(hub.config().join_timeout);
    tokio::pin!(join_deadline);
    let mut silence =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = tokio::time::Instant::now();
    let mut reading = true;
    let end = loop {
        tokio::select! {
            // After a stop the stream is left alone until the close frame went out: a
            // failed stream (an oversize frame) ends at once and would cut the reply.
            incoming = stream.next(), if reading => {
                last_heard = tokio::time::Instant::now();
                let flow = match incoming {
                    Some(Ok(Message::Text(text))) => connection.handle_text(text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => connection.handle_binary(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => connection.handle_control_frame(),
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(err)) if is_oversize(&err) => connection.handle_oversize(),
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "websocket receive error");
                        break None;
                    }
                };
                if flow == Flow::Stop {
                    reading = false;
                }
            }
            end = &mut writer => break Some(end.unwrap_or(WriterEnd::Gone)),
            _ = &mut join_deadline, if connection.awaits_join() && reading => {
                if connection.join_timed_out() == Flow::Stop {
                    reading = false;
                }
            }
            _ = silence.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    tracing::info!("websocket silent too long; treating as dropped");
                    break None;
                }
            }
        }
    };
    match end {
        // Closing handshake: read until the client's close reply (bounded). Dropping the
        // socket with unread client data (a pong, a late answer) makes the kernel send RST,
        // and the client loses the error and close frame (sees 1006).
        // A stream that already failed (an oversize frame) cannot show the reply: then
        // the socket stays open for the rest of the bounded wait, so the close frame
        // reaches the client before unread data turns the close into a reset.
        Some(WriterEnd::Closed) => {
            let until = tokio::time::Instant::now() + CLOSING_HANDSHAKE;
            let drain = async {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        return true;
                    }
                }
                false
            };
            if let Ok(false) = tokio::time::timeout_at(until, drain).await {
                tokio::time::sleep_until(until).await;
            }
        }
        Some(WriterEnd::SlowConsumer | WriterEnd::Gone) => {}
        None => writer.abort(),
    }
    connection.disconnected().await;
    drop(permit);
}

/// Writes the outbox and keepalive pings to the socket, each write within `deadline`.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbound: OutboundQueue,
    deadline: Duration,
) -> WriterEnd {
    // First ping after one period: pinging at once would race the client's `join`.
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let (frame, closing) = tokio::select! {
            out = outbound.recv() => match out {
                Some(Outbound::Message(message)) => match serde_json::to_string(&message) {
                    Ok(text) => (Message::Text(text.into()), false),
                    Err(err) => {
                        tracing::error!(error = %err, "could not encode a signaling message");
                        continue;
                    }
                },
                Some(Outbound::Close { code, reason }) => {
                    (Message::Close(Some(CloseFrame { code, reason: reason.into() })), true)
                }
                None => return WriterEnd::Gone,
            },
            _ = ping.tick() => (Message::Ping(Vec::new().into()), false),
        };
        match tokio::time::timeout(deadline, sink.send(frame)).await {
            Ok(Ok(())) if closing => return WriterEnd::Closed,
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "websocket send error");
                return WriterEnd::Gone;
            }
            Err(_) => {
                if let Some(suppressed) = SLOW_LOG.allow() {
                    tracing::warn!(
                        deadline_ms = deadline.as_millis() as u64,
                        suppressed,
                        "signaling client stopped reading; closing it"
                    );
                }
                metrics::counter!("theraroom_ws_slow_consumers_total").increment(1);
                let close = Message::Close(Some(CloseFrame {
                    code: SLOW_CONSUMER_CLOSE,
                    reason: "slow_consumer".into(),
                }));
                let _ = tokio::time::timeout(SLOW_CLOSE_TIMEOUT, sink.send(close)).await;
                return WriterEnd::SlowConsumer;
            }
        }
    }
}

/// True when a receive error is a frame or message over the size limit: axum wraps
/// tungstenite's `Error::Capacity`.
fn is_oversize(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::error::CapacityError;

    #[test]
    fn oversize_is_recognised_by_kind_not_text() {
        let too_long = axum::Error::new(tungstenite::Error::Capacity(
            CapacityError::MessageTooLong {
                size: 70_000,
                max_size: 65_000,
            },
        ));
        assert!(is_oversize(&too_long));
        let other = axum::Error::new(tungstenite::Error::ConnectionClosed);
        assert!(!is_oversize(&other));
        let text_only = axum::Error::new(std::io::Error::other("Message too long"));
        assert!(!is_oversize(&text_only));
    }
}
