//! The participant's two webrtc-rs (0.21) peer connections: the publisher (we offer,
//! carrying our VP8 + Opus tracks) and the subscriber (the server offers, carrying
//! everyone else), bound to one explicit IP, plus the reader tasks that account every
//! received packet.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceServer, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, Registry, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use super::protocol::{CandidateInit, ClientMessage, IceServerInfo, Kind, PcName};
use super::signal::Outgoing;
use super::stats::{now_micros, RemoteTrackState, RemoteTrackStats};
use super::ClientError;

/// Payload type of VP8 in webrtc-rs's default media engine (what our offer announces).
pub(crate) const VP8_PAYLOAD_TYPE: u8 = 96;
/// Payload type of Opus in webrtc-rs's default media engine.
pub(crate) const OPUS_PAYLOAD_TYPE: u8 = 111;

fn webrtc_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::WebRtc(e.to_string())
}

/// Holds local candidates back until the description they belong to has been sent:
/// the server must see the offer (answer) before candidates of that connection.
pub(crate) struct CandidateGate {
    pc: PcName,
    out: mpsc::UnboundedSender<Outgoing>,
    state: Mutex<(bool, Vec<CandidateInit>)>,
}

impl CandidateGate {
    fn new(pc: PcName, out: mpsc::UnboundedSender<Outgoing>) -> Arc<Self> {
        Arc::new(CandidateGate {
            pc,
            out,
            state: Mutex::new((false, Vec::new())),
        })
    }

    fn send(&self, candidate: CandidateInit) {
        let _ = self.out.send(Outgoing::Message(ClientMessage::Candidate {
            pc: self.pc,
            candidate: Some(candidate),
        }));
    }

    fn offer(&self, candidate: CandidateInit) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.0 {
            drop(st);
            self.send(candidate);
        } else {
            st.1.push(candidate);
        }
    }

    /// The description was sent: flush the held candidates and stop holding.
    pub(crate) fn release(&self) {
        let queued = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.0 = true;
            std::mem::take(&mut st.1)
        };
        for c in queued {
            self.send(c);
        }
    }
}

/// Remote tracks received on the subscriber connection, by track id.
#[derive(Default)]
pub(crate) struct ReceiveTable {
    tracks: Mutex<HashMap<String, Arc<Mutex<RemoteTrackState>>>>,
}

impl ReceiveTable {
    pub(crate) fn snapshot(&self) -> Vec<RemoteTrackStats> {
        let tracks: Vec<_> = self
            .tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut out: Vec<RemoteTrackStats> = tracks
            .iter()
            .map(|t| t.lock().unwrap_or_else(|e| e.into_inner()).stats.clone())
            .collect();
        out.sort_by(|a, b| (&a.stream_id, &a.track_id).cmp(&(&b.stream_id, &b.track_id)));
        out
    }

    pub(crate) fn get(&self, track_id: &str) -> Option<RemoteTrackStats> {
        let t = self
            .tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(track_id)
            .cloned()?;
        let st = t.lock().unwrap_or_else(|e| e.into_inner());
        Some(st.stats.clone())
    }

    /// Marks a track as ended (the server announced `track_unpublished`; webrtc-rs does
    /// not always end a remote track whose m-line was deactivated by renegotiation).
    pub(crate) fn mark_ended(&self, track_id: &str) {
        let t = self
            .tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(track_id)
            .cloned();
        if let Some(t) = t {
            t.lock().unwrap_or_else(|e| e.into_inner()).stats.ended = true;
        }
    }

    /// Registers a new remote track. A track id already taken (servers that reuse
    /// msid track ids across m-lines) gets a `#n` suffix so no track hides another.
    pub(crate) fn register(&self, state: RemoteTrackState) -> Arc<Mutex<RemoteTrackState>> {
        let mut tracks = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        let mut id = state.stats.track_id.clone();
        let mut n = 1;
        while tracks.contains_key(&id) {
            n += 1;
            id = format!("{}#{n}", state.stats.track_id);
        }
        let mut state = state;
        state.stats.track_id.clone_from(&id);
        let shared = Arc::new(Mutex::new(state));
        tracks.insert(id, Arc::clone(&shared));
        shared
    }
}

