//! The audit log as a record: the database refuses to change or remove its rows, and
//! organization administrators read it through the API (filters, cursor pages, CSV).

use std::collections::HashSet;

use super::*;
use theraroom::store::audit::AuditEntry;

/// Inserts an audit row with a chosen time (Unix ms).
#[allow(clippy::too_many_arguments)]
async fn row(
    app: &TestApp,
    id: &str,
    org: &str,
    actor: &str,
    action: &str,
    target: (&str, &str),
    after: Option<&str>,
    at: i64,
) {
    sqlx::query(
        "INSERT INTO audit_log (id, organization_id, actor_id, actor_role, action, target_type, target_id, before_state, after_state, at) \
         VALUES ($1, $2, $3, 'organization', $4, $5, $6, NULL, $7, $8)",
    )
    .bind(id)
    .bind(org)
    .bind(actor)
    .bind(action)
    .bind(target.0)
    .bind(target.1)
    .bind(after)
    .bind(at)
    .execute(app.store.pool())
    .await
    .expect("insert audit row");
}

both_dbs!(
    the_database_refuses_to_change_audit_rows,
    |app| async move {
        let org = app.org("Ledger Clinic", true).await;
        let t = app.therapist(&org.id, "Dr Ledger").await;
        app.post(
            &format!(
                "/api/organizations/{}/therapists/{}/blog-permission/grant",
                org.id, t.id
            ),
            Some(&org.admin.token),
            None,
        )
        .await
        .expect(200);
        let before = app.count("audit_log", "target_id = $1", &t.id).await;
        assert_eq!(before, 1);

        let pool = app.store.pool();
        let update = sqlx::query("UPDATE audit_log SET action = 'rewritten' WHERE target_id = $1")
            .bind(&t.id)
            .execute(pool)
            .await;
        let err = update
            .expect_err("UPDATE of an audit row must fail")
            .to_string();
        assert!(err.contains("append-only"), "{err}");
        let delete = sqlx::query("DELETE FROM audit_log WHERE target_id = $1")
            .bind(&t.id)
            .execute(pool)
            .await;
        let err = delete
            .expect_err("DELETE of an audit row must fail")
            .to_string();
        assert!(err.contains("append-only"), "{err}");
        let everything = sqlx::query("DELETE FROM audit_log").execute(pool).await;
        assert!(everything.is_err(), "DELETE of the whole log must fail");
        if app.db == common::Db::Postgres {
            let truncate = sqlx::query("TRUNCATE audit_log").execute(pool).await;
            assert!(truncate.is_err(), "TRUNCATE of the log must fail");
        }
        assert_eq!(
            app.count(
                "audit_log",
                "target_id = $1 AND action = 'therapist.blog_permission.grant'",
                &t.id
            )
            .await,
            1
        );

        // Removing an organization leaves its audit rows as they were (no FK rewrites them).
        let gone = app
            .store
            .create_organization("Short-lived Clinic", false)
            .await
            .unwrap();
        app.store
            .audit(AuditEntry {
                organization_id: Some(&gone.id),
                actor_id: "operator-1",
                actor_role: "super_admin",
                action: "organization.create",
                target_type: "organization",
                target_id: &gone.id,
                before: None,
                after: None,
            })
            .await
            .unwrap();
        sqlx::query("DELETE FROM organizations WHERE id = $1")
            .bind(&gone.id)
            .execute(pool)
            .await
            .expect("an organization without members can be removed");
        assert_eq!(
            app.count("audit_log", "organization_id = $1", &gone.id)
                .await,
            1
        );
    }
);

/// The entries of one JSON page: (ids, next cursor).
async fn page(app: &TestApp, token: &str, org: &str, query: &str) -> (Vec<String>, Option<String>) {
    let resp = app
        .get(
            &format!("/api/organizations/{org}/audit?{query}"),
            Some(token),
        )
        .await;
    let body = resp.expect(200);
    let ids = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    (ids, body["next_cursor"].as_str().map(str::to_string))
}

