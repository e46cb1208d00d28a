//! Abuse limits of a signaling connection, without sockets: the per-connection message
//! budget, coalesced `mute` broadcasts, throttled logs, and the end of a session racing
//! a join that was admitted just before it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{expect_fatal, hub_with, join, next_message};
use signaling::protocol::{Kind, ServerMessage};
use signaling::{Flow, Outbound, OutboundQueue, ABUSE_TOLERANCE};
use tracing_subscriber::layer::SubscriberExt;

/// Counts WARN and ERROR events of the current thread's subscriber.
struct WarnCounter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarnCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Everything queued for a connection within `quiet` of the previous item.
async fn drain(rx: &mut OutboundQueue, quiet: Duration) -> Vec<Outbound> {
    let mut out = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(quiet, rx.recv()).await {
        out.push(item);
    }
    out
}

fn mute(kind: &str, muted: bool) -> String {
    format!(r#"{{"type":"mute","kind":"{kind}","muted":{muted}}}"#)
}

fn mutes_of(items: &[Outbound], who: &str, of: Kind) -> Vec<bool> {
    items
        .iter()
        .filter_map(|o| match o {
            Outbound::Message(ServerMessage::Mute {
                participant_id,
                kind,
                muted,
            }) if participant_id == who && *kind == of => Some(*muted),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn mute_flood_is_throttled_and_does_not_hurt_the_room() {
    let warnings = Arc::new(AtomicUsize::new(0));
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(WarnCounter(Arc::clone(&warnings))),
    );
    let (hub, _) = hub_with(Duration::from_secs(30));
    let (mut a, mut a_rx) = hub.connect(None);
    a.handle_text(&join("f1", "a@f1")).await;
    next_message(&mut a_rx).await;
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("f1", "b@f1")).await;
    next_message(&mut b_rx).await;
    next_message(&mut a_rx).await; // b joined

    let started = Instant::now();
    let mut stopped_at = None;
    for i in 0..20_000u32 {
        let flow = a.handle_text(&mute("audio", i % 2 == 0)).await;
        if flow == Flow::Stop && stopped_at.is_none() {
            stopped_at = Some(i);
        }
    }
    let elapsed = started.elapsed();

    // The flooder: a few non-fatal notices, then closed for abuse with 4429.
    let to_a = drain(&mut a_rx, Duration::from_millis(300)).await;
    let notices = to_a
        .iter()
        .filter(|o| {
            matches!(o, Outbound::Message(ServerMessage::Error { code, fatal: false, .. }) if code == "rate_limited")
        })
        .count() as u64;
    assert!(
        (1..=elapsed.as_secs() + 1).contains(&notices),
        "{notices} rate_limited notices in {elapsed:?}"
    );
    assert!(to_a.iter().any(|o| matches!(
        o,
        Outbound::Message(ServerMessage::Error { code, fatal: true, .. }) if code == "rate_limited"
    )));
    assert!(to_a
        .iter()
        .any(|o| matches!(o, Outbound::Close { code: 4429, .. })));
    let stopped_at = stopped_at.expect("the flood was cut off");
    assert!(
        stopped_at < 100 + ABUSE_TOLERANCE + 100 + 100 * (elapsed.as_secs() as u32 + 1),
        "cut off after {stopped_at} messages"
    );

    // The room: a bounded number of broadcasts, and b is still there.
    let to_b = drain(&mut b_rx, Duration::from_millis(300)).await;
    let seen = mutes_of(&to_b, "a", Kind::Audio);
    let bound = 2 + elapsed.as_millis() / 100;
    assert!(
        !seen.is_empty() && seen.len() as u128 <= bound,
        "b saw {} mute broadcasts in {elapsed:?} (bound {bound})",
        seen.len()
    );
    assert!(
        !to_b.iter().any(|o| matches!(o, Outbound::Close { .. })),
        "b was not disconnected"
    );
    assert_eq!(hub.participants_in("f1").await, vec!["a", "b"]);
    let warned = warnings.load(Ordering::Relaxed);
    assert!(warned <= 5, "{warned} WARN lines for one flood");
    eprintln!(
        "[mute flood] 20000 sent, cut off after {stopped_at}, {notices} notices, {} broadcasts to b, {warned} WARN lines, {elapsed:?}",
        seen.len()
    );
}

#[tokio::test]
async fn mute_bursts_coalesce_and_the_final_state_wins() {
    let (hub, _) = hub_with(Duration::from_secs(30));
    let (mut a, mut a_rx) = hub.connect(None);
    a.handle_text(&join("f2", "a@f2")).await;
    next_message(&mut a_rx).await;
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("f2", "b@f2")).await;
    next_message(&mut b_rx).await;

    // 40 toggles of each kind within the burst: audio ends muted, video ends unmuted.
    for i in 0..40 {
        a.handle_text(&mute("audio", i % 2 == 1)).await;
        a.handle_text(&mute("video", i % 2 == 0)).await;
    }
    let to_b = drain(&mut b_rx, Duration::from_millis(300)).await;
    let audio = mutes_of(&to_b, "a", Kind::Audio);
    let video = mutes_of(&to_b, "a", Kind::Video);
    assert!(audio.len() <= 3 && video.len() <= 3, "{audio:?} {video:?}");
    assert_eq!(audio.last(), Some(&true), "final audio state reached b");
    assert_eq!(video.last(), Some(&false), "final video state reached b");

    // The room's view holds the final state too: b reloads and sees it in `joined`.
    b.disconnected().await;
    let (mut b2, mut b2_rx) = hub.connect(None);
    b2.handle_text(&join("f2", "b@f2")).await;
    match next_message(&mut b2_rx).await {
        ServerMessage::Joined { participants, .. } => {
            let view = participants
                .iter()
                .find(|p| p.participant_id == "a")
                .expect("a listed");
            assert!(view.audio_muted && !view.video_muted, "{view:?}");
        }
        other => panic!("expected joined, got {other:?}"),
    }
}

#[tokio::test]
async fn join_admitted_before_the_end_does_not_recreate_the_room() {
    let (hub, gate) = hub_with(Duration::from_secs(30));

    // No room yet: the admission is in flight while the session ends.
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    *gate.hold.lock().unwrap() = Some(Arc::clone(&hold));
    let joiner = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let (mut c, rx) = hub.connect(None);
            c.handle_text(&join("e1", "a@e1")).await;
            (c, rx)
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    hub.end_session("e1", "ended_by_therapist").await;
    hold.add_permits(1);
    let (_c, mut rx) = joiner.await.expect("join task");
    expect_fatal(&mut rx, "session_ended", 4410).await;
    assert_eq!(hub.room_count(), 0, "no room left behind");
    assert!(hub.participants_in("e1").await.is_empty());

    // A room with someone in it: same race, the room is closed and stays closed.
    *gate.hold.lock().unwrap() = None;
    let (mut b, mut b_rx) = hub.connect(None);
    b.handle_text(&join("e2", "b@e2")).await;
    next_message(&mut b_rx).await;
    *gate.hold.lock().unwrap() = Some(Arc::clone(&hold));
    let joiner = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let (mut c, rx) = hub.connect(None);
            c.handle_text(&join("e2", "a@e2")).await;
            (c, rx)
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    hub.end_session("e2", "expired").await;
    match next_message(&mut b_rx).await {
        ServerMessage::SessionEnded { .. } => {}
        other => panic!("expected session_ended, got {other:?}"),
    }
    hold.add_permits(1);
    let (_c, mut rx) = joiner.await.expect("join task");
    expect_fatal(&mut rx, "session_ended", 4410).await;
    assert_eq!(hub.room_count(), 0, "no room left behind");

    // Other sessions are not affected.
    *gate.hold.lock().unwrap() = None;
    let (mut d, mut d_rx) = hub.connect(None);
    d.handle_text(&join("e3", "d@e3")).await;
    assert!(matches!(
        next_message(&mut d_rx).await,
        ServerMessage::Joined { .. }
    ));
    assert_eq!(hub.room_count(), 1);
}

#[tokio::test]
async fn listening_lifts_the_join_deadline() {
    let (hub, _) = hub_with(Duration::from_secs(30));
    let (mut l, mut l_rx) = hub.connect(None);
    assert!(l.awaits_join());
    l.handle_text(r#"{"type":"listen","protocol":1,"token":"u1@any"}"#)
        .await;
    next_message(&mut l_rx).await;
    assert!(!l.awaits_join(), "a listener is not waiting to join");
}
