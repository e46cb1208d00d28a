//! The `/rtc` socket against misbehaving clients, through the real server in-process on
//! 127.0.0.1: a client that stops reading, many idle sockets from one address, a
//! listen-only socket past the join timeout, an oversize frame. One test joins a room
//! (media), so run inside a private network namespace like the other `rtc_*` tests:
//!
//! ```sh
//! unshare -n sh -c 'ip link set lo up; cargo test -p theraroom --test rtc_sockets --offline'
//! ```

mod rtc_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rtc_common::{eventually, init_tracing, join, Server, SERIAL};
use signaling::HubConfig;
use theraroom_load::Publish;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// Upper bound of every test.
const TEST_LIMIT: Duration = Duration::from_secs(120);
/// How long the server may take to notice and free a closed or stalled socket.
const FREE_LIMIT: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<TcpStream>;

/// Opens a TCP connection from `from` (any 127.x address) with an optional small
/// receive buffer, and does the WebSocket handshake.
async fn open(server: &Server, from: Ipv4Addr, recv_buffer: Option<u32>) -> Result<Ws, WsError> {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind client");
    let addr: SocketAddr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("server address");
    let stream = socket.connect(addr).await.expect("tcp connect");
    tokio_tungstenite::client_async(server.ws.as_str(), stream)
        .await
        .map(|(ws, _)| ws)
}

