//! One server peer connection: the sans-IO `rtc` connection plus what the core keeps
//! around it (local ICE credentials, early client candidates, connection state). Built on
//! first use, because a participant that never publishes needs no publisher connection.
//!
//! Everything a connection produces leaves through [`Ctx`]: datagrams into the transmit
//! queue, connection-state events for signaling, credentials and closure into the
//! demultiplexer, its next deadline into the timer heap ([`Connection::flush`]).

use std::time::Duration;

use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, SenderReportBuilder,
    TwccReceiverBuilder,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    register_default_interceptors, Registry, Slot,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId,
    RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tracing::{debug, warn};

use super::candidates::EarlyCandidates;
use super::ctx::Ctx;
use super::io::{ConnKey, TimerKey, Transmit};
use super::sdp;
use crate::error::SfuError;
use crate::forward::{NegotiatedCodec, NegotiatedExtension, NegotiatedParams};
use crate::rtcp::KeyframeRequestForwarder;
use crate::stats::LogThrottle;
use crate::types::{IceCandidate, MediaKind, PcRole, SfuEvent};

/// ICE connectivity-check interval while connecting (rtc's default: 200 ms).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Interceptor slot of the keyframe-request forwarder: after every default interceptor.
const KEYFRAME_FORWARDER_SLOT: usize = 14_000;

/// One "early candidate dropped" line per second for the whole process.
static DROPPED_CANDIDATE_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(1));

/// What a connection tells its room (everything else it handles itself).
#[derive(Debug)]
pub(crate) enum Signal {
    /// The first packet of a remote track arrived (publisher connection).
    TrackOpened(RTCTrackEventInit),
    /// A remote track ended (the client renegotiated it away).
    TrackClosed(String),
}

/// What a subscriber leg sends: the publisher's track as the subscriber will see it.
#[derive(Debug)]
pub(crate) struct LegSpec<'a> {
    /// `MediaStream` id (the publisher's participant id).
    pub stream_id: &'a str,
    /// `MediaStreamTrack` id (the announced track id).
    pub track_id: &'a str,
    /// Audio or video.
    pub kind: MediaKind,
    /// Codec the publisher sends (the leg offers it first).
    pub codec: &'a RTCRtpCodec,
    /// SSRC of the leg.
    pub ssrc: u32,
}

/// What a remote track of a publisher connection is, once its first packet arrived.
#[derive(Debug)]
pub(crate) struct RemoteTrack {
    /// Audio or video (`None`: neither, ignored).
    pub kind: Option<MediaKind>,
    /// Codec of the first SSRC.
    pub codec: Option<RTCRtpCodec>,
    /// Payload types and extensions negotiated on the receiver.
    pub params: NegotiatedParams,
}

/// One server peer connection.
pub(crate) struct Connection {
    key: ConnKey,
    pc: Option<RTCPeerConnection>,
    early: EarlyCandidates,
    /// `a=mid` and ufrag of the current local description (for candidate events).
    mid: Option<String>,
    ufrag: Option<String>,
    /// Ufrag whose candidates were last announced (re-announced only on a new one).
    announced_ufrag: Option<String>,
    state: RTCPeerConnectionState,
    /// DTLS completed once: SRTP keys exist, media written is recorded (for NACK) and
    /// goes out as soon as ICE has a pair, also while an ICE restart is under way.
    ever_connected: bool,
}

impl Connection {
    /// A connection not built yet.
    pub(crate) fn new(key: ConnKey) -> Self {
        Connection {
            key,
            pc: None,
            early: EarlyCandidates::default(),
            mid: None,
            ufrag: None,
            announced_ufrag: None,
            state: RTCPeerConnectionState::New,
            ever_connected: false,
        }
    }

    fn role(&self) -> PcRole {
        self.key.role.role()
    }

    /// Whether the rtc connection exists.
    pub(crate) fn is_built(&self) -> bool {
        self.pc.is_some()
    }

    /// Whether media may be written: the connection came up once and has not failed or
    /// closed. During an ICE restart rtc drops what it cannot send yet but its NACK
    /// responder has recorded it, so the client recovers the gap; skipping the write here
    /// would lose those packets for good.
    pub(crate) fn can_send(&self) -> bool {
        self.ever_connected
            && !matches!(
                self.state,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            )
    }

