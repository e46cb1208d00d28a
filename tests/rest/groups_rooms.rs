//! Group therapy sessions: the restricted video room, cross-tenant and wrong-role
//! refusals, the busy time and calendar views shared with 1:1 scheduling, and the
//! unified schedule that merges group sessions. Fixtures: [`super::groups`].

use super::groups::{
    approved_session, at, book_one_on_one, community, invitation_of, join, now_ms, proposal,
    propose, respond, setup, start_in, HOUR_MS,
};
use super::*;

// ----------------------------------------------------------------------------------
// Video room
// ----------------------------------------------------------------------------------

both_dbs!(
    virtual_session_room_admits_only_its_people,
    |app| async move {
        let fx = setup(&app, "Video Clinic").await;
        let sid = approved_session(&app, &fx, proposal(&fx, start_in(2), &[&fx.t1, &fx.t2])).await;
        join(&app, &fx.m1, &sid).await.expect(201);
        let path = format!("/api/group-sessions/{sid}/video");

        let room = app.get(&path, Some(&fx.t2.token)).await;
        let room = room.expect(200).clone();
        let room_id = room["session_id"].as_str().unwrap().to_string();
        assert!(room["join_url"].as_str().unwrap().starts_with("/join/"));
        // Created once: the member and the moderator get the same room.
        for who in [&fx.m1, &fx.moderator, &fx.t1] {
            let again = app.get(&path, Some(&who.token)).await;
            assert_eq!(again.expect(200)["session_id"], json!(room_id));
        }
        assert_eq!(
            app.count("instant_sessions", "organization_id = $1", &fx.org.id)
                .await,
            1
        );
        let stored = app.store.session(&room_id).await.unwrap().unwrap();
        assert_eq!(stored.kind, "group");
        assert!(stored.restricted());
        assert_eq!(stored.therapist_id, fx.t1.id);
        assert_eq!(stored.max_participants, 8 + 2 + 1);
        let group = app.store.group_session(&sid).await.unwrap().unwrap();
        assert!(stored.expires_at > group.end_ms);

        // Not joined: refused here, and refused by the live-video admission.
        app.get(&path, Some(&fx.m2.token))
            .await
            .expect_err(403, "not_invited");
        let claims = |p: &Person, role: Role| {
            app.jwt
                .verify(&app.token(&p.id, role, Some(&fx.org.id), None))
                .unwrap()
        };
        let now = now_ms();
        for (p, role) in [
            (&fx.t1, Role::Therapist),
            (&fx.t2, Role::Therapist),
            (&fx.m1, Role::Client),
            (&fx.moderator, Role::Client),
        ] {
            theraroom::rooms::admission::check(&app.store, &claims(p, role), &stored, now)
                .await
                .unwrap_or_else(|e| panic!("{} refused: {e}", p.id));
        }
        let refused = theraroom::rooms::admission::check(
            &app.store,
            &claims(&fx.m2, Role::Client),
            &stored,
            now,
        )
        .await;
        assert_eq!(refused.unwrap_err().code(), "forbidden");
        // A member who registered in the room and then leaves the group loses admission,
        // and read access: the old registration does not stand in for membership.
        let participants_path = format!("/api/sessions/{}/participants", stored.id);
        app.post(&participants_path, Some(&fx.m1.token), None)
            .await
            .expect(201);
        app.get(&participants_path, Some(&fx.m1.token))
            .await
            .expect(200);
        app.delete(
            &format!("/api/group-sessions/{sid}/leave"),
            Some(&fx.m1.token),
        )
        .await
        .expect(200);
        let refused = theraroom::rooms::admission::check(
            &app.store,
            &claims(&fx.m1, Role::Client),
            &stored,
            now,
        )
        .await;
        assert_eq!(refused.unwrap_err().code(), "forbidden");
        app.post(&participants_path, Some(&fx.m1.token), None)
            .await
            .expect_err(404, "session_not_found");
        app.get(&participants_path, Some(&fx.m1.token))
            .await
            .expect_err(404, "session_not_found");
        app.get(&format!("/api/sessions/{}", stored.id), Some(&fx.m1.token))
            .await
            .expect_err(404, "session_not_found");
        // Guests cannot get in through the share link.
        let share = room["join_url"]
            .as_str()
            .unwrap()
            .trim_start_matches("/join/");
        let guest = app
            .post(
                &format!("/api/join/{share}/guest"),
                None,
                Some(json!({"name": "Gus"})),
            )
            .await;
        if guest.status.as_u16() == 201 {
            let g = app
                .jwt
                .verify(guest.json["token"].as_str().unwrap())
                .unwrap();
            let refused = theraroom::rooms::admission::check(&app.store, &g, &stored, now).await;
            assert_eq!(refused.unwrap_err().code(), "forbidden");
        }

        // In-person and external-link sessions have no TheraRoom room; pending ones neither.
        let mut body = proposal(&fx, start_in(80), &[&fx.t1, &fx.t2]);
        body["session_type"] = json!("in_person");
        body["location"] = json!("Room 1");
        let in_person = approved_session(&app, &fx, body).await;
        app.get(
            &format!("/api/group-sessions/{in_person}/video"),
            Some(&fx.t1.token),
        )
        .await
        .expect_err(409, "not_virtual");
        let mut body = proposal(&fx, start_in(90), &[&fx.t1, &fx.t2]);
        body["meeting_link"] = json!("https://meet.example.org/room");
        let external = approved_session(&app, &fx, body).await;
        app.get(
            &format!("/api/group-sessions/{external}/video"),
            Some(&fx.t1.token),
        )
        .await
        .expect_err(409, "external_meeting_link");

        // Cancelling ends the room.
        app.delete(
            &format!("/api/group-sessions/{sid}"),
            Some(&fx.moderator.token),
        )
        .await
        .expect(200);
        let ended = app.store.session(&room_id).await.unwrap().unwrap();
        assert!(!ended.is_active());
    }
);

