//! The downlink estimate of one subscriber connection: how many bits per second the path
//! from the server to that subscriber carries, from the subscriber's transport-wide
//! congestion control feedback (TWCC). rtc's congestion-control interceptor keeps the send
//! history and resolves each feedback into per-packet reports; this estimator turns them
//! into a rate, and publishes it to the engine's allocator through a shared cell.
//!
//! It uses rtc's GCC building blocks — arrival groups and the Kalman slope filter
//! ([`SlopeEstimator`]), the adaptive-threshold overuse detector ([`OveruseDetector`]) and
//! the received-rate window ([`RateCalculator`]) — with its own rate control, because an
//! SFU probes differently from a browser: it raises a simulcast layer to find out whether
//! the path carries it ([`crate::allocation`]), so the estimate must climb fast where no
//! congestion was seen lately, and forget a congestion point after a few seconds (rtc's
//! `Gcc` climbs 8 % per second and approaches the last congestion point by 12 kbit/s
//! steps for good: after a limited minute it needs most of a minute to find 1.5 Mbit/s).
//!
//! - Queue growing (overuse): 95 % of what the subscriber received, at once; 85 % when
//!   packets are being lost too, and that rate is then remembered as a congestion point.
//! - Loss over 10 %: down in proportion to the loss.
//! - Otherwise, with loss under 2 %: up by 30 % per second (doubling each second until
//!   the first congestion of the call: its start, when nothing is known); but within 15 % of a
//!   congestion point seen in the last 20 s, by 25 kbit/s per step up to that point and not
//!   past it. The allocator raises a layer whenever the estimate leaves room for it, so an
//!   estimate above a known limit is a probe, and every probe past a known limit costs the
//!   subscriber a burst of loss, audio included (on a 300 kbit/s link, an estimate let 20 %
//!   past the limit raised 180p to 360p every ~10 s and lost 2-9 % of the audio). After
//!   20 s the point is forgotten and the estimate climbs again: that is how a link that got
//!   wider is found.
//! - Never more than 4 × what the subscriber received, or 500 kbit/s (an idle link has
//!   no estimate worth trusting beyond that), never under 100 kbit/s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    BandwidthEstimator, EstimatorStats, OveruseDetector, PacketReport, RateCalculator,
    SlopeEstimator, Usage,
};

/// Where the estimate starts: a top camera layer and audio.
pub const INITIAL_ESTIMATE: f64 = 1_500_000.0;
/// Growth per second until the path first shows congestion (the start of a call, when
/// nothing is known: the estimate doubles each second, up to 4 × what arrives).
const STARTUP_GROWTH_PER_SECOND: f64 = 2.0;
/// Floor of the estimate.
pub const MIN_ESTIMATE: f64 = 100_000.0;
/// Ceiling of the estimate.
pub const MAX_ESTIMATE: f64 = 50_000_000.0;
/// Least time between two changes (each is observed before the next).
const STEP: Duration = Duration::from_millis(200);
/// While overuse lasts, the estimate comes down again at most this often.
const OVERUSE_REPEAT: Duration = Duration::from_secs(1);
/// How long a congestion point caps the estimate (after it, the estimate climbs past it
/// again: that is how a link that got wider is found).
const CEILING_MEMORY: Duration = Duration::from_secs(20);
const DECREASE: f64 = 0.85;
/// The back-off when the queue grows without loss yet (a deep buffer, or jitter on a busy
/// machine): gentler, so a false alarm does not cost a layer.
const GENTLE_DECREASE: f64 = 0.95;
/// Delay without loss lowers the estimate no further than this.
const GENTLE_FLOOR: f64 = 300_000.0;
const GROWTH_PER_SECOND: f64 = 1.3;
const ADDITIVE_STEP: f64 = 25_000.0;
const LOW_LOSS: f64 = 0.02;
const HIGH_LOSS: f64 = 0.10;
/// Most delay deltas the overuse detector's gain counts.
const MAX_DELTAS: u32 = 60;
const MAX_OVER_RECEIVED: f64 = 4.0;
/// The cap of 4 × received is never below this: a subscriber whose videos are all
/// paused receives only audio, and must still be able to get a first layer back.
const RECEIVED_CAP_FLOOR: f64 = 500_000.0;

