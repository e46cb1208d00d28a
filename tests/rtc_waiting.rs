//! The waiting room against the real server (REST + signaling + store, no media): a
//! guest of an instant session waits, the therapist sees the queue live and over REST,
//! an admit over REST lets the guest in and is audited, a decline over the socket sticks
//! for that person, and chat between the therapist and a waiting guest arrives.

mod rtc_common;

use rtc_common::ws::{expect_closed, expect_type, join, open_and_join, send};
use rtc_common::{init_tracing, Server, SERIAL};
use serde_json::json;

#[tokio::test]
async fn a_guest_waits_until_the_therapist_admits_them_and_a_declined_one_stays_out() {
    init_tracing();
    let _serial = SERIAL.lock().await;
    let server = Server::start().await;
    let (_, therapist_token) = server.therapist();
    let therapist_token = therapist_token.to_string();
    let (status, session) = server
        .call(
            "POST",
            "/api/sessions",
            &therapist_token,
            Some(json!({"session_name": "Intake", "max_participants": 3})),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["waiting_room"], true, "on by default");
    let sid = session["id"].as_str().unwrap().to_string();
    let share = session["share_token"].as_str().unwrap().to_string();

    let guest = server.guest(&share, "Gail Guest").await;
    let mut guest_ws = open_and_join(&server, &sid, &guest.token, "guest").await;
    let waiting = expect_type(&mut guest_ws, "waiting", "guest").await;
    assert_eq!(waiting["host_present"], false);
    assert!(!waiting["therapist_name"].as_str().unwrap().is_empty());
    let guest_pid = waiting["participant_id"].as_str().unwrap().to_string();

    let (status, queue) = server
        .call(
            "GET",
            &format!("/api/sessions/{sid}/waiting"),
            &therapist_token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(queue["waiting"][0]["display_name"], "Gail Guest");
    assert_eq!(queue["waiting"][0]["participant_id"], guest_pid.as_str());

    let (mut host_ws, joined) = join(&server, &sid, &therapist_token, "therapist").await;
    assert_eq!(joined["host"], true);
    assert_eq!(
        joined["participants"],
        json!([]),
        "a waiting guest is not in the room"
    );
    let queue = expect_type(&mut host_ws, "waiting_room", "therapist").await;
    assert_eq!(queue["waiting"].as_array().unwrap().len(), 1);
    let waiting = expect_type(&mut guest_ws, "waiting", "guest").await;
    assert_eq!(waiting["host_present"], true);

    // Chat in the waiting room, both ways.
    send(
        &mut guest_ws,
        json!({"type": "chat", "text": "hello?"}),
        "guest",
    )
    .await;
    let chat = expect_type(&mut host_ws, "chat", "therapist").await;
    assert_eq!(
        (chat["text"].as_str(), chat["private"].as_bool()),
        (Some("hello?"), Some(true))
    );
    let to_guest = json!({"type": "chat", "text": "one minute", "to": guest_pid});
    send(&mut host_ws, to_guest, "therapist").await;
    let chat = expect_type(&mut guest_ws, "chat", "guest").await;
    assert_eq!(chat["text"], "one minute");

    // Admitted over REST: the guest is in, and the decision is audited.
    let (status, outcome) = server
        .call(
            "POST",
            &format!("/api/sessions/{sid}/waiting/{guest_pid}/admit"),
            &therapist_token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    let joined = expect_type(&mut guest_ws, "joined", "guest").await;
    assert_eq!(joined["participant_id"], guest_pid.as_str());
    assert_eq!(joined["host"], false);
    let arrived = expect_type(&mut host_ws, "participant_joined", "therapist").await;
    assert_eq!(arrived["participant"]["display_name"], "Gail Guest");
    let person = outcome["person_id"].as_str().unwrap();
    let actions: Vec<String> = server
        .store
        .audit_for_target("participant", person)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert!(
        actions.contains(&"session.waiting.admit".to_string()),
        "{actions:?}"
    );

    // Declined over the socket: told, closed, and refused from then on.
    let second = server.guest(&share, "Sam Second").await;
    let mut second_ws = open_and_join(&server, &sid, &second.token, "second").await;
    let waiting = expect_type(&mut second_ws, "waiting", "second").await;
    let second_pid = waiting["participant_id"].as_str().unwrap().to_string();
    let decline = json!({"type": "decline", "participant_id": second_pid});
    send(&mut host_ws, decline, "therapist").await;
    let error = rtc_common::ws::next_message(&mut second_ws).await.unwrap();
    assert_eq!(
        (error["code"].as_str(), error["fatal"].as_bool()),
        (Some("declined"), Some(true))
    );
    expect_closed(second_ws, "second").await;
    let mut again = open_and_join(&server, &sid, &second.token, "second again").await;
    let error = rtc_common::ws::next_message(&mut again).await.unwrap();
    assert_eq!(error["code"], "declined");
    server.stop().await;
}
