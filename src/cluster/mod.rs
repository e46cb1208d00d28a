//! Several TheraRoom nodes sharing the rooms of one deployment, coordinated in Redis
//! (`--redis-url`). Redis commands live in this module only.
//!
//! - [`registry`]: each node's entry and load, renewed by its heartbeat;
//! - [`placement`]: which node holds a room (a lease in Redis), and where a join goes;
//! - [`relay`]: a signaling socket that reached a node not holding its room is relayed,
//!   frame for frame, to the node that does (media always flows between the client and
//!   the room's node: its ICE candidates are that node's);
//! - [`sync`]: the heartbeat loop: registry entry, leases and participant sets renewed,
//!   rooms whose lease went elsewhere handed over, Redis outages noticed;
//! - [`bus`]: events every node applies (notifications, revocations, ended sessions,
//!   removals) and requests to the node holding a room (waiting room decisions);
//! - [`limits`]: rate-limit counters shared by the nodes.
//!
//! Without Redis a node keeps its running calls (media and signaling need nothing
//! from Redis) and refuses new joins until Redis is back (`/readyz` says so).

pub mod bus;
pub mod keys;
pub mod limits;
pub mod placement;
pub mod registry;
pub mod relay;
pub mod settings;
pub mod startup;
pub mod sync;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use hmac::{Hmac, Mac};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::Sha256;

pub use placement::Route;
pub use registry::NodeInfo;
pub use settings::ClusterSettings;

use keys::Keys;
use placement::Scripts;

/// How long a Redis command may take before the node counts Redis as unreachable.
const REDIS_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a claim made for a join is renewed before its room exists in the hub.
const CLAIM_HOLD: Duration = Duration::from_secs(15);

/// One line per 5 s about Redis failing, not one per command.
static REDIS_LOG: signaling::LogThrottle = signaling::LogThrottle::new(Duration::from_secs(5));

/// Who this node is, as it announces itself.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// `--node-id`.
    pub id: String,
    /// `--node-url`.
    pub url: String,
    /// Advertised media address.
    pub media: String,
    /// `--node-capacity`.
    pub capacity: usize,
}

/// This node's membership of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    me: NodeIdentity,
    keys: Keys,
    client: redis::Client,
    redis: ConnectionManager,
    scripts: Scripts,
    /// False from a failed Redis command until the next heartbeat that succeeds.
    reachable: AtomicBool,
    /// Set at shutdown: the node takes no new rooms.
    draining: AtomicBool,
    /// The registry as last read by the heartbeat.
    nodes: RwLock<Vec<NodeInfo>>,
    /// This node's own load as last published.
    load: RwLock<(usize, usize, f64)>,
    /// Rooms claimed for this node whose room the hub may not have made yet.
    claims: DashMap<String, Instant>,
    /// The header value that proves a relayed socket comes from a node.
    relay_secret: String,
    /// Requests to other nodes waiting for their answer.
    calls: bus::Calls,
    /// Turns true when the node stops: its relays close their clients with 1012. Each
    /// running relay holds one receiver, so its receiver count is the open relays.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// Why multi-node mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// Redis did not answer.
    #[error("cannot reach Redis at {url}: {error}")]
    Redis {
        /// The URL without credentials.
        url: String,
        /// What failed.
        error: String,
    },
}

