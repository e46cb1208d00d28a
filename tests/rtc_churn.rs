//! Churn: 1,000 join/leave cycles against the real in-process server over the `/rtc`
//! WebSocket, mixed across a few sessions, then checks that nothing stayed behind: no
//! room in the hub, no active participant row, tokio's alive tasks back to where they
//! were, and a flat resident set size.
//!
//! The clients speak the signaling protocol only (they never answer the server's
//! offers): the server still creates its peer connections for every join, so the
//! media plane is churned too. Each cycle is one guest joining, then one of:
//! - `leave`: sends `leave`, expects `left` and the close;
//! - drop: closes the TCP connection without `leave` (the reconnect grace is short);
//! - reload: a second socket joins with the same token (same participant, `resumed`),
//!   the first one gets `error` `replaced`, the second leaves;
//! - removal: the therapist removes the guest over REST; the guest gets `removed`.
//!   A removed guest cannot come back and their link is withdrawn, so removals use a
//!   fresh guest from the session's current link.
//!
//! Two of the sessions keep their therapist in the room all along (the room lives on
//! while guests come and go); in the others every cycle creates and drops the room.
//! Only the public protocol and public REST routes are used. Run inside a private
//! network namespace, like `tests/rtc_video.rs`:
//!
//! ```sh
//! cargo test -p theraroom --test rtc_churn --no-run
//! unshare -n sh -c 'ip link set lo up; cargo test -p theraroom --test rtc_churn --offline -- --nocapture'
//! ```

mod rtc_common;

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use rtc_common::ws::{expect_closed, expect_type, join, next_message, Ws};
use rtc_common::{eventually_async, init_tracing, Server, SERIAL};
use serde_json::json;
use signaling::HubConfig;
use tokio_tungstenite::tungstenite::Message;

/// Measured join/leave cycles (after the warm-up).
const CYCLES: usize = 1000;
/// Cycles run before the baseline is taken (allocator pools, lazy statics, caches).
const WARMUP_CYCLES: usize = 40;
/// Sessions the cycles are spread over, one worker each, running concurrently.
const SESSIONS: usize = 4;
/// The first this many sessions keep their therapist in the room all along.
const ANCHORED: usize = 2;
/// Guests per session reused by the leave, drop and reload cycles.
const GUESTS_PER_SESSION: usize = 3;
/// Reconnect grace of the server under test.
const GRACE: Duration = Duration::from_millis(200);
/// Upper bound of the whole test.
const TEST_LIMIT: Duration = Duration::from_secs(600);
/// Upper bound of one protocol step (a reply, a close).
/// How long the server may take to settle after the cycles (graces, closes).
const SETTLE_LIMIT: Duration = Duration::from_secs(20);
/// Alive tokio tasks allowed above the baseline (runtime and pool housekeeping).
const TASK_SLACK: usize = 8;
/// Resident set growth allowed over the whole run, in KiB.
const RSS_SLACK_KIB: u64 = 50 * 1024;

/// What a cycle does after its join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Leave,
    Drop,
    Reload,
    Remove,
}

/// A deterministic mix of the four actions (no fixed period, every action often).
fn action_of(cycle: usize) -> Action {
    let mixed = (cycle as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59;
    match mixed % 4 {
        0 => Action::Leave,
        1 => Action::Drop,
        2 => Action::Reload,
        _ => Action::Remove,
    }
}

/// Counts of the cycles done, per action.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    leave: usize,
    drop: usize,
    reload: usize,
    remove: usize,
    resumed_joins: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.leave += other.leave;
        self.drop += other.drop;
        self.reload += other.reload;
        self.remove += other.remove;
        self.resumed_joins += other.resumed_joins;
    }

    fn total(&self) -> usize {
        self.leave + self.drop + self.reload + self.remove
    }
}

/// The server process's resident set size, in KiB (VmRSS of /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Sends `leave`, expects `left` and the close.
async fn leave(mut ws: Ws, what: &str) {
    ws.send(Message::Text(json!({"type": "leave"}).to_string().into()))
        .await
        .unwrap_or_else(|e| panic!("{what}: send leave: {e}"));
    expect_type(&mut ws, "left", what).await;
    expect_closed(ws, what).await;
}