/// Reads one remote track until it ends, accounting every packet in its state.
async fn read_track(track: Arc<dyn TrackRemote>, table: Arc<ReceiveTable>) {
    let stream_id = track.stream_id().await;
    let track_id = track.track_id().await;
    let kind = match track.kind().await {
        RtpCodecKind::Video => Kind::Video,
        _ => Kind::Audio,
    };
    tracing::debug!(%stream_id, %track_id, ?kind, "remote track");
    let state = table.register(RemoteTrackState::new(track_id, stream_id, kind));
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(p) => {
                let (now, now_us) = (Instant::now(), now_micros());
                state.lock().unwrap_or_else(|e| e.into_inner()).on_packet(
                    p.header.ssrc,
                    &p.payload,
                    now,
                    now_us,
                );
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    state.lock().unwrap_or_else(|e| e.into_inner()).stats.ended = true;
}

/// Callbacks of one client peer connection. They run on the connection's driver task:
/// they only forward to channels or spawn.
struct Handler {
    gate: Arc<CandidateGate>,
    state: watch::Sender<RTCPeerConnectionState>,
    receive: Option<Arc<ReceiveTable>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => self.gate.offer(CandidateInit {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
                username_fragment: init.username_fragment,
            }),
            Err(e) => tracing::warn!(error = %e, "unserialisable local candidate"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(pc = ?self.gate.pc, %state, "client peer connection state");
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(table) = &self.receive {
            tokio::spawn(read_track(track, Arc::clone(table)));
        }
    }
}

/// One built client peer connection with its candidate gate and state.
pub(crate) struct ClientPc {
    pub(crate) pc: Arc<dyn PeerConnection>,
    pub(crate) gate: Arc<CandidateGate>,
    pub(crate) state: watch::Receiver<RTCPeerConnectionState>,
}

/// Builds a peer connection whose only socket is bound to `bind_ip` (ephemeral port),
/// without mDNS, gathering only candidates of that address family.
pub(crate) async fn build_pc(
    pc_name: PcName,
    bind_ip: IpAddr,
    ice_servers: &[IceServerInfo],
    out: mpsc::UnboundedSender<Outgoing>,
    receive: Option<Arc<ReceiveTable>>,
) -> Result<ClientPc, ClientError> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs().map_err(webrtc_err)?;
    let registry =
        register_default_interceptors(Registry::new(), &mut media_engine).map_err(webrtc_err)?;
    let network = match bind_ip {
        IpAddr::V4(_) => NetworkType::Udp4,
        IpAddr::V6(_) => NetworkType::Udp6,
    };
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_network_types(vec![network])
        .with_include_loopback_candidate(bind_ip.is_loopback())
        // Like a browser: nominate a peer-reflexive pair (the server's checks arriving
        // before its trickled candidate) at once instead of webrtc's 1 s hold, and check
        // every 50 ms while connecting, so join times measure the server, not this client.
        .with_prflx_acceptance_min_wait(Some(std::time::Duration::ZERO))
        .with_ice_connection_attempts(Some(std::time::Duration::from_millis(50)), None)
        .build();
    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(
            ice_servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone().unwrap_or_default(),
                    credential: s.credential.clone().unwrap_or_default(),
                })
                .collect(),
        )
        .build();
    let gate = CandidateGate::new(pc_name, out);
    let (state_tx, state_rx) = watch::channel(RTCPeerConnectionState::New);
    let handler = Handler {
        gate: Arc::clone(&gate),
        state: state_tx,
        receive,
    };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(vec![SocketAddr::new(bind_ip, 0)])
        .build()
        .await
        .map_err(webrtc_err)?;
    Ok(ClientPc {
        pc: Arc::new(pc),
        gate,
        state: state_rx,
    })
}

/// One of our published tracks.
#[derive(Clone)]
pub(crate) struct LocalTrack {
    pub(crate) track: Arc<TrackLocalStaticRTP>,
    pub(crate) kind: Kind,
    pub(crate) ssrc: u32,
    pub(crate) payload_type: u8,
    pub(crate) track_id: String,
}

/// Creates a local track of `kind` with a random SSRC and adds it `sendonly` to `pc`.
pub(crate) async fn add_local_track(
    pc: &Arc<dyn PeerConnection>,
    stream_id: &str,
    kind: Kind,
) -> Result<LocalTrack, ClientError> {
    let ssrc = rand::random::<u32>() | 1;
    let (track_id, codec_kind, mime, clock_rate, channels, payload_type) = match kind {
        Kind::Video => (
            "camera",
            RtpCodecKind::Video,
            "video/VP8",
            90_000,
            0,
            VP8_PAYLOAD_TYPE,
        ),
        Kind::Audio => (
            "microphone",
            RtpCodecKind::Audio,
            "audio/opus",
            48_000,
            2,
            OPUS_PAYLOAD_TYPE,
        ),
    };
    let track_id = format!("{stream_id}-{track_id}");
    let description = MediaStreamTrack::new(
        stream_id.to_owned(),
        track_id.clone(),
        track_id.clone(),
        codec_kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    );
    let track = Arc::new(TrackLocalStaticRTP::new(description));
    pc.add_transceiver_from_track(
        Arc::clone(&track) as Arc<dyn TrackLocal>,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            ..Default::default()
        }),
    )
    .await
    .map_err(webrtc_err)?;
    Ok(LocalTrack {
        track,
        kind,
        ssrc,
        payload_type,
        track_id,
    })
}
