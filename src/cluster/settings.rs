//! The command-line settings of multi-node mode (`--redis-url`, `--node-*`).

use clap::Args;

/// Default Redis key prefix: every key and channel of the cluster starts with it.
pub const DEFAULT_PREFIX: &str = "theraroom";
/// Default participants a node takes before new rooms go to a less loaded node.
pub const DEFAULT_NODE_CAPACITY: usize = 500;

/// Settings of multi-node mode; without `--redis-url` the server is one node alone.
#[derive(Debug, Clone, Args)]
pub struct ClusterSettings {
    /// Redis URL (`redis://127.0.0.1:6379`): turns on multi-node mode. The nodes share
    /// the rooms' placement, the node registry, notifications, revocations and rate
    /// limits through it. Needs PostgreSQL (`DATABASE_URL`) as the shared store.
    #[arg(
        long,
        env = "THERAROOM_REDIS_URL",
        hide_env_values = true,
        global = true
    )]
    pub redis_url: Option<String>,
    /// This node's id in the cluster (letters, digits, `-`, `_`; at most 64).
    /// Default: generated at startup.
    #[arg(long, env = "THERAROOM_NODE_ID", global = true)]
    pub node_id: Option<String>,
    /// The `http://host:port` other nodes reach this node's HTTP server at, to relay
    /// signaling sockets of the rooms it holds. Default: `http://` and `--bind` (which
    /// then must not be a wildcard address).
    #[arg(long, env = "THERAROOM_NODE_URL", global = true)]
    pub node_url: Option<String>,
    /// Prefix of every Redis key and channel, so that several clusters (or test runs)
    /// can share one Redis.
    #[arg(long, env = "THERAROOM_REDIS_PREFIX", default_value = DEFAULT_PREFIX, global = true)]
    pub redis_prefix: String,
    /// Participants this node holds before new rooms are placed on a less loaded node.
    #[arg(
        long,
        env = "THERAROOM_NODE_CAPACITY",
        default_value_t = DEFAULT_NODE_CAPACITY,
        global = true
    )]
    pub node_capacity: usize,
}

impl ClusterSettings {
    /// True when `--redis-url` turns multi-node mode on.
    pub fn enabled(&self) -> bool {
        self.redis_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty())
    }
}

/// A node id is safe to put in Redis keys and logs: 1–64 of `A–Z a–z 0–9 - _`.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_key_safe() {
        assert!(valid_node_id("node-a_1"));
        assert!(!valid_node_id(""));
        assert!(!valid_node_id("a:b"));
        assert!(!valid_node_id(&"x".repeat(65)));
    }
}
