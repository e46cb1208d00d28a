//! Rescheduling booked 1:1 sessions through a hold with `session_id`: conflicts with
//! suggestions, the move itself (same id, old slot free, both sides notified, audit
//! with old and new times), local time across a DST change, refusals, and 20
//! concurrent reschedules into one slot.

use std::sync::Arc;

use chrono::{Timelike, Utc};

use super::scheduling::{
    book, clinic, confirm, confirm_race, hold, hold_body, iso, minutes_from_now, sid, utc,
};
use super::webhooks::{payloads, set_hook, types};
use super::*;

/// A reschedule hold body for `session` (its therapist and client) to `[start, end)`.
fn move_body(session: &Value, start: &str, end: &str) -> Value {
    json!({
        "session_id": session["id"], "therapist_id": session["therapist_id"],
        "client_id": session["client_id"], "start": start, "end": end,
    })
}

/// The before and after JSON of the audit entries of `action` on a session.
async fn audit_states(app: &TestApp, session_id: &str, action: &str) -> Vec<(Value, Value)> {
    let parse = |s: &Option<String>| -> Value {
        s.as_deref()
            .map(|t| serde_json::from_str(t).unwrap())
            .unwrap_or(Value::Null)
    };
    app.store
        .audit_for_target("scheduled_session", session_id)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.action == action)
        .map(|r| (parse(&r.before_state), parse(&r.after_state)))
        .collect()
}

both_dbs!(reschedule_conflict_then_move, |app| async move {
    let c = clinic(&app, "Move").await;
    let other = app
        .client(&c.org.id, Some(&c.therapist.id), "Other Client")
        .await;
    let (t, cl) = (&c.therapist, &c.client);
    let s = book(
        &app,
        t,
        t,
        cl,
        "2030-03-04T10:00:00Z",
        "2030-03-04T10:50:00Z",
    )
    .await;
    let id = sid(&s);
    book(
        &app,
        t,
        t,
        &other,
        "2030-03-04T12:00:00Z",
        "2030-03-04T12:50:00Z",
    )
    .await;

    // Into the other session: 409 with hints that are free.
    let r = hold(
        &app,
        t,
        move_body(&s, "2030-03-04T12:00:00Z", "2030-03-04T12:50:00Z"),
    )
    .await;
    let body = r.expect_err(409, "slot_conflict").clone();
    let hints = body["suggestions"].as_array().unwrap().clone();
    assert!(!hints.is_empty(), "409 carries retry hints: {body}");
    for h in &hints {
        let (a, b) = (
            utc(h["start"].as_str().unwrap()),
            utc(h["end"].as_str().unwrap()),
        );
        assert_eq!((b - a).num_minutes(), 50);
        assert!(b <= utc("2030-03-04T12:00:00Z") || a >= utc("2030-03-04T12:50:00Z"));
    }

    // Overlapping its own old slot is fine: the session does not conflict with itself.
    let r = hold(
        &app,
        t,
        move_body(&s, "2030-03-04T10:30:00Z", "2030-03-04T11:20:00Z"),
    )
    .await;
    let h = r.expect(201).clone();
    assert_eq!(h["session_id"], json!(id));
    // While held, the new slot is busy for others.
    hold(
        &app,
        t,
        hold_body(t, &other, "2030-03-04T11:00:00Z", "2030-03-04T11:30:00Z"),
    )
    .await
    .expect_err(409, "slot_conflict");
    let done = confirm(&app, t, h["hold_key"].as_str().unwrap()).await;
    let done = done.expect(201).clone();
    assert_eq!(done["hold"]["status"], "confirmed");
    assert_eq!(done["sessions"][0]["id"], json!(id));

    let got = app
        .get(&format!("/api/schedule/sessions/{id}"), Some(&cl.token))
        .await;
    let got = got.expect(200).clone();
    assert_eq!(got["start"], "2030-03-04T10:30:00.000Z");
    assert_eq!(got["end"], "2030-03-04T11:20:00.000Z");
    assert_eq!(got["previous_start"], "2030-03-04T10:00:00.000Z");
    assert_eq!(got["previous_end"], "2030-03-04T10:50:00.000Z");
    assert!(got["rescheduled_at"].is_string());
    assert_eq!(got["status"], "scheduled");
    // Still one session, and the old slot (10:00-10:30) is free again.
    assert_eq!(
        app.count("scheduled_sessions", "client_id = $1", &cl.id)
            .await,
        1
    );
    hold(
        &app,
        t,
        hold_body(t, &other, "2030-03-04T10:00:00Z", "2030-03-04T10:30:00Z"),
    )
    .await
    .expect(201);

    // Both sides notified once; the audit entry has the old and the new times.
    for who in [&t.id, &cl.id] {
        let n = app
            .count(
                "notifications",
                "user_id = $1 AND kind = 'booking_rescheduled'",
                who,
            )
            .await;
        assert_eq!(n, 1);
    }
    let n = app.get("/api/notifications", Some(&cl.token)).await;
    assert_eq!(
        n.expect(200)["notifications"][0]["type"],
        "booking_rescheduled"
    );
    assert_eq!(
        app.audit_actions("scheduled_session", &id).await,
        vec!["schedule.session.book", "schedule.session.reschedule"]
    );
    let states = audit_states(&app, &id, "schedule.session.reschedule").await;
    assert_eq!(states[0].0["start"], "2030-03-04T10:00:00.000Z");
    assert_eq!(states[0].1["start"], "2030-03-04T10:30:00.000Z");

    // Confirming again replays the moved session.
    let again = confirm(&app, t, h["hold_key"].as_str().unwrap()).await;
    assert_eq!(
        again.expect(200)["sessions"][0]["start"],
        "2030-03-04T10:30:00.000Z"
    );
});

