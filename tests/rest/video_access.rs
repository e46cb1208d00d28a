//! Organization-level and per-therapist video access, the decision matrix
//! through the API, read-only when disabled, listing counts, bulk all-or-nothing, audit.

use super::*;
use theraroom::access::{ORGANIZATION_DISABLED_MESSAGE, THERAPIST_DISABLED_MESSAGE};

fn org_settings(org: &str) -> String {
    format!("/api/organizations/{org}/video-settings")
}

fn list_path(org: &str) -> String {
    format!("/api/organizations/{org}/therapists/video-settings")
}

fn one_path(org: &str, therapist: &str) -> String {
    format!("/api/organizations/{org}/therapists/{therapist}/video-settings")
}

fn bulk_path(org: &str) -> String {
    format!("/api/organizations/{org}/therapists/video-settings/bulk")
}

async fn try_create(app: &TestApp, therapist: &Person) -> common::Resp {
    app.post(
        "/api/sessions",
        Some(&therapist.token),
        Some(json!({"session_name": "Check-in"})),
    )
    .await
}

async fn set_org(app: &TestApp, org: &OrgFx, enabled: bool) {
    let body = app
        .put(
            &org_settings(&org.id),
            Some(&org.admin.token),
            json!({"video_sessions_enabled": enabled}),
        )
        .await;
    assert_eq!(body.expect(200)["video_sessions_enabled"], json!(enabled));
}

async fn set_therapist(app: &TestApp, org: &OrgFx, therapist: &Person, enabled: bool) {
    let resp = app
        .put(
            &one_path(&org.id, &therapist.id),
            Some(&org.admin.token),
            json!({"video_sessions_enabled": enabled}),
        )
        .await;
    assert_eq!(resp.expect(200)["video_sessions_enabled"], json!(enabled));
}

fn row<'a>(list: &'a Value, therapist_id: &str) -> &'a Value {
    list["therapists"]
        .as_array()
        .expect("therapists array")
        .iter()
        .find(|t| t["therapist_id"] == json!(therapist_id))
        .unwrap_or_else(|| panic!("therapist {therapist_id} missing from {list}"))
}

both_dbs!(decision_matrix_through_the_api, |app| async move {
    let org = app.org("Matrix Clinic", true).await;
    let on = app.therapist(&org.id, "Dr On").await;
    let off = app.therapist(&org.id, "Dr Off").await;
    set_therapist(&app, &org, &off, false).await;

    // Organization enabled: therapist enabled → allowed; therapist disabled → blocked.
    try_create(&app, &on).await.expect(201);
    let refused = try_create(&app, &off).await;
    refused.expect_err(403, "therapist_disabled");
    assert_eq!(refused.message(), THERAPIST_DISABLED_MESSAGE);
    assert_eq!(
        refused.message(),
        "Video sessions are not enabled for your account. Please contact your organization administrator."
    );
    let list = app.get(&list_path(&org.id), Some(&org.admin.token)).await;
    let list = list.expect(200);
    assert_eq!(
        row(list, &on.id)["access"],
        json!({"is_enabled": true, "reason": "enabled", "message": "Video sessions are enabled."})
    );
    assert_eq!(row(list, &off.id)["access"]["reason"], "therapist_disabled");
    assert_eq!(row(list, &off.id)["access"]["is_enabled"], false);
    assert_eq!(
        row(list, &off.id)["access"]["message"],
        THERAPIST_DISABLED_MESSAGE
    );

    // Organization disabled: both blocked, the organization level decides.
    set_org(&app, &org, false).await;
    for t in [&on, &off] {
        let refused = try_create(&app, t).await;
        refused.expect_err(403, "organization_disabled");
        assert_eq!(refused.message(), ORGANIZATION_DISABLED_MESSAGE);
    }
    let list = app.get(&list_path(&org.id), Some(&org.admin.token)).await;
    let list = list.expect(200);
    assert_eq!(list["organization"]["video_sessions_enabled"], false);
    assert_eq!(
        row(list, &on.id)["access"]["reason"],
        "organization_disabled"
    );
    assert_eq!(
        row(list, &off.id)["access"]["reason"],
        "organization_disabled"
    );
    assert_eq!(
        row(list, &on.id)["video_sessions_enabled"],
        true,
        "the therapist switch itself is untouched"
    );

    // Organization enabled again: back to the therapist level.
    set_org(&app, &org, true).await;
    try_create(&app, &on).await.expect(201);
    try_create(&app, &off)
        .await
        .expect_err(403, "therapist_disabled");
    set_therapist(&app, &org, &off, true).await;
    try_create(&app, &off).await.expect(201);
});

