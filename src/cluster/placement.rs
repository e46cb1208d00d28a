//! Room placement: which node holds a room, decided once in Redis and held with a
//! lease that only the holder renews.
//!
//! A join asks [`Cluster::route_join`]. An unplaced room is claimed for the node
//! [`super::registry::place_new_room`] picks; a placed room is served where its lease
//! points, unless that node is gone (no registry entry, or its socket refused): then
//! the room is claimed over from it, atomically, so that two nodes racing to take over
//! agree on one winner. The lease scripts compare the holder before they write.

use redis::Script;

use super::registry::{place_new_room, EXPIRY_MS};
use super::Cluster;

/// Sets the lease to `ARGV[1]` if nobody holds it, or if `ARGV[3]` (a node found gone)
/// does; answers the holder afterwards.
const CLAIM: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or (ARGV[3] ~= '' and holder == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return holder
";

/// The holder's renewal: if `ARGV[1]` holds the lease (or nobody does, e.g. after a
/// Redis restart), renews it and rewrites the room's participant set from `ARGV[3..]`;
/// answers the holder afterwards.
const RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
if #ARGV > 2 then
  redis.call('SADD', KEYS[2], unpack(ARGV, 3))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return ARGV[1]
";

/// The holder lets go of a room (emptied, or drained): deletes its lease and
/// participant set if `ARGV[1]` still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
";

/// The three lease scripts, loaded once (`EVALSHA`, falling back to `EVAL`).
pub(super) struct Scripts {
    claim: Script,
    renew: Script,
    release: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            claim: Script::new(CLAIM),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }
}

/// Where a join goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node holds (or just claimed) the room: serve the join here.
    Local,
    /// Another node holds it: relay the socket there.
    Relay {
        /// The node's id.
        node: String,
        /// Its HTTP base URL.
        url: String,
    },
    /// Redis cannot be reached: no placement can be decided, so no join is taken.
    Unavailable,
}

/// How many times a join follows a lease that moves under it before giving up.
const MAX_ROUTE_STEPS: usize = 4;

impl Cluster {
    /// Where the join of `session_id` goes: here, another node, or nowhere while Redis
    /// is out of reach.
    pub async fn route_join(&self, session_id: &str) -> Route {
        if !self.redis_reachable() {
            return Route::Unavailable;
        }
        let mut holder = match self.lease_holder(session_id).await {
            Ok(holder) => holder,
            Err(()) => return Route::Unavailable,
        };
        for _ in 0..MAX_ROUTE_STEPS {
            let step = match holder.take() {
                None => {
                    let me = self.self_info();
                    let live = self.live_nodes();
                    let target = place_new_room(&me, &live).id.clone();
                    self.claim(session_id, &target, "").await
                }
                Some(id) if id == self.node_id() => {
                    self.note_claim(session_id);
                    return Route::Local;
                }
                Some(id) => match self.node_url(&id).await {
                    Ok(Some(url)) => return Route::Relay { node: id, url },
                    Ok(None) => {
                        tracing::info!(room_id = %session_id, node = %id, "room's node is gone; taking the room over");
                        self.claim(session_id, self.node_id(), &id).await
                    }
                    Err(()) => return Route::Unavailable,
                },
            };
            match step {
                Ok(next) => holder = Some(next),
                Err(()) => return Route::Unavailable,
            }
        }
        tracing::warn!(room_id = %session_id, "room placement kept moving; join refused");
        Route::Unavailable
    }

    /// The relay to `node` failed (its socket refused or timed out): the node is taken
    /// for gone, the room is claimed over from it, and the join routed again.
    pub async fn node_unreachable(&self, session_id: &str, node: &str) -> Route {
        metrics::counter!("theraroom_cluster_takeovers_total").increment(1);
        tracing::warn!(room_id = %session_id, node, "room's node does not answer; taking the room over");
        self.forget_node(node);
        match self.claim(session_id, self.node_id(), node).await {
            Ok(holder) if holder == self.node_id() => {
                self.note_claim(session_id);
                Route::Local
            }
            Ok(_) => self.route_join(session_id).await,
            Err(()) => Route::Unavailable,
        }
    }

    /// Who holds `session_id`'s lease now.
    pub async fn lease_holder(&self, session_id: &str) -> Result<Option<String>, ()> {
        let mut redis = self.redis();
        let key = self.keys().lease(session_id);
        redis::cmd("GET")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .map_err(|e| self.redis_failed("lease lookup", &e))
    }

    /// Claims the lease for `target` (when free, or held by `gone`); the holder after.
    async fn claim(&self, session_id: &str, target: &str, gone: &str) -> Result<String, ()> {
        let mut redis = self.redis();
        let holder: String = self
            .scripts()
            .claim
            .key(self.keys().lease(session_id))
            .arg(target)
            .arg(EXPIRY_MS)
            .arg(gone)
            .invoke_async(&mut redis)
            .await
            .map_err(|e| self.redis_failed("lease claim", &e))?;
        if holder == target && target == self.node_id() {
            self.note_claim(session_id);
        }
        Ok(holder)
    }

    /// Renews the lease of every room in `held` and rewrites its participants, in one
    /// pipeline; answers the rooms whose lease another node holds now.
    pub(super) async fn renew(&self, held: &[(String, Vec<String>)]) -> Result<Vec<String>, ()> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut redis = self.redis();
        let scripts = self.scripts();
        // Load once, so that the pipeline's EVALSHA finds the script (after a Redis
        // restart too: a NOSCRIPT reply fails the round, the next one loads again).
        let _: String = scripts
            .renew
            .prepare_invoke()
            .load_async(&mut redis)
            .await
            .map_err(|e| self.redis_failed("script load", &e))?;
        let mut pipe = redis::pipe();
        for (session_id, participants) in held {
            let keys = self.keys();
            pipe.cmd("EVALSHA")
                .arg(scripts.renew.get_hash())
                .arg(2)
                .arg(keys.lease(session_id))
                .arg(keys.members(session_id))
                .arg(self.node_id())
                .arg(EXPIRY_MS)
                .arg(participants);
        }
        let holders: Vec<String> = pipe
            .query_async(&mut redis)
            .await
            .map_err(|e| self.redis_failed("lease renewal", &e))?;
        Ok(held
            .iter()
            .zip(holders)
            .filter(|(_, holder)| holder != self.node_id())
            .map(|((session_id, _), _)| session_id.clone())
            .collect())
    }

    /// Lets go of rooms this node no longer holds.
    pub(super) async fn release(&self, rooms: &[String]) -> Result<(), ()> {
        if rooms.is_empty() {
            return Ok(());
        }
        let mut redis = self.redis();
        let scripts = self.scripts();
        for session_id in rooms {
            let keys = self.keys();
            let _: i64 = scripts
                .release
                .key(keys.lease(session_id))
                .key(keys.members(session_id))
                .arg(self.node_id())
                .invoke_async(&mut redis)
                .await
                .map_err(|e| self.redis_failed("lease release", &e))?;
        }
        Ok(())
    }
}
