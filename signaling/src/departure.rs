//! Leaving a room: a removal on the therapist's order, a departure after a leave, a
//! grace period that ran out or a removal, the grace period itself, and dropping a room
//! once nobody is in it (seated or waiting).

use std::sync::Arc;

use tracing::Instrument;

use crate::hub::{Hub, Member, RoomState};
use crate::protocol::{ConnectionStatus, ServerMessage};

impl Hub {
    /// Removes someone on the therapist's order: `id` is a participant id or a person
    /// id (then every participant of that person goes, and their waiting entries). They
    /// receive `removed` and are disconnected; the others see `participant_left` with
    /// reason `removed`.
    pub async fn remove_participant(&self, session_id: &str, id: &str) {
        let Some(room) = self.room(session_id) else {
            return;
        };
        let gone: Vec<(String, Member)> = {
            let mut members = room.members.lock().await;
            let matches = |pid: &String, person: &str| pid == id || person == id;
            let waiting: Vec<String> = members
                .waiting
                .iter()
                .filter(|(pid, w)| matches(pid, &w.person_id))
                .map(|(pid, _)| pid.clone())
                .collect();
            for pid in waiting {
                if let Some(waiter) = members.waiting.remove(&pid) {
                    waiter.outbox.send(ServerMessage::Removed {
                        reason: "removed_by_therapist".into(),
                    });
                    waiter.outbox.close(1000, "removed");
                }
            }
            members.send_queue();
            let ids: Vec<String> = members
                .by_id
                .iter()
                .filter(|(pid, m)| matches(pid, &m.view.person_id))
                .map(|(pid, _)| pid.clone())
                .collect();
            ids.into_iter()
                .filter_map(|pid| members.by_id.remove(&pid).map(|m| (pid, m)))
                .collect()
        };
        for (pid, member) in gone {
            member.outbox.send(ServerMessage::Removed {
                reason: "removed_by_therapist".into(),
            });
            member.outbox.close(1000, "removed");
            self.finish_departure(&room, &pid, member, "removed").await;
        }
        self.drop_room_if_empty(&room).await;
    }

    /// Completes a departure after the member left the map: tells the others,
    /// releases media, closes the row, and drops the room if it is empty.
    pub(crate) async fn finish_departure(
        &self,
        room: &Arc<RoomState>,
        participant_id: &str,
        member: Member,
        reason: &str,
    ) {
        let (empty, person_still_here) = {
            let mut members = room.members.lock().await;
            members.broadcast(
                participant_id,
                &ServerMessage::ParticipantLeft {
                    participant_id: participant_id.to_string(),
                    reason: reason.to_string(),
                },
            );
            members.sync_host_presence();
            (
                members.is_empty(),
                members.has_person(&member.view.person_id, participant_id),
            )
        };
        if let Some(media) = member.media {
            media.close().await;
        }
        if !person_still_here {
            self.inner
                .gate
                .participant_left(&member.view.person_id)
                .await;
        }
        metrics::gauge!("theraroom_participants").decrement(1.0);
        tracing::info!(room_id = %room.id, participant_id, reason, "participant left");
        if empty {
            self.drop_room_if_empty(room).await;
        }
    }

    /// Forgets a room once nobody is in it, closing its media first (under the room
    /// lock, so that no join can enter it any more and no successor room of that id
    /// exists before this one's media is closed).
    pub(crate) async fn drop_room_if_empty(&self, room: &Arc<RoomState>) {
        let mut members = room.members.lock().await;
        if !members.is_empty() || members.closed || members.retired {
            return;
        }
        members.retired = true;
        room.media.close().await;
        let removed = self
            .inner
            .rooms
            .remove_if(&room.id, |_, r| Arc::ptr_eq(r, room))
            .is_some();
        drop(members);
        if removed {
            metrics::gauge!("theraroom_rooms").set(self.inner.rooms.len() as f64);
        }
    }

    /// Starts the grace period of a participant whose connection dropped.
    pub(crate) async fn start_grace(
        &self,
        room: Arc<RoomState>,
        participant_id: String,
        connection_id: u64,
    ) {
        {
            let mut members = room.members.lock().await;
            let Some(member) = members.by_id.get_mut(&participant_id) else {
                return;
            };
            if member.connection_id != connection_id {
                return;
            }
            member.view.connection = ConnectionStatus::Reconnecting;
            members.sync_host_presence();
            members.broadcast(
                &participant_id,
                &ServerMessage::ParticipantReconnecting {
                    participant_id: participant_id.clone(),
                },
            );
        }
        tracing::info!(room_id = %room.id, participant_id, "connection dropped; grace period started");
        let hub = self.clone();
        let grace = self.inner.config.reconnect_grace;
        let span =
            tracing::info_span!("grace", room_id = %room.id, participant_id = %participant_id);
        tokio::spawn(
            async move {
                tokio::time::sleep(grace).await;
                let member = {
                    let mut members = room.members.lock().await;
                    let still_gone = members
                        .by_id
                        .get(&participant_id)
                        .is_some_and(|m| m.connection_id == connection_id);
                    if !still_gone {
                        return;
                    }
                    members.by_id.remove(&participant_id)
                };
                if let Some(member) = member {
                    hub.finish_departure(&room, &participant_id, member, "disconnected")
                        .await;
                }
            }
            .instrument(span),
        );
    }
}
