//! The sans-IO media core of one worker: every peer connection, room and forwarding
//! decision placed on that worker, with no socket, no task, no channel and no clock of
//! its own. Inputs are `(now, command | datagram | timeout)`; outputs are datagrams to
//! send ([`Transmit`]), events for signaling and the next deadline. The socket loop in
//! `crate::worker` is a thin shell around it; tests drive it directly.
//!
//! Demultiplexing: a datagram is routed to its connection by the remote address of the
//! nominated pair when that address is known, otherwise (STUN binding requests) by the
//! local ICE ufrag in the STUN USERNAME. Anything else is dropped and counted.
//!
//! rtc 0.21.1 behaviour the core works around (read in its sources, checked in tests):
//! - configured ICE credentials (`SettingEngine::with_ice_credentials`) are reused on an
//!   ICE restart, so rtc generates them (random, 16 letters) and the core reads each local
//!   description's `a=ice-ufrag`/`a=ice-pwd` for the demultiplexer;
//! - `RTCTrackEvent::OnClose` is never emitted: a track the publisher renegotiates away is
//!   found by its transceiver no longer receiving;
//! - applying an ICE restart drops the selected pair, so nothing leaves the connection
//!   until the new pair is nominated (about one check interval, 50 ms);
//! - inbound PLI/FIR reach the application only through an interceptor that marks them
//!   (`crate::rtcp::FeedbackForwarder`); `a=msid-semantic` is only written into
//!   descriptions made after a remote one.
//!
//! Layers, each using only the ones before it:
//! [`io`] (keys, outputs) ← [`stun`], [`timers`], [`sdp`], [`candidates`] ← [`demux`] ←
//! [`ctx`], [`setup`], [`sections`] ← [`connection`] ← [`publication`] ← [`participant`]
//! ← [`media`] (per packet) ← [`room`] (membership, negotiation) ← [`Core`] (this file).

mod allocate;
/// Bounds on client candidates kept before a remote description; `lib.rs` re-exports
/// its constants once the old engine is gone.
pub(crate) mod candidates;
mod connection;
mod ctx;
mod demux;
mod io;
mod media;
mod participant;
mod publication;
mod quality;
mod room;
mod sdp;
mod sections;
pub(crate) mod setup;
mod speakers;
mod stun;
mod timers;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::crypto::{RTCCryptoProvider, SignatureScheme};
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use tracing::{debug, error, info};

pub(crate) use io::{CoreConfig, ParticipantKey, Peer, RoomKey, Transmit, Transport};

use ctx::Ctx;
use demux::{Demux, DropReason, Route};
use io::{Outputs, TimerKey};
use room::Room;
use timers::TimerHeap;

use crate::error::SfuError;
use crate::stats::{Counters, DatagramDrop, Gauge, PacketMetrics};
use crate::types::{IceCandidate, PcRole, SfuEvent, TrackInfo};

/// A request from signaling (through the facade) to the worker owning the room.
#[derive(Debug)]
pub(crate) enum Command {
    /// Creates the media state of a room on this worker.
    OpenRoom { room: RoomKey, id: String },
    /// Closes every connection of the room and forgets it.
    CloseRoom { room: RoomKey },
    /// Adds a participant (two peer connections, created lazily) to a room.
    AddParticipant {
        room: RoomKey,
        participant: ParticipantKey,
        id: String,
    },
    /// Closes the participant's connections, unpublishes its tracks, renegotiates others.
    RemoveParticipant { participant: ParticipantKey },
    /// The client's publisher offer; the reply is [`Reply::Answer`].
    PublisherOffer {
        participant: ParticipantKey,
        sdp: String,
        /// Declared sources of the client's tracks, by its own track id.
        sources: Vec<(String, crate::types::TrackSource)>,
    },
    /// The client's answer to the last subscriber offer.
    SubscriberAnswer {
        participant: ParticipantKey,
        sdp: String,
    },
    /// A client ICE candidate (buffered, bounded, until the remote description is set).
    AddCandidate {
        participant: ParticipantKey,
        pc: PcRole,
        candidate: IceCandidate,
    },
    /// How many client candidates wait for a remote description; reply [`Reply::Count`].
    PendingCandidates {
        participant: ParticipantKey,
        pc: PcRole,
    },
    /// ICE restart of the subscriber connection (a new offer follows as an event).
    RestartSubscriberIce { participant: ParticipantKey },
    /// The participant asks for a keyframe of a track it receives (throttled PLI).
    RequestKeyframe {
        participant: ParticipantKey,
        track_id: String,
    },
    /// The participant receives audio only (or everything again).
    SetAudioOnly {
        participant: ParticipantKey,
        enabled: bool,
    },
    /// The participant's page shows (or hides) the video `track_id`.
    SetVideoVisible {
        participant: ParticipantKey,
        track_id: String,
        visible: bool,
        /// Size it is shown at (device pixels), if the page said.
        size: Option<(u32, u32)>,
    },
    /// The room's published tracks, `(publisher id, track)`; reply [`Reply::Tracks`].
    Tracks { room: RoomKey },
}

