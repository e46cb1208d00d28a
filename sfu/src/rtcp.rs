//! RTCP plumbing: subscribers' feedback up to the application.
//!
//! - [`FeedbackForwarder`] is an interceptor for subscriber connections: the default
//!   interceptors swallow inbound RTCP, so it marks PLI/FIR and receiver reports for
//!   delivery to the application (the connection's `poll_read` then yields them), as in
//!   webrtc's `rtcp-processing` example. The engine throttles keyframe requests it sends on
//!   to publishers ([`crate::forward::KeyframeThrottle`]) and reads loss, jitter and round
//!   trip from the reports ([`crate::quality`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

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
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

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

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for FeedbackForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
