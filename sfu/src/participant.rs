//! One participant: its publisher connection (client offers, server receives) and its
//! subscriber connection (server offers, server sends one leg per remote track).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn, Instrument};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender};

use crate::error::SfuError;
use crate::fanout::LEG_QUEUE_CAPACITY;
use crate::forward::{is_primary_media, LegMapping, NegotiatedParams, SourceSelector};
use crate::peer::{build_peer_connection, HostRewrite, PcHandler, PcSignals};
use crate::plan::{diff_subscriptions, OfferDecision, OfferState};
use crate::ports::PortLease;
use crate::publication::{negotiated, run_leg_rtcp, run_leg_writer, LegSink, Publication};
use crate::room::RoomInner;
use crate::rtcp::spawn_keyframe_task;
use crate::sfu::SfuShared;
use crate::stats::{Gauge, LogThrottle};
use crate::types::{IceCandidate, IceServer, MediaKind, PcRole, SfuEvent, TrackInfo};

/// How long the forwarded SSRC of a track must be silent before another one is taken.
const SOURCE_SWITCH_AFTER: Duration = Duration::from_millis(500);

/// A participant of a room, as handed to signaling. Cheap to clone.
#[derive(Clone)]
pub struct Participant {
    pub(crate) inner: Arc<ParticipantInner>,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("id", &self.inner.id)
            .finish()
    }
}

struct Leg {
    publication: Weak<Publication>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    mapping: watch::Sender<Option<Arc<LegMapping>>>,
}

#[derive(Default)]
struct Legs {
    closed: bool,
    by_track: HashMap<String, Leg>,
}

/// Most client candidates kept per connection while its remote description is missing
/// (a browser gathers a handful; the rest is abuse). Extra ones are dropped and counted.
pub const MAX_EARLY_CANDIDATES: usize = 64;
/// Most bytes of candidate text kept per connection before its remote description.
pub const MAX_EARLY_CANDIDATE_BYTES: usize = 32 * 1024;

/// One "early candidate dropped" line per second for the whole process.
static DROPPED_CANDIDATE_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(1));

/// Client candidates that arrived before the remote description, bounded by count and
/// bytes.
#[derive(Default)]
struct EarlyCandidates {
    list: Vec<RTCIceCandidateInit>,
    bytes: usize,
}

impl EarlyCandidates {
    /// Keeps `c` if there is room; false when it was dropped.
    fn push(&mut self, c: RTCIceCandidateInit) -> bool {
        let size = c.candidate.len()
            + c.sdp_mid.as_ref().map_or(0, String::len)
            + c.username_fragment.as_ref().map_or(0, String::len);
        if self.list.len() >= MAX_EARLY_CANDIDATES || self.bytes + size > MAX_EARLY_CANDIDATE_BYTES
        {
            return false;
        }
        self.bytes += size;
        self.list.push(c);
        true
    }

    fn take(&mut self) -> Vec<RTCIceCandidateInit> {
        self.bytes = 0;
        std::mem::take(&mut self.list)
    }
}

#[derive(Default)]
struct PublisherNegotiation {
    pending_candidates: EarlyCandidates,
}

#[derive(Default)]
struct SubscriberNegotiation {
    offer: OfferState,
    pending_candidates: EarlyCandidates,
    /// The next offer restarts ICE.
    ice_restart: bool,
}

pub(crate) struct ParticipantInner {
    pub(crate) id: String,
    room: Weak<RoomInner>,
    shared: Arc<SfuShared>,
    pub(crate) events: mpsc::UnboundedSender<SfuEvent>,
    pub(crate) span: tracing::Span,
    publisher: Arc<dyn PeerConnection>,
    subscriber: Arc<dyn PeerConnection>,
    pub_signals: Arc<PcSignals>,
    sub_signals: Arc<PcSignals>,
    pub_neg: tokio::sync::Mutex<PublisherNegotiation>,
    sub_neg: tokio::sync::Mutex<SubscriberNegotiation>,
    legs: Mutex<Legs>,
    sink: Arc<LegSink>,
    closed: AtomicBool,
    leases: Mutex<Vec<PortLease>>,
}

