//! A client media engine that costs less than the server it loads: sans-IO `rtc` 0.21
//! peer connections (the core webrtc 0.21 wraps) driven by one loop thread per core,
//! instead of webrtc-rs's task, channels and timers per connection.
//!
//! - Each loop ([`worker`]) owns its connections: one `epoll` wait over their sockets and
//!   its command queue, one timer heap ([`timers`]) for every core timeout and media
//!   tick, batched reads (`recvmmsg`) and writes (`sendmmsg`) ([`udp`]), datagrams and
//!   payloads cut from arenas ([`arena`]) rather than allocated one by one.
//! - Every client connection has its own UDP socket (127.0.0.1, ephemeral port): the
//!   server tells connections apart by remote address after ICE, so two client
//!   connections must never share one. Datagrams reach their connection by the socket's
//!   epoll token ([`slab`]).
//! - Signaling stays on tokio: an [`EnginePc`] handle sends [`Command`]s through the
//!   loop's queue and awaits replies; [`PcEvent`]s (local candidates, state changes,
//!   tracks) come back on a channel; counters and receive statistics are shared state the
//!   handle snapshots ([`EnginePc::sent`], [`EnginePc::received`]).
//!
//! The measurements are the same as with [`crate::Participant`]: same tags, counters,
//! duplicate window and latency histogram (`client/stats.rs`).

mod arena;
mod clock;
mod command;
mod conn;
pub mod participant;
mod poll;
mod sender;
mod slab;
mod timers;
mod udp;
mod worker;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use command::PcEvent;
pub use participant::EngineParticipant;
pub use sender::MediaSource;

use command::{Command, CreateSpec, PcShared, Reply, TrackSpec};
use poll::Waker;
use slab::Key;
use worker::{Loop, LoopStats};

use crate::client::clip::ClipSet;
use crate::client::pacer::{MediaRate, SentCounters};
use crate::client::protocol::{CandidateInit, Kind, PcName};
use crate::client::stats::{RemoteTrackStats, SentStats};
use crate::client::{ClientError, PcState, Publish};

/// The command side of one loop.
#[derive(Clone)]
struct LoopHandle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
}

impl LoopHandle {
    fn send(&self, cmd: Command) -> Result<(), ClientError> {
        self.commands
            .send(cmd)
            .map_err(|_| ClientError::WebRtc("engine stopped".into()))?;
        self.waker.wake();
        Ok(())
    }
}

struct EngineShared {
    loops: Vec<LoopHandle>,
    stats: Vec<Arc<LoopStats>>,
    next: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for EngineShared {
    fn drop(&mut self) {
        for l in &self.loops {
            let _ = l.send(Command::Shutdown);
        }
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Totals of every loop's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Loop threads.
    pub threads: usize,
    /// Open connections.
    pub connections: usize,
    /// Datagrams read.
    pub datagrams_in: u64,
    /// Datagrams written.
    pub datagrams_out: u64,
    /// `recvmmsg` calls.
    pub recv_calls: u64,
    /// `sendmmsg` calls.
    pub send_calls: u64,
    /// Loop wake-ups (returns from `epoll` waits).
    pub wakeups: u64,
    /// RTP packets of a track that never opened (should stay 0).
    pub unrouted: u64,
    /// Nanoseconds the loops spent inside the sans-IO cores (reading datagrams,
    /// draining events, media and datagrams out).
    pub core_ns: u64,
}

impl EngineStats {
    /// What happened between `earlier` and `self` (connections: the current count).
    pub fn since(&self, earlier: &EngineStats) -> EngineStats {
        EngineStats {
            threads: self.threads,
            connections: self.connections,
            datagrams_in: self.datagrams_in.saturating_sub(earlier.datagrams_in),
            datagrams_out: self.datagrams_out.saturating_sub(earlier.datagrams_out),
            recv_calls: self.recv_calls.saturating_sub(earlier.recv_calls),
            send_calls: self.send_calls.saturating_sub(earlier.send_calls),
            wakeups: self.wakeups.saturating_sub(earlier.wakeups),
            unrouted: self.unrouted.saturating_sub(earlier.unrouted),
            core_ns: self.core_ns.saturating_sub(earlier.core_ns),
        }
    }
}

/// The client media engine: a handle to its loop threads (cheap to clone). The threads
/// end when the last handle and the last [`EnginePc`] are gone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<EngineShared>,
}

/// Number of loops an engine starts by default: one per available core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How long a busy loop gathers work before a turn, by default (see [`EngineConfig`]).
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(1);

/// How an engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Loop threads (at least one).
    pub threads: usize,
    /// A busy loop turns at most once per this interval, and no timer wakes a loop
    /// sooner than this after its last wake-up: media and core timers fire up to this
    /// late (a browser's pacer runs every 5 ms), datagrams wait up to this long to be
    /// read, but measured latency does not grow (kernel arrival stamps). Zero turns on
    /// every event.
    pub coalesce: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            threads: default_threads(),
            coalesce: DEFAULT_COALESCE,
        }
    }
}

