//! A room on one worker: its participants and published tracks, and everything that
//! changes who receives what — joining, leaving, publishing, unpublishing and the
//! subscriber renegotiation that follows ([`subscribe`]). The per-packet work is in
//! [`super::media`], on the room's participants and tracks borrowed for it; the room's
//! periodic reports in [`super::speakers`] and [`super::quality`].

mod subscribe;

use std::collections::HashMap;

use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tracing::{info, warn};

use super::allocate::RoomAllocation;
use super::connection::Signal;
use super::ctx::Ctx;
use super::io::{ParticipantKey, RoomKey, TimerKey, TrackKey};
use super::media::Media;
use super::participant::Participant;
use super::publication::{Publication, Tracks};
use super::quality::RoomQuality;
use super::speakers::RoomSpeakers;
use crate::error::SfuError;
use crate::forward::{is_primary_media, unique_track_id};
use crate::stats::Gauge;
use crate::types::{IceCandidate, MediaKind, PcRole, SfuEvent, TrackInfo, TrackSource};

/// Most track sources one publisher offer may declare.
const MAX_DECLARED_SOURCES: usize = 32;

/// A room of the worker.
pub(crate) struct Room {
    /// Key given by the facade.
    pub key: RoomKey,
    /// Room id (signaling's), for logs.
    pub id: String,
    participants: HashMap<ParticipantKey, Participant>,
    /// Published tracks in publication order.
    tracks: Tracks,
    next_track: TrackKey,
    speakers: RoomSpeakers,
    quality: RoomQuality,
    allocation: RoomAllocation,
}

impl Room {
    /// An empty room.
    pub(crate) fn new(key: RoomKey, id: String) -> Self {
        Room {
            key,
            id,
            participants: HashMap::new(),
            tracks: Tracks::new(),
            next_track: 1,
            speakers: RoomSpeakers::default(),
            quality: RoomQuality::default(),
            allocation: RoomAllocation,
        }
    }

    /// The participant of that key.
    pub(crate) fn participant(
        &mut self,
        key: ParticipantKey,
    ) -> Result<&mut Participant, SfuError> {
        self.participants.get_mut(&key).ok_or(SfuError::Closed)
    }

    /// The key of the participant with that id, if any (a reload replaces it).
    pub(crate) fn participant_by_id(&self, id: &str) -> Option<ParticipantKey> {
        self.participants
            .values()
            .find(|p| p.id == id)
            .map(|p| p.key)
    }

    /// Published tracks with their publisher id, in publication order.
    pub(crate) fn tracks(&self) -> Vec<(String, TrackInfo)> {
        self.tracks
            .values()
            .map(|t| (t.info.stream_id.clone(), t.info.clone()))
            .collect()
    }

    // ----- membership -------------------------------------------------------------------

    /// Adds a participant; it gets a first subscriber offer if the room has tracks.
    pub(crate) fn add_participant(&mut self, ctx: &mut Ctx<'_>, key: ParticipantKey, id: String) {
        self.participants.insert(key, Participant::new(key, id));
        ctx.counters.add(Gauge::Participants, 1);
        self.quality.start(ctx, self.key);
        self.renegotiate(ctx, key);
    }

    /// Removes a participant: its connections close, its tracks are unpublished (the
    /// others are told and renegotiated), its legs are forgotten.
    pub(crate) fn remove_participant(&mut self, ctx: &mut Ctx<'_>, key: ParticipantKey) -> bool {
        let Some(mut p) = self.participants.remove(&key) else {
            return false;
        };
        p.close(ctx);
        ctx.counters.sub(Gauge::Participants, 1);
        ctx.counters
            .sub(Gauge::ForwardedTracks, p.legs.len() as u64);
        for tk in p.legs.keys() {
            if let Some(t) = self.tracks.get_mut(tk) {
                t.subscribers.retain(|s| *s != key);
            }
        }
        let own: Vec<TrackKey> = p.published.values().copied().collect();
        for tk in own {
            self.unpublish(ctx, tk);
        }
        if self.participants.is_empty() {
            // Nobody left to tell: the room's evaluations stop until someone joins.
            self.speakers.close(ctx, self.key);
            self.quality.close(ctx, self.key);
            self.allocation.close(ctx, self.key);
        }
        info!(room_id = %self.id, participant_id = %p.id, "participant removed");
        true
    }

