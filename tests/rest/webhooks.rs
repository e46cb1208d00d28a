//! Webhooks: the endpoint routes (validation, roles, tenant isolation), the events the
//! rules queue and their payloads without names, subscriptions and the delivery log.
//! Delivery itself is in `webhook_delivery.rs`.

use std::time::Duration;

use axum::Extension;
use theraroom::webhooks::UrlPolicy;

use super::*;

pub(crate) const LOOPBACK: UrlPolicy = UrlPolicy {
    allow_insecure_loopback: true,
};

/// The app with `--webhooks-allow-insecure-loopback`, as the tests' receivers need.
pub(crate) fn with_loopback(mut app: TestApp) -> TestApp {
    app.router = app.router.clone().layer(Extension(LOOPBACK));
    app
}

pub(crate) fn hook_path(org: &str) -> String {
    format!("/api/organizations/{org}/webhook")
}

/// Sets the webhook of `org` to `url`; returns the secret shown once.
pub(crate) async fn set_hook(app: &TestApp, org: &OrgFx, url: &str) -> String {
    let resp = app
        .put(
            &hook_path(&org.id),
            Some(&org.admin.token),
            json!({"url": url}),
        )
        .await;
    let body = resp.expect(200);
    body["secret"].as_str().expect("secret shown").to_string()
}

/// The delivery log of `org`, newest first.
pub(crate) async fn log(app: &TestApp, org: &OrgFx) -> Vec<Value> {
    let path = format!("{}/deliveries?limit=100", hook_path(&org.id));
    let resp = app.get(&path, Some(&org.admin.token)).await;
    resp.expect(200)["deliveries"].as_array().unwrap().clone()
}

/// The delivery log once no event of it is pending any more (the worker records an
/// outcome just after the receiver answered); bounded by the receiver's wait limit.
pub(crate) async fn settled_log(app: &TestApp, org: &OrgFx) -> Vec<Value> {
    let limit = super::webhook_receiver::WAIT_LIMIT;
    let start = std::time::Instant::now();
    loop {
        let entries = log(app, org).await;
        if entries.iter().all(|e| e["status"] != json!("pending")) || start.elapsed() > limit {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The queued payloads of `org`, oldest first.
pub(crate) async fn payloads(app: &TestApp, org: &str) -> Vec<Value> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT payload FROM webhook_events WHERE organization_id = $1 ORDER BY created_at, id",
    )
    .bind(org)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|(p,)| serde_json::from_str(p).unwrap())
        .collect()
}

pub(crate) fn types(payloads: &[Value]) -> Vec<String> {
    payloads
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_string())
        .collect()
}

both_dbs!(
    endpoint_is_validated_and_secret_shown_once,
    |app| async move {
        let strict = app.org("Strict Practice", false).await;
        let path = hook_path(&strict.id);
        let token = Some(strict.admin.token.as_str());
        // Without the setting, loopback and plain http are refused.
        app.put(&path, token, json!({"url": "http://127.0.0.1:9/hook"}))
            .await
            .expect_err(400, "invalid_webhook_url");
        let app = with_loopback(app);
        for url in [
            "ftp://example.com/",
            "http://example.com/",
            "https://10.0.0.8/",
            "https://user:pw@example.com/",
            "nonsense",
        ] {
            app.put(&path, token, json!({"url": url}))
                .await
                .expect_err(400, "invalid_webhook_url");
        }
        app.put(
            &path,
            token,
            json!({"url": "https://example.com/h", "events": ["session.paused"]}),
        )
        .await
        .expect_err(400, "invalid_webhook_events");
        app.put(
            &path,
            token,
            json!({"url": "https://example.com/h", "secret": "short"}),
        )
        .await
        .expect_err(400, "invalid_webhook_secret");
        app.get(&path, token)
            .await
            .expect_err(404, "webhook_not_found");

        let made = app
        .put(&path, token, json!({"url": "https://example.com/h", "events": ["booking.created", "session.started"]}))
        .await;
        let made = made.expect(200).clone();
        let secret = made["secret"].as_str().unwrap().to_string();
        assert!(
            secret.starts_with("whsec_") && secret.len() > 40,
            "{secret}"
        );
        assert_eq!(
            made["events"],
            json!(["session.started", "booking.created"])
        );
        let shown = app.get(&path, token).await.expect(200).clone();
        assert!(shown.get("secret").is_none(), "{shown}");
        assert_eq!(
            shown["secret_masked"],
            json!(format!("whsec_****{}", &secret[secret.len() - 4..]))
        );
        assert_eq!(shown["url"], json!("https://example.com/h"));
        // Changing the URL keeps the secret (not shown again); rotating replaces it.
        let kept = app
            .put(&path, token, json!({"url": "https://example.org/h"}))
            .await;
        assert!(kept.expect(200).get("secret").is_none());
        let rotated = app
            .put(
                &path,
                token,
                json!({"url": "https://example.org/h", "rotate_secret": true}),
            )
            .await;
        let new_secret = rotated.expect(200)["secret"].as_str().unwrap().to_string();
        assert_ne!(new_secret, secret);
        assert_eq!(rotated.json["all_events"], json!(true));
        let own = "a-receiver-chosen-secret-of-40-characters!";
        let given = app
            .put(
                &path,
                token,
                json!({"url": "https://example.org/h", "secret": own}),
            )
            .await;
        assert_eq!(given.expect(200)["secret"], json!(own));
        assert_eq!(
            app.audit_actions("organization", &strict.id).await,
            vec!["organization.webhook.update"; 4]
        );
        // The secret never reaches the audit log.
        let audit: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT after_state FROM audit_log WHERE target_id = $1")
                .bind(&strict.id)
                .fetch_all(app.store.pool())
                .await
                .unwrap();
        assert!(audit
            .iter()
            .all(|(a,)| !a.clone().unwrap_or_default().contains("whsec_")));
        app.delete(&path, token).await.expect(204);
        app.get(&path, token)
            .await
            .expect_err(404, "webhook_not_found");
        app.delete(&path, token)
            .await
            .expect_err(404, "webhook_not_found");
        app.post(&format!("{path}/test"), token, None)
            .await
            .expect_err(404, "webhook_not_found");
    }
);

