//! The media plane as signaling sees it: a small trait the hub and connections call,
//! so signaling owns the one room registry and never depends on a media engine.
//!
//! The hub opens a [`MediaRoom`] when it creates a room and closes it when it drops the
//! room; a [`MediaParticipant`] lives as long as the hub's member it belongs to. Every
//! type here is in protocol terms ([`PcName`], [`CandidateInit`], [`TrackView`]): the
//! binary's adapter converts to and from the engine's own types. Tests use an in-memory
//! implementation.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::protocol::{
    CandidateInit, LayerView, PcName, QualityView, SpeakerView, StreamState, StreamStateReason,
    TrackSourceDecl, TrackView,
};

/// The media engine of the process: opens one media room per signaling room.
pub trait MediaPlane: Send + Sync {
    /// Opens the media side of room `room_id`. The hub calls it once per room it
    /// creates, and only after the previous room of that id (if any) was closed, so an
    /// engine keyed by id never sees two live rooms of one id.
    fn open_room(&self, room_id: &str) -> Arc<dyn MediaRoom>;
}

/// One room's media: its participants' peer connections and published tracks.
#[async_trait]
pub trait MediaRoom: Send + Sync {
    /// Creates the participant's peer connections. Its events (server candidates,
    /// subscriber offers, tracks of the others) come out of the returned
    /// [`MediaEvents`] until the participant is closed.
    async fn add_participant(&self, participant_id: &str) -> Result<NewParticipant, MediaError>;

    /// Tracks published now, as `(publisher id, track)` in publication order: what a
    /// joining participant learns about the others in `joined`.
    async fn tracks(&self) -> Vec<(String, TrackView)>;

    /// Closes the room: every participant still in it is closed and the handle refuses
    /// new ones. Called once, when the hub drops the room.
    async fn close(&self);
}

/// A participant just added to a [`MediaRoom`]: its handle and its event stream.
pub struct NewParticipant {
    /// Negotiation and control of its peer connections.
    pub participant: Arc<dyn MediaParticipant>,
    /// What the engine has to tell this participant's client.
    pub events: Box<dyn MediaEvents>,
}

/// One participant's two peer connections (publisher and subscriber, PROTOCOL.md).
#[async_trait]
pub trait MediaParticipant: Send + Sync {
    /// Applies the client's publisher offer and returns the answer SDP. `tracks` are
    /// the sources the client declared for its tracks (undeclared: camera/microphone).
    async fn handle_publisher_offer(
        &self,
        sdp: String,
        tracks: Vec<TrackSourceDecl>,
    ) -> Result<String, MediaError>;

    /// Applies the client's answer to the last subscriber offer.
    async fn handle_subscriber_answer(&self, sdp: String) -> Result<(), MediaError>;

    /// Adds a trickled client candidate to one connection; `None` is the end of
    /// candidates.
    async fn add_ice_candidate(
        &self,
        pc: PcName,
        candidate: Option<CandidateInit>,
    ) -> Result<(), MediaError>;

    /// Asks the publisher of `track_id` for a keyframe (the engine throttles and ignores
    /// unknown tracks).
    fn request_keyframe(&self, track_id: &str);

    /// Stops (true) or resumes (false) forwarding video to this participant; audio keeps
    /// flowing. Resumed video starts at a keyframe the engine asks for.
    fn set_audio_only(&self, enabled: bool);

    /// Stops (false) or resumes (true) forwarding one remote video to this participant,
    /// whose page does not show it; unknown or own tracks are ignored. `size` is the
    /// size the page shows it at (device pixels, width × height; `None`: not said), so
    /// the engine forwards a simulcast layer no larger than that.
    fn set_video_visible(&self, track_id: &str, visible: bool, size: Option<(u32, u32)>);

    /// Closes this participant's connections and unpublishes its tracks. Closing a
    /// participant twice, or one whose room was closed, is harmless.
    async fn close(&self);
}

/// Something the media engine tells one participant's client, or lets signaling count.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// A server ICE candidate for one of the participant's connections.
    Candidate {
        /// Which connection.
        pc: PcName,
        /// The candidate.
        candidate: CandidateInit,
    },
    /// A new subscriber offer, to send as `{"type":"offer","pc":"subscriber"}`.
    SubscriberOffer {
        /// The offer SDP.
        sdp: String,
    },
    /// A track was published in the room (the publisher hears of its own tracks too).
    TrackPublished {
        /// Publisher.
        participant_id: String,
        /// The track.
        track: TrackView,
    },
    /// A track is gone.
    TrackUnpublished {
        /// Publisher.
        participant_id: String,
        /// The track id announced when it was published.
        track_id: String,
    },
    /// A peer connection changed state (W3C `RTCPeerConnectionState` spelling).
    ConnectionState {
        /// Which connection.
        pc: PcName,
        /// `"connected"`, `"failed"`, ...
        state: String,
    },
    /// The first media packet was forwarded to this participant (join latency metric).
    MediaFlowing,
    /// The room's active speakers changed (loudest first; empty: nobody speaks).
    ActiveSpeakers {
        /// Speakers.
        speakers: Vec<SpeakerView>,
    },
    /// Connection verdicts that changed.
    ConnectionQuality {
        /// Verdicts.
        updates: Vec<QualityView>,
    },
    /// A video this participant receives was paused by the engine, or flows again.
    StreamState {
        /// The video, as announced when it was published.
        track_id: String,
        /// Paused or active.
        state: StreamState,
        /// Why.
        reason: StreamStateReason,
    },
    /// Which simulcast layers of its own video this participant should encode.
    PublishLayers {
        /// The participant's own track id (as in its offer).
        track_id: String,
        /// Every layer of the track, lowest first.
        layers: Vec<LayerView>,
    },
}

/// The event stream of one participant; ends (`None`) once the participant is closed.
#[async_trait]
pub trait MediaEvents: Send {
    /// The next event, or `None` when there will be no more.
    async fn recv(&mut self) -> Option<MediaEvent>;
}

/// A plain channel is an event stream: engines that speak [`MediaEvent`] natively (and
/// test doubles) hand out the receiving end.
#[async_trait]
impl MediaEvents for mpsc::UnboundedReceiver<MediaEvent> {
    async fn recv(&mut self) -> Option<MediaEvent> {
        mpsc::UnboundedReceiver::recv(self).await
    }
}

/// Why a media operation failed. Signaling logs the reason and tells the client only a
/// generic code (`negotiation_failed`, `internal`), so engine internals never leak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct MediaError {
    reason: String,
}

impl MediaError {
    /// An error carrying the engine's explanation, for the server log.
    pub fn new(reason: impl std::fmt::Display) -> Self {
        MediaError {
            reason: reason.to_string(),
        }
    }
}
