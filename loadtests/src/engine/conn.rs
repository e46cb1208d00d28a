//! One client peer connection inside a loop: the sans-IO `rtc` core, its own UDP socket,
//! our local tracks and the accounting of every remote track. The loop feeds it datagrams,
//! timeouts and commands; [`Conn::drain`] collects what it wants to send and reports.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, Registry,
    SenderReportBuilder, Slot, TwccReceiverBuilder,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::sync::mpsc;

use super::arena::Arena;
use super::clock::Clock;
use super::command::{CreateSpec, PcEvent, PcShared, TrackSpec};
use super::sender::{LocalSender, MediaSource, Outgoing, Simulcast, AUDIO_LEVEL_URI, LAYERS};
use super::udp::{Datagram, Socket};
use crate::client::media::{OPUS_PAYLOAD_TYPE, VP8_PAYLOAD_TYPE};
use crate::client::protocol::{CandidateInit, Kind, PcName};
use crate::client::stats::RemoteTrackState;
use crate::client::{ClientError, PcState};

fn rtc_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::WebRtc(e.to_string())
}

/// A remote track being accounted.
struct Remote {
    state: Arc<Mutex<RemoteTrackState>>,
}

/// One connection of a loop.
pub(crate) struct Conn {
    pc: RTCPeerConnection,
    socket: Socket,
    name: PcName,
    shared: Arc<PcShared>,
    events: mpsc::UnboundedSender<PcEvent>,
    gathered: bool,
    /// Remote candidates that arrived before the remote description.
    pending: Vec<CandidateInit>,
    senders: Vec<LocalSender>,
    /// Which of `senders` go out in simulcast layers (known from the spec, set up with
    /// the answer).
    simulcast: Vec<bool>,
    remote: HashMap<String, Remote>,
    media: Option<MediaSource>,
    state: PcState,
    /// Latest instant fed to the core (kept monotonic across arrival stamps).
    last_read: Option<Instant>,
    /// RTP packets of a track we have no `OnOpen` for (should stay 0).
    pub(crate) unrouted: u64,
    /// Queued by the loop for [`Conn::drain`] this iteration.
    pub(crate) dirty: bool,
}

/// The setting engine every client connection uses: like a browser, nominate a
/// peer-reflexive pair at once (the server's checks arrive before its trickled candidate)
/// and check every 50 ms while connecting, so join times measure the server, not this
/// client; no mDNS; candidates of the bound address family only.
fn settings(
    loopback: bool,
    v4: bool,
) -> rtc::peer_connection::configuration::setting_engine::SettingEngine {
    SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_network_types(vec![if v4 {
            NetworkType::Udp4
        } else {
            NetworkType::Udp6
        }])
        .with_include_loopback_candidate(loopback)
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_ice_connection_attempts(Some(Duration::from_millis(50)), None)
        .build()
}

/// The interceptors of one client connection, by direction. The media engine gets what
/// webrtc-rs's defaults give it (NACK, RTCP reports, TWCC feedback and extensions: the
/// same SDP as [`crate::Participant`]), but each chain only holds the interceptors its
/// direction uses — a publisher answers NACKs and sends sender reports, a subscriber
/// NACKs, sends receiver reports and TWCC feedback — so the RTCP on the wire is the
/// same while every packet walks a shorter chain.
fn interceptors(name: PcName, media_engine: &mut MediaEngine) -> Result<Registry, ClientError> {
    drop(register_default_interceptors(Registry::new(), media_engine).map_err(rtc_err)?);
    Ok(match name {
        PcName::Publisher => Registry::new()
            .with(Slot::NackResponder, NackResponderBuilder::new().build())
            .with(Slot::SenderReport, SenderReportBuilder::new().build()),
        PcName::Subscriber => Registry::new()
            .with(
                Slot::NackGenerator,
                // As libwebrtc: a packet is asked for at most 10 times.
                NackGeneratorBuilder::new()
                    .with_max_nacks_per_packet(10)
                    .build(),
            )
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build()),
    })
}

