//! Entering a room: taking (or taking back) the participant's seat, or a place in the
//! waiting room; creating its media; and the snapshot of the others that `joined`
//! carries. All of it under the room lock, so the room changes in one step as far as
//! everyone else can see.

use std::sync::Arc;

use tracing::Instrument;

use crate::gatekeeper::{Admission, Refusal};
use crate::hub::{Hub, Member, Members, RoomState};
use crate::media::{MediaEvents, MediaParticipant, NewParticipant};
use crate::outbox::Outbox;
use crate::protocol::{
    ConnectionStatus, ParticipantView, ServerMessage, WaitingView, PROTOCOL_VERSION,
};
use crate::relay::relay_media_events;

/// A participant that entered its room.
pub(crate) struct Entered {
    /// The room entered.
    pub(crate) room: Arc<RoomState>,
    /// Its media handle.
    pub(crate) media: Arc<dyn MediaParticipant>,
    /// Its media events, for the client.
    pub(crate) events: Box<dyn MediaEvents>,
    /// True when it took back a seat it already had (reload, reconnect).
    pub(crate) resumed: bool,
    /// Everyone else in the room, with their tracks.
    pub(crate) participants: Vec<ParticipantView>,
    /// For a host: the waiting queue, sent right after `joined`.
    pub(crate) queue: Option<Vec<WaitingView>>,
}

/// Where a join led.
pub(crate) enum Entry {
    /// Seated, with media.
    Seated(Entered),
    /// In the waiting room of this room (the client was told `waiting`).
    Waiting(Arc<RoomState>),
}

/// The room has no free seat.
pub(crate) struct RoomFull;

/// The participant id of a person's connection instance (PROTOCOL.md).
pub(crate) fn participant_id(person_id: &str, instance: Option<&str>) -> String {
    match instance {
        Some(instance) => format!("{person_id}.{instance}"),
        None => person_id.to_string(),
    }
}

/// The `joined` message for an admitted participant.
pub(crate) fn joined_message(
    admission: &Admission,
    participant_id: &str,
    resumed: bool,
    participants: Vec<ParticipantView>,
) -> ServerMessage {
    ServerMessage::Joined {
        protocol: PROTOCOL_VERSION,
        participant_id: participant_id.to_string(),
        person_id: admission.person_id.clone(),
        resumed,
        host: admission.host,
        session: admission.session.clone(),
        ice_servers: admission.ice_servers.clone(),
        participants,
    }
}

/// Everything a seated participant's client is told when it gets in.
pub(crate) struct Welcome<'a> {
    /// Who got in.
    pub(crate) admission: &'a Admission,
    /// As which participant.
    pub(crate) participant_id: &'a str,
    /// Their connection.
    pub(crate) outbox: &'a Outbox,
    /// Whether they took back a seat they had.
    pub(crate) resumed: bool,
    /// Everyone else, for `joined`.
    pub(crate) participants: Vec<ParticipantView>,
    /// For a host: the waiting queue, sent right after `joined`.
    pub(crate) queue: Option<Vec<WaitingView>>,
    /// Their media events, relayed to the client from now on.
    pub(crate) events: Box<dyn MediaEvents>,
    /// When their join began (join latency metrics).
    pub(crate) started: std::time::Instant,
}

impl Hub {
    /// Completes an entry, from a join or from the waiting room: the row becomes
    /// active, the client gets `joined` (and a host the queue), and its media events
    /// start flowing to it (in the current span).
    pub(crate) async fn welcome(&self, welcome: Welcome<'_>) {
        let Welcome {
            admission,
            participant_id,
            outbox,
            resumed,
            participants,
            queue,
            events,
            started,
        } = welcome;
        self.inner
            .gate
            .participant_joined(&admission.person_id)
            .await;
        outbox.send(joined_message(
            admission,
            participant_id,
            resumed,
            participants,
        ));
        if let Some(waiting) = queue {
            outbox.send(ServerMessage::WaitingRoom { waiting });
        }
        tokio::spawn(
            relay_media_events(events, outbox.clone(), participant_id.to_string(), started)
                .instrument(tracing::Span::current()),
        );
    }

