//! Ending rooms: a session ended (by the therapist, or at its expiry), the server
//! stopping, and the memory of ended sessions that keeps a late join from making their
//! room again.

use std::sync::Arc;

use crate::hub::{now_ms, Hub, Member};
use crate::outbox::Outbox;
use crate::protocol::ServerMessage;

/// How long an ended session stays refused at least, when its expiry is sooner or
/// unknown: longer than any admission that started before the end can take.
const ENDED_MEMORY_MS: i64 = 10 * 60 * 1000;

/// When a closing room releases its participant rows, relative to telling members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Tell first (the session ended: nobody comes back to this room).
    AfterFarewell,
    /// Release first: members reconnect at once (to another node, or this one after a
    /// restart), and their new join must find the old row already released.
    RowsFirst,
}

impl Hub {
    /// True while a session ended here may not get a room again.
    pub(crate) fn is_ended(&self, session_id: &str) -> bool {
        let now = now_ms();
        let ended = self
            .inner
            .ended
            .get(session_id)
            .is_some_and(|until| *until > now);
        if !ended {
            self.inner
                .ended
                .remove_if(session_id, |_, until| *until <= now);
        }
        ended
    }

    /// Marks a session ended (before its room is closed), and forgets old marks.
    fn remember_ended(&self, session_id: &str) {
        let now = now_ms();
        let expiry = self.room(session_id).map_or(0, |r| r.expires_at_ms);
        let until = expiry.max(now.saturating_add(ENDED_MEMORY_MS));
        self.inner.ended.retain(|_, until| *until > now);
        self.inner.ended.insert(session_id.to_string(), until);
    }

    /// Ends a session's room: everyone receives `session_ended` and is disconnected,
    /// and no room is made for the session again (until its expiry, at least 10 min).
    pub async fn end_session(&self, session_id: &str, reason: &str) {
        self.remember_ended(session_id);
        let closed = self
            .close_room(session_id, Release::AfterFarewell, |outbox| {
                outbox.send(ServerMessage::SessionEnded {
                    reason: reason.to_string(),
                });
                outbox.close(1000, "session_ended");
            })
            .await;
        if closed {
            tracing::info!(room_id = %session_id, reason, "room ended");
        }
    }

    /// Closes every room because the server stops: clients get close code 1012
    /// (service restart) and may reconnect to another instance; rows are closed.
    pub async fn shutdown(&self) {
        let ids: Vec<String> = self.inner.rooms.iter().map(|r| r.key().clone()).collect();
        for id in ids {
            self.close_room(&id, Release::RowsFirst, |outbox| {
                outbox.close(1012, "server_restart")
            })
            .await;
        }
    }

    /// Gives a room up because another node holds it now (several nodes: its lease
    /// went elsewhere): members get close 1012 `room_moved` and reconnect, which
    /// brings them to the room's node. The session is not ended, and participant rows
    /// are released before anyone is told, so the rejoin elsewhere comes after.
    pub async fn hand_over(&self, session_id: &str) -> bool {
        let moved = self
            .close_room(session_id, Release::RowsFirst, |outbox| {
                outbox.close(1012, "room_moved")
            })
            .await;
        if moved {
            tracing::info!(room_id = %session_id, "room handed over to another node");
        }
        moved
    }

    /// Takes a room out of service: nobody may enter any more, every member gets
    /// `farewell` on its outbox, media and participant rows are released. Returns
    /// false when there was no such room.
    async fn close_room(
        &self,
        session_id: &str,
        release: Release,
        farewell: impl Fn(&Outbox),
    ) -> bool {
        let (room, gone) = loop {
            let Some(room) = self.room(session_id) else {
                return false;
            };
            let mut members = room.members.lock().await;
            if members.retired {
                continue; // dropped as empty meanwhile, and out of the map now
            }
            if members.closed {
                return false;
            }
            members.closed = true;
            for waiter in members.waiting.values() {
                farewell(&waiter.outbox);
            }
            members.waiting.clear();
            let gone: Vec<(String, Member)> = members.by_id.drain().collect();
            drop(members);
            break (room, gone);
        };
        let mut people = std::collections::HashSet::new();
        for (_, member) in &gone {
            if release == Release::AfterFarewell {
                farewell(&member.outbox);
            }
            if people.insert(member.view.person_id.clone()) {
                self.inner
                    .gate
                    .participant_left(&member.view.person_id)
                    .await;
            }
            metrics::gauge!("theraroom_participants").decrement(1.0);
        }
        if release == Release::RowsFirst {
            for (_, member) in &gone {
                farewell(&member.outbox);
            }
        }
        // Closing the room closes its participants' media; then the room leaves the
        // map, so a room of that id made afterwards gets media of its own.
        room.media.close().await;
        self.inner
            .rooms
            .remove_if(session_id, |_, r| Arc::ptr_eq(r, &room));
        metrics::gauge!("theraroom_rooms").set(self.inner.rooms.len() as f64);
        true
    }
}