/// The estimate as the engine reads it: bits per second, 0 until the first feedback; and
/// whether the path was congested lately (a queue that overflowed, not just jitter).
#[derive(Clone, Debug, Default)]
pub struct SharedEstimate(Arc<(AtomicU64, AtomicBool)>);

impl SharedEstimate {
    /// The latest estimate, or `None` before the subscriber sent any feedback (a client
    /// that does not send TWCC is then never limited).
    pub fn get(&self) -> Option<u64> {
        match self.0 .0.load(Ordering::Relaxed) {
            0 => None,
            bps => Some(bps),
        }
    }

    /// Whether a congestion point with loss was seen in the last 20 s: then a layer that
    /// had to come down was too much for the path, and is not tried again at once.
    pub fn congested(&self) -> bool {
        self.0 .1.load(Ordering::Relaxed)
    }

    fn set(&self, bps: f64, congested: bool) {
        self.0 .0.store(bps.max(1.0) as u64, Ordering::Relaxed);
        self.0 .1.store(congested, Ordering::Relaxed);
    }
}

/// The estimator of one subscriber connection (see the module docs).
pub struct DownlinkEstimator {
    slope: SlopeEstimator,
    detector: OveruseDetector,
    received: RateCalculator,
    target: f64,
    /// Received rate at the last overuse, and when.
    ceiling: Option<(f64, Instant)>,
    last_change: Option<Instant>,
    /// Smoothed loss fraction.
    loss: f64,
    /// Delay deltas seen so far (the detector's gain, up to [`MAX_DELTAS`]).
    deltas: u32,
    /// The detector has said overuse since the last report that was not overuse.
    in_overuse: bool,
    /// Whether the estimate stood at a fresh congestion point when this overuse episode
    /// began, and the highest rate received under loss in it ([`Self::note_congestion`]).
    episode_at_ceiling: bool,
    episode_peak: Option<f64>,
    /// When the estimate last came down for overuse.
    last_decrease: Option<Instant>,
    /// The path showed congestion once (the startup growth is over).
    congestion_seen: bool,
    shared: SharedEstimate,
}

impl DownlinkEstimator {
    /// An estimator that publishes into `shared`.
    pub fn new(shared: SharedEstimate) -> Self {
        DownlinkEstimator {
            slope: SlopeEstimator::new(),
            detector: OveruseDetector::new(),
            received: RateCalculator::default(),
            target: INITIAL_ESTIMATE,
            ceiling: None,
            last_change: None,
            loss: 0.0,
            deltas: 0,
            in_overuse: false,
            episode_at_ceiling: false,
            episode_peak: None,
            last_decrease: None,
            congestion_seen: false,
            shared,
        }
    }

    /// The congestion point of the last 20 s, if any.
    fn fresh_ceiling(&self, now: Instant) -> Option<f64> {
        self.ceiling
            .filter(|(_, at)| now.saturating_duration_since(*at) < CEILING_MEMORY)
            .map(|(c, _)| c)
    }

    /// The fresh congestion point when the estimate stands within [`DECREASE`] of it: then
    /// the estimate climbs carefully, and an overflow there shows the point was too high.
    fn near_ceiling(&self, now: Instant) -> Option<f64> {
        self.fresh_ceiling(now)
            .filter(|c| self.target > c * DECREASE)
    }

    /// A congestion point: a queue that grew until it dropped packets (delay alone may be
    /// jitter, on a busy machine or a radio link), at `received` bit/s. Its rate is the
    /// highest received under loss in this episode (what arrives while a queue drains says
    /// less about the path). A fresh point the estimate had not reached stays if higher: a
    /// keyframe that overflows a short queue shows loss at a rate well under what the
    /// path carries. A fresh point the estimate had reached is replaced: the path did not
    /// carry it (it was measured in a burst, or the path narrowed since), and keeping the
    /// higher one would probe past the path's limit again and again.
    fn note_congestion(&mut self, now: Instant, received: f64) {
        let peak = self.episode_peak.map_or(received, |p| p.max(received));
        self.episode_peak = Some(peak);
        let point = match self.fresh_ceiling(now) {
            Some(c) if !self.episode_at_ceiling => c.max(peak),
            _ => peak,
        };
        self.ceiling = Some((point, now));
    }