impl ParticipantInner {
    pub(crate) async fn create(
        room: &Arc<RoomInner>,
        id: &str,
        ice_servers: Vec<IceServer>,
        events: mpsc::UnboundedSender<SfuEvent>,
    ) -> Result<Arc<Self>, SfuError> {
        let shared = Arc::clone(room.shared());
        let span = tracing::info_span!(parent: room.span(), "sfu_participant", room_id = %room.id(), participant_id = %id);
        let rewrite = HostRewrite::new(&shared.config.public_ips);
        let pub_signals = PcSignals::new(PcRole::Publisher, events.clone(), rewrite.clone());
        let sub_signals = PcSignals::new(PcRole::Subscriber, events.clone(), rewrite);
        let pub_handler = Arc::new(PcHandler {
            signals: Arc::clone(&pub_signals),
            participant: OnceLock::new(),
            span: span.clone(),
        });
        let sub_handler = Arc::new(PcHandler {
            signals: Arc::clone(&sub_signals),
            participant: OnceLock::new(),
            span: span.clone(),
        });
        let (publisher, pub_lease) = build_peer_connection(
            &shared.config,
            &shared.ports,
            &ice_servers,
            Arc::clone(&pub_handler),
        )
        .instrument(span.clone())
        .await?;
        let (subscriber, sub_lease) = match build_peer_connection(
            &shared.config,
            &shared.ports,
            &ice_servers,
            Arc::clone(&sub_handler),
        )
        .instrument(span.clone())
        .await
        {
            Ok(v) => v,
            Err(e) => {
                let _ = publisher.close().await;
                return Err(e);
            }
        };
        let sink = Arc::new(LegSink {
            signals: Arc::clone(&sub_signals),
            events: events.clone(),
            media_flowing: AtomicBool::new(false),
            counters: Arc::clone(&shared.counters),
        });
        let inner = Arc::new(ParticipantInner {
            id: id.to_owned(),
            room: Arc::downgrade(room),
            shared,
            events,
            span,
            publisher,
            subscriber,
            pub_signals,
            sub_signals,
            pub_neg: Default::default(),
            sub_neg: Default::default(),
            legs: Mutex::new(Legs::default()),
            sink,
            closed: AtomicBool::new(false),
            leases: Mutex::new(vec![pub_lease, sub_lease]),
        });
        let _ = pub_handler.participant.set(Arc::downgrade(&inner));
        let _ = sub_handler.participant.set(Arc::downgrade(&inner));
        debug!(parent: &inner.span, "participant created");
        Ok(inner)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn room(&self) -> Result<Arc<RoomInner>, SfuError> {
        self.room.upgrade().ok_or(SfuError::Closed)
    }

    fn check_open(&self) -> Result<(), SfuError> {
        if self.is_closed() {
            Err(SfuError::Closed)
        } else {
            Ok(())
        }
    }

    // ----- publisher connection -------------------------------------------------------

    async fn handle_publisher_offer(&self, sdp: String) -> Result<String, SfuError> {
        let mut neg = self.pub_neg.lock().await;
        self.check_open()?;
        let offer =
            RTCSessionDescription::offer(sdp).map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        self.publisher
            .set_remote_description(offer)
            .await
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        for c in neg.pending_candidates.take() {
            if let Err(err) = self.publisher.add_ice_candidate(c).await {
                warn!(%err, "buffered publisher candidate rejected");
            }
        }
        let answer = self
            .publisher
            .create_answer(None)
            .await
            .map_err(SfuError::webrtc)?;
        self.pub_signals.hold_candidates();
        let applied = self.publisher.set_local_description(answer).await;
        if let Err(err) = applied {
            self.pub_signals.release_candidates();
            return Err(SfuError::webrtc(err));
        }
        let Some(local) = self.publisher.local_description().await else {
            self.pub_signals.release_candidates();
            return Err(SfuError::WebRtc("no local description after answer".into()));
        };
        self.pub_signals.set_local_description(&local.sdp);
        let sdp = self.pub_signals.outgoing_sdp(&local.sdp);
        self.pub_signals.release_candidates();
        debug!("publisher answer created");
        Ok(sdp)
    }

    /// Reads one remote track of the publisher connection for its whole life: publishes it
    /// in the room, fans its packets out, unpublishes it at the end.
    pub(crate) async fn run_remote_track(self: Arc<Self>, track: Arc<dyn TrackRemote>) {
        let wanted_id = track.track_id().await;
        let kind = match track.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            RtpCodecKind::Video => MediaKind::Video,
            other => {
                warn!(?other, "remote track of unsupported kind ignored");
                return;
            }
        };
        let first_ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
        let source = self.receiver_params(&track).await;
        let codec = match track.codec(first_ssrc).await {
            Some(c) if !c.mime_type.is_empty() => c,
            _ => match source
                .codecs
                .iter()
                .find(|c| is_primary_media(&c.mime_type))
            {
                Some(c) => RTCRtpCodec {
                    mime_type: c.mime_type.clone(),
                    clock_rate: c.clock_rate,
                    ..Default::default()
                },
                None => {
                    warn!(track = %wanted_id, "remote track without a known codec ignored");
                    return;
                }
            },
        };
        let Ok(room) = self.room() else { return };
        let media_ssrc = Arc::new(AtomicU32::new(first_ssrc));
        let keyframes = (kind == MediaKind::Video).then(|| {
            spawn_keyframe_task(
                Arc::clone(&track),
                Arc::clone(&media_ssrc),
                Arc::clone(&self.shared.counters),
                self.span.clone(),
            )
        });
        let publisher_id = self.id.clone();
        let mime = codec.mime_type.clone();
        let publication = room.publish(&self, &wanted_id, |track_id| {
            Arc::new(Publication::new(
                publisher_id.clone(),
                TrackInfo {
                    track_id,
                    kind,
                    stream_id: publisher_id.clone(),
                },
                codec,
                source,
                keyframes,
            ))
        });
        let Some(publication) = publication else {
            return;
        };
        info!(track_id = %publication.info.track_id, kind = kind.as_str(), %mime, ssrc = first_ssrc, "track published");

        let counters = Arc::clone(&self.shared.counters);
        let mut selector = SourceSelector::new(SOURCE_SWITCH_AFTER);
        // Keep this loop tight: the driver drops packets once 256 are waiting here.
        while let Some(event) = track.poll().await {
            match event {
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    let ssrc = packet.header.ssrc;
                    if !selector.accept(ssrc, Instant::now()) {
                        continue;
                    }
                    if media_ssrc.load(Ordering::Relaxed) != ssrc {
                        media_ssrc.store(ssrc, Ordering::Relaxed);
                    }
                    let outcome = publication.fanout.push(packet);
                    if outcome.dropped > 0 {
                        counters.dropped(outcome.dropped as u64);
                    }
                }
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
        }
        debug!(track_id = %publication.info.track_id, "remote track ended");
        room.unpublish(&publication).await;
    }

