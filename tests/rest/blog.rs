//! Blog posting permission, with exactly its error codes.

use super::*;

fn list_path(org: &str) -> String {
    format!("/api/organizations/{org}/therapists/blog-permissions")
}

fn grant_path(org: &str, therapist: &str) -> String {
    format!("/api/organizations/{org}/therapists/{therapist}/blog-permission/grant")
}

fn revoke_path(org: &str, therapist: &str) -> String {
    format!("/api/organizations/{org}/therapists/{therapist}/blog-permission/revoke")
}

both_dbs!(list_grant_revoke, |app| async move {
    let org = app.org("Blog Clinic", true).await;
    let t = app.therapist(&org.id, "Dr John Doe").await;
    let admin = Some(org.admin.token.as_str());

    let list = app.get(&list_path(&org.id), admin).await;
    let list = list.expect(200);
    assert_eq!(list["success"], true);
    let rows = list["therapists"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], json!(t.id));
    assert_eq!(rows[0]["name"], "Dr John Doe");
    assert_eq!(
        rows[0]["can_post_blogs"], false,
        "new therapists may not post by default"
    );
    assert!(rows[0]["email"].as_str().unwrap().contains('@'));
    assert!(!rows[0]["partner_id"].as_str().unwrap().is_empty());
    assert!(rows[0]["created_at"].as_str().unwrap().ends_with('Z'));

    let granted = app.post(&grant_path(&org.id, &t.id), admin, None).await;
    let granted = granted.expect(200);
    assert_eq!(granted["success"], true);
    assert_eq!(
        granted["message"],
        "Blog posting permission granted successfully"
    );
    assert_eq!(granted["therapist"]["id"], json!(t.id));
    assert_eq!(granted["therapist"]["can_post_blogs"], true);
    assert!(app
        .store
        .therapist(&t.id)
        .await
        .unwrap()
        .unwrap()
        .can_post_blogs());
    let list = app.get(&list_path(&org.id), admin).await;
    assert_eq!(list.expect(200)["therapists"][0]["can_post_blogs"], true);

    app.post(&grant_path(&org.id, &t.id), admin, None)
        .await
        .expect_err(400, "permission_already_granted");

    let revoked = app.post(&revoke_path(&org.id, &t.id), admin, None).await;
    let revoked = revoked.expect(200);
    assert_eq!(
        revoked["message"],
        "Blog posting permission revoked successfully"
    );
    assert_eq!(revoked["therapist"]["can_post_blogs"], false);
    assert!(!app
        .store
        .therapist(&t.id)
        .await
        .unwrap()
        .unwrap()
        .can_post_blogs());

    app.post(&revoke_path(&org.id, &t.id), admin, None)
        .await
        .expect_err(400, "permission_already_revoked");

    // Only the two real changes are in the audit log, with before and after.
    let audit = app
        .store
        .audit_for_target("therapist", &t.id)
        .await
        .unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "therapist.blog_permission.grant",
            "therapist.blog_permission.revoke"
        ]
    );
    assert_eq!(
        audit[0].before_state.as_deref(),
        Some(r#"{"can_post_blogs":false}"#)
    );
    assert_eq!(
        audit[0].after_state.as_deref(),
        Some(r#"{"can_post_blogs":true}"#)
    );
    assert_eq!(audit[1].actor_id, org.admin.id);
});

both_dbs!(seed_003_error_codes, |app| async move {
    let org = app.org("Blog Owner", true).await;
    let t = app.therapist(&org.id, "Dr Own").await;
    let other = app.org("Blog Neighbour", true).await;
    let foreign = app.therapist(&other.id, "Dr Foreign").await;
    let plain = app.org("Not Controlled", false).await;
    let plain_t = app.therapist(&plain.id, "Dr Plain").await;
    let admin = Some(org.admin.token.as_str());

    // 403 not_theraptrack_controlled.
    let p = Some(plain.admin.token.as_str());
    app.get(&list_path(&plain.id), p)
        .await
        .expect_err(403, "not_theraptrack_controlled");
    app.post(&grant_path(&plain.id, &plain_t.id), p, None)
        .await
        .expect_err(403, "not_theraptrack_controlled");
    app.post(&revoke_path(&plain.id, &plain_t.id), p, None)
        .await
        .expect_err(403, "not_theraptrack_controlled");

    // 403 not_organization_owner: another organization's administrator.
    let o = Some(other.admin.token.as_str());
    app.get(&list_path(&org.id), o)
        .await
        .expect_err(403, "not_organization_owner");
    app.post(&grant_path(&org.id, &t.id), o, None)
        .await
        .expect_err(403, "not_organization_owner");
    app.post(&revoke_path(&org.id, &t.id), o, None)
        .await
        .expect_err(403, "not_organization_owner");

    // 403 therapist_not_in_organization: another organization's therapist.
    app.post(&grant_path(&org.id, &foreign.id), admin, None)
        .await
        .expect_err(403, "therapist_not_in_organization");
    app.post(&revoke_path(&org.id, &foreign.id), admin, None)
        .await
        .expect_err(403, "therapist_not_in_organization");

    // 404 therapist_not_found, 404 organization_not_found.
    app.post(&grant_path(&org.id, "no-such-therapist"), admin, None)
        .await
        .expect_err(404, "therapist_not_found");
    app.post(&revoke_path(&org.id, "no-such-therapist"), admin, None)
        .await
        .expect_err(404, "therapist_not_found");
    let root = app.super_admin("Root").await.token;
    app.get(&list_path("no-such-org"), Some(&root))
        .await
        .expect_err(404, "organization_not_found");
    app.post(&grant_path("no-such-org", &t.id), Some(&root), None)
        .await
        .expect_err(404, "organization_not_found");

    // Wrong role and no token.
    app.get(&list_path(&org.id), Some(&t.token))
        .await
        .expect_err(403, "forbidden");
    app.post(&grant_path(&org.id, &t.id), Some(&t.token), None)
        .await
        .expect_err(403, "forbidden");
    app.get(&list_path(&org.id), None)
        .await
        .expect_err(401, "unauthorized");
    app.post(&grant_path(&org.id, &t.id), None, None)
        .await
        .expect_err(401, "unauthorized");
    app.post(&revoke_path(&org.id, &t.id), None, None)
        .await
        .expect_err(401, "unauthorized");

    // Nothing changed anywhere.
    for id in [&t.id, &foreign.id, &plain_t.id] {
        assert!(!app
            .store
            .therapist(id)
            .await
            .unwrap()
            .unwrap()
            .can_post_blogs());
        assert!(app.audit_actions("therapist", id).await.is_empty());
    }
});

