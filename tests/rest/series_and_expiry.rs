//! Cancelling a series from one occurrence on, a failed confirmation that releases
//! its hold, recorded hold expiry (on touch and by the sweeper), and service codes.

use axum::Extension;
use chrono::Utc;
use theraroom::schedule::service_codes::ServiceCodes;

use super::scheduling::{book, clinic, confirm, hold, hold_body, sid};
use super::*;

/// Books a weekly series of `count` in UTC starting `start` (one hour each).
async fn series(app: &TestApp, t: &Person, c: &Person, start: &str, count: u32) -> Vec<Value> {
    let end = (chrono::DateTime::parse_from_rfc3339(start).unwrap() + chrono::Duration::hours(1))
        .to_rfc3339();
    let h = hold(
        app,
        t,
        json!({
            "therapist_id": t.id, "client_id": c.id, "start": start, "end": end,
            "recurrence": {"frequency": "weekly", "count": count},
        }),
    )
    .await;
    let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
    let done = confirm(app, t, &key).await;
    done.expect(201)["sessions"].as_array().unwrap().clone()
}

async fn hold_status(app: &TestApp, key: &str) -> String {
    let (status,): (String,) =
        sqlx::query_as("SELECT status FROM schedule_holds WHERE hold_key = $1")
            .bind(key)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    status
}

async fn hold_id(app: &TestApp, key: &str) -> String {
    let (id,): (String,) = sqlx::query_as("SELECT id FROM schedule_holds WHERE hold_key = $1")
        .bind(key)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    id
}