impl Cluster {
    /// Connects to Redis; the node joins the registry with [`sync::spawn`].
    /// `jwt_secret` must be the same on every node (tokens of one node are valid on
    /// all); the relay secret is derived from it.
    pub async fn connect(
        settings: &ClusterSettings,
        me: NodeIdentity,
        jwt_secret: &[u8],
    ) -> Result<Cluster, StartError> {
        let url = settings.redis_url.clone().unwrap_or_default();
        let shown = redacted(&url);
        let client = redis::Client::open(url.as_str()).map_err(|e| StartError::Redis {
            url: shown.clone(),
            error: e.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let redis = tokio::time::timeout(
            REDIS_TIMEOUT * 2,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StartError::Redis {
            url: shown.clone(),
            error: "timed out".into(),
        })?
        .map_err(|e| StartError::Redis {
            url: shown.clone(),
            error: e.to_string(),
        })?;
        tracing::info!(node = %me.id, url = %me.url, redis = %shown, "multi-node mode");
        Ok(Cluster {
            inner: Arc::new(Inner {
                keys: Keys::new(&settings.redis_prefix),
                client,
                redis,
                scripts: Scripts::default(),
                reachable: AtomicBool::new(true),
                draining: AtomicBool::new(false),
                nodes: RwLock::new(Vec::new()),
                load: RwLock::new((0, 0, 0.0)),
                claims: DashMap::new(),
                relay_secret: relay_secret(jwt_secret),
                calls: bus::Calls::default(),
                stopping: tokio::sync::watch::Sender::new(false),
                me,
            }),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.me.id
    }

    /// True while Redis answers (as of the last command or heartbeat).
    pub fn redis_reachable(&self) -> bool {
        self.inner.reachable.load(Ordering::Relaxed)
    }

    /// True when a header value is the relay secret (compared in constant time).
    pub fn is_relay_secret(&self, value: &str) -> bool {
        let (a, b) = (value.as_bytes(), self.inner.relay_secret.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }

    /// The relay secret, for the relay's upstream request and internal endpoints.
    pub(crate) fn relay_secret_value(&self) -> &str {
        &self.inner.relay_secret
    }

    /// The registry as last read, live nodes only.
    pub fn live_nodes(&self) -> Vec<NodeInfo> {
        self.inner
            .nodes
            .read()
            .map(|nodes| nodes.clone())
            .unwrap_or_default()
    }

    /// This node's entry as it publishes it.
    pub fn self_info(&self) -> NodeInfo {
        let (rooms, participants, cpu_percent) =
            self.inner.load.read().map(|l| *l).unwrap_or((0, 0, 0.0));
        NodeInfo {
            id: self.inner.me.id.clone(),
            url: self.inner.me.url.clone(),
            media: self.inner.me.media.clone(),
            rooms,
            participants,
            cpu_percent,
            capacity: self.inner.me.capacity,
            draining: self.inner.draining.load(Ordering::Relaxed),
        }
    }

    /// The base URL of a live node: from the registry as last read, or else read now;
    /// `None` when the node has no entry (gone).
    async fn node_url(&self, id: &str) -> Result<Option<String>, ()> {
        if let Some(node) = self.live_nodes().into_iter().find(|n| n.id == id) {
            return Ok(Some(node.url));
        }
        let mut redis = self.redis();
        let entry: Option<String> = redis::cmd("GET")
            .arg(self.keys().node(id))
            .query_async(&mut redis)
            .await
            .map_err(|e| self.redis_failed("registry lookup", &e))?;
        Ok(entry
            .and_then(|json| serde_json::from_str::<NodeInfo>(&json).ok())
            .map(|n| n.url))
    }

    /// Drops a node from the registry as read, until the next heartbeat reads it again.
    fn forget_node(&self, id: &str) {
        if let Ok(mut nodes) = self.inner.nodes.write() {
            nodes.retain(|n| n.id != id);
        }
    }

    /// Remembers that this node claimed `session_id`, so the heartbeat renews the
    /// lease until the room exists (a join may take a while to be admitted).
    fn note_claim(&self, session_id: &str) {
        self.inner
            .claims
            .insert(session_id.to_string(), Instant::now());
    }

    /// Rooms claimed recently for this node, forgetting the old claims.
    fn recent_claims(&self) -> Vec<String> {
        self.inner.claims.retain(|_, at| at.elapsed() < CLAIM_HOLD);
        self.inner.claims.iter().map(|c| c.key().clone()).collect()
    }

    /// Marks Redis unreachable after a failed command (until a heartbeat succeeds).
    fn redis_failed(&self, what: &str, error: &redis::RedisError) {
        if self.inner.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(what, error = %error, "Redis unreachable: new joins are refused, running calls go on");
        } else if let Some(suppressed) = REDIS_LOG.allow() {
            tracing::debug!(what, error = %error, suppressed, "Redis still unreachable");
        }
        metrics::gauge!("theraroom_cluster_redis_up").set(0.0);
    }

    fn redis(&self) -> ConnectionManager {
        self.inner.redis.clone()
    }

    fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }
}

/// The relay secret: HMAC-SHA256 of a fixed label under the JWT secret, so every node
/// with the same JWT secret has it and nothing else needs configuring. Public for the
/// tools (and tests) that read `GET /internal/cluster/rooms`.
pub fn relay_secret(jwt_secret: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(jwt_secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(b"theraroom cluster relay v1");
    hex::encode(mac.finalize().into_bytes())
}

/// A Redis URL without its password, for logs.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparsable URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_secret_follows_the_jwt_secret() {
        assert_eq!(relay_secret(b"one"), relay_secret(b"one"));
        assert_ne!(relay_secret(b"one"), relay_secret(b"two"));
        assert_eq!(relay_secret(b"one").len(), 64);
    }

    #[test]
    fn redis_passwords_stay_out_of_logs() {
        assert_eq!(
            redacted("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert!(!redacted("redis://user:pw@host/").contains("pw"));
    }
}
