//! Building server peer connections (webrtc 0.21) and turning their callbacks into
//! [`SfuEvent`]s.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, SenderReportBuilder, Slot,
    TwccReceiverBuilder,
};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn, Instrument};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceCandidateType, RTCIceServer,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, Registry, SettingEngine,
    SettingEngineBuilder,
};

use crate::config::SfuConfig;
use crate::error::SfuError;
use crate::participant::ParticipantInner;
use crate::ports::{PortAllocator, PortLease};
use crate::rtcp::KeyframeRequestForwarder;
use crate::types::{IceCandidate, IceServer, PcRole, SfuEvent};

/// ICE connectivity-check interval while connecting (webrtc's default: 200 ms).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Interceptor slot of the keyframe-request forwarder: after every default interceptor.
const KEYFRAME_FORWARDER_SLOT: usize = 14_000;

/// First `a=mid:` of an SDP (the bundle's transport section) and the first `a=ice-ufrag:`.
pub(crate) fn sdp_first_mid_and_ufrag(sdp: &str) -> (Option<String>, Option<String>) {
    let mut mid = None;
    let mut ufrag = None;
    for line in sdp.lines() {
        let line = line.trim_end();
        if mid.is_none() {
            if let Some(v) = line.strip_prefix("a=mid:") {
                mid = Some(v.to_owned());
            }
        }
        if ufrag.is_none() {
            if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                ufrag = Some(v.to_owned());
            }
        }
    }
    (mid, ufrag)
}

/// 1:1 NAT: host candidates announce the public address(es) instead of the bind address.
///
/// webrtc 0.21 stores `SettingEngine::with_nat_1to1_ips` but never reads it (no code path
/// uses it), so the SFU rewrites the candidates it hands to signaling itself. Connectivity
/// checks arriving through the NAT reach the bound socket unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HostRewrite {
    public_ips: Vec<IpAddr>,
}

impl HostRewrite {
    pub(crate) fn new(public_ips: &[IpAddr]) -> Self {
        HostRewrite {
            public_ips: public_ips.to_vec(),
        }
    }

    /// The candidate lines to announce for one gathered candidate (`candidate:...`, with or
    /// without an `a=` prefix): one per public ip for a host candidate, else unchanged.
    pub(crate) fn candidate(&self, line: &str) -> Vec<String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_host = fields.len() >= 8 && fields[6] == "typ" && fields[7] == "host";
        if self.public_ips.is_empty() || !is_host || fields[4].parse::<IpAddr>().is_err() {
            return vec![line.to_owned()];
        }
        self.public_ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let mut f: Vec<String> = fields.iter().map(|s| (*s).to_owned()).collect();
                if i > 0 {
                    // Distinct foundation per address.
                    f[0] = format!("{}{i}", f[0]);
                }
                f[4] = ip.to_string();
                f.join(" ")
            })
            .collect()
    }

    /// Rewrites the `a=candidate:` lines of an SDP.
    pub(crate) fn sdp(&self, sdp: &str) -> String {
        if self.public_ips.is_empty() || !sdp.contains("a=candidate:") {
            return sdp.to_owned();
        }
        let mut out = String::with_capacity(sdp.len() + 64);
        for line in sdp.split_inclusive('\n') {
            let body = line.trim_end_matches(['\r', '\n']);
            if body.starts_with("a=candidate:") {
                let eol = &line[body.len()..];
                for l in self.candidate(body) {
                    out.push_str(&l);
                    out.push_str(if eol.is_empty() { "\r\n" } else { eol });
                }
            } else {
                out.push_str(line);
            }
        }
        out
    }
}

#[derive(Default)]
struct CandidateGate {
    released: bool,
    queued: Vec<String>,
    mid: Option<String>,
    ufrag: Option<String>,
}

/// State one peer connection's callbacks share with the participant: the event channel,
/// whether it is connected, and the candidate gate (candidates are held back until the
/// description they belong to has been handed to signaling).
pub(crate) struct PcSignals {
    role: PcRole,
    events: UnboundedSender<SfuEvent>,
    rewrite: HostRewrite,
    connected: AtomicBool,
    gate: Mutex<CandidateGate>,
}

