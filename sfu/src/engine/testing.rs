//! Client-side `rtc` peers and an in-memory network around a [`Core`], with a simulated
//! clock: datagrams are delivered at once, time jumps to the next deadline when nothing
//! is in flight. No socket anywhere, so tests run anywhere and never flake on timing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    register_default_interceptors, Registry, Slot,
};
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_VP8};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::{Command, Core, CoreConfig, ParticipantKey, Reply};
use crate::rtcp::{is_keyframe_request, KeyframeRequestForwarder};
use crate::stats::Counters;
use crate::types::{IceCandidate, PcRole, SfuEvent};

/// The server's socket address in every simulation.
pub(crate) fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 100], 3478))
}

/// VP8 at 90 kHz, as a browser sends it.
pub(crate) fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// A client peer connection (a browser stand-in) for one of a participant's two
/// connections, with everything it received recorded.
pub(crate) struct Client {
    /// Participant it belongs to.
    pub participant: ParticipantKey,
    /// Which connection of the participant it is the far end of.
    pub role: PcRole,
    /// The rtc connection.
    pub pc: RTCPeerConnection,
    /// Address of its host candidate.
    pub local: SocketAddr,
    /// Address the server sees (differs from `local` behind a simulated NAT).
    pub external: SocketAddr,
    /// Last connection state.
    pub state: RTCPeerConnectionState,
    /// Remote tracks opened, in order.
    pub opened: Vec<RTCTrackEventInit>,
    /// RTP received: (track id, packet).
    pub rtp: Vec<(String, Packet)>,
    /// Keyframe requests received for its own tracks.
    pub keyframe_requests: usize,
    /// The sender of its published track (publisher clients).
    pub sender: Option<RTCRtpSenderId>,
    /// SSRC of its published track.
    pub ssrc: u32,
    next_seq: u16,
}

impl Client {
    fn build(participant: ParticipantKey, role: PcRole, local: SocketAddr, now: Instant) -> Client {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().expect("codecs");
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .expect("interceptors")
            .with(Slot::from(14_000), KeyframeRequestForwarder::default());
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media_engine)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .build(now)
            .expect("client peer connection");
        let host = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: local.ip().to_string(),
                port: local.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .expect("host candidate");
        pc.add_local_candidate(RTCIceCandidate::from(&host).to_json().expect("json"))
            .expect("local candidate");
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .expect("end of candidates");
        Client {
            participant,
            role,
            pc,
            local,
            external: local,
            state: RTCPeerConnectionState::New,
            opened: Vec::new(),
            rtp: Vec::new(),
            keyframe_requests: 0,
            sender: None,
            ssrc: 0,
            next_seq: 1000,
        }
    }

    /// Whether the connection is up.
    pub(crate) fn connected(&self) -> bool {
        self.state == RTCPeerConnectionState::Connected
    }

    /// Sends one VP8 RTP packet of `size` payload bytes on its published track.
    pub(crate) fn send_rtp(&mut self, now: Instant, size: usize) {
        let Some(sender) = self.sender else { return };
        let mut s = self.pc.rtp_sender(sender).expect("sender");
        let pt = s
            .get_parameters()
            .rtp_parameters
            .codecs
            .first()
            .map(|c| c.payload_type)
            .expect("negotiated codec");
        self.next_seq = self.next_seq.wrapping_add(1);
        let packet = Packet {
            header: Header {
                version: 2,
                payload_type: pt,
                sequence_number: self.next_seq,
                timestamp: u32::from(self.next_seq).wrapping_mul(3000),
                ssrc: self.ssrc,
                marker: true,
                ..Default::default()
            },
            payload: Bytes::from(vec![0x90u8; size]),
        };
        s.write_rtp(now, packet).expect("client write_rtp");
    }

    /// Sends a PLI for the remote track `receiver` (subscriber clients).
    pub(crate) fn send_pli(&mut self, now: Instant, receiver: RTCRtpReceiverId, media_ssrc: u32) {
        let mut r = self.pc.rtp_receiver(receiver).expect("receiver");
        r.write_rtcp(
            now,
            vec![Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            })],
        )
        .expect("client write_rtcp");
    }

    fn drain(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.pc.poll_event() {
            moved = true;
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => self.state = s,
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    self.opened.push(init)
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            moved = true;
            match message {
                RTCMessage::RtpPacket(track, packet) => self.rtp.push((track, packet)),
                RTCMessage::RtcpPacket(_, packets) => {
                    self.keyframe_requests += packets
                        .iter()
                        .filter(|p| is_keyframe_request(p.as_ref()))
                        .count();
                }
                _ => {}
            }
        }
        moved
    }
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
    /// Loss on the way client → core.
    pub uplink_loss: Option<LossFn>,
    /// Loss on the way core → client.
    pub downlink_loss: Option<LossFn>,
    /// Subscriber offers are answered automatically.
    pub auto_answer: bool,
}

impl Sim {
    /// A core on [`server_addr`] with one room (key 1, id `room`).
    pub(crate) fn new(ice_lite: bool) -> Sim {
        let counters = Arc::new(Counters::default());
        let config = CoreConfig {
            local_addr: server_addr(),
            announced: vec![server_addr()],
            ice_lite,
        };
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
            uplink_loss: None,
            downlink_loss: None,
            auto_answer: true,
        }
    }

    /// Adds participant `key` (id `id`) to the room.
    pub(crate) fn join(&mut self, key: ParticipantKey, id: &str) {
        let cmd = Command::AddParticipant {
            room: 1,
            participant: key,
            id: id.into(),
            ice_servers: vec![],
        };
        assert_eq!(
            self.core.handle_command(self.now, cmd).expect("join"),
            Reply::Done
        );
    }

    /// Adds a client for `key`'s subscriber connection at `addr`; returns its index.
    pub(crate) fn subscriber(&mut self, key: ParticipantKey, addr: SocketAddr) -> usize {
        self.clients
            .push(Client::build(key, PcRole::Subscriber, addr, self.now));
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
        let mut c = Client::build(key, PcRole::Publisher, addr, self.now);
        c.ssrc = 0x1234_5678;
        let media = MediaStreamTrack::new(
            stream.into(),
            track.into(),
            track.into(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(c.ssrc),
                    ..Default::default()
                },
                codec: vp8(),
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

    /// Moves everything in flight until nothing moves.
    pub(crate) fn pump(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(t) = self.core.poll_transmit() {
                moved = true;
                let Some(i) = self.client_at(t.to) else {
                    self.stray.push(t.to);
                    continue;
                };
                if self.downlink_loss.as_mut().is_some_and(|f| f(i, &t.data)) {
                    continue;
                }
                let c = &mut self.clients[i];
                let msg = TaggedBytesMut {
                    now: self.now,
                    transport: TransportContext {
                        local_addr: c.local,
                        peer_addr: super::testing::server_addr(),
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
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
                    let from = self.clients[i].external;
                    self.core
                        .handle_datagram(self.now, from, BytesMut::from(&w.message[..]));
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
            self.core.handle_timeout(self.now);
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