impl Engine {
    /// Starts `threads` loop threads (at least one) with the default coalescing.
    pub fn start(threads: usize) -> Result<Engine, ClientError> {
        Engine::start_with(EngineConfig {
            threads,
            ..EngineConfig::default()
        })
    }

    /// Starts an engine configured by `config`.
    pub fn start_with(config: EngineConfig) -> Result<Engine, ClientError> {
        let threads = config.threads;
        let mut loops = Vec::new();
        let mut stats = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = std::sync::mpsc::channel();
            let waker = Arc::new(Waker::new()?);
            let st = Arc::new(LoopStats::default());
            let lp = Loop::new(rx, Arc::clone(&waker), Arc::clone(&st), config.coalesce)?;
            let handle = std::thread::Builder::new()
                .name(format!("rtc-loop-{i}"))
                .spawn(move || lp.run())?;
            loops.push(LoopHandle {
                commands: tx,
                waker,
            });
            stats.push(st);
            handles.push(handle);
        }
        Ok(Engine {
            shared: Arc::new(EngineShared {
                loops,
                stats,
                next: AtomicUsize::new(0),
                threads: Mutex::new(handles),
            }),
        })
    }

    /// Number of loop threads.
    pub fn threads(&self) -> usize {
        self.shared.loops.len()
    }

    /// Totals of the loops' counters so far.
    pub fn stats(&self) -> EngineStats {
        let mut s = EngineStats {
            threads: self.threads(),
            ..Default::default()
        };
        for l in &self.shared.stats {
            s.connections += l.connections.load(Ordering::Relaxed);
            s.datagrams_in += l.datagrams_in.load(Ordering::Relaxed);
            s.datagrams_out += l.datagrams_out.load(Ordering::Relaxed);
            s.recv_calls += l.recv_calls.load(Ordering::Relaxed);
            s.send_calls += l.send_calls.load(Ordering::Relaxed);
            s.wakeups += l.wakeups.load(Ordering::Relaxed);
            s.unrouted += l.unrouted.load(Ordering::Relaxed);
            s.core_ns += l.core_ns.load(Ordering::Relaxed);
        }
        s
    }

    /// A publisher connection (we offer) carrying the tracks of `publish` (VP8 camera,
    /// Opus microphone), bound to `bind_ip` on an ephemeral port.
    pub async fn publisher(
        &self,
        bind_ip: IpAddr,
        publish: Publish,
    ) -> Result<EnginePc, ClientError> {
        // A fresh stream id per connection, as a browser makes one per capture.
        let stream_id = format!("{:016x}", rand::random::<u64>());
        let mut tracks = Vec::new();
        for (on, kind, name) in [
            (publish.video, Kind::Video, "camera"),
            (publish.audio, Kind::Audio, "microphone"),
        ] {
            if on {
                let track_id = format!("{stream_id}-{name}");
                tracks.push(TrackSpec {
                    counters: SentCounters::new(&track_id, kind),
                    kind,
                    track_id,
                    stream_id: stream_id.clone(),
                    ssrc: rand::random::<u32>() | 1,
                    simulcast: publish.simulcast && kind == Kind::Video,
                });
            }
        }
        self.create(PcName::Publisher, bind_ip, tracks).await
    }

    /// A receive-only connection (the server offers) that accounts every remote track.
    pub async fn subscriber(&self, bind_ip: IpAddr) -> Result<EnginePc, ClientError> {
        self.create(PcName::Subscriber, bind_ip, Vec::new()).await
    }

    async fn create(
        &self,
        name: PcName,
        bind_ip: IpAddr,
        tracks: Vec<TrackSpec>,
    ) -> Result<EnginePc, ClientError> {
        let i = self.shared.next.fetch_add(1, Ordering::Relaxed) % self.shared.loops.len();
        let lp = self.shared.loops[i].clone();
        let shared = PcShared::new(tracks.iter().map(|t| Arc::clone(&t.counters)).collect());
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let spec = CreateSpec {
            name,
            bind_ip,
            tracks,
            shared: Arc::clone(&shared),
            events: events_tx,
        };
        let (tx, rx) = oneshot::channel();
        lp.send(Command::Create(Box::new(spec), tx))?;
        let key = rx.await.map_err(|_| stopped())??;
        Ok(EnginePc {
            name,
            key,
            lp,
            shared,
            events: Mutex::new(Some(events_rx)),
            closed: AtomicBool::new(false),
            _engine: self.clone(),
        })
    }
}

