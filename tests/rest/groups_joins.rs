//! Group therapy sessions: members join, leave and list (capacity, availability,
//! membership refusals), 20 concurrent joins for the last seat, cancellation,
//! attendance and completion. Fixtures: [`super::groups`].

use std::sync::Arc;

use super::groups::{
    add_member, approved_session, book_one_on_one, invitation_of, join, kinds_of, latest_of,
    now_ms, proposal, propose, respond, setup, start_in, HOUR_MS,
};
use super::*;

// ----------------------------------------------------------------------------------
// 3. Joining
// ----------------------------------------------------------------------------------

both_dbs!(member_joins_leaves_and_lists, |app| async move {
    let fx = setup(&app, "Join Clinic").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;

    let joined = join(&app, &fx.m1, &sid).await;
    let joined = joined.expect(201);
    assert_eq!(joined["participant"]["attendance_status"], "registered");
    assert_eq!(joined["participant"]["user_id"], json!(fx.m1.id));
    assert_eq!(joined["session"]["participant_count"], 1);
    assert_eq!(joined["session"]["seats_left"], 7);
    join(&app, &fx.m1, &sid)
        .await
        .expect_err(409, "already_joined");

    // The therapists (and the moderator) are told.
    for who in [&fx.t1, &fx.t2, &fx.moderator] {
        let n = latest_of(&app, who, "group_session_member_joined").await;
        assert_eq!(n["payload"]["user_id"], json!(fx.m1.id));
        assert_eq!(n["payload"]["group_session_id"], json!(sid));
    }
    // Not the member who joined.
    assert!(!kinds_of(&app, &fx.m1)
        .await
        .contains(&"group_session_member_joined".to_string()));

    // My sessions.
    let mine = app
        .get("/api/group-sessions/my-sessions", Some(&fx.m1.token))
        .await;
    assert_eq!(mine.expect(200)["sessions"][0]["id"], json!(sid));
    let none = app
        .get("/api/group-sessions/my-sessions", Some(&fx.m2.token))
        .await;
    assert_eq!(none.expect(200)["sessions"], json!([]));
    let detail = app
        .get(&format!("/api/group-sessions/{sid}"), Some(&fx.m1.token))
        .await;
    assert_eq!(
        detail.expect(200)["my_participation"]["attendance_status"],
        "registered"
    );

    // Leave: seat freed, registration cancelled, listed no more; leave twice is 404.
    let leave_path = format!("/api/group-sessions/{sid}/leave");
    let left = app.delete(&leave_path, Some(&fx.m1.token)).await;
    let left = left.expect(200);
    assert_eq!(left["participant"]["attendance_status"], "cancelled");
    assert!(left["participant"]["left_at"].is_string());
    assert_eq!(left["session"]["participant_count"], 0);
    app.delete(&leave_path, Some(&fx.m1.token))
        .await
        .expect_err(404, "not_joined");
    app.delete(&leave_path, Some(&fx.m2.token))
        .await
        .expect_err(404, "not_joined");
    let mine = app
        .get("/api/group-sessions/my-sessions", Some(&fx.m1.token))
        .await;
    assert_eq!(mine.expect(200)["sessions"], json!([]));
    // Rejoining reuses the registration.
    let again = join(&app, &fx.m1, &sid).await;
    assert_eq!(
        again.expect(201)["participant"]["id"],
        joined["participant"]["id"]
    );
    assert_eq!(
        app.count("group_session_participants", "session_id = $1", &sid)
            .await,
        1
    );
    // Each join and leave is audited (refused attempts are not), by the member.
    let pid = joined["participant"]["id"].as_str().unwrap();
    let audit = app
        .store
        .audit_for_target("group_session_participant", pid)
        .await
        .unwrap();
    assert_eq!(
        audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        vec![
            "group_session.join",
            "group_session.leave",
            "group_session.join"
        ]
    );
    assert!(audit.iter().all(|a| a.actor_id == fx.m1.id));
    assert_eq!(
        audit[0].organization_id.as_deref(),
        Some(fx.org.id.as_str())
    );
    let state =
        |raw: &Option<String>| -> Value { serde_json::from_str(raw.as_deref().unwrap()).unwrap() };
    assert_eq!(
        state(&audit[0].after_state),
        json!({"attendance_status": "registered", "group_session_id": sid, "user_id": fx.m1.id})
    );
    assert_eq!(
        state(&audit[0].before_state)["attendance_status"],
        Value::Null
    );
    assert_eq!(
        state(&audit[1].before_state)["attendance_status"],
        "registered"
    );
    assert_eq!(
        state(&audit[1].after_state)["attendance_status"],
        "cancelled"
    );
    assert_eq!(
        state(&audit[2].before_state)["attendance_status"],
        "cancelled"
    );

    // Listing filters.
    app.get("/api/group-sessions?status=nope", Some(&fx.m1.token))
        .await
        .expect_err(400, "invalid_status");
    let approved = app
        .get(
            &format!(
                "/api/group-sessions?status=approved&community_id={}",
                fx.community
            ),
            Some(&fx.m1.token),
        )
        .await;
    assert_eq!(
        approved.expect(200)["sessions"].as_array().unwrap().len(),
        1
    );
    let cancelled = app
        .get("/api/group-sessions?status=cancelled", Some(&fx.m1.token))
        .await;
    assert_eq!(cancelled.expect(200)["sessions"], json!([]));
});

