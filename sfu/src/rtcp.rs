//! RTCP plumbing: subscribers' feedback up to the application.
//!
//! - [`FeedbackForwarder`] is an interceptor for subscriber connections: the default
//!   interceptors swallow inbound RTCP, so it marks PLI/FIR and receiver reports for
//!   delivery to the application (the connection's `poll_read` then yields them), as in
//!   webrtc's `rtcp-processing` example. The engine throttles keyframe requests it sends on
//!   to publishers ([`crate::forward::KeyframeThrottle`]) and reads loss, jitter and round
//!   trip from the reports ([`crate::quality`]).
//! - [`LayerReportFilter`] is an interceptor for publisher connections: it leaves simulcast
//!   layers out of the receiver reports we send, so that the browser keeps naming each
//!   layer (mid and rid header extensions) in every packet. rtc 0.21.1 forgets which SSRC
//!   is which layer whenever the publisher renegotiates (a screen share starts, an ICE
//!   restart) and can only learn it again from those extensions; libwebrtc stops sending
//!   them on an SSRC as soon as a receiver report acknowledges it.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtp::header::Header;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// The associated types and the two polls every interceptor of this crate shares: it
/// keeps what it passes on in `read_queue` and `write_queue`, in order. Used inside an
/// `impl Protocol<TaggedPacket, TaggedPacket, ()>` block.
macro_rules! queued_protocol {
    () => {
        type Rout = TaggedPacket;
        type Wout = TaggedPacket;
        type Eout = ();
        type Error = Error;
        type Time = Instant;

        fn poll_read(&mut self) -> Option<Self::Rout> {
            self.read_queue.pop_front()
        }

        fn poll_write(&mut self) -> Option<Self::Wout> {
            self.write_queue.pop_front()
        }
    };
}
pub(crate) use queued_protocol;

/// `impl Interceptor` for an interceptor that needs to know nothing of the streams.
macro_rules! ignores_streams {
    ($t:ty) => {
        impl Interceptor for $t {
            fn bind_local_stream(&mut self, _info: &StreamInfo) {}
            fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
            fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
            fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
        }
    };
}
pub(crate) use ignores_streams;

/// Minimum interval between two keyframe requests to one published track.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Whether an RTCP packet asks for a keyframe.
pub(crate) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Whether an RTCP packet is a receiver report (loss, jitter, round trip of our legs).
pub(crate) fn is_receiver_report(packet: &dyn rtc::rtcp::Packet) -> bool {
    packet.as_any().is::<ReceiverReport>()
}

/// Interceptor that hands inbound PLI/FIR and receiver reports to the application and
/// lets the interceptors before it consume everything else (placed last in the chain).
#[derive(Default)]
pub(crate) struct FeedbackForwarder {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackForwarder {
    queued_protocol!();

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()) || is_receiver_report(p.as_ref()))
                .cloned()
                .collect();
            if requests.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }
}

ignores_streams!(FeedbackForwarder);