fn stopped() -> ClientError {
    ClientError::WebRtc("engine stopped".into())
}

/// A handle to one engine connection. Dropping it closes the connection.
pub struct EnginePc {
    name: PcName,
    key: Key,
    lp: LoopHandle,
    shared: Arc<PcShared>,
    events: Mutex<Option<mpsc::UnboundedReceiver<PcEvent>>>,
    closed: AtomicBool,
    _engine: Engine,
}

impl EnginePc {
    /// Local UDP port of this connection's socket.
    pub fn local_port(&self) -> u16 {
        self.shared.local_port.load(Ordering::Relaxed)
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.lp.send(make(tx))?;
        rx.await.map_err(|_| stopped())?
    }

    /// Publisher or subscriber.
    pub fn name(&self) -> PcName {
        self.name
    }

    /// The connection's events, in order (once: the receiver goes to the first caller).
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<PcEvent>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Creates an offer, sets it locally and returns its SDP; our candidate follows as
    /// a [`PcEvent::LocalCandidate`].
    pub async fn offer(&self) -> Result<String, ClientError> {
        self.call(|r| Command::Offer(self.key, r)).await
    }

    /// Applies a remote offer and returns our answer's SDP.
    pub async fn answer(&self, offer_sdp: &str) -> Result<String, ClientError> {
        self.call(|r| Command::Answer(self.key, offer_sdp.to_owned(), r))
            .await
    }

    /// Applies the remote answer to our offer.
    pub async fn apply_answer(&self, sdp: &str) -> Result<(), ClientError> {
        self.call(|r| Command::ApplyAnswer(self.key, sdp.to_owned(), r))
            .await
    }

    /// Adds a remote candidate (held by the engine until a remote description is set).
    pub async fn add_candidate(&self, c: CandidateInit) -> Result<(), ClientError> {
        self.call(|r| Command::AddCandidate(self.key, c, r)).await
    }

    /// Connection state.
    pub fn state(&self) -> PcState {
        self.shared.state()
    }

    /// Starts (or restarts) synthetic tagged media on our tracks; packets go out only
    /// while connected, the RTP sequence continues across restarts.
    pub fn start_media(&self, rate: MediaRate) {
        let _ = self
            .lp
            .send(Command::Media(self.key, Some(MediaSource::Synthetic(rate))));
    }

    /// Starts (or restarts) looping real media from `clips` on our tracks.
    pub fn start_clips(&self, clips: &Arc<ClipSet>) {
        let _ = self.lp.send(Command::Media(
            self.key,
            Some(MediaSource::Clips(Arc::clone(clips))),
        ));
    }

    /// Stops sending media.
    pub fn stop_media(&self) {
        let _ = self.lp.send(Command::Media(self.key, None));
    }

    /// What our tracks sent.
    pub fn sent(&self) -> Vec<SentStats> {
        self.shared.sent.iter().map(|c| c.snapshot()).collect()
    }

    /// What every remote track delivered so far, sorted by (stream id, track id).
    pub fn received(&self) -> Vec<RemoteTrackStats> {
        self.shared.received.snapshot()
    }

    /// Marks a remote track ended (its publisher unpublished it).
    pub fn mark_ended(&self, track_id: &str) {
        self.shared.received.mark_ended(track_id);
    }

    /// Closes the connection (DTLS close_notify, socket closed); idempotent.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if self.lp.send(Command::Close(self.key, Some(tx))).is_ok() {
            let _ = rx.await;
        }
    }
}

impl Drop for EnginePc {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            let _ = self.lp.send(Command::Close(self.key, None));
        }
    }
}
