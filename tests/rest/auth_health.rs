//! Authentication (missing, expired, forged, `alg: none`), TURN credentials, health
//! probes, unknown routes, and the OpenAPI document against the routes served.

use super::*;
use axum::body::Body;
use axum::http::{header, Method, Request};
use base64::Engine;
use hmac::{Hmac, Mac};
use std::collections::BTreeSet;

/// Every route of the REST API: (method, OpenAPI path).
const ROUTES: [(&str, &str); 99] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/organizations/{id}/video-settings"),
    ("put", "/api/organizations/{id}/video-settings"),
    ("get", "/api/organizations/{id}/therapists/video-settings"),
    (
        "put",
        "/api/organizations/{id}/therapists/{therapist_id}/video-settings",
    ),
    (
        "put",
        "/api/organizations/{id}/therapists/video-settings/bulk",
    ),
    ("get", "/api/organizations/{id}/therapists/blog-permissions"),
    (
        "post",
        "/api/organizations/{id}/therapists/{therapist_id}/blog-permission/grant",
    ),
    (
        "post",
        "/api/organizations/{id}/therapists/{therapist_id}/blog-permission/revoke",
    ),
    ("post", "/api/sessions"),
    ("get", "/api/sessions"),
    ("get", "/api/sessions/{id}"),
    ("patch", "/api/sessions/{id}"),
    ("get", "/api/sessions/{id}/waiting"),
    ("post", "/api/sessions/{id}/waiting/{participant_id}/admit"),
    (
        "post",
        "/api/sessions/{id}/waiting/{participant_id}/decline",
    ),
    ("post", "/api/sessions/{id}/end"),
    ("post", "/api/sessions/{id}/participants"),
    ("get", "/api/sessions/{id}/participants"),
    ("delete", "/api/sessions/{id}/participants/{participant_id}"),
    ("get", "/api/join/{share_token}"),
    ("post", "/api/join/{share_token}/guest"),
    ("get", "/api/turn-credentials"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("get", "/api/me"),
    ("post", "/api/organizations"),
    ("get", "/api/organizations/{id}"),
    ("post", "/api/organizations/{id}/invitations"),
    ("get", "/api/organizations/{id}/invitations"),
    (
        "delete",
        "/api/organizations/{id}/invitations/{invitation_id}",
    ),
    ("post", "/api/invitations/inspect"),
    ("post", "/api/invitations/accept"),
    ("get", "/api/organizations/{id}/therapists"),
    ("get", "/api/organizations/{id}/therapists/{therapist_id}"),
    ("patch", "/api/organizations/{id}/therapists/{therapist_id}"),
    (
        "post",
        "/api/organizations/{id}/therapists/{therapist_id}/deactivate",
    ),
    (
        "post",
        "/api/organizations/{id}/therapists/{therapist_id}/reactivate",
    ),
    ("get", "/api/clients"),
    ("get", "/api/clients/{id}"),
    ("patch", "/api/clients/{id}"),
    ("post", "/api/clients/{id}/deactivate"),
    ("post", "/api/clients/{id}/reactivate"),
    ("get", "/api/notifications"),
    ("post", "/api/notifications/{id}/read"),
    ("post", "/api/schedule/holds"),
    ("post", "/api/schedule/holds/{hold_key}/confirm"),
    ("delete", "/api/schedule/holds/{hold_key}"),
    ("get", "/api/schedule/holds/{hold_key}"),
    ("get", "/api/schedule/sessions"),
    ("get", "/api/schedule/sessions/{id}"),
    ("post", "/api/schedule/sessions/{id}/cancel"),
    ("put", "/api/schedule/sessions/{id}/attendance"),
    ("put", "/api/schedule/sessions/{id}/service-code"),
    ("get", "/api/schedule/service-codes"),
    ("get", "/api/schedule/sessions/{id}/notes"),
    ("post", "/api/schedule/sessions/{id}/notes"),
    ("put", "/api/schedule/sessions/{id}/notes/{note_id}"),
    ("get", "/api/schedule/sessions/{id}/video"),
    ("get", "/api/schedule"),
    ("get", "/api/schedule/conflicts"),
    ("get", "/api/therapists/{id}/working-hours"),
    ("put", "/api/therapists/{id}/working-hours"),
    ("get", "/api/therapists/{id}/time-off"),
    ("post", "/api/therapists/{id}/time-off"),
    ("delete", "/api/therapists/{id}/time-off/{time_off_id}"),
    ("get", "/api/therapists/{id}/availability"),
    ("post", "/api/communities"),
    ("get", "/api/communities"),
    ("post", "/api/communities/{id}/members"),
    ("get", "/api/communities/{id}/members"),
    ("post", "/api/group-sessions"),
    ("get", "/api/group-sessions"),
    ("get", "/api/group-sessions/my-sessions"),
    ("get", "/api/group-sessions/{id}"),
    ("delete", "/api/group-sessions/{id}"),
    ("patch", "/api/group-sessions/{id}"),
    ("post", "/api/group-sessions/{id}/invitations"),
    (
        "post",
        "/api/group-sessions/{id}/invitations/{invitation_id}/reinvite",
    ),
    (
        "delete",
        "/api/group-sessions/{id}/invitations/{invitation_id}",
    ),
    ("post", "/api/group-sessions/{id}/complete"),
    ("get", "/api/group-sessions/{id}/participants"),
    (
        "put",
        "/api/group-sessions/{id}/participants/{participant_id}/attendance",
    ),
    ("post", "/api/group-sessions/{id}/join"),
    ("delete", "/api/group-sessions/{id}/leave"),
    ("get", "/api/group-sessions/{id}/video"),
    ("get", "/api/group-sessions/therapist/invitations"),
    (
        "post",
        "/api/group-sessions/therapist/invitations/{id}/respond",
    ),
    ("get", "/api/group-sessions/therapist/sessions"),
    ("put", "/api/organizations/{id}/webhook"),
    ("get", "/api/organizations/{id}/webhook"),
    ("delete", "/api/organizations/{id}/webhook"),
    ("post", "/api/organizations/{id}/webhook/test"),
    ("get", "/api/organizations/{id}/webhook/deliveries"),
    ("get", "/api/organizations/{id}/audit"),
    ("get", "/api/organizations/{id}/audit.csv"),
    // Served, but not part of the document it serves.
    ("get", "/api/openapi.json"),
];

