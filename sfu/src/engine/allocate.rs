//! A room's layer allocation: every [`ALLOCATE_EVERY`] while the room has video (and at
//! once after anything that changes what a subscriber should get), each subscriber's
//! video legs get their target layer from its downlink estimate
//! ([`crate::allocation::allocate`]), a video paused or resumed for lack of bandwidth is
//! announced to that subscriber, and each simulcast publisher is told which of its layers
//! anyone needs (dynacast).
//!
//! Dynacast: a layer is needed when some subscriber shows the video at a size that calls
//! for it or for a larger one (the lower layers are where a shrinking downlink falls back
//! to), or forwards it. So the publisher encodes every layer up to the largest one anyone
//! shows, and nothing when nobody shows the video. A layer nobody needs is switched off after
//! [`LAYER_OFF_AFTER`] (a tile resized back and forth does not flap the encoder) and on
//! again at once when someone needs it.

use std::collections::HashMap;
use std::time::Duration;

use super::ctx::Ctx;
use super::io::{ParticipantKey, RoomKey, TimerKey, TrackKey};
use super::participant::Participant;
use super::publication::Tracks;
use crate::allocation::{allocate_with, Demand, Priority};
use crate::simulcast::{layer_for_size, Layer, LayerInfo};
use crate::types::{LayerState, MediaKind, SfuEvent, TrackSource};

/// How often a room's allocation runs.
pub(crate) const ALLOCATE_EVERY: Duration = Duration::from_millis(500);
/// How long a layer nobody needs keeps being encoded.
pub(crate) const LAYER_OFF_AFTER: Duration = Duration::from_secs(3);

/// The allocation timer of one room (the timer heap holds its deadline).
#[derive(Debug, Default)]
pub(crate) struct RoomAllocation;

/// Layers one video needs for one subscriber (bit per layer).
type LayerSet = u8;

impl RoomAllocation {
    /// Runs the allocation at the next timer pass (and keeps it ticking).
    pub(crate) fn soon(&mut self, ctx: &mut Ctx<'_>, room: RoomKey) {
        ctx.timers.schedule(TimerKey::Allocate(room), Some(ctx.now));
    }

    /// The room closes (or empties): the timer goes.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, room: RoomKey) {
        ctx.timers.remove(TimerKey::Allocate(room));
    }

    /// The allocation pass (see the module docs).
    pub(crate) fn due(
        &mut self,
        ctx: &mut Ctx<'_>,
        room: RoomKey,
        participants: &mut HashMap<ParticipantKey, Participant>,
        tracks: &mut Tracks,
        loudest: Option<ParticipantKey>,
    ) {
        let now = ctx.now;
        let mut videos: HashMap<TrackKey, Vec<LayerInfo>> = HashMap::new();
        let mut audio: HashMap<TrackKey, u64> = HashMap::new();
        for (tk, t) in tracks.iter_mut() {
            match t.info.kind {
                MediaKind::Video => {
                    videos.insert(*tk, t.layer_infos(now));
                }
                MediaKind::Audio => {
                    audio.insert(*tk, t.bitrate(now));
                }
            }
        }
        let mut needed: HashMap<TrackKey, LayerSet> = HashMap::new();
        for p in participants.values_mut() {
            allocate_subscriber(ctx, p, tracks, &videos, &audio, loudest, &mut needed);
        }
        dynacast(ctx, tracks, &needed);
        let next = (!videos.is_empty()).then(|| now + ALLOCATE_EVERY);
        ctx.timers.schedule(TimerKey::Allocate(room), next);
    }
}

