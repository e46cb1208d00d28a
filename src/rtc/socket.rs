//! The `/rtc` WebSocket pump: frames in to the [`signaling::Connection`], its outbox out to the
//! socket, keepalive pings and the join deadline.
//!
//! Reading and writing run in separate tasks so a client that stops reading cannot stall
//! the join deadline or the silence check: every write has a deadline
//! ([`signaling::HubConfig::write_timeout`]), after which the client is closed with 4408
//! `slow_consumer` and the socket, its tasks and its queue are freed. Before the upgrade
//! the connection takes a place under the connection caps, or is refused with an HTTP
//! error.
//!
//! With several nodes, the first frame is read here: a `join` for a room that another
//! node holds is relayed there ([`crate::cluster::relay`]), and while Redis is out of
//! reach a `join` is refused with `service_unavailable` (close 1013). `listen` and
//! `probe` are always served by the node that took the socket.

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
use signaling::{Flow, Hub, LogThrottle, Outbound, OutboundQueue, SLOW_CONSUMER_CLOSE};

use crate::cluster::relay::{self, Relayed};
use crate::cluster::{Cluster, Route};
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
/// Refused with `too_many_connections` when the connection caps are reached. A socket
/// relayed by another node of the cluster counts under its client's address.
pub(super) async fn upgrade(
    State(rtc): State<RtcState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let relayed = rtc.cluster.as_ref().and_then(|c| relayed_from(c, &headers));
    let address = match relayed {
        Some(relayed) => relayed.client,
        None => peer.map(|Extension(ConnectInfo(addr))| addr.ip()),
    };
    let permit = match rtc.hub.reserve_connection(address) {
        Ok(permit) => permit,
        Err(cap) => return ApiError::too_many_connections(cap).into_response(),
    };
    let header_token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let socket_of = SocketOf {
        address,
        header_token,
        relayed: relayed.is_some(),
    };
    ws.max_message_size(MAX_MESSAGE_BYTES + 1024)
        .max_frame_size(MAX_MESSAGE_BYTES + 1024)
        .on_upgrade(move |socket| async move {
            run_socket(rtc, socket, socket_of).await;
            drop(permit);
        })
}

/// The `/rtc` route's state: the hub, and the cluster when several nodes share rooms.
#[derive(Clone)]
pub(super) struct RtcState {
    pub(super) hub: Hub,
    pub(super) cluster: Option<Cluster>,
}

/// What the upgrade request said about the socket.
struct SocketOf {
    /// The client's address (as the relaying node saw it, for a relayed socket).
    address: Option<std::net::IpAddr>,
    /// `Authorization: Bearer` of the upgrade request.
    header_token: Option<String>,
    /// Relayed by another node: never relayed again.
    relayed: bool,
}

/// The relay headers of a socket another node relays, when their secret is right.
fn relayed_from(cluster: &Cluster, headers: &HeaderMap) -> Option<Relayed> {
    let secret = headers.get(relay::RELAY_HEADER)?.to_str().ok()?;
    if !cluster.is_relay_secret(secret) {
        tracing::warn!("a socket claimed to be relayed with a wrong secret; treated as a client");
        return None;
    }
    let client = headers
        .get(relay::CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Some(Relayed { client })
}

/// Serves one socket: here, or (several nodes) relayed to the node holding its room.
async fn run_socket(rtc: RtcState, mut socket: WebSocket, of: SocketOf) {
    let join_deadline = tokio::time::Instant::now() + rtc.hub.config().join_timeout;
    let Some(cluster) = rtc.cluster.clone() else {
        return pump(rtc.hub, socket, None, of.header_token, join_deadline).await;
    };
    // The first frame says which room the socket is for.
    let first = match tokio::time::timeout_at(join_deadline, socket.recv()).await {
        Ok(Some(Ok(message))) => message,
        Ok(_) => return,
        Err(_) => return pump(rtc.hub, socket, None, of.header_token, join_deadline).await,
    };
    let session = match &first {
        Message::Text(text) => joined_session(text.as_str()),
        _ => None,
    };
    let Some(session) = session else {
        return pump(rtc.hub, socket, Some(first), of.header_token, join_deadline).await;
    };
    let mut route = cluster.route_join(&session).await;
    for _ in 0..2 {
        match route {
            Route::Local => {
                return pump(rtc.hub, socket, Some(first), of.header_token, join_deadline).await
            }
            Route::Unavailable => return refuse_unavailable(socket).await,
            Route::Relay { .. } if of.relayed => {
                // The room moved between the two nodes' lookups: back to the start.
                return close_moved(socket).await;
            }
            Route::Relay { node, url } => {
                let Message::Text(text) = &first else { return };
                let upstream = relay::Upstream {
                    base_url: &url,
                    client: of.address,
                    bearer: of.header_token.as_deref(),
                    write_timeout: rtc.hub.config().write_timeout,
                };
                match relay::relay(&cluster, socket, text.as_str(), upstream).await {
                    Ok(()) => return,
                    Err(back) => socket = back,
                }
                route = cluster.node_unreachable(&session, &node).await;
            }
        }
    }
    refuse_unavailable(socket).await;
}

/// The session of a first frame that is a `join`.
fn joined_session(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct FirstFrame {
        #[serde(rename = "type")]
        kind: String,
        session_id: Option<String>,
    }
    let frame: FirstFrame = serde_json::from_str(text).ok()?;
    (frame.kind == "join").then_some(frame.session_id?)
}

/// No room can be placed (Redis is out of reach): `error` `service_unavailable`, 1013.
async fn refuse_unavailable(mut socket: WebSocket) {
    let error = serde_json::json!({
        "type": "error",
        "code": "service_unavailable",
        "message": "the server cannot take new calls right now; try again in a moment",
        "fatal": true,
    });
    let _ = socket.send(Message::Text(error.to_string().into())).await;
    let close = CloseFrame {
        code: 1013,
        reason: "service_unavailable".into(),
    };
    let _ = socket.send(Message::Close(Some(close))).await;
}

/// The socket's room is held by another node now: reconnect (1012).
async fn close_moved(mut socket: WebSocket) {
    let close = CloseFrame {
        code: 1012,
        reason: "room_moved".into(),
    };
    let _ = socket.send(Message::Close(Some(close))).await;
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
/// writer task). `first` is a frame already read from the socket, handled first.
async fn pump(
    hub: Hub,
    socket: WebSocket,
    first: Option<Message>,
    header_token: Option<String>,
    join_deadline: tokio::time::Instant,
) {
    let (sink, stream) = socket.split();
    let mut stream = futures_util::stream::iter(first.map(Ok)).chain(stream);
    let (mut connection, outbound) = hub.connect(header_token);
    let mut writer = tokio::spawn(write_loop(sink, outbound, hub.config().write_timeout));
    let join_deadline = tokio::time::sleep_until(join_deadline);
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
