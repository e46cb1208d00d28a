//! The room registry: which participants are in which session's room, their
//! connection state, and the fan-out of presence events. It is the only registry of
//! rooms: each room holds its media room (opened with the room, closed when the room is
//! dropped), and the media plane keeps no rooms of its own that would need keeping in
//! step.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::caps::{CapExceeded, ConnectionCaps, ConnectionPermit};
use crate::gatekeeper::Gatekeeper;
use crate::media::{MediaParticipant, MediaPlane, MediaRoom};
use crate::mute::MuteGates;
use crate::outbox::Outbox;
use crate::protocol::{ParticipantView, ServerMessage};

/// Tunables of the hub and of the transports that feed it (limits in PROTOCOL.md).
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How long a dropped participant keeps its place.
    pub reconnect_grace: Duration,
    /// How long a new socket may take to send `join` (or `listen`).
    pub join_timeout: Duration,
    /// How long one write to a socket may take before the client counts as not reading
    /// and is closed with 4408 `slow_consumer`.
    pub write_timeout: Duration,
    /// Open connections allowed in total.
    pub max_connections: usize,
    /// Open connections allowed per client address.
    pub max_connections_per_ip: usize,
    /// Messages per second a connection may send, sustained.
    pub message_rate: f64,
    /// Messages a connection may send in a burst.
    pub message_burst: u32,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            reconnect_grace: Duration::from_secs(30),
            join_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_ip: 50,
            message_rate: 50.0,
            message_burst: 100,
        }
    }
}

/// The signaling hub: all live rooms of this server. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    pub(crate) rooms: DashMap<String, Arc<RoomState>>,
    pub(crate) media: Arc<dyn MediaPlane>,
    pub(crate) gate: Arc<dyn Gatekeeper>,
    pub(crate) config: HubConfig,
    pub(crate) next_connection: AtomicU64,
    /// Connections per token subject, for notifications.
    pub(crate) listeners: DashMap<String, HashMap<u64, Outbox>>,
    /// Connections per token id, for revocation.
    pub(crate) tokens: crate::revocation::TokenIndex,
    /// Open connections, in total and per address.
    pub(crate) caps: Arc<ConnectionCaps>,
    /// Sessions ended here, with the time (Unix ms) until which no room may be made
    /// for them again: a join admitted just before the end cannot recreate the room.
    pub(crate) ended: DashMap<String, i64>,
}

/// One session's room.
pub(crate) struct RoomState {
    pub(crate) id: String,
    /// Session expiry, Unix ms.
    pub(crate) expires_at_ms: i64,
    /// The room's media, opened with the room and closed when the room is dropped.
    pub(crate) media: Arc<dyn MediaRoom>,
    /// In an `Arc` so that a join can hold the lock while it looks again for a room
    /// (see [`Hub::lock_for_entry`]).
    pub(crate) members: Arc<Mutex<Members>>,
    /// The timer that ends the room at the session's expiry. Aborted when the room is
    /// dropped, so that a room emptied long before its expiry leaves no sleeping task
    /// behind (found by tests/rtc_churn.rs: one task per room ever opened).
    pub(crate) expiry: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl Drop for RoomState {
    fn drop(&mut self) {
        if let Some(timer) = self.expiry.get() {
            timer.abort();
        }
    }
}

/// Participants of a room, guarded by the room lock.
pub(crate) struct Members {
    pub(crate) by_id: HashMap<String, Member>,
    /// The waiting room, by participant id (see [`crate::waiting`]).
    pub(crate) waiting: HashMap<String, crate::waiting::Waiter>,
    /// Whether a host was connected when the waiting people were last told.
    pub(crate) host_present: bool,
    /// Set when the session ended (or the server stops): nobody may enter any more.
    pub(crate) closed: bool,
    /// Set when the hub dropped the room because it was empty: a join that reaches it
    /// afterwards looks the session's room up again.
    pub(crate) retired: bool,
}

/// A participant in a room.
pub(crate) struct Member {
    pub(crate) view: ParticipantView,
    /// May admit and decline waiting people.
    pub(crate) host: bool,
    /// Which connection currently speaks for this participant.
    pub(crate) connection_id: u64,
    pub(crate) outbox: Outbox,
    /// The participant's media, once its peer connections exist.
    pub(crate) media: Option<Arc<dyn MediaParticipant>>,
    /// Coalescing of this participant's `mute` broadcasts, per kind.
    pub(crate) mute: MuteGates,
}

impl Members {
    /// True when another participant of `person_id` than `except` is in the room.
    pub(crate) fn has_person(&self, person_id: &str, except: &str) -> bool {
        self.by_id
            .iter()
            .any(|(id, m)| id != except && m.view.person_id == person_id)
    }