    async fn receiver_params(&self, track: &Arc<dyn TrackRemote>) -> NegotiatedParams {
        for receiver in self.publisher.get_receivers().await {
            if std::ptr::addr_eq(Arc::as_ptr(receiver.track()), Arc::as_ptr(track)) {
                match receiver.get_parameters().await {
                    Ok(p) => return negotiated(&p.rtp_parameters),
                    Err(err) => warn!(%err, "receiver parameters unavailable"),
                }
            }
        }
        NegotiatedParams::default()
    }

    // ----- subscriber connection ------------------------------------------------------

    /// Brings the subscriber connection in line with the room's tracks and sends an offer
    /// if needed (or defers it while one is outstanding).
    pub(crate) async fn renegotiate_subscriber(&self) -> Result<(), SfuError> {
        let mut neg = self.sub_neg.lock().await;
        if self.is_closed() {
            return Ok(());
        }
        if neg.offer.on_change() == OfferDecision::Deferred {
            debug!("subscriber offer outstanding, change deferred");
            return Ok(());
        }
        let room = self.room()?;
        let desired = room.publications_for(&self.id);
        let desired_ids: Vec<String> = desired.iter().map(|p| p.info.track_id.clone()).collect();
        let current: Vec<String> = self.legs_guard().by_track.keys().cloned().collect();
        let diff = diff_subscriptions(&desired_ids, &current);

        for track_id in &diff.remove {
            let leg = self.legs_guard().by_track.remove(track_id);
            if let Some(leg) = leg {
                self.shared.counters.sub(Gauge::ForwardedTracks, 1);
                if let Some(p) = leg.publication.upgrade() {
                    p.fanout.detach(&self.id);
                }
                if let Err(err) = self.subscriber.remove_track(&leg.sender).await {
                    warn!(%err, %track_id, "removing subscriber leg failed");
                }
                debug!(%track_id, "subscriber leg removed");
            }
        }
        for publication in desired
            .iter()
            .filter(|p| diff.add.contains(&p.info.track_id))
        {
            if let Err(err) = self.add_leg(publication).await {
                warn!(%err, track_id = %publication.info.track_id, "adding subscriber leg failed");
            }
        }

        let legs = self.legs_guard().by_track.len();
        if !neg
            .offer
            .should_send(legs, !diff.is_empty() || neg.ice_restart)
        {
            return Ok(());
        }
        let options =
            std::mem::take(&mut neg.ice_restart).then_some(RTCOfferOptions { ice_restart: true });
        let offer = self
            .subscriber
            .create_offer(options)
            .await
            .map_err(SfuError::webrtc)?;
        self.sub_signals.hold_candidates();
        let applied = self.subscriber.set_local_description(offer).await;
        if let Err(err) = applied {
            self.sub_signals.release_candidates();
            return Err(SfuError::webrtc(err));
        }
        let Some(local) = self.subscriber.local_description().await else {
            self.sub_signals.release_candidates();
            return Err(SfuError::WebRtc("no local description after offer".into()));
        };
        neg.offer.offer_sent();
        self.sub_signals.set_local_description(&local.sdp);
        let sdp = self.sub_signals.outgoing_sdp(&local.sdp);
        let _ = self.events.send(SfuEvent::SubscriberOffer { sdp });
        self.sub_signals.release_candidates();
        debug!(legs, "subscriber offer sent");
        Ok(())
    }

