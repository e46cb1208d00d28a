//! Shared fixtures of the group-session tests (`groups_*.rs`, `group_edits.rs`,
//! `group_team.rs`): an organization with a community, its moderator, therapists and
//! members; proposals, invitation answers, joins; notification reads; a live-push
//! recorder; and a 1:1 session written directly for the availability checks.

use std::sync::Mutex;

use theraroom::state::LiveControl;

use super::*;

pub(super) const HOUR_MS: i64 = 3_600_000;

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) fn at(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// A start time `hours` from now, on a whole minute.
pub(super) fn start_in(hours: i64) -> i64 {
    let t = now_ms() + hours * HOUR_MS;
    t - t % 60_000
}

/// One organization with a community: a moderator (a client), two therapists and
/// two members, all added through the API.
pub(super) struct Fx {
    pub(super) org: OrgFx,
    pub(super) community: String,
    pub(super) moderator: Person,
    pub(super) t1: Person,
    pub(super) t2: Person,
    pub(super) m1: Person,
    pub(super) m2: Person,
}

pub(super) async fn add_member(
    app: &TestApp,
    org: &OrgFx,
    community: &str,
    user: &Person,
    role: &str,
) {
    app.post(
        &format!("/api/communities/{community}/members"),
        Some(&org.admin.token),
        Some(json!({"user_id": user.id, "role": role})),
    )
    .await
    .expect(201);
}

pub(super) async fn community(app: &TestApp, org: &OrgFx, name: &str) -> String {
    let c = app
        .post(
            "/api/communities",
            Some(&org.admin.token),
            Some(json!({"name": name, "description": "peer support"})),
        )
        .await;
    c.expect(201)["id"].as_str().unwrap().to_string()
}

pub(super) async fn setup(app: &TestApp, name: &str) -> Fx {
    let org = app.org(name, true).await;
    let community = community(app, &org, "Anxiety circle").await;
    let moderator = app.client(&org.id, None, "Mona Moderator").await;
    let t1 = app.therapist(&org.id, "Dr One").await;
    let t2 = app.therapist(&org.id, "Dr Two").await;
    let m1 = app.client(&org.id, Some(&t1.id), "Member One").await;
    let m2 = app.client(&org.id, Some(&t1.id), "Member Two").await;
    add_member(app, &org, &community, &moderator, "moderator").await;
    for p in [&t1, &t2, &m1, &m2] {
        add_member(app, &org, &community, p, "member").await;
    }
    Fx {
        org,
        community,
        moderator,
        t1,
        t2,
        m1,
        m2,
    }
}

pub(super) fn proposal(fx: &Fx, start_ms: i64, therapists: &[&Person]) -> Value {
    json!({
        "title": "Coping with anxiety",
        "description": "A weekly circle",
        "community_id": fx.community,
        "session_type": "virtual",
        "scheduled_at": at(start_ms),
        "duration_minutes": 60,
        "max_participants": 8,
        "therapist_ids": therapists.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
    })
}

/// Proposes a session as the moderator; returns the creation response.
pub(super) async fn propose(app: &TestApp, fx: &Fx, body: Value) -> Value {
    app.post("/api/group-sessions", Some(&fx.moderator.token), Some(body))
        .await
        .expect(201)
        .clone()
}

pub(super) fn invitation_of(created: &Value, therapist: &Person) -> String {
    created["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["therapist_id"] == json!(therapist.id))
        .expect("invitation for therapist")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(super) fn respond_path(invitation: &str) -> String {
    format!("/api/group-sessions/therapist/invitations/{invitation}/respond")
}

pub(super) async fn respond(
    app: &TestApp,
    who: &Person,
    invitation: &str,
    action: &str,
) -> common::Resp {
    app.post(
        &respond_path(invitation),
        Some(&who.token),
        Some(json!({"action": action})),
    )
    .await
}

/// Proposes a session with both therapists and has both accept: it is approved.
pub(super) async fn approved_session(app: &TestApp, fx: &Fx, body: Value) -> String {
    let created = propose(app, fx, body).await;
    for t in [&fx.t1, &fx.t2] {
        respond(app, t, &invitation_of(&created, t), "accept")
            .await
            .expect(200);
    }
    let id = created["session"]["id"].as_str().unwrap().to_string();
    let s = app
        .get(
            &format!("/api/group-sessions/{id}"),
            Some(&fx.moderator.token),
        )
        .await;
    assert_eq!(s.expect(200)["session"]["status"], "approved");
    id
}

pub(super) async fn join(app: &TestApp, who: &Person, session: &str) -> common::Resp {
    app.post(
        &format!("/api/group-sessions/{session}/join"),
        Some(&who.token),
        None,
    )
    .await
}

/// Stored notification types of a user, sorted by name (notifications stored in the
/// same millisecond have no defined order).
pub(super) async fn kinds_of(app: &TestApp, user: &Person) -> Vec<String> {
    let list = app
        .get("/api/notifications?limit=200", Some(&user.token))
        .await;
    let mut kinds: Vec<String> = list.expect(200)["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

/// The newest stored notification of a type.
pub(super) async fn latest_of(app: &TestApp, user: &Person, kind: &str) -> Value {
    let list = app
        .get("/api/notifications?limit=200", Some(&user.token))
        .await;
    list.expect(200)["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == json!(kind))
        .unwrap_or_else(|| panic!("no {kind} notification"))
        .clone()
}

/// Inserts a booked 1:1 session directly (the scheduling feature's table).
pub(super) async fn book_one_on_one(app: &TestApp, fx: &Fx, client: &Person, start: i64, end: i64) {
    sqlx::query(
        "INSERT INTO scheduled_sessions (id, organization_id, therapist_id, client_id, start_ms, end_ms, \
           time_zone, status, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'UTC', 'scheduled', $7, $8, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&fx.org.id)
    .bind(&fx.t1.id)
    .bind(&client.id)
    .bind(start)
    .bind(end)
    .bind(&fx.org.admin.id)
    .bind(now_ms())
    .execute(app.store.pool())
    .await
    .expect("insert 1:1 session");
}

/// Records every live push.
#[derive(Default)]
pub(super) struct RecordingLive {
    pub(super) pushed: Mutex<Vec<(String, Value)>>,
}

#[async_trait::async_trait]
impl LiveControl for RecordingLive {
    fn session_ended(&self, _session_id: &str) {}
    fn participant_removed(&self, _session_id: &str, _participant_id: &str) {}
    fn token_revoked(&self, _jti: &str) {}
    fn subject_revoked(&self, _subject: &str) {}
    fn notify(&self, user_id: &str, notification: Value) {
        self.pushed
            .lock()
            .unwrap()
            .push((user_id.to_string(), notification));
    }
}