    /// True when nobody is in the room, seated or waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.waiting.is_empty()
    }

    /// Sends `message` to everyone but `except`.
    pub(crate) fn broadcast(&self, except: &str, message: &ServerMessage) {
        for (id, member) in &self.by_id {
            if id != except {
                member.outbox.send(message.clone());
            }
        }
    }
}

impl Hub {
    /// Creates a hub forwarding media through `media` and asking `gate` for decisions.
    pub fn new(media: Arc<dyn MediaPlane>, gate: Arc<dyn Gatekeeper>, config: HubConfig) -> Hub {
        let caps = Arc::new(ConnectionCaps::new(
            config.max_connections,
            config.max_connections_per_ip,
        ));
        Hub {
            inner: Arc::new(HubInner {
                rooms: DashMap::new(),
                media,
                gate,
                config,
                next_connection: AtomicU64::new(1),
                listeners: DashMap::new(),
                tokens: Default::default(),
                caps,
                ended: DashMap::new(),
            }),
        }
    }

    /// Reserves a place for a new connection from `address` (`None` when unknown: only
    /// the total cap applies). Keep the permit as long as the socket is open.
    pub fn reserve_connection(
        &self,
        address: Option<IpAddr>,
    ) -> Result<ConnectionPermit, CapExceeded> {
        self.inner.caps.reserve(address)
    }

    /// Connections holding a permit now.
    pub fn open_connections(&self) -> usize {
        self.inner.caps.open()
    }

