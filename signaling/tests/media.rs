//! What the hub asks of the media plane, and what the media plane's events become for
//! clients, against the in-memory plane of `common::fake_media` (no WebRTC). Real media
//! through the real SFU is checked by the binary's `tests/rtc_*` and by `sfu/tests`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_media::{Call, FAKE_ANSWER};
use common::{expect_fatal, hub_with_media, join, next, next_message};
use signaling::protocol::{
    CandidateInit, ConnectionQuality, Kind, LayerView, PcName, QualityView, ServerMessage,
    SpeakerView, StreamState, StreamStateReason, TrackView,
};
use signaling::{Connection, Flow, Hub, HubConfig, MediaEvent, Outbound, OutboundQueue};

fn config() -> HubConfig {
    HubConfig {
        reconnect_grace: Duration::from_secs(30),
        ..HubConfig::default()
    }
}

/// Joins `token` to `session` and reads its `joined`.
async fn joined(hub: &Hub, session: &str, token: &str) -> (Connection, OutboundQueue) {
    let (mut c, mut rx) = hub.connect(None);
    assert_eq!(c.handle_text(&join(session, token)).await, Flow::Continue);
    assert!(matches!(
        next_message(&mut rx).await,
        ServerMessage::Joined { .. }
    ));
    (c, rx)
}

