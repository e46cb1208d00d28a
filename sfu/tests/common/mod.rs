//! Test client: a webrtc-rs participant wired to an in-process SFU through the event
//! channel exactly as PROTOCOL.md describes (publisher: client offers; subscriber: server
//! offers; trickle ICE both ways).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use sfu::{IceCandidate, Participant, PcRole, Room, SfuEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

/// Marks payloads of the measured phase; the next 4 bytes are the packet index.
pub const MAGIC: [u8; 4] = *b"TRSF";

pub fn init_tracing() {
    // The drops of a deliberately stalled client are logged per packet by the webrtc
    // driver; keep them out unless asked for (RUST_LOG).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,webrtc::peer_connection::driver=off")
            }),
        )
        .with_test_writer()
        .try_init();
}

/// What a subscriber client received on one remote track.
#[derive(Default, Clone)]
pub struct TrackRx {
    pub stream_id: String,
    pub track_id: String,
    pub packets: u64,
    pub measured: HashSet<u32>,
    pub ssrcs: HashSet<u32>,
    pub payload_types: HashSet<u8>,
    pub remote: Option<Arc<dyn TrackRemote>>,
}

impl std::fmt::Debug for TrackRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackRx")
            .field("stream_id", &self.stream_id)
            .field("track_id", &self.track_id)
            .field("packets", &self.packets)
            .field("measured", &self.measured.len())
            .field("ssrcs", &self.ssrcs)
            .field("payload_types", &self.payload_types)
            .finish()
    }
}

#[derive(Default)]
pub struct Received {
    /// Keyed by track id.
    pub tracks: Mutex<HashMap<String, TrackRx>>,
}

impl Received {
    pub fn snapshot(&self) -> HashMap<String, TrackRx> {
        self.tracks.lock().unwrap().clone()
    }
    pub fn packets(&self, track_id: &str) -> u64 {
        self.tracks
            .lock()
            .unwrap()
            .get(track_id)
            .map_or(0, |t| t.packets)
    }
    pub fn measured(&self, track_id: &str) -> usize {
        self.tracks
            .lock()
            .unwrap()
            .get(track_id)
            .map_or(0, |t| t.measured.len())
    }
    pub fn clear_measured(&self) {
        for t in self.tracks.lock().unwrap().values_mut() {
            t.measured.clear();
        }
    }
}

struct ClientHandler {
    role: PcRole,
    candidates: mpsc::UnboundedSender<(PcRole, RTCIceCandidateInit)>,
    received: Option<Arc<Received>>,
    read_tracks: bool,
    connected: Arc<AtomicBool>,
    ever_connected: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ClientHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.candidates.send((self.role, init));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let c = state == RTCPeerConnectionState::Connected;
        self.connected.store(c, Ordering::SeqCst);
        if c {
            self.ever_connected.store(true, Ordering::SeqCst);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(received) = self.received.clone() else {
            return;
        };
        let read = self.read_tracks;
        tokio::spawn(async move {
            let stream_id = track.stream_id().await;
            let track_id = track.track_id().await;
            {
                let mut map = received.tracks.lock().unwrap();
                let e = map.entry(track_id.clone()).or_default();
                e.stream_id = stream_id;
                e.track_id = track_id.clone();
                e.remote = Some(Arc::clone(&track));
            }
            if !read {
                // A subscriber that never reads: the events pile up in its track channel.
                return;
            }
            while let Some(ev) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = ev {
                    let mut map = received.tracks.lock().unwrap();
                    let e = map.entry(track_id.clone()).or_default();
                    e.packets += 1;
                    e.ssrcs.insert(p.header.ssrc);
                    e.payload_types.insert(p.header.payload_type);
                    if p.payload.len() >= 8 && p.payload[..4] == MAGIC {
                        let idx = u32::from_be_bytes(p.payload[4..8].try_into().unwrap());
                        e.measured.insert(idx);
                    }
                }
            }
        });
    }
}

/// Payload types a client uses for VP8 / Opus: webrtc-rs and Chromium use 96 / 111,
/// Firefox 120 / 109.
#[derive(Clone, Copy, Debug)]
pub struct Pts {
    pub vp8: u8,
    pub opus: u8,
}

pub const DEFAULT_PTS: Pts = Pts { vp8: 96, opus: 111 };
pub const FIREFOX_PTS: Pts = Pts {
    vp8: 120,
    opus: 109,
};

