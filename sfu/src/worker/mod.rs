//! Media workers: one thread per core, each owning one UDP socket and every room placed
//! on it. The thread runs a single-threaded tokio runtime whose one task is the loop
//! below: commands from signaling, batches of datagrams and the core's next deadline, all
//! fed to the sans-IO [`Core`]; what the core wants sent leaves in `sendmmsg` batches.
//! A packet is received, decrypted, forwarded and encrypted on this one thread. A busy
//! worker reads at most once per [`SfuConfig::coalesce_us`], so one wake-up carries the
//! datagrams of that interval ([`Worker::hold`]).

mod socket;
mod tcp;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::config::SfuConfig;
use crate::engine::{Command, Core, CoreConfig, ParticipantKey, Peer, Reply, Transmit, Transport};
use crate::error::SfuError;
use crate::stats::{Counters, Gauge, LogThrottle};
use crate::types::SfuEvent;

use socket::{Outgoing, Received, Receiver};
use tcp::{TcpEvent, TcpSide};

/// Longest the loop sleeps with nothing to do (the core normally asks for less).
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// Datagram batches read in a row before the loop looks at commands and timers again, so
/// a flood on the socket cannot starve signaling.
const RECV_ROUNDS_PER_TURN: usize = 8;
/// Most datagrams waiting for the socket; beyond it new ones are dropped and counted (a
/// kernel buffer that stays full means the machine cannot keep up anyway).
const MAX_SEND_QUEUE: usize = 16 * 1024;

/// One "send failed" line per second for the whole process.
static SEND_ERROR_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(1));

/// What signaling's side of the SFU sends to a worker.
pub(crate) enum Message {
    /// A command for the core; the reply goes back on `reply` when there is one.
    Command {
        cmd: Command,
        reply: Option<oneshot::Sender<Result<Reply, SfuError>>>,
    },
    /// Where the events of a participant go (sent before its `AddParticipant`).
    Subscribe {
        participant: ParticipantKey,
        events: mpsc::UnboundedSender<SfuEvent>,
    },
    /// Stop the loop (the SFU is dropped).
    Shutdown,
}

/// The SFU's handle on one worker: its queue, its socket address and its load.
pub(crate) struct WorkerHandle {
    /// Commands into the worker.
    pub tx: mpsc::UnboundedSender<Message>,
    /// The worker's socket (what clients send to).
    pub local_addr: SocketAddr,
    /// Rooms placed on this worker (for placing the next one on the least loaded).
    pub rooms: AtomicUsize,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerHandle {
    /// Binds the socket and starts the worker thread.
    pub(crate) fn start(
        index: usize,
        sfu: &SfuConfig,
        counters: Arc<Counters>,
    ) -> io::Result<WorkerHandle> {
        let std_socket = socket::bind(SocketAddr::new(sfu.bind_ip, sfu.worker_port(index)))?;
        let local_addr = std_socket.local_addr()?;
        let tcp_listener = if sfu.ice_tcp {
            match tcp::bind(local_addr) {
                Ok(listener) => Some(listener),
                Err(err) => {
                    // The UDP port is free but its TCP twin is not (an ephemeral port in
                    // tests, or another program): UDP still works, clients just get no
                    // TCP candidate from this worker.
                    warn!(worker = index, %local_addr, %err, "ICE-TCP port not available; this worker offers UDP only");
                    None
                }
            }
        } else {
            None
        };
        let announced = if sfu.public_ips.is_empty() {
            vec![local_addr]
        } else {
            sfu.public_ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, local_addr.port()))
                .collect()
        };
        let config = CoreConfig {
            local_addr,
            announced,
            ice_lite: sfu.ice_lite,
            ice_tcp: tcp_listener.is_some(),
        };
        let coalesce = Duration::from_micros(u64::from(sfu.coalesce_us));
        let ice_tcp = config.ice_tcp;
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name(format!("sfu-worker-{index}"))
            .spawn(move || {
                let sockets = Sockets {
                    udp: std_socket,
                    tcp: tcp_listener,
                };
                run_thread(index, sockets, config, coalesce, counters, rx)
            })?;
        info!(worker = index, %local_addr, ice_tcp, "media worker started");
        Ok(WorkerHandle {
            tx,
            local_addr,
            rooms: AtomicUsize::new(0),
            thread: Some(thread),
        })
    }

    /// Sends a command and waits for its reply.
    pub(crate) async fn call(&self, cmd: Command) -> Result<Reply, SfuError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Message::Command {
                cmd,
                reply: Some(reply),
            })
            .map_err(|_| SfuError::Closed)?;
        rx.await.map_err(|_| SfuError::Closed)?
    }

    /// Sends a command without waiting (closing, keyframe requests).
    pub(crate) fn cast(&self, cmd: Command) {
        let _ = self.tx.send(Message::Command { cmd, reply: None });
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::Shutdown);
        if let Some(thread) = self.thread.take() {
            // Never join from the worker thread itself (the last handle dropped there).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// A worker's bound sockets, handed to its thread.
struct Sockets {
    udp: StdUdpSocket,
    /// The ICE-TCP listener on the same address, when ICE-TCP is on and the port was free.
    tcp: Option<std::net::TcpListener>,
}

fn run_thread(
    index: usize,
    sockets: Sockets,
    config: CoreConfig,
    coalesce: Duration,
    counters: Arc<Counters>,
    rx: mpsc::UnboundedReceiver<Message>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            error!(worker = index, %err, "media worker could not start its runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let socket = match UdpSocket::from_std(sockets.udp) {
            Ok(s) => s,
            Err(err) => {
                error!(worker = index, %err, "media worker could not register its socket");
                return;
            }
        };
        let (tcp, tcp_events) = match sockets.tcp.map(TcpSide::new).transpose() {
            Ok(Some((side, events))) => (Some(side), Some(events)),
            Ok(None) => (None, None),
            Err(err) => {
                error!(worker = index, %err, "media worker could not register its TCP listener");
                return;
            }
        };
        let mut worker = Worker {
            core: Core::new(config, Arc::clone(&counters)),
            counters,
            socket,
            tcp,
            tcp_events,
            receiver: Receiver::new(),
            received: Vec::with_capacity(socket::RECV_BATCH),
            send_queue: VecDeque::new(),
            events: HashMap::new(),
            coalesce,
            busy_since: None,
        };
        worker.run(rx).await;
        debug!(worker = index, "media worker stopped");
    });
}