both_dbs!(non_controlled_org_uses_org_level_only, |app| async move {
    let org = app.org("Independent Practice", false).await;
    let t = app.therapist(&org.id, "Dr Indie").await;
    let token = Some(org.admin.token.as_str());

    // The per-therapist endpoints belong to theraptrack-controlled organizations.
    app.get(&list_path(&org.id), token)
        .await
        .expect_err(403, "not_theraptrack_controlled");
    app.put(
        &one_path(&org.id, &t.id),
        token,
        json!({"video_sessions_enabled": false}),
    )
    .await
    .expect_err(403, "not_theraptrack_controlled");
    app.put(
        &bulk_path(&org.id),
        token,
        json!({"therapist_ids": [t.id], "video_sessions_enabled": false}),
    )
    .await
    .expect_err(403, "not_theraptrack_controlled");
    assert!(app.audit_actions("therapist", &t.id).await.is_empty());

    // Even a therapist switch that is off (set behind the API's back) does not count.
    app.set_therapist_video_db(&t.id, false).await;
    try_create(&app, &t).await.expect(201);

    // The organization-level switch still governs.
    let got = app.get(&org_settings(&org.id), token).await;
    assert_eq!(
        got.expect(200).clone(),
        json!({"organization_id": org.id, "theraptrack_controlled": false, "video_sessions_enabled": true})
    );
    set_org(&app, &org, false).await;
    let refused = try_create(&app, &t).await;
    refused.expect_err(403, "organization_disabled");
    assert_eq!(refused.message(), ORGANIZATION_DISABLED_MESSAGE);
    set_org(&app, &org, true).await;
    try_create(&app, &t).await.expect(201);
    assert_eq!(
        app.audit_actions("organization", &org.id).await,
        vec![
            "organization.video_settings.update",
            "organization.video_settings.update"
        ]
    );
});

both_dbs!(disabled_therapist_is_read_only, |app| async move {
    let org = app.org("Read Only Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Paused").await;
    let session = app.session(&t, "Before the pause").await;
    let sid = session["id"].as_str().unwrap().to_string();
    let share = session["share_token"].as_str().unwrap().to_string();
    let guest = app.guest(&share, "Visitor").await;
    let gtoken = guest["token"].as_str().unwrap().to_string();
    let reg = app
        .post(
            &format!("/api/sessions/{sid}/participants"),
            Some(&gtoken),
            None,
        )
        .await;
    let pid = reg.expect(201)["id"].as_str().unwrap().to_string();

    set_therapist(&app, &org, &t, false).await;

    // Reading still works.
    let list = app.get("/api/sessions", Some(&t.token)).await;
    let list = list.expect(200);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(list["sessions"][0]["id"], json!(sid));
    let one = app
        .get(&format!("/api/sessions/{sid}"), Some(&t.token))
        .await;
    assert_eq!(one.expect(200)["session_name"], "Before the pause");
    app.get(&format!("/api/sessions/{sid}/participants"), Some(&t.token))
        .await
        .expect(200);

    // Changing does not.
    let end = app
        .post(&format!("/api/sessions/{sid}/end"), Some(&t.token), None)
        .await;
    end.expect_err(403, "therapist_disabled");
    assert_eq!(end.message(), THERAPIST_DISABLED_MESSAGE);
    app.delete(
        &format!("/api/sessions/{sid}/participants/{pid}"),
        Some(&t.token),
    )
    .await
    .expect_err(403, "therapist_disabled");
    try_create(&app, &t)
        .await
        .expect_err(403, "therapist_disabled");
    // New guests are not admitted to a disabled therapist's session either.
    app.post(
        &format!("/api/join/{share}/guest"),
        None,
        Some(json!({"name": "Late"})),
    )
    .await
    .expect_err(403, "therapist_disabled");
    let still = app
        .get(&format!("/api/sessions/{sid}"), Some(&t.token))
        .await;
    assert_eq!(
        still.expect(200)["is_active"],
        true,
        "the refused end changed nothing"
    );
    assert_eq!(
        app.audit_actions("session", &sid).await,
        vec!["session.create", "session.guest.create"],
        "the refusals wrote nothing"
    );

    // The organization administrator can still end it.
    let ended = app
        .post(
            &format!("/api/sessions/{sid}/end"),
            Some(&org.admin.token),
            None,
        )
        .await;
    assert_eq!(ended.expect(200)["is_active"], false);
});

