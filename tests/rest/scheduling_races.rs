//! 1:1 scheduling under concurrency and failure: 20 concurrent holds and 20
//! concurrent confirmations for one slot, the database's own refusal of overlapping
//! sessions, and notes that commit together with their audit rows. Fixtures:
//! [`super::scheduling`].

use std::sync::Arc;

use chrono::Utc;

use super::scheduling::{
    book, clinic, confirm_race, count_sessions, hold, hold_body, iso, minutes_from_now, sid,
    slot_race_outcome, utc,
};
use super::*;

// 20 concurrent hold requests for one therapist slot (20 different clients): exactly
// one hold, 19 clean 409s.
both_dbs!(concurrent_holds_for_one_slot, |app| async move {
    let c = clinic(&app, "RaceHold").await;
    let mut clients = Vec::new();
    for i in 0..20 {
        clients.push(
            app.client(&c.org.id, Some(&c.therapist.id), &format!("Racer {i}"))
                .await,
        );
    }
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for client in clients {
        let (app, t) = (app.clone(), c.therapist.clone());
        tasks.push(tokio::spawn(async move {
            hold(
                &app,
                &t,
                hold_body(&t, &client, "2030-10-07T10:00:00Z", "2030-10-07T11:00:00Z"),
            )
            .await
        }));
    }
    assert_eq!(slot_race_outcome(tasks).await, (1, 19));
    assert_eq!(
        app.count(
            "schedule_holds",
            "therapist_id = $1 AND status = 'active'",
            &c.therapist.id
        )
        .await,
        1
    );
});

// 20 concurrent confirmations for one therapist slot → exactly one session and 19
// clean 409s. Overlapping holds cannot be created through the API (see the test
// above), so the 20 holds are written directly into the database.
both_dbs!(concurrent_confirmations_for_one_slot, |app| async move {
    let c = clinic(&app, "RaceConfirm").await;
    let now = Utc::now().timestamp_millis();
    let start = utc("2030-10-14T10:00:00Z").timestamp_millis();
    let mut keys = Vec::new();
    for i in 0..20 {
        let client = app
            .client(&c.org.id, Some(&c.therapist.id), &format!("Confirmer {i}"))
            .await;
        let (hold_id, key) = (
            format!("hold-{i}-{}", uuid::Uuid::new_v4()),
            format!("key-{i}-{}", uuid::Uuid::new_v4()),
        );
        sqlx::query(
            "INSERT INTO schedule_holds (id, hold_key, organization_id, therapist_id, client_id, time_zone, status, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, 'UTC', 'active', $4, $6, $7)",
        )
        .bind(&hold_id)
        .bind(&key)
        .bind(&c.org.id)
        .bind(&c.therapist.id)
        .bind(&client.id)
        .bind(now)
        .bind(now + 600_000)
        .execute(app.store.pool())
        .await
        .unwrap();
        // Slightly different slots, all overlapping 10:00-11:00.
        let offset = i64::from(i % 4) * 60_000;
        sqlx::query(
            "INSERT INTO schedule_hold_occurrences (id, hold_id, position, start_ms, end_ms) VALUES ($1, $2, 0, $3, $4)",
        )
        .bind(format!("occ-{hold_id}"))
        .bind(&hold_id)
        .bind(start + offset)
        .bind(start + offset + 3_600_000)
        .execute(app.store.pool())
        .await
        .unwrap();
        keys.push(key);
    }
    let app = Arc::new(app);
    assert_eq!(confirm_race(&app, &c.therapist, keys).await, (1, 19));
    assert_eq!(count_sessions(&app, &c.therapist.id).await, 1);
    // The refused holds stay unconfirmed (their transactions rolled back).
    assert_eq!(
        app.count(
            "schedule_holds",
            "therapist_id = $1 AND status = 'confirmed'",
            &c.therapist.id
        )
        .await,
        1
    );
});

// On PostgreSQL the database itself refuses overlapping sessions (exclusion
// constraint), whatever the application does; a cancelled session frees its range.
both_dbs!(database_refuses_overlaps, |app| async move {
    if app.db != common::Db::Postgres {
        return;
    }
    let c = clinic(&app, "Constraint").await;
    let c2 = app.client(&c.org.id, Some(&c.therapist.id), "Other").await;
    let insert = |id: &'static str, client: String, start: i64, end: i64| {
        let (store, org, t) = (app.store.clone(), c.org.id.clone(), c.therapist.id.clone());
        async move {
            sqlx::query(
                "INSERT INTO scheduled_sessions (id, organization_id, therapist_id, client_id, start_ms, end_ms, time_zone, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'UTC', $3, 0, 0)",
            )
            .bind(id)
            .bind(org)
            .bind(t)
            .bind(client)
            .bind(start)
            .bind(end)
            .execute(store.pool())
            .await
        }
    };
    insert("a", c.client.id.clone(), 1_000, 2_000)
        .await
        .unwrap();
    insert("b", c2.id.clone(), 2_000, 3_000)
        .await
        .expect("half-open: adjacent is fine");
    let err = insert("c", c2.id.clone(), 1_500, 2_500).await.unwrap_err();
    assert!(theraroom::schedule::is_exclusion_violation(&err), "{err}");
    sqlx::query("UPDATE scheduled_sessions SET status = 'cancelled' WHERE id = 'a'")
        .execute(app.store.pool())
        .await
        .unwrap();
    insert("d", c2.id.clone(), 1_000, 1_900)
        .await
        .expect("cancelled sessions do not block");
});

both_dbs!(notes_and_their_audit_commit_together, |app| async move {
    use super::audit::{allow_audit, refuse_audit};
    let c = clinic(&app, "Atomic Notes").await;
    let (start, end) = (
        iso(minutes_from_now(3 * 24 * 60)),
        iso(minutes_from_now(3 * 24 * 60 + 60)),
    );
    let s = book(&app, &c.therapist, &c.therapist, &c.client, &start, &end).await;
    let id = sid(&s);
    let notes = format!("/api/schedule/sessions/{id}/notes");
    refuse_audit(&app, "schedule.note.create").await;
    app.post(
        &notes,
        Some(&c.therapist.token),
        Some(json!({"body": "First"})),
    )
    .await
    .expect_err(500, "internal");
    assert_eq!(
        app.count("scheduled_session_notes", "session_id = $1", &id)
            .await,
        0
    );
    allow_audit(&app).await;
    let n = app
        .post(
            &notes,
            Some(&c.therapist.token),
            Some(json!({"body": "First"})),
        )
        .await;
    let note_id = n.expect(201)["id"].as_str().unwrap().to_string();
    refuse_audit(&app, "schedule.note.update").await;
    app.put(
        &format!("{notes}/{note_id}"),
        Some(&c.therapist.token),
        json!({"body": "Second"}),
    )
    .await
    .expect_err(500, "internal");
    allow_audit(&app).await;
    let list = app.get(&notes, Some(&c.therapist.token)).await;
    assert_eq!(list.expect(200)["notes"][0]["body"], "First");
});
