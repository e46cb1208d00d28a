//! A TheraRoom participant speaking the public protocol (`signaling/PROTOCOL.md`,
//! version 1) with real webrtc-rs peer connections: what a browser tab does, minus the
//! camera. Integration tests use it to check the server end to end; the load tool runs
//! many of them.
//!
//! - [`protocol`]: the wire types (a deliberate copy of the document, not of the server).
//! - [`signal`]: the WebSocket and the `join` handshake.
//! - [`media`]: the publisher and subscriber peer connections and the receive path.
//! - [`pacer`]: synthetic tagged RTP at a fixed packet rate, or real media looped.
//! - [`clip`]: VP8 (IVF) and Opus (Ogg) files packetized into RTP payloads.
//! - [`stats`]: the tag format, duplicate detection and latency histogram.
//! - [`rest`]: the few HTTP calls needed before joining.
//! - [`standalone`]: one peer connection driven by another server's signaling.

pub mod clip;
pub mod media;
pub mod pacer;
pub mod protocol;
pub mod rest;
pub mod signal;
pub mod standalone;
pub mod stats;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

pub use clip::{Clip, ClipSet};
pub use pacer::MediaRate;
pub use protocol::{
    ClientMessage, Joined, Kind, ParticipantInfo, PcName, ServerMessage, TrackInfo,
};
pub use stats::{LatencyHistogram, RemoteTrackStats, SentStats};
/// Connection state of a client peer connection (webrtc's own enum).
pub use webrtc::peer_connection::RTCPeerConnectionState as PcState;

use media::{ClientPc, LocalTrack, ReceiveTable};
use pacer::{Pacer, SentCounters};
use protocol::CandidateInit;
use signal::{Incoming, Outgoing, WsRead};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered `join` with an `error`; `close` is the closing frame that
    /// followed a fatal one (e.g. 4409 for `room_full`).
    #[error("join refused: {code} ({message})")]
    Refused {
        /// Error code from PROTOCOL.md (`room_full`, `forbidden`, ...).
        code: String,
        /// Human-readable message.
        message: String,
        /// Closing frame received after the error, if any.
        close: Option<CloseInfo>,
    },
    /// The socket closed before the operation completed.
    #[error("signaling closed: {0}")]
    Closed(CloseInfo),
    /// WebSocket failure (connect, send).
    #[error("websocket: {0}")]
    WebSocket(String),
    /// Peer connection failure.
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// The server sent something this client cannot read.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A REST call answered with a non-2xx status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// Status code.
        status: u16,
        /// Response body.
        body: String,
    },
    /// Invalid options (URL, ...).
    #[error("configuration: {0}")]
    Config(String),
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// Socket-level I/O failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// How the signaling socket ended: close code and reason (1006 when it ended without a
/// closing frame, as in browsers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// WebSocket close code (1000 normal, 4xxx for fatal protocol errors).
    pub code: u16,
    /// Close reason (the error code after a fatal error).
    pub reason: String,
}

impl std::fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

/// Which of our own tracks to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// Publish an Opus microphone track.
    pub audio: bool,
    /// Publish a VP8 camera track.
    pub video: bool,
    /// Send the camera as three simulcast layers (rid q, h, f), as the browser client
    /// does for a capture of 360 lines or more. Only the engine client
    /// (`--client engine`) sends layers; the webrtc-rs client sends one.
    pub simulcast: bool,
}

impl Publish {
    /// Camera and microphone, like a normal call.
    pub const BOTH: Publish = Publish {
        audio: true,
        video: true,
        simulcast: false,
    };
    /// Camera in three simulcast layers, and microphone.
    pub const SIMULCAST: Publish = Publish {
        audio: true,
        video: true,
        simulcast: true,
    };
    /// Receive only: no publisher connection at all.
    pub const NOTHING: Publish = Publish {
        audio: false,
        video: false,
        simulcast: false,
    };
}

/// Everything [`Participant::join`] needs.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// `ws://host:port/rtc`.
    pub ws_url: String,
    /// Session to enter.
    pub session_id: String,
    /// User or guest JWT, sent inside `join`.
    pub token: String,
    /// Optional `join.display_name` (ignored by the server for guests).
    pub display_name: Option<String>,
    /// Tracks to publish.
    pub publish: Publish,
    /// The only IP the peer connections bind to (and gather candidates on).
    pub bind_ip: IpAddr,
    /// Limit for the `join` → `joined` exchange.
    pub join_timeout: Duration,
}

