//! 1:1 scheduling: the video room of a booked session, which opens near its start.
//! Fixtures: [`super::scheduling`].

use chrono::Utc;

use super::scheduling::{book, clinic, iso, minutes_from_now, sid, utc};
use super::*;

both_dbs!(video_room_opens_near_the_start, |app| async move {
    let c = clinic(&app, "Video").await;
    let stranger = app
        .client(&c.org.id, Some(&c.therapist.id), "Stranger")
        .await;
    let later = book(
        &app,
        &c.therapist,
        &c.therapist,
        &c.client,
        &iso(minutes_from_now(120)),
        &iso(minutes_from_now(170)),
    )
    .await;
    let later_id = sid(&later);
    for who in [&c.therapist, &c.client] {
        app.get(
            &format!("/api/schedule/sessions/{later_id}/video"),
            Some(&who.token),
        )
        .await
        .expect_err(409, "too_early");
    }
    let soon = book(
        &app,
        &c.therapist,
        &c.therapist,
        &c.client,
        &iso(minutes_from_now(5)),
        &iso(minutes_from_now(55)),
    )
    .await;
    let soon_id = sid(&soon);
    let t = app
        .get(
            &format!("/api/schedule/sessions/{soon_id}/video"),
            Some(&c.therapist.token),
        )
        .await;
    let t = t.expect(200).clone();
    let room_id = t["session_id"].as_str().unwrap().to_string();
    let token = t["join_url"]
        .as_str()
        .unwrap()
        .strip_prefix("/join/")
        .unwrap()
        .to_string();
    assert!(token.len() >= 43);
    let cl = app
        .get(
            &format!("/api/schedule/sessions/{soon_id}/video"),
            Some(&c.client.token),
        )
        .await;
    assert_eq!(
        cl.expect(200)["session_id"],
        json!(room_id),
        "one room per session"
    );
    assert_eq!(
        app.count("instant_sessions", "therapist_id = $1", &c.therapist.id)
            .await,
        1
    );
    // Others: not visible (404) or not a participant (403).
    app.get(
        &format!("/api/schedule/sessions/{soon_id}/video"),
        Some(&stranger.token),
    )
    .await
    .expect_err(404, "scheduled_session_not_found");
    app.get(
        &format!("/api/schedule/sessions/{soon_id}/video"),
        Some(&c.org.admin.token),
    )
    .await
    .expect_err(403, "not_a_participant");

    // The room: a restricted 1:1 room expiring 30 minutes after the end.
    let room = app.store.session(&room_id).await.unwrap().unwrap();
    assert!(room.restricted());
    assert_eq!(room.kind, "instant");
    assert_eq!(room.max_participants, 2);
    assert_eq!(
        room.expires_at,
        utc(soon["end"].as_str().unwrap()).timestamp_millis() + 30 * 60_000
    );
    let detail = app
        .get(
            &format!("/api/schedule/sessions/{soon_id}"),
            Some(&c.client.token),
        )
        .await;
    assert_eq!(detail.expect(200)["video_session_id"], json!(room_id));
    // The live-video admission lets in the therapist and the client only.
    let now = Utc::now().timestamp_millis();
    let claims = |p: &Person, role: Role| {
        app.jwt
            .verify(&app.token(&p.id, role, Some(&c.org.id), None))
            .unwrap()
    };
    theraroom::rooms::admission::check(
        &app.store,
        &claims(&c.therapist, Role::Therapist),
        &room,
        now,
    )
    .await
    .expect("therapist admitted");
    theraroom::rooms::admission::check(&app.store, &claims(&c.client, Role::Client), &room, now)
        .await
        .expect("client admitted");
    let refused = theraroom::rooms::admission::check(
        &app.store,
        &claims(&stranger, Role::Client),
        &room,
        now,
    )
    .await;
    assert_eq!(refused.err().map(|e| e.code()), Some("forbidden"));
    let guest = app
        .post(
            &format!("/api/join/{token}/guest"),
            None,
            Some(json!({"name": "Eve"})),
        )
        .await;
    guest.expect_err(403, "guests_not_allowed");

    // Cancelling the session ends its room and removes the invitees.
    app.post(
        &format!("/api/schedule/sessions/{soon_id}/cancel"),
        Some(&c.therapist.token),
        None,
    )
    .await
    .expect(200);
    let room = app.store.session(&room_id).await.unwrap().unwrap();
    assert!(!room.is_active());
    assert!(!app
        .store
        .is_room_invitee(&room_id, &c.client.id)
        .await
        .unwrap());
    app.get(
        &format!("/api/schedule/sessions/{soon_id}/video"),
        Some(&c.client.token),
    )
    .await
    .expect_err(409, "session_cancelled");
});
