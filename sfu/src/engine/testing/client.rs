//! A client-side rtc peer connection (a browser stand-in) with everything it received
//! recorded, for [`super::Sim`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::tcp_type::TcpType;
use rtc::peer_connection::configuration::interceptor_registry::{
    register_default_interceptors, Registry, Slot,
};
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::header::{Header, EXTENSION_PROFILE_ONE_BYTE};
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};

use crate::engine::publication::AUDIO_LEVEL_URI;
use crate::engine::setup;
use crate::engine::ParticipantKey;
use crate::rtcp::{is_keyframe_request, FeedbackForwarder};
use crate::types::PcRole;

/// Opus at 48 kHz, stereo, as a browser sends it.
pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
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
    /// Reaches the server over ICE-TCP only (its UDP is blocked both ways).
    pub tcp: bool,
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
    /// Keyframe requests already answered with a keyframe (as a browser does, the next
    /// frame after a PLI is a keyframe).
    keyframes_answered: Option<usize>,
    /// Simulcast publishers: SSRC of each layer (lowest first), its next sequence number,
    /// and whether its next frame must be a keyframe.
    pub layers: Vec<(u32, u16, bool)>,
}

/// A VP8 payload of `size` bytes as a browser sends the first packet of a frame: payload
/// descriptor with a 15-bit picture id, then a keyframe header (640×360) or a delta frame.
pub(crate) fn vp8_payload(size: usize, keyframe: bool, picture_id: u16) -> Bytes {
    let pid = picture_id & 0x7fff;
    let mut p = vec![0x90, 0x80, 0x80 | (pid >> 8) as u8, pid as u8];
    if keyframe {
        p.extend_from_slice(&[0x50, 0x2e, 0x01, 0x9d, 0x01, 0x2a]);
        p.extend_from_slice(&640u16.to_le_bytes());
        p.extend_from_slice(&360u16.to_le_bytes());
    } else {
        p.extend_from_slice(&[0x51, 0x2e, 0x01]);
    }
    p.resize(size.max(p.len()), 0x90);
    Bytes::from(p)
}

/// Gives `pc` one active ICE-TCP host candidate on `local` (it connects to the server's
/// passive candidate, as a browser does) and ends gathering.
fn add_active_tcp_candidate(pc: &mut RTCPeerConnection, local: SocketAddr) {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "tcp".to_owned(),
            address: local.ip().to_string(),
            port: local.port(),
            component: 1,
            ..Default::default()
        },
        tcp_type: TcpType::Active,
    }
    .new_candidate_host()
    .expect("active TCP candidate");
    let init = RTCIceCandidate::from(&host)
        .to_json()
        .expect("candidate json");
    pc.add_local_candidate(init).expect("local candidate");
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .expect("end of candidates");
}

impl Client {
    /// A client at `local`; with `tcp` its only candidate is an active ICE-TCP one (a
    /// browser on a network that blocks UDP), otherwise a UDP host candidate.
    pub(super) fn build(
        participant: ParticipantKey,
        role: PcRole,
        local: SocketAddr,
        tcp: bool,
        now: Instant,
    ) -> Client {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().expect("codecs");
        setup::register_audio_level(&mut media_engine).expect("audio level extension");
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .expect("interceptors")
            .with(Slot::from(14_000), FeedbackForwarder::default());
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
        if tcp {
            add_active_tcp_candidate(&mut pc, local);
        } else {
            setup::add_host_candidates(&mut pc, local, false).expect("host candidate");
        }
        Client {
            participant,
            role,
            pc,
            local,
            tcp,
            external: local,
            state: RTCPeerConnectionState::New,
            opened: Vec::new(),
            rtp: Vec::new(),
            keyframe_requests: 0,
            sender: None,
            ssrc: 0,
            next_seq: 1000,
            keyframes_answered: None,
            layers: Vec::new(),
        }
    }

    /// Whether the connection is up.
    pub(crate) fn connected(&self) -> bool {
        self.state == RTCPeerConnectionState::Connected
    }

