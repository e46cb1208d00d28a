//! A TheraRoom participant whose two peer connections live in the [`Engine`]: the same
//! public protocol (`signaling/PROTOCOL.md`) and signaling code as
//! [`crate::Participant`] — WebSocket, `join`, trickle ICE on tokio — with the media in
//! the engine's loops. This is what the load tool runs by default.
//!
//! One tokio task per participant reads the socket and the two connections' events in
//! order: subscriber offers are answered, answers and candidates applied, local
//! candidates sent after the description that announced them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Engine, EnginePc, PcEvent};
use crate::client::protocol::{ClientMessage, Joined, Kind, PcName, ServerMessage};
use crate::client::signal::{self, Incoming, Outgoing, WsRead};
use crate::client::stats::{RemoteTrackStats, SentStats};
use crate::client::{gone, ClientError, CloseInfo, EventLog, Events, JoinOptions, PcState};
use crate::{ClipSet, MediaRate};

/// A joined participant with engine peer connections. Call [`EngineParticipant::leave`]
/// or [`EngineParticipant::close`] when done (dropping it closes the connections).
pub struct EngineParticipant {
    joined: Joined,
    out: mpsc::UnboundedSender<Outgoing>,
    publisher: Option<Arc<EnginePc>>,
    subscriber: Arc<EnginePc>,
    events: Arc<EventLog>,
    errors: Arc<Mutex<Vec<String>>>,
    closed: watch::Receiver<Option<CloseInfo>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the signaling task works on.
struct Signaling {
    out: mpsc::UnboundedSender<Outgoing>,
    publisher: Option<Arc<EnginePc>>,
    subscriber: Arc<EnginePc>,
    events: Arc<EventLog>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl EngineParticipant {
    /// Joins a session: `join` → `joined` (or [`ClientError::Refused`]), then creates the
    /// engine connections bound to `opts.bind_ip`, sends the publisher offer, and from
    /// then on answers subscriber offers and trickles candidates in the background.
    pub async fn join(
        engine: &Engine,
        opts: JoinOptions,
    ) -> Result<EngineParticipant, ClientError> {
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
        let subscriber = Arc::new(engine.subscriber(opts.bind_ip).await?);
        let publisher = if opts.publish.audio || opts.publish.video {
            let p = Arc::new(engine.publisher(opts.bind_ip, opts.publish).await?);
            let sdp = p.offer().await?;
            let _ = out.send(Outgoing::Message(ClientMessage::Offer {
                pc: PcName::Publisher,
                sdp,
            }));
            Some(p)
        } else {
            None
        };
        let events = EventLog::new();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let (closed_tx, closed_rx) = watch::channel(None);
        let sig = Signaling {
            out: out.clone(),
            publisher: publisher.clone(),
            subscriber: Arc::clone(&subscriber),
            events: Arc::clone(&events),
            errors: Arc::clone(&errors),
        };
        let reader = tokio::spawn(sig.run(read, closed_tx));
        Ok(EngineParticipant {
            joined,
            out,
            publisher,
            subscriber,
            events,
            errors,
            closed: closed_rx,
            tasks: vec![writer, reader],
        })
    }

    /// Our participant id (the stream id others see our tracks under).
    pub fn participant_id(&self) -> &str {
        &self.joined.participant_id
    }

    /// The `joined` message.
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// A cursor over every server message since `joined` (negotiation excluded).
    pub fn events(&self) -> Events {
        self.events.cursor()
    }

    /// A copy of every server message received so far (negotiation excluded).
    pub fn event_log(&self) -> Vec<ServerMessage> {
        self.events.all()
    }

    /// Sends any protocol message (mute, request_keyframe, ping, ...).
    pub fn send(&self, message: ClientMessage) -> Result<(), ClientError> {
        self.out
            .send(Outgoing::Message(message))
            .map_err(|_| ClientError::Closed(self.close_info().unwrap_or_else(gone)))
    }

    /// Starts (or restarts) synthetic tagged media on our tracks.
    pub fn start_media(&self, rate: MediaRate) {
        if let Some(p) = &self.publisher {
            p.start_media(rate);
        }
    }

    /// Starts (or restarts) looping real media from `clips` on our tracks.
    pub fn start_clips(&self, clips: &Arc<ClipSet>) {
        if let Some(p) = &self.publisher {
            p.start_clips(clips);
        }
    }

    /// Stops sending media.
    pub fn stop_media(&self) {
        if let Some(p) = &self.publisher {
            p.stop_media();
        }
    }

    /// What each of our tracks sent so far.
    pub fn sent(&self) -> Vec<SentStats> {
        self.publisher
            .as_ref()
            .map(|p| p.sent())
            .unwrap_or_default()
    }

    /// What we sent on our track of `kind`, if we publish one.
    pub fn sent_of(&self, kind: Kind) -> Option<SentStats> {
        self.sent().into_iter().find(|s| s.kind == kind)
    }

    /// What every remote track delivered so far, sorted by (stream id, track id).
    pub fn received(&self) -> Vec<RemoteTrackStats> {
        self.subscriber.received()
    }

    /// Connection state of the publisher connection (`None` when publishing nothing).
    pub fn publisher_state(&self) -> Option<PcState> {
        self.publisher.as_ref().map(|p| p.state())
    }

    /// Local UDP port of the subscriber connection.
    pub fn subscriber_port(&self) -> Option<u16> {
        Some(self.subscriber.local_port()).filter(|p| *p != 0)
    }

    /// Connection state of the subscriber connection.
    pub fn subscriber_state(&self) -> PcState {
        self.subscriber.state()
    }

    /// Offers, answers or candidates that could not be applied (should stay empty).
    pub fn negotiation_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How the socket closed, if it did.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.closed.borrow().clone()
    }

