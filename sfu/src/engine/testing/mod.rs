//! Client-side `rtc` peers and an in-memory network around a [`Core`], with a simulated
//! clock: datagrams are delivered at once, time jumps to the next deadline when nothing
//! is in flight. No socket anywhere, so tests run anywhere and never flake on timing.

mod alloc;
mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext};

pub(crate) use client::{opus, vp8, Client};

use super::{Command, Core, CoreConfig, ParticipantKey, Peer, Reply, Transport};
use crate::stats::Counters;
use crate::types::{IceCandidate, PcRole, SfuEvent};

/// The server's socket address in every simulation.
pub(crate) fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 100], 3478))
}

/// Decides whether a datagram is lost on its way (`client index`, payload).
pub(crate) type LossFn = Box<dyn FnMut(usize, &[u8]) -> bool>;

/// A core, its clients and the wire between them.
pub(crate) struct Sim {
    /// Simulated time.
    pub now: Instant,
    /// The core under test.
    pub core: Core,
    /// Its counters.
    pub counters: Arc<Counters>,
    /// Client peers.
    pub clients: Vec<Client>,
    /// Every event the core emitted, in order.
    pub events: Vec<(ParticipantKey, SfuEvent)>,
    /// Datagrams the core sent to an address no client has.
    pub stray: Vec<SocketAddr>,
    /// Clients created at these addresses reach the core over ICE-TCP only.
    pub tcp_only: Vec<SocketAddr>,
    /// Packets lost because they went by a transport their client cannot use (UDP to or
    /// from a TCP-only client, TCP to a UDP client).
    pub wrong_transport: usize,
    /// Packets the core sent over TCP.
    pub tcp_transmits: usize,
    /// Track sources the next [`Sim::publisher`] declares with its offer.
    pub sources: Vec<(String, crate::types::TrackSource)>,
    /// Loss on the way client → core.
    pub uplink_loss: Option<LossFn>,
    /// Loss on the way core → client.
    pub downlink_loss: Option<LossFn>,
    /// Subscriber offers are answered automatically.
    pub auto_answer: bool,
    /// Wall-clock time spent inside the core (datagrams, timeouts, draining its output):
    /// for cost figures, never for assertions.
    pub core_busy: Duration,
    /// Heap allocations made inside the core (same calls as `core_busy`).
    pub core_allocations: u64,
}

impl Sim {
    /// A core on [`server_addr`] with one room (key 1, id `room`).
    pub(crate) fn new(ice_lite: bool) -> Sim {
        Sim::with_config(CoreConfig {
            local_addr: server_addr(),
            announced: vec![server_addr()],
            ice_lite,
            ice_tcp: false,
        })
    }

    /// A core with `config` and one room (key 1, id `room`).
    pub(crate) fn with_config(config: CoreConfig) -> Sim {
        let counters = Arc::new(Counters::default());
        let now = Instant::now();
        let mut core = Core::new(config, Arc::clone(&counters));
        core.handle_command(
            now,
            Command::OpenRoom {
                room: 1,
                id: "room".into(),
            },
        )
        .expect("open room");
        Sim {
            now,
            core,
            counters,
            clients: Vec::new(),
            events: Vec::new(),
            stray: Vec::new(),
            tcp_only: Vec::new(),
            wrong_transport: 0,
            tcp_transmits: 0,
            sources: Vec::new(),
            uplink_loss: None,
            downlink_loss: None,
            auto_answer: true,
            core_busy: Duration::ZERO,
            core_allocations: 0,
        }
    }

    /// Adds participant `key` (id `id`) to the room.
    pub(crate) fn join(&mut self, key: ParticipantKey, id: &str) {
        self.join_room(1, key, id);
    }

    /// Adds participant `key` (id `id`) to room `room`, opening it first if needed.
    pub(crate) fn join_room(&mut self, room: u64, key: ParticipantKey, id: &str) {
        let open = Command::OpenRoom {
            room,
            id: format!("room-{room}"),
        };
        self.core.handle_command(self.now, open).expect("open room");
        let cmd = Command::AddParticipant {
            room,
            participant: key,
            id: id.into(),
        };
        assert_eq!(
            self.core.handle_command(self.now, cmd).expect("join"),
            Reply::Done
        );
    }

    /// A client for `key`'s `role` connection at `addr` (over ICE-TCP only when `addr`
    /// is in [`Sim::tcp_only`]).
    fn client(&self, key: ParticipantKey, role: PcRole, addr: SocketAddr) -> Client {
        Client::build(key, role, addr, self.tcp_only.contains(&addr), self.now)
    }

    /// Adds a client for `key`'s subscriber connection at `addr`; returns its index.
    pub(crate) fn subscriber(&mut self, key: ParticipantKey, addr: SocketAddr) -> usize {
        self.clients
            .push(self.client(key, PcRole::Subscriber, addr));
        self.clients.len() - 1
    }