both_dbs!(listing_has_usage_counts, |app| async move {
    let org = app.org("Counting Clinic", true).await;
    let busy = app.therapist(&org.id, "Dr Busy").await;
    let idle = app.therapist(&org.id, "Dr Idle").await;
    app.client(&org.id, Some(&busy.id), "Client One").await;
    app.client(&org.id, Some(&busy.id), "Client Two").await;
    let gone = app.client(&org.id, Some(&busy.id), "Client Gone").await;
    app.client(&org.id, None, "Unassigned").await;
    sqlx::query("UPDATE clients SET deleted_at = $1 WHERE id = $2")
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(&gone.id)
        .execute(app.store.pool())
        .await
        .unwrap();
    for name in ["One", "Two", "Three"] {
        app.session(&busy, name).await;
    }
    // Another organization's data is not counted.
    let other = app.org("Other Clinic", true).await;
    let stranger = app.therapist(&other.id, "Dr Stranger").await;
    app.client(&other.id, Some(&stranger.id), "Their Client")
        .await;
    app.session(&stranger, "Theirs").await;
    set_therapist(&app, &org, &idle, false).await;

    let list = app.get(&list_path(&org.id), Some(&org.admin.token)).await;
    let list = list.expect(200);
    assert_eq!(list["total"], 2);
    assert_eq!(list["enabled"], 1);
    assert_eq!(list["disabled"], 1);
    assert_eq!(
        list["organization"],
        json!({"organization_id": org.id, "theraptrack_controlled": true, "video_sessions_enabled": true})
    );
    let b = row(list, &busy.id);
    assert_eq!(b["client_count"], 2, "soft-deleted clients are not counted");
    assert_eq!(b["session_count"], 3);
    assert_eq!(b["name"], "Dr Busy");
    assert_eq!(b["video_sessions_enabled"], true);
    assert!(b["email"].as_str().unwrap().contains('@'));
    assert!(!b["partner_code"].as_str().unwrap().is_empty());
    let i = row(list, &idle.id);
    assert_eq!(i["client_count"], 0);
    assert_eq!(i["session_count"], 0);
    assert_eq!(i["video_sessions_enabled"], false);
    assert!(list["therapists"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["therapist_id"] != json!(stranger.id)));
});

both_dbs!(update_one_therapist_and_its_failures, |app| async move {
    let org = app.org("Switch Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Switch").await;
    app.client(&org.id, Some(&t.id), "Their Client").await;
    let other = app.org("Neighbour Clinic", true).await;
    let foreign = app.therapist(&other.id, "Dr Foreign").await;
    let admin = Some(org.admin.token.as_str());
    let off = json!({"video_sessions_enabled": false});

    let resp = app.put(&one_path(&org.id, &t.id), admin, off.clone()).await;
    let body = resp.expect(200);
    assert_eq!(body["therapist_id"], json!(t.id));
    assert_eq!(body["video_sessions_enabled"], false);
    assert_eq!(body["access"]["reason"], "therapist_disabled");
    assert_eq!(body["client_count"], 1);
    let audit = app
        .store
        .audit_for_target("therapist", &t.id)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "therapist.video_settings.update");
    assert_eq!(audit[0].actor_id, org.admin.id);
    assert_eq!(audit[0].actor_role, "organization");
    assert_eq!(audit[0].organization_id.as_deref(), Some(org.id.as_str()));
    let before: Value = serde_json::from_str(audit[0].before_state.as_deref().unwrap()).unwrap();
    let after: Value = serde_json::from_str(audit[0].after_state.as_deref().unwrap()).unwrap();
    assert_eq!(before, json!({"video_sessions_enabled": true}));
    assert_eq!(after, json!({"video_sessions_enabled": false}));

    // An administrator with role `admin` may do it too.
    let second_admin = app.user(&org.id, Role::Admin, "Second Admin").await;
    app.put(
        &one_path(&org.id, &t.id),
        Some(&second_admin.token),
        json!({"video_sessions_enabled": true}),
    )
    .await
    .expect(200);
    assert_eq!(app.audit_actions("therapist", &t.id).await.len(), 2);

    // Failures.
    app.put(&one_path(&org.id, &t.id), None, off.clone())
        .await
        .expect_err(401, "unauthorized");
    app.put(&one_path(&org.id, &t.id), Some(&t.token), off.clone())
        .await
        .expect_err(403, "forbidden");
    let client = app.client(&org.id, None, "Nosy Client").await;
    app.put(&one_path(&org.id, &t.id), Some(&client.token), off.clone())
        .await
        .expect_err(403, "forbidden");
    app.put(
        &one_path(&org.id, &t.id),
        Some(&other.admin.token),
        off.clone(),
    )
    .await
    .expect_err(403, "not_organization_owner");
    app.put(&one_path(&org.id, &foreign.id), admin, off.clone())
        .await
        .expect_err(403, "therapist_not_in_organization");
    app.put(&one_path(&org.id, "no-such-therapist"), admin, off.clone())
        .await
        .expect_err(404, "therapist_not_found");
    let root = app.super_admin("Root").await.token;
    app.put(&one_path("no-such-org", &t.id), Some(&root), off.clone())
        .await
        .expect_err(404, "organization_not_found");
    app.put(
        &one_path(&org.id, &t.id),
        admin,
        json!({"video_sessions_enabled": "no"}),
    )
    .await
    .expect_err(400, "invalid_json");
    app.put(&one_path(&org.id, &t.id), admin, json!({}))
        .await
        .expect_err(400, "invalid_json");
    // None of the refused requests changed anything.
    let foreign_now = app.store.therapist(&foreign.id).await.unwrap().unwrap();
    assert!(foreign_now.video_sessions_enabled());
    assert!(app.audit_actions("therapist", &foreign.id).await.is_empty());
    assert_eq!(app.audit_actions("therapist", &t.id).await.len(), 2);
    assert!(app
        .store
        .therapist(&t.id)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());
});

