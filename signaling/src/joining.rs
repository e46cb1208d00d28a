//! Getting a connection in: `listen` (notifications only) and `join` (checks, the
//! admission, the room or its waiting room, `joined`), and the moment a waiting
//! connection that a host let in becomes a joined one.

use std::time::Instant;

use tracing::Instrument;

use crate::connection::{Connection, Flow, Joined, Waiting};
use crate::entry::{Entry, Welcome};
use crate::gatekeeper::{Admission, Refusal};
use crate::names::check_name;
use crate::protocol::{ServerMessage, PROTOCOL_VERSION};

/// Longest `join.display_name`, in characters (the REST limit for guest names).
const MAX_DISPLAY_NAME: usize = 80;

/// Longest `join.instance`.
const MAX_INSTANCE: usize = 64;

impl Connection {
    /// The checks every opening message (`listen`, `join`, `probe`) starts with: the
    /// protocol version, and a token in the message or on the upgrade request. `Err`
    /// is the fatal refusal already queued.
    pub(crate) fn opening_token(
        &mut self,
        protocol: u32,
        token: Option<String>,
    ) -> Result<String, Flow> {
        if protocol != PROTOCOL_VERSION {
            return Err(self.fatal(
                "protocol_version",
                format!("this server speaks protocol {PROTOCOL_VERSION}"),
            ));
        }
        match token.or_else(|| self.header_token.clone()) {
            Some(token) => Ok(token),
            None => Err(self.fatal("unauthorized", "a token is required")),
        }
    }

    /// Tells the client this connection is already in (non-fatal `already_joined`).
    pub(crate) fn already_joined(&self) {
        self.outbox.send(ServerMessage::error(
            "already_joined",
            "this connection already joined",
            false,
        ));
    }

    pub(crate) async fn listen(&mut self, protocol: u32, token: Option<String>) -> Flow {
        let token = match self.opening_token(protocol, token) {
            Ok(token) => token,
            Err(flow) => return flow,
        };
        match self.hub.inner.gate.authenticate(&token).await {
            Ok(authenticated) => {
                let subject = authenticated.subject;
                self.register_subject(&subject);
                self.register_token(authenticated.token_id);
                self.outbox.send(ServerMessage::Listening { subject });
                Flow::Continue
            }
            Err(refusal) => self.fatal(&refusal.code, refusal.message),
        }
    }

    pub(crate) fn register_token(&mut self, token_id: Option<String>) {
        if let Some(previous) = std::mem::replace(&mut self.token_id, token_id) {
            self.hub.remove_token_connection(&previous, self.id);
        }
        if let Some(token_id) = &self.token_id {
            self.hub
                .add_token_connection(token_id, self.id, &self.outbox);
        }
    }

    pub(crate) fn register_subject(&mut self, subject: &str) {
        if let Some(previous) = self.subject.replace(subject.to_string()) {
            self.hub.remove_listener(&previous, self.id);
        }
        self.hub.add_listener(subject, self.id, &self.outbox);
    }

    pub(crate) async fn join(
        &mut self,
        protocol: u32,
        session_id: &str,
        token: Option<String>,
        display_name: Option<String>,
        instance: Option<String>,
    ) -> Flow {
        if self.joined.is_some() || self.waiting.is_some() || self.probe.is_some() {
            self.already_joined();
            return Flow::Continue;
        }
        let token = match self.opening_token(protocol, token) {
            Ok(token) => token,
            Err(flow) => return flow,
        };
        // The same rule as names entered over REST; refused before any lookup.
        let display_name = match display_name
            .as_deref()
            .map(|n| check_name(n, MAX_DISPLAY_NAME))
        {
            None => None,
            Some(Ok(name)) => Some(name.to_string()),
            Some(Err(err)) => return self.fatal("invalid_name", err.message("display_name")),
        };
        if let Some(instance) = &instance {
            if !valid_instance(instance) {
                return self.fatal(
                    "bad_message",
                    "instance must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
                );
            }
        }
        let started = Instant::now();
        let mut admission = match self.hub.inner.gate.admit(&token, session_id).await {
            Ok(a) => a,
            Err(refusal) => return self.fatal(&refusal.code, refusal.message),
        };
        if let Some(name) = display_name {
            if !admission.is_guest {
                admission.display_name = name;
            }
        }
        let pid = crate::entry::participant_id(&admission.person_id, instance.as_deref());
        let span = tracing::info_span!("participant", room_id = %session_id, participant_id = %pid);
        match self
            .enter_room(admission, pid, started)
            .instrument(span)
            .await
        {
            Ok(()) => Flow::Continue,
            Err(refusal) => self.fatal(&refusal.code, refusal.message),
        }
    }

    async fn enter_room(
        &mut self,
        admission: Admission,
        pid: String,
        started: Instant,
    ) -> Result<(), Refusal> {
        let hub = self.hub.clone();
        let entry = hub.enter(&admission, &pid, self.id, &self.outbox).await?;
        self.register_subject(&admission.subject);
        self.register_token(admission.token_id.clone());
        let entered = match entry {
            Entry::Waiting(room) => {
                tracing::info!("participant waits in the waiting room");
                hub.inner
                    .gate
                    .participant_waiting(&admission.person_id)
                    .await;
                self.waiting = Some(Waiting {
                    room,
                    participant_id: pid,
                    admission,
                });
                return Ok(());
            }
            Entry::Seated(entered) => entered,
        };
        hub.welcome(Welcome {
            admission: &admission,
            participant_id: &pid,
            outbox: &self.outbox,
            resumed: entered.resumed,
            participants: entered.participants,
            queue: entered.queue,
            events: entered.events,
            started,
        })
        .await;
        tracing::info!(resumed = entered.resumed, "participant joined");
        self.joined = Some(Joined {
            room: entered.room,
            participant_id: pid,
            media: entered.media,
            admission,
        });
        Ok(())
    }

    /// A waiting connection whose host let it in has a seat with media by now: from
    /// here on it is a joined connection.
    pub(crate) async fn promote_if_admitted(&mut self) {
        let Some(waiting) = &self.waiting else {
            return;
        };
        let media = {
            let members = waiting.room.members.lock().await;
            members
                .by_id
                .get(&waiting.participant_id)
                .filter(|m| m.connection_id == self.id)
                .and_then(|m| m.media.clone())
        };
        if let Some(media) = media {
            if let Some(waiting) = self.waiting.take() {
                self.joined = Some(Joined {
                    room: waiting.room,
                    participant_id: waiting.participant_id,
                    media,
                    admission: waiting.admission,
                });
            }
        }
    }
}

/// A `join.instance` is 1..=64 characters of `A-Z a-z 0-9 _ -`.
fn valid_instance(instance: &str) -> bool {
    !instance.is_empty()
        && instance.len() <= MAX_INSTANCE
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
