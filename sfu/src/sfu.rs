//! The SFU entry point: configuration, rooms, counters.

use std::sync::Arc;

use dashmap::DashMap;
use tracing::info;

use crate::config::SfuConfig;
use crate::error::SfuError;
use crate::ports::PortAllocator;
use crate::room::{Room, RoomInner};
use crate::stats::{Counters, Gauge, SfuStats};

/// What every room and participant of one SFU shares.
pub(crate) struct SfuShared {
    pub(crate) config: SfuConfig,
    pub(crate) counters: Arc<Counters>,
    pub(crate) ports: PortAllocator,
}

/// The media plane of the process: owns the rooms. Cheap to clone (shared inside);
/// signaling holds one.
#[derive(Clone)]
pub struct Sfu {
    shared: Arc<SfuShared>,
    rooms: Arc<DashMap<String, Room>>,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("config", &self.shared.config)
            .field("rooms", &self.rooms.len())
            .finish()
    }
}

impl Sfu {
    /// Creates the SFU; fails on an unusable configuration.
    pub fn new(config: SfuConfig) -> Result<Sfu, SfuError> {
        config.validate()?;
        let ports = PortAllocator::new(config.bind_ip, config.udp_port_min, config.udp_port_max);
        info!(bind_ip = %config.bind_ip, public_ips = ?config.public_ips, ice_lite = config.ice_lite,
              ports = %format!("{}..={}", config.udp_port_min, config.udp_port_max), "sfu started");
        Ok(Sfu {
            shared: Arc::new(SfuShared {
                config,
                counters: Arc::new(Counters::default()),
                ports,
            }),
            rooms: Arc::new(DashMap::new()),
        })
    }

    /// The configuration in effect.
    pub fn config(&self) -> &SfuConfig {
        &self.shared.config
    }

    /// The room of that id, created on first use.
    pub fn room(&self, room_id: &str) -> Room {
        self.rooms
            .entry(room_id.to_owned())
            .or_insert_with(|| {
                self.shared.counters.add(Gauge::Rooms, 1);
                Room {
                    inner: RoomInner::new(room_id, Arc::clone(&self.shared)),
                }
            })
            .clone()
    }

    /// The room of that id if it exists (does not create it).
    pub fn get_room(&self, room_id: &str) -> Option<Room> {
        self.rooms.get(room_id).map(|r| r.clone())
    }

    /// Removes a room (normally after its last participant left). Anything still in it is
    /// uncounted at once and its connections are closed in the background; handles to the
    /// room refuse new participants.
    pub fn remove_room(&self, room_id: &str) {
        if let Some((_, room)) = self.rooms.remove(room_id) {
            self.shared.counters.sub(Gauge::Rooms, 1);
            room.inner.close_all();
            info!(room_id, "room removed");
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SfuStats {
        self.shared.counters.snapshot()
    }
}