// ----------------------------------------------------------------------------------
// Cross-tenant and wrong roles
// ----------------------------------------------------------------------------------

both_dbs!(cross_tenant_and_wrong_role_refusals, |app| async move {
    let fx = setup(&app, "Tenant A").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let b = app.org("Tenant B", true).await;
    let b_client = app.client(&b.id, None, "B Client").await;
    let b_therapist = app.therapist(&b.id, "Dr B").await;
    let b_community = community(&app, &b, "B circle").await;

    // Another organization's users see nothing of A's session.
    for who in [&b_client, &b_therapist, &b.admin] {
        app.get(&format!("/api/group-sessions/{sid}"), Some(&who.token))
            .await
            .expect_err(404, "group_session_not_found");
        join(&app, who, &sid)
            .await
            .expect_err(404, "group_session_not_found");
        app.delete(&format!("/api/group-sessions/{sid}"), Some(&who.token))
            .await
            .expect_err(404, "group_session_not_found");
        app.get(
            &format!("/api/group-sessions/{sid}/video"),
            Some(&who.token),
        )
        .await
        .expect_err(404, "group_session_not_found");
        app.get(
            &format!("/api/group-sessions?community_id={}", fx.community),
            Some(&who.token),
        )
        .await
        .expect_err(404, "community_not_found");
    }
    let listed = app.get("/api/group-sessions", Some(&b.admin.token)).await;
    assert_eq!(listed.expect(200)["sessions"], json!([]));
    // B's admin cannot manage A's community or create one in A.
    app.post(
        &format!("/api/communities/{}/members", fx.community),
        Some(&b.admin.token),
        Some(json!({"user_id": b_client.id})),
    )
    .await
    .expect_err(404, "community_not_found");
    app.post(
        "/api/communities",
        Some(&b.admin.token),
        Some(json!({"name": "Sneaky", "organization_id": fx.org.id})),
    )
    .await
    .expect_err(403, "not_organization_owner");
    // A's admin cannot add B's users to A's community.
    app.post(
        &format!("/api/communities/{}/members", fx.community),
        Some(&fx.org.admin.token),
        Some(json!({"user_id": b_client.id})),
    )
    .await
    .expect_err(403, "user_not_in_organization");
    // A's moderator cannot propose in B's community.
    let mut body = proposal(&fx, start_in(40), &[&fx.t1]);
    body["community_id"] = json!(b_community);
    app.post("/api/group-sessions", Some(&fx.moderator.token), Some(body))
        .await
        .expect_err(404, "community_not_found");

    // Wrong roles: guests, and a guest token on every group route.
    let s = app.session(&fx.t1, "Instant").await;
    let guest = app.guest(s["share_token"].as_str().unwrap(), "Gus").await;
    let gt = guest["token"].as_str().unwrap();
    app.get("/api/group-sessions", Some(gt))
        .await
        .expect_err(403, "forbidden");
    app.get("/api/communities", Some(gt))
        .await
        .expect_err(403, "forbidden");
    join(
        &app,
        &Person {
            id: "g".into(),
            token: gt.to_string(),
        },
        &sid,
    )
    .await
    .expect_err(403, "forbidden");
    app.get("/api/group-sessions/therapist/sessions", Some(&fx.m1.token))
        .await
        .expect_err(403, "forbidden");
    // No token.
    app.get("/api/group-sessions", None)
        .await
        .expect_err(401, "unauthorized");
});