both_dbs!(
    other_organizations_and_roles_are_refused,
    |app| async move {
        let app = with_loopback(app);
        let mine = app.org("Mine Practice", false).await;
        let theirs = app.org("Theirs Practice", false).await;
        set_hook(&app, &theirs, "https://example.com/theirs").await;
        let therapist = app.therapist(&theirs.id, "Dr Theirs").await;
        let base = hook_path(&theirs.id);
        let body = json!({"url": "https://example.com/mine"});
        let routes: Vec<(&str, String)> = vec![
            ("PUT", base.clone()),
            ("GET", base.clone()),
            ("DELETE", base.clone()),
            ("POST", format!("{base}/test")),
            ("GET", format!("{base}/deliveries")),
        ];
        for (method, path) in &routes {
            let call = |token: Option<String>| {
                let put = *method == "PUT";
                let method: axum::http::Method = method.parse().unwrap();
                let body = put.then(|| body.clone());
                let app = &app;
                let path = path.clone();
                async move { app.call(method, &path, token.as_deref(), body).await }
            };
            call(Some(mine.admin.token.clone()))
                .await
                .expect_err(404, "organization_not_found");
            call(Some(therapist.token.clone()))
                .await
                .expect_err(403, "forbidden");
            assert_eq!(call(None).await.status.as_u16(), 401, "{method} {path}");
        }
        // Nothing of theirs changed; an unknown organization is 404 too.
        let shown = app.get(&base, Some(&theirs.admin.token)).await;
        assert_eq!(
            shown.expect(200)["url"],
            json!("https://example.com/theirs")
        );
        let boss = app.super_admin("Platform").await;
        app.get(&hook_path("no-such-org"), Some(&boss.token))
            .await
            .expect_err(404, "organization_not_found");
        app.get(&base, Some(&boss.token)).await.expect(200);
    }
);

