//! The waiting room as a connection sees it: what a host may do (`admit`, `admit_all`,
//! `decline`) and what a waiting connection may do (`chat`, `leave`, `ping`). The queue
//! itself is in [`crate::waiting`].

use crate::connection::{Connection, Flow};
use crate::gatekeeper::WaitingDecision;
use crate::hub::{Hub, RoomState};
use crate::protocol::{ClientMessage, ServerMessage};

impl Connection {
    /// Handles a message of a connection that waits to be let in.
    pub(crate) async fn handle_waiting(&mut self, message: ClientMessage) -> Flow {
        let Some(waiting) = &self.waiting else {
            return Flow::Continue;
        };
        let (room, pid) = (waiting.room.clone(), waiting.participant_id.clone());
        match message {
            ClientMessage::Leave => {
                self.waiting = None;
                self.hub.leave_waiting_room(&room, &pid, self.id).await;
                self.outbox.send(ServerMessage::Left);
                self.outbox.close(1000, "left");
                self.stopped = true;
                Flow::Stop
            }
            ClientMessage::Chat { text, to } => {
                self.chat_from_waiting_room(&room, &pid, &text, to.as_deref())
                    .await;
                Flow::Continue
            }
            ClientMessage::Join { .. } | ClientMessage::Probe { .. } => {
                self.already_joined();
                Flow::Continue
            }
            _ => {
                self.outbox.send(ServerMessage::error(
                    "not_admitted",
                    "you are in the waiting room; a host will let you in",
                    false,
                ));
                Flow::Continue
            }
        }
    }

    /// `admit`: a host lets a waiting person in.
    pub(crate) async fn admit(&mut self, participant_id: &str) {
        let Some(person) = self.waiting_person_for_host(participant_id).await else {
            return;
        };
        if !self.record_decision(&person, true).await {
            return;
        }
        let Some(joined) = &self.joined else {
            return;
        };
        let _ = self.hub.admit_person(&joined.room.id, &person).await;
    }

    /// `admit_all`: a host lets everyone waiting in.
    pub(crate) async fn admit_all(&mut self) {
        let Some(joined) = self.host_room() else {
            return;
        };
        let people = joined.members.lock().await.waiting_people();
        for person in people {
            if self.record_decision(&person, true).await {
                let _ = self.hub.admit_person(&joined.id, &person).await;
            }
        }
    }

    /// `decline`: a host refuses a waiting person.
    pub(crate) async fn decline(&mut self, participant_id: &str) {
        let Some(person) = self.waiting_person_for_host(participant_id).await else {
            return;
        };
        if !self.record_decision(&person, false).await {
            return;
        }
        if let Some(joined) = &self.joined {
            let _ = self.hub.decline_person(&joined.room.id, &person).await;
        }
    }

    /// The room, when this connection is a host in it; otherwise tells the client
    /// `not_host`.
    fn host_room(&self) -> Option<std::sync::Arc<RoomState>> {
        match &self.joined {
            Some(joined) if joined.admission.host => Some(joined.room.clone()),
            _ => {
                self.outbox.send(ServerMessage::error(
                    "not_host",
                    "only the therapist and the practice's staff can do this",
                    false,
                ));
                None
            }
        }
    }

    /// The person waiting as `participant_id`, for a host; tells the client why not.
    async fn waiting_person_for_host(&self, participant_id: &str) -> Option<String> {
        let room = self.host_room()?;
        let person = room.members.lock().await.waiting_person(participant_id);
        if person.is_none() {
            self.outbox.send(ServerMessage::error(
                "participant_not_found",
                "nobody of that id is waiting",
                false,
            ));
        }
        person
    }

    /// Has the application record this host's decision; false (and an error to the
    /// client) when it could not.
    async fn record_decision(&self, person_id: &str, admitted: bool) -> bool {
        let Some(joined) = &self.joined else {
            return false;
        };
        let decision = WaitingDecision {
            session_id: &joined.room.id,
            person_id,
            admitted,
            actor_subject: &joined.admission.subject,
            actor_role: &joined.admission.role,
        };
        match self.hub.inner.gate.waiting_decision(decision).await {
            Ok(()) => true,
            Err(refusal) => {
                self.outbox
                    .send(ServerMessage::error(&refusal.code, refusal.message, false));
                false
            }
        }
    }
}

impl Hub {
    /// A waiting connection is gone (closed its socket, or `leave`): it leaves the
    /// queue at once — there is no grace period for someone who was never in.
    pub(crate) async fn leave_waiting_room(
        &self,
        room: &std::sync::Arc<RoomState>,
        participant_id: &str,
        connection_id: u64,
    ) {
        {
            let mut members = room.members.lock().await;
            let ours = members
                .waiting
                .get(participant_id)
                .is_some_and(|w| w.connection_id == connection_id);
            if !ours {
                return;
            }
            members.waiting.remove(participant_id);
            members.send_queue();
        }
        tracing::info!(room_id = %room.id, participant_id, "left the waiting room");
        self.drop_room_if_empty(room).await;
    }
}
