//! The single-port design, end to end: 50 participants in 25 rooms share exactly the
//! configured media sockets (one per worker), every datagram reaches the right
//! connection, and datagrams from an unknown address or with an unknown ICE ufrag are
//! dropped and counted, never routed.

mod common;

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{init_tracing, receiving_from, wait_until, warm_up, TestClient};
use sfu::{Sfu, SfuConfig};

const WORKERS: usize = 2;
const ROOMS: usize = 25;

/// Local ports of every UDP socket in this network namespace (`/proc/net/udp`).
fn udp_ports() -> Vec<u16> {
    let text = std::fs::read_to_string("/proc/self/net/udp").expect("read /proc/self/net/udp");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let local = line.split_whitespace().nth(1)?;
            let port = local.split(':').nth(1)?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// A STUN binding request whose USERNAME names a local ufrag no connection has.
fn stun_request_with_unknown_ufrag() -> Vec<u8> {
    let username = b"nosuchufrag:client1";
    let padded = username.len().div_ceil(4) * 4;
    let mut m = Vec::new();
    m.extend_from_slice(&0x0001u16.to_be_bytes()); // Binding request
    m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(&[7u8; 12]); // transaction id
    m.extend_from_slice(&0x0006u16.to_be_bytes()); // USERNAME
    m.extend_from_slice(&(username.len() as u16).to_be_bytes());
    m.extend_from_slice(username);
    m.resize(20 + 4 + padded, 0);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_participants_share_one_socket_per_worker_and_strays_are_dropped() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(240), async {
        let sfu = Sfu::new(SfuConfig {
            workers: WORKERS,
            ..SfuConfig::default()
        })
        .expect("sfu");
        let media: Vec<SocketAddr> = sfu.media_addrs();
        assert_eq!(media.len(), WORKERS);
        let media_ports: HashSet<u16> = media.iter().map(|a| a.port()).collect();

        let mut rooms = Vec::new();
        let mut clients = Vec::new();
        for r in 0..ROOMS {
            let room = sfu.open_room(&format!("room-{r}"));
            let a = TestClient::join(&room, &format!("a{r}"), true, true).await;
            let b = TestClient::join(&room, &format!("b{r}"), true, true).await;
            clients.push((a, b));
            rooms.push(room);
        }
        assert_eq!(sfu.stats().participants, 2 * ROOMS as u64);

        // Every server candidate of the 100 connections names a worker socket.
        let ok = wait_until(Duration::from_secs(20), || {
            clients.iter().all(|(a, b)| {
                !a.log.candidates.lock().unwrap().is_empty()
                    && !b.log.candidates.lock().unwrap().is_empty()
            })
        })
        .await;
        assert!(ok, "server candidates missing");
        let mut used = HashSet::new();
        for (a, b) in &clients {
            for c in a
                .log
                .candidates
                .lock()
                .unwrap()
                .iter()
                .chain(b.log.candidates.lock().unwrap().iter())
            {
                let fields: Vec<&str> = c.split_whitespace().collect();
                let port: u16 = fields[5].parse().expect("candidate port");
                assert!(
                    media_ports.contains(&port),
                    "candidate outside the media sockets: {c}"
                );
                used.insert(port);
            }
        }
        assert_eq!(used.len(), WORKERS, "rooms are spread over every worker");

        // Media flows within each room and only there.
        let everyone: Vec<&TestClient> = clients.iter().flat_map(|(a, b)| [a, b]).collect();
        let _senders = warm_up(&everyone, || {
            clients
                .iter()
                .all(|(a, b)| receiving_from(a, &b.id) && receiving_from(b, &a.id))
        })
        .await;
        for (a, b) in &clients {
            for (me, partner) in [(a, b), (b, a)] {
                for (_, t) in me.received.snapshot() {
                    assert_eq!(
                        t.stream_id, partner.id,
                        "{} received a track of {}",
                        me.id, t.stream_id
                    );
                }
            }
        }

        // Exactly one UDP socket per worker serves all of it.
        let on_media = udp_ports()
            .into_iter()
            .filter(|p| media_ports.contains(p))
            .count();
        assert_eq!(on_media, WORKERS, "media sockets in use");

        // Strays: an unknown address sending junk, and a STUN check for an unknown ufrag.
        let before = sfu.stats();
        let stray = UdpSocket::bind("127.0.0.1:0").expect("stray socket");
        for addr in &media {
            stray
                .send_to(&[0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], addr)
                .expect("send junk");
            stray
                .send_to(&stun_request_with_unknown_ufrag(), addr)
                .expect("send stun");
        }
        let ok = wait_until(Duration::from_secs(5), || {
            sfu.stats().unrouted_datagrams() >= before.unrouted_datagrams() + 2 * WORKERS as u64
        })
        .await;
        assert!(ok, "stray datagrams not counted: {:?}", sfu.stats());
        let mut buf = [0u8; 1500];
        stray
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        assert!(
            stray.recv_from(&mut buf).is_err(),
            "the SFU answered a stray datagram"
        );
        // ...and the rooms did not notice.
        for (a, b) in &clients {
            assert!(
                a.pub_connected.load(std::sync::atomic::Ordering::SeqCst),
                "{} publisher dropped",
                a.id
            );
            assert!(
                b.sub_connected.load(std::sync::atomic::Ordering::SeqCst),
                "{} subscriber dropped",
                b.id
            );
        }

        for (a, b) in clients {
            a.close().await;
            b.close().await;
        }
        for room in &rooms {
            room.close();
        }
        let ok = wait_until(Duration::from_secs(10), || {
            let s = sfu.stats();
            s.rooms == 0
                && s.participants == 0
                && s.published_tracks == 0
                && s.forwarded_tracks == 0
        })
        .await;
        assert!(ok, "gauges not back to zero: {:?}", sfu.stats());
    })
    .await
    .expect("test timed out");
}
