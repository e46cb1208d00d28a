//! Signaling-only clients over the cluster: raw protocol sockets that join, leave and
//! reload through random nodes, and the state the nodes share (revocations, failed
//! sign-ins).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use theraroom_load::rest;
use tokio_tungstenite::tungstenite::Message;

use super::harness::Cluster;
use super::rtc_common::ws::{expect_type, Ws};

/// Longest wait for one protocol step.
const STEP: Duration = Duration::from_secs(10);

/// Opens `/rtc` on `url` and sends `first`; answers the first message whose type is
/// one of `want` (or a fatal error), with the socket.
async fn open(url: &str, first: Value, want: &[&str]) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("open /rtc");
    ws.send(Message::Text(first.to_string().into()))
        .await
        .expect("send");
    let reply = tokio::time::timeout(STEP, async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(text) = frame {
                let m: Value = serde_json::from_str(text.as_str()).expect("JSON");
                let kind = m["type"].as_str().unwrap_or_default();
                if want.contains(&kind) || (kind == "error" && m["fatal"] == true) {
                    return m;
                }
            }
        }
        json!({"type": "closed"})
    })
    .await
    .expect("an answer in time");
    (ws, reply)
}

async fn join(url: &str, session_id: &str, token: &str) -> (Ws, String) {
    let first = json!({"type": "join", "protocol": 1, "session_id": session_id, "token": token});
    let (ws, m) = open(url, first, &["joined"]).await;
    assert_eq!(m["type"], "joined", "join through {url}: {m}");
    (
        ws,
        m["participant_id"]
            .as_str()
            .expect("participant id")
            .to_string(),
    )
}

/// Sends `leave` and waits for the close.
async fn leave(mut ws: Ws) {
    let _ = ws
        .send(Message::Text(json!({"type": "leave"}).to_string().into()))
        .await;
    let _ = tokio::time::timeout(STEP, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

/// One person's seat in the churn: its token, and its socket while joined.
struct Seat {
    session: usize,
    token: String,
    socket: Option<Ws>,
    ever_joined: bool,
}

/// `ops` random joins, leaves and reloads by 40 guests of 10 sessions, through random
/// nodes, 8 at a time; then Redis must hold exactly the rooms and participants the
/// nodes hold, and every person has one participant row.
pub async fn random_churn(cluster: &mut Cluster, ops: usize) {
    let (sessions, seats) = seat_rooms(cluster, 10, 4).await;
    let urls: Vec<String> = cluster.nodes.nodes.iter().map(|n| n.ws.clone()).collect();
    let seats = churn_in_lanes(urls, &sessions, seats, ops, 8).await;
    let in_nodes = cluster
        .redis_follows(Duration::from_secs(20), "after the churn")
        .await;
    let joined = seats.iter().filter(|s| s.socket.is_some()).count();
    let held: usize = in_nodes.values().map(|(_, p)| p.len()).sum();
    // Sockets dropped by a reload that went to another node may linger in their grace
    // period on the old room's node only if the room moved; rooms never move here.
    assert_eq!(held, joined, "the nodes hold exactly the seated sockets");
    let nodes_used: BTreeSet<&String> = in_nodes.values().map(|(n, _)| n).collect();
    eprintln!(
        "churn: {} rooms on {} nodes, {held} participants",
        in_nodes.len(),
        nodes_used.len()
    );
    one_row_per_person(cluster, &sessions, &seats).await;
    reconnect_storm(cluster, seats, &sessions).await;
}

/// `rooms` sessions of the therapist, each with `guests` guest tokens (the seats).
async fn seat_rooms(cluster: &Cluster, rooms: usize, guests: usize) -> (Vec<String>, Vec<Seat>) {
    let base = &cluster.nodes.nodes[0].base;
    let token = &cluster.nodes.therapist_token;
    let mut sessions = Vec::new();
    let mut seats = Vec::new();
    for s in 0..rooms {
        let session = rest::create_session(base, token, &format!("Churn {s}"), 10)
            .await
            .expect("session");
        for g in 0..guests {
            let guest = rest::guest_token(base, &session.share_token, &format!("Guest {g}"))
                .await
                .expect("guest token");
            seats.push(Seat {
                session: s,
                token: guest.token,
                socket: None,
                ever_joined: false,
            });
        }
        sessions.push(session.id);
    }
    (sessions, seats)
}

/// `ops` random joins, leaves and reloads through random nodes, by `lanes` concurrent
/// lanes that each own a share of the seats. Gives the seats back as they end.
async fn churn_in_lanes(
    urls: Vec<String>,
    sessions: &[String],
    seats: Vec<Seat>,
    ops: usize,
    lanes: usize,
) -> Vec<Seat> {
    let mut lane_seats: Vec<Vec<Seat>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, seat) in seats.into_iter().enumerate() {
        lane_seats[i % lanes].push(seat);
    }
    let counts = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<&'static str, usize>::new()));
    let mut tasks = Vec::new();
    for (lane, mut seats) in lane_seats.into_iter().enumerate() {
        let (urls, sessions, counts) = (urls.clone(), sessions.to_vec(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(lane as u64 + 1);
            for _ in 0..ops / lanes {
                let pick = rng.gen_range(0..seats.len());
                let seat = &mut seats[pick];
                let url = &urls[rng.gen_range(0..urls.len())];
                let session = &sessions[seat.session];
                let op = match seat.socket.take() {
                    None => {
                        seat.socket = Some(join(url, session, &seat.token).await.0);
                        seat.ever_joined = true;
                        "join"
                    }
                    Some(ws) if rng.gen_bool(0.5) => {
                        leave(ws).await;
                        "leave"
                    }
                    Some(ws) => {
                        drop(ws); // a reload: the page goes, and comes back at once
                        seat.socket = Some(join(url, session, &seat.token).await.0);
                        "reload"
                    }
                };
                *counts.lock().unwrap().entry(op).or_default() += 1;
            }
            seats
        }));
    }
    let mut seats = Vec::new();
    for task in tasks {
        seats.extend(task.await.expect("lane"));
    }
    eprintln!("churn: {:?}", counts.lock().unwrap());
    seats
}

