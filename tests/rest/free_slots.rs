//! Free-slot search (`GET /api/therapists/{id}/availability`): slots inside working
//! hours, minus time off and busy time, on the 15-minute grid; range and duration
//! limits; who may search. And group sessions for a therapist outside their hours.

use chrono::{Duration, Utc};

use super::working_hours::{fx, hours_path, set_hours, set_ten_to_twelve_utc, time_off_path};
use super::*;

fn search_path(t: &Person, query: &str) -> String {
    format!("/api/therapists/{}/availability?{query}", t.id)
}

fn starts(v: &Value) -> Vec<String> {
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap().to_string())
        .collect()
}

both_dbs!(
    search_inside_hours_minus_busy_and_time_off,
    |app| async move {
        let f = fx(&app, "Search").await;
        // No hours: any time on the grid (a Sunday night included).
        let q = "from=2030-01-06T02:00:00Z&to=2030-01-06T03:00:00Z&duration_minutes=30";
        let open = app
            .get(&search_path(&f.therapist, q), Some(&f.client.token))
            .await;
        let open = open.expect(200).clone();
        assert_eq!(open["working_hours_configured"], false);
        assert_eq!(
            starts(&open),
            [
                "2030-01-06T02:00:00.000Z",
                "2030-01-06T02:15:00.000Z",
                "2030-01-06T02:30:00.000Z"
            ]
        );

        // Monday 09:00–12:00 UTC; one session 09:00–09:50; time off 11:00–12:00.
        let hours = json!({"time_zone": "UTC", "weekly": [{"weekday": "monday", "start": "09:00", "end": "12:00"}]});
        set_hours(&app, &f.therapist, &f.therapist, hours).await;
        let h = app
            .post(
                "/api/schedule/holds",
                Some(&f.therapist.token),
                Some(
                    json!({"therapist_id": f.therapist.id, "client_id": f.client.id,
                "start": "2030-01-07T09:00:00Z", "end": "2030-01-07T09:50:00Z"}),
                ),
            )
            .await;
        let key = h.expect(201)["hold_key"].as_str().unwrap().to_string();
        app.post(
            &format!("/api/schedule/holds/{key}/confirm"),
            Some(&f.therapist.token),
            None,
        )
        .await
        .expect(201);
        let off = json!({"start": "2030-01-07T11:00:00Z", "end": "2030-01-07T12:00:00Z"});
        app.post(
            &time_off_path(&f.therapist),
            Some(&f.therapist.token),
            Some(off),
        )
        .await
        .expect(201);

        let day = "from=2030-01-07T00:00:00Z&to=2030-01-08T00:00:00Z";
        let r = app
            .get(&search_path(&f.therapist, day), Some(&f.client.token))
            .await;
        let r = r.expect(200).clone();
        assert_eq!(r["duration_minutes"], 50, "default duration");
        assert_eq!(r["step_minutes"], 15);
        assert_eq!(r["working_hours_configured"], true);
        assert_eq!(
            r["slots"],
            json!([{"start": "2030-01-07T10:00:00.000Z", "end": "2030-01-07T10:50:00.000Z"}])
        );
        let r = app
            .get(
                &search_path(&f.therapist, &format!("{day}&duration_minutes=30")),
                Some(&f.org.admin.token),
            )
            .await;
        assert_eq!(
            starts(r.expect(200)),
            [
                "2030-01-07T10:00:00.000Z",
                "2030-01-07T10:15:00.000Z",
                "2030-01-07T10:30:00.000Z"
            ]
        );
        // The client is busy 10:00–10:50 with another therapist (booked by the admin):
        // their own search leaves that out, the admin's does not.
        let colleague = app.therapist(&f.org.id, "Dr Colleague").await;
        let other = app
            .post(
                "/api/schedule/holds",
                Some(&f.org.admin.token),
                Some(
                    json!({"therapist_id": colleague.id, "client_id": f.client.id,
                "start": "2030-01-07T10:00:00Z", "end": "2030-01-07T10:50:00Z"}),
                ),
            )
            .await;
        other.expect(201);
        let q = format!("{day}&duration_minutes=30");
        let mine = app
            .get(&search_path(&f.therapist, &q), Some(&f.client.token))
            .await;
        assert_eq!(mine.expect(200)["slots"], json!([]));
        let admin = app
            .get(&search_path(&f.therapist, &q), Some(&f.org.admin.token))
            .await;
        assert_eq!(starts(admin.expect(200)).len(), 3);

        // A whole week holds only Mondays.
        let week = "from=2030-01-07T00:00:00Z&to=2030-01-14T00:00:00Z&duration_minutes=60";
        let r = app
            .get(&search_path(&f.therapist, week), Some(&f.therapist.token))
            .await;
        assert!(starts(r.expect(200))
            .iter()
            .all(|s| s.starts_with("2030-01-07T")));

        // Limits.
        for (q, code) in [
            (
                "from=2030-01-01T00:00:00Z&to=2030-02-02T00:00:00Z",
                "range_too_long",
            ),
            (
                "from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z",
                "invalid_time_range",
            ),
            ("from=soon", "invalid_timestamp"),
            ("duration_minutes=0", "invalid_duration"),
            ("duration_minutes=abc", "invalid_duration"),
            ("duration_minutes=721", "invalid_duration"),
        ] {
            app.get(&search_path(&f.therapist, q), Some(&f.client.token))
                .await
                .expect_err(400, code);
        }
        // 31 days is the cap, not refused.
        app.get(
            &search_path(
                &f.therapist,
                "from=2030-01-01T00:00:00Z&to=2030-02-01T00:00:00Z",
            ),
            Some(&f.client.token),
        )
        .await
        .expect(200);
    }
);