    fn legs_guard(&self) -> std::sync::MutexGuard<'_, Legs> {
        self.legs.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn add_leg(&self, publication: &Arc<Publication>) -> Result<(), SfuError> {
        let ssrc = loop {
            let s = rand::random::<u32>();
            if s != 0 {
                break s;
            }
        };
        let kind = match publication.info.kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let track_id = publication.info.track_id.clone();
        let track = MediaStreamTrack::new(
            publication.publisher_id.clone(),
            track_id.clone(),
            track_id.clone(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: publication.codec.clone(),
                ..Default::default()
            }],
        );
        let local = Arc::new(TrackLocalStaticRTP::new(track));
        let transceiver = self
            .subscriber
            .add_transceiver_from_track(
                Arc::clone(&local) as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    // MediaStream id seen by the subscriber = publisher's participant id.
                    streams: vec![publication.publisher_id.clone()],
                    ..Default::default()
                }),
            )
            .await
            .map_err(SfuError::webrtc)?;
        let sender = transceiver
            .sender()
            .await
            .map_err(SfuError::webrtc)?
            .ok_or_else(|| SfuError::WebRtc("transceiver without sender".into()))?;

        let (tx, rx) = mpsc::channel(LEG_QUEUE_CAPACITY);
        let (map_tx, map_rx) = watch::channel(None);
        let refused = {
            let mut legs = self.legs_guard();
            if legs.closed {
                Some(sender)
            } else {
                legs.by_track.insert(
                    track_id.clone(),
                    Leg {
                        publication: Arc::downgrade(publication),
                        sender,
                        ssrc,
                        mapping: map_tx,
                    },
                );
                None
            }
        };
        if let Some(sender) = refused {
            let _ = self.subscriber.remove_track(&sender).await;
            return Err(SfuError::Closed);
        }
        self.shared.counters.add(Gauge::ForwardedTracks, 1);
        let leg_span = tracing::debug_span!(parent: &self.span, "sfu_leg", track_id = %track_id);
        tokio::spawn(
            run_leg_writer(
                rx,
                Arc::clone(&local),
                map_rx,
                Arc::clone(&self.sink),
                Arc::downgrade(publication),
            )
            .instrument(leg_span.clone()),
        );
        tokio::spawn(run_leg_rtcp(local, Arc::downgrade(publication)).instrument(leg_span));
        if !publication.fanout.attach(&self.id, tx) {
            debug!(%track_id, "track unpublished while its leg was created");
        }
        debug!(%track_id, ssrc, "subscriber leg added");
        Ok(())
    }

    async fn handle_subscriber_answer(&self, sdp: String) -> Result<(), SfuError> {
        let again = {
            let mut neg = self.sub_neg.lock().await;
            self.check_open()?;
            if !neg.offer.is_outstanding() {
                return Err(SfuError::InvalidState(
                    "no subscriber offer is outstanding".into(),
                ));
            }
            let answer = RTCSessionDescription::answer(sdp)
                .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
            if let Err(err) = self.subscriber.set_remote_description(answer).await {
                // Forget the round; the next change starts a new one.
                neg.offer.answer_received();
                return Err(SfuError::InvalidSdp(err.to_string()));
            }
            for c in neg.pending_candidates.take() {
                if let Err(err) = self.subscriber.add_ice_candidate(c).await {
                    warn!(%err, "buffered subscriber candidate rejected");
                }
            }
            self.refresh_leg_mappings().await;
            neg.offer.answer_received()
        };
        debug!(again, "subscriber answer applied");
        if again {
            self.renegotiate_subscriber().await?;
        }
        Ok(())
    }

    /// After an answer: what each leg negotiated decides its payload type / extension ids.
    async fn refresh_leg_mappings(&self) {
        struct Snapshot {
            track_id: String,
            sender: Arc<dyn RtpSender>,
            ssrc: u32,
            publication: Weak<Publication>,
        }
        let legs: Vec<Snapshot> = self
            .legs_guard()
            .by_track
            .iter()
            .map(|(id, l)| Snapshot {
                track_id: id.clone(),
                sender: Arc::clone(&l.sender),
                ssrc: l.ssrc,
                publication: l.publication.clone(),
            })
            .collect();
        for leg in legs {
            let track_id = leg.track_id;
            let Some(publication) = leg.publication.upgrade() else {
                continue;
            };
            let params = match leg.sender.get_parameters().await {
                Ok(p) => negotiated(&p.rtp_parameters),
                Err(err) => {
                    warn!(%err, %track_id, "sender parameters unavailable");
                    continue;
                }
            };
            let mapping = LegMapping::new(leg.ssrc, &publication.source, &params);
            if !mapping.is_usable() {
                warn!(%track_id, source = ?publication.source.codecs, leg = ?params.codecs, "no common codec on subscriber leg");
            }
            if let Some(l) = self.legs_guard().by_track.get(&track_id) {
                l.mapping.send_replace(Some(Arc::new(mapping)));
            }
        }
    }

    async fn add_ice_candidate(
        &self,
        pc: PcRole,
        candidate: Option<IceCandidate>,
    ) -> Result<(), SfuError> {
        self.check_open()?;
        let Some(c) = candidate else {
            return Ok(()); // end of candidates: nothing to do in webrtc 0.21
        };
        if c.candidate.trim().is_empty() {
            return Ok(());
        }
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: c.username_fragment,
            url: None,
        };
        match pc {
            PcRole::Publisher => {
                let mut neg = self.pub_neg.lock().await;
                if self.publisher.remote_description().await.is_none() {
                    if !neg.pending_candidates.push(init) {
                        self.early_candidate_dropped(pc);
                    }
                    return Ok(());
                }
                self.publisher
                    .add_ice_candidate(init)
                    .await
                    .map_err(|e| SfuError::InvalidCandidate(e.to_string()))
            }
            PcRole::Subscriber => {
                let mut neg = self.sub_neg.lock().await;
                if self.subscriber.remote_description().await.is_none() {
                    if !neg.pending_candidates.push(init) {
                        self.early_candidate_dropped(pc);
                    }
                    return Ok(());
                }
                self.subscriber
                    .add_ice_candidate(init)
                    .await
                    .map_err(|e| SfuError::InvalidCandidate(e.to_string()))
            }
        }
    }

    fn early_candidate_dropped(&self, pc: PcRole) {
        self.shared.counters.candidate_dropped();
        if let Some(suppressed) = DROPPED_CANDIDATE_LOG.allow() {
            warn!(
                pc = pc.as_str(),
                suppressed,
                limit = MAX_EARLY_CANDIDATES,
                "early ICE candidate dropped: buffer full"
            );
        }
    }

    async fn pending_candidates(&self, pc: PcRole) -> usize {
        match pc {
            PcRole::Publisher => self.pub_neg.lock().await.pending_candidates.list.len(),
            PcRole::Subscriber => self.sub_neg.lock().await.pending_candidates.list.len(),
        }
    }

    async fn restart_subscriber_ice(&self) -> Result<(), SfuError> {
        self.check_open()?;
        self.sub_neg.lock().await.ice_restart = true;
        self.renegotiate_subscriber().await
    }

    fn request_keyframe(&self, track_id: &str) {
        let Some(room) = self.room.upgrade() else {
            return;
        };
        if let Some(p) = room.publication(track_id) {
            if p.publisher_id != self.id {
                p.request_keyframe();
            }
        }
    }

    // ----- teardown ---------------------------------------------------------------------

    /// Synchronous part of leaving: stop forwarding to and counting this participant.
    /// Returns false if it had already begun.
    pub(crate) fn begin_shutdown(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        let legs = {
            let mut legs = self.legs_guard();
            legs.closed = true;
            std::mem::take(&mut legs.by_track)
        };
        self.shared
            .counters
            .sub(Gauge::ForwardedTracks, legs.len() as u64);
        for leg in legs.values() {
            if let Some(p) = leg.publication.upgrade() {
                p.fanout.detach(&self.id);
            }
        }
        true
    }

    /// Asynchronous part of leaving: close both peer connections (their driver, reader and
    /// RTCP tasks end with them) and give the ports back.
    pub(crate) async fn close_connections(&self) {
        if let Err(err) = self.publisher.close().await {
            debug!(%err, "closing publisher connection");
        }
        if let Err(err) = self.subscriber.close().await {
            debug!(%err, "closing subscriber connection");
        }
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        debug!("participant connections closed");
    }
}

