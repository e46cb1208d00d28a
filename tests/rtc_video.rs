//! Live video through the real server: REST + `/rtc` signaling + SFU in-process on
//! 127.0.0.1, clients are `theraroom_load::Participant`s (webrtc-rs peer connections
//! speaking the public protocol). Run inside a private network namespace:
//!
//! ```sh
//! cargo test -p theraroom --test rtc_video --no-run
//! unshare -n sh -c 'ip link set lo up; cargo test -p theraroom --test rtc_video --offline'
//! ```

mod rtc_common;

use std::time::Duration;

use rtc_common::{
    announced, eventually, eventually_async, init_tracing, join, measure, receiving_from, refused,
    track_from, Server, MIN_DELIVERY, RATE, SERIAL,
};
use serde_json::json;
use theraroom_load::{Kind, Participant, Publish, ServerMessage};

/// Upper bound of every test.
const TEST_LIMIT: Duration = Duration::from_secs(120);
/// How long media may take to flow after joining.
const MEDIA_LIMIT: Duration = Duration::from_secs(20);
/// Length of a measured window.
const WINDOW: Duration = Duration::from_secs(3);
/// How long a signaling event may take.
const EVENT_LIMIT: Duration = Duration::from_secs(10);

/// Starts media on both and waits until each receives both tracks of the other.
async fn media_both_ways(a: &Participant, b: &Participant) {
    a.start_media(RATE);
    b.start_media(RATE);
    let flowing = eventually(MEDIA_LIMIT, || {
        receiving_from(a, b.participant_id()) && receiving_from(b, a.participant_id())
    })
    .await;
    assert!(
        flowing,
        "media did not flow both ways: a received {:?}, b received {:?}, a pc {:?}/{:?}, b pc {:?}/{:?}, errors {:?} {:?}",
        a.received(),
        b.received(),
        a.publisher_state(),
        a.subscriber_state(),
        b.publisher_state(),
        b.subscriber_state(),
        a.negotiation_errors(),
        b.negotiation_errors()
    );
}

/// Measures both directions and asserts the delivered fraction of every track.
async fn assert_delivery(server: &Server, a: &Participant, b: &Participant) {
    for d in measure(&[(a, b), (b, a)], WINDOW).await {
        assert!(d.sent > 0, "{}: nothing sent", d.label);
        assert!(
            d.ratio() >= MIN_DELIVERY,
            "{}: only {}/{} packets arrived\nSFU {:?}\nreceived by {}: {:#?}\nreceived by {}: {:#?}\nevents of {}: {:?}\nevents of {}: {:?}",
            d.label,
            d.received,
            d.sent,
            server.sfu.stats(),
            a.participant_id(),
            a.received(),
            b.participant_id(),
            b.received(),
            a.participant_id(),
            a.event_log(),
            b.participant_id(),
            b.event_log()
        );
    }
}