    /// Connections from one address holding a permit now.
    pub fn open_connections_from(&self, address: IpAddr) -> usize {
        self.inner.caps.open_from(address)
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Number of live rooms.
    pub fn room_count(&self) -> usize {
        self.inner.rooms.len()
    }

    /// Ids of the participants currently in a session's room (connected or within
    /// their grace period).
    pub async fn participants_in(&self, session_id: &str) -> Vec<String> {
        let Some(room) = self.room(session_id) else {
            return Vec::new();
        };
        let members = room.members.lock().await;
        let mut ids: Vec<String> = members.by_id.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Every room this hub holds, with the ids of its participants (seated, within
    /// their grace period, or waiting), sorted: what a node reports as held by it when
    /// several nodes share the rooms.
    pub async fn rooms_held(&self) -> Vec<(String, Vec<String>)> {
        let rooms: Vec<Arc<RoomState>> = self.inner.rooms.iter().map(|r| Arc::clone(&r)).collect();
        let mut held = Vec::with_capacity(rooms.len());
        for room in rooms {
            let members = room.members.lock().await;
            if members.retired || members.closed {
                continue;
            }
            let mut ids: Vec<String> = members
                .by_id
                .keys()
                .chain(members.waiting.keys())
                .cloned()
                .collect();
            drop(members);
            ids.sort();
            held.push((room.id.clone(), ids));
        }
        held.sort();
        held
    }

    pub(crate) fn room(&self, session_id: &str) -> Option<Arc<RoomState>> {
        self.inner.rooms.get(session_id).map(|r| Arc::clone(&r))
    }

    /// Gets or creates the room of a session; a new room ends itself at `expires_at_ms`.
    /// `None` when the session was ended here: its room is not made again.
    pub(crate) fn room_or_create(
        &self,
        session_id: &str,
        expires_at_ms: i64,
    ) -> Option<Arc<RoomState>> {
        let mut created = false;
        // The ended check runs under the room map's entry lock, and `end_session` marks
        // the session ended before it takes the room out of the map: either this join
        // sees the mark, or its room exists when `end_session` removes it (and is closed).
        let room = match self.inner.rooms.entry(session_id.to_string()) {
            dashmap::Entry::Occupied(e) => Arc::clone(e.get()),
            dashmap::Entry::Vacant(e) => {
                if self.is_ended(session_id) {
                    return None;
                }
                created = true;
                let room = Arc::new(RoomState {
                    id: session_id.to_string(),
                    expires_at_ms,
                    media: self.inner.media.open_room(session_id),
                    members: Arc::new(Mutex::new(Members {
                        by_id: HashMap::new(),
                        waiting: HashMap::new(),
                        host_present: false,
                        closed: false,
                        retired: false,
                    })),
                    expiry: std::sync::OnceLock::new(),
                });
                e.insert(Arc::clone(&room));
                room
            }
        };
        if created {
            metrics::gauge!("theraroom_rooms").set(self.inner.rooms.len() as f64);
            let hub = self.clone();
            let id = session_id.to_string();
            let now_ms = now_ms();
            let wait = Duration::from_millis(expires_at_ms.saturating_sub(now_ms).max(0) as u64);
            let weak = Arc::downgrade(&room);
            let timer = tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                // Only end the room this timer was made for, if it still exists.
                if let Some(room) = weak.upgrade() {
                    if hub.room(&id).is_some_and(|r| Arc::ptr_eq(&r, &room)) {
                        hub.end_session(&id, "expired").await;
                    }
                }
            });
            let _ = room.expiry.set(timer.abort_handle());
        }
        Some(room)
    }

    /// The room a join enters, with its members locked; `None` when the session ended
    /// (or the server is stopping). A room dropped as empty between the lookup and the
    /// lock is looked up again: it is out of the map by then, so the next lookup finds
    /// or makes its successor.
    pub(crate) async fn lock_for_entry(
        &self,
        session_id: &str,
        expires_at_ms: i64,
    ) -> Option<(Arc<RoomState>, OwnedMutexGuard<Members>)> {
        loop {
            let room = self.room_or_create(session_id, expires_at_ms)?;
            let members = Arc::clone(&room.members).lock_owned().await;
            if members.retired {
                continue;
            }
            if members.closed {
                return None;
            }
            return Some((room, members));
        }
    }

    /// Pushes a `notification` message to every open connection of `subject` (a
    /// user id). Returns how many connections it reached.
    pub fn notify(&self, subject: &str, notification: serde_json::Value) -> usize {
        let Some(mut connections) = self.inner.listeners.get_mut(subject) else {
            return 0;
        };
        connections.retain(|_, outbox| !outbox.is_closed());
        for outbox in connections.values() {
            outbox.send(ServerMessage::Notification {
                notification: notification.clone(),
            });
        }
        connections.len()
    }

    pub(crate) fn add_listener(&self, subject: &str, connection_id: u64, outbox: &Outbox) {
        self.inner
            .listeners
            .entry(subject.to_string())
            .or_default()
            .insert(connection_id, outbox.clone());
    }

    pub(crate) fn remove_listener(&self, subject: &str, connection_id: u64) {
        self.inner
            .listeners
            .remove_if_mut(subject, |_, connections| {
                connections.remove(&connection_id);
                connections.is_empty()
            });
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.inner.next_connection.fetch_add(1, Ordering::Relaxed)
    }
}

/// The wall clock in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 (UTC, millisecond precision), as the REST API writes
/// times.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
