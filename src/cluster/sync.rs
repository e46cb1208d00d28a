//! The heartbeat: once a [`HEARTBEAT`], a node publishes its registry entry and load,
//! reads the registry, renews the lease and participant set of every room it holds,
//! releases the rooms it no longer holds, and hands over the rooms whose lease another
//! node holds now. The heartbeat that succeeds after a Redis outage re-asserts the
//! node's rooms (a restarted Redis has none of them).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use signaling::Hub;

use super::registry::{CpuMeter, NodeInfo, EXPIRY_MS, HEARTBEAT};
use super::Cluster;

/// Starts the heartbeat of `cluster` over `hub`'s rooms; runs until the process stops.
pub fn spawn(cluster: Cluster, hub: Hub) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cpu = CpuMeter::default();
        let mut previous = HashSet::new();
        loop {
            tick.tick().await;
            cluster.beat(&hub, &mut cpu, &mut previous).await;
        }
    })
}

impl Cluster {
    /// One heartbeat. `previous` is the set of rooms renewed by the last one.
    async fn beat(&self, hub: &Hub, cpu: &mut CpuMeter, previous: &mut HashSet<String>) {
        let held = hub.rooms_held().await;
        let participants: usize = held.iter().map(|(_, p)| p.len()).sum();
        if let Ok(mut load) = self.inner.load.write() {
            *load = (held.len(), participants, cpu.sample());
        }
        metrics::gauge!("theraroom_cluster_rooms_held").set(held.len() as f64);
        match self.heartbeat_round(hub, held, previous).await {
            Ok(()) => {
                if !self.inner.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis reachable again: joins are taken again");
                }
                metrics::gauge!("theraroom_cluster_redis_up").set(1.0);
            }
            Err(()) => metrics::counter!("theraroom_cluster_heartbeat_failures_total").increment(1),
        }
    }

    async fn heartbeat_round(
        &self,
        hub: &Hub,
        mut held: Vec<(String, Vec<String>)>,
        previous: &mut HashSet<String>,
    ) -> Result<(), ()> {
        self.publish_entry().await?;
        self.read_registry().await?;
        if self.inner.draining.load(Ordering::Relaxed) {
            return Ok(()); // the drain released the leases; renewing would take them back
        }
        for (session_id, _) in &held {
            self.inner.claims.remove(session_id);
        }
        let held_ids: HashSet<String> = held.iter().map(|(id, _)| id.clone()).collect();
        for claim in self.recent_claims() {
            if !held_ids.contains(&claim) {
                held.push((claim, Vec::new()));
            }
        }
        let current: HashSet<String> = held.iter().map(|(id, _)| id.clone()).collect();
        let moved = self.renew(&held).await?;
        for session_id in moved {
            self.inner.claims.remove(&session_id);
            metrics::counter!("theraroom_cluster_handovers_total").increment(1);
            let hub = hub.clone();
            tokio::spawn(async move { hub.hand_over(&session_id).await });
        }
        let released: Vec<String> = previous.difference(&current).cloned().collect();
        self.release(&released).await?;
        *previous = current;
        Ok(())
    }

    /// Writes this node's registry entry, expiring in [`EXPIRY_MS`].
    async fn publish_entry(&self) -> Result<(), ()> {
        let entry = serde_json::to_string(&self.self_info()).unwrap_or_default();
        let mut redis = self.redis();
        redis::cmd("SET")
            .arg(self.keys().node(self.node_id()))
            .arg(entry)
            .arg("PX")
            .arg(EXPIRY_MS)
            .query_async::<()>(&mut redis)
            .await
            .map_err(|e| self.redis_failed("heartbeat", &e))
    }

    /// Reads every registry entry (live nodes only: entries expire).
    async fn read_registry(&self) -> Result<(), ()> {
        let nodes = self.registry().await?;
        metrics::gauge!("theraroom_cluster_nodes").set(nodes.len() as f64);
        if let Ok(mut cached) = self.inner.nodes.write() {
            *cached = nodes;
        }
        Ok(())
    }

    /// The registry as it is in Redis now.
    pub async fn registry(&self) -> Result<Vec<NodeInfo>, ()> {
        let keys = self.scan(&self.keys().node_pattern()).await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut redis = self.redis();
        let entries: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut redis)
            .await
            .map_err(|e| self.redis_failed("registry read", &e))?;
        let mut nodes: Vec<NodeInfo> = entries
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    /// Every key matching `pattern` (SCAN, so Redis is never blocked).
    pub(super) async fn scan(&self, pattern: &str) -> Result<Vec<String>, ()> {
        let mut redis = self.redis();
        let mut cursor: u64 = 0;
        let mut found = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut redis)
                .await
                .map_err(|e| self.redis_failed("scan", &e))?;
            found.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// A clean shutdown: the node takes no new rooms, lets go of its leases and leaves
    /// the registry, so its clients, told to reconnect (1012) by the hub's shutdown
    /// right after, land on the other nodes at once.
    pub async fn drain(&self, hub: &Hub) {
        self.inner.draining.store(true, Ordering::Relaxed);
        let held: Vec<String> = hub
            .rooms_held()
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let rooms = held.len();
        let released = self.release(&held).await.is_ok();
        let mut redis = self.redis();
        let _ = redis::cmd("DEL")
            .arg(self.keys().node(self.node_id()))
            .query_async::<()>(&mut redis)
            .await;
        let relays = self.stop_relays().await;
        tracing::info!(
            rooms,
            released,
            relays,
            "node drained: its rooms reopen on the other nodes"
        );
    }

    /// Tells the relays on this node to close their clients with 1012 (they reconnect
    /// through another node; their rooms live elsewhere and go on), and waits up to a
    /// second for them to finish. Returns how many relays were open.
    async fn stop_relays(&self) -> usize {
        let stopping = &self.inner.stopping;
        let open = stopping.receiver_count();
        stopping.send_replace(true);
        // Resolves once every relay has dropped its receiver, i.e. has ended.
        let _ = tokio::time::timeout(RELAYS_STOP_WAIT, stopping.closed()).await;
        open
    }
}

/// How long a stopping node waits for its relays to close their clients.
const RELAYS_STOP_WAIT: Duration = Duration::from_secs(1);