    fn may_change(&self, now: Instant) -> bool {
        self.last_change
            .is_none_or(|at| now.saturating_duration_since(at) >= STEP)
    }

    fn next_target(&mut self, now: Instant, usage: Usage, received: Option<f64>) -> f64 {
        if usage == Usage::Over || self.loss > HIGH_LOSS {
            self.congestion_seen = true;
        }
        if usage == Usage::Over {
            if let Some(r) = received {
                if !self.in_overuse {
                    self.episode_at_ceiling = self.near_ceiling(now).is_some();
                    self.episode_peak = None;
                }
                if self.loss > LOW_LOSS {
                    self.note_congestion(now, r);
                }
                let factor = if self.loss > LOW_LOSS {
                    DECREASE
                } else {
                    GENTLE_DECREASE
                };
                // Once per episode at once, then (without loss) at most every second while
                // it lasts: what the subscriber receives falls as the allocator sheds
                // layers, and backing off from that on every report would spiral a false
                // alarm down to the floor.
                // With loss the path is really overflowing: every step may cut again.
                let first = !self.in_overuse;
                let repeat = if self.loss > LOW_LOSS {
                    STEP
                } else {
                    OVERUSE_REPEAT
                };
                let spaced = self
                    .last_decrease
                    .is_none_or(|at| now.saturating_duration_since(at) >= repeat);
                self.in_overuse = true;
                if first || spaced {
                    self.last_change = Some(now);
                    self.last_decrease = Some(now);
                    // Delay alone never takes the estimate under GENTLE_FLOOR: once videos are
                    // paused, what arrives is only audio, and a busy machine's lasting jitter
                    // would otherwise hold every video paused.
                    let floor = if self.loss > LOW_LOSS {
                        0.0
                    } else {
                        GENTLE_FLOOR
                    };
                    return self.target.min((r * factor).max(floor));
                }
            }
            return self.target;
        }
        self.in_overuse = false;
        if !self.may_change(now) {
            return self.target;
        }
        if self.loss > HIGH_LOSS {
            self.last_change = Some(now);
            return self.target * (1.0 - 0.5 * self.loss);
        }
        if self.loss >= LOW_LOSS {
            return self.target;
        }
        let elapsed = self
            .last_change
            .map_or(STEP, |at| now.saturating_duration_since(at))
            .min(Duration::from_secs(1));
        self.last_change = Some(now);
        let careful = self.near_ceiling(now);
        let growth = if self.congestion_seen {
            GROWTH_PER_SECOND
        } else {
            STARTUP_GROWTH_PER_SECOND
        };
        let raised = if let Some(ceiling) = careful {
            // Up to the congestion point (what the path carried then), not past it while it
            // is fresh.
            (self.target + ADDITIVE_STEP).min(ceiling.max(self.target))
        } else {
            self.target * growth.powf(elapsed.as_secs_f64())
        };
        match received {
            Some(r) => raised.min(
                (r * MAX_OVER_RECEIVED)
                    .max(RECEIVED_CAP_FLOOR)
                    .max(self.target),
            ),
            None => raised,
        }
    }
}

