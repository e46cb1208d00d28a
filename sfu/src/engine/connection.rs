//! One server peer connection: the sans-IO `rtc` connection plus what the core keeps
//! around it (local ICE credentials, early client candidates, connection state). Built on
//! first use, because a participant that never publishes needs no publisher connection.
//!
//! Everything a connection produces leaves through [`Ctx`]: datagrams into the transmit
//! queue, connection-state events for signaling, credentials and closure into the
//! demultiplexer, its next deadline into the timer heap ([`Connection::flush`]).

use std::time::Duration;

use bytes::BytesMut;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tracing::{debug, warn};

use super::candidates::EarlyCandidates;
use super::ctx::Ctx;
use super::io::{ConnKey, Peer, TimerKey, Transmit, Transport};
use super::sdp;
use super::sections::{self, LegSpec, RemoteTrack};
use super::setup;
use crate::error::SfuError;
use crate::estimate::SharedEstimate;
use crate::forward::NegotiatedParams;
use crate::stats::LogThrottle;
use crate::types::{IceCandidate, PcRole, SfuEvent};

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
    /// Downlink estimate from the client's congestion feedback (subscriber connections).
    estimate: SharedEstimate,
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
            estimate: SharedEstimate::default(),
        }
    }

    /// The downlink estimate in bits per second (subscriber connections whose client sends
    /// congestion feedback; `None` otherwise).
    pub(crate) fn estimate(&self) -> Option<u64> {
        self.estimate.get()
    }

    /// Whether the client's downlink overflowed lately (see [`SharedEstimate::congested`]).
    pub(crate) fn congested(&self) -> bool {
        self.estimate.congested()
    }

    fn role(&self) -> PcRole {
        self.key.role.role()
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
            self.pc = Some(setup::build(
                ctx.now,
                ctx.config,
                ctx.certificate,
                self.role(),
                &self.estimate,
            )?);
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

    /// Whether the connection came up and is now disconnected or failed (a connection
    /// still being set up is not down).
    pub(crate) fn is_down(&self) -> bool {
        self.ever_connected
            && matches!(
                self.state,
                RTCPeerConnectionState::Disconnected | RTCPeerConnectionState::Failed
            )
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
        sections::add_leg(self.pc(ctx)?, leg)
    }

    /// Stops a leg (the next offer marks its section inactive).
    pub(crate) fn remove_leg(&mut self, sender: RTCRtpSenderId) {
        if let Some(pc) = self.pc.as_mut() {
            sections::remove_leg(pc, sender);
        }
    }

    /// What a leg negotiated (after the answer).
    pub(crate) fn sender_params(&mut self, sender: RTCRtpSenderId) -> Option<NegotiatedParams> {
        sections::sender_params(self.pc.as_mut()?, sender)
    }

    /// Kind, codec and negotiated parameters of a remote track whose first packet came.
    pub(crate) fn remote_track(&mut self, init: &RTCTrackEventInit) -> Option<RemoteTrack> {
        sections::remote_track(self.pc.as_mut()?, init)
    }

    /// The rid of `ssrc` on the remote track of `receiver` (simulcast), if rtc knows it.
    pub(crate) fn rid_of(&mut self, receiver: RTCRtpReceiverId, ssrc: u32) -> Option<String> {
        sections::rid_of(self.pc.as_mut()?, receiver, ssrc)
    }

    /// Whether the remote track of `receiver` is still sent (see [`sections::still_receiving`]).
    pub(crate) fn still_receiving(&mut self, receiver: RTCRtpReceiverId) -> bool {
        self.pc
            .as_mut()
            .is_some_and(|pc| sections::still_receiving(pc, receiver))
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
    pub(crate) fn handle_datagram(&mut self, ctx: &Ctx<'_>, from: Peer, data: BytesMut) {
        let Some(pc) = self.pc.as_mut() else { return };
        let msg = TaggedBytesMut {
            now: ctx.now,
            transport: TransportContext {
                local_addr: ctx.config.local_addr,
                peer_addr: from.addr,
                ecn: None,
                transport_protocol: from.transport.protocol(),
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
        sections::write_rtp(self.built()?, ctx.now, sender, packet)
    }

    /// Sends a PLI for `media_ssrc` on a remote track's receiver.
    pub(crate) fn write_pli(
        &mut self,
        ctx: &Ctx<'_>,
        receiver: RTCRtpReceiverId,
        media_ssrc: u32,
    ) -> Result<(), SfuError> {
        sections::write_pli(self.built()?, ctx.now, receiver, media_ssrc)
    }

    /// Moves every datagram the connection wants to send into the transmit queue and puts
    /// its next deadline into the timer heap. Call after anything fed the connection.
    pub(crate) fn flush(&mut self, ctx: &mut Ctx<'_>) {
        let Some(pc) = self.pc.as_mut() else { return };
        while let Some(w) = pc.poll_write() {
            ctx.demux.note_sent(ctx.now, self.key, &w.message);
            ctx.out.transmits.push_back(transmit(w));
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
                ctx.out.transmits.push_back(transmit(w));
            }
        }
        self.pc = None;
        ctx.timers.remove(TimerKey::Conn(self.key));
        ctx.demux.remove(self.key);
    }
}

/// What rtc wants written, addressed by the transport of its selected pair.
fn transmit(w: TaggedBytesMut) -> Transmit {
    Transmit {
        to: Peer::remote_of(&w.transport),
        data: w.message,
    }
}

impl Transport {
    /// rtc's name for this transport.
    pub(crate) fn protocol(self) -> TransportProtocol {
        match self {
            Transport::Udp => TransportProtocol::UDP,
            Transport::Tcp => TransportProtocol::TCP,
        }
    }
}

impl Peer {
    /// The remote end of an rtc transport context (anything but TCP is UDP).
    pub(crate) fn remote_of(transport: &TransportContext) -> Peer {
        match transport.transport_protocol {
            TransportProtocol::TCP => Peer::tcp(transport.peer_addr),
            _ => Peer::udp(transport.peer_addr),
        }
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
