//! 1:1 scheduling: holds and their confirmation (read back, notified), holds that
//! block a slot until released or expired, half-open intervals, and idempotent holds
//! (`Idempotency-Key`). Fixtures: [`super::scheduling`].

use std::sync::Arc;

use chrono::Utc;

use super::scheduling::{
    book, clinic, confirm, count_sessions, hold, hold_body, hold_with_key, sid, utc,
};
use super::*;

both_dbs!(hold_confirm_read_and_notify, |app| async move {
    let c = clinic(&app, "Booking").await;
    let (start, end) = ("2030-01-07T10:00:00Z", "2030-01-07T10:50:00Z");
    let h = hold(
        &app,
        &c.therapist,
        hold_body(&c.therapist, &c.client, start, end),
    )
    .await;
    let h = h.expect(201).clone();
    assert_eq!(h["status"], "active");
    assert_eq!(h["therapist_id"], json!(c.therapist.id));
    assert_eq!(h["client_id"], json!(c.client.id));
    assert_eq!(h["time_zone"], "UTC");
    assert_eq!(
        h["occurrences"],
        json!([{"start": "2030-01-07T10:00:00.000Z", "end": "2030-01-07T10:50:00.000Z"}])
    );
    let expires = utc(h["expires_at"].as_str().unwrap()) - utc(h["created_at"].as_str().unwrap());
    assert_eq!(expires.num_seconds(), 300, "default hold is 300 s");
    let key = h["hold_key"].as_str().unwrap();
    assert!(key.len() >= 43, "hold keys carry 256 random bits");

    let done = confirm(&app, &c.therapist, key).await;
    let done = done.expect(201).clone();
    assert_eq!(done["hold"]["status"], "confirmed");
    let s = done["sessions"][0].clone();
    assert_eq!(s["status"], "scheduled");
    assert_eq!(s["attendance"], "unknown");
    assert_eq!(s["start"], "2030-01-07T10:00:00.000Z");
    assert_eq!(s["end"], "2030-01-07T10:50:00.000Z");
    assert_eq!(s["organization_id"], json!(c.org.id));
    assert_eq!(s["client_name"], "Client Booking");
    let id = sid(&s);

    // Confirming again is a harmless replay.
    let again = confirm(&app, &c.therapist, key).await;
    assert_eq!(again.expect(200)["sessions"][0]["id"], json!(id));
    assert_eq!(count_sessions(&app, &c.therapist.id).await, 1);
    // A confirmed hold is not released.
    app.delete(
        &format!("/api/schedule/holds/{key}"),
        Some(&c.therapist.token),
    )
    .await
    .expect_err(409, "hold_already_confirmed");

    // Notifications for therapist and client, audit for hold and session.
    for who in [&c.therapist.id, &c.client.id] {
        assert_eq!(
            app.count(
                "notifications",
                "user_id = $1 AND kind = 'booking_confirmed'",
                who
            )
            .await,
            1
        );
    }
    let n = app.get("/api/notifications", Some(&c.client.token)).await;
    assert_eq!(
        n.expect(200)["notifications"][0]["type"],
        "booking_confirmed"
    );
    assert_eq!(
        app.audit_actions("scheduled_session", &id).await,
        vec!["schedule.session.book"]
    );
    let (hold_id,): (String,) = sqlx::query_as("SELECT id FROM schedule_holds WHERE hold_key = $1")
        .bind(key)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(
        app.audit_actions("schedule_hold", &hold_id).await,
        vec!["schedule.hold.create", "schedule.hold.confirm"]
    );

    // Therapist, client and the organization's admin read it; lists are scoped.
    for who in [&c.therapist, &c.client, &c.org.admin] {
        let r = app
            .get(&format!("/api/schedule/sessions/{id}"), Some(&who.token))
            .await;
        assert_eq!(r.expect(200)["id"], json!(id));
        let l = app.get("/api/schedule/sessions", Some(&who.token)).await;
        let l = l.expect(200)["sessions"].as_array().unwrap().clone();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0]["id"], json!(id));
    }
    // Another therapist and another client of the same organization see nothing.
    let other_t = app.therapist(&c.org.id, "Dr Other").await;
    let other_c = app
        .client(&c.org.id, Some(&other_t.id), "Other Client")
        .await;
    for who in [&other_t, &other_c] {
        app.get(&format!("/api/schedule/sessions/{id}"), Some(&who.token))
            .await
            .expect_err(404, "scheduled_session_not_found");
        let l = app.get("/api/schedule/sessions", Some(&who.token)).await;
        assert_eq!(l.expect(200)["sessions"], json!([]));
    }
    // List filters.
    let l = app
        .get(
            "/api/schedule/sessions?start=2030-01-07T10:50:00Z&end=2030-02-01T00:00:00Z",
            Some(&c.therapist.token),
        )
        .await;
    assert_eq!(
        l.expect(200)["sessions"],
        json!([]),
        "half-open: ends at 10:50"
    );
    app.get(
        &format!("/api/schedule/sessions?therapist_id={}", other_t.id),
        Some(&c.therapist.token),
    )
    .await
    .expect_err(403, "not_own_calendar");
    app.get(
        "/api/schedule/sessions?status=nope",
        Some(&c.therapist.token),
    )
    .await
    .expect_err(400, "invalid_status");
});

