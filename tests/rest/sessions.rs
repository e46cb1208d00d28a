//! Instant sessions: create, validate, list per role, read, end.

use super::*;

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["sessions"]
        .as_array()
        .expect("sessions array")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn parse_time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("timestamp string"))
        .expect("RFC 3339")
        .with_timezone(&chrono::Utc)
}

both_dbs!(create_session_success, |app| async move {
    let org = app.org("Session Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Create").await;
    let before = chrono::Utc::now();
    let resp = app
        .post(
            "/api/sessions",
            Some(&t.token),
            Some(json!({"session_name": "  Weekly check-in ", "expires_in_minutes": 30})),
        )
        .await;
    let s = resp.expect(201).clone();
    assert_eq!(s["session_name"], "Weekly check-in");
    assert_eq!(s["is_active"], true);
    assert_eq!(s["kind"], "instant");
    assert_eq!(s["max_participants"], 2);
    assert_eq!(s["therapist_id"], json!(t.id));
    assert_eq!(s["therapist_name"], "Dr Create");
    assert_eq!(s["organization_id"], json!(org.id));
    assert!(s["ended_at"].is_null());
    let share = s["share_token"].as_str().unwrap();
    assert!(
        share.len() >= 22,
        "share token carries at least 128 bits: {share}"
    );
    assert!(share
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(s["join_url"], json!(format!("/join/{share}")));
    let expires = parse_time(&s["expires_at"]);
    let minutes = (expires - before).num_seconds() as f64 / 60.0;
    assert!(
        (29.0..=31.0).contains(&minutes),
        "expires in about 30 minutes, got {minutes}"
    );
    let sid = s["id"].as_str().unwrap();
    assert_eq!(
        app.audit_actions("session", sid).await,
        vec!["session.create"]
    );

    // Group sessions: explicit kind, or implied by capacity.
    let g = app
        .post(
            "/api/sessions",
            Some(&t.token),
            Some(json!({"session_name": "Group", "max_participants": 8})),
        )
        .await;
    let g = g.expect(201);
    assert_eq!(g["kind"], "group");
    assert_eq!(g["max_participants"], 8);
    let g2 = app
        .post(
            "/api/sessions",
            Some(&t.token),
            Some(json!({"session_name": "Pair group", "max_participants": 2, "kind": "group"})),
        )
        .await;
    assert_eq!(g2.expect(201)["kind"], "group");
    // Two sessions never share a link.
    assert_ne!(g["share_token"], s["share_token"]);
});

both_dbs!(create_session_validation, |app| async move {
    let org = app.org("Validation Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Strict").await;
    let tok = Some(t.token.as_str());
    let cases = [
        (json!({"session_name": ""}), "invalid_session_name"),
        (json!({"session_name": "   "}), "invalid_session_name"),
        (
            json!({"session_name": "x".repeat(121)}),
            "invalid_session_name",
        ),
        (
            json!({"session_name": "bell\u{0007}"}),
            "invalid_session_name",
        ),
        (
            json!({"session_name": "two\nlines"}),
            "invalid_session_name",
        ),
        (
            json!({"session_name": "ok", "max_participants": 1}),
            "invalid_max_participants",
        ),
        (
            json!({"session_name": "ok", "max_participants": 51}),
            "invalid_max_participants",
        ),
        (
            json!({"session_name": "ok", "expires_in_minutes": 4}),
            "invalid_expiry",
        ),
        (
            json!({"session_name": "ok", "expires_in_minutes": 1441}),
            "invalid_expiry",
        ),
        (
            json!({"session_name": "ok", "kind": "webinar"}),
            "invalid_kind",
        ),
        (json!({}), "invalid_json"),
        (json!({"session_name": 42}), "invalid_json"),
        (
            json!({"session_name": "ok", "max_participants": "four"}),
            "invalid_json",
        ),
    ];
    for (body, code) in cases {
        let resp = app.post("/api/sessions", tok, Some(body.clone())).await;
        assert_eq!(resp.status.as_u16(), 400, "{body} → {}", resp.text);
        resp.expect_err(400, code);
    }
    app.post_raw("/api/sessions", tok, "application/json", "{not json")
        .await
        .expect_err(400, "invalid_json");
    app.post_raw(
        "/api/sessions",
        tok,
        "text/plain",
        r#"{"session_name":"ok"}"#,
    )
    .await
    .expect_err(415, "unsupported_media_type");
    // The limits themselves are accepted.
    app.post(
        "/api/sessions",
        tok,
        Some(json!({"session_name": "y".repeat(120), "max_participants": 50, "expires_in_minutes": 1440})),
    )
    .await
    .expect(201);
    app.post(
        "/api/sessions",
        tok,
        Some(json!({"session_name": "z", "max_participants": 2, "expires_in_minutes": 5})),
    )
    .await
    .expect(201);
    assert_eq!(
        app.count("instant_sessions", "therapist_id = $1", &t.id)
            .await,
        2
    );
});

both_dbs!(create_session_wrong_role, |app| async move {
    let org = app.org("Role Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Real").await;
    let client = app.client(&org.id, Some(&t.id), "Client").await;
    let admin_user = app.user(&org.id, Role::Admin, "Admin").await;
    let session = app.session(&t, "Existing").await;
    let guest = app
        .guest(session["share_token"].as_str().unwrap(), "Guest")
        .await;
    let root = app.super_admin("Root").await.token;
    let body = json!({"session_name": "Not mine to start"});
    for token in [
        &client.token,
        &org.admin.token,
        &admin_user.token,
        &root,
        guest["token"].as_str().unwrap(),
    ] {
        app.post("/api/sessions", Some(token), Some(body.clone()))
            .await
            .expect_err(403, "forbidden");
    }
    // A therapist token whose subject is no user at all is refused at the door, and
    // one for a user whose row is not a therapist claims a role it does not have.
    let fake = app.token("not-a-therapist", Role::Therapist, Some(&org.id), None);
    app.post("/api/sessions", Some(&fake), Some(body.clone()))
        .await
        .expect_err(401, "invalid_token");
    let escalated = app.token(&client.id, Role::Therapist, Some(&org.id), None);
    app.post("/api/sessions", Some(&escalated), Some(body.clone()))
        .await
        .expect_err(401, "invalid_token");
    app.post("/api/sessions", None, Some(body))
        .await
        .expect_err(401, "unauthorized");
    assert_eq!(
        app.count("instant_sessions", "organization_id = $1", &org.id)
            .await,
        1
    );
});

both_dbs!(list_sessions_per_role, |app| async move {
    let org = app.org("Listing Clinic", true).await;
    let t1 = app.therapist(&org.id, "Dr One").await;
    let t2 = app.therapist(&org.id, "Dr Two").await;
    let client = app.client(&org.id, Some(&t1.id), "Client").await;
    let other = app.org("Elsewhere", true).await;
    let t3 = app.therapist(&other.id, "Dr Three").await;

    let a = app.session(&t1, "A").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.session(&t1, "B").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = app.session(&t2, "C").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = app.session(&t3, "D").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Therapist: own sessions only, with links.
    let list = app.get("/api/sessions", Some(&t1.token)).await;
    let list = list.expect(200);
    assert_eq!(ids(list), sorted(vec![a.clone(), b.clone()]));
    assert!(list["sessions"][0]["join_url"]
        .as_str()
        .unwrap()
        .starts_with("/join/"));
    assert_eq!(
        ids(app.get("/api/sessions", Some(&t2.token)).await.expect(200)),
        vec![c.clone()]
    );

    // Organization administrators: the organization's sessions.
    let list = app.get("/api/sessions", Some(&org.admin.token)).await;
    assert_eq!(
        ids(list.expect(200)),
        sorted(vec![a.clone(), b.clone(), c.clone()])
    );
    let admin_user = app.user(&org.id, Role::Admin, "Admin").await;
    let list = app.get("/api/sessions", Some(&admin_user.token)).await;
    assert_eq!(
        ids(list.expect(200)),
        sorted(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(
        ids(app
            .get("/api/sessions", Some(&other.admin.token))
            .await
            .expect(200)),
        vec![d.clone()]
    );

    // Client: the sessions they joined (registered in), without links.
    assert_eq!(
        ids(app
            .get("/api/sessions", Some(&client.token))
            .await
            .expect(200)),
        Vec::<String>::new()
    );
    app.post(
        &format!("/api/sessions/{a}/participants"),
        Some(&client.token),
        None,
    )
    .await
    .expect(201);
    let list = app.get("/api/sessions", Some(&client.token)).await;
    let list = list.expect(200);
    assert_eq!(ids(list), vec![a.clone()]);
    assert!(list["sessions"][0].get("share_token").is_none());
    assert!(list["sessions"][0].get("join_url").is_none());

    // Roles without a listing.
    let root = app.super_admin("Root").await.token;
    app.get("/api/sessions", Some(&root))
        .await
        .expect_err(403, "forbidden");
    let share = app
        .get(&format!("/api/sessions/{a}"), Some(&t1.token))
        .await
        .expect(200)["share_token"]
        .as_str()
        .unwrap()
        .to_string();
    let guest = app.guest(&share, "Guest").await;
    app.get("/api/sessions", guest["token"].as_str())
        .await
        .expect_err(403, "forbidden");
    app.get("/api/sessions", None)
        .await
        .expect_err(401, "unauthorized");
});

both_dbs!(get_session_visibility, |app| async move {
    let org = app.org("Visibility Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Owner").await;
    let colleague = app.therapist(&org.id, "Dr Colleague").await;
    let client = app.client(&org.id, Some(&t.id), "Client").await;
    let other = app.org("Other Tenant", true).await;
    let other_t = app.therapist(&other.id, "Dr Other").await;
    let other_admin = app.user(&other.id, Role::Admin, "Other Admin").await;
    let s = app.session(&t, "Private").await;
    let sid = s["id"].as_str().unwrap();
    let path = format!("/api/sessions/{sid}");

    let own = app.get(&path, Some(&t.token)).await;
    assert_eq!(own.expect(200)["join_url"], s["join_url"]);
    let by_admin = app.get(&path, Some(&org.admin.token)).await;
    assert_eq!(by_admin.expect(200)["id"], json!(sid));

    // Not visible (404, same as unknown) to those who have nothing to do with it.
    for token in [
        &colleague.token,
        &client.token,
        &other_t.token,
        &other_admin.token,
        &other.admin.token,
    ] {
        app.get(&path, Some(token))
            .await
            .expect_err(404, "session_not_found");
    }
    app.get("/api/sessions/no-such-session", Some(&t.token))
        .await
        .expect_err(404, "session_not_found");
    app.get(&path, None).await.expect_err(401, "unauthorized");

    // A registered client sees it, without the link.
    app.post(&format!("{path}/participants"), Some(&client.token), None)
        .await
        .expect(201);
    let seen = app.get(&path, Some(&client.token)).await;
    let seen = seen.expect(200);
    assert_eq!(seen["session_name"], "Private");
    assert!(seen.get("share_token").is_none() && seen.get("join_url").is_none());
});

both_dbs!(end_session_and_its_failures, |app| async move {
    let org = app.org("Ending Clinic", true).await;
    let t = app.therapist(&org.id, "Dr End").await;
    let client = app.client(&org.id, Some(&t.id), "Client").await;
    let other = app.org("Other", true).await;
    let other_t = app.therapist(&other.id, "Dr Other").await;
    let s = app.session(&t, "To end").await;
    let sid = s["id"].as_str().unwrap();
    let end = format!("/api/sessions/{sid}/end");
    app.post(
        &format!("/api/sessions/{sid}/participants"),
        Some(&client.token),
        None,
    )
    .await
    .expect(201);

    // Refusals first: nothing ends.
    app.post(&end, None, None)
        .await
        .expect_err(401, "unauthorized");
    app.post(&end, Some(&client.token), None)
        .await
        .expect_err(403, "forbidden");
    app.post(&end, Some(&other_t.token), None)
        .await
        .expect_err(404, "session_not_found");
    app.post(&end, Some(&other.admin.token), None)
        .await
        .expect_err(404, "session_not_found");
    app.post("/api/sessions/no-such-session/end", Some(&t.token), None)
        .await
        .expect_err(404, "session_not_found");
    assert_eq!(
        app.get(&format!("/api/sessions/{sid}"), Some(&t.token))
            .await
            .expect(200)["is_active"],
        true
    );

    let ended = app.post(&end, Some(&t.token), None).await;
    let ended = ended.expect(200);
    assert_eq!(ended["is_active"], false);
    assert!(ended["ended_at"].is_string());
    app.post(&end, Some(&t.token), None)
        .await
        .expect_err(409, "session_already_ended");
    app.post(&end, Some(&org.admin.token), None)
        .await
        .expect_err(409, "session_already_ended");
    let read = app
        .get(&format!("/api/sessions/{sid}"), Some(&t.token))
        .await;
    assert_eq!(read.expect(200)["is_active"], false);
    let audit = app.store.audit_for_target("session", sid).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, vec!["session.create", "session.end"]);
    assert_eq!(audit[1].actor_id, t.id);
    assert_eq!(
        audit[1].after_state.as_deref(),
        Some(r#"{"is_active":false}"#)
    );

    // An expired session reads as inactive.
    let s2 = app.session(&t, "Will expire").await;
    let sid2 = s2["id"].as_str().unwrap();
    app.expire_session(sid2).await;
    let read = app
        .get(&format!("/api/sessions/{sid2}"), Some(&t.token))
        .await;
    assert_eq!(read.expect(200)["is_active"], false);
});
