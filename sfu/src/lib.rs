//! TheraRoom media plane: a selective forwarding unit driving the sans-IO `rtc` core
//! (the peer connections webrtc 0.21 is built on) with its own socket loops.
//!
//! Each participant has two peer connections with the server (see
//! `signaling/PROTOCOL.md`): a *publisher* connection the client offers and the server only
//! receives on, and a *subscriber* connection the server offers and only sends on, with one
//! sendonly leg per track published by someone else in the room. Every leg gets its own
//! SSRC, payload type and header-extension mapping.
//!
//! Layers, each using only the ones before it:
//! - pure decisions without sockets or clocks: [`forward`] (rewrites, keyframe throttle),
//!   [`plan`] (subscriptions, offer state), `rtcp`;
//! - `engine`: the sans-IO core of one worker — demultiplexing by ICE ufrag and address,
//!   connections, rooms, fan-out, one timer heap — fed `(now, command | datagram |
//!   timeout)` and drained of datagrams and events;
//! - `worker`: one thread per core with one UDP socket, batched `recvmmsg`/`sendmmsg`,
//!   a command queue in and one event channel per participant out;
//! - the facade: [`Sfu`] (the workers), [`Room`] and [`Participant`] handles that turn
//!   calls into commands for the worker owning the room. The SFU keeps no room registry:
//!   whoever opens a room holds its handle.

#![warn(missing_docs)]

pub mod allocation;
mod config;
mod engine;
mod error;
pub mod estimate;
pub mod forward;
pub mod keyframe;
pub mod plan;
pub mod quality;
mod retransmit;
mod rtcp;
mod sfu;
pub mod simulcast;
pub mod speaker;
mod stats;
mod types;
mod worker;

pub use config::{SfuConfig, DEFAULT_COALESCE_US, MAX_COALESCE_US};
pub use engine::candidates::{MAX_EARLY_CANDIDATES, MAX_EARLY_CANDIDATE_BYTES};
pub use error::SfuError;
pub use quality::Quality;
pub use rtcp::KEYFRAME_MIN_INTERVAL;
pub use sfu::{Participant, Room, Sfu};
pub use stats::{LogThrottle, SfuStats};
pub use types::{
    ActiveSpeaker, IceCandidate, LayerState, MediaKind, PcRole, QualityUpdate, SfuEvent, TrackInfo,
    TrackSource,
};
