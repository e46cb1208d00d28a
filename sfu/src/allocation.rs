//! Fitting the videos a subscriber receives to its downlink estimate (pure).
//!
//! Audio is never allocated: it always flows, and its bitrate is taken off the budget
//! first. Videos are then served in priority order — screen shares, then the active
//! speaker, then the rest in room order — in two passes: every video gets its lowest
//! layer while the budget lasts (a video that does not fit is paused — on a congested
//! downlink only, see [`allocate_with`] — and the subscriber
//! is told), then videos are raised towards the layer their shown size calls for, again
//! in priority order. A layer above the one a leg forwards must fit with
//! [`UPGRADE_HEADROOM`] to spare, and the one it forwards is kept down to
//! [`KEEP_FACTOR`] of its bitrate, so an estimate hovering at a layer's bitrate does not
//! flip the leg up and down.
//!
//! Raising a layer is how the estimate is probed: a raised layer that the link cannot
//! carry makes the estimate fall, the leg goes back down, and [`UpgradeBackoff`] waits
//! longer before it tries that again.

use std::time::{Duration, Instant};

use crate::simulcast::Layer;

/// A layer above the current one needs its bitrate × this to fit (15 % headroom).
pub const UPGRADE_HEADROOM: f64 = 1.15;
/// The current layer (or a lower one) is kept while its bitrate × this fits: an estimate
/// that backs off a little from what the subscriber receives now does not cost a layer.
pub const KEEP_FACTOR: f64 = 0.9;

/// Which videos are served first when the budget is short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// A screen share: unreadable at a low layer, so served first.
    Screen,
    /// The active speaker's camera.
    Speaker,
    /// Every other camera.
    Other,
}

/// One video a subscriber may receive.
#[derive(Clone, Debug, PartialEq)]
pub struct Demand {
    /// Priority class.
    pub priority: Priority,
    /// Bitrates of the layers the publisher sends, by layer, ascending (a layer that is
    /// not arriving has no entry).
    pub layers: Vec<(Layer, u64)>,
    /// The highest layer worth sending (by the size the video is shown at); `None`: the
    /// subscriber does not show it at all (hidden, audio only).
    pub wanted: Option<Layer>,
    /// The layer the leg forwards now, if any.
    pub current: Option<Layer>,
    /// Layers above this one are not tried yet ([`UpgradeBackoff`]).
    pub ceiling: Option<Layer>,
    /// A paused video may not resume yet: it was resumed lately and the link could not
    /// carry it ([`UpgradeBackoff::may_resume`]).
    pub resume_blocked: bool,
    /// The video is paused because the downlink could not carry it (the subscriber was
    /// told). Such videos come back one per allocation ([`allocate_with`]).
    pub bandwidth_paused: bool,
}

/// The layer each demand gets (same order), `None` = paused. `budget` is the downlink
/// estimate in bits per second (`None`: no estimate, so nothing is limited); `audio` the
/// bitrate of the audio the subscriber receives.
pub fn allocate(budget: Option<u64>, audio: u64, demands: &[Demand]) -> Vec<Option<Layer>> {
    allocate_with(budget, audio, demands, true)
}

