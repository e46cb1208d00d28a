//! The SFU behind signaling's media trait: [`SfuMedia`] adapts [`sfu::Sfu`] to
//! [`signaling::MediaPlane`] and converts between the SFU's types and the protocol's,
//! so that `signaling` does not depend on the `sfu` crate.
//!
//! The SFU keeps no rooms of its own: the hub is the one registry, and each hub room holds
//! the [`sfu::Room`] handle opened for it here.

use std::sync::Arc;

use async_trait::async_trait;
use signaling::protocol::{
    CandidateInit, ConnectionQuality, Kind, LayerView, PcName, QualityView, SpeakerView,
    StreamState, StreamStateReason, TrackSource, TrackSourceDecl, TrackView,
};
use signaling::{
    MediaError, MediaEvent, MediaEvents, MediaParticipant, MediaPlane, MediaRoom, NewParticipant,
};
use tokio::sync::mpsc;

/// [`sfu::Sfu`] as signaling's media plane.
pub struct SfuMedia {
    sfu: sfu::Sfu,
}

impl SfuMedia {
    /// Wraps `sfu`; keep a clone of it for its counters.
    pub fn new(sfu: sfu::Sfu) -> Self {
        SfuMedia { sfu }
    }
}

impl MediaPlane for SfuMedia {
    fn open_room(&self, room_id: &str) -> Arc<dyn MediaRoom> {
        Arc::new(SfuRoom {
            room: self.sfu.open_room(room_id),
        })
    }
}

/// One SFU room, owned by one hub room.
struct SfuRoom {
    room: sfu::Room,
}

#[async_trait]
impl MediaRoom for SfuRoom {
    async fn add_participant(&self, participant_id: &str) -> Result<NewParticipant, MediaError> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        // The server's own peer connections need no STUN/TURN: it announces host (or
        // configured public) addresses. Clients get their ICE servers in `joined`.
        let participant = self
            .room
            .add_participant(participant_id, events_tx)
            .await
            .map_err(MediaError::new)?;
        Ok(NewParticipant {
            participant: Arc::new(SfuParticipant(participant)),
            events: Box::new(SfuEvents(events_rx)),
        })
    }

    async fn tracks(&self) -> Vec<(String, TrackView)> {
        self.room
            .tracks()
            .await
            .into_iter()
            .map(|(publisher, track)| (publisher, track_view(&track)))
            .collect()
    }

    async fn close(&self) {
        self.room.close();
    }
}

/// One SFU participant.
struct SfuParticipant(sfu::Participant);

#[async_trait]
impl MediaParticipant for SfuParticipant {
    async fn handle_publisher_offer(
        &self,
        sdp: String,
        tracks: Vec<TrackSourceDecl>,
    ) -> Result<String, MediaError> {
        let sources = tracks
            .into_iter()
            .map(|t| (t.track_id, to_sfu_source(t.source)))
            .collect();
        self.0
            .handle_publisher_offer(sdp, sources)
            .await
            .map_err(MediaError::new)
    }

    async fn handle_subscriber_answer(&self, sdp: String) -> Result<(), MediaError> {
        self.0
            .handle_subscriber_answer(sdp)
            .await
            .map_err(MediaError::new)
    }

    async fn add_ice_candidate(
        &self,
        pc: PcName,
        candidate: Option<CandidateInit>,
    ) -> Result<(), MediaError> {
        self.0
            .add_ice_candidate(to_sfu_pc(pc), candidate.map(to_sfu_candidate))
            .await
            .map_err(MediaError::new)
    }

    fn request_keyframe(&self, track_id: &str) {
        self.0.request_keyframe(track_id);
    }

    fn set_audio_only(&self, enabled: bool) {
        self.0.set_audio_only(enabled);
    }

    fn set_video_visible(&self, track_id: &str, visible: bool, size: Option<(u32, u32)>) {
        self.0.set_video_visible(track_id, visible, size);
    }

    async fn close(&self) {
        self.0.close().await;
    }
}

/// An SFU participant's event channel, converted on the way out (no relay task).
struct SfuEvents(mpsc::UnboundedReceiver<sfu::SfuEvent>);

#[async_trait]
impl MediaEvents for SfuEvents {
    async fn recv(&mut self) -> Option<MediaEvent> {
        self.0.recv().await.map(media_event)
    }
}

/// Protocol form of an SFU event.
fn media_event(event: sfu::SfuEvent) -> MediaEvent {
    match event {
        sfu::SfuEvent::IceCandidate { pc, candidate } => MediaEvent::Candidate {
            pc: from_sfu_pc(pc),
            candidate: CandidateInit {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_mline_index: candidate.sdp_mline_index,
                username_fragment: candidate.username_fragment,
            },
        },
        sfu::SfuEvent::SubscriberOffer { sdp } => MediaEvent::SubscriberOffer { sdp },
        sfu::SfuEvent::TrackPublished {
            participant_id,
            track,
        } => MediaEvent::TrackPublished {
            participant_id,
            track: track_view(&track),
        },
        sfu::SfuEvent::TrackUnpublished {
            participant_id,
            track_id,
        } => MediaEvent::TrackUnpublished {
            participant_id,
            track_id,
        },
        sfu::SfuEvent::ConnectionState { pc, state } => MediaEvent::ConnectionState {
            pc: from_sfu_pc(pc),
            state,
        },
        sfu::SfuEvent::MediaFlowing => MediaEvent::MediaFlowing,
        sfu::SfuEvent::ConnectionQuality { updates } => MediaEvent::ConnectionQuality {
            updates: updates
                .into_iter()
                .map(|u| QualityView {
                    participant_id: u.participant_id,
                    quality: match u.quality {
                        sfu::Quality::Excellent => ConnectionQuality::Excellent,
                        sfu::Quality::Good => ConnectionQuality::Good,
                        sfu::Quality::Poor => ConnectionQuality::Poor,
                        sfu::Quality::Lost => ConnectionQuality::Lost,
                    },
                })
                .collect(),
        },
        sfu::SfuEvent::ActiveSpeakers { speakers } => MediaEvent::ActiveSpeakers {
            speakers: speakers
                .into_iter()
                .map(|s| SpeakerView {
                    participant_id: s.participant_id,
                    level: s.level,
                })
                .collect(),
        },
        sfu::SfuEvent::VideoPaused { track_id, paused } => MediaEvent::StreamState {
            track_id,
            state: if paused {
                StreamState::Paused
            } else {
                StreamState::Active
            },
            // The SFU pauses a video only when the subscriber's downlink cannot carry it.
            reason: StreamStateReason::Bandwidth,
        },
        sfu::SfuEvent::PublishLayers { track_id, layers } => MediaEvent::PublishLayers {
            track_id,
            layers: layers
                .into_iter()
                .map(|l| LayerView {
                    rid: l.rid,
                    active: l.active,
                })
                .collect(),
        },
    }
}

