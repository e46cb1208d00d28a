//! Group sessions edited after they were proposed: a new time sends the session back
//! to its therapists (re-approval, re-sent invitations, notifications to members),
//! fewer seats than members is refused, sessions that are over cannot be edited, the
//! video room holds seats + therapists + moderator, and the member who joins gets a
//! stored and pushed confirmation.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use theraroom::state::AppState;

use super::groups::{
    add_member, approved_session, at, invitation_of, join, kinds_of, latest_of, proposal, propose,
    respond, setup, start_in, Fx, RecordingLive, HOUR_MS,
};
use super::*;

/// PATCH of a group session.
pub(super) async fn patch(app: &TestApp, who: &Person, id: &str, body: Value) -> common::Resp {
    app.call(
        Method::PATCH,
        &format!("/api/group-sessions/{id}"),
        Some(&who.token),
        Some(body),
    )
    .await
}

async fn status_of(app: &TestApp, fx: &Fx, id: &str) -> String {
    let s = app
        .get(
            &format!("/api/group-sessions/{id}"),
            Some(&fx.moderator.token),
        )
        .await;
    s.expect(200)["session"]["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A time as the API writes it (RFC 3339, milliseconds, `Z`).
fn iso(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Books `client` a one-hour 1:1 session with `therapist` from `start` (the
/// scheduling feature's table, directly).
async fn book_one_on_one(app: &TestApp, fx: &Fx, therapist: &Person, client: &Person, start: i64) {
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO scheduled_sessions (id, organization_id, therapist_id, client_id, start_ms, end_ms, \
           time_zone, status, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'UTC', 'scheduled', $7, $8, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&fx.org.id)
    .bind(&therapist.id)
    .bind(&client.id)
    .bind(start)
    .bind(start + HOUR_MS)
    .bind(&fx.org.admin.id)
    .bind(now)
    .execute(app.store.pool())
    .await
    .expect("insert 1:1 session");
}

/// Every therapist of `team` accepts their invitation of the `created` session.
async fn accept_all(app: &TestApp, created: &Value, team: &[&Person]) {
    for t in team {
        respond(app, t, &invitation_of(created, t), "accept")
            .await
            .expect(200);
    }
}

/// The stored capacity and closing time of a room.
async fn room_limits(app: &TestApp, room_id: &str) -> (i64, i64) {
    let stored = app.store.session(room_id).await.unwrap().unwrap();
    (stored.max_participants, stored.expires_at)
}

both_dbs!(
    time_change_needs_reapproval_and_tells_everyone,
    |app| async move {
        let fx = setup(&app, "Edit Clinic").await;
        let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
        join(&app, &fx.m1, &sid).await.expect(201);

        // A new title: still approved; therapists are told, members are not.
        let edited = patch(&app, &fx.moderator, &sid, json!({"title": "Calm minds"})).await;
        let edited = edited.expect(200);
        assert_eq!(edited["changed"], json!(["title"]));
        assert_eq!(edited["reapproval_required"], false);
        assert_eq!(edited["session"]["status"], "approved");
        assert_eq!(edited["session"]["title"], "Calm minds");
        let n = latest_of(&app, &fx.t1, "group_session_updated").await;
        assert_eq!(n["payload"]["changed"], json!(["title"]));
        assert!(!kinds_of(&app, &fx.m1)
            .await
            .contains(&"group_session_updated".to_string()));

        // A new time: back to pending_approval, every acceptance re-opened and re-sent,
        // the seated member told; the seat is kept. m1 has a 1:1 session at the new
        // time: the edit goes through and m1 is told of the clash.
        let new_start = start_in(50);
        let solo = app.therapist(&fx.org.id, "Dr Solo").await;
        book_one_on_one(&app, &fx, &solo, &fx.m1, new_start + HOUR_MS).await;
        let edited = patch(
            &app,
            &fx.moderator,
            &sid,
            json!({"scheduled_at": at(new_start), "duration_minutes": 90}),
        )
        .await;
        let edited = edited.expect(200);
        assert_eq!(edited["changed"], json!(["time"]));
        assert_eq!(edited["reapproval_required"], true);
        assert_eq!(edited["session"]["status"], "pending_approval");
        assert_eq!(edited["session"]["scheduled_at"], json!(iso(new_start)));
        assert_eq!(edited["session"]["duration_minutes"], 90);
        assert_eq!(edited["session"]["participant_count"], 1);
        assert_eq!(edited["members_with_conflicts"], json!([fx.m1.id]));
        for inv in edited["invitations"].as_array().unwrap() {
            assert_eq!(inv["status"], "pending");
            assert!(inv["responded_at"].is_null());
        }
        for t in [&fx.t1, &fx.t2] {
            let n = latest_of(&app, t, "group_session_invitation").await;
            assert_eq!(n["payload"]["reason"], "rescheduled");
            assert_eq!(n["payload"]["scheduled_at"], json!(iso(new_start)));
        }
        let n = latest_of(&app, &fx.m1, "group_session_updated").await;
        assert_eq!(n["payload"]["changed"], json!(["time"]));
        assert_eq!(n["payload"]["scheduled_at"], json!(iso(new_start)));
        assert_eq!(n["payload"]["schedule_conflict"], true);
        // Nobody joins until the therapists accept again.
        join(&app, &fx.m2, &sid)
            .await
            .expect_err(400, "session_not_open");
        let detail = app
            .get(&format!("/api/group-sessions/{sid}"), Some(&fx.t1.token))
            .await;
        let detail = detail.expect(200).clone();
        let inv1 = detail["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["therapist_id"] == json!(fx.t1.id))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let inv2 = detail["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["therapist_id"] == json!(fx.t2.id))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        respond(&app, &fx.t1, &inv1, "accept").await.expect(200);
        let r = respond(&app, &fx.t2, &inv2, "accept").await;
        assert_eq!(r.expect(200)["session_status"], "approved");
        join(&app, &fx.m2, &sid).await.expect(201);

        // Sending the current values changes nothing.
        let same = patch(&app, &fx.moderator, &sid, json!({"duration_minutes": 90})).await;
        assert_eq!(same.expect(200)["changed"], json!([]));
        assert_eq!(status_of(&app, &fx, &sid).await, "approved");

        // A new place tells the members; the description is audited without its text.
        let edited = patch(
        &app,
        &fx.org.admin,
        &sid,
        json!({"meeting_link": "https://meet.example.org/calm", "description": "private words"}),
    )
    .await;
        assert_eq!(
            edited.expect(200)["changed"],
            json!(["description", "place"])
        );
        let n = latest_of(&app, &fx.m2, "group_session_updated").await;
        assert_eq!(n["payload"]["changed"], json!(["description", "place"]));
        // The moderator hears of the administrator's edit; no clash without a new time.
        let n = latest_of(&app, &fx.moderator, "group_session_updated").await;
        assert_eq!(n["payload"]["changed"], json!(["description", "place"]));
        assert_eq!(n["payload"]["schedule_conflict"], false);
        let actions = app.audit_actions("group_session", &sid).await;
        for action in ["group_session.update", "group_session.reapproval"] {
            assert!(actions.iter().any(|a| a == action), "{actions:?}");
        }
        let rows = app
            .store
            .audit_for_target("group_session", &sid)
            .await
            .unwrap();
        let updates: Vec<_> = rows
            .iter()
            .filter(|r| r.action == "group_session.update")
            .collect();
        assert_eq!(updates.len(), 3);
        let time = updates[1];
        assert!(time
            .before_state
            .as_deref()
            .unwrap()
            .contains("scheduled_at"));
        assert!(time
            .after_state
            .as_deref()
            .unwrap()
            .contains(&iso(new_start)));
        for r in &rows {
            for state in [&r.before_state, &r.after_state].into_iter().flatten() {
                assert!(!state.contains("private words"), "{state}");
            }
        }
    }
);

both_dbs!(edit_refusals, |app| async move {
    let fx = setup(&app, "Edit Refusal Clinic").await;
    let mut body = proposal(&fx, start_in(30), &[&fx.t1, &fx.t2]);
    body["max_participants"] = json!(4);
    let sid = approved_session(&app, &fx, body).await;
    let m3 = app.client(&fx.org.id, None, "Member Three").await;
    add_member(&app, &fx.org, &fx.community, &m3, "member").await;
    for m in [&fx.m1, &fx.m2, &m3] {
        join(&app, m, &sid).await.expect(201);
    }
    // Fewer seats than members seated: 400.
    patch(&app, &fx.moderator, &sid, json!({"max_participants": 2}))
        .await
        .expect_err(400, "capacity_below_participants");
    patch(&app, &fx.moderator, &sid, json!({"max_participants": 51}))
        .await
        .expect_err(400, "invalid_max_participants");
    let edited = patch(&app, &fx.moderator, &sid, json!({"max_participants": 3})).await;
    assert_eq!(edited.expect(200)["session"]["seats_left"], 0);
    let m4 = app.client(&fx.org.id, None, "Member Four").await;
    add_member(&app, &fx.org, &fx.community, &m4, "member").await;
    join(&app, &m4, &sid).await.expect_err(409, "session_full");

    // Field checks are the proposal's.
    let past = at(start_in(-2));
    for (body, code) in [
        (json!({}), "empty_update"),
        (json!({"scheduled_at": past}), "scheduled_in_past"),
        (json!({"scheduled_at": "soon"}), "invalid_scheduled_at"),
        (json!({"duration_minutes": 5}), "invalid_duration"),
        (json!({"title": " "}), "invalid_title"),
        (json!({"meeting_link": "ftp://x"}), "invalid_meeting_link"),
    ] {
        patch(&app, &fx.moderator, &sid, body)
            .await
            .expect_err(400, code);
    }
    // Who may edit: moderators and administrators; members and therapists not;
    // other organizations do not see it.
    for who in [&fx.m1, &fx.t1] {
        patch(&app, who, &sid, json!({"title": "Mine"}))
            .await
            .expect_err(403, "not_a_moderator");
    }
    let other = app.org("Other Edit Clinic", true).await;
    patch(&app, &other.admin, &sid, json!({"title": "Theirs"}))
        .await
        .expect_err(404, "group_session_not_found");

    // Over: a cancelled or completed session cannot be edited.
    let cancelled =
        approved_session(&app, &fx, proposal(&fx, start_in(70), &[&fx.t1, &fx.t2])).await;
    app.delete(
        &format!("/api/group-sessions/{cancelled}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    patch(&app, &fx.moderator, &cancelled, json!({"title": "Again"}))
        .await
        .expect_err(409, "session_cancelled");
    sqlx::query("UPDATE group_sessions SET start_ms = $1, end_ms = $2 WHERE id = $3")
        .bind(start_in(-2))
        .bind(start_in(-1))
        .bind(&sid)
        .execute(app.store.pool())
        .await
        .unwrap();
    patch(&app, &fx.moderator, &sid, json!({"title": "Late"}))
        .await
        .expect_err(409, "session_started");
    app.post(
        &format!("/api/group-sessions/{sid}/complete"),
        Some(&fx.t1.token),
        None,
    )
    .await
    .expect(200);
    patch(&app, &fx.moderator, &sid, json!({"title": "Done"}))
        .await
        .expect_err(409, "session_completed");
});

both_dbs!(
    room_holds_seats_therapists_and_moderator,
    |app| async move {
        let fx = setup(&app, "Big Room Clinic").await;
        let t3 = app.therapist(&fx.org.id, "Dr Three").await;
        add_member(&app, &fx.org, &fx.community, &t3, "member").await;
        let start = start_in(30);
        let mut body = proposal(&fx, start, &[&fx.t1, &fx.t2, &t3]);
        body["max_participants"] = json!(50);
        let created = propose(&app, &fx, body).await;
        let sid = created["session"]["id"].as_str().unwrap().to_string();
        let team = [&fx.t1, &fx.t2, &t3];
        accept_all(&app, &created, &team).await;
        let video = format!("/api/group-sessions/{sid}/video");
        let room = app.get(&video, Some(&fx.moderator.token)).await;
        let room_id = room.expect(200)["session_id"].as_str().unwrap().to_string();
        // 50 seats + 3 therapists + the moderator.
        assert_eq!(room_limits(&app, &room_id).await.0, 54);

        // The room follows an edit of the seats...
        patch(&app, &fx.moderator, &sid, json!({"max_participants": 40}))
            .await
            .expect(200);
        assert_eq!(room_limits(&app, &room_id).await.0, 44);
        // ...and of the time: once the team has accepted again it closes later.
        patch(&app, &fx.moderator, &sid, json!({"duration_minutes": 120}))
            .await
            .expect(200);
        accept_all(&app, &created, &team).await;
        assert_eq!(status_of(&app, &fx, &sid).await, "approved");
        let ends = start + 2 * HOUR_MS;
        assert_eq!(
            room_limits(&app, &room_id).await,
            (44, ends + theraroom::rooms::ROOM_GRACE_MS)
        );
        assert!(app
            .audit_actions("group_session", &sid)
            .await
            .contains(&"room.resize".to_string()));
    }
);

both_dbs!(join_confirmation_is_stored_and_pushed, |app| async move {
    let fx = setup(&app, "Confirm Clinic").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let live = Arc::new(RecordingLive::default());
    let state = AppState {
        live: live.clone(),
        ..app.state()
    };
    let router = theraroom::api::router(state).0;
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/group-sessions/{sid}/join"))
        .header(header::AUTHORIZATION, format!("Bearer {}", fx.m1.token))
        .body(Body::empty())
        .unwrap();
    let joined = common::send_to(&router, req).await;
    let participant = joined.expect(201)["participant"]["id"].clone();
    let stored = latest_of(&app, &fx.m1, "group_join_confirmed").await;
    assert_eq!(stored["payload"]["group_session_id"], json!(sid));
    assert_eq!(stored["payload"]["participant_id"], participant);
    let pushed = live.pushed.lock().unwrap().clone();
    let mine: Vec<_> = pushed
        .iter()
        .filter(|(user, _)| user == &fx.m1.id)
        .collect();
    assert_eq!(mine.len(), 1, "{pushed:?}");
    assert_eq!(mine[0].1["type"], "group_join_confirmed");
    assert_eq!(mine[0].1["id"], stored["id"]);
    // The leaders are told too; the member gets only the confirmation.
    assert!(pushed
        .iter()
        .any(|(user, n)| user == &fx.moderator.id && n["type"] == "group_session_member_joined"));
    assert_eq!(
        kinds_of(&app, &fx.m1).await,
        vec!["group_join_confirmed", "group_session_approved"]
    );
});

both_dbs!(
    new_time_outside_working_hours_is_refused,
    |app| async move {
        use chrono::{Duration, Utc};
        let fx = setup(&app, "Hours Edit Clinic").await;
        let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
        // t1 works 10:00–12:00 UTC on the weekday three days from now.
        let day = (Utc::now() + Duration::days(3)).date_naive();
        super::working_hours::set_ten_to_twelve_utc(&app, &fx.t1, day).await;
        let late = day
            .and_hms_opt(14, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        patch(&app, &fx.moderator, &sid, json!({"scheduled_at": at(late)}))
            .await
            .expect_err(409, "outside_working_hours");
        // Nothing changed: still approved at its time.
        assert_eq!(status_of(&app, &fx, &sid).await, "approved");
        let inside = day
            .and_hms_opt(10, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let moved = patch(
            &app,
            &fx.moderator,
            &sid,
            json!({"scheduled_at": at(inside)}),
        )
        .await;
        assert_eq!(moved.expect(200)["session"]["status"], "pending_approval");
    }
);
