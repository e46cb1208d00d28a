//! TheraRoom as several nodes (`--nodes N`): the nodes of `theraroom_load::nodes` on a
//! fresh PostgreSQL schema and a private Redis, driven through the same scenarios.
//!
//! How participants pick a node decides what is measured:
//! - `direct`: every member of a room opens its socket on the room's home node (rooms
//!   are spread over the nodes in turn), so no signaling is relayed;
//! - `spread`: member k of a room opens it on node (home + k) mod N, as behind a load
//!   balancer that routes `/rtc` anywhere: all but the first are relayed to the room's
//!   node. The difference between the two is the relay's cost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use theraroom_load::engine::{EngineParticipant, EngineStats};
use theraroom_load::nodes::{ClusterSpec, Nodes, RedisServer};
use theraroom_load::{rest, JoinOptions, Participant, Publish};

use super::backend::{
    create_theraroom_room, Backend, Client, EnginePeer, Peer, RoomHandle, TheraPeer,
};
use super::server::{ServerCounters, TheraServer};

/// Which node a participant's socket goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The room's home node, for every member.
    Direct,
    /// Member k on node (home + k) mod N.
    Spread,
}

impl Routing {
    /// The label suffix of a scenario.
    pub fn label(self) -> &'static str {
        match self {
            Routing::Direct => "direct",
            Routing::Spread => "spread",
        }
    }
}

/// Nodes started for a run, with what they stand on.
pub struct Running {
    /// The nodes.
    pub nodes: Nodes,
    /// The private Redis, unless one was given.
    _redis: Option<RedisServer>,
    /// The PostgreSQL schema made for the run: (admin URL, schema), dropped at the end.
    schema: (String, String),
}

impl Drop for Running {
    fn drop(&mut self) {
        for i in 0..self.nodes.nodes.len() {
            self.nodes.kill(i);
        }
        let (admin, schema) = &self.schema;
        let _ = psql(admin, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = std::process::Command::new("psql")
        .args([url, "-qtAc", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Starts `count` nodes of `bin` on a fresh schema of `database_url` and on
/// `redis_url` (or a private redis-server).
pub async fn start(
    bin: Option<&std::path::Path>,
    count: usize,
    database_url: &str,
    redis_url: Option<&str>,
) -> Result<Running, String> {
    let bin = bin.ok_or("--nodes needs --server-bin")?;
    let schema = format!("load_{:016x}", rand::random::<u64>());
    psql(database_url, &format!("CREATE SCHEMA {schema}"))?;
    let sep = if database_url.contains('?') { '&' } else { '?' };
    let url = format!("{database_url}{sep}options=-c%20search_path%3D{schema}");
    let (redis, redis_url) = match redis_url {
        Some(url) => (None, url.to_owned()),
        None => {
            let r = RedisServer::start()?;
            let url = r.url();
            (Some(r), url)
        }
    };
    let spec = ClusterSpec::new(bin, &url, &redis_url);
    let nodes = Nodes::start(spec, count).await;
    let running = |nodes| Running {
        nodes,
        _redis: redis,
        schema: (database_url.to_owned(), schema.clone()),
    };
    match nodes {
        Ok(nodes) => Ok(running(nodes)),
        Err(e) => {
            let _ = psql(
                database_url,
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            );
            Err(e)
        }
    }
}

/// Several TheraRoom nodes through their public protocol.
pub struct ClusterBackend {
    /// The nodes.
    pub running: Running,
    /// The client stack participants join with.
    pub client: Client,
    /// How sockets pick their node.
    pub routing: Routing,
    /// Per room: its home node and how many members joined so far.
    rooms: Mutex<HashMap<String, (usize, usize)>>,
}

impl ClusterBackend {
    /// A backend over `nodes`.
    pub fn new(running: Running, client: Client, routing: Routing) -> ClusterBackend {
        ClusterBackend {
            running,
            client,
            routing,
            rooms: Mutex::new(HashMap::new()),
        }
    }

    /// The node the next member of `room` joins through.
    fn node_for(&self, room: &str) -> usize {
        let count = self.running.nodes.nodes.len().max(1);
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let next_home = rooms.len() % count;
        let entry = rooms.entry(room.to_owned()).or_insert((next_home, 0));
        let member = entry.1;
        entry.1 += 1;
        match self.routing {
            Routing::Direct => entry.0,
            Routing::Spread => (entry.0 + member) % count,
        }
    }

    /// Each running node as a [`TheraServer`] handle (for its counters).
    fn servers(&self) -> Vec<TheraServer> {
        self.running
            .nodes
            .nodes
            .iter()
            .filter_map(|n| {
                Some(TheraServer::attach(
                    &n.base,
                    n.pid()?,
                    &self.running.nodes.therapist_token,
                ))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Backend for ClusterBackend {
    fn name(&self) -> &'static str {
        match self.routing {
            Routing::Direct => "nodes direct",
            Routing::Spread => "nodes spread",
        }
    }

    fn client(&self) -> String {
        self.client.label()
    }

    fn engine_stats(&self) -> Option<EngineStats> {
        self.client.engine_stats()
    }

    fn pid(&self) -> u32 {
        self.running
            .nodes
            .nodes
            .first()
            .and_then(|n| n.pid())
            .unwrap_or(0)
    }

    fn pids(&self) -> Vec<(String, u32)> {
        self.running
            .nodes
            .nodes
            .iter()
            .filter_map(|n| Some((n.id.clone(), n.pid()?)))
            .collect()
    }

    async fn create_room(&self, size: usize) -> Result<RoomHandle, String> {
        let nodes = &self.running.nodes;
        create_theraroom_room(&nodes.nodes[0].base, &nodes.therapist_token, size).await
    }

    async fn join(
        &self,
        room: &RoomHandle,
        index: usize,
        publish: Publish,
    ) -> Result<(std::sync::Arc<dyn Peer>, Instant), String> {
        let node = &self.running.nodes.nodes[self.node_for(&room.id)];
        let guest = rest::guest_token(&node.base, &room.secret, &format!("load-{index}"))
            .await
            .map_err(|e| format!("guest token: {e}"))?;
        let mut opts = JoinOptions::new(&node.ws, &room.id, &guest.token);
        opts.publish = publish;
        let start = Instant::now();
        let peer: std::sync::Arc<dyn Peer> = match &self.client {
            Client::Engine(engine) => std::sync::Arc::new(EnginePeer {
                p: EngineParticipant::join(engine, opts)
                    .await
                    .map_err(|e| format!("join via {}: {e}", node.id))?,
            }),
            Client::Webrtc => std::sync::Arc::new(TheraPeer {
                p: Participant::join(opts)
                    .await
                    .map_err(|e| format!("join via {}: {e}", node.id))?,
            }),
        };
        Ok((peer, start))
    }

    /// The nodes' counters, summed.
    async fn counters(&self) -> Option<ServerCounters> {
        let mut total = ServerCounters::default();
        for server in self.servers() {
            let c = server.counters().await.ok()?;
            total.forwarded_packets += c.forwarded_packets;
            total.forwarded_bytes += c.forwarded_bytes;
            total.dropped_packets += c.dropped_packets;
            total.forwarded_tracks += c.forwarded_tracks;
            total.published_tracks += c.published_tracks;
            total.relayed_frames += c.relayed_frames;
            total.relayed_sockets += c.relayed_sockets;
        }
        Some(total)
    }
}
