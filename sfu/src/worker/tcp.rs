//! ICE over TCP (RFC 6544, passive side): a worker's TCP listener on the same port as
//! its UDP socket, for clients whose network blocks UDP. Every connection the listener
//! accepts is one client transport address; its packets are RFC 4571 frames (a 16-bit
//! length, then the packet). One reader task per connection turns frames into
//! [`TcpEvent`]s for the worker loop, one writer task frames what the core sends. Both
//! run on the worker's own single-threaded runtime, so the core still sees every packet
//! on its one thread, exactly as for UDP.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] per worker; a connection that sends nothing for
//! [`IDLE_TIMEOUT`] (ICE consent checks come every few seconds on a pair in use), or a
//! frame longer than [`MAX_FRAME`], is closed; a client that does not read its
//! connection loses packets ([`WRITE_QUEUE`]) rather than growing the worker's memory.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::debug;

/// Most open ICE-TCP connections per worker. A browser opens one per server candidate
/// pair it tries (two connections per participant, publisher and subscriber); beyond
/// this, connections are refused and counted.
pub(crate) const MAX_CONNECTIONS: usize = 2048;
/// A connection with no frame for this long is closed. An ICE pair in use carries a
/// consent check at least every 5 s (RFC 7675), so only abandoned connections go.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest frame accepted: WebRTC packets stay near the 1,200 byte MTU a browser uses on
/// every transport; a longer frame means a peer that does not speak RFC 4571.
pub(crate) const MAX_FRAME: usize = 4096;
/// Frames waiting to be written to one connection; more are dropped (a client that
/// does not read its socket, or a path slower than the media, as UDP would lose them).
pub(crate) const WRITE_QUEUE: usize = 512;
/// Frames coalesced into one write.
const WRITE_BATCH: usize = 32;
/// Frames in flight from every reader to the worker loop (backpressure onto TCP).
pub(crate) const EVENT_QUEUE: usize = 1024;

/// What the reader tasks tell the worker loop.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// One packet from the client at `from`.
    Frame { from: SocketAddr, data: BytesMut },
    /// The connection from `from` is gone (closed by the client, idle, or broken).
    Closed { from: SocketAddr },
}

/// Splits an RFC 4571 byte stream into frames. Pure, so framing is tested without sockets.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    buffer: BytesMut,
}

/// Why a stream cannot be framed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FrameTooLong(pub usize);

impl FrameDecoder {
    /// Adds bytes read from the stream.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub(crate) fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameTooLong> {
        if self.buffer.len() < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.buffer[0], self.buffer[1]]));
        if len > MAX_FRAME {
            return Err(FrameTooLong(len));
        }
        if self.buffer.len() < 2 + len {
            return Ok(None);
        }
        let mut frame = self.buffer.split_to(2 + len);
        Ok(Some(frame.split_off(2)))
    }
}

/// Appends `packet` to `out` as one RFC 4571 frame; `false` (nothing written) when it
/// cannot be framed.
pub(crate) fn encode_frame(packet: &[u8], out: &mut BytesMut) -> bool {
    let Ok(len) = u16::try_from(packet.len()) else {
        return false;
    };
    out.reserve(2 + packet.len());
    out.put_u16(len);
    out.extend_from_slice(packet);
    true
}

/// The worker's TCP side: its listener and the writers of its open connections.
pub(crate) struct TcpSide {
    listener: TcpListener,
    writers: HashMap<SocketAddr, mpsc::Sender<BytesMut>>,
    events_tx: mpsc::Sender<TcpEvent>,
}

impl TcpSide {
    /// Listens on `listener` (already bound, non-blocking); the receiver is where the
    /// worker loop reads what the connections receive.
    pub(crate) fn new(
        listener: std::net::TcpListener,
    ) -> io::Result<(TcpSide, mpsc::Receiver<TcpEvent>)> {
        let listener = TcpListener::from_std(listener)?;
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let side = TcpSide {
            listener,
            writers: HashMap::new(),
            events_tx,
        };
        Ok((side, events))
    }

    /// Whether another connection may be accepted.
    pub(crate) fn has_room(&self) -> bool {
        self.writers.len() < MAX_CONNECTIONS
    }

