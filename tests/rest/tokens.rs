//! Tokens: issuer/audience, lifetimes and time claims, the subject checked against
//! the database (deleted, disabled, role-escalated users; guests of other sessions),
//! sign-out and subject revocation, and the failed-authentication limit and audit.

use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request};
use theraroom::auth::{AuthGuard, Claims};
use theraroom::state::{AppState, NoLiveRooms};

/// Any route every authenticated caller may use.
const PROBE: &str = "/api/turn-credentials";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a token minted by the app.
fn claims_of(app: &TestApp, token: &str) -> Claims {
    app.jwt.verify(token).expect("a valid token")
}

/// A token signed with the app's key from raw JSON claims.
fn raw_token(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(common::JWT_SECRET),
    )
    .expect("sign")
}

/// A GET of `path` as if from `ip`, with an optional bearer token.
fn from_ip(path: &str, token: Option<&str>, ip: [u8; 4]) -> Request<Body> {
    let mut builder = Request::builder().method(Method::GET).uri(path);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut req = builder.body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    req
}

both_dbs!(token_claims_are_checked, |app| async move {
    let org = app.org("Claims Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Claims").await;
    app.get(PROBE, Some(&t.token)).await.expect(200);
    let base = claims_of(&app, &t.token);
    let n = now();

    let century = app.jwt.sign(&Claims {
        exp: n + 100 * 365 * 86_400,
        ..base.clone()
    });
    app.get(PROBE, Some(&century))
        .await
        .expect_err(401, "token_lifetime_exceeded");
    let day_and_a_bit = app.jwt.sign(&Claims {
        iat: n,
        exp: n + 24 * 3600 + 120,
        ..base.clone()
    });
    app.get(PROBE, Some(&day_and_a_bit))
        .await
        .expect_err(401, "token_lifetime_exceeded");

    let mut no_aud = serde_json::to_value(&base).unwrap();
    no_aud.as_object_mut().unwrap().remove("aud");
    app.get(PROBE, Some(&raw_token(no_aud)))
        .await
        .expect_err(401, "invalid_token");
    for (field, value) in [("aud", "another-app"), ("iss", "someone-else")] {
        let mut wrong = serde_json::to_value(&base).unwrap();
        wrong[field] = json!(value);
        app.get(PROBE, Some(&raw_token(wrong)))
            .await
            .expect_err(401, "invalid_token");
    }
    let mut no_jti = serde_json::to_value(&base).unwrap();
    no_jti.as_object_mut().unwrap().remove("jti");
    app.get(PROBE, Some(&raw_token(no_jti)))
        .await
        .expect_err(401, "invalid_token");

    let future_nbf = app.jwt.sign(&Claims {
        nbf: Some(n + 600),
        ..base.clone()
    });
    app.get(PROBE, Some(&future_nbf))
        .await
        .expect_err(401, "token_not_yet_valid");
    let future_iat = app.jwt.sign(&Claims {
        iat: n + 600,
        exp: n + 1200,
        ..base.clone()
    });
    app.get(PROBE, Some(&future_iat))
        .await
        .expect_err(401, "token_not_yet_valid");
    // A few seconds of clock skew between instances is tolerated.
    let skewed = app.jwt.sign(&Claims {
        iat: n + 5,
        nbf: Some(n + 5),
        ..base.clone()
    });
    app.get(PROBE, Some(&skewed)).await.expect(200);

    // Guests live at most 4 h.
    let s = app.session(&t, "Claims room").await;
    let g = app.guest(s["share_token"].as_str().unwrap(), "Guest").await;
    let guest = claims_of(&app, g["token"].as_str().unwrap());
    assert!(guest.exp - guest.iat <= 4 * 3600);
    let long_guest = app.jwt.sign(&Claims {
        iat: n,
        exp: n + 5 * 3600,
        ..guest
    });
    app.get(PROBE, Some(&long_guest))
        .await
        .expect_err(401, "token_lifetime_exceeded");
    // Issued tokens carry issuer, audience and a fresh id.
    assert_eq!(
        (base.iss.as_str(), base.aud.as_str()),
        ("theraroom", "theraroom")
    );
    assert_ne!(
        base.jti,
        claims_of(
            &app,
            &app.token(&t.id, Role::Therapist, Some(&org.id), None)
        )
        .jti
    );
});