both_dbs!(reschedule_refusals, |app| async move {
    let c = clinic(&app, "Refuse").await;
    let (t, cl) = (&c.therapist, &c.client);
    let s = book(
        &app,
        t,
        t,
        cl,
        "2030-04-01T09:00:00Z",
        "2030-04-01T10:00:00Z",
    )
    .await;
    let id = sid(&s);
    let to = ("2030-04-02T09:00:00Z", "2030-04-02T10:00:00Z");
    // Clients read only; another organization's admin does not see the session.
    hold(&app, cl, move_body(&s, to.0, to.1))
        .await
        .expect_err(403, "forbidden");
    let far = clinic(&app, "Far").await;
    hold(&app, &far.org.admin, move_body(&s, to.0, to.1))
        .await
        .expect_err(404, "scheduled_session_not_found");
    // The body's people must be the session's.
    let mut wrong = move_body(&s, to.0, to.1);
    wrong["client_id"] = json!(far.client.id);
    hold(&app, t, wrong)
        .await
        .expect_err(400, "reschedule_mismatch");
    // One slot only; a start is needed.
    let mut series = move_body(&s, to.0, to.1);
    series["recurrence"] = json!({"frequency": "weekly", "count": 2});
    hold(&app, t, series)
        .await
        .expect_err(400, "invalid_reschedule");
    let mut none = move_body(&s, to.0, to.1);
    none.as_object_mut().unwrap().remove("start");
    hold(&app, t, none)
        .await
        .expect_err(400, "invalid_time_range");
    // Without end the session keeps its length.
    let mut no_end = move_body(&s, to.0, to.1);
    no_end.as_object_mut().unwrap().remove("end");
    let h = hold(&app, t, no_end).await;
    let h = h.expect(201).clone();
    assert_eq!(h["occurrences"][0]["end"], "2030-04-02T10:00:00.000Z");

    // Cancelled after the hold was made: cancelling releases the hold (its slot is free).
    let key = h["hold_key"].as_str().unwrap().to_string();
    app.post(
        &format!("/api/schedule/sessions/{id}/cancel"),
        Some(&t.token),
        None,
    )
    .await
    .expect(200);
    let released = app
        .count(
            "schedule_holds",
            "hold_key = $1 AND status = 'released'",
            &key,
        )
        .await;
    assert_eq!(released, 1);
    confirm(&app, t, &key)
        .await
        .expect_err(409, "hold_released");
    // A cancelled session cannot be moved at all.
    hold(&app, t, move_body(&s, to.0, to.1))
        .await
        .expect_err(409, "session_cancelled");
    // Nor a completed one, also when it was completed after the hold was made: the
    // confirmation is refused and releases the hold.
    let s2 = book(
        &app,
        t,
        t,
        cl,
        "2030-04-08T09:00:00Z",
        "2030-04-08T10:00:00Z",
    )
    .await;
    let h2 = hold(
        &app,
        t,
        move_body(&s2, "2030-04-10T09:00:00Z", "2030-04-10T10:00:00Z"),
    )
    .await;
    let key2 = h2.expect(201)["hold_key"].as_str().unwrap().to_string();
    sqlx::query("UPDATE scheduled_sessions SET status = 'completed' WHERE id = $1")
        .bind(sid(&s2))
        .execute(app.store.pool())
        .await
        .unwrap();
    confirm(&app, t, &key2)
        .await
        .expect_err(409, "session_completed");
    let released = app
        .count(
            "schedule_holds",
            "hold_key = $1 AND status = 'released'",
            &key2,
        )
        .await;
    assert_eq!(released, 1);
    hold(
        &app,
        t,
        move_body(&s2, "2030-04-09T09:00:00Z", "2030-04-09T10:00:00Z"),
    )
    .await
    .expect_err(409, "session_completed");
});

