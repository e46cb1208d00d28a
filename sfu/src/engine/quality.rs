//! A room's connection-quality reports: every [`QUALITY_TICK`] each participant's
//! incoming loss (its published tracks' sequence numbers) and outgoing loss, jitter and
//! round trip (its browser's receiver reports) become a verdict
//! ([`crate::quality::QualityTracker`]); changed verdicts go to everyone in the room as
//! one `ConnectionQuality` event, and a participant new to the room gets everyone's.

use std::collections::HashMap;
use std::time::Duration;

use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::shared::time::SystemInstant;

use super::ctx::Ctx;
use super::io::{ParticipantKey, RoomKey, TimerKey};
use super::participant::Participant;
use super::publication::Tracks;
use crate::quality::{ntp_mid, rtt_from_report, LinkSample, Quality, QualityTracker, QUALITY_TICK};
use crate::stats::Gauge;
use crate::types::{QualityUpdate, SfuEvent};

/// What the room knows about one participant's link between two evaluations.
#[derive(Debug, Default)]
pub(crate) struct Link {
    /// Worst of the receiver reports since the last evaluation (server → client).
    pub downlink: LinkSample,
    /// The verdict, with its hysteresis.
    pub quality: QualityTracker,
    /// This participant has been sent everyone's verdict once.
    pub told: bool,
}

/// Reads one receiver report of the participant's browser about its legs into its link.
pub(crate) fn record_report(
    ctx: &Ctx<'_>,
    participant: &mut Participant,
    tracks: &Tracks,
    report: &ReceiverReport,
) {
    // rtc stamps its sender reports with the wall clock (re-read at every frame), so the
    // report's arrival is read on the wall clock too.
    let now_ntp = ntp_mid(SystemInstant::now(ctx.now).ntp(ctx.now));
    for block in &report.reports {
        let Some((tk, leg)) = participant
            .legs
            .iter_mut()
            .find(|(_, leg)| leg.ssrc == block.ssrc)
        else {
            continue;
        };
        let clock_rate = tracks.get(tk).map_or(0, |t| t.codec.clock_rate);
        let jitter = (clock_rate > 0).then(|| {
            Duration::from_micros(u64::from(block.jitter) * 1_000_000 / u64::from(clock_rate))
        });
        let rtt = rtt_from_report(now_ntp, block.last_sender_report, block.delay);
        let loss = leg
            .loss
            .report(block.last_sequence_number, block.total_lost, leg.written)
            .unwrap_or(0.0);
        let sample = LinkSample { loss, rtt, jitter };
        tracing::trace!(participant = %participant.id, ssrc = block.ssrc, ?sample, "receiver report");
        participant.link.downlink = participant.link.downlink.worst(sample);
    }
}

/// The quality timer of one room.
#[derive(Debug, Default)]
pub(crate) struct RoomQuality {
    ticking: bool,
    /// This room's share of the paused-videos gauge, as last counted.
    paused_counted: u64,
}

impl RoomQuality {
    /// Someone joined: the room evaluates from now on.
    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>, room: RoomKey) {
        if !self.ticking {
            self.ticking = true;
            ctx.timers
                .schedule(TimerKey::Quality(room), Some(ctx.now + QUALITY_TICK));
        }
    }

    /// One evaluation of everyone; the next one is scheduled while anyone is left.
    pub(crate) fn due(
        &mut self,
        ctx: &mut Ctx<'_>,
        room: RoomKey,
        participants: &mut HashMap<ParticipantKey, Participant>,
        tracks: &mut Tracks,
    ) {
        let mut uplink: HashMap<ParticipantKey, f32> = HashMap::new();
        for t in tracks.values_mut() {
            let loss = t.uplink.take_fraction();
            let worst = uplink.entry(t.publisher).or_default();
            *worst = worst.max(loss);
        }
        let mut changed = Vec::new();
        for p in participants.values_mut() {
            let sample = LinkSample {
                loss: uplink.get(&p.key).copied().unwrap_or(0.0),
                ..LinkSample::default()
            }
            .worst(std::mem::take(&mut p.link.downlink));
            let observed = if p.publisher.is_down() || p.subscriber.is_down() {
                Quality::Lost
            } else {
                sample.classify()
            };
            if let Some(q) = p.link.quality.update(observed) {
                ctx.counters.quality_changed(q);
                changed.push(QualityUpdate {
                    participant_id: p.id.clone(),
                    quality: q,
                });
            }
        }
        // Everyone's verdict, for participants new to the room (built only when there is one).
        let everyone: Vec<QualityUpdate> = if participants.values().all(|p| p.link.told) {
            Vec::new()
        } else {
            participants
                .values()
                .map(|p| QualityUpdate {
                    participant_id: p.id.clone(),
                    quality: p.link.quality.current(),
                })
                .collect()
        };
        for p in participants.values_mut() {
            let updates = if p.link.told {
                changed.clone()
            } else {
                p.link.told = true;
                everyone.clone()
            };
            if !updates.is_empty() {
                ctx.out
                    .event(p.key, SfuEvent::ConnectionQuality { updates });
            }
        }
        self.count_paused(ctx, participants, tracks);
        self.ticking = !participants.is_empty();
        let next = self.ticking.then(|| ctx.now + QUALITY_TICK);
        ctx.timers.schedule(TimerKey::Quality(room), next);
    }

    /// Moves the paused-videos gauge by the change of this room's count.
    fn count_paused(
        &mut self,
        ctx: &Ctx<'_>,
        participants: &HashMap<ParticipantKey, Participant>,
        tracks: &Tracks,
    ) {
        let paused = participants
            .values()
            .flat_map(|p| {
                p.legs.iter().filter(move |(tk, leg)| {
                    tracks
                        .get(tk)
                        .is_some_and(|t| leg.is_paused(t.info.kind, p.audio_only))
                })
            })
            .count() as u64;
        if paused > self.paused_counted {
            ctx.counters
                .add(Gauge::PausedVideos, paused - self.paused_counted);
        } else {
            ctx.counters
                .sub(Gauge::PausedVideos, self.paused_counted - paused);
        }
        self.paused_counted = paused;
    }

    /// The room closes (or empties): its timer goes, and its share of the gauge.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, room: RoomKey) {
        ctx.timers.remove(TimerKey::Quality(room));
        ctx.counters.sub(
            Gauge::PausedVideos,
            std::mem::take(&mut self.paused_counted),
        );
        self.ticking = false;
    }
}
