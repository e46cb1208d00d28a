//! The node registry: each node's entry, renewed by its heartbeat and gone when the
//! node stops renewing it, with the load the placement of new rooms reads.

use serde::{Deserialize, Serialize};

/// How often a node renews its entry and its leases.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);
/// How long an entry or a lease outlives its last renewal: a node that stops (killed,
/// cut off from Redis) is gone from the registry this long after its last heartbeat.
pub const EXPIRY_MS: u64 = 5_000;

/// A node as the others see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `--node-id`.
    pub id: String,
    /// Where other nodes reach its HTTP server (`--node-url`).
    pub url: String,
    /// The media address its clients send to (advertised IP and first UDP port).
    pub media: String,
    /// Rooms it holds.
    pub rooms: usize,
    /// Participants in them.
    pub participants: usize,
    /// Its CPU use since the last heartbeat, in percent of one core.
    pub cpu_percent: f64,
    /// Participants it takes before new rooms go elsewhere (`--node-capacity`).
    pub capacity: usize,
    /// Set while it shuts down: no new rooms go to it.
    pub draining: bool,
}

impl NodeInfo {
    /// True when a new room may be placed on this node.
    pub fn has_room(&self) -> bool {
        !self.draining && self.participants < self.capacity
    }
}

/// The node a new room goes to: `me` when it has room, or else the live node with the
/// fewest participants that has room, or else `me` all the same (a full cluster still
/// serves the call rather than refusing it; capacity is a placement hint, the hard
/// limits are the connection caps).
pub fn place_new_room<'a>(me: &'a NodeInfo, live: &'a [NodeInfo]) -> &'a NodeInfo {
    if me.has_room() {
        return me;
    }
    live.iter()
        .filter(|n| n.id != me.id && n.has_room())
        .min_by(|a, b| {
            a.participants
                .cmp(&b.participants)
                .then_with(|| a.cpu_percent.total_cmp(&b.cpu_percent))
        })
        .unwrap_or(me)
}

/// This process's CPU time, for the load published with each heartbeat.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Option<(std::time::Instant, f64)>,
}

impl CpuMeter {
    /// CPU use since the previous call, in percent of one core (0 the first time, and
    /// where `/proc/self/stat` cannot be read).
    pub fn sample(&mut self) -> f64 {
        let Some(seconds) = process_cpu_seconds() else {
            return 0.0;
        };
        let now = std::time::Instant::now();
        let percent = match self.last {
            Some((at, before)) => {
                let wall = now.duration_since(at).as_secs_f64();
                if wall > 0.0 {
                    (seconds - before) / wall * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, seconds));
        percent
    }
}

/// User + system CPU seconds of this process, from `/proc/self/stat` (Linux; the
/// kernel reports them in USER_HZ, 100 per second on every Linux ABI).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_seconds_of_stat(&stat)
}

fn cpu_seconds_of_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces: count fields after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, participants: usize, capacity: usize) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            url: format!("http://{id}"),
            media: String::new(),
            rooms: 0,
            participants,
            cpu_percent: 0.0,
            capacity,
            draining: false,
        }
    }

    #[test]
    fn the_node_that_took_the_join_keeps_the_room_while_it_has_room() {
        let me = node("a", 10, 100);
        let live = vec![me.clone(), node("b", 0, 100)];
        assert_eq!(place_new_room(&me, &live).id, "a");
    }

    #[test]
    fn a_full_node_places_the_room_on_the_least_loaded_one() {
        let me = node("a", 100, 100);
        let live = vec![
            me.clone(),
            node("b", 50, 100),
            node("c", 20, 100),
            node("d", 0, 0),
        ];
        assert_eq!(place_new_room(&me, &live).id, "c");
    }

    #[test]
    fn a_draining_node_takes_no_new_room() {
        let mut me = node("a", 0, 100);
        me.draining = true;
        let live = vec![me.clone(), node("b", 60, 100)];
        assert_eq!(place_new_room(&me, &live).id, "b");
        // Nobody has room: the call is still served here.
        let full = vec![me.clone(), node("b", 100, 100)];
        assert_eq!(place_new_room(&me, &full).id, "a");
    }

    #[test]
    fn cpu_time_is_read_past_a_command_name_with_spaces() {
        let stat = "42 (the room (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(cpu_seconds_of_stat(stat), Some(3.0));
        assert_eq!(cpu_seconds_of_stat("garbage"), None);
    }
}
