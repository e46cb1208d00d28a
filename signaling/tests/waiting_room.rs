//! The waiting room, chat, connection instances and resume-only admissions
//! (PROTOCOL.md: "Waiting room", "Chat", "People, devices and instances").

mod common;

use std::time::Duration;

use common::{expect_fatal, hub_with_media, join, next_message};
use signaling::protocol::ServerMessage;
use signaling::{Connection, Flow, Hub, HubConfig, OutboundQueue};

fn config() -> HubConfig {
    HubConfig {
        reconnect_grace: Duration::from_secs(5),
        ..HubConfig::default()
    }
}

async fn send(c: &mut Connection, text: &str) -> Flow {
    c.handle_text(text).await
}

async fn connect_and_join(hub: &Hub, text: &str) -> (Connection, OutboundQueue, ServerMessage) {
    let (mut c, mut rx) = hub.connect(None);
    assert_eq!(send(&mut c, text).await, Flow::Continue);
    let first = next_message(&mut rx).await;
    (c, rx, first)
}

fn join_as(session: &str, token: &str, instance: &str) -> String {
    format!(
        r#"{{"type":"join","protocol":1,"session_id":"{session}","token":"{token}","instance":"{instance}"}}"#
    )
}

fn expect_error(message: ServerMessage, code: &str) {
    match message {
        ServerMessage::Error {
            code: c,
            fatal: false,
            ..
        } => assert_eq!(c, code),
        other => panic!("expected error {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_guest_waits_without_media_until_the_host_admits_them() {
    let (hub, gate, media) = hub_with_media(config());
    let (mut guest, mut guest_rx, first) = connect_and_join(&hub, &join("w1", "g@w1#wait")).await;
    match first {
        ServerMessage::Waiting {
            participant_id,
            therapist_name,
            host_present,
            ..
        } => {
            assert_eq!(participant_id, "g");
            assert_eq!(therapist_name, "Dr. Test");
            assert!(!host_present);
        }
        other => panic!("expected waiting, got {other:?}"),
    }
    assert!(
        media.participants("w1").is_empty(),
        "no media while waiting"
    );
    assert!(
        hub.participants_in("w1").await.is_empty(),
        "no seat while waiting"
    );
    send(
        &mut guest,
        r#"{"type":"offer","pc":"publisher","sdp":"v=0"}"#,
    )
    .await;
    expect_error(next_message(&mut guest_rx).await, "not_admitted");

    // The host arrives: sees the queue; the guest hears a host is there.
    let (mut host, mut host_rx, first) = connect_and_join(&hub, &join("w1", "h@w1#host")).await;
    assert!(
        matches!(first, ServerMessage::Joined { host: true, .. }),
        "{first:?}"
    );
    match next_message(&mut host_rx).await {
        ServerMessage::WaitingRoom { waiting } => {
            assert_eq!(waiting.len(), 1);
            assert_eq!(waiting[0].participant_id, "g");
            assert_eq!(waiting[0].display_name, "Name g");
        }
        other => panic!("expected waiting_room, got {other:?}"),
    }
    assert!(matches!(
        next_message(&mut guest_rx).await,
        ServerMessage::Waiting {
            host_present: true,
            ..
        }
    ));

    // Waiting-room chat both ways, privately.
    send(
        &mut guest,
        r#"{"type":"chat","text":"  I can't hear you  "}"#,
    )
    .await;
    match next_message(&mut host_rx).await {
        ServerMessage::Chat {
            from,
            text,
            private,
            ..
        } => {
            assert_eq!(
                (from.as_str(), text.as_str(), private),
                ("g", "I can't hear you", true)
            );
        }
        other => panic!("expected chat, got {other:?}"),
    }
    send(&mut host, r#"{"type":"chat","text":"one minute","to":"g"}"#).await;
    assert!(matches!(
        next_message(&mut guest_rx).await,
        ServerMessage::Chat { private: true, ref text, .. } if text == "one minute"
    ));

    // Admitted: recorded, seated with media, `joined`, then a working connection.
    send(&mut host, r#"{"type":"admit","participant_id":"g"}"#).await;
    match next_message(&mut guest_rx).await {
        ServerMessage::Joined {
            participant_id,
            host,
            participants,
            ..
        } => {
            assert_eq!(participant_id, "g");
            assert!(!host);
            assert_eq!(participants.len(), 1, "the host is listed");
        }
        other => panic!("expected joined, got {other:?}"),
    }
    assert!(matches!(
        next_message(&mut host_rx).await,
        ServerMessage::ParticipantJoined { .. }
    ));
    assert!(matches!(
        next_message(&mut host_rx).await,
        ServerMessage::WaitingRoom { ref waiting } if waiting.is_empty()
    ));
    assert_eq!(
        gate.decisions.lock().unwrap().clone(),
        vec![("g".to_string(), true, "h".to_string())]
    );
    assert_eq!(hub.participants_in("w1").await, vec!["g", "h"]);
    send(
        &mut guest,
        r#"{"type":"offer","pc":"publisher","sdp":"v=0"}"#,
    )
    .await;
    assert!(matches!(
        next_message(&mut guest_rx).await,
        ServerMessage::Answer { .. }
    ));

    // Room chat reaches the others, not the sender.
    send(&mut guest, r#"{"type":"chat","text":"hello"}"#).await;
    assert!(matches!(
        next_message(&mut host_rx).await,
        ServerMessage::Chat { private: false, ref from, .. } if from == "g"
    ));

    // An admitted person's reload enters directly.
    let (_again, _again_rx, first) = connect_and_join(&hub, &join("w1", "g@w1#wait")).await;
    assert!(
        matches!(first, ServerMessage::Joined { resumed: true, .. }),
        "{first:?}"
    );
}

#[tokio::test]
async fn a_declined_guest_is_told_and_closed_and_only_hosts_decide() {
    let (hub, gate, _media) = hub_with_media(config());
    let (_host, mut host_rx, _) = connect_and_join(&hub, &join("w2", "h@w2#host")).await;
    assert!(matches!(
        next_message(&mut host_rx).await,
        ServerMessage::WaitingRoom { ref waiting } if waiting.is_empty()
    ));
    let (mut guest, mut guest_rx, first) = connect_and_join(&hub, &join("w2", "g@w2#wait")).await;
    assert!(matches!(
        first,
        ServerMessage::Waiting {
            host_present: true,
            ..
        }
    ));
    assert!(matches!(
        next_message(&mut host_rx).await,
        ServerMessage::WaitingRoom { ref waiting } if waiting.len() == 1
    ));
    // Someone waiting may not decide.
    send(&mut guest, r#"{"type":"admit","participant_id":"g"}"#).await;
    expect_error(next_message(&mut guest_rx).await, "not_admitted");
    // A seated non-host may not either.
    let (mut other, mut other_rx, _) = connect_and_join(&hub, &join("w2", "o@w2")).await;
    send(&mut other, r#"{"type":"decline","participant_id":"g"}"#).await;
    expect_error(next_message(&mut other_rx).await, "not_host");

    let mut host = _host;
    send(&mut host, r#"{"type":"decline","participant_id":"nobody"}"#).await;
    let _joined_other = next_message(&mut host_rx).await; // o arrived
    expect_error(next_message(&mut host_rx).await, "participant_not_found");
    send(&mut host, r#"{"type":"decline","participant_id":"g"}"#).await;
    expect_fatal(&mut guest_rx, "declined", 4403).await;
    assert_eq!(
        gate.decisions.lock().unwrap().clone(),
        vec![("g".to_string(), false, "h".to_string())]
    );
    assert!(hub.waiting_list("w2").await.is_empty());
}

#[tokio::test]
async fn a_waiting_socket_that_closes_leaves_the_queue() {
    let (hub, _gate, _media) = hub_with_media(config());
    let (guest, _guest_rx, _) = connect_and_join(&hub, &join("w3", "g@w3#wait")).await;
    assert_eq!(hub.waiting_list("w3").await.len(), 1);
    assert_eq!(hub.room_count(), 1);
    guest.disconnected().await;
    assert!(hub.waiting_list("w3").await.is_empty());
    assert_eq!(hub.room_count(), 0, "a room of nobody is dropped");
}

#[tokio::test]
async fn two_instances_of_a_person_are_two_participants_and_a_reload_resumes() {
    let (hub, gate, _media) = hub_with_media(config());
    *gate.seats.lock().unwrap() = Some(3);
    let (_a1, mut a1_rx, first) = connect_and_join(&hub, &join_as("d1", "t@d1", "tab-1")).await;
    match first {
        ServerMessage::Joined {
            participant_id,
            person_id,
            ..
        } => assert_eq!(
            (participant_id.as_str(), person_id.as_str()),
            ("t.tab-1", "t")
        ),
        other => panic!("{other:?}"),
    }
    let (_a2, _a2_rx, first) = connect_and_join(&hub, &join_as("d1", "t@d1", "tab-2")).await;
    assert!(matches!(
        first,
        ServerMessage::Joined { resumed: false, .. }
    ));
    match next_message(&mut a1_rx).await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.participant_id, "t.tab-2");
            assert_eq!(participant.person_id, "t");
        }
        other => panic!("{other:?}"),
    }
    // A reload of the first tab takes its own seat back.
    let (_a1b, _a1b_rx, first) = connect_and_join(&hub, &join_as("d1", "t@d1", "tab-1")).await;
    assert!(matches!(first, ServerMessage::Joined { resumed: true, .. }));
    expect_fatal(&mut a1_rx, "replaced", 4409).await;
    assert_eq!(hub.participants_in("d1").await, vec!["t.tab-1", "t.tab-2"]);
    // A bad instance is refused.
    let (mut bad, mut bad_rx) = hub.connect(None);
    assert_eq!(
        send(&mut bad, &join_as("d1", "t@d1", "no spaces")).await,
        Flow::Stop
    );
    expect_fatal(&mut bad_rx, "bad_message", 4400).await;
    // The person's row stays active while one instance remains.
    hub.remove_participant("d1", "t.tab-2").await;
    assert_eq!(gate.active.lock().unwrap().get("t"), Some(&true));
    hub.remove_participant("d1", "t").await;
    assert_eq!(gate.active.lock().unwrap().get("t"), Some(&false));
}

#[tokio::test]
async fn with_video_access_off_only_a_participant_of_the_running_call_resumes() {
    let (hub, _gate, _media) = hub_with_media(config());
    let (guest, _guest_rx, first) = connect_and_join(&hub, &join_as("r1", "g@r1", "tab")).await;
    assert!(matches!(first, ServerMessage::Joined { .. }));
    guest.disconnected().await; // grace period starts
                                // Access was switched off meanwhile: the same participant resumes...
    let (_back, _back_rx, first) =
        connect_and_join(&hub, &join_as("r1", "g@r1#resume", "tab")).await;
    assert!(
        matches!(first, ServerMessage::Joined { resumed: true, .. }),
        "{first:?}"
    );
    // ...but a new instance of the same person, and a new person, are refused.
    let (mut second, mut second_rx) = hub.connect(None);
    assert_eq!(
        send(&mut second, &join_as("r1", "g@r1#resume", "other")).await,
        Flow::Stop
    );
    expect_fatal(&mut second_rx, "therapist_disabled", 4403).await;
    let (mut new, mut new_rx) = hub.connect(None);
    assert_eq!(send(&mut new, &join("r1", "n@r1#resume")).await, Flow::Stop);
    expect_fatal(&mut new_rx, "therapist_disabled", 4403).await;
}

#[tokio::test]
async fn chat_text_is_bounded_and_rate_limited() {
    let (hub, _gate, _media) = hub_with_media(config());
    let (mut a, mut a_rx, _) = connect_and_join(&hub, &join("c1", "a@c1")).await;
    let (_b, mut b_rx, _) = connect_and_join(&hub, &join("c1", "b@c1")).await;
    let _ = next_message(&mut a_rx).await; // b joined
    send(&mut a, r#"{"type":"chat","text":"   "}"#).await;
    expect_error(next_message(&mut a_rx).await, "invalid_chat");
    let long = "x".repeat(1001);
    send(&mut a, &format!(r#"{{"type":"chat","text":"{long}"}}"#)).await;
    expect_error(next_message(&mut a_rx).await, "invalid_chat");
    send(&mut a, r#"{"type":"chat","text":"hi","to":"nobody"}"#).await;
    expect_error(next_message(&mut a_rx).await, "participant_not_found");
    // The burst (5, three already spent) then the refusal.
    send(&mut a, r#"{"type":"chat","text":"one"}"#).await;
    send(&mut a, r#"{"type":"chat","text":"two"}"#).await;
    send(&mut a, r#"{"type":"chat","text":"three"}"#).await;
    expect_error(next_message(&mut a_rx).await, "rate_limited");
    for expected in ["one", "two"] {
        match next_message(&mut b_rx).await {
            ServerMessage::Chat {
                text, from_name, ..
            } => {
                assert_eq!(text, expected);
                assert_eq!(from_name, "Name a");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_probe_gets_a_throw_away_connection_seen_by_no_room() {
    let (hub, gate, media) = hub_with_media(config());
    let (mut probe, mut probe_rx) = hub.connect(None);
    let text = r#"{"type":"probe","protocol":1,"session_id":"p1","token":"g@p1"}"#;
    assert_eq!(send(&mut probe, text).await, Flow::Continue);
    assert!(matches!(
        next_message(&mut probe_rx).await,
        ServerMessage::ProbeReady { .. }
    ));
    assert!(
        !probe.awaits_join(),
        "a probe is exempt from the join deadline"
    );
    send(
        &mut probe,
        r#"{"type":"offer","pc":"publisher","sdp":"v=0"}"#,
    )
    .await;
    assert!(matches!(
        next_message(&mut probe_rx).await,
        ServerMessage::Answer { .. }
    ));
    send(&mut probe, r#"{"type":"mute","kind":"audio","muted":true}"#).await;
    expect_error(next_message(&mut probe_rx).await, "bad_message");
    assert_eq!(hub.room_count(), 0, "no hub room for a probe");
    assert!(gate.active.lock().unwrap().is_empty(), "no participant row");
    assert_eq!(media.open_rooms().len(), 1);
    probe.disconnected().await;
    assert!(
        media.open_rooms().is_empty(),
        "the probe's media is released"
    );
    // A refused token is refused like a join.
    let (mut bad, mut bad_rx) = hub.connect(None);
    let text = r#"{"type":"probe","protocol":1,"session_id":"p1","token":"g@other"}"#;
    assert_eq!(send(&mut bad, text).await, Flow::Stop);
    expect_fatal(&mut bad_rx, "forbidden", 4403).await;
}

#[tokio::test]
async fn ending_the_session_tells_the_waiting_room_too() {
    let (hub, _gate, _media) = hub_with_media(config());
    let (_guest, mut guest_rx, first) = connect_and_join(&hub, &join("e1", "g@e1#wait")).await;
    assert!(matches!(first, ServerMessage::Waiting { .. }));
    hub.end_session("e1", "ended_by_therapist").await;
    assert!(matches!(
        next_message_or_close(&mut guest_rx).await,
        Some(ServerMessage::SessionEnded { .. })
    ));
    assert_eq!(hub.room_count(), 0);
}

async fn next_message_or_close(rx: &mut OutboundQueue) -> Option<ServerMessage> {
    match common::next(rx).await {
        signaling::Outbound::Message(m) => Some(m),
        signaling::Outbound::Close { .. } => None,
    }
}