fn track_of(t: &TrackSpec) -> MediaStreamTrack {
    let (codec_kind, mime, clock_rate, channels) = match t.kind {
        Kind::Video => (RtpCodecKind::Video, "video/VP8", 90_000, 0),
        Kind::Audio => (RtpCodecKind::Audio, "audio/opus", 48_000, 2),
    };
    let codec = RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        ..Default::default()
    };
    let encoding = |rid: &str, ssrc: u32| RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            rid: rid.to_owned(),
            ssrc: Some(ssrc),
            ..Default::default()
        },
        codec: codec.clone(),
        ..Default::default()
    };
    let encodings = if t.simulcast {
        LAYERS
            .iter()
            .map(|&(rid, offset, _)| encoding(rid, t.ssrc.wrapping_add(offset)))
            .collect()
    } else {
        vec![encoding("", t.ssrc)]
    };
    MediaStreamTrack::new(
        t.stream_id.clone(),
        t.track_id.clone(),
        t.track_id.clone(),
        codec_kind,
        encodings,
    )
}

fn to_init(c: CandidateInit) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
        url: None,
    }
}

impl Conn {
    /// Builds the connection on `socket`: default codecs, the interceptors of its
    /// direction ([`interceptors`]), our tracks `sendonly`.
    pub(crate) fn new(spec: CreateSpec, socket: Socket, now: Instant) -> Result<Conn, ClientError> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().map_err(rtc_err)?;
        media_engine
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .map_err(rtc_err)?;
        let registry = interceptors(spec.name, &mut media_engine)?;
        let ip = socket.local_addr().ip();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings(ip.is_loopback(), ip.is_ipv4()))
            .build(now)
            .map_err(rtc_err)?;
        let mut senders = Vec::new();
        let simulcast = spec.tracks.iter().map(|t| t.simulcast).collect();
        for t in &spec.tracks {
            let id = pc
                .add_transceiver_from_track(
                    track_of(t),
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )
                .map_err(rtc_err)?;
            let payload_type = match t.kind {
                Kind::Video => VP8_PAYLOAD_TYPE,
                Kind::Audio => OPUS_PAYLOAD_TYPE,
            };
            senders.push(LocalSender::new(
                RTCRtpSenderId::from(id),
                t.kind,
                t.ssrc,
                payload_type,
                Arc::clone(&t.counters),
            ));
        }
        Ok(Conn {
            pc,
            socket,
            name: spec.name,
            shared: spec.shared,
            events: spec.events,
            gathered: false,
            pending: Vec::new(),
            senders,
            simulcast,
            remote: HashMap::new(),
            media: None,
            state: PcState::New,
            last_read: None,
            unrouted: 0,
            dirty: false,
        })
    }

    /// The socket (for epoll registration and removal).
    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    fn local_sdp(&self) -> Result<String, ClientError> {
        self.pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| ClientError::WebRtc("no local description".into()))
    }

    /// Announces our one host candidate (the socket's address) once, after the first
    /// local description: its `OnIceCandidateEvent` follows in [`Conn::drain`].
    fn gather(&mut self) -> Result<(), ClientError> {
        if self.gathered {
            return Ok(());
        }
        let local = self.socket.local_addr();
        let candidate = CandidateHostConfig {
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
        .map_err(rtc_err)?;
        let init = RTCIceCandidate::from(&candidate)
            .to_json()
            .map_err(rtc_err)?;
        self.pc.add_local_candidate(init).map_err(rtc_err)?;
        self.gathered = true;
        Ok(())
    }

    /// Creates an offer, sets it and gathers; returns the SDP.
    pub(crate) fn offer(&mut self, now: Instant) -> Result<String, ClientError> {
        let offer = self.pc.create_offer(None).map_err(rtc_err)?;
        self.pc.set_local_description(now, offer).map_err(rtc_err)?;
        self.gather()?;
        self.local_sdp()
    }

    /// Applies a remote offer and answers it; returns the answer SDP.
    pub(crate) fn answer(&mut self, now: Instant, sdp: String) -> Result<String, ClientError> {
        let offer = RTCSessionDescription::offer(sdp).map_err(rtc_err)?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(rtc_err)?;
        self.flush_candidates()?;
        let answer = self.pc.create_answer(None).map_err(rtc_err)?;
        self.pc
            .set_local_description(now, answer)
            .map_err(rtc_err)?;
        self.gather()?;
        self.local_sdp()
    }

    /// Applies the remote answer to our offer.
    pub(crate) fn apply_answer(&mut self, now: Instant, sdp: String) -> Result<(), ClientError> {
        let answer = RTCSessionDescription::answer(sdp).map_err(rtc_err)?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(rtc_err)?;
        for i in 0..self.senders.len() {
            let (sender, kind) = (self.senders[i].sender, self.senders[i].kind);
            if kind == Kind::Audio {
                let id = self.extension_id(sender, AUDIO_LEVEL_URI);
                self.senders[i].set_audio_level_ext(id);
            } else if self.simulcast[i] {
                let mid = self
                    .pc
                    .rtp_transceiver(i)
                    .and_then(|t| t.mid().clone())
                    .unwrap_or_else(|| i.to_string());
                let ids = (
                    self.extension_id(sender, SDES_MID_URI),
                    self.extension_id(sender, SDES_RTP_STREAM_ID_URI),
                );
                let ssrc = self.senders[i].ssrc;
                self.senders[i].simulcast = match ids {
                    (Some(mid_ext), Some(rid_ext)) => {
                        Some(Simulcast::new(ssrc, &mid, mid_ext, rid_ext))
                    }
                    _ => {
                        tracing::warn!(
                            "simulcast without negotiated mid/rid extensions: one layer"
                        );
                        None
                    }
                };
            }
        }
        self.flush_candidates()
    }

    /// The id the answer gave header extension `uri` on our `sender`.
    fn extension_id(&mut self, sender: RTCRtpSenderId, uri: &str) -> Option<u8> {
        self.pc.rtp_sender(sender).and_then(|mut r| {
            r.get_parameters()
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|e| e.uri == uri)
                .and_then(|e| u8::try_from(e.id).ok())
        })
    }

    /// Adds a remote candidate, or holds it until the remote description is set.
    pub(crate) fn add_candidate(&mut self, c: CandidateInit) -> Result<(), ClientError> {
        self.pending.push(c);
        self.flush_candidates()
    }

    fn flush_candidates(&mut self) -> Result<(), ClientError> {
        if self.pending.is_empty() || self.pc.remote_description().is_none() {
            return Ok(());
        }
        let mut first_error = None;
        for c in std::mem::take(&mut self.pending) {
            if let Err(e) = self.pc.add_remote_candidate(to_init(c)) {
                first_error.get_or_insert(rtc_err(e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Starts or stops our media; returns `(track index, first deadline)` to arm.
    pub(crate) fn set_media(
        &mut self,
        source: Option<MediaSource>,
        now: Instant,
    ) -> Vec<(usize, Option<Instant>)> {
        self.media = source;
        self.senders
            .iter_mut()
            .enumerate()
            .map(|(i, s)| match &self.media {
                Some(src) => (i, s.start(src, now)),
                None => {
                    s.stop();
                    (i, None)
                }
            })
            .collect()
    }

    /// Feeds one received datagram that arrived at `now` (never before an instant
    /// already fed: the core's clock only goes forward).
    pub(crate) fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        let now = self.last_read.map_or(now, |last| now.max(last));
        self.last_read = Some(now);
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.socket.local_addr(),
                peer_addr: d.from,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: d.data,
        };
        if let Err(e) = self.pc.handle_read(msg) {
            tracing::debug!(pc = ?self.name, error = %e, "datagram refused");
        }
    }

    /// Fires the core's timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let now = self.last_read.map_or(now, |last| now.max(last));
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(pc = ?self.name, error = %e, "timeout handling failed");
        }
    }

    /// The core's next deadline.
    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        self.pc.poll_timeout()
    }

    /// Sends the packets of track `i`'s tick due at `now` (only while connected, as a
    /// browser sends nothing before DTLS is up); returns its next deadline.
    pub(crate) fn media_tick(
        &mut self,
        i: usize,
        now: Instant,
        now_us: u64,
        arena: &mut Arena,
        scratch: &mut Vec<Outgoing>,
    ) -> Option<Instant> {
        let source = self.media.as_ref()?;
        let sender = self.senders.get_mut(i)?;
        if self.state == PcState::Connected {
            scratch.clear();
            sender.tick(source, arena, now_us, scratch);
            for o in scratch.drain(..) {
                let written = self
                    .pc
                    .rtp_sender(sender.sender)
                    .ok_or_else(|| ClientError::WebRtc("no RTP sender".into()))
                    .and_then(|mut s| s.write_rtp(now, o.packet).map_err(rtc_err));
                match written {
                    Ok(()) if o.counted => sender.counters.sent(o.size, o.sent_us),
                    Ok(()) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "RTP write refused");
                        sender.counters.failed();
                    }
                }
            }
        }
        sender.advance(now);
        sender.deadline()
    }

    /// Handles the core's events and received media, then collects its datagrams into
    /// `out` (destination, payload). A packet's receive time is its datagram's arrival,
    /// converted to wall time through `clock` for the latency of its tag.
    pub(crate) fn drain(&mut self, clock: &Clock, out: &mut Vec<(SocketAddr, BytesMut)>) {
        self.drain_events();
        while let Some(TaggedRTCMessage { now, message, .. }) = self.pc.poll_read() {
            if let RTCMessage::RtpPacket(track_id, packet) = message {
                if !self.remote.contains_key(&track_id) {
                    // The track's OnOpen may sit behind this packet: take events first.
                    self.drain_events();
                }
                let Some(remote) = self.remote.get(&track_id) else {
                    self.unrouted += 1;
                    continue;
                };
                let mut st = remote.state.lock().unwrap_or_else(|e| e.into_inner());
                st.on_packet(packet.header.ssrc, &packet.payload, now, clock.wall_of(now));
            }
        }
        self.drain_events();
        while let Some(w) = self.pc.poll_write() {
            out.push((w.transport.peer_addr, w.message));
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    tracing::debug!(pc = ?self.name, %state, "engine peer connection state");
                    self.state = state;
                    self.shared.set_state(state);
                    let _ = self.events.send(PcEvent::State(state));
                }
                RTCPeerConnectionEvent::OnIceCandidateEvent(e) => match e.candidate.to_json() {
                    Ok(init) => {
                        let _ = self.events.send(PcEvent::LocalCandidate(CandidateInit {
                            candidate: init.candidate,
                            sdp_mid: init.sdp_mid,
                            sdp_mline_index: init.sdp_mline_index,
                            username_fragment: init.username_fragment,
                        }));
                    }
                    Err(e) => tracing::warn!(error = %e, "unserialisable local candidate"),
                },
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    self.open_track(init.receiver_id, init.track_id);
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) => {
                    if let Some(r) = self.remote.get(&track_id) {
                        r.state
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .stats
                            .ended = true;
                    }
                    let _ = self.events.send(PcEvent::TrackEnded { track_id });
                }
                _ => {}
            }
        }
    }

    /// Starts accounting a remote track, named by its `a=msid` (stream id = publisher).
    fn open_track(&mut self, receiver: rtc::rtp_transceiver::RTCRtpReceiverId, track_id: String) {
        if self.remote.contains_key(&track_id) {
            return; // another layer or SSRC of a track already open
        }
        let Some(r) = self.pc.rtp_receiver(receiver) else {
            tracing::warn!(%track_id, "track opened without a receiver");
            return;
        };
        let track = r.track();
        let stream_id = track.stream_id().clone();
        let kind = match track.kind() {
            RtpCodecKind::Video => Kind::Video,
            _ => Kind::Audio,
        };
        tracing::debug!(%stream_id, %track_id, ?kind, "remote track");
        let state = self.shared.received.register(RemoteTrackState::new(
            track_id.clone(),
            stream_id.clone(),
            kind,
        ));
        let _ = self.events.send(PcEvent::TrackOpen {
            track_id: track_id.clone(),
            stream_id,
            kind,
        });
        self.remote.insert(track_id, Remote { state });
    }

    /// Closes the core (it queues its goodbyes: DTLS close_notify) and collects them.
    pub(crate) fn close(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) {
        let _ = self.pc.close();
        while let Some(w) = self.pc.poll_write() {
            out.push((w.transport.peer_addr, w.message));
        }
        for r in self.remote.values() {
            r.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stats
                .ended = true;
        }
        self.state = PcState::Closed;
        self.shared.set_state(PcState::Closed);
        let _ = self.events.send(PcEvent::State(PcState::Closed));
    }

    /// Number of our tracks (media timers).
    pub(crate) fn sender_count(&self) -> usize {
        self.senders.len()
    }
}
