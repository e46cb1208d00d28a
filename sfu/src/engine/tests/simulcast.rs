//! Simulcast through the core: a publisher sends three layers (q, h, f, told apart here
//! by their payload sizes), each subscriber gets one, switches happen at keyframes with
//! continuous numbering, the shown size and the downlink estimate pick the layer, and the
//! publisher is told which layers anyone needs (dynacast).

use std::time::Duration;

use super::{addr, gap_free, is_rtp, seqs, A, B};
use crate::engine::testing::Sim;
use crate::engine::Command;
use crate::types::{LayerState, SfuEvent};

/// Payload sizes of layers q, h and f.
const SIZES: [usize; 3] = [200, 500, 1100];
const C: u64 = 30;

/// A publishes three layers; B and C subscribe. Returns (sim, A, B, C) once both receive.
fn three_layers() -> (Sim, usize, usize, usize) {
    let mut sim = Sim::new(false);
    sim.join(A, "alice");
    sim.join(B, "bob");
    sim.join(C, "carol");
    let b = sim.subscriber(B, addr(2, 6000));
    let c = sim.subscriber(C, addr(3, 7000));
    let a = sim.simulcast_publisher(A, addr(1, 5000), "alice-stream", "cam");
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.clients[a].connected()),
        "publisher connected"
    );
    stream(&mut sim, a, Duration::from_secs(2));
    assert!(
        !sim.clients[b].rtp.is_empty() && !sim.clients[c].rtp.is_empty(),
        "both receive: {:?} {:?}",
        sim.counters.snapshot(),
        sim.events
            .iter()
            .map(|e| format!("{e:?}").chars().take(90).collect::<String>())
            .collect::<Vec<_>>()
    );
    (sim, a, b, c)
}

/// A sends a frame of every layer each 20 ms for `d`.
fn stream(sim: &mut Sim, a: usize, d: Duration) {
    let end = sim.now + d;
    while sim.now < end {
        for (layer, size) in SIZES.iter().enumerate() {
            sim.clients[a].send_layer(sim.now, layer, *size);
        }
        sim.advance(Duration::from_millis(20));
    }
}

/// The layer (by payload size) of the last `n` packets a client received.
fn last_layers(sim: &Sim, client: usize, n: usize) -> Vec<usize> {
    let rtp = &sim.clients[client].rtp;
    rtp[rtp.len().saturating_sub(n)..]
        .iter()
        .map(|(_, p)| {
            SIZES
                .iter()
                .position(|s| *s == p.payload.len())
                .expect("a layer's size")
        })
        .collect()
}

fn show(sim: &mut Sim, key: u64, visible: bool, size: Option<(u32, u32)>) {
    let cmd = Command::SetVideoVisible {
        participant: key,
        track_id: "cam".into(),
        visible,
        size,
    };
    sim.core.handle_command(sim.now, cmd).expect("video view");
}

#[test]
fn each_subscriber_gets_one_layer_the_top_one_by_default() {
    let (mut sim, a, b, c) = three_layers();
    let before = sim.clients[b].rtp.len();
    stream(&mut sim, a, Duration::from_secs(1));
    let got = sim.clients[b].rtp.len() - before;
    assert!(
        (45..=51).contains(&got),
        "one layer's 50 frames, not three: {got}"
    );
    assert_eq!(last_layers(&sim, b, 40), vec![2; 40]);
    assert_eq!(last_layers(&sim, c, 40), vec![2; 40]);
    gap_free(&seqs(&sim, b)).expect("continuous");
    let ssrcs: std::collections::HashSet<u32> = sim.clients[b]
        .rtp
        .iter()
        .map(|(_, p)| p.header.ssrc)
        .collect();
    assert_eq!(ssrcs.len(), 1, "one SSRC on the leg, whatever the layer");
}

