//! Several TheraRoom nodes on this machine sharing one Redis and one PostgreSQL
//! database, as separate processes of the server binary: what the multi-node tests and
//! the load tool's `--nodes` run against. Also a private `redis-server` that a test
//! can kill and start again.
//!
//! Only the server's public surface is used: its command line, REST, `/rtc`,
//! `/metrics`, `/internal/cluster/rooms` (with the cluster secret) and /proc.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::rest;

/// A `redis-server` process of its own on a loopback port, keeping nothing on disk.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port; `Err` when it is not installed
    /// or does not answer.
    pub fn start() -> Result<RedisServer, String> {
        let port = free_tcp_port()?;
        let mut server = RedisServer { port, child: None };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL): everything it held is gone, as after a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis_answers(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("redis-server did not answer PING within 10 s".into())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True when a Redis server on `port` answers `PING`.
fn redis_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// What the nodes share.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The server binary.
    pub bin: PathBuf,
    /// PostgreSQL URL (the caller prepares the database or schema).
    pub database_url: String,
    /// Redis URL.
    pub redis_url: String,
    /// Key prefix of this cluster in Redis.
    pub prefix: String,
    /// The JWT secret of every node.
    pub jwt_secret: String,
    /// The data key of every node (base64 of 32 bytes).
    pub data_key: String,
    /// Extra server arguments (before `serve`); by default the per-address limits are
    /// lifted.
    pub extra_args: Vec<String>,
    /// `RUST_LOG` of the nodes.
    pub log_filter: String,
}

impl ClusterSpec {
    /// A spec with fresh secrets and a fresh prefix.
    pub fn new(bin: &Path, database_url: &str, redis_url: &str) -> ClusterSpec {
        ClusterSpec {
            bin: bin.to_path_buf(),
            database_url: database_url.to_string(),
            redis_url: redis_url.to_string(),
            prefix: format!("tr-{:016x}", rand::random::<u64>()),
            jwt_secret: format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            ),
            // base64 of 32 bytes of 0x2a: a test key (random keys need a base64 encoder).
            data_key: "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=".into(),
            // Every simulated participant comes from 127.0.0.1: lift the per-address
            // cap and REST limits (a test that checks a limit sets its own).
            extra_args: [
                "--max-connections-per-ip",
                "100000",
                "--rate-guest-tokens",
                "1000000/min",
                "--rate-share-lookups",
                "1000000/min",
                "--rate-session-creation",
                "1000000/min",
            ]
            .map(String::from)
            .to_vec(),
            log_filter: "warn,theraroom::cluster=info,webrtc::peer_connection::driver=off".into(),
        }
    }
}

/// One node process.
pub struct Node {
    /// `--node-id`.
    pub id: String,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// `ws://127.0.0.1:port/rtc`.
    pub ws: String,
    /// Its HTTP port.
    pub port: u16,
    /// Its media port (one worker).
    pub rtc_port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    /// Process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// Several nodes of one cluster.
pub struct Nodes {
    /// The nodes, in the order started.
    pub nodes: Vec<Node>,
    /// A therapist token (from `demo --json`) that may create sessions.
    pub therapist_token: String,
    /// The demo output: the organization, its admin, therapists and client (ids and
    /// tokens), for tests that need more than the first therapist.
    pub demo: serde_json::Value,
    spec: ClusterSpec,
    dir: PathBuf,
}

impl Nodes {
    /// Creates the demo data (`demo --json`) and starts `count` nodes, each on free
    /// loopback ports, and waits until each one is ready.
    pub async fn start(spec: ClusterSpec, count: usize) -> Result<Nodes, String> {
        let dir = std::env::temp_dir().join(format!("theraroom-nodes-{}", spec.prefix));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let demo = Command::new(&spec.bin)
            .arg("--data-dir")
            .arg(dir.join("demo"))
            .args(["demo", "--json"])
            .envs(shared_env(&spec))
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("running {} demo: {e}", spec.bin.display()))?;
        if !demo.status.success() {
            return Err(format!("{} demo failed", spec.bin.display()));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&demo.stdout).map_err(|e| format!("demo output: {e}"))?;
        let therapist_token = json["therapists"][0]["token"]
            .as_str()
            .ok_or("demo output has no therapist token")?
            .to_owned();
        let mut nodes = Nodes {
            nodes: Vec::new(),
            therapist_token,
            demo: json,
            spec,
            dir,
        };
        for i in 0..count {
            let port = free_tcp_port()?;
            let rtc_port = free_media_port()?;
            let id = format!("node-{}", (b'a' + i as u8) as char);
            let log = nodes.dir.join(format!("{id}.log"));
            nodes.nodes.push(Node {
                base: format!("http://127.0.0.1:{port}"),
                ws: format!("ws://127.0.0.1:{port}/rtc"),
                id,
                port,
                rtc_port,
                child: None,
                log,
            });
            nodes.launch(i)?;
        }
        for i in 0..count {
            nodes.wait_ready(i, Duration::from_secs(30)).await?;
        }
        Ok(nodes)
    }