/// Targets for one subscriber's video legs; records the layers they need.
fn allocate_subscriber(
    ctx: &mut Ctx<'_>,
    p: &mut Participant,
    tracks: &Tracks,
    videos: &HashMap<TrackKey, Vec<LayerInfo>>,
    audio: &HashMap<TrackKey, u64>,
    loudest: Option<ParticipantKey>,
    needed: &mut HashMap<TrackKey, LayerSet>,
) {
    let now = ctx.now;
    let estimate = p.subscriber.estimate();
    let congested = p.subscriber.congested();
    p.allocated_estimate = estimate;
    if let Some(e) = estimate {
        ctx.counters.downlink_estimate(e);
    }
    let audio_bps: u64 = p.legs.keys().filter_map(|tk| audio.get(tk)).sum();
    let mut keys: Vec<TrackKey> = Vec::new();
    let mut demands: Vec<Demand> = Vec::new();
    for (tk, leg) in p.legs.iter_mut() {
        let (Some(layers), Some(t)) = (videos.get(tk), tracks.get(tk)) else {
            continue;
        };
        let wanted = if leg.is_paused(MediaKind::Video, p.audio_only) {
            None
        } else {
            layer_for_size(layers, leg.shown)
        };
        let mut arriving: Vec<(Layer, u64)> = layers
            .iter()
            .filter(|l| l.bitrate > 0)
            .map(|l| (l.layer, l.cost))
            .collect();
        if arriving.is_empty() {
            // Nothing measured yet (a track just opened): its layers cost nothing so far.
            arriving = layers.iter().map(|l| (l.layer, 0)).collect();
        }
        // A larger layer never costs less than a smaller one, whatever was measured.
        for i in 1..arriving.len() {
            arriving[i].1 = arriving[i].1.max(arriving[i - 1].1);
        }
        let priority = if t.info.source == TrackSource::Screen {
            Priority::Screen
        } else if Some(t.publisher) == loudest {
            Priority::Speaker
        } else {
            Priority::Other
        };
        if let Some(w) = wanted {
            // Every layer up to the wanted one: the lower ones are where a shrinking
            // downlink falls back to.
            *needed.entry(*tk).or_default() |= (1u8 << (w + 1)) - 1;
        }
        keys.push(*tk);
        demands.push(Demand {
            priority,
            layers: arriving,
            wanted,
            current: leg.switch.current(),
            ceiling: leg.backoff.ceiling(now),
            resume_blocked: !leg.backoff.may_resume(now),
            bandwidth_paused: leg.bandwidth_paused,
        });
    }
    // Pausing a video needs a congested path (loss), not just a low estimate.
    let targets = allocate_with(estimate, audio_bps, &demands, congested);
    tracing::trace!(participant = %p.id, ?estimate, audio_bps, ?demands, ?targets, "allocation");
    for ((tk, demand), target) in keys.iter().zip(&demands).zip(targets) {
        let Some(leg) = p.legs.get_mut(tk) else {
            continue;
        };
        let before = leg.switch.target();
        if leg.switch.set_target(target) {
            let by_estimate = demand.wanted.is_some_and(|w| target.is_none_or(|t| t < w));
            // Only a path that overflowed makes a lowered layer a failed try; a false
            // alarm of the delay detector does not hold the layer down.
            leg.backoff
                .moved(now, before, target, by_estimate && congested);
            let lower = matches!((leg.switch.current(), target), (Some(c), Some(t)) if t < c);
            if by_estimate && congested && lower {
                // The path overflows now: stop the larger layer at once (a short freeze
                // until the smaller one's keyframe) instead of feeding its queue until then.
                leg.switch.restart();
            }
        }
        if let Some(t) = target {
            *needed.entry(*tk).or_default() |= 1 << t;
        }
        let starved = demand.wanted.is_some() && target.is_none();
        if starved != leg.bandwidth_paused {
            leg.bandwidth_paused = starved;
            ctx.counters.bandwidth_pause_changed(starved);
            if let Some(t) = tracks.get(tk) {
                ctx.out.event(
                    p.key,
                    SfuEvent::VideoPaused {
                        track_id: t.info.track_id.clone(),
                        paused: starved,
                    },
                );
            }
        }
    }
}

/// Tells each simulcast publisher which layers to encode, when that changed.
fn dynacast(ctx: &mut Ctx<'_>, tracks: &mut Tracks, needed: &HashMap<TrackKey, LayerSet>) {
    let now = ctx.now;
    for (tk, t) in tracks.iter_mut() {
        if t.info.kind != MediaKind::Video || !t.is_simulcast() {
            continue;
        }
        let set = needed.get(tk).copied().unwrap_or(0);
        let mut changed = false;
        for l in &mut t.layers {
            let active = if set & (1 << l.layer) != 0 {
                l.unneeded_since = None;
                true
            } else {
                let since = *l.unneeded_since.get_or_insert(now);
                now.saturating_duration_since(since) < LAYER_OFF_AFTER
            };
            changed |= active != l.active;
            l.active = active;
        }
        if changed {
            ctx.counters.publish_layers_sent();
            ctx.out.event(
                t.publisher,
                SfuEvent::PublishLayers {
                    track_id: t.source_track_id.clone(),
                    layers: t
                        .layers
                        .iter()
                        .filter_map(|l| {
                            Some(LayerState {
                                rid: l.rid.clone()?,
                                active: l.active,
                            })
                        })
                        .collect(),
                },
            );
        }
    }
}
