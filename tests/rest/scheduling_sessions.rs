//! 1:1 scheduling: role and tenant rules on holds and sessions, and a booked
//! session's cancellation, attendance and notes. Fixtures: [`super::scheduling`].

use chrono::{Duration, Utc};

use super::scheduling::{book, clinic, confirm, hold, hold_body, iso, minutes_from_now, sid};
use super::*;

both_dbs!(roles_and_tenants_are_enforced, |app| async move {
    let a = clinic(&app, "TenantA").await;
    let b = clinic(&app, "TenantB").await;
    let (start, end) = ("2030-08-05T10:00:00Z", "2030-08-05T11:00:00Z");
    let body_a = hold_body(&a.therapist, &a.client, start, end);

    // Clients have read-only access; guests none.
    hold(&app, &a.client, body_a.clone())
        .await
        .expect_err(403, "forbidden");
    let room = app.session(&a.therapist, "Guest room").await;
    let guest = app
        .guest(room["share_token"].as_str().unwrap(), "Guest")
        .await;
    let guest = guest["token"].as_str().unwrap().to_string();
    app.post("/api/schedule/holds", Some(&guest), Some(body_a.clone()))
        .await
        .expect_err(403, "forbidden");
    app.get("/api/schedule", Some(&guest))
        .await
        .expect_err(403, "forbidden");
    app.post("/api/schedule/holds", None, Some(body_a.clone()))
        .await
        .expect_err(401, "unauthorized");
    // Therapists book their own calendar with their own clients.
    let a_t2 = app.therapist(&a.org.id, "Dr A2").await;
    hold(&app, &a_t2, body_a.clone())
        .await
        .expect_err(403, "not_own_calendar");
    let unassigned = app.client(&a.org.id, None, "Unassigned").await;
    hold(
        &app,
        &a.therapist,
        hold_body(&a.therapist, &unassigned, start, end),
    )
    .await
    .expect_err(403, "not_your_client");
    // Across organizations.
    hold(&app, &b.org.admin, body_a.clone())
        .await
        .expect_err(403, "therapist_not_in_organization");
    hold(
        &app,
        &a.org.admin,
        hold_body(&a.therapist, &b.client, start, end),
    )
    .await
    .expect_err(403, "client_not_in_organization");
    hold(
        &app,
        &a.therapist,
        hold_body(&a.therapist, &b.client, start, end),
    )
    .await
    .expect_err(403, "client_not_in_organization");
    let mut unknown = body_a.clone();
    unknown["therapist_id"] = json!("no-such-therapist");
    hold(&app, &a.org.admin, unknown)
        .await
        .expect_err(404, "therapist_not_found");
    let mut unknown = body_a.clone();
    unknown["client_id"] = json!("no-such-client");
    hold(&app, &a.org.admin, unknown)
        .await
        .expect_err(404, "client_not_found");
    // A soft-deleted client cannot be booked.
    let gone = app.client(&a.org.id, Some(&a.therapist.id), "Gone").await;
    sqlx::query("UPDATE clients SET deleted_at = 1 WHERE id = $1")
        .bind(&gone.id)
        .execute(app.store.pool())
        .await
        .unwrap();
    hold(
        &app,
        &a.therapist,
        hold_body(&a.therapist, &gone, start, end),
    )
    .await
    .expect_err(404, "client_not_found");

    // The organization's admin books for its therapists (any client of the org).
    let h = hold(
        &app,
        &a.org.admin,
        hold_body(&a.therapist, &unassigned, start, end),
    )
    .await;
    let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
    // Other tenants, other therapists and clients cannot use the key.
    for who in [&b.org.admin, &b.therapist, &a_t2] {
        confirm(&app, who, &key)
            .await
            .expect_err(404, "hold_not_found");
        app.delete(&format!("/api/schedule/holds/{key}"), Some(&who.token))
            .await
            .expect_err(404, "hold_not_found");
    }
    confirm(&app, &unassigned, &key)
        .await
        .expect_err(403, "forbidden");
    // The hold's therapist may confirm what the admin held.
    let done = confirm(&app, &a.therapist, &key).await;
    let id = sid(&done.expect(201)["sessions"][0]);

    // Reading and changing the session.
    for who in [&b.org.admin, &b.therapist, &b.client, &a_t2] {
        for path in ["", "/notes", "/video"] {
            app.get(
                &format!("/api/schedule/sessions/{id}{path}"),
                Some(&who.token),
            )
            .await
            .expect_err(404, "scheduled_session_not_found");
        }
        app.post(
            &format!("/api/schedule/sessions/{id}/cancel"),
            Some(&who.token),
            None,
        )
        .await
        .expect_err(404, "scheduled_session_not_found");
        app.put(
            &format!("/api/schedule/sessions/{id}/attendance"),
            Some(&who.token),
            json!({"attendance": "attended"}),
        )
        .await
        .expect_err(404, "scheduled_session_not_found");
    }
    let l = app
        .get("/api/schedule/sessions", Some(&b.org.admin.token))
        .await;
    assert_eq!(l.expect(200)["sessions"], json!([]));
    // The session's client reads it, but changes nothing and reads no notes.
    app.get(
        &format!("/api/schedule/sessions/{id}"),
        Some(&unassigned.token),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/schedule/sessions/{id}/cancel"),
        Some(&unassigned.token),
        None,
    )
    .await
    .expect_err(403, "forbidden");
    app.put(
        &format!("/api/schedule/sessions/{id}/attendance"),
        Some(&unassigned.token),
        json!({"attendance": "attended"}),
    )
    .await
    .expect_err(403, "forbidden");
    app.get(
        &format!("/api/schedule/sessions/{id}/notes"),
        Some(&unassigned.token),
    )
    .await
    .expect_err(403, "forbidden");
    app.post(
        &format!("/api/schedule/sessions/{id}/notes"),
        Some(&unassigned.token),
        Some(json!({"body": "hi"})),
    )
    .await
    .expect_err(403, "forbidden");
    app.get(
        &format!("/api/schedule/sessions?client_id={}", a.client.id),
        Some(&unassigned.token),
    )
    .await
    .expect_err(403, "forbidden");

    // Availability checks are scoped the same way.
    let q = format!("start={start}&end={end}");
    app.get(
        &format!(
            "/api/schedule/conflicts?{q}&therapist_id={}",
            a.therapist.id
        ),
        Some(&b.org.admin.token),
    )
    .await
    .expect_err(403, "therapist_not_in_organization");
    app.get(
        &format!(
            "/api/schedule/conflicts?{q}&therapist_id={}",
            a.therapist.id
        ),
        Some(&a_t2.token),
    )
    .await
    .expect_err(403, "not_own_calendar");
    app.get(
        &format!("/api/schedule/conflicts?{q}&client_id={}", a.client.id),
        Some(&a_t2.token),
    )
    .await
    .expect_err(403, "not_your_client");
    app.get(
        &format!(
            "/api/schedule/conflicts?{q}&therapist_id={}",
            a.therapist.id
        ),
        Some(&a.client.token),
    )
    .await
    .expect_err(403, "forbidden");
    let busy = app
        .get(
            &format!(
                "/api/schedule/conflicts?{q}&therapist_id={}",
                a.therapist.id
            ),
            Some(&a.org.admin.token),
        )
        .await;
    assert_eq!(busy.expect(200)["free"], false);
    let mine = app
        .get(
            &format!("/api/schedule/conflicts?{q}"),
            Some(&unassigned.token),
        )
        .await;
    assert_eq!(mine.expect(200)["free"], false);

    // A super admin acts anywhere, but never joins therapist and client of two
    // organizations.
    let root = app
        .store
        .create_user(
            None,
            Role::SuperAdmin,
            "Root",
            "root@test.theraroom.invalid",
        )
        .await
        .unwrap();
    let root = Person {
        token: app.token(&root.id, Role::SuperAdmin, None, None),
        id: root.id,
    };
    app.get(&format!("/api/schedule/sessions/{id}"), Some(&root.token))
        .await
        .expect(200);
    hold(&app, &root, hold_body(&b.therapist, &a.client, start, end))
        .await
        .expect_err(403, "client_not_in_organization");
    hold(&app, &root, hold_body(&b.therapist, &b.client, start, end))
        .await
        .expect(201);
});

