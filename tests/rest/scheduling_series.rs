//! 1:1 scheduling: weekly series that keep their local time across DST, series that
//! are booked all or nothing, and the validation codes of a hold request. Fixtures:
//! [`super::scheduling`].

use chrono::{Duration, Timelike};

use super::scheduling::{book, clinic, confirm, hold, hold_body, iso, utc};
use super::*;

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