fn media_engine(pts: Pts) -> MediaEngine {
    let mut me = MediaEngine::default();
    if pts.vp8 == DEFAULT_PTS.vp8 && pts.opus == DEFAULT_PTS.opus {
        me.register_default_codecs().unwrap();
        return me;
    }
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: "video/VP8".to_owned(),
                clock_rate: 90000,
                ..Default::default()
            },
            payload_type: pts.vp8,
        },
        RtpCodecKind::Video,
    )
    .unwrap();
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: "audio/opus".to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                ..Default::default()
            },
            payload_type: pts.opus,
        },
        RtpCodecKind::Audio,
    )
    .unwrap();
    me
}

async fn client_pc(handler: ClientHandler, pts: Pts) -> Arc<dyn PeerConnection> {
    let mut me = media_engine(pts);
    let registry = register_default_interceptors(Registry::new(), &mut me).unwrap();
    let se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .with_setting_engine(se)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("client peer connection");
    Arc::new(pc)
}

/// Events a client saw (candidates excluded), in order.
#[derive(Default)]
pub struct EventLog {
    pub events: Mutex<Vec<SfuEvent>>,
    /// Server candidate lines, both connections.
    pub candidates: Mutex<Vec<String>>,
}

impl EventLog {
    pub fn snapshot(&self) -> Vec<SfuEvent> {
        self.events.lock().unwrap().clone()
    }
}

pub struct LocalTrack {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub pt: u8,
    pub id: String,
}

pub struct TestClient {
    pub id: String,
    pub participant: Participant,
    pub pub_pc: Option<Arc<dyn PeerConnection>>,
    pub sub_pc: Arc<dyn PeerConnection>,
    pub video: Option<LocalTrack>,
    pub audio: Option<LocalTrack>,
    pub received: Arc<Received>,
    pub log: Arc<EventLog>,
    pub pub_connected: Arc<AtomicBool>,
    pub sub_connected: Arc<AtomicBool>,
    pub sub_ever_connected: Arc<AtomicBool>,
    pub answers: Arc<Mutex<u32>>,
    pump: JoinHandle<()>,
}

fn local_track(
    stream: &str,
    id: &str,
    kind: RtpCodecKind,
    mime: &str,
    clock: u32,
    channels: u16,
) -> (Arc<TrackLocalStaticRTP>, u32) {
    let ssrc = rand::random::<u32>() | 1;
    let t = MediaStreamTrack::new(
        stream.to_owned(),
        id.to_owned(),
        id.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate: clock,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    );
    (Arc::new(TrackLocalStaticRTP::new(t)), ssrc)
}

impl TestClient {
    /// Joins `room` as `id`; publishes VP8 + Opus if `publish`; reads remote tracks if
    /// `read_tracks`.
    pub async fn join(room: &Room, id: &str, publish: bool, read_tracks: bool) -> TestClient {
        Self::join_with(room, id, publish, read_tracks, DEFAULT_PTS).await
    }

