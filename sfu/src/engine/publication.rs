//! A published track of a room: where it comes from (the publisher's receiver), how it
//! was negotiated there, which SSRC is forwarded, who receives it, and its keyframe
//! throttle.

use std::time::Duration;

use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use rtc::rtp_transceiver::RTCRtpReceiverId;

use super::io::{ParticipantKey, TrackKey};
use crate::forward::{FirstArrivals, KeyframeThrottle, NegotiatedParams, SourceSelector};
use crate::quality::SequenceLoss;
use crate::rtcp::KEYFRAME_MIN_INTERVAL;
use crate::types::{MediaKind, TrackInfo};

/// The RFC 6464 client-to-mixer audio level header extension.
pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// How long the forwarded SSRC of a track must be silent before another one is taken.
pub(crate) const SOURCE_SWITCH_AFTER: Duration = Duration::from_millis(500);

/// One published track.
#[derive(Debug)]
pub(crate) struct Publication {
    /// Publisher.
    pub publisher: ParticipantKey,
    /// As announced (room-unique track id, kind, stream id = publisher id).
    pub info: TrackInfo,
    /// The track id rtc reports for its packets on the publisher connection (the client's
    /// own id, which may differ from the announced one).
    pub source_track_id: String,
    /// Receiver on the publisher connection (PLIs are written there).
    pub receiver: RTCRtpReceiverId,
    /// Codec the publisher sends (subscriber legs offer it).
    pub codec: RTCRtpCodec,
    /// Payload types / extensions negotiated on the publisher connection.
    pub source: NegotiatedParams,
    /// Which SSRC is forwarded.
    pub selector: SourceSelector,
    /// SSRC announced when the track opened (PLI target before any packet was forwarded).
    pub first_ssrc: u32,
    /// At most one PLI per [`KEYFRAME_MIN_INTERVAL`].
    pub throttle: KeyframeThrottle,
    /// A PLI is waiting for the throttle (its timer is set).
    pub keyframe_pending: bool,
    /// Participants with a leg for this track, in the order they got it.
    pub subscribers: Vec<ParticipantKey>,
    /// Id of the RFC 6464 audio-level header extension on the publisher connection (audio
    /// tracks whose publisher sends it), for the room's speaker detection.
    pub audio_level_ext: Option<u8>,
    /// Loss on the way from the publisher (the forwarded SSRC's sequence numbers).
    pub uplink: SequenceLoss,
    /// Packets already forwarded (retransmitted copies are not forwarded again).
    pub arrivals: FirstArrivals,
}

impl Publication {
    /// A track that nobody receives yet.
    pub(crate) fn new(
        publisher: ParticipantKey,
        info: TrackInfo,
        source_track_id: String,
        receiver: RTCRtpReceiverId,
        codec: RTCRtpCodec,
        source: NegotiatedParams,
        first_ssrc: u32,
    ) -> Self {
        let audio_level_ext = (info.kind == MediaKind::Audio)
            .then(|| {
                source
                    .extensions
                    .iter()
                    .find(|e| e.uri == AUDIO_LEVEL_URI)
                    .map(|e| e.id)
            })
            .flatten();
        Publication {
            publisher,
            info,
            source_track_id,
            receiver,
            codec,
            source,
            selector: SourceSelector::new(SOURCE_SWITCH_AFTER),
            first_ssrc,
            throttle: KeyframeThrottle::new(KEYFRAME_MIN_INTERVAL),
            keyframe_pending: false,
            subscribers: Vec::new(),
            audio_level_ext,
            uplink: SequenceLoss::default(),
            arrivals: FirstArrivals::default(),
        }
    }

    /// The SSRC a PLI must name: the one forwarded, else the first one seen.
    pub(crate) fn media_ssrc(&self) -> u32 {
        self.selector.current().unwrap_or(self.first_ssrc)
    }
}

/// Keys of published tracks: opaque, increasing per room.
pub(crate) type Tracks = std::collections::BTreeMap<TrackKey, Publication>;
