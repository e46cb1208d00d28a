//! The waiting room: people whom the session's rules make wait (guests and clients of a
//! session whose waiting room is on) are queued here, without peer connections and
//! without a seat, until a host admits or declines them (PROTOCOL.md, "Waiting room").
//!
//! The queue lives in the room's [`Members`], under the room lock, so admitting someone
//! and seating them is one step for everyone else. Decisions are recorded by the
//! application ([`crate::Gatekeeper::waiting_decision`]) before the live room acts on
//! them; admitting over REST records first and then calls [`Hub::admit_person`].

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use crate::entry::{RoomFull, Welcome};
use crate::gatekeeper::Admission;
use crate::hub::{now_ms, Hub, Members, RoomState};
use crate::outbox::Outbox;
use crate::protocol::{ServerMessage, WaitingView};

/// Most people one room's waiting room holds.
pub const MAX_WAITING: usize = 50;

/// One connection waiting to be let in.
pub(crate) struct Waiter {
    /// The person.
    pub(crate) person_id: String,
    /// The connection speaking for them.
    pub(crate) connection_id: u64,
    pub(crate) outbox: Outbox,
    /// Their admission, kept to seat them and to build `joined` when admitted.
    pub(crate) admission: Admission,
    /// When they started waiting, Unix ms.
    pub(crate) since_ms: i64,
}

/// Why a waiting person could not be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitError {
    /// Nobody of that person is waiting in that session.
    NotWaiting,
}

impl Waiter {
    fn view(&self, participant_id: &str) -> WaitingView {
        WaitingView {
            participant_id: participant_id.to_string(),
            person_id: self.person_id.clone(),
            display_name: self.admission.display_name.clone(),
            role: self.admission.role.clone(),
            is_guest: self.admission.is_guest,
            since: crate::hub::rfc3339(self.since_ms),
        }
    }

    fn waiting_message(&self, participant_id: &str, host_present: bool) -> ServerMessage {
        ServerMessage::Waiting {
            participant_id: participant_id.to_string(),
            person_id: self.person_id.clone(),
            session: self.admission.session.clone(),
            therapist_name: self.admission.therapist_name.clone(),
            host_present,
        }
    }
}

impl Members {
    /// Puts a connection in the waiting room (taking over the entry of the same
    /// participant from an older connection, which is told `replaced`), tells it
    /// `waiting` and the hosts the new queue.
    pub(crate) fn enqueue_waiter(
        &mut self,
        participant_id: &str,
        admission: &Admission,
        connection_id: u64,
        outbox: &Outbox,
    ) -> Result<(), crate::gatekeeper::Refusal> {
        let since_ms = match self.waiting.remove(participant_id) {
            Some(old) => {
                old.outbox
                    .fail("replaced", "you joined from another connection");
                old.since_ms
            }
            None if self.waiting.len() >= MAX_WAITING => {
                return Err(crate::gatekeeper::Refusal::new(
                    "waiting_room_full",
                    "the waiting room is full; try again later",
                ));
            }
            None => now_ms(),
        };
        let waiter = Waiter {
            person_id: admission.person_id.clone(),
            connection_id,
            outbox: outbox.clone(),
            admission: admission.clone(),
            since_ms,
        };
        outbox.send(waiter.waiting_message(participant_id, self.host_connected()));
        self.waiting.insert(participant_id.to_string(), waiter);
        self.send_queue();
        Ok(())
    }

    /// The queue as hosts see it, longest waiting first.
    pub(crate) fn waiting_views(&self) -> Vec<WaitingView> {
        let mut waiting: Vec<(&String, &Waiter)> = self.waiting.iter().collect();
        waiting.sort_by(|a, b| a.1.since_ms.cmp(&b.1.since_ms).then(a.0.cmp(b.0)));
        waiting.into_iter().map(|(id, w)| w.view(id)).collect()
    }

    /// Sends the whole queue to every connected host.
    pub(crate) fn send_queue(&self) {
        let message = ServerMessage::WaitingRoom {
            waiting: self.waiting_views(),
        };
        for member in self.by_id.values().filter(|m| m.host) {
            member.outbox.send(message.clone());
        }
    }

    /// True when a host is in the room with a live connection.
    fn host_connected(&self) -> bool {
        self.by_id
            .values()
            .any(|m| m.host && m.view.connection == crate::protocol::ConnectionStatus::Connected)
    }