impl Participant {
    /// The participant id given to [`crate::Room::add_participant`].
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Applies a publisher offer from the client (initial, added tracks, or ICE restart)
    /// and returns the answer SDP to send back as `{"type":"answer","pc":"publisher"}`.
    pub async fn handle_publisher_offer(&self, sdp: String) -> Result<String, SfuError> {
        self.inner
            .handle_publisher_offer(sdp)
            .instrument(self.inner.span.clone())
            .await
    }

    /// Applies the client's answer to the last [`SfuEvent::SubscriberOffer`]; sends the next
    /// offer right away if the room changed meanwhile.
    pub async fn handle_subscriber_answer(&self, sdp: String) -> Result<(), SfuError> {
        self.inner
            .handle_subscriber_answer(sdp)
            .instrument(self.inner.span.clone())
            .await
    }

    /// Adds a trickled client candidate to one of the two connections (`None` or an empty
    /// candidate = end of candidates). Candidates arriving before the matching description
    /// are kept (at most [`MAX_EARLY_CANDIDATES`] and [`MAX_EARLY_CANDIDATE_BYTES`] per
    /// connection; extra ones are dropped and counted in [`crate::SfuStats`]) and applied
    /// with it.
    pub async fn add_ice_candidate(
        &self,
        pc: PcRole,
        candidate: Option<IceCandidate>,
    ) -> Result<(), SfuError> {
        self.inner
            .add_ice_candidate(pc, candidate)
            .instrument(self.inner.span.clone())
            .await
    }

