//! Plain data types of the public API: what signaling sends in and gets out.

/// A published media track, as announced to clients in `track_published`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    /// Track id, unique within the room: the publisher's own track id unless another
    /// track of the room already uses it. Subscribers see it as the `MediaStreamTrack` id.
    pub track_id: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// What it carries, as its publisher declared it.
    pub source: TrackSource,
    /// Always the publisher's participant id: subscribers see it as the `MediaStream` id.
    pub stream_id: String,
}

/// What a track carries, as its publisher declares it with its offer: clients lay a
/// shared screen out differently from a camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackSource {
    /// A camera.
    Camera,
    /// A microphone.
    Microphone,
    /// A shared screen, window or tab.
    Screen,
    /// The sound of a shared screen or tab.
    ScreenAudio,
}

impl TrackSource {
    /// The source of a track its publisher did not declare.
    pub fn default_for(kind: MediaKind) -> TrackSource {
        match kind {
            MediaKind::Audio => TrackSource::Microphone,
            MediaKind::Video => TrackSource::Camera,
        }
    }
}

/// Kind of a media track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Microphone.
    Audio,
    /// Camera or screen.
    Video,
}

impl MediaKind {
    /// The protocol spelling (`"audio"` / `"video"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// Which of a participant's two peer connections something belongs to (PROTOCOL.md: the
/// client offers on `publisher`, the server offers on `subscriber`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PcRole {
    /// Client → server media; the client offers.
    Publisher,
    /// Server → client media; the server offers.
    Subscriber,
}

impl PcRole {
    /// The protocol spelling (`"publisher"` / `"subscriber"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PcRole::Publisher => "publisher",
            PcRole::Subscriber => "subscriber",
        }
    }
}

/// An ICE candidate in the browser's `RTCIceCandidateInit` shape, so signaling can pass it
/// through to and from the client unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceCandidate {
    /// `candidate:...` attribute line; empty means end of candidates.
    pub candidate: String,
    /// Media section id the candidate belongs to.
    pub sdp_mid: Option<String>,
    /// Media section index the candidate belongs to.
    pub sdp_mline_index: Option<u16>,
    /// ICE generation (ufrag) the candidate belongs to.
    pub username_fragment: Option<String>,
}

/// Something signaling must tell (or may count for) one participant. Each participant
/// has its own event channel, given to [`crate::Room::add_participant`].
#[derive(Clone, Debug, PartialEq)]
pub enum SfuEvent {
    /// A server ICE candidate for one of the participant's peer connections (`candidate`).
    /// Candidates of a connection are only emitted after the description they belong to
    /// (the publisher answer returned, or the subscriber offer event queued).
    IceCandidate {
        /// Which peer connection.
        pc: PcRole,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// A new subscriber offer: send it as `{"type":"offer","pc":"subscriber"}` and pass the
    /// client's answer to [`crate::Participant::handle_subscriber_answer`].
    SubscriberOffer {
        /// The offer SDP.
        sdp: String,
    },
    /// A track was published in the room (sent to every participant, publisher included).
    /// A participant joining later learns existing tracks from [`crate::Room::tracks`].
    TrackPublished {
        /// Publisher.
        participant_id: String,
        /// The track.
        track: TrackInfo,
    },
    /// A track is gone (publisher left, or its track ended).
    TrackUnpublished {
        /// Publisher.
        participant_id: String,
        /// The track id announced in `TrackPublished`.
        track_id: String,
    },
    /// A peer connection changed state (`"connected"`, `"failed"`, `"closed"`, ...).
    ConnectionState {
        /// Which peer connection.
        pc: PcRole,
        /// W3C `RTCPeerConnectionState` spelling.
        state: String,
    },
    /// The first RTP packet was forwarded to this participant (once; for join latency).
    MediaFlowing,
    /// The room's active speakers changed (sent to every participant, loudest first; an
    /// empty list when nobody speaks any more). At most a few per second per room.
    ActiveSpeakers {
        /// Who is speaking now.
        speakers: Vec<ActiveSpeaker>,
    },
    /// Connection verdicts that changed (sent to every participant; a participant new to
    /// the room gets everyone's at its first evaluation). At most one per 2 s per room.
    ConnectionQuality {
        /// The verdicts.
        updates: Vec<QualityUpdate>,
    },
    /// A video this participant receives was paused because its downlink cannot carry it
    /// (`paused: true`), or flows again (`paused: false`). Audio is never paused. Not sent
    /// for videos the participant hid itself (`video_view`, audio only).
    VideoPaused {
        /// The video, as announced in `TrackPublished`.
        track_id: String,
        /// Paused for lack of bandwidth.
        paused: bool,
    },
    /// Which simulcast layers of its own video the participant should encode (dynacast):
    /// a layer nobody receives is switched off at the source, and on again as soon as
    /// someone needs it. Sent to the publisher when the set changes.
    PublishLayers {
        /// The client's own track id (its `MediaStreamTrack.id`, as in its offer).
        track_id: String,
        /// Every layer of the track, by rid, lowest first.
        layers: Vec<LayerState>,
    },
}

/// One simulcast layer of a published video, as in [`SfuEvent::PublishLayers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerState {
    /// The layer's rid (`q`, `h`, `f`).
    pub rid: String,
    /// Whether the publisher should encode it.
    pub active: bool,
}

/// One participant's connection verdict, as reported in [`SfuEvent::ConnectionQuality`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QualityUpdate {
    /// Participant id.
    pub participant_id: String,
    /// The verdict.
    pub quality: crate::quality::Quality,
}

/// One participant speaking, as reported in [`SfuEvent::ActiveSpeakers`].
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveSpeaker {
    /// Participant id.
    pub participant_id: String,
    /// Smoothed loudness, 0..1 (two decimals), for the size of a speaking indicator.
    pub level: f32,
}
