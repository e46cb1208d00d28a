//! Relay of one participant's media events to its client: candidates and subscriber
//! offers go out as protocol messages, the others' tracks as `track_published` /
//! `track_unpublished`, the room's speakers as `active_speakers`, connection verdicts as
//! `connection_quality`, paused videos as `stream_state`, the layers to encode as
//! `publish_layers`; connection states only feed the join latency metrics.

use std::time::Instant;

use crate::media::{MediaEvent, MediaEvents};
use crate::outbox::Outbox;
use crate::protocol::{PcName, ServerMessage};

/// Forwards `events` to `outbox` until the stream ends or the client is gone.
/// `started` is when the join began (for `theraroom_join_to_*_seconds`).
pub(crate) async fn relay_media_events(
    mut events: Box<dyn MediaEvents>,
    outbox: Outbox,
    participant_id: String,
    started: Instant,
) {
    let mut connected_recorded = false;
    while let Some(event) = events.recv().await {
        let message = match event {
            MediaEvent::Candidate { pc, candidate } => ServerMessage::Candidate { pc, candidate },
            MediaEvent::SubscriberOffer { sdp } => ServerMessage::Offer {
                pc: PcName::Subscriber,
                sdp,
            },
            MediaEvent::TrackPublished {
                participant_id: publisher,
                track,
            } => {
                if publisher == participant_id {
                    continue;
                }
                ServerMessage::TrackPublished {
                    participant_id: publisher,
                    track,
                }
            }
            MediaEvent::TrackUnpublished {
                participant_id: publisher,
                track_id,
            } => {
                if publisher == participant_id {
                    continue;
                }
                ServerMessage::TrackUnpublished {
                    participant_id: publisher,
                    track_id,
                }
            }
            MediaEvent::ConnectionState { pc, state } => {
                tracing::debug!(pc = pc.as_str(), state, "peer connection state");
                if pc == PcName::Publisher && state == "connected" && !connected_recorded {
                    connected_recorded = true;
                    metrics::histogram!("theraroom_join_to_connected_seconds")
                        .record(started.elapsed().as_secs_f64());
                }
                continue;
            }
            MediaEvent::ActiveSpeakers { speakers } => ServerMessage::ActiveSpeakers { speakers },
            MediaEvent::ConnectionQuality { updates } => {
                ServerMessage::ConnectionQuality { updates }
            }
            MediaEvent::StreamState {
                track_id,
                state,
                reason,
            } => ServerMessage::StreamState {
                track_id,
                state,
                reason,
            },
            MediaEvent::PublishLayers { track_id, layers } => {
                ServerMessage::PublishLayers { track_id, layers }
            }
            MediaEvent::MediaFlowing => {
                metrics::histogram!("theraroom_join_to_media_seconds")
                    .record(started.elapsed().as_secs_f64());
                continue;
            }
        };
        if outbox.is_closed() {
            break;
        }
        outbox.send(message);
    }
}
