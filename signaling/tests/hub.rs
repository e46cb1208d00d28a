//! Hub behaviour without browsers: admission, capacity, takeover, leave, grace
//! period, removal and session end, driven through the public Connection API with an
//! in-memory gatekeeper and media plane (no WebRTC: see tests/media.rs for what the hub
//! asks of the media plane).

mod common;

use std::time::Duration;

use common::{expect_fatal, hub_with, join, next, next_message};
use signaling::protocol::ServerMessage;
use signaling::{Flow, Outbound};

#[tokio::test]
async fn join_capacity_and_presence() {
    let (hub, gate) = hub_with(Duration::from_secs(30));
    let (mut a, mut a_rx) = hub.connect(None);
    assert_eq!(a.handle_text(&join("s1", "a@s1")).await, Flow::Continue);
    match next_message(&mut a_rx).await {
        ServerMessage::Joined {
            participant_id,
            resumed,
            participants,
            ..
        } => {
            assert_eq!(participant_id, "a");
            assert!(!resumed);
            assert!(participants.is_empty());
        }
        other => panic!("expected joined, got {other:?}"),
    }
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("s1", "b@s1")).await;
    match next_message(&mut b_rx).await {
        ServerMessage::Joined { participants, .. } => {
            assert_eq!(participants.len(), 1);
            assert_eq!(participants[0].participant_id, "a");
        }
        other => panic!("expected joined, got {other:?}"),
    }
    match next_message(&mut a_rx).await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.participant_id, "b")
        }
        other => panic!("expected participant_joined, got {other:?}"),
    }
    // Third one: room full.
    let (mut c, mut c_rx) = hub.connect(None);
    assert_eq!(c.handle_text(&join("s1", "c@s1")).await, Flow::Stop);
    expect_fatal(&mut c_rx, "room_full", 4409).await;
    assert_eq!(
        hub.participants_in("s1").await,
        vec!["a".to_string(), "b".to_string()]
    );
    // Mute fan-out.
    b.handle_text(r#"{"type":"mute","kind":"audio","muted":true}"#)
        .await;
    match next_message(&mut a_rx).await {
        ServerMessage::Mute {
            participant_id,
            muted: true,
            ..
        } => assert_eq!(participant_id, "b"),
        other => panic!("expected mute, got {other:?}"),
    }
    // Leave.
    assert_eq!(b.handle_text(r#"{"type":"leave"}"#).await, Flow::Stop);
    assert_eq!(next_message(&mut b_rx).await, ServerMessage::Left);
    match next_message(&mut a_rx).await {
        ServerMessage::ParticipantLeft {
            participant_id,
            reason,
        } => {
            assert_eq!(participant_id, "b");
            assert_eq!(reason, "left");
        }
        other => panic!("expected participant_left, got {other:?}"),
    }
    assert_eq!(gate.active.lock().unwrap().get("b"), Some(&false));
    assert_eq!(gate.active.lock().unwrap().get("a"), Some(&true));
}

#[tokio::test]
async fn refusals_and_bad_messages() {
    let (hub, _) = hub_with(Duration::from_secs(30));
    let (mut x, mut x_rx) = hub.connect(None);
    x.handle_text("not json").await;
    assert!(
        matches!(next_message(&mut x_rx).await, ServerMessage::Error { code, fatal: false, .. } if code == "bad_message")
    );
    x.handle_text(r#"{"type":"offer","pc":"publisher","sdp":"v=0"}"#)
        .await;
    assert!(
        matches!(next_message(&mut x_rx).await, ServerMessage::Error { code, fatal: false, .. } if code == "not_joined")
    );
    x.handle_text(r#"{"type":"ping","ts":7}"#).await;
    assert_eq!(
        next_message(&mut x_rx).await,
        ServerMessage::Pong {
            ts: Some(serde_json::json!(7))
        }
    );
    x.handle_text(&"x".repeat(70_000)).await;
    expect_fatal(&mut x_rx, "message_too_large", 4400).await;

    let (mut y, mut y_rx) = hub.connect(None);
    y.handle_text(&join("s2", "y@s1")).await;
    expect_fatal(&mut y_rx, "forbidden", 4403).await;

    let (mut z, mut z_rx) = hub.connect(None);
    z.handle_text(r#"{"type":"join","protocol":2,"session_id":"s1","token":"z@s1"}"#)
        .await;
    expect_fatal(&mut z_rx, "protocol_version", 4400).await;

    let (mut w, mut w_rx) = hub.connect(None);
    w.handle_text(r#"{"type":"join","protocol":1,"session_id":"s1"}"#)
        .await;
    expect_fatal(&mut w_rx, "unauthorized", 4401).await;
    assert_eq!(hub.room_count(), 0, "refused joins leave no room behind");
}

#[tokio::test]
async fn reload_takes_over_without_duplicate() {
    let (hub, _) = hub_with(Duration::from_secs(30));
    let (mut a, mut a_rx) = hub.connect(None);
    a.handle_text(&join("s3", "a@s3")).await;
    next_message(&mut a_rx).await;
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("s3", "b@s3")).await;
    next_message(&mut b_rx).await;
    next_message(&mut a_rx).await; // b joined
                                   // b reloads: a new connection with the same token.
    let (mut b2, mut b2_rx) = hub.connect(None);
    b2.handle_text(&join("s3", "b@s3")).await;
    expect_fatal(&mut b_rx, "replaced", 4409).await;
    match next_message(&mut b2_rx).await {
        ServerMessage::Joined {
            resumed,
            participant_id,
            participants,
            ..
        } => {
            assert!(resumed);
            assert_eq!(participant_id, "b");
            assert_eq!(participants.len(), 1);
        }
        other => panic!("expected joined, got {other:?}"),
    }
    // The old socket closing must not start a grace period for the new one.
    b.disconnected().await;
    assert_eq!(
        hub.participants_in("s3").await,
        vec!["a".to_string(), "b".to_string()]
    );
    // a only sees an update of b, never a leave.
    match next_message(&mut a_rx).await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.participant_id, "b")
        }
        other => panic!("expected participant update, got {other:?}"),
    }
}

#[tokio::test]
async fn dropped_connection_resumes_within_grace_and_leaves_after() {
    let (hub, gate) = hub_with(Duration::from_millis(400));
    let (mut a, mut a_rx) = hub.connect(None);
    a.handle_text(&join("s4", "a@s4")).await;
    next_message(&mut a_rx).await;
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("s4", "b@s4")).await;
    next_message(&mut b_rx).await;
    next_message(&mut a_rx).await;
    b.disconnected().await;
    assert!(
        matches!(next_message(&mut a_rx).await, ServerMessage::ParticipantReconnecting { participant_id } if participant_id == "b")
    );
    // Back within the grace period: same participant, resumed.
    let (mut b2, mut b2_rx) = hub.connect(None);
    b2.handle_text(&join("s4", "b@s4")).await;
    assert!(matches!(
        next_message(&mut b2_rx).await,
        ServerMessage::Joined { resumed: true, .. }
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        hub.participants_in("s4").await.len(),
        2,
        "grace timer of the old socket must not remove the resumed participant"
    );
    // Now drop for good.
    b2.disconnected().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hub.participants_in("s4").await, vec!["a".to_string()]);
    assert_eq!(gate.active.lock().unwrap().get("b"), Some(&false));
    let mut saw_left = false;
    while let Ok(Some(Outbound::Message(m))) =
        tokio::time::timeout(Duration::from_millis(200), a_rx.recv()).await
    {
        if let ServerMessage::ParticipantLeft {
            participant_id,
            reason,
        } = m
        {
            assert_eq!(participant_id, "b");
            assert_eq!(reason, "disconnected");
            saw_left = true;
        }
    }
    assert!(saw_left);
}

#[tokio::test]
async fn removal_and_session_end_disconnect_everyone() {
    let (hub, gate) = hub_with(Duration::from_secs(30));
    let (mut a, mut a_rx) = hub.connect(None);
    a.handle_text(&join("s5", "a@s5")).await;
    next_message(&mut a_rx).await;
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("s5", "b@s5")).await;
    next_message(&mut b_rx).await;
    next_message(&mut a_rx).await;
    hub.remove_participant("s5", "b").await;
    assert!(matches!(
        next_message(&mut b_rx).await,
        ServerMessage::Removed { .. }
    ));
    assert!(matches!(
        next(&mut b_rx).await,
        Outbound::Close { code: 1000, .. }
    ));
    assert!(
        matches!(next_message(&mut a_rx).await, ServerMessage::ParticipantLeft { reason, .. } if reason == "removed")
    );
    assert_eq!(gate.active.lock().unwrap().get("b"), Some(&false));

    hub.end_session("s5", "ended_by_therapist").await;
    assert!(
        matches!(next_message(&mut a_rx).await, ServerMessage::SessionEnded { reason } if reason == "ended_by_therapist")
    );
    assert!(matches!(
        next(&mut a_rx).await,
        Outbound::Close { code: 1000, .. }
    ));
    assert_eq!(gate.active.lock().unwrap().get("a"), Some(&false));
    assert_eq!(hub.room_count(), 0);
}