/// [`allocate`], where `may_pause: false` gives every shown video at least its lowest
/// layer whatever the budget: a downlink with no sign of congestion (no loss) is no
/// reason to pause a video, and a paused single-layer video could never show that the
/// path carries it.
pub fn allocate_with(
    budget: Option<u64>,
    audio: u64,
    demands: &[Demand],
    may_pause: bool,
) -> Vec<Option<Layer>> {
    let mut out: Vec<Option<Layer>> = vec![None; demands.len()];
    let Some(budget) = budget else {
        for (o, d) in out.iter_mut().zip(demands) {
            *o = d.wanted.map(|w| highest_at_most(d, w).unwrap_or(w));
        }
        return out;
    };
    let mut left = budget.saturating_sub(audio) as f64;
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by_key(|&i| demands[i].priority); // stable: room order within a class
    let cost = |d: &Demand, layer: Layer, bitrate: u64| {
        let factor = if d.current.is_some_and(|c| layer > c) || d.current.is_none() && layer > 0 {
            UPGRADE_HEADROOM
        } else {
            KEEP_FACTOR
        };
        bitrate as f64 * factor
    };
    // Pass 1: the lowest layer for everyone, in priority order. Videos paused for
    // bandwidth come back one per call: all at once, they would overflow the link the
    // estimate just recovered on, and pause again together (with the audio's packets
    // lost in between).
    let mut resumed_one = false;
    for &i in &order {
        let d = &demands[i];
        if d.wanted.is_none()
            || d.current.is_none() && d.resume_blocked
            || d.bandwidth_paused && resumed_one
        {
            continue;
        }
        let Some(&(layer, bitrate)) = d.layers.first() else {
            continue;
        };
        // The lowest layer never needs headroom; one already flowing is kept a little
        // under its cost.
        let c = bitrate as f64
            * if d.current.is_some() {
                KEEP_FACTOR
            } else {
                1.0
            };
        if c <= left || !may_pause {
            left = (left - c).max(0.0);
            out[i] = Some(layer);
            resumed_one |= d.bandwidth_paused;
        }
    }
    // Pass 2: raise each towards what it wants, in priority order (a video coming back
    // from a pause for bandwidth stays at its lowest layer this time).
    for &i in &order {
        let d = &demands[i];
        let (Some(wanted), Some(given)) = (d.wanted, out[i]) else {
            continue;
        };
        if d.bandwidth_paused {
            continue;
        }
        let limit = d.ceiling.map_or(wanted, |c| c.min(wanted));
        let given_cost = d.layers.first().map_or(0.0, |&(_, b)| {
            b as f64
                * if d.current.is_some() {
                    KEEP_FACTOR
                } else {
                    1.0
                }
        });
        let best = d
            .layers
            .iter()
            .rev()
            .filter(|&&(l, _)| l > given && l <= limit)
            .find(|&&(l, b)| cost(d, l, b) - given_cost <= left);
        if let Some(&(layer, bitrate)) = best {
            left -= cost(d, layer, bitrate) - given_cost;
            out[i] = Some(layer);
        }
    }
    out
}

/// The highest arriving layer at most `wanted`.
fn highest_at_most(d: &Demand, wanted: Layer) -> Option<Layer> {
    d.layers
        .iter()
        .rev()
        .map(|&(l, _)| l)
        .find(|&l| l <= wanted)
}

/// First wait after a raised layer had to come down again.
pub const BACKOFF_MIN: Duration = Duration::from_secs(4);
/// Longest wait between two tries (a link that recovered is found again within this).
pub const BACKOFF_MAX: Duration = Duration::from_secs(12);
/// A raised layer that held this long was a success: the next failure waits the minimum.
pub const UPGRADE_HELD: Duration = Duration::from_secs(10);

/// Per leg: after a raised layer came down again (the link could not carry it), layers
/// above the current one wait, 4 s, then 8 s, then 12 s at most; a video paused again
/// right after it resumed waits as long before it resumes.
#[derive(Clone, Debug, Default)]
pub struct UpgradeBackoff {
    wait: Duration,
    /// Layers above `held` (`None`: any layer at all) are blocked until `until`.
    until: Option<(Option<Layer>, Instant)>,
    /// When the leg last went up, and to which layer.
    raised: Option<(Layer, Instant)>,
}

impl UpgradeBackoff {
    /// The layer above which nothing is tried now (`None`: nothing is blocked).
    pub fn ceiling(&mut self, now: Instant) -> Option<Layer> {
        self.blocked(now).map(|held| held.unwrap_or(0))
    }

    /// Whether a paused video may resume now.
    pub fn may_resume(&mut self, now: Instant) -> bool {
        !matches!(self.blocked(now), Some(None))
    }

    fn blocked(&mut self, now: Instant) -> Option<Option<Layer>> {
        match self.until {
            Some((held, until)) if now < until => Some(held),
            Some(_) => {
                self.until = None;
                None
            }
            None => None,
        }
    }

