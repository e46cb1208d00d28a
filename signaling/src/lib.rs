//! TheraRoom signaling: the JSON protocol (`PROTOCOL.md`), the per-connection state
//! machine and the room registry that ties participants to the SFU.
//!
//! The crate knows nothing of HTTP or databases. A transport (the binary's WebSocket
//! route, or a test) creates a [`Connection`] with [`Hub::connect`], feeds it incoming
//! text frames and drains its [`Outbound`] queue. Decisions about who may enter come
//! from the application through the [`Gatekeeper`] trait.

mod caps;
mod connection;
mod gatekeeper;
mod hub;
mod mute;
pub mod names;
mod outbox;
pub mod protocol;
mod revocation;
mod throttle;

pub use caps::{CapExceeded, ConnectionPermit};
pub use connection::{Connection, Flow};
pub use gatekeeper::{Admission, Authenticated, Gatekeeper, Refusal};
pub use hub::{Hub, HubConfig};
pub use mute::MUTE_INTERVAL;
pub use outbox::{Outbound, OutboundQueue, Outbox, SLOW_CONSUMER_CLOSE};
pub use throttle::{LogThrottle, ABUSE_TOLERANCE};
