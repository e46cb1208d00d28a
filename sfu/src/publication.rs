//! A published track and its subscriber legs at run time: the publisher-side reader feeds a
//! [`Fanout`]; each leg has a writer task that rewrites and writes to its own local track.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpParameters};
use rtc::shared::marshal::MarshalSize;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use crate::fanout::Fanout;
use crate::forward::{
    LegMapping, LegRewriter, NegotiatedCodec, NegotiatedExtension, NegotiatedParams,
};
use crate::peer::PcSignals;
use crate::rtcp::{is_keyframe_request, KeyframeRequester};
use crate::stats::{Counters, PacketMetrics};
use crate::types::{MediaKind, SfuEvent, TrackInfo};

/// Converts webrtc's negotiated RTP parameters into the pure [`NegotiatedParams`].
pub(crate) fn negotiated(params: &RTCRtpParameters) -> NegotiatedParams {
    NegotiatedParams {
        codecs: params
            .codecs
            .iter()
            .map(|c| NegotiatedCodec {
                payload_type: c.payload_type,
                mime_type: c.rtp_codec.mime_type.clone(),
                clock_rate: c.rtp_codec.clock_rate,
            })
            .collect(),
        extensions: params
            .header_extensions
            .iter()
            .filter_map(|e| {
                Some(NegotiatedExtension {
                    id: u8::try_from(e.id).ok()?,
                    uri: e.uri.clone(),
                })
            })
            .collect(),
    }
}

/// One published track of a room.
pub(crate) struct Publication {
    pub(crate) publisher_id: String,
    pub(crate) info: TrackInfo,
    /// Codec the publisher sends (used to create subscriber legs).
    pub(crate) codec: RTCRtpCodec,
    /// Payload types / extensions negotiated on the publisher connection.
    pub(crate) source: NegotiatedParams,
    pub(crate) fanout: Fanout<Packet>,
    keyframes: Mutex<Option<KeyframeRequester>>,
}

impl Publication {
    pub(crate) fn new(
        publisher_id: String,
        info: TrackInfo,
        codec: RTCRtpCodec,
        source: NegotiatedParams,
        keyframes: Option<KeyframeRequester>,
    ) -> Self {
        Publication {
            publisher_id,
            info,
            codec,
            source,
            fanout: Fanout::default(),
            keyframes: Mutex::new(keyframes),
        }
    }

    /// Posts a (throttled) keyframe request to the publisher; no-op for audio.
    pub(crate) fn request_keyframe(&self) {
        if self.info.kind != MediaKind::Video {
            return;
        }
        if let Some(k) = self
            .keyframes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            k.request();
        }
    }

    /// Stops forwarding: every leg's queue closes, the keyframe task ends.
    pub(crate) fn shutdown(&self) {
        self.fanout.clear();
        self.keyframes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// What a subscriber's legs share: where "media flowing" goes and the counters.
pub(crate) struct LegSink {
    pub(crate) signals: Arc<PcSignals>,
    pub(crate) events: mpsc::UnboundedSender<SfuEvent>,
    pub(crate) media_flowing: AtomicBool,
    pub(crate) counters: Arc<Counters>,
}

/// Negotiated mapping of one leg, published by the participant after each answer.
pub(crate) type MappingRx = watch::Receiver<Option<Arc<LegMapping>>>;

/// Writer of one subscriber leg: waits for nothing but its own queue; the publisher reader
/// never waits for it. Ends when the queue closes (leg detached or track unpublished).
pub(crate) async fn run_leg_writer(
    mut rx: mpsc::Receiver<Packet>,
    local: Arc<TrackLocalStaticRTP>,
    mapping: MappingRx,
    sink: Arc<LegSink>,
    publication: Weak<Publication>,
) {
    let metrics = PacketMetrics::new();
    let mut rewriter = LegRewriter::new();
    let mut started = false;
    let mut unmapped_logged = false;
    let mut write_errors = 0u64;
    while let Some(packet) = rx.recv().await {
        let Some(map) = mapping.borrow().clone() else {
            continue; // not negotiated yet
        };
        if !sink.signals.is_connected() {
            continue;
        }
        if !started {
            started = true;
            // The subscriber can only decode from a keyframe.
            if let Some(p) = publication.upgrade() {
                p.request_keyframe();
            }
        }
        let pt = packet.header.payload_type;
        let Some(out) = rewriter.rewrite(packet, &map, Instant::now()) else {
            if !unmapped_logged {
                unmapped_logged = true;
                warn!(
                    pt,
                    "payload type not negotiated on this subscriber leg, dropping"
                );
            }
            continue;
        };
        let bytes = (out.header.marshal_size() + out.payload.len()) as u64;
        match local.write_rtp(out).await {
            Ok(()) => {
                metrics.record(&sink.counters, bytes);
                if !sink.media_flowing.swap(true, Ordering::AcqRel) {
                    let _ = sink.events.send(SfuEvent::MediaFlowing);
                }
            }
            Err(err) => {
                write_errors += 1;
                if write_errors == 1 {
                    debug!(%err, "write_rtp failed on subscriber leg");
                }
            }
        }
    }
    debug!("subscriber leg writer ends");
}

/// Reads RTCP the subscriber sends about one leg; PLI/FIR become keyframe requests to the
/// publisher. Ends when the leg is unbound or the subscriber connection closes.
pub(crate) async fn run_leg_rtcp(local: Arc<TrackLocalStaticRTP>, publication: Weak<Publication>) {
    while let Some(event) = local.poll().await {
        if let TrackLocalEvent::OnRtcpPacket(packets) = event {
            if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                match publication.upgrade() {
                    Some(p) => p.request_keyframe(),
                    None => break,
                }
            }
        }
    }
}
