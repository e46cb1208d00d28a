//! End-to-end media tests: in-process SFU, webrtc-rs clients on 127.0.0.1.
//! Run inside a private network namespace (see sfu/README.md).

mod common;

use std::time::Duration;

use common::{init_tracing, measure, receiving_from, wait_until, warm_up, TestClient, FIREFOX_PTS};
use sfu::{MediaKind, Sfu, SfuConfig, SfuEvent, SfuStats};

/// Packets per track in the measured phase.
const COUNT: u32 = 300;
/// Pace of the measured phase (one video + one audio packet per publisher per tick).
const PACE: Duration = Duration::from_millis(5);
/// Minimum delivered fraction.
const MIN_DELIVERY: f64 = 0.90;

/// The media tests share two cores: run them one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn delivery(sub: &TestClient, track_id: &str) -> f64 {
    sub.received.measured(track_id) as f64 / f64::from(COUNT)
}

fn report(label: &str, sub: &TestClient, track_id: &str) -> f64 {
    let d = delivery(sub, track_id);
    if let Some(rx) = sub.received.snapshot().get(track_id) {
        let missing: Vec<u32> = (0..COUNT).filter(|i| !rx.measured.contains(i)).collect();
        if !missing.is_empty() {
            eprintln!(
                "[delivery] {label}: {} missing indices of {track_id}: {missing:?}",
                sub.id
            );
        }
    }
    eprintln!(
        "[delivery] {label}: {} received {}/{} measured packets of {track_id} ({:.1}%)",
        sub.id,
        sub.received.measured(track_id),
        COUNT,
        d * 100.0
    );
    d
}

/// Announced (track_id, kind) of `publisher` as seen by `observer`, video first.
fn announced_ids(observer: &TestClient, publisher: &str) -> (String, String) {
    let ann = observer.announced(publisher);
    let video = ann
        .iter()
        .find(|(_, k, _)| *k == MediaKind::Video)
        .unwrap_or_else(|| panic!("{} saw no video TrackPublished of {publisher}", observer.id));
    let audio = ann
        .iter()
        .find(|(_, k, _)| *k == MediaKind::Audio)
        .unwrap_or_else(|| panic!("{} saw no audio TrackPublished of {publisher}", observer.id));
    assert_eq!(video.2, publisher, "stream_id announced = publisher id");
    assert_eq!(audio.2, publisher);
    (video.0.clone(), audio.0.clone())
}