    /// How many client candidates wait for `pc`'s remote description (at most
    /// [`MAX_EARLY_CANDIDATES`]); for diagnostics and tests.
    pub async fn pending_candidates(&self, pc: PcRole) -> usize {
        self.inner.pending_candidates(pc).await
    }

    /// Restarts ICE on the subscriber connection (the server is its offerer, so the client
    /// cannot): the next [`SfuEvent::SubscriberOffer`] carries fresh ICE credentials. Sent
    /// at once, or after the answer to an offer still outstanding. Publisher-side ICE
    /// restarts need nothing special: the client offers with new credentials.
    pub async fn restart_subscriber_ice(&self) -> Result<(), SfuError> {
        self.inner
            .restart_subscriber_ice()
            .instrument(self.inner.span.clone())
            .await
    }

    /// This participant (a subscriber) asks the publisher of `track_id` for a keyframe
    /// (throttled to one PLI per 500 ms per track). Unknown or own tracks are ignored.
    pub fn request_keyframe(&self, track_id: &str) {
        self.inner.request_keyframe(track_id);
    }

    /// Leaves the room: same as [`crate::Room::remove_participant`] for this participant
    /// (a participant already replaced by a newer one with the same id only closes itself).
    pub async fn close(&self) {
        match self.inner.room.upgrade() {
            Some(room) => room.remove_participant_instance(&self.inner).await,
            None => {
                if self.inner.begin_shutdown() {
                    self.inner.close_connections().await;
                }
            }
        }
    }

    /// Whether this participant has left (closed or removed).
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}