/// Protocol view of an SFU track.
fn track_view(track: &sfu::TrackInfo) -> TrackView {
    TrackView {
        track_id: track.track_id.clone(),
        kind: match track.kind {
            sfu::MediaKind::Audio => Kind::Audio,
            sfu::MediaKind::Video => Kind::Video,
        },
        source: match track.source {
            sfu::TrackSource::Camera => TrackSource::Camera,
            sfu::TrackSource::Microphone => TrackSource::Microphone,
            sfu::TrackSource::Screen => TrackSource::Screen,
            sfu::TrackSource::ScreenAudio => TrackSource::ScreenAudio,
        },
        stream_id: track.stream_id.clone(),
    }
}

fn to_sfu_source(source: TrackSource) -> sfu::TrackSource {
    match source {
        TrackSource::Camera => sfu::TrackSource::Camera,
        TrackSource::Microphone => sfu::TrackSource::Microphone,
        TrackSource::Screen => sfu::TrackSource::Screen,
        TrackSource::ScreenAudio => sfu::TrackSource::ScreenAudio,
    }
}

fn to_sfu_pc(pc: PcName) -> sfu::PcRole {
    match pc {
        PcName::Publisher => sfu::PcRole::Publisher,
        PcName::Subscriber => sfu::PcRole::Subscriber,
    }
}

fn from_sfu_pc(pc: sfu::PcRole) -> PcName {
    match pc {
        sfu::PcRole::Publisher => PcName::Publisher,
        sfu::PcRole::Subscriber => PcName::Subscriber,
    }
}

fn to_sfu_candidate(c: CandidateInit) -> sfu::IceCandidate {
    sfu::IceCandidate {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_every_field() {
        let candidate = sfu::SfuEvent::IceCandidate {
            pc: sfu::PcRole::Subscriber,
            candidate: sfu::IceCandidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: Some("u".into()),
            },
        };
        assert_eq!(
            media_event(candidate),
            MediaEvent::Candidate {
                pc: PcName::Subscriber,
                candidate: CandidateInit {
                    candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                    username_fragment: Some("u".into()),
                },
            }
        );
        let published = sfu::SfuEvent::TrackPublished {
            participant_id: "p".into(),
            track: sfu::TrackInfo {
                track_id: "t".into(),
                kind: sfu::MediaKind::Video,
                source: sfu::TrackSource::Screen,
                stream_id: "p".into(),
            },
        };
        assert_eq!(
            media_event(published),
            MediaEvent::TrackPublished {
                participant_id: "p".into(),
                track: TrackView {
                    track_id: "t".into(),
                    kind: Kind::Video,
                    source: TrackSource::Screen,
                    stream_id: "p".into(),
                },
            }
        );
    }

    #[test]
    fn paused_videos_and_publish_layers_become_protocol_events() {
        for (paused, state) in [(true, StreamState::Paused), (false, StreamState::Active)] {
            assert_eq!(
                media_event(sfu::SfuEvent::VideoPaused {
                    track_id: "v".into(),
                    paused,
                }),
                MediaEvent::StreamState {
                    track_id: "v".into(),
                    state,
                    reason: StreamStateReason::Bandwidth,
                }
            );
        }
        let layers = sfu::SfuEvent::PublishLayers {
            track_id: "cam".into(),
            layers: vec![
                sfu::LayerState {
                    rid: "q".into(),
                    active: true,
                },
                sfu::LayerState {
                    rid: "f".into(),
                    active: false,
                },
            ],
        };
        assert_eq!(
            media_event(layers),
            MediaEvent::PublishLayers {
                track_id: "cam".into(),
                layers: vec![
                    LayerView {
                        rid: "q".into(),
                        active: true,
                    },
                    LayerView {
                        rid: "f".into(),
                        active: false,
                    },
                ],
            }
        );
    }

    #[test]
    fn candidates_keep_every_field() {
        let c = to_sfu_candidate(CandidateInit {
            candidate: "candidate:x".into(),
            sdp_mid: Some("1".into()),
            sdp_mline_index: Some(1),
            username_fragment: Some("f".into()),
        });
        assert_eq!(
            c,
            sfu::IceCandidate {
                candidate: "candidate:x".into(),
                sdp_mid: Some("1".into()),
                sdp_mline_index: Some(1),
                username_fragment: Some("f".into()),
            }
        );
        assert_eq!(to_sfu_pc(PcName::Publisher), sfu::PcRole::Publisher);
        assert_eq!(from_sfu_pc(sfu::PcRole::Publisher), PcName::Publisher);
    }
}
