//! Removal sticks and takes read access with it: the probes that once got through
//! (a removed guest minting a new token from the same link, removed or departed
//! participants reading the participant list or getting TURN credentials) and the audit
//! trail of rooms and guests.

use super::*;

fn participants_path(session: &str) -> String {
    format!("/api/sessions/{session}/participants")
}

fn turn_path(session: &str) -> String {
    format!("/api/turn-credentials?session_id={session}")
}

both_dbs!(removed_guest_stays_out, |app| async move {
    let org = app.org("Sticky Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Sticky").await;
    let s = app.session(&t, "Room").await;
    let sid = s["id"].as_str().unwrap();
    let old_link = s["share_token"].as_str().unwrap().to_string();
    let path = participants_path(sid);
    let g = app.guest(&old_link, "Unruly Guest").await;
    let gt = g["token"].as_str().unwrap().to_string();
    let gpid = app.post(&path, Some(&gt), None).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stays = app.guest(&old_link, "Polite Guest").await;
    let stays_token = stays["token"].as_str().unwrap().to_string();
    app.post(&path, Some(&stays_token), None).await.expect(201);
    // Before the removal the guest reads the session and gets relay credentials.
    app.get(&path, Some(&gt)).await.expect(200);
    app.get("/api/turn-credentials", Some(&gt))
        .await
        .expect(200);

    app.delete(&format!("{path}/{gpid}"), Some(&t.token))
        .await
        .expect(200);

    // The removed guest's token admits them nowhere and reads nothing.
    app.post(&path, Some(&gt), None)
        .await
        .expect_err(403, "removed");
    app.get(&path, Some(&gt))
        .await
        .expect_err(404, "session_not_found");
    app.get(&format!("/api/sessions/{sid}"), Some(&gt))
        .await
        .expect_err(404, "session_not_found");
    app.get("/api/turn-credentials", Some(&gt))
        .await
        .expect_err(403, "removed");
    // The link they came through is withdrawn: no new guest identity from it.
    let again = app
        .post(
            &format!("/api/join/{old_link}/guest"),
            None,
            Some(json!({"name": "Unruly Guest"})),
        )
        .await;
    again.expect_err(403, "removed");
    app.get(&format!("/api/join/{old_link}"), None)
        .await
        .expect_err(403, "removed");
    assert_eq!(app.count("guests", "session_id = $1", sid).await, 2);

    // The session has a new link, shown to its therapist; it works for new guests.
    let fresh = app
        .get(&format!("/api/sessions/{sid}"), Some(&t.token))
        .await;
    let new_link = fresh.expect(200)["share_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_link, old_link);
    let newcomer = app.guest(&new_link, "New Guest").await;
    app.post(&path, newcomer["token"].as_str(), None)
        .await
        .expect(201);
    // The guest who was not removed keeps taking part with the token they hold.
    app.get(&path, Some(&stays_token)).await.expect(200);
    app.post(&path, Some(&stays_token), None).await.expect(200);

    // Once the session ends, the withdrawn link reveals nothing any more.
    app.post(&format!("/api/sessions/{sid}/end"), Some(&t.token), None)
        .await
        .expect(200);
    app.get(&format!("/api/join/{old_link}"), None)
        .await
        .expect_err(404, "session_not_found");

    // Audit: the removal records the withdrawn link; each guest identity is recorded.
    let audit = app
        .store
        .audit_for_target("participant", &gpid)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    let after: Value = serde_json::from_str(audit[0].after_state.as_deref().unwrap()).unwrap();
    assert_eq!(after["share_link_withdrawn"], true);
    let actions = app.audit_actions("session", sid).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.as_str() == "session.guest.create")
            .count(),
        3
    );
    assert_eq!(actions.first().map(String::as_str), Some("session.create"));
    assert_eq!(actions.last().map(String::as_str), Some("session.end"));
});

