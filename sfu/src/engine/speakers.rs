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
    /// Audio tracks published in the room (ticking stops when none is left and the last
    /// speaker was reported silent).
    audio_tracks: usize,
    ticking: bool,
}

impl RoomSpeakers {
    /// A packet of `publisher`'s audio carried `level_dbov`.
    pub(crate) fn record(&mut self, publisher: ParticipantKey, level_dbov: u8) {
        self.detector.record(publisher, level_dbov);
    }

    /// An audio track was published: the room starts ticking if it was not.
    pub(crate) fn audio_published(&mut self, ctx: &mut Ctx<'_>, room: RoomKey) {
        self.audio_tracks += 1;
        if !self.ticking {
            self.ticking = true;
            ctx.timers
                .schedule(TimerKey::Speakers(room), Some(ctx.now + SPEAKER_TICK));
        }
    }

    /// An audio track of `publisher` is gone; `still_has_audio` when it publishes another.
    pub(crate) fn audio_unpublished(&mut self, publisher: ParticipantKey, still_has_audio: bool) {
        self.audio_tracks = self.audio_tracks.saturating_sub(1);
        if !still_has_audio {
            self.detector.remove(publisher);
        }
    }

    /// The tick: reports a changed list of speakers to everyone in the room, and schedules
    /// the next tick while there is anything to watch.
    pub(crate) fn due(
        &mut self,
        ctx: &mut Ctx<'_>,
        room: RoomKey,
        participants: &HashMap<ParticipantKey, Participant>,
    ) {
        if let Some(list) = self.detector.tick(ctx.now) {
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
        self.ticking = self.audio_tracks > 0 || !self.detector.is_idle();
        let next = self.ticking.then(|| ctx.now + SPEAKER_TICK);
        ctx.timers.schedule(TimerKey::Speakers(room), next);
    }

    /// The room closes: its timer goes.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, room: RoomKey) {
        ctx.timers.remove(TimerKey::Speakers(room));
        *self = RoomSpeakers::default();
    }
}
