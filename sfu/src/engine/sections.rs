//! The media sections of a connection: the sendonly legs of a subscriber connection and
//! the remote tracks of a publisher connection — creating and stopping them, what they
//! negotiated, and writing RTP / PLIs through them.

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::event::RTCTrackEventInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId,
    RTCRtpTransceiverInit,
};
use std::time::Instant;
use tracing::warn;

use crate::error::SfuError;
use crate::forward::{NegotiatedCodec, NegotiatedExtension, NegotiatedParams};
use crate::types::MediaKind;

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

/// Adds a sendonly leg; returns its sender.
pub(crate) fn add_leg(
    pc: &mut RTCPeerConnection,
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
pub(crate) fn remove_leg(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId) {
    if let Err(err) = pc.remove_track(sender) {
        warn!(%err, "removing a subscriber leg failed");
    }
}

/// What a leg negotiated (after the answer).
pub(crate) fn sender_params(
    pc: &mut RTCPeerConnection,
    sender: RTCRtpSenderId,
) -> Option<NegotiatedParams> {
    let mut s = pc.rtp_sender(sender)?;
    Some(negotiated(&s.get_parameters().rtp_parameters))
}

/// Kind, codec and negotiated parameters of a remote track whose first packet came.
pub(crate) fn remote_track(
    pc: &mut RTCPeerConnection,
    init: &RTCTrackEventInit,
) -> Option<RemoteTrack> {
    let mut r = pc.rtp_receiver(init.receiver_id)?;
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

/// The rid rtc learned for `ssrc` on a remote track (simulcast), if any.
pub(crate) fn rid_of(
    pc: &mut RTCPeerConnection,
    receiver: RTCRtpReceiverId,
    ssrc: u32,
) -> Option<String> {
    let r = pc.rtp_receiver(receiver)?;
    r.track().rid(ssrc).map(|rid| rid.to_string())
}

/// Whether the remote track of `receiver` is still sent to us after the last negotiation.
/// rtc 0.21.1 never emits `RTCTrackEvent::OnClose`, so a track the client removed (its
/// section now inactive or recvonly) is found this way.
pub(crate) fn still_receiving(pc: &mut RTCPeerConnection, receiver: RTCRtpReceiverId) -> bool {
    pc.rtp_transceiver(RTCRtpTransceiverId::from(receiver))
        .is_some_and(|t| t.receiver().is_some() && t.current_direction().has_recv())
}

/// Writes one (already rewritten) RTP packet to a leg.
pub(crate) fn write_rtp(
    pc: &mut RTCPeerConnection,
    now: Instant,
    sender: RTCRtpSenderId,
    packet: Packet,
) -> Result<(), SfuError> {
    let mut s = pc.rtp_sender(sender).ok_or(SfuError::Closed)?;
    s.write_rtp(now, packet).map_err(SfuError::webrtc)
}

/// Sends a PLI for `media_ssrc` on a remote track's receiver.
pub(crate) fn write_pli(
    pc: &mut RTCPeerConnection,
    now: Instant,
    receiver: RTCRtpReceiverId,
    media_ssrc: u32,
) -> Result<(), SfuError> {
    let mut r = pc.rtp_receiver(receiver).ok_or(SfuError::Closed)?;
    let pli = PictureLossIndication {
        sender_ssrc: 0,
        media_ssrc,
    };
    r.write_rtcp(now, vec![Box::new(pli)])
        .map_err(SfuError::webrtc)
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
