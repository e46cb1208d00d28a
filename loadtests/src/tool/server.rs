//! The TheraRoom server under test: a separate process spawned from a binary (fresh
//! data directory, free port, loopback media), or one already running (URL + pid).
//! Only its public surface is used: REST, `/rtc`, `/metrics`, and /proc of its pid.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use theraroom_load::rest;

/// Counters scraped from the server's `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerCounters {
    /// `sfu_forwarded_packets_total`.
    pub forwarded_packets: f64,
    /// `sfu_forwarded_bytes_total`.
    pub forwarded_bytes: f64,
    /// `sfu_dropped_packets_total`.
    pub dropped_packets: f64,
    /// `sfu_forwarded_tracks` (gauge).
    pub forwarded_tracks: f64,
    /// `sfu_published_tracks` (gauge).
    pub published_tracks: f64,
    /// `theraroom_cluster_relay_frames_total` (several nodes: signaling frames relayed
    /// to the room's node, both ways).
    pub relayed_frames: f64,
    /// `theraroom_cluster_relayed_sockets` (gauge).
    pub relayed_sockets: f64,
}

/// A TheraRoom server process.
pub struct TheraServer {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// `ws://127.0.0.1:port/rtc`.
    pub ws: String,
    /// Process id (for /proc).
    pub pid: u32,
    /// A therapist token that may create sessions.
    pub therapist_token: String,
    child: Option<Child>,
    data_dir: Option<PathBuf>,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl TheraServer {
    /// Starts `bin serve` on a free loopback port with a fresh SQLite data directory,
    /// after `bin demo --json` created a therapist whose token the tool uses.
    pub async fn spawn(bin: &Path) -> Result<TheraServer, String> {
        let data_dir =
            std::env::temp_dir().join(format!("theraroom-load-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
        let demo = Command::new(bin)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["demo", "--json"])
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("running {} demo: {e}", bin.display()))?;
        if !demo.status.success() {
            return Err(format!("{} demo failed", bin.display()));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&demo.stdout).map_err(|e| format!("demo output: {e}"))?;
        let therapist_token = json["therapists"][0]["token"]
            .as_str()
            .ok_or("demo output has no therapist token")?
            .to_owned();
        let port = free_port().map_err(|e| e.to_string())?;
        let log = std::fs::File::create(data_dir.join("server.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--rtc-ip", "127.0.0.1"])
            // Every simulated participant comes from 127.0.0.1: lift the per-address cap
            // and the per-address REST limits (guest tokens, share links, sessions).
            .args(["--max-connections-per-ip", "100000"])
            .args(["--rate-guest-tokens", "1000000/min"])
            .args(["--rate-share-lookups", "1000000/min"])
            .args(["--rate-session-creation", "1000000/min"])
            .arg("serve")
            .env(
                "RUST_LOG",
                std::env::var("THERAROOM_LOAD_SERVER_LOG")
                    .unwrap_or_else(|_| "warn,webrtc::peer_connection::driver=off".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        let mut server = TheraServer {
            base: format!("http://127.0.0.1:{port}"),
            ws: format!("ws://127.0.0.1:{port}/rtc"),
            pid: child.id(),
            therapist_token,
            child: Some(child),
            data_dir: Some(data_dir),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = rest::request(&server.base, "GET", "/healthz", None, None).await {
                if r.status == 200 {
                    break;
                }
            }
            if let Some(Ok(Some(status))) = server.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!(
                    "server exited with {status}; log: {}",
                    server.log_tail()
                ));
            }
            if Instant::now() > deadline {
                server.stop();
                return Err("server did not answer /healthz within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    /// A server that is already running at `base` (`http://host:port`) with process id
    /// `pid`, using `therapist_token` to create sessions.
    pub fn attach(base: &str, pid: u32, therapist_token: &str) -> TheraServer {
        let base = base.trim_end_matches('/').to_owned();
        let ws = format!("{}/rtc", base.replacen("http://", "ws://", 1));
        TheraServer {
            base,
            ws,
            pid,
            therapist_token: therapist_token.to_owned(),
            child: None,
            data_dir: None,
        }
    }

    /// Scrapes `/metrics`.
    pub async fn counters(&self) -> Result<ServerCounters, String> {
        let r = rest::request(&self.base, "GET", "/metrics", None, None)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&r.body);
        let value = |name: &str| -> f64 {
            text.lines()
                .filter(|l| {
                    l.strip_prefix(name)
                        .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Ok(ServerCounters {
            forwarded_packets: value("sfu_forwarded_packets_total"),
            forwarded_bytes: value("sfu_forwarded_bytes_total"),
            dropped_packets: value("sfu_dropped_packets_total"),
            forwarded_tracks: value("sfu_forwarded_tracks"),
            published_tracks: value("sfu_published_tracks"),
            relayed_frames: value("theraroom_cluster_relay_frames_total"),
            relayed_sockets: value("theraroom_cluster_relayed_sockets"),
        })
    }

    /// The last lines of the server log (spawned servers only).
    pub fn log_tail(&self) -> String {
        let Some(dir) = &self.data_dir else {
            return String::new();
        };
        let text = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Stops a spawned server (SIGTERM, then SIGKILL after 5 s) and removes its data;
    /// with `THERAROOM_LOAD_KEEP_LOG=<file>` its log is copied there first (run the tool
    /// with `THERAROOM_LOAD_SERVER_LOG=<filter>` to choose what the server logs).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            theraroom_load::nodes::terminate_child(&mut child, Duration::from_secs(5));
        }
        if let Some(dir) = self.data_dir.take() {
            if let Some(keep) = std::env::var_os("THERAROOM_LOAD_KEEP_LOG") {
                let _ = std::fs::copy(dir.join("server.log"), keep);
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for TheraServer {
    fn drop(&mut self) {
        self.stop();
    }
}
