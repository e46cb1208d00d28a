//! Group therapy sessions: the therapists' answers to their invitations (accepting
//! all approves the session, a decline notifies the moderator, a wrong invitation
//! fails) and the therapist's schedule checked on acceptance. Fixtures:
//! [`super::groups`].

use super::groups::{
    approved_session, book_one_on_one, invitation_of, join, kinds_of, latest_of, proposal, propose,
    respond, respond_path, setup, start_in, HOUR_MS,
};
use super::*;

// ----------------------------------------------------------------------------------
// 2. Invitation responses
// ----------------------------------------------------------------------------------

both_dbs!(accepting_all_invitations_approves, |app| async move {
    let fx = setup(&app, "Approve Clinic").await;
    let created = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let sid = created["session"]["id"].as_str().unwrap().to_string();
    let inv1 = invitation_of(&created, &fx.t1);
    let inv2 = invitation_of(&created, &fx.t2);

    // First acceptance: still pending.
    let r = respond(&app, &fx.t1, &inv1, "accept").await;
    let r = r.expect(200);
    assert_eq!(r["invitation"]["status"], "accepted");
    assert_eq!(r["session_status"], "pending_approval");
    // Members cannot join yet: 400, the session is not open for joining.
    join(&app, &fx.m1, &sid)
        .await
        .expect_err(400, "session_not_open");
    // Answering twice is refused.
    respond(&app, &fx.t1, &inv1, "decline")
        .await
        .expect_err(409, "invitation_already_answered");

    // Second acceptance: approved.
    let r = respond(&app, &fx.t2, &inv2, "ACCEPT").await;
    assert_eq!(r.expect(200)["session_status"], "approved");
    let detail = app
        .get(&format!("/api/group-sessions/{sid}"), Some(&fx.m1.token))
        .await;
    let detail = detail.expect(200);
    assert_eq!(detail["session"]["status"], "approved");
    assert!(detail["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "accepted"));

    // Notifications: moderator got two acceptances and the approval; members the approval.
    assert_eq!(
        kinds_of(&app, &fx.moderator).await,
        vec![
            "group_session_approved",
            "group_session_invitation_accepted",
            "group_session_invitation_accepted",
        ]
    );
    for m in [&fx.m1, &fx.m2] {
        assert_eq!(kinds_of(&app, m).await, vec!["group_session_approved"]);
    }
    assert_eq!(
        kinds_of(&app, &fx.t2).await,
        vec!["group_session_approved", "group_session_invitation"]
    );
    // Members now see it; accepted therapists list it as theirs.
    let list = app
        .get("/api/group-sessions?upcoming=true", Some(&fx.m1.token))
        .await;
    assert_eq!(list.expect(200)["sessions"][0]["id"], json!(sid));
    let theirs = app
        .get("/api/group-sessions/therapist/sessions", Some(&fx.t1.token))
        .await;
    assert_eq!(theirs.expect(200)["sessions"][0]["id"], json!(sid));

    // Audit of the responses and the approval.
    assert_eq!(
        app.audit_actions("group_session_invitation", &inv1).await,
        vec![
            "group_session.invitation.create",
            "group_session.invitation.accept"
        ]
    );
    assert_eq!(
        app.audit_actions("group_session", &sid).await,
        vec!["group_session.create", "group_session.approve"]
    );
});

both_dbs!(declining_notifies_the_moderator, |app| async move {
    let fx = setup(&app, "Decline Clinic").await;
    let created = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let sid = created["session"]["id"].as_str().unwrap().to_string();
    let inv2 = invitation_of(&created, &fx.t2);
    respond(&app, &fx.t1, &invitation_of(&created, &fx.t1), "accept")
        .await
        .expect(200);
    let r = app
        .post(
            &respond_path(&inv2),
            Some(&fx.t2.token),
            Some(json!({"action": "decline", "message": "  On leave that week  "})),
        )
        .await;
    let r = r.expect(200);
    assert_eq!(r["invitation"]["status"], "declined");
    assert_eq!(r["invitation"]["message"], "On leave that week");
    assert_eq!(r["session_status"], "pending_approval");

    let n = latest_of(&app, &fx.moderator, "group_session_invitation_declined").await;
    assert_eq!(n["read"], false);
    assert_eq!(n["payload"]["message"], "On leave that week");
    assert_eq!(n["payload"]["therapist_id"], json!(fx.t2.id));
    assert!(n["body"].as_str().unwrap().contains("On leave that week"));
    // The moderator sees the message; members do not.
    let detail = app
        .get(
            &format!("/api/group-sessions/{sid}"),
            Some(&fx.moderator.token),
        )
        .await;
    let declined = detail.expect(200)["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "declined")
        .unwrap()
        .clone();
    assert_eq!(declined["message"], "On leave that week");
    assert_eq!(
        app.audit_actions("group_session_invitation", &inv2).await,
        vec![
            "group_session.invitation.create",
            "group_session.invitation.decline"
        ]
    );
    let audit = app
        .store
        .audit_for_target("group_session_invitation", &inv2)
        .await
        .unwrap();
    assert_eq!(audit[0].actor_id, fx.moderator.id);
    assert_eq!(audit[1].actor_id, fx.t2.id);
    let after = audit[1].after_state.as_deref().unwrap();
    assert!(after.contains("declined"));
    // The therapist's free text stays out of the audit log.
    assert!(!after.contains("On leave"), "{after}");
    // Never approved with a decline.
    let s = app.store.group_session(&sid).await.unwrap().unwrap();
    assert_eq!(s.status, "pending_approval");
});

both_dbs!(responding_to_wrong_invitation_fails, |app| async move {
    let fx = setup(&app, "Wrong Invite Clinic").await;
    let created = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1])).await;
    let inv1 = invitation_of(&created, &fx.t1);
    // Another therapist's invitation, an unknown one.
    respond(&app, &fx.t2, &inv1, "accept")
        .await
        .expect_err(404, "invitation_not_found");
    respond(&app, &fx.t1, "no-such-invitation", "accept")
        .await
        .expect_err(404, "invitation_not_found");
    // A therapist of another organization.
    let other = app.org("Other Org", true).await;
    let foreign = app.therapist(&other.id, "Dr Foreign").await;
    respond(&app, &foreign, &inv1, "accept")
        .await
        .expect_err(404, "invitation_not_found");
    // Not a therapist at all.
    respond(&app, &fx.m1, &inv1, "accept")
        .await
        .expect_err(403, "forbidden");
    respond(&app, &fx.moderator, &inv1, "accept")
        .await
        .expect_err(403, "forbidden");
    app.get(
        "/api/group-sessions/therapist/invitations",
        Some(&fx.m1.token),
    )
    .await
    .expect_err(403, "forbidden");
    // Bad bodies.
    respond(&app, &fx.t1, &inv1, "maybe")
        .await
        .expect_err(400, "invalid_action");
    app.post(
        &respond_path(&inv1),
        Some(&fx.t1.token),
        Some(json!({"action": "decline", "message": "m".repeat(1001)})),
    )
    .await
    .expect_err(400, "invalid_message");
    app.get(
        "/api/group-sessions/therapist/invitations?status=maybe",
        Some(&fx.t1.token),
    )
    .await
    .expect_err(400, "invalid_status");
    // Still pending after all that.
    let inv = app.store.group_invitation(&inv1).await.unwrap().unwrap();
    assert_eq!(inv.status, "pending");
    // Responding to a cancelled session's invitation.
    let sid = created["session"]["id"].as_str().unwrap();
    app.delete(
        &format!("/api/group-sessions/{sid}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    respond(&app, &fx.t1, &inv1, "accept")
        .await
        .expect_err(409, "session_cancelled");
});

// ----------------------------------------------------------------------------------
// 4. Availability (acceptance)
// ----------------------------------------------------------------------------------

both_dbs!(acceptance_checks_the_therapist_schedule, |app| async move {
    let fx = setup(&app, "Availability Clinic").await;
    let start = start_in(50);
    // t1 co-leads an approved session 10:00-11:00 (relative).
    approved_session(&app, &fx, proposal(&fx, start, &[&fx.t1, &fx.t2])).await;

    // Overlapping group session: refused with 409 schedule_conflict.
    let overlapping = propose(&app, &fx, proposal(&fx, start + 30 * 60_000, &[&fx.t1])).await;
    let inv = invitation_of(&overlapping, &fx.t1);
    let refused = respond(&app, &fx.t1, &inv, "accept").await;
    refused.expect_err(409, "schedule_conflict");
    assert_eq!(
        app.store
            .group_invitation(&inv)
            .await
            .unwrap()
            .unwrap()
            .status,
        "pending"
    );
    // Declining still works.
    respond(&app, &fx.t1, &inv, "decline").await.expect(200);

    // Edge: a session starting exactly when the other ends does not conflict.
    let adjacent = propose(&app, &fx, proposal(&fx, start + HOUR_MS, &[&fx.t1])).await;
    let r = respond(&app, &fx.t1, &invitation_of(&adjacent, &fx.t1), "accept").await;
    assert_eq!(r.expect(200)["session_status"], "approved");
    // ...nor one ending exactly when it starts (start - 60 min, 60 minutes long).
    let before = propose(&app, &fx, proposal(&fx, start - HOUR_MS, &[&fx.t1])).await;
    respond(&app, &fx.t1, &invitation_of(&before, &fx.t1), "accept")
        .await
        .expect(200);

    // A 1:1 booked session of t1 also conflicts.
    let later = start + 10 * HOUR_MS;
    book_one_on_one(&app, &fx, &fx.m1, later, later + HOUR_MS).await;
    let clash = propose(&app, &fx, proposal(&fx, later + 15 * 60_000, &[&fx.t1])).await;
    respond(&app, &fx.t1, &invitation_of(&clash, &fx.t1), "accept")
        .await
        .expect_err(409, "schedule_conflict");
    // A cancelled group session frees the slot: t2 declines nothing, t1's accepted
    // "before" session is cancelled and a new one at that time can be accepted.
    let before_id = before["session"]["id"].as_str().unwrap();
    app.delete(
        &format!("/api/group-sessions/{before_id}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    let again = propose(&app, &fx, proposal(&fx, start - HOUR_MS, &[&fx.t1])).await;
    respond(&app, &fx.t1, &invitation_of(&again, &fx.t1), "accept")
        .await
        .expect(200);
});
