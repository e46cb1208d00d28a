//! Entering a room: taking (or taking back) the participant's seat, creating its media,
//! and the snapshot of the others that `joined` carries. All of it under the room lock,
//! so the room changes in one step as far as everyone else can see.

use std::sync::Arc;

use crate::gatekeeper::Admission;
use crate::hub::{Hub, Member, Members, RoomState};
use crate::media::{MediaEvents, MediaParticipant, NewParticipant};
use crate::outbox::Outbox;
use crate::protocol::{ConnectionStatus, ParticipantView, ServerMessage};

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
}

/// Why a join could not enter: the code and message of the fatal error.
pub(crate) type EntryRefusal = (&'static str, String);

/// How a participant got its seat.
enum Seat {
    /// A seat of its own, new.
    New,
    /// Its seat from before; `old_media` is the media of its previous connection.
    Resumed {
        old_media: Option<Arc<dyn MediaParticipant>>,
    },
}

/// The room has no free seat.
struct RoomFull;

impl Hub {
    /// Seats the admitted participant in its session's room (a new seat, or its old one
    /// taken over from a previous connection) and creates its media.
    pub(crate) async fn enter(
        &self,
        admission: &Admission,
        connection_id: u64,
        outbox: &Outbox,
    ) -> Result<Entered, EntryRefusal> {
        let ended = || ("session_ended", "this session has ended".to_string());
        let Some((room, mut members)) = self
            .lock_for_entry(&admission.session.id, admission.expires_at_ms)
            .await
        else {
            return Err(ended());
        };
        let pid = admission.participant_id.as_str();
        let resumed = match members.seat(admission, connection_id, outbox) {
            Ok(Seat::New) => false,
            Ok(Seat::Resumed { old_media }) => {
                if let Some(old) = old_media {
                    old.close().await;
                }
                true
            }
            Err(RoomFull) => {
                drop(members);
                self.drop_room_if_empty(&room).await;
                return Err(("room_full", "this session is full".into()));
            }
        };
        let NewParticipant {
            participant: media,
            events,
        } = match room.media.add_participant(pid).await {
            Ok(added) => added,
            Err(err) => {
                tracing::error!(error = %err, "could not create peer connections");
                let member = members.by_id.remove(pid);
                drop(members);
                if let Some(member) = member {
                    self.finish_departure(&room, pid, member, "disconnected")
                        .await;
                }
                return Err(("internal", "the media server could not accept you".into()));
            }
        };
        if let Some(member) = members.by_id.get_mut(pid) {
            member.media = Some(Arc::clone(&media));
        }
        let participants = others_with_tracks(&members, pid, room.media.tracks().await);
        drop(members);
        Ok(Entered {
            room,
            media,
            events,
            resumed,
            participants,
        })
    }
}

impl Members {
    /// Gives the admitted participant its seat: the one it already has (its previous
    /// connection is told `replaced`, the others see it back), or a new one if the room
    /// has room (the others see it arrive).
    fn seat(
        &mut self,
        admission: &Admission,
        connection_id: u64,
        outbox: &Outbox,
    ) -> Result<Seat, RoomFull> {
        let pid = &admission.participant_id;
        if let Some(existing) = self.by_id.get_mut(pid) {
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
            return Ok(Seat::Resumed { old_media });
        }
        if self.by_id.len() >= admission.session.max_participants as usize {
            return Err(RoomFull);
        }
        let view = ParticipantView {
            participant_id: pid.clone(),
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
            pid.clone(),
            Member {
                view,
                connection_id,
                outbox: outbox.clone(),
                media: None,
                mute: Default::default(),
            },
        );
        metrics::gauge!("theraroom_participants").increment(1.0);
        Ok(Seat::New)
    }
}

/// Everyone in the room but `pid`, each with the tracks they publish.
fn others_with_tracks(
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