/// The next text message as JSON, skipping control frames.
async fn next_json(ws: &mut Ws) -> Option<serde_json::Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// The close frame's code, skipping everything before it.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Resident memory of this process (the server runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// A counter of the process-wide Prometheus registry, through `/metrics`.
async fn counter(server: &Server, name: &str) -> f64 {
    let resp = theraroom_load::rest::request(&server.base, "GET", "/metrics", None, None)
        .await
        .expect("metrics");
    String::from_utf8_lossy(&resp.body)
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn listen(token: &str) -> Message {
    Message::text(format!(
        r#"{{"type":"listen","protocol":1,"token":"{token}"}}"#
    ))
}

#[tokio::test]
async fn client_that_stops_reading_is_closed_and_freed() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start_with(HubConfig {
            write_timeout: Duration::from_secs(1),
            ..HubConfig::default()
        })
        .await;
        let tasks_before = alive_tasks();
        let slow_before = counter(&server, "theraroom_ws_slow_consumers_total").await;

        // A listen-only socket (no join deadline) with a tiny receive window that never
        // reads: only the write deadline can end it.
        let mut ws = open(&server, Ipv4Addr::LOCALHOST, Some(4096))
            .await
            .expect("handshake");
        let token = server.demo.therapists[0].token.clone();
        ws.send(listen(&token)).await.expect("listen");
        assert_eq!(server.hub.open_connections(), 1);

        // 60 KB pings within the message rate: each is echoed in a 60 KB pong.
        let ping = Message::text(format!(
            r#"{{"type":"ping","ts":"{}"}}"#,
            "x".repeat(60_000)
        ));
        let started = Instant::now();
        let mut sent = 0u32;
        while server.hub.open_connections() > 0 && started.elapsed() < FREE_LIMIT {
            if ws.send(ping.clone()).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let freed = eventually(FREE_LIMIT, || server.hub.open_connections() == 0).await;
        assert!(freed, "the stalled socket is still open after {sent} pings");
        let closed_after = started.elapsed();
        let slow_after = counter(&server, "theraroom_ws_slow_consumers_total").await;
        assert!(
            slow_after >= slow_before + 1.0,
            "closed as a slow consumer ({slow_before} -> {slow_after})"
        );
        let tasks_freed = eventually(FREE_LIMIT, || alive_tasks() <= tasks_before).await;
        assert!(
            tasks_freed,
            "socket tasks are gone: {} alive, {tasks_before} before",
            alive_tasks()
        );
        // The client finds the connection gone (close frame or reset) once it reads.
        let ended = tokio::time::timeout(FREE_LIMIT, async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        assert!(ended.is_ok(), "the client sees the end of the connection");
        eprintln!(
            "[slow consumer] closed {closed_after:?} after the first ping ({sent} pings of 60 KB sent, write deadline 1 s); tasks {} (before {tasks_before})",
            alive_tasks()
        );
        server.stop().await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn idle_sockets_from_one_address_are_capped() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let per_ip = HubConfig::default().max_connections_per_ip;
        let rss_before = rss_kib();
        let attacker = Ipv4Addr::new(127, 0, 0, 2);

        let mut open_sockets = Vec::new();
        let mut refused = 0;
        for _ in 0..500 {
            match open(&server, attacker, None).await {
                Ok(ws) => open_sockets.push(ws),
                Err(WsError::Http(resp)) => {
                    assert_eq!(resp.status().as_u16(), 429);
                    let body: serde_json::Value =
                        serde_json::from_slice(resp.body().as_deref().unwrap_or_default())
                            .expect("JSON error body");
                    assert_eq!(body["error"]["code"], "too_many_connections");
                    refused += 1;
                }
                Err(other) => panic!("unexpected handshake error {other}"),
            }
        }
        assert_eq!(open_sockets.len(), per_ip, "the per-address cap holds");
        assert_eq!(refused, 500 - per_ip);
        assert_eq!(
            server.hub.open_connections_from(IpAddr::V4(attacker)),
            per_ip
        );
        let rss_full = rss_kib();

        // The server still serves others: REST, and a join from another address.
        let (_, therapist_token) = server.therapist();
        let (status, _) = server
            .call("GET", "/api/sessions", therapist_token, None)
            .await;
        assert_eq!(status, 200);
        let session = server.session(therapist_token, 2).await;
        let therapist = join(&server, &session.id, therapist_token, Publish::NOTHING)
            .await
            .expect("a join still works");
        therapist.leave().await.expect("leave");

        drop(open_sockets);
        let freed = eventually(FREE_LIMIT, || server.hub.open_connections() == 0).await;
        assert!(
            freed,
            "{} connections still open",
            server.hub.open_connections()
        );
        let rss_after = rss_kib();
        eprintln!(
            "[idle sockets] 500 from one address: {per_ip} accepted, {refused} refused (429); RSS {rss_before} KiB -> {rss_full} KiB -> {rss_after} KiB"
        );
        // Generous slack: allocator reuse, not a leak check of single bytes.
        assert!(
            rss_after <= rss_before + 64 * 1024,
            "RSS {rss_before} KiB before, {rss_after} KiB after the sockets closed"
        );
        server.stop().await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn listen_only_socket_outlives_the_join_timeout() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start_with(HubConfig {
            join_timeout: Duration::from_secs(1),
            ..HubConfig::default()
        })
        .await;
        let mut listener = open(&server, Ipv4Addr::LOCALHOST, None)
            .await
            .expect("handshake");
        let token = server.demo.therapists[0].token.clone();
        listener.send(listen(&token)).await.expect("listen");
        let listening = next_json(&mut listener).await.expect("listening");
        assert_eq!(listening["type"], "listening");
        let mut idle = open(&server, Ipv4Addr::LOCALHOST, None)
            .await
            .expect("handshake");

        tokio::time::sleep(Duration::from_millis(2500)).await;
        let refused = next_json(&mut idle).await.expect("join_timeout error");
        assert_eq!(refused["code"], "join_timeout");
        assert_eq!(close_code(&mut idle).await, Some(4400));
        drop(idle);

        listener
            .send(Message::text(r#"{"type":"ping","ts":42}"#))
            .await
            .expect("listener still open");
        let pong = next_json(&mut listener).await.expect("pong");
        assert_eq!(pong, serde_json::json!({"type":"pong","ts":42}));
        let one_left = eventually(FREE_LIMIT, || server.hub.open_connections() == 1).await;
        assert!(one_left, "only the listener is open");
        listener.close(None).await.expect("close");
        server.stop().await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn oversize_frame_gets_its_code() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let mut ws = open(&server, Ipv4Addr::LOCALHOST, None)
            .await
            .expect("handshake");
        ws.send(Message::text("x".repeat(100_000)))
            .await
            .expect("send");
        let error = next_json(&mut ws).await.expect("error message");
        assert_eq!(error["code"], "message_too_large");
        assert_eq!(error["fatal"], true);
        let code = close_code(&mut ws).await;
        assert_eq!(code, Some(4400));
        assert_ne!(code.map(CloseCode::from), Some(CloseCode::Normal));
        server.stop().await;
    })
    .await
    .expect("test finished in time");
}
