//! TheraRoom signaling: the JSON protocol (`PROTOCOL.md`), the per-connection state
//! machine and the room registry that ties participants to the media plane.
//!
//! The crate knows nothing of HTTP, databases or WebRTC. A transport (the binary's
//! WebSocket route, or a test) creates a [`Connection`] with [`Hub::connect`], feeds it
//! incoming text frames and drains its [`Outbound`] queue. Decisions about who may enter
//! come from the application through the [`Gatekeeper`] trait; media goes through the
//! [`MediaPlane`] trait (the binary adapts the SFU to it, tests use an in-memory one).
//!
//! The [`Hub`] keeps the only room registry: a hub room opens its [`MediaRoom`] when it
//! is created and closes it when it is dropped (emptied, ended, or at shutdown), so the
//! media plane never has to be kept in step by room id.

mod caps;
mod chat;
mod connection;
mod departure;
mod ending;
mod entry;
mod gatekeeper;
mod host;
mod hub;
mod joining;
mod media;
mod mute;
pub mod names;
mod outbox;
mod probe;
pub mod protocol;
mod relay;
mod revocation;
mod throttle;
mod waiting;

pub use caps::{CapExceeded, ConnectionPermit};
pub use connection::{Connection, Flow};
pub use gatekeeper::{Admission, Authenticated, Gatekeeper, Refusal, WaitingDecision};
pub use hub::{Hub, HubConfig};
pub use media::{
    MediaError, MediaEvent, MediaEvents, MediaParticipant, MediaPlane, MediaRoom, NewParticipant,
};
pub use mute::MUTE_INTERVAL;
pub use outbox::{Outbound, OutboundQueue, Outbox, SLOW_CONSUMER_CLOSE};
pub use throttle::{LogThrottle, ABUSE_TOLERANCE};