    /// [`Self::join`] with the client's own payload type numbering.
    pub async fn join_with(
        room: &Room,
        id: &str,
        publish: bool,
        read_tracks: bool,
        pts: Pts,
    ) -> TestClient {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let participant = room
            .add_participant(id, ev_tx)
            .await
            .expect("add_participant");
        let (cand_tx, cand_rx) = mpsc::unbounded_channel();
        let received = Arc::new(Received::default());
        let pub_connected = Arc::new(AtomicBool::new(false));
        let sub_connected = Arc::new(AtomicBool::new(false));
        let sub_ever_connected = Arc::new(AtomicBool::new(false));

        let sub_pc = client_pc(
            ClientHandler {
                role: PcRole::Subscriber,
                candidates: cand_tx.clone(),
                received: Some(Arc::clone(&received)),
                read_tracks,
                connected: Arc::clone(&sub_connected),
                ever_connected: Arc::clone(&sub_ever_connected),
            },
            pts,
        )
        .await;

        let (pub_pc, video, audio) = if publish {
            let pc = client_pc(
                ClientHandler {
                    role: PcRole::Publisher,
                    candidates: cand_tx.clone(),
                    received: None,
                    read_tracks: false,
                    connected: Arc::clone(&pub_connected),
                    ever_connected: Arc::new(AtomicBool::new(false)),
                },
                pts,
            )
            .await;
            // Client-side stream id differs from the participant id on purpose: the SFU
            // must present the publisher's participant id to subscribers.
            let stream = format!("local-stream-of-{id}");
            let vid = format!("{id}-cam");
            let aid = format!("{id}-mic");
            let (vt, vssrc) =
                local_track(&stream, &vid, RtpCodecKind::Video, "video/VP8", 90000, 0);
            let (at, assrc) =
                local_track(&stream, &aid, RtpCodecKind::Audio, "audio/opus", 48000, 2);
            for t in [&vt, &at] {
                pc.add_transceiver_from_track(
                    Arc::clone(t) as Arc<dyn TrackLocal>,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        ..Default::default()
                    }),
                )
                .await
                .expect("add transceiver");
            }
            (
                Some(pc),
                Some(LocalTrack {
                    track: vt,
                    ssrc: vssrc,
                    pt: pts.vp8,
                    id: vid,
                }),
                Some(LocalTrack {
                    track: at,
                    ssrc: assrc,
                    pt: pts.opus,
                    id: aid,
                }),
            )
        } else {
            (None, None, None)
        };

        let log = Arc::new(EventLog::default());
        let answers = Arc::new(Mutex::new(0));
        let pump = tokio::spawn(pump(
            participant.clone(),
            pub_pc.clone(),
            Arc::clone(&sub_pc),
            ev_rx,
            cand_rx,
            Arc::clone(&log),
            Arc::clone(&answers),
        ));

        if let Some(pc) = &pub_pc {
            let offer = pc.create_offer(None).await.expect("offer");
            pc.set_local_description(offer)
                .await
                .expect("set local offer");
            let sdp = pc.local_description().await.unwrap().sdp;
            let answer = participant
                .handle_publisher_offer(sdp, Vec::new())
                .await
                .expect("publisher answer");
            pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
                .await
                .expect("set publisher answer");
        }

        TestClient {
            id: id.to_owned(),
            participant,
            pub_pc,
            sub_pc,
            video,
            audio,
            received,
            log,
            pub_connected,
            sub_connected,
            sub_ever_connected,
            answers,
            pump,
        }
    }

    pub fn events(&self) -> Vec<SfuEvent> {
        self.log.snapshot()
    }

    /// Track ids announced by `publisher` in `TrackPublished` events seen by this client.
    pub fn announced(&self, publisher: &str) -> Vec<(String, sfu::MediaKind, String)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                SfuEvent::TrackPublished {
                    participant_id,
                    track,
                } if participant_id == publisher => {
                    Some((track.track_id, track.kind, track.stream_id))
                }
                _ => None,
            })
            .collect()
    }

    pub async fn close(self) {
        self.pump.abort();
        if let Some(pc) = &self.pub_pc {
            let _ = pc.close().await;
        }
        let _ = self.sub_pc.close().await;
    }
}

async fn flush(pc: &Arc<dyn PeerConnection>, pending: &mut Vec<RTCIceCandidateInit>) {
    if pending.is_empty() || pc.remote_description().await.is_none() {
        return;
    }
    for c in pending.drain(..) {
        if let Err(e) = pc.add_ice_candidate(c).await {
            panic!("client rejected server candidate: {e}");
        }
    }
}

async fn pump(
    participant: Participant,
    pub_pc: Option<Arc<dyn PeerConnection>>,
    sub_pc: Arc<dyn PeerConnection>,
    mut events: mpsc::UnboundedReceiver<SfuEvent>,
    mut candidates: mpsc::UnboundedReceiver<(PcRole, RTCIceCandidateInit)>,
    log: Arc<EventLog>,
    answers: Arc<Mutex<u32>>,
) {
    let mut pending_pub = Vec::new();
    let mut pending_sub = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    SfuEvent::IceCandidate { pc, candidate } => {
                        log.candidates.lock().unwrap().push(candidate.candidate.clone());
                        let init = RTCIceCandidateInit {
                            candidate: candidate.candidate,
                            sdp_mid: candidate.sdp_mid,
                            sdp_mline_index: candidate.sdp_mline_index,
                            username_fragment: candidate.username_fragment,
                            url: None,
                        };
                        match pc {
                            PcRole::Publisher => pending_pub.push(init),
                            PcRole::Subscriber => pending_sub.push(init),
                        }
                    }
                    SfuEvent::SubscriberOffer { sdp } => {
                        log.events.lock().unwrap().push(SfuEvent::SubscriberOffer { sdp: sdp.clone() });
                        sub_pc
                            .set_remote_description(RTCSessionDescription::offer(sdp).unwrap())
                            .await
                            .expect("client applies subscriber offer");
                        let answer = sub_pc.create_answer(None).await.expect("answer");
                        sub_pc.set_local_description(answer).await.expect("set answer");
                        let sdp = sub_pc.local_description().await.unwrap().sdp;
                        match participant.handle_subscriber_answer(sdp).await {
                            Ok(()) => *answers.lock().unwrap() += 1,
                            // The test removed this participant meanwhile.
                            Err(sfu::SfuError::Closed) => break,
                            Err(e) => panic!("server rejected subscriber answer: {e}"),
                        }
                    }
                    other => log.events.lock().unwrap().push(other),
                }
            }
            c = candidates.recv() => {
                let Some((role, init)) = c else { break };
                let cand = IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                };
                match participant.add_ice_candidate(role, Some(cand)).await {
                    Ok(()) => {}
                    Err(sfu::SfuError::Closed) => break,
                    Err(e) => panic!("server rejected client candidate: {e}"),
                }
            }
            _ = tick.tick() => {}
        }
        if let Some(pc) = &pub_pc {
            flush(pc, &mut pending_pub).await;
        }
        flush(&sub_pc, &mut pending_sub).await;
    }
}