/// The 17 documented paths.
const DOC_PATHS: [&str; 80] = [
    "/healthz",
    "/api/organizations/{id}/webhook",
    "/api/organizations/{id}/webhook/test",
    "/api/organizations/{id}/webhook/deliveries",
    "/api/organizations/{id}/audit",
    "/api/organizations/{id}/audit.csv",
    "/readyz",
    "/api/organizations/{id}/video-settings",
    "/api/organizations/{id}/therapists/video-settings",
    "/api/organizations/{id}/therapists/{therapist_id}/video-settings",
    "/api/organizations/{id}/therapists/video-settings/bulk",
    "/api/organizations/{id}/therapists/blog-permissions",
    "/api/organizations/{id}/therapists/{therapist_id}/blog-permission/grant",
    "/api/organizations/{id}/therapists/{therapist_id}/blog-permission/revoke",
    "/api/sessions",
    "/api/sessions/{id}",
    "/api/sessions/{id}/waiting",
    "/api/sessions/{id}/waiting/{participant_id}/admit",
    "/api/sessions/{id}/waiting/{participant_id}/decline",
    "/api/sessions/{id}/end",
    "/api/sessions/{id}/participants",
    "/api/sessions/{id}/participants/{participant_id}",
    "/api/join/{share_token}",
    "/api/join/{share_token}/guest",
    "/api/turn-credentials",
    "/api/auth/logout",
    "/api/auth/login",
    "/api/auth/refresh",
    "/api/me",
    "/api/organizations",
    "/api/organizations/{id}",
    "/api/organizations/{id}/invitations",
    "/api/organizations/{id}/invitations/{invitation_id}",
    "/api/invitations/inspect",
    "/api/invitations/accept",
    "/api/organizations/{id}/therapists",
    "/api/organizations/{id}/therapists/{therapist_id}",
    "/api/organizations/{id}/therapists/{therapist_id}/deactivate",
    "/api/organizations/{id}/therapists/{therapist_id}/reactivate",
    "/api/clients",
    "/api/clients/{id}",
    "/api/clients/{id}/deactivate",
    "/api/clients/{id}/reactivate",
    "/api/notifications",
    "/api/notifications/{id}/read",
    "/api/schedule/holds",
    "/api/schedule/holds/{hold_key}/confirm",
    "/api/schedule/holds/{hold_key}",
    "/api/schedule/sessions",
    "/api/schedule/sessions/{id}",
    "/api/schedule/sessions/{id}/cancel",
    "/api/schedule/sessions/{id}/attendance",
    "/api/schedule/sessions/{id}/service-code",
    "/api/schedule/service-codes",
    "/api/schedule/sessions/{id}/notes",
    "/api/schedule/sessions/{id}/notes/{note_id}",
    "/api/schedule/sessions/{id}/video",
    "/api/schedule",
    "/api/schedule/conflicts",
    "/api/therapists/{id}/working-hours",
    "/api/therapists/{id}/time-off",
    "/api/therapists/{id}/time-off/{time_off_id}",
    "/api/therapists/{id}/availability",
    "/api/communities",
    "/api/communities/{id}/members",
    "/api/group-sessions",
    "/api/group-sessions/my-sessions",
    "/api/group-sessions/{id}",
    "/api/group-sessions/{id}/complete",
    "/api/group-sessions/{id}/invitations",
    "/api/group-sessions/{id}/invitations/{invitation_id}",
    "/api/group-sessions/{id}/invitations/{invitation_id}/reinvite",
    "/api/group-sessions/{id}/participants",
    "/api/group-sessions/{id}/participants/{participant_id}/attendance",
    "/api/group-sessions/{id}/join",
    "/api/group-sessions/{id}/leave",
    "/api/group-sessions/{id}/video",
    "/api/group-sessions/therapist/invitations",
    "/api/group-sessions/therapist/invitations/{id}/respond",
    "/api/group-sessions/therapist/sessions",
];

