//! The physical-limit baseline: a minimal UDP relay (no ICE, no SRTP, no RTP parsing)
//! forwarding every packet from N senders to M receivers with one `send_to` per
//! receiver, in one thread whose CPU is read from /proc/thread-self/stat.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::procfs;

/// What the relay did.
#[derive(Debug, Clone, Serialize)]
pub struct RelayResult {
    /// Sender sockets.
    pub senders: usize,
    /// Receiver sockets (each gets every packet).
    pub receivers: usize,
    /// UDP payload size.
    pub packet_bytes: usize,
    /// Packets/s offered by all senders together (0 = as fast as possible).
    pub offered_pps: f64,
    /// Window (s).
    pub window_s: f64,
    /// Packets the relay sent per second.
    pub forwarded_pps: f64,
    /// Relay thread CPU in % of one core.
    pub relay_cpu_pct: f64,
    /// Forwarded packets per relay CPU-second.
    pub pkts_per_cpu_s: f64,
    /// Received by the receivers / forwarded by the relay.
    pub delivery: f64,
    /// CPU of the whole process (sender, relay and receiver threads) in % of one core.
    pub process_cpu_pct: f64,
    /// Forwarded packets per CPU-second of the whole process (sending and receiving
    /// ends included: a pessimistic bound).
    pub pkts_per_process_cpu_s: f64,
}

/// Runs the relay for `window`: `senders` sockets sending `pps` packets/s in total
/// (0 = unpaced, as fast as the sender thread can), `receivers` sockets counting.
pub fn run(
    senders: usize,
    receivers: usize,
    pps: f64,
    packet_bytes: usize,
    window: Duration,
) -> std::io::Result<RelayResult> {
    let relay = UdpSocket::bind("127.0.0.1:0")?;
    let relay_addr = relay.local_addr()?;
    relay.set_read_timeout(Some(Duration::from_millis(100)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));

    let mut rx_addrs: Vec<SocketAddr> = Vec::new();
    let mut threads = Vec::new();
    let rx_sockets: Vec<UdpSocket> = (0..receivers.max(1))
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    for s in &rx_sockets {
        rx_addrs.push(s.local_addr()?);
        let _ = s.set_nonblocking(true);
    }
    // One receiver thread polls every receiver socket.
    {
        let stop = Arc::clone(&stop);
        let received = Arc::clone(&received);
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let mut any = false;
                for s in &rx_sockets {
                    while s.recv(&mut buf).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                        any = true;
                    }
                }
                if !any {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }));
    }

    let forwarded = Arc::new(AtomicU64::new(0));
    let relay_cpu = Arc::new(std::sync::Mutex::new((0.0f64, 0.0f64)));
    let measuring = Arc::new(AtomicBool::new(false));
    let relay_thread = {
        let stop = Arc::clone(&stop);
        let forwarded = Arc::clone(&forwarded);
        let relay_cpu = Arc::clone(&relay_cpu);
        let measuring = Arc::clone(&measuring);
        let rx_addrs = rx_addrs.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 2048];
            let mut was = false;
            while !stop.load(Ordering::Relaxed) {
                let now = measuring.load(Ordering::Relaxed);
                if now != was {
                    let cpu = procfs::thread_cpu_seconds();
                    let mut c = relay_cpu.lock().unwrap_or_else(|e| e.into_inner());
                    if now {
                        c.0 = cpu;
                        forwarded.store(0, Ordering::Relaxed);
                    } else {
                        c.1 = cpu;
                    }
                    was = now;
                }
                let Ok((n, _from)) = relay.recv_from(&mut buf) else {
                    continue;
                };
                for a in &rx_addrs {
                    if relay.send_to(&buf[..n], a).is_ok() && was {
                        forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let per_sender = if pps > 0.0 {
        pps / senders.max(1) as f64
    } else {
        0.0
    };
    let sender_thread = {
        let stop = Arc::clone(&stop);
        let socks: Vec<UdpSocket> = (0..senders.max(1))
            .map(|_| UdpSocket::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()?;
        std::thread::spawn(move || {
            let payload = vec![0x5au8; packet_bytes];
            let start = Instant::now();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for s in &socks {
                    let _ = s.send_to(&payload, relay_addr);
                }
                sent += 1;
                if per_sender > 0.0 {
                    let due = start + Duration::from_secs_f64(sent as f64 / per_sender);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
            }
        })
    };

    std::thread::sleep(Duration::from_millis(500));
    let rx0 = received.load(Ordering::Relaxed);
    let p0 = procfs::own_cpu_seconds();
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(window);
    measuring.store(false, Ordering::Relaxed);
    let dt = t0.elapsed().as_secs_f64();
    let p1 = procfs::own_cpu_seconds();
    std::thread::sleep(Duration::from_millis(300));
    let fwd = forwarded.load(Ordering::Relaxed);
    let rx1 = received.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = sender_thread.join();
    let _ = relay_thread.join();
    for t in threads {
        let _ = t.join();
    }
    let (c0, c1) = *relay_cpu.lock().unwrap_or_else(|e| e.into_inner());
    let cpu = (c1 - c0).max(1.0 / procfs::TICKS_PER_SEC);
    Ok(RelayResult {
        senders,
        receivers,
        packet_bytes,
        offered_pps: pps,
        window_s: dt,
        forwarded_pps: fwd as f64 / dt,
        relay_cpu_pct: cpu / dt * 100.0,
        pkts_per_cpu_s: fwd as f64 / cpu,
        delivery: ((rx1 - rx0) as f64 / fwd.max(1) as f64).min(1.0),
        process_cpu_pct: (p1 - p0) / dt * 100.0,
        pkts_per_process_cpu_s: fwd as f64 / (p1 - p0).max(0.01),
    })
}
