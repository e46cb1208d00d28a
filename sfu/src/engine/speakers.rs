//! A room's active speakers: audio levels recorded as the room forwards audio, a tick
//! every [`SPEAKER_TICK`] while the room has audio, and an `ActiveSpeakers` event to
//! every participant when the list changes (the detection itself is
//! [`crate::speaker::SpeakerDetector`]).

use std::collections::HashMap;

use super::ctx::Ctx;
use super::io::{ParticipantKey, RoomKey, TimerKey};
use super::participant::Participant;
use crate::speaker::{SpeakerDetector, SPEAKER_TICK};
use crate::types::{ActiveSpeaker, SfuEvent};

/// The speaker state of one room.
#[derive(Debug, Default)]
pub(crate) struct RoomSpeakers {
    detector: SpeakerDetector<ParticipantKey>,
    ticking: bool,
    /// The loudest speaker of the last report (the allocator serves its video first).
    loudest: Option<ParticipantKey>,
}

impl RoomSpeakers {
    /// A packet of `publisher`'s audio carried `level_dbov`.
    pub(crate) fn record(&mut self, publisher: ParticipantKey, level_dbov: u8) {
        self.detector.record(publisher, level_dbov);
    }

    /// An audio track was published: the room starts ticking if it was not.
    pub(crate) fn audio_published(&mut self, ctx: &mut Ctx<'_>, room: RoomKey) {
        if !self.ticking {
            self.ticking = true;
            ctx.timers
                .schedule(TimerKey::Speakers(room), Some(ctx.now + SPEAKER_TICK));
        }
    }

    /// The loudest speaker last reported, if anyone speaks.
    pub(crate) fn loudest(&self) -> Option<ParticipantKey> {
        self.loudest
    }

    /// `publisher` publishes no audio any more: it stops speaking at the next tick.
    pub(crate) fn audio_ended(&mut self, publisher: ParticipantKey) {
        self.detector.remove(publisher);
    }

    /// The tick: reports a changed list of speakers to everyone in the room, and schedules
    /// the next tick while there is anything to watch (`room_has_audio`, or a speaker still
    /// to be reported silent).
    pub(crate) fn due(
        &mut self,
        ctx: &mut Ctx<'_>,
        room: RoomKey,
        participants: &HashMap<ParticipantKey, Participant>,
        room_has_audio: bool,
    ) {
        if let Some(list) = self.detector.tick(ctx.now) {
            self.loudest = list.first().map(|s| s.key);
            let speakers: Vec<ActiveSpeaker> = list
                .iter()
                .filter_map(|s| {
                    participants.get(&s.key).map(|p| ActiveSpeaker {
                        participant_id: p.id.clone(),
                        level: s.level,
                    })
                })
                .collect();
            ctx.counters.speakers_reported();
            for key in participants.keys() {
                ctx.out.event(
                    *key,
                    SfuEvent::ActiveSpeakers {
                        speakers: speakers.clone(),
                    },
                );
            }
        }
        self.ticking = room_has_audio || !self.detector.is_idle();
        let next = self.ticking.then(|| ctx.now + SPEAKER_TICK);
        ctx.timers.schedule(TimerKey::Speakers(room), next);
    }

    /// The room closes: its timer goes.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, room: RoomKey) {
        ctx.timers.remove(TimerKey::Speakers(room));
        *self = RoomSpeakers::default();
    }
}
