//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every
//! request and answers with the status codes it is given (then 200), or never answers
//! the first request (a receiver that hangs while the sender dies).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::sync::mpsc;

/// Longest a test waits for a delivery: bounds a hang, asserts nothing about speed.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }

    /// Checks the signature with `secret` as a receiver would.
    pub fn signature_ok(&self, secret: &str) -> bool {
        theraroom::webhooks::sign::verify(
            secret.as_bytes(),
            self.header("theraroom-signature"),
            self.body.as_bytes(),
        )
        .is_some()
    }
}

#[derive(Clone)]
struct Shared {
    statuses: Arc<Mutex<VecDeque<u16>>>,
    hang_first: Arc<Mutex<bool>>,
    seen: mpsc::UnboundedSender<Received>,
}

/// The running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers `statuses` in turn, then 200; with `hang_first`, the first request gets
    /// no answer at all.
    pub async fn start(statuses: &[u16], hang_first: bool) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
            hang_first: Arc::new(Mutex::new(hang_first)),
            seen: tx,
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            seen: rx,
            task,
        }
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next request (panics after [`WAIT_LIMIT`]).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT_LIMIT, self.seen.recv())
            .await
            .expect("a webhook request arrives")
            .expect("receiver still running")
    }

    /// Whatever arrived so far, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.seen.try_recv() {
            out.push(r);
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = shared.seen.send(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let hang = std::mem::replace(&mut *shared.hang_first.lock().unwrap(), false);
    if hang {
        std::future::pending::<()>().await;
    }
    let status = shared.statuses.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
