//! Group therapy sessions: communities (members and their roles) and the
//! creation of a group session (pending, with one invitation per therapist) and its
//! refusals. Fixtures: [`super::groups`].

use super::groups::{at, invitation_of, kinds_of, now_ms, proposal, propose, setup, start_in};
use super::*;

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
