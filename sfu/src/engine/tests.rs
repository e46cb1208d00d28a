//! End-to-end tests of the core against client-side rtc peers on an in-memory network
//! with a simulated clock (see [`super::testing`]).

use std::net::SocketAddr;
use std::time::Duration;

use super::testing::Sim;
use super::{Command, Footprint};
use crate::types::{MediaKind, PcRole, SfuEvent};

const A: u64 = 10;
const B: u64 = 20;

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], port))
}

/// A publishes one video track, B subscribes to it; returns (sim, A's client, B's client)
/// once B receives media.
fn a_to_b(ice_lite: bool) -> (Sim, usize, usize) {
    let mut sim = Sim::new(ice_lite);
    sim.join(A, "alice");
    sim.join(B, "bob");
    let b = sim.subscriber(B, addr(2, 6000));
    let a = sim.publisher(A, addr(1, 5000), "alice-stream", "cam");
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.clients[a].connected()),
        "publisher connected"
    );
    let flowing = {
        let mut ok = false;
        for _ in 0..250 {
            sim.clients[a].send_rtp(sim.now, 1000);
            sim.advance(Duration::from_millis(20));
            if !sim.clients[b].rtp.is_empty() {
                ok = true;
                break;
            }
        }
        ok
    };
    assert!(flowing, "media reached the subscriber; events: {:?}", sim.events);
    (sim, a, b)
}

#[test]
fn publisher_media_reaches_the_subscriber_with_the_announced_msid() {
    let (mut sim, a, b) = a_to_b(false);
    sim.stream(a, Duration::from_millis(400));

    // Announced once, to everyone including the publisher.
    let published: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(k, e)| match e {
            SfuEvent::TrackPublished {
                participant_id,
                track,
            } => Some((*k, participant_id.clone(), track.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(published.len(), 2, "{published:?}");
    for (_, pid, track) in &published {
        assert_eq!(pid, "alice");
        assert_eq!(track.track_id, "cam");
        assert_eq!(track.stream_id, "alice");
        assert_eq!(track.kind, MediaKind::Video);
    }

    // B's remote track carries stream id = publisher id, track id = announced id.
    let opened = &sim.clients[b].opened;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].stream_ids, vec!["alice".to_owned()]);
    assert_eq!(opened[0].track_id, "cam");
    let offers: Vec<&String> = sim
        .events_of(B)
        .filter_map(|e| match e {
            SfuEvent::SubscriberOffer { sdp } => Some(sdp),
            _ => None,
        })
        .collect();
    assert_eq!(offers.len(), 1);
    assert!(offers[0].contains("a=msid-semantic"), "{}", offers[0]);
    assert!(offers[0].contains("a=msid:alice cam"), "{}", offers[0]);

    // Everything sent after the leg started arrived, in order, on the leg's SSRC.
    let got = &sim.clients[b].rtp;
    assert!(got.len() >= 20, "only {} packets", got.len());
    assert!(got.iter().all(|(track, _)| track == "cam"));
    let seqs: Vec<u16> = got.iter().map(|(_, p)| p.header.sequence_number).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "{seqs:?}");
    assert_eq!(got.iter().map(|(_, p)| p.header.ssrc).collect::<std::collections::HashSet<_>>().len(), 1);
    assert_ne!(got[0].1.header.ssrc, sim.clients[a].ssrc, "leg SSRC is the server's own");

    // MediaFlowing once, for B only; connection states in W3C spelling.
    assert_eq!(sim.events_of(B).filter(|e| **e == SfuEvent::MediaFlowing).count(), 1);
    assert_eq!(sim.events_of(A).filter(|e| **e == SfuEvent::MediaFlowing).count(), 0);
    for (key, pc) in [(A, PcRole::Publisher), (B, PcRole::Subscriber)] {
        assert!(sim.events_of(key).any(|e| *e
            == SfuEvent::ConnectionState {
                pc,
                state: "connected".into()
            }));
    }
    let stats = sim.counters.snapshot();
    assert_eq!((stats.rooms, stats.participants), (1, 2));
    assert_eq!((stats.published_tracks, stats.forwarded_tracks), (1, 1));
    assert!(stats.forwarded_packets >= got.len() as u64);
}

#[test]
fn closing_the_room_frees_everything() {
    let (mut sim, _, _) = a_to_b(false);
    assert_ne!(sim.core.footprint(), Footprint::default());
    sim.core
        .handle_command(sim.now, Command::CloseRoom { room: 1 })
        .expect("close");
    assert_eq!(
        sim.core.footprint(),
        Footprint {
            rooms: 0,
            participants: 0,
            routed_connections: 0,
            bound_addresses: 0,
            timers: 0,
        }
    );
    let stats = sim.counters.snapshot();
    assert_eq!(
        (stats.rooms, stats.participants, stats.published_tracks, stats.forwarded_tracks),
        (0, 0, 0, 0)
    );
    assert_eq!(sim.core.poll_timeout(), None);
}
