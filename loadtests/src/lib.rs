//! TheraRoom load-test library: a client of the public signaling protocol
//! (`signaling/PROTOCOL.md`) with real webrtc-rs peer connections.
//!
//! It never imports the server crates, so what it measures is what any client gets.
//! Integration tests of the server use [`Participant`] (webrtc-rs peer connections, an
//! independent WebRTC stack) to join sessions, send tagged synthetic media and count
//! what arrives. The load tool runs its participants on [`engine`] instead: the same
//! protocol and measurements on sans-IO `rtc` peer connections driven by one loop
//! thread per core, so the tool costs less than the server it loads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), theraroom_load::ClientError> {
//! use theraroom_load::{JoinOptions, MediaRate, Participant};
//! let p = Participant::join(JoinOptions::new("ws://127.0.0.1:8080/rtc", "session-id", "jwt")).await?;
//! p.start_media(MediaRate::default());
//! // ... later
//! for track in p.received() {
//!     println!("{} from {}: {} packets", track.track_id, track.stream_id, track.unique);
//! }
//! p.leave().await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod client;
pub mod engine;
pub mod nodes;

pub use client::rest;
pub use client::{
    ClientError, ClientMessage, Clip, ClipSet, CloseInfo, Events, JoinOptions, Joined, Kind,
    LatencyHistogram, MediaRate, Participant, ParticipantInfo, PcName, PcState, Publish,
    RemoteTrackStats, SentStats, ServerMessage, TrackInfo,
};