both_dbs!(holds_block_until_released_or_expired, |app| async move {
    let c = clinic(&app, "Holds").await;
    let c2 = app
        .client(&c.org.id, Some(&c.therapist.id), "Second Client")
        .await;
    let (start, end) = ("2030-02-04T15:00:00Z", "2030-02-04T16:00:00Z");
    let first = hold(
        &app,
        &c.therapist,
        hold_body(&c.therapist, &c.client, start, end),
    )
    .await;
    let key1 = first.expect(201)["hold_key"].as_str().unwrap().to_string();

    // The held slot is busy for the therapist, even with another client.
    let second = hold(&app, &c.therapist, hold_body(&c.therapist, &c2, start, end)).await;
    let body = second.expect_err(409, "slot_conflict").clone();
    assert_eq!(body["conflicts"][0]["user_id"], json!(c.therapist.id));
    assert_eq!(body["conflicts"][0]["start"], "2030-02-04T15:00:00.000Z");
    let suggestions = body["suggestions"].as_array().unwrap();
    assert!(!suggestions.is_empty(), "409 carries retry hints");
    for s in suggestions {
        let (s0, s1) = (
            utc(s["start"].as_str().unwrap()),
            utc(s["end"].as_str().unwrap()),
        );
        assert_eq!((s1 - s0).num_minutes(), 60, "same length as asked");
        assert!(
            s1 <= utc(start) || s0 >= utc(end),
            "suggestion {s} overlaps the held slot"
        );
    }
    // The nearest free slot is right after the hold.
    assert_eq!(suggestions[0]["start"], "2030-02-04T16:00:00.000Z");
    // A suggested slot is really free.
    let retry = hold(
        &app,
        &c.therapist,
        hold_body(
            &c.therapist,
            &c2,
            suggestions[0]["start"].as_str().unwrap(),
            suggestions[0]["end"].as_str().unwrap(),
        ),
    )
    .await;
    retry.expect(201);

    // Release: the slot is free again; releasing twice is harmless.
    let rel = app
        .delete(
            &format!("/api/schedule/holds/{key1}"),
            Some(&c.therapist.token),
        )
        .await;
    assert_eq!(rel.expect(200)["status"], "released");
    app.delete(
        &format!("/api/schedule/holds/{key1}"),
        Some(&c.therapist.token),
    )
    .await
    .expect(200);
    confirm(&app, &c.therapist, &key1)
        .await
        .expect_err(409, "hold_released");
    let third = hold(&app, &c.therapist, hold_body(&c.therapist, &c2, start, end)).await;
    let key3 = third.expect(201)["hold_key"].as_str().unwrap().to_string();

    // Expiry: once past expires_at the hold blocks nothing and cannot be confirmed.
    sqlx::query("UPDATE schedule_holds SET expires_at = $1 WHERE hold_key = $2")
        .bind(Utc::now().timestamp_millis() - 1000)
        .bind(&key3)
        .execute(app.store.pool())
        .await
        .unwrap();
    let free = app
        .get(
            &format!("/api/schedule/conflicts?start={start}&end={end}"),
            Some(&c.therapist.token),
        )
        .await;
    assert_eq!(free.expect(200)["free"], true);
    confirm(&app, &c.therapist, &key3)
        .await
        .expect_err(409, "hold_expired");
    let fourth = hold(
        &app,
        &c.therapist,
        hold_body(&c.therapist, &c.client, start, end),
    )
    .await;
    fourth.expect(201);
    let audit: Vec<String> = {
        let (id,): (String,) = sqlx::query_as("SELECT id FROM schedule_holds WHERE hold_key = $1")
            .bind(&key1)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        app.audit_actions("schedule_hold", &id).await
    };
    assert_eq!(audit, vec!["schedule.hold.create", "schedule.hold.release"]);
    // Bounds of hold_seconds.
    for secs in [0, 29, 3601] {
        let mut b = hold_body(
            &c.therapist,
            &c.client,
            "2030-03-01T10:00:00Z",
            "2030-03-01T11:00:00Z",
        );
        b["hold_seconds"] = json!(secs);
        hold(&app, &c.therapist, b)
            .await
            .expect_err(400, "invalid_hold_seconds");
    }
    let mut b = hold_body(
        &c.therapist,
        &c.client,
        "2030-03-01T10:00:00Z",
        "2030-03-01T11:00:00Z",
    );
    b["hold_seconds"] = json!(30);
    let h = hold(&app, &c.therapist, b).await;
    let h = h.expect(201);
    let secs = (utc(h["expires_at"].as_str().unwrap()) - utc(h["created_at"].as_str().unwrap()))
        .num_seconds();
    assert_eq!(secs, 30);
});

