//! 1:1 scheduling. Holds (idempotent, all-or-nothing series, expiry,
//! release), confirmation, no double booking under concurrency, half-open intervals,
//! DST-stable weekly series, role and tenant rules, cancellation, attendance, notes,
//! the unified schedule, and the video room of a booked session.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use chrono::{DateTime, Duration, Timelike, Utc};

use super::*;

/// A clinic: organization (with its `organization` admin), therapist, client.
pub(crate) struct Clinic {
    pub(crate) org: OrgFx,
    pub(crate) therapist: Person,
    pub(crate) client: Person,
}

pub(crate) async fn clinic(app: &TestApp, name: &str) -> Clinic {
    let org = app.org(name, false).await;
    let therapist = app.therapist(&org.id, &format!("Dr {name}")).await;
    let client = app
        .client(&org.id, Some(&therapist.id), &format!("Client {name}"))
        .await;
    Clinic {
        org,
        therapist,
        client,
    }
}

pub(crate) fn utc(rfc: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whole minutes from now, rounded down to the minute.
pub(crate) fn minutes_from_now(m: i64) -> DateTime<Utc> {
    let now = Utc::now();
    now.with_second(0).unwrap().with_nanosecond(0).unwrap() + Duration::minutes(m)
}

pub(crate) fn hold_body(t: &Person, c: &Person, start: &str, end: &str) -> Value {
    json!({"therapist_id": t.id, "client_id": c.id, "start": start, "end": end})
}

pub(crate) async fn hold(app: &TestApp, who: &Person, body: Value) -> common::Resp {
    app.post("/api/schedule/holds", Some(&who.token), Some(body))
        .await
}

pub(crate) async fn hold_with_key(
    app: &TestApp,
    who: &Person,
    key: &str,
    body: &Value,
) -> common::Resp {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/schedule/holds")
        .header(header::AUTHORIZATION, format!("Bearer {}", who.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", key)
        .body(Body::from(body.to_string()))
        .unwrap();
    app.send(req).await
}

pub(crate) async fn confirm(app: &TestApp, who: &Person, key: &str) -> common::Resp {
    app.post(
        &format!("/api/schedule/holds/{key}/confirm"),
        Some(&who.token),
        None,
    )
    .await
}

/// Holds and confirms one slot as `who`; returns the session JSON.
pub(crate) async fn book(
    app: &TestApp,
    who: &Person,
    t: &Person,
    c: &Person,
    start: &str,
    end: &str,
) -> Value {
    let h = hold(app, who, hold_body(t, c, start, end)).await;
    let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
    let done = confirm(app, who, &key).await;
    let sessions = done.expect(201)["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1);
    sessions[0].clone()
}

pub(crate) fn sid(session: &Value) -> String {
    session["id"].as_str().unwrap().to_string()
}

pub(crate) async fn count_sessions(app: &TestApp, therapist_id: &str) -> i64 {
    app.count(
        "scheduled_sessions",
        "therapist_id = $1 AND status <> 'cancelled'",
        therapist_id,
    )
    .await
}

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

/// Checks that every session starts at 10:00 in New York and returns the UTC hours.
fn ny_local_and_utc_hours(sessions: &[Value]) -> Vec<u32> {
    let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
    sessions
        .iter()
        .map(|s| {
            let start = utc(s["start"].as_str().unwrap());
            let local = start.with_timezone(&tz);
            assert_eq!((local.hour(), local.minute()), (10, 0), "10:00 local: {s}");
            assert_eq!(s["time_zone"], "America/New_York");
            start.hour()
        })
        .collect()
}

both_dbs!(weekly_series_keep_local_time_across_dst, |app| async move {
    let c = clinic(&app, "Series").await;
    // November: EDT (UTC-4) to EST (UTC-5) on 2030-11-03.
    let h = hold(
        &app,
        &c.therapist,
        json!({
            "therapist_id": c.therapist.id, "client_id": c.client.id,
            "start": "2030-10-21T10:00:00-04:00", "end": "2030-10-21T10:50:00-04:00",
            "time_zone": "America/New_York",
            "recurrence": {"frequency": "weekly", "count": 4},
        }),
    )
    .await;
    let h = h.expect(201).clone();
    assert_eq!(h["occurrences"].as_array().unwrap().len(), 4);
    let done = confirm(&app, &c.therapist, h["hold_key"].as_str().unwrap()).await;
    let sessions = done.expect(201)["sessions"].as_array().unwrap().clone();
    assert_eq!(ny_local_and_utc_hours(&sessions), vec![14, 14, 15, 15]);
    let series = sessions[0]["series_id"].clone();
    assert!(series.is_string());
    assert!(sessions.iter().all(|s| s["series_id"] == series));
    for s in &sessions {
        let len = utc(s["end"].as_str().unwrap()) - utc(s["start"].as_str().unwrap());
        assert_eq!(len.num_minutes(), 50);
    }
    assert_eq!(
        app.count(
            "notifications",
            "user_id = $1 AND kind = 'booking_confirmed'",
            &c.client.id
        )
        .await,
        1,
        "one notification per booking, not per occurrence"
    );

    // March: EST to EDT on 2031-03-09; every 2 weeks until a date (local end of day).
    let h = hold(
        &app,
        &c.therapist,
        json!({
            "therapist_id": c.therapist.id, "client_id": c.client.id,
            "start": "2031-02-24T15:00:00Z", "end": "2031-02-24T16:00:00Z",
            "time_zone": "America/New_York",
            "recurrence": {"frequency": "weekly", "interval": 2, "until": "2031-03-24"},
        }),
    )
    .await;
    let h = h.expect(201).clone();
    let done = confirm(&app, &c.therapist, h["hold_key"].as_str().unwrap()).await;
    let sessions = done.expect(201)["sessions"].as_array().unwrap().clone();
    assert_eq!(ny_local_and_utc_hours(&sessions), vec![15, 14, 14]);
    assert_eq!(sessions[2]["start"], "2031-03-24T14:00:00.000Z");

    // The same series in UTC would drift to 09:00/11:00 local; in the client's zone it
    // does not: the unified schedule shows them at their UTC instants, sorted.
    let sched = app
        .get(
            "/api/schedule?start=2030-10-01T00:00:00Z&end=2031-04-01T00:00:00Z",
            Some(&c.client.token),
        )
        .await;
    let events = sched.expect(200)["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 7);
    assert!(events
        .windows(2)
        .all(|w| w[0]["start"].as_str() < w[1]["start"].as_str()));
    assert_eq!(events[0]["event_type"], "one_on_one");
    assert_eq!(events[0]["title"], "Session with Dr Series");
});

both_dbs!(series_are_all_or_nothing, |app| async move {
    let c = clinic(&app, "AllOrNothing").await;
    let other = app
        .client(&c.org.id, Some(&c.therapist.id), "Busy Client")
        .await;
    // Week 3 of the series is already taken.
    book(
        &app,
        &c.therapist,
        &c.therapist,
        &other,
        "2030-06-17T10:30:00Z",
        "2030-06-17T11:30:00Z",
    )
    .await;
    let r = hold(
        &app,
        &c.therapist,
        json!({
            "therapist_id": c.therapist.id, "client_id": c.client.id,
            "start": "2030-06-03T10:00:00Z", "end": "2030-06-03T11:00:00Z",
            "recurrence": {"frequency": "weekly", "count": 4},
        }),
    )
    .await;
    let body = r.expect_err(409, "slot_conflict");
    assert_eq!(body["conflicts"][0]["start"], "2030-06-17T10:30:00.000Z");
    assert_eq!(
        app.count("schedule_holds", "client_id = $1", &c.client.id)
            .await,
        0
    );
    // Explicit occurrences: same rule.
    let r = hold(
        &app,
        &c.therapist,
        json!({
            "therapist_id": c.therapist.id, "client_id": c.client.id,
            "occurrences": [
                {"start": "2030-06-10T10:00:00Z", "end": "2030-06-10T11:00:00Z"},
                {"start": "2030-06-17T11:00:00Z", "end": "2030-06-17T12:00:00Z"},
                {"start": "2030-06-17T11:29:00Z", "end": "2030-06-17T11:31:00Z"},
            ],
        }),
    )
    .await;
    r.expect_err(400, "overlapping_occurrences");
    let r = hold(
        &app,
        &c.therapist,
        json!({
            "therapist_id": c.therapist.id, "client_id": c.client.id,
            "occurrences": [
                {"start": "2030-06-10T10:00:00Z", "end": "2030-06-10T11:00:00Z"},
                {"start": "2030-06-17T11:00:00Z", "end": "2030-06-17T12:00:00Z"},
            ],
        }),
    )
    .await;
    r.expect_err(409, "slot_conflict");
    let r = hold(
        &app,
        &c.therapist,
        json!({
            "therapist_id": c.therapist.id, "client_id": c.client.id,
            "occurrences": [
                {"start_time": "2030-06-10T10:00:00Z", "end_time": "2030-06-10T11:00:00Z"},
                {"start_time": "2030-06-17T11:30:00Z", "end_time": "2030-06-17T12:30:00Z"},
            ],
        }),
    )
    .await;
    assert_eq!(r.expect(201)["occurrences"].as_array().unwrap().len(), 2);
});

both_dbs!(hold_validation_codes, |app| async move {
    let c = clinic(&app, "Validation").await;
    let base = |extra: Value| {
        let mut b = hold_body(
            &c.therapist,
            &c.client,
            "2030-07-01T10:00:00Z",
            "2030-07-01T11:00:00Z",
        );
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases = [
        (json!({"end": "2030-07-01T10:00:00Z"}), "invalid_time_range"),
        (json!({"end": "2030-07-01T09:00:00Z"}), "invalid_time_range"),
        (json!({"end": "2030-07-02T10:00:00Z"}), "invalid_time_range"),
        (json!({"start": null}), "invalid_time_range"),
        (json!({"start": "tomorrow"}), "invalid_timestamp"),
        (json!({"time_zone": "Mars/Olympus"}), "invalid_time_zone"),
        (
            json!({"recurrence": {"frequency": "monthly", "count": 2}}),
            "invalid_recurrence",
        ),
        (
            json!({"recurrence": {"frequency": "weekly"}}),
            "invalid_recurrence",
        ),
        (
            json!({"recurrence": {"frequency": "weekly", "count": 2, "until": "2030-08-01"}}),
            "invalid_recurrence",
        ),
        (
            json!({"recurrence": {"frequency": "weekly", "count": 0}}),
            "invalid_recurrence",
        ),
        (
            json!({"recurrence": {"frequency": "weekly", "count": 2, "interval": 0}}),
            "invalid_recurrence",
        ),
        (
            json!({"recurrence": {"frequency": "weekly", "until": "2030-06-01"}}),
            "invalid_recurrence",
        ),
        (
            json!({"recurrence": {"frequency": "weekly", "until": "someday"}}),
            "invalid_recurrence",
        ),
        (
            json!({"recurrence": {"frequency": "weekly", "count": 53}}),
            "too_many_occurrences",
        ),
        (
            json!({"recurrence": {"frequency": "weekly", "until": "2032-01-01"}}),
            "too_many_occurrences",
        ),
        (json!({"occurrences": []}), "invalid_time_range"),
        (json!({"hold_seconds": 10}), "invalid_hold_seconds"),
        (
            json!({"start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"}),
            "start_in_past",
        ),
    ];
    for (extra, code) in cases {
        let resp = hold(&app, &c.therapist, base(extra.clone())).await;
        assert_eq!(
            resp.json["error"]["code"].as_str(),
            Some(code),
            "{extra} -> {}",
            resp.text
        );
        assert_eq!(resp.status.as_u16(), 400, "{extra}");
    }
    let many: Vec<Value> = (0..53)
        .map(|i| {
            let s = utc("2030-07-01T10:00:00Z") + Duration::weeks(i);
            json!({"start": iso(s), "end": iso(s + Duration::hours(1))})
        })
        .collect();
    hold(&app, &c.therapist, base(json!({"occurrences": many})))
        .await
        .expect_err(400, "too_many_occurrences");
    // 52 is the cap, and allowed.
    let r = hold(
        &app,
        &c.therapist,
        base(json!({"recurrence": {"frequency": "weekly", "count": 52}})),
    )
    .await;
    assert_eq!(r.expect(201)["occurrences"].as_array().unwrap().len(), 52);
    app.post_raw(
        "/api/schedule/holds",
        Some(&c.therapist.token),
        "application/json",
        "{",
    )
    .await
    .expect_err(400, "invalid_json");
    assert_eq!(
        app.count("schedule_holds", "client_id = $1", &c.client.id)
            .await,
        1
    );
});

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

// 20 concurrent hold requests for one therapist slot (20 different clients): exactly
// one hold, 19 clean 409s.
both_dbs!(concurrent_holds_for_one_slot, |app| async move {
    let c = clinic(&app, "RaceHold").await;
    let mut clients = Vec::new();
    for i in 0..20 {
        clients.push(
            app.client(&c.org.id, Some(&c.therapist.id), &format!("Racer {i}"))
                .await,
        );
    }
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for client in clients {
        let (app, t) = (app.clone(), c.therapist.clone());
        tasks.push(tokio::spawn(async move {
            hold(
                &app,
                &t,
                hold_body(&t, &client, "2030-10-07T10:00:00Z", "2030-10-07T11:00:00Z"),
            )
            .await
        }));
    }
    let (mut ok, mut conflict) = (0, 0);
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            201 => ok += 1,
            409 => {
                r.expect_err(409, "slot_conflict");
                conflict += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!((ok, conflict), (1, 19));
    assert_eq!(
        app.count(
            "schedule_holds",
            "therapist_id = $1 AND status = 'active'",
            &c.therapist.id
        )
        .await,
        1
    );
});

// 20 concurrent confirmations for one therapist slot → exactly one session and 19
// clean 409s. Overlapping holds cannot be created through the API (see the test
// above), so the 20 holds are written directly into the database.
both_dbs!(concurrent_confirmations_for_one_slot, |app| async move {
    let c = clinic(&app, "RaceConfirm").await;
    let now = Utc::now().timestamp_millis();
    let start = utc("2030-10-14T10:00:00Z").timestamp_millis();
    let mut keys = Vec::new();
    for i in 0..20 {
        let client = app
            .client(&c.org.id, Some(&c.therapist.id), &format!("Confirmer {i}"))
            .await;
        let (hold_id, key) = (
            format!("hold-{i}-{}", uuid::Uuid::new_v4()),
            format!("key-{i}-{}", uuid::Uuid::new_v4()),
        );
        sqlx::query(
            "INSERT INTO schedule_holds (id, hold_key, organization_id, therapist_id, client_id, time_zone, status, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, 'UTC', 'active', $4, $6, $7)",
        )
        .bind(&hold_id)
        .bind(&key)
        .bind(&c.org.id)
        .bind(&c.therapist.id)
        .bind(&client.id)
        .bind(now)
        .bind(now + 600_000)
        .execute(app.store.pool())
        .await
        .unwrap();
        // Slightly different slots, all overlapping 10:00-11:00.
        let offset = i64::from(i % 4) * 60_000;
        sqlx::query(
            "INSERT INTO schedule_hold_occurrences (id, hold_id, position, start_ms, end_ms) VALUES ($1, $2, 0, $3, $4)",
        )
        .bind(format!("occ-{hold_id}"))
        .bind(&hold_id)
        .bind(start + offset)
        .bind(start + offset + 3_600_000)
        .execute(app.store.pool())
        .await
        .unwrap();
        keys.push(key);
    }
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for key in keys {
        let (app, t) = (app.clone(), c.therapist.clone());
        tasks.push(tokio::spawn(async move { confirm(&app, &t, &key).await }));
    }
    let (mut ok, mut conflict) = (0, 0);
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            201 => ok += 1,
            409 => {
                r.expect_err(409, "slot_conflict");
                conflict += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!((ok, conflict), (1, 19));
    assert_eq!(count_sessions(&app, &c.therapist.id).await, 1);
    // The refused holds stay unconfirmed (their transactions rolled back).
    assert_eq!(
        app.count(
            "schedule_holds",
            "therapist_id = $1 AND status = 'confirmed'",
            &c.therapist.id
        )
        .await,
        1
    );
});

// On PostgreSQL the database itself refuses overlapping sessions (exclusion
// constraint), whatever the application does; a cancelled session frees its range.
both_dbs!(database_refuses_overlaps, |app| async move {
    if app.db != common::Db::Postgres {
        return;
    }
    let c = clinic(&app, "Constraint").await;
    let c2 = app.client(&c.org.id, Some(&c.therapist.id), "Other").await;
    let insert = |id: &'static str, client: String, start: i64, end: i64| {
        let (store, org, t) = (app.store.clone(), c.org.id.clone(), c.therapist.id.clone());
        async move {
            sqlx::query(
                "INSERT INTO scheduled_sessions (id, organization_id, therapist_id, client_id, start_ms, end_ms, time_zone, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'UTC', $3, 0, 0)",
            )
            .bind(id)
            .bind(org)
            .bind(t)
            .bind(client)
            .bind(start)
            .bind(end)
            .execute(store.pool())
            .await
        }
    };
    insert("a", c.client.id.clone(), 1_000, 2_000)
        .await
        .unwrap();
    insert("b", c2.id.clone(), 2_000, 3_000)
        .await
        .expect("half-open: adjacent is fine");
    let err = insert("c", c2.id.clone(), 1_500, 2_500).await.unwrap_err();
    assert!(theraroom::schedule::is_exclusion_violation(&err), "{err}");
    sqlx::query("UPDATE scheduled_sessions SET status = 'cancelled' WHERE id = 'a'")
        .execute(app.store.pool())
        .await
        .unwrap();
    insert("d", c2.id.clone(), 1_000, 1_900)
        .await
        .expect("cancelled sessions do not block");
});

both_dbs!(notes_and_their_audit_commit_together, |app| async move {
    use super::audit::{allow_audit, refuse_audit};
    let c = clinic(&app, "Atomic Notes").await;
    let (start, end) = (
        iso(minutes_from_now(3 * 24 * 60)),
        iso(minutes_from_now(3 * 24 * 60 + 60)),
    );
    let s = book(&app, &c.therapist, &c.therapist, &c.client, &start, &end).await;
    let id = sid(&s);
    let notes = format!("/api/schedule/sessions/{id}/notes");
    refuse_audit(&app, "schedule.note.create").await;
    app.post(
        &notes,
        Some(&c.therapist.token),
        Some(json!({"body": "First"})),
    )
    .await
    .expect_err(500, "internal");
    assert_eq!(
        app.count("scheduled_session_notes", "session_id = $1", &id)
            .await,
        0
    );
    allow_audit(&app).await;
    let n = app
        .post(
            &notes,
            Some(&c.therapist.token),
            Some(json!({"body": "First"})),
        )
        .await;
    let note_id = n.expect(201)["id"].as_str().unwrap().to_string();
    refuse_audit(&app, "schedule.note.update").await;
    app.put(
        &format!("{notes}/{note_id}"),
        Some(&c.therapist.token),
        json!({"body": "Second"}),
    )
    .await
    .expect_err(500, "internal");
    allow_audit(&app).await;
    let list = app.get(&notes, Some(&c.therapist.token)).await;
    assert_eq!(list.expect(200)["notes"][0]["body"], "First");
});
