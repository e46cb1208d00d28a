//! Pure simulcast decisions: which layer a packet belongs to, which layer a subscriber
//! leg forwards and when it may move to another one, and which layer the size a video is
//! shown at calls for. No sockets, no rtc objects.
//!
//! A publisher sends up to three encodings of one camera (rid `q`, `h`, `f`: quarter, half
//! and full resolution); every subscriber leg forwards exactly one of them. A leg moves
//! from one layer to another only at a keyframe of the new one (the decoder cannot
//! continue one layer's frames with another's), and keeps forwarding the old layer until
//! that keyframe arrives, so the picture never stops during a switch. A leg with nothing
//! in flight starts with the next packet and asks for a keyframe. Sequence numbers and timestamps stay continuous
//! across the switch ([`crate::forward::LegRewriter`] sees a new source).

use std::time::{Duration, Instant};

/// A layer of a published video, 0 = the lowest. A track without simulcast has one layer, 0.
pub type Layer = u8;

/// Most layers a track has (rid q, h, f).
pub const MAX_LAYERS: usize = 3;

/// The layer a rid names. Browsers' rids are the application's own choice; the usual ones
/// (`q`/`h`/`f`, `l`/`m`/`h`... as LiveKit and mediasoup clients use) are recognised, any
/// other rid takes its position in the publisher's `a=simulcast` order (lowest first).
pub fn layer_of_rid(rid: &str, position: usize) -> Layer {
    match rid {
        "q" | "l" | "low" | "0" => 0,
        "h" | "m" | "mid" | "1" => 1,
        "f" | "hi" | "high" | "2" => 2,
        _ => position.min(MAX_LAYERS - 1) as Layer,
    }
}

/// What a leg does with a packet of some layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Forward it (the leg's current layer).
    Forward,
    /// Forward it: the leg moved to this layer at this keyframe.
    Switched,
    /// Not for this leg.
    Drop,
}

/// The layer one subscriber leg forwards (`current`) and the one it should forward
/// (`target`, set by the allocator; `None` = the video is paused for this subscriber).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerSwitch {
    current: Option<Layer>,
    target: Option<Layer>,
}

impl LayerSwitch {
    /// A leg that forwards nothing until a target is set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The layer being forwarded, if any.
    pub fn current(&self) -> Option<Layer> {
        self.current
    }

    /// The layer the leg should forward, if any.
    pub fn target(&self) -> Option<Layer> {
        self.target
    }

    /// Sets the target; returns whether it changed. Pausing takes effect at once.
    pub fn set_target(&mut self, target: Option<Layer>) -> bool {
        if target.is_none() {
            self.current = None;
        }
        let changed = self.target != target;
        self.target = target;
        changed
    }

    /// Forgets the current layer: the next packet forwarded must start a keyframe of the
    /// target (after a pause, or when the publisher stopped sending the current layer).
    pub fn restart(&mut self) {
        self.current = None;
    }

    /// The layer whose keyframe the leg waits for, if it waits for one.
    pub fn awaiting_keyframe(&self) -> Option<Layer> {
        self.target.filter(|t| self.current != Some(*t))
    }

    /// Decides about one packet of `layer`; `keyframe` says whether it starts one.
    pub fn pick(&mut self, layer: Layer, keyframe: bool) -> Pick {
        let Some(target) = self.target else {
            return Pick::Drop;
        };
        if self.current == Some(layer) {
            // Its own layer, also while it waits for the target's keyframe.
            return Pick::Forward;
        }
        if layer == target && (keyframe || self.current.is_none()) {
            // A leg with nothing in flight (new, or resumed after a pause) starts at once:
            // the subscriber's decoder waits for the keyframe the caller then asks for.
            // Only a move from one layer to another must wait for a keyframe, because
            // the decoder cannot continue one layer's frames with another's.
            self.current = Some(target);
            return Pick::Switched;
        }
        Pick::Drop
    }
}