struct Worker {
    core: Core,
    counters: Arc<Counters>,
    socket: UdpSocket,
    /// ICE-TCP connections (RFC 6544), when the worker listens for them.
    tcp: Option<TcpSide>,
    /// What the ICE-TCP connections received.
    tcp_events: Option<mpsc::Receiver<TcpEvent>>,
    receiver: Receiver,
    received: Vec<Received>,
    send_queue: VecDeque<Outgoing>,
    events: HashMap<ParticipantKey, mpsc::UnboundedSender<SfuEvent>>,
    /// Shortest time between two receive turns while busy (see [`Worker::hold`]).
    coalesce: Duration,
    /// Start of the last turn that read datagrams, while the worker is busy.
    busy_since: Option<Instant>,
}

impl Worker {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Message>) {
        loop {
            self.drain_core();
            self.flush();
            self.hold();
            let deadline = self
                .core
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + IDLE_WAKE);
            let writable = !self.send_queue.is_empty();
            tokio::select! {
                biased;
                msg = rx.recv() => {
                    let Some(msg) = msg else { return };
                    if !self.on_message(msg) {
                        return;
                    }
                    // Take whatever else is queued in one go.
                    while let Ok(msg) = rx.try_recv() {
                        if !self.on_message(msg) {
                            return;
                        }
                    }
                }
                ready = self.socket.ready(Interest::READABLE) => {
                    if ready.is_ok_and(|r| r.is_readable()) {
                        self.busy_since = Some(Instant::now());
                        self.receive();
                    }
                }
                _ = self.socket.writable(), if writable => {}
                accepted = accept(&self.tcp) => self.on_tcp_accepted(accepted),
                event = tcp_event(&mut self.tcp_events) => self.on_tcp_event(event),
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            let now = Instant::now();
            if self.core.poll_timeout().is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
            }
        }
    }

    /// After a turn that read datagrams, sleeps out the rest of the coalescing interval,
    /// so what arrives meanwhile is read in one batch with one wake-up. The sleep blocks
    /// the thread on purpose: parked in the runtime, the loop would be woken by every
    /// datagram (the socket is registered edge-triggered). Nothing else runs on this
    /// thread's runtime; commands wait at most one interval. An idle worker (nothing read
    /// in the last turn) does not hold: the first datagram after a pause is handled at
    /// once.
    fn hold(&mut self) {
        let Some(since) = self.busy_since.take() else {
            return;
        };
        let until = since + self.coalesce;
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
    }

    /// Applies one message; `false` means stop.
    fn on_message(&mut self, msg: Message) -> bool {
        match msg {
            Message::Command { cmd, reply } => {
                let (removing, adding) = match &cmd {
                    Command::RemoveParticipant { participant } => (Some(*participant), None),
                    Command::AddParticipant { participant, .. } => (None, Some(*participant)),
                    _ => (None, None),
                };
                let result = self.core.handle_command(Instant::now(), cmd);
                // A participant that could not be added gets no events.
                let forget = removing.or(adding.filter(|_| result.is_err()));
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                } else if let Err(err) = result {
                    debug!(%err, "media command failed");
                }
                // Events the removal produced for the participant itself are dropped with it.
                self.drain_core();
                if let Some(p) = forget {
                    self.events.remove(&p);
                }
                true
            }
            Message::Subscribe {
                participant,
                events,
            } => {
                self.events.insert(participant, events);
                true
            }
            Message::Shutdown => false,
        }
    }

    /// Reads datagram batches until the socket is empty (or the turn's budget is spent).
    fn receive(&mut self) {
        for _ in 0..RECV_ROUNDS_PER_TURN {
            self.received.clear();
            let res = self.socket.try_io(Interest::READABLE, || {
                self.receiver.recv_batch(&self.socket, &mut self.received)
            });
            match res {
                Ok(_) => {
                    let now = Instant::now();
                    for r in self.received.drain(..) {
                        self.core.handle_datagram(now, Peer::udp(r.from), r.data);
                    }
                    // Forward what this batch produced before reading the next one.
                    self.drain_core();
                    self.flush();
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    // ICMP errors surface here (ECONNREFUSED from a gone client): not fatal.
                    debug!(%err, "media socket receive error");
                    return;
                }
            }
        }
    }

    /// Moves the core's datagrams into the send queue and its events to signaling.
    fn drain_core(&mut self) {
        while let Some(Transmit { to, data }) = self.core.poll_transmit() {
            match to.transport {
                Transport::Udp if self.send_queue.len() < MAX_SEND_QUEUE => {
                    self.send_queue.push_back(Outgoing { to: to.addr, data });
                }
                Transport::Udp => self.counters.dropped(1),
                Transport::Tcp => {
                    let sent = self.tcp.as_mut().is_some_and(|t| t.send(to.addr, data));
                    if !sent {
                        self.counters.dropped(1);
                    }
                }
            }
        }
        while let Some((participant, event)) = self.core.poll_event() {
            if let Some(tx) = self.events.get(&participant) {
                if tx.send(event).is_err() {
                    self.events.remove(&participant);
                }
            }
        }
    }

    /// A connection came in on the ICE-TCP listener.
    fn on_tcp_accepted(&mut self, accepted: io::Result<(tokio::net::TcpStream, SocketAddr)>) {
        let Some(tcp) = self.tcp.as_mut() else { return };
        match accepted {
            Ok((stream, from)) => {
                let opened = tcp.open(stream, from);
                self.counters.ice_tcp_connection(opened);
                if opened {
                    self.counters.add(Gauge::IceTcpConnections, 1);
                    debug!(%from, "ICE-TCP connection accepted");
                } else {
                    debug!(%from, "ICE-TCP connection refused: too many open");
                }
            }
            // A client that gave up during the handshake, or out of descriptors.
            Err(err) => debug!(%err, "ICE-TCP accept failed"),
        }
    }

    /// A frame (one packet) or the end of an ICE-TCP connection.
    fn on_tcp_event(&mut self, event: Option<TcpEvent>) {
        match event {
            Some(TcpEvent::Frame { from, data }) => {
                self.busy_since = Some(Instant::now());
                self.core
                    .handle_datagram(Instant::now(), Peer::tcp(from), data);
                self.drain_core();
                self.flush();
            }
            Some(TcpEvent::Closed { from }) => {
                if let Some(tcp) = self.tcp.as_mut() {
                    tcp.closed(from);
                    self.counters.sub(Gauge::IceTcpConnections, 1);
                }
            }
            None => {}
        }
    }

    /// Sends what is queued, as long as the kernel takes it.
    fn flush(&mut self) {
        while !self.send_queue.is_empty() {
            let queue = &mut self.send_queue;
            let res = self.socket.try_io(Interest::WRITABLE, || {
                socket::send_batch(&self.socket, queue)
            });
            match res {
                Ok(0) => return,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    if let Some(suppressed) = SEND_ERROR_LOG.allow() {
                        warn!(%err, suppressed, "media socket send error; datagram dropped");
                    }
                    self.counters.dropped(1);
                }
            }
        }
    }
}

/// The next ICE-TCP connection, or never when the worker has no listener or is full.
async fn accept(tcp: &Option<TcpSide>) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match tcp {
        Some(t) if t.has_room() => t.accept().await,
        _ => std::future::pending().await,
    }
}

/// The next event of the ICE-TCP connections, or never without a listener.
async fn tcp_event(events: &mut Option<mpsc::Receiver<TcpEvent>>) -> Option<TcpEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
