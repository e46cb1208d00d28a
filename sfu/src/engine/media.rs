//! The per-packet work of a room: RTP read from a publisher connection is rewritten and
//! written to every subscriber leg of its track (rtc encrypts once per leg), keyframe
//! requests from subscribers become throttled PLIs to the publisher. No queue anywhere:
//! a slow subscriber costs only its own encryption, its datagrams go to the shell.

use rtc::peer_connection::message::RTCMessage;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtp::packet::Packet;
use rtc::shared::marshal::MarshalSize;
use tracing::{debug, warn};

use std::collections::HashMap;

use super::ctx::Ctx;
use super::io::{ParticipantKey, RoomKey, TimerKey, TrackKey};
use super::participant::{Leg, Participant};
use super::publication::Tracks;
use super::quality::record_report;
use super::speakers::RoomSpeakers;
use crate::rtcp::is_keyframe_request;
use crate::speaker::level_from_extension;
use crate::types::{MediaKind, PcRole, SfuEvent};

/// The media side of one room, borrowed from it for one input.
pub(crate) struct Media<'a> {
    /// The room (names its keyframe timers).
    pub room: RoomKey,
    /// Its participants.
    pub participants: &'a mut HashMap<ParticipantKey, Participant>,
    /// Its published tracks.
    pub tracks: &'a mut Tracks,
    /// Its speaker detection (audio levels recorded here).
    pub speakers: &'a mut RoomSpeakers,
}

