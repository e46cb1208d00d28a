//! Coalescing of `mute` broadcasts: the room hears at most one `mute` per participant
//! and kind per [`MUTE_INTERVAL`]. Changes inside the interval are folded into one
//! broadcast at its end carrying the latest state, so the final state is never lost and
//! a flood of `mute` messages is never a flood of room broadcasts.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::hub::{Members, RoomState};
use crate::protocol::{Kind, ServerMessage};

/// Shortest time between two `mute` broadcasts of one participant and kind.
pub const MUTE_INTERVAL: Duration = Duration::from_millis(100);

/// Broadcast bookkeeping of one kind.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MuteGate {
    last_sent: Option<Instant>,
    flush_scheduled: bool,
}

/// The gates of a participant: audio, video.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MuteGates([MuteGate; 2]);

impl MuteGates {
    fn gate(&mut self, kind: Kind) -> &mut MuteGate {
        match kind {
            Kind::Audio => &mut self.0[0],
            Kind::Video => &mut self.0[1],
        }
    }
}

/// Records `participant_id`'s new mute state and tells the room, now or at the end of
/// the current interval.
pub(crate) async fn set_mute(room: &Arc<RoomState>, participant_id: &str, kind: Kind, muted: bool) {
    let now = Instant::now();
    let mut members = room.members.lock().await;
    let Some(member) = members.by_id.get_mut(participant_id) else {
        return;
    };
    match kind {
        Kind::Audio => member.view.audio_muted = muted,
        Kind::Video => member.view.video_muted = muted,
    }
    let gate = member.mute.gate(kind);
    if gate.flush_scheduled {
        return; // the scheduled broadcast reads the state when it fires
    }
    match gate.last_sent {
        Some(last) if now < last + MUTE_INTERVAL => {
            gate.flush_scheduled = true;
            tokio::spawn(flush(
                Arc::clone(room),
                participant_id.to_string(),
                kind,
                last + MUTE_INTERVAL,
            ));
        }
        _ => {
            gate.last_sent = Some(now);
            announce(&members, participant_id, kind, muted);
        }
    }
}

/// Tells everyone else in the room `participant_id`'s mute state of `kind`.
fn announce(members: &Members, participant_id: &str, kind: Kind, muted: bool) {
    members.broadcast(
        participant_id,
        &ServerMessage::Mute {
            participant_id: participant_id.to_string(),
            kind,
            muted,
        },
    );
}

/// The deferred broadcast: sends whatever state the participant has at `at`.
async fn flush(room: Arc<RoomState>, participant_id: String, kind: Kind, at: Instant) {
    tokio::time::sleep_until(at).await;
    let mut members = room.members.lock().await;
    let Some(member) = members.by_id.get_mut(&participant_id) else {
        return;
    };
    let gate = member.mute.gate(kind);
    gate.flush_scheduled = false;
    gate.last_sent = Some(Instant::now());
    let muted = match kind {
        Kind::Audio => member.view.audio_muted,
        Kind::Video => member.view.video_muted,
    };
    announce(&members, &participant_id, kind, muted);
}
