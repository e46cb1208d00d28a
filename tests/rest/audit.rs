//! The audit log of community changes (creation, members, moderators), and the
//! migration that takes clinical note text out of old audit rows.

use super::*;
use theraroom::store::audit::AuditRecord;

/// Audit rows about a community, oldest first.
async fn community_audit(app: &TestApp, community: &str) -> Vec<AuditRecord> {
    app.store
        .audit_for_target("community", community)
        .await
        .expect("audit_for_target")
}

fn state(raw: &Option<String>) -> Value {
    serde_json::from_str(raw.as_deref().expect("state present")).expect("state is JSON")
}

async fn put_member(
    app: &TestApp,
    who: &Person,
    community: &str,
    user: &Person,
    role: &str,
) -> u16 {
    app.post(
        &format!("/api/communities/{community}/members"),
        Some(&who.token),
        Some(json!({"user_id": user.id, "role": role})),
    )
    .await
    .status
    .as_u16()
}

both_dbs!(community_changes_are_audited, |app| async move {
    let org = app.org("Audit Circle Clinic", true).await;
    let created = app
        .post(
            "/api/communities",
            Some(&org.admin.token),
            Some(json!({"name": "Grief circle", "description": "peer support"})),
        )
        .await;
    let community = created.expect(201)["id"].as_str().unwrap().to_string();
    let audit = community_audit(&app, &community).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "community.create");
    assert_eq!(audit[0].actor_id, org.admin.id);
    assert_eq!(audit[0].actor_role, "organization");
    assert_eq!(audit[0].organization_id.as_deref(), Some(org.id.as_str()));
    assert_eq!(state(&audit[0].after_state)["name"], "Grief circle");

    // A duplicate name is refused and leaves no row.
    app.post(
        "/api/communities",
        Some(&org.admin.token),
        Some(json!({"name": "Grief circle"})),
    )
    .await
    .expect_err(409, "community_exists");
    assert_eq!(
        app.count("audit_log", "action = $1", "community.create")
            .await,
        1
    );

    let mona = app.client(&org.id, None, "Mona Moderator").await;
    let member = app.client(&org.id, None, "Max Member").await;
    let late = app.client(&org.id, None, "Lea Late").await;
    // Member, then promoted, then the same role again (no change, no row).
    assert_eq!(
        put_member(&app, &org.admin, &community, &mona, "member").await,
        201
    );
    assert_eq!(
        put_member(&app, &org.admin, &community, &mona, "moderator").await,
        200
    );
    assert_eq!(
        put_member(&app, &org.admin, &community, &mona, "moderator").await,
        200
    );
    // The moderator adds a member, may not appoint a moderator (refused: no row).
    assert_eq!(
        put_member(&app, &mona, &community, &member, "member").await,
        201
    );
    assert_eq!(
        put_member(&app, &mona, &community, &late, "moderator").await,
        403
    );
    // The administrator appoints a newcomer moderator directly, then demotes Mona.
    assert_eq!(
        put_member(&app, &org.admin, &community, &late, "moderator").await,
        201
    );
    assert_eq!(
        put_member(&app, &org.admin, &community, &mona, "member").await,
        200
    );

    let audit = community_audit(&app, &community).await;
    let rows: Vec<(&str, &str, Value, Value)> = audit
        .iter()
        .skip(1)
        .map(|a| {
            (
                a.action.as_str(),
                a.actor_id.as_str(),
                state(&a.before_state),
                state(&a.after_state),
            )
        })
        .collect();
    let change = |user: &Person, before: Option<&str>, after: &str| {
        (
            json!({"user_id": user.id, "role": before}),
            json!({"user_id": user.id, "role": after}),
        )
    };
    let expected = [
        (
            "community.member.add",
            &org.admin,
            change(&mona, None, "member"),
        ),
        (
            "community.moderator.add",
            &org.admin,
            change(&mona, Some("member"), "moderator"),
        ),
        (
            "community.member.add",
            &mona,
            change(&member, None, "member"),
        ),
        (
            "community.moderator.add",
            &org.admin,
            change(&late, None, "moderator"),
        ),
        (
            "community.moderator.remove",
            &org.admin,
            change(&mona, Some("moderator"), "member"),
        ),
    ];
    assert_eq!(rows.len(), expected.len(), "rows: {rows:?}");
    for (row, (action, actor, (before, after))) in rows.iter().zip(expected) {
        assert_eq!(row.0, action);
        assert_eq!(row.1, actor.id);
        assert_eq!(row.2, before);
        assert_eq!(row.3, after);
    }
    assert!(audit
        .iter()
        .all(|a| a.organization_id.as_deref() == Some(org.id.as_str())));
});

/// The note-scrubbing migration of this backend.
fn note_scrub_sql(db: common::Db) -> &'static str {
    match db {
        common::Db::Sqlite => {
            include_str!("../../migrations/sqlite/0007_audit_without_note_text.sql")
        }
        common::Db::Postgres => {
            include_str!("../../migrations/postgres/0007_audit_without_note_text.sql")
        }
    }
}

/// Inserts an audit row as the code before migration 0007 wrote it.
async fn old_row(
    app: &TestApp,
    id: &str,
    action: &str,
    target: (&str, &str),
    before: Option<&str>,
    after: Option<&str>,
) {
    sqlx::query(
        "INSERT INTO audit_log (id, organization_id, actor_id, actor_role, action, target_type, target_id, before_state, after_state, at) \
         VALUES ($1, NULL, 'therapist-1', 'therapist', $2, $3, $4, $5, $6, 1)",
    )
    .bind(id)
    .bind(action)
    .bind(target.0)
    .bind(target.1)
    .bind(before)
    .bind(after)
    .execute(app.store.pool())
    .await
    .expect("insert old audit row");
}