both_dbs!(who_may_search, |app| async move {
    let f = fx(&app, "Own").await;
    let other = fx(&app, "Other").await;
    let colleague = app.therapist(&f.org.id, "Dr Colleague").await;
    let their_client = app
        .client(&f.org.id, Some(&colleague.id), "Not yours")
        .await;
    let q = "from=2030-01-07T00:00:00Z&to=2030-01-08T00:00:00Z";
    for who in [&f.client, &f.therapist, &colleague, &f.org.admin] {
        app.get(&search_path(&f.therapist, q), Some(&who.token))
            .await
            .expect(200);
    }
    app.get(&search_path(&f.therapist, q), Some(&their_client.token))
        .await
        .expect_err(403, "not_your_therapist");
    for who in [&other.client, &other.therapist, &other.org.admin] {
        app.get(&search_path(&f.therapist, q), Some(&who.token))
            .await
            .expect_err(404, "therapist_not_found");
    }
    app.get(&search_path(&f.therapist, q), None)
        .await
        .expect_err(401, "unauthorized");
});

/// A group session in a community of `org`, proposed by a client moderator.
async fn community_with(app: &TestApp, org: &OrgFx, members: &[&Person]) -> (String, Person) {
    let c = app
        .post(
            "/api/communities",
            Some(&org.admin.token),
            Some(json!({"name": "Circle"})),
        )
        .await;
    let community = c.expect(201)["id"].as_str().unwrap().to_string();
    let moderator = app.client(&org.id, None, "Moderator").await;
    let add = |user: &Person, role: &str| json!({"user_id": user.id, "role": role});
    app.post(
        &format!("/api/communities/{community}/members"),
        Some(&org.admin.token),
        Some(add(&moderator, "moderator")),
    )
    .await
    .expect(201);
    for m in members {
        app.post(
            &format!("/api/communities/{community}/members"),
            Some(&org.admin.token),
            Some(add(m, "member")),
        )
        .await
        .expect(201);
    }
    (community, moderator)
}

both_dbs!(group_sessions_respect_hours, |app| async move {
    let f = fx(&app, "Group").await;
    let t2 = app.therapist(&f.org.id, "Dr Second").await;
    let (community, moderator) = community_with(&app, &f.org, &[&f.therapist, &t2]).await;
    // 10:00 UTC two days from now; the therapist works 10:00–12:00 that weekday.
    let date = (Utc::now() + Duration::days(2)).date_naive();
    let start = date.and_hms_opt(10, 0, 0).unwrap().and_utc();
    set_ten_to_twelve_utc(&app, &f.therapist, date).await;
    let proposal = |at: chrono::DateTime<Utc>, therapists: &[&Person]| {
        json!({
            "title": "Circle", "community_id": community, "session_type": "virtual",
            "scheduled_at": at.to_rfc3339(), "duration_minutes": 60, "max_participants": 8,
            "therapist_ids": therapists.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        })
    };
    // Creating a session outside an invited therapist's hours is refused.
    let late = start + Duration::hours(2);
    let r = app
        .post(
            "/api/group-sessions",
            Some(&moderator.token),
            Some(proposal(late, &[&f.therapist])),
        )
        .await;
    let r = r.expect_err(409, "outside_working_hours").clone();
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&f.therapist.id));
    // Inside: created; the invitation is accepted.
    let ok = app
        .post(
            "/api/group-sessions",
            Some(&moderator.token),
            Some(proposal(start, &[&f.therapist, &t2])),
        )
        .await;
    let ok = ok.expect(201).clone();
    let invitation = ok["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["therapist_id"] == json!(f.therapist.id))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Time off arrives after the invitation: accepting is refused.
    let off =
        json!({"start": start.to_rfc3339(), "end": (start + Duration::hours(1)).to_rfc3339()});
    let created = app
        .post(
            &time_off_path(&f.therapist),
            Some(&f.therapist.token),
            Some(off),
        )
        .await;
    let off_id = created.expect(201)["id"].as_str().unwrap().to_string();
    let respond = format!("/api/group-sessions/therapist/invitations/{invitation}/respond");
    app.post(
        &respond,
        Some(&f.therapist.token),
        Some(json!({"action": "accept"})),
    )
    .await
    .expect_err(409, "therapist_time_off");
    // Declining is always possible; here the time off goes and accepting works.
    app.delete(
        &format!("{}/{off_id}", time_off_path(&f.therapist)),
        Some(&f.therapist.token),
    )
    .await
    .expect(200);
    app.post(
        &respond,
        Some(&f.therapist.token),
        Some(json!({"action": "accept"})),
    )
    .await
    .expect(200);
    // t2 has no hours: invited and accepting at any time keeps working.
    assert_eq!(
        app.get(&hours_path(&t2), Some(&t2.token)).await.expect(200)["configured"],
        false
    );
});
