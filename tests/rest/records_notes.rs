//! Clinical notes sealed at rest: the database holds ciphertext only, the API still
//! returns the text, rows from before encryption are sealed at start, and a key
//! rotation keeps every note readable while retiring the old key from every row.

use chrono::{Duration, Utc};
use theraroom::data_keys::{self, rotate::rotate_data_key};

use super::*;

/// A booked session of a new clinic: (organization, therapist, session id).
async fn booked(app: &TestApp, name: &str, days: i64) -> (OrgFx, Person, String) {
    let org = app.org(name, false).await;
    let t = app.therapist(&org.id, &format!("Dr {name}")).await;
    let c = app
        .client(&org.id, Some(&t.id), &format!("Client {name}"))
        .await;
    let start = (Utc::now() + Duration::days(days))
        .date_naive()
        .and_hms_opt(10, 0, 0)
        .unwrap()
        .and_utc();
    let iso = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({"therapist_id": t.id, "client_id": c.id,
        "start": iso(start), "end": iso(start + Duration::hours(1))});
    let hold = app
        .post("/api/schedule/holds", Some(&t.token), Some(body))
        .await;
    let key = hold.expect(201)["hold_key"].as_str().unwrap().to_string();
    let done = app
        .post(
            &format!("/api/schedule/holds/{key}/confirm"),
            Some(&t.token),
            None,
        )
        .await;
    let session = done.expect(201)["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (org, t, session)
}

async fn add_note(app: &TestApp, t: &Person, session: &str, text: &str) -> String {
    let created = app
        .post(
            &format!("/api/schedule/sessions/{session}/notes"),
            Some(&t.token),
            Some(json!({ "body": text })),
        )
        .await;
    created.expect(201)["id"].as_str().unwrap().to_string()
}

async fn texts(app: &TestApp, t: &Person, session: &str) -> Vec<String> {
    let list = app
        .get(
            &format!("/api/schedule/sessions/{session}/notes"),
            Some(&t.token),
        )
        .await;
    list.expect(200)["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["body"].as_str().unwrap().to_string())
        .collect()
}

/// A note row's columns: body, key id, nonce, ciphertext.
type Columns = (String, Option<String>, Option<String>, Option<String>);

async fn columns(app: &TestApp, note: &str) -> Columns {
    sqlx::query_as(
        "SELECT body, body_key_id, body_nonce, body_sealed FROM scheduled_session_notes WHERE id = $1",
    )
    .bind(note)
    .fetch_one(app.store.pool())
    .await
    .expect("note row")
}

/// The bytes of the SQLite database file and its write-ahead log.
async fn sqlite_bytes(app: &TestApp) -> Vec<u8> {
    let (file,): (String,) =
        sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(app.store.pool())
            .await
            .expect("database file");
    let mut bytes = std::fs::read(&file).expect("read database file");
    if let Ok(wal) = std::fs::read(format!("{file}-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

both_dbs!(notes_are_unreadable_in_the_database, |app| async move {
    let (_, t, session) = booked(&app, "Sealed", 3).await;
    let first = "Client disclosed panic attacks near the bridge";
    let second = "Sleeps four hours; follow up on medication";
    let note = add_note(&app, &t, &session, first).await;
    let other = add_note(&app, &t, &session, "placeholder text").await;
    app.put(
        &format!("/api/schedule/sessions/{session}/notes/{other}"),
        Some(&t.token),
        json!({ "body": second }),
    )
    .await
    .expect(200);
    assert_eq!(texts(&app, &t, &session).await, vec![first, second]);

    let keys = app.store.data_keys().unwrap();
    for id in [&note, &other] {
        let (body, key_id, nonce, sealed) = columns(&app, id).await;
        assert_eq!(body, "", "the plaintext column is empty");
        assert_eq!(key_id.as_deref(), Some(keys.current_id()));
        assert_eq!(nonce.map(|n| n.len()), Some(16), "96-bit nonce, base64");
        let sealed = sealed.expect("ciphertext");
        assert!(!sealed.contains("panic") && !sealed.contains("medication"));
    }
    match app.db {
        common::Db::Sqlite => {
            let bytes = sqlite_bytes(&app).await;
            for text in ["panic attacks", "medication", "placeholder text"] {
                assert!(!contains(&bytes, text), "{text:?} is in the database file");
            }
        }
        common::Db::Postgres => {
            let (row,): (String,) = sqlx::query_as(
                "SELECT CAST(n AS TEXT) FROM scheduled_session_notes n WHERE n.id = $1",
            )
            .bind(&note)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
            assert!(!row.contains("panic"), "{row}");
        }
    }
    assert_eq!(
        app.count(
            "audit_log",
            "before_state LIKE $1 OR after_state LIKE $1",
            "%panic%"
        )
        .await,
        0
    );

    // A ciphertext moved into another row does not open there.
    sqlx::query(
        "UPDATE scheduled_session_notes SET body_nonce = (SELECT body_nonce FROM scheduled_session_notes WHERE id = $1), \
         body_sealed = (SELECT body_sealed FROM scheduled_session_notes WHERE id = $1) WHERE id = $2",
    )
    .bind(&note)
    .bind(&other)
    .execute(app.store.pool())
    .await
    .unwrap();
    app.get(
        &format!("/api/schedule/sessions/{session}/notes"),
        Some(&t.token),
    )
    .await
    .expect_err(500, "internal");
});

both_dbs!(plaintext_notes_are_sealed_at_start, |app| async move {
    let (org, t, session) = booked(&app, "Legacy", 4).await;
    // A row as written before encryption: text in `body`, no ciphertext.
    sqlx::query(
        "INSERT INTO scheduled_session_notes (id, session_id, organization_id, author_id, body, created_at, updated_at) \
         VALUES ('legacy-1', $1, $2, $3, 'Legacy plaintext about grief', 1, 1)",
    )
    .bind(&session)
    .bind(&org.id)
    .bind(&t.id)
    .execute(app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        texts(&app, &t, &session).await,
        vec!["Legacy plaintext about grief"]
    );

    assert_eq!(app.store.seal_plaintext_notes().await.unwrap(), 1);
    assert_eq!(
        app.store.seal_plaintext_notes().await.unwrap(),
        0,
        "idempotent"
    );
    let (body, key_id, _, sealed) = columns(&app, "legacy-1").await;
    assert_eq!(body, "");
    assert!(key_id.is_some() && sealed.is_some());
    assert_eq!(
        texts(&app, &t, &session).await,
        vec!["Legacy plaintext about grief"]
    );
    match app.db {
        // Once the write-ahead log is checkpointed, no trace of the text is left in
        // the database file.
        common::Db::Sqlite => {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(app.store.pool())
                .await
                .unwrap();
            let bytes = sqlite_bytes(&app).await;
            assert!(!contains(&bytes, "plaintext about grief"));
        }
        common::Db::Postgres => {
            let (row,): (String,) = sqlx::query_as(
                "SELECT CAST(n AS TEXT) FROM scheduled_session_notes n WHERE n.id = 'legacy-1'",
            )
            .fetch_one(app.store.pool())
            .await
            .unwrap();
            assert!(!row.contains("grief"), "{row}");
        }
    }
});

both_dbs!(rotation_keeps_every_note_readable, |app| async move {
    let dir = std::env::temp_dir().join(format!(
        "theraroom-rotate-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let first = data_keys::load(&dir, None).unwrap();
    let first_id = first.current_id().to_string();
    app.store.install_data_keys(first);
    let (_, t, a) = booked(&app, "Rotate A", 5).await;
    let (_, u, b) = booked(&app, "Rotate B", 6).await;
    add_note(&app, &t, &a, "note one").await;
    add_note(&app, &t, &a, "note two").await;
    add_note(&app, &u, &b, "note three").await;
    let by_key = |id: String| {
        let app = &app;
        async move {
            app.count("scheduled_session_notes", "body_key_id = $1", &id)
                .await
        }
    };
    assert_eq!(by_key(first_id.clone()).await, 3);

    let rotation = rotate_data_key(&app.store, &dir, None).await.unwrap();
    assert_eq!(rotation.resealed_notes, 3);
    assert_eq!(rotation.previous_key_ids, vec![first_id.clone()]);
    assert_ne!(rotation.key_id, first_id);
    assert_eq!(texts(&app, &t, &a).await, vec!["note one", "note two"]);
    assert_eq!(texts(&app, &u, &b).await, vec!["note three"]);
    assert_eq!(
        by_key(first_id.clone()).await,
        0,
        "the old key seals no row"
    );
    assert_eq!(by_key(rotation.key_id.clone()).await, 3);

    // Again: two old keys kept, every row on the newest; the file alone reads them.
    let again = rotate_data_key(&app.store, &dir, None).await.unwrap();
    assert_eq!(again.resealed_notes, 3);
    assert_eq!(
        again.previous_key_ids,
        vec![first_id.clone(), rotation.key_id.clone()]
    );
    app.store
        .install_data_keys(data_keys::load(&dir, None).unwrap());
    assert_eq!(texts(&app, &t, &a).await, vec!["note one", "note two"]);
    assert_eq!(by_key(again.key_id.clone()).await, 3);
    let file = std::fs::read_to_string(data_keys::keyring_path(&dir)).unwrap();
    assert!(file.contains(&first_id) && file.contains(&again.key_id));
    std::fs::remove_dir_all(dir).unwrap();
});