/// 30 rows of `org` (newest first by at, then id) and 3 of `other`.
async fn seed_log(app: &TestApp, org: &str, other: &str) -> Vec<String> {
    let actions = [
        "schedule.session.cancel",
        "video_settings.update",
        "videoXsettings.update",
        "therapist.blog_permission.grant",
        "schedule.note.create",
    ];
    let mut ids = Vec::new();
    for i in 0..30i64 {
        let id = format!("row-{i:02}");
        let actor = if i % 2 == 0 {
            "actor-even"
        } else {
            "actor-odd"
        };
        let target = if i % 3 == 0 {
            ("therapist", "t-1")
        } else {
            ("scheduled_session", "s-1")
        };
        // Pairs of rows share a millisecond: the cursor must order by id as well.
        let at = 1_700_000_000_000 + (i / 2) * 1000;
        row(
            app,
            &id,
            org,
            actor,
            actions[(i % 5) as usize],
            target,
            None,
            at,
        )
        .await;
        ids.push(id);
    }
    for i in 0..3 {
        row(
            app,
            &format!("other-{i}"),
            other,
            "actor-even",
            "schedule.note.create",
            ("therapist", "t-1"),
            None,
            1_700_000_000_000 + i,
        )
        .await;
    }
    ids.sort_by(|a, b| b.cmp(a));
    ids
}

both_dbs!(admins_filter_and_page_through_the_log, |app| async move {
    let org = app.org("Reader Clinic", true).await;
    let other = app.org("Other Reader", true).await;
    let all = seed_log(&app, &org.id, &other.id).await;
    let token = org.admin.token.as_str();

    // The whole log, 7 at a time: every row once, newest first.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=7&cursor={c}"),
            None => "limit=7".to_string(),
        };
        let (ids, next) = page(&app, token, &org.id, &query).await;
        assert!(ids.len() <= 7);
        walked.extend(ids);
        pages += 1;
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(walked, all);
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 30);

    // Filters.
    let count = |query: &'static str| {
        let app = &app;
        let org = org.id.clone();
        async move {
            page(app, token, &org, &format!("limit=200&{query}"))
                .await
                .0
                .len()
        }
    };
    assert_eq!(count("actor=actor-even").await, 15);
    assert_eq!(count("subject=t-1").await, 10);
    assert_eq!(count("subject_type=scheduled_session").await, 20);
    assert_eq!(count("subject_type=therapist&actor=actor-odd").await, 5);
    assert_eq!(count("action=schedule.note.create").await, 6);
    assert_eq!(count("action=schedule.").await, 12);
    assert_eq!(count("action=schedule.*").await, 12);
    assert_eq!(count("action=schedule").await, 0);
    // `_` is no wildcard in a prefix.
    assert_eq!(count("action=video_*").await, 6);
    let from = "2023-11-14T22:13:25Z"; // 1_700_000_005_000: rows 10..
    let to = "2023-11-14T22:13:30Z"; // 1_700_000_010_000: rows ..20
    assert_eq!(count("from=2023-11-14T22:13:25Z").await, 20);
    assert_eq!(count("to=2023-11-14T22:13:30Z").await, 20);
    let (ids, _) = page(&app, token, &org.id, &format!("from={from}&to={to}")).await;
    assert_eq!(ids.first().map(String::as_str), Some("row-19"));
    assert_eq!(ids.last().map(String::as_str), Some("row-10"));
    // Entries as shown.
    let one = app
        .get(
            &format!("/api/organizations/{}/audit?limit=1", org.id),
            Some(token),
        )
        .await;
    let entry = &one.expect(200)["entries"][0];
    assert_eq!(entry["id"], "row-29");
    assert_eq!(entry["actor_id"], "actor-odd");
    assert_eq!(entry["action"], "schedule.note.create");
    assert_eq!(entry["subject_type"], "scheduled_session");
    assert_eq!(entry["subject_id"], "s-1");
    assert!(entry["at"].as_str().unwrap().ends_with('Z'));

    // Super admins read any organization's log.
    let root = app.super_admin("Root Reader").await;
    assert_eq!(page(&app, &root.token, &other.id, "").await.0.len(), 3);
});