    fn pc(&mut self, ctx: &Ctx<'_>) -> Result<&mut RTCPeerConnection, SfuError> {
        if self.pc.is_none() {
            self.pc = Some(build(ctx, self.role())?);
            debug!(
                participant = self.key.participant,
                pc = self.role().as_str(),
                "peer connection built"
            );
        }
        self.pc
            .as_mut()
            .ok_or_else(|| SfuError::WebRtc("peer connection missing".into()))
    }

    fn built(&mut self) -> Result<&mut RTCPeerConnection, SfuError> {
        self.pc.as_mut().ok_or(SfuError::Closed)
    }

    // ----- negotiation ------------------------------------------------------------------

    /// Publisher: applies the client's offer and returns the answer to send back. Server
    /// candidates are queued as events after it (they follow the answer on the wire).
    pub(crate) fn answer(&mut self, ctx: &mut Ctx<'_>, sdp: String) -> Result<String, SfuError> {
        let now = ctx.now;
        let offer =
            RTCSessionDescription::offer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let pc = self.pc(ctx)?;
        pc.set_remote_description(now, offer)
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        self.apply_early_candidates();
        let pc = self.built()?;
        let answer = pc.create_answer(None).map_err(SfuError::webrtc)?;
        pc.set_local_description(now, answer)
            .map_err(SfuError::webrtc)?;
        let local = self.learn_local_description(ctx)?;
        let out =
            sdp::with_announced_candidates(&local, ctx.config.local_addr, &ctx.config.announced);
        self.announce_candidates(ctx);
        self.flush(ctx);
        Ok(out)
    }

    /// Subscriber: creates and applies an offer (with fresh ICE credentials when
    /// `ice_restart`) and returns the SDP to send. The caller queues the offer event, then
    /// [`Self::announce_candidates`].
    pub(crate) fn offer(
        &mut self,
        ctx: &mut Ctx<'_>,
        ice_restart: bool,
    ) -> Result<String, SfuError> {
        let now = ctx.now;
        let pc = self.pc(ctx)?;
        let offer = pc
            .create_offer(Some(RTCOfferOptions { ice_restart }))
            .map_err(SfuError::webrtc)?;
        pc.set_local_description(now, offer)
            .map_err(SfuError::webrtc)?;
        let local = self.learn_local_description(ctx)?;
        self.flush(ctx);
        let announced =
            sdp::with_announced_candidates(&local, ctx.config.local_addr, &ctx.config.announced);
        Ok(sdp::with_msid_semantic(&announced))
    }

    /// Subscriber: applies the client's answer to the last offer.
    pub(crate) fn accept_answer(&mut self, ctx: &mut Ctx<'_>, sdp: String) -> Result<(), SfuError> {
        let now = ctx.now;
        let answer =
            RTCSessionDescription::answer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        self.built()?
            .set_remote_description(now, answer)
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        self.apply_early_candidates();
        self.flush(ctx);
        Ok(())
    }

    /// Reads the local ICE credentials and mid of the description just applied and hands
    /// the credentials to the demultiplexer (a new ufrag is an ICE restart there).
    fn learn_local_description(&mut self, ctx: &mut Ctx<'_>) -> Result<String, SfuError> {
        let local = self
            .built()?
            .local_description()
            .ok_or_else(|| SfuError::WebRtc("no local description".into()))?
            .sdp;
        let (ufrag, pwd) = sdp::ice_credentials(&local)
            .ok_or_else(|| SfuError::WebRtc("local description without ICE credentials".into()))?;
        if ctx.demux.set_credentials(self.key, &ufrag, &pwd).is_err() {
            // 16 random letters from rtc: a collision is a broken random source.
            return Err(SfuError::WebRtc(
                "local ICE ufrag already in use on this worker".into(),
            ));
        }
        self.mid = sdp::first_mid(&local);
        self.ufrag = Some(ufrag);
        Ok(local)
    }