impl PcSignals {
    pub(crate) fn new(
        role: PcRole,
        events: UnboundedSender<SfuEvent>,
        rewrite: HostRewrite,
    ) -> Arc<Self> {
        Arc::new(PcSignals {
            role,
            events,
            rewrite,
            connected: AtomicBool::new(false),
            gate: Mutex::new(CandidateGate::default()),
        })
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    fn send_candidate(&self, candidate: &str, gate: &CandidateGate) {
        for candidate in self.rewrite.candidate(candidate) {
            let _ = self.events.send(SfuEvent::IceCandidate {
                pc: self.role,
                candidate: IceCandidate {
                    candidate,
                    sdp_mid: gate.mid.clone(),
                    sdp_mline_index: Some(0),
                    username_fragment: gate.ufrag.clone(),
                },
            });
        }
    }

    /// The SDP to hand to signaling for a local description (candidates rewritten).
    pub(crate) fn outgoing_sdp(&self, sdp: &str) -> String {
        self.rewrite.sdp(sdp)
    }

    /// Records the mid/ufrag of the local description just applied.
    pub(crate) fn set_local_description(&self, sdp: &str) {
        let (mid, ufrag) = sdp_first_mid_and_ufrag(sdp);
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        gate.mid = mid;
        gate.ufrag = ufrag;
    }

    /// Hold new candidates until [`Self::release_candidates`] (a new local description, which
    /// may carry new ICE credentials, is about to be applied).
    pub(crate) fn hold_candidates(&self) {
        self.gate.lock().unwrap_or_else(|e| e.into_inner()).released = false;
    }

    /// The local description has been handed out: flush held candidates, stop holding.
    pub(crate) fn release_candidates(&self) {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        gate.released = true;
        for c in std::mem::take(&mut gate.queued) {
            self.send_candidate(&c, &gate);
        }
    }

    fn on_candidate(&self, candidate: String) {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        if gate.released {
            self.send_candidate(&candidate, &gate);
        } else {
            gate.queued.push(candidate);
        }
    }

    fn on_state(&self, state: RTCPeerConnectionState) {
        self.connected.store(
            state == RTCPeerConnectionState::Connected,
            Ordering::Release,
        );
        let _ = self.events.send(SfuEvent::ConnectionState {
            pc: self.role,
            state: state.to_string(),
        });
    }
}

/// The event handler of one server peer connection. Its callbacks run on the connection's
/// driver task, so they only record, send on unbounded channels, or spawn.
pub(crate) struct PcHandler {
    pub(crate) signals: Arc<PcSignals>,
    /// Set once the participant exists (publisher connection only: receives `on_track`).
    pub(crate) participant: OnceLock<Weak<ParticipantInner>>,
    pub(crate) span: tracing::Span,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PcHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _g = self.span.enter();
                debug!(pc = self.signals.role.as_str(), candidate = %init.candidate, "local candidate");
                self.signals.on_candidate(init.candidate)
            }
            Err(err) => warn!(parent: &self.span, %err, "unserialisable local candidate"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        debug!(parent: &self.span, pc = self.signals.role.as_str(), %state, "connection state");
        self.signals.on_state(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if self.signals.role != PcRole::Publisher {
            return;
        }
        let Some(participant) = self.participant.get().and_then(Weak::upgrade) else {
            return;
        };
        tokio::spawn(
            participant
                .run_remote_track(track)
                .instrument(self.span.clone()),
        );
    }
}

/// The interceptors of one server connection, by role. The media engine gets exactly
/// what webrtc's defaults register (feedback types, header extensions: the SDP is the
/// same), but each chain only holds the interceptors its direction uses, because every
/// packet walks the whole chain (measured with `theraroom-load`: fewer hops, fewer
/// copies of each packet):
/// - publisher connection (the server only receives media): NACK generator, TWCC
///   feedback, receiver reports;
/// - subscriber connection (the server only sends media): NACK responder (retransmits
///   from its buffer), sender reports, and the keyframe-request forwarder.
fn interceptors(role: PcRole, media_engine: &mut MediaEngine) -> Result<Registry, SfuError> {
    // Registers the defaults' codecs feedback and extensions on the media engine; the
    // interceptors it builds are dropped and re-chosen below.
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

fn setting_engine(config: &SfuConfig) -> SettingEngine {
    let network = match config.bind_ip {
        IpAddr::V4(_) => NetworkType::Udp4,
        IpAddr::V6(_) => NetworkType::Udp6,
    };
    let mut b = SettingEngineBuilder::new()
        // mDNS would bind 0.0.0.0:5353 and answer on every interface: off.
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_network_types(vec![network])
        .with_include_loopback_candidate(config.bind_ip.is_loopback())
        // Clients trickle their candidates after the description, so their first
        // checks often arrive before the candidate does and the pair is peer-reflexive.
        // webrtc's default holds the nomination of such a pair for 1 s (browsers do
        // not): that second was most of the join time measured by `theraroom-load`.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        // Connectivity checks every 50 ms instead of 200 ms while connecting (the
        // interval only matters until the pair is nominated).
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
        .with_lite(config.ice_lite);
    if !config.public_ips.is_empty() {
        b = b.with_nat_1to1_ips(
            config.public_ips.iter().map(ToString::to_string).collect(),
            RTCIceCandidateType::Host,
        );
    }
    b.build()
}

fn ice_servers(servers: &[IceServer]) -> Vec<RTCIceServer> {
    servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect()
}

/// Builds one server peer connection bound to `config.bind_ip` (a port of the configured
/// range, retrying if another process took the probed port meanwhile).
pub(crate) async fn build_peer_connection(
    config: &SfuConfig,
    ports: &PortAllocator,
    servers: &[IceServer],
    handler: Arc<PcHandler>,
) -> Result<(Arc<dyn PeerConnection>, PortLease), SfuError> {
    let role = handler.signals.role;
    let mut last_err = SfuError::NoPortAvailable;
    for _ in 0..ports.attempts() {
        let lease = ports.acquire().ok_or(SfuError::NoPortAvailable)?;
        let addr = SocketAddr::new(config.bind_ip, lease.port());

        let mut media_engine = MediaEngine::default();
        media_engine
            .register_default_codecs()
            .map_err(SfuError::webrtc)?;
        let registry = interceptors(role, &mut media_engine)?;
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(ice_servers(servers))
            .build();

        let built = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting_engine(config))
            .with_handler(Arc::clone(&handler) as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(vec![addr])
            .build()
            .await;
        match built {
            Ok(pc) => return Ok((Arc::new(pc), lease)),
            Err(err) if config.has_port_range() => {
                warn!(%addr, %err, "binding a peer connection failed, trying the next port");
                last_err = SfuError::webrtc(err);
            }
            Err(err) => return Err(SfuError::webrtc(err)),
        }
    }
    Err(last_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_mid_and_ufrag() {
        let sdp = "v=0\r\na=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:abcd\r\na=mid:0\r\nm=audio 9 x 111\r\na=mid:1\r\n";
        assert_eq!(
            sdp_first_mid_and_ufrag(sdp),
            (Some("0".to_owned()), Some("abcd".to_owned()))
        );
        assert_eq!(sdp_first_mid_and_ufrag("v=0\r\n"), (None, None));
    }

    #[test]
    fn host_candidates_are_rewritten_to_public_ips() {
        let rw = HostRewrite::new(&[
            "203.0.113.7".parse().unwrap(),
            "203.0.113.8".parse().unwrap(),
        ]);
        let c = "candidate:123 1 udp 2130706431 10.0.0.5 50000 typ host";
        assert_eq!(
            rw.candidate(c),
            vec![
                "candidate:123 1 udp 2130706431 203.0.113.7 50000 typ host".to_owned(),
                "candidate:1231 1 udp 2130706431 203.0.113.8 50000 typ host".to_owned(),
            ]
        );
        let relay =
            "candidate:9 1 udp 16777215 198.51.100.1 3478 typ relay raddr 10.0.0.5 rport 50000";
        assert_eq!(rw.candidate(relay), vec![relay.to_owned()]);
        assert_eq!(HostRewrite::default().candidate(c), vec![c.to_owned()]);
        let sdp = "v=0\r\na=mid:0\r\na=candidate:123 1 udp 2130706431 10.0.0.5 50000 typ host\r\na=end-of-candidates\r\n";
        let out = HostRewrite::new(&["203.0.113.7".parse().unwrap()]).sdp(sdp);
        assert_eq!(
            out,
            "v=0\r\na=mid:0\r\na=candidate:123 1 udp 2130706431 203.0.113.7 50000 typ host\r\na=end-of-candidates\r\n"
        );
    }

    #[test]
    fn candidates_are_held_until_released() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let s = PcSignals::new(PcRole::Subscriber, tx, HostRewrite::default());
        s.on_candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host".into());
        assert!(rx.try_recv().is_err());
        s.set_local_description("a=ice-ufrag:u1\r\na=mid:0\r\n");
        s.release_candidates();
        match rx.try_recv().unwrap() {
            SfuEvent::IceCandidate { pc, candidate } => {
                assert_eq!(pc, PcRole::Subscriber);
                assert_eq!(candidate.sdp_mid.as_deref(), Some("0"));
                assert_eq!(candidate.sdp_mline_index, Some(0));
                assert_eq!(candidate.username_fragment.as_deref(), Some("u1"));
            }
            other => panic!("unexpected {other:?}"),
        }
        s.on_candidate("candidate:2 1 udp 1 127.0.0.1 5001 typ host".into());
        assert!(matches!(rx.try_recv(), Ok(SfuEvent::IceCandidate { .. })));
    }
}
