//! In-call chat over the signaling socket (PROTOCOL.md, "Chat"). Messages are relayed
//! to the people connected now and forgotten: the server never stores them, and nothing
//! here logs their text.

use std::sync::Arc;
use std::time::Instant;

use crate::connection::Connection;
use crate::hub::{now_ms, rfc3339, Members, RoomState};
use crate::protocol::ServerMessage;
use crate::throttle::TokenBucket;

/// Longest chat message, in characters (after trimming).
pub const MAX_CHAT_CHARS: usize = 1000;
/// Chat messages a socket may send in a burst.
const CHAT_BURST: f64 = 5.0;
/// Chat messages per second a socket may send, sustained.
const CHAT_RATE: f64 = 1.0;

/// The chat budget of one socket.
pub(crate) struct ChatLimiter(TokenBucket);

impl ChatLimiter {
    /// A full budget.
    pub(crate) fn new(now: Instant) -> Self {
        ChatLimiter(TokenBucket::new(CHAT_RATE, CHAT_BURST, now))
    }
}

/// The text to relay, or why not.
fn checked_text(text: &str) -> Result<&str, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a chat message needs some text");
    }
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err("chat messages are limited to 1000 characters");
    }
    Ok(text)
}

/// Who receives a chat message.
enum Audience {
    /// Everyone in the room but the sender.
    Room,
    /// One participant or waiting person.
    One(crate::outbox::Outbox),
    /// Every host in the room.
    Hosts,
}

impl Connection {
    /// Checks a chat message against the budget and the text rule; the text to relay.
    fn admit_chat<'t>(&mut self, text: &'t str) -> Option<&'t str> {
        if !self.chat_limiter.0.try_take(Instant::now()) {
            self.outbox.send(ServerMessage::error(
                "rate_limited",
                "too many chat messages; slow down",
                false,
            ));
            return None;
        }
        match checked_text(text) {
            Ok(text) => Some(text),
            Err(why) => {
                self.outbox
                    .send(ServerMessage::error("invalid_chat", why, false));
                None
            }
        }
    }

    /// `chat` from a participant in the room: to the room, or to one participant (a
    /// host may also write to someone waiting).
    pub(crate) async fn chat_in_room(
        &mut self,
        room: &Arc<RoomState>,
        from: &str,
        text: &str,
        to: Option<&str>,
    ) {
        let Some(text) = self.admit_chat(text) else {
            return;
        };
        let members = room.members.lock().await;
        let Some(sender) = members.by_id.get(from) else {
            return;
        };
        let audience = match to {
            None => Some(Audience::Room),
            Some(to) if to == from => None,
            Some(to) => match (members.by_id.get(to), members.waiting.get(to)) {
                (Some(member), _) => Some(Audience::One(member.outbox.clone())),
                (None, Some(waiter)) if sender.host => Some(Audience::One(waiter.outbox.clone())),
                _ => None,
            },
        };
        match audience {
            Some(audience) => relay(&members, from, &sender.view.display_name, text, audience),
            None => self.no_recipient("nobody of that id can receive your message"),
        }
    }

    /// `chat` from someone in the waiting room: to every host (or the one named).
    pub(crate) async fn chat_from_waiting_room(
        &mut self,
        room: &Arc<RoomState>,
        from: &str,
        text: &str,
        to: Option<&str>,
    ) {
        let Some(text) = self.admit_chat(text) else {
            return;
        };
        let members = room.members.lock().await;
        let Some(sender) = members.waiting.get(from) else {
            return;
        };
        let audience = match to {
            None => Some(Audience::Hosts),
            Some(to) => members
                .by_id
                .get(to)
                .filter(|m| m.host)
                .map(|host| Audience::One(host.outbox.clone())),
        };
        match audience {
            Some(audience) => relay(
                &members,
                from,
                &sender.admission.display_name,
                text,
                audience,
            ),
            None => self.no_recipient("in the waiting room you can write to the therapist only"),
        }
    }

    /// Tells the sender its message has no recipient (`participant_not_found`).
    fn no_recipient(&self, why: &str) {
        self.outbox
            .send(ServerMessage::error("participant_not_found", why, false));
    }
}

/// Sends one chat message to its audience. Only a message to the whole room is not
/// private.
fn relay(members: &Members, from: &str, from_name: &str, text: &str, audience: Audience) {
    let message = ServerMessage::Chat {
        from: from.to_string(),
        from_name: from_name.to_string(),
        text: text.to_string(),
        private: !matches!(audience, Audience::Room),
        sent_at: rfc3339(now_ms()),
    };
    match audience {
        Audience::Room => members.broadcast(from, &message),
        Audience::One(outbox) => outbox.send(message),
        Audience::Hosts => {
            for host in members.by_id.values().filter(|m| m.host) {
                host.outbox.send(message.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rule() {
        assert_eq!(checked_text("  hi  "), Ok("hi"));
        assert!(checked_text("   ").is_err());
        assert!(checked_text(&"é".repeat(1000)).is_ok());
        assert!(checked_text(&"é".repeat(1001)).is_err());
    }
}
