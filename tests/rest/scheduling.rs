//! Shared fixtures of the 1:1 scheduling tests (`scheduling_*.rs`, `rescheduling.rs`,
//! `series_and_expiry.rs`): a clinic (organization, therapist, client), time helpers,
//! and the hold, confirm and book calls.

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

/// Confirms every hold of `keys` at once (one task each) as `who`; returns how many
/// were booked (201) and how many were refused with 409 `slot_conflict`. Any other
/// answer fails the test.
pub(crate) async fn confirm_race(
    app: &std::sync::Arc<TestApp>,
    who: &Person,
    keys: Vec<String>,
) -> (u32, u32) {
    let mut tasks = Vec::new();
    for key in keys {
        let (app, who) = (app.clone(), who.clone());
        tasks.push(tokio::spawn(async move { confirm(&app, &who, &key).await }));
    }
    slot_race_outcome(tasks).await
}

/// Waits for every request of a race for one slot; returns how many succeeded (201)
/// and how many were refused with 409 `slot_conflict`. Any other answer fails the test.
pub(crate) async fn slot_race_outcome(
    tasks: Vec<tokio::task::JoinHandle<common::Resp>>,
) -> (u32, u32) {
    let (mut ok, mut conflict) = (0, 0);
    for task in tasks {
        let r = task.await.unwrap();
        match r.status.as_u16() {
            201 => ok += 1,
            409 => {
                r.expect_err(409, "slot_conflict");
                conflict += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    (ok, conflict)
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