/// Every session has one participant row per person who ever joined it, however
/// often they reloaded or through whichever node.
async fn one_row_per_person(cluster: &Cluster, sessions: &[String], seats: &[Seat]) {
    let base = &cluster.nodes.nodes[0].base;
    for (s, session) in sessions.iter().enumerate() {
        let rows = rest::participants(base, &cluster.nodes.therapist_token, session)
            .await
            .expect("rows");
        let people = seats
            .iter()
            .filter(|seat| seat.session == s && seat.ever_joined)
            .count();
        assert_eq!(
            rows.len(),
            people,
            "one row per person in {session}: {rows:?}"
        );
    }
}

/// Kills the node holding the most rooms; every seated client reconnects at once
/// through a live node. Afterwards no room is held twice or by the dead node, every
/// client is back, and Redis again holds exactly what the nodes hold.
async fn reconnect_storm(cluster: &mut Cluster, seats: Vec<Seat>, sessions: &[String]) {
    let in_nodes = cluster.node_rooms().await;
    let mut per_node: BTreeMap<&String, usize> = BTreeMap::new();
    for (node, _) in in_nodes.values() {
        *per_node.entry(node).or_default() += 1;
    }
    let (busiest, rooms) = per_node
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(n, c)| ((*n).clone(), *c))
        .expect("rooms");
    let dead = cluster
        .nodes
        .nodes
        .iter()
        .position(|n| n.id == busiest)
        .expect("node");
    cluster.nodes.kill(dead);
    let live: Vec<String> = cluster
        .nodes
        .nodes
        .iter()
        .filter(|n| n.running())
        .map(|n| n.ws.clone())
        .collect();
    let mut storm = tokio::task::JoinSet::new();
    for (i, seat) in seats.into_iter().enumerate() {
        let Some(ws) = seat.socket else { continue };
        drop(ws);
        let url = live[i % live.len()].clone();
        let session = sessions[seat.session].clone();
        storm.spawn(async move { join(&url, &session, &seat.token).await });
    }
    let rejoined = storm.join_all().await;
    eprintln!(
        "storm: {busiest} (holding {rooms} rooms) killed, {} clients rejoined at once",
        rejoined.len()
    );
    let in_nodes = cluster
        .redis_follows(Duration::from_secs(20), "after the storm")
        .await;
    assert!(
        in_nodes.values().all(|(node, _)| *node != busiest),
        "no room left on the dead node"
    );
    let held: usize = in_nodes.values().map(|(_, p)| p.len()).sum();
    assert_eq!(held, rejoined.len(), "every client is back, once");
}