    /// The leg's layer moved from `from` to `to` (either may be `None`: paused);
    /// `by_estimate` says whether the estimate decided it (a smaller tile or a hidden one
    /// lowering the layer is no failure of the link).
    pub fn moved(
        &mut self,
        now: Instant,
        from: Option<Layer>,
        to: Option<Layer>,
        by_estimate: bool,
    ) {
        let up = match (from, to) {
            (Some(f), Some(t)) => t > f,
            (None, Some(_)) => true,
            _ => false,
        };
        if up {
            self.raised = to.map(|t| (t, now));
            return;
        }
        // Down (or paused): a failure if the estimate undoes a recent raise.
        if let Some((raised_to, at)) = self.raised.take() {
            let below = to.is_none_or(|t| t < raised_to);
            if by_estimate && below && now.saturating_duration_since(at) < UPGRADE_HELD {
                self.wait = (self.wait * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                self.until = Some((to, now + self.wait));
                return;
            }
        }
        self.wait = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A camera with layers of 150 k, 500 k and 1.5 Mbit/s, shown large.
    fn camera(priority: Priority) -> Demand {
        Demand {
            priority,
            layers: vec![(0, 150_000), (1, 500_000), (2, 1_500_000)],
            wanted: Some(2),
            current: Some(2),
            ceiling: None,
            resume_blocked: false,
            bandwidth_paused: false,
        }
    }

    #[test]
    fn no_estimate_gives_everyone_what_they_show() {
        let mut small = camera(Priority::Other);
        small.wanted = Some(1);
        let mut hidden = camera(Priority::Other);
        hidden.wanted = None;
        let got = allocate(None, 0, &[camera(Priority::Other), small, hidden]);
        assert_eq!(got, vec![Some(2), Some(1), None]);
    }

    #[test]
    fn a_shrinking_estimate_drops_video_by_priority_and_never_audio() {
        // Videos not flowing yet: every layer above the lowest needs its headroom.
        let demands: Vec<Demand> = [Priority::Other, Priority::Speaker, Priority::Screen]
            .into_iter()
            .map(|p| Demand {
                current: None,
                ..camera(p)
            })
            .collect();
        let audio = 3 * 40_000;
        let at = |budget: u64| allocate(Some(budget), audio, &demands);
        assert_eq!(at(10_000_000), vec![Some(2), Some(2), Some(2)]);
        // 2.9 Mbit/s: the screen gets its top layer first, then the speaker; the rest low.
        assert_eq!(at(2_900_000), vec![Some(0), Some(1), Some(2)]);
        assert_eq!(at(3_000_000), vec![Some(1), Some(1), Some(2)]);
        assert_eq!(at(1_000_000), vec![Some(0), Some(0), Some(1)]);
        assert_eq!(at(600_000), vec![Some(0), Some(0), Some(0)]);
        // Not enough for three lowest layers: the rest pause first, then the speaker.
        assert_eq!(at(420_000), vec![None, Some(0), Some(0)]);
        assert_eq!(at(300_000), vec![None, None, Some(0)]);
        // Less than the audio: every video paused, audio still flows (it is not allocated).
        assert_eq!(at(100_000), vec![None, None, None]);
    }

    #[test]
    fn videos_paused_for_bandwidth_come_back_one_at_a_time() {
        let paused = Demand {
            current: None,
            bandwidth_paused: true,
            ..camera(Priority::Other)
        };
        let fresh = Demand {
            current: None,
            ..camera(Priority::Other)
        };
        let demands = vec![paused.clone(), paused.clone(), fresh, paused];
        // Room for every video's lowest layer: one paused video resumes (the first in
        // priority order, at its lowest layer), a new video starts at once (and is raised
        // with what is left); the other paused ones wait for later rounds.
        let got = allocate(Some(800_000), 0, &demands);
        assert_eq!(got, vec![Some(0), None, Some(1), None]);
        assert_eq!(
            allocate_with(Some(800_000), 0, &demands, false),
            got,
            "also once the loss has stopped"
        );
    }

    #[test]
    fn without_congestion_no_video_is_paused() {
        let demands = vec![camera(Priority::Other), camera(Priority::Other)];
        assert_eq!(allocate(Some(200_000), 0, &demands), vec![Some(0), None]);
        assert_eq!(
            allocate_with(Some(200_000), 0, &demands, false),
            vec![Some(0), Some(0)],
            "lowest layers for all, nothing raised"
        );
    }

    #[test]
    fn raising_a_layer_needs_headroom_keeping_it_does_not() {
        let mut d = camera(Priority::Other);
        d.current = Some(1);
        // 1.6 Mbit/s carries layer 2 (1.5 M) but not with 15 % to spare: stay at 1.
        assert_eq!(allocate(Some(1_600_000), 0, &[d.clone()]), vec![Some(1)]);
        assert_eq!(allocate(Some(1_800_000), 0, &[d.clone()]), vec![Some(2)]);
        // Already at 2, 1.6 Mbit/s keeps it.
        d.current = Some(2);
        assert_eq!(allocate(Some(1_600_000), 0, &[d.clone()]), vec![Some(2)]);
        // At 1, it is kept down to 90 % of its bitrate (an estimate that backs off a
        // little from what flows now costs no layer), not below.
        d.current = Some(1);
        assert_eq!(allocate(Some(460_000), 0, &[d.clone()]), vec![Some(1)]);
        assert_eq!(allocate(Some(400_000), 0, &[d]), vec![Some(0)]);
    }

    #[test]
    fn the_shown_size_and_the_backoff_cap_the_layer() {
        let mut d = camera(Priority::Other);
        d.wanted = Some(0);
        assert_eq!(allocate(Some(10_000_000), 0, &[d.clone()]), vec![Some(0)]);
        d.wanted = Some(2);
        d.ceiling = Some(1);
        assert_eq!(allocate(Some(10_000_000), 0, &[d.clone()]), vec![Some(1)]);
        // A publisher that sends only its lowest layer (the others off): that one.
        d.layers.truncate(1);
        d.ceiling = None;
        assert_eq!(allocate(Some(10_000_000), 0, &[d]), vec![Some(0)]);
    }

    #[test]
    fn a_video_paused_again_right_after_resuming_stays_paused_meanwhile() {
        let mut d = camera(Priority::Other);
        d.current = None;
        d.resume_blocked = true;
        assert_eq!(allocate(Some(10_000_000), 0, &[d.clone()]), vec![None]);
        d.current = Some(0);
        assert_eq!(
            allocate(Some(10_000_000), 0, &[d]),
            vec![Some(2)],
            "not paused: free to rise"
        );
    }

    #[test]
    fn a_failed_raise_backs_off_doubling_up_to_the_maximum() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = UpgradeBackoff::default();
        assert_eq!(b.ceiling(t0), None);
        b.moved(t0, Some(0), Some(1), true);
        b.moved(t0 + s(1), Some(1), Some(0), true);
        assert_eq!(b.ceiling(t0 + s(4)), Some(0));
        assert_eq!(b.ceiling(t0 + s(5)), None, "4 s after the failure");
        b.moved(t0 + s(5), Some(0), Some(1), true);
        b.moved(t0 + s(6), Some(1), Some(0), true);
        assert_eq!(b.ceiling(t0 + s(13)), Some(0));
        assert_eq!(b.ceiling(t0 + s(14)), None, "8 s");
        for i in 0..5 {
            let at = t0 + s(20 + i * 20);
            b.moved(at, Some(0), Some(1), true);
            b.moved(at + s(1), Some(1), None, true);
        }
        let last = t0 + s(101);
        assert_eq!(b.ceiling(last + s(11)), Some(0), "capped at 12 s");
        assert!(
            !b.may_resume(last + s(11)),
            "paused again at once: no resuming either"
        );
        assert_eq!(b.ceiling(last + s(12)), None);
        assert!(b.may_resume(last + s(12)));
        // A raise that held for 10 s resets the wait.
        b.moved(last + s(10), Some(0), Some(2), true);
        b.moved(last + s(30), Some(2), Some(1), true);
        assert_eq!(b.ceiling(last + s(30)), None);
        // Lowered for a smaller tile: no failure.
        b.moved(last + s(40), Some(0), Some(2), true);
        b.moved(last + s(41), Some(2), Some(0), false);
        assert_eq!(b.ceiling(last + s(41)), None);
    }
}
