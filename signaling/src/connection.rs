//! One client connection: the state machine `awaiting join → (waiting room →) joined →
//! closed`, or a short-lived connectivity probe.
//!
//! The transport calls [`Connection::handle_text`] for every text frame, in order,
//! and [`Connection::disconnected`] when the socket is gone. Replies and events go
//! to the connection's [`Outbox`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::gatekeeper::Admission;
use crate::hub::{Hub, RoomState};
use crate::media::{MediaError, MediaParticipant};
use crate::outbox::{OutboundQueue, Outbox};
use crate::protocol::{
    parse_client_message, ClientMessage, ParseError, PcName, ServerMessage, MAX_MESSAGE_BYTES,
};
use crate::throttle::{LogThrottle, MessageLimiter, Verdict};

/// Process-wide log throttles: a flood logs a handful of lines, with counts.
static NEGOTIATION_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(1));
static RATE_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(1));

/// Whether the transport should keep reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// A close was queued; stop reading after draining the outbox.
    Stop,
}

/// State of a joined connection.
pub(crate) struct Joined {
    pub(crate) room: Arc<RoomState>,
    pub(crate) participant_id: String,
    pub(crate) media: Arc<dyn MediaParticipant>,
    /// Who this is, for the waiting-room decisions they may take (hosts) and chat.
    pub(crate) admission: Admission,
}

/// State of a connection in the waiting room.
pub(crate) struct Waiting {
    pub(crate) room: Arc<RoomState>,
    pub(crate) participant_id: String,
    pub(crate) admission: Admission,
}

/// One client connection.
pub struct Connection {
    pub(crate) hub: Hub,
    pub(crate) id: u64,
    pub(crate) outbox: Outbox,
    pub(crate) header_token: Option<String>,
    pub(crate) joined: Option<Joined>,
    /// Set while the connection waits in the waiting room.
    pub(crate) waiting: Option<Waiting>,
    /// Set on a connectivity-probe connection.
    pub(crate) probe: Option<crate::probe::Probe>,
    /// Chat message budget.
    pub(crate) chat_limiter: crate::chat::ChatLimiter,
    /// Token subject once authenticated (join or listen), for notifications.
    pub(crate) subject: Option<String>,
    /// Id of the token authenticated with, for revocation.
    pub(crate) token_id: Option<String>,
    pub(crate) stopped: bool,
    /// Incoming message budget.
    limiter: MessageLimiter,
}

impl Hub {
    /// Opens a connection. `header_token` is a bearer token from the upgrade request,
    /// used when `join` carries none. Drain the queue into the socket.
    pub fn connect(&self, header_token: Option<String>) -> (Connection, OutboundQueue) {
        let (outbox, rx) = Outbox::new();
        let config = self.config();
        let connection = Connection {
            hub: self.clone(),
            id: self.next_connection_id(),
            outbox,
            header_token,
            joined: None,
            waiting: None,
            probe: None,
            chat_limiter: crate::chat::ChatLimiter::new(Instant::now()),
            subject: None,
            token_id: None,
            stopped: false,
            limiter: MessageLimiter::new(config.message_rate, config.message_burst, Instant::now()),
        };
        (connection, rx)
    }
}

impl Connection {
    /// True once `join` succeeded.
    pub fn is_joined(&self) -> bool {
        self.joined.is_some()
    }

    /// True while the join deadline applies: neither `join`, `listen` nor `probe`
    /// succeeded.
    pub fn awaits_join(&self) -> bool {
        self.joined.is_none()
            && self.waiting.is_none()
            && self.probe.is_none()
            && self.subject.is_none()
    }

    /// Called when no `join` arrived in time.
    pub fn join_timed_out(&mut self) -> Flow {
        self.fatal("join_timeout", "no join message within the time limit")
    }