    /// Adds a client publishing one VP8 track (`stream`/`track`) on `key`'s publisher
    /// connection at `addr`, and negotiates it; returns its index.
    pub(crate) fn publisher(
        &mut self,
        key: ParticipantKey,
        addr: SocketAddr,
        stream: &str,
        track: &str,
    ) -> usize {
        self.publish(key, addr, stream, track, RtpCodecKind::Video)
    }

    /// Like [`Sim::publisher`], with one Opus track that carries audio levels.
    pub(crate) fn audio_publisher(
        &mut self,
        key: ParticipantKey,
        addr: SocketAddr,
        stream: &str,
        track: &str,
    ) -> usize {
        self.publish(key, addr, stream, track, RtpCodecKind::Audio)
    }

    /// Adds a client publishing one VP8 track in three simulcast layers (rid q, h, f) on
    /// `key`'s publisher connection at `addr`, and negotiates it; returns its index.
    pub(crate) fn simulcast_publisher(
        &mut self,
        key: ParticipantKey,
        addr: SocketAddr,
        stream: &str,
        track: &str,
    ) -> usize {
        let mut c = self.client(key, PcRole::Publisher, addr);
        let layers = [
            ("q", 0x1000_0001u32),
            ("h", 0x1000_0002),
            ("f", 0x1000_0003),
        ];
        c.layers = layers.iter().map(|&(_, ssrc)| (ssrc, 100, true)).collect();
        let encodings = layers
            .iter()
            .map(|&(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: rid.into(),
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: vp8(),
                ..Default::default()
            })
            .collect();
        let media = MediaStreamTrack::new(
            stream.into(),
            track.into(),
            track.into(),
            RtpCodecKind::Video,
            encodings,
        );
        c.sender = Some(c.pc.add_track(media).expect("client track"));
        self.negotiate_publisher(c)
    }