/// Routes that need a bearer token.
fn protected() -> Vec<(Method, String, Option<Value>)> {
    let switch = json!({"video_sessions_enabled": true});
    vec![
        (
            Method::GET,
            "/api/organizations/o/video-settings".into(),
            None,
        ),
        (
            Method::PUT,
            "/api/organizations/o/video-settings".into(),
            Some(switch.clone()),
        ),
        (
            Method::GET,
            "/api/organizations/o/therapists/video-settings".into(),
            None,
        ),
        (
            Method::PUT,
            "/api/organizations/o/therapists/t/video-settings".into(),
            Some(switch.clone()),
        ),
        (
            Method::PUT,
            "/api/organizations/o/therapists/video-settings/bulk".into(),
            Some(json!({"therapist_ids": ["t"], "video_sessions_enabled": true})),
        ),
        (
            Method::GET,
            "/api/organizations/o/therapists/blog-permissions".into(),
            None,
        ),
        (Method::GET, "/api/organizations/o/audit".into(), None),
        (Method::GET, "/api/organizations/o/audit.csv".into(), None),
        (
            Method::POST,
            "/api/organizations/o/therapists/t/blog-permission/grant".into(),
            None,
        ),
        (
            Method::POST,
            "/api/organizations/o/therapists/t/blog-permission/revoke".into(),
            None,
        ),
        (
            Method::POST,
            "/api/sessions".into(),
            Some(json!({"session_name": "x"})),
        ),
        (Method::GET, "/api/sessions".into(), None),
        (Method::GET, "/api/sessions/s".into(), None),
        (Method::POST, "/api/sessions/s/end".into(), None),
        (Method::POST, "/api/sessions/s/participants".into(), None),
        (Method::GET, "/api/sessions/s/participants".into(), None),
        (
            Method::DELETE,
            "/api/sessions/s/participants/p".into(),
            None,
        ),
        (Method::GET, "/api/turn-credentials".into(), None),
        (Method::POST, "/api/auth/logout".into(), None),
    ]
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

both_dbs!(
    every_protected_route_needs_a_valid_token,
    |app| async move {
        let org = app.org("Auth Clinic", true).await;
        let t = app.therapist(&org.id, "Dr Auth").await;
        let expired = app
            .jwt
            .issue(&t.id, Role::Therapist, Some(&org.id), None, -10)
            .0;
        let forged = theraroom::auth::JwtKeys::new(b"some-other-secret")
            .issue(&t.id, Role::Therapist, Some(&org.id), None, 600)
            .0;
        let exp = chrono::Utc::now().timestamp() + 600;
        let claims = format!(
            r#"{{"sub":"{}","role":"super_admin","exp":{exp},"iat":0}}"#,
            t.id
        );
        let alg_none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"JWT"}"#),
            b64url(claims.as_bytes())
        );
        // HS512 with the right secret: only HS256 is accepted.
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &json!({"iss": "theraroom", "aud": "theraroom", "jti": "j1", "sub": t.id,
                "role": "therapist", "org_id": org.id, "exp": exp, "iat": exp - 600}),
            &jsonwebtoken::EncodingKey::from_secret(common::JWT_SECRET),
        )
        .unwrap();
        // A guest token without the session it is scoped to.
        let unscoped_guest = app.jwt.issue("g", Role::Guest, Some(&org.id), None, 600).0;
        let tampered = {
            let mut parts: Vec<String> = t.token.split('.').map(str::to_string).collect();
            let payload = format!(
                r#"{{"sub":"{}","role":"super_admin","exp":{exp},"iat":0}}"#,
                t.id
            );
            parts[1] = b64url(payload.as_bytes());
            parts.join(".")
        };

        for (method, path, body) in protected() {
            let what = format!("{method} {path}");
            let resp = app.call(method.clone(), &path, None, body.clone()).await;
            assert_eq!(resp.status.as_u16(), 401, "{what}: {}", resp.text);
            resp.expect_err(401, "unauthorized");
            app.call(method.clone(), &path, Some(&expired), body.clone())
                .await
                .expect_err(401, "token_expired");
            for bad in [
                &forged,
                &alg_none,
                &hs512,
                &unscoped_guest,
                &tampered,
                &"not-a-jwt".to_string(),
            ] {
                let resp = app
                    .call(method.clone(), &path, Some(bad), body.clone())
                    .await;
                assert_eq!(
                    resp.status.as_u16(),
                    401,
                    "{what} with {bad}: {}",
                    resp.text
                );
                resp.expect_err(401, "invalid_token");
            }
            // Other schemes than Bearer count as no token.
            let mut req = Request::builder().method(method.clone()).uri(&path).header(
                header::AUTHORIZATION,
                format!("Basic {}", b64url(b"user:pass")),
            );
            let payload = match &body {
                Some(json) => {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                    Body::from(json.to_string())
                }
                None => Body::empty(),
            };
            app.send(req.body(payload).unwrap())
                .await
                .expect_err(401, "unauthorized");
        }
        // The same therapist with a valid token gets through.
        app.get("/api/sessions", Some(&t.token)).await.expect(200);
        assert_eq!(
            app.count("instant_sessions", "therapist_id = $1", &t.id)
                .await,
            0
        );
    }
);

