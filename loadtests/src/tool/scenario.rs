//! Scenarios: rooms of simulated participants on a [`Backend`], joined, measured over a
//! window, and left. A [`Fleet`] holds the participants so the ramp can keep adding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use theraroom_load::client::stats::{now_micros, set_measure_window};
use theraroom_load::engine::EngineStats;
use theraroom_load::{Kind, LatencyHistogram, Publish};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::backend::{kind_key, Backend, Media, Peer, RoomHandle};
use super::procfs;

/// Audio only publishing.
pub const AUDIO_ONLY: Publish = Publish {
    audio: true,
    video: false,
    simulcast: false,
};

/// Who is in one room and what each publishes.
#[derive(Debug, Clone)]
pub struct RoomSpec {
    /// One entry per participant, in join order.
    pub members: Vec<Publish>,
}

impl RoomSpec {
    /// `n` participants publishing `publish`.
    pub fn uniform(n: usize, publish: Publish) -> RoomSpec {
        RoomSpec {
            members: vec![publish; n],
        }
    }
}

struct Member {
    peer: Arc<dyn Peer>,
    room: usize,
    ws_open: Instant,
}

/// How participants join.
#[derive(Debug, Clone, Copy)]
pub enum JoinPace {
    /// At most this many joins in flight.
    Parallel(usize),
    /// Start one join every 1/rate seconds (a join storm), whatever is in flight.
    Rate(f64),
}

/// The participants of a run, across rooms.
pub struct Fleet {
    backend: Arc<dyn Backend>,
    media: Media,
    rooms: Vec<RoomHandle>,
    members: Vec<Member>,
    errors: Vec<String>,
    keyframes: Option<tokio::task::JoinHandle<()>>,
    shared: Arc<Mutex<Vec<Arc<dyn Peer>>>>,
    /// The member whose downlink is shaped: measured apart from the others.
    constrained: Option<usize>,
}

/// Figures of one measured window.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Measurement {
    /// Server name.
    pub server: String,
    /// Client stack of the simulated participants (`engine x2`, `webrtc`).
    pub client: String,
    /// Scenario label.
    pub scenario: String,
    /// Rooms.
    pub rooms: usize,
    /// Participants.
    pub participants: usize,
    /// Tracks published.
    pub published_tracks: usize,
    /// (subscriber, remote track) pairs that received packets in the window.
    pub forwarded_tracks: usize,
    /// Measurement window (s).
    pub window_s: f64,
    /// Packets/s the publishers sent.
    pub sent_pps: f64,
    /// Forwarded packets/s by the server's own counter (TheraRoom only).
    pub server_fwd_pps: Option<f64>,
    /// Forwarded bits/s by the server's own counter.
    pub server_fwd_bps: Option<f64>,
    /// Forwarded tracks by the server's gauge (TheraRoom only).
    pub server_fwd_tracks: Option<f64>,
    /// Published tracks by the server's gauge (TheraRoom only).
    pub server_pub_tracks: Option<f64>,
    /// Packets dropped by the server (queue full) in the window.
    pub server_dropped: Option<f64>,
    /// Packets/s the subscribers received.
    pub recv_pps: f64,
    /// Payload bits/s the subscribers received.
    pub recv_bps: f64,
    /// Server CPU in % of one core over the window.
    pub server_cpu_pct: f64,
    /// Server CPU µs per forwarded packet (received packets when the server has no
    /// counter, so both servers are compared on the same basis: see `cpu_us_per_recv`).
    pub server_cpu_us_per_pkt: f64,
    /// Server CPU µs per packet that reached a subscriber.
    pub cpu_us_per_recv: f64,
    /// Forwarded (received) packets per server CPU-second.
    pub pkts_per_cpu_s: f64,
    /// Server resident memory (MiB) at the end of the window.
    pub server_rss_mib: f64,
    /// This tool's own CPU in % of one core over the window (it shares the machine).
    pub tool_cpu_pct: f64,
    /// Server CPU-seconds over the window (user + system).
    pub server_cpu_s: f64,
    /// This tool's CPU-seconds over the window (every simulated participant).
    pub tool_cpu_s: f64,
    /// Lowest per-subscriber delivery ratio.
    pub delivery_min: f64,
    /// Mean per-subscriber delivery ratio.
    pub delivery_avg: f64,
    /// One-way latency percentiles (ms).
    pub latency_p50_ms: f64,
    /// p95 (ms).
    pub latency_p95_ms: f64,
    /// p99 (ms).
    pub latency_p99_ms: f64,
    /// Join time (signaling open → first packet of every remote track) p50 (ms).
    pub join_p50_ms: f64,
    /// p95 (ms).
    pub join_p95_ms: f64,
    /// Participants with a join time.
    pub join_samples: usize,
    /// What the client engine's loops did over the window (engine client only):
    /// datagrams in and out, `recvmmsg`/`sendmmsg` calls, wake-ups.
    pub engine: Option<EngineStats>,
    /// The subscriber with a constrained downlink (left out of delivery and latency
    /// above): its audio delivery ratio over the window.
    pub constrained_audio_delivery: Option<f64>,
    /// Its audio one-way latency p99 (ms).
    pub constrained_audio_p99_ms: Option<f64>,
    /// Video it received, kbit/s of payload.
    pub constrained_video_kbps: Option<f64>,
    /// Errors (join failures, negotiation errors, tracks that never arrived, leaves).
    pub errors: usize,
    /// The first few errors.
    pub error_samples: Vec<String>,
    /// Several nodes: each node's CPU in % of one core over the window (the server
    /// figures above are their sum).
    pub node_cpu_pct: Vec<(String, f64)>,
    /// Several nodes: signaling frames/s relayed between nodes over the window.
    pub relayed_frames_per_s: Option<f64>,
    /// Several nodes: signaling sockets relayed at the end of the window.
    pub relayed_sockets: Option<f64>,
}

