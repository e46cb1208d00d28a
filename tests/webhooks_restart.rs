//! Webhook events survive a restart: the real binary queues events, is killed before
//! its delivery worker looks again, and the next start of the same data directory
//! delivers them, signed, to a receiver on 127.0.0.1.

#[path = "webhook_receiver/mod.rs"]
mod webhook_receiver;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhook_receiver::Receiver;

/// Longest the server may take to say it listens (a cold debug binary on a busy
/// machine); bounds a hang, asserts nothing about speed.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_theraroom"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["--bind", "127.0.0.1:0", "--rtc-ip", "127.0.0.1"])
        .args(["--rtc-port", "0", "--rtc-workers", "1"])
        // The worker looks once at startup, then not for an hour: whatever is queued
        // after that is only sent by the next start.
        .args([
            "--webhooks-allow-insecure-loopback",
            "--webhooks-poll-interval",
            "1h",
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// A running server, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = command(dir)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn theraroom");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut log = Vec::new();
        let addr = loop {
            let Ok(line) = seen.recv_timeout(STARTUP_LIMIT) else {
                let _ = child.kill();
                panic!("the server never said it listens:\n{}", log.join("\n"));
            };
            if line.contains("TheraRoom listening") {
                let start = line.find("http://").expect("URL in the listening line") + 7;
                let addr: String = line[start..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                break addr.parse().expect("socket address");
            }
            log.push(line);
        };
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; status and body.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("theraroom-webhooks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_before_a_crash_are_delivered_after_the_restart() {
    let dir = temp_dir();
    let demo = command(&dir)
        .args(["demo", "--json"])
        .stderr(Stdio::null())
        .output()
        .expect("run demo");
    let demo: Value = serde_json::from_slice(&demo.stdout).expect("demo JSON");
    let org = demo["organization_id"].as_str().unwrap().to_string();
    let admin = demo["org_admin"]["token"].as_str().unwrap().to_string();
    let therapist = demo["therapists"][0]["token"].as_str().unwrap().to_string();
    let mut receiver = Receiver::start(&[], false).await;

    let first = Server::start(&dir);
    let hook = format!("/api/organizations/{org}/webhook");
    let (status, set) = call(
        first.addr,
        "PUT",
        &hook,
        &admin,
        Some(json!({"url": receiver.url()})),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    let secret = set["secret"].as_str().unwrap().to_string();
    let (status, ping) = call(first.addr, "POST", &format!("{hook}/test"), &admin, None).await;
    assert_eq!(status, 202, "{ping}");
    let body = json!({"session_name": "Session before the crash", "max_participants": 2});
    let (status, session) = call(first.addr, "POST", "/api/sessions", &therapist, Some(body)).await;
    assert_eq!(status, 201, "{session}");
    // Killed (no graceful shutdown) before its worker looked again.
    drop(first);
    assert!(
        receiver.drain().is_empty(),
        "nothing was sent before the crash"
    );

    let second = Server::start(&dir);
    let mut got = [receiver.next().await, receiver.next().await];
    got.sort_by_key(|r| r.json()["type"].as_str().unwrap_or("").to_string());
    assert!(got.iter().all(|r| r.signature_ok(&secret)));
    assert_eq!(got[0].json()["type"], json!("ping"));
    assert_eq!(got[0].json()["id"], ping["event_id"]);
    assert_eq!(got[1].json()["type"], json!("session.started"));
    assert_eq!(got[1].json()["data"]["session_id"], session["id"]);
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
