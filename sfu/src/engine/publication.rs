//! A published track of a room: where it comes from (the publisher's receiver), how it
//! was negotiated there, its layers (one, or up to three simulcast encodings), who
//! receives it, and per layer its keyframe throttle, bitrate and frame size.

use std::time::{Duration, Instant};

use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use rtc::rtp_transceiver::RTCRtpReceiverId;

use super::io::{ParticipantKey, TrackKey};
use crate::forward::{FirstArrivals, KeyframeThrottle, NegotiatedParams, SourceSelector};
use crate::quality::SequenceLoss;
use crate::rtcp::KEYFRAME_MIN_INTERVAL;
use crate::simulcast::{layer_of_rid, BitrateMeter, Layer, LayerInfo};
use crate::types::{MediaKind, TrackInfo};

/// The RFC 6464 client-to-mixer audio level header extension.
pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// How long the forwarded SSRC of a track without simulcast must be silent before another
/// one is taken.
pub(crate) const SOURCE_SWITCH_AFTER: Duration = Duration::from_millis(500);

/// One encoding of a published track: the track itself, or one simulcast layer.
#[derive(Debug)]
pub(crate) struct PubLayer {
    /// Its place, lowest first.
    pub layer: Layer,
    /// Its rid (simulcast), `None` for a track without simulcast.
    pub rid: Option<String>,
    /// Its SSRC (for a track without simulcast: the one forwarded).
    pub ssrc: u32,
    /// Bitrate arriving from the publisher.
    pub meter: BitrateMeter,
    /// Frame size of its last keyframe (0 × 0: unknown).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Packets already forwarded (retransmitted copies are not forwarded again).
    pub arrivals: FirstArrivals,
    /// At most one PLI per [`KEYFRAME_MIN_INTERVAL`].
    pub throttle: KeyframeThrottle,
    /// A PLI is waiting for the throttle (its timer is set).
    pub keyframe_pending: bool,
    /// Dynacast: whether the publisher was last told to encode it.
    pub active: bool,
    /// Dynacast: since when nobody needs it (it is switched off after a grace period).
    pub unneeded_since: Option<Instant>,
}

impl PubLayer {
    fn new(layer: Layer, rid: Option<String>, ssrc: u32) -> Self {
        PubLayer {
            layer,
            rid,
            ssrc,
            meter: BitrateMeter::default(),
            width: 0,
            height: 0,
            arrivals: FirstArrivals::default(),
            throttle: KeyframeThrottle::new(KEYFRAME_MIN_INTERVAL),
            keyframe_pending: false,
            active: true,
            unneeded_since: None,
        }
    }
}

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
    /// Which SSRC is forwarded, for a track without simulcast.
    pub selector: SourceSelector,
    /// Its encodings, ascending by layer (one without simulcast).
    pub layers: Vec<PubLayer>,
    /// Participants with a leg for this track, in the order they got it.
    pub subscribers: Vec<ParticipantKey>,
    /// Id of the RFC 6464 audio-level header extension on the publisher connection (audio
    /// tracks whose publisher sends it), for the room's speaker detection.
    pub audio_level_ext: Option<u8>,
    /// Loss on the way from the publisher (sequence numbers of the lowest layer).
    pub uplink: SequenceLoss,
    /// The SSRC `uplink` counts: the lowest layer can change while layers open (`h`
    /// may arrive before `q`), and another SSRC's numbers would read as huge loss.
    uplink_ssrc: Option<u32>,
}

impl Publication {
    /// A track that nobody receives yet; `rid` is the rid of its first layer (simulcast).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        publisher: ParticipantKey,
        info: TrackInfo,
        source_track_id: String,
        receiver: RTCRtpReceiverId,
        codec: RTCRtpCodec,
        source: NegotiatedParams,
        first_ssrc: u32,
        rid: Option<String>,
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
        let layer = rid.as_deref().map_or(0, |r| layer_of_rid(r, 0));
        Publication {
            publisher,
            info,
            source_track_id,
            receiver,
            codec,
            source,
            selector: SourceSelector::new(SOURCE_SWITCH_AFTER),
            layers: vec![PubLayer::new(layer, rid, first_ssrc)],
            subscribers: Vec::new(),
            audio_level_ext,
            uplink: SequenceLoss::default(),
            uplink_ssrc: None,
        }
    }

    /// Counts a packet of layer `index` (SSRC `ssrc`) for the uplink loss: only the
    /// lowest layer's, starting over when that is another SSRC than before.
    pub(crate) fn record_uplink(&mut self, index: usize, ssrc: u32, seq: u16) {
        if index != 0 {
            return;
        }
        if self.uplink_ssrc != Some(ssrc) {
            self.uplink_ssrc = Some(ssrc);
            self.uplink = SequenceLoss::default();
        }
        self.uplink.record(seq);
    }

    /// Whether the publisher sends simulcast layers (each with its rid).
    pub(crate) fn is_simulcast(&self) -> bool {
        self.layers.iter().any(|l| l.rid.is_some())
    }

    /// Another simulcast layer opened (its first packet came); kept in layer order.
    pub(crate) fn add_layer(&mut self, rid: String, ssrc: u32) {
        if let Some(l) = self
            .layers
            .iter_mut()
            .find(|l| l.rid.as_deref() == Some(&rid))
        {
            l.ssrc = ssrc; // the publisher restarted that encoding
            return;
        }
        let layer = layer_of_rid(&rid, self.layers.len());
        let at = self.layers.partition_point(|l| l.layer < layer);
        self.layers
            .insert(at, PubLayer::new(layer, Some(rid), ssrc));
    }

    /// Index into `layers` of the layer a packet of `ssrc` belongs to, or `None` (not one
    /// of this track's, or a second SSRC of a track without simulcast still in its grace
    /// period).
    pub(crate) fn layer_index(&mut self, ssrc: u32, now: Instant) -> Option<usize> {
        if self.is_simulcast() {
            return self.layers.iter().position(|l| l.ssrc == ssrc);
        }
        if !self.selector.accept(ssrc, now) {
            return None;
        }
        let only = self.layers.first_mut()?;
        only.ssrc = ssrc;
        Some(0)
    }

    /// The index of `layer`, if the track has it.
    pub(crate) fn index_of(&self, layer: Layer) -> Option<usize> {
        self.layers.iter().position(|l| l.layer == layer)
    }

    /// What the allocator knows of each layer, ascending.
    pub(crate) fn layer_infos(&mut self, now: Instant) -> Vec<LayerInfo> {
        self.layers
            .iter_mut()
            .map(|l| LayerInfo {
                layer: l.layer,
                width: l.width,
                height: l.height,
                bitrate: l.meter.bitrate(now),
                cost: l.meter.cost(now),
            })
            .collect()
    }

    /// Bits per second arriving over all layers (for audio: the audio's bitrate).
    pub(crate) fn bitrate(&mut self, now: Instant) -> u64 {
        self.layers.iter_mut().map(|l| l.meter.bitrate(now)).sum()
    }
}

/// Keys of published tracks: opaque, increasing per room.
pub(crate) type Tracks = std::collections::BTreeMap<TrackKey, Publication>;