both_dbs!(tokens_follow_the_account, |app| async move {
    let org = app.org("Account Clinic", true).await;
    let other = app.org("Other Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Account").await;
    let client = app.client(&org.id, Some(&t.id), "Client").await;

    // Deleted user: the token names nobody.
    let gone = app.user(&org.id, Role::Admin, "Gone Admin").await;
    app.get(PROBE, Some(&gone.token)).await.expect(200);
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(&gone.id)
        .execute(app.store.pool())
        .await
        .unwrap();
    app.get(PROBE, Some(&gone.token))
        .await
        .expect_err(401, "invalid_token");

    // Disabled user, until enabled again.
    assert!(app.store.set_user_disabled(&t.id, true).await.unwrap());
    app.get(PROBE, Some(&t.token))
        .await
        .expect_err(401, "account_disabled");
    app.get("/api/sessions", Some(&t.token))
        .await
        .expect_err(401, "account_disabled");
    assert!(app.store.set_user_disabled(&t.id, false).await.unwrap());
    app.get(PROBE, Some(&t.token)).await.expect(200);
    assert!(!app
        .store
        .set_user_disabled("no-such-user", true)
        .await
        .unwrap());

    // Role and organization come from the row, not from the token.
    for (role, org_id) in [
        (Role::Admin, Some(org.id.as_str())),
        (Role::SuperAdmin, None),
        (Role::Client, Some(other.id.as_str())),
    ] {
        let escalated = app.token(&client.id, role, org_id, None);
        app.get(PROBE, Some(&escalated))
            .await
            .expect_err(401, "invalid_token");
    }
    app.get(
        &format!("/api/organizations/{}/video-settings", org.id),
        Some(&app.token(&client.id, Role::Admin, Some(&org.id), None)),
    )
    .await
    .expect_err(401, "invalid_token");
    app.get(PROBE, Some(&client.token)).await.expect(200);

    // Guests: the row must exist and belong to the token's session and organization.
    let s1 = app.session(&t, "Room one").await;
    let s2 = app.session(&t, "Room two").await;
    let g = app
        .guest(s1["share_token"].as_str().unwrap(), "Guest")
        .await;
    let gid = g["guest_id"].as_str().unwrap();
    let sid1 = s1["id"].as_str().unwrap();
    let sid2 = s2["id"].as_str().unwrap();
    app.get(PROBE, g["token"].as_str()).await.expect(200);
    for (sub, session, org_id) in [
        (gid, sid2, org.id.as_str()),
        (gid, sid1, other.id.as_str()),
        ("no-such-guest", sid1, org.id.as_str()),
    ] {
        let forged = app.token(sub, Role::Guest, Some(org_id), Some(session));
        app.get(PROBE, Some(&forged))
            .await
            .expect_err(401, "invalid_token");
    }
});

both_dbs!(logout_revokes_that_token_only, |app| async move {
    let org = app.org("Logout Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Logout").await;
    let second = app.token(&t.id, Role::Therapist, Some(&org.id), None);
    let jti = claims_of(&app, &t.token).jti;

    app.post("/api/auth/logout", Some(&t.token), None)
        .await
        .expect(204);
    app.get(PROBE, Some(&t.token))
        .await
        .expect_err(401, "token_revoked");
    app.post("/api/auth/logout", Some(&t.token), None)
        .await
        .expect_err(401, "token_revoked");
    app.get("/api/sessions", Some(&t.token))
        .await
        .expect_err(401, "token_revoked");
    // The user's other token is not affected.
    app.get("/api/sessions", Some(&second)).await.expect(200);
    assert_eq!(app.count("revoked_tokens", "jti = $1", &jti).await, 1);
    assert_eq!(app.audit_actions("therapist", &t.id).await, ["auth.logout"]);

    // Guests sign out too.
    let still_signed_in = Person {
        id: t.id.clone(),
        token: second.clone(),
    };
    let s = app.session(&still_signed_in, "Logout room").await;
    let g = app.guest(s["share_token"].as_str().unwrap(), "Guest").await;
    app.post("/api/auth/logout", g["token"].as_str(), None)
        .await
        .expect(204);
    app.get(PROBE, g["token"].as_str())
        .await
        .expect_err(401, "token_revoked");
    app.post("/api/auth/logout", None, None)
        .await
        .expect_err(401, "unauthorized");
});

