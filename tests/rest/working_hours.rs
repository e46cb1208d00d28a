//! Working hours and time off: reading and replacing them, validation, audit, who may
//! manage them, and holds refused outside the hours or in time off (DST included),
//! with retry hints inside the hours.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::*;

/// An organization with a therapist and their client.
pub struct Fx {
    pub org: OrgFx,
    pub therapist: Person,
    pub client: Person,
}

pub async fn fx(app: &TestApp, name: &str) -> Fx {
    let org = app.org(name, false).await;
    let therapist = app.therapist(&org.id, &format!("Dr {name}")).await;
    let client = app
        .client(&org.id, Some(&therapist.id), &format!("Client {name}"))
        .await;
    Fx {
        org,
        therapist,
        client,
    }
}

pub fn hours_path(t: &Person) -> String {
    format!("/api/therapists/{}/working-hours", t.id)
}

pub fn time_off_path(t: &Person) -> String {
    format!("/api/therapists/{}/time-off", t.id)
}

/// Mon–Fri 09:00–12:00 and 13:00–17:00 in `tz`.
pub fn office(tz: &str) -> Value {
    let mut weekly = Vec::new();
    for day in ["monday", "tuesday", "wednesday", "thursday", "friday"] {
        weekly.push(json!({"weekday": day, "start": "09:00", "end": "12:00"}));
        weekly.push(json!({"weekday": day, "start": "13:00", "end": "17:00"}));
    }
    json!({"time_zone": tz, "weekly": weekly})
}

pub async fn set_hours(app: &TestApp, who: &Person, t: &Person, body: Value) -> Value {
    app.put(&hours_path(t), Some(&who.token), body)
        .await
        .expect(200)
        .clone()
}

/// Sets `t`'s hours to 10:00–12:00 UTC on the weekday of `day` only (as `t`).
pub async fn set_ten_to_twelve_utc(app: &TestApp, t: &Person, day: chrono::NaiveDate) {
    let weekday = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ][day.weekday().num_days_from_monday() as usize];
    let window = json!({"time_zone": "UTC", "weekly": [{"weekday": weekday,
        "start": "10:00", "end": "12:00"}]});
    set_hours(app, t, t, window).await;
}