    /// Sends one VP8 RTP packet (one frame) of `size` payload bytes on its published
    /// track: a keyframe first and after each keyframe request, a delta frame otherwise.
    pub(crate) fn send_rtp(&mut self, now: Instant, size: usize) {
        let keyframe = self.keyframes_answered != Some(self.keyframe_requests);
        self.keyframes_answered = Some(self.keyframe_requests);
        let Some((pt, _)) = self.negotiated(&[]) else {
            return;
        };
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
            payload: vp8_payload(size, keyframe, self.next_seq),
        };
        self.write(now, packet);
    }

    /// Sends one VP8 frame of simulcast layer `layer` (`size` bytes): a keyframe first and
    /// after a PLI for that layer's SSRC.
    pub(crate) fn send_layer(&mut self, now: Instant, layer: usize, size: usize) {
        let Some((pt, ids)) = self.negotiated(&[SDES_MID_URI, SDES_RTP_STREAM_ID_URI]) else {
            return;
        };
        let (mid_id, rid_id) = (ids[0], ids[1]);
        let (ssrc, seq, keyframe) = &mut self.layers[layer];
        *seq = seq.wrapping_add(1);
        let mut header = Header {
            version: 2,
            payload_type: pt,
            sequence_number: *seq,
            timestamp: u32::from(*seq).wrapping_mul(3000),
            ssrc: *ssrc,
            marker: true,
            extension: true,
            extension_profile: EXTENSION_PROFILE_ONE_BYTE,
            ..Default::default()
        };
        // As a browser does: mid and rid in every packet, so the SFU maps each SSRC.
        header
            .set_extension(mid_id, Bytes::from_static(b"0"))
            .expect("mid element");
        header
            .set_extension(rid_id, Bytes::from(["q", "h", "f"][layer]))
            .expect("rid element");
        let packet = Packet {
            header,
            payload: vp8_payload(size, *keyframe, *seq),
        };
        *keyframe = false;
        self.write(now, packet);
    }

    /// Sends one Opus packet whose audio level extension (RFC 6464) says `level_dbov`, as a
    /// browser does with every audio packet.
    pub(crate) fn send_audio(&mut self, now: Instant, level_dbov: u8) {
        let Some((pt, ids)) = self.negotiated(&[AUDIO_LEVEL_URI]) else {
            return;
        };
        let ext = ids[0];
        self.next_seq = self.next_seq.wrapping_add(1);
        let mut header = Header {
            version: 2,
            payload_type: pt,
            sequence_number: self.next_seq,
            timestamp: u32::from(self.next_seq).wrapping_mul(960),
            ssrc: self.ssrc,
            extension: true,
            extension_profile: EXTENSION_PROFILE_ONE_BYTE,
            ..Default::default()
        };
        header
            .set_extension(ext, Bytes::from(vec![level_dbov & 0x7f]))
            .expect("audio level element");
        let packet = Packet {
            header,
            payload: Bytes::from(vec![0xf8u8; 80]),
        };
        self.write(now, packet);
    }

    /// The payload type its published track negotiated and the id of each header
    /// extension in `uris` (all must be negotiated); `None` before it publishes.
    fn negotiated(&mut self, uris: &[&str]) -> Option<(u8, Vec<u8>)> {
        let sender = self.sender?;
        let mut s = self.pc.rtp_sender(sender).expect("sender");
        let params = s.get_parameters().rtp_parameters.clone();
        let pt = params
            .codecs
            .first()
            .map(|c| c.payload_type)
            .expect("negotiated codec");
        let ids = uris
            .iter()
            .map(|uri| {
                params
                    .header_extensions
                    .iter()
                    .find(|e| e.uri == *uri)
                    .map(|e| e.id as u8)
                    .unwrap_or_else(|| panic!("{uri} negotiated"))
            })
            .collect();
        Some((pt, ids))
    }

    /// Writes one RTP packet on its published track.
    fn write(&mut self, now: Instant, packet: Packet) {
        let sender = self.sender.expect("a published track");
        let mut s = self.pc.rtp_sender(sender).expect("sender");
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

    pub(super) fn drain(&mut self) -> bool {
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
                    for pli in packets
                        .iter()
                        .filter_map(|p| p.as_any().downcast_ref::<PictureLossIndication>())
                    {
                        if let Some(l) = self.layers.iter_mut().find(|l| l.0 == pli.media_ssrc) {
                            l.2 = true;
                        }
                    }
                }
                _ => {}
            }
        }
        moved
    }
}
