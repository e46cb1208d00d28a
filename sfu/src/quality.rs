//! Connection quality of a participant, from what the server measures itself: loss on
//! the way in (sequence numbers of its published media), and loss, jitter and round trip
//! on the way out (the RTCP receiver reports its browser sends about each subscriber
//! leg). Pure logic: the room feeds it and evaluates every [`QUALITY_TICK`].
//!
//! The verdict is the worse of both directions. It drops at once when a measurement gets
//! worse and recovers only after [`RECOVER_AFTER`] better evaluations in a row, so a
//! badge does not flicker on a network that hovers around a threshold.

use std::time::Duration;

/// How often a room evaluates its participants' connections.
pub const QUALITY_TICK: Duration = Duration::from_secs(2);
/// Consecutive better evaluations before the verdict improves.
pub const RECOVER_AFTER: u8 = 2;

/// How well a participant's connection carries the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Quality {
    /// Nothing noticeable.
    Excellent,
    /// Some loss or delay; video may soften.
    Good,
    /// Video freezes or lags; audio may break up. Audio only usually helps.
    Poor,
    /// The connection is down (ICE disconnected or failed).
    Lost,
}

impl Quality {
    /// Protocol spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Excellent => "excellent",
            Quality::Good => "good",
            Quality::Poor => "poor",
            Quality::Lost => "lost",
        }
    }
}

/// Thresholds of one verdict: a measurement above any of them is worse than it.
struct Limits {
    loss: f32,
    rtt: Duration,
    jitter: Duration,
}

/// Worst still "excellent": under 2% loss, 300 ms round trip, 50 ms jitter (Wi-Fi).
const EXCELLENT: Limits = Limits {
    loss: 0.02,
    rtt: Duration::from_millis(300),
    jitter: Duration::from_millis(50),
};
/// Worst still "good": under 8% loss (video visibly suffers beyond), 600 ms, 150 ms. A
/// subscriber's reported jitter also carries the late repairs of a lossy publisher (about
/// 100 ms at 25% loss on its side), which are the publisher's verdict, not the
/// subscriber's: the jitter limits sit above them.
const GOOD: Limits = Limits {
    loss: 0.08,
    rtt: Duration::from_millis(600),
    jitter: Duration::from_millis(150),
};

/// What one evaluation interval measured for a participant (both directions merged).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkSample {
    /// Fraction of packets lost, 0..1.
    pub loss: f32,
    /// Round-trip time, when a report allowed computing it.
    pub rtt: Option<Duration>,
    /// Interarrival jitter, when reported.
    pub jitter: Option<Duration>,
}

impl LinkSample {
    /// The worse of two samples, measure by measure.
    pub fn worst(self, other: LinkSample) -> LinkSample {
        LinkSample {
            loss: self.loss.max(other.loss),
            rtt: self.rtt.max(other.rtt),
            jitter: self.jitter.max(other.jitter),
        }
    }

    /// The verdict for this sample alone.
    pub fn classify(&self) -> Quality {
        let within = |l: &Limits| {
            self.loss <= l.loss
                && self.rtt.is_none_or(|r| r <= l.rtt)
                && self.jitter.is_none_or(|j| j <= l.jitter)
        };
        if within(&EXCELLENT) {
            Quality::Excellent
        } else if within(&GOOD) {
            Quality::Good
        } else {
            Quality::Poor
        }
    }
}

/// Loss on an incoming RTP stream, from its sequence numbers (RFC 3550 appendix A.3,
/// simplified). Only packets that advance the sequence count as received: a
/// retransmission (NACK repairs what was lost) or a reordered packet arrives behind the
/// highest one and does not hide the loss the network caused.
#[derive(Debug, Default)]
pub struct SequenceLoss {
    /// Extended highest sequence number seen.
    highest: Option<u64>,
    /// Extended highest sequence number at the start of the interval.
    interval_base: Option<u64>,
    received: u64,
}