both_dbs!(reschedule_across_dst_keeps_local_time, |app| async move {
    let c = clinic(&app, "Dst").await;
    let (t, cl) = (&c.therapist, &c.client);
    let h = hold(
        &app,
        t,
        json!({
            "therapist_id": t.id, "client_id": cl.id,
            "start": "2030-10-21T10:00:00-04:00", "end": "2030-10-21T10:50:00-04:00",
            "time_zone": "America/New_York",
            "recurrence": {"frequency": "weekly", "count": 3},
        }),
    )
    .await;
    let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
    let done = confirm(&app, t, &key).await;
    let sessions = done.expect(201)["sessions"].as_array().unwrap().clone();
    let second = sessions[1].clone();
    assert_eq!(second["start"], "2030-10-28T14:00:00.000Z"); // 10:00 EDT
                                                             // Move the 28 October (EDT) occurrence to Wednesday 6 November (EST) by date.
    let mut body = move_body(&second, "", "");
    let o = body.as_object_mut().unwrap();
    o.remove("start");
    o.remove("end");
    o.insert("date".into(), json!("2030-11-06"));
    let r = hold(&app, t, body).await;
    let r = r.expect(201).clone();
    assert_eq!(
        r["time_zone"], "America/New_York",
        "the session's zone by default"
    );
    let moved = confirm(&app, t, r["hold_key"].as_str().unwrap()).await;
    let moved = moved.expect(201)["sessions"][0].clone();
    assert_eq!(moved["id"], second["id"]);
    assert_eq!(moved["start"], "2030-11-06T15:00:00.000Z"); // 10:00 EST
    assert_eq!(moved["end"], "2030-11-06T15:50:00.000Z");
    let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let local = utc(moved["start"].as_str().unwrap()).with_timezone(&tz);
    assert_eq!((local.hour(), local.minute()), (10, 0));
    // It stays in its series, next to the untouched occurrences.
    assert_eq!(moved["series_id"], sessions[0]["series_id"]);
    let third = app
        .get(
            &format!("/api/schedule/sessions/{}", sid(&sessions[2])),
            Some(&t.token),
        )
        .await;
    assert_eq!(third.expect(200)["start"], "2030-11-04T15:00:00.000Z");
    // A bad date is a clear 400.
    let mut bad = move_body(&second, "", "");
    let o = bad.as_object_mut().unwrap();
    o.remove("start");
    o.insert("date".into(), json!("6 Nov"));
    hold(&app, t, bad)
        .await
        .expect_err(400, "invalid_timestamp");
});