/// The answer to a [`Command`].
#[derive(Debug, PartialEq)]
pub(crate) enum Reply {
    /// Done, nothing to return.
    Done,
    /// The publisher answer SDP.
    Answer(String),
    /// Published tracks in publication order.
    Tracks(Vec<(String, TrackInfo)>),
    /// A count.
    Count(usize),
}

/// Everything of the core a connection or room may touch while handling one input
/// (split from the rooms so both can be borrowed at once).
struct Shared {
    config: CoreConfig,
    /// One DTLS certificate per worker, as browsers and other SFUs do per process: a key
    /// generated per connection cost CPU on every join and memory per connection, and the
    /// fingerprint travels in each SDP anyway.
    certificate: Option<RTCCertificate>,
    counters: Arc<Counters>,
    metrics: PacketMetrics,
    out: Outputs,
    demux: Demux,
    timers: TimerHeap<TimerKey>,
}

impl Shared {
    fn ctx(&mut self, now: Instant) -> Ctx<'_> {
        Ctx {
            now,
            out: &mut self.out,
            demux: &mut self.demux,
            timers: &mut self.timers,
            counters: &self.counters,
            metrics: &self.metrics,
            config: &self.config,
            certificate: self.certificate.as_ref(),
        }
    }
}

/// The state machine of one worker.
pub(crate) struct Core {
    shared: Shared,
    crypto: Option<Arc<dyn RTCCryptoProvider>>,
    rooms: HashMap<RoomKey, Room>,
    /// Which room each participant is in.
    placement: HashMap<ParticipantKey, RoomKey>,
    /// Timers due in the current `handle_timeout` (kept for its capacity).
    due: Vec<TimerKey>,
}

impl Core {
    /// A worker core with no rooms.
    pub(crate) fn new(config: CoreConfig, counters: Arc<Counters>) -> Core {
        let crypto = match rtc::crypto::default_provider() {
            Ok(c) => Some(c),
            Err(err) => {
                error!(%err, "no crypto provider: STUN checks cannot be authenticated, no client can connect");
                None
            }
        };
        let certificate = crypto.as_ref().and_then(|c| {
            let params = CertificateParams::new(vec!["theraroom".to_owned()]).ok()?;
            RTCCertificate::generate(c.crypto(), SignatureScheme::EcdsaP256Sha256, params)
                .map_err(|err| error!(%err, "no worker certificate: connections make their own"))
                .ok()
        });
        Core {
            shared: Shared {
                config,
                certificate,
                counters,
                metrics: PacketMetrics::new(),
                out: Outputs::default(),
                demux: Demux::default(),
                timers: TimerHeap::default(),
            },
            crypto,
            rooms: HashMap::new(),
            placement: HashMap::new(),
            due: Vec::new(),
        }
    }