    /// Queues the server's candidates of the current local description as events (one per
    /// announced address), after the description itself. Only for a description with new
    /// ICE credentials (the first one, an ICE restart): a renegotiation keeps the
    /// transport, and its candidates are in the SDP anyway.
    pub(crate) fn announce_candidates(&mut self, ctx: &mut Ctx<'_>) {
        if self.announced_ufrag == self.ufrag {
            return;
        }
        self.announced_ufrag.clone_from(&self.ufrag);
        let Some(pc) = self.pc.as_ref() else { return };
        let Some(local) = pc.local_description() else {
            return;
        };
        let role = self.role();
        for line in local.sdp.lines() {
            let Some(c) = line.trim_end().strip_prefix("a=") else {
                continue;
            };
            // rtc lists each candidate for components 1 and 2; with rtcp-mux only the
            // RTP component is used (a browser gathers only that one too).
            if !c.starts_with("candidate:") || c.split_whitespace().nth(1) != Some("1") {
                continue;
            }
            for candidate in
                sdp::announced_candidates(c, ctx.config.local_addr, &ctx.config.announced)
            {
                ctx.out.event(
                    self.key.participant,
                    SfuEvent::IceCandidate {
                        pc: role,
                        candidate: IceCandidate {
                            candidate,
                            sdp_mid: self.mid.clone(),
                            sdp_mline_index: Some(0),
                            username_fragment: self.ufrag.clone(),
                        },
                    },
                );
            }
        }
    }

