//! The migration that lets rooms hold up to 100 people keeps every existing room and
//! what refers to it. On SQLite it edits the table's stored definition in place (a
//! rebuild would cascade through the foreign keys), so this runs the schema up to the
//! migration before it, fills it, then migrates. SQLite only: on PostgreSQL the change
//! is a plain `ALTER TABLE ... CONSTRAINT`, exercised by every PostgreSQL test that
//! opens a group room of more than 50 people.

use theraroom::store::Store;

/// Runs SQL with positional text binds on the store's pool.
async fn exec(store: &Store, sql: &str, binds: &[&str]) -> Result<(), sqlx::Error> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(b.to_string());
    }
    q.execute(store.pool()).await.map(|_| ())
}

async fn room_row(store: &Store, id: &str, max: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instant_sessions (id, session_name, share_token, therapist_id, organization_id, \
           kind, max_participants, is_active, created_at, expires_at, restricted, waiting_room) \
         VALUES ($1, 'Room', $2, 't1', 'o1', 'group', $3, 1, 1, 9999999999999, 1, 1)",
    )
    .bind(id)
    .bind(format!("share-{id}"))
    .bind(max)
    .execute(store.pool())
    .await
    .map(|_| ())
}

#[tokio::test]
async fn sqlite_rooms_survive_the_capacity_migration() {
    let dir = std::env::temp_dir().join(format!(
        "theraroom-migration-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let before = dir.join("before");
    std::fs::create_dir_all(&before).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0013" {
            std::fs::copy(&path, before.join(&name)).unwrap();
        }
    }
    let url = format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display());
    let store = Store::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(store.pool())
        .await
        .unwrap();

    // A room of 50 with a guest who registered in it.
    exec(
        &store,
        "INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'Clinic', 1)",
        &[],
    )
    .await
    .unwrap();
    exec(
        &store,
        "INSERT INTO users (id, organization_id, role, display_name, email, created_at) \
         VALUES ('t1', 'o1', 'therapist', 'Dr One', 't1@example.org', 1)",
        &[],
    )
    .await
    .unwrap();
    exec(
        &store,
        "INSERT INTO therapists (id, organization_id, partner_code, created_at) VALUES ('t1', 'o1', 'P1', 1)",
        &[],
    )
    .await
    .unwrap();
    room_row(&store, "r1", 50).await.unwrap();
    assert!(room_row(&store, "r-too-big", 54).await.is_err());
    exec(
        &store,
        "INSERT INTO guests (id, session_id, display_name, created_at) VALUES ('g1', 'r1', 'Guest', 1)",
        &[],
    )
    .await
    .unwrap();
    exec(
        &store,
        "INSERT INTO session_participants (id, session_id, guest_id, display_name, role, registered_at) \
         VALUES ('p1', 'r1', 'g1', 'Guest', 'guest', 1)",
        &[],
    )
    .await
    .unwrap();

    store.migrate().await.unwrap();

    // Everything is still there, still linked, and the new bound holds.
    for (table, column) in [
        ("instant_sessions", "id"),
        ("guests", "session_id"),
        ("session_participants", "session_id"),
    ] {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM {table} WHERE {column} = 'r1'"
        ))
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(n, 1, "{table}");
    }
    let room = store.session("r1").await.unwrap().unwrap();
    assert_eq!(room.max_participants, 50);
    assert!(room.waiting_room());
    room_row(&store, "r54", 54).await.unwrap();
    room_row(&store, "r100", 100).await.unwrap();
    assert!(room_row(&store, "r101", 101).await.is_err());
    // Foreign keys still hold both ways.
    assert!(exec(
        &store,
        "INSERT INTO guests (id, session_id, display_name, created_at) VALUES ('g2', 'nope', 'G', 1)",
        &[],
    )
    .await
    .is_err());
    exec(
        &store,
        "DELETE FROM session_participants WHERE id = 'p1'",
        &[],
    )
    .await
    .unwrap();
    exec(&store, "DELETE FROM instant_sessions WHERE id = 'r1'", &[])
        .await
        .unwrap();
    let (guests,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM guests WHERE session_id = 'r1'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(guests, 0, "the guest cascades with its room");
    let (ok,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(ok, "ok");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