#[test]
fn a_small_tile_gets_a_small_layer_switched_at_its_keyframe_without_gaps() {
    let (mut sim, a, b, c) = three_layers();
    let plis_before = sim.counters.snapshot().keyframe_requests;
    // The Sim's keyframes say 640×360 for every layer: a 160×90 tile takes the lowest
    // layer that covers it, which is q (all equal, so the first).
    show(&mut sim, B, true, Some((160, 90)));
    stream(&mut sim, a, Duration::from_secs(1));
    assert_eq!(last_layers(&sim, b, 30), vec![0; 30], "bob moved to q");
    assert_eq!(last_layers(&sim, c, 30), vec![2; 30], "carol keeps f");
    assert!(
        sim.counters.snapshot().keyframe_requests > plis_before,
        "a keyframe of q was asked for"
    );
    let s = seqs(&sim, b);
    gap_free(&s).expect("sequence numbers continue across the switch");
    let ts: Vec<u32> = sim.clients[b]
        .rtp
        .iter()
        .map(|(_, p)| p.header.timestamp)
        .collect();
    assert!(
        ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) < 0x8000_0000),
        "timestamps never go back"
    );
    // Large again: back to f (through h: the estimate of a link that carried only q
    // allows 4 × that at first).
    show(&mut sim, B, true, Some((1280, 720)));
    stream(&mut sim, a, Duration::from_secs(4));
    assert_eq!(last_layers(&sim, b, 30), vec![2; 30], "bob back on f");
    gap_free(&seqs(&sim, b)).expect("and back without a gap");
}

#[test]
fn a_lossy_downlink_lowers_the_layer_and_never_stops_the_others() {
    let (mut sim, a, b, c) = three_layers();
    // Bob's downlink loses a third of its media: his estimate falls.
    let mut n = 0u32;
    sim.downlink_loss = Some(Box::new(move |i, data| {
        n += 1;
        i == b && is_rtp(data) && n.is_multiple_of(3)
    }));
    stream(&mut sim, a, Duration::from_secs(6));
    let bob = last_layers(&sim, b, 20);
    assert!(
        bob.iter().all(|l| *l < 2),
        "bob left the top layer: {bob:?}"
    );
    assert_eq!(last_layers(&sim, c, 30), vec![2; 30], "carol unaffected");
    sim.downlink_loss = None;
    // The loss is gone: the estimate climbs and bob is raised back to f.
    stream(&mut sim, a, Duration::from_secs(15));
    assert_eq!(
        last_layers(&sim, b, 20),
        vec![2; 20],
        "bob back on the top layer"
    );
}

#[test]
fn nobody_watching_switches_layers_off_at_the_publisher_and_on_again() {
    let (mut sim, a, _b, _c) = three_layers();
    let layers_told = |sim: &Sim| -> Vec<Vec<LayerState>> {
        sim.events_of(A)
            .filter_map(|e| match e {
                SfuEvent::PublishLayers { track_id, layers } => {
                    assert_eq!(track_id, "cam", "the client's own track id");
                    Some(layers.clone())
                }
                _ => None,
            })
            .collect()
    };
    let state = |q, h, f| {
        vec![
            LayerState {
                rid: "q".into(),
                active: q,
            },
            LayerState {
                rid: "h".into(),
                active: h,
            },
            LayerState {
                rid: "f".into(),
                active: f,
            },
        ]
    };
    // Both show it large: every layer up to the top one is needed.
    stream(&mut sim, a, Duration::from_secs(2));
    assert!(layers_told(&sim).is_empty(), "all layers stay on");
    // Both show it small: h and f go, after the grace period.
    show(&mut sim, B, true, Some((160, 90)));
    show(&mut sim, C, true, Some((160, 90)));
    stream(&mut sim, a, Duration::from_secs(2));
    assert!(layers_told(&sim).is_empty(), "not before the grace period");
    stream(&mut sim, a, Duration::from_secs(2));
    assert_eq!(layers_told(&sim), vec![state(true, false, false)]);
    // Nobody shows it at all: q goes too.
    show(&mut sim, B, false, None);
    show(&mut sim, C, false, None);
    stream(&mut sim, a, Duration::from_secs(4));
    assert_eq!(layers_told(&sim).last(), Some(&state(false, false, false)));
    // Carol shows it large: every layer at once.
    show(&mut sim, C, true, Some((1280, 720)));
    sim.advance(Duration::from_millis(10));
    assert_eq!(layers_told(&sim).last(), Some(&state(true, true, true)));
}