/// One session of the churn: its id and the guests reused across cycles.
struct Lane {
    session_id: String,
    guests: Vec<String>,
}

impl Lane {
    async fn open(server: &Server, therapist_token: &str, index: usize) -> Lane {
        let session = server.session(therapist_token, 50).await;
        let mut guests = Vec::new();
        for g in 0..GUESTS_PER_SESSION {
            let guest = server
                .guest(&session.share_token, &format!("Churn guest {index}-{g}"))
                .await;
            guests.push(guest.token);
        }
        Lane {
            session_id: session.id,
            guests,
        }
    }

    /// Runs one cycle; returns what it did.
    async fn cycle(&self, server: &Server, therapist_token: &str, cycle: usize) -> Tally {
        let action = action_of(cycle);
        let what = format!("cycle {cycle} ({action:?}) in {}", self.session_id);
        let mut tally = Tally::default();
        if action == Action::Remove {
            // Removing a guest withdraws the share link: the next one comes from the
            // session as its therapist sees it now.
            let (status, session) = server
                .call(
                    "GET",
                    &format!("/api/sessions/{}", self.session_id),
                    therapist_token,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{what}: session answered {session}");
            let link = session["share_token"].as_str().expect("share_token");
            let guest = server.guest(link, &format!("Removed guest {cycle}")).await;
            let (mut ws, joined) = join(server, &self.session_id, &guest.token, &what).await;
            let pid = joined["participant_id"].as_str().expect("participant_id");
            let (status, body) = server
                .call(
                    "DELETE",
                    &format!("/api/sessions/{}/participants/{pid}", self.session_id),
                    therapist_token,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{what}: removal answered {body}");
            expect_type(&mut ws, "removed", &what).await;
            expect_closed(ws, &what).await;
            tally.remove = 1;
            return tally;
        }
        let token = &self.guests[cycle % self.guests.len()];
        let (ws, joined) = join(server, &self.session_id, token, &what).await;
        if joined["resumed"] == true {
            tally.resumed_joins += 1;
        }
        match action {
            Action::Leave => {
                leave(ws, &what).await;
                tally.leave = 1;
            }
            Action::Drop => {
                drop(ws);
                tally.drop = 1;
            }
            Action::Reload => {
                let mut first = ws;
                let (second, again) = join(server, &self.session_id, token, &what).await;
                assert_eq!(again["resumed"], true, "{what}: the reload did not resume");
                assert_eq!(
                    again["participant_id"], joined["participant_id"],
                    "{what}: the reload is another participant"
                );
                let replaced = expect_type(&mut first, "error", &what).await;
                assert_eq!(replaced["code"], "replaced", "{what}: {replaced}");
                expect_closed(first, &what).await;
                leave(second, &what).await;
                tally.reload = 1;
            }
            Action::Remove => unreachable!("handled above"),
        }
        tally
    }
}

/// Runs `cycles` cycles numbered from `first`, spread over the lanes concurrently.
async fn churn(
    server: &Server,
    therapist_token: &str,
    lanes: &[Lane],
    first: usize,
    cycles: usize,
) -> Tally {
    let runs = lanes.iter().enumerate().map(|(l, lane)| async move {
        let mut tally = Tally::default();
        for c in (first..first + cycles).filter(|c| c % lanes.len() == l) {
            tally.add(lane.cycle(server, therapist_token, c).await);
        }
        tally
    });
    let mut total = Tally::default();
    for t in futures_util::future::join_all(runs).await {
        total.add(t);
    }
    total
}

/// Active participant rows over all lanes.
async fn active_rows(server: &Server, lanes: &[Lane]) -> usize {
    let mut n = 0;
    for lane in lanes {
        n += server
            .rows(&lane.session_id)
            .await
            .iter()
            .filter(|r| r.is_active())
            .count();
    }
    n
}

/// Waits until the hub holds `rooms` rooms and the database `rows` active rows.
async fn settle(server: &Server, lanes: &[Lane], rooms: usize, rows: usize, when: &str) {
    let settled = eventually_async(SETTLE_LIMIT, || async {
        server.hub.room_count() == rooms && active_rows(server, lanes).await == rows
    })
    .await;
    assert!(
        settled,
        "{when}: {} rooms (expected {rooms}), {} active participant rows (expected {rows})",
        server.hub.room_count(),
        active_rows(server, lanes).await
    );
    let sfu = server.sfu.stats();
    assert_eq!(
        (sfu.rooms, sfu.participants),
        (rooms as u64, rows as u64),
        "{when}: the media plane holds other rooms or participants than the hub: {sfu:?}"
    );
}

/// Waits until at most `limit` tasks are alive; returns the last count.
async fn tasks_down_to(limit: usize) -> usize {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let n = alive_tasks();
        if n <= limit || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps reading an anchored therapist's socket (the server closes slow readers).
fn drain(mut ws: Ws) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while next_message(&mut ws).await.is_some() {} })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_joins_and_leaves_leave_nothing_behind() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        // Every client comes from 127.0.0.1, and dropped sockets are released only once
        // the server sees them go: the per-address cap is lifted here, and the test
        // checks instead that every connection is released at the end.
        let server = Server::start_with(HubConfig {
            reconnect_grace: GRACE,
            max_connections_per_ip: 100_000,
            ..HubConfig::default()
        })
        .await;
        let therapist_token = server.therapist().1.to_string();
        let mut lanes = Vec::new();
        for i in 0..SESSIONS {
            lanes.push(Lane::open(&server, &therapist_token, i).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tasks_at_start = alive_tasks();

        // The therapist stays in the first sessions' rooms, read by a task each.
        let mut anchors = Vec::new();
        for lane in &lanes[..ANCHORED] {
            let (ws, _) = join(&server, &lane.session_id, &therapist_token, "anchor").await;
            anchors.push(drain(ws));
        }

        let warm = churn(&server, &therapist_token, &lanes, 0, WARMUP_CYCLES).await;
        assert_eq!(warm.total(), WARMUP_CYCLES);
        settle(&server, &lanes, ANCHORED, ANCHORED, "after the warm-up").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let tasks_baseline = alive_tasks();
        let rss_baseline = rss_kib();

        let started = Instant::now();
        let done = churn(&server, &therapist_token, &lanes, WARMUP_CYCLES, CYCLES).await;
        let elapsed = started.elapsed();
        assert_eq!(done.total(), CYCLES);
        eprintln!(
            "[churn] {CYCLES} cycles over {SESSIONS} sessions in {:.1} s: {done:?}; SFU {:?}",
            elapsed.as_secs_f64(),
            server.sfu.stats()
        );

        settle(&server, &lanes, ANCHORED, ANCHORED, "after the cycles").await;
        let tasks_after = tasks_down_to(tasks_baseline + TASK_SLACK).await;
        let rss_after = rss_kib();
        eprintln!(
            "[churn] alive tasks: {tasks_at_start} at start, {tasks_baseline} after the warm-up, \
             {tasks_after} after {CYCLES} cycles; VmRSS {rss_baseline} KiB after the warm-up, \
             {rss_after} KiB after the cycles"
        );
        assert!(
            tasks_after <= tasks_baseline + TASK_SLACK,
            "tasks leak: {tasks_after} alive after the cycles, {tasks_baseline} before (slack {TASK_SLACK})"
        );
        assert!(
            rss_after <= rss_baseline + RSS_SLACK_KIB,
            "memory grows: VmRSS {rss_after} KiB after the cycles, {rss_baseline} KiB before"
        );

        // The anchors leave: nothing is left at all.
        for anchor in anchors {
            anchor.abort();
            // Aborting drops the socket without `leave`: the grace ends the stay.
            let _ = anchor.await;
        }
        settle(&server, &lanes, 0, 0, "after the therapist left").await;
        let released = eventually_async(SETTLE_LIMIT, || async {
            server.hub.open_connections() == 0
        })
        .await;
        assert!(
            released,
            "{} signaling connections still counted after every socket closed",
            server.hub.open_connections()
        );
        let tasks_end = tasks_down_to(tasks_at_start + TASK_SLACK).await;
        eprintln!("[churn] alive tasks at the end: {tasks_end} (start {tasks_at_start})");
        assert!(
            tasks_end <= tasks_at_start + TASK_SLACK,
            "tasks leak: {tasks_end} alive at the end, {tasks_at_start} at the start"
        );
        server.stop().await;
    })
    .await
    .expect("the churn test took too long");
}
