//! Participant registration (idempotent), visibility and removal.

use super::*;

fn participants_path(session: &str) -> String {
    format!("/api/sessions/{session}/participants")
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["participants"]
        .as_array()
        .expect("participants array")
        .iter()
        .map(|p| p["display_name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

both_dbs!(registration_is_idempotent, |app| async move {
    let org = app.org("Register Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Host").await;
    let client = app.client(&org.id, Some(&t.id), "Casey Client").await;
    let s = app.session(&t, "Room").await;
    let sid = s["id"].as_str().unwrap();
    let path = participants_path(sid);

    let first = app.post(&path, Some(&client.token), None).await;
    let first = first.expect(201).clone();
    assert_eq!(first["session_id"], json!(sid));
    assert_eq!(first["user_id"], json!(client.id));
    assert_eq!(first["is_guest"], false);
    assert_eq!(first["display_name"], "Casey Client");
    assert_eq!(first["role"], "client");
    assert_eq!(first["removed"], false);
    assert_eq!(first["is_active"], false, "active only once in the room");
    let second = app.post(&path, Some(&client.token), None).await;
    let second = second.expect(200);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(
        app.count("session_participants", "session_id = $1", sid)
            .await,
        1
    );

    // The therapist registers in their own session too, also idempotently.
    let host = app.post(&path, Some(&t.token), None).await;
    assert_eq!(host.expect(201)["role"], "therapist");
    app.post(&path, Some(&t.token), None).await.expect(200);

    // Guests: one row per guest, idempotent as well.
    let g = app
        .guest(s["share_token"].as_str().unwrap(), "Guest One")
        .await;
    let gt = g["token"].as_str().unwrap();
    let g1 = app.post(&path, Some(gt), None).await.expect(201)["id"].clone();
    let g2 = app.post(&path, Some(gt), None).await.expect(200)["id"].clone();
    assert_eq!(g1, g2);
    assert_eq!(
        app.count("session_participants", "session_id = $1", sid)
            .await,
        3
    );

    let list = app.get(&path, Some(&t.token)).await;
    assert_eq!(
        names(list.expect(200)),
        vec!["Casey Client", "Dr Host", "Guest One"]
    );

    // Failures.
    app.post(&path, None, None)
        .await
        .expect_err(401, "unauthorized");
    app.post(
        &participants_path("no-such-session"),
        Some(&client.token),
        None,
    )
    .await
    .expect_err(404, "session_not_found");
    app.post(&format!("/api/sessions/{sid}/end"), Some(&t.token), None)
        .await
        .expect(200);
    let late = app.client(&org.id, Some(&t.id), "Late Client").await;
    app.post(&path, Some(&late.token), None)
        .await
        .expect_err(409, "session_ended");
    assert_eq!(
        app.count("session_participants", "session_id = $1", sid)
            .await,
        3
    );
});

both_dbs!(registration_cross_tenant_is_404, |app| async move {
    let org = app.org("Home Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Home").await;
    let other = app.org("Away Clinic", true).await;
    let other_t = app.therapist(&other.id, "Dr Away").await;
    let other_client = app
        .client(&other.id, Some(&other_t.id), "Away Client")
        .await;
    let other_admin = app.user(&other.id, Role::Admin, "Away Admin").await;
    let s = app.session(&t, "Home room").await;
    let path = participants_path(s["id"].as_str().unwrap());
    for token in [
        &other_t.token,
        &other_client.token,
        &other_admin.token,
        &other.admin.token,
    ] {
        app.post(&path, Some(token), None)
            .await
            .expect_err(404, "session_not_found");
    }
    // A client token claiming the session's organization but belonging to another is
    // refused at the door: the organization comes from the user's row.
    let spoof = app.token(&other_client.id, Role::Client, Some(&org.id), None);
    app.post(&path, Some(&spoof), None)
        .await
        .expect_err(401, "invalid_token");
    // A soft-deleted client of the organization may not register.
    let gone = app.client(&org.id, Some(&t.id), "Gone Client").await;
    sqlx::query("UPDATE clients SET deleted_at = $1 WHERE id = $2")
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(&gone.id)
        .execute(app.store.pool())
        .await
        .unwrap();
    app.post(&path, Some(&gone.token), None)
        .await
        .expect_err(404, "session_not_found");
    assert_eq!(
        app.count(
            "session_participants",
            "session_id = $1",
            s["id"].as_str().unwrap()
        )
        .await,
        0
    );
});

both_dbs!(participant_list_visibility, |app| async move {
    let org = app.org("Visible Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Visible").await;
    let colleague = app.therapist(&org.id, "Dr Colleague").await;
    let joined = app.client(&org.id, Some(&t.id), "Joined Client").await;
    let outsider = app.client(&org.id, Some(&t.id), "Outsider Client").await;
    let other = app.org("Other Visible", true).await;
    let other_t = app.therapist(&other.id, "Dr Other").await;
    let other_admin = app.user(&other.id, Role::Admin, "Other Admin").await;
    let s = app.session(&t, "Seen").await;
    let sid = s["id"].as_str().unwrap();
    let path = participants_path(sid);
    app.post(&path, Some(&joined.token), None).await.expect(201);
    let g = app
        .guest(s["share_token"].as_str().unwrap(), "Guest Seen")
        .await;
    app.post(&path, g["token"].as_str(), None).await.expect(201);

    // The therapist, administrators of the organization and participants see the list.
    for token in [
        t.token.as_str(),
        org.admin.token.as_str(),
        joined.token.as_str(),
        g["token"].as_str().unwrap(),
    ] {
        let list = app.get(&path, Some(token)).await;
        assert_eq!(names(list.expect(200)), vec!["Guest Seen", "Joined Client"]);
    }
    // Everyone else gets the same 404 as for an unknown session.
    for token in [
        &colleague.token,
        &outsider.token,
        &other_t.token,
        &other_admin.token,
        &other.admin.token,
    ] {
        app.get(&path, Some(token))
            .await
            .expect_err(404, "session_not_found");
    }
    app.get(&participants_path("no-such-session"), Some(&t.token))
        .await
        .expect_err(404, "session_not_found");
    app.get(&path, None).await.expect_err(401, "unauthorized");
});

both_dbs!(removal, |app| async move {
    let org = app.org("Removal Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Remover").await;
    let client = app.client(&org.id, Some(&t.id), "Client Stays").await;
    let other = app.org("Other Removal", true).await;
    let other_t = app.therapist(&other.id, "Dr Other").await;
    let s = app.session(&t, "Room").await;
    let sid = s["id"].as_str().unwrap();
    let path = participants_path(sid);
    let host = app.post(&path, Some(&t.token), None).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cpid = app.post(&path, Some(&client.token), None).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let g = app
        .guest(s["share_token"].as_str().unwrap(), "Unruly Guest")
        .await;
    let gt = g["token"].as_str().unwrap().to_string();
    let gpid = app.post(&path, Some(&gt), None).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s2 = app.session(&t, "Other room").await;
    let s2id = s2["id"].as_str().unwrap();
    let elsewhere = app
        .post(&participants_path(s2id), Some(&client.token), None)
        .await;
    let elsewhere = elsewhere.expect(201)["id"].as_str().unwrap().to_string();
    let del = |pid: &str| format!("{path}/{pid}");

    // Refusals before the removal.
    app.delete(&del(&gpid), None)
        .await
        .expect_err(401, "unauthorized");
    app.delete(&del(&gpid), Some(&client.token))
        .await
        .expect_err(403, "forbidden");
    app.delete(&del(&gpid), Some(&gt))
        .await
        .expect_err(403, "forbidden");
    app.delete(&del(&gpid), Some(&other_t.token))
        .await
        .expect_err(404, "session_not_found");
    app.delete(&del(&gpid), Some(&other.admin.token))
        .await
        .expect_err(404, "session_not_found");
    app.delete(&del("no-such-participant"), Some(&t.token))
        .await
        .expect_err(404, "participant_not_found");
    app.delete(&del(&elsewhere), Some(&t.token))
        .await
        .expect_err(404, "participant_not_found");
    app.delete(&del(&host), Some(&t.token))
        .await
        .expect_err(409, "cannot_remove_therapist");
    app.delete(&del(&host), Some(&org.admin.token))
        .await
        .expect_err(409, "cannot_remove_therapist");
    assert!(app.audit_actions("participant", &gpid).await.is_empty());

    // The removal.
    let removed = app.delete(&del(&gpid), Some(&t.token)).await;
    let removed = removed.expect(200);
    assert_eq!(removed["id"], json!(gpid));
    assert_eq!(removed["removed"], true);
    assert_eq!(removed["is_active"], false);
    app.delete(&del(&gpid), Some(&t.token))
        .await
        .expect_err(409, "participant_already_removed");
    let audit = app
        .store
        .audit_for_target("participant", &gpid)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "session.participant.remove");
    assert_eq!(audit[0].actor_id, t.id);

    // The removed guest may not register again (nor come back under the same token).
    app.post(&path, Some(&gt), None)
        .await
        .expect_err(403, "removed");
    assert_eq!(
        app.count("session_participants", "session_id = $1", sid)
            .await,
        3
    );

    // An organization administrator may remove too; the client's other session is untouched.
    let by_admin = app.delete(&del(&cpid), Some(&org.admin.token)).await;
    assert_eq!(by_admin.expect(200)["removed"], true);
    app.post(&path, Some(&client.token), None)
        .await
        .expect_err(403, "removed");
    let other_row = app.store.participant(&elsewhere).await.unwrap().unwrap();
    assert!(!other_row.removed());

    let list = app.get(&path, Some(&t.token)).await;
    let list = list.expect(200);
    let removed_flags: Vec<bool> = list["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["removed"].as_bool().unwrap())
        .collect();
    assert_eq!(removed_flags.iter().filter(|r| **r).count(), 2);
});