pub async fn hold(app: &TestApp, f: &Fx, body: Value) -> common::Resp {
    let mut body = body;
    body["therapist_id"] = json!(f.therapist.id);
    body["client_id"] = json!(f.client.id);
    app.post("/api/schedule/holds", Some(&f.therapist.token), Some(body))
        .await
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// True when the slot lies inside Mon–Fri 09–12 / 13–17 in `tz`.
fn inside_office(slot: &Value, tz: Tz) -> bool {
    let s = utc(slot["start"].as_str().unwrap()).with_timezone(&tz);
    let e = utc(slot["end"].as_str().unwrap()).with_timezone(&tz);
    let minutes = |t: &DateTime<Tz>| t.hour() * 60 + t.minute();
    let weekday = !matches!(s.weekday(), Weekday::Sat | Weekday::Sun);
    let (sm, em) = (minutes(&s), minutes(&e));
    weekday
        && s.date_naive() == e.date_naive()
        && ((540..=720).contains(&sm) && em <= 720 || (780..=1020).contains(&sm) && em <= 1020)
}

both_dbs!(
    working_hours_read_replace_validate_audit,
    |app| async move {
        let f = fx(&app, "Hours").await;
        let got = app
            .get(&hours_path(&f.therapist), Some(&f.therapist.token))
            .await;
        let got = got.expect(200);
        assert_eq!(got["configured"], false);
        assert_eq!(got["weekly"], json!([]));

        let mut body = office("Europe/Berlin");
        body["extra_hours"] = json!([{"date": "2030-01-12", "start": "10:00", "end": "12:00"}]);
        let put = set_hours(&app, &f.therapist, &f.therapist, body).await;
        assert_eq!(put["configured"], true);
        assert_eq!(put["time_zone"], "Europe/Berlin");
        assert_eq!(put["weekly"].as_array().unwrap().len(), 10);
        assert_eq!(
            put["weekly"][0],
            json!({"weekday": "monday", "start": "09:00", "end": "12:00"})
        );
        assert_eq!(
            put["extra_hours"],
            json!([{"date": "2030-01-12", "start": "10:00", "end": "12:00"}])
        );
        let again = app
            .get(&hours_path(&f.therapist), Some(&f.org.admin.token))
            .await;
        assert_eq!(again.expect(200)["weekly"], put["weekly"]);
        // The extra Saturday hours are bookable (10:00 Berlin), the rest of the day not.
        hold(
            &app,
            &f,
            json!({"start": "2030-01-12T09:00:00Z", "end": "2030-01-12T09:50:00Z"}),
        )
        .await
        .expect(201);
        hold(
            &app,
            &f,
            json!({"start": "2030-01-12T11:30:00Z", "end": "2030-01-12T12:20:00Z"}),
        )
        .await
        .expect_err(409, "outside_working_hours");

        let bad = |weekly: Value| json!({"time_zone": "Europe/Berlin", "weekly": weekly});
        let one = |d: &str, s: &str, e: &str| json!([{"weekday": d, "start": s, "end": e}]);
        let cases = [
            (
                json!({"time_zone": "Mars/Olympus", "weekly": one("monday", "09:00", "10:00")}),
                "invalid_time_zone",
            ),
            (
                json!({"weekly": one("monday", "09:00", "10:00")}),
                "invalid_time_zone",
            ),
            (bad(one("monday", "9:00", "10:00")), "invalid_time_of_day"),
            (bad(one("monday", "09:00", "24:30")), "invalid_time_of_day"),
            (bad(one("funday", "09:00", "10:00")), "invalid_weekday"),
            (bad(one("monday", "10:00", "10:00")), "invalid_interval"),
            (bad(one("monday", "11:00", "10:00")), "invalid_interval"),
            (
                bad(json!([
                    {"weekday": "monday", "start": "09:00", "end": "12:00"},
                    {"weekday": "monday", "start": "11:30", "end": "13:00"}
                ])),
                "overlapping_intervals",
            ),
            (
                json!({"time_zone": "UTC", "extra_hours": [{"date": "2030-02-30", "start": "09:00", "end": "10:00"}]}),
                "invalid_date",
            ),
        ];
        for (body, code) in cases {
            app.put(&hours_path(&f.therapist), Some(&f.therapist.token), body)
                .await
                .expect_err(400, code);
        }
        // Refused bodies changed nothing.
        let kept = app
            .get(&hours_path(&f.therapist), Some(&f.therapist.token))
            .await;
        assert_eq!(kept.expect(200)["weekly"], put["weekly"]);

        // An administrator of the organization replaces them; empty removes them.
        let cleared = set_hours(&app, &f.org.admin, &f.therapist, json!({"weekly": []})).await;
        assert_eq!(cleared["configured"], false);
        assert_eq!(
            app.audit_actions("therapist", &f.therapist.id).await,
            vec![
                "therapist.working_hours.update",
                "therapist.working_hours.update"
            ]
        );
    }
);

both_dbs!(time_off_add_list_remove, |app| async move {
    let f = fx(&app, "Away").await;
    let path = time_off_path(&f.therapist);
    let body = json!({"start": "2030-07-01T00:00:00Z", "end": "2030-07-15T00:00:00Z", "label": "vacation"});
    let created = app.post(&path, Some(&f.therapist.token), Some(body)).await;
    let created = created.expect(201).clone();
    assert_eq!(created["label"], "vacation");
    assert_eq!(created["start"], "2030-07-01T00:00:00.000Z");
    let id = created["id"].as_str().unwrap().to_string();
    let list = app.get(&path, Some(&f.org.admin.token)).await;
    assert_eq!(list.expect(200)["time_off"][0]["id"], json!(id));
    // Outside the listed window: nothing.
    let none = app
        .get(
            &format!("{path}?from=2030-08-01T00:00:00Z"),
            Some(&f.therapist.token),
        )
        .await;
    assert_eq!(none.expect(200)["time_off"], json!([]));

    for (body, code) in [
        (
            json!({"start": "2030-07-02T00:00:00Z", "end": "2030-07-01T00:00:00Z"}),
            "invalid_time_range",
        ),
        (
            json!({"start": "2030-01-01T00:00:00Z", "end": "2031-06-01T00:00:00Z"}),
            "invalid_time_range",
        ),
        (
            json!({"start": "tomorrow", "end": "2030-07-01T00:00:00Z"}),
            "invalid_timestamp",
        ),
        (
            json!({"start": "2030-07-01T00:00:00Z", "end": "2030-07-02T00:00:00Z", "label": "x".repeat(201)}),
            "invalid_label",
        ),
    ] {
        app.post(&path, Some(&f.therapist.token), Some(body))
            .await
            .expect_err(400, code);
    }

    let removed = app
        .delete(&format!("{path}/{id}"), Some(&f.therapist.token))
        .await;
    assert_eq!(removed.expect(200)["id"], json!(id));
    app.delete(&format!("{path}/{id}"), Some(&f.therapist.token))
        .await
        .expect_err(404, "time_off_not_found");
    assert_eq!(
        app.audit_actions("therapist_time_off", &id).await,
        vec!["therapist.time_off.create", "therapist.time_off.delete"]
    );
    // The label stays out of the audit log.
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_log WHERE target_id = $1 AND (COALESCE(after_state, '') LIKE '%vacation%' OR COALESCE(before_state, '') LIKE '%vacation%')",
    )
    .bind(&id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(n, 0);
});

both_dbs!(who_may_manage_hours, |app| async move {
    let f = fx(&app, "Mine").await;
    let other = fx(&app, "Theirs").await;
    let colleague = app.therapist(&f.org.id, "Dr Colleague").await;
    let root = app.super_admin("Root").await;
    let body = office("UTC");
    for who in [&other.org.admin, &other.therapist, &other.client] {
        app.get(&hours_path(&f.therapist), Some(&who.token))
            .await
            .expect_err(404, "therapist_not_found");
        app.put(&hours_path(&f.therapist), Some(&who.token), body.clone())
            .await
            .expect_err(404, "therapist_not_found");
        app.get(&time_off_path(&f.therapist), Some(&who.token))
            .await
            .expect_err(404, "therapist_not_found");
    }
    for who in [&colleague, &f.client] {
        app.put(&hours_path(&f.therapist), Some(&who.token), body.clone())
            .await
            .expect_err(403, "forbidden");
        let off = json!({"start": "2030-07-01T00:00:00Z", "end": "2030-07-02T00:00:00Z"});
        app.post(&time_off_path(&f.therapist), Some(&who.token), Some(off))
            .await
            .expect_err(403, "forbidden");
    }
    set_hours(&app, &root, &f.therapist, body).await;
    app.get("/api/therapists/nobody/working-hours", Some(&root.token))
        .await
        .expect_err(404, "therapist_not_found");
    app.get(&hours_path(&f.therapist), None)
        .await
        .expect_err(401, "unauthorized");
});

both_dbs!(holds_respect_hours_and_time_off, |app| async move {
    let f = fx(&app, "Holds").await;
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    // No hours yet: any time is bookable (03:00 UTC on a Sunday).
    hold(
        &app,
        &f,
        json!({"start": "2030-01-06T03:00:00Z", "end": "2030-01-06T03:50:00Z"}),
    )
    .await
    .expect(201);
    set_hours(&app, &f.therapist, &f.therapist, office("Europe/Berlin")).await;

    // Monday 2030-01-07 08:00 Berlin (07:00 UTC): before the hours.
    let early = hold(
        &app,
        &f,
        json!({"start": "2030-01-07T07:00:00Z", "end": "2030-01-07T07:50:00Z"}),
    )
    .await;
    let early = early.expect_err(409, "outside_working_hours").clone();
    assert_eq!(early["therapist_id"], json!(f.therapist.id));
    assert_eq!(early["occurrence"]["start"], "2030-01-07T07:00:00.000Z");
    let hints = early["suggestions"].as_array().unwrap();
    assert!(!hints.is_empty());
    assert!(hints.iter().all(|s| inside_office(s, berlin)), "{hints:?}");
    // 09:00 Berlin is inside.
    hold(
        &app,
        &f,
        json!({"start": "2030-01-07T08:00:00Z", "end": "2030-01-07T08:50:00Z"}),
    )
    .await
    .expect(201);
    // Across the lunch break, and on Saturday: outside.
    for (s, e) in [
        ("2030-01-07T10:30:00Z", "2030-01-07T11:20:00Z"),
        ("2030-01-12T09:00:00Z", "2030-01-12T09:50:00Z"),
    ] {
        hold(&app, &f, json!({"start": s, "end": e}))
            .await
            .expect_err(409, "outside_working_hours");
    }

    // Time off on Tuesday afternoon.
    let off = json!({"start": "2030-01-08T12:00:00Z", "end": "2030-01-08T17:00:00Z"});
    app.post(
        &time_off_path(&f.therapist),
        Some(&f.therapist.token),
        Some(off),
    )
    .await
    .expect(201);
    let away = hold(
        &app,
        &f,
        json!({"start": "2030-01-08T13:00:00Z", "end": "2030-01-08T13:50:00Z"}),
    )
    .await;
    let away = away.expect_err(409, "therapist_time_off");
    assert!(away["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| inside_office(s, berlin)
            && (utc(s["end"].as_str().unwrap()) <= utc("2030-01-08T12:00:00Z")
                || utc(s["start"].as_str().unwrap()) >= utc("2030-01-08T17:00:00Z"))));

    // A weekly series across the spring DST change (2030-03-31) kept in Berlin time
    // stays at 09:00 local: accepted.
    let series = json!({"start": "2030-03-25T08:00:00Z", "end": "2030-03-25T08:50:00Z",
        "time_zone": "Europe/Berlin", "recurrence": {"frequency": "weekly", "count": 3}});
    let ok = hold(&app, &f, series).await;
    let occ = ok.expect(201)["occurrences"].clone();
    assert_eq!(occ[1]["start"], "2030-04-01T07:00:00.000Z");
    // The same series kept in UTC (16:00 Berlin, then 17:00 after the change): the
    // second occurrence is refused, and named.
    let utc_series = json!({"start": "2030-03-25T15:00:00Z", "end": "2030-03-25T15:50:00Z",
        "time_zone": "UTC", "recurrence": {"frequency": "weekly", "count": 3}});
    let refused = hold(&app, &f, utc_series).await;
    let refused = refused.expect_err(409, "outside_working_hours");
    assert_eq!(refused["occurrence"]["start"], "2030-04-01T15:00:00.000Z");
    // Nothing of the refused series was held.
    assert_eq!(
        app.count(
            "schedule_hold_occurrences",
            "start_ms = 1901286000000 AND hold_id IN (SELECT id FROM schedule_holds WHERE therapist_id = $1)",
            &f.therapist.id
        )
        .await,
        0
    );
});

both_dbs!(conflict_hints_lie_inside_hours, |app| async move {
    let f = fx(&app, "Hints").await;
    let second = app.client(&f.org.id, Some(&f.therapist.id), "Second").await;
    // Monday 09:00–10:00 and 14:00–15:00 UTC only.
    let hours = json!({"time_zone": "UTC", "weekly": [
        {"weekday": "monday", "start": "09:00", "end": "10:00"},
        {"weekday": "monday", "start": "14:00", "end": "15:00"}]});
    set_hours(&app, &f.therapist, &f.therapist, hours).await;
    let (start, end) = ("2030-01-07T09:00:00Z", "2030-01-07T09:50:00Z");
    let h = hold(&app, &f, json!({"start": start, "end": end})).await;
    let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
    app.post(
        &format!("/api/schedule/holds/{key}/confirm"),
        Some(&f.therapist.token),
        None,
    )
    .await
    .expect(201);
    let body =
        json!({"therapist_id": f.therapist.id, "client_id": second.id, "start": start, "end": end});
    let c = app
        .post("/api/schedule/holds", Some(&f.therapist.token), Some(body))
        .await;
    let c = c.expect_err(409, "slot_conflict");
    let hints = c["suggestions"].as_array().unwrap();
    assert!(!hints.is_empty());
    for s in hints {
        let (s, e) = (
            utc(s["start"].as_str().unwrap()),
            utc(s["end"].as_str().unwrap()),
        );
        let m = s.hour() * 60 + s.minute();
        assert_eq!(s.weekday(), Weekday::Mon, "{s}");
        assert!(
            (840..=850).contains(&m)
                || (s.date_naive() != utc(start).date_naive() && (540..=550).contains(&m)),
            "{s}"
        );
        assert_eq!((e - s).num_minutes(), 50);
    }
    // The nearest one is the afternoon window of the same day.
    assert_eq!(hints[0]["start"], "2030-01-07T14:00:00.000Z");
});

both_dbs!(a_moved_session_follows_working_hours, |app| async move {
    let f = fx(&app, "Moves").await;
    // Booked Monday 2030-01-07 09:00 Berlin, then the hours are set.
    let held = hold(
        &app,
        &f,
        json!({"start": "2030-01-07T08:00:00Z", "end": "2030-01-07T08:50:00Z"}),
    )
    .await
    .expect(201)
    .clone();
    let key = held["hold_key"].as_str().unwrap();
    let confirmed = app
        .post(
            &format!("/api/schedule/holds/{key}/confirm"),
            Some(&f.therapist.token),
            None,
        )
        .await
        .expect(201)
        .clone();
    let session_id = confirmed["sessions"][0]["id"].as_str().unwrap().to_string();
    set_hours(&app, &f.therapist, &f.therapist, office("Europe/Berlin")).await;

    // Moving it to Saturday is refused like a new booking, with hints inside the hours.
    let refused = hold(
        &app,
        &f,
        json!({"session_id": session_id, "start": "2030-01-12T09:00:00Z"}),
    )
    .await;
    let refused = refused.expect_err(409, "outside_working_hours").clone();
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let hints = refused["suggestions"].as_array().unwrap();
    assert!(!hints.is_empty() && hints.iter().all(|s| inside_office(s, berlin)));
    // Tuesday 10:00 Berlin is inside: the reschedule hold is granted.
    hold(
        &app,
        &f,
        json!({"session_id": session_id, "start": "2030-01-08T09:00:00Z"}),
    )
    .await
    .expect(201);
});