/// The therapist's partner id, as the listing shows it.
async fn partner_id(app: &TestApp, org: &OrgFx, therapist: &Person) -> String {
    let list = app.get(&list_path(&org.id), Some(&org.admin.token)).await;
    let rows = list.expect(200)["therapists"].as_array().unwrap().clone();
    let row = rows
        .iter()
        .find(|r| r["id"] == json!(therapist.id))
        .expect("therapist listed");
    row["partner_id"].as_str().unwrap().to_string()
}

/// The therapist's own view of the permission (`GET /api/me`).
async fn me_can_post(app: &TestApp, therapist: &Person) -> Value {
    app.get("/api/me", Some(&therapist.token)).await.expect(200)["therapist"]["can_post_blogs"]
        .clone()
}

both_dbs!(by_partner_id_and_seen_by_the_therapist, |app| async move {
    let org = app.org("Partner Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Partner").await;
    let admin = Some(org.admin.token.as_str());
    let partner = partner_id(&app, &org, &t).await;
    assert_ne!(partner, t.id);
    assert_eq!(me_can_post(&app, &t).await, false);

    // The seed's path takes the partner id ...
    let granted = app.post(&grant_path(&org.id, &partner), admin, None).await;
    assert_eq!(granted.expect(200)["therapist"]["id"], json!(t.id));
    assert_eq!(me_can_post(&app, &t).await, true);
    app.post(&grant_path(&org.id, &partner), admin, None)
        .await
        .expect_err(400, "permission_already_granted");
    // ... and the therapist id still works.
    app.post(&grant_path(&org.id, &t.id), admin, None)
        .await
        .expect_err(400, "permission_already_granted");
    app.post(&revoke_path(&org.id, &partner), admin, None)
        .await
        .expect(200);
    assert_eq!(me_can_post(&app, &t).await, false);
    app.post(&revoke_path(&org.id, &t.id), admin, None)
        .await
        .expect_err(400, "permission_already_revoked");

    // Another organization's therapist by partner id: refused like by id.
    let other = app.org("Partner Neighbour", true).await;
    let foreign = app.therapist(&other.id, "Dr Elsewhere").await;
    let foreign_partner = partner_id(&app, &other, &foreign).await;
    app.post(&grant_path(&org.id, &foreign_partner), admin, None)
        .await
        .expect_err(403, "therapist_not_in_organization");
    assert_eq!(me_can_post(&app, &foreign).await, false);
    assert_eq!(
        app.audit_actions("therapist", &t.id).await,
        vec![
            "therapist.blog_permission.grant",
            "therapist.blog_permission.revoke"
        ]
    );
});

/// Sends `path` 20 times at once; returns (successes, refusals with `code`).
async fn twenty_at_once(app: &TestApp, token: &str, path: &str, code: &str) -> (usize, usize) {
    let calls = (0..20).map(|_| app.post(path, Some(token), None));
    let answers = futures_util::future::join_all(calls).await;
    let ok = answers.iter().filter(|r| r.status.as_u16() == 200).count();
    let refused = answers
        .iter()
        .filter(|r| r.status.as_u16() == 400 && r.json["error"]["code"] == code)
        .count();
    (ok, refused)
}

both_dbs!(concurrent_changes_happen_once, |app| async move {
    let org = app.org("Race Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Race").await;
    let partner = partner_id(&app, &org, &t).await;
    let token = org.admin.token.clone();

    let grants = twenty_at_once(
        &app,
        &token,
        &grant_path(&org.id, &partner),
        "permission_already_granted",
    )
    .await;
    assert_eq!(grants, (1, 19));
    assert_eq!(me_can_post(&app, &t).await, true);
    let revokes = twenty_at_once(
        &app,
        &token,
        &revoke_path(&org.id, &partner),
        "permission_already_revoked",
    )
    .await;
    assert_eq!(revokes, (1, 19));
    assert_eq!(me_can_post(&app, &t).await, false);
    // One audit row per real change.
    assert_eq!(
        app.audit_actions("therapist", &t.id).await,
        vec![
            "therapist.blog_permission.grant",
            "therapist.blog_permission.revoke"
        ]
    );
});
