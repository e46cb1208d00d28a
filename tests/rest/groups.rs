//! Group therapy sessions. Communities, proposals, therapist invitations,
//! approval, joins (capacity, availability, membership), leave, attendance,
//! cancellation, the restricted video room, notifications (stored and pushed live),
//! audit, cross-tenant and wrong-role refusals, and 20 concurrent joins for the last
//! seat.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request};
use theraroom::state::{AppState, LiveControl};

use super::*;

pub(super) const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
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

async fn community(app: &TestApp, org: &OrgFx, name: &str) -> String {
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

fn respond_path(invitation: &str) -> String {
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
async fn book_one_on_one(app: &TestApp, fx: &Fx, client: &Person, start: i64, end: i64) {
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

// ----------------------------------------------------------------------------------
// Communities
// ----------------------------------------------------------------------------------

both_dbs!(communities_members_and_roles, |app| async move {
    let fx = setup(&app, "Community Clinic").await;
    // Lists: the admin sees the organization's communities, members their own.
    let admin_list = app.get("/api/communities", Some(&fx.org.admin.token)).await;
    let admin_list = admin_list.expect(200)["communities"].clone();
    assert_eq!(admin_list.as_array().unwrap().len(), 1);
    assert_eq!(admin_list[0]["member_count"], 5);
    let mine = app.get("/api/communities", Some(&fx.moderator.token)).await;
    assert_eq!(mine.expect(200)["communities"][0]["my_role"], "moderator");
    let outsider = app.client(&fx.org.id, None, "Not In It").await;
    let none = app.get("/api/communities", Some(&outsider.token)).await;
    assert_eq!(none.expect(200)["communities"], json!([]));

    // Members list: members and admins only.
    let path = format!("/api/communities/{}/members", fx.community);
    let members = app.get(&path, Some(&fx.m1.token)).await;
    assert_eq!(members.expect(200)["members"].as_array().unwrap().len(), 5);
    app.get(&path, Some(&outsider.token))
        .await
        .expect_err(403, "not_a_member");

    // A moderator may add members but not moderators; a member may add no one.
    app.post(
        &path,
        Some(&fx.moderator.token),
        Some(json!({"user_id": outsider.id})),
    )
    .await
    .expect(201);
    let late = app.client(&fx.org.id, None, "Late Comer").await;
    app.post(
        &path,
        Some(&fx.moderator.token),
        Some(json!({"user_id": late.id, "role": "moderator"})),
    )
    .await
    .expect_err(403, "not_organization_owner");
    app.post(&path, Some(&fx.m1.token), Some(json!({"user_id": late.id})))
        .await
        .expect_err(403, "not_a_moderator");
    // The admin promotes a member (200: role changed).
    let promoted = app
        .post(
            &path,
            Some(&fx.org.admin.token),
            Some(json!({"user_id": fx.m2.id, "role": "moderator"})),
        )
        .await;
    assert_eq!(promoted.expect(200)["role"], "moderator");
    app.post(
        &path,
        Some(&fx.org.admin.token),
        Some(json!({"user_id": late.id, "role": "owner"})),
    )
    .await
    .expect_err(400, "invalid_member_role");
    app.post(
        &path,
        Some(&fx.org.admin.token),
        Some(json!({"user_id": "nobody"})),
    )
    .await
    .expect_err(404, "user_not_found");

    // Creation: admins only, names unique per organization, validated.
    app.post(
        "/api/communities",
        Some(&fx.m1.token),
        Some(json!({"name": "Mine"})),
    )
    .await
    .expect_err(403, "forbidden");
    app.post(
        "/api/communities",
        Some(&fx.org.admin.token),
        Some(json!({"name": "Anxiety circle"})),
    )
    .await
    .expect_err(409, "community_exists");
    app.post(
        "/api/communities",
        Some(&fx.org.admin.token),
        Some(json!({"name": "   "})),
    )
    .await
    .expect_err(400, "invalid_community_name");
    app.post(
        "/api/communities",
        Some(&fx.org.admin.token),
        Some(json!({"name": "Long", "description": "x".repeat(1001)})),
    )
    .await
    .expect_err(400, "invalid_description");
});

// ----------------------------------------------------------------------------------
// 1. Session creation
// ----------------------------------------------------------------------------------

both_dbs!(create_session_pending_with_invitations, |app| async move {
    let fx = setup(&app, "Create Clinic").await;
    let start = start_in(48);
    let created = propose(&app, &fx, proposal(&fx, start, &[&fx.t1, &fx.t2])).await;
    let session = &created["session"];
    assert_eq!(session["status"], "pending_approval");
    assert_eq!(session["session_type"], "virtual");
    assert_eq!(session["community_id"], json!(fx.community));
    assert_eq!(session["created_by"], json!(fx.moderator.id));
    assert_eq!(session["duration_minutes"], 60);
    assert_eq!(session["max_participants"], 8);
    assert_eq!(session["seats_left"], 8);
    assert_eq!(created["invitations_sent"], 2);
    let sid = session["id"].as_str().unwrap();

    // Invitations to all therapists, all pending.
    assert_eq!(
        app.count("group_session_invitations", "session_id = $1", sid)
            .await,
        2
    );
    for t in [&fx.t1, &fx.t2] {
        let list = app
            .get(
                "/api/group-sessions/therapist/invitations?status=pending",
                Some(&t.token),
            )
            .await;
        let list = list.expect(200)["invitations"].clone();
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["invitation"]["status"], "pending");
        assert_eq!(list[0]["session"]["id"], json!(sid));
        // Notifications to the therapists.
        assert_eq!(kinds_of(&app, t).await, vec!["group_session_invitation"]);
    }
    let n = app.get("/api/notifications", Some(&fx.t1.token)).await;
    let n = n.expect(200)["notifications"][0].clone();
    assert_eq!(n["payload"]["group_session_id"], json!(sid));
    assert_eq!(
        n["payload"]["invitation_id"],
        json!(invitation_of(&created, &fx.t1))
    );
    assert_eq!(
        app.audit_actions("group_session", sid).await,
        vec!["group_session.create"]
    );

    // Pending sessions are visible to moderators, not yet to members.
    let for_mod = app
        .get("/api/group-sessions", Some(&fx.moderator.token))
        .await;
    assert_eq!(for_mod.expect(200)["sessions"].as_array().unwrap().len(), 1);
    let for_member = app.get("/api/group-sessions", Some(&fx.m1.token)).await;
    assert_eq!(for_member.expect(200)["sessions"], json!([]));

    // An in-person session needs a location and keeps it.
    let mut body = proposal(&fx, start_in(72), &[&fx.t1]);
    body["session_type"] = json!("in_person");
    body["location"] = json!("Room 4");
    body["location_address"] = json!("1 Main St");
    let in_person = propose(&app, &fx, body).await;
    assert_eq!(in_person["session"]["location"], "Room 4");
    assert_eq!(in_person["session"]["meeting_link"], Value::Null);
});

both_dbs!(create_session_refusals, |app| async move {
    let fx = setup(&app, "Refusal Clinic").await;
    let start = start_in(24);
    let ok = proposal(&fx, start, &[&fx.t1]);

    // Not a moderator: a member, a therapist of the community, the org admin.
    for who in [&fx.m1, &fx.t1, &fx.org.admin] {
        app.post("/api/group-sessions", Some(&who.token), Some(ok.clone()))
            .await
            .expect_err(403, "not_a_moderator");
    }
    // Unknown community.
    let mut body = ok.clone();
    body["community_id"] = json!("nope");
    app.post("/api/group-sessions", Some(&fx.moderator.token), Some(body))
        .await
        .expect_err(404, "community_not_found");

    // Therapist not in the community (same organization, and another organization).
    let stranger = app.therapist(&fx.org.id, "Dr Stranger").await;
    let other_org = app.org("Elsewhere", true).await;
    let foreign = app.therapist(&other_org.id, "Dr Foreign").await;
    for t in [&stranger, &foreign] {
        app.post(
            "/api/group-sessions",
            Some(&fx.moderator.token),
            Some(proposal(&fx, start, &[&fx.t1, t])),
        )
        .await
        .expect_err(400, "therapist_not_in_community");
    }
    // A member who is not a therapist cannot be invited either.
    app.post(
        "/api/group-sessions",
        Some(&fx.moderator.token),
        Some(proposal(&fx, start, &[&fx.m1])),
    )
    .await
    .expect_err(400, "therapist_not_in_community");

    // Scheduled in the past.
    app.post(
        "/api/group-sessions",
        Some(&fx.moderator.token),
        Some(proposal(&fx, now_ms() - 60_000, &[&fx.t1])),
    )
    .await
    .expect_err(400, "scheduled_in_past");

    // Validation limits, each with its stable code.
    let cases: Vec<(&str, Value, &str)> = vec![
        ("duration_minutes", json!(14), "invalid_duration"),
        ("duration_minutes", json!(181), "invalid_duration"),
        ("max_participants", json!(1), "invalid_max_participants"),
        ("max_participants", json!(51), "invalid_max_participants"),
        ("title", json!(""), "invalid_title"),
        ("title", json!("t".repeat(201)), "invalid_title"),
        (
            "description",
            json!("d".repeat(2001)),
            "invalid_description",
        ),
        ("session_type", json!("hybrid"), "invalid_session_type"),
        ("scheduled_at", json!("tomorrow"), "invalid_scheduled_at"),
        ("meeting_link", json!("ftp://x"), "invalid_meeting_link"),
        ("therapist_ids", json!([]), "therapists_required"),
    ];
    for (field, value, code) in cases {
        let mut body = ok.clone();
        body[field] = value;
        app.post("/api/group-sessions", Some(&fx.moderator.token), Some(body))
            .await
            .expect_err(400, code);
    }
    let mut body = ok.clone();
    body["session_type"] = json!("in_person");
    app.post("/api/group-sessions", Some(&fx.moderator.token), Some(body))
        .await
        .expect_err(400, "location_required");
    // The limits themselves are accepted.
    for (duration, max) in [(15, 2), (180, 50)] {
        let mut body = ok.clone();
        body["duration_minutes"] = json!(duration);
        body["max_participants"] = json!(max);
        body["meeting_link"] = json!("https://meet.example.org/abc");
        body["scheduled_at"] = json!(at(start_in(100 + duration)));
        propose(&app, &fx, body).await;
    }
    // Nothing was created by the refusals.
    assert_eq!(
        app.count("group_sessions", "organization_id = $1", &fx.org.id)
            .await,
        2
    );
});

// ----------------------------------------------------------------------------------
// 2. Invitation responses
// ----------------------------------------------------------------------------------

both_dbs!(accepting_all_invitations_approves, |app| async move {
    let fx = setup(&app, "Approve Clinic").await;
    let created = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let sid = created["session"]["id"].as_str().unwrap().to_string();
    let inv1 = invitation_of(&created, &fx.t1);
    let inv2 = invitation_of(&created, &fx.t2);

    // First acceptance: still pending.
    let r = respond(&app, &fx.t1, &inv1, "accept").await;
    let r = r.expect(200);
    assert_eq!(r["invitation"]["status"], "accepted");
    assert_eq!(r["session_status"], "pending_approval");
    // Members cannot join yet: 400, the session is not open for joining.
    join(&app, &fx.m1, &sid)
        .await
        .expect_err(400, "session_not_open");
    // Answering twice is refused.
    respond(&app, &fx.t1, &inv1, "decline")
        .await
        .expect_err(409, "invitation_already_answered");

    // Second acceptance: approved.
    let r = respond(&app, &fx.t2, &inv2, "ACCEPT").await;
    assert_eq!(r.expect(200)["session_status"], "approved");
    let detail = app
        .get(&format!("/api/group-sessions/{sid}"), Some(&fx.m1.token))
        .await;
    let detail = detail.expect(200);
    assert_eq!(detail["session"]["status"], "approved");
    assert!(detail["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "accepted"));

    // Notifications: moderator got two acceptances and the approval; members the approval.
    assert_eq!(
        kinds_of(&app, &fx.moderator).await,
        vec![
            "group_session_approved",
            "group_session_invitation_accepted",
            "group_session_invitation_accepted",
        ]
    );
    for m in [&fx.m1, &fx.m2] {
        assert_eq!(kinds_of(&app, m).await, vec!["group_session_approved"]);
    }
    assert_eq!(
        kinds_of(&app, &fx.t2).await,
        vec!["group_session_approved", "group_session_invitation"]
    );
    // Members now see it; accepted therapists list it as theirs.
    let list = app
        .get("/api/group-sessions?upcoming=true", Some(&fx.m1.token))
        .await;
    assert_eq!(list.expect(200)["sessions"][0]["id"], json!(sid));
    let theirs = app
        .get("/api/group-sessions/therapist/sessions", Some(&fx.t1.token))
        .await;
    assert_eq!(theirs.expect(200)["sessions"][0]["id"], json!(sid));

    // Audit of the responses and the approval.
    assert_eq!(
        app.audit_actions("group_session_invitation", &inv1).await,
        vec![
            "group_session.invitation.create",
            "group_session.invitation.accept"
        ]
    );
    assert_eq!(
        app.audit_actions("group_session", &sid).await,
        vec!["group_session.create", "group_session.approve"]
    );
});

both_dbs!(declining_notifies_the_moderator, |app| async move {
    let fx = setup(&app, "Decline Clinic").await;
    let created = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let sid = created["session"]["id"].as_str().unwrap().to_string();
    let inv2 = invitation_of(&created, &fx.t2);
    respond(&app, &fx.t1, &invitation_of(&created, &fx.t1), "accept")
        .await
        .expect(200);
    let r = app
        .post(
            &respond_path(&inv2),
            Some(&fx.t2.token),
            Some(json!({"action": "decline", "message": "  On leave that week  "})),
        )
        .await;
    let r = r.expect(200);
    assert_eq!(r["invitation"]["status"], "declined");
    assert_eq!(r["invitation"]["message"], "On leave that week");
    assert_eq!(r["session_status"], "pending_approval");

    let n = latest_of(&app, &fx.moderator, "group_session_invitation_declined").await;
    assert_eq!(n["read"], false);
    assert_eq!(n["payload"]["message"], "On leave that week");
    assert_eq!(n["payload"]["therapist_id"], json!(fx.t2.id));
    assert!(n["body"].as_str().unwrap().contains("On leave that week"));
    // The moderator sees the message; members do not.
    let detail = app
        .get(
            &format!("/api/group-sessions/{sid}"),
            Some(&fx.moderator.token),
        )
        .await;
    let declined = detail.expect(200)["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "declined")
        .unwrap()
        .clone();
    assert_eq!(declined["message"], "On leave that week");
    assert_eq!(
        app.audit_actions("group_session_invitation", &inv2).await,
        vec![
            "group_session.invitation.create",
            "group_session.invitation.decline"
        ]
    );
    let audit = app
        .store
        .audit_for_target("group_session_invitation", &inv2)
        .await
        .unwrap();
    assert_eq!(audit[0].actor_id, fx.moderator.id);
    assert_eq!(audit[1].actor_id, fx.t2.id);
    let after = audit[1].after_state.as_deref().unwrap();
    assert!(after.contains("declined"));
    // The therapist's free text stays out of the audit log.
    assert!(!after.contains("On leave"), "{after}");
    // Never approved with a decline.
    let s = app.store.group_session(&sid).await.unwrap().unwrap();
    assert_eq!(s.status, "pending_approval");
});

both_dbs!(responding_to_wrong_invitation_fails, |app| async move {
    let fx = setup(&app, "Wrong Invite Clinic").await;
    let created = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1])).await;
    let inv1 = invitation_of(&created, &fx.t1);
    // Another therapist's invitation, an unknown one.
    respond(&app, &fx.t2, &inv1, "accept")
        .await
        .expect_err(404, "invitation_not_found");
    respond(&app, &fx.t1, "no-such-invitation", "accept")
        .await
        .expect_err(404, "invitation_not_found");
    // A therapist of another organization.
    let other = app.org("Other Org", true).await;
    let foreign = app.therapist(&other.id, "Dr Foreign").await;
    respond(&app, &foreign, &inv1, "accept")
        .await
        .expect_err(404, "invitation_not_found");
    // Not a therapist at all.
    respond(&app, &fx.m1, &inv1, "accept")
        .await
        .expect_err(403, "forbidden");
    respond(&app, &fx.moderator, &inv1, "accept")
        .await
        .expect_err(403, "forbidden");
    app.get(
        "/api/group-sessions/therapist/invitations",
        Some(&fx.m1.token),
    )
    .await
    .expect_err(403, "forbidden");
    // Bad bodies.
    respond(&app, &fx.t1, &inv1, "maybe")
        .await
        .expect_err(400, "invalid_action");
    app.post(
        &respond_path(&inv1),
        Some(&fx.t1.token),
        Some(json!({"action": "decline", "message": "m".repeat(1001)})),
    )
    .await
    .expect_err(400, "invalid_message");
    app.get(
        "/api/group-sessions/therapist/invitations?status=maybe",
        Some(&fx.t1.token),
    )
    .await
    .expect_err(400, "invalid_status");
    // Still pending after all that.
    let inv = app.store.group_invitation(&inv1).await.unwrap().unwrap();
    assert_eq!(inv.status, "pending");
    // Responding to a cancelled session's invitation.
    let sid = created["session"]["id"].as_str().unwrap();
    app.delete(
        &format!("/api/group-sessions/{sid}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    respond(&app, &fx.t1, &inv1, "accept")
        .await
        .expect_err(409, "session_cancelled");
});

// ----------------------------------------------------------------------------------
// 4. Availability (acceptance)
// ----------------------------------------------------------------------------------

both_dbs!(acceptance_checks_the_therapist_schedule, |app| async move {
    let fx = setup(&app, "Availability Clinic").await;
    let start = start_in(50);
    // t1 co-leads an approved session 10:00-11:00 (relative).
    approved_session(&app, &fx, proposal(&fx, start, &[&fx.t1, &fx.t2])).await;

    // Overlapping group session: refused with 409 schedule_conflict.
    let overlapping = propose(&app, &fx, proposal(&fx, start + 30 * 60_000, &[&fx.t1])).await;
    let inv = invitation_of(&overlapping, &fx.t1);
    let refused = respond(&app, &fx.t1, &inv, "accept").await;
    refused.expect_err(409, "schedule_conflict");
    assert_eq!(
        app.store
            .group_invitation(&inv)
            .await
            .unwrap()
            .unwrap()
            .status,
        "pending"
    );
    // Declining still works.
    respond(&app, &fx.t1, &inv, "decline").await.expect(200);

    // Edge: a session starting exactly when the other ends does not conflict.
    let adjacent = propose(&app, &fx, proposal(&fx, start + HOUR_MS, &[&fx.t1])).await;
    let r = respond(&app, &fx.t1, &invitation_of(&adjacent, &fx.t1), "accept").await;
    assert_eq!(r.expect(200)["session_status"], "approved");
    // ...nor one ending exactly when it starts (start - 60 min, 60 minutes long).
    let before = propose(&app, &fx, proposal(&fx, start - HOUR_MS, &[&fx.t1])).await;
    respond(&app, &fx.t1, &invitation_of(&before, &fx.t1), "accept")
        .await
        .expect(200);

    // A 1:1 booked session of t1 also conflicts.
    let later = start + 10 * HOUR_MS;
    book_one_on_one(&app, &fx, &fx.m1, later, later + HOUR_MS).await;
    let clash = propose(&app, &fx, proposal(&fx, later + 15 * 60_000, &[&fx.t1])).await;
    respond(&app, &fx.t1, &invitation_of(&clash, &fx.t1), "accept")
        .await
        .expect_err(409, "schedule_conflict");
    // A cancelled group session frees the slot: t2 declines nothing, t1's accepted
    // "before" session is cancelled and a new one at that time can be accepted.
    let before_id = before["session"]["id"].as_str().unwrap();
    app.delete(
        &format!("/api/group-sessions/{before_id}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    let again = propose(&app, &fx, proposal(&fx, start - HOUR_MS, &[&fx.t1])).await;
    respond(&app, &fx.t1, &invitation_of(&again, &fx.t1), "accept")
        .await
        .expect(200);
});

// ----------------------------------------------------------------------------------
// 3. Joining
// ----------------------------------------------------------------------------------

both_dbs!(member_joins_leaves_and_lists, |app| async move {
    let fx = setup(&app, "Join Clinic").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;

    let joined = join(&app, &fx.m1, &sid).await;
    let joined = joined.expect(201);
    assert_eq!(joined["participant"]["attendance_status"], "registered");
    assert_eq!(joined["participant"]["user_id"], json!(fx.m1.id));
    assert_eq!(joined["session"]["participant_count"], 1);
    assert_eq!(joined["session"]["seats_left"], 7);
    join(&app, &fx.m1, &sid)
        .await
        .expect_err(409, "already_joined");

    // The therapists (and the moderator) are told.
    for who in [&fx.t1, &fx.t2, &fx.moderator] {
        let n = latest_of(&app, who, "group_session_member_joined").await;
        assert_eq!(n["payload"]["user_id"], json!(fx.m1.id));
        assert_eq!(n["payload"]["group_session_id"], json!(sid));
    }
    // Not the member who joined.
    assert!(!kinds_of(&app, &fx.m1)
        .await
        .contains(&"group_session_member_joined".to_string()));

    // My sessions.
    let mine = app
        .get("/api/group-sessions/my-sessions", Some(&fx.m1.token))
        .await;
    assert_eq!(mine.expect(200)["sessions"][0]["id"], json!(sid));
    let none = app
        .get("/api/group-sessions/my-sessions", Some(&fx.m2.token))
        .await;
    assert_eq!(none.expect(200)["sessions"], json!([]));
    let detail = app
        .get(&format!("/api/group-sessions/{sid}"), Some(&fx.m1.token))
        .await;
    assert_eq!(
        detail.expect(200)["my_participation"]["attendance_status"],
        "registered"
    );

    // Leave: seat freed, registration cancelled, listed no more; leave twice is 404.
    let leave_path = format!("/api/group-sessions/{sid}/leave");
    let left = app.delete(&leave_path, Some(&fx.m1.token)).await;
    let left = left.expect(200);
    assert_eq!(left["participant"]["attendance_status"], "cancelled");
    assert!(left["participant"]["left_at"].is_string());
    assert_eq!(left["session"]["participant_count"], 0);
    app.delete(&leave_path, Some(&fx.m1.token))
        .await
        .expect_err(404, "not_joined");
    app.delete(&leave_path, Some(&fx.m2.token))
        .await
        .expect_err(404, "not_joined");
    let mine = app
        .get("/api/group-sessions/my-sessions", Some(&fx.m1.token))
        .await;
    assert_eq!(mine.expect(200)["sessions"], json!([]));
    // Rejoining reuses the registration.
    let again = join(&app, &fx.m1, &sid).await;
    assert_eq!(
        again.expect(201)["participant"]["id"],
        joined["participant"]["id"]
    );
    assert_eq!(
        app.count("group_session_participants", "session_id = $1", &sid)
            .await,
        1
    );
    // Each join and leave is audited (refused attempts are not), by the member.
    let pid = joined["participant"]["id"].as_str().unwrap();
    let audit = app
        .store
        .audit_for_target("group_session_participant", pid)
        .await
        .unwrap();
    assert_eq!(
        audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
        vec![
            "group_session.join",
            "group_session.leave",
            "group_session.join"
        ]
    );
    assert!(audit.iter().all(|a| a.actor_id == fx.m1.id));
    assert_eq!(
        audit[0].organization_id.as_deref(),
        Some(fx.org.id.as_str())
    );
    let state =
        |raw: &Option<String>| -> Value { serde_json::from_str(raw.as_deref().unwrap()).unwrap() };
    assert_eq!(
        state(&audit[0].after_state),
        json!({"attendance_status": "registered", "group_session_id": sid, "user_id": fx.m1.id})
    );
    assert_eq!(
        state(&audit[0].before_state)["attendance_status"],
        Value::Null
    );
    assert_eq!(
        state(&audit[1].before_state)["attendance_status"],
        "registered"
    );
    assert_eq!(
        state(&audit[1].after_state)["attendance_status"],
        "cancelled"
    );
    assert_eq!(
        state(&audit[2].before_state)["attendance_status"],
        "cancelled"
    );

    // Listing filters.
    app.get("/api/group-sessions?status=nope", Some(&fx.m1.token))
        .await
        .expect_err(400, "invalid_status");
    let approved = app
        .get(
            &format!(
                "/api/group-sessions?status=approved&community_id={}",
                fx.community
            ),
            Some(&fx.m1.token),
        )
        .await;
    assert_eq!(
        approved.expect(200)["sessions"].as_array().unwrap().len(),
        1
    );
    let cancelled = app
        .get("/api/group-sessions?status=cancelled", Some(&fx.m1.token))
        .await;
    assert_eq!(cancelled.expect(200)["sessions"], json!([]));
});

both_dbs!(join_refusals, |app| async move {
    let fx = setup(&app, "Join Refusal Clinic").await;
    let start = start_in(30);
    // Pending session.
    let pending = propose(&app, &fx, proposal(&fx, start_in(90), &[&fx.t1])).await;
    let pending_id = pending["session"]["id"].as_str().unwrap();
    join(&app, &fx.m1, pending_id)
        .await
        .expect_err(400, "session_not_open");

    // Full session: capacity 2.
    let mut small = proposal(&fx, start, &[&fx.t1, &fx.t2]);
    small["max_participants"] = json!(2);
    let sid = approved_session(&app, &fx, small).await;
    join(&app, &fx.m1, &sid).await.expect(201);
    join(&app, &fx.m2, &sid).await.expect(201);
    let m3 = app.client(&fx.org.id, None, "Member Three").await;
    add_member(&app, &fx.org, &fx.community, &m3, "member").await;
    join(&app, &m3, &sid).await.expect_err(409, "session_full");

    // Not a member of the community (same organization).
    let outsider = app.client(&fx.org.id, None, "Outsider").await;
    join(&app, &outsider, &sid)
        .await
        .expect_err(403, "not_a_member");

    // Scheduling conflicts: another group session m3 joined, and a 1:1 session.
    let mut other = proposal(&fx, start + 24 * HOUR_MS, &[&fx.t2]);
    other["title"] = json!("Evening group");
    let created = propose(&app, &fx, other).await;
    let other_id = created["session"]["id"].as_str().unwrap().to_string();
    respond(&app, &fx.t2, &invitation_of(&created, &fx.t2), "accept")
        .await
        .expect(200);
    let overlapping = {
        let mut b = proposal(&fx, start + 24 * HOUR_MS + 30 * 60_000, &[&fx.t1]);
        b["title"] = json!("Overlapping group");
        let c = propose(&app, &fx, b).await;
        respond(&app, &fx.t1, &invitation_of(&c, &fx.t1), "accept")
            .await
            .expect(200);
        c["session"]["id"].as_str().unwrap().to_string()
    };
    join(&app, &m3, &other_id).await.expect(201);
    join(&app, &m3, &overlapping)
        .await
        .expect_err(409, "schedule_conflict");
    // 1:1 conflict for m1 (a client of t1): booked over a later session.
    let later = start + 48 * HOUR_MS;
    let mut body = proposal(&fx, later, &[&fx.t2]);
    body["title"] = json!("Later group");
    let c = propose(&app, &fx, body).await;
    respond(&app, &fx.t2, &invitation_of(&c, &fx.t2), "accept")
        .await
        .expect(200);
    let later_id = c["session"]["id"].as_str().unwrap().to_string();
    let m4 = app.client(&fx.org.id, None, "Member Four").await;
    add_member(&app, &fx.org, &fx.community, &m4, "member").await;
    book_one_on_one(&app, &fx, &m4, later + 45 * 60_000, later + 105 * 60_000).await;
    join(&app, &m4, &later_id)
        .await
        .expect_err(409, "schedule_conflict");
    // Without the conflict (m2 has none) the same session can be joined.
    join(&app, &fx.m2, &later_id).await.expect(201);

    // Cancelled session.
    app.delete(
        &format!("/api/group-sessions/{later_id}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    join(&app, &m4, &later_id)
        .await
        .expect_err(400, "session_cancelled");
    // Unknown session.
    join(&app, &fx.m1, "nope")
        .await
        .expect_err(404, "group_session_not_found");
});

// ----------------------------------------------------------------------------------
// Concurrency: 20 joins for the last seat
// ----------------------------------------------------------------------------------

both_dbs!(
    twenty_concurrent_joins_for_the_last_seat,
    |app| async move {
        let fx = setup(&app, "Race Clinic").await;
        let mut body = proposal(&fx, start_in(30), &[&fx.t1, &fx.t2]);
        body["max_participants"] = json!(3);
        let sid = approved_session(&app, &fx, body).await;
        join(&app, &fx.m1, &sid).await.expect(201);
        join(&app, &fx.m2, &sid).await.expect(201);
        // One seat left; 20 members race for it.
        let mut racers = Vec::new();
        for i in 0..20 {
            let p = app.client(&fx.org.id, None, &format!("Racer {i}")).await;
            add_member(&app, &fx.org, &fx.community, &p, "member").await;
            racers.push(p);
        }
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for p in racers {
            let app = app.clone();
            let sid = sid.clone();
            tasks.push(tokio::spawn(async move { join(&app, &p, &sid).await }));
        }
        let mut won = 0;
        let mut full = 0;
        for t in tasks {
            let resp = t.await.unwrap();
            match resp.status.as_u16() {
                201 => won += 1,
                409 => {
                    resp.expect_err(409, "session_full");
                    full += 1;
                }
                other => panic!("unexpected {other}: {}", resp.text),
            }
        }
        assert_eq!((won, full), (1, 19));
        assert_eq!(
            app.count(
                "group_session_participants",
                "session_id = $1 AND attendance_status <> 'cancelled'",
                &sid
            )
            .await,
            3
        );
    }
);

// ----------------------------------------------------------------------------------
// Cancellation, completion, attendance
// ----------------------------------------------------------------------------------

both_dbs!(cancellation_notifies_everyone, |app| async move {
    let fx = setup(&app, "Cancel Clinic").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    join(&app, &fx.m1, &sid).await.expect(201);
    let path = format!("/api/group-sessions/{sid}");
    // Members and therapists may not cancel.
    for who in [&fx.m1, &fx.t1] {
        app.delete(&path, Some(&who.token))
            .await
            .expect_err(403, "not_a_moderator");
    }
    let done = app.delete(&path, Some(&fx.moderator.token)).await;
    let done = done.expect(200);
    assert_eq!(done["session"]["status"], "cancelled");
    assert!(done["session"]["cancelled_at"].is_string());
    for who in [&fx.t1, &fx.t2, &fx.m1] {
        let n = latest_of(&app, who, "group_session_cancelled").await;
        assert_eq!(n["payload"]["group_session_id"], json!(sid));
    }
    // m2 never joined: told of the approval, not of the cancellation.
    assert_eq!(kinds_of(&app, &fx.m2).await, vec!["group_session_approved"]);
    app.delete(&path, Some(&fx.moderator.token))
        .await
        .expect_err(409, "session_already_cancelled");
    assert_eq!(
        app.audit_actions("group_session", &sid).await,
        vec![
            "group_session.create",
            "group_session.approve",
            "group_session.cancel"
        ]
    );
    // Cancelled sessions keep nobody busy.
    let (busy,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM group_busy WHERE source_id = $1")
        .bind(&sid)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(busy, 0);

    // An org admin may cancel too, and the moderator is then told.
    let other = approved_session(&app, &fx, proposal(&fx, start_in(60), &[&fx.t1, &fx.t2])).await;
    app.delete(
        &format!("/api/group-sessions/{other}"),
        Some(&fx.org.admin.token),
    )
    .await
    .expect(200);
    let n = latest_of(&app, &fx.moderator, "group_session_cancelled").await;
    assert_eq!(n["payload"]["group_session_id"], json!(other));
});

both_dbs!(attendance_and_completion, |app| async move {
    let fx = setup(&app, "Attendance Clinic").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let p1 = join(&app, &fx.m1, &sid).await.expect(201)["participant"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    join(&app, &fx.m2, &sid).await.expect(201);
    let list_path = format!("/api/group-sessions/{sid}/participants");
    let list = app.get(&list_path, Some(&fx.t1.token)).await;
    assert_eq!(
        list.expect(200)["participants"].as_array().unwrap().len(),
        2
    );
    app.get(&list_path, Some(&fx.m1.token))
        .await
        .expect_err(403, "forbidden");

    let path = format!("/api/group-sessions/{sid}/participants/{p1}/attendance");
    let marked = app
        .put(
            &path,
            Some(&fx.t1.token),
            json!({"attendance_status": "attended"}),
        )
        .await;
    assert_eq!(marked.expect(200)["attendance_status"], "attended");
    let marked = app
        .put(
            &path,
            Some(&fx.moderator.token),
            json!({"attendance_status": "no_show"}),
        )
        .await;
    assert_eq!(marked.expect(200)["attendance_status"], "no_show");
    app.put(
        &path,
        Some(&fx.m2.token),
        json!({"attendance_status": "attended"}),
    )
    .await
    .expect_err(403, "forbidden");
    app.put(
        &path,
        Some(&fx.t1.token),
        json!({"attendance_status": "late"}),
    )
    .await
    .expect_err(400, "invalid_attendance_status");
    app.put(
        &format!("/api/group-sessions/{sid}/participants/nope/attendance"),
        Some(&fx.t1.token),
        json!({"attendance_status": "attended"}),
    )
    .await
    .expect_err(404, "participant_not_found");
    assert_eq!(
        app.audit_actions("group_session_participant", &p1).await,
        vec![
            "group_session.join",
            "group_session.attendance",
            "group_session.attendance"
        ]
    );

    // Completion only once started.
    let complete = format!("/api/group-sessions/{sid}/complete");
    app.post(&complete, Some(&fx.t1.token), None)
        .await
        .expect_err(409, "session_not_started");
    sqlx::query("UPDATE group_sessions SET start_ms = $1, end_ms = $2 WHERE id = $3")
        .bind(now_ms() - HOUR_MS)
        .bind(now_ms())
        .bind(&sid)
        .execute(app.store.pool())
        .await
        .unwrap();
    app.post(&complete, Some(&fx.m1.token), None)
        .await
        .expect_err(403, "forbidden");
    let done = app.post(&complete, Some(&fx.t1.token), None).await;
    assert_eq!(done.expect(200)["session"]["status"], "completed");
    // Leaving or joining a completed session is refused.
    join(&app, &fx.m1, &sid)
        .await
        .expect_err(400, "session_completed");
    let completed = app
        .get("/api/group-sessions?status=completed", Some(&fx.m2.token))
        .await;
    assert_eq!(completed.expect(200)["sessions"][0]["id"], json!(sid));
});

// ----------------------------------------------------------------------------------
// Video room
// ----------------------------------------------------------------------------------

both_dbs!(
    virtual_session_room_admits_only_its_people,
    |app| async move {
        let fx = setup(&app, "Video Clinic").await;
        let sid = approved_session(&app, &fx, proposal(&fx, start_in(2), &[&fx.t1, &fx.t2])).await;
        join(&app, &fx.m1, &sid).await.expect(201);
        let path = format!("/api/group-sessions/{sid}/video");

        let room = app.get(&path, Some(&fx.t2.token)).await;
        let room = room.expect(200).clone();
        let room_id = room["session_id"].as_str().unwrap().to_string();
        assert!(room["join_url"].as_str().unwrap().starts_with("/join/"));
        // Created once: the member and the moderator get the same room.
        for who in [&fx.m1, &fx.moderator, &fx.t1] {
            let again = app.get(&path, Some(&who.token)).await;
            assert_eq!(again.expect(200)["session_id"], json!(room_id));
        }
        assert_eq!(
            app.count("instant_sessions", "organization_id = $1", &fx.org.id)
                .await,
            1
        );
        let stored = app.store.session(&room_id).await.unwrap().unwrap();
        assert_eq!(stored.kind, "group");
        assert!(stored.restricted());
        assert_eq!(stored.therapist_id, fx.t1.id);
        assert_eq!(stored.max_participants, 8 + 2 + 1);
        let group = app.store.group_session(&sid).await.unwrap().unwrap();
        assert!(stored.expires_at > group.end_ms);

        // Not joined: refused here, and refused by the live-video admission.
        app.get(&path, Some(&fx.m2.token))
            .await
            .expect_err(403, "not_invited");
        let claims = |p: &Person, role: Role| {
            app.jwt
                .verify(&app.token(&p.id, role, Some(&fx.org.id), None))
                .unwrap()
        };
        let now = now_ms();
        for (p, role) in [
            (&fx.t1, Role::Therapist),
            (&fx.t2, Role::Therapist),
            (&fx.m1, Role::Client),
            (&fx.moderator, Role::Client),
        ] {
            theraroom::rooms::admission::check(&app.store, &claims(p, role), &stored, now)
                .await
                .unwrap_or_else(|e| panic!("{} refused: {e}", p.id));
        }
        let refused = theraroom::rooms::admission::check(
            &app.store,
            &claims(&fx.m2, Role::Client),
            &stored,
            now,
        )
        .await;
        assert_eq!(refused.unwrap_err().code(), "forbidden");
        // A member who registered in the room and then leaves the group loses admission,
        // and read access: the old registration does not stand in for membership.
        let participants_path = format!("/api/sessions/{}/participants", stored.id);
        app.post(&participants_path, Some(&fx.m1.token), None)
            .await
            .expect(201);
        app.get(&participants_path, Some(&fx.m1.token))
            .await
            .expect(200);
        app.delete(
            &format!("/api/group-sessions/{sid}/leave"),
            Some(&fx.m1.token),
        )
        .await
        .expect(200);
        let refused = theraroom::rooms::admission::check(
            &app.store,
            &claims(&fx.m1, Role::Client),
            &stored,
            now,
        )
        .await;
        assert_eq!(refused.unwrap_err().code(), "forbidden");
        app.post(&participants_path, Some(&fx.m1.token), None)
            .await
            .expect_err(404, "session_not_found");
        app.get(&participants_path, Some(&fx.m1.token))
            .await
            .expect_err(404, "session_not_found");
        app.get(&format!("/api/sessions/{}", stored.id), Some(&fx.m1.token))
            .await
            .expect_err(404, "session_not_found");
        // Guests cannot get in through the share link.
        let share = room["join_url"]
            .as_str()
            .unwrap()
            .trim_start_matches("/join/");
        let guest = app
            .post(
                &format!("/api/join/{share}/guest"),
                None,
                Some(json!({"name": "Gus"})),
            )
            .await;
        if guest.status.as_u16() == 201 {
            let g = app
                .jwt
                .verify(guest.json["token"].as_str().unwrap())
                .unwrap();
            let refused = theraroom::rooms::admission::check(&app.store, &g, &stored, now).await;
            assert_eq!(refused.unwrap_err().code(), "forbidden");
        }

        // In-person and external-link sessions have no TheraRoom room; pending ones neither.
        let mut body = proposal(&fx, start_in(80), &[&fx.t1, &fx.t2]);
        body["session_type"] = json!("in_person");
        body["location"] = json!("Room 1");
        let in_person = approved_session(&app, &fx, body).await;
        app.get(
            &format!("/api/group-sessions/{in_person}/video"),
            Some(&fx.t1.token),
        )
        .await
        .expect_err(409, "not_virtual");
        let mut body = proposal(&fx, start_in(90), &[&fx.t1, &fx.t2]);
        body["meeting_link"] = json!("https://meet.example.org/room");
        let external = approved_session(&app, &fx, body).await;
        app.get(
            &format!("/api/group-sessions/{external}/video"),
            Some(&fx.t1.token),
        )
        .await
        .expect_err(409, "external_meeting_link");

        // Cancelling ends the room.
        app.delete(
            &format!("/api/group-sessions/{sid}"),
            Some(&fx.moderator.token),
        )
        .await
        .expect(200);
        let ended = app.store.session(&room_id).await.unwrap().unwrap();
        assert!(!ended.is_active());
    }
);

// ----------------------------------------------------------------------------------
// Cross-tenant and wrong roles
// ----------------------------------------------------------------------------------

both_dbs!(cross_tenant_and_wrong_role_refusals, |app| async move {
    let fx = setup(&app, "Tenant A").await;
    let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let b = app.org("Tenant B", true).await;
    let b_client = app.client(&b.id, None, "B Client").await;
    let b_therapist = app.therapist(&b.id, "Dr B").await;
    let b_community = community(&app, &b, "B circle").await;

    // Another organization's users see nothing of A's session.
    for who in [&b_client, &b_therapist, &b.admin] {
        app.get(&format!("/api/group-sessions/{sid}"), Some(&who.token))
            .await
            .expect_err(404, "group_session_not_found");
        join(&app, who, &sid)
            .await
            .expect_err(404, "group_session_not_found");
        app.delete(&format!("/api/group-sessions/{sid}"), Some(&who.token))
            .await
            .expect_err(404, "group_session_not_found");
        app.get(
            &format!("/api/group-sessions/{sid}/video"),
            Some(&who.token),
        )
        .await
        .expect_err(404, "group_session_not_found");
        app.get(
            &format!("/api/group-sessions?community_id={}", fx.community),
            Some(&who.token),
        )
        .await
        .expect_err(404, "community_not_found");
    }
    let listed = app.get("/api/group-sessions", Some(&b.admin.token)).await;
    assert_eq!(listed.expect(200)["sessions"], json!([]));
    // B's admin cannot manage A's community or create one in A.
    app.post(
        &format!("/api/communities/{}/members", fx.community),
        Some(&b.admin.token),
        Some(json!({"user_id": b_client.id})),
    )
    .await
    .expect_err(404, "community_not_found");
    app.post(
        "/api/communities",
        Some(&b.admin.token),
        Some(json!({"name": "Sneaky", "organization_id": fx.org.id})),
    )
    .await
    .expect_err(403, "not_organization_owner");
    // A's admin cannot add B's users to A's community.
    app.post(
        &format!("/api/communities/{}/members", fx.community),
        Some(&fx.org.admin.token),
        Some(json!({"user_id": b_client.id})),
    )
    .await
    .expect_err(403, "user_not_in_organization");
    // A's moderator cannot propose in B's community.
    let mut body = proposal(&fx, start_in(40), &[&fx.t1]);
    body["community_id"] = json!(b_community);
    app.post("/api/group-sessions", Some(&fx.moderator.token), Some(body))
        .await
        .expect_err(404, "community_not_found");

    // Wrong roles: guests, and a guest token on every group route.
    let s = app.session(&fx.t1, "Instant").await;
    let guest = app.guest(s["share_token"].as_str().unwrap(), "Gus").await;
    let gt = guest["token"].as_str().unwrap();
    app.get("/api/group-sessions", Some(gt))
        .await
        .expect_err(403, "forbidden");
    app.get("/api/communities", Some(gt))
        .await
        .expect_err(403, "forbidden");
    join(
        &app,
        &Person {
            id: "g".into(),
            token: gt.to_string(),
        },
        &sid,
    )
    .await
    .expect_err(403, "forbidden");
    app.get("/api/group-sessions/therapist/sessions", Some(&fx.m1.token))
        .await
        .expect_err(403, "forbidden");
    // No token.
    app.get("/api/group-sessions", None)
        .await
        .expect_err(401, "unauthorized");
});

// ----------------------------------------------------------------------------------
// Views shared with scheduling: busy time, calendar events
// ----------------------------------------------------------------------------------

both_dbs!(
    group_views_feed_schedule_and_availability,
    |app| async move {
        let fx = setup(&app, "Views Clinic").await;
        let start = start_in(30);
        let created = propose(&app, &fx, proposal(&fx, start, &[&fx.t1, &fx.t2])).await;
        let sid = created["session"]["id"].as_str().unwrap().to_string();
        // Pending: invited therapists and the moderator have the event; nobody is busy.
        let events = |user: String| {
            let store = app.store.clone();
            async move {
                let rows: Vec<(String, String, String, i64, i64, String)> = sqlx::query_as(
                "SELECT event_id, event_type, title, start_ms, end_ms, status FROM group_events WHERE user_id = $1",
            )
            .bind(user)
            .fetch_all(store.pool())
            .await
            .unwrap();
                rows
            }
        };
        let busy = |user: String| {
            let store = app.store.clone();
            async move {
                let mut conn = store.pool().acquire().await.unwrap();
                theraroom::schedule::availability::conflicts(
                    &mut conn,
                    &[user.as_str()],
                    0,
                    i64::MAX,
                )
                .await
                .unwrap()
            }
        };
        let e = events(fx.t1.id.clone()).await;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, sid);
        assert_eq!(e[0].1, "group_session");
        assert_eq!((e[0].3, e[0].4), (start, start + HOUR_MS));
        assert_eq!(e[0].5, "pending_approval");
        assert_eq!(events(fx.moderator.id.clone()).await.len(), 1);
        assert!(events(fx.m1.id.clone()).await.is_empty());
        assert!(busy(fx.t1.id.clone()).await.is_empty());

        for t in [&fx.t1, &fx.t2] {
            respond(&app, t, &invitation_of(&created, t), "accept")
                .await
                .expect(200);
        }
        join(&app, &fx.m1, &sid).await.expect(201);
        let b = busy(fx.t1.id.clone()).await;
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].start_ms, b[0].end_ms, b[0].source_id.clone()),
            (start, start + HOUR_MS, sid.clone())
        );
        assert_eq!(busy(fx.m1.id.clone()).await.len(), 1);
        assert!(busy(fx.m2.id.clone()).await.is_empty());
        let e = events(fx.m1.id.clone()).await;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].5, "approved");
        // Leaving removes the event and the busy time.
        app.delete(
            &format!("/api/group-sessions/{sid}/leave"),
            Some(&fx.m1.token),
        )
        .await
        .expect(200);
        assert!(events(fx.m1.id.clone()).await.is_empty());
        assert!(busy(fx.m1.id.clone()).await.is_empty());
    }
);

// ----------------------------------------------------------------------------------
// 5. Schedule view (the unified schedule reads the group views)
// ----------------------------------------------------------------------------------

fn event_ids(schedule: &Value) -> Vec<(String, String)> {
    schedule["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().to_string(),
                e["event_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

both_dbs!(unified_schedule_merges_group_sessions, |app| async move {
    let fx = setup(&app, "Schedule Clinic").await;
    let base = start_in(1);
    // Group sessions at +30h and +50h that m1 joins; one at +70h that completes.
    let a = approved_session(
        &app,
        &fx,
        proposal(&fx, base + 30 * HOUR_MS, &[&fx.t1, &fx.t2]),
    )
    .await;
    let b = approved_session(
        &app,
        &fx,
        proposal(&fx, base + 50 * HOUR_MS, &[&fx.t1, &fx.t2]),
    )
    .await;
    let c = approved_session(
        &app,
        &fx,
        proposal(&fx, base + 70 * HOUR_MS, &[&fx.t1, &fx.t2]),
    )
    .await;
    for sid in [&b, &a, &c] {
        join(&app, &fx.m1, sid).await.expect(201);
    }
    sqlx::query("UPDATE group_sessions SET status = 'completed' WHERE id = $1")
        .bind(&c)
        .execute(app.store.pool())
        .await
        .unwrap();
    // And a 1:1 session with t1 at +10h.
    book_one_on_one(&app, &fx, &fx.m1, base + 10 * HOUR_MS, base + 11 * HOUR_MS).await;
    let window = |from: i64, to: i64, completed: bool| {
        format!(
            "/api/schedule?start={}&end={}&includeCompleted={completed}",
            urlencode(&at(from)),
            urlencode(&at(to))
        )
    };

    // Both kinds, sorted chronologically; completed left out by default.
    let s = app
        .get(
            &window(base, base + 100 * HOUR_MS, false),
            Some(&fx.m1.token),
        )
        .await;
    let s = s.expect(200).clone();
    let ids = event_ids(&s);
    assert_eq!(ids.len(), 3, "{s}");
    assert_eq!(ids[0].0, "one_on_one");
    assert_eq!(ids[1], ("group_session".to_string(), a.clone()));
    assert_eq!(ids[2], ("group_session".to_string(), b.clone()));
    assert_eq!(s["events"][1]["title"], "Coping with anxiety");
    assert_eq!(s["events"][1]["status"], "approved");
    let starts: Vec<&str> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["start"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    // Completed ones when asked.
    let all = app
        .get(
            &window(base, base + 100 * HOUR_MS, true),
            Some(&fx.m1.token),
        )
        .await;
    let all = event_ids(all.expect(200));
    assert_eq!(all.len(), 4);
    assert_eq!(all[3], ("group_session".to_string(), c.clone()));
    // The date range filters.
    let narrow = app
        .get(
            &window(base + 20 * HOUR_MS, base + 40 * HOUR_MS, true),
            Some(&fx.m1.token),
        )
        .await;
    assert_eq!(
        event_ids(narrow.expect(200)),
        vec![("group_session".to_string(), a.clone())]
    );
    // The therapists and the moderator see the group sessions too.
    let t = app
        .get(
            &window(base, base + 100 * HOUR_MS, false),
            Some(&fx.t2.token),
        )
        .await;
    assert_eq!(
        event_ids(t.expect(200)),
        vec![
            ("group_session".to_string(), a.clone()),
            ("group_session".to_string(), b.clone())
        ]
    );
    let m = app
        .get(
            &window(base, base + 100 * HOUR_MS, false),
            Some(&fx.moderator.token),
        )
        .await;
    assert_eq!(event_ids(m.expect(200)).len(), 2);
    // Cancelled sessions leave the schedule.
    app.delete(
        &format!("/api/group-sessions/{b}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    let after = app
        .get(
            &window(base, base + 100 * HOUR_MS, false),
            Some(&fx.m1.token),
        )
        .await;
    assert_eq!(event_ids(after.expect(200)).len(), 2);

    // The conflicts endpoint sees group sessions, with half-open edges.
    let start_a = base + 30 * HOUR_MS;
    let check = |from: i64, to: i64| {
        format!(
            "/api/schedule/conflicts?start={}&end={}",
            urlencode(&at(from)),
            urlencode(&at(to))
        )
    };
    let busy = app
        .get(
            &check(start_a + 15 * 60_000, start_a + 45 * 60_000),
            Some(&fx.t1.token),
        )
        .await;
    assert_eq!(busy.expect(200)["free"], false);
    let edge = app
        .get(
            &check(start_a + HOUR_MS, start_a + 2 * HOUR_MS),
            Some(&fx.t1.token),
        )
        .await;
    assert_eq!(edge.expect(200)["free"], true);
    let edge = app
        .get(&check(start_a - HOUR_MS, start_a), Some(&fx.m1.token))
        .await;
    assert_eq!(edge.expect(200)["free"], true);
});

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

// ----------------------------------------------------------------------------------
// Notifications
// ----------------------------------------------------------------------------------

both_dbs!(notifications_list_read_and_reminders, |app| async move {
    let fx = setup(&app, "Notify Clinic").await;
    let start = start_in(2);
    let sid = approved_session(&app, &fx, proposal(&fx, start, &[&fx.t1, &fx.t2])).await;
    join(&app, &fx.m1, &sid).await.expect(201);

    // Reminders: due within the lead time, sent once, to therapists and participants.
    let lead = 3 * HOUR_MS;
    let sent = theraroom::store::group_reminders::send_due_reminders(&app.store, now_ms(), lead)
        .await
        .unwrap();
    let mut to: Vec<String> = sent.iter().map(|n| n.user_id.clone()).collect();
    to.sort();
    let mut expected = vec![fx.t1.id.clone(), fx.t2.id.clone(), fx.m1.id.clone()];
    expected.sort();
    assert_eq!(to, expected);
    assert!(sent.iter().all(|n| n.kind == "group_session_reminder"));
    let again = theraroom::store::group_reminders::send_due_reminders(&app.store, now_ms(), lead)
        .await
        .unwrap();
    assert!(again.is_empty(), "reminded once");
    // Not yet due with a short lead.
    let other = approved_session(&app, &fx, proposal(&fx, start_in(20), &[&fx.t1, &fx.t2])).await;
    let early = theraroom::store::group_reminders::send_due_reminders(&app.store, now_ms(), lead)
        .await
        .unwrap();
    assert!(early.is_empty());
    // A declined invitation on a third session, and a cancellation.
    let third = propose(&app, &fx, proposal(&fx, start_in(40), &[&fx.t1])).await;
    respond(&app, &fx.t1, &invitation_of(&third, &fx.t1), "decline")
        .await
        .expect(200);
    app.delete(
        &format!("/api/group-sessions/{other}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);

    // Every seed-001 type exists somewhere.
    let mut all: Vec<String> = Vec::new();
    for p in [&fx.moderator, &fx.t1, &fx.t2, &fx.m1, &fx.m2] {
        all.extend(kinds_of(&app, p).await);
    }
    for kind in [
        "group_session_invitation",
        "group_session_invitation_accepted",
        "group_session_invitation_declined",
        "group_session_approved",
        "group_session_cancelled",
        "group_session_reminder",
        "group_session_member_joined",
    ] {
        assert!(all.iter().any(|k| k == kind), "no {kind} in {all:?}");
    }

    // Listing: newest first, unread filter, unread count; mark read.
    let list = app.get("/api/notifications", Some(&fx.m1.token)).await;
    let list = list.expect(200).clone();
    let items = list["notifications"].as_array().unwrap();
    let total = items.len() as i64;
    assert_eq!(list["unread_count"], json!(total));
    let created: Vec<&str> = items
        .iter()
        .map(|n| n["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert!(items.iter().all(|n| n["read"] == false));
    let first_id = items[0]["id"].as_str().unwrap().to_string();
    let read = app
        .post(
            &format!("/api/notifications/{first_id}/read"),
            Some(&fx.m1.token),
            None,
        )
        .await;
    let read = read.expect(200);
    assert_eq!(read["read"], true);
    assert!(read["read_at"].is_string());
    // Idempotent.
    app.post(
        &format!("/api/notifications/{first_id}/read"),
        Some(&fx.m1.token),
        None,
    )
    .await
    .expect(200);
    let unread = app
        .get("/api/notifications?unread=true", Some(&fx.m1.token))
        .await;
    let unread = unread.expect(200);
    assert_eq!(
        unread["notifications"].as_array().unwrap().len() as i64,
        total - 1
    );
    assert_eq!(unread["unread_count"], json!(total - 1));
    assert!(unread["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["id"] != json!(first_id)));
    // Another user's notification: 404, and it stays unread.
    let theirs = app.get("/api/notifications", Some(&fx.t1.token)).await;
    let their_id = theirs.expect(200)["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/api/notifications/{their_id}/read"),
        Some(&fx.m1.token),
        None,
    )
    .await
    .expect_err(404, "notification_not_found");
    app.post("/api/notifications/nope/read", Some(&fx.m1.token), None)
        .await
        .expect_err(404, "notification_not_found");
    let theirs = app
        .get("/api/notifications?unread=true", Some(&fx.t1.token))
        .await;
    assert!(theirs.expect(200)["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["id"] == json!(their_id)));
    app.get("/api/notifications?limit=0", Some(&fx.m1.token))
        .await
        .expect_err(400, "invalid_limit");
});

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

both_dbs!(notifications_are_pushed_live, |app| async move {
    let fx = setup(&app, "Live Clinic").await;
    let live = Arc::new(RecordingLive::default());
    let state = AppState {
        live: live.clone(),
        ..app.state()
    };
    let router = theraroom::api::router(state).0;
    let body = proposal(&fx, start_in(30), &[&fx.t1]);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/group-sessions")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", fx.moderator.token),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let created = common::send_to(&router, req).await;
    let created = created.expect(201).clone();
    let pushed = live.pushed.lock().unwrap().clone();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    let (user, n) = &pushed[0];
    assert_eq!(user, &fx.t1.id);
    assert_eq!(n["type"], "group_session_invitation");
    assert_eq!(n["payload"]["group_session_id"], created["session"]["id"]);
    assert_eq!(n["read"], false);
    // The pushed notification is the stored one.
    let stored = app.get("/api/notifications", Some(&fx.t1.token)).await;
    assert_eq!(stored.expect(200)["notifications"][0]["id"], n["id"]);
});

both_dbs!(
    joins_leaves_invitations_and_their_audit_commit_together,
    |app| async move {
        use super::audit::{allow_audit, refuse_audit};
        let fx = setup(&app, "Atomic Group Clinic").await;
        // No invitation audit row: no session, no invitation, no notification.
        refuse_audit(&app, "group_session.invitation.create").await;
        app.post(
            "/api/group-sessions",
            Some(&fx.moderator.token),
            Some(proposal(&fx, start_in(30), &[&fx.t1])),
        )
        .await
        .expect_err(500, "internal");
        assert_eq!(
            app.count("group_sessions", "community_id = $1", &fx.community)
                .await,
            0
        );
        assert_eq!(
            app.count("notifications", "user_id = $1", &fx.t1.id).await,
            0
        );
        allow_audit(&app).await;

        let sid = approved_session(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
        let seated = "session_id = $1 AND attendance_status = 'registered'";
        refuse_audit(&app, "group_session.join").await;
        join(&app, &fx.m1, &sid).await.expect_err(500, "internal");
        assert_eq!(
            app.count("group_session_participants", seated, &sid).await,
            0
        );
        allow_audit(&app).await;
        join(&app, &fx.m1, &sid).await.expect(201);

        refuse_audit(&app, "group_session.leave").await;
        let leave_path = format!("/api/group-sessions/{sid}/leave");
        app.delete(&leave_path, Some(&fx.m1.token))
            .await
            .expect_err(500, "internal");
        assert_eq!(
            app.count("group_session_participants", seated, &sid).await,
            1
        );
        allow_audit(&app).await;
        app.delete(&leave_path, Some(&fx.m1.token))
            .await
            .expect(200);
        assert_eq!(
            app.count("group_session_participants", seated, &sid).await,
            0
        );
    }
);
