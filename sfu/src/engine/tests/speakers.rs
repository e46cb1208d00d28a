//! Active speakers: audio levels of forwarded audio become `ActiveSpeakers` events.

use std::time::Duration;

use super::{addr, A, B};
use crate::engine::publication::AUDIO_LEVEL_URI;
use crate::engine::testing::Sim;
use crate::engine::Command;
use crate::types::{ActiveSpeaker, SfuEvent};

/// Every speaker list `key` was sent, in order.
fn reports(sim: &Sim, key: u64) -> Vec<Vec<String>> {
    sim.events_of(key)
        .filter_map(|e| match e {
            SfuEvent::ActiveSpeakers { speakers } => Some(
                speakers
                    .iter()
                    .map(|ActiveSpeaker { participant_id, .. }| participant_id.clone())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Alice publishes audio to Bob; returns (sim, Alice's client, Bob's client) once Bob
/// receives it.
fn alice_talks_to_bob() -> (Sim, usize, usize) {
    let mut sim = Sim::new(false);
    sim.join(A, "alice");
    sim.join(B, "bob");
    let b = sim.subscriber(B, addr(2, 6000));
    let a = sim.audio_publisher(A, addr(1, 5000), "alice", "mic");
    assert!(sim.run_until(Duration::from_secs(5), |s| s.clients[a].connected()));
    for _ in 0..100 {
        sim.clients[a].send_audio(sim.now, 127);
        sim.advance(Duration::from_millis(20));
        if !sim.clients[b].rtp.is_empty() {
            return (sim, a, b);
        }
    }
    panic!("audio never reached bob");
}

fn talk(sim: &mut Sim, client: usize, level: u8, d: Duration) {
    let end = sim.now + d;
    while sim.now < end {
        sim.clients[client].send_audio(sim.now, level);
        sim.advance(Duration::from_millis(20));
    }
}

#[test]
fn a_talking_publisher_is_reported_to_everyone_and_silence_ends_it() {
    let (mut sim, a, b) = alice_talks_to_bob();
    talk(&mut sim, a, 127, Duration::from_secs(1));
    assert!(reports(&sim, B).is_empty(), "silence is nobody speaking");

    talk(&mut sim, a, 25, Duration::from_millis(600));
    assert_eq!(reports(&sim, B), vec![vec!["alice".to_owned()]]);
    assert_eq!(
        reports(&sim, A),
        vec![vec!["alice".to_owned()]],
        "the speaker hears of it too"
    );
    let level = sim
        .events_of(B)
        .find_map(|e| match e {
            SfuEvent::ActiveSpeakers { speakers } => speakers.first().map(|s| s.level),
            _ => None,
        })
        .expect("a level");
    assert!((0.3..=1.0).contains(&level), "level {level}");

    talk(&mut sim, a, 127, Duration::from_secs(2));
    assert_eq!(
        reports(&sim, B),
        vec![vec!["alice".to_owned()], vec![]],
        "one report when she starts, one when she stops"
    );

    // Bob's browser gets the level with the audio, under his leg's extension id.
    let ext = {
        let c = &mut sim.clients[b];
        let t = c.pc.get_transceivers().next().expect("transceiver");
        let r =
            c.pc.rtp_transceiver(t)
                .and_then(|t| t.receiver())
                .expect("receiver");
        let params =
            c.pc.rtp_receiver(r)
                .expect("receiver")
                .get_parameters()
                .clone();
        params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == AUDIO_LEVEL_URI)
            .map(|e| e.id as u8)
            .expect("audio level negotiated on bob's leg")
    };
    let (_, last) = sim.clients[b].rtp.last().expect("audio");
    assert_eq!(
        last.header.get_extension(ext).map(|d| d[0] & 0x7f),
        Some(127)
    );
}

#[test]
fn a_speaker_who_leaves_is_reported_gone_and_the_room_stops_ticking() {
    let (mut sim, a, _) = alice_talks_to_bob();
    talk(&mut sim, a, 20, Duration::from_millis(600));
    assert_eq!(reports(&sim, B), vec![vec!["alice".to_owned()]]);
    sim.core
        .handle_command(sim.now, Command::RemoveParticipant { participant: A })
        .expect("remove");
    sim.advance(Duration::from_secs(1));
    assert_eq!(reports(&sim, B), vec![vec!["alice".to_owned()], vec![]]);
    let before = sim.events.len();
    sim.advance(Duration::from_secs(3));
    assert!(
        !sim.events[before..]
            .iter()
            .any(|(_, e)| matches!(e, SfuEvent::ActiveSpeakers { .. })),
        "nothing more to report"
    );
}