    /// Waits until the signaling socket is closed.
    pub async fn wait_closed(&self) -> CloseInfo {
        let mut rx = self.closed.clone();
        let close = match rx.wait_for(Option::is_some).await {
            Ok(c) => c.clone(),
            Err(_) => None,
        };
        close.unwrap_or_else(gone)
    }

    /// Sends `leave`, waits (up to 10 s) for the closing frame, then closes the
    /// connections. Returns how the socket closed.
    pub async fn leave(&self) -> Result<CloseInfo, ClientError> {
        self.send(ClientMessage::Leave)?;
        let close = tokio::time::timeout(Duration::from_secs(10), self.wait_closed())
            .await
            .map_err(|_| ClientError::Timeout("leave"));
        self.close_media().await;
        close
    }

    /// Closes everything from our side without `leave` (like a tab that goes away).
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
        if let Some(p) = &self.publisher {
            p.close().await;
        }
        self.subscriber.close().await;
    }
}

impl Drop for EngineParticipant {
    fn drop(&mut self) {
        // The connections close when the last handle (ours or the task's) drops.
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Next event of an optional connection (never ready without one).
async fn next_event(rx: &mut Option<mpsc::UnboundedReceiver<PcEvent>>) -> Option<PcEvent> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

impl Signaling {
    async fn run(self, mut read: WsRead, closed: watch::Sender<Option<CloseInfo>>) {
        let mut pub_events = self.publisher.as_ref().and_then(|p| p.take_events());
        let mut sub_events = self.subscriber.take_events();
        let close = loop {
            tokio::select! {
                incoming = signal::next(&mut read) => match incoming {
                    Incoming::Message(m) => {
                        if let Err(e) = self.handle(m).await {
                            tracing::warn!(error = %e, "client negotiation failed");
                            self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(e.to_string());
                        }
                    }
                    Incoming::Malformed(text) => tracing::warn!(%text, "unreadable server message"),
                    Incoming::Closed(close) => break close,
                },
                Some(ev) = next_event(&mut pub_events) => self.local_event(PcName::Publisher, ev),
                Some(ev) = next_event(&mut sub_events) => self.local_event(PcName::Subscriber, ev),
            }
        };
        tracing::debug!(%close, "signaling closed");
        closed.send_replace(Some(close));
        self.events.close();
    }

    fn local_event(&self, pc: PcName, ev: PcEvent) {
        if let PcEvent::LocalCandidate(c) = ev {
            let _ = self.out.send(Outgoing::Message(ClientMessage::Candidate {
                pc,
                candidate: Some(c),
            }));
        }
    }

    async fn handle(&self, message: ServerMessage) -> Result<(), ClientError> {
        match message {
            ServerMessage::Answer { sdp, .. } => {
                let p = self.publisher.as_ref().ok_or_else(|| {
                    ClientError::Protocol("answer without a publisher connection".into())
                })?;
                p.apply_answer(&sdp).await
            }
            ServerMessage::Offer { sdp, .. } => {
                let sdp = self.subscriber.answer(&sdp).await?;
                let _ = self.out.send(Outgoing::Message(ClientMessage::Answer {
                    pc: PcName::Subscriber,
                    sdp,
                }));
                Ok(())
            }
            ServerMessage::Candidate { pc, candidate } => {
                let Some(c) = candidate.filter(|c| !c.candidate.is_empty()) else {
                    return Ok(()); // end of candidates
                };
                match pc {
                    PcName::Publisher => match &self.publisher {
                        Some(p) => p.add_candidate(c).await,
                        None => Err(ClientError::Protocol(
                            "publisher candidate without publisher".into(),
                        )),
                    },
                    PcName::Subscriber => self.subscriber.add_candidate(c).await,
                }
            }
            other => {
                if let ServerMessage::TrackUnpublished { track_id, .. } = &other {
                    self.subscriber.mark_ended(track_id);
                }
                self.events.push(other);
                Ok(())
            }
        }
    }
}