    /// Charges one incoming frame to the message budget. `Some(flow)` when the frame
    /// must not be handled: refused (non-fatal `rate_limited`, at most one per second)
    /// or, for sustained abuse, the connection closes with fatal `rate_limited`.
    fn over_budget(&mut self) -> Option<Flow> {
        match self.limiter.check(Instant::now()) {
            Verdict::Allow => None,
            Verdict::Refuse { notify } => {
                if notify {
                    self.outbox.send(ServerMessage::error(
                        "rate_limited",
                        "too many messages; slow down",
                        false,
                    ));
                }
                Some(Flow::Continue)
            }
            Verdict::Abuse => {
                if let Some(suppressed) = RATE_LOG.allow() {
                    tracing::warn!(
                        connection_id = self.id,
                        suppressed,
                        "signaling client kept flooding; closing it"
                    );
                }
                Some(self.fatal("rate_limited", "too many messages"))
            }
        }
    }

    /// Called for a WebSocket ping or pong frame: they count against the message budget
    /// like any other frame (the transport answers pings itself).
    pub fn handle_control_frame(&mut self) -> Flow {
        if self.stopped {
            return Flow::Stop;
        }
        self.over_budget().unwrap_or(Flow::Continue)
    }

    /// Called for a binary frame.
    pub fn handle_binary(&mut self) -> Flow {
        if self.stopped {
            return Flow::Stop;
        }
        if let Some(flow) = self.over_budget() {
            return flow;
        }
        self.outbox.send(ServerMessage::error(
            "bad_message",
            "binary frames are not part of the protocol",
            false,
        ));
        Flow::Continue
    }

    /// Called when the transport refused a frame over the size limit.
    pub fn handle_oversize(&mut self) -> Flow {
        self.fatal(
            "message_too_large",
            format!("messages are limited to {MAX_MESSAGE_BYTES} bytes"),
        )
    }

    /// Handles one text frame.
    pub async fn handle_text(&mut self, text: &str) -> Flow {
        if self.stopped {
            return Flow::Stop;
        }
        if let Some(flow) = self.over_budget() {
            return flow;
        }
        let message = match parse_client_message(text) {
            Ok(m) => m,
            Err(ParseError::TooLarge) => return self.handle_oversize(),
            Err(err) => {
                self.outbox
                    .send(ServerMessage::error(err.code(), err.message(), false));
                return Flow::Continue;
            }
        };
        match message {
            ClientMessage::Join {
                protocol,
                session_id,
                token,
                display_name,
                instance,
            } => {
                self.join(protocol, &session_id, token, display_name, instance)
                    .await
            }
            ClientMessage::Probe {
                protocol,
                session_id,
                token,
            } => self.start_probe(protocol, &session_id, token).await,
            ClientMessage::Ping { ts } => {
                self.outbox.send(ServerMessage::Pong { ts });
                Flow::Continue
            }
            ClientMessage::Listen { protocol, token } => self.listen(protocol, token).await,
            other if self.probe.is_some() => self.handle_probe(other).await,
            other => {
                self.promote_if_admitted().await;
                if self.waiting.is_some() {
                    return self.handle_waiting(other).await;
                }
                let Some(joined) = &self.joined else {
                    self.outbox
                        .send(ServerMessage::error("not_joined", "send join first", false));
                    return Flow::Continue;
                };
                let media = Arc::clone(&joined.media);
                let participant_id = joined.participant_id.clone();
                let room = Arc::clone(&joined.room);
                self.handle_joined(other, room, participant_id, media).await
            }
        }
    }