    /// Adds a sendonly leg; returns its sender.
    pub(crate) fn add_leg(
        &mut self,
        ctx: &Ctx<'_>,
        leg: &LegSpec<'_>,
    ) -> Result<RTCRtpSenderId, SfuError> {
        let kind = match leg.kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let track = MediaStreamTrack::new(
            leg.stream_id.to_owned(),
            leg.track_id.to_owned(),
            leg.track_id.to_owned(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(leg.ssrc),
                    ..Default::default()
                },
                codec: leg.codec.clone(),
                ..Default::default()
            }],
        );
        let pc = self.pc(ctx)?;
        let id = pc
            .add_transceiver_from_track(
                track,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    // MediaStream id seen by the subscriber = publisher's participant id.
                    streams: vec![leg.stream_id.to_owned()],
                    send_encodings: vec![],
                }),
            )
            .map_err(SfuError::webrtc)?;
        pc.rtp_transceiver(id)
            .and_then(|t| t.sender())
            .ok_or_else(|| SfuError::WebRtc("transceiver without sender".into()))
    }

    /// Stops a leg (the next offer marks its section inactive).
    pub(crate) fn remove_leg(&mut self, sender: RTCRtpSenderId) {
        if let Some(pc) = self.pc.as_mut() {
            if let Err(err) = pc.remove_track(sender) {
                warn!(%err, "removing a subscriber leg failed");
            }
        }
    }

    /// What a leg negotiated (after the answer).
    pub(crate) fn sender_params(&mut self, sender: RTCRtpSenderId) -> Option<NegotiatedParams> {
        let mut s = self.pc.as_mut()?.rtp_sender(sender)?;
        Some(negotiated(&s.get_parameters().rtp_parameters))
    }

    /// Kind, codec and negotiated parameters of a remote track whose first packet came.
    pub(crate) fn remote_track(&mut self, init: &RTCTrackEventInit) -> Option<RemoteTrack> {
        let mut r = self.pc.as_mut()?.rtp_receiver(init.receiver_id)?;
        let kind = match r.track().kind() {
            RtpCodecKind::Audio => Some(MediaKind::Audio),
            RtpCodecKind::Video => Some(MediaKind::Video),
            _ => None,
        };
        let codec = r.track().codec(init.ssrc).cloned();
        let params = negotiated(&r.get_parameters().rtp_parameters);
        Some(RemoteTrack {
            kind,
            codec,
            params,
        })
    }

    /// Whether the remote track of `receiver` is still sent to us after the last
    /// negotiation. rtc 0.21.1 never emits `RTCTrackEvent::OnClose`, so a track the client
    /// removed (its section now inactive or recvonly) is found this way.
    pub(crate) fn still_receiving(&mut self, receiver: RTCRtpReceiverId) -> bool {
        let Some(pc) = self.pc.as_mut() else {
            return false;
        };
        pc.rtp_transceiver(RTCRtpTransceiverId::from(receiver))
            .is_some_and(|t| t.receiver().is_some() && t.current_direction().has_recv())
    }

    // ----- candidates -------------------------------------------------------------------

    /// A client candidate: applied if the remote description is set, else kept (bounded;
    /// a dropped one is counted). An empty candidate (end of candidates) is a no-op.
    pub(crate) fn add_candidate(&mut self, ctx: &Ctx<'_>, c: IceCandidate) -> Result<(), SfuError> {
        if c.candidate.trim().is_empty() {
            return Ok(());
        }
        match self.pc.as_mut() {
            Some(pc) if pc.remote_description().is_some() => pc
                .add_remote_candidate(to_init(c))
                .map_err(|e| SfuError::InvalidCandidate(e.to_string())),
            _ => {
                if !self.early.push(c) {
                    ctx.counters.candidate_dropped();
                    if let Some(suppressed) = DROPPED_CANDIDATE_LOG.allow() {
                        warn!(
                            pc = self.role().as_str(),
                            suppressed, "early ICE candidate dropped: buffer full"
                        );
                    }
                }
                Ok(())
            }
        }
    }

    /// Client candidates waiting for the remote description.
    pub(crate) fn pending_candidates(&self) -> usize {
        self.early.len()
    }

    fn apply_early_candidates(&mut self) {
        let early = self.early.take();
        let Some(pc) = self.pc.as_mut() else { return };
        for c in early {
            if let Err(err) = pc.add_remote_candidate(to_init(c)) {
                debug!(%err, "buffered client candidate rejected");
            }
        }
    }

    // ----- I/O ------------------------------------------------------------------------

    /// Feeds one datagram (already routed to this connection).
    pub(crate) fn handle_datagram(
        &mut self,
        ctx: &Ctx<'_>,
        from: std::net::SocketAddr,
        data: BytesMut,
    ) {
        let Some(pc) = self.pc.as_mut() else { return };
        let msg = TaggedBytesMut {
            now: ctx.now,
            transport: TransportContext {
                local_addr: ctx.config.local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: data,
        };
        if let Err(err) = pc.handle_read(msg) {
            debug!(%err, "datagram rejected");
        }
    }

    /// Fires the connection's timers.
    pub(crate) fn handle_timeout(&mut self, ctx: &Ctx<'_>) {
        if let Some(pc) = self.pc.as_mut() {
            if let Err(err) = pc.handle_timeout(ctx.now) {
                debug!(%err, "timeout handling failed");
            }
        }
    }

    /// Next event the room must act on; state changes are handled here (signaling event,
    /// demultiplexer told when ICE is up again).
    pub(crate) fn poll_signal(&mut self, ctx: &mut Ctx<'_>) -> Option<Signal> {
        loop {
            let event = self.pc.as_mut()?.poll_event()?;
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    self.state = state;
                    self.ever_connected |= state == RTCPeerConnectionState::Connected;
                    if state != RTCPeerConnectionState::Unspecified {
                        debug!(participant = self.key.participant, pc = self.role().as_str(), %state, "connection state");
                        ctx.out.event(
                            self.key.participant,
                            SfuEvent::ConnectionState {
                                pc: self.role(),
                                state: state.to_string(),
                            },
                        );
                    }
                }
                RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(
                    RTCIceConnectionState::Connected | RTCIceConnectionState::Completed,
                ) => ctx.demux.ice_connected(self.key),
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    return Some(Signal::TrackOpened(init))
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(id)) => {
                    return Some(Signal::TrackClosed(id))
                }
                _ => {}
            }
        }
    }

    /// Next RTP / RTCP message for the application.
    pub(crate) fn poll_media(&mut self) -> Option<RTCMessage> {
        self.pc
            .as_mut()?
            .poll_read()
            .map(|TaggedRTCMessage { message, .. }| message)
    }

    /// Writes one (already rewritten) RTP packet to a leg.
    pub(crate) fn write_rtp(
        &mut self,
        ctx: &Ctx<'_>,
        sender: RTCRtpSenderId,
        packet: Packet,
    ) -> Result<(), SfuError> {
        let mut s = self.built()?.rtp_sender(sender).ok_or(SfuError::Closed)?;
        s.write_rtp(ctx.now, packet).map_err(SfuError::webrtc)
    }

    /// Sends a PLI for `media_ssrc` on a remote track's receiver.
    pub(crate) fn write_pli(
        &mut self,
        ctx: &Ctx<'_>,
        receiver: RTCRtpReceiverId,
        media_ssrc: u32,
    ) -> Result<(), SfuError> {
        let mut r = self
            .built()?
            .rtp_receiver(receiver)
            .ok_or(SfuError::Closed)?;
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        r.write_rtcp(ctx.now, vec![Box::new(pli)])
            .map_err(SfuError::webrtc)
    }

    /// Moves every datagram the connection wants to send into the transmit queue and puts
    /// its next deadline into the timer heap. Call after anything fed the connection.
    pub(crate) fn flush(&mut self, ctx: &mut Ctx<'_>) {
        let Some(pc) = self.pc.as_mut() else { return };
        while let Some(w) = pc.poll_write() {
            ctx.demux.note_sent(ctx.now, self.key, &w.message);
            ctx.out.transmits.push_back(Transmit {
                to: w.transport.peer_addr,
                data: w.message,
            });
        }
        ctx.timers
            .schedule(TimerKey::Conn(self.key), pc.poll_timeout());
    }

    /// Closes the connection: its last datagrams (DTLS close) are queued, its timer and
    /// routes are forgotten.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(pc) = self.pc.as_mut() {
            if let Err(err) = pc.close() {
                debug!(%err, "closing peer connection");
            }
            while let Some(w) = pc.poll_write() {
                ctx.out.transmits.push_back(Transmit {
                    to: w.transport.peer_addr,
                    data: w.message,
                });
            }
        }
        self.pc = None;
        ctx.timers.remove(TimerKey::Conn(self.key));
        ctx.demux.remove(self.key);
    }
}

