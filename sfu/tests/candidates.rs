//! Early ICE candidates (sent before any offer) are buffered within a bound: a client
//! cannot grow the server by trickling candidates it never follows with an offer.
//! Opens real peer connections: run inside a network namespace (scripts/test.sh).

use sfu::{IceCandidate, PcRole, Sfu, SfuConfig, MAX_EARLY_CANDIDATES, MAX_EARLY_CANDIDATE_BYTES};
use tokio::sync::mpsc;

fn candidate(port: u32, padding: usize) -> IceCandidate {
    IceCandidate {
        candidate: format!(
            "candidate:{port} 1 udp 2130706431 127.0.0.1 {port} typ host{}",
            " ".repeat(padding)
        ),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    }
}

#[tokio::test]
async fn ten_thousand_candidates_before_an_offer_stay_bounded() {
    let sfu = Sfu::new(SfuConfig::default()).expect("sfu");
    let room = sfu.open_room("r1");
    let (tx, _rx) = mpsc::unbounded_channel();
    let p = room.add_participant("p1", tx).await.expect("participant");

    // Small candidates: the count bound holds.
    for i in 0..10_000 {
        p.add_ice_candidate(PcRole::Publisher, Some(candidate(10_000 + i, 0)))
            .await
            .expect("buffered or dropped, never an error");
    }
    assert_eq!(
        p.pending_candidates(PcRole::Publisher).await,
        MAX_EARLY_CANDIDATES
    );
    assert_eq!(
        sfu.stats().dropped_candidates,
        10_000 - MAX_EARLY_CANDIDATES as u64
    );

    // Large candidates: the byte bound holds long before the count bound.
    let padding = 4 * 1024;
    for i in 0..1_000 {
        p.add_ice_candidate(PcRole::Subscriber, Some(candidate(20_000 + i, padding)))
            .await
            .expect("buffered or dropped");
    }
    let kept = p.pending_candidates(PcRole::Subscriber).await;
    assert!(kept >= 1, "the first ones are kept");
    assert!(
        kept * padding <= MAX_EARLY_CANDIDATE_BYTES,
        "{kept} candidates of {padding} bytes exceed the byte bound"
    );
    assert_eq!(
        sfu.stats().dropped_candidates,
        10_000 - MAX_EARLY_CANDIDATES as u64 + (1_000 - kept as u64)
    );
    p.close().await;
}