    /// Waits for the next connection.
    pub(crate) async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.listener.accept().await
    }

    /// Starts the reader and writer of an accepted connection; `false` when refused
    /// (the worker has [`MAX_CONNECTIONS`] open).
    pub(crate) fn open(&mut self, stream: TcpStream, from: SocketAddr) -> bool {
        if !self.has_room() {
            return false;
        }
        // Media wants every frame on the wire at once.
        if let Err(err) = stream.set_nodelay(true) {
            debug!(%from, %err, "ICE-TCP: TCP_NODELAY not set");
        }
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        self.writers.insert(from, tx);
        tokio::spawn(read_frames(read, from, self.events_tx.clone()));
        tokio::spawn(write_frames(write, rx));
        true
    }

    /// Queues a packet for the connection from `to`; `false` when it was dropped (no such
    /// connection any more, or its queue is full).
    pub(crate) fn send(&mut self, to: SocketAddr, data: BytesMut) -> bool {
        match self.writers.get(&to) {
            Some(tx) => tx.try_send(data).is_ok(),
            None => false,
        }
    }

    /// Forgets a closed connection (its writer task ends when the sender is dropped).
    pub(crate) fn closed(&mut self, from: SocketAddr) {
        self.writers.remove(&from);
    }
}

/// Reads frames from one connection until it closes, idles out or breaks the framing.
async fn read_frames(mut read: OwnedReadHalf, from: SocketAddr, events: mpsc::Sender<TcpEvent>) {
    let mut decoder = FrameDecoder::default();
    let mut chunk = vec![0u8; 8 * 1024];
    let reason = 'read: loop {
        let n = match tokio::time::timeout(IDLE_TIMEOUT, read.read(&mut chunk)).await {
            Err(_) => break "idle",
            Ok(Err(_)) => break "error",
            Ok(Ok(0)) => break "closed by the client",
            Ok(Ok(n)) => n,
        };
        decoder.extend(&chunk[..n]);
        loop {
            match decoder.next_frame() {
                Ok(Some(data)) => {
                    if events.send(TcpEvent::Frame { from, data }).await.is_err() {
                        break 'read "worker stopped";
                    }
                }
                Ok(None) => break,
                Err(FrameTooLong(len)) => {
                    debug!(%from, len, "ICE-TCP: frame too long");
                    break 'read "frame too long";
                }
            }
        }
    };
    debug!(%from, reason, "ICE-TCP connection ends");
    let _ = events.send(TcpEvent::Closed { from }).await;
}

/// Writes the frames queued for one connection, several per system call.
async fn write_frames(mut write: OwnedWriteHalf, mut queue: mpsc::Receiver<BytesMut>) {
    let mut packets = Vec::with_capacity(WRITE_BATCH);
    let mut out = BytesMut::new();
    while queue.recv_many(&mut packets, WRITE_BATCH).await > 0 {
        out.clear();
        for packet in packets.drain(..) {
            encode_frame(&packet, &mut out);
        }
        if write.write_all(&out).await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// Binds the worker's TCP listener on `addr` (the UDP socket's address).
pub(crate) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(packets: &[&[u8]]) -> BytesMut {
        let mut out = BytesMut::new();
        for p in packets {
            assert!(encode_frame(p, &mut out));
        }
        out
    }

    #[test]
    fn frames_survive_any_split_of_the_stream() {
        let stream = framed(&[b"stun check", b"", &[7u8; 1200], b"dtls"]);
        for cut in [1, 2, 3, 7, 500, 1300] {
            let mut decoder = FrameDecoder::default();
            let mut got = Vec::new();
            for piece in stream.chunks(cut) {
                decoder.extend(piece);
                while let Some(frame) = decoder.next_frame().expect("valid framing") {
                    got.push(frame.to_vec());
                }
            }
            assert_eq!(got.len(), 4, "split every {cut} bytes");
            assert_eq!(got[0], b"stun check");
            assert!(got[1].is_empty());
            assert_eq!(got[2], vec![7u8; 1200]);
            assert_eq!(got[3], b"dtls");
        }
    }

    #[test]
    fn a_frame_longer_than_the_limit_is_refused_before_it_is_buffered() {
        let mut decoder = FrameDecoder::default();
        let len = u16::try_from(MAX_FRAME + 1).expect("fits");
        decoder.extend(&len.to_be_bytes());
        assert_eq!(decoder.next_frame(), Err(FrameTooLong(MAX_FRAME + 1)));
    }

    #[test]
    fn a_packet_too_long_for_the_length_field_is_not_framed() {
        let mut out = BytesMut::new();
        assert!(!encode_frame(&vec![0u8; 70_000], &mut out));
        assert!(out.is_empty());
    }
}