fn to_init(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
        url: None,
    }
}

/// rtc's negotiated RTP parameters as the pure [`NegotiatedParams`] of `forward`.
fn negotiated(params: &RTCRtpParameters) -> NegotiatedParams {
    NegotiatedParams {
        codecs: params
            .codecs
            .iter()
            .map(|c| NegotiatedCodec {
                payload_type: c.payload_type,
                mime_type: c.rtp_codec.mime_type.clone(),
                clock_rate: c.rtp_codec.clock_rate,
            })
            .collect(),
        extensions: params
            .header_extensions
            .iter()
            .filter_map(|e| {
                Some(NegotiatedExtension {
                    id: u8::try_from(e.id).ok()?,
                    uri: e.uri.clone(),
                })
            })
            .collect(),
    }
}

/// The interceptors of one server connection, by role. The media engine gets exactly what
/// rtc's defaults register (feedback types, header extensions: the SDP is the same), but
/// each chain only holds the interceptors its direction uses:
/// - publisher (the server only receives): NACK generator, TWCC feedback, receiver reports;
/// - subscriber (the server only sends): NACK responder (retransmits from its buffer),
///   sender reports, and the keyframe-request forwarder (PLI/FIR up to the application).
fn interceptors(role: PcRole, media_engine: &mut MediaEngine) -> Result<Registry, SfuError> {
    drop(register_default_interceptors(Registry::new(), media_engine).map_err(SfuError::webrtc)?);
    Ok(match role {
        PcRole::Publisher => Registry::new()
            .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build()),
        PcRole::Subscriber => Registry::new()
            .with(Slot::NackResponder, NackResponderBuilder::new().build())
            .with(Slot::SenderReport, SenderReportBuilder::new().build())
            .with(
                Slot::from(KEYFRAME_FORWARDER_SLOT),
                KeyframeRequestForwarder::default(),
            ),
    })
}

/// Builds the rtc connection with one host candidate: the worker's socket address. rtc
/// generates random local ICE credentials (16 letters / 32 letters) for the connection and
/// fresh ones on every ICE restart; they are read back from each local description.
///
/// `SettingEngine::with_ice_credentials` is deliberately not used: rtc 0.21.1 reuses
/// configured credentials on an ICE restart (`stage_ice_restart` passes them to
/// `generate_restart_credentials`), so a restart offer would carry the old ufrag.
fn build(ctx: &Ctx<'_>, role: PcRole) -> Result<RTCPeerConnection, SfuError> {
    let local = ctx.config.local_addr;
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_default_codecs()
        .map_err(SfuError::webrtc)?;
    let registry = interceptors(role, &mut media_engine)?;
    let network = if local.is_ipv4() {
        NetworkType::Udp4
    } else {
        NetworkType::Udp6
    };
    let settings = SettingEngineBuilder::new()
        // No multicast: browsers' `.local` candidates are useless to a server anyway.
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_network_types(vec![network])
        // Clients trickle candidates after the description: their first checks create
        // peer-reflexive pairs, which must not wait a second before nomination.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
        .with_lite(ctx.config.ice_lite)
        .build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_media_engine(media_engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .build(ctx.now)
        .map_err(SfuError::webrtc)?;
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
    .map_err(SfuError::webrtc)?;
    let init = RTCIceCandidate::from(&host)
        .to_json()
        .map_err(SfuError::webrtc)?;
    pc.add_local_candidate(init).map_err(SfuError::webrtc)?;
    // End of gathering: there is nothing else to gather.
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .map_err(SfuError::webrtc)?;
    Ok(pc)
}