both_dbs!(cancel_attendance_and_notes, |app| async move {
    let c = clinic(&app, "Lifecycle").await;
    let (start, end) = (
        iso(minutes_from_now(2 * 24 * 60)),
        iso(minutes_from_now(2 * 24 * 60 + 60)),
    );
    let (start, end) = (start.as_str(), end.as_str());
    let s = book(&app, &c.therapist, &c.therapist, &c.client, start, end).await;
    let id = sid(&s);

    // Notes: create, edit (audited with who and the length, never the text), list.
    let n = app
        .post(
            &format!("/api/schedule/sessions/{id}/notes"),
            Some(&c.therapist.token),
            Some(json!({"body": "  Intake notes  "})),
        )
        .await;
    let n = n.expect(201).clone();
    assert_eq!(n["body"], "Intake notes");
    let note_id = n["id"].as_str().unwrap();
    let upd = app
        .put(
            &format!("/api/schedule/sessions/{id}/notes/{note_id}"),
            Some(&c.therapist.token),
            json!({"body": "Intake notes, revised"}),
        )
        .await;
    assert_eq!(upd.expect(200)["body"], "Intake notes, revised");
    let audit = app
        .store
        .audit_for_target("scheduled_session_note", note_id)
        .await
        .unwrap();
    assert_eq!(
        audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        vec!["schedule.note.create", "schedule.note.update"]
    );
    let created: Value = serde_json::from_str(audit[0].after_state.as_deref().unwrap()).unwrap();
    let before: Value = serde_json::from_str(audit[1].before_state.as_deref().unwrap()).unwrap();
    let after: Value = serde_json::from_str(audit[1].after_state.as_deref().unwrap()).unwrap();
    assert_eq!(
        created,
        json!({"session_id": id, "author_id": c.therapist.id, "length": 12})
    );
    assert_eq!(before["length"], 12);
    assert_eq!(after["length"], 21);
    assert_eq!(after["session_id"], json!(id));
    for state in [&created, &before, &after] {
        assert!(
            state.get("body").is_none(),
            "note text in the audit: {state}"
        );
    }
    assert_eq!(audit[1].actor_id, c.therapist.id);
    // No audit row anywhere holds the text.
    assert_eq!(
        app.count(
            "audit_log",
            "before_state LIKE $1 OR after_state LIKE $1",
            "%Intake notes%"
        )
        .await,
        0
    );
    // The admin reads notes; an admin's edit is allowed, a stranger's note id is not found.
    let list = app
        .get(
            &format!("/api/schedule/sessions/{id}/notes"),
            Some(&c.org.admin.token),
        )
        .await;
    assert_eq!(list.expect(200)["notes"].as_array().unwrap().len(), 1);
    app.put(
        &format!("/api/schedule/sessions/{id}/notes/nope"),
        Some(&c.therapist.token),
        json!({"body": "x"}),
    )
    .await
    .expect_err(404, "note_not_found");
    app.post(
        &format!("/api/schedule/sessions/{id}/notes"),
        Some(&c.therapist.token),
        Some(json!({"body": "   "})),
    )
    .await
    .expect_err(400, "invalid_note");

    // Attendance: not before the start; once started, attended completes the session.
    app.put(
        &format!("/api/schedule/sessions/{id}/attendance"),
        Some(&c.therapist.token),
        json!({"attendance": "attended"}),
    )
    .await
    .expect_err(409, "session_not_started");
    app.put(
        &format!("/api/schedule/sessions/{id}/attendance"),
        Some(&c.therapist.token),
        json!({"attendance": "maybe"}),
    )
    .await
    .expect_err(400, "invalid_attendance");
    let past = book(
        &app,
        &c.therapist,
        &c.therapist,
        &c.client,
        &iso(minutes_from_now(5)),
        &iso(minutes_from_now(55)),
    )
    .await;
    let past_id = sid(&past);
    let shift = 3_600_000_i64;
    sqlx::query("UPDATE scheduled_sessions SET start_ms = start_ms - $1, end_ms = end_ms - $1 WHERE id = $2")
        .bind(shift)
        .bind(&past_id)
        .execute(app.store.pool())
        .await
        .unwrap();
    let att = app
        .put(
            &format!("/api/schedule/sessions/{past_id}/attendance"),
            Some(&c.therapist.token),
            json!({"attendance": "attended"}),
        )
        .await;
    let att = att.expect(200);
    assert_eq!(att["attendance"], "attended");
    assert_eq!(att["status"], "completed");
    assert_eq!(
        app.audit_actions("scheduled_session", &past_id).await,
        vec!["schedule.session.book", "schedule.session.attendance"]
    );
    // Completed sessions show in the schedule only with includeCompleted=true.
    let window = format!(
        "start={}&end={}",
        iso(Utc::now() - Duration::hours(3)),
        iso(Utc::now() + Duration::days(30))
    );
    let plain = app
        .get(&format!("/api/schedule?{window}"), Some(&c.therapist.token))
        .await;
    let ids: Vec<Value> = plain.expect(200)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(id)]);
    let all = app
        .get(
            &format!("/api/schedule?{window}&includeCompleted=true"),
            Some(&c.therapist.token),
        )
        .await;
    let all = all.expect(200)["events"].as_array().unwrap().clone();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["event_id"], json!(past_id));
    assert_eq!(all[0]["status"], "completed");
    assert_eq!(all[1]["event_id"], json!(id));

    // Cancel: notifications, audit, the slot is free again, once only.
    let cancelled = app
        .post(
            &format!("/api/schedule/sessions/{id}/cancel"),
            Some(&c.therapist.token),
            Some(json!({"reason": "client asked"})),
        )
        .await;
    let cancelled = cancelled.expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "client asked");
    for who in [&c.therapist.id, &c.client.id] {
        assert_eq!(
            app.count(
                "notifications",
                "user_id = $1 AND kind = 'booking_cancelled'",
                who
            )
            .await,
            1
        );
    }
    assert_eq!(
        app.audit_actions("scheduled_session", &id).await,
        vec!["schedule.session.book", "schedule.session.cancel"]
    );
    app.post(
        &format!("/api/schedule/sessions/{id}/cancel"),
        Some(&c.org.admin.token),
        None,
    )
    .await
    .expect_err(409, "session_already_cancelled");
    app.post(
        &format!("/api/schedule/sessions/{past_id}/cancel"),
        Some(&c.therapist.token),
        None,
    )
    .await
    .expect_err(409, "session_completed");
    let sched = app
        .get(&format!("/api/schedule?{window}"), Some(&c.client.token))
        .await;
    assert_eq!(sched.expect(200)["events"], json!([]));
    book(&app, &c.therapist, &c.therapist, &c.client, start, end).await;
    // late_cancel only on cancelled sessions.
    app.put(
        &format!("/api/schedule/sessions/{id}/attendance"),
        Some(&c.therapist.token),
        json!({"attendance": "late_cancel"}),
    )
    .await
    .expect(200);
    app.get(
        "/api/schedule?start=2030-01-02T00:00:00Z&end=2030-01-01T00:00:00Z",
        Some(&c.therapist.token),
    )
    .await
    .expect_err(400, "invalid_time_range");
});