both_dbs!(half_open_intervals, |app| async move {
    let c = clinic(&app, "Intervals").await;
    let c2 = app
        .client(&c.org.id, Some(&c.therapist.id), "Adjacent Client")
        .await;
    book(
        &app,
        &c.therapist,
        &c.therapist,
        &c.client,
        "2030-04-01T09:00:00Z",
        "2030-04-01T10:00:00Z",
    )
    .await;
    // Ends at 10:00 / starts at 10:00: no conflict, both ways.
    let after = book(
        &app,
        &c.therapist,
        &c.therapist,
        &c2,
        "2030-04-01T10:00:00Z",
        "2030-04-01T11:00:00Z",
    )
    .await;
    assert_eq!(after["start"], "2030-04-01T10:00:00.000Z");
    book(
        &app,
        &c.therapist,
        &c.therapist,
        &c2,
        "2030-04-01T08:00:00Z",
        "2030-04-01T09:00:00Z",
    )
    .await;
    assert_eq!(count_sessions(&app, &c.therapist.id).await, 3);
    // One millisecond of overlap is a conflict.
    hold(
        &app,
        &c.therapist,
        hold_body(
            &c.therapist,
            &c.client,
            "2030-04-01T10:59:59.999Z",
            "2030-04-01T12:00:00Z",
        ),
    )
    .await
    .expect_err(409, "slot_conflict");
    // The client is protected too: c2 is busy 10:00-11:00 whoever the therapist is.
    let t2 = app.therapist(&c.org.id, "Dr Two").await;
    let r = hold(
        &app,
        &c.org.admin,
        hold_body(&t2, &c2, "2030-04-01T10:30:00Z", "2030-04-01T11:30:00Z"),
    )
    .await;
    let r = r.expect_err(409, "slot_conflict");
    assert_eq!(r["conflicts"][0]["user_id"], json!(c2.id));
    // The availability check agrees.
    let q = |s: &str, e: &str| format!("/api/schedule/conflicts?start={s}&end={e}");
    let busy = app
        .get(
            &q("2030-04-01T09:30:00Z", "2030-04-01T09:45:00Z"),
            Some(&c.therapist.token),
        )
        .await;
    let busy = busy.expect(200);
    assert_eq!(busy["free"], false);
    assert_eq!(busy["conflicts"].as_array().unwrap().len(), 1);
    let free = app
        .get(
            &q("2030-04-01T11:00:00Z", "2030-04-01T12:00:00Z"),
            Some(&c.therapist.token),
        )
        .await;
    assert_eq!(free.expect(200)["free"], true);
    let free = app
        .get(
            &q("2030-04-01T07:00:00Z", "2030-04-01T08:00:00Z"),
            Some(&c.therapist.token),
        )
        .await;
    assert_eq!(free.expect(200)["free"], true);
    app.get(
        &q("2030-04-01T09:00:00Z", "2030-04-01T09:00:00Z"),
        Some(&c.therapist.token),
    )
    .await
    .expect_err(400, "invalid_time_range");
});