/// Writes synthetic RTP on a client's tracks.
pub struct Sender {
    video_seq: u16,
    audio_seq: u16,
    video_ts: u32,
    audio_ts: u32,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            video_seq: rand::random(),
            audio_seq: rand::random(),
            video_ts: rand::random(),
            audio_ts: rand::random(),
        }
    }
}

fn payload(measured: Option<u32>, len: usize) -> Bytes {
    let mut v = vec![0u8; len];
    if let Some(i) = measured {
        v[..4].copy_from_slice(&MAGIC);
        v[4..8].copy_from_slice(&i.to_be_bytes());
    } else {
        // VP8 payload descriptor (start of partition 0), then an inter frame: a leg that
        // starts here must ask the publisher for a keyframe.
        v[0] = 0x10;
        v[1] = 0x01;
    }
    Bytes::from(v)
}

impl Sender {
    /// One video and one audio packet; `measured` tags them with an index.
    pub async fn tick(&mut self, c: &TestClient, measured: Option<u32>) {
        if let Some(v) = &c.video {
            self.video_seq = self.video_seq.wrapping_add(1);
            self.video_ts = self.video_ts.wrapping_add(3000);
            let p = Packet {
                header: Header {
                    version: 2,
                    marker: true,
                    payload_type: v.pt,
                    sequence_number: self.video_seq,
                    timestamp: self.video_ts,
                    ssrc: v.ssrc,
                    ..Default::default()
                },
                payload: payload(measured, 600),
            };
            let _ = v.track.write_rtp(p).await;
        }
        if let Some(a) = &c.audio {
            self.audio_seq = self.audio_seq.wrapping_add(1);
            self.audio_ts = self.audio_ts.wrapping_add(960);
            let p = Packet {
                header: Header {
                    version: 2,
                    payload_type: a.pt,
                    sequence_number: self.audio_seq,
                    timestamp: self.audio_ts,
                    ssrc: a.ssrc,
                    ..Default::default()
                },
                payload: payload(measured, 80),
            };
            let _ = a.track.write_rtp(p).await;
        }
    }
}

/// Polls `cond` every 20 ms until true or `timeout`; returns whether it became true.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `sub` has seen both tracks of `publisher` announced and received media on them.
pub fn receiving_from(sub: &TestClient, publisher: &str) -> bool {
    let ann = sub.announced(publisher);
    ann.len() >= 2 && ann.iter().all(|(t, _, _)| sub.received.packets(t) > 0)
}

/// Sends unmeasured packets from every publisher (20 ms apart) until `ready` holds: the
/// media itself triggers publication (webrtc 0.21 fires `on_track` on the first packet),
/// then legs are negotiated and connected. Panics after 20 s.
pub async fn warm_up(publishers: &[&TestClient], ready: impl Fn() -> bool) -> Vec<Sender> {
    let mut senders: Vec<Sender> = publishers.iter().map(|_| Sender::default()).collect();
    let started = Instant::now();
    loop {
        for (s, c) in senders.iter_mut().zip(publishers) {
            s.tick(c, None).await;
        }
        if ready() {
            eprintln!(
                "[timing] media reached every subscriber after {:?}",
                started.elapsed()
            );
            return senders;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "warm-up: media never reached every subscriber"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The measured phase: `count` tagged packets per track at `interval`, then a drain delay.
pub async fn measure(
    senders: &mut [Sender],
    publishers: &[&TestClient],
    subscribers: &[&TestClient],
    count: u32,
    interval: Duration,
) {
    for sub in subscribers {
        sub.received.clear_measured();
    }
    let mut ticker = tokio::time::interval(interval);
    for i in 0..count {
        ticker.tick().await;
        for (s, c) in senders.iter_mut().zip(publishers) {
            s.tick(c, Some(i)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Client-side PLI for a received track (what a browser sends when it needs a keyframe).
pub async fn send_pli(received: &Received, track_id: &str) -> bool {
    let (remote, ssrc) = {
        let map = received.tracks.lock().unwrap();
        let Some(t) = map.get(track_id) else {
            return false;
        };
        let Some(r) = t.remote.clone() else {
            return false;
        };
        (r, t.ssrcs.iter().next().copied().unwrap_or(0))
    };
    remote
        .write_rtcp(vec![Box::new(PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        })])
        .await
        .is_ok()
}
