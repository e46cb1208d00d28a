//! Invitations and an organization's people: single use and expiry of invitation links,
//! onboarding by a super admin, deactivation refusing live tokens at once, search and
//! filters, and tenant isolation on every route (docs/ACCOUNTS.md).

use axum::http::Method;

use super::accounts::{invited, login, refresh_cookie, PASSWORD};
use super::*;

fn token_of(invitation: &Value) -> String {
    let url = invitation["invite_url"].as_str().expect("invite_url");
    url.split("#token=").nth(1).expect("token").to_string()
}

async fn invite(app: &TestApp, org: &OrgFx, role: &str, email: &str) -> common::Resp {
    app.post(
        &format!("/api/organizations/{}/invitations", org.id),
        Some(&org.admin.token),
        Some(json!({"email": email, "display_name": "Invited Person", "role": role})),
    )
    .await
}

both_dbs!(an_invitation_is_single_use_and_expires, |app| async move {
    let org = app.org("Invite Clinic", false).await;
    let email = common::unique_email("Ivy");
    let created = invite(&app, &org, "therapist", &email.to_uppercase()).await;
    let invitation = created.expect(201).clone();
    assert_eq!(invitation["email"], json!(email), "stored lower-cased");
    assert!(invitation["invite_url"]
        .as_str()
        .unwrap()
        .contains("/invite.html#token="));
    let token = token_of(&invitation);
    let stored = app.count("invitations", "token_hash = $1", &token).await;
    assert_eq!(stored, 0, "only the token's digest is stored");

    let preview = app
        .post(
            "/api/invitations/inspect",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(preview.expect(200)["organization_name"], "Invite Clinic");
    assert_eq!(preview.json["role"], "therapist");
    let listed = app
        .get(
            &format!("/api/organizations/{}/invitations", org.id),
            Some(&org.admin.token),
        )
        .await;
    let pending = listed.expect(200)["invitations"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(pending.len(), 1);
    assert!(
        pending[0].get("invite_url").is_none(),
        "links are shown once"
    );

    let weak = json!({"token": token, "password": "short"});
    app.post("/api/invitations/accept", None, Some(weak))
        .await
        .expect_err(400, "weak_password");
    let accept = json!({"token": token, "password": PASSWORD});
    let accepted = app
        .post("/api/invitations/accept", None, Some(accept.clone()))
        .await;
    assert_eq!(accepted.expect(200)["me"]["role"], "therapist");
    assert!(refresh_cookie(&accepted).is_some(), "accepting signs in");
    app.post("/api/invitations/accept", None, Some(accept))
        .await
        .expect_err(410, "invitation_used");
    app.post(
        "/api/invitations/inspect",
        None,
        Some(json!({"token": token})),
    )
    .await
    .expect_err(410, "invitation_used");
    login(&app, &email, PASSWORD).await.expect(200);
    invite(&app, &org, "client", &email)
        .await
        .expect_err(409, "email_taken");

    // Expiry.
    let late = common::unique_email("Late");
    let late_token = token_of(invite(&app, &org, "client", &late).await.expect(201));
    sqlx::query("UPDATE invitations SET expires_at = 1 WHERE email = $1")
        .bind(&late)
        .execute(app.store.pool())
        .await
        .unwrap();
    app.post(
        "/api/invitations/accept",
        None,
        Some(json!({"token": late_token, "password": PASSWORD})),
    )
    .await
    .expect_err(410, "invitation_expired");

    // A newer invitation replaces the older; a withdrawn one is gone.
    let twice = common::unique_email("Twice");
    let old = token_of(invite(&app, &org, "client", &twice).await.expect(201));
    let newer = invite(&app, &org, "client", &twice)
        .await
        .expect(201)
        .clone();
    app.post(
        "/api/invitations/inspect",
        None,
        Some(json!({"token": old})),
    )
    .await
    .expect_err(404, "invitation_not_found");
    let id = newer["id"].as_str().unwrap();
    let path = format!("/api/organizations/{}/invitations/{id}", org.id);
    app.delete(&path, Some(&org.admin.token)).await.expect(204);
    app.delete(&path, Some(&org.admin.token))
        .await
        .expect_err(404, "invitation_not_found");
    app.post(
        "/api/invitations/inspect",
        None,
        Some(json!({"token": token_of(&newer)})),
    )
    .await
    .expect_err(404, "invitation_not_found");
    app.post(
        "/api/invitations/inspect",
        None,
        Some(json!({"token": "made-up"})),
    )
    .await
    .expect_err(404, "invitation_not_found");
});

both_dbs!(invitations_check_their_input, |app| async move {
    let org = app.org("Input Clinic", false).await;
    let path = format!("/api/organizations/{}/invitations", org.id);
    let t = app.therapist(&org.id, "Dr Input").await;
    for (body, code) in [
        (
            json!({"email": "not-an-email", "display_name": "X", "role": "client"}),
            "invalid_email",
        ),
        (
            json!({"email": "a@b.org", "display_name": "  ", "role": "client"}),
            "invalid_name",
        ),
        (
            json!({"email": "a@b.org", "display_name": "X", "role": "super_admin"}),
            "invalid_role",
        ),
        (
            json!({"email": "a@b.org", "display_name": "X", "role": "guest"}),
            "invalid_role",
        ),
    ] {
        app.post(&path, Some(&org.admin.token), Some(body))
            .await
            .expect_err(400, code);
    }
    let other = app.org("Other Input Clinic", false).await;
    let foreign = app.therapist(&other.id, "Dr Foreign").await;
    let body = json!({"email": "c@b.org", "display_name": "C", "role": "client", "therapist_id": foreign.id});
    app.post(&path, Some(&org.admin.token), Some(body))
        .await
        .expect_err(404, "therapist_not_found");
    let body =
        json!({"email": "c@b.org", "display_name": "C", "role": "client", "therapist_id": t.id});
    let client = app
        .post(&path, Some(&org.admin.token), Some(body))
        .await
        .expect(201)
        .clone();
    let accepted = app
        .post(
            "/api/invitations/accept",
            None,
            Some(json!({"token": token_of(&client), "password": PASSWORD, "display_name": "Casey C"})),
        )
        .await;
    let me = &accepted.expect(200)["me"];
    assert_eq!(me["client"]["therapist_id"], json!(t.id));
    assert_eq!(me["display_name"], "Casey C");
});

both_dbs!(a_super_admin_onboards_an_organization, |app| async move {
    let root = app.super_admin("Root").await;
    let email = common::unique_email("First Admin");
    let body = json!({"name": "New Practice", "theraptrack_controlled": true, "admin_email": email, "admin_name": "First Admin"});
    let org = app.org("Existing Clinic", false).await;
    app.post(
        "/api/organizations",
        Some(&org.admin.token),
        Some(body.clone()),
    )
    .await
    .expect_err(403, "forbidden");
    let created = app
        .post("/api/organizations", Some(&root.token), Some(body.clone()))
        .await;
    let created = created.expect(201).clone();
    let org_id = created["organization"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["invitation"]["role"], "admin");
    let accepted = app
        .post(
            "/api/invitations/accept",
            None,
            Some(json!({"token": token_of(&created["invitation"]), "password": PASSWORD})),
        )
        .await;
    let session = accepted.expect(200).clone();
    assert_eq!(session["me"]["organization"]["id"], json!(org_id));
    assert_eq!(
        session["me"]["organization"]["theraptrack_controlled"],
        json!(true)
    );
    let admin = session["access_token"].as_str().unwrap();
    // The new admin runs their organization, not others.
    app.get(
        &format!("/api/organizations/{org_id}/therapists"),
        Some(admin),
    )
    .await
    .expect(200);
    app.get(&format!("/api/organizations/{}", org.id), Some(admin))
        .await
        .expect_err(404, "organization_not_found");
    app.post("/api/organizations", Some(&root.token), Some(body))
        .await
        .expect_err(409, "email_taken");
    let audited = app
        .count("audit_log", "action = $1", "organization.create")
        .await;
    assert_eq!(audited, 1);
});

both_dbs!(
    a_deactivated_therapist_is_refused_at_once,
    |app| async move {
        let org = app.org("Deactivation Clinic", true).await;
        let (email, session) = invited(&app, &org, "therapist", "Dr Leaving").await;
        let id = session["me"]["id"].as_str().unwrap().to_string();
        let live = session["access_token"].as_str().unwrap().to_string();
        let signed = login(&app, &email, PASSWORD).await;
        let refresh = refresh_cookie(&signed).unwrap();
        app.post(
            "/api/sessions",
            Some(&live),
            Some(json!({"session_name": "Before"})),
        )
        .await
        .expect(201);

        let base = format!("/api/organizations/{}/therapists/{id}", org.id);
        let done = app
            .post(&format!("{base}/deactivate"), Some(&org.admin.token), None)
            .await;
        assert_eq!(done.expect(200)["active"], json!(false));
        app.get("/api/me", Some(&live))
            .await
            .expect_err(401, "account_disabled");
        app.post(
            "/api/sessions",
            Some(&live),
            Some(json!({"session_name": "After"})),
        )
        .await
        .expect_err(401, "account_disabled");
        super::accounts::with_cookie(&app, "/api/auth/refresh", &refresh, None)
            .await
            .expect_err(401, "invalid_refresh_token");
        login(&app, &email, PASSWORD)
            .await
            .expect_err(401, "invalid_credentials");
        let listed = app
            .get(
                &format!(
                    "/api/organizations/{}/therapists?status=deactivated",
                    org.id
                ),
                Some(&org.admin.token),
            )
            .await;
        let ids: Vec<&str> = listed.expect(200)["therapists"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["id"].as_str())
            .collect();
        assert_eq!(ids, vec![id.as_str()]);

        app.post(&format!("{base}/reactivate"), Some(&org.admin.token), None)
            .await
            .expect(200);
        app.get("/api/me", Some(&live))
            .await
            .expect_err(401, "token_revoked");
        // Token times are whole seconds and a revocation refuses every token of its
        // second, so a sign-in in the same second as the deactivation would be refused too.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let back = login(&app, &email, PASSWORD).await;
        let fresh = back.expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        app.get("/api/me", Some(&fresh)).await.expect(200);
        let actions = app.audit_actions("therapist", &id).await;
        assert!(
            actions.contains(&"user.deactivate".to_string()),
            "{actions:?}"
        );
        assert!(
            actions.contains(&"user.reactivate".to_string()),
            "{actions:?}"
        );
        // The organization's administrators are not therapists of it.
        let admin_path = format!(
            "/api/organizations/{}/therapists/{}/deactivate",
            org.id, org.admin.id
        );
        app.post(&admin_path, Some(&org.admin.token), None)
            .await
            .expect_err(404, "person_not_found");
    }
);

both_dbs!(people_are_searched_filtered_and_updated, |app| async move {
    let org = app.org("Search Clinic", true).await;
    let ada = app.therapist(&org.id, "Ada Search").await;
    let bob = app.therapist(&org.id, "Bob Search").await;
    app.set_therapist_video_db(&bob.id, false).await;
    let casey = app.client(&org.id, Some(&ada.id), "Casey 100%").await;
    app.client(&org.id, Some(&bob.id), "Dana Client").await;
    let admin = Some(org.admin.token.as_str());
    let names = |resp: &common::Resp, key: &str| -> Vec<String> {
        resp.json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["display_name"].as_str().unwrap().to_string())
            .collect()
    };
    let base = format!("/api/organizations/{}/therapists", org.id);
    let all = app.get(&base, admin).await;
    all.expect(200);
    assert_eq!(names(&all, "therapists"), vec!["Ada Search", "Bob Search"]);
    let q = app.get(&format!("{base}?q=ADA"), admin).await;
    assert_eq!(names(&q, "therapists"), vec!["Ada Search"]);
    let off = app.get(&format!("{base}?video=off"), admin).await;
    assert_eq!(names(&off, "therapists"), vec!["Bob Search"]);
    app.get(&format!("{base}?status=gone"), admin)
        .await
        .expect_err(400, "invalid_filter");
    let pct = app.get("/api/clients?q=100%25", admin).await;
    assert_eq!(names(&pct, "clients"), vec!["Casey 100%"]);
    let wildcard = app.get("/api/clients?q=%25", admin).await;
    assert_eq!(
        names(&wildcard, "clients"),
        vec!["Casey 100%"],
        "% is a character, not a wildcard"
    );
    // A therapist sees their own clients only.
    let mine = app.get("/api/clients", Some(&ada.token)).await;
    assert_eq!(names(&mine, "clients"), vec!["Casey 100%"]);
    app.get(&format!("/api/clients/{}", casey.id), Some(&bob.token))
        .await
        .expect_err(404, "person_not_found");
    app.get(&format!("/api/clients/{}", casey.id), Some(&casey.token))
        .await
        .expect(200);

    let moved = app
        .call(
            Method::PATCH,
            &format!("/api/clients/{}", casey.id),
            admin,
            Some(json!({"therapist_id": bob.id, "display_name": "Casey B"})),
        )
        .await;
    assert_eq!(moved.expect(200)["therapist_name"], "Bob Search");
    assert_eq!(moved.json["display_name"], "Casey B");
    let unassigned = app
        .call(
            Method::PATCH,
            &format!("/api/clients/{}", casey.id),
            admin,
            Some(json!({"therapist_id": null})),
        )
        .await;
    assert_eq!(unassigned.expect(200)["therapist_id"], Value::Null);
    app.call(
        Method::PATCH,
        &format!("/api/clients/{}", casey.id),
        Some(&ada.token),
        Some(json!({"display_name": "X"})),
    )
    .await
    .expect_err(403, "forbidden");
    let renamed = app
        .call(
            Method::PATCH,
            &format!("{base}/{}", ada.id),
            admin,
            Some(json!({"display_name": "Ada Renamed"})),
        )
        .await;
    assert_eq!(renamed.expect(200)["display_name"], "Ada Renamed");
    app.get(&format!("{base}/{}", ada.id), Some(&ada.token))
        .await
        .expect(200);
    app.get(&format!("{base}/{}", bob.id), Some(&ada.token))
        .await
        .expect_err(403, "forbidden");
    let gone = app
        .post(
            &format!("/api/clients/{}/deactivate", casey.id),
            admin,
            None,
        )
        .await;
    assert_eq!(gone.expect(200)["active"], json!(false));
    app.get("/api/me", Some(&casey.token))
        .await
        .expect_err(401, "account_disabled");
});

both_dbs!(
    no_new_route_reaches_another_organization,
    |app| async move {
        let mine = app.org("Mine Clinic", true).await;
        let theirs = app.org("Theirs Clinic", true).await;
        let their_t = app.therapist(&theirs.id, "Dr Theirs").await;
        let their_c = app
            .client(&theirs.id, Some(&their_t.id), "Their Client")
            .await;
        let their_inv = invite(
            &app,
            &theirs,
            "client",
            &common::unique_email("Their Invite"),
        )
        .await
        .expect(201)
        .clone();
        let my_t = app.therapist(&mine.id, "Dr Mine").await;
        let me = Some(mine.admin.token.as_str());
        let o = &theirs.id;
        let t = &their_t.id;
        let c = &their_c.id;
        let i = their_inv["id"].as_str().unwrap();
        let body = json!({"display_name": "Hijack"});
        let invite_body =
            json!({"email": "x@test.theraroom.invalid", "display_name": "X", "role": "client"});
        let routes: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, format!("/api/organizations/{o}"), None),
            (
                Method::GET,
                format!("/api/organizations/{o}/therapists"),
                None,
            ),
            (
                Method::GET,
                format!("/api/organizations/{o}/therapists/{t}"),
                None,
            ),
            (
                Method::PATCH,
                format!("/api/organizations/{o}/therapists/{t}"),
                Some(body.clone()),
            ),
            (
                Method::POST,
                format!("/api/organizations/{o}/therapists/{t}/deactivate"),
                None,
            ),
            (
                Method::POST,
                format!("/api/organizations/{o}/therapists/{t}/reactivate"),
                None,
            ),
            (
                Method::GET,
                format!("/api/organizations/{o}/invitations"),
                None,
            ),
            (
                Method::POST,
                format!("/api/organizations/{o}/invitations"),
                Some(invite_body),
            ),
            (
                Method::DELETE,
                format!("/api/organizations/{o}/invitations/{i}"),
                None,
            ),
            (Method::GET, format!("/api/clients/{c}"), None),
            (
                Method::PATCH,
                format!("/api/clients/{c}"),
                Some(body.clone()),
            ),
            (Method::POST, format!("/api/clients/{c}/deactivate"), None),
            (Method::POST, format!("/api/clients/{c}/reactivate"), None),
        ];
        for (method, path, body) in &routes {
            let resp = app.call(method.clone(), path, me, body.clone()).await;
            assert_eq!(resp.status.as_u16(), 404, "{method} {path}: {}", resp.text);
        }
        // Their therapist inside my organization's paths is not found either.
        app.get(
            &format!("/api/organizations/{}/therapists/{t}", mine.id),
            me,
        )
        .await
        .expect_err(404, "person_not_found");
        // Nothing of theirs changed, and my listings do not show them.
        app.get("/api/me", Some(&their_t.token)).await.expect(200);
        let clients = app.get("/api/clients", me).await;
        assert!(clients.expect(200)["clients"]
            .as_array()
            .unwrap()
            .is_empty());
        app.post(
            "/api/invitations/inspect",
            None,
            Some(json!({"token": token_of(&their_inv)})),
        )
        .await
        .expect(200);
        // Members without admin rights are refused on their own organization's admin routes.
        for path in [
            format!("/api/organizations/{}/therapists", mine.id),
            format!("/api/organizations/{}/invitations", mine.id),
        ] {
            app.get(&path, Some(&my_t.token))
                .await
                .expect_err(403, "forbidden");
        }
    }
);
