//! Building the rtc connection of one server peer connection: codecs, interceptors by
//! role, ICE settings, and the one host candidate (the worker's socket).

use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::ice::tcp_type::TcpType;
use rtc::interceptor::{
    CongestionControlBuilder, NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder,
    SenderReportBuilder, TwccReceiverBuilder, TwccSenderBuilder,
};
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::interceptor_registry::{
    register_default_interceptors, Registry, Slot,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};

use super::io::CoreConfig;
use super::publication::AUDIO_LEVEL_URI;
use crate::error::SfuError;
use crate::estimate::{DownlinkEstimator, SharedEstimate};
use crate::retransmit::NackLimiter;
use crate::rtcp::{FeedbackForwarder, LayerReportFilter};
use crate::types::PcRole;

/// ICE connectivity-check interval while connecting (rtc's default: 200 ms).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Packets each subscriber leg keeps for retransmission (NACK). rtc's default, 1,024, is
/// 15 s of video per leg and was most of the server's memory at 50 participants; a NACK
/// only helps within a round trip plus jitter. 128 packets are 0.6 s of 2 Mbit/s video,
/// 2 s of the load test's 500 kbit/s and 2.5 s of audio: several round trips, and more
/// than Janus keeps by default (200 ms).
const NACK_SEND_BUFFER_PACKETS: u16 = 128;
/// Interceptor slot of the keyframe-request forwarder: after every default interceptor.
const KEYFRAME_FORWARDER_SLOT: usize = 14_000;
/// Interceptor slot of the NACK limiter: wire-side of the NACK responder (4,000), so the
/// responder only sees requests within each packet's retransmission budget.
const NACK_LIMITER_SLOT: usize = 3_500;
/// Interceptor slot of the layer report filter: next to the wire, before every default
/// interceptor, so it sees the receiver reports on their way out.
const LAYER_REPORT_FILTER_SLOT: usize = 500;

/// The interceptors of one server connection, by role. The media engine gets exactly what
/// rtc's defaults register (feedback types, header extensions: the SDP is the same), but
/// each chain only holds the interceptors its direction uses:
/// - publisher (the server only receives): NACK generator, TWCC feedback, receiver reports
///   without the simulcast layers' blocks ([`LayerReportFilter`]);
/// - subscriber (the server only sends): NACK responder (retransmits from its buffer, at
///   most three times per packet: [`NackLimiter`]),
///   sender reports, the keyframe-request forwarder (PLI/FIR up to the application), and
///   send-side congestion control: transport-wide sequence numbers on every packet and
///   the downlink estimator fed by the subscriber's TWCC feedback, published to
///   `estimate` for the allocator. No pacer: the SFU forwards what arrives, and the
///   allocator keeps the rate under the estimate by choosing layers.
fn interceptors(
    role: PcRole,
    media_engine: &mut MediaEngine,
    estimate: &SharedEstimate,
) -> Result<Registry, SfuError> {
    drop(register_default_interceptors(Registry::new(), media_engine).map_err(SfuError::webrtc)?);
    Ok(match role {
        PcRole::Publisher => Registry::new()
            .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
            .with(
                Slot::from(LAYER_REPORT_FILTER_SLOT),
                LayerReportFilter::default(),
            ),
        PcRole::Subscriber => Registry::new()
            .with(Slot::from(NACK_LIMITER_SLOT), NackLimiter::default())
            .with(
                Slot::NackResponder,
                NackResponderBuilder::new()
                    .with_size(NACK_SEND_BUFFER_PACKETS)
                    .build(),
            )
            .with(Slot::SenderReport, SenderReportBuilder::new().build())
            .with(Slot::TwccSender, TwccSenderBuilder::new().build())
            .with(
                Slot::CongestionControl,
                CongestionControlBuilder::new(DownlinkEstimator::new(estimate.clone())).build(),
            )
            .with(
                Slot::from(KEYFRAME_FORWARDER_SLOT),
                FeedbackForwarder::default(),
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
pub(crate) fn build(
    now: Instant,
    config: &CoreConfig,
    certificate: Option<&RTCCertificate>,
    role: PcRole,
    estimate: &SharedEstimate,
) -> Result<RTCPeerConnection, SfuError> {
    let local = config.local_addr;
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_default_codecs()
        .map_err(SfuError::webrtc)?;
    register_audio_level(&mut media_engine)?;
    let registry = interceptors(role, &mut media_engine, estimate)?;
    let mut networks = vec![if local.is_ipv4() {
        NetworkType::Udp4
    } else {
        NetworkType::Udp6
    }];
    if config.ice_tcp {
        networks.push(if local.is_ipv4() {
            NetworkType::Tcp4
        } else {
            NetworkType::Tcp6
        });
    }
    let settings = SettingEngineBuilder::new()
        // No multicast: browsers' `.local` candidates are useless to a server anyway.
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_network_types(networks)
        // Clients trickle candidates after the description: their first checks create
        // peer-reflexive pairs, which must not wait a second before nomination.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
        .with_lite(config.ice_lite)
        .build();
    let mut configuration = RTCConfigurationBuilder::new();
    if let Some(certificate) = certificate {
        configuration = configuration.with_certificates(vec![certificate.clone()]);
    }
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(configuration.build())
        .with_media_engine(media_engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .build(now)
        .map_err(SfuError::webrtc)?;
    add_host_candidates(&mut pc, local, config.ice_tcp)?;
    Ok(pc)
}

/// Accepts (publisher) and sends on (subscriber legs) the RFC 6464 audio level that
/// browsers put in every audio packet: the room's speaker detection reads it, and
/// subscribers' browsers get the level of each remote voice with the audio.
pub(crate) fn register_audio_level(media_engine: &mut MediaEngine) -> Result<(), SfuError> {
    media_engine
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .map_err(SfuError::webrtc)
}

/// Gives `pc` its host candidates on `local` and ends gathering: UDP, and with `tcp` a
/// passive TCP candidate on the same address (RFC 6544: the worker listens there, the
/// client connects). Browsers rank TCP below UDP, so it is only used when UDP fails.
/// A test peer on its in-memory address gets its UDP candidate the same way.
pub(crate) fn add_host_candidates(
    pc: &mut RTCPeerConnection,
    local: std::net::SocketAddr,
    tcp: bool,
) -> Result<(), SfuError> {
    let mut transports = vec![("udp", TcpType::Unspecified)];
    if tcp {
        transports.push(("tcp", TcpType::Passive));
    }
    for (network, tcp_type) in transports {
        let host = CandidateHostConfig {
            base_config: CandidateConfig {
                network: network.to_owned(),
                address: local.ip().to_string(),
                port: local.port(),
                component: 1,
                ..Default::default()
            },
            tcp_type,
        }
        .new_candidate_host()
        .map_err(SfuError::webrtc)?;
        let init = RTCIceCandidate::from(&host)
            .to_json()
            .map_err(SfuError::webrtc)?;
        pc.add_local_candidate(init).map_err(SfuError::webrtc)?;
    }
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .map_err(SfuError::webrtc)
}
