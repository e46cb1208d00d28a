//! A raw protocol client for the tests that speak the signaling JSON themselves (no
//! media): open a socket, send messages, wait for a message type, expect the close.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Server;

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for one step (a message, a close).
pub const STEP_LIMIT: Duration = Duration::from_secs(15);

/// Sends one JSON message.
pub async fn send(ws: &mut Ws, message: Value, what: &str) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap_or_else(|e| panic!("{what}: send: {e}"));
}

/// Reads the next protocol message; None once the socket is closed.
pub async fn next_message(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => {
                return Some(serde_json::from_str(text.as_str()).expect("server sends JSON"))
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Waits for the first message of type `kind`, skipping the others (offers,
/// candidates, presence events). Panics on a fatal error, a close or a timeout.
pub async fn expect_type(ws: &mut Ws, kind: &str, what: &str) -> Value {
    let found = tokio::time::timeout(STEP_LIMIT, async {
        while let Some(m) = next_message(ws).await {
            if m["type"] == kind {
                return Ok(m);
            }
            if m["type"] == "error" && m["fatal"] == true {
                return Err(format!("fatal error instead of {kind}: {m}"));
            }
        }
        Err(format!("socket closed before {kind}"))
    })
    .await;
    match found {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: no {kind} within {STEP_LIMIT:?}"),
    }
}

/// Reads until the server closes the socket (answering its closing frame).
pub async fn expect_closed(mut ws: Ws, what: &str) {
    let closed = tokio::time::timeout(STEP_LIMIT, async {
        while next_message(&mut ws).await.is_some() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "{what}: the server did not close the socket"
    );
}

/// Opens a socket and sends `join`; the caller reads what comes back.
pub async fn open_and_join(server: &Server, session_id: &str, token: &str, what: &str) -> Ws {
    let connected = tokio::time::timeout(
        STEP_LIMIT,
        tokio_tungstenite::connect_async(server.ws.as_str()),
    )
    .await;
    let mut ws = match connected {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => panic!("{what}: connect: {e}"),
        Err(_) => panic!("{what}: connect timed out"),
    };
    let join = json!({"type": "join", "protocol": 1, "session_id": session_id, "token": token});
    send(&mut ws, join, what).await;
    ws
}

/// Opens a socket and joins; returns it with the `joined` message.
pub async fn join(server: &Server, session_id: &str, token: &str, what: &str) -> (Ws, Value) {
    let mut ws = open_and_join(server, session_id, token, what).await;
    let joined = expect_type(&mut ws, "joined", what).await;
    (ws, joined)
}
