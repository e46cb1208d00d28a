//! Sign-in: e-mail + password, the refresh token's rotation and replay detection,
//! sign-out, the failed sign-in limit, and no user enumeration (docs/ACCOUNTS.md).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request};

use super::*;

/// A password that passes the strength rule.
pub const PASSWORD: &str = "correct horse battery staple";

/// The refresh token a response's `Set-Cookie` carries (`None` when it clears it).
pub fn refresh_cookie(resp: &common::Resp) -> Option<String> {
    resp.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("theraroom_refresh="))
        .and_then(|rest| rest.split(';').next())
        .filter(|value| !value.is_empty())
        .map(str::to_string)
}

/// Invites `name` with `role` into `org` (by its admin) and accepts the invitation with
/// [`PASSWORD`]. Returns (e-mail, the accept answer).
pub async fn invited(app: &TestApp, org: &OrgFx, role: &str, name: &str) -> (String, Value) {
    let email = common::unique_email(name);
    let invitation = app
        .post(
            &format!("/api/organizations/{}/invitations", org.id),
            Some(&org.admin.token),
            Some(json!({"email": email, "display_name": name, "role": role})),
        )
        .await;
    let url = invitation.expect(201)["invite_url"]
        .as_str()
        .expect("invite_url")
        .to_string();
    let token = url
        .split("#token=")
        .nth(1)
        .expect("token in the fragment")
        .to_string();
    let accepted = app
        .post(
            "/api/invitations/accept",
            None,
            Some(json!({"token": token, "password": PASSWORD})),
        )
        .await;
    (email, accepted.expect(200).clone())
}

/// `POST /api/auth/login` from `peer`.
pub async fn login_from(app: &TestApp, email: &str, password: &str, peer: IpAddr) -> common::Resp {
    let body = json!({"email": email, "password": password}).to_string();
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(peer, 40_001)));
    app.send(req).await
}

/// `POST /api/auth/login` from the usual test peer.
pub async fn login(app: &TestApp, email: &str, password: &str) -> common::Resp {
    app.post(
        "/api/auth/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

/// `POST /api/auth/refresh` with the cookie `refresh` (and optionally a bearer token).
pub async fn with_cookie(
    app: &TestApp,
    path: &str,
    refresh: &str,
    bearer: Option<&str>,
) -> common::Resp {
    let mut builder = Request::builder().method(Method::POST).uri(path).header(
        header::COOKIE,
        format!("other=1; theraroom_refresh={refresh}"),
    );
    if let Some(token) = bearer {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    app.send(builder.body(Body::empty()).unwrap()).await
}

both_dbs!(sign_in_refresh_rotation_and_sign_out, |app| async move {
    let org = app.org("Sign-in Clinic", true).await;
    let (email, _) = invited(&app, &org, "therapist", "Dr Sign").await;

    let signed = login(&app, &email.to_uppercase(), PASSWORD).await;
    let body = signed.expect(200).clone();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], json!(900));
    assert!(
        body.get("refresh_token").is_none(),
        "the refresh token stays in the cookie"
    );
    assert_eq!(body["me"]["email"], json!(email));
    assert_eq!(body["me"]["role"], "therapist");
    let cookie = signed
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/api/auth", "Secure"] {
        assert!(cookie.contains(part), "{part} missing in {cookie}");
    }
    let access = body["access_token"].as_str().unwrap().to_string();
    let me = app.get("/api/me", Some(&access)).await;
    assert_eq!(
        me.expect(200)["therapist"]["video_access"]["is_enabled"],
        json!(true)
    );
    assert_eq!(me.json["organization"]["id"], json!(org.id));

    // Rotation: each refresh answers a new pair; the old refresh token is spent.
    let first = refresh_cookie(&signed).expect("refresh cookie");
    let rotated = with_cookie(&app, "/api/auth/refresh", &first, None).await;
    rotated.expect(200);
    let second = refresh_cookie(&rotated).expect("rotated cookie");
    assert_ne!(first, second);
    let new_access = rotated.json["access_token"].as_str().unwrap().to_string();
    app.get("/api/me", Some(&new_access)).await.expect(200);

    // Replay of the spent token: refused, and the whole family with it.
    let replay = with_cookie(&app, "/api/auth/refresh", &first, None).await;
    replay.expect_err(401, "invalid_refresh_token");
    assert_eq!(
        refresh_cookie(&replay),
        None,
        "the refusal clears the cookie"
    );
    with_cookie(&app, "/api/auth/refresh", &second, None)
        .await
        .expect_err(401, "invalid_refresh_token");
    let audited = app
        .count("audit_log", "action = $1", "auth.refresh_replayed")
        .await;
    assert_eq!(audited, 1);

    // Sign-out revokes the bearer token and the cookie's sign-in.
    let again = login(&app, &email, PASSWORD).await;
    let access = again.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = refresh_cookie(&again).unwrap();
    let out = with_cookie(&app, "/api/auth/logout", &refresh, Some(&access)).await;
    out.expect(204);
    assert_eq!(refresh_cookie(&out), None);
    assert!(
        out.headers.get(header::SET_COOKIE).is_some(),
        "the cookie is cleared"
    );
    app.get("/api/me", Some(&access))
        .await
        .expect_err(401, "token_revoked");
    with_cookie(&app, "/api/auth/refresh", &refresh, None)
        .await
        .expect_err(401, "invalid_refresh_token");
    // Scripts without a cookie jar ask for the refresh token in the body.
    let scripted = app
        .post(
            "/api/auth/login",
            None,
            Some(json!({"email": email, "password": PASSWORD, "return_refresh_token": true})),
        )
        .await;
    let token = scripted.expect(200)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
    .expect(200);
});