both_dbs!(organization_switch_and_its_failures, |app| async move {
    let org = app.org("Org Switch", true).await;
    let other = app.org("Other Org", true).await;
    let t = app.therapist(&org.id, "Dr Member").await;
    let admin = Some(org.admin.token.as_str());

    let resp = app
        .put(
            &org_settings(&org.id),
            admin,
            json!({"video_sessions_enabled": false}),
        )
        .await;
    assert_eq!(
        resp.expect(200).clone(),
        json!({"organization_id": org.id, "theraptrack_controlled": true, "video_sessions_enabled": false})
    );
    assert_eq!(
        app.get(&org_settings(&org.id), admin).await.expect(200)["video_sessions_enabled"],
        false
    );
    let audit = app
        .store
        .audit_for_target("organization", &org.id)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "organization.video_settings.update");
    assert_eq!(
        audit[0].after_state.as_deref(),
        Some(r#"{"video_sessions_enabled":false}"#)
    );

    let body = json!({"video_sessions_enabled": true});
    app.get(&org_settings(&org.id), None)
        .await
        .expect_err(401, "unauthorized");
    app.put(&org_settings(&org.id), None, body.clone())
        .await
        .expect_err(401, "unauthorized");
    app.get(&org_settings(&org.id), Some(&t.token))
        .await
        .expect_err(403, "forbidden");
    app.put(&org_settings(&org.id), Some(&t.token), body.clone())
        .await
        .expect_err(403, "forbidden");
    app.get(&org_settings(&org.id), Some(&other.admin.token))
        .await
        .expect_err(403, "not_organization_owner");
    app.put(
        &org_settings(&org.id),
        Some(&other.admin.token),
        body.clone(),
    )
    .await
    .expect_err(403, "not_organization_owner");
    let root = app.super_admin("Root").await.token;
    app.get(&org_settings("no-such-org"), Some(&root))
        .await
        .expect_err(404, "organization_not_found");
    app.put(
        &org_settings(&org.id),
        admin,
        json!({"video_sessions_enabled": 1}),
    )
    .await
    .expect_err(400, "invalid_json");
    // A super admin administers every organization.
    app.put(&org_settings(&org.id), Some(&root), body.clone())
        .await
        .expect(200);
    assert_eq!(app.audit_actions("organization", &org.id).await.len(), 2);
    assert_eq!(
        app.get(&org_settings(&org.id), admin).await.expect(200)["video_sessions_enabled"],
        true
    );
});