fn is_left(m: &ServerMessage, who: &str, why: &str) -> bool {
    matches!(m, ServerMessage::ParticipantLeft { participant_id, reason } if participant_id == who && reason == why)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn therapist_and_guest_exchange_audio_and_video() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let (therapist_id, therapist_token) = server.therapist();
        let session = server.session(therapist_token, 2).await;
        let guest = server.guest(&session.share_token, "Guest Grace").await;

        let t = join(&server, &session.id, therapist_token, Publish::BOTH).await.expect("therapist joins");
        let g = join(&server, &session.id, &guest.token, Publish::BOTH).await.expect("guest joins");
        assert!(!t.resumed() && !g.resumed());
        assert_ne!(t.participant_id(), g.participant_id());
        let others: Vec<&str> = g.joined().participants.iter().map(|p| p.participant_id.as_str()).collect();
        assert_eq!(others, [t.participant_id()], "the guest sees the therapist in `joined`");
        assert_eq!(g.joined().session.max_participants, 2);
        let mut t_events = t.events();
        let seen = t_events
            .wait_for(EVENT_LIMIT, |m| {
                matches!(m, ServerMessage::ParticipantJoined { participant }
                    if participant.participant_id == g.participant_id() && participant.is_guest && participant.display_name == "Guest Grace")
            })
            .await;
        assert!(seen.is_some(), "therapist was not told the guest joined: {:?}", t.event_log());

        media_both_ways(&t, &g).await;
        // MediaStream id = publisher's participant id; track id = the announced one.
        for (sub, publisher) in [(&t, &g), (&g, &t)] {
            let ann = announced(sub, publisher.participant_id());
            for kind in [Kind::Video, Kind::Audio] {
                let rx = track_from(sub, publisher.participant_id(), kind);
                assert_eq!(rx.stream_id, publisher.participant_id());
                assert!(
                    ann.contains(&(rx.track_id.clone(), kind)),
                    "{} received {} but saw {:?} announced",
                    sub.participant_id(),
                    rx.track_id,
                    ann
                );
            }
            assert!(
                sub.received_from(sub.participant_id()).is_empty(),
                "nobody receives their own media back"
            );
        }
        assert_delivery(&server, &t, &g).await;
        assert!(t.negotiation_errors().is_empty() && g.negotiation_errors().is_empty());

        // Database: both rows active while in the room.
        let rows = server.rows(&session.id).await;
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.is_active()));
        assert!(rows.iter().any(|r| r.user_id.as_deref() == Some(therapist_id)));
        assert!(rows.iter().any(|r| r.guest_id.as_deref() == Some(guest.guest_id.as_str())));

        // The guest leaves: acknowledged, closed normally, the therapist is told.
        let close = g.leave().await.expect("leave");
        assert_eq!((close.code, close.reason.as_str()), (1000, "left"));
        assert!(g.event_log().contains(&ServerMessage::Left));
        let left = t_events.wait_for(EVENT_LIMIT, |m| is_left(m, g.participant_id(), "left")).await;
        assert!(left.is_some(), "therapist events: {:?}", t.event_log());
        let close = t.leave().await.expect("leave");
        assert_eq!((close.code, close.reason.as_str()), (1000, "left"));
        let sid = session.id.clone();
        let all_closed = eventually_async(EVENT_LIMIT, || async {
            server.rows(&sid).await.iter().all(|r| !r.is_active() && r.left_at.is_some())
        })
        .await;
        assert!(all_closed, "rows after leaving: {:?}", server.rows(&session.id).await);
        server.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_participant_is_refused_when_the_room_is_full() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let (_, therapist_token) = server.therapist();
        let session = server.session(therapist_token, 2).await;
        let g1 = server.guest(&session.share_token, "First").await;
        let g2 = server.guest(&session.share_token, "Second").await;

        let t = join(&server, &session.id, therapist_token, Publish::NOTHING).await.expect("therapist joins");
        let a = join(&server, &session.id, &g1.token, Publish::NOTHING).await.expect("first guest joins");
        let (code, close) = refused(&server, &session.id, &g2.token).await;
        assert_eq!(code, "room_full");
        let close = close.expect("closing frame after room_full");
        assert_eq!((close.code, close.reason.as_str()), (4409, "room_full"));

        // The two inside are untouched and nobody was told about the refused guest.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(t.close_info().is_none() && a.close_info().is_none());
        assert!(!t
            .event_log()
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.participant_id != a.participant_id())));
        let active = server.rows(&session.id).await.into_iter().filter(|r| r.is_active()).count();
        assert_eq!(active, 2, "the refused guest is not active");

        // Once someone leaves, the seat is free again.
        a.leave().await.expect("leave");
        let b = join(&server, &session.id, &g2.token, Publish::NOTHING).await.expect("second guest joins now");
        b.leave().await.expect("leave");
        t.leave().await.expect("leave");
        server.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_token_of_one_session_cannot_join_another() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let (_, therapist_token) = server.therapist();
        let x = server.session(therapist_token, 2).await;
        let y = server.session(therapist_token, 2).await;
        let guest_x = server.guest(&x.share_token, "Guest of X").await;

        let (code, close) = refused(&server, &y.id, &guest_x.token).await;
        assert_eq!(code, "forbidden");
        let close = close.expect("closing frame after forbidden");
        assert_eq!((close.code, close.reason.as_str()), (4403, "forbidden"));
        assert!(
            server.rows(&y.id).await.is_empty(),
            "no row in Y for X's guest"
        );

        // The same token does work for X.
        let p = join(&server, &x.id, &guest_x.token, Publish::NOTHING)
            .await
            .expect("joins X");
        p.leave().await.expect("leave");
        server.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_therapist_or_organization_refuses_joins() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let org = server.demo.organization_id.clone();
        let admin = server.demo.org_admin.token.clone();
        let therapist_id = server.demo.therapists[1].id.clone();
        let therapist_token = server.demo.therapists[1].token.clone();
        let session = server.session(&therapist_token, 3).await;
        let early = server.guest(&session.share_token, "Early").await;
        let late = server.guest(&session.share_token, "Late").await;
        // A call in progress before the switch.
        let inside = join(&server, &session.id, &early.token, Publish::NOTHING)
            .await
            .expect("guest joins");

        let (status, body) = server
            .call(
                "PUT",
                &format!("/api/organizations/{org}/therapists/{therapist_id}/video-settings"),
                &admin,
                Some(json!({"video_sessions_enabled": false})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        for token in [&late.token, &therapist_token] {
            let (code, close) = refused(&server, &session.id, token).await;
            assert_eq!(code, "therapist_disabled");
            let close = close.expect("closing frame");
            assert_eq!(
                (close.code, close.reason.as_str()),
                (4403, "therapist_disabled")
            );
        }

        // Therapist back on, organization off: the organization level wins.
        let (status, body) = server
            .call(
                "PUT",
                &format!("/api/organizations/{org}/therapists/{therapist_id}/video-settings"),
                &admin,
                Some(json!({"video_sessions_enabled": true})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server
            .call(
                "PUT",
                &format!("/api/organizations/{org}/video-settings"),
                &admin,
                Some(json!({"video_sessions_enabled": false})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        for token in [&late.token, &therapist_token] {
            let (code, close) = refused(&server, &session.id, token).await;
            assert_eq!(code, "organization_disabled");
            let close = close.expect("closing frame");
            assert_eq!(
                (close.code, close.reason.as_str()),
                (4403, "organization_disabled")
            );
        }

        // Running calls continue (PROTOCOL.md): the guest inside was not disconnected.
        assert!(inside.close_info().is_none(), "{:?}", inside.close_info());
        assert!(!inside.event_log().iter().any(|m| matches!(
            m,
            ServerMessage::Removed { .. } | ServerMessage::SessionEnded { .. }
        )));

        // Switched back on: joins work again.
        let (status, _) = server
            .call(
                "PUT",
                &format!("/api/organizations/{org}/video-settings"),
                &admin,
                Some(json!({"video_sessions_enabled": true})),
            )
            .await;
        assert_eq!(status, 200);
        let t = join(&server, &session.id, &therapist_token, Publish::NOTHING)
            .await
            .expect("therapist joins again");
        t.leave().await.expect("leave");
        inside.leave().await.expect("leave");
        server.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_and_session_end_disconnect_and_close_rows() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let (_, therapist_token) = server.therapist();
        let client_token = server.demo.client.token.clone();
        let session = server.session(therapist_token, 3).await;
        let g = server.guest(&session.share_token, "To Be Removed").await;

        let t = join(&server, &session.id, therapist_token, Publish::BOTH).await.expect("therapist joins");
        let guest = join(&server, &session.id, &g.token, Publish::BOTH).await.expect("guest joins");
        media_both_ways(&t, &guest).await;
        let c = join(&server, &session.id, &client_token, Publish::NOTHING).await.expect("client joins");
        let mut t_events = t.events();
        let mut c_events = c.events();

        // Removal over REST by the therapist.
        let gid = guest.participant_id().to_owned();
        let (status, body) = server
            .call("DELETE", &format!("/api/sessions/{}/participants/{gid}", session.id), therapist_token, None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["removed"].as_bool(), body["is_active"].as_bool()), (Some(true), Some(false)));
        let close = tokio::time::timeout(EVENT_LIMIT, guest.wait_closed()).await.expect("removed guest closed");
        assert_eq!((close.code, close.reason.as_str()), (1000, "removed"));
        assert!(
            guest.event_log().iter().any(|m| matches!(m, ServerMessage::Removed { .. })),
            "{:?}",
            guest.event_log()
        );
        for (who, events) in [(&t, &mut t_events), (&c, &mut c_events)] {
            let left = events.wait_for(EVENT_LIMIT, |m| is_left(m, &gid, "removed")).await;
            assert!(left.is_some(), "{} not told of the removal: {:?}", who.participant_id(), who.event_log());
        }
        let row = server.store.participant(&gid).await.expect("db").expect("row");
        assert!(!row.is_active() && row.removed() && row.left_at.is_some(), "{row:?}");
        guest.close().await;
        // A removed guest may not come back.
        let (code, close) = refused(&server, &session.id, &g.token).await;
        assert_eq!(code, "removed");
        assert_eq!(close.map(|c| c.code), Some(4403));

        // Session end over REST: everyone is told and disconnected.
        let (status, body) = server
            .call("POST", &format!("/api/sessions/{}/end", session.id), therapist_token, None)
            .await;
        assert_eq!(status, 200, "{body}");
        for p in [&t, &c] {
            let close = tokio::time::timeout(EVENT_LIMIT, p.wait_closed()).await.expect("closed after end");
            assert_eq!((close.code, close.reason.as_str()), (1000, "session_ended"));
            assert!(
                p.event_log()
                    .iter()
                    .any(|m| matches!(m, ServerMessage::SessionEnded { reason } if reason == "ended_by_therapist")),
                "{:?}",
                p.event_log()
            );
        }
        let sid = session.id.clone();
        let closed = eventually_async(EVENT_LIMIT, || async {
            let rows = server.rows(&sid).await;
            rows.len() == 3 && rows.iter().all(|r| !r.is_active() && r.left_at.is_some())
        })
        .await;
        assert!(closed, "rows after the end: {:?}", server.rows(&session.id).await);
        // Same answer over REST.
        let (status, body) = server
            .call("GET", &format!("/api/sessions/{}/participants", session.id), therapist_token, None)
            .await;
        assert_eq!(status, 200);
        let rows = body["participants"].as_array().expect("participants").clone();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r["is_active"] == json!(false) && r["left_at"].is_string()), "{rows:?}");
        // An ended session cannot be entered.
        let (code, close) = refused(&server, &session.id, therapist_token).await;
        assert_eq!(code, "session_ended");
        assert_eq!(close.map(|c| c.code), Some(4410));
        t.close().await;
        c.close().await;
        server.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_resumes_the_same_participant_and_media_flows_again() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let (_, therapist_token) = server.therapist();
        let session = server.session(therapist_token, 2).await;
        let g = server.guest(&session.share_token, "Reloader").await;

        let t = join(&server, &session.id, therapist_token, Publish::BOTH).await.expect("therapist joins");
        let before = join(&server, &session.id, &g.token, Publish::BOTH).await.expect("guest joins");
        media_both_ways(&t, &before).await;
        let gid = before.participant_id().to_owned();
        let old_video = track_from(&t, &gid, Kind::Video).track_id;
        let old_tracks: Vec<String> = t.received_from(&gid).into_iter().map(|r| r.track_id).collect();
        let mut t_events = t.events();

        // The page reloads: same guest token, new socket, while the old one is still open.
        let after = join(&server, &session.id, &g.token, Publish::BOTH).await.expect("guest rejoins");
        assert!(after.resumed(), "joined.resumed");
        assert_eq!(after.participant_id(), gid, "same participant id");
        let old_close = tokio::time::timeout(EVENT_LIMIT, before.wait_closed()).await.expect("old socket closed");
        assert_eq!((old_close.code, old_close.reason.as_str()), (4409, "replaced"));
        assert!(before
            .event_log()
            .iter()
            .any(|m| matches!(m, ServerMessage::Error { code, fatal: true, .. } if code == "replaced")));
        before.close().await;

        // Still exactly one row for the guest, active.
        let rows = server.rows(&session.id).await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        let guest_rows: Vec<_> = rows.iter().filter(|r| r.guest_id.as_deref() == Some(g.guest_id.as_str())).collect();
        assert_eq!(guest_rows.len(), 1);
        assert_eq!(guest_rows[0].id, gid);
        assert!(guest_rows[0].is_active());

        // Media flows again both ways, on new tracks.
        after.start_media(rtc_common::RATE);
        t.start_media(rtc_common::RATE);
        let flowing = eventually(MEDIA_LIMIT, || {
            let new_tracks: Vec<_> = t
                .received_from(&gid)
                .into_iter()
                .filter(|r| !old_tracks.contains(&r.track_id) && r.unique > 0)
                .collect();
            receiving_from(&after, t.participant_id())
                && [Kind::Audio, Kind::Video].iter().all(|k| new_tracks.iter().any(|r| r.kind == *k))
        })
        .await;
        assert!(flowing, "after reload: therapist got {:?}, guest got {:?}", t.received(), after.received());
        for old in &old_tracks {
            let rx = t.received_track(old).expect("old track known");
            assert!(rx.ended, "old track {old} still live after track_unpublished");
        }
        assert_delivery(&server, &t, &after).await;
        // The therapist saw the old tracks go and new ones come, never a leave.
        let log = t.event_log();
        assert!(log
            .iter()
            .any(|m| matches!(m, ServerMessage::TrackUnpublished { participant_id, track_id } if *participant_id == gid && *track_id == old_video)));
        assert!(!log.iter().any(|m| matches!(m, ServerMessage::ParticipantLeft { .. })), "{log:?}");
        assert!(announced(&t, &gid).len() >= 4, "two tracks announced per join");

        // A dropped socket (no leave): reconnecting, then gone after the grace period.
        after.close().await;
        let rec = t_events
            .wait_for(EVENT_LIMIT, |m| matches!(m, ServerMessage::ParticipantReconnecting { participant_id } if *participant_id == gid))
            .await;
        assert!(rec.is_some(), "{:?}", t.event_log());
        let gone = t_events
            .wait_for(rtc_common::GRACE + EVENT_LIMIT, |m| is_left(m, &gid, "disconnected"))
            .await;
        assert!(gone.is_some(), "{:?}", t.event_log());
        t.leave().await.expect("leave");
        let sid = session.id.clone();
        let closed = eventually_async(EVENT_LIMIT, || async {
            server.rows(&sid).await.iter().all(|r| !r.is_active() && r.left_at.is_some())
        })
        .await;
        assert!(closed, "rows at the end: {:?}", server.rows(&session.id).await);
        server.stop().await;
    })
    .await
    .expect("test timed out");
}