both_dbs!(the_log_exports_as_csv, |app| async move {
    let org = app.org("Export Clinic", true).await;
    row(
        &app,
        "r1",
        &org.id,
        "a-1",
        "community.create",
        ("community", "c-1"),
        Some(r#"{"name":"Grief, \"circle\""}"#),
        1_700_000_000_000,
    )
    .await;
    row(
        &app,
        "r2",
        &org.id,
        "a-2",
        "=cmd|calc",
        ("community", "c-2"),
        None,
        1_700_000_001_000,
    )
    .await;
    let path = format!("/api/organizations/{}/audit.csv", org.id);
    let resp = app.get(&path, Some(&org.admin.token)).await;
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.text);
    assert!(resp.headers[axum::http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let lines: Vec<&str> = resp.text.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "id,at,actor_id,actor_role,action,subject_type,subject_id,before,after"
    );
    assert_eq!(
        lines[1],
        "r2,2023-11-14T22:13:21.000Z,a-2,organization,'=cmd|calc,community,c-2,,"
    );
    assert_eq!(
        lines[2],
        r#"r1,2023-11-14T22:13:20.000Z,a-1,organization,community.create,community,c-1,,"{""name"":""Grief, \""circle\""""}""#
    );
    assert_eq!(lines[3], "");
    assert_eq!(lines.len(), 4);
    assert!(resp.headers.get("x-next-cursor").is_none());

    // Pages of the export carry the next cursor in a header; filters apply.
    let first = app
        .get(&format!("{path}?limit=1"), Some(&org.admin.token))
        .await;
    assert_eq!(
        first.text.split("\r\n").nth(1).unwrap().split(',').next(),
        Some("r2")
    );
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_string();
    let second = app
        .get(
            &format!("{path}?limit=1&cursor={cursor}"),
            Some(&org.admin.token),
        )
        .await;
    assert_eq!(
        second.text.split("\r\n").nth(1).unwrap().split(',').next(),
        Some("r1")
    );
    assert!(second.headers.get("x-next-cursor").is_none());
    let filtered = app
        .get(
            &format!("{path}?action=community.create"),
            Some(&org.admin.token),
        )
        .await;
    assert_eq!(filtered.text.split("\r\n").count(), 3);
});

both_dbs!(only_administrators_read_the_log, |app| async move {
    let org = app.org("Guarded Clinic", true).await;
    let other = app.org("Nosy Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Guarded").await;
    let c = app.client(&org.id, Some(&t.id), "Client Guarded").await;
    let staff = app.user(&org.id, Role::Admin, "Staff Admin").await;
    row(&app, "g1", &org.id, "a", "x.y", ("t", "1"), None, 1).await;
    for suffix in ["audit", "audit.csv"] {
        let path = format!("/api/organizations/{}/{suffix}", org.id);
        app.get(&path, Some(&t.token))
            .await
            .expect_err(403, "forbidden");
        app.get(&path, Some(&c.token))
            .await
            .expect_err(403, "forbidden");
        app.get(&path, None).await.expect_err(401, "unauthorized");
        app.get(&path, Some(&other.admin.token))
            .await
            .expect_err(404, "organization_not_found");
        app.get(&path, Some(&staff.token)).await.expect(200);
        let root = app.super_admin(&format!("Root {suffix}")).await;
        app.get(
            &format!("/api/organizations/no-such-org/{suffix}"),
            Some(&root.token),
        )
        .await
        .expect_err(404, "organization_not_found");
    }
    // Another organization's rows never appear in this one's log.
    row(&app, "n1", &other.id, "a", "x.y", ("t", "1"), None, 2).await;
    assert_eq!(
        page(&app, &org.admin.token, &org.id, "").await.0,
        vec!["g1".to_string()]
    );

    // Bad input: clear codes.
    let base = format!("/api/organizations/{}/audit", org.id);
    let admin = Some(org.admin.token.as_str());
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=201", "invalid_limit"),
        ("limit=many", "invalid_limit"),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("cursor=bm9jb2xvbg", "invalid_cursor"),
        ("from=yesterday", "invalid_timestamp"),
        (
            "from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z",
            "invalid_audit_filter",
        ),
        ("acton=x.y", "invalid_audit_filter"),
        ("actor=", "invalid_audit_filter"),
        ("actor=a&actor=b", "invalid_audit_filter"),
    ] {
        app.get(&format!("{base}?{query}"), admin)
            .await
            .expect_err(400, code);
    }
    app.get(&format!("{base}.csv?limit=10001"), admin)
        .await
        .expect_err(400, "invalid_limit");
    app.get(&format!("{base}.csv?limit=10000"), admin)
        .await
        .expect(200);
});