both_dbs!(
    sign_in_refusals_do_not_tell_which_part_was_wrong,
    |app| async move {
        let org = app.org("Enumeration Clinic", true).await;
        let (email, accepted) = invited(&app, &org, "therapist", "Dr Quiet").await;
        let (gone_email, gone) = invited(&app, &org, "therapist", "Dr Gone").await;
        let gone_id = gone["me"]["id"].as_str().unwrap().to_string();
        app.post(
            &format!(
                "/api/organizations/{}/therapists/{gone_id}/deactivate",
                org.id
            ),
            Some(&org.admin.token),
            None,
        )
        .await
        .expect(200);
        assert!(accepted["me"]["id"].is_string());

        let mut answers: Vec<(&str, Duration)> = Vec::new();
        // Each attempt from its own address, so the failed sign-in limit stays out of it.
        for round in 0..4u8 {
            for (index, (kind, who, password)) in [
                ("wrong password", email.as_str(), "not the password at all"),
                (
                    "unknown e-mail",
                    "nobody-here@test.theraroom.invalid",
                    PASSWORD,
                ),
                ("deactivated", gone_email.as_str(), PASSWORD),
            ]
            .into_iter()
            .enumerate()
            {
                let peer = IpAddr::V4(Ipv4Addr::new(10, 9, round, index as u8));
                let started = Instant::now();
                let resp = login_from(&app, who, password, peer).await;
                answers.push((kind, started.elapsed()));
                resp.expect_err(401, "invalid_credentials");
                assert_eq!(
                    resp.message(),
                    "the e-mail address or the password is not right",
                    "{kind}"
                );
            }
        }
        // Timing: an unknown e-mail costs an argon2 verification as a known one does. The
        // bound is loose on purpose (a skipped verification is 100x faster, noise is not).
        let median = |kind: &str| {
            let mut times: Vec<Duration> = answers
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, t)| *t)
                .collect();
            times.sort();
            times[times.len() / 2]
        };
        let (wrong, unknown) = (median("wrong password"), median("unknown e-mail"));
        eprintln!("sign-in refusal medians: wrong password {wrong:?}, unknown e-mail {unknown:?}");
        assert!(
            unknown * 4 >= wrong,
            "unknown e-mail {unknown:?} much faster than wrong password {wrong:?}"
        );
        let failures = app
            .count("audit_log", "action = $1", "auth.login_failed")
            .await;
        assert_eq!(failures, 12);
        let leaked = app
            .count("audit_log", "after_state LIKE $1", "%not the password%")
            .await;
        assert_eq!(leaked, 0, "passwords never reach the audit log");
    }
);

both_dbs!(
    failed_sign_ins_lock_the_email_for_a_while,
    |app| async move {
        let org = app.org("Limit Clinic", true).await;
        let (email, _) = invited(&app, &org, "client", "Casey Limit").await;
        for attempt in 0..5u8 {
            let peer = IpAddr::V4(Ipv4Addr::new(10, 8, 0, attempt));
            login_from(&app, &email, "guessing the password", peer)
                .await
                .expect_err(401, "invalid_credentials");
        }
        // The right password from yet another address: the e-mail is locked.
        let locked = login_from(
            &app,
            &email,
            PASSWORD,
            IpAddr::V4(Ipv4Addr::new(10, 8, 1, 1)),
        )
        .await;
        locked.expect_err(429, "too_many_attempts");
        let wait: u64 = locked
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!(wait > 60 && wait <= 15 * 60, "{wait}");
        // Another person from an unlocked address is not affected.
        let (other, _) = invited(&app, &org, "client", "Other Limit").await;
        login_from(
            &app,
            &other,
            PASSWORD,
            IpAddr::V4(Ipv4Addr::new(10, 8, 2, 2)),
        )
        .await
        .expect(200);
    }
);

both_dbs!(login_input_is_checked, |app| async move {
    app.post_raw("/api/auth/login", None, "application/json", "{")
        .await
        .expect_err(400, "invalid_json");
    app.post("/api/auth/login", None, Some(json!({"email": "x@y.org"})))
        .await
        .expect_err(400, "invalid_json");
    app.post("/api/auth/refresh", None, None)
        .await
        .expect_err(401, "invalid_refresh_token");
    app.post(
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": "forged"})),
    )
    .await
    .expect_err(401, "invalid_refresh_token");
    app.post("/api/auth/logout", None, None)
        .await
        .expect_err(401, "unauthorized");
    app.get("/api/me", None)
        .await
        .expect_err(401, "unauthorized");
});