impl JoinOptions {
    /// Options with the defaults: publish both tracks, bind to 127.0.0.1, 15 s join limit.
    pub fn new(
        ws_url: impl Into<String>,
        session_id: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        JoinOptions {
            ws_url: ws_url.into(),
            session_id: session_id.into(),
            token: token.into(),
            display_name: None,
            publish: Publish::BOTH,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            join_timeout: Duration::from_secs(15),
        }
    }
}

/// Server messages other than negotiation (everything but `offer`, `answer`,
/// `candidate`), in arrival order, shared with [`Events`] cursors.
pub(crate) struct EventLog {
    items: Mutex<Vec<ServerMessage>>,
    /// Number of items; `closed` once the socket is gone and nothing more will come.
    count: watch::Sender<(usize, bool)>,
}

impl EventLog {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(EventLog {
            items: Mutex::new(Vec::new()),
            count: watch::channel((0, false)).0,
        })
    }

    pub(crate) fn push(&self, message: ServerMessage) {
        let n = {
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            items.push(message);
            items.len()
        };
        self.count.send_modify(|c| c.0 = n);
    }

    pub(crate) fn close(&self) {
        self.count.send_modify(|c| c.1 = true);
    }

    /// A copy of every message so far.
    pub(crate) fn all(&self) -> Vec<ServerMessage> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A cursor from the first message.
    pub(crate) fn cursor(self: &Arc<Self>) -> Events {
        Events {
            log: Arc::clone(self),
            next: 0,
            watch: self.count.subscribe(),
        }
    }

    fn get(&self, i: usize) -> Option<ServerMessage> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(i)
            .cloned()
    }
}

/// A cursor over the server messages a participant received (negotiation excluded),
/// from the first one after `joined`. Each cursor sees every message once, in order;
/// any number of cursors may exist.
pub struct Events {
    log: Arc<EventLog>,
    next: usize,
    watch: watch::Receiver<(usize, bool)>,
}

impl Events {
    /// The next message; `None` once the socket closed and every message was read.
    pub async fn next(&mut self) -> Option<ServerMessage> {
        loop {
            if let Some(m) = self.log.get(self.next) {
                self.next += 1;
                return Some(m);
            }
            let next = self.next;
            let changed = self
                .watch
                .wait_for(|(n, closed)| *n > next || *closed)
                .await;
            match changed {
                Ok(state) if state.0 > next => continue,
                _ => return None,
            }
        }
    }