#[tokio::test]
async fn notifications_reach_listeners_and_joined_users() {
    let (hub, _) = hub_with(Duration::from_secs(30));
    let (mut l, mut l_rx) = hub.connect(None);
    l.handle_text(r#"{"type":"listen","protocol":1,"token":"u1@any"}"#)
        .await;
    assert_eq!(
        next_message(&mut l_rx).await,
        ServerMessage::Listening {
            subject: "u1".into()
        }
    );
    let (mut a, mut a_rx) = hub.connect(None);
    a.handle_text(&join("s6", "u1@s6")).await;
    next_message(&mut a_rx).await;
    assert_eq!(hub.notify("u1", serde_json::json!({"type":"reminder"})), 2);
    for rx in [&mut l_rx, &mut a_rx] {
        assert_eq!(
            next_message(rx).await,
            ServerMessage::Notification {
                notification: serde_json::json!({"type":"reminder"})
            }
        );
    }
    assert_eq!(hub.notify("nobody", serde_json::json!({})), 0);
    l.disconnected().await;
    assert_eq!(hub.notify("u1", serde_json::json!({"n":2})), 1);
    let (mut bad, mut bad_rx) = hub.connect(None);
    bad.handle_text(r#"{"type":"listen","protocol":1,"token":"garbage"}"#)
        .await;
    expect_fatal(&mut bad_rx, "unauthorized", 4401).await;
}

#[tokio::test]
async fn shutdown_closes_everyone_for_reconnect() {
    let (hub, gate) = hub_with(Duration::from_secs(30));
    let (mut a, mut a_rx) = hub.connect(None);
    a.handle_text(&join("s7", "a@s7")).await;
    next_message(&mut a_rx).await;
    hub.shutdown().await;
    assert!(matches!(
        next(&mut a_rx).await,
        Outbound::Close { code: 1012, .. }
    ));
    assert_eq!(gate.active.lock().unwrap().get("a"), Some(&false));
    assert_eq!(hub.room_count(), 0);
}

#[tokio::test]
async fn join_refuses_invisible_and_bidi_display_names() {
    let (hub, _) = hub_with(Duration::from_secs(30));
    for name in [
        "\\u200b\\u200d",    // zero-width space and joiner only
        "\\u3164",           // Hangul filler
        "   ",               // whitespace only
        "Dr \\u202eevil",    // right-to-left override
        "\\u2066Ada\\u2069", // isolates
    ] {
        let (mut c, mut rx) = hub.connect(None);
        let flow = c
            .handle_text(&format!(
                r#"{{"type":"join","protocol":1,"session_id":"s9","token":"n@s9","display_name":"{name}"}}"#
            ))
            .await;
        assert_eq!(flow, Flow::Stop, "{name}");
        expect_fatal(&mut rx, "invalid_name", 4400).await;
    }
    assert_eq!(hub.room_count(), 0, "refused names leave no room behind");
    // A visible name (with a joiner inside) is accepted.
    let (mut ok, mut ok_rx) = hub.connect(None);
    ok.handle_text(
        r#"{"type":"join","protocol":1,"session_id":"s9","token":"n@s9","display_name":"Ada \u200d Lovelace"}"#,
    )
    .await;
    assert!(matches!(
        next_message(&mut ok_rx).await,
        ServerMessage::Joined { .. }
    ));
}

#[tokio::test]
async fn revoked_tokens_close_their_live_connections() {
    let (hub, _) = hub_with(Duration::from_secs(30));
    // `a` joins and also listens elsewhere with the same token; `l2` listens as the same
    // subject with another token; `b` is in the room with its own token.
    let (mut a, mut a_rx) = hub.connect(None);
    a.handle_text(&join("s8", "a@s8")).await;
    next_message(&mut a_rx).await;
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("s8", "b@s8")).await;
    next_message(&mut b_rx).await;
    assert!(matches!(
        next_message(&mut a_rx).await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let (mut l, mut l_rx) = hub.connect(None);
    l.handle_text(r#"{"type":"listen","protocol":1,"token":"a@s8"}"#)
        .await;
    next_message(&mut l_rx).await;
    let (mut l2, mut l2_rx) = hub.connect(None);
    l2.handle_text(r#"{"type":"listen","protocol":1,"token":"a@other"}"#)
        .await;
    next_message(&mut l2_rx).await;

    assert_eq!(hub.revoke_token("a@s8"), 2);
    expect_fatal(&mut a_rx, "token_revoked", 4401).await;
    expect_fatal(&mut l_rx, "token_revoked", 4401).await;
    // Once the sockets are gone the index forgets them; the others are untouched.
    a.disconnected().await;
    l.disconnected().await;
    assert_eq!(hub.revoke_token("a@s8"), 0);
    assert_eq!(hub.revoke_token("unknown"), 0);
    assert_eq!(
        next_message(&mut b_rx).await,
        ServerMessage::ParticipantReconnecting {
            participant_id: "a".into()
        }
    );
    assert_eq!(hub.notify("a", serde_json::json!({"n": 1})), 1);
    assert!(matches!(
        next_message(&mut l2_rx).await,
        ServerMessage::Notification { .. }
    ));

    // Revoking the subject closes its remaining connections, whatever their token.
    assert_eq!(hub.revoke_subject("a"), 1);
    expect_fatal(&mut l2_rx, "token_revoked", 4401).await;
    l2.disconnected().await;
    assert_eq!(hub.revoke_subject("a"), 0);
    b.handle_text(r#"{"type":"ping","ts":7}"#).await;
    assert_eq!(
        next_message(&mut b_rx).await,
        ServerMessage::Pong {
            ts: Some(serde_json::json!(7))
        }
    );
}
