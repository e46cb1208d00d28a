//! Membership and negotiation: joining, leaving, rejoining, publishing, unpublishing.

use std::time::Duration;

use super::{a_to_b, addr, offers_of, A, B};
use crate::engine::testing::Sim;
use crate::engine::{Command, Footprint, Reply};
use crate::types::SfuEvent;

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
        (
            stats.rooms,
            stats.participants,
            stats.published_tracks,
            stats.forwarded_tracks
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(sim.core.poll_timeout(), None);
}

#[test]
fn a_participant_leaving_unpublishes_and_renegotiates() {
    let (mut sim, _, _) = a_to_b(false);
    sim.core
        .handle_command(sim.now, Command::RemoveParticipant { participant: A })
        .expect("remove");
    sim.advance(Duration::from_millis(200));
    let unpublished: Vec<_> = sim
        .events_of(B)
        .filter(|e| matches!(e, SfuEvent::TrackUnpublished { .. }))
        .collect();
    assert_eq!(
        unpublished,
        vec![&SfuEvent::TrackUnpublished {
            participant_id: "alice".into(),
            track_id: "cam".into()
        }]
    );
    let offers = sim
        .events_of(B)
        .filter(|e| matches!(e, SfuEvent::SubscriberOffer { .. }))
        .count();
    assert_eq!(offers, 2, "a second offer removes the leg");
    let stats = sim.counters.snapshot();
    assert_eq!(
        (
            stats.participants,
            stats.published_tracks,
            stats.forwarded_tracks
        ),
        (1, 0, 0)
    );
    let f = sim.core.footprint();
    assert_eq!(
        (f.participants, f.routed_connections, f.bound_addresses),
        (1, 1, 1)
    );
    assert_eq!(
        sim.core
            .handle_command(sim.now, Command::Tracks { room: 1 })
            .expect("tracks"),
        Reply::Tracks(vec![])
    );
}

#[test]
fn a_late_joiner_gets_an_offer_at_once_and_the_media() {
    let (mut sim, a, _) = a_to_b(false);
    let tracks = sim
        .core
        .handle_command(sim.now, Command::Tracks { room: 1 })
        .expect("tracks");
    let Reply::Tracks(tracks) = tracks else {
        panic!("{tracks:?}")
    };
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].0, "alice");
    const C: u64 = 30;
    sim.join(C, "carol");
    let c = sim.subscriber(C, addr(3, 7000));
    // The offer was queued at join; the client answers it when the events are read.
    sim.pump();
    assert!(
        sim.events_of(C)
            .any(|e| matches!(e, SfuEvent::SubscriberOffer { .. })),
        "offer at join"
    );
    let mut ok = false;
    for _ in 0..100 {
        sim.clients[a].send_rtp(sim.now, 500);
        sim.advance(Duration::from_millis(20));
        if !sim.clients[c].rtp.is_empty() {
            ok = true;
            break;
        }
    }
    assert!(ok, "carol receives alice");
    assert_eq!(sim.counters.snapshot().forwarded_tracks, 2);
}

#[test]
fn commands_for_unknown_participants_fail_cleanly() {
    let mut sim = Sim::new(false);
    let cmd = Command::PublisherOffer {
        participant: 77,
        sdp: "v=0".into(),
        sources: Vec::new(),
    };
    assert!(matches!(
        sim.core.handle_command(sim.now, cmd),
        Err(crate::SfuError::Closed)
    ));
    sim.join(A, "alice");
    let bad = Command::PublisherOffer {
        participant: A,
        sdp: "not sdp".into(),
        sources: Vec::new(),
    };
    assert!(matches!(
        sim.core.handle_command(sim.now, bad),
        Err(crate::SfuError::InvalidSdp(_))
    ));
    let early = Command::SubscriberAnswer {
        participant: A,
        sdp: "v=0".into(),
    };
    assert!(matches!(
        sim.core.handle_command(sim.now, early),
        Err(crate::SfuError::InvalidState(_))
    ));
    let dup = Command::AddParticipant {
        room: 1,
        participant: A,
        id: "again".into(),
    };
    assert!(
        sim.core.handle_command(sim.now, dup).is_err(),
        "key reuse refused"
    );
    let nowhere = Command::AddParticipant {
        room: 99,
        participant: 5,
        id: "x".into(),
    };
    assert!(matches!(
        sim.core.handle_command(sim.now, nowhere),
        Err(crate::SfuError::Closed)
    ));
}

#[test]
fn rejoining_under_the_same_id_replaces_the_old_participant() {
    let (mut sim, _, _) = a_to_b(false);
    const A2: u64 = 11;
    sim.join(A2, "alice");
    sim.pump();
    let stats = sim.counters.snapshot();
    assert_eq!(
        (
            stats.participants,
            stats.published_tracks,
            stats.forwarded_tracks
        ),
        (2, 0, 0)
    );
    assert!(sim
        .events_of(B)
        .any(|e| matches!(e, SfuEvent::TrackUnpublished { .. })));
    let cmd = Command::PublisherOffer {
        participant: A,
        sdp: "v=0".into(),
        sources: Vec::new(),
    };
    assert!(
        matches!(
            sim.core.handle_command(sim.now, cmd),
            Err(crate::SfuError::Closed)
        ),
        "old key is gone"
    );
}

#[test]
fn a_track_the_publisher_removes_is_unpublished() {
    let (mut sim, a, _) = a_to_b(false);
    let c = &mut sim.clients[a];
    let sender = c.sender.take().expect("sender");
    c.pc.remove_track(sender).expect("remove track");
    let offer = c.pc.create_offer(None).expect("offer");
    c.pc.set_local_description(sim.now, offer.clone())
        .expect("local");
    let reply = sim
        .core
        .handle_command(
            sim.now,
            Command::PublisherOffer {
                participant: A,
                sdp: offer.sdp,
                sources: Vec::new(),
            },
        )
        .expect("renegotiation accepted");
    let Reply::Answer(answer) = reply else {
        panic!("{reply:?}")
    };
    let answer = rtc::peer_connection::sdp::RTCSessionDescription::answer(answer).expect("sdp");
    sim.clients[a]
        .pc
        .set_remote_description(sim.now, answer)
        .expect("remote");
    sim.advance(Duration::from_millis(200));
    for key in [A, B] {
        assert_eq!(
            sim.events_of(key)
                .filter(|e| matches!(e, SfuEvent::TrackUnpublished { .. }))
                .count(),
            1,
            "participant {key}"
        );
    }
    let stats = sim.counters.snapshot();
    assert_eq!((stats.published_tracks, stats.forwarded_tracks), (0, 0));
    assert_eq!(offers_of(&sim, B).len(), 2);
}

#[test]
fn removing_everyone_frees_every_connection_route_and_timer() {
    let (mut sim, _, _) = a_to_b(false);
    for participant in [B, A] {
        sim.core
            .handle_command(sim.now, Command::RemoveParticipant { participant })
            .expect("remove");
    }
    sim.advance(Duration::from_secs(1));
    assert_eq!(
        sim.core.footprint(),
        Footprint {
            rooms: 1,
            ..Footprint::default()
        }
    );
    let stats = sim.counters.snapshot();
    assert_eq!(
        (
            stats.rooms,
            stats.participants,
            stats.published_tracks,
            stats.forwarded_tracks
        ),
        (1, 0, 0, 0)
    );
}