    /// Skips messages until one satisfies `pred` and returns it; `None` if the socket
    /// closed or `timeout` passed first.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&ServerMessage) -> bool,
    ) -> Option<ServerMessage> {
        tokio::time::timeout(timeout, async {
            while let Some(m) = self.next().await {
                if pred(&m) {
                    return Some(m);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

/// State shared by the participant handle and its signaling task.
struct Shared {
    publisher: Option<ClientPc>,
    subscriber: ClientPc,
    received: Arc<ReceiveTable>,
    events: Arc<EventLog>,
    closed: watch::Sender<Option<CloseInfo>>,
    negotiation_errors: Mutex<Vec<String>>,
}

/// A joined participant: signaling socket plus publisher and subscriber peer connections.
///
/// Created by [`Participant::join`]; media starts with [`Participant::start_media`].
/// Call [`Participant::leave`] or [`Participant::close`] when done (dropping it closes
/// the peer connections in the background).
pub struct Participant {
    joined: Joined,
    out: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
    local: Vec<(LocalTrack, Arc<SentCounters>)>,
    pacer: Mutex<Option<Pacer>>,
    tasks: Vec<JoinHandle<()>>,
    closed: watch::Receiver<Option<CloseInfo>>,
}

impl Participant {
    /// Joins a session: `join` → `joined` (or [`ClientError::Refused`]), then builds the
    /// peer connections bound to `bind_ip`, sends the publisher offer and from then on
    /// answers every subscriber offer and trickles candidates both ways in the background.
    pub async fn join(opts: JoinOptions) -> Result<Participant, ClientError> {
        let (joined, write, read) = tokio::time::timeout(
            opts.join_timeout,
            signal::handshake(
                &opts.ws_url,
                &opts.session_id,
                &opts.token,
                opts.display_name.as_deref(),
            ),
        )
        .await
        .map_err(|_| ClientError::Timeout("join"))??;
        let (out, queue) = mpsc::unbounded_channel();
        let writer = tokio::spawn(signal::writer(write, queue));

        let received = Arc::new(ReceiveTable::default());
        let subscriber = media::build_pc(
            PcName::Subscriber,
            opts.bind_ip,
            &joined.ice_servers,
            out.clone(),
            Some(Arc::clone(&received)),
        )
        .await?;
        let publishes = opts.publish.audio || opts.publish.video;
        let (publisher, local) = if publishes {
            let pc = media::build_pc(
                PcName::Publisher,
                opts.bind_ip,
                &joined.ice_servers,
                out.clone(),
                None,
            )
            .await?;
            // A fresh stream id per join, as a browser makes: the server presents our
            // participant id to others whatever we pick.
            let stream_id = format!("{:016x}", rand::random::<u64>());
            let mut local = Vec::new();
            if opts.publish.video {
                let t = media::add_local_track(&pc.pc, &stream_id, Kind::Video).await?;
                let c = SentCounters::new(&t.track_id, Kind::Video);
                local.push((t, c));
            }
            if opts.publish.audio {
                let t = media::add_local_track(&pc.pc, &stream_id, Kind::Audio).await?;
                let c = SentCounters::new(&t.track_id, Kind::Audio);
                local.push((t, c));
            }
            (Some(pc), local)
        } else {
            (None, Vec::new())
        };

        let (closed_tx, closed_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            publisher,
            subscriber,
            received,
            events: EventLog::new(),
            closed: closed_tx,
            negotiation_errors: Mutex::new(Vec::new()),
        });
        let reader = tokio::spawn(run_signaling(read, Arc::clone(&shared), out.clone()));

        if let Some(p) = &shared.publisher {
            let offer = p.pc.create_offer(None).await.map_err(webrtc_err)?;
            p.pc.set_local_description(offer)
                .await
                .map_err(webrtc_err)?;
            let sdp =
                p.pc.local_description()
                    .await
                    .ok_or_else(|| ClientError::WebRtc("no local description".into()))?
                    .sdp;
            let _ = out.send(Outgoing::Message(ClientMessage::Offer {
                pc: PcName::Publisher,
                sdp,
            }));
            p.gate.release();
        }

        Ok(Participant {
            joined,
            out,
            shared,
            local,
            pacer: Mutex::new(None),
            tasks: vec![writer, reader],
            closed: closed_rx,
        })
    }

    /// Our participant id (also the MediaStream id others see our tracks under).
    pub fn participant_id(&self) -> &str {
        &self.joined.participant_id
    }

    /// The `joined` message (session, ICE servers, who was already there).
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// True if this join took over an existing participant (reload, reconnect).
    pub fn resumed(&self) -> bool {
        self.joined.resumed
    }

    /// A cursor over every server message received since `joined` (negotiation
    /// excluded), starting at the first.
    pub fn events(&self) -> Events {
        Events {
            log: Arc::clone(&self.shared.events),
            next: 0,
            watch: self.shared.events.count.subscribe(),
        }
    }

    /// A copy of every server message received so far (negotiation excluded).
    pub fn event_log(&self) -> Vec<ServerMessage> {
        self.shared
            .events
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends any protocol message (mute, request_keyframe, ping, ...).
    pub fn send(&self, message: ClientMessage) -> Result<(), ClientError> {
        self.out
            .send(Outgoing::Message(message))
            .map_err(|_| ClientError::Closed(self.close_info().unwrap_or_else(gone)))
    }

    /// Starts (or restarts at a new rate) the synthetic media on our tracks.
    /// Packets are written only while the publisher connection is connected; the RTP
    /// sequence continues across restarts. No-op when publishing nothing.
    pub fn start_media(&self, rate: MediaRate) {
        let Some(publisher) = &self.shared.publisher else {
            return;
        };
        let mut slot = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
        // Stop the old tasks before the new ones read the RTP state they leave behind.
        slot.take();
        *slot = Some(Pacer::start(&self.local, rate, &publisher.state));
    }

    /// Starts (or restarts) looping real media from `clips` on our tracks, paced in real
    /// time (video frame rate, 20 ms audio frames), each packet tagged at its end.
    pub fn start_clips(&self, clips: &Arc<ClipSet>) {
        let Some(publisher) = &self.shared.publisher else {
            return;
        };
        let mut slot = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
        slot.take();
        *slot = Some(Pacer::start_clips(&self.local, clips, &publisher.state));
    }

    /// Stops sending media.
    pub fn stop_media(&self) {
        self.pacer.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// What each of our tracks sent so far.
    pub fn sent(&self) -> Vec<SentStats> {
        self.local.iter().map(|(_, c)| c.snapshot()).collect()
    }

    /// What we sent on our track of `kind`, if we publish one.
    pub fn sent_of(&self, kind: Kind) -> Option<SentStats> {
        self.local
            .iter()
            .find(|(t, _)| t.kind == kind)
            .map(|(_, c)| c.snapshot())
    }

    /// What every remote track delivered so far, sorted by (stream id, track id).
    pub fn received(&self) -> Vec<RemoteTrackStats> {
        self.shared.received.snapshot()
    }

    /// What remote track `track_id` delivered so far.
    pub fn received_track(&self, track_id: &str) -> Option<RemoteTrackStats> {
        self.shared.received.get(track_id)
    }

    /// Remote tracks published by participant `publisher_id` (MediaStream id).
    pub fn received_from(&self, publisher_id: &str) -> Vec<RemoteTrackStats> {
        self.received()
            .into_iter()
            .filter(|t| t.stream_id == publisher_id)
            .collect()
    }

    /// Connection state of the publisher connection (`None` when publishing nothing).
    pub fn publisher_state(&self) -> Option<PcState> {
        self.shared.publisher.as_ref().map(|p| *p.state.borrow())
    }

    /// Connection state of the subscriber connection.
    pub fn subscriber_state(&self) -> PcState {
        *self.shared.subscriber.state.borrow()
    }

    /// Local port of the subscriber connection: not exposed by webrtc-rs (its sockets
    /// are its own), so downlink shaping needs the engine client.
    pub fn subscriber_port(&self) -> Option<u16> {
        None
    }

    /// Offers, answers or candidates the client could not apply (should stay empty).
    pub fn negotiation_errors(&self) -> Vec<String> {
        self.shared
            .negotiation_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How the socket closed, if it did.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.closed.borrow().clone()
    }

    /// Waits until the signaling socket is closed and returns the close code and reason.
    pub async fn wait_closed(&self) -> CloseInfo {
        let mut rx = self.closed.clone();
        let close = match rx.wait_for(Option::is_some).await {
            Ok(c) => c.clone(),
            Err(_) => None,
        };
        close.unwrap_or_else(gone)
    }

    /// Sends `leave`, waits (up to 10 s) for the server's `left` and closing frame, then
    /// closes the peer connections. Returns how the socket closed.
    pub async fn leave(&self) -> Result<CloseInfo, ClientError> {
        self.send(ClientMessage::Leave)?;
        let close = tokio::time::timeout(Duration::from_secs(10), self.wait_closed())
            .await
            .map_err(|_| ClientError::Timeout("leave"));
        self.close_media().await;
        close
    }

    /// Closes everything from our side without `leave` (like a tab that goes away):
    /// media stops, peer connections close, the socket closes with 1000. The server
    /// starts the participant's reconnect grace period. Idempotent.
    pub async fn close(&self) {
        self.close_media().await;
        if self.close_info().is_none() {
            let _ = self.out.send(Outgoing::Close(1000, "client closed".into()));
            let _ = tokio::time::timeout(Duration::from_secs(3), self.wait_closed()).await;
        }
        for t in &self.tasks {
            t.abort();
        }
    }

    async fn close_media(&self) {
        self.stop_media();
        if let Some(p) = &self.shared.publisher {
            let _ = p.pc.close().await;
        }
        let _ = self.shared.subscriber.pc.close().await;
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.pacer
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        for t in &self.tasks {
            t.abort();
        }
        let shared = Arc::clone(&self.shared);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Some(p) = &shared.publisher {
                    let _ = p.pc.close().await;
                }
                let _ = shared.subscriber.pc.close().await;
            });
        }
    }
}

pub(crate) fn gone() -> CloseInfo {
    CloseInfo {
        code: signal::ABNORMAL_CLOSE,
        reason: "closed".into(),
    }
}

fn webrtc_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::WebRtc(e.to_string())
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

/// Server candidates that arrived before their connection had a remote description.
#[derive(Default)]
struct Pending {
    publisher: Vec<CandidateInit>,
    subscriber: Vec<CandidateInit>,
}

/// The signaling task: applies answers, answers subscriber offers, adds candidates, and
/// logs every other message until the socket closes.
async fn run_signaling(
    mut read: WsRead,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Outgoing>,
) {
    let mut pending = Pending::default();
    let close = loop {
        match signal::next(&mut read).await {
            Incoming::Message(m) => {
                if let Err(e) = handle(m, &shared, &out, &mut pending).await {
                    tracing::warn!(error = %e, "client negotiation failed");
                    shared
                        .negotiation_errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(e.to_string());
                }
            }
            Incoming::Malformed(text) => {
                tracing::warn!(%text, "unreadable server message");
            }
            Incoming::Closed(close) => break close,
        }
    };
    tracing::debug!(%close, "signaling closed");
    shared.closed.send_replace(Some(close));
    shared.events.close();
}

async fn handle(
    message: ServerMessage,
    shared: &Shared,
    out: &mpsc::UnboundedSender<Outgoing>,
    pending: &mut Pending,
) -> Result<(), ClientError> {
    match message {
        ServerMessage::Answer { sdp, .. } => {
            let p = shared.publisher.as_ref().ok_or_else(|| {
                ClientError::Protocol("answer without a publisher connection".into())
            })?;
            let desc = RTCSessionDescription::answer(sdp).map_err(webrtc_err)?;
            p.pc.set_remote_description(desc)
                .await
                .map_err(webrtc_err)?;
            flush(&p.pc, &mut pending.publisher).await
        }
        ServerMessage::Offer { sdp, .. } => {
            let s = &shared.subscriber;
            let desc = RTCSessionDescription::offer(sdp).map_err(webrtc_err)?;
            s.pc.set_remote_description(desc)
                .await
                .map_err(webrtc_err)?;
            let answer = s.pc.create_answer(None).await.map_err(webrtc_err)?;
            s.pc.set_local_description(answer)
                .await
                .map_err(webrtc_err)?;
            let sdp =
                s.pc.local_description()
                    .await
                    .ok_or_else(|| ClientError::WebRtc("no local description".into()))?
                    .sdp;
            let _ = out.send(Outgoing::Message(ClientMessage::Answer {
                pc: PcName::Subscriber,
                sdp,
            }));
            s.gate.release();
            flush(&s.pc, &mut pending.subscriber).await
        }
        ServerMessage::Candidate { pc, candidate } => {
            let Some(c) = candidate.filter(|c| !c.candidate.is_empty()) else {
                return Ok(()); // end of candidates: nothing to do in webrtc-rs
            };
            let (target, queue) = match pc {
                PcName::Publisher => match &shared.publisher {
                    Some(p) => (&p.pc, &mut pending.publisher),
                    None => {
                        return Err(ClientError::Protocol(
                            "publisher candidate without publisher".into(),
                        ))
                    }
                },
                PcName::Subscriber => (&shared.subscriber.pc, &mut pending.subscriber),
            };
            queue.push(c);
            flush(target, queue).await
        }
        other => {
            if let ServerMessage::TrackUnpublished { track_id, .. } = &other {
                shared.received.mark_ended(track_id);
            }
            shared.events.push(other);
            Ok(())
        }
    }
}

/// Adds queued remote candidates once the connection has a remote description.
async fn flush(
    pc: &Arc<dyn PeerConnection>,
    queue: &mut Vec<CandidateInit>,
) -> Result<(), ClientError> {
    if queue.is_empty() || pc.remote_description().await.is_none() {
        return Ok(());
    }
    for c in queue.drain(..) {
        pc.add_ice_candidate(to_init(c)).await.map_err(webrtc_err)?;
    }
    Ok(())
}