    /// Seats the admitted participant in its session's room (a new seat, or its old one
    /// taken over from a previous connection) and creates its media — or, when the
    /// session's rules make it wait, puts it in the waiting room.
    pub(crate) async fn enter(
        &self,
        admission: &Admission,
        pid: &str,
        connection_id: u64,
        outbox: &Outbox,
    ) -> Result<Entry, Refusal> {
        let Some((room, mut members)) = self
            .lock_for_entry(&admission.session.id, admission.expires_at_ms)
            .await
        else {
            return Err(Refusal::new("session_ended", "this session has ended"));
        };
        let resumed = if let Some(old_media) = members.reseat(pid, connection_id, outbox) {
            if let Some(old) = old_media {
                old.close().await;
            }
            true
        } else {
            let refused = if let Some(refusal) = &admission.resume_only {
                Some(refusal.clone())
            } else if admission.must_wait {
                let queued = members.enqueue_waiter(pid, admission, connection_id, outbox);
                if queued.is_ok() {
                    return Ok(Entry::Waiting(room));
                }
                queued.err()
            } else if let Err(RoomFull) = members.seat_new(pid, admission, connection_id, outbox) {
                Some(Refusal::new("room_full", "this session is full"))
            } else {
                None
            };
            if let Some(refusal) = refused {
                drop(members);
                self.drop_room_if_empty(&room).await;
                return Err(refusal);
            }
            false
        };
        let Some((media, events)) = self.connect_media(&room, &mut members, pid).await else {
            let person_here = members.has_person(&admission.person_id, pid);
            drop(members);
            if !person_here {
                // Its row was registered by the admission: close it again.
                self.inner.gate.participant_left(&admission.person_id).await;
            }
            self.drop_room_if_empty(&room).await;
            return Err(Refusal::new(
                "internal",
                "the media server could not accept you",
            ));
        };
        let queue = members
            .by_id
            .get(pid)
            .filter(|m| m.host)
            .map(|_| members.waiting_views());
        let participants = others_with_tracks(&members, pid, room.media.tracks().await);
        drop(members);
        Ok(Entry::Seated(Entered {
            room,
            media,
            events,
            resumed,
            participants,
            queue,
        }))
    }

    /// Creates the media of a seated participant. On failure the seat is given up
    /// again (the others see it leave) and `None` returned.
    pub(crate) async fn connect_media(
        &self,
        room: &Arc<RoomState>,
        members: &mut Members,
        pid: &str,
    ) -> Option<(Arc<dyn MediaParticipant>, Box<dyn MediaEvents>)> {
        match room.media.add_participant(pid).await {
            Ok(NewParticipant {
                participant,
                events,
            }) => {
                if let Some(member) = members.by_id.get_mut(pid) {
                    member.media = Some(Arc::clone(&participant));
                }
                Some((participant, events))
            }
            Err(err) => {
                tracing::error!(error = %err, "could not create peer connections");
                if members.by_id.remove(pid).is_some() {
                    metrics::gauge!("theraroom_participants").decrement(1.0);
                    members.broadcast(
                        pid,
                        &ServerMessage::ParticipantLeft {
                            participant_id: pid.to_string(),
                            reason: "disconnected".into(),
                        },
                    );
                    members.sync_host_presence();
                }
                None
            }
        }
    }
}

impl Members {
    /// Gives the participant back the seat it already has, if it has one: its previous
    /// connection is told `replaced`, the others see it back. Returns the media of the
    /// previous connection (`Some(None)` when it had none yet), `None` without a seat.
    #[allow(clippy::option_option)]
    fn reseat(
        &mut self,
        pid: &str,
        connection_id: u64,
        outbox: &Outbox,
    ) -> Option<Option<Arc<dyn MediaParticipant>>> {
        let existing = self.by_id.get_mut(pid)?;
        existing
            .outbox
            .fail("replaced", "you joined from another connection");
        existing.connection_id = connection_id;
        existing.outbox = outbox.clone();
        existing.view.connection = ConnectionStatus::Connected;
        existing.view.audio_muted = false;
        existing.view.video_muted = false;
        let old_media = existing.media.take();
        let view = existing.view.clone();
        self.broadcast(pid, &ServerMessage::ParticipantJoined { participant: view });
        self.sync_host_presence();
        Some(old_media)
    }

    /// A new seat for the participant, if the room has room (the others see it
    /// arrive).
    pub(crate) fn seat_new(
        &mut self,
        pid: &str,
        admission: &Admission,
        connection_id: u64,
        outbox: &Outbox,
    ) -> Result<(), RoomFull> {
        if self.by_id.len() >= admission.session.max_participants as usize {
            return Err(RoomFull);
        }
        let view = ParticipantView {
            participant_id: pid.to_string(),
            person_id: admission.person_id.clone(),
            display_name: admission.display_name.clone(),
            role: admission.role.clone(),
            is_guest: admission.is_guest,
            connection: ConnectionStatus::Connected,
            audio_muted: false,
            video_muted: false,
            tracks: Vec::new(),
        };
        self.broadcast(
            pid,
            &ServerMessage::ParticipantJoined {
                participant: view.clone(),
            },
        );
        self.by_id.insert(
            pid.to_string(),
            Member {
                view,
                host: admission.host,
                connection_id,
                outbox: outbox.clone(),
                media: None,
                mute: Default::default(),
            },
        );
        metrics::gauge!("theraroom_participants").increment(1.0);
        self.sync_host_presence();
        Ok(())
    }
}

/// Everyone in the room but `pid`, each with the tracks they publish.
pub(crate) fn others_with_tracks(
    members: &Members,
    pid: &str,
    tracks: Vec<(String, crate::protocol::TrackView)>,
) -> Vec<ParticipantView> {
    members
        .by_id
        .iter()
        .filter(|(id, _)| id.as_str() != pid)
        .map(|(id, member)| {
            let mut view = member.view.clone();
            view.tracks = tracks
                .iter()
                .filter(|(publisher, _)| publisher == id)
                .map(|(_, track)| track.clone())
                .collect();
            view
        })
        .collect()
}
