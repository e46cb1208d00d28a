//! The names of every Redis key and channel of the cluster, in one place.
//!
//! - `{p}:node:{id}`: a node's registry entry (JSON [`super::registry::NodeInfo`]),
//!   expiring unless its heartbeat renews it;
//! - `{p}:room:{session}:node`: the room's lease, the id of the node that holds it;
//! - `{p}:room:{session}:members`: the set of participant ids in the room, written by
//!   the holder with the lease and expiring with it;
//! - `{p}:bus`: the channel of events every node applies (notifications, revocations,
//!   ended sessions, removals);
//! - `{p}:rpc:{id}` / `{p}:reply:{id}`: requests to one node and its answers;
//! - `{p}:limit:{name}:{key}:{window}`: a shared rate-limit counter.

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (`--redis-prefix`).
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.trim_end_matches(':').to_string(),
        }
    }

    /// A node's registry entry.
    pub fn node(&self, id: &str) -> String {
        format!("{}:node:{id}", self.prefix)
    }

    /// The pattern that matches every registry entry.
    pub fn node_pattern(&self) -> String {
        format!("{}:node:*", self.prefix)
    }

    /// A room's lease.
    pub fn lease(&self, session_id: &str) -> String {
        format!("{}:room:{session_id}:node", self.prefix)
    }

    /// A room's participant set.
    pub fn members(&self, session_id: &str) -> String {
        format!("{}:room:{session_id}:members", self.prefix)
    }

    /// The pattern that matches every room lease.
    pub fn lease_pattern(&self) -> String {
        format!("{}:room:*:node", self.prefix)
    }

    /// The session id in a lease key, if it is one.
    pub fn session_of_lease<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?
            .strip_prefix(":room:")?
            .strip_suffix(":node")
    }

    /// The channel every node listens on.
    pub fn bus(&self) -> String {
        format!("{}:bus", self.prefix)
    }

    /// The channel of requests to one node.
    pub fn rpc(&self, node: &str) -> String {
        format!("{}:rpc:{node}", self.prefix)
    }

    /// The channel of answers to one node's requests.
    pub fn reply(&self, node: &str) -> String {
        format!("{}:reply:{node}", self.prefix)
    }

    /// A rate-limit counter of one window.
    pub fn limit(&self, name: &str, key: &str, window: u64) -> String {
        format!("{}:limit:{name}:{key}:{window}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_name_their_session() {
        let keys = Keys::new("t1:");
        let key = keys.lease("abc-123");
        assert_eq!(key, "t1:room:abc-123:node");
        assert_eq!(keys.session_of_lease(&key), Some("abc-123"));
        assert_eq!(keys.session_of_lease("t1:node:x"), None);
        assert_eq!(keys.session_of_lease("other:room:a:node"), None);
    }
}