/// CPU seconds so far of each process of `pids`.
fn node_cpu_seconds(pids: &[(String, u32)]) -> Vec<f64> {
    pids.iter()
        .map(|(_, pid)| procfs::cpu_seconds(*pid).unwrap_or(0.0))
        .collect()
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Progress on stderr.
pub fn progress(msg: impl AsRef<str>) {
    eprintln!("[{}] {}", chrono_like_now(), msg.as_ref());
}

fn chrono_like_now() -> String {
    let s = now_micros() / 1_000_000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

impl Fleet {
    /// An empty fleet on `backend` publishing `media`.
    pub fn new(backend: Arc<dyn Backend>, media: Media) -> Fleet {
        let shared: Arc<Mutex<Vec<Arc<dyn Peer>>>> = Arc::default();
        let keyframes = Some(tokio::spawn(keyframe_requests(Arc::clone(&shared))));
        Fleet {
            backend,
            media,
            rooms: Vec::new(),
            members: Vec::new(),
            errors: Vec::new(),
            keyframes,
            shared,
            constrained: None,
        }
    }

    /// Index of the member that joined last.
    pub fn last_member(&self) -> Option<usize> {
        self.members.len().checked_sub(1)
    }

    /// Marks member `m` as the one with a constrained downlink: [`Fleet::measure`]
    /// leaves it out of delivery and latency and reports it in the `constrained_*`
    /// figures. Returns its subscriber connection's UDP port (to shape).
    pub fn constrain(&mut self, m: usize) -> Option<u16> {
        let port = self.members.get(m)?.peer.subscriber_port()?;
        self.constrained = Some(m);
        Some(port)
    }

    /// Video payload bytes member `m` received so far.
    fn video_bytes(&self, m: usize) -> u64 {
        self.members[m]
            .peer
            .received()
            .iter()
            .filter(|t| t.kind == Kind::Video)
            .map(|t| t.bytes)
            .sum()
    }

    /// Creates the rooms of `specs` and joins their members at `pace`; publishers
    /// start media as soon as they joined.
    pub async fn add_rooms(&mut self, specs: &[RoomSpec], pace: JoinPace) {
        let mut plan = Vec::new();
        for spec in specs {
            match self.backend.create_room(spec.members.len()).await {
                Ok(room) => {
                    let index = self.rooms.len();
                    self.rooms.push(room.clone());
                    for publish in &spec.members {
                        plan.push((index, room.clone(), *publish));
                    }
                }
                Err(e) => self.errors.push(e),
            }
        }
        let total = plan.len();
        let sem = Arc::new(Semaphore::new(match pace {
            JoinPace::Parallel(n) => n.max(1),
            JoinPace::Rate(_) => 10_000,
        }));
        let mut set = JoinSet::new();
        let started = Instant::now();
        for (i, (room_index, room, publish)) in plan.into_iter().enumerate() {
            if let JoinPace::Rate(rate) = pace {
                let at = started + Duration::from_secs_f64(i as f64 / rate.max(0.01));
                tokio::time::sleep_until(at.into()).await;
            }
            let permit = Arc::clone(&sem).acquire_owned().await;
            let backend = Arc::clone(&self.backend);
            let media = self.media.clone();
            let n = self.members.len() + i;
            set.spawn(async move {
                let _permit = permit;
                let r = backend.join(&room, n, publish).await;
                if let Ok((peer, _)) = &r {
                    if publish.audio || publish.video {
                        peer.start_media(&media);
                    }
                }
                (room_index, r)
            });
        }
        let mut done = 0;
        while let Some(r) = set.join_next().await {
            done += 1;
            match r {
                Ok((room, Ok((peer, ws_open)))) => {
                    self.shared
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Arc::clone(&peer));
                    self.members.push(Member {
                        peer,
                        room,
                        ws_open,
                    });
                }
                Ok((_, Err(e))) => self.errors.push(e),
                Err(e) => self.errors.push(format!("join task: {e}")),
            }
            if done % 25 == 0 || done == total {
                progress(format!(
                    "  joined {done}/{total} ({} errors) in {:.1} s",
                    self.errors.len(),
                    started.elapsed().as_secs_f64()
                ));
            }
        }
    }

    /// Expected remote tracks of member `m`: (publisher index, kind).
    fn expected(&self, m: usize) -> Vec<(usize, Kind)> {
        let room = self.members[m].room;
        let mut out = Vec::new();
        for (j, other) in self.members.iter().enumerate() {
            if j == m || other.room != room {
                continue;
            }
            for s in other.peer.sent() {
                out.push((j, s.kind));
            }
        }
        out
    }

    /// Waits until every member received a packet of every expected remote track, or
    /// `timeout`. Returns how many (member, track) pairs are still missing.
    pub async fn wait_flowing(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = self.missing_tracks();
            if missing == 0 || Instant::now() >= deadline {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn missing_tracks(&self) -> usize {
        let ids: Vec<String> = self.members.iter().map(|m| m.peer.id()).collect();
        let mut missing = 0;
        for m in 0..self.members.len() {
            let got = self.members[m].peer.received();
            for (p, kind) in self.expected(m) {
                if !got
                    .iter()
                    .any(|t| t.stream_id == ids[p] && t.kind == kind && t.packets > 0)
                {
                    missing += 1;
                }
            }
        }
        missing
    }

    /// Measures one window of `window` (progress every 2 s), then waits a grace second
    /// for late packets and computes the figures.
    pub async fn measure(&self, scenario: &str, window: Duration) -> Measurement {
        let pids = self.backend.pids();
        let c0 = self.backend.counters().await;
        let node_cpu0 = node_cpu_seconds(&pids);
        let cpu0: f64 = node_cpu0.iter().sum();
        let own0 = procfs::own_cpu_seconds();
        let engine0 = self.backend.engine_stats();
        let recv0 = self.receive_totals();
        let constrained_video0 = self.constrained.map(|c| self.video_bytes(c));
        let start_us = now_micros();
        let t0 = Instant::now();
        set_measure_window(start_us, start_us + window.as_micros() as u64);
        let mut last = (t0, c0.map_or(0.0, |c| c.forwarded_packets));
        while t0.elapsed() < window {
            let left = window.saturating_sub(t0.elapsed());
            tokio::time::sleep(left.min(Duration::from_secs(2))).await;
            if let Some(c) = self.backend.counters().await {
                let dt = last.0.elapsed().as_secs_f64().max(1e-3);
                progress(format!(
                    "  {scenario}: {:.0}/{:.0} s, server forwards {:.0} pkt/s",
                    t0.elapsed().as_secs_f64(),
                    window.as_secs_f64(),
                    (c.forwarded_packets - last.1) / dt
                ));
                last = (Instant::now(), c.forwarded_packets);
            } else {
                progress(format!(
                    "  {scenario}: {:.0}/{:.0} s",
                    t0.elapsed().as_secs_f64(),
                    window.as_secs_f64()
                ));
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        let c1 = self.backend.counters().await;
        let node_cpu1 = node_cpu_seconds(&pids);
        let cpu1: f64 = node_cpu1.iter().sum();
        let own1 = procfs::own_cpu_seconds();
        let engine1 = self.backend.engine_stats();
        let rss: f64 = pids
            .iter()
            .map(|(_, p)| procfs::rss_mib(*p).unwrap_or(0.0))
            .sum();
        let recv1 = self.receive_totals();
        let constrained_video1 = self.constrained.map(|c| self.video_bytes(c));
        tokio::time::sleep(Duration::from_secs(1)).await;
        set_measure_window(u64::MAX, u64::MAX);

        let mut m = Measurement {
            server: self.backend.name().into(),
            client: self.backend.client(),
            scenario: scenario.into(),
            rooms: self.rooms.len(),
            participants: self.members.len(),
            window_s: dt,
            ..Default::default()
        };
        // Sent in the window, by (publisher, kind).
        let ids: Vec<String> = self.members.iter().map(|x| x.peer.id()).collect();
        let mut sent: HashMap<(usize, u8), u64> = HashMap::new();
        let mut sent_total = 0;
        for (i, member) in self.members.iter().enumerate() {
            for s in member.peer.sent() {
                m.published_tracks += 1;
                sent.insert((i, kind_key(s.kind)), s.window_packets);
                sent_total += s.window_packets;
            }
        }
        m.sent_pps = sent_total as f64 / dt;
        let mut latency = LatencyHistogram::default();
        let mut deliveries = Vec::new();
        let mut joins = Vec::new();
        let mut never = 0usize;
        for (i, member) in self.members.iter().enumerate() {
            if self.constrained == Some(i) {
                self.measure_constrained(i, &ids, &sent, &mut m);
                continue;
            }
            let got = member.peer.received();
            let (mut expected, mut received) = (0u64, 0u64);
            let mut join_ms: Option<f64> = None;
            let mut complete = true;
            for (p, kind) in self.expected(i) {
                expected += sent.get(&(p, kind_key(kind))).copied().unwrap_or(0);
                let track = got.iter().find(|t| t.stream_id == ids[p] && t.kind == kind);
                match track {
                    Some(t) => {
                        let current = t.current_window_unique();
                        received += current;
                        if current > 0 {
                            latency.merge(&t.window_latency);
                        }
                        if current > 0 {
                            m.forwarded_tracks += 1;
                        }
                        match t.first_packet_at {
                            Some(first) => {
                                let from = member.ws_open.max(self.members[p].ws_open);
                                let ms = first.saturating_duration_since(from).as_secs_f64() * 1e3;
                                join_ms = Some(join_ms.map_or(ms, |j: f64| j.max(ms)));
                            }
                            None => complete = false,
                        }
                    }
                    None => {
                        complete = false;
                        never += 1;
                    }
                }
            }
            if expected > 0 {
                deliveries.push((received as f64 / expected as f64).min(1.0));
            }
            if let (Some(j), true) = (join_ms, complete) {
                joins.push(j);
            }
        }
        let mut errors = self.errors.clone();
        for member in &self.members {
            errors.extend(member.peer.errors());
        }
        if never > 0 {
            errors.push(format!("{never} remote tracks never received"));
        }
        m.delivery_min = deliveries.iter().copied().fold(f64::NAN, f64::min);
        m.delivery_avg = if deliveries.is_empty() {
            f64::NAN
        } else {
            deliveries.iter().sum::<f64>() / deliveries.len() as f64
        };
        let q = |x: f64| latency.quantile_us(x).map_or(f64::NAN, |v| v as f64 / 1e3);
        m.latency_p50_ms = q(0.50);
        m.latency_p95_ms = q(0.95);
        m.latency_p99_ms = q(0.99);
        joins.sort_by(f64::total_cmp);
        m.join_p50_ms = pct(&joins, 0.5);
        m.join_p95_ms = pct(&joins, 0.95);
        m.join_samples = joins.len();
        m.recv_pps = (recv1.0 - recv0.0) as f64 / dt;
        m.recv_bps = (recv1.1 - recv0.1) as f64 * 8.0 / dt;
        let cpu = cpu1 - cpu0;
        m.server_cpu_pct = cpu / dt * 100.0;
        m.tool_cpu_pct = (own1 - own0) / dt * 100.0;
        m.server_cpu_s = cpu;
        m.engine = match (engine0, engine1) {
            (Some(a), Some(b)) => Some(b.since(&a)),
            _ => None,
        };
        m.tool_cpu_s = own1 - own0;
        m.server_rss_mib = rss;
        if let (Some(a), Some(b)) = (c0, c1) {
            m.server_fwd_pps = Some((b.forwarded_packets - a.forwarded_packets) / dt);
            m.server_fwd_bps = Some((b.forwarded_bytes - a.forwarded_bytes) * 8.0 / dt);
            m.server_dropped = Some(b.dropped_packets - a.dropped_packets);
            m.server_fwd_tracks = Some(b.forwarded_tracks);
            m.server_pub_tracks = Some(b.published_tracks);
            if pids.len() > 1 {
                m.relayed_frames_per_s = Some((b.relayed_frames - a.relayed_frames) / dt);
                m.relayed_sockets = Some(b.relayed_sockets);
            }
        }
        if pids.len() > 1 {
            m.node_cpu_pct = pids
                .iter()
                .zip(node_cpu0.iter().zip(&node_cpu1))
                .map(|((name, _), (a, b))| (name.clone(), (b - a) / dt * 100.0))
                .collect();
        }
        let fwd_pps = m.server_fwd_pps.unwrap_or(m.recv_pps);
        m.server_cpu_us_per_pkt = if fwd_pps > 0.0 {
            cpu * 1e6 / (fwd_pps * dt)
        } else {
            f64::NAN
        };
        m.cpu_us_per_recv = if m.recv_pps > 0.0 {
            cpu * 1e6 / (m.recv_pps * dt)
        } else {
            f64::NAN
        };
        m.pkts_per_cpu_s = if cpu > 0.0 {
            fwd_pps * dt / cpu
        } else {
            f64::NAN
        };
        if let (Some(a), Some(b)) = (constrained_video0, constrained_video1) {
            m.constrained_video_kbps = Some(b.saturating_sub(a) as f64 * 8.0 / dt / 1e3);
        }
        m.errors = errors.len();
        m.error_samples = errors.into_iter().take(5).collect();
        m
    }

    /// The constrained member's audio: what it received of what its room sent.
    fn measure_constrained(
        &self,
        i: usize,
        ids: &[String],
        sent: &HashMap<(usize, u8), u64>,
        m: &mut Measurement,
    ) {
        let got = self.members[i].peer.received();
        let (mut expected, mut received) = (0u64, 0u64);
        let mut latency = LatencyHistogram::default();
        for (p, kind) in self.expected(i) {
            if kind != Kind::Audio {
                continue;
            }
            expected += sent.get(&(p, kind_key(kind))).copied().unwrap_or(0);
            if let Some(t) = got.iter().find(|t| t.stream_id == ids[p] && t.kind == kind) {
                received += t.current_window_unique();
                latency.merge(&t.window_latency);
            }
        }
        if expected > 0 {
            m.constrained_audio_delivery = Some((received as f64 / expected as f64).min(1.0));
        }
        m.constrained_audio_p99_ms = latency.quantile_us(0.99).map(|v| v as f64 / 1e3);
    }

    /// Sum of packets and payload bytes received by every member.
    fn receive_totals(&self) -> (u64, u64) {
        let mut out = (0, 0);
        for member in &self.members {
            for t in member.peer.received() {
                out.0 += t.packets;
                out.1 += t.bytes;
            }
        }
        out
    }

    /// Every member leaves (up to 16 at a time); returns (errors, seconds it took).
    pub async fn leave_all(mut self) -> (Vec<String>, f64) {
        if let Some(k) = self.keyframes.take() {
            k.abort();
        }
        let started = Instant::now();
        let sem = Arc::new(Semaphore::new(16));
        let mut set = JoinSet::new();
        for member in self.members.drain(..) {
            let permit = Arc::clone(&sem).acquire_owned().await;
            set.spawn(async move {
                let _permit = permit;
                member.peer.leave().await
            });
        }
        let mut errors = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("leave task: {e}")),
            }
        }
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        (errors, started.elapsed().as_secs_f64())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(k) = self.keyframes.take() {
            k.abort();
        }
    }
}

/// Like a browser: a keyframe request when a remote video track starts, and when it
/// shows new losses (at most one per track per second).
async fn keyframe_requests(peers: Arc<Mutex<Vec<Arc<dyn Peer>>>>) {
    // (peer index, track id) -> (missing count, last request)
    let mut seen: HashMap<(usize, String), (u64, Instant)> = HashMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let list: Vec<Arc<dyn Peer>> = peers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (i, peer) in list.iter().enumerate() {
            for t in peer.received() {
                if t.kind != Kind::Video || t.packets == 0 || t.ended {
                    continue;
                }
                let missing = t.missing();
                let key = (i, t.track_id.clone());
                match seen.get_mut(&key) {
                    None => {
                        peer.request_keyframe(&t.track_id);
                        seen.insert(key, (missing, Instant::now()));
                    }
                    Some((m, at)) => {
                        if missing > *m && at.elapsed() >= Duration::from_secs(1) {
                            peer.request_keyframe(&t.track_id);
                            *at = Instant::now();
                        }
                        *m = missing;
                    }
                }
            }
        }
    }
}
