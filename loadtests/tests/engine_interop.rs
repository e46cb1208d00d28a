//! The client engine against an independent WebRTC stack (webrtc-rs, through
//! `StandalonePc`), both ways, on loopback: ICE, DTLS, SRTP, tagged media, remote tracks
//! named by `a=msid`. Run inside `unshare -n` (scripts/test.sh does).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use theraroom_load::client::standalone::StandalonePc;
use theraroom_load::engine::{Engine, EnginePc, PcEvent};
use theraroom_load::{Kind, MediaRate, PcState, Publish, RemoteTrackStats};
use tokio::task::JoinHandle;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Unique tagged packets each remote track must deliver.
const WANT: u64 = 60;

/// Moves local candidates of each side to the other until the connections go away.
fn trickle(engine: &Arc<EnginePc>, webrtc: &Arc<StandalonePc>) -> [JoinHandle<()>; 2] {
    let mut from_engine = engine.take_events().expect("engine events");
    let mut from_webrtc = webrtc.take_candidates().expect("webrtc candidates");
    let (e, w) = (Arc::clone(engine), Arc::clone(webrtc));
    let to_webrtc = tokio::spawn(async move {
        while let Some(ev) = from_engine.recv().await {
            if let PcEvent::LocalCandidate(c) = ev {
                w.add_candidate(c)
                    .await
                    .expect("webrtc takes the engine's candidate");
            }
        }
    });
    let to_engine = tokio::spawn(async move {
        while let Some(c) = from_webrtc.recv().await {
            e.add_candidate(c)
                .await
                .expect("engine takes webrtc's candidate");
        }
    });
    [to_webrtc, to_engine]
}

/// Polls `done` every 100 ms for up to 30 s (a bound on waiting, not a timing check).
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 30 s");
}

fn by_kind(tracks: &[RemoteTrackStats], kind: Kind) -> RemoteTrackStats {
    tracks
        .iter()
        .find(|t| t.kind == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind:?} track in {tracks:?}"))
}

fn delivered(tracks: &[RemoteTrackStats]) -> bool {
    tracks.len() == 2 && tracks.iter().all(|t| t.unique >= WANT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_publisher_to_webrtc_subscriber() {
    let engine = Engine::start(2).expect("engine");
    let publisher = Arc::new(
        engine
            .publisher(LOOPBACK, Publish::BOTH)
            .await
            .expect("publisher"),
    );
    let subscriber = Arc::new(
        StandalonePc::subscriber(LOOPBACK)
            .await
            .expect("subscriber"),
    );
    let offer = publisher.offer().await.expect("offer");
    let answer = subscriber.answer(&offer).await.expect("answer");
    publisher.apply_answer(&answer).await.expect("apply answer");
    let tasks = trickle(&publisher, &subscriber);
    publisher.start_media(MediaRate::default());
    wait_for("delivery to webrtc-rs", || {
        delivered(&subscriber.received())
    })
    .await;
    assert_eq!(publisher.state(), PcState::Connected);

    let got = subscriber.received();
    let sent = publisher.sent();
    for kind in [Kind::Video, Kind::Audio] {
        let t = by_kind(&got, kind);
        let s = sent.iter().find(|s| s.kind == kind).expect("sent track");
        assert_eq!(t.track_id, s.track_id, "msid track id is ours");
        assert!(
            s.track_id.starts_with(&t.stream_id),
            "msid stream id is ours"
        );
        assert_eq!(t.missing(), 0, "{kind:?}: no gap in {t:?}");
        assert!(s.packets >= t.unique && s.errors == 0, "{s:?}");
    }
    publisher.close().await;
    subscriber.close().await;
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_publisher_to_engine_subscriber() {
    let engine = Engine::start(1).expect("engine");
    let publisher = Arc::new(
        StandalonePc::publisher(LOOPBACK, Publish::BOTH)
            .await
            .expect("publisher"),
    );
    let subscriber = Arc::new(engine.subscriber(LOOPBACK).await.expect("subscriber"));
    let offer = publisher.offer().await.expect("offer");
    let answer = subscriber.answer(&offer).await.expect("answer");
    publisher.apply_answer(&answer).await.expect("apply answer");
    let tasks = trickle(&subscriber, &publisher);
    publisher.start_media(MediaRate::default());
    wait_for("delivery to the engine", || {
        delivered(&subscriber.received())
    })
    .await;
    assert_eq!(subscriber.state(), PcState::Connected);

    let got = subscriber.received();
    let sent = publisher.sent();
    for kind in [Kind::Video, Kind::Audio] {
        let t = by_kind(&got, kind);
        let s = sent.iter().find(|s| s.kind == kind).expect("sent track");
        assert_eq!(
            t.track_id, s.track_id,
            "remote track named by its a=msid track id"
        );
        assert!(
            s.track_id.starts_with(&t.stream_id),
            "stream id from a=msid"
        );
        assert_eq!(t.missing(), 0, "{kind:?}: no gap in {t:?}");
        assert!(t.latency.count() >= WANT, "latency of every unique packet");
        assert!(t.first_packet_at.is_some());
    }
    let stats = engine.stats();
    assert!(stats.datagrams_in > 2 * WANT, "{stats:?}");
    assert_eq!(stats.unrouted, 0, "every RTP packet reached its track");
    publisher.close().await;
    subscriber.close().await;
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_releases_the_connection() {
    let engine = Engine::start(1).expect("engine");
    let a = engine.subscriber(LOOPBACK).await.expect("pc");
    let b = engine.publisher(LOOPBACK, Publish::BOTH).await.expect("pc");
    assert_eq!(engine.stats().connections, 2);
    a.close().await;
    a.close().await; // idempotent
    assert_eq!(a.state(), PcState::Closed);
    assert!(
        a.offer().await.is_err(),
        "a closed connection refuses commands"
    );
    drop(b);
    wait_for("the dropped connection to close", || {
        engine.stats().connections == 0
    })
    .await;
}