both_dbs!(series_cancel_from_an_occurrence_on, |app| async move {
    let c = clinic(&app, "SeriesCancel").await;
    let (t, cl) = (&c.therapist, &c.client);
    let list = series(&app, t, cl, "2030-09-02T10:00:00Z", 5).await;
    let path = format!("/api/schedule/sessions/{}/cancel", sid(&list[2]));
    app.post(&path, Some(&t.token), Some(json!({"scope": "later"})))
        .await
        .expect_err(400, "invalid_scope");
    let r = app
        .post(
            &path,
            Some(&t.token),
            Some(json!({"scope": "following", "reason": "moving away"})),
        )
        .await;
    let r = r.expect(200).clone();
    assert_eq!(r["id"], list[2]["id"]);
    assert_eq!(r["status"], "cancelled");
    let ids: Vec<String> = list[2..].iter().map(sid).collect();
    assert_eq!(r["cancelled_session_ids"], json!(ids));
    for (i, s) in list.iter().enumerate() {
        let got = app
            .get(
                &format!("/api/schedule/sessions/{}", sid(s)),
                Some(&cl.token),
            )
            .await;
        let want = if i < 2 { "scheduled" } else { "cancelled" };
        assert_eq!(got.expect(200)["status"], want, "occurrence {i}");
        let actions = app.audit_actions("scheduled_session", &sid(s)).await;
        assert_eq!(actions.len(), if i < 2 { 1 } else { 2 }, "{actions:?}");
    }
    // One notification per side, not one per occurrence.
    for who in [&t.id, &cl.id] {
        let n = app
            .count(
                "notifications",
                "user_id = $1 AND kind = 'booking_cancelled'",
                who,
            )
            .await;
        assert_eq!(n, 1);
    }
    // The freed slots are bookable again; the earlier ones are not.
    hold(
        &app,
        t,
        hold_body(t, cl, "2030-09-16T10:00:00Z", "2030-09-16T11:00:00Z"),
    )
    .await
    .expect(201);
    hold(
        &app,
        t,
        hold_body(t, cl, "2030-09-09T10:00:00Z", "2030-09-09T11:00:00Z"),
    )
    .await
    .expect_err(409, "slot_conflict");
    // Again from the same occurrence: it is cancelled already.
    app.post(&path, Some(&t.token), Some(json!({"scope": "following"})))
        .await
        .expect_err(409, "session_already_cancelled");
    // Without scope a single occurrence is cancelled.
    let one = app
        .post(
            &format!("/api/schedule/sessions/{}/cancel", sid(&list[0])),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(
        one.expect(200)["cancelled_session_ids"],
        json!([sid(&list[0])])
    );
    let second = app
        .get(
            &format!("/api/schedule/sessions/{}", sid(&list[1])),
            Some(&t.token),
        )
        .await;
    assert_eq!(second.expect(200)["status"], "scheduled");
});

both_dbs!(failed_confirm_releases_the_hold, |app| async move {
    let c = clinic(&app, "FailConfirm").await;
    let (t, cl) = (&c.therapist, &c.client);
    let other = app.client(&c.org.id, Some(&t.id), "Squatter").await;
    let h = hold(
        &app,
        t,
        json!({
            "therapist_id": t.id, "client_id": cl.id,
            "occurrences": [
                {"start": "2030-05-06T10:00:00Z", "end": "2030-05-06T11:00:00Z"},
                {"start": "2030-05-13T10:00:00Z", "end": "2030-05-13T11:00:00Z"},
            ],
        }),
    )
    .await;
    let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
    // A session appears in the second slot behind the hold's back (e.g. written by
    // another system); the confirm finds the conflict.
    let now = Utc::now().timestamp_millis();
    let start = chrono::DateTime::parse_from_rfc3339("2030-05-13T10:30:00Z")
        .unwrap()
        .timestamp_millis();
    sqlx::query(
        "INSERT INTO scheduled_sessions (id, organization_id, therapist_id, client_id, start_ms, end_ms, time_zone, status, attendance, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'UTC', 'scheduled', 'unknown', $3, $7, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&c.org.id)
    .bind(&t.id)
    .bind(&other.id)
    .bind(start)
    .bind(start + 3_600_000)
    .bind(now)
    .execute(app.store.pool())
    .await
    .unwrap();
    let r = confirm(&app, t, &key).await;
    let body = r.expect_err(409, "slot_conflict").clone();
    assert!(!body["suggestions"].as_array().unwrap().is_empty());
    assert_eq!(hold_status(&app, &key).await, "released");
    assert_eq!(
        app.audit_actions("schedule_hold", &hold_id(&app, &key).await)
            .await,
        vec!["schedule.hold.create", "schedule.hold.release"]
    );
    assert_eq!(
        app.count("scheduled_sessions", "client_id = $1", &cl.id)
            .await,
        0
    );
    // The first slot is bookable right away.
    let again = hold(
        &app,
        t,
        hold_body(t, cl, "2030-05-06T10:00:00Z", "2030-05-06T11:00:00Z"),
    )
    .await;
    let again = again.expect(201)["hold_key"].as_str().unwrap().to_string();
    confirm(&app, t, &again).await.expect(201);
    // The released hold stays released.
    confirm(&app, t, &key)
        .await
        .expect_err(409, "hold_released");
});

both_dbs!(hold_expiry_is_recorded, |app| async move {
    let c = clinic(&app, "Expiry").await;
    let (t, cl) = (&c.therapist, &c.client);
    let mut keys = Vec::new();
    for day in ["2030-08-05", "2030-08-06", "2030-08-07", "2030-08-08"] {
        let (s, e) = (format!("{day}T10:00:00Z"), format!("{day}T11:00:00Z"));
        let h = hold(&app, t, hold_body(t, cl, &s, &e)).await;
        keys.push(h.expect(201)["hold_key"].as_str().unwrap().to_string());
    }
    let past = Utc::now().timestamp_millis() - 1000;
    for key in &keys {
        sqlx::query("UPDATE schedule_holds SET expires_at = $1 WHERE hold_key = $2")
            .bind(past)
            .bind(key)
            .execute(app.store.pool())
            .await
            .unwrap();
    }
    // Found by a confirmation.
    confirm(&app, t, &keys[0])
        .await
        .expect_err(409, "hold_expired");
    assert_eq!(hold_status(&app, &keys[0]).await, "expired");
    // Found by a release: shown as expired, nothing to release.
    let rel = app
        .delete(&format!("/api/schedule/holds/{}", keys[1]), Some(&t.token))
        .await;
    assert_eq!(rel.expect(200)["status"], "expired");
    // Found by a read.
    let read = app
        .get(&format!("/api/schedule/holds/{}", keys[3]), Some(&t.token))
        .await;
    assert_eq!(read.expect(200)["status"], "expired");
    assert_eq!(hold_status(&app, &keys[3]).await, "expired");
    app.get(&format!("/api/schedule/holds/{}", keys[3]), Some(&cl.token))
        .await
        .expect_err(403, "forbidden");
    // Found by the sweeper.
    let swept = theraroom::schedule::expiry::sweep(&app.store, Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert_eq!(swept, 1);
    for key in &keys {
        assert_eq!(hold_status(&app, key).await, "expired");
        let id = hold_id(&app, key).await;
        assert_eq!(
            app.audit_actions("schedule_hold", &id).await,
            vec!["schedule.hold.create", "schedule.hold.expire"],
            "exactly one expiry entry"
        );
    }
    let by_sweeper = app
        .store
        .audit_for_target("schedule_hold", &hold_id(&app, &keys[2]).await)
        .await
        .unwrap();
    assert_eq!(by_sweeper[1].actor_role, "system");
    let by_confirm = app
        .store
        .audit_for_target("schedule_hold", &hold_id(&app, &keys[0]).await)
        .await
        .unwrap();
    assert_eq!(by_confirm[1].actor_id, t.id);
    // A second sweep has nothing left to do.
    let swept = theraroom::schedule::expiry::sweep(&app.store, Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert_eq!(swept, 0);
});

both_dbs!(service_codes_are_checked, |app| async move {
    let c = clinic(&app, "Codes").await;
    let (t, cl) = (&c.therapist, &c.client);
    let mut b = hold_body(t, cl, "2030-11-11T10:00:00Z", "2030-11-11T11:00:00Z");
    b["service_code"] = json!("99999");
    hold(&app, t, b.clone())
        .await
        .expect_err(400, "invalid_service_code");
    b["service_code"] = json!("90837");
    let h = hold(&app, t, b).await;
    let h = h.expect(201).clone();
    assert_eq!(h["service_code"], "90837");
    let done = confirm(&app, t, h["hold_key"].as_str().unwrap()).await;
    let s = done.expect(201)["sessions"][0].clone();
    assert_eq!(s["service_code"], "90837");
    let path = format!("/api/schedule/sessions/{}", sid(&s));
    assert_eq!(
        app.get(&path, Some(&cl.token)).await.expect(200)["service_code"],
        "90837"
    );

    // The confirmation may give the code instead.
    let h = hold(
        &app,
        t,
        hold_body(t, cl, "2030-11-12T10:00:00Z", "2030-11-12T11:00:00Z"),
    )
    .await;
    let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
    let confirm_path = format!("/api/schedule/holds/{key}/confirm");
    app.post(
        &confirm_path,
        Some(&t.token),
        Some(json!({"service_code": "nope"})),
    )
    .await
    .expect_err(400, "invalid_service_code");
    let done = app
        .post(
            &confirm_path,
            Some(&t.token),
            Some(json!({"service_code": "90834"})),
        )
        .await;
    assert_eq!(done.expect(201)["sessions"][0]["service_code"], "90834");

    // Set, refuse, clear on the booked session; clients cannot; audited.
    let code_path = format!("{path}/service-code");
    let r = app
        .put(
            &code_path,
            Some(&t.token),
            json!({"service_code": " 90791 "}),
        )
        .await;
    assert_eq!(r.expect(200)["service_code"], "90791");
    app.put(&code_path, Some(&t.token), json!({"service_code": "bogus"}))
        .await
        .expect_err(400, "invalid_service_code");
    app.put(
        &code_path,
        Some(&cl.token),
        json!({"service_code": "90837"}),
    )
    .await
    .expect_err(403, "forbidden");
    let r = app
        .put(&code_path, Some(&t.token), json!({"service_code": null}))
        .await;
    assert_eq!(r.expect(200)["service_code"], Value::Null);
    let actions = app.audit_actions("scheduled_session", &sid(&s)).await;
    assert_eq!(
        actions,
        vec![
            "schedule.session.book",
            "schedule.session.service_code",
            "schedule.session.service_code"
        ]
    );
    let list = app
        .get("/api/schedule/service-codes", Some(&cl.token))
        .await;
    let list = list.expect(200)["service_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert!(list.contains(&json!("90837")) && list.contains(&json!("90853")));

    // An operator's own list replaces the default one.
    let mut custom = app;
    custom.router = custom
        .router
        .clone()
        .layer(Extension(ServiceCodes::new(["G0410"])));
    custom
        .put(&code_path, Some(&t.token), json!({"service_code": "90837"}))
        .await
        .expect_err(400, "invalid_service_code");
    let r = custom
        .put(&code_path, Some(&t.token), json!({"service_code": "g0410"}))
        .await;
    assert_eq!(r.expect(200)["service_code"], "G0410");
    let other = book(
        &custom,
        t,
        t,
        cl,
        "2030-11-13T10:00:00Z",
        "2030-11-13T11:00:00Z",
    )
    .await;
    assert_eq!(other["service_code"], Value::Null);
});
