//! Share links and guest tokens.

use super::*;

struct Fx {
    org: OrgFx,
    therapist: Person,
    session_id: String,
    share: String,
}

async fn fixture(app: &TestApp) -> Fx {
    let org = app.org("Link Clinic", true).await;
    let therapist = app.therapist(&org.id, "Dr Link").await;
    let s = app.session(&therapist, "Open door").await;
    Fx {
        org,
        therapist,
        session_id: s["id"].as_str().unwrap().to_string(),
        share: s["share_token"].as_str().unwrap().to_string(),
    }
}

both_dbs!(join_info_while_open_and_404_after, |app| async move {
    let fx = fixture(&app).await;
    let path = format!("/api/join/{}", fx.share);

    let info = app.get(&path, None).await;
    let info = info.expect(200);
    assert_eq!(info["session_id"], json!(fx.session_id));
    assert_eq!(info["session_name"], "Open door");
    assert_eq!(info["therapist_name"], "Dr Link");
    assert_eq!(info["max_participants"], 4);
    assert_eq!(info["kind"], "group");
    assert!(info["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(info.get("share_token").is_none());

    // Unknown link.
    let unknown = app
        .get(
            "/api/join/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            None,
        )
        .await;
    unknown.expect_err(404, "session_not_found");

    // Ended: the same 404 as an unknown link, so a link reveals nothing once closed.
    app.post(
        &format!("/api/sessions/{}/end", fx.session_id),
        Some(&fx.therapist.token),
        None,
    )
    .await
    .expect(200);
    let ended = app.get(&path, None).await;
    ended.expect_err(404, "session_not_found");
    assert_eq!(ended.json, unknown.json);

    // Expired.
    let s2 = app.session(&fx.therapist, "Short").await;
    let share2 = s2["share_token"].as_str().unwrap();
    app.get(&format!("/api/join/{share2}"), None)
        .await
        .expect(200);
    app.expire_session(s2["id"].as_str().unwrap()).await;
    let expired = app.get(&format!("/api/join/{share2}"), None).await;
    expired.expect_err(404, "session_not_found");
    assert_eq!(expired.json, unknown.json);
});

both_dbs!(guest_token_is_scoped_to_its_session, |app| async move {
    let fx = fixture(&app).await;
    let before = chrono::Utc::now().timestamp();
    let resp = app
        .post(
            &format!("/api/join/{}/guest", fx.share),
            None,
            Some(json!({"name": "  Sam Guest "})),
        )
        .await;
    let g = resp.expect(201).clone();
    assert_eq!(g["session_id"], json!(fx.session_id));
    let token = g["token"].as_str().unwrap();
    let claims = app.jwt.verify(token).expect("guest token verifies");
    assert_eq!(claims.role, Role::Guest);
    assert_eq!(claims.session_id.as_deref(), Some(fx.session_id.as_str()));
    assert_eq!(claims.sub, g["guest_id"].as_str().unwrap());
    assert_eq!(claims.org_id.as_deref(), Some(fx.org.id.as_str()));
    // Short-lived: at most 4 hours, and not past the session's expiry (120 minutes).
    assert!(
        claims.exp > before && claims.exp <= before + 120 * 60 + 5,
        "exp {}",
        claims.exp
    );
    let expires = chrono::DateTime::parse_from_rfc3339(g["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires.timestamp(), claims.exp);
    let guest = app
        .store
        .guest(&claims.sub)
        .await
        .unwrap()
        .expect("guest row");
    assert_eq!(guest.display_name, "Sam Guest");
    assert_eq!(guest.session_id, fx.session_id);

    // The token opens its own session...
    let own = app
        .get(&format!("/api/sessions/{}", fx.session_id), Some(token))
        .await;
    let own = own.expect(200);
    assert_eq!(own["id"], json!(fx.session_id));
    assert!(
        own.get("share_token").is_none(),
        "guests do not get the link"
    );
    let reg = app
        .post(
            &format!("/api/sessions/{}/participants", fx.session_id),
            Some(token),
            None,
        )
        .await;
    let reg = reg.expect(201);
    assert_eq!(reg["is_guest"], true);
    assert_eq!(reg["guest_id"], json!(claims.sub));
    assert!(reg["user_id"].is_null());
    assert_eq!(reg["display_name"], "Sam Guest");
    assert_eq!(reg["role"], "guest");
    app.get(
        &format!("/api/sessions/{}/participants", fx.session_id),
        Some(token),
    )
    .await
    .expect(200);

    // ...and nothing else.
    let other = app.session(&fx.therapist, "Another room").await;
    let other_id = other["id"].as_str().unwrap();
    app.get(&format!("/api/sessions/{other_id}"), Some(token))
        .await
        .expect_err(404, "session_not_found");
    app.get(
        &format!("/api/sessions/{other_id}/participants"),
        Some(token),
    )
    .await
    .expect_err(404, "session_not_found");
    app.post(
        &format!("/api/sessions/{other_id}/participants"),
        Some(token),
        None,
    )
    .await
    .expect_err(404, "session_not_found");
    assert_eq!(
        app.count("session_participants", "session_id = $1", other_id)
            .await,
        0
    );
    app.post(&format!("/api/sessions/{other_id}/end"), Some(token), None)
        .await
        .expect_err(404, "session_not_found");
    app.post(
        &format!("/api/sessions/{}/end", fx.session_id),
        Some(token),
        None,
    )
    .await
    .expect_err(403, "forbidden");
    app.get("/api/sessions", Some(token))
        .await
        .expect_err(403, "forbidden");
    let org_path = format!("/api/organizations/{}/therapists/video-settings", fx.org.id);
    app.get(&org_path, Some(token))
        .await
        .expect_err(403, "forbidden");
});

both_dbs!(guest_name_validation, |app| async move {
    let fx = fixture(&app).await;
    let path = format!("/api/join/{}/guest", fx.share);
    for name in [
        "".to_string(),
        "   ".to_string(),
        "x".repeat(81),
        "bell\u{0007}".to_string(),
        "new\nline".to_string(),
        "nul\u{0000}".to_string(),
        "esc\u{001b}[31m".to_string(),
    ] {
        let resp = app.post(&path, None, Some(json!({"name": name}))).await;
        assert_eq!(resp.status.as_u16(), 400, "{name:?} → {}", resp.text);
        resp.expect_err(400, "invalid_name");
    }
    app.post(&path, None, Some(json!({})))
        .await
        .expect_err(400, "invalid_json");
    app.post(&path, None, Some(json!({"name": 7})))
        .await
        .expect_err(400, "invalid_json");
    app.post_raw(&path, None, "application/json", "name=bob")
        .await
        .expect_err(400, "invalid_json");
    assert_eq!(
        app.count("guests", "session_id = $1", &fx.session_id).await,
        0
    );
    // The limits are accepted: 80 characters, non-ASCII letters.
    app.post(&path, None, Some(json!({"name": "é".repeat(80)})))
        .await
        .expect(201);
    app.post(&path, None, Some(json!({"name": "Zoë Ñúñez 李"})))
        .await
        .expect(201);
    assert_eq!(
        app.count("guests", "session_id = $1", &fx.session_id).await,
        2
    );
});

both_dbs!(guest_token_refused_for_closed_links, |app| async move {
    let fx = fixture(&app).await;
    let body = Some(json!({"name": "Late Guest"}));
    app.post("/api/join/unknown-link/guest", None, body.clone())
        .await
        .expect_err(404, "session_not_found");

    // Organization disabled: the therapist's sessions admit no new guests.
    app.put(
        &format!("/api/organizations/{}/video-settings", fx.org.id),
        Some(&fx.org.admin.token),
        json!({"video_sessions_enabled": false}),
    )
    .await
    .expect(200);
    app.post(&format!("/api/join/{}/guest", fx.share), None, body.clone())
        .await
        .expect_err(403, "organization_disabled");
    app.put(
        &format!("/api/organizations/{}/video-settings", fx.org.id),
        Some(&fx.org.admin.token),
        json!({"video_sessions_enabled": true}),
    )
    .await
    .expect(200);
    app.post(&format!("/api/join/{}/guest", fx.share), None, body.clone())
        .await
        .expect(201);

    // Ended.
    app.post(
        &format!("/api/sessions/{}/end", fx.session_id),
        Some(&fx.therapist.token),
        None,
    )
    .await
    .expect(200);
    app.post(&format!("/api/join/{}/guest", fx.share), None, body.clone())
        .await
        .expect_err(404, "session_not_found");

    // Expired.
    let s2 = app.session(&fx.therapist, "Expiring").await;
    app.expire_session(s2["id"].as_str().unwrap()).await;
    app.post(
        &format!("/api/join/{}/guest", s2["share_token"].as_str().unwrap()),
        None,
        body,
    )
    .await
    .expect_err(404, "session_not_found");
    assert_eq!(
        app.count("guests", "session_id = $1", s2["id"].as_str().unwrap())
            .await,
        0
    );
    assert_eq!(
        app.count("guests", "session_id = $1", &fx.session_id).await,
        1
    );
});

both_dbs!(
    guest_token_of_ended_session_cannot_register,
    |app| async move {
        let fx = fixture(&app).await;
        let g = app.guest(&fx.share, "Early Guest").await;
        let token = g["token"].as_str().unwrap();
        app.post(
            &format!("/api/sessions/{}/end", fx.session_id),
            Some(&fx.therapist.token),
            None,
        )
        .await
        .expect(200);
        app.post(
            &format!("/api/sessions/{}/participants", fx.session_id),
            Some(token),
            None,
        )
        .await
        .expect_err(409, "session_ended");
        assert_eq!(
            app.count("session_participants", "session_id = $1", &fx.session_id)
                .await,
            0
        );
    }
);