    /// Starts node `i` again (after [`Nodes::kill`]) on the same ports.
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        self.launch(i)?;
        self.wait_ready(i, Duration::from_secs(30)).await
    }

    fn launch(&mut self, i: usize) -> Result<(), String> {
        let spec = &self.spec;
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| e.to_string())?;
        let child = Command::new(&spec.bin)
            .arg("--data-dir")
            .arg(self.dir.join(&node.id))
            .args(["--bind", &format!("127.0.0.1:{}", node.port)])
            .args(["--rtc-ip", "127.0.0.1", "--rtc-workers", "1"])
            .args(["--rtc-port", &node.rtc_port.to_string()])
            .args(["--node-id", &node.id])
            .args([
                "--redis-url",
                &spec.redis_url,
                "--redis-prefix",
                &spec.prefix,
            ])
            .args(&spec.extra_args)
            .arg("serve")
            .envs(shared_env(spec))
            .env("RUST_LOG", &spec.log_filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", spec.bin.display()))?;
        node.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self, i: usize, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let base = self.nodes[i].base.clone();
            if let Ok(r) = rest::request(&base, "GET", "/readyz", None, None).await {
                if r.status == 200 {
                    return Ok(());
                }
            }
            let node = &mut self.nodes[i];
            if let Some(Ok(Some(status))) = node.child.as_mut().map(|c| c.try_wait()) {
                node.child = None;
                let id = node.id.clone();
                return Err(format!("{id} exited with {status}: {}", self.log_tail(i)));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} was not ready within {limit:?}",
                    self.nodes[i].id
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills node `i` with SIGKILL: no drain, no goodbye.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `i` cleanly (SIGTERM: it drains its rooms to the others).
    pub fn terminate(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            terminate_child(&mut child, Duration::from_secs(10));
        }
    }

    /// The rooms node `i` holds, as it reports them: session id → participant ids.
    pub async fn rooms_held(
        &self,
        i: usize,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, String> {
        let base = &self.nodes[i].base;
        let secret = self.cluster_secret();
        let r = rest::request_with_headers(
            base,
            "GET",
            "/internal/cluster/rooms",
            &[("x-theraroom-relay", secret.as_str())],
        )
        .await
        .map_err(|e| e.to_string())?;
        let json = r.ok_json().map_err(|e| e.to_string())?;
        serde_json::from_value(json["rooms"].clone()).map_err(|e| e.to_string())
    }

    /// The cluster secret: HMAC-SHA256 of the relay label under the JWT secret, as
    /// every node derives it (`theraroom::cluster::relay_secret`).
    pub fn cluster_secret(&self) -> String {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(self.spec.jwt_secret.as_bytes())
        else {
            return String::new();
        };
        mac.update(b"theraroom cluster relay v1");
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The spec the nodes run with.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The last lines of node `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The whole log of node `i`.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if let Some(keep) = std::env::var_os("THERAROOM_KEEP_NODE_LOGS") {
            let _ = std::fs::create_dir_all(&keep);
            for node in &self.nodes {
                let _ = std::fs::copy(&node.log, Path::new(&keep).join(format!("{}.log", node.id)));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn shared_env(spec: &ClusterSpec) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", spec.database_url.clone()),
        ("THERAROOM_JWT_SECRET", spec.jwt_secret.clone()),
        ("THERAROOM_DATA_KEY", spec.data_key.clone()),
    ]
}

fn free_tcp_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A port free for both UDP and TCP on 127.0.0.1 (a media worker listens on both).
fn free_media_port() -> Result<u16, String> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = udp.local_addr().map_err(|e| e.to_string())?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no port free for both UDP and TCP".into())
}

/// Stops a spawned server as an operator would: SIGTERM (it drains and closes its
/// calls), then SIGKILL when it has not exited within `grace`.
pub fn terminate_child(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