// ----------------------------------------------------------------------------------
// Views shared with scheduling: busy time, calendar events
// ----------------------------------------------------------------------------------

both_dbs!(
    group_views_feed_schedule_and_availability,
    |app| async move {
        let fx = setup(&app, "Views Clinic").await;
        let start = start_in(30);
        let created = propose(&app, &fx, proposal(&fx, start, &[&fx.t1, &fx.t2])).await;
        let sid = created["session"]["id"].as_str().unwrap().to_string();
        // Pending: invited therapists and the moderator have the event; nobody is busy.
        let events = |user: String| {
            let store = app.store.clone();
            async move {
                let rows: Vec<(String, String, String, i64, i64, String)> = sqlx::query_as(
                "SELECT event_id, event_type, title, start_ms, end_ms, status FROM group_events WHERE user_id = $1",
            )
            .bind(user)
            .fetch_all(store.pool())
            .await
            .unwrap();
                rows
            }
        };
        let busy = |user: String| {
            let store = app.store.clone();
            async move {
                let mut conn = store.pool().acquire().await.unwrap();
                theraroom::schedule::availability::conflicts(
                    &mut conn,
                    &[user.as_str()],
                    0,
                    i64::MAX,
                )
                .await
                .unwrap()
            }
        };
        let e = events(fx.t1.id.clone()).await;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, sid);
        assert_eq!(e[0].1, "group_session");
        assert_eq!((e[0].3, e[0].4), (start, start + HOUR_MS));
        assert_eq!(e[0].5, "pending_approval");
        assert_eq!(events(fx.moderator.id.clone()).await.len(), 1);
        assert!(events(fx.m1.id.clone()).await.is_empty());
        assert!(busy(fx.t1.id.clone()).await.is_empty());

        for t in [&fx.t1, &fx.t2] {
            respond(&app, t, &invitation_of(&created, t), "accept")
                .await
                .expect(200);
        }
        join(&app, &fx.m1, &sid).await.expect(201);
        let b = busy(fx.t1.id.clone()).await;
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].start_ms, b[0].end_ms, b[0].source_id.clone()),
            (start, start + HOUR_MS, sid.clone())
        );
        assert_eq!(busy(fx.m1.id.clone()).await.len(), 1);
        assert!(busy(fx.m2.id.clone()).await.is_empty());
        let e = events(fx.m1.id.clone()).await;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].5, "approved");
        // Leaving removes the event and the busy time.
        app.delete(
            &format!("/api/group-sessions/{sid}/leave"),
            Some(&fx.m1.token),
        )
        .await
        .expect(200);
        assert!(events(fx.m1.id.clone()).await.is_empty());
        assert!(busy(fx.m1.id.clone()).await.is_empty());
    }
);

// ----------------------------------------------------------------------------------
// 5. Schedule view (the unified schedule reads the group views)
// ----------------------------------------------------------------------------------