/// The next queued item, which must be a message.
async fn next_raw(rx: &mut OutboundQueue) -> ServerMessage {
    match next(rx).await {
        Outbound::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn video(track_id: &str, publisher: &str) -> TrackView {
    TrackView {
        track_id: track_id.into(),
        kind: Kind::Video,
        source: signaling::protocol::TrackSource::Camera,
        stream_id: publisher.into(),
    }
}

fn host_candidate() -> CandidateInit {
    CandidateInit {
        candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: Some("ufrag".into()),
    }
}

#[tokio::test]
async fn negotiation_reaches_the_media_plane_and_answers_come_back() {
    let (hub, _, media) = hub_with_media(config());
    let (mut a, mut a_rx) = joined(&hub, "n1", "a@n1").await;
    media.clear_calls();

    a.handle_text(r#"{"type":"offer","pc":"publisher","sdp":"v=0 offer"}"#)
        .await;
    assert_eq!(
        next_raw(&mut a_rx).await,
        ServerMessage::Answer {
            pc: PcName::Publisher,
            sdp: FAKE_ANSWER.into()
        }
    );
    a.handle_text(r#"{"type":"answer","pc":"subscriber","sdp":"v=0 answer"}"#)
        .await;
    a.handle_text(
        r#"{"type":"candidate","pc":"subscriber","candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ufrag"}}"#,
    )
    .await;
    // Both spellings of the end of candidates reach the plane as `None`.
    a.handle_text(r#"{"type":"candidate","pc":"publisher","candidate":null}"#)
        .await;
    a.handle_text(r#"{"type":"candidate","pc":"publisher","candidate":{"candidate":""}}"#)
        .await;
    a.handle_text(r#"{"type":"request_keyframe","track_id":"t1"}"#)
        .await;
    a.handle_text(r#"{"type":"audio_only","enabled":true}"#)
        .await;
    a.handle_text(r#"{"type":"video_view","track_id":"t2","visible":false}"#)
        .await;
    a.handle_text(
        r#"{"type":"video_view","track_id":"t2","visible":true,"width":1280,"height":720}"#,
    )
    .await;
    assert_eq!(
        media.calls(),
        vec![
            Call::PublisherOffer {
                participant: "a".into(),
                sdp: "v=0 offer".into()
            },
            Call::SubscriberAnswer {
                participant: "a".into(),
                sdp: "v=0 answer".into()
            },
            Call::Candidate {
                participant: "a".into(),
                pc: PcName::Subscriber,
                candidate: Some(host_candidate())
            },
            Call::Candidate {
                participant: "a".into(),
                pc: PcName::Publisher,
                candidate: None
            },
            Call::Candidate {
                participant: "a".into(),
                pc: PcName::Publisher,
                candidate: None
            },
            Call::Keyframe {
                participant: "a".into(),
                track_id: "t1".into()
            },
            Call::AudioOnly {
                participant: "a".into(),
                enabled: true
            },
            Call::VideoView {
                participant: "a".into(),
                track_id: "t2".into(),
                visible: false,
                size: None
            },
            Call::VideoView {
                participant: "a".into(),
                track_id: "t2".into(),
                visible: true,
                size: Some((1280, 720))
            },
        ]
    );

    // A description the plane refuses: a generic, non-fatal error; the connection lives.
    let flow = a
        .handle_text(r#"{"type":"offer","pc":"publisher","sdp":"bad sdp"}"#)
        .await;
    assert_eq!(flow, Flow::Continue);
    match next_raw(&mut a_rx).await {
        ServerMessage::Error {
            code,
            message,
            fatal: false,
        } => {
            assert_eq!(code, "negotiation_failed");
            assert!(!message.contains("fake"), "engine detail leaked: {message}");
        }
        other => panic!("expected negotiation_failed, got {other:?}"),
    }
    // Offers belong on the publisher connection, answers on the subscriber one.
    media.clear_calls();
    a.handle_text(r#"{"type":"offer","pc":"subscriber","sdp":"v=0"}"#)
        .await;
    assert!(matches!(
        next_raw(&mut a_rx).await,
        ServerMessage::Error { code, fatal: false, .. } if code == "bad_message"
    ));
    assert!(media.calls().is_empty(), "{:?}", media.calls());
}

#[tokio::test]
async fn media_events_reach_the_client_and_own_tracks_are_not_echoed() {
    let (hub, _, media) = hub_with_media(config());
    let (_a, mut a_rx) = joined(&hub, "m1", "a@m1").await;
    let (_b, mut b_rx) = joined(&hub, "m1", "b@m1").await;
    assert!(matches!(
        next_raw(&mut a_rx).await,
        ServerMessage::ParticipantJoined { .. }
    ));

    media.emit(
        "m1",
        "b",
        MediaEvent::SubscriberOffer {
            sdp: "v=0 sub".into(),
        },
    );
    assert_eq!(
        next_raw(&mut b_rx).await,
        ServerMessage::Offer {
            pc: PcName::Subscriber,
            sdp: "v=0 sub".into()
        }
    );
    media.emit(
        "m1",
        "b",
        MediaEvent::Candidate {
            pc: PcName::Publisher,
            candidate: host_candidate(),
        },
    );
    assert_eq!(
        next_raw(&mut b_rx).await,
        ServerMessage::Candidate {
            pc: PcName::Publisher,
            candidate: host_candidate()
        }
    );

    // a publishes: b hears of it, a does not hear of its own track. Connection states
    // and the first media only feed metrics. The marker offer shows nothing came before.
    media.publish("m1", "a", video("cam", "a"));
    for event in [
        MediaEvent::ConnectionState {
            pc: PcName::Publisher,
            state: "connected".into(),
        },
        MediaEvent::MediaFlowing,
        MediaEvent::SubscriberOffer {
            sdp: "marker".into(),
        },
    ] {
        media.emit("m1", "a", event);
    }
    assert_eq!(
        next_raw(&mut a_rx).await,
        ServerMessage::Offer {
            pc: PcName::Subscriber,
            sdp: "marker".into()
        }
    );
    assert_eq!(
        next_raw(&mut b_rx).await,
        ServerMessage::TrackPublished {
            participant_id: "a".into(),
            track: video("cam", "a")
        }
    );
    media.emit(
        "m1",
        "b",
        MediaEvent::TrackUnpublished {
            participant_id: "a".into(),
            track_id: "cam".into(),
        },
    );
    assert_eq!(
        next_raw(&mut b_rx).await,
        ServerMessage::TrackUnpublished {
            participant_id: "a".into(),
            track_id: "cam".into()
        }
    );
}

#[tokio::test]
async fn active_speakers_reach_every_participant_as_a_message() {
    let (hub, _, media) = hub_with_media(config());
    let (_a, _a_rx) = joined(&hub, "s1", "a@s1").await;
    let (_b, mut b_rx) = joined(&hub, "s1", "b@s1").await;
    let speakers = vec![SpeakerView {
        participant_id: "a".into(),
        level: 0.62,
    }];
    media.emit(
        "s1",
        "b",
        MediaEvent::ActiveSpeakers {
            speakers: speakers.clone(),
        },
    );
    assert_eq!(
        next_raw(&mut b_rx).await,
        ServerMessage::ActiveSpeakers { speakers }
    );
    media.emit("s1", "b", MediaEvent::ActiveSpeakers { speakers: vec![] });
    assert_eq!(
        next_raw(&mut b_rx).await,
        ServerMessage::ActiveSpeakers { speakers: vec![] },
        "nobody speaking is said too"
    );
    let wire = serde_json::to_value(ServerMessage::ActiveSpeakers {
        speakers: vec![SpeakerView {
            participant_id: "a".into(),
            level: 0.5,
        }],
    })
    .expect("json");
    assert_eq!(
        wire,
        serde_json::json!({"type": "active_speakers", "speakers": [{"participant_id": "a", "level": 0.5}]})
    );
}

#[tokio::test]
async fn connection_quality_reaches_the_client_as_a_message() {
    let (hub, _, media) = hub_with_media(config());
    let (_a, _a_rx) = joined(&hub, "q1", "a@q1").await;
    let (_b, mut b_rx) = joined(&hub, "q1", "b@q1").await;
    let updates = vec![QualityView {
        participant_id: "a".into(),
        quality: ConnectionQuality::Poor,
    }];
    media.emit(
        "q1",
        "b",
        MediaEvent::ConnectionQuality {
            updates: updates.clone(),
        },
    );
    let got = next_raw(&mut b_rx).await;
    assert_eq!(got, ServerMessage::ConnectionQuality { updates });
    assert_eq!(
        serde_json::to_value(&got).expect("json"),
        serde_json::json!({"type": "connection_quality", "updates": [{"participant_id": "a", "quality": "poor"}]})
    );
}

#[tokio::test]
async fn invalid_video_view_sizes_are_refused_and_never_reach_the_plane() {
    let (hub, _, media) = hub_with_media(config());
    let (mut a, mut a_rx) = joined(&hub, "v1", "a@v1").await;
    media.clear_calls();
    for bad in [
        r#"{"type":"video_view","track_id":"t","visible":true,"width":640}"#,
        r#"{"type":"video_view","track_id":"t","visible":true,"width":0,"height":360}"#,
        r#"{"type":"video_view","track_id":"t","visible":true,"width":640,"height":99999}"#,
    ] {
        assert_eq!(a.handle_text(bad).await, Flow::Continue, "{bad}");
        assert!(
            matches!(
                next_raw(&mut a_rx).await,
                ServerMessage::Error { code, fatal: false, .. } if code == "bad_message"
            ),
            "{bad}"
        );
    }
    assert!(media.calls().is_empty(), "{:?}", media.calls());
}

#[tokio::test]
async fn stream_state_and_publish_layers_reach_the_client_as_messages() {
    let (hub, _, media) = hub_with_media(config());
    let (_a, _a_rx) = joined(&hub, "l1", "a@l1").await;
    let (_b, mut b_rx) = joined(&hub, "l1", "b@l1").await;
    for (state, wire) in [
        (StreamState::Paused, "paused"),
        (StreamState::Active, "active"),
    ] {
        media.emit(
            "l1",
            "b",
            MediaEvent::StreamState {
                track_id: "cam-a".into(),
                state,
                reason: StreamStateReason::Bandwidth,
            },
        );
        let got = next_raw(&mut b_rx).await;
        assert_eq!(
            got,
            ServerMessage::StreamState {
                track_id: "cam-a".into(),
                state,
                reason: StreamStateReason::Bandwidth
            }
        );
        assert_eq!(
            serde_json::to_value(&got).expect("json"),
            serde_json::json!({"type": "stream_state", "track_id": "cam-a", "state": wire, "reason": "bandwidth"})
        );
    }

    // The publisher's own track: relayed to it as is (no own-track filtering here).
    let layers = vec![
        LayerView {
            rid: "q".into(),
            active: true,
        },
        LayerView {
            rid: "h".into(),
            active: true,
        },
        LayerView {
            rid: "f".into(),
            active: false,
        },
    ];
    media.emit(
        "l1",
        "b",
        MediaEvent::PublishLayers {
            track_id: "cam-b".into(),
            layers: layers.clone(),
        },
    );
    let got = next_raw(&mut b_rx).await;
    assert_eq!(
        got,
        ServerMessage::PublishLayers {
            track_id: "cam-b".into(),
            layers
        }
    );
    assert_eq!(
        serde_json::to_value(&got).expect("json"),
        serde_json::json!({"type": "publish_layers", "track_id": "cam-b", "layers": [
            {"rid": "q", "active": true}, {"rid": "h", "active": true}, {"rid": "f", "active": false}]})
    );
}

#[tokio::test]
async fn joined_lists_the_tracks_others_publish() {
    let (hub, _, media) = hub_with_media(config());
    let (_a, _a_rx) = joined(&hub, "t1", "a@t1").await;
    media.publish("t1", "a", video("cam", "a"));
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("t1", "b@t1")).await;
    match next_message(&mut b_rx).await {
        ServerMessage::Joined { participants, .. } => {
            assert_eq!(participants.len(), 1);
            assert_eq!(participants[0].participant_id, "a");
            assert_eq!(participants[0].tracks, vec![video("cam", "a")]);
        }
        other => panic!("expected joined, got {other:?}"),
    }
}

#[tokio::test]
async fn room_media_lives_exactly_as_long_as_the_hub_room() {
    let (hub, _, media) = hub_with_media(config());
    let (mut a, _a_rx) = joined(&hub, "r1", "a@r1").await;
    let (_b, _b_rx) = joined(&hub, "r1", "b@r1").await;
    // b reloads: its old media is closed before the new one is made.
    let (mut b2, _b2_rx) = joined(&hub, "r1", "b@r1").await;
    assert_eq!(media.participants("r1"), vec!["a", "b"]);
    b2.handle_text(r#"{"type":"leave"}"#).await;
    a.handle_text(r#"{"type":"leave"}"#).await;
    assert_eq!(hub.room_count(), 0);
    assert!(media.open_rooms().is_empty());
    let room = |name: &str| name.to_string();
    assert_eq!(
        media.calls(),
        vec![
            Call::OpenRoom {
                room: room("r1"),
                handle: 1
            },
            Call::AddParticipant {
                handle: 1,
                participant: "a".into()
            },
            Call::AddParticipant {
                handle: 1,
                participant: "b".into()
            },
            Call::CloseParticipant {
                handle: 1,
                participant: "b".into()
            },
            Call::AddParticipant {
                handle: 1,
                participant: "b".into()
            },
            Call::CloseParticipant {
                handle: 1,
                participant: "b".into()
            },
            Call::CloseParticipant {
                handle: 1,
                participant: "a".into()
            },
            Call::CloseRoom {
                room: room("r1"),
                handle: 1
            },
        ]
    );

    // The session's next room gets media of its own; ending the session closes it, and
    // shutdown closes the others.
    media.clear_calls();
    let (_a, mut a_rx) = joined(&hub, "r1", "a@r1").await;
    let (_c, mut c_rx) = joined(&hub, "r2", "c@r2").await;
    hub.end_session("r1", "ended_by_therapist").await;
    assert!(matches!(
        next_message(&mut a_rx).await,
        ServerMessage::SessionEnded { .. }
    ));
    assert_eq!(media.open_rooms(), vec!["r2"]);
    hub.shutdown().await;
    assert!(matches!(
        next(&mut c_rx).await,
        Outbound::Close { code: 1012, .. }
    ));
    assert!(media.open_rooms().is_empty());
    assert_eq!(hub.room_count(), 0);
    let opened_and_closed: Vec<Call> = media
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::OpenRoom { .. } | Call::CloseRoom { .. }))
        .collect();
    assert_eq!(
        opened_and_closed,
        vec![
            Call::OpenRoom {
                room: room("r1"),
                handle: 2
            },
            Call::OpenRoom {
                room: room("r2"),
                handle: 3
            },
            Call::CloseRoom {
                room: room("r1"),
                handle: 2
            },
            Call::CloseRoom {
                room: room("r2"),
                handle: 3
            },
        ]
    );
}

#[tokio::test]
async fn grace_expiry_and_removal_close_the_participants_media() {
    let (hub, _, media) = hub_with_media(HubConfig {
        reconnect_grace: Duration::from_millis(100),
        ..HubConfig::default()
    });
    let (_a, _a_rx) = joined(&hub, "g1", "a@g1").await;
    let (b, _b_rx) = joined(&hub, "g1", "b@g1").await;
    let (_c, _c_rx) = joined(&hub, "g2", "c@g2").await;
    let (_d, _d_rx) = joined(&hub, "g2", "d@g2").await;
    b.disconnected().await;
    hub.remove_participant("g2", "d").await;
    assert_eq!(media.participants("g2"), vec!["c"]);
    // The grace period ends on its own.
    let mut waited = Duration::ZERO;
    while hub.participants_in("g1").await.len() > 1 && waited < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert_eq!(hub.participants_in("g1").await, vec!["a"]);
    assert_eq!(media.participants("g1"), vec!["a"]);
}

#[tokio::test]
async fn media_that_cannot_accept_a_join_refuses_it_and_leaves_nothing() {
    let (hub, gate, media) = hub_with_media(config());
    media.fail_joins(true);
    let (mut a, mut a_rx) = hub.connect(None);
    assert_eq!(a.handle_text(&join("x1", "a@x1")).await, Flow::Stop);
    expect_fatal(&mut a_rx, "internal", 4500).await;
    assert_eq!(hub.room_count(), 0);
    assert!(media.open_rooms().is_empty(), "the room's media was closed");
    assert_eq!(gate.active.lock().unwrap().get("a"), Some(&false));
    media.fail_joins(false);
    joined(&hub, "x1", "a@x1").await;
    assert_eq!(media.open_rooms(), vec!["x1"]);
}

#[tokio::test]
async fn a_join_racing_the_drop_of_an_empty_room_enters_its_successor() {
    let (hub, _, media) = hub_with_media(config());
    let (mut a, _a_rx) = joined(&hub, "d1", "a@d1").await;
    // a leaves and the room's media close is held: the hub is dropping the room.
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    media.hold_room_closes(Some(Arc::clone(&hold)));
    let leaving = tokio::spawn(async move { a.handle_text(r#"{"type":"leave"}"#).await });
    while !media
        .calls()
        .iter()
        .any(|c| matches!(c, Call::CloseRoom { .. }))
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // b's join finds the dying room and waits for its lock.
    let joining = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let (mut b, mut b_rx) = hub.connect(None);
            b.handle_text(&join("d1", "b@d1")).await;
            let first = next_message(&mut b_rx).await;
            (b, b_rx, first)
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    media.hold_room_closes(None);
    hold.add_permits(1);
    assert_eq!(leaving.await.expect("leave task"), Flow::Stop);
    let (_b, _b_rx, first) = joining.await.expect("join task");
    assert!(
        matches!(first, ServerMessage::Joined { resumed: false, .. }),
        "{first:?}"
    );
    // b is in a live room of the hub, with media of its own, not in the dropped one.
    assert_eq!(hub.room_count(), 1);
    assert_eq!(hub.participants_in("d1").await, vec!["b"]);
    assert_eq!(media.open_rooms(), vec!["d1"]);
    assert_eq!(media.participants("d1"), vec!["b"]);
    assert!(media.calls().contains(&Call::AddParticipant {
        handle: 2,
        participant: "b".into()
    }));
}