    async fn handle_joined(
        &mut self,
        message: ClientMessage,
        room: Arc<RoomState>,
        participant_id: String,
        media: Arc<dyn MediaParticipant>,
    ) -> Flow {
        match message {
            ClientMessage::Offer {
                pc: PcName::Publisher,
                sdp,
                tracks,
            } => match media.handle_publisher_offer(sdp, tracks).await {
                Ok(answer) => self.outbox.send(ServerMessage::Answer {
                    pc: PcName::Publisher,
                    sdp: answer,
                }),
                Err(err) => self.negotiation_failed(err),
            },
            ClientMessage::Answer {
                pc: PcName::Subscriber,
                sdp,
            } => {
                if let Err(err) = media.handle_subscriber_answer(sdp).await {
                    self.negotiation_failed(err);
                }
            }
            ClientMessage::Offer { .. } | ClientMessage::Answer { .. } => {
                self.outbox.send(ServerMessage::error(
                    "bad_message",
                    "offers go on the publisher connection, answers on the subscriber connection",
                    false,
                ));
            }
            ClientMessage::Candidate { pc, candidate } => {
                let candidate = candidate.filter(|c| !c.candidate.is_empty());
                if let Err(err) = media.add_ice_candidate(pc, candidate).await {
                    self.negotiation_failed(err);
                }
            }
            ClientMessage::Mute { kind, muted } => {
                crate::mute::set_mute(&room, &participant_id, kind, muted).await;
            }
            ClientMessage::RequestKeyframe { track_id } => media.request_keyframe(&track_id),
            ClientMessage::AudioOnly { enabled } => media.set_audio_only(enabled),
            ClientMessage::VideoView {
                track_id,
                visible,
                width,
                height,
            } => {
                // The parser refused unpaired or out-of-range sizes already.
                let size = width.zip(height);
                media.set_video_visible(&track_id, visible, size)
            }
            ClientMessage::Leave => {
                let member = {
                    let mut members = room.members.lock().await;
                    let ours = members
                        .by_id
                        .get(&participant_id)
                        .is_some_and(|m| m.connection_id == self.id);
                    if ours {
                        members.by_id.remove(&participant_id)
                    } else {
                        None
                    }
                };
                self.joined = None;
                if let Some(member) = member {
                    self.hub
                        .finish_departure(&room, &participant_id, member, "left")
                        .await;
                }
                self.outbox.send(ServerMessage::Left);
                self.outbox.close(1000, "left");
                self.stopped = true;
                return Flow::Stop;
            }
            ClientMessage::Admit { participant_id } => self.admit(&participant_id).await,
            ClientMessage::AdmitAll => self.admit_all().await,
            ClientMessage::Decline { participant_id } => self.decline(&participant_id).await,
            ClientMessage::Chat { text, to } => {
                self.chat_in_room(&room, &participant_id, &text, to.as_deref())
                    .await
            }
            ClientMessage::Join { .. } | ClientMessage::Probe { .. } => self.already_joined(),
            ClientMessage::Ping { .. } | ClientMessage::Listen { .. } => {
                // Answered before a connection's state is looked at.
            }
        }
        Flow::Continue
    }

    /// The detail stays in the (throttled) log; the client gets a generic message, so
    /// no SDP parser or webrtc internals leak to it.
    pub(crate) fn negotiation_failed(&self, err: MediaError) {
        if let Some(suppressed) = NEGOTIATION_LOG.allow() {
            tracing::warn!(error = %err, connection_id = self.id, suppressed, "negotiation failed");
        }
        self.outbox.send(ServerMessage::error(
            "negotiation_failed",
            "the server could not apply this description or candidate",
            false,
        ));
    }

    pub(crate) fn fatal(&mut self, code: &str, message: impl Into<String>) -> Flow {
        self.outbox.fail(code, message);
        self.stopped = true;
        Flow::Stop
    }

    /// Called once the socket is gone. A joined participant whose socket dropped
    /// (without `leave`) keeps its place for the grace period.
    pub async fn disconnected(mut self) {
        if let Some(subject) = self.subject.take() {
            self.hub.remove_listener(&subject, self.id);
        }
        if let Some(token_id) = self.token_id.take() {
            self.hub.remove_token_connection(&token_id, self.id);
        }
        if let Some(probe) = self.probe.take() {
            probe.close().await;
        }
        self.promote_if_admitted().await;
        if let Some(waiting) = self.waiting.take() {
            self.hub
                .leave_waiting_room(&waiting.room, &waiting.participant_id, self.id)
                .await;
        }
        if let Some(joined) = self.joined.take() {
            self.hub
                .start_grace(joined.room, joined.participant_id, self.id)
                .await;
        }
    }
}
