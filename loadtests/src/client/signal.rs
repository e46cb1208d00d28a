//! The signaling WebSocket: connecting, the `join` handshake, a writer task that owns the
//! sending half (JSON text frames, keepalive pings, the closing frame) and a typed view
//! of what arrives.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::protocol::{ClientMessage, Joined, ServerMessage, PROTOCOL_VERSION};
use super::{ClientError, CloseInfo};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub(crate) type WsWrite = SplitSink<Ws, Message>;
pub(crate) type WsRead = SplitStream<Ws>;

/// Close code reported when the socket ended without a closing frame (as browsers do).
pub const ABNORMAL_CLOSE: u16 = 1006;

/// How often the client sends the protocol's `ping` (PROTOCOL.md: every 15 s).
const KEEPALIVE: Duration = Duration::from_secs(15);

/// What the writer task is asked to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send one protocol message.
    Message(ClientMessage),
    /// Send a closing frame and stop writing.
    Close(u16, String),
}

/// One thing read from the socket.
pub(crate) enum Incoming {
    /// A protocol message.
    Message(ServerMessage),
    /// A text frame that is not a protocol message (kept for diagnostics).
    Malformed(String),
    /// The socket is closed (closing frame or end of stream).
    Closed(CloseInfo),
}

/// Reads the next protocol-relevant frame; control frames are skipped.
pub(crate) async fn next(read: &mut WsRead) -> Incoming {
    loop {
        match read.next().await {
            Some(Ok(Message::Text(text))) => {
                return match serde_json::from_str::<ServerMessage>(text.as_str()) {
                    Ok(m) => Incoming::Message(m),
                    Err(e) => Incoming::Malformed(format!("{e}: {}", text.as_str())),
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Incoming::Closed(match frame {
                    Some(f) => CloseInfo {
                        code: u16::from(f.code),
                        reason: f.reason.as_str().to_owned(),
                    },
                    None => CloseInfo {
                        code: 1005,
                        reason: String::new(),
                    },
                })
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                return Incoming::Closed(CloseInfo {
                    code: ABNORMAL_CLOSE,
                    reason: e.to_string(),
                })
            }
            None => {
                return Incoming::Closed(CloseInfo {
                    code: ABNORMAL_CLOSE,
                    reason: "connection ended without a closing frame".into(),
                })
            }
        }
    }
}

async fn send(write: &mut WsWrite, message: &ClientMessage) -> Result<(), ClientError> {
    let text = serde_json::to_string(message).map_err(|e| ClientError::Protocol(e.to_string()))?;
    write
        .send(Message::Text(text.into()))
        .await
        .map_err(|e| ClientError::WebSocket(e.to_string()))
}

/// Opens the socket, sends `join` and waits for `joined`. A refusal (`error`) is
/// returned as [`ClientError::Refused`] with the close code the server sent after it.
pub(crate) async fn handshake(
    ws_url: &str,
    session_id: &str,
    token: &str,
    display_name: Option<&str>,
) -> Result<(Joined, WsWrite, WsRead), ClientError> {
    let request = ws_url
        .into_client_request()
        .map_err(|e| ClientError::Config(format!("bad WebSocket URL {ws_url:?}: {e}")))?;
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| ClientError::WebSocket(e.to_string()))?;
    let (mut write, mut read) = ws.split();
    send(
        &mut write,
        &ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            session_id: session_id.to_owned(),
            token: Some(token.to_owned()),
            display_name: display_name.map(str::to_owned),
        },
    )
    .await?;
    loop {
        match next(&mut read).await {
            Incoming::Message(ServerMessage::Joined(joined)) => return Ok((joined, write, read)),
            Incoming::Message(ServerMessage::Error {
                code,
                message,
                fatal,
            }) => {
                let close = if fatal {
                    // The server closes right after a fatal error: collect the code.
                    let closing = async {
                        loop {
                            if let Incoming::Closed(c) = next(&mut read).await {
                                return c;
                            }
                        }
                    };
                    tokio::time::timeout(Duration::from_secs(5), closing)
                        .await
                        .ok()
                } else {
                    None
                };
                return Err(ClientError::Refused {
                    code,
                    message,
                    close,
                });
            }
            Incoming::Message(other) => {
                tracing::debug!(?other, "message before joined");
            }
            Incoming::Malformed(text) => {
                return Err(ClientError::Protocol(format!("unreadable message: {text}")))
            }
            Incoming::Closed(close) => return Err(ClientError::Closed(close)),
        }
    }
}

/// Owns the sending half: writes queued messages, a `ping` every 15 s, and the closing
/// frame. Ends after the closing frame, when every sender is gone, or on a send error.
pub(crate) async fn writer(mut write: WsWrite, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    let mut pings: u64 = 0;
    loop {
        tokio::select! {
            item = queue.recv() => match item {
                Some(Outgoing::Message(m)) => {
                    if let Err(e) = send(&mut write, &m).await {
                        tracing::debug!(error = %e, "signaling send failed");
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = write
                        .send(Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })))
                        .await;
                    break;
                }
                None => break,
            },
            _ = keepalive.tick() => {
                pings += 1;
                if send(&mut write, &ClientMessage::Ping { ts: Some(pings.into()) }).await.is_err() {
                    break;
                }
            }
        }
    }
    // Flush whatever tungstenite queued (e.g. the reply to the server's closing frame).
    let _ = write.flush().await;
}