impl SequenceLoss {
    /// One packet with sequence number `seq` arrived.
    pub fn record(&mut self, seq: u16) {
        let ext = match self.highest {
            None => {
                // The interval starts just before the first packet.
                self.interval_base = Some(u64::from(seq).wrapping_sub(1));
                u64::from(seq)
            }
            Some(h) => {
                let delta = seq.wrapping_sub(h as u16);
                if delta != 0 && delta < 0x8000 {
                    h + u64::from(delta)
                } else {
                    return; // not newer than the highest: repaired, reordered or repeated
                }
            }
        };
        self.highest = Some(ext);
        self.received += 1;
    }

    /// Fraction lost since the last call (0 when nothing was expected), and starts the
    /// next interval.
    pub fn take_fraction(&mut self) -> f32 {
        let (Some(h), Some(base)) = (self.highest, self.interval_base) else {
            return 0.0;
        };
        let expected = h.wrapping_sub(base);
        let received = std::mem::take(&mut self.received);
        self.interval_base = Some(h);
        if expected == 0 {
            return 0.0;
        }
        (expected.saturating_sub(received) as f32 / expected as f32).clamp(0.0, 1.0)
    }
}

/// Loss on the way from the server to one subscriber leg, from the subscriber's reports.
/// A report's loss also counts packets the server never had to send (lost before they
/// reached it, on the publisher's side): those are the sequence numbers the report
/// expected beyond what the server wrote on the leg, and they are taken out.
#[derive(Debug, Default)]
pub struct LegLoss {
    /// (extended highest sequence number, cumulative lost, packets written) at the last
    /// report.
    mark: Option<(u32, u32, u64)>,
}

impl LegLoss {
    /// A report (`highest` extended sequence number, `total_lost` cumulative) when `sent`
    /// packets had been written on the leg; returns the fraction lost on the way out since
    /// the previous report (`None` for the first one, or one that goes backwards).
    pub fn report(&mut self, highest: u32, total_lost: u32, sent: u64) -> Option<f32> {
        let (h0, l0, s0) = self.mark.replace((highest, total_lost, sent))?;
        let expected = i64::from(highest.wrapping_sub(h0));
        if expected == 0 || expected >= 1 << 24 {
            return None;
        }
        let lost = i64::from(total_lost) - i64::from(l0);
        let written = i64::try_from(sent.saturating_sub(s0)).unwrap_or(i64::MAX);
        let never_sent = (expected - written).max(0);
        let lost_on_the_way = (lost - never_sent).max(0);
        Some((lost_on_the_way as f32 / expected as f32).clamp(0.0, 1.0))
    }
}

/// Round trip from one reception report: the report's arrival (`now_ntp`, the middle 32
/// bits of the NTP time on the clock the sender report was stamped with) minus the sender
/// report it answers (`lsr`) minus the time the receiver held it (`dlsr`), all in 1/65536 s
/// (RFC 3550 6.4.1). `None` without a sender report yet, or for an impossible value.
pub fn rtt_from_report(now_ntp: u32, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let units = now_ntp.wrapping_sub(lsr).wrapping_sub(dlsr);
    if units >= 60 << 16 {
        return None; // negative (wrapped) or over a minute: clocks disagree
    }
    Some(Duration::from_micros(u64::from(units) * 1_000_000 / 65_536))
}

