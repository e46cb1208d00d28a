//! RTCP plumbing: keyframe requests from subscribers up to publishers.
//!
//! - [`KeyframeRequestForwarder`] is an interceptor for subscriber connections: the default
//!   interceptors swallow inbound RTCP, so it marks PLI/FIR for delivery to the application
//!   (`TrackLocal::poll` then yields them), as in webrtc's `rtcp-processing` example.
//! - [`spawn_keyframe_task`] sends PLIs to a publisher track, throttled by
//!   [`KeyframeThrottle`]; requests are posted to it without waiting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use tokio::sync::mpsc;
use tracing::{debug, Instrument};
use webrtc::media_stream::track_remote::TrackRemote;

use crate::forward::KeyframeThrottle;
use crate::stats::Counters;

/// Minimum interval between two keyframe requests to one published track.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Whether an RTCP packet asks for a keyframe.
pub(crate) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Interceptor that hands inbound PLI/FIR to the application and lets the interceptors
/// before it consume everything else (placed last in the chain).
#[derive(Default)]
pub(crate) struct KeyframeRequestForwarder {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
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

impl Interceptor for KeyframeRequestForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// Handle to post keyframe requests for one published track; never waits. The task
/// behind it ends when every handle is dropped or the publisher connection is gone.
#[derive(Clone, Debug)]
pub(crate) struct KeyframeRequester {
    tx: mpsc::Sender<()>,
}

impl KeyframeRequester {
    /// Asks for a keyframe; coalesces with a request already waiting.
    pub(crate) fn request(&self) {
        let _ = self.tx.try_send(());
    }
}

/// Starts the PLI sender of one published video track. `media_ssrc` is read at send time
/// (the forwarded SSRC may change).
pub(crate) fn spawn_keyframe_task(
    remote: Arc<dyn TrackRemote>,
    media_ssrc: Arc<AtomicU32>,
    counters: Arc<Counters>,
    span: tracing::Span,
) -> KeyframeRequester {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    tokio::spawn(
        async move {
            let mut throttle = KeyframeThrottle::new(KEYFRAME_MIN_INTERVAL);
            while rx.recv().await.is_some() {
                while let Err(at) = throttle.poll(Instant::now()) {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                }
                // Requests that arrived while waiting are served by this PLI.
                while rx.try_recv().is_ok() {}
                let ssrc = media_ssrc.load(Ordering::Relaxed);
                if ssrc == 0 {
                    continue;
                }
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                };
                if let Err(err) = remote.write_rtcp(vec![Box::new(pli)]).await {
                    debug!(%err, "publisher connection gone, keyframe task ends");
                    break;
                }
                counters.keyframe_request_sent();
                debug!(ssrc, "PLI sent to publisher");
            }
        }
        .instrument(span),
    );
    KeyframeRequester { tx }
}
