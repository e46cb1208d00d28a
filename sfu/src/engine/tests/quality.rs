//! Connection quality (loss on either side of the server becomes `ConnectionQuality`),
//! and what a subscriber may switch off: all video (audio only), one hidden video.

use std::time::Duration;

use super::{a_to_b, gap_free, is_rtp, seqs, A, B};
use crate::engine::testing::{LossFn, Sim};
use crate::engine::Command;
use crate::quality::Quality;
use crate::types::SfuEvent;

/// The verdicts about `whom` that `to` was sent, in order.
fn verdicts(sim: &Sim, to: u64, whom: &str) -> Vec<Quality> {
    sim.events_of(to)
        .filter_map(|e| match e {
            SfuEvent::ConnectionQuality { updates } => updates
                .iter()
                .find(|u| u.participant_id == whom)
                .map(|u| u.quality),
            _ => None,
        })
        .collect()
}

/// Loses every `n`th RTP packet to or from client `client`.
fn every_nth_rtp_of(client: usize, n: u32) -> LossFn {
    let mut seen = 0u32;
    Box::new(move |i, data| {
        if i != client || !is_rtp(data) {
            return false;
        }
        seen += 1;
        seen.is_multiple_of(n)
    })
}

#[test]
fn everyone_starts_excellent_and_a_newcomer_hears_of_everyone() {
    let (mut sim, a, _) = a_to_b(false);
    sim.stream(a, Duration::from_secs(5));
    assert_eq!(verdicts(&sim, B, "alice"), vec![Quality::Excellent]);
    assert_eq!(verdicts(&sim, B, "bob"), vec![Quality::Excellent]);
    assert_eq!(verdicts(&sim, A, "bob"), vec![Quality::Excellent]);
    sim.join(30, "carol");
    sim.stream(a, Duration::from_secs(3));
    assert_eq!(verdicts(&sim, 30, "alice"), vec![Quality::Excellent]);
    assert_eq!(
        verdicts(&sim, B, "alice"),
        vec![Quality::Excellent],
        "nothing changed, nothing more sent"
    );
}

#[test]
fn loss_on_the_way_in_makes_the_publisher_poor_until_it_stops() {
    let (mut sim, a, _) = a_to_b(false);
    sim.stream(a, Duration::from_secs(3));
    sim.uplink_loss = Some(every_nth_rtp_of(a, 4)); // 25%
    sim.stream(a, Duration::from_secs(5));
    assert_eq!(
        verdicts(&sim, B, "alice").last(),
        Some(&Quality::Poor),
        "{:?}",
        verdicts(&sim, B, "alice")
    );
    assert!(!verdicts(&sim, B, "bob").contains(&Quality::Poor));
    sim.uplink_loss = None;
    sim.stream(a, Duration::from_secs(8));
    assert_eq!(
        verdicts(&sim, B, "alice").last(),
        Some(&Quality::Excellent),
        "{:?}",
        verdicts(&sim, B, "alice")
    );
}

#[test]
fn loss_on_the_way_out_reported_by_the_subscriber_makes_it_poor() {
    let (mut sim, a, b) = a_to_b(false);
    sim.stream(a, Duration::from_secs(3));
    sim.downlink_loss = Some(every_nth_rtp_of(b, 3)); // a third
    sim.stream(a, Duration::from_secs(6));
    let bob = verdicts(&sim, A, "bob");
    assert!(
        bob.iter().any(|q| *q >= Quality::Good),
        "bob's reports show loss: {bob:?}"
    );
    assert!(!verdicts(&sim, A, "alice").contains(&Quality::Poor));
}

#[test]
fn a_participant_whose_network_dies_is_lost() {
    let (mut sim, a, b) = a_to_b(false);
    sim.stream(a, Duration::from_secs(3));
    sim.downlink_loss = Some(Box::new(move |i, _| i == b));
    sim.uplink_loss = Some(Box::new(move |i, _| i == b));
    sim.stream(a, Duration::from_secs(40));
    assert_eq!(verdicts(&sim, A, "bob").last(), Some(&Quality::Lost));
}

#[test]
fn audio_only_stops_video_to_that_subscriber_and_resumes_it_at_a_keyframe() {
    let (mut sim, a, b) = a_to_b(false);
    let audio_only = |sim: &mut Sim, enabled| {
        sim.core
            .handle_command(
                sim.now,
                Command::SetAudioOnly {
                    participant: B,
                    enabled,
                },
            )
            .expect("audio only");
    };
    sim.stream(a, Duration::from_millis(500));
    audio_only(&mut sim, true);
    let paused_at = sim.clients[b].rtp.len();
    sim.stream(a, Duration::from_secs(2));
    assert_eq!(
        sim.clients[b].rtp.len(),
        paused_at,
        "no video while audio only"
    );
    let plis = sim.clients[a].keyframe_requests;
    audio_only(&mut sim, false);
    sim.stream(a, Duration::from_secs(1));
    assert!(sim.clients[b].rtp.len() > paused_at + 30, "video again");
    assert!(
        sim.clients[a].keyframe_requests > plis,
        "the publisher was asked for a keyframe"
    );
    gap_free(&seqs(&sim, b)).expect("sequence numbers continue across the pause");
}

#[test]
fn a_hidden_video_is_not_sent_to_that_subscriber_until_it_shows_again() {
    let (mut sim, a, b) = a_to_b(false);
    sim.join(30, "carol");
    let c = sim.subscriber(30, super::addr(3, 7000));
    sim.stream(a, Duration::from_secs(1));
    assert!(!sim.clients[c].rtp.is_empty(), "carol receives");
    let view = |sim: &mut Sim, visible| {
        let cmd = Command::SetVideoVisible {
            participant: B,
            track_id: "cam".into(),
            visible,
            size: None,
        };
        sim.core.handle_command(sim.now, cmd).expect("video view");
    };
    view(&mut sim, false);
    let (bob_before, carol_before) = (sim.clients[b].rtp.len(), sim.clients[c].rtp.len());
    sim.stream(a, Duration::from_secs(2));
    assert_eq!(
        sim.clients[b].rtp.len(),
        bob_before,
        "nothing for a hidden tile"
    );
    assert_eq!(sim.counters.snapshot().paused_videos, 1, "counted");
    assert!(
        sim.clients[c].rtp.len() >= carol_before + 95,
        "carol still gets everything"
    );
    let plis = sim.clients[a].keyframe_requests;
    view(&mut sim, true);
    sim.stream(a, Duration::from_secs(1));
    assert!(sim.clients[b].rtp.len() > bob_before + 40, "shown again");
    assert!(sim.clients[a].keyframe_requests > plis, "from a keyframe");
    gap_free(&seqs(&sim, b)).expect("sequence numbers continue across the pause");
    sim.advance(Duration::from_secs(2));
    assert_eq!(
        sim.counters.snapshot().paused_videos,
        0,
        "no longer counted"
    );
}