/// URI of the RTP stream id (rid) header extension, which names a simulcast layer.
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// Interceptor that removes the report blocks of simulcast layers from outgoing receiver
/// reports (see the module comment for why). Placed next to the wire, so it sees every
/// packet before the receiver-report generator does and every report after it.
///
/// The cost: the browser gets no loss fraction or round trip per camera layer from us;
/// its bandwidth estimate comes from transport-wide feedback (TWCC), which is untouched,
/// and audio and single-layer videos keep their report blocks. Each layer's packets
/// carry about 8 bytes of mid/rid for the life of the call.
#[derive(Default)]
pub(crate) struct LayerReportFilter {
    /// The rid extension's id, from the first stream bound with it.
    rid_extension: Option<u8>,
    /// SSRCs seen carrying a rid: simulcast layers.
    layers: HashSet<u32>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl LayerReportFilter {
    /// Whether an RTP header names a simulcast layer.
    fn names_layer(&self, header: &Header) -> bool {
        self.rid_extension
            .and_then(|id| header.get_extension(id))
            .is_some_and(|rid| !rid.is_empty())
    }

    /// A receiver report without the blocks of simulcast layers; `None` when it has none.
    fn without_layers(&self, packet: &dyn rtc::rtcp::Packet) -> Option<Box<dyn rtc::rtcp::Packet>> {
        let report = packet.as_any().downcast_ref::<ReceiverReport>()?;
        if !report.reports.iter().any(|r| self.layers.contains(&r.ssrc)) {
            return None;
        }
        let mut kept = report.clone();
        kept.reports.retain(|r| !self.layers.contains(&r.ssrc));
        Some(Box::new(kept))
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for LayerReportFilter {
    queued_protocol!();

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(rtp) = &msg.message.packet {
            if self.names_layer(&rtp.header) {
                self.layers.insert(rtp.header.ssrc);
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            if !self.layers.is_empty() {
                for packet in packets.iter_mut() {
                    if let Some(kept) = self.without_layers(packet.as_ref()) {
                        *packet = kept;
                    }
                }
            }
        }
        self.write_queue.push_back(msg);
        Ok(())
    }
}

impl Interceptor for LayerReportFilter {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if self.rid_extension.is_none() {
            self.rid_extension = info
                .rtp_header_extensions
                .iter()
                .find(|e| e.uri == RID_URI)
                .and_then(|e| u8::try_from(e.id).ok());
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.layers.remove(&info.ssrc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, RTPHeaderExtension};
    use rtc::rtcp::reception_report::ReceptionReport;
    use rtc::shared::{TransportContext, TransportMessage, TransportProtocol};

    const RID_ID: u8 = 10;
    const CAMERA_LAYER: u32 = 1111;
    const MICROPHONE: u32 = 2222;

    fn tagged(packet: Packet) -> TaggedPacket {
        let loopback = "127.0.0.1:9".parse().expect("address");
        TransportMessage {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: loopback,
                peer_addr: loopback,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: AttributedPacket::new(packet),
        }
    }

    fn rtp(ssrc: u32, rid: Option<&str>) -> TaggedPacket {
        let mut packet = rtc::rtp::packet::Packet::default();
        packet.header.ssrc = ssrc;
        if let Some(rid) = rid {
            packet
                .header
                .set_extension(RID_ID, bytes::Bytes::copy_from_slice(rid.as_bytes()))
                .expect("extension");
        }
        tagged(Packet::Rtp(packet))
    }

    fn receiver_report(ssrcs: &[u32]) -> TaggedPacket {
        let reports = ssrcs
            .iter()
            .map(|&ssrc| ReceptionReport {
                ssrc,
                ..Default::default()
            })
            .collect();
        tagged(Packet::Rtcp(vec![Box::new(ReceiverReport {
            ssrc: 1,
            reports,
            ..Default::default()
        })]))
    }

    fn reported_ssrcs(msg: &TaggedPacket) -> Vec<u32> {
        let Packet::Rtcp(packets) = &msg.message.packet else {
            panic!("not RTCP");
        };
        let report = packets[0]
            .as_any()
            .downcast_ref::<ReceiverReport>()
            .expect("a receiver report");
        report.reports.iter().map(|r| r.ssrc).collect()
    }

    fn bound_filter() -> LayerReportFilter {
        let mut filter = LayerReportFilter::default();
        filter.bind_remote_stream(&StreamInfo {
            ssrc: CAMERA_LAYER,
            rtp_header_extensions: vec![RTPHeaderExtension {
                uri: RID_URI.to_owned(),
                id: u16::from(RID_ID),
            }],
            ..Default::default()
        });
        filter
    }

    fn pass(filter: &mut LayerReportFilter, read: TaggedPacket) {
        filter.handle_read(read).expect("read");
        assert!(filter.poll_read().is_some(), "every packet passes on");
    }

    #[test]
    fn reports_leave_out_ssrcs_that_carry_a_rid() {
        let mut filter = bound_filter();
        pass(&mut filter, rtp(CAMERA_LAYER, Some("h")));
        pass(&mut filter, rtp(MICROPHONE, None));

        filter
            .handle_write(receiver_report(&[CAMERA_LAYER, MICROPHONE]))
            .expect("write");
        let out = filter.poll_write().expect("the report goes out");
        assert_eq!(reported_ssrcs(&out), vec![MICROPHONE]);
    }

    #[test]
    fn reports_are_untouched_without_simulcast() {
        let mut filter = bound_filter();
        pass(&mut filter, rtp(CAMERA_LAYER, None));

        filter
            .handle_write(receiver_report(&[CAMERA_LAYER, MICROPHONE]))
            .expect("write");
        let out = filter.poll_write().expect("the report goes out");
        assert_eq!(reported_ssrcs(&out), vec![CAMERA_LAYER, MICROPHONE]);
    }

    #[test]
    fn an_unbound_layer_is_reported_again() {
        let mut filter = bound_filter();
        pass(&mut filter, rtp(CAMERA_LAYER, Some("f")));
        filter.unbind_remote_stream(&StreamInfo {
            ssrc: CAMERA_LAYER,
            ..Default::default()
        });

        filter
            .handle_write(receiver_report(&[CAMERA_LAYER]))
            .expect("write");
        let out = filter.poll_write().expect("the report goes out");
        assert_eq!(reported_ssrcs(&out), vec![CAMERA_LAYER]);
    }
}
