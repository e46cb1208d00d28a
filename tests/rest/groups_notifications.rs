//! Group therapy sessions: notifications (listed, read, reminders, pushed live) and
//! the joins, leaves and invitations that commit together with their audit rows.
//! Fixtures: [`super::groups`].

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use theraroom::state::AppState;

use super::groups::{
    approved_session, invitation_of, join, kinds_of, now_ms, proposal, propose, respond, setup,
    start_in, RecordingLive, HOUR_MS,
};
use super::*;

// ----------------------------------------------------------------------------------
// Notifications
// ----------------------------------------------------------------------------------

both_dbs!(notifications_list_read_and_reminders, |app| async move {
    let fx = setup(&app, "Notify Clinic").await;
    let start = start_in(2);
    let sid = approved_session(&app, &fx, proposal(&fx, start, &[&fx.t1, &fx.t2])).await;
    join(&app, &fx.m1, &sid).await.expect(201);

    // Reminders: due within the lead time, sent once, to therapists and participants.
    let lead = 3 * HOUR_MS;
    let sent = theraroom::store::group_reminders::send_due_reminders(&app.store, now_ms(), lead)
        .await
        .unwrap();
    let mut to: Vec<String> = sent.iter().map(|n| n.user_id.clone()).collect();
    to.sort();
    let mut expected = vec![fx.t1.id.clone(), fx.t2.id.clone(), fx.m1.id.clone()];
    expected.sort();
    assert_eq!(to, expected);
    assert!(sent.iter().all(|n| n.kind == "group_session_reminder"));
    let again = theraroom::store::group_reminders::send_due_reminders(&app.store, now_ms(), lead)
        .await
        .unwrap();
    assert!(again.is_empty(), "reminded once");
    // Not yet due with a short lead.
    let other = approved_session(&app, &fx, proposal(&fx, start_in(20), &[&fx.t1, &fx.t2])).await;
    let early = theraroom::store::group_reminders::send_due_reminders(&app.store, now_ms(), lead)
        .await
        .unwrap();
    assert!(early.is_empty());
    // A declined invitation on a third session, and a cancellation.
    let third = propose(&app, &fx, proposal(&fx, start_in(40), &[&fx.t1])).await;
    respond(&app, &fx.t1, &invitation_of(&third, &fx.t1), "decline")
        .await
        .expect(200);
    app.delete(
        &format!("/api/group-sessions/{other}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);

    // Every seed-001 type exists somewhere.
    let mut all: Vec<String> = Vec::new();
    for p in [&fx.moderator, &fx.t1, &fx.t2, &fx.m1, &fx.m2] {
        all.extend(kinds_of(&app, p).await);
    }
    for kind in [
        "group_session_invitation",
        "group_session_invitation_accepted",
        "group_session_invitation_declined",
        "group_session_approved",
        "group_session_cancelled",
        "group_session_reminder",
        "group_session_member_joined",
    ] {
        assert!(all.iter().any(|k| k == kind), "no {kind} in {all:?}");
    }

    // Listing: newest first, unread filter, unread count; mark read.
    let list = app.get("/api/notifications", Some(&fx.m1.token)).await;
    let list = list.expect(200).clone();
    let items = list["notifications"].as_array().unwrap();
    let total = items.len() as i64;
    assert_eq!(list["unread_count"], json!(total));
    let created: Vec<&str> = items
        .iter()
        .map(|n| n["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert!(items.iter().all(|n| n["read"] == false));
    let first_id = items[0]["id"].as_str().unwrap().to_string();
    let read = app
        .post(
            &format!("/api/notifications/{first_id}/read"),
            Some(&fx.m1.token),
            None,
        )
        .await;
    let read = read.expect(200);
    assert_eq!(read["read"], true);
    assert!(read["read_at"].is_string());
    // Idempotent.
    app.post(
        &format!("/api/notifications/{first_id}/read"),
        Some(&fx.m1.token),
        None,
    )
    .await
    .expect(200);
    let unread = app
        .get("/api/notifications?unread=true", Some(&fx.m1.token))
        .await;
    let unread = unread.expect(200);
    assert_eq!(
        unread["notifications"].as_array().unwrap().len() as i64,
        total - 1
    );
    assert_eq!(unread["unread_count"], json!(total - 1));
    assert!(unread["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["id"] != json!(first_id)));
    // Another user's notification: 404, and it stays unread.
    let theirs = app.get("/api/notifications", Some(&fx.t1.token)).await;
    let their_id = theirs.expect(200)["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/api/notifications/{their_id}/read"),
        Some(&fx.m1.token),
        None,
    )
    .await
    .expect_err(404, "notification_not_found");
    app.post("/api/notifications/nope/read", Some(&fx.m1.token), None)
        .await
        .expect_err(404, "notification_not_found");
    let theirs = app
        .get("/api/notifications?unread=true", Some(&fx.t1.token))
        .await;
    assert!(theirs.expect(200)["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["id"] == json!(their_id)));
    app.get("/api/notifications?limit=0", Some(&fx.m1.token))
        .await
        .expect_err(400, "invalid_limit");
});

both_dbs!(notifications_are_pushed_live, |app| async move {
    let fx = setup(&app, "Live Clinic").await;
    let live = Arc::new(RecordingLive::default());
    let state = AppState {
        live: live.clone(),
        ..app.state()
    };
    let router = theraroom::api::router(state).0;
    let body = proposal(&fx, start_in(30), &[&fx.t1]);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/group-sessions")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", fx.moderator.token),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let created = common::send_to(&router, req).await;
    let created = created.expect(201).clone();
    let pushed = live.pushed.lock().unwrap().clone();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    let (user, n) = &pushed[0];
    assert_eq!(user, &fx.t1.id);
    assert_eq!(n["type"], "group_session_invitation");
    assert_eq!(n["payload"]["group_session_id"], created["session"]["id"]);
    assert_eq!(n["read"], false);
    // The pushed notification is the stored one.
    let stored = app.get("/api/notifications", Some(&fx.t1.token)).await;
    assert_eq!(stored.expect(200)["notifications"][0]["id"], n["id"]);
});

both_dbs!(
    joins_leaves_invitations_and_their_audit_commit_together,
    |app| async move {
        use super::audit::{allow_audit, refuse_audit};
        let fx = setup(&app, "Atomic Group Clinic").await;
        // No invitation audit row: no session, no invitation, no notification.
        refuse_audit(&app, "group_session.invitation.create").await;
        app.post(
            "/api/group-sessions",
            Some(&fx.moderator.token),
            Some(proposal(&fx, start_in(30), &[&fx.t1])),
        )
        .await
        .expect_err(500, "internal");
        assert_eq!(
            app.count("group_sessions", "community_id = $1", &fx.community)
                .await,
            0
        );
        assert_eq!(
            app.count("notifications", "user_id = $1", &fx.t1.id).await,
            0
        );
        allow_audit(&app).await;

        let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
        let seated = "session_id = $1 AND attendance_status = 'registered'";
        refuse_audit(&app, "group_session.join").await;
        join(&app, &fx.m1, &sid).await.expect_err(500, "internal");
        assert_eq!(
            app.count("group_session_participants", seated, &sid).await,
            0
        );
        allow_audit(&app).await;
        join(&app, &fx.m1, &sid).await.expect(201);

        refuse_audit(&app, "group_session.leave").await;
        let leave_path = format!("/api/group-sessions/{sid}/leave");
        app.delete(&leave_path, Some(&fx.m1.token))
            .await
            .expect_err(500, "internal");
        assert_eq!(
            app.count("group_session_participants", seated, &sid).await,
            1
        );
        allow_audit(&app).await;
        app.delete(&leave_path, Some(&fx.m1.token))
            .await
            .expect(200);
        assert_eq!(
            app.count("group_session_participants", seated, &sid).await,
            0
        );
    }
);
