//! The relay of a signaling socket to the node that holds its room.
//!
//! The client's socket reached a node (any node: a load balancer may route `/rtc`
//! anywhere) whose room lives on another. This node opens a socket to the holder's
//! `/rtc`, sends it the client's `join` and then copies text frames both ways
//! unchanged, so the client speaks protocol v1 as if it were on the holder. The
//! upstream request carries the relay secret and the client's address, which the
//! holder uses for its per-address caps instead of this node's.
//!
//! When the holder goes away mid-call (killed), the client is closed with 1012
//! `room_moved` and reconnects; its join then takes the room over on a live node. When
//! this node stops, its relayed clients are closed with 1012 `server_restart` and
//! reconnect through another node.

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
    client: WebSocket,
    first: &str,
    upstream: Upstream<'_>,
) -> Result<(), WebSocket> {
    let Some(mut holder) = open_upstream(cluster, &upstream).await else {
        return Err(client);
    };
    if holder.send(UpMessage::text(first)).await.is_err() {
        return Err(client);
    }
    let _open = OpenRelay::new();
    count_frame("up", first.len());
    Pump {
        client,
        holder,
        write_timeout: upstream.write_timeout,
    }
    .run(cluster.inner.stopping.subscribe())
    .await;
    Ok(())
}

/// The socket to the holder's `/rtc`, or `None` when it refused or did not answer.
async fn open_upstream(cluster: &Cluster, upstream: &Upstream<'_>) -> Option<HolderSocket> {
    let request = upstream_request(cluster, upstream).ok()?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(signaling::protocol::MAX_MESSAGE_BYTES + 1024))
        .max_frame_size(Some(signaling::protocol::MAX_MESSAGE_BYTES + 1024));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok((socket, _))) => Some(socket),
        Ok(Err(e)) => {
            tracing::info!(url = upstream.base_url, error = %e, "room's node refused the relay");
            None
        }
        Err(_) => {
            tracing::info!(
                url = upstream.base_url,
                "room's node did not answer the relay in time"
            );
            None
        }
    }
}

/// The relay's socket to the room's node.
type HolderSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Whether the relay goes on after a step.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Continue,
    Stop,
}

/// Copies frames between the client and the holder until either side ends.
struct Pump {
    client: WebSocket,
    holder: HolderSocket,
    write_timeout: Duration,
}

impl Pump {
    /// Runs until either side ends, or `stopping` turns true (this node stops). The
    /// receiver is dropped on return, which is what a stopping node waits for.
    async fn run(mut self, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        let mut last_heard = tokio::time::Instant::now();
        loop {
            let step = tokio::select! {
                incoming = self.client.recv() => {
                    last_heard = tokio::time::Instant::now();
                    self.up(incoming).await
                }
                outgoing = self.holder.next() => self.down(outgoing).await,
                _ = ping.tick() => self.keepalive(last_heard).await,
                () = node_stopping(&mut stopping) => self.node_stops().await,
            };
            if step == Step::Stop {
                return;
            }
        }
    }

    /// A frame (or the end) from the client, to the holder.
    async fn up(&mut self, incoming: Option<Result<Message, axum::Error>>) -> Step {
        let forward = match incoming {
            Some(Ok(Message::Text(text))) => {
                count_frame("up", text.len());
                UpMessage::text(text.as_str())
            }
            Some(Ok(Message::Binary(data))) => UpMessage::binary(data.to_vec()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Step::Continue,
            Some(Ok(Message::Close(frame))) => {
                let _ = self
                    .holder
                    .send(UpMessage::Close(frame.map(up_close)))
                    .await;
                let _ = tokio::time::timeout(Duration::from_secs(2), self.holder.next()).await;
                return Step::Stop;
            }
            None | Some(Err(_)) => {
                let _ = self.holder.close(None).await;
                return Step::Stop;
            }
        };
        if self.holder.send(forward).await.is_err() {
            self.close_client_moved().await;
            return Step::Stop;
        }
        Step::Continue
    }

    /// A frame (or the end) from the holder, to the client.
    async fn down(
        &mut self,
        outgoing: Option<Result<UpMessage, tokio_tungstenite::tungstenite::Error>>,
    ) -> Step {
        let forward = match outgoing {
            Some(Ok(UpMessage::Text(text))) => {
                count_frame("down", text.len());
                Message::Text(text.as_str().into())
            }
            Some(Ok(UpMessage::Close(frame))) => {
                let close = Message::Close(frame.map(down_close));
                let _ = tokio::time::timeout(self.write_timeout, self.client.send(close)).await;
                return Step::Stop;
            }
            Some(Ok(_)) => return Step::Continue, // pings are answered by the library
            None | Some(Err(_)) => {
                self.close_client_moved().await;
                return Step::Stop;
            }
        };
        match tokio::time::timeout(self.write_timeout, self.client.send(forward)).await {
            Ok(Ok(())) => Step::Continue,
            _ => {
                let _ = self.holder.close(None).await;
                Step::Stop
            }
        }
    }

    /// Pings the client, and ends a relay whose client fell silent.
    async fn keepalive(&mut self, last_heard: tokio::time::Instant) -> Step {
        if last_heard.elapsed() > SILENCE_LIMIT {
            let _ = self.holder.close(None).await;
            return Step::Stop;
        }
        let ping = Message::Ping(Vec::new().into());
        let _ = tokio::time::timeout(self.write_timeout, self.client.send(ping)).await;
        Step::Continue
    }

    /// This node stops: the client reconnects through another node, and the holder
    /// keeps its place meanwhile as for any dropped socket.
    async fn node_stops(&mut self) -> Step {
        let close = Message::Close(Some(CloseFrame {
            code: 1012,
            reason: "server_restart".into(),
        }));
        let _ = tokio::time::timeout(self.write_timeout, self.client.send(close)).await;
        let _ = self.holder.close(None).await;
        Step::Stop
    }

    /// The holder went away: the client reconnects and its join finds the room's new
    /// node.
    async fn close_client_moved(&mut self) {
        let close = Message::Close(Some(CloseFrame {
            code: 1012,
            reason: "room_moved".into(),
        }));
        let _ = tokio::time::timeout(self.write_timeout, self.client.send(close)).await;
    }
}

/// Resolves once this node stops (or the cluster handle is gone).
async fn node_stopping(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
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
