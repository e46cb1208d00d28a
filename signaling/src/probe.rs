//! The pre-call connectivity check (PROTOCOL.md, "Connectivity check"): a socket that
//! sends `probe` instead of `join` gets one throw-away publisher connection to the
//! media server, in a media room of its own that no hub room knows, for a short time.
//! It tells the person before joining whether media can reach the server at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::connection::{Connection, Flow};
use crate::media::{MediaParticipant, MediaRoom, NewParticipant};
use crate::protocol::{ClientMessage, PcName, ServerMessage};
use crate::relay::relay_media_events;

/// How long a probe connection lives.
pub const PROBE_LIFETIME: Duration = Duration::from_secs(20);

/// The media of one probe.
pub(crate) struct Probe {
    room: Arc<dyn MediaRoom>,
    media: Arc<dyn MediaParticipant>,
}

impl Probe {
    /// Releases the probe's connection and its media room.
    pub(crate) async fn close(self) {
        self.media.close().await;
        self.room.close().await;
    }
}

impl Connection {
    /// `probe`: checks the token against the session's rules (registering nobody),
    /// then opens the probe's media and hands out its ICE servers.
    pub(crate) async fn start_probe(
        &mut self,
        protocol: u32,
        session_id: &str,
        token: Option<String>,
    ) -> Flow {
        if !self.awaits_join() {
            self.already_joined();
            return Flow::Continue;
        }
        let token = match self.opening_token(protocol, token) {
            Ok(token) => token,
            Err(flow) => return flow,
        };
        let ice_servers = match self.hub.inner.gate.probe(&token, session_id).await {
            Ok(servers) => servers,
            Err(refusal) => return self.fatal(&refusal.code, refusal.message),
        };
        let room = self
            .hub
            .inner
            .media
            .open_room(&format!("probe-{}", self.id));
        let NewParticipant {
            participant: media,
            events,
        } = match room.add_participant("probe").await {
            Ok(added) => added,
            Err(err) => {
                tracing::error!(error = %err, "could not create a probe connection");
                room.close().await;
                return self.fatal("internal", "the media server could not run the check");
            }
        };
        let span = tracing::info_span!("probe", connection_id = self.id);
        tokio::spawn(
            relay_media_events(events, self.outbox.clone(), "probe".into(), Instant::now())
                .instrument(span),
        );
        let outbox = self.outbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PROBE_LIFETIME).await;
            outbox.close(1000, "probe_finished");
        });
        self.probe = Some(Probe { room, media });
        self.outbox.send(ServerMessage::ProbeReady { ice_servers });
        Flow::Continue
    }

    /// A message on a probe connection: only the publisher's offer and candidates.
    pub(crate) async fn handle_probe(&mut self, message: ClientMessage) -> Flow {
        let Some(probe) = &self.probe else {
            return Flow::Continue;
        };
        let media = Arc::clone(&probe.media);
        let result = match message {
            ClientMessage::Offer {
                pc: PcName::Publisher,
                sdp,
                tracks,
            } => match media.handle_publisher_offer(sdp, tracks).await {
                Ok(answer) => {
                    self.outbox.send(ServerMessage::Answer {
                        pc: PcName::Publisher,
                        sdp: answer,
                    });
                    Ok(())
                }
                Err(err) => Err(err),
            },
            ClientMessage::Candidate {
                pc: PcName::Publisher,
                candidate,
            } => {
                let candidate = candidate.filter(|c| !c.candidate.is_empty());
                media.add_ice_candidate(PcName::Publisher, candidate).await
            }
            ClientMessage::Leave => {
                self.outbox.send(ServerMessage::Left);
                self.outbox.close(1000, "left");
                self.stopped = true;
                return Flow::Stop;
            }
            _ => {
                self.outbox.send(ServerMessage::error(
                    "bad_message",
                    "a probe takes only a publisher offer and its candidates",
                    false,
                ));
                Ok(())
            }
        };
        if let Err(err) = result {
            self.negotiation_failed(err);
        }
        Flow::Continue
    }
}
