//! One engine loop: a thread that owns a share of the client connections (their sockets,
//! sans-IO cores and media timers) and drives them all from one `epoll` wait, one timer
//! heap and one command queue. Nothing here is per connection: no task, no channel, no
//! timer of its own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::arena::Arena;
use super::clock::Clock;
use super::command::{Command, CreateSpec};
use super::conn::Conn;
use super::poll::{Epoll, Waker, WAKER_TOKEN};
use super::sender::Outgoing;
use super::slab::{Key, Slab};
use super::timers::TimerHeap;
use super::udp::{Datagram, Socket};
use crate::client::stats::now_micros;
use crate::client::ClientError;

/// Ready sockets plus fired timers in one turn from which the loop counts as busy.
const BUSY_EVENTS: usize = 2;

/// Bytes per receive/send arena allocation (a few hundred datagrams).
const ARENA_BYTES: usize = 512 * 1024;
/// Ready sockets handled per wait.
const EVENTS: usize = 256;

/// Counters of one loop, read by [`super::Engine::stats`].
#[derive(Debug, Default)]
pub(crate) struct LoopStats {
    pub(crate) connections: AtomicUsize,
    pub(crate) datagrams_in: AtomicU64,
    pub(crate) datagrams_out: AtomicU64,
    pub(crate) recv_calls: AtomicU64,
    pub(crate) send_calls: AtomicU64,
    pub(crate) wakeups: AtomicU64,
    pub(crate) unrouted: AtomicU64,
    /// Nanoseconds spent inside the sans-IO cores (datagrams in, drains out).
    pub(crate) core_ns: AtomicU64,
}

/// Which deadline of a connection a timer entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Timer {
    /// The sans-IO core's `poll_timeout`.
    Core,
    /// The next packet of local track `n`.
    Media(u8),
}

/// The state of one loop thread.
pub(crate) struct Loop {
    epoll: Epoll,
    waker: Arc<Waker>,
    commands: Receiver<Command>,
    conns: Slab<Conn>,
    timers: TimerHeap<(Key, Timer)>,
    recv_arena: Arena,
    send_arena: Arena,
    ready: Vec<u64>,
    datagrams: Vec<Datagram>,
    out: Vec<(SocketAddr, BytesMut)>,
    rtp: Vec<Outgoing>,
    dirty: Vec<Key>,
    stats: Arc<LoopStats>,
    coalesce: Duration,
}

impl Loop {
    /// A loop reading `commands`, woken by `waker`, that turns at most once per
    /// `coalesce` while busy (see [`Loop::run`]).
    pub(crate) fn new(
        commands: Receiver<Command>,
        waker: Arc<Waker>,
        stats: Arc<LoopStats>,
        coalesce: Duration,
    ) -> std::io::Result<Loop> {
        let epoll = Epoll::new(EVENTS)?;
        epoll.add(waker.fd(), WAKER_TOKEN)?;
        Ok(Loop {
            epoll,
            waker,
            commands,
            conns: Slab::default(),
            timers: TimerHeap::default(),
            recv_arena: Arena::new(ARENA_BYTES),
            send_arena: Arena::new(ARENA_BYTES),
            ready: Vec::with_capacity(EVENTS),
            datagrams: Vec::with_capacity(super::udp::RECV_BATCH),
            out: Vec::new(),
            rtp: Vec::new(),
            dirty: Vec::new(),
            stats,
            coalesce,
        })
    }

    /// Runs until [`Command::Shutdown`] or until every command sender is gone.
    ///
    /// Wake-ups cost more than anything else per packet (a context switch each), so the
    /// loop batches: a timer never wakes it sooner than `coalesce` after the previous
    /// wake-up (like timer slack), and after a busy turn it sleeps out the rest of
    /// `coalesce` before collecting what became ready meanwhile. An idle loop still
    /// answers a datagram or command at once. Latency stays exact: receive times are
    /// the kernel's arrival stamps, send times are read when a packet is made.
    pub(crate) fn run(mut self) {
        let mut last_wake = Instant::now();
        let mut busy = false;
        loop {
            let floor = last_wake + self.coalesce;
            if busy {
                let now = Instant::now();
                if floor > now {
                    std::thread::sleep(floor - now);
                }
            }
            let timeout = self
                .timers
                .next_deadline()
                .map(|at| at.max(floor).saturating_duration_since(Instant::now()));
            let mut ready = std::mem::take(&mut self.ready);
            if let Err(e) = self.epoll.wait_into(timeout, &mut ready) {
                tracing::error!(error = %e, "engine loop: epoll failed");
                break;
            }
            self.stats.wakeups.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            last_wake = now;
            let mut running = true;
            for &token in &ready {
                if token == WAKER_TOKEN {
                    self.waker.drain();
                    running &= self.commands_due(now);
                } else {
                    self.readable(Key::from_token(token));
                }
            }
            let events = ready.len();
            self.ready = ready;
            if !running {
                break;
            }
            let fired = self.timers_due(now);
            self.flush();
            busy = events + fired >= BUSY_EVENTS;
        }
        self.close_all();
    }

