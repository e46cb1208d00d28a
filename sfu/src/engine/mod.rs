//! The sans-IO media core of one worker: every peer connection, room and forwarding
//! decision placed on that worker, with no socket, no task, no channel and no clock of
//! its own. Inputs are `(now, command | datagram | timeout)`; outputs are datagrams to
//! send ([`Transmit`]), events for signaling and the next deadline. The socket loop in
//! `crate::worker` is a thin shell around it; tests drive it directly.
//!
//! Demultiplexing: a datagram is routed to its connection by the remote address of the
//! nominated pair when that address is known, otherwise (STUN binding requests) by the
//! local ICE ufrag in the STUN USERNAME. Anything else is dropped and counted.

#![allow(dead_code)] // until the worker shell (crate::worker) drives it

// INTERFACE CONTRACT between the core and the worker shell (filled in by the engine work).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use crate::error::SfuError;
use crate::stats::Counters;
use crate::types::{IceCandidate, IceServer, PcRole, SfuEvent, TrackInfo};

/// Identifies a room across the whole SFU (allocated by the facade, never reused).
pub(crate) type RoomKey = u64;
/// Identifies a participant across the whole SFU (allocated by the facade, never reused).
pub(crate) type ParticipantKey = u64;

/// What one worker's core needs to know about its place in the network.
#[derive(Clone, Debug)]
pub(crate) struct CoreConfig {
    /// Address of this worker's UDP socket: every datagram arrives on it and leaves from it.
    pub local_addr: SocketAddr,
    /// Addresses announced in the server's host candidates (the public IPs with the
    /// socket's port, or `local_addr` itself).
    pub announced: Vec<SocketAddr>,
    /// Server-side ICE lite (answer checks, never start them).
    pub ice_lite: bool,
}

/// A request from signaling (through the facade) to the worker owning the room.
#[derive(Debug)]
pub(crate) enum Command {
    /// Creates the media state of a room on this worker.
    OpenRoom { room: RoomKey, id: String },
    /// Closes every connection of the room and forgets it.
    CloseRoom { room: RoomKey },
    /// Adds a participant (two peer connections, created lazily) to a room.
    AddParticipant {
        room: RoomKey,
        participant: ParticipantKey,
        id: String,
        ice_servers: Vec<IceServer>,
    },
    /// Closes the participant's connections, unpublishes its tracks, renegotiates others.
    RemoveParticipant { participant: ParticipantKey },
    /// The client's publisher offer; the reply is [`Reply::Answer`].
    PublisherOffer {
        participant: ParticipantKey,
        sdp: String,
    },
    /// The client's answer to the last subscriber offer.
    SubscriberAnswer {
        participant: ParticipantKey,
        sdp: String,
    },
    /// A client ICE candidate (buffered, bounded, until the remote description is set).
    AddCandidate {
        participant: ParticipantKey,
        pc: PcRole,
        candidate: IceCandidate,
    },
    /// How many client candidates wait for a remote description; reply [`Reply::Count`].
    PendingCandidates {
        participant: ParticipantKey,
        pc: PcRole,
    },
    /// ICE restart of the subscriber connection (a new offer follows as an event).
    RestartSubscriberIce { participant: ParticipantKey },
    /// The participant asks for a keyframe of a track it receives (throttled PLI).
    RequestKeyframe {
        participant: ParticipantKey,
        track_id: String,
    },
    /// The room's published tracks, `(publisher id, track)`; reply [`Reply::Tracks`].
    Tracks { room: RoomKey },
}

/// The answer to a [`Command`].
#[derive(Debug, PartialEq)]
pub(crate) enum Reply {
    /// Done, nothing to return.
    Done,
    /// The publisher answer SDP.
    Answer(String),
    /// Published tracks in publication order.
    Tracks(Vec<(String, TrackInfo)>),
    /// A count.
    Count(usize),
}

/// A datagram to send from the worker's socket.
#[derive(Debug)]
pub(crate) struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Payload (owned; the shell batches several into one `sendmmsg`).
    pub data: BytesMut,
}

/// The state machine of one worker.
pub(crate) struct Core {
    _config: CoreConfig,
    _counters: Arc<Counters>,
}

impl Core {
    /// A worker core with no rooms.
    pub(crate) fn new(config: CoreConfig, counters: Arc<Counters>) -> Core {
        Core {
            _config: config,
            _counters: counters,
        }
    }

    /// Applies a command.
    pub(crate) fn handle_command(
        &mut self,
        _now: Instant,
        _cmd: Command,
    ) -> Result<Reply, SfuError> {
        todo!("engine core")
    }

    /// Feeds one received datagram (routed by address, then by STUN ufrag; else dropped
    /// and counted).
    pub(crate) fn handle_datagram(&mut self, _now: Instant, _from: SocketAddr, _data: BytesMut) {
        todo!("engine core")
    }

    /// Fires every timer due at `now`.
    pub(crate) fn handle_timeout(&mut self, _now: Instant) {
        todo!("engine core")
    }

    /// The earliest deadline of any timer, if any.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        todo!("engine core")
    }

    /// Next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        todo!("engine core")
    }

    /// Next event for a participant's signaling connection.
    pub(crate) fn poll_event(&mut self) -> Option<(ParticipantKey, SfuEvent)> {
        todo!("engine core")
    }
}