    /// Tells the waiting people when a host arrived or went (`waiting.host_present`).
    pub(crate) fn sync_host_presence(&mut self) {
        let present = self.host_connected();
        if present == self.host_present {
            return;
        }
        self.host_present = present;
        for (id, waiter) in &self.waiting {
            waiter.outbox.send(waiter.waiting_message(id, present));
        }
    }

    /// Takes out the waiting entries of `person_id`.
    fn take_person(&mut self, person_id: &str) -> Vec<(String, Waiter)> {
        let ids: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.person_id == person_id)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| self.waiting.remove(&id).map(|w| (id, w)))
            .collect()
    }

    /// The people waiting (each once, whatever number of connections they wait with).
    pub(crate) fn waiting_people(&self) -> Vec<String> {
        let mut people: Vec<String> = self.waiting.values().map(|w| w.person_id.clone()).collect();
        people.sort();
        people.dedup();
        people
    }

    /// The person of a waiting participant id.
    pub(crate) fn waiting_person(&self, participant_id: &str) -> Option<String> {
        self.waiting
            .get(participant_id)
            .map(|w| w.person_id.clone())
    }
}

impl Hub {
    /// The waiting room of a session, longest waiting first (empty without a room).
    pub async fn waiting_list(&self, session_id: &str) -> Vec<WaitingView> {
        match self.room(session_id) {
            Some(room) => room.members.lock().await.waiting_views(),
            None => Vec::new(),
        }
    }

    /// The person behind a waiting participant id, if that participant waits now.
    pub async fn waiting_person(&self, session_id: &str, participant_id: &str) -> Option<String> {
        let room = self.room(session_id)?;
        let members = room.members.lock().await;
        members.waiting_person(participant_id)
    }

    /// Lets every waiting connection of `person_id` in (the decision is already
    /// recorded). Each is seated and receives `joined`; one that finds the room full
    /// is refused with `room_full`.
    pub async fn admit_person(&self, session_id: &str, person_id: &str) -> Result<(), AdmitError> {
        let room = self.room(session_id).ok_or(AdmitError::NotWaiting)?;
        let mut members = Arc::clone(&room.members).lock_owned().await;
        let waiters = members.take_person(person_id);
        if waiters.is_empty() {
            return Err(AdmitError::NotWaiting);
        }
        for (participant_id, waiter) in waiters {
            self.seat_waiter(&room, &mut members, &participant_id, waiter)
                .await;
        }
        members.send_queue();
        drop(members);
        self.drop_room_if_empty(&room).await;
        Ok(())
    }

    /// Refuses every waiting connection of `person_id` (the decision is recorded): they
    /// receive `declined` and are closed.
    pub async fn decline_person(
        &self,
        session_id: &str,
        person_id: &str,
    ) -> Result<(), AdmitError> {
        let room = self.room(session_id).ok_or(AdmitError::NotWaiting)?;
        let mut members = room.members.lock().await;
        let waiters = members.take_person(person_id);
        if waiters.is_empty() {
            return Err(AdmitError::NotWaiting);
        }
        for (_, waiter) in waiters {
            waiter.outbox.fail(
                "declined",
                "the therapist did not let you in to this session",
            );
        }
        members.send_queue();
        drop(members);
        tracing::info!(room_id = %session_id, person_id, "waiting person declined");
        self.drop_room_if_empty(&room).await;
        Ok(())
    }

    /// Seats one admitted waiter, creates its media, and sends it `joined`.
    async fn seat_waiter(
        &self,
        room: &Arc<RoomState>,
        members: &mut Members,
        participant_id: &str,
        waiter: Waiter,
    ) {
        let span = tracing::info_span!("participant", room_id = %room.id, participant_id);
        let started = Instant::now();
        let admission = waiter.admission;
        if let Err(RoomFull) = members.seat_new(
            participant_id,
            &admission,
            waiter.connection_id,
            &waiter.outbox,
        ) {
            waiter.outbox.fail("room_full", "this session is full");
            return;
        }
        let Some((media, events)) = self
            .connect_media(room, members, participant_id)
            .instrument(span.clone())
            .await
        else {
            waiter
                .outbox
                .fail("internal", "the media server could not accept you");
            return;
        };
        drop(media); // the member holds it
        let participants =
            crate::entry::others_with_tracks(members, participant_id, room.media.tracks().await);
        let welcome = Welcome {
            admission: &admission,
            participant_id,
            outbox: &waiter.outbox,
            resumed: false,
            participants,
            queue: None,
            events,
            started,
        };
        self.welcome(welcome).instrument(span.clone()).await;
        span.in_scope(|| tracing::info!("admitted from the waiting room"));
    }
}