both_dbs!(bulk_update_is_all_or_nothing, |app| async move {
    let org = app.org("Bulk Clinic", true).await;
    let a = app.therapist(&org.id, "Dr A").await;
    let b = app.therapist(&org.id, "Dr B").await;
    let c = app.therapist(&org.id, "Dr C").await;
    let other = app.org("Bulk Neighbour", true).await;
    let foreign = app.therapist(&other.id, "Dr Foreign").await;
    let admin = Some(org.admin.token.as_str());
    let path = bulk_path(&org.id);

    // Success: every listed therapist changes, each with an audit entry.
    let resp = app
        .put(
            &path,
            admin,
            json!({"therapist_ids": [a.id, b.id, a.id], "video_sessions_enabled": false, "reason": "  licence renewal pending "}),
        )
        .await;
    let body = resp.expect(200);
    let reasons = app
        .count(
            "audit_log",
            "after_state LIKE $1",
            "%\"reason\":\"licence renewal pending\"%",
        )
        .await;
    assert_eq!(
        reasons, 2,
        "the trimmed reason is audited for every therapist"
    );
    let long = "x".repeat(501);
    app.put(
        &path,
        admin,
        json!({"therapist_ids": [c.id], "video_sessions_enabled": false, "reason": long}),
    )
    .await
    .expect_err(400, "invalid_reason");
    assert_eq!(body["updated"], 2);
    assert_eq!(body["video_sessions_enabled"], false);
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(body["therapist_ids"], json!(expected));
    for t in [&a, &b] {
        assert!(!app
            .store
            .therapist(&t.id)
            .await
            .unwrap()
            .unwrap()
            .video_sessions_enabled());
        assert_eq!(
            app.audit_actions("therapist", &t.id).await,
            vec!["therapist.video_settings.update"]
        );
    }
    assert!(app
        .store
        .therapist(&c.id)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());

    // The seed's `therapistIds` spelling works too.
    app.put(
        &path,
        admin,
        json!({"therapistIds": [a.id], "video_sessions_enabled": true}),
    )
    .await
    .expect(200);
    assert!(app
        .store
        .therapist(&a.id)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());

    // One foreign therapist: refused, and nothing changed.
    let resp = app
        .put(
            &path,
            admin,
            json!({"therapist_ids": [a.id, c.id, foreign.id], "video_sessions_enabled": false}),
        )
        .await;
    resp.expect_err(403, "therapist_not_in_organization");
    assert!(app
        .store
        .therapist(&a.id)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());
    assert!(app
        .store
        .therapist(&c.id)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());
    assert!(app
        .store
        .therapist(&foreign.id)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());
    assert_eq!(app.audit_actions("therapist", &a.id).await.len(), 2);
    assert!(app.audit_actions("therapist", &c.id).await.is_empty());
    assert!(app.audit_actions("therapist", &foreign.id).await.is_empty());

    // One unknown therapist: 404, nothing changed.
    app.put(
        &path,
        admin,
        json!({"therapist_ids": [c.id, "nobody"], "video_sessions_enabled": false}),
    )
    .await
    .expect_err(404, "therapist_not_found");
    assert!(app
        .store
        .therapist(&c.id)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());

    // Other failures.
    app.put(
        &path,
        admin,
        json!({"therapist_ids": [], "video_sessions_enabled": false}),
    )
    .await
    .expect_err(400, "invalid_therapist_ids");
    app.put(&path, admin, json!({"video_sessions_enabled": false}))
        .await
        .expect_err(400, "invalid_json");
    let body = json!({"therapist_ids": [c.id], "video_sessions_enabled": false});
    app.put(&path, None, body.clone())
        .await
        .expect_err(401, "unauthorized");
    app.put(&path, Some(&c.token), body.clone())
        .await
        .expect_err(403, "forbidden");
    app.put(&path, Some(&other.admin.token), body.clone())
        .await
        .expect_err(403, "not_organization_owner");
    assert!(app
        .store
        .therapist(&c.id)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());
    assert!(app.audit_actions("therapist", &c.id).await.is_empty());
});

both_dbs!(listing_failures, |app| async move {
    let org = app.org("Listing Clinic", true).await;
    let other = app.org("Listing Neighbour", true).await;
    let t = app.therapist(&org.id, "Dr Lister").await;
    let path = list_path(&org.id);
    app.get(&path, None).await.expect_err(401, "unauthorized");
    app.get(&path, Some(&t.token))
        .await
        .expect_err(403, "forbidden");
    app.get(&path, Some(&other.admin.token))
        .await
        .expect_err(403, "not_organization_owner");
    let root = app.super_admin("Root").await.token;
    app.get(&list_path("no-such-org"), Some(&root))
        .await
        .expect_err(404, "organization_not_found");
    assert_eq!(app.get(&path, Some(&root)).await.expect(200)["total"], 1);
});