both_dbs!(turn_credentials, |app| async move {
    let org = app.org("Turn Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Turn").await;
    let before = chrono::Utc::now().timestamp();
    let resp = app.get("/api/turn-credentials", Some(&t.token)).await;
    let cred = resp.expect(200).clone();
    let username = cred["username"].as_str().unwrap();
    let (expiry, subject) = username.split_once(':').expect("<expiry>:<subject>");
    assert_eq!(subject, t.id);
    let expiry: i64 = expiry.parse().expect("unix expiry");
    let after = chrono::Utc::now().timestamp();
    assert!(
        expiry >= before + common::TURN_TTL as i64 && expiry <= after + common::TURN_TTL as i64,
        "expiry {expiry} is now + ttl"
    );
    assert_eq!(cred["ttl"], common::TURN_TTL);
    assert_eq!(cred["uris"], json!(common::TURN_URIS));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(common::TURN_SECRET).unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(cred["password"], json!(expected));

    // Guests get credentials too, for their guest id.
    let s = app.session(&t, "Turn room").await;
    let g = app
        .guest(s["share_token"].as_str().unwrap(), "Turn Guest")
        .await;
    let gcred = app.get("/api/turn-credentials", g["token"].as_str()).await;
    let gcred = gcred.expect(200);
    assert!(gcred["username"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":{}", g["guest_id"].as_str().unwrap())));

    app.get("/api/turn-credentials", None)
        .await
        .expect_err(401, "unauthorized");
    let expired = app
        .jwt
        .issue(&t.id, Role::Therapist, Some(&org.id), None, -10)
        .0;
    app.get("/api/turn-credentials", Some(&expired))
        .await
        .expect_err(401, "token_expired");
});