both_dbs!(
    room_and_booking_events_carry_ids_and_times_only,
    |app| async move {
        let app = with_loopback(app);
        let org = app.org("Events Practice", false).await;
        set_hook(&app, &org, "http://127.0.0.1:9/never").await;
        let other = app.org("Quiet Practice", false).await;
        let therapist = app.therapist(&org.id, "Dr Karen Horney").await;
        let client = app
            .client(&org.id, Some(&therapist.id), "Client Ruth Secret")
            .await;
        let session = app.session(&therapist, "Panic attacks follow-up").await;
        let sid = session["id"].as_str().unwrap();
        let reg = app
            .post(
                &format!("/api/sessions/{sid}/participants"),
                Some(&client.token),
                None,
            )
            .await;
        let pid = reg.expect(201)["id"].as_str().unwrap().to_string();
        use theraroom::rooms::presence;
        presence::waiting(&app.store, &pid).await.unwrap();
        let decider = theraroom::rooms::waiting::Decider {
            subject: &therapist.id,
            role: "therapist",
        };
        let row = app.store.session(sid).await.unwrap().unwrap();
        theraroom::rooms::waiting::decide(&app.store, decider, &row, &pid, true)
            .await
            .unwrap();
        // Entering twice (a reconnect) is one entry; leaving twice one departure.
        presence::joined(&app.store, &pid).await.unwrap();
        presence::joined(&app.store, &pid).await.unwrap();
        presence::left(&app.store, &pid).await.unwrap();
        presence::left(&app.store, &pid).await.unwrap();
        presence::joined(&app.store, &pid).await.unwrap();
        app.post(
            &format!("/api/sessions/{sid}/end"),
            Some(&therapist.token),
            None,
        )
        .await
        .expect(200);
        let start = (chrono::Utc::now() + chrono::Duration::days(3))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let end = (chrono::Utc::now() + chrono::Duration::days(3) + chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let hold = app
        .post(
            "/api/schedule/holds",
            Some(&therapist.token),
            Some(json!({"therapist_id": therapist.id, "client_id": client.id, "start": start, "end": end})),
        )
        .await;
        let key = hold.expect(201)["hold_key"].as_str().unwrap().to_string();
        let booked = app
            .post(
                &format!("/api/schedule/holds/{key}/confirm"),
                Some(&therapist.token),
                None,
            )
            .await;
        let booked_id = booked.expect(201)["sessions"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.post(
            &format!("/api/schedule/sessions/{booked_id}/cancel"),
            Some(&therapist.token),
            Some(json!({"reason": "Client Ruth Secret is in hospital"})),
        )
        .await
        .expect(200);

        let all = payloads(&app, &org.id).await;
        // Events of one transaction may share a millisecond: compare them as a multiset.
        let mut got = types(&all);
        got.sort();
        let mut want = vec![
            "session.started",
            "participant.waiting",
            "participant.admitted",
            "participant.joined",
            "participant.left",
            "participant.joined",
            "participant.left",
            "session.ended",
            "booking.created",
            "booking.cancelled",
        ];
        want.sort();
        assert_eq!(got, want);
        let of = |kind: &str| -> Vec<&Value> {
            all.iter()
                .filter(|p| p["type"] == json!(kind))
                .map(|p| &p["data"])
                .collect()
        };
        let mut reasons: Vec<String> = of("participant.left")
            .iter()
            .map(|d| d["reason"].as_str().unwrap().to_string())
            .collect();
        reasons.sort();
        assert_eq!(reasons, ["left", "session_ended"]);
        let joined = of("participant.joined")[0];
        assert_eq!(joined["participant_id"], json!(pid));
        assert_eq!(joined["user_id"], json!(client.id));
        assert_eq!(joined["role"], json!("client"));
        assert_eq!(of("participant.waiting")[0]["participant_id"], json!(pid));
        assert_eq!(of("participant.admitted")[0]["participant_id"], json!(pid));
        assert_eq!(
            of("session.ended")[0]["reason"],
            json!("ended_by_therapist")
        );
        let created = of("booking.created")[0];
        assert_eq!(created["scheduled_session_id"], json!(booked_id));
        assert_eq!(created["client_id"], json!(client.id));
        assert_eq!(
            of("booking.cancelled")[0]["booking_type"],
            json!("scheduled_session")
        );
        let text = serde_json::to_string(&all).unwrap();
        for private in [
            "Karen", "Horney", "Ruth", "Secret", "Panic", "hospital", "@",
        ] {
            assert!(!text.contains(private), "{private} in {text}");
        }
        for p in &all {
            let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                ["created_at", "data", "id", "organization_id", "type"]
            );
        }
        // An organization without a webhook queues nothing.
        assert!(payloads(&app, &other.id).await.is_empty());
    }
);

both_dbs!(subscriptions_filter_and_the_log_pages, |app| async move {
    let app = with_loopback(app);
    let org = app.org("Paged Practice", false).await;
    let path = hook_path(&org.id);
    let token = Some(org.admin.token.as_str());
    app.put(
        &path,
        token,
        json!({"url": "http://127.0.0.1:9/x", "events": ["booking.created"]}),
    )
    .await
    .expect(200);
    let therapist = app.therapist(&org.id, "Dr Filter").await;
    app.session(&therapist, "not reported").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let ping = app.post(&format!("{path}/test"), token, None).await;
        ids.push(ping.expect(202)["event_id"].as_str().unwrap().to_string());
    }
    // session.started is not subscribed: only the pings are queued.
    assert_eq!(types(&payloads(&app, &org.id).await), vec!["ping"; 5]);
    let first = app.get(&format!("{path}/deliveries?limit=2"), token).await;
    let first = first.expect(200).clone();
    let cursor = first["next_before"].as_str().unwrap().to_string();
    let second = app
        .get(&format!("{path}/deliveries?limit=2&before={cursor}"), token)
        .await;
    let second = second.expect(200).clone();
    let third = app
        .get(
            &format!(
                "{path}/deliveries?limit=2&before={}",
                second["next_before"].as_str().unwrap()
            ),
            token,
        )
        .await;
    let third = third.expect(200).clone();
    assert!(third["next_before"].is_null());
    let seen: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["deliveries"].as_array().unwrap().clone())
        .map(|d| d["event_id"].as_str().unwrap().to_string())
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    assert_eq!(sorted_seen, sorted_ids, "every event once");
    let entry = &first["deliveries"][0];
    assert_eq!(entry["status"], json!("pending"));
    assert_eq!(entry["attempts"], json!(0));
    assert!(entry["next_attempt_at"].is_string());
    for bad in ["limit=0", "limit=101", "limit=lots"] {
        app.get(&format!("{path}/deliveries?{bad}"), token)
            .await
            .expect_err(400, "invalid_limit");
    }
    app.get(&format!("{path}/deliveries?before=nope"), token)
        .await
        .expect_err(400, "invalid_cursor");
    // Removing the webhook cancels what was not delivered; the log keeps it.
    app.delete(&path, token).await.expect(204);
    let entries = log(&app, &org).await;
    assert_eq!(entries.len(), 5);
    assert!(entries.iter().all(|e| e["status"] == json!("cancelled")));
});