    fn mark(&mut self, key: Key) {
        if let Some(c) = self.conns.get_mut(key) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Reads one batch from the socket of `key`, feeds it to its connection and drains
    /// that connection at once, so receive times are taken per batch, not per loop turn.
    fn readable(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(key) else {
            return; // a connection closed earlier in this iteration
        };
        self.datagrams.clear();
        let n = match conn
            .socket()
            .recv_batch(&mut self.recv_arena, &mut self.datagrams)
        {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "engine socket read failed");
                0
            }
        };
        self.stats.recv_calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .datagrams_in
            .fetch_add(n as u64, Ordering::Relaxed);
        let clock = Clock::now();
        let t0 = Instant::now();
        for d in self.datagrams.drain(..) {
            // The core runs on the datagram's arrival, not on when we read it.
            let at = d
                .arrived_us
                .map_or(clock.instant, |us| clock.instant_of(us));
            conn.handle_datagram(at, d);
        }
        self.stats
            .core_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.drain(key, &clock);
    }

    /// Fires every due timer; returns how many fired.
    fn timers_due(&mut self, now: Instant) -> usize {
        let mut fired = 0;
        while let Some((key, timer)) = self.timers.pop_due(now) {
            fired += 1;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            match timer {
                Timer::Core => conn.handle_timeout(now),
                Timer::Media(i) => {
                    // The tag's send time, read per tick: as close to the send as can be.
                    let us = now_micros();
                    if let Some(next) = conn.media_tick(
                        usize::from(i),
                        now,
                        us,
                        &mut self.send_arena,
                        &mut self.rtp,
                    ) {
                        self.timers.arm((key, timer), next);
                    }
                }
            }
            self.mark(key);
        }
        fired
    }

    /// Drains every connection a timer or command touched this iteration.
    fn flush(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let clock = Clock::now();
        for key in std::mem::take(&mut self.dirty) {
            self.drain(key, &clock);
        }
    }

    /// Drains one connection: its events and received media, its datagrams out (one
    /// `sendmmsg`), and its next core deadline.
    fn drain(&mut self, key: Key, clock: &Clock) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.dirty = false;
        let t0 = Instant::now();
        conn.drain(clock, &mut self.out);
        self.stats
            .core_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if !self.out.is_empty() {
            let sent = conn.socket().send_batch(&self.out);
            self.stats.send_calls.fetch_add(1, Ordering::Relaxed);
            self.stats
                .datagrams_out
                .fetch_add(sent as u64, Ordering::Relaxed);
            self.out.clear();
        }
        let unrouted = std::mem::take(&mut conn.unrouted);
        if unrouted > 0 {
            self.stats.unrouted.fetch_add(unrouted, Ordering::Relaxed);
        }
        match conn.poll_timeout() {
            Some(at) => self.timers.arm((key, Timer::Core), at),
            None => self.timers.cancel((key, Timer::Core)),
        }
    }

    /// Applies every queued command; false once the loop must end.
    fn commands_due(&mut self, now: Instant) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Ok(cmd) => self.command(cmd, now),
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Create(spec, reply) => {
                let _ = reply.send(self.create(*spec, now));
            }
            Command::Offer(key, reply) => {
                let r = self.with(key, |c| c.offer(now));
                let _ = reply.send(r);
            }
            Command::Answer(key, sdp, reply) => {
                let r = self.with(key, |c| c.answer(now, sdp));
                let _ = reply.send(r);
            }
            Command::ApplyAnswer(key, sdp, reply) => {
                let r = self.with(key, |c| c.apply_answer(now, sdp));
                let _ = reply.send(r);
            }
            Command::AddCandidate(key, candidate, reply) => {
                let r = self.with(key, |c| c.add_candidate(candidate));
                let _ = reply.send(r);
            }
            Command::Media(key, source) => {
                let Some(conn) = self.conns.get_mut(key) else {
                    return;
                };
                for (i, deadline) in conn.set_media(source, now) {
                    let timer = (key, Timer::Media(i as u8));
                    match deadline {
                        Some(at) => self.timers.arm(timer, at),
                        None => self.timers.cancel(timer),
                    }
                }
            }
            Command::Close(key, reply) => {
                self.remove(key);
                if let Some(r) = reply {
                    let _ = r.send(());
                }
            }
            Command::Shutdown => {}
        }
    }

    /// Runs `f` on connection `key` and queues it for draining.
    fn with<T>(
        &mut self,
        key: Key,
        f: impl FnOnce(&mut Conn) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let conn = self
            .conns
            .get_mut(key)
            .ok_or_else(|| ClientError::WebRtc("peer connection closed".into()))?;
        let r = f(conn);
        self.mark(key);
        r
    }

    fn create(&mut self, spec: CreateSpec, now: Instant) -> Result<Key, ClientError> {
        if spec.tracks.len() > usize::from(u8::MAX) {
            return Err(ClientError::Config("too many local tracks".into()));
        }
        let socket = Socket::bind(spec.bind_ip)?;
        spec.shared
            .local_port
            .store(socket.local_addr().port(), Ordering::Relaxed);
        let key = self.conns.next_key();
        let fd = socket.fd();
        let conn = Conn::new(spec, socket, now)?;
        self.epoll.add(fd, key.token())?;
        let inserted = self.conns.insert(conn);
        debug_assert_eq!(inserted, key);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        Ok(key)
    }

    fn remove(&mut self, key: Key) {
        let Some(mut conn) = self.conns.remove(key) else {
            return;
        };
        let _ = self.epoll.delete(conn.socket().fd());
        self.timers.cancel((key, Timer::Core));
        for i in 0..conn.sender_count() {
            self.timers.cancel((key, Timer::Media(i as u8)));
        }
        conn.close(&mut self.out);
        conn.socket().send_batch(&self.out);
        self.out.clear();
        self.stats.connections.fetch_sub(1, Ordering::Relaxed);
        // The socket closes when `conn` drops here.
    }

    fn close_all(&mut self) {
        for key in self.conns.keys() {
            self.remove(key);
        }
    }
}