/// The middle 32 bits of a 64-bit NTP timestamp.
pub fn ntp_mid(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// One participant's verdict over time, with the recovery hysteresis.
#[derive(Debug)]
pub struct QualityTracker {
    current: Quality,
    better_streak: u8,
}

impl Default for QualityTracker {
    fn default() -> Self {
        QualityTracker {
            current: Quality::Excellent,
            better_streak: 0,
        }
    }
}

impl QualityTracker {
    /// The verdict now.
    pub fn current(&self) -> Quality {
        self.current
    }

    /// Takes one evaluation; returns the new verdict when it changed.
    pub fn update(&mut self, observed: Quality) -> Option<Quality> {
        if observed > self.current {
            self.better_streak = 0;
            self.current = observed;
            return Some(observed);
        }
        if observed == self.current {
            self.better_streak = 0;
            return None;
        }
        self.better_streak += 1;
        if self.better_streak < RECOVER_AFTER {
            return None;
        }
        self.better_streak = 0;
        self.current = observed;
        Some(observed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(loss: f32, rtt_ms: Option<u64>, jitter_ms: Option<u64>) -> LinkSample {
        LinkSample {
            loss,
            rtt: rtt_ms.map(Duration::from_millis),
            jitter: jitter_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn loss_delay_and_jitter_each_decide() {
        assert_eq!(
            sample(0.0, Some(40), Some(5)).classify(),
            Quality::Excellent
        );
        assert_eq!(sample(0.0, None, None).classify(), Quality::Excellent);
        assert_eq!(sample(0.05, Some(40), Some(5)).classify(), Quality::Good);
        assert_eq!(sample(0.0, Some(450), None).classify(), Quality::Good);
        assert_eq!(sample(0.0, None, Some(80)).classify(), Quality::Good);
        assert_eq!(sample(0.15, Some(40), Some(5)).classify(), Quality::Poor);
        assert_eq!(sample(0.0, Some(900), None).classify(), Quality::Poor);
        assert_eq!(sample(0.0, None, Some(200)).classify(), Quality::Poor);
        let worst = sample(0.01, Some(500), None).worst(sample(0.2, None, Some(10)));
        assert_eq!(worst, sample(0.2, Some(500), Some(10)));
    }

    #[test]
    fn sequence_loss_counts_gaps_across_wrap_and_ignores_reordering() {
        let mut l = SequenceLoss::default();
        assert_eq!(l.take_fraction(), 0.0, "nothing expected yet");
        for s in 65_530u16..=65_535 {
            l.record(s);
        }
        for s in 0u16..4 {
            l.record(s); // wrapped
        }
        assert_eq!(l.take_fraction(), 0.0);
        // 10 expected, 2 missing (5 and 7); 5 repaired late and 3 repeated do not count.
        for s in [4u16, 6, 8, 9, 10, 11, 12, 13, 5, 3, 13] {
            l.record(s);
        }
        let f = l.take_fraction();
        assert!((f - 0.2).abs() < 1e-6, "{f}");
        assert_eq!(l.take_fraction(), 0.0, "a silent interval loses nothing");
    }

    #[test]
    fn leg_loss_leaves_out_what_never_reached_the_server() {
        let mut l = LegLoss::default();
        assert_eq!(l.report(1000, 0, 500), None, "first report: the baseline");
        // 100 sequence numbers later, 100 written, 10 lost on the way out.
        let f = l.report(1100, 10, 600).expect("fraction");
        assert!((f - 0.1).abs() < 1e-6, "{f}");
        // 100 later, only 80 written (20 lost before the server), 20 reported lost.
        assert_eq!(l.report(1200, 30, 680), Some(0.0));
        // 100 later, 90 written, 25 reported lost: 15 of them on the way out.
        let f = l.report(1300, 55, 770).expect("fraction");
        assert!((f - 0.15).abs() < 1e-6, "{f}");
        assert_eq!(l.report(1300, 55, 770), None, "nothing new expected");
    }

    #[test]
    fn round_trip_from_a_report() {
        let sr = 0x0001_0000; // 1 s
        let dlsr = 0x0000_8000; // held 0.5 s
        let now = sr + dlsr + 0x0000_1999; // 100 ms later on the way
        let rtt = rtt_from_report(now, sr, dlsr).expect("rtt");
        assert!(rtt.abs_diff(Duration::from_millis(100)) < Duration::from_millis(1));
        assert_eq!(rtt_from_report(now, 0, dlsr), None, "no sender report yet");
        assert_eq!(rtt_from_report(sr, sr + 10, 0), None, "negative");
        assert_eq!(ntp_mid(0x1234_5678_9abc_def0), 0x5678_9abc);
    }

    #[test]
    fn worse_at_once_better_only_after_two_evaluations() {
        let mut q = QualityTracker::default();
        assert_eq!(q.update(Quality::Excellent), None);
        assert_eq!(q.update(Quality::Poor), Some(Quality::Poor));
        assert_eq!(q.update(Quality::Excellent), None);
        assert_eq!(q.update(Quality::Poor), None, "a relapse resets the streak");
        assert_eq!(q.update(Quality::Good), None);
        assert_eq!(q.update(Quality::Good), Some(Quality::Good));
        assert_eq!(q.update(Quality::Lost), Some(Quality::Lost));
        assert_eq!(q.current(), Quality::Lost);
    }
}
