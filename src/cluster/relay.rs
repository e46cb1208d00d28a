//! The relay of a signaling socket to the node that holds its room.
//!
//! The client's socket reached a node (any node: a load balancer may route `/rtc`
//! anywhere) whose room lives on another. This node opens a socket to the holder's
//! `/rtc`, sends it the client's `join` and then copies text frames both ways
//! unchanged, so the client speaks protocol v1 as if it were on the holder. The
//! upstream request carries the relay secret and the client's address, which the
//! holder uses for its per-address caps instead of this node's.
//!
//! When the holder goes away mid-call (killed), the client is closed with 1012 and
//! reconnects; its join then takes the room over on a live node.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as UpCloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as UpMessage;

use super::Cluster;

/// Header with the relay secret on the upstream request.
pub const RELAY_HEADER: &str = "x-theraroom-relay";
/// Header with the client's address on the upstream request.
pub const CLIENT_HEADER: &str = "x-theraroom-client";
/// How long the holder's socket may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the relay pings the client, and when its silence counts as a drop.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// What a relayed socket is, on the holder's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// The client's address as the relaying node saw it.
    pub client: Option<IpAddr>,
}

/// Where the relay goes, and what it forwards.
pub struct Upstream<'a> {
    /// The holder's HTTP base URL (`http://host:port`).
    pub base_url: &'a str,
    /// The client's address.
    pub client: Option<IpAddr>,
    /// The client's bearer token, when it came in a header instead of `join.token`.
    pub bearer: Option<&'a str>,
    /// Deadline of one write to the client.
    pub write_timeout: Duration,
}

/// Relays `client` to the holder, starting with the client's `first` frame. Gives the
/// socket back when the holder could not be reached, so the caller can take the room
/// over; otherwise runs until either side closes.
pub async fn relay(
    cluster: &Cluster,
    mut client: WebSocket,
    first: &str,
    upstream: Upstream<'_>,
) -> Result<(), WebSocket> {
    let Ok(request) = upstream_request(cluster, &upstream) else {
        return Err(client);
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(signaling::protocol::MAX_MESSAGE_BYTES + 1024))
        .max_frame_size(Some(signaling::protocol::MAX_MESSAGE_BYTES + 1024));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    let mut holder = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(e)) => {
            tracing::info!(url = upstream.base_url, error = %e, "room's node refused the relay");
            return Err(client);
        }
        Err(_) => {
            tracing::info!(
                url = upstream.base_url,
                "room's node did not answer the relay in time"
            );
            return Err(client);
        }
    };
    if holder.send(UpMessage::text(first)).await.is_err() {
        return Err(client);
    }
    let _open = OpenRelay::new();
    count_frame("up", first.len());
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            incoming = client.recv() => {
                last_heard = tokio::time::Instant::now();
                let forward = match incoming {
                    Some(Ok(Message::Text(text))) => {
                        count_frame("up", text.len());
                        UpMessage::text(text.as_str())
                    }
                    Some(Ok(Message::Binary(data))) => UpMessage::binary(data.to_vec()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        let _ = holder.send(UpMessage::Close(frame.map(up_close))).await;
                        let _ = tokio::time::timeout(Duration::from_secs(2), holder.next()).await;
                        return Ok(());
                    }
                    None | Some(Err(_)) => {
                        let _ = holder.close(None).await;
                        return Ok(());
                    }
                };
                if holder.send(forward).await.is_err() {
                    close_client(&mut client, upstream.write_timeout).await;
                    return Ok(());
                }
            }
            outgoing = holder.next() => {
                let forward = match outgoing {
                    Some(Ok(UpMessage::Text(text))) => {
                        count_frame("down", text.len());
                        Message::Text(text.as_str().into())
                    }
                    Some(Ok(UpMessage::Close(frame))) => {
                        let frame = frame.map(down_close);
                        let _ = tokio::time::timeout(upstream.write_timeout, client.send(Message::Close(frame))).await;
                        return Ok(());
                    }
                    Some(Ok(_)) => continue, // pings are answered by the library
                    None | Some(Err(_)) => {
                        close_client(&mut client, upstream.write_timeout).await;
                        return Ok(());
                    }
                };
                match tokio::time::timeout(upstream.write_timeout, client.send(forward)).await {
                    Ok(Ok(())) => {}
                    _ => {
                        let _ = holder.close(None).await;
                        return Ok(());
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    let _ = holder.close(None).await;
                    return Ok(());
                }
                let _ = tokio::time::timeout(upstream.write_timeout, client.send(Message::Ping(Vec::new().into()))).await;
            }
        }
    }
}

/// The upstream request: the holder's `/rtc`, with the relay secret and client address.
fn upstream_request(
    cluster: &Cluster,
    upstream: &Upstream<'_>,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, ()> {
    let base = upstream.base_url.trim_end_matches('/');
    let url = match base.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}/rtc"),
        None => match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}/rtc"),
            None => return Err(()),
        },
    };
    let mut request = url.into_client_request().map_err(|_| ())?;
    let headers = request.headers_mut();
    headers.insert(
        RELAY_HEADER,
        cluster.relay_secret_value().parse().map_err(|_| ())?,
    );
    if let Some(ip) = upstream.client {
        headers.insert(CLIENT_HEADER, ip.to_string().parse().map_err(|_| ())?);
    }
    if let Some(token) = upstream.bearer {
        let value = format!("Bearer {token}").parse().map_err(|_| ())?;
        headers.insert(axum::http::header::AUTHORIZATION, value);
    }
    Ok(request)
}

/// The holder went away: the client reconnects and its join finds the room's new node.
async fn close_client(client: &mut WebSocket, deadline: Duration) {
    let close = Message::Close(Some(CloseFrame {
        code: 1012,
        reason: "room_moved".into(),
    }));
    let _ = tokio::time::timeout(deadline, client.send(close)).await;
}

fn up_close(frame: CloseFrame) -> UpCloseFrame {
    UpCloseFrame {
        code: CloseCode::from(frame.code),
        reason: frame.reason.as_str().to_string().into(),
    }
}

fn down_close(frame: UpCloseFrame) -> CloseFrame {
    CloseFrame {
        code: u16::from(frame.code),
        reason: frame.reason.as_str().into(),
    }
}

fn count_frame(direction: &'static str, bytes: usize) {
    metrics::counter!("theraroom_cluster_relay_frames_total", "direction" => direction)
        .increment(1);
    metrics::counter!("theraroom_cluster_relay_bytes_total", "direction" => direction)
        .increment(bytes as u64);
}

/// Counts a relayed socket while it is open.
struct OpenRelay;

impl OpenRelay {
    fn new() -> OpenRelay {
        metrics::gauge!("theraroom_cluster_relayed_sockets").increment(1.0);
        metrics::counter!("theraroom_cluster_relays_total").increment(1);
        OpenRelay
    }
}

impl Drop for OpenRelay {
    fn drop(&mut self) {
        metrics::gauge!("theraroom_cluster_relayed_sockets").decrement(1.0);
    }
}