/// What is known of one layer of a published video.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerInfo {
    /// Its layer number.
    pub layer: Layer,
    /// Frame size from its last keyframe (0 × 0: unknown).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Bitrate measured over the last second (bits per second; 0: not arriving).
    pub bitrate: u64,
    /// What forwarding it may cost (its recent peak rate, see [`BitrateMeter::cost`]).
    pub cost: u64,
}

/// The lowest layer whose frames are at least as large as the size a subscriber shows the
/// video at (CSS size × device pixel ratio, as reported); the top layer when no layer is
/// that large, when the size is unknown, or when the layers' sizes are unknown. Layers are
/// ascending. A layer within 10 % of the wanted size counts as large enough: a 360-pixel
/// layer serves a 380-pixel tile without visible loss, and saves the next layer's bitrate.
pub fn layer_for_size(layers: &[LayerInfo], shown: Option<(u32, u32)>) -> Option<Layer> {
    let top = layers.last()?.layer;
    let Some((w, h)) = shown else {
        return Some(top);
    };
    layers
        .iter()
        .find(|l| {
            l.width > 0
                && l.height > 0
                && u64::from(l.width) * 10 >= u64::from(w) * 9
                && u64::from(l.height) * 10 >= u64::from(h) * 9
        })
        .map(|l| l.layer)
        .or(Some(top))
}

/// Bits per second of one layer over a sliding window of one second, in quarter-second
/// buckets (cheap per packet: one addition), and its recent peak.
#[derive(Clone, Debug, Default)]
pub struct BitrateMeter {
    buckets: [u64; 4],
    /// Start of the current bucket.
    bucket_start: Option<Instant>,
    current: usize,
    /// The highest one-second rate lately, halving every [`PEAK_HALF_LIFE`].
    peak: f64,
    peak_at: Option<Instant>,
}

/// How fast a layer's remembered peak rate fades.
pub const PEAK_HALF_LIFE: Duration = Duration::from_secs(4);

const BUCKET: Duration = Duration::from_millis(250);

impl BitrateMeter {
    /// Counts `bytes` arriving at `now`.
    pub fn record(&mut self, now: Instant, bytes: usize) {
        self.roll(now);
        self.buckets[self.current] += bytes as u64;
    }

    /// Bits per second over the last second (the current bucket included).
    pub fn bitrate(&mut self, now: Instant) -> u64 {
        self.roll(now);
        self.buckets.iter().sum::<u64>() * 8
    }

    /// What forwarding this layer may cost: its rate now, or its recent peak if that is
    /// higher. A layer whose encoder is starved for a moment (a busy publisher) measures
    /// cheap, and would otherwise be chosen for a narrow downlink just before its next
    /// keyframe arrives at full size.
    pub fn cost(&mut self, now: Instant) -> u64 {
        let rate = self.bitrate(now) as f64;
        let decayed = match self.peak_at {
            Some(at) => {
                let halvings =
                    now.saturating_duration_since(at).as_secs_f64() / PEAK_HALF_LIFE.as_secs_f64();
                self.peak * 0.5f64.powf(halvings)
            }
            None => 0.0,
        };
        if rate >= decayed {
            self.peak = rate;
            self.peak_at = Some(now);
        }
        rate.max(decayed) as u64
    }