impl Media<'_> {
    /// Reads every RTP/RTCP message `key`'s connection has for the application.
    pub(crate) fn drain(&mut self, ctx: &mut Ctx<'_>, key: ParticipantKey, role: PcRole) {
        loop {
            let Some(p) = self.participants.get_mut(&key) else {
                return;
            };
            let Some(message) = p.conn(role).poll_media() else {
                return;
            };
            match (role, message) {
                (PcRole::Publisher, RTCMessage::RtpPacket(track_id, packet)) => {
                    self.forward(ctx, key, &track_id, packet);
                }
                (PcRole::Subscriber, RTCMessage::RtcpPacket(track_id, packets)) => {
                    if let Some(p) = self.participants.get_mut(&key) {
                        for report in packets
                            .iter()
                            .filter_map(|p| p.as_any().downcast_ref::<ReceiverReport>())
                        {
                            record_report(ctx, p, self.tracks, report);
                        }
                    }
                    if !packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                        continue;
                    }
                    let tk = self
                        .tracks
                        .iter()
                        .find(|(_, t)| t.info.track_id == track_id)
                        .map(|(k, _)| *k);
                    if let Some(tk) = tk {
                        debug!(participant = key, %track_id, "keyframe request from subscriber");
                        self.request_keyframe(ctx, tk);
                    }
                }
                _ => {}
            }
        }
    }

    /// Forwards one RTP packet of `publisher`'s track `source_track_id` to every leg.
    fn forward(
        &mut self,
        ctx: &mut Ctx<'_>,
        publisher: ParticipantKey,
        source_track_id: &str,
        packet: Packet,
    ) {
        let Media {
            participants,
            tracks,
            speakers,
            ..
        } = self;
        let Some(tk) = participants
            .get(&publisher)
            .and_then(|p| p.published.get(source_track_id).copied())
        else {
            return;
        };
        let Some(t) = tracks.get_mut(&tk) else { return };
        if !t.selector.accept(packet.header.ssrc, ctx.now) {
            return;
        }
        t.uplink.record(packet.header.sequence_number);
        if !t
            .arrivals
            .first_time(packet.header.ssrc, packet.header.sequence_number)
        {
            ctx.counters.duplicate_dropped();
            return;
        }
        if let Some(level) = t
            .audio_level_ext
            .and_then(|id| packet.header.get_extension(id))
            .and_then(|data| level_from_extension(&data))
        {
            speakers.record(publisher, level);
        }
        let mut packet = Some(packet);
        let mut want_keyframe = false;
        let last = t.subscribers.len().saturating_sub(1);
        for (i, sub) in t.subscribers.iter().enumerate() {
            let Some(s) = participants.get_mut(sub) else {
                continue;
            };
            let Some(leg) = s.legs.get_mut(&tk) else {
                continue;
            };
            let Some(map) = leg.mapping.as_ref() else {
                continue;
            };
            if !s.subscriber.can_send() || leg.is_paused(t.info.kind, s.audio_only) {
                continue;
            }
            // The last leg takes the packet itself, the others a copy (payload shared).
            let copy = if i == last {
                packet.take()
            } else {
                packet.clone()
            };
            let Some(copy) = copy else { break };
            let pt = copy.header.payload_type;
            let Some(out) = leg.rewriter.rewrite(copy, map, ctx.now) else {
                if !leg.complained {
                    leg.complained = true;
                    warn!(pt, track_id = %t.info.track_id, "payload type not negotiated on a subscriber leg, dropping");
                }
                continue;
            };
            if !leg.started {
                leg.started = true;
                want_keyframe = true; // the subscriber can only start decoding at a keyframe
            }
            let bytes = (out.header.marshal_size() + out.payload.len()) as u64;
            match s.subscriber.write_rtp(ctx, leg.sender, out) {
                Ok(()) => {
                    leg.written += 1;
                    ctx.metrics.record(ctx.counters, bytes);
                    if !s.media_flowing {
                        s.media_flowing = true;
                        ctx.out.event(*sub, SfuEvent::MediaFlowing);
                    }
                }
                Err(err) => {
                    if !leg.complained {
                        leg.complained = true;
                        warn!(%err, track_id = %t.info.track_id, "write to a subscriber leg failed");
                    }
                }
            }
            s.subscriber.flush(ctx);
        }
        if want_keyframe {
            self.request_keyframe(ctx, tk);
        }
    }

    /// Asks the publisher of a video track for a keyframe: now, or when the throttle
    /// allows (one timer, however many requests arrive meanwhile).
    pub(crate) fn request_keyframe(&mut self, ctx: &mut Ctx<'_>, tk: TrackKey) {
        let Some(t) = self.tracks.get_mut(&tk) else {
            return;
        };
        if t.info.kind != MediaKind::Video || t.keyframe_pending {
            return;
        }
        match t.throttle.poll(ctx.now) {
            Ok(()) => self.send_pli(ctx, tk),
            Err(at) => {
                t.keyframe_pending = true;
                ctx.timers
                    .schedule(TimerKey::Keyframe(self.room, tk), Some(at));
            }
        }
    }

    /// The throttle window of a track's held-back keyframe request ended.
    pub(crate) fn keyframe_due(&mut self, ctx: &mut Ctx<'_>, tk: TrackKey) {
        if let Some(t) = self.tracks.get_mut(&tk) {
            t.keyframe_pending = false;
            self.request_keyframe(ctx, tk);
        }
    }

    fn send_pli(&mut self, ctx: &mut Ctx<'_>, tk: TrackKey) {
        let Some(t) = self.tracks.get(&tk) else {
            return;
        };
        let (receiver, ssrc) = (t.receiver, t.media_ssrc());
        let Some(p) = self.participants.get_mut(&t.publisher) else {
            return;
        };
        match p.publisher.write_pli(ctx, receiver, ssrc) {
            Ok(()) => {
                ctx.counters.keyframe_request_sent();
                debug!(ssrc, track_id = %t.info.track_id, "PLI sent to publisher");
            }
            Err(err) => debug!(%err, "PLI not sent"),
        }
        p.publisher.flush(ctx);
    }

    /// Participant `key` receives audio only, or everything again. Video resumes where the
    /// leg left off (sequence numbers continue, so the browser asks for nothing it missed)
    /// and at a keyframe.
    pub(crate) fn set_audio_only(&mut self, ctx: &mut Ctx<'_>, key: ParticipantKey, enabled: bool) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if p.audio_only == enabled {
            return;
        }
        p.audio_only = enabled;
        ctx.counters.audio_only_switched(enabled);
        if enabled {
            return;
        }
        for (tk, leg) in p.legs.iter_mut() {
            if self
                .tracks
                .get(tk)
                .is_some_and(|t| t.info.kind == MediaKind::Video)
            {
                resume(leg);
            }
        }
    }

    /// Participant `key`'s page shows (or hides) the video announced as `track_id`.
    pub(crate) fn set_video_visible(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
        track_id: &str,
        visible: bool,
    ) {
        let Some(tk) = self
            .tracks
            .iter()
            .find(|(_, t)| t.info.track_id == track_id && t.info.kind == MediaKind::Video)
            .map(|(k, _)| *k)
        else {
            return;
        };
        let Some(leg) = self
            .participants
            .get_mut(&key)
            .and_then(|p| p.legs.get_mut(&tk))
        else {
            return;
        };
        if leg.hidden != visible {
            return; // unchanged
        }
        leg.hidden = !visible;
        ctx.counters.video_view_switched(visible);
        if visible {
            resume(leg);
        }
    }

    /// The keyframe request of participant `key` for `track_id` (own or unknown tracks
    /// are ignored).
    pub(crate) fn request_keyframe_by_id(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
        track_id: &str,
    ) {
        let tk = self
            .tracks
            .iter()
            .find(|(_, t)| t.info.track_id == track_id && t.publisher != key)
            .map(|(k, _)| *k);
        if let Some(tk) = tk {
            self.request_keyframe(ctx, tk);
        }
    }
}

/// A video leg forwards again after a pause (audio only, hidden): its sequence numbers
/// continue where they stopped, so the browser asks for nothing it missed, and its next
/// packet asks the publisher for a keyframe to start decoding from.
fn resume(leg: &mut Leg) {
    leg.rewriter.source_changed();
    leg.started = false;
}