    fn publish(
        &mut self,
        key: ParticipantKey,
        addr: SocketAddr,
        stream: &str,
        track: &str,
        kind: RtpCodecKind,
    ) -> usize {
        let mut c = self.client(key, PcRole::Publisher, addr);
        c.ssrc = 0x1234_5678;
        let codec = match kind {
            RtpCodecKind::Audio => opus(),
            _ => vp8(),
        };
        let media = MediaStreamTrack::new(
            stream.into(),
            track.into(),
            track.into(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(c.ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let id =
            c.pc.add_transceiver_from_track(
                media,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![stream.into()],
                    send_encodings: vec![],
                }),
            )
            .expect("client track");
        c.sender = c.pc.rtp_transceiver(id).and_then(|t| t.sender());
        self.negotiate_publisher(c)
    }

    /// The publisher client's offer, the core's answer; returns the client's index.
    fn negotiate_publisher(&mut self, mut c: Client) -> usize {
        let key = c.participant;
        let offer = c.pc.create_offer(None).expect("client offer");
        c.pc.set_local_description(self.now, offer.clone())
            .expect("client local");
        let reply = self
            .core
            .handle_command(
                self.now,
                Command::PublisherOffer {
                    participant: key,
                    sdp: offer.sdp,
                    sources: self.sources.clone(),
                },
            )
            .expect("publisher offer accepted");
        let Reply::Answer(answer) = reply else {
            panic!("expected an answer, got {reply:?}");
        };
        c.pc.set_remote_description(
            self.now,
            RTCSessionDescription::answer(answer).expect("answer sdp"),
        )
        .expect("client remote");
        self.clients.push(c);
        self.clients.len() - 1
    }

    fn client_at(&self, addr: SocketAddr) -> Option<usize> {
        self.clients.iter().position(|c| c.external == addr)
    }

    fn client_of(&self, participant: ParticipantKey, role: PcRole) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| c.participant == participant && c.role == role)
    }

    fn on_event(&mut self, key: ParticipantKey, event: SfuEvent) {
        match &event {
            SfuEvent::SubscriberOffer { sdp } if self.auto_answer => {
                if let Some(i) = self.client_of(key, PcRole::Subscriber) {
                    self.answer_offer(i, sdp.clone());
                }
            }
            SfuEvent::IceCandidate { pc, candidate } => {
                if let Some(i) = self.client_of(key, *pc) {
                    let init = RTCIceCandidateInit {
                        candidate: candidate.candidate.clone(),
                        sdp_mid: candidate.sdp_mid.clone(),
                        sdp_mline_index: candidate.sdp_mline_index,
                        username_fragment: candidate.username_fragment.clone(),
                        url: None,
                    };
                    // The description may still be on its way (held offers): ignore then.
                    let _ = self.clients[i].pc.add_remote_candidate(init);
                }
            }
            _ => {}
        }
        self.events.push((key, event));
    }

    /// Client `i` answers a subscriber offer.
    pub(crate) fn answer_offer(&mut self, i: usize, sdp: String) {
        let c = &mut self.clients[i];
        c.pc.set_remote_description(
            self.now,
            RTCSessionDescription::offer(sdp).expect("offer sdp"),
        )
        .expect("client applies subscriber offer");
        let answer = c.pc.create_answer(None).expect("client answer");
        c.pc.set_local_description(self.now, answer.clone())
            .expect("client local answer");
        let cmd = Command::SubscriberAnswer {
            participant: c.participant,
            sdp: answer.sdp,
        };
        self.core
            .handle_command(self.now, cmd)
            .expect("answer accepted");
    }

    fn poll_core(&mut self) -> Option<super::Transmit> {
        let (started, allocs) = (Instant::now(), alloc::allocations());
        let t = self.core.poll_transmit();
        self.core_busy += started.elapsed();
        self.core_allocations += alloc::allocations() - allocs;
        t
    }

    /// Moves everything in flight until nothing moves.
    pub(crate) fn pump(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(t) = self.poll_core() {
                moved = true;
                let Some(i) = self.client_at(t.to.addr) else {
                    self.stray.push(t.to.addr);
                    continue;
                };
                let tcp = t.to.transport == Transport::Tcp;
                self.tcp_transmits += usize::from(tcp);
                if tcp != self.clients[i].tcp {
                    self.wrong_transport += 1;
                    continue;
                }
                if self.downlink_loss.as_mut().is_some_and(|f| f(i, &t.data)) {
                    continue;
                }
                let c = &mut self.clients[i];
                let msg = TaggedBytesMut {
                    now: self.now,
                    transport: TransportContext {
                        local_addr: c.local,
                        peer_addr: server_addr(),
                        ecn: None,
                        transport_protocol: t.to.transport.protocol(),
                    },
                    message: t.data,
                };
                let _ = c.pc.handle_read(msg);
            }
            while let Some((key, event)) = self.core.poll_event() {
                moved = true;
                self.on_event(key, event);
            }
            for i in 0..self.clients.len() {
                while let Some(w) = self.clients[i].pc.poll_write() {
                    moved = true;
                    if self.uplink_loss.as_mut().is_some_and(|f| f(i, &w.message)) {
                        continue;
                    }
                    let from = Peer {
                        addr: self.clients[i].external,
                        ..Peer::remote_of(&w.transport)
                    };
                    if (from.transport == Transport::Tcp) != self.clients[i].tcp {
                        self.wrong_transport += 1;
                        continue;
                    }
                    let (started, allocs) = (Instant::now(), alloc::allocations());
                    self.core.handle_datagram(self.now, from, w.message);
                    self.core_busy += started.elapsed();
                    self.core_allocations += alloc::allocations() - allocs;
                }
                moved |= self.clients[i].drain();
            }
            if !moved {
                return;
            }
        }
        panic!("the simulation does not settle");
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let mut next = self.core.poll_timeout();
        for c in &mut self.clients {
            if let Some(t) = c.pc.poll_timeout() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    fn fire(&mut self) {
        if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
            let (started, allocs) = (Instant::now(), alloc::allocations());
            self.core.handle_timeout(self.now);
            self.core_busy += started.elapsed();
            self.core_allocations += alloc::allocations() - allocs;
        }
        for c in &mut self.clients {
            if c.pc.poll_timeout().is_some_and(|t| t <= self.now) {
                let _ = c.pc.handle_timeout(self.now);
            }
        }
    }

    /// Runs the simulation up to `until`, firing every deadline on the way.
    pub(crate) fn advance_to(&mut self, until: Instant) {
        loop {
            self.pump();
            match self.next_deadline() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.fire();
                }
                _ => {
                    self.now = self.now.max(until);
                    self.fire();
                    self.pump();
                    return;
                }
            }
        }
    }

    /// Runs for `d` of simulated time.
    pub(crate) fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.advance_to(until);
    }

    /// Runs in steps of 10 ms until `done` or `limit` of simulated time passed.
    pub(crate) fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.advance(Duration::from_millis(10));
        }
        done(self)
    }

    /// Client `publisher` sends one packet every 20 ms for `d`.
    pub(crate) fn stream(&mut self, publisher: usize, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.clients[publisher].send_rtp(self.now, 1000);
            self.advance(Duration::from_millis(20));
        }
    }

    /// Events the core emitted for `key`.
    pub(crate) fn events_of(&self, key: ParticipantKey) -> impl Iterator<Item = &SfuEvent> {
        self.events
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, e)| e)
    }

    /// A candidate from the client side (as signaling would pass it on).
    pub(crate) fn client_candidate(line: &str) -> IceCandidate {
        IceCandidate {
            candidate: line.into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        }
    }
}