both_dbs!(revoking_a_subject_ends_all_its_tokens, |app| async move {
    let org = app.org("Revoke Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Revoke").await;
    let s = app.session(&t, "Revoke room").await;
    let g = app.guest(s["share_token"].as_str().unwrap(), "Guest").await;
    let gid = g["guest_id"].as_str().unwrap();
    let sid = s["id"].as_str().unwrap();
    let first = g["token"].as_str().unwrap().to_string();
    let second = app.token(gid, Role::Guest, Some(&org.id), Some(sid));
    let other_guest = app.guest(s["share_token"].as_str().unwrap(), "Other").await;

    theraroom::auth::revoke::revoke_subject(&app.state(), gid, Role::Guest)
        .await
        .unwrap();
    for token in [&first, &second] {
        app.get(PROBE, Some(token))
            .await
            .expect_err(401, "token_revoked");
    }
    app.get(PROBE, other_guest["token"].as_str())
        .await
        .expect(200);
    // A token minted after the revocation is not covered by it.
    let later = app.jwt.sign(&Claims {
        iat: now() + 2,
        nbf: Some(now() + 2),
        ..claims_of(&app, &second)
    });
    app.get(PROBE, Some(&later)).await.expect(200);
    assert_eq!(app.count("revoked_subjects", "subject = $1", gid).await, 1);

    // Entries whose tokens have all expired are purged.
    app.store
        .revoke_token(
            "long-gone",
            "someone",
            chrono::Utc::now().timestamp_millis() - 1,
        )
        .await
        .unwrap();
    assert_eq!(
        app.count("revoked_tokens", "jti = $1", "long-gone").await,
        1
    );
    assert!(app.store.purge_expired_revocations().await.unwrap() >= 1);
    assert_eq!(
        app.count("revoked_tokens", "jti = $1", "long-gone").await,
        0
    );
    assert_eq!(app.count("revoked_subjects", "subject = $1", gid).await, 1);
});

both_dbs!(
    failed_authentication_is_limited_and_audited,
    |app| async move {
        let org = app.org("Flood Clinic", true).await;
        let t = app.therapist(&org.id, "Dr Flood").await;
        // The production default: 20 failures a minute per address.
        let state = AppState {
            auth_guard: AuthGuard::default(),
            accounts: Default::default(),
            live: Arc::new(NoLiveRooms),
            ..app.state()
        };
        let router = theraroom::api::router(state).0;
        let attacker = [203, 0, 113, 7];
        let expired = app
            .jwt
            .issue(&t.id, Role::Therapist, Some(&org.id), None, -10)
            .0;
        let garbage = "eyJhbGciOiJIUzI1NiJ9.e30.not-a-signature";
        common::send_to(&router, from_ip(PROBE, Some(&expired), attacker))
            .await
            .expect_err(401, "token_expired");
        // 20 failures pass (as 401); the limit refills one every 3 s, so a slow run may
        // see one or two more before the first 429.
        let mut refused = 1;
        let limited = loop {
            let resp = common::send_to(&router, from_ip(PROBE, Some(garbage), attacker)).await;
            if resp.status.as_u16() == 429 {
                break resp;
            }
            resp.expect_err(401, "invalid_token");
            refused += 1;
            assert!(refused <= 25, "no 429 after {refused} failures");
        };
        assert!(refused >= 20, "limited after only {refused} failures");
        limited.expect_err(429, "rate_limited");
        let retry: u64 = limited.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        common::send_to(&router, from_ip(PROBE, Some(&expired), attacker))
            .await
            .expect_err(429, "rate_limited");
        // Valid tokens from that address still work; other addresses are not limited.
        common::send_to(&router, from_ip(PROBE, Some(&t.token), attacker))
            .await
            .expect(200);
        common::send_to(&router, from_ip(PROBE, Some(garbage), [198, 51, 100, 1]))
            .await
            .expect_err(401, "invalid_token");

        // One audit row per failure below the limit, none above it, never the token.
        let rows = app
            .store
            .audit_for_target("client_ip", "203.0.113.7")
            .await
            .unwrap();
        assert_eq!(rows.len(), refused);
        assert!(rows.iter().all(|r| r.action == "auth.failed"));
        for row in &rows {
            let text = format!("{row:?}");
            assert!(
                !text.contains(&expired) && !text.contains(garbage),
                "{text}"
            );
            assert!(!text.contains(expired.split('.').nth(2).unwrap()), "{text}");
        }
        let first = rows
            .iter()
            .find(|r| r.actor_id == t.id)
            .expect("the expired token's claimed subject is recorded");
        assert_eq!(first.actor_role, "therapist");
        let after: Value = serde_json::from_str(first.after_state.as_deref().unwrap()).unwrap();
        assert_eq!(
            after,
            json!({"reason": "expired", "client_ip": "203.0.113.7", "claimed_subject": t.id})
        );
        let anonymous = rows.iter().filter(|r| r.actor_id == "anonymous").count();
        assert_eq!(anonymous, refused - 1);
        let reason: Value = serde_json::from_str(
            rows.iter()
                .find(|r| r.actor_id == "anonymous")
                .unwrap()
                .after_state
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(reason["reason"], "invalid");
        assert_eq!(
            app.store
                .audit_for_target("client_ip", "198.51.100.1")
                .await
                .unwrap()
                .len(),
            1
        );
    }
);