both_dbs!(join_refusals, |app| async move {
    let fx = setup(&app, "Join Refusal Clinic").await;
    let start = start_in(30);
    // Pending session.
    let pending = propose(&app, &fx, proposal(&fx, start_in(90), &[&fx.t1])).await;
    let pending_id = pending["session"]["id"].as_str().unwrap();
    join(&app, &fx.m1, pending_id)
        .await
        .expect_err(400, "session_not_open");

    // Full session: capacity 2.
    let mut small = proposal(&fx, start, &[&fx.t1, &fx.t2]);
    small["max_participants"] = json!(2);
    let sid = approved_session(&app, &fx, small).await;
    join(&app, &fx.m1, &sid).await.expect(201);
    join(&app, &fx.m2, &sid).await.expect(201);
    let m3 = app.client(&fx.org.id, None, "Member Three").await;
    add_member(&app, &fx.org, &fx.community, &m3, "member").await;
    join(&app, &m3, &sid).await.expect_err(409, "session_full");

    // Not a member of the community (same organization).
    let outsider = app.client(&fx.org.id, None, "Outsider").await;
    join(&app, &outsider, &sid)
        .await
        .expect_err(403, "not_a_member");

    // Scheduling conflicts: another group session m3 joined, and a 1:1 session.
    let mut other = proposal(&fx, start + 24 * HOUR_MS, &[&fx.t2]);
    other["title"] = json!("Evening group");
    let created = propose(&app, &fx, other).await;
    let other_id = created["session"]["id"].as_str().unwrap().to_string();
    respond(&app, &fx.t2, &invitation_of(&created, &fx.t2), "accept")
        .await
        .expect(200);
    let overlapping = {
        let mut b = proposal(&fx, start + 24 * HOUR_MS + 30 * 60_000, &[&fx.t1]);
        b["title"] = json!("Overlapping group");
        let c = propose(&app, &fx, b).await;
        respond(&app, &fx.t1, &invitation_of(&c, &fx.t1), "accept")
            .await
            .expect(200);
        c["session"]["id"].as_str().unwrap().to_string()
    };
    join(&app, &m3, &other_id).await.expect(201);
    join(&app, &m3, &overlapping)
        .await
        .expect_err(409, "schedule_conflict");
    // 1:1 conflict for m1 (a client of t1): booked over a later session.
    let later = start + 48 * HOUR_MS;
    let mut body = proposal(&fx, later, &[&fx.t2]);
    body["title"] = json!("Later group");
    let c = propose(&app, &fx, body).await;
    respond(&app, &fx.t2, &invitation_of(&c, &fx.t2), "accept")
        .await
        .expect(200);
    let later_id = c["session"]["id"].as_str().unwrap().to_string();
    let m4 = app.client(&fx.org.id, None, "Member Four").await;
    add_member(&app, &fx.org, &fx.community, &m4, "member").await;
    book_one_on_one(&app, &fx, &m4, later + 45 * 60_000, later + 105 * 60_000).await;
    join(&app, &m4, &later_id)
        .await
        .expect_err(409, "schedule_conflict");
    // Without the conflict (m2 has none) the same session can be joined.
    join(&app, &fx.m2, &later_id).await.expect(201);

    // Cancelled session.
    app.delete(
        &format!("/api/group-sessions/{later_id}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    join(&app, &m4, &later_id)
        .await
        .expect_err(400, "session_cancelled");
    // Unknown session.
    join(&app, &fx.m1, "nope")
        .await
        .expect_err(404, "group_session_not_found");
});

// ----------------------------------------------------------------------------------
// Concurrency: 20 joins for the last seat
// ----------------------------------------------------------------------------------

both_dbs!(
    twenty_concurrent_joins_for_the_last_seat,
    |app| async move {
        let fx = setup(&app, "Race Clinic").await;
        let mut body = proposal(&fx, start_in(30), &[&fx.t1, &fx.t2]);
        body["max_participants"] = json!(3);
        let sid = approved_session(&app, &fx, body).await;
        join(&app, &fx.m1, &sid).await.expect(201);
        join(&app, &fx.m2, &sid).await.expect(201);
        // One seat left; 20 members race for it.
        let mut racers = Vec::new();
        for i in 0..20 {
            let p = app.client(&fx.org.id, None, &format!("Racer {i}")).await;
            add_member(&app, &fx.org, &fx.community, &p, "member").await;
            racers.push(p);
        }
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for p in racers {
            let app = app.clone();
            let sid = sid.clone();
            tasks.push(tokio::spawn(async move { join(&app, &p, &sid).await }));
        }
        let mut won = 0;
        let mut full = 0;
        for t in tasks {
            let resp = t.await.unwrap();
            match resp.status.as_u16() {
                201 => won += 1,
                409 => {
                    resp.expect_err(409, "session_full");
                    full += 1;
                }
                other => panic!("unexpected {other}: {}", resp.text),
            }
        }
        assert_eq!((won, full), (1, 19));
        assert_eq!(
            app.count(
                "group_session_participants",
                "session_id = $1 AND attendance_status <> 'cancelled'",
                &sid
            )
            .await,
            3
        );
    }
);

// ----------------------------------------------------------------------------------
// Cancellation, completion, attendance
// ----------------------------------------------------------------------------------

both_dbs!(cancellation_notifies_everyone, |app| async move {
    let fx = setup(&app, "Cancel Clinic").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    join(&app, &fx.m1, &sid).await.expect(201);
    let path = format!("/api/group-sessions/{sid}");
    // Members and therapists may not cancel.
    for who in [&fx.m1, &fx.t1] {
        app.delete(&path, Some(&who.token))
            .await
            .expect_err(403, "not_a_moderator");
    }
    let done = app.delete(&path, Some(&fx.moderator.token)).await;
    let done = done.expect(200);
    assert_eq!(done["session"]["status"], "cancelled");
    assert!(done["session"]["cancelled_at"].is_string());
    for who in [&fx.t1, &fx.t2, &fx.m1] {
        let n = latest_of(&app, who, "group_session_cancelled").await;
        assert_eq!(n["payload"]["group_session_id"], json!(sid));
    }
    // m2 never joined: told of the approval, not of the cancellation.
    assert_eq!(kinds_of(&app, &fx.m2).await, vec!["group_session_approved"]);
    app.delete(&path, Some(&fx.moderator.token))
        .await
        .expect_err(409, "session_already_cancelled");
    assert_eq!(
        app.audit_actions("group_session", &sid).await,
        vec![
            "group_session.create",
            "group_session.approve",
            "group_session.cancel"
        ]
    );
    // Cancelled sessions keep nobody busy.
    let (busy,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM group_busy WHERE source_id = $1")
        .bind(&sid)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(busy, 0);

    // An org admin may cancel too, and the moderator is then told.
    let other = approved_session(&app, &fx, proposal(&fx, start_in(60), &[&fx.t1, &fx.t2])).await;
    app.delete(
        &format!("/api/group-sessions/{other}"),
        Some(&fx.org.admin.token),
    )
    .await
    .expect(200);
    let n = latest_of(&app, &fx.moderator, "group_session_cancelled").await;
    assert_eq!(n["payload"]["group_session_id"], json!(other));
});

both_dbs!(attendance_and_completion, |app| async move {
    let fx = setup(&app, "Attendance Clinic").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let p1 = join(&app, &fx.m1, &sid).await.expect(201)["participant"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    join(&app, &fx.m2, &sid).await.expect(201);
    let list_path = format!("/api/group-sessions/{sid}/participants");
    let list = app.get(&list_path, Some(&fx.t1.token)).await;
    assert_eq!(
        list.expect(200)["participants"].as_array().unwrap().len(),
        2
    );
    app.get(&list_path, Some(&fx.m1.token))
        .await
        .expect_err(403, "forbidden");

    let path = format!("/api/group-sessions/{sid}/participants/{p1}/attendance");
    let marked = app
        .put(
            &path,
            Some(&fx.t1.token),
            json!({"attendance_status": "attended"}),
        )
        .await;
    assert_eq!(marked.expect(200)["attendance_status"], "attended");
    let marked = app
        .put(
            &path,
            Some(&fx.moderator.token),
            json!({"attendance_status": "no_show"}),
        )
        .await;
    assert_eq!(marked.expect(200)["attendance_status"], "no_show");
    app.put(
        &path,
        Some(&fx.m2.token),
        json!({"attendance_status": "attended"}),
    )
    .await
    .expect_err(403, "forbidden");
    app.put(
        &path,
        Some(&fx.t1.token),
        json!({"attendance_status": "late"}),
    )
    .await
    .expect_err(400, "invalid_attendance_status");
    app.put(
        &format!("/api/group-sessions/{sid}/participants/nope/attendance"),
        Some(&fx.t1.token),
        json!({"attendance_status": "attended"}),
    )
    .await
    .expect_err(404, "participant_not_found");
    assert_eq!(
        app.audit_actions("group_session_participant", &p1).await,
        vec![
            "group_session.join",
            "group_session.attendance",
            "group_session.attendance"
        ]
    );

    // Completion only once started.
    let complete = format!("/api/group-sessions/{sid}/complete");
    app.post(&complete, Some(&fx.t1.token), None)
        .await
        .expect_err(409, "session_not_started");
    sqlx::query("UPDATE group_sessions SET start_ms = $1, end_ms = $2 WHERE id = $3")
        .bind(now_ms() - HOUR_MS)
        .bind(now_ms())
        .bind(&sid)
        .execute(app.store.pool())
        .await
        .unwrap();
    app.post(&complete, Some(&fx.m1.token), None)
        .await
        .expect_err(403, "forbidden");
    let done = app.post(&complete, Some(&fx.t1.token), None).await;
    assert_eq!(done.expect(200)["session"]["status"], "completed");
    // Leaving or joining a completed session is refused.
    join(&app, &fx.m1, &sid)
        .await
        .expect_err(400, "session_completed");
    let completed = app
        .get("/api/group-sessions?status=completed", Some(&fx.m2.token))
        .await;
    assert_eq!(completed.expect(200)["sessions"][0]["id"], json!(sid));
});