    /// Closes every connection and forgets everything; returns the participants removed.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>) -> Vec<ParticipantKey> {
        let mut keys = Vec::with_capacity(self.participants.len());
        for (key, mut p) in self.participants.drain() {
            p.close(ctx);
            ctx.counters.sub(Gauge::Participants, 1);
            ctx.counters
                .sub(Gauge::ForwardedTracks, p.legs.len() as u64);
            keys.push(key);
        }
        for (tk, t) in &self.tracks {
            for l in &t.layers {
                ctx.timers
                    .remove(TimerKey::Keyframe(self.key, *tk, l.layer));
            }
        }
        ctx.timers.remove(TimerKey::Allocate(self.key));
        ctx.counters
            .sub(Gauge::PublishedTracks, self.tracks.len() as u64);
        self.tracks.clear();
        self.speakers.close(ctx, self.key);
        self.quality.close(ctx, self.key);
        self.allocation.close(ctx, self.key);
        keys
    }

    // ----- publisher side ---------------------------------------------------------------

    /// Applies a publisher offer; returns the answer.
    pub(crate) fn publisher_offer(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
        sdp: String,
        sources: Vec<(String, TrackSource)>,
    ) -> Result<String, SfuError> {
        let p = self.participants.get_mut(&key).ok_or(SfuError::Closed)?;
        let answer = p.publisher.answer(ctx, sdp)?;
        // Bounded: a client declares its own few tracks, not thousands.
        p.sources = sources.into_iter().take(MAX_DECLARED_SOURCES).collect();
        let ended: Vec<TrackKey> = p
            .published
            .values()
            .copied()
            .filter(|tk| {
                self.tracks
                    .get(tk)
                    .is_some_and(|t| !p.publisher.still_receiving(t.receiver))
            })
            .collect();
        for tk in ended {
            self.unpublish(ctx, tk);
        }
        self.process(ctx, key, PcRole::Publisher);
        Ok(answer)
    }

    /// The first packet of a remote track arrived: publish it (once per track; simulcast
    /// layers of a track open one after the other and are the same publication).
    pub(super) fn track_opened(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
        init: rtc::peer_connection::event::RTCTrackEventInit,
    ) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if let Some(tk) = p.published.get(&init.track_id) {
            // Another simulcast layer of a published track.
            if let (Some(t), Some(rid)) = (self.tracks.get_mut(tk), init.rid.clone()) {
                info!(track_id = %t.info.track_id, %rid, ssrc = init.ssrc, "simulcast layer opened");
                t.add_layer(rid, init.ssrc);
                self.allocation.soon(ctx, self.key);
            }
            return;
        }
        let Some(remote) = p.publisher.remote_track(&init) else {
            return;
        };
        let Some(kind) = remote.kind else {
            warn!(track = %init.track_id, "remote track of unsupported kind ignored");
            return;
        };
        let codec = match remote.codec {
            Some(c) if !c.mime_type.is_empty() => c,
            _ => match remote
                .params
                .codecs
                .iter()
                .find(|c| is_primary_media(&c.mime_type))
            {
                Some(c) => RTCRtpCodec {
                    mime_type: c.mime_type.clone(),
                    clock_rate: c.clock_rate,
                    ..Default::default()
                },
                None => {
                    warn!(track = %init.track_id, "remote track without a known codec ignored");
                    return;
                }
            },
        };
        let tracks = &self.tracks;
        let track_id = unique_track_id(&init.track_id, &p.id, |c| {
            tracks.values().any(|t| t.info.track_id == c)
        });
        let source = p
            .sources
            .get(&init.track_id)
            .copied()
            .unwrap_or(TrackSource::default_for(kind));
        let info = TrackInfo {
            track_id,
            kind,
            source,
            stream_id: p.id.clone(),
        };
        let tk = self.next_track;
        self.next_track += 1;
        p.published.insert(init.track_id.clone(), tk);
        info!(room_id = %self.id, participant_id = %p.id, track_id = %info.track_id, kind = kind.as_str(), mime = %codec.mime_type, ssrc = init.ssrc, "track published");
        let publication = Publication::new(
            key,
            info.clone(),
            init.track_id,
            init.receiver_id,
            codec,
            remote.params,
            init.ssrc,
            init.rid.clone(),
        );
        self.tracks.insert(tk, publication);
        ctx.counters.add(Gauge::PublishedTracks, 1);
        if kind == MediaKind::Audio {
            self.speakers.audio_published(ctx, self.key);
        } else {
            self.allocation.soon(ctx, self.key);
        }
        let publisher_id = info.stream_id.clone();
        for q in self.participants.values() {
            ctx.out.event(
                q.key,
                SfuEvent::TrackPublished {
                    participant_id: publisher_id.clone(),
                    track: info.clone(),
                },
            );
        }
        self.renegotiate_all_but(ctx, key);
    }

    /// A track is gone (its publisher left or ended it): everyone is told, its receivers
    /// renegotiated.
    pub(super) fn unpublish(&mut self, ctx: &mut Ctx<'_>, tk: TrackKey) {
        let Some(t) = self.tracks.remove(&tk) else {
            return;
        };
        ctx.counters.sub(Gauge::PublishedTracks, 1);
        for l in &t.layers {
            ctx.timers.remove(TimerKey::Keyframe(self.key, tk, l.layer));
        }
        if let Some(p) = self.participants.get_mut(&t.publisher) {
            p.published.remove(&t.source_track_id);
        }
        if t.info.kind == MediaKind::Audio
            && !self
                .tracks
                .values()
                .any(|o| o.publisher == t.publisher && o.info.kind == MediaKind::Audio)
        {
            self.speakers.audio_ended(t.publisher);
        }
        info!(room_id = %self.id, track_id = %t.info.track_id, publisher = %t.info.stream_id, "track unpublished");
        for q in self.participants.values() {
            ctx.out.event(
                q.key,
                SfuEvent::TrackUnpublished {
                    participant_id: t.info.stream_id.clone(),
                    track_id: t.info.track_id.clone(),
                },
            );
        }
        for q in t.subscribers {
            self.renegotiate(ctx, q);
        }
    }

    // ----- candidates -------------------------------------------------------------------

    /// A client candidate for one of `key`'s connections.
    pub(crate) fn add_candidate(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
        role: PcRole,
        c: IceCandidate,
    ) -> Result<(), SfuError> {
        let conn = self.participant(key)?.conn(role);
        conn.add_candidate(ctx, c)?;
        conn.flush(ctx);
        Ok(())
    }

    /// Client candidates of `key`'s connection waiting for its remote description.
    pub(crate) fn pending_candidates(
        &mut self,
        key: ParticipantKey,
        role: PcRole,
    ) -> Result<usize, SfuError> {
        Ok(self.participant(key)?.conn(role).pending_candidates())
    }

    // ----- media ------------------------------------------------------------------------

    fn media(&mut self) -> Media<'_> {
        Media {
            room: self.key,
            participants: &mut self.participants,
            tracks: &mut self.tracks,
            speakers: &mut self.speakers,
        }
    }

    /// Participant `key`'s page shows (or hides) the video `track_id`.
    pub(crate) fn set_video_visible(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
        track_id: &str,
        visible: bool,
        size: Option<(u32, u32)>,
    ) {
        self.media()
            .set_video_visible(ctx, key, track_id, visible, size);
        self.allocation.soon(ctx, self.key);
    }

    /// Participant `key` receives audio only, or everything again.
    pub(crate) fn set_audio_only(&mut self, ctx: &mut Ctx<'_>, key: ParticipantKey, enabled: bool) {
        self.media().set_audio_only(ctx, key, enabled);
        self.allocation.soon(ctx, self.key);
    }

    /// The room's layer allocation (see [`RoomAllocation::due`]).
    pub(crate) fn allocate_due(&mut self, ctx: &mut Ctx<'_>) {
        let loudest = self.speakers.loudest();
        self.allocation.due(
            ctx,
            self.key,
            &mut self.participants,
            &mut self.tracks,
            loudest,
        );
    }

    /// The room's quality evaluation (see [`RoomQuality::due`]).
    pub(crate) fn quality_due(&mut self, ctx: &mut Ctx<'_>) {
        self.quality
            .due(ctx, self.key, &mut self.participants, &mut self.tracks);
    }

    /// The room's speaker tick (see [`RoomSpeakers::due`]).
    pub(crate) fn speakers_due(&mut self, ctx: &mut Ctx<'_>) {
        let has_audio = self
            .tracks
            .values()
            .any(|t| t.info.kind == MediaKind::Audio);
        self.speakers
            .due(ctx, self.key, &self.participants, has_audio);
    }

    /// The throttle window of a track's held-back keyframe request ended.
    pub(crate) fn keyframe_due(
        &mut self,
        ctx: &mut Ctx<'_>,
        tk: TrackKey,
        layer: crate::simulcast::Layer,
    ) {
        self.media().keyframe_due(ctx, tk, layer);
    }

    /// Participant `key` asks for a keyframe of `track_id` (own or unknown: ignored).
    pub(crate) fn request_keyframe_by_id(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
        track_id: &str,
    ) {
        self.media().request_keyframe_by_id(ctx, key, track_id);
    }

    // ----- connection input -------------------------------------------------------------

    /// After a connection of `key` was fed: act on what it signals and reads, then flush
    /// it (datagrams out, deadline in).
    pub(crate) fn process(&mut self, ctx: &mut Ctx<'_>, key: ParticipantKey, role: PcRole) {
        loop {
            let Some(p) = self.participants.get_mut(&key) else {
                return;
            };
            let Some(signal) = p.conn(role).poll_signal(ctx) else {
                break;
            };
            match signal {
                Signal::TrackOpened(init) => self.track_opened(ctx, key, init),
                Signal::TrackClosed(id) => {
                    let tk = self
                        .participants
                        .get(&key)
                        .and_then(|p| p.published.get(&id).copied());
                    if let Some(tk) = tk {
                        self.unpublish(ctx, tk);
                    }
                }
            }
        }
        self.media().drain(ctx, key, role);
        if let Some(p) = self.participants.get_mut(&key) {
            p.conn(role).flush(ctx);
            if role == PcRole::Subscriber && p.estimate_fell() {
                // Congestion: fit the layers now, not at the next pass.
                self.allocation.soon(ctx, self.key);
            }
        }
    }
}