impl BandwidthEstimator for DownlinkEstimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let mut usage = self.detector.usage();
        for report in reports {
            if report.arrived {
                self.received.add(now, report.size);
            }
            if let Some(trend) = self.slope.accumulate(report) {
                // As the GCC draft's detector does (and libwebrtc's): the filtered offset
                // times the number of deltas seen (at most 60) is what meets the threshold;
                // rtc's detector compares the bare offset, which a 300 ms queue never lifts
                // over its 12.5 ms.
                self.deltas = (self.deltas + 1).min(MAX_DELTAS);
                usage = self
                    .detector
                    .update(trend.at, trend.estimate_ms * f64::from(self.deltas));
            }
        }
        let lost = reports.iter().filter(|r| !r.arrived).count();
        let sample = lost as f64 / reports.len() as f64;
        self.loss = 0.7 * self.loss + 0.3 * sample;
        let received = self.received.rate_bits_per_second(now);
        self.target = self
            .next_target(now, usage, received)
            .clamp(MIN_ESTIMATE, MAX_ESTIMATE);
        tracing::trace!(
            ?usage,
            loss = self.loss,
            ?received,
            target = self.target,
            trend = self.slope.estimate_ms(),
            threshold = self.detector.threshold_ms(),
            "downlink estimate"
        );
        let congested = self.fresh_ceiling(now).is_some();
        self.shared.set(self.target, congested);
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }

    fn stats(&self) -> EstimatorStats {
        let mut stats = EstimatorStats::default();
        stats.packet_loss = Some(self.loss);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    /// Runs `seconds` of a sender that follows the estimate (up to 1.2 Mbit/s, packets of
    /// 1,200 B) through a path of `capacity` bit/s with 300 ms of queue (what does not fit
    /// is lost), with feedback every 50 ms that reports the packets arrived by then (a
    /// lost one at once). Returns the time at the end and the highest estimate on the way.
    fn run(
        e: &mut DownlinkEstimator,
        start: Instant,
        seconds: u64,
        capacity: f64,
    ) -> (Instant, f64) {
        let size = 1200usize;
        let mut now = start;
        let mut queue_free_at = start;
        let mut batch = Vec::new();
        let mut id = 0u64;
        let mut highest: f64 = 0.0;
        let end = start + Duration::from_secs(seconds);
        while now < end {
            let offered = e.target_bitrate().min(1_200_000.0);
            let interval = Duration::from_secs_f64(size as f64 * 8.0 / offered);
            let service = Duration::from_secs_f64(size as f64 * 8.0 / capacity);
            let begin = queue_free_at.max(now);
            let arrived = begin.saturating_duration_since(now) < Duration::from_millis(300);
            if arrived {
                queue_free_at = begin + service;
            }
            id += 1;
            let ready_at = if arrived { begin + service } else { now };
            batch.push((
                ready_at,
                PacketReport {
                    ssrc: 1,
                    id,
                    rtp_sequence_number: id as u16,
                    is_twcc: true,
                    twcc_sequence_number: id as u16,
                    size,
                    arrived,
                    departure: now,
                    arrival: arrived.then(|| (begin + service).saturating_duration_since(start)),
                    ecn: Ecn::default(),
                },
            ));
            let before = now;
            now += interval;
            if (now - start).as_millis() / 50 != (before - start).as_millis() / 50 {
                let (ready, queued): (Vec<_>, Vec<_>) =
                    batch.drain(..).partition(|(at, _)| *at <= now);
                batch = queued;
                let reports: Vec<PacketReport> = ready.into_iter().map(|(_, r)| r).collect();
                e.on_reports(now, &reports);
                highest = highest.max(e.target_bitrate());
            }
        }
        (now, highest)
    }

    #[test]
    fn a_narrow_path_brings_the_estimate_down_and_a_wide_one_back_up() {
        let shared = SharedEstimate::default();
        assert_eq!(shared.get(), None, "nothing before feedback");
        let mut e = DownlinkEstimator::new(shared.clone());
        let t0 = Instant::now();
        // 960 kbit/s offered into 300 kbit/s.
        let (t, _) = run(&mut e, t0, 10, 300_000.0);
        let narrow = shared.get().expect("an estimate");
        assert!(
            (150_000..400_000).contains(&narrow),
            "estimate on a 300 kbit/s path: {narrow}"
        );
        // The path stays narrow: the estimate does not probe past what it carried (each
        // probe would cost the subscriber's audio a burst of loss).
        let (t, highest) = run(&mut e, t, 10, 300_000.0);
        assert!(
            highest < 345_000.0,
            "estimate past a fresh congestion point: {highest}"
        );
        // The path widens to 10 Mbit/s: once the congestion point is forgotten (20 s
        // after the path last overflowed), the estimate finds the offered rate within
        // seconds.
        run(&mut e, t, 25, 10_000_000.0);
        let wide = shared.get().expect("an estimate");
        assert!(
            wide > 1_500_000,
            "estimate after the limit is lifted: {wide}"
        );
        // 4 × the 1.2 Mbit/s that arrive (the rate window reads them ~10 % high).
        assert!(
            wide <= 6_000_000,
            "bounded by 4 × the received rate: {wide}"
        );
    }
}