fn zero_gauges(s: &SfuStats) -> bool {
    s.participants == 0 && s.published_tracks == 0 && s.forwarded_tracks == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_exchange_audio_and_video() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(90), async {
        let sfu = Sfu::new(SfuConfig::default()).unwrap();
        let room = sfu.open_room("r1");
        let a = TestClient::join(&room, "alice", true, true).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !a.events()
                .iter()
                .any(|e| matches!(e, SfuEvent::SubscriberOffer { .. })),
            "no subscriber offer while there is nothing to subscribe to"
        );
        // Bob numbers his payload types like Firefox (VP8 120, Opus 109): the SFU must
        // rewrite them per leg.
        let b = TestClient::join_with(&room, "bob", true, true, FIREFOX_PTS).await;

        let mut senders = warm_up(&[&a, &b], || {
            receiving_from(&a, "bob") && receiving_from(&b, "alice")
        })
        .await;
        // The publisher is told about its own tracks too.
        assert_eq!(a.announced("alice").len(), 2);
        let (av, aa) = announced_ids(&b, "alice");
        let (bv, ba) = announced_ids(&a, "bob");
        assert_eq!(av, "alice-cam", "publisher's own track id is kept");
        assert_eq!(ba, "bob-mic");

        measure(&mut senders, &[&a, &b], &[&a, &b], COUNT, PACE).await;

        eprintln!("[stats] {:?}", sfu.stats());
        for (sub, t) in [(&a, &bv), (&a, &ba), (&b, &av), (&b, &aa)] {
            let d = report("two-party", sub, t);
            assert!(d >= MIN_DELIVERY, "{} got {:.1}% of {t}", sub.id, d * 100.0);
        }
        // MediaStream id = publisher's participant id, track id = announced id.
        let got_a = a.received.snapshot();
        for t in [&bv, &ba] {
            let rx = got_a.get(t).expect("alice received bob's track");
            assert_eq!(rx.stream_id, "bob");
            assert_eq!(&rx.track_id, t);
            assert_eq!(rx.ssrcs.len(), 1, "one SSRC per leg");
        }
        assert_eq!(got_a[&bv].payload_types, std::collections::HashSet::from([96u8]), "bob's VP8 120 rewritten to 96");
        assert_eq!(got_a[&ba].payload_types, std::collections::HashSet::from([111u8]), "bob's Opus 109 rewritten to 111");
        let got_b = b.received.snapshot();
        assert_eq!(got_b.get(&av).unwrap().stream_id, "alice");
        assert_eq!(got_b.get(&aa).unwrap().stream_id, "alice");
        assert!(!got_a.contains_key(&av), "no track is sent back to its publisher");
        assert!(a.events().contains(&SfuEvent::MediaFlowing));
        assert!(b.events().contains(&SfuEvent::MediaFlowing));

        let s = sfu.stats();
        eprintln!("[stats] {s:?}");
        assert_eq!((s.rooms, s.participants, s.published_tracks, s.forwarded_tracks), (1, 2, 4, 4));
        assert!(s.forwarded_packets >= u64::from(COUNT) * 4);
        assert!(s.keyframe_requests >= 1, "leg start must request a keyframe");

        // Bob leaves: Alice is told and gets a new subscriber offer after that.
        let offers_before = a
            .events()
            .iter()
            .filter(|e| matches!(e, SfuEvent::SubscriberOffer { .. }))
            .count();
        b.participant.close().await;
        let ok = wait_until(Duration::from_secs(10), || {
            let ev = a.events();
            let unpub: Vec<usize> = ev
                .iter()
                .enumerate()
                .filter(|(_, e)| matches!(e, SfuEvent::TrackUnpublished { participant_id, .. } if participant_id == "bob"))
                .map(|(i, _)| i)
                .collect();
            let last_offer = ev
                .iter()
                .rposition(|e| matches!(e, SfuEvent::SubscriberOffer { .. }));
            let offers = ev
                .iter()
                .filter(|e| matches!(e, SfuEvent::SubscriberOffer { .. }))
                .count();
            unpub.len() == 2
                && offers > offers_before
                && last_offer.is_some_and(|o| unpub.iter().all(|u| *u < o))
        })
        .await;
        assert!(ok, "alice events after bob left: {:?}", a.events().iter().filter(|e| !matches!(e, SfuEvent::SubscriberOffer{..})).collect::<Vec<_>>());
        let unpublished: Vec<String> = a
            .events()
            .into_iter()
            .filter_map(|e| match e {
                SfuEvent::TrackUnpublished { track_id, .. } => Some(track_id),
                _ => None,
            })
            .collect();
        assert!(unpublished.contains(&bv) && unpublished.contains(&ba));

        let s = sfu.stats();
        assert_eq!((s.participants, s.published_tracks), (1, 2));
        assert!(wait_until(Duration::from_secs(5), || sfu.stats().forwarded_tracks == 0).await);
        assert_eq!(sfu.stats().participants as usize, 1);
        assert_eq!(room.tracks().await.len(), 2);

        a.participant.close().await;
        let s = sfu.stats();
        assert!(zero_gauges(&s) && s.rooms == 1, "after everyone left: {s:?}");
        room.close();
        assert!(wait_until(Duration::from_secs(5), || sfu.stats().rooms == 0).await);
        a.close().await;
        b.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_receives_existing_tracks() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(90), async {
        let sfu = Sfu::new(SfuConfig::default()).unwrap();
        let room = sfu.open_room("r2");
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", true, true).await;
        let mut senders = warm_up(&[&a, &b], || {
            receiving_from(&a, "bob") && receiving_from(&b, "alice")
        })
        .await;
        assert_eq!(room.tracks().await.len(), 4);

        // Carol joins after everything is published; she publishes nothing.
        let c = TestClient::join(&room, "carol", false, true).await;
        let ok = wait_until(Duration::from_secs(10), || {
            c.events()
                .iter()
                .any(|e| matches!(e, SfuEvent::SubscriberOffer { .. }))
        })
        .await;
        assert!(ok, "late joiner got no subscriber offer");
        // She learns the tracks from Room::tracks() (what signaling puts in `joined`).
        let ids: Vec<String> = room
            .tracks()
            .await
            .into_iter()
            .map(|(_, t)| t.track_id)
            .collect();
        let ready = {
            let ids = ids.clone();
            let c = &c;
            move || ids.iter().all(|t| c.received.packets(t) > 0)
        };
        // Keep media flowing until her legs are up.
        let started = std::time::Instant::now();
        while !ready() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "carol never received media: {:?}",
                c.received.snapshot()
            );
            for (s, cl) in senders.iter_mut().zip([&a, &b]) {
                s.tick(cl, None).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        measure(&mut senders, &[&a, &b], &[&a, &b, &c], COUNT, PACE).await;
        let got = c.received.snapshot();
        for (publisher, info) in room.tracks().await {
            let d = report("late-joiner", &c, &info.track_id);
            assert!(
                d >= MIN_DELIVERY,
                "carol got {:.1}% of {}",
                d * 100.0,
                info.track_id
            );
            assert_eq!(got[&info.track_id].stream_id, publisher);
        }
        // The others keep receiving each other while carol joined.
        assert!(delivery(&a, "bob-cam") >= MIN_DELIVERY);
        assert!(delivery(&b, "alice-cam") >= MIN_DELIVERY);
        assert_eq!(sfu.stats().forwarded_tracks, 4 + 4);

        room.close();
        assert!(
            wait_until(Duration::from_secs(5), || zero_gauges(&sfu.stats())).await,
            "{:?}",
            sfu.stats()
        );
        a.close().await;
        b.close().await;
        c.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_that_never_reads_does_not_stall_the_others() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(90), async {
        let sfu = Sfu::new(SfuConfig::default()).unwrap();
        let room = sfu.open_room("r3");
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", false, true).await;
        // Carol's client never polls its remote tracks.
        let c = TestClient::join(&room, "carol", false, false).await;
        let mut senders = warm_up(&[&a], || {
            receiving_from(&b, "alice")
                && c.sub_connected.load(std::sync::atomic::Ordering::SeqCst)
                && c.received.snapshot().len() == 2
        })
        .await;
        measure(&mut senders, &[&a], &[&b], COUNT, PACE).await;
        for t in ["alice-cam", "alice-mic"] {
            let d = report("slow-consumer", &b, t);
            assert!(
                d >= MIN_DELIVERY,
                "bob got {:.1}% of {t} next to a stalled subscriber",
                d * 100.0
            );
        }
        assert_eq!(
            c.received.measured("alice-cam"),
            0,
            "carol really never read"
        );
        let s = sfu.stats();
        eprintln!("[stats] {s:?}");
        // The server still sent to carol (her leg is independent of bob's).
        assert!(s.forwarded_packets >= 2 * 2 * u64::from(COUNT) * 9 / 10);
        room.close();
        assert!(
            wait_until(Duration::from_secs(5), || zero_gauges(&sfu.stats())).await,
            "{:?}",
            sfu.stats()
        );
        a.close().await;
        b.close().await;
        c.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_zero_after_closing_the_room_and_it_refuses_joins() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(60), async {
        let sfu = Sfu::new(SfuConfig::default()).unwrap();
        let room = sfu.open_room("r4");
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", true, true).await;
        let _senders = warm_up(&[&a, &b], || {
            receiving_from(&a, "bob") && receiving_from(&b, "alice")
        })
        .await;
        let s = sfu.stats();
        assert_eq!(
            (
                s.rooms,
                s.participants,
                s.published_tracks,
                s.forwarded_tracks
            ),
            (1, 2, 4, 4)
        );

        room.close();
        let ok = wait_until(Duration::from_secs(5), || {
            let s = sfu.stats();
            s.rooms == 0 && zero_gauges(&s)
        })
        .await;
        assert!(ok, "{:?}", sfu.stats());
        assert!(room.tracks().await.is_empty());
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        assert!(matches!(
            room.add_participant("dave", tx).await,
            Err(sfu::SfuError::Closed)
        ));
        // The server closed its connections: the clients notice.
        let ok = wait_until(Duration::from_secs(40), || {
            !a.pub_connected.load(std::sync::atomic::Ordering::SeqCst)
                && !b.sub_connected.load(std::sync::atomic::Ordering::SeqCst)
        })
        .await;
        assert!(ok, "clients still connected after the room closed");
        assert!(a.participant.is_closed());
        // A new room of the same id starts empty.
        let again = sfu.open_room("r4");
        assert!(again.tracks().await.is_empty());
        assert_eq!((sfu.stats().rooms, sfu.stats().participants), (1, 0));
        again.close();
        a.close().await;
        b.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_requests_reach_the_publisher_throttled() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(60), async {
        let sfu = Sfu::new(SfuConfig::default()).unwrap();
        let room = sfu.open_room("r5");
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", false, true).await;
        let _senders = warm_up(&[&a], || receiving_from(&b, "alice")).await;
        tokio::time::sleep(Duration::from_millis(600)).await;

        // Signaling path: a burst of requests is coalesced.
        let before = sfu.stats().keyframe_requests;
        for _ in 0..10 {
            b.participant.request_keyframe("alice-cam");
        }
        b.participant.request_keyframe("alice-mic"); // audio: ignored
        b.participant.request_keyframe("no-such-track"); // ignored
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = sfu.stats().keyframe_requests;
        assert_eq!(
            after - before,
            1,
            "one PLI for a burst inside the throttle window"
        );

        // RTCP path: the subscriber's own PLI travels up to the publisher.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let before = sfu.stats().keyframe_requests;
        assert!(common::send_pli(&b.received, "alice-cam").await);
        let ok = wait_until(Duration::from_secs(3), || {
            sfu.stats().keyframe_requests > before
        })
        .await;
        assert!(ok, "subscriber PLI did not reach the publisher");

        room.close();
        a.close().await;
        b.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_republishes_under_the_same_participant_id() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(90), async {
        let sfu = Sfu::new(SfuConfig::default()).unwrap();
        let room = sfu.open_room("r6");
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", false, true).await;
        let _senders = warm_up(&[&a], || receiving_from(&b, "alice")).await;

        // Alice reloads: a new join with the same id replaces the old participant.
        let a2 = TestClient::join(&room, "alice", true, true).await;
        assert!(
            matches!(a.participant.restart_subscriber_ice().await, Err(sfu::SfuError::Closed)),
            "the replaced participant is gone from the room"
        );
        assert_eq!(sfu.stats().participants as usize, 2);
        let mut senders = warm_up(&[&a2], || {
            let ev = b.events();
            let unpub = ev.iter().filter(|e| matches!(e, SfuEvent::TrackUnpublished { participant_id, .. } if participant_id == "alice")).count();
            let republished: Vec<String> = ev.iter().filter_map(|e| match e {
                SfuEvent::TrackPublished { participant_id, track } if participant_id == "alice" => Some(track.track_id.clone()),
                _ => None,
            }).collect();
            unpub == 2 && republished.len() == 4 && b.received.snapshot().values().filter(|t| t.stream_id == "alice").count() >= 2
                && republished[2..].iter().all(|t| b.received.packets(t) > 0)
        })
        .await;
        measure(&mut senders, &[&a2], &[&b], COUNT, PACE).await;
        for (_, t) in room.tracks().await {
            let d = report("reload", &b, &t.track_id);
            assert!(d >= MIN_DELIVERY, "bob got {:.1}% of {} after reload", d * 100.0, t.track_id);
        }
        let s = sfu.stats();
        assert_eq!((s.participants, s.published_tracks, s.forwarded_tracks), (2, 2, 2));
        room.close();
        a.close().await;
        a2.close().await;
        b.close().await;
    })
    .await
    .expect("test timed out");
}

fn offer_ufrags(c: &TestClient) -> Vec<String> {
    c.events()
        .into_iter()
        .filter_map(|e| match e {
            SfuEvent::SubscriberOffer { sdp } => sdp
                .lines()
                .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:").map(str::to_owned)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_ice_restart_keeps_media_flowing() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(60), async {
        let sfu = Sfu::new(SfuConfig::default()).unwrap();
        let room = sfu.open_room("r7");
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", false, true).await;
        let mut senders = warm_up(&[&a], || receiving_from(&b, "alice")).await;
        let before = offer_ufrags(&b);
        let answers_before = *b.answers.lock().unwrap();

        b.participant.restart_subscriber_ice().await.unwrap();
        let ok = wait_until(Duration::from_secs(5), || {
            *b.answers.lock().unwrap() > answers_before
        })
        .await;
        assert!(ok, "no answered offer after the ICE restart request");
        let after = offer_ufrags(&b);
        assert_ne!(
            after.last(),
            before.last(),
            "restart offer carries a new ufrag"
        );

        measure(&mut senders, &[&a], &[&b], COUNT, PACE).await;
        for t in ["alice-cam", "alice-mic"] {
            let d = report("ice-restart", &b, t);
            assert!(
                d >= MIN_DELIVERY,
                "bob got {:.1}% of {t} after ICE restart",
                d * 100.0
            );
        }
        room.close();
        a.close().await;
        b.close().await;
    })
    .await
    .expect("test timed out");
}

fn server_candidates(c: &TestClient) -> Vec<String> {
    c.log.candidates.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_name_the_configured_ports_and_public_ip() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(60), async {
        let base = 47310u16;
        let sfu = Sfu::new(SfuConfig {
            rtc_port: base,
            workers: 2,
            // Announced instead of the bind address (1:1 NAT); 127.0.0.2 is not bound, so
            // this test only looks at what is announced.
            public_ips: vec!["127.0.0.2".parse().unwrap()],
            ..SfuConfig::default()
        })
        .unwrap();
        let ports: Vec<u16> = sfu.media_addrs().iter().map(|a| a.port()).collect();
        assert_eq!(
            ports,
            vec![base, base + 1],
            "worker i listens on rtc_port + i"
        );
        // A second SFU cannot take the same ports.
        assert!(Sfu::new(SfuConfig {
            rtc_port: base,
            workers: 1,
            ..SfuConfig::default()
        })
        .is_err());

        let room = sfu.open_room("r8");
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", true, true).await;
        let ok = wait_until(Duration::from_secs(5), || {
            !server_candidates(&a).is_empty() && !server_candidates(&b).is_empty()
        })
        .await;
        assert!(ok, "no server candidate");
        for c in server_candidates(&a)
            .iter()
            .chain(server_candidates(&b).iter())
        {
            let fields: Vec<&str> = c.split_whitespace().collect();
            let (ip, port) = (fields[4], fields[5].parse::<u16>().unwrap());
            assert_eq!(ip, "127.0.0.2", "host candidate names the public ip: {c}");
            assert!(
                ports.contains(&port),
                "port {port} is not a worker port: {c}"
            );
        }
        room.close();
        a.close().await;
        b.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_cost_no_task() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(60), async {
        let metrics = tokio::runtime::Handle::current().metrics();
        let sfu = Sfu::new(SfuConfig::default()).unwrap();
        let room = sfu.open_room("r9");
        // Measured with the clients' own tasks already running: only the server's count.
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let baseline = metrics.num_alive_tasks();
        let mut extra = Vec::new();
        for i in 0..20 {
            extra.push(
                room.add_participant(&format!("p{i}"), tx.clone())
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(
            metrics.num_alive_tasks(),
            baseline,
            "a participant spawned a task"
        );
        assert_eq!(sfu.stats().participants, 20);
        for p in &extra {
            p.close().await;
        }
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", true, true).await;
        let _senders = warm_up(&[&a, &b], || {
            receiving_from(&a, "bob") && receiving_from(&b, "alice")
        })
        .await;
        a.participant.close().await;
        b.participant.close().await;
        room.close();
        a.close().await;
        b.close().await;
        assert!(
            wait_until(Duration::from_secs(5), || zero_gauges(&sfu.stats())
                && sfu.stats().rooms == 0)
            .await
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_lite_server_still_connects_both_directions() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(Duration::from_secs(60), async {
        let sfu = Sfu::new(SfuConfig {
            ice_lite: true,
            ..SfuConfig::default()
        })
        .unwrap();
        let room = sfu.open_room("r10");
        let a = TestClient::join(&room, "alice", true, true).await;
        let b = TestClient::join(&room, "bob", false, true).await;
        let mut senders = warm_up(&[&a], || receiving_from(&b, "alice")).await;
        assert!(b
            .events()
            .iter()
            .any(|e| matches!(e, SfuEvent::SubscriberOffer { sdp } if sdp.contains("a=ice-lite"))));
        measure(&mut senders, &[&a], &[&b], COUNT, PACE).await;
        for t in ["alice-cam", "alice-mic"] {
            let d = report("ice-lite", &b, t);
            assert!(
                d >= MIN_DELIVERY,
                "bob got {:.1}% of {t} from an ICE-lite server",
                d * 100.0
            );
        }
        room.close();
        a.close().await;
        b.close().await;
    })
    .await
    .expect("test timed out");
}