both_dbs!(idempotent_holds, |app| async move {
    let c = clinic(&app, "Idem").await;
    let body = hold_body(
        &c.therapist,
        &c.client,
        "2030-05-06T10:00:00Z",
        "2030-05-06T11:00:00Z",
    );
    let first = hold_with_key(&app, &c.therapist, "key-1", &body).await;
    let first = first.expect(201).clone();
    // Same key, same request (other formatting of the same instants): the same hold.
    let same = json!({
        "client_id": c.client.id, "therapist_id": c.therapist.id,
        "start": "2030-05-06T12:00:00+02:00", "end": "2030-05-06T11:00:00.000Z",
    });
    let again = hold_with_key(&app, &c.therapist, "key-1", &same).await;
    let again = again.expect(200).clone();
    assert_eq!(again["hold_key"], first["hold_key"]);
    assert_eq!(again["expires_at"], first["expires_at"]);
    assert_eq!(
        app.count("schedule_holds", "client_id = $1", &c.client.id)
            .await,
        1
    );
    assert_eq!(
        app.count(
            "audit_log",
            "action = 'schedule.hold.create' AND actor_id = $1",
            &c.therapist.id
        )
        .await,
        1
    );
    // Same key, another request: 422, nothing created.
    let other = hold_body(
        &c.therapist,
        &c.client,
        "2030-05-06T12:00:00Z",
        "2030-05-06T13:00:00Z",
    );
    hold_with_key(&app, &c.therapist, "key-1", &other)
        .await
        .expect_err(422, "idempotency_key_reused");
    assert_eq!(
        app.count("schedule_holds", "client_id = $1", &c.client.id)
            .await,
        1
    );
    // A retry after the confirmation still answers with the (now confirmed) hold.
    confirm(&app, &c.therapist, first["hold_key"].as_str().unwrap())
        .await
        .expect(201);
    let after = hold_with_key(&app, &c.therapist, "key-1", &body).await;
    let after = after.expect(200);
    assert_eq!(after["status"], "confirmed");
    assert_eq!(count_sessions(&app, &c.therapist.id).await, 1);
    // Keys are per caller: the admin's "key-1" is a different key.
    let admin = hold_with_key(&app, &c.org.admin, "key-1", &other).await;
    assert_ne!(admin.expect(201)["hold_key"], first["hold_key"]);
    // Concurrent retries with one key create one hold.
    let app = Arc::new(app);
    let body = hold_body(
        &c.therapist,
        &c.client,
        "2030-05-07T10:00:00Z",
        "2030-05-07T11:00:00Z",
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, who, body) = (app.clone(), c.therapist.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            hold_with_key(&app, &who, "key-2", &body).await
        }));
    }
    let mut keys = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(matches!(r.status.as_u16(), 200 | 201), "{}", r.text);
        keys.insert(r.json["hold_key"].as_str().unwrap().to_string());
    }
    assert_eq!(keys.len(), 1, "one hold for one key");
});