/// Drops the triggers that make the audit log append-only (migration 0014), leaving
/// the log as it was when migration 0007 ran, so the scrub can be run again here.
async fn before_append_only(app: &TestApp) {
    let statements = match app.db {
        common::Db::Sqlite => vec![
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        common::Db::Postgres => vec!["DROP TRIGGER audit_log_no_change ON audit_log"],
    };
    for sql in statements {
        sqlx::query(sql)
            .execute(app.store.pool())
            .await
            .expect("drop an append-only trigger");
    }
}

both_dbs!(migration_0007_scrubs_note_text, |app| async move {
    before_append_only(&app).await;
    let note = ("scheduled_session_note", "note-1");
    old_row(
        &app,
        "a1",
        "schedule.note.create",
        note,
        None,
        Some(r#"{"session_id":"s-1","body":"Client reports panic attacks, café"}"#),
    )
    .await;
    old_row(
        &app,
        "a2",
        "schedule.note.update",
        note,
        Some(r#"{"body":"Client reports panic attacks, café"}"#),
        Some(r#"{"body":"Panic attacks twice weekly"}"#),
    )
    .await;
    // Another action's "body" is not a note: untouched.
    old_row(
        &app,
        "a3",
        "blog.post.create",
        ("blog_post", "p-1"),
        None,
        Some(r#"{"body":"public text"}"#),
    )
    .await;

    sqlx::query(note_scrub_sql(app.db))
        .execute(app.store.pool())
        .await
        .expect("run migration 0007");

    let rows = app.store.audit_for_target(note.0, note.1).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        state(&rows[0].after_state),
        json!({"session_id": "s-1", "length": 34})
    );
    assert!(rows[0].before_state.is_none());
    assert_eq!(state(&rows[1].before_state), json!({"length": 34}));
    assert_eq!(state(&rows[1].after_state), json!({"length": 26}));
    assert_eq!(
        app.count(
            "audit_log",
            "before_state LIKE $1 OR after_state LIKE $1",
            "%anic attacks%"
        )
        .await,
        0
    );
    let other = app
        .store
        .audit_for_target("blog_post", "p-1")
        .await
        .unwrap();
    assert_eq!(state(&other[0].after_state), json!({"body": "public text"}));

    // Running it again changes nothing.
    sqlx::query(note_scrub_sql(app.db))
        .execute(app.store.pool())
        .await
        .expect("rerun migration 0007");
    let again = app.store.audit_for_target(note.0, note.1).await.unwrap();
    assert_eq!(state(&again[1].after_state), json!({"length": 26}));
});

/// Makes the database refuse audit rows of `action` (a trigger), so a test can show
/// that the change it records is rolled back with it: the row is written in the same
/// transaction as the change.
pub async fn refuse_audit(app: &TestApp, action: &str) {
    let statements = match app.db {
        common::Db::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.action = '{action}' \
             BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END"
        )],
        common::Db::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN \
                 IF NEW.action = '{action}' THEN RAISE EXCEPTION 'audit refused by the test'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()".to_string(),
        ],
    };
    for sql in statements {
        sqlx::query(&sql)
            .execute(app.store.pool())
            .await
            .expect("create the refusing trigger");
    }
}

/// Removes the trigger of [`refuse_audit`].
pub async fn allow_audit(app: &TestApp) {
    let statements = match app.db {
        common::Db::Sqlite => vec!["DROP TRIGGER refuse_audit"],
        common::Db::Postgres => vec![
            "DROP TRIGGER refuse_audit ON audit_log",
            "DROP FUNCTION refuse_audit()",
        ],
    };
    for sql in statements {
        sqlx::query(sql)
            .execute(app.store.pool())
            .await
            .expect("drop the refusing trigger");
    }
}

both_dbs!(
    community_changes_and_their_audit_commit_together,
    |app| async move {
        let org = app.org("Atomic Circle Clinic", true).await;
        // No audit row, no community.
        refuse_audit(&app, "community.create").await;
        app.post(
            "/api/communities",
            Some(&org.admin.token),
            Some(json!({"name": "Atomic circle"})),
        )
        .await
        .expect_err(500, "internal");
        assert_eq!(
            app.count("communities", "organization_id = $1", &org.id)
                .await,
            0
        );
        allow_audit(&app).await;
        let created = app
            .post(
                "/api/communities",
                Some(&org.admin.token),
                Some(json!({"name": "Atomic circle"})),
            )
            .await;
        let community = created.expect(201)["id"].as_str().unwrap().to_string();

        // No audit row, no member; no audit row, no promotion.
        let user = app.client(&org.id, None, "Ada Atomic").await;
        refuse_audit(&app, "community.member.add").await;
        assert_eq!(
            put_member(&app, &org.admin, &community, &user, "member").await,
            500
        );
        assert_eq!(
            app.count("community_members", "community_id = $1", &community)
                .await,
            0
        );
        allow_audit(&app).await;
        assert_eq!(
            put_member(&app, &org.admin, &community, &user, "member").await,
            201
        );
        refuse_audit(&app, "community.moderator.add").await;
        assert_eq!(
            put_member(&app, &org.admin, &community, &user, "moderator").await,
            500
        );
        assert_eq!(
            app.count(
                "community_members",
                "role = 'moderator' AND community_id = $1",
                &community
            )
            .await,
            0
        );
        allow_audit(&app).await;
        assert_eq!(
            app.audit_actions("community", &community).await,
            vec!["community.create", "community.member.add"]
        );
    }
);
