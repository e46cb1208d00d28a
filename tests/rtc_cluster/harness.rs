//! Three nodes of the real server binary sharing a private `redis-server` and a fresh
//! PostgreSQL schema. PostgreSQL is reached over its Unix socket, so that the tests run
//! inside the private network namespace (only `lo`) of the media tests; Redis is
//! started inside the namespace on loopback. Without either the tests print SKIP,
//! unless CI=true: then they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use redis::AsyncCommands;
use sqlx::Connection;
use theraroom_load::nodes::{ClusterSpec, Nodes, RedisServer};

use super::rtc_common::eventually_async;

/// PostgreSQL over its Unix socket (as the test runner's user, or `postgres`).
const PG_URLS: [&str; 2] = [
    "postgres://root@localhost/test?host=/var/run/postgresql",
    "postgres://postgres@localhost/test?host=/var/run/postgresql",
];

/// A cluster under test and what it stands on.
pub struct Cluster {
    pub nodes: Nodes,
    pub redis: RedisServer,
    schema: Option<(String, String)>,
}

/// Fails under CI, skips elsewhere.
fn unavailable(what: &str) -> Option<Cluster> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {what}");
    }
    eprintln!("SKIP: {what}");
    None
}

impl Cluster {
    /// Starts `count` nodes; `None` (after a SKIP line) without PostgreSQL or Redis.
    pub async fn start(count: usize) -> Option<Cluster> {
        Cluster::start_with(count, |_| {}).await
    }

    /// [`Cluster::start`] with the nodes' spec changed by `adjust` first.
    pub async fn start_with(
        count: usize,
        adjust: impl FnOnce(&mut ClusterSpec),
    ) -> Option<Cluster> {
        let redis = match RedisServer::start() {
            Ok(redis) => redis,
            Err(e) => return unavailable(&format!("no redis-server: {e}")),
        };
        let mut admin = None;
        for url in PG_URLS {
            if sqlx::PgConnection::connect(url).await.is_ok() {
                admin = Some(url.to_string());
                break;
            }
        }
        let Some(admin) = admin else {
            return unavailable("no PostgreSQL on /var/run/postgresql (database test)");
        };
        let schema = format!("cluster_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .expect("create schema");
        let url = format!("{admin}&options=-c%20search_path%3D{schema}");
        let bin = Path::new(env!("CARGO_BIN_EXE_theraroom"));
        let mut spec = ClusterSpec::new(bin, &url, &redis.url());
        adjust(&mut spec);
        let nodes = match Nodes::start(spec, count).await {
            Ok(nodes) => nodes,
            Err(e) => panic!("nodes did not start: {e}"),
        };
        Some(Cluster {
            nodes,
            redis,
            schema: Some((admin, schema)),
        })
    }

    /// A Redis connection to the cluster's Redis.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection")
    }

    /// What Redis says: session → (holder, participant ids).
    pub async fn redis_rooms(&self) -> BTreeMap<String, (String, BTreeSet<String>)> {
        let mut redis = self.redis().await;
        let prefix = &self.nodes.spec().prefix;
        let leases: Vec<String> = {
            let mut iter: redis::AsyncIter<String> = redis
                .scan_match(format!("{prefix}:room:*:node"))
                .await
                .expect("scan");
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key.expect("scan item"));
            }
            keys
        };
        let mut rooms = BTreeMap::new();
        for key in leases {
            let session = key
                .strip_prefix(&format!("{prefix}:room:"))
                .and_then(|k| k.strip_suffix(":node"))
                .expect("lease key")
                .to_string();
            let holder: Option<String> = redis.get(&key).await.expect("get lease");
            let members: BTreeSet<String> = redis
                .smembers(format!("{prefix}:room:{session}:members"))
                .await
                .expect("members");
            if let Some(holder) = holder {
                rooms.insert(session, (holder, members));
            }
        }
        rooms
    }

    /// What the running nodes hold: session → (node, participant ids).
    pub async fn node_rooms(&self) -> BTreeMap<String, (String, BTreeSet<String>)> {
        let mut rooms = BTreeMap::new();
        for (i, node) in self.nodes.nodes.iter().enumerate() {
            if !node.running() {
                continue;
            }
            let held = self.nodes.rooms_held(i).await.expect("rooms held");
            for (session, participants) in held {
                let previous = rooms.insert(
                    session.clone(),
                    (node.id.clone(), participants.into_iter().collect()),
                );
                assert!(
                    previous.is_none(),
                    "room {session} is held by two nodes: {previous:?} and {}",
                    node.id
                );
            }
        }
        rooms
    }

    /// Waits up to `limit` until Redis holds exactly the rooms and members the nodes
    /// hold (no orphans either way) and returns what the nodes hold; fails the test
    /// with both sides when it never does. `when` names the moment, for the message.
    pub async fn redis_follows(
        &self,
        limit: Duration,
        when: &str,
    ) -> BTreeMap<String, (String, BTreeSet<String>)> {
        let settled = eventually_async(limit, || async {
            self.redis_rooms().await == self.node_rooms().await
        })
        .await;
        let (in_redis, in_nodes) = (self.redis_rooms().await, self.node_rooms().await);
        assert!(
            settled,
            "Redis holds what the nodes hold {when}:\nredis {in_redis:?}\nnodes {in_nodes:?}"
        );
        in_nodes
    }

    /// The node (index) that holds `session_id`, as the nodes report it.
    pub async fn holder_of(&self, session_id: &str) -> Option<usize> {
        let rooms = self.node_rooms().await;
        let (node, _) = rooms.get(session_id)?;
        self.nodes.nodes.iter().position(|n| &n.id == node)
    }

    /// Removes the schema (the nodes are stopped first).
    pub async fn finish(mut self) {
        for i in 0..self.nodes.nodes.len() {
            self.nodes.kill(i);
        }
        if let Some((admin, schema)) = self.schema.take() {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
}
