//! How often one packet may be retransmitted to a subscriber.
//!
//! rtc's NACK responder resends a packet every time a NACK names it. A receiver whose
//! NACK generator never gives up (rtc's default, and some clients) then asks for the
//! same lost packets every 100 ms for as long as they stay in its window — and on a
//! paused video leg the window never moves. On a congested downlink that turns into a
//! storm: the retransmissions crowd out the audio the allocator paused the video for.
//! libwebrtc stops after 10 requests per packet; a server should not depend on that.
//!
//! [`NackLimiter`] sits on the subscriber chain between the wire and the NACK responder
//! and removes from every incoming NACK the packets already retransmitted
//! [`MAX_RETRANSMISSIONS`] times, or retransmitted less than [`MIN_INTERVAL`] ago (a
//! resend still in flight). The responder never sees what was removed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use crate::rtcp::{ignores_streams, queued_protocol};

/// Most retransmissions of one packet to one subscriber.
pub const MAX_RETRANSMISSIONS: u8 = 3;
/// Shortest time between two retransmissions of one packet (a round trip on a good
/// path; a second request sooner means the first resend is still on its way).
pub const MIN_INTERVAL: Duration = Duration::from_millis(80);
/// How long a packet's retransmission count is remembered: longer than any NACK window
/// a receiver keeps a packet in (the responder's buffer holds 0.6–2.5 s of a leg).
const MEMORY: Duration = Duration::from_secs(3);
/// Most packets remembered per connection (a full NACK storm on every leg of a large
/// room stays far below).
const MAX_REMEMBERED: usize = 16 * 1024;

/// The retransmission counts of one connection's legs. Pure: tested without packets.
#[derive(Debug, Default)]
pub(crate) struct RetransmitBudget {
    sent: HashMap<(u32, u16), (u8, Instant)>,
    /// First request of each remembered packet, oldest first, for forgetting.
    order: VecDeque<(Instant, (u32, u16))>,
}

impl RetransmitBudget {
    /// Whether packet `seq` of `ssrc` may be retransmitted now; counts it when it may.
    pub(crate) fn allow(&mut self, now: Instant, ssrc: u32, seq: u16) -> bool {
        self.forget(now);
        let key = (ssrc, seq);
        match self.sent.get_mut(&key) {
            Some((count, last)) => {
                if *count >= MAX_RETRANSMISSIONS || now.duration_since(*last) < MIN_INTERVAL {
                    return false;
                }
                *count += 1;
                *last = now;
                true
            }
            None => {
                if self.sent.len() >= MAX_REMEMBERED {
                    if let Some((_, oldest)) = self.order.pop_front() {
                        self.sent.remove(&oldest);
                    }
                }
                self.sent.insert(key, (1, now));
                self.order.push_back((now, key));
                true
            }
        }
    }

    fn forget(&mut self, now: Instant) {
        while let Some(&(first, key)) = self.order.front() {
            if now.duration_since(first) < MEMORY {
                break;
            }
            self.order.pop_front();
            self.sent.remove(&key);
        }
    }

    /// Packets remembered (for tests).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.sent.len()
    }
}

/// The interceptor applying a [`RetransmitBudget`] to incoming NACKs (see the module
/// comment).
#[derive(Default)]
pub(crate) struct NackLimiter {
    budget: RetransmitBudget,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl NackLimiter {
    /// `nack` without the packets over budget; `None` when nothing is left.
    fn limit(&mut self, now: Instant, nack: &TransportLayerNack) -> Option<TransportLayerNack> {
        let allowed: Vec<u16> = nack
            .nacks
            .iter()
            .flat_map(|pair| pair.into_iter())
            .filter(|&seq| self.budget.allow(now, nack.media_ssrc, seq))
            .collect();
        if allowed.is_empty() {
            return None;
        }
        Some(TransportLayerNack {
            sender_ssrc: nack.sender_ssrc,
            media_ssrc: nack.media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(&allowed),
        })
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for NackLimiter {
    queued_protocol!();

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        let now = msg.now;
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            let mut changed = false;
            let mut kept: Vec<Box<dyn rtc::rtcp::Packet>> = Vec::with_capacity(packets.len());
            for packet in packets.drain(..) {
                match packet.as_any().downcast_ref::<TransportLayerNack>() {
                    Some(nack) => {
                        changed = true;
                        if let Some(limited) = self.limit(now, nack) {
                            kept.push(Box::new(limited));
                        }
                    }
                    None => kept.push(packet),
                }
            }
            if changed && kept.is_empty() {
                // Only NACKs, all over budget: nothing to pass on (an empty compound
                // packet means something else to the chain).
                return Ok(());
            }
            *packets = kept;
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }
}

ignores_streams!(NackLimiter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_is_retransmitted_at_most_three_times_and_not_in_a_burst() {
        let t0 = Instant::now();
        let mut b = RetransmitBudget::default();
        assert!(b.allow(t0, 1, 100));
        assert!(
            !b.allow(t0 + Duration::from_millis(20), 1, 100),
            "resend in flight"
        );
        assert!(b.allow(t0 + Duration::from_millis(100), 1, 100));
        assert!(b.allow(t0 + Duration::from_millis(200), 1, 100));
        assert!(
            !b.allow(t0 + Duration::from_millis(300), 1, 100),
            "budget spent"
        );
        assert!(!b.allow(t0 + Duration::from_millis(900), 1, 100));
        assert!(
            b.allow(t0 + Duration::from_millis(300), 1, 101),
            "another packet"
        );
        assert!(
            b.allow(t0 + Duration::from_millis(300), 2, 100),
            "another leg"
        );
    }

    #[test]
    fn counts_are_forgotten_after_a_while_and_bounded() {
        let t0 = Instant::now();
        let mut b = RetransmitBudget::default();
        for seq in 0..10 {
            b.allow(t0, 7, seq);
        }
        assert_eq!(b.remembered(), 10);
        assert!(
            b.allow(t0 + MEMORY, 7, 0),
            "a new request after the memory is new"
        );
        assert_eq!(b.remembered(), 1);
        for i in 0..(MAX_REMEMBERED + 100) {
            b.allow(t0 + MEMORY, 8, i as u16);
        }
        assert!(b.remembered() <= MAX_REMEMBERED);
    }

    #[test]
    fn a_nack_keeps_only_the_packets_within_budget() {
        let t0 = Instant::now();
        let mut limiter = NackLimiter::default();
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 9,
            nacks: nack_pairs_from_sequence_numbers(&[10, 11, 12]),
        };
        let first = limiter.limit(t0, &nack).expect("all allowed");
        assert_eq!(first.nacks, nack.nacks);
        let later = t0 + Duration::from_millis(100);
        limiter.budget.allow(later, 9, 11);
        limiter
            .budget
            .allow(later + Duration::from_millis(100), 9, 11);
        let again = limiter
            .limit(later + Duration::from_millis(200), &nack)
            .expect("two allowed");
        let seqs: Vec<u16> = again.nacks.iter().flat_map(|p| p.into_iter()).collect();
        assert_eq!(seqs, vec![10, 12], "11 had its three retransmissions");
        limiter.limit(later + Duration::from_millis(300), &nack);
        assert!(
            limiter
                .limit(later + Duration::from_millis(400), &nack)
                .is_none(),
            "everything spent"
        );
    }
}