    fn roll(&mut self, now: Instant) {
        let Some(start) = self.bucket_start else {
            self.bucket_start = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < BUCKET {
            return;
        }
        let steps = (elapsed.as_millis() / BUCKET.as_millis()) as usize;
        for _ in 0..steps.min(self.buckets.len()) {
            self.current = (self.current + 1) % self.buckets.len();
            self.buckets[self.current] = 0;
        }
        self.bucket_start = Some(start + BUCKET * steps as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rids_name_layers() {
        assert_eq!(layer_of_rid("q", 2), 0);
        assert_eq!(layer_of_rid("h", 0), 1);
        assert_eq!(layer_of_rid("f", 0), 2);
        assert_eq!(layer_of_rid("lo-res", 1), 1);
        assert_eq!(layer_of_rid("x", 7), 2);
    }

    #[test]
    fn a_leg_switches_only_at_a_keyframe_of_the_target() {
        let mut s = LayerSwitch::new();
        assert_eq!(s.pick(2, true), Pick::Drop, "no target yet: nothing");
        s.set_target(Some(2));
        assert_eq!(s.awaiting_keyframe(), Some(2));
        assert_eq!(
            s.pick(0, true),
            Pick::Drop,
            "other layers are not forwarded"
        );
        assert_eq!(
            s.pick(2, false),
            Pick::Switched,
            "a fresh leg starts at once"
        );
        assert_eq!(s.pick(2, false), Pick::Forward);
        assert_eq!(s.awaiting_keyframe(), None);

        // Down to layer 0: layer 2 keeps flowing until layer 0 has a keyframe.
        assert!(s.set_target(Some(0)));
        assert!(!s.set_target(Some(0)));
        assert_eq!(s.awaiting_keyframe(), Some(0));
        assert_eq!(s.pick(2, false), Pick::Forward);
        assert_eq!(s.pick(0, false), Pick::Drop);
        assert_eq!(
            s.pick(1, true),
            Pick::Drop,
            "a keyframe of another layer is no use"
        );
        assert_eq!(s.pick(0, true), Pick::Switched);
        assert_eq!(
            s.pick(2, true),
            Pick::Drop,
            "the old layer stops at the switch"
        );
        assert_eq!(s.pick(0, false), Pick::Forward);
        assert_eq!(s.current(), Some(0));
    }

    #[test]
    fn pausing_stops_at_once_and_resuming_starts_at_once() {
        let mut s = LayerSwitch::new();
        s.set_target(Some(1));
        assert_eq!(s.pick(1, true), Pick::Switched);
        s.set_target(None);
        assert_eq!(s.pick(1, false), Pick::Drop);
        assert_eq!(s.pick(1, true), Pick::Drop);
        assert_eq!(s.current(), None);
        s.set_target(Some(1));
        assert_eq!(s.pick(0, true), Pick::Drop);
        assert_eq!(s.pick(1, false), Pick::Switched);
        s.restart();
        assert_eq!(s.awaiting_keyframe(), Some(1));
        assert_eq!(s.pick(1, false), Pick::Switched);
    }

    fn layers() -> Vec<LayerInfo> {
        [(320, 180), (640, 360), (1280, 720)]
            .iter()
            .enumerate()
            .map(|(i, &(width, height))| LayerInfo {
                layer: i as Layer,
                width,
                height,
                bitrate: 100_000 << i,
                cost: 100_000 << i,
            })
            .collect()
    }

    #[test]
    fn the_shown_size_picks_the_smallest_layer_that_covers_it() {
        let l = layers();
        assert_eq!(layer_for_size(&l, Some((160, 90))), Some(0));
        assert_eq!(layer_for_size(&l, Some((320, 180))), Some(0));
        assert_eq!(layer_for_size(&l, Some((350, 190))), Some(0), "within 10 %");
        assert_eq!(layer_for_size(&l, Some((400, 225))), Some(1));
        assert_eq!(layer_for_size(&l, Some((1280, 720))), Some(2));
        assert_eq!(
            layer_for_size(&l, Some((1920, 1080))),
            Some(2),
            "top at most"
        );
        assert_eq!(layer_for_size(&l, None), Some(2), "unknown size: top");
        let unknown: Vec<LayerInfo> = l
            .iter()
            .map(|x| LayerInfo {
                width: 0,
                height: 0,
                ..*x
            })
            .collect();
        assert_eq!(layer_for_size(&unknown, Some((160, 90))), Some(2));
        assert_eq!(layer_for_size(&[], Some((160, 90))), None);
    }

    #[test]
    fn the_meter_measures_the_last_second() {
        let t0 = Instant::now();
        let mut m = BitrateMeter::default();
        for i in 0..100 {
            m.record(t0 + Duration::from_millis(i * 10), 1250); // 1 Mbit/s
        }
        let rate = m.bitrate(t0 + Duration::from_millis(999));
        assert!((900_000..=1_100_000).contains(&rate), "{rate}");
        assert_eq!(
            m.bitrate(t0 + Duration::from_secs(3)),
            0,
            "silence empties it"
        );
    }
}
