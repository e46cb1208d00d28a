//! End-to-end tests of the core against client-side rtc peers on an in-memory network
//! with a simulated clock (see [`super::testing`]): forwarding and repair in [`media`],
//! membership and negotiation in [`session`], ICE and demultiplexing in [`ice`], active
//! speakers in [`speakers`], connection quality in [`quality`].

mod ice;
mod media;
mod quality;
mod session;
mod simulcast;
mod speakers;

use std::net::SocketAddr;
use std::time::Duration;

use super::testing::Sim;
use crate::types::SfuEvent;

pub(super) const A: u64 = 10;
pub(super) const B: u64 = 20;

pub(super) fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], port))
}

/// A publishes one video track, B subscribes to it; returns (sim, A's client, B's client)
/// once B receives media.
pub(super) fn a_to_b(ice_lite: bool) -> (Sim, usize, usize) {
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
    assert!(
        flowing,
        "media reached the subscriber; events: {:?}",
        sim.events
    );
    (sim, a, b)
}

/// Whether a datagram is an (S)RTP media packet, not RTCP, DTLS or STUN.
pub(super) fn is_rtp(data: &[u8]) -> bool {
    data.len() > 12 && (128..192).contains(&data[0]) && !(192..224).contains(&data[1])
}

pub(super) fn seqs(sim: &Sim, client: usize) -> Vec<u16> {
    sim.clients[client]
        .rtp
        .iter()
        .map(|(_, p)| p.header.sequence_number)
        .collect()
}

/// Every sequence number between the first and the last one received arrived.
pub(super) fn gap_free(seqs: &[u16]) -> Result<(), Vec<u16>> {
    // No wrap in these tests: sequence numbers start near 1000.
    let first = *seqs.iter().min().ok_or_else(Vec::new)?;
    let last = *seqs.iter().max().ok_or_else(Vec::new)?;
    let have: std::collections::HashSet<u16> = seqs.iter().copied().collect();
    let missing: Vec<u16> = (0..=last.wrapping_sub(first))
        .map(|d| first.wrapping_add(d))
        .filter(|s| !have.contains(s))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}

pub(super) fn offers_of(sim: &Sim, key: u64) -> Vec<String> {
    sim.events_of(key)
        .filter_map(|e| match e {
            SfuEvent::SubscriberOffer { sdp } => Some(sdp.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn ufrag_of(sdp: &str) -> String {
    crate::engine::sdp::ice_credentials(sdp)
        .expect("credentials")
        .0
}