/// A notification made on one node reaches its user's `listen` socket on another; a
/// revoked token closes its socket on another node; guest tokens and failed sign-ins
/// count once across the nodes.
pub async fn shared_state(cluster: &Cluster) {
    notification_crosses_the_nodes(cluster).await;
    let nodes = &cluster.nodes.nodes;
    let session = rest::create_session(&nodes[0].base, &cluster.nodes.therapist_token, "Shared", 4)
        .await
        .expect("session");
    let guest = rest::guest_token(&nodes[0].base, &session.share_token, "Listener")
        .await
        .expect("guest");
    let (mut ws, m) = open(
        &nodes[2].ws,
        json!({"type": "listen", "protocol": 1, "token": guest.token}),
        &["listening"],
    )
    .await;
    assert_eq!(m["type"], "listening", "{m}");
    let r = rest::request(
        &nodes[0].base,
        "POST",
        "/api/auth/logout",
        Some(&guest.token),
        None,
    )
    .await
    .expect("logout");
    assert!(
        r.status == 204 || r.status == 200,
        "sign-out on node a: {}",
        r.status
    );
    let revoked = tokio::time::timeout(STEP, async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(text) = frame {
                let m: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if m["type"] == "error" {
                    return m["code"].as_str().unwrap_or_default().to_string();
                }
            }
        }
        String::from("closed without an error")
    })
    .await
    .expect("the socket on node c hears of the revocation");
    assert_eq!(revoked, "token_revoked");

    // Guest tokens: 4 per address and minute across the nodes; the listener's was one.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let path = format!("/api/join/{}/guest", session.share_token);
        let body = json!({"name": format!("Guest {i}")});
        let r = rest::request(&nodes[i % 3].base, "POST", &path, None, Some(&body))
            .await
            .expect("request");
        statuses.push(r.status);
    }
    assert_eq!(
        statuses,
        [201, 201, 201, 429],
        "the 5th guest token of the minute, on a node that gave one, is refused"
    );

    // 20 failed authentications per address and minute, counted across the nodes.
    let mut statuses = Vec::new();
    for i in 0..21 {
        let base = &nodes[i % 3].base;
        let r = rest::request(base, "GET", "/api/sessions", Some("not-a-token"), None)
            .await
            .expect("request");
        statuses.push(r.status);
    }
    assert!(
        statuses[..20].iter().all(|s| *s == 401),
        "the first 20 are refused as unauthorized: {statuses:?}"
    );
    assert_eq!(
        statuses[20], 429,
        "the 21st, on a node that saw only 7, is rate limited: {statuses:?}"
    );
}

/// The therapist books a session with their client on node a; the client, listening on
/// node c, is told at once (`booking_confirmed`).
async fn notification_crosses_the_nodes(cluster: &Cluster) {
    let nodes = &cluster.nodes.nodes;
    let demo = &cluster.nodes.demo;
    let client_token = demo["client"]["token"].as_str().expect("client token");
    let (mut ws, m) = open(
        &nodes[2].ws,
        json!({"type": "listen", "protocol": 1, "token": client_token}),
        &["listening"],
    )
    .await;
    assert_eq!(m["type"], "listening", "{m}");
    let therapist = &cluster.nodes.therapist_token;
    let body = json!({
        "therapist_id": demo["therapists"][0]["id"],
        "client_id": demo["client"]["id"],
        "start": "2030-08-05T10:00:00Z",
        "end": "2030-08-05T11:00:00Z",
    });
    let base = &nodes[0].base;
    let hold = rest::request(
        base,
        "POST",
        "/api/schedule/holds",
        Some(therapist),
        Some(&body),
    )
    .await
    .expect("hold");
    let hold = hold.json();
    let key = hold["hold_key"]
        .as_str()
        .unwrap_or_else(|| panic!("a hold: {hold}"));
    let path = format!("/api/schedule/holds/{key}/confirm");
    let booked = rest::request(base, "POST", &path, Some(therapist), None)
        .await
        .expect("confirm");
    assert_eq!(booked.status, 201, "booked: {}", booked.json());
    let pushed = expect_type(&mut ws, "notification", "the client on node c").await;
    assert_eq!(
        pushed["notification"]["type"], "booking_confirmed",
        "{pushed}"
    );
    let _ = ws.close(None).await;
}