fn event_ids(schedule: &Value) -> Vec<(String, String)> {
    schedule["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().to_string(),
                e["event_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

both_dbs!(unified_schedule_merges_group_sessions, |app| async move {
    let fx = setup(&app, "Schedule Clinic").await;
    let base = start_in(1);
    // Group sessions at +30h and +50h that m1 joins; one at +70h that completes.
    let a = approved_session(
        &app,
        &fx,
        proposal(&fx, base + 30 * HOUR_MS, &[&fx.t1, &fx.t2]),
    )
    .await;
    let b = approved_session(
        &app,
        &fx,
        proposal(&fx, base + 50 * HOUR_MS, &[&fx.t1, &fx.t2]),
    )
    .await;
    let c = approved_session(
        &app,
        &fx,
        proposal(&fx, base + 70 * HOUR_MS, &[&fx.t1, &fx.t2]),
    )
    .await;
    for sid in [&b, &a, &c] {
        join(&app, &fx.m1, sid).await.expect(201);
    }
    sqlx::query("UPDATE group_sessions SET status = 'completed' WHERE id = $1")
        .bind(&c)
        .execute(app.store.pool())
        .await
        .unwrap();
    // And a 1:1 session with t1 at +10h.
    book_one_on_one(&app, &fx, &fx.m1, base + 10 * HOUR_MS, base + 11 * HOUR_MS).await;
    let window = |from: i64, to: i64, completed: bool| {
        format!(
            "/api/schedule?start={}&end={}&includeCompleted={completed}",
            urlencode(&at(from)),
            urlencode(&at(to))
        )
    };

    // Both kinds, sorted chronologically; completed left out by default.
    let s = app
        .get(
            &window(base, base + 100 * HOUR_MS, false),
            Some(&fx.m1.token),
        )
        .await;
    let s = s.expect(200).clone();
    let ids = event_ids(&s);
    assert_eq!(ids.len(), 3, "{s}");
    assert_eq!(ids[0].0, "one_on_one");
    assert_eq!(ids[1], ("group_session".to_string(), a.clone()));
    assert_eq!(ids[2], ("group_session".to_string(), b.clone()));
    assert_eq!(s["events"][1]["title"], "Coping with anxiety");
    assert_eq!(s["events"][1]["status"], "approved");
    let starts: Vec<&str> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["start"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    // Completed ones when asked.
    let all = app
        .get(
            &window(base, base + 100 * HOUR_MS, true),
            Some(&fx.m1.token),
        )
        .await;
    let all = event_ids(all.expect(200));
    assert_eq!(all.len(), 4);
    assert_eq!(all[3], ("group_session".to_string(), c.clone()));
    // The date range filters.
    let narrow = app
        .get(
            &window(base + 20 * HOUR_MS, base + 40 * HOUR_MS, true),
            Some(&fx.m1.token),
        )
        .await;
    assert_eq!(
        event_ids(narrow.expect(200)),
        vec![("group_session".to_string(), a.clone())]
    );
    // The therapists and the moderator see the group sessions too.
    let t = app
        .get(
            &window(base, base + 100 * HOUR_MS, false),
            Some(&fx.t2.token),
        )
        .await;
    assert_eq!(
        event_ids(t.expect(200)),
        vec![
            ("group_session".to_string(), a.clone()),
            ("group_session".to_string(), b.clone())
        ]
    );
    let m = app
        .get(
            &window(base, base + 100 * HOUR_MS, false),
            Some(&fx.moderator.token),
        )
        .await;
    assert_eq!(event_ids(m.expect(200)).len(), 2);
    // Cancelled sessions leave the schedule.
    app.delete(
        &format!("/api/group-sessions/{b}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    let after = app
        .get(
            &window(base, base + 100 * HOUR_MS, false),
            Some(&fx.m1.token),
        )
        .await;
    assert_eq!(event_ids(after.expect(200)).len(), 2);

    // The conflicts endpoint sees group sessions, with half-open edges.
    let start_a = base + 30 * HOUR_MS;
    let check = |from: i64, to: i64| {
        format!(
            "/api/schedule/conflicts?start={}&end={}",
            urlencode(&at(from)),
            urlencode(&at(to))
        )
    };
    let busy = app
        .get(
            &check(start_a + 15 * 60_000, start_a + 45 * 60_000),
            Some(&fx.t1.token),
        )
        .await;
    assert_eq!(busy.expect(200)["free"], false);
    let edge = app
        .get(
            &check(start_a + HOUR_MS, start_a + 2 * HOUR_MS),
            Some(&fx.t1.token),
        )
        .await;
    assert_eq!(edge.expect(200)["free"], true);
    let edge = app
        .get(&check(start_a - HOUR_MS, start_a), Some(&fx.m1.token))
        .await;
    assert_eq!(edge.expect(200)["free"], true);
});

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