both_dbs!(concurrent_reschedules_into_one_slot, |app| async move {
    let c = clinic(&app, "RaceMove").await;
    let t = c.therapist.clone();
    let mut sessions = Vec::new();
    for i in 0..20 {
        let client = app
            .client(&c.org.id, Some(&t.id), &format!("Mover {i}"))
            .await;
        let day = format!("2030-06-{:02}", i + 1);
        let (start, end) = (format!("{day}T08:00:00Z"), format!("{day}T09:00:00Z"));
        sessions.push(book(&app, &t, &t, &client, &start, &end).await);
    }
    let app = Arc::new(app);
    // 20 reschedule holds of 20 sessions into one slot: one wins.
    let mut tasks = Vec::new();
    for s in sessions.clone() {
        let (app, t) = (app.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            hold(
                &app,
                &t,
                move_body(&s, "2030-07-01T10:00:00Z", "2030-07-01T11:00:00Z"),
            )
            .await
        }));
    }
    let mut keys = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match r.status.as_u16() {
            201 => keys.push(r.json["hold_key"].as_str().unwrap().to_string()),
            409 => {
                r.expect_err(409, "slot_conflict");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!((keys.len(), conflicts), (1, 19));
    confirm(&app, &t, &keys[0]).await.expect(201);

    // 20 reschedule holds written directly (the API never lets them overlap), all
    // confirmed at once into 14:00-15:00: exactly one moves, the rest are released.
    let now = Utc::now().timestamp_millis();
    let slot = utc("2030-07-02T14:00:00Z").timestamp_millis();
    let mut keys = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        let (hold_id, key) = (
            format!("mv-{i}-{}", uuid::Uuid::new_v4()),
            format!("mk-{i}-{}", uuid::Uuid::new_v4()),
        );
        sqlx::query(
            "INSERT INTO schedule_holds (id, hold_key, organization_id, therapist_id, client_id, time_zone, status, created_by, created_at, expires_at, session_id) \
             VALUES ($1, $2, $3, $4, $5, 'UTC', 'active', $4, $6, $7, $8)",
        )
        .bind(&hold_id)
        .bind(&key)
        .bind(&c.org.id)
        .bind(&t.id)
        .bind(s["client_id"].as_str().unwrap())
        .bind(now)
        .bind(now + 600_000)
        .bind(sid(s))
        .execute(app.store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO schedule_hold_occurrences (id, hold_id, position, start_ms, end_ms) VALUES ($1, $2, 0, $3, $4)",
        )
        .bind(format!("occ-{hold_id}"))
        .bind(&hold_id)
        .bind(slot)
        .bind(slot + 3_600_000)
        .execute(app.store.pool())
        .await
        .unwrap();
        keys.push(key);
    }
    assert_eq!(confirm_race(&app, &t, keys).await, (1, 19));
    let (in_slot,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM scheduled_sessions WHERE therapist_id = $1 AND start_ms = $2 AND status = 'scheduled'",
    )
    .bind(&t.id)
    .bind(slot)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(in_slot, 1);
    let released = app
        .count(
            "schedule_holds",
            "hold_key LIKE 'mk-%' AND status = 'released' AND therapist_id = $1",
            &t.id,
        )
        .await;
    assert_eq!(released, 19, "failed confirmations release their holds");
});

both_dbs!(
    reschedule_queues_its_event_and_closes_the_room,
    |app| async move {
        let c = clinic(&app, "MoveHook").await;
        let (t, cl) = (&c.therapist, &c.client);
        set_hook(&app, &c.org, "https://example.com/hook").await;
        let (start, end) = (iso(minutes_from_now(5)), iso(minutes_from_now(55)));
        let s = book(&app, t, t, cl, &start, &end).await;
        let id = sid(&s);
        let room = app
            .get(
                &format!("/api/schedule/sessions/{id}/video"),
                Some(&t.token),
            )
            .await;
        let room_id = room.expect(200)["session_id"].as_str().unwrap().to_string();
        let (to_start, to_end) = (
            iso(minutes_from_now(24 * 60)),
            iso(minutes_from_now(24 * 60 + 50)),
        );
        let mut body = move_body(&s, &to_start, "");
        body.as_object_mut().unwrap().remove("end");
        let h = hold(&app, t, body).await;
        let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
        let moved = confirm(&app, t, &key).await;
        let moved = moved.expect(201)["sessions"][0].clone();
        assert_eq!(utc(moved["end"].as_str().unwrap()), utc(&to_end));
        assert_eq!(
            moved["video_session_id"],
            Value::Null,
            "a new room opens for the new time"
        );
        let (ended,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM instant_sessions WHERE id = $1 AND is_active = 0")
                .bind(&room_id)
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        assert_eq!(ended, 1, "the old room is closed");

        let all = payloads(&app, &c.org.id).await;
        let kinds = types(&all);
        assert!(
            kinds.contains(&"booking.rescheduled".to_string()),
            "{kinds:?}"
        );
        let event = all
            .iter()
            .find(|p| p["type"] == "booking.rescheduled")
            .unwrap();
        let data = &event["data"];
        assert_eq!(data["scheduled_session_id"], json!(id));
        assert_eq!(utc(data["start"].as_str().unwrap()), utc(&to_start));
        assert_eq!(utc(data["previous_start"].as_str().unwrap()), utc(&start));
        assert_eq!(utc(data["previous_end"].as_str().unwrap()), utc(&end));
        let text = event.to_string();
        assert!(
            !text.contains("Client MoveHook") && !text.contains("Dr MoveHook"),
            "no names: {text}"
        );
        let closed = all.iter().find(|p| p["type"] == "session.ended").unwrap();
        assert_eq!(closed["data"]["reason"], "booking_rescheduled");
    }
);
