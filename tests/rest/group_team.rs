//! A group session's team repaired while it waits for approval: a therapist who
//! declined is replaced or invited again, an invitation that was not accepted is
//! withdrawn, and the session is approved once every remaining invitation is
//! accepted.

use super::groups::{
    add_member, invitation_of, kinds_of, latest_of, proposal, propose, respond, setup, start_in,
};
use super::*;

fn invitations_path(session: &str) -> String {
    format!("/api/group-sessions/{session}/invitations")
}

async fn invite(app: &TestApp, who: &Person, session: &str, therapist: &Person) -> common::Resp {
    app.post(
        &invitations_path(session),
        Some(&who.token),
        Some(json!({"therapist_id": therapist.id})),
    )
    .await
}

async fn reinvite(app: &TestApp, who: &Person, session: &str, invitation: &str) -> common::Resp {
    app.post(
        &format!("{}/{invitation}/reinvite", invitations_path(session)),
        Some(&who.token),
        None,
    )
    .await
}

async fn withdraw(app: &TestApp, who: &Person, session: &str, invitation: &str) -> common::Resp {
    app.delete(
        &format!("{}/{invitation}", invitations_path(session)),
        Some(&who.token),
    )
    .await
}

fn invitation_for(team: &Value, therapist: &Person) -> Value {
    team["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["therapist_id"] == json!(therapist.id))
        .cloned()
        .unwrap_or(Value::Null)
}

both_dbs!(
    declined_therapist_is_replaced_then_approved,
    |app| async move {
        let fx = setup(&app, "Replace Clinic").await;
        let created = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
        let sid = created["session"]["id"].as_str().unwrap().to_string();
        respond(&app, &fx.t1, &invitation_of(&created, &fx.t1), "accept")
            .await
            .expect(200);
        let declined = invitation_of(&created, &fx.t2);
        respond(&app, &fx.t2, &declined, "decline")
            .await
            .expect(200);

        // A replacement from the community: invited and notified.
        let t3 = app.therapist(&fx.org.id, "Dr Three").await;
        add_member(&app, &fx.org, &fx.community, &t3, "member").await;
        let team = invite(&app, &fx.moderator, &sid, &t3).await;
        let team = team.expect(201).clone();
        assert_eq!(team["session_status"], "pending_approval");
        assert_eq!(invitation_for(&team, &t3)["status"], "pending");
        let n = latest_of(&app, &t3, "group_session_invitation").await;
        assert_eq!(n["payload"]["group_session_id"], json!(sid));
        assert_eq!(n["payload"]["reason"], "new");
        let t3_invitation = invitation_for(&team, &t3)["id"]
            .as_str()
            .unwrap()
            .to_string();

        // The proposal's checks: in the community, not invited twice.
        invite(&app, &fx.moderator, &sid, &t3)
            .await
            .expect_err(409, "already_invited");
        invite(&app, &fx.moderator, &sid, &fx.t2)
            .await
            .expect_err(409, "already_invited");
        let stranger = app.therapist(&fx.org.id, "Dr Elsewhere").await;
        invite(&app, &fx.moderator, &sid, &stranger)
            .await
            .expect_err(400, "therapist_not_in_community");
        app.post(
            &invitations_path(&sid),
            Some(&fx.moderator.token),
            Some(json!({"therapist_id": "  "})),
        )
        .await
        .expect_err(400, "therapists_required");
        // Only moderators and administrators; other organizations see nothing.
        invite(&app, &fx.m1, &sid, &stranger)
            .await
            .expect_err(403, "not_a_moderator");
        let other = app.org("Other Replace Clinic", true).await;
        invite(&app, &other.admin, &sid, &t3)
            .await
            .expect_err(404, "group_session_not_found");

        // The declined invitation is withdrawn; the session still waits for t3.
        let team = withdraw(&app, &fx.moderator, &sid, &declined).await;
        let team = team.expect(200).clone();
        assert_eq!(team["session_status"], "pending_approval");
        assert!(invitation_for(&team, &fx.t2).is_null());
        // t2's decline is withdrawn quietly: nothing to tell them.
        assert!(!kinds_of(&app, &fx.t2)
            .await
            .contains(&"group_session_invitation_withdrawn".to_string()));
        withdraw(&app, &fx.moderator, &sid, &declined)
            .await
            .expect_err(404, "invitation_not_found");

        // The replacement accepts: approved, and the community is told.
        let r = respond(&app, &t3, &t3_invitation, "accept").await;
        assert_eq!(r.expect(200)["session_status"], "approved");
        let n = latest_of(&app, &fx.m1, "group_session_approved").await;
        assert_eq!(n["payload"]["group_session_id"], json!(sid));
        // An approved team is not repaired (a new time asks it again).
        let t4 = app.therapist(&fx.org.id, "Dr Four").await;
        add_member(&app, &fx.org, &fx.community, &t4, "member").await;
        invite(&app, &fx.moderator, &sid, &t4)
            .await
            .expect_err(409, "session_already_approved");
        let audit = app
            .audit_actions("group_session_invitation", &t3_invitation)
            .await;
        assert_eq!(
            audit,
            vec![
                "group_session.invitation.create",
                "group_session.invitation.accept"
            ]
        );
        assert_eq!(
            app.audit_actions("group_session_invitation", &declined)
                .await
                .last()
                .map(String::as_str),
            Some("group_session.invitation.remove")
        );
    }
);

both_dbs!(decliner_is_invited_again, |app| async move {
    let fx = setup(&app, "Reinvite Clinic").await;
    let created = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1, &fx.t2])).await;
    let sid = created["session"]["id"].as_str().unwrap().to_string();
    let inv1 = invitation_of(&created, &fx.t1);
    let inv2 = invitation_of(&created, &fx.t2);
    respond(&app, &fx.t1, &inv1, "accept").await.expect(200);
    // Not declined (yet): nothing to re-send.
    reinvite(&app, &fx.moderator, &sid, &inv2)
        .await
        .expect_err(409, "invitation_not_declined");
    app.post(
        &format!("/api/group-sessions/therapist/invitations/{inv2}/respond"),
        Some(&fx.t2.token),
        Some(json!({"action": "decline", "message": "not that day"})),
    )
    .await
    .expect(200);

    let team = reinvite(&app, &fx.moderator, &sid, &inv2).await;
    let team = team.expect(200).clone();
    let again = invitation_for(&team, &fx.t2);
    assert_eq!(again["status"], "pending");
    assert!(again["responded_at"].is_null());
    assert!(again["message"].is_null());
    let n = latest_of(&app, &fx.t2, "group_session_invitation").await;
    assert_eq!(n["payload"]["reason"], "reinvited");
    assert_eq!(n["payload"]["invitation_id"], json!(inv2));
    reinvite(&app, &fx.moderator, &sid, &inv2)
        .await
        .expect_err(409, "invitation_not_declined");
    reinvite(&app, &fx.moderator, &sid, "nope")
        .await
        .expect_err(404, "invitation_not_found");
    reinvite(&app, &fx.t1, &sid, &inv2)
        .await
        .expect_err(403, "not_a_moderator");

    // This time t2 accepts: approved.
    let r = respond(&app, &fx.t2, &inv2, "accept").await;
    assert_eq!(r.expect(200)["session_status"], "approved");
    assert_eq!(
        app.audit_actions("group_session_invitation", &inv2).await,
        vec![
            "group_session.invitation.create",
            "group_session.invitation.decline",
            "group_session.invitation.reinvite",
            "group_session.invitation.accept"
        ]
    );
});

