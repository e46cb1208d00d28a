//! Cross-tenant attempts: an administrator or therapist of organization B can neither
//! read nor change organization A's therapists, sessions or participants.

use super::*;

struct TenantA {
    org: OrgFx,
    therapist: Person,
    session_id: String,
    participant_id: String,
}

async fn tenant_a(app: &TestApp) -> TenantA {
    let org = app.org("Tenant A", true).await;
    let therapist = app.therapist(&org.id, "Dr A").await;
    let client = app.client(&org.id, Some(&therapist.id), "Client A").await;
    let s = app.session(&therapist, "A's room").await;
    let session_id = s["id"].as_str().unwrap().to_string();
    let reg = app
        .post(
            &format!("/api/sessions/{session_id}/participants"),
            Some(&client.token),
            None,
        )
        .await;
    let participant_id = reg.expect(201)["id"].as_str().unwrap().to_string();
    TenantA {
        org,
        therapist,
        session_id,
        participant_id,
    }
}

both_dbs!(org_b_cannot_touch_org_a, |app| async move {
    let a = tenant_a(&app).await;
    let b = app.org("Tenant B", true).await;
    let b_admin = app.user(&b.id, Role::Admin, "B Admin").await;
    let b_therapist = app.therapist(&b.id, "Dr B").await;
    let (aid, tid, sid, pid) = (&a.org.id, &a.therapist.id, &a.session_id, &a.participant_id);
    let on = json!({"video_sessions_enabled": false});

    for admin in [&b.admin.token, &b_admin.token] {
        let tok = Some(admin.as_str());
        // Therapists of A: settings, blog permission.
        app.get(&format!("/api/organizations/{aid}/video-settings"), tok)
            .await
            .expect_err(403, "not_organization_owner");
        app.put(
            &format!("/api/organizations/{aid}/video-settings"),
            tok,
            on.clone(),
        )
        .await
        .expect_err(403, "not_organization_owner");
        app.get(
            &format!("/api/organizations/{aid}/therapists/video-settings"),
            tok,
        )
        .await
        .expect_err(403, "not_organization_owner");
        app.put(
            &format!("/api/organizations/{aid}/therapists/{tid}/video-settings"),
            tok,
            on.clone(),
        )
        .await
        .expect_err(403, "not_organization_owner");
        app.put(
            &format!("/api/organizations/{aid}/therapists/video-settings/bulk"),
            tok,
            json!({"therapist_ids": [tid], "video_sessions_enabled": false}),
        )
        .await
        .expect_err(403, "not_organization_owner");
        app.get(
            &format!("/api/organizations/{aid}/therapists/blog-permissions"),
            tok,
        )
        .await
        .expect_err(403, "not_organization_owner");
        app.post(
            &format!("/api/organizations/{aid}/therapists/{tid}/blog-permission/grant"),
            tok,
            None,
        )
        .await
        .expect_err(403, "not_organization_owner");
        // A's therapist through B's own organization path.
        app.put(
            &format!(
                "/api/organizations/{}/therapists/{tid}/video-settings",
                b.id
            ),
            tok,
            on.clone(),
        )
        .await
        .expect_err(403, "therapist_not_in_organization");
        app.post(
            &format!(
                "/api/organizations/{}/therapists/{tid}/blog-permission/grant",
                b.id
            ),
            tok,
            None,
        )
        .await
        .expect_err(403, "therapist_not_in_organization");
        app.put(
            &format!("/api/organizations/{}/therapists/video-settings/bulk", b.id),
            tok,
            json!({"therapist_ids": [tid], "video_sessions_enabled": false}),
        )
        .await
        .expect_err(403, "therapist_not_in_organization");
    }

    for token in [&b.admin.token, &b_admin.token, &b_therapist.token] {
        let tok = Some(token.as_str());
        // Sessions of A.
        let listed = app.get("/api/sessions", tok).await;
        assert!(
            listed.expect(200)["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["id"] != json!(sid)),
            "B lists A's session"
        );
        app.get(&format!("/api/sessions/{sid}"), tok)
            .await
            .expect_err(404, "session_not_found");
        app.post(&format!("/api/sessions/{sid}/end"), tok, None)
            .await
            .expect_err(404, "session_not_found");
        // Participants of A.
        app.get(&format!("/api/sessions/{sid}/participants"), tok)
            .await
            .expect_err(404, "session_not_found");
        app.post(&format!("/api/sessions/{sid}/participants"), tok, None)
            .await
            .expect_err(404, "session_not_found");
        app.delete(&format!("/api/sessions/{sid}/participants/{pid}"), tok)
            .await
            .expect_err(404, "session_not_found");
    }
    // Organization-scoped routes are not for therapists at all.
    app.get(
        &format!("/api/organizations/{aid}/therapists/video-settings"),
        Some(&b_therapist.token),
    )
    .await
    .expect_err(403, "forbidden");

    // B's administrator cannot forge a token claiming A's organization: the signature is checked.
    let forged = theraroom::auth::JwtKeys::new(b"attacker-secret")
        .issue(&b.admin.id, Role::Organization, Some(aid), None, 600)
        .0;
    app.get(&format!("/api/sessions/{sid}"), Some(&forged))
        .await
        .expect_err(401, "invalid_token");
    app.get(
        &format!("/api/organizations/{aid}/therapists/video-settings"),
        Some(&forged),
    )
    .await
    .expect_err(401, "invalid_token");

    // Nothing of A changed.
    let therapist = app.store.therapist(tid).await.unwrap().unwrap();
    assert!(therapist.video_sessions_enabled());
    assert!(!therapist.can_post_blogs());
    assert!(app
        .store
        .organization(aid)
        .await
        .unwrap()
        .unwrap()
        .video_sessions_enabled());
    assert!(app.store.session(sid).await.unwrap().unwrap().is_active());
    assert!(!app.store.participant(pid).await.unwrap().unwrap().removed());
    assert_eq!(
        app.count("session_participants", "session_id = $1", sid)
            .await,
        1
    );
    assert!(app.audit_actions("therapist", tid).await.is_empty());
    assert!(app.audit_actions("organization", aid).await.is_empty());
    assert_eq!(
        app.audit_actions("session", sid).await,
        vec!["session.create"]
    );
    assert!(app.audit_actions("participant", pid).await.is_empty());

    // While A's own administrator can do all of it.
    let own = app
        .get(
            &format!("/api/sessions/{sid}/participants"),
            Some(&a.org.admin.token),
        )
        .await;
    assert_eq!(own.expect(200)["participants"].as_array().unwrap().len(), 1);
    app.get(&format!("/api/sessions/{sid}"), Some(&a.therapist.token))
        .await
        .expect(200);
});