    /// Applies a command.
    pub(crate) fn handle_command(&mut self, now: Instant, cmd: Command) -> Result<Reply, SfuError> {
        match cmd {
            Command::OpenRoom { room, id } => {
                if let Entry::Vacant(slot) = self.rooms.entry(room) {
                    info!(room_id = %id, "room opened");
                    slot.insert(Room::new(room, id));
                    self.shared.counters.add(Gauge::Rooms, 1);
                }
                Ok(Reply::Done)
            }
            Command::CloseRoom { room } => {
                if let Some(mut r) = self.rooms.remove(&room) {
                    let mut ctx = self.shared.ctx(now);
                    for p in r.close(&mut ctx) {
                        self.placement.remove(&p);
                    }
                    self.shared.counters.sub(Gauge::Rooms, 1);
                    info!(room_id = %r.id, "room closed");
                }
                Ok(Reply::Done)
            }
            Command::AddParticipant {
                room,
                participant,
                id,
            } => self.add_participant(now, room, participant, id),
            Command::RemoveParticipant { participant } => {
                if let Some(room) = self.placement.remove(&participant) {
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.remove_participant(&mut self.shared.ctx(now), participant);
                    }
                }
                Ok(Reply::Done)
            }
            Command::PublisherOffer {
                participant,
                sdp,
                sources,
            } => {
                let (room, mut ctx) = self.room_of(now, participant)?;
                room.publisher_offer(&mut ctx, participant, sdp, sources)
                    .map(Reply::Answer)
            }
            Command::SubscriberAnswer { participant, sdp } => {
                let (room, mut ctx) = self.room_of(now, participant)?;
                room.subscriber_answer(&mut ctx, participant, sdp)
                    .map(|()| Reply::Done)
            }
            Command::AddCandidate {
                participant,
                pc,
                candidate,
            } => {
                let (room, mut ctx) = self.room_of(now, participant)?;
                room.add_candidate(&mut ctx, participant, pc, candidate)
                    .map(|()| Reply::Done)
            }
            Command::PendingCandidates { participant, pc } => {
                let (room, _) = self.room_of(now, participant)?;
                room.pending_candidates(participant, pc).map(Reply::Count)
            }
            Command::RestartSubscriberIce { participant } => {
                let (room, mut ctx) = self.room_of(now, participant)?;
                room.restart_subscriber_ice(&mut ctx, participant)
                    .map(|()| Reply::Done)
            }
            Command::RequestKeyframe {
                participant,
                track_id,
            } => {
                let (room, mut ctx) = self.room_of(now, participant)?;
                room.request_keyframe_by_id(&mut ctx, participant, &track_id);
                Ok(Reply::Done)
            }
            Command::SetAudioOnly {
                participant,
                enabled,
            } => {
                let (room, mut ctx) = self.room_of(now, participant)?;
                room.set_audio_only(&mut ctx, participant, enabled);
                Ok(Reply::Done)
            }
            Command::SetVideoVisible {
                participant,
                track_id,
                visible,
                size,
            } => {
                let (room, mut ctx) = self.room_of(now, participant)?;
                room.set_video_visible(&mut ctx, participant, &track_id, visible, size);
                Ok(Reply::Done)
            }
            Command::Tracks { room } => Ok(Reply::Tracks(
                self.rooms.get(&room).map(Room::tracks).unwrap_or_default(),
            )),
        }
    }

    fn add_participant(
        &mut self,
        now: Instant,
        room: RoomKey,
        participant: ParticipantKey,
        id: String,
    ) -> Result<Reply, SfuError> {
        if self.placement.contains_key(&participant) {
            return Err(SfuError::InvalidState(format!(
                "participant key {participant} already in use"
            )));
        }
        let r = self.rooms.get_mut(&room).ok_or(SfuError::Closed)?;
        let mut ctx = self.shared.ctx(now);
        // A participant joining again under the same id (reload) replaces the old one.
        if let Some(old) = r.participant_by_id(&id) {
            r.remove_participant(&mut ctx, old);
            self.placement.remove(&old);
        }
        info!(room_id = %r.id, participant_id = %id, "participant joined");
        r.add_participant(&mut ctx, participant, id);
        self.placement.insert(participant, room);
        Ok(Reply::Done)
    }

    fn room_of(
        &mut self,
        now: Instant,
        participant: ParticipantKey,
    ) -> Result<(&mut Room, Ctx<'_>), SfuError> {
        let room = self.placement.get(&participant).ok_or(SfuError::Closed)?;
        let r = self.rooms.get_mut(room).ok_or(SfuError::Closed)?;
        Ok((r, self.shared.ctx(now)))
    }

    /// Feeds one received datagram (routed by address, then by STUN ufrag; else dropped
    /// and counted).
    pub(crate) fn handle_datagram(&mut self, now: Instant, from: Peer, data: BytesMut) {
        let route = match &self.crypto {
            Some(c) => self.shared.demux.route(now, from, &data, c.crypto()),
            None => Route::Drop(DropReason::Unauthenticated),
        };
        let conn = match route {
            Route::To(conn) => conn,
            Route::Drop(reason) => {
                self.shared.counters.datagram_dropped(match reason {
                    DropReason::UnknownAddress => DatagramDrop::UnknownAddress,
                    DropReason::UnknownUfrag => DatagramDrop::UnknownUfrag,
                    DropReason::Unauthenticated => DatagramDrop::Unauthenticated,
                });
                return;
            }
        };
        let role = conn.role.role();
        let Ok((room, mut ctx)) = self.room_of(now, conn.participant) else {
            debug!(%from, "datagram for a connection that is gone");
            self.shared
                .counters
                .datagram_dropped(DatagramDrop::UnknownAddress);
            return;
        };
        let Ok(p) = room.participant(conn.participant) else {
            return;
        };
        p.conn(role).handle_datagram(&ctx, from, data);
        room.process(&mut ctx, conn.participant, role);
    }

    /// Fires every timer due at `now` (each at most once per call: a connection that is
    /// due again at once waits for the next call).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        while let Some(key) = self.shared.timers.pop_due(now) {
            due.push(key);
        }
        for key in due.drain(..) {
            match key {
                TimerKey::Conn(conn) => {
                    let role = conn.role.role();
                    let Ok((room, mut ctx)) = self.room_of(now, conn.participant) else {
                        continue;
                    };
                    if let Ok(p) = room.participant(conn.participant) {
                        p.conn(role).handle_timeout(&ctx);
                        room.process(&mut ctx, conn.participant, role);
                    }
                }
                TimerKey::Keyframe(room, track, layer) => {
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.keyframe_due(&mut self.shared.ctx(now), track, layer);
                    }
                }
                TimerKey::Allocate(room) => {
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.allocate_due(&mut self.shared.ctx(now));
                    }
                }
                TimerKey::Speakers(room) => {
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.speakers_due(&mut self.shared.ctx(now));
                    }
                }
                TimerKey::Quality(room) => {
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.quality_due(&mut self.shared.ctx(now));
                    }
                }
            }
        }
        self.due = due;
    }

    /// The earliest deadline of any timer, if any.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.shared.timers.next()
    }

    /// Next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.shared.out.transmits.pop_front()
    }

    /// Next event for a participant's signaling connection.
    pub(crate) fn poll_event(&mut self) -> Option<(ParticipantKey, SfuEvent)> {
        self.shared.out.events.pop_front()
    }

    #[cfg(test)]
    /// Rooms, participants, connection routes and live timers held (all zero once every
    /// room is closed); for tests and diagnostics.
    pub(crate) fn footprint(&self) -> Footprint {
        Footprint {
            rooms: self.rooms.len(),
            participants: self.placement.len(),
            routed_connections: self.shared.demux.connections(),
            bound_addresses: self.shared.demux.bound_addresses(),
            timers: self.shared.timers.len(),
        }
    }
}

#[cfg(test)]
/// What a core holds, counted (see [`Core::footprint`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Rooms open.
    pub rooms: usize,
    /// Participants placed.
    pub participants: usize,
    /// Connections with ICE credentials in the demultiplexer.
    pub routed_connections: usize,
    /// Remote addresses bound to connections.
    pub bound_addresses: usize,
    /// Live timers.
    pub timers: usize,
}