both_dbs!(
    removed_user_stays_out_and_loses_read_access,
    |app| async move {
        let org = app.org("Sticky Users", true).await;
        let t = app.therapist(&org.id, "Dr Firm").await;
        let client = app.client(&org.id, Some(&t.id), "Removed Client").await;
        let s = app.session(&t, "Room").await;
        let sid = s["id"].as_str().unwrap();
        let link = s["share_token"].as_str().unwrap().to_string();
        let path = participants_path(sid);
        let cpid = app.post(&path, Some(&client.token), None).await.expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.get(&path, Some(&client.token)).await.expect(200);
        app.get(&turn_path(sid), Some(&client.token))
            .await
            .expect(200);

        app.delete(&format!("{path}/{cpid}"), Some(&t.token))
            .await
            .expect(200);
        app.post(&path, Some(&client.token), None)
            .await
            .expect_err(403, "removed");
        app.get(&path, Some(&client.token))
            .await
            .expect_err(404, "session_not_found");
        app.get(&turn_path(sid), Some(&client.token))
            .await
            .expect_err(403, "removed");
        let listed = app.get("/api/sessions", Some(&client.token)).await;
        assert_eq!(listed.expect(200)["sessions"], json!([]));
        // Removing a signed-in user does not withdraw the link (it sticks by user id).
        let fresh = app
            .get(&format!("/api/sessions/{sid}"), Some(&t.token))
            .await;
        assert_eq!(fresh.expect(200)["share_token"], json!(link));
    }
);

both_dbs!(departed_participants_lose_read_access, |app| async move {
    let org = app.org("Departures", true).await;
    let t = app.therapist(&org.id, "Dr Door").await;
    let client = app.client(&org.id, Some(&t.id), "Leaving Client").await;
    let s = app.session(&t, "Room").await;
    let sid = s["id"].as_str().unwrap();
    let path = participants_path(sid);
    let g = app
        .guest(s["share_token"].as_str().unwrap(), "Leaving Guest")
        .await;
    let gt = g["token"].as_str().unwrap().to_string();
    let mut rows = Vec::new();
    for token in [client.token.as_str(), gt.as_str()] {
        let row = app.post(&path, Some(token), None).await.expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        // In the room: they read the list.
        app.store.mark_participant_joined(&row).await.unwrap();
        app.get(&path, Some(token)).await.expect(200);
        rows.push(row);
    }
    for row in &rows {
        app.store.mark_participant_left(row).await.unwrap();
    }
    for token in [client.token.as_str(), gt.as_str()] {
        app.get(&path, Some(token))
            .await
            .expect_err(404, "session_not_found");
    }
    app.get(&turn_path(sid), Some(&client.token))
        .await
        .expect_err(403, "forbidden");
    app.get("/api/turn-credentials", Some(&gt))
        .await
        .expect_err(403, "forbidden");
    // Coming back in (a new join) gives access back: leaving is not removal.
    app.post(&path, Some(&client.token), None).await.expect(200);
    app.store.mark_participant_joined(&rows[0]).await.unwrap();
    app.get(&path, Some(&client.token)).await.expect(200);
    // The therapist always reads it.
    app.get(&path, Some(&t.token)).await.expect(200);
});

both_dbs!(turn_credentials_follow_admission, |app| async move {
    let org = app.org("Relay Clinic", true).await;
    let t = app.therapist(&org.id, "Dr Relay").await;
    let s = app.session(&t, "Room").await;
    let sid = s["id"].as_str().unwrap();
    let other = app.org("Elsewhere", true).await;
    let stranger = app.client(&other.id, None, "Stranger").await;
    app.get(&turn_path(sid), Some(&stranger.token))
        .await
        .expect_err(403, "forbidden");
    app.get(&turn_path("no-such-session"), Some(&t.token))
        .await
        .expect_err(404, "session_not_found");
    app.get(&turn_path(sid), Some(&t.token)).await.expect(200);
    let g = app.guest(s["share_token"].as_str().unwrap(), "Guest").await;
    let s2 = app.session(&t, "Other room").await;
    app.get(&turn_path(s2["id"].as_str().unwrap()), g["token"].as_str())
        .await
        .expect_err(403, "forbidden");
    app.set_therapist_video_db(&t.id, false).await;
    app.get("/api/turn-credentials", g["token"].as_str())
        .await
        .expect_err(403, "therapist_disabled");
    app.set_therapist_video_db(&t.id, true).await;
    app.post(&format!("/api/sessions/{sid}/end"), Some(&t.token), None)
        .await
        .expect(200);
    app.get("/api/turn-credentials", g["token"].as_str())
        .await
        .expect_err(409, "session_ended");
});
