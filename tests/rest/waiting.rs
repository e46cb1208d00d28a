//! The waiting room over REST: the session switch, who may change it, the decisions'
//! effect on later joins, and "running calls continue when video access is switched
//! off" for registration (the live queue itself is covered by the signaling tests and
//! the browser scenarios).

use axum::http::Method;
use theraroom::rooms::waiting::{decide, Decider};

use super::*;

fn waiting_path(session: &str) -> String {
    format!("/api/sessions/{session}/waiting")
}

both_dbs!(
    instant_sessions_have_a_waiting_room_by_default,
    |app| async move {
        let org = app.org("Waiting Clinic", true).await;
        let t = app.therapist(&org.id, "Dr Wait").await;
        let s = app.session(&t, "Room").await;
        assert_eq!(s["waiting_room"], json!(true));
        let off = app
            .post(
                "/api/sessions",
                Some(&t.token),
                Some(json!({"session_name": "Open door", "waiting_room": false})),
            )
            .await;
        assert_eq!(off.expect(201)["waiting_room"], json!(false));
    }
);

both_dbs!(
    the_therapist_switches_the_waiting_room_and_it_is_audited,
    |app| async move {
        let org = app.org("Switch Clinic", true).await;
        let t = app.therapist(&org.id, "Dr Switch").await;
        let other_org = app.org("Other Clinic", true).await;
        let stranger = app.therapist(&other_org.id, "Dr Stranger").await;
        let client = app.client(&org.id, Some(&t.id), "Casey").await;
        let s = app.session(&t, "Room").await;
        let sid = s["id"].as_str().unwrap();
        let path = format!("/api/sessions/{sid}");
        let patch = |token: String, body: Value| {
            let path = path.clone();
            let app = &app;
            async move {
                app.call(Method::PATCH, &path, Some(&token), Some(body))
                    .await
            }
        };
        let off = patch(t.token.clone(), json!({"waiting_room": false})).await;
        assert_eq!(off.expect(200)["waiting_room"], json!(false));
        assert_eq!(
            app.get(&path, Some(&t.token)).await.expect(200)["waiting_room"],
            json!(false)
        );
        assert!(app
            .audit_actions("session", sid)
            .await
            .contains(&"session.waiting_room.update".to_string()));
        // Another organization's therapist does not even see it; a client may not change it.
        patch(stranger.token.clone(), json!({"waiting_room": true}))
            .await
            .expect_err(404, "session_not_found");
        let refused = patch(client.token.clone(), json!({"waiting_room": true})).await;
        let status = refused.status.as_u16();
        assert!(status == 403 || status == 404, "{status}");
        // Bad bodies are clear errors.
        patch(t.token.clone(), json!({"waiting_room": "yes"}))
            .await
            .expect_err(400, "invalid_json");
        patch(t.token.clone(), json!({"wait": true}))
            .await
            .expect_err(400, "invalid_json");
        // Nothing waits here (no live room in this suite): listing is empty, admitting 404.
        let list = app.get(&waiting_path(sid), Some(&t.token)).await;
        assert_eq!(list.expect(200)["waiting"], json!([]));
        app.post(
            &format!("{}/nobody/admit", waiting_path(sid)),
            Some(&t.token),
            None,
        )
        .await
        .expect_err(404, "not_waiting");
        app.get(&waiting_path(sid), Some(&stranger.token))
            .await
            .expect_err(404, "session_not_found");
    }
);

both_dbs!(
    a_declined_person_stays_out_and_an_admitted_one_is_remembered,
    |app| async move {
        let org = app.org("Decide Clinic", true).await;
        let t = app.therapist(&org.id, "Dr Decide").await;
        let client = app.client(&org.id, Some(&t.id), "Casey").await;
        let s = app.session(&t, "Room").await;
        let sid = s["id"].as_str().unwrap().to_string();
        let path = format!("/api/sessions/{sid}/participants");
        let row = app
            .post(&path, Some(&client.token), None)
            .await
            .expect(201)
            .clone();
        let person = row["id"].as_str().unwrap().to_string();
        let session = app.store.session(&sid).await.unwrap().unwrap();
        let decider = Decider {
            subject: &t.id,
            role: "therapist",
        };
        decide(&app.store, decider, &session, &person, false)
            .await
            .unwrap();
        app.post(&path, Some(&client.token), None)
            .await
            .expect_err(403, "declined");
        assert!(app
            .audit_actions("participant", &person)
            .await
            .contains(&"session.waiting.decline".to_string()));
        // A later admit lifts it.
        decide(&app.store, decider, &session, &person, true)
            .await
            .unwrap();
        app.post(&path, Some(&client.token), None).await.expect(200);
        let stored = app.store.participant(&person).await.unwrap().unwrap();
        assert!(stored.admitted_at.is_some() && stored.declined_at.is_none());
        // A person of another session cannot be decided about through this one.
        let other = app.session(&t, "Other room").await;
        let other = app
            .store
            .session(other["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(decide(&app.store, decider, &other, &person, true)
            .await
            .is_err());
    }
);

both_dbs!(
    running_calls_continue_when_video_access_is_switched_off,
    |app| async move {
        let org = app.org("Resume Clinic", true).await;
        let t = app.therapist(&org.id, "Dr Resume").await;
        let in_call = app.client(&org.id, Some(&t.id), "In Call").await;
        let newcomer = app.client(&org.id, Some(&t.id), "Newcomer").await;
        let s = app.session(&t, "Room").await;
        let sid = s["id"].as_str().unwrap();
        let path = format!("/api/sessions/{sid}/participants");
        let row = app
            .post(&path, Some(&in_call.token), None)
            .await
            .expect(201)
            .clone();
        app.store
            .mark_participant_joined(row["id"].as_str().unwrap())
            .await
            .unwrap();
        app.set_therapist_video_db(&t.id, false).await;
        // The one in the running call may come back; a new join is refused.
        app.post(&path, Some(&in_call.token), None)
            .await
            .expect(200);
        app.post(&path, Some(&newcomer.token), None)
            .await
            .expect_err(403, "therapist_disabled");
    }
);
