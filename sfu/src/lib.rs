//! TheraRoom media plane: a selective forwarding unit on webrtc 0.21.
//!
//! Each participant has two peer connections with the server (see
//! `signaling/PROTOCOL.md`): a *publisher* connection the client offers and the server only
//! receives on, and a *subscriber* connection the server offers and only sends on, with one
//! sendonly leg per track published by someone else in the room. Every leg gets its own
//! local track, SSRC, payload type and header-extension mapping, and its own bounded queue,
//! so one slow subscriber never holds up a publisher or the other subscribers.
//!
//! Entry point: [`Sfu`] → [`Room`] → [`Participant`]; events for signaling arrive as
//! [`SfuEvent`]s on each participant's channel. The pure forwarding decisions live in
//! [`forward`], [`plan`], [`fanout`] and [`ports`] and are unit-tested without sockets.

#![warn(missing_docs)]

mod config;
mod engine;
mod error;
pub mod fanout;
pub mod forward;
mod participant;
mod peer;
pub mod plan;
pub mod ports;
mod publication;
mod room;
mod rtcp;
mod sfu;
mod stats;
mod types;
pub mod v2;
mod worker;

pub use config::SfuConfig;
pub use error::SfuError;
pub use participant::{Participant, MAX_EARLY_CANDIDATES, MAX_EARLY_CANDIDATE_BYTES};
pub use room::Room;
pub use rtcp::KEYFRAME_MIN_INTERVAL;
pub use sfu::Sfu;
pub use stats::{LogThrottle, SfuStats};
pub use types::{IceCandidate, IceServer, MediaKind, PcRole, SfuEvent, TrackInfo};
