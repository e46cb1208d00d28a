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
use super::participant::Participant;
use super::publication::Tracks;
use super::quality::record_report;
use super::speakers::RoomSpeakers;
use crate::forward::Skip;
use crate::keyframe::{starts_keyframe, vp8_keyframe_size};
use crate::rtcp::is_keyframe_request;
use crate::simulcast::{Layer, Pick, MAX_LAYERS};
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
                        self.request_keyframe_for(ctx, key, tk);
                    }
                }
                _ => {}
            }
        }
    }

    /// Forwards one RTP packet of `publisher`'s track `source_track_id` to every leg that
    /// forwards its layer (all legs, for audio).
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
            tracing::trace!(
                source_track_id,
                ssrc = packet.header.ssrc,
                "RTP of an unknown track"
            );
            return;
        };
        let Some(t) = tracks.get_mut(&tk) else { return };
        let (ssrc, seq) = (packet.header.ssrc, packet.header.sequence_number);
        let index = match t.layer_index(ssrc, ctx.now) {
            Some(index) => index,
            None if t.is_simulcast() => {
                // A layer rtc mapped without an open event (the publisher renegotiated, or
                // restarted an encoding): learn its SSRC from its rid.
                let rid = participants
                    .get_mut(&publisher)
                    .and_then(|p| p.publisher.rid_of(t.receiver, ssrc));
                let Some(rid) = rid else {
                    tracing::trace!(ssrc, "RTP of a simulcast track with an unknown SSRC");
                    return;
                };
                t.add_layer(rid, ssrc);
                let Some(index) = t.layer_index(ssrc, ctx.now) else {
                    return;
                };
                index
            }
            None => return,
        };
        t.record_uplink(index, ssrc, seq);
        let video = t.info.kind == MediaKind::Video;
        let keyframe =
            video && starts_keyframe(&t.codec.mime_type, &packet.payload).unwrap_or(true);
        let layer = &mut t.layers[index];
        if !layer.arrivals.first_time(ssrc, seq) {
            ctx.counters.duplicate_dropped();
            return;
        }
        layer
            .meter
            .record(ctx.now, packet.header.marshal_size() + packet.payload.len());
        if keyframe {
            if let Some((w, h)) = vp8_keyframe_size(&packet.payload) {
                (layer.width, layer.height) = (w, h);
            }
        }
        let layer_no = layer.layer;
        if let Some(level) = t
            .audio_level_ext
            .and_then(|id| packet.header.get_extension(id))
            .and_then(|data| level_from_extension(&data))
        {
            speakers.record(publisher, level);
        }
        let mut packet = Some(packet);
        // Layers some leg waits for a keyframe of (bit per layer).
        let mut want_keyframe = 0u8;
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
            if video {
                match leg.switch.pick(layer_no, keyframe) {
                    Pick::Drop => {
                        if let Some(l) = leg.switch.awaiting_keyframe() {
                            want_keyframe |= 1 << l;
                        }
                        continue;
                    }
                    Pick::Switched => {
                        // A new start for the subscriber's decoder: sequence numbers and
                        // timestamps continue from what it last got, whichever layer it was.
                        leg.rewriter.source_changed();
                        ctx.counters.layer_switched();
                        if !keyframe {
                            want_keyframe |= 1 << layer_no; // it can decode from the next one
                        }
                    }
                    Pick::Forward => {}
                }
            }
            // The last leg takes the packet itself, the others a copy (payload shared).
            let copy = if i == last {
                packet.take()
            } else {
                packet.clone()
            };
            let Some(copy) = copy else { break };
            let pt = copy.header.payload_type;
            let out = match leg.rewriter.rewrite(copy, map, ctx.now) {
                Ok(out) => out,
                Err(Skip::BeforeSwitch) => continue,
                Err(Skip::Unmapped) => {
                    if !leg.complained {
                        leg.complained = true;
                        warn!(pt, track_id = %t.info.track_id, "payload type not negotiated on a subscriber leg, dropping");
                    }
                    continue;
                }
            };
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
        for l in 0..MAX_LAYERS as Layer {
            if want_keyframe & (1 << l) != 0 {
                self.request_keyframe(ctx, tk, l);
            }
        }
    }

    /// Asks the publisher of a video track for a keyframe of `layer`: now, or when that
    /// layer's throttle allows (one timer, however many requests arrive meanwhile).
    pub(crate) fn request_keyframe(&mut self, ctx: &mut Ctx<'_>, tk: TrackKey, layer: Layer) {
        let Some(t) = self.tracks.get_mut(&tk) else {
            return;
        };
        if t.info.kind != MediaKind::Video {
            return;
        }
        let Some(l) = t.index_of(layer).map(|i| &mut t.layers[i]) else {
            return;
        };
        if l.keyframe_pending {
            return;
        }
        match l.throttle.poll(ctx.now) {
            Ok(()) => self.send_pli(ctx, tk, layer),
            Err(at) => {
                l.keyframe_pending = true;
                ctx.timers
                    .schedule(TimerKey::Keyframe(self.room, tk, layer), Some(at));
            }
        }
    }

    /// The throttle window of a layer's held-back keyframe request ended.
    pub(crate) fn keyframe_due(&mut self, ctx: &mut Ctx<'_>, tk: TrackKey, layer: Layer) {
        if let Some(l) = self
            .tracks
            .get_mut(&tk)
            .and_then(|t| t.index_of(layer).map(|i| &mut t.layers[i]))
        {
            l.keyframe_pending = false;
            self.request_keyframe(ctx, tk, layer);
        }
    }

    fn send_pli(&mut self, ctx: &mut Ctx<'_>, tk: TrackKey, layer: Layer) {
        let Some(t) = self.tracks.get(&tk) else {
            return;
        };
        let Some(ssrc) = t.index_of(layer).map(|i| t.layers[i].ssrc) else {
            return;
        };
        let receiver = t.receiver;
        let Some(p) = self.participants.get_mut(&t.publisher) else {
            return;
        };
        match p.publisher.write_pli(ctx, receiver, ssrc) {
            Ok(()) => {
                ctx.counters.keyframe_request_sent();
                debug!(ssrc, layer, track_id = %t.info.track_id, "PLI sent to publisher");
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
                leg.switch.restart();
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
        size: Option<(u32, u32)>,
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
        if size.is_some() {
            leg.shown = size;
        }
        if leg.hidden != visible {
            return; // visibility unchanged
        }
        leg.hidden = !visible;
        ctx.counters.video_view_switched(visible);
        if visible {
            leg.switch.restart();
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
            self.request_keyframe_for(ctx, key, tk);
        }
    }

    /// A keyframe of the layer `subscriber`'s leg of `tk` forwards (or waits for).
    fn request_keyframe_for(
        &mut self,
        ctx: &mut Ctx<'_>,
        subscriber: ParticipantKey,
        tk: TrackKey,
    ) {
        let layer = self
            .participants
            .get(&subscriber)
            .and_then(|p| p.legs.get(&tk))
            .and_then(|leg| leg.switch.target().or(leg.switch.current()));
        if let Some(layer) = layer {
            self.request_keyframe(ctx, tk, layer);
        }
    }
}
