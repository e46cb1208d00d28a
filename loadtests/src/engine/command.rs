//! What crosses between the tokio side (signaling, the tool) and an engine loop: commands
//! in (through the loop's queue, with a waker), events and replies out (tokio channels,
//! which a plain thread may send on), and the per-connection state both sides read.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::sender::MediaSource;
use super::slab::Key;
use crate::client::media::ReceiveTable;
use crate::client::pacer::SentCounters;
use crate::client::protocol::{CandidateInit, Kind, PcName};
use crate::client::{ClientError, PcState};

/// Reply channel of a command.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// One local track a publisher connection carries.
#[derive(Debug, Clone)]
pub(crate) struct TrackSpec {
    pub(crate) kind: Kind,
    pub(crate) track_id: String,
    pub(crate) stream_id: String,
    pub(crate) ssrc: u32,
    pub(crate) counters: Arc<SentCounters>,
    /// Video sent as three simulcast layers ([`crate::engine::sender::LAYERS`]).
    pub(crate) simulcast: bool,
}

/// Everything a loop needs to build a connection.
pub(crate) struct CreateSpec {
    pub(crate) name: PcName,
    pub(crate) bind_ip: IpAddr,
    pub(crate) tracks: Vec<TrackSpec>,
    pub(crate) shared: Arc<PcShared>,
    pub(crate) events: mpsc::UnboundedSender<PcEvent>,
}

/// A request to a loop.
pub(crate) enum Command {
    /// Bind a socket and build a connection; replies with its key.
    Create(Box<CreateSpec>, Reply<Key>),
    /// Create an offer, set it as local description, gather; replies with the SDP.
    Offer(Key, Reply<String>),
    /// Apply a remote offer, answer it, gather; replies with the answer SDP.
    Answer(Key, String, Reply<String>),
    /// Apply the remote answer to our offer.
    ApplyAnswer(Key, String, Reply<()>),
    /// Add a remote candidate (held until there is a remote description).
    AddCandidate(Key, CandidateInit, Reply<()>),
    /// Start (`Some`) or stop (`None`) sending media on our tracks.
    Media(Key, Option<MediaSource>),
    /// Close the connection and its socket; the reply (if any) once done.
    Close(Key, Option<oneshot::Sender<()>>),
    /// Close everything and end the loop.
    Shutdown,
}

/// What a connection reports to its owner, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum PcEvent {
    /// A local ICE candidate to trickle (after the description that announced it).
    LocalCandidate(CandidateInit),
    /// The connection state changed.
    State(PcState),
    /// A remote track started (its first packet arrived): ids from `a=msid`.
    TrackOpen {
        /// Track id (announced track id).
        track_id: String,
        /// Stream id (publisher participant id).
        stream_id: String,
        /// Audio or video.
        kind: Kind,
    },
    /// A remote track ended.
    TrackEnded {
        /// Track id.
        track_id: String,
    },
}

/// State of one connection that its handle reads while the loop updates it.
pub(crate) struct PcShared {
    pub(crate) state: Mutex<PcState>,
    pub(crate) received: ReceiveTable,
    pub(crate) sent: Vec<Arc<SentCounters>>,
    /// Local UDP port of the connection's socket (0 until the loop bound it): what a
    /// benchmark shapes with `tc` to constrain one subscriber's downlink.
    pub(crate) local_port: std::sync::atomic::AtomicU16,
}

impl PcShared {
    pub(crate) fn new(sent: Vec<Arc<SentCounters>>) -> Arc<PcShared> {
        Arc::new(PcShared {
            state: Mutex::new(PcState::New),
            received: ReceiveTable::default(),
            sent,
            local_port: std::sync::atomic::AtomicU16::new(0),
        })
    }

    pub(crate) fn state(&self) -> PcState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_state(&self, state: PcState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}
