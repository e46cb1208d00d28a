//! What every layer of the core hands upwards: keys that name things across the core,
//! the datagrams to send and the events for signaling. Kept apart from [`super::Core`] so
//! the lower layers (connection, room) can produce output without knowing the core.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::BytesMut;

use crate::types::{PcRole, SfuEvent};

/// Identifies a room across the whole SFU (allocated by the facade, never reused).
pub(crate) type RoomKey = u64;
/// Identifies a participant across the whole SFU (allocated by the facade, never reused).
pub(crate) type ParticipantKey = u64;
/// Identifies a published track inside its room (allocated by the room, increasing, so
/// ordered maps keyed by it iterate in publication order).
pub(crate) type TrackKey = u64;

/// Names one peer connection: a participant has at most one per role and participant keys
/// are never reused, so the pair is unique for the life of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnKey {
    /// Owner.
    pub participant: ParticipantKey,
    /// Which of its two connections.
    pub role: PcRoleKey,
}

/// [`PcRole`] with an order, so [`ConnKey`] can sit in ordered collections (the timer heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum PcRoleKey {
    /// [`PcRole::Publisher`].
    Publisher,
    /// [`PcRole::Subscriber`].
    Subscriber,
}

impl From<PcRole> for PcRoleKey {
    fn from(role: PcRole) -> Self {
        match role {
            PcRole::Publisher => PcRoleKey::Publisher,
            PcRole::Subscriber => PcRoleKey::Subscriber,
        }
    }
}

impl PcRoleKey {
    /// Back to the public role.
    pub(crate) fn role(self) -> PcRole {
        match self {
            PcRoleKey::Publisher => PcRole::Publisher,
            PcRoleKey::Subscriber => PcRole::Subscriber,
        }
    }
}

impl ConnKey {
    /// The connection of `participant` in `role`.
    pub(crate) fn new(participant: ParticipantKey, role: PcRole) -> Self {
        ConnKey {
            participant,
            role: role.into(),
        }
    }
}

/// Which of the worker's sockets a packet came in on or leaves by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    /// The worker's UDP socket (one datagram, one packet).
    Udp,
    /// An ICE-TCP connection accepted on the worker's TCP port (RFC 6544, passive): each
    /// packet is one RFC 4571 frame on the client's own TCP stream.
    Tcp,
}

/// A remote transport address: where a packet came from or goes to, and over which
/// transport. A client's UDP flow and its TCP connection may share an address, so
/// routes are keyed by both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Peer {
    /// The client's address (its TCP connection's remote address for [`Transport::Tcp`]).
    pub addr: SocketAddr,
    /// How it is reached.
    pub transport: Transport,
}

impl Peer {
    /// A client reached over the worker's UDP socket.
    pub(crate) fn udp(addr: SocketAddr) -> Self {
        Peer {
            addr,
            transport: Transport::Udp,
        }
    }

    /// A client reached over one of its TCP connections to the worker.
    pub(crate) fn tcp(addr: SocketAddr) -> Self {
        Peer {
            addr,
            transport: Transport::Tcp,
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.transport {
            Transport::Udp => write!(f, "{}", self.addr),
            Transport::Tcp => write!(f, "tcp:{}", self.addr),
        }
    }
}

/// What one worker's core needs to know about its place in the network.
#[derive(Clone, Debug)]
pub(crate) struct CoreConfig {
    /// Address of this worker's UDP socket: every datagram arrives on it and leaves from it.
    /// With [`CoreConfig::ice_tcp`], the worker's TCP listener has the same address.
    pub local_addr: SocketAddr,
    /// Addresses announced in the server's host candidates (the public IPs with the
    /// socket's port, or `local_addr` itself).
    pub announced: Vec<SocketAddr>,
    /// Server-side ICE lite (answer checks, never start them).
    pub ice_lite: bool,
    /// The worker accepts ICE-TCP connections on `local_addr`: every connection also
    /// offers a passive TCP host candidate there.
    pub ice_tcp: bool,
}

/// What a timer of the core belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// A peer connection's own deadline (ICE checks, DTLS retransmits, RTCP reports).
    Conn(ConnKey),
    /// A keyframe request held back by the throttle of one layer of a published track.
    Keyframe(RoomKey, TrackKey, crate::simulcast::Layer),
    /// The room's next active-speaker evaluation.
    Speakers(RoomKey),
    /// The room's next connection-quality evaluation.
    Quality(RoomKey),
    /// The room's next allocation of layers to subscribers (and dynacast decisions).
    Allocate(RoomKey),
}

/// A packet to send: a datagram from the worker's UDP socket, or a frame on a client's
/// TCP connection.
#[derive(Debug)]
pub(crate) struct Transmit {
    /// Destination.
    pub to: Peer,
    /// Payload (owned; the shell batches several into one `sendmmsg`).
    pub data: BytesMut,
}

/// What the core owes the shell: datagrams in send order and events in emission order.
/// One instance per core; the queues keep their capacity, so steady state allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    /// Datagrams to send.
    pub transmits: VecDeque<Transmit>,
    /// Events for signaling, by participant.
    pub events: VecDeque<(ParticipantKey, SfuEvent)>,
}

impl Outputs {
    /// Queues an event for `participant`.
    pub(crate) fn event(&mut self, participant: ParticipantKey, event: SfuEvent) {
        self.events.push_back((participant, event));
    }
}