both_dbs!(withdrawing_invitations, |app| async move {
    let fx = setup(&app, "Withdraw Clinic").await;
    // A session keeps at least one invitation, and accepted ones stay.
    let solo = propose(&app, &fx, proposal(&fx, start_in(30), &[&fx.t1])).await;
    let solo_id = solo["session"]["id"].as_str().unwrap().to_string();
    let solo_inv = invitation_of(&solo, &fx.t1);
    respond(&app, &fx.t1, &solo_inv, "decline")
        .await
        .expect(200);
    withdraw(&app, &fx.moderator, &solo_id, &solo_inv)
        .await
        .expect_err(409, "last_invitation");

    let created = propose(&app, &fx, proposal(&fx, start_in(40), &[&fx.t1, &fx.t2])).await;
    let sid = created["session"]["id"].as_str().unwrap().to_string();
    let inv1 = invitation_of(&created, &fx.t1);
    let inv2 = invitation_of(&created, &fx.t2);
    respond(&app, &fx.t1, &inv1, "accept").await.expect(200);
    withdraw(&app, &fx.moderator, &sid, &inv1)
        .await
        .expect_err(409, "invitation_accepted");
    // Withdrawing t2's pending invitation: t2 is told, and with t1's acceptance the
    // session is approved.
    let team = withdraw(&app, &fx.org.admin, &sid, &inv2).await;
    let team = team.expect(200).clone();
    assert_eq!(team["session_status"], "approved");
    assert_eq!(team["session"]["status"], "approved");
    assert_eq!(team["invitations"].as_array().unwrap().len(), 1);
    let n = latest_of(&app, &fx.t2, "group_session_invitation_withdrawn").await;
    assert_eq!(n["payload"]["group_session_id"], json!(sid));
    // t2's invitation is gone for t2 too.
    app.post(
        &format!("/api/group-sessions/therapist/invitations/{inv2}/respond"),
        Some(&fx.t2.token),
        Some(json!({"action": "accept"})),
    )
    .await
    .expect_err(404, "invitation_not_found");
    // A cancelled session's team is not repaired.
    app.delete(
        &format!("/api/group-sessions/{solo_id}"),
        Some(&fx.moderator.token),
    )
    .await
    .expect(200);
    reinvite(&app, &fx.moderator, &solo_id, &solo_inv)
        .await
        .expect_err(409, "session_cancelled");
});