both_dbs!(health_probes, |app| async move {
    let h = app.get("/healthz", None).await;
    assert_eq!(h.expect(200).clone(), json!({"status": "ok"}));
    let r = app.get("/readyz", None).await;
    assert_eq!(r.expect(200).clone(), json!({"status": "ready"}));
    // Without a database the service is not ready (but still alive).
    app.store.close().await;
    let r = app.get("/readyz", None).await;
    assert_eq!(
        r.expect(503).clone(),
        json!({"status": "database_unavailable"})
    );
    app.get("/healthz", None).await.expect(200);
});

both_dbs!(unknown_api_routes_are_json_404, |app| async move {
    for (method, path) in [
        (Method::GET, "/api/nope"),
        (Method::POST, "/api/sessions/s/nope"),
        (Method::GET, "/api"),
        (Method::DELETE, "/api/organizations/o/nope/deeper"),
    ] {
        let resp = app.call(method, path, None, None).await;
        resp.expect_err(404, "not_found");
    }
    // The assembled application (REST + pages + static files) answers the same for /api.
    let static_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let full = theraroom::app::build(app.state(), static_dir, axum::Router::new());
    let req = Request::builder()
        .uri("/api/does/not/exist")
        .body(Body::empty())
        .unwrap();
    common::send_to(&full, req)
        .await
        .expect_err(404, "not_found");
    let req = Request::builder()
        .uri("/healthz")
        .body(Body::empty())
        .unwrap();
    common::send_to(&full, req).await.expect(200);
});

both_dbs!(openapi_lists_every_route, |app| async move {
    let resp = app.get("/api/openapi.json", None).await;
    let doc = resp.expect(200).clone();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = DOC_PATHS.into_iter().collect();
    assert_eq!(documented, expected, "OpenAPI paths differ from the routes");

    // Methods per path, as documented.
    let mut doc_routes = BTreeSet::new();
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                doc_routes.insert((method.to_string(), path.clone()));
            }
        }
    }
    let expected_routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|(_, p)| *p != "/api/openapi.json")
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(doc_routes, expected_routes);

    // Every route (and the document itself) is served: no request falls through to
    // the router's `not_found` fallback or gets 405.
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{id}", "x")
            .replace("{therapist_id}", "t")
            .replace("{participant_id}", "p")
            .replace("{share_token}", "st")
            .replace("{hold_key}", "hk")
            .replace("{note_id}", "n")
            .replace("{invitation_id}", "i")
            .replace("{time_off_id}", "to");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
        let resp = app.call(method.clone(), &concrete, None, body).await;
        assert_ne!(
            resp.status.as_u16(),
            405,
            "{method} {concrete} is not routed"
        );
        assert_ne!(
            resp.json["error"]["code"],
            json!("not_found"),
            "{method} {concrete} falls through to the fallback"
        );
    }

    // Every operation documents its error responses with the shared error schema.
    // Public: the share link, and the ways in (sign-in, refresh, invitations).
    let public = [
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/invitations/inspect",
        "/api/invitations/accept",
    ];
    let protected_ops = doc_routes.iter().filter(|(_, p)| {
        p.starts_with("/api/") && !p.starts_with("/api/join/") && !public.contains(&p.as_str())
    });
    for (method, path) in protected_ops {
        let op = &paths[path.as_str()][method.as_str()];
        assert!(
            op["responses"].get("401").is_some(),
            "{method} {path} documents no 401"
        );
        assert!(
            op.get("security").is_some(),
            "{method} {path} documents no security"
        );
    }
});
