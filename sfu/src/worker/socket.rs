//! The worker's UDP socket with batched system calls: `recvmmsg` fills many datagrams per
//! call into one reused buffer, `sendmmsg` sends a whole fan-out (many destinations) per
//! call. This is where the per-packet syscall cost of one socket per connection goes away.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;

use bytes::BytesMut;

/// Datagrams read per `recvmmsg` call.
pub(crate) const RECV_BATCH: usize = 32;
/// Datagrams written per `sendmmsg` call.
pub(crate) const SEND_BATCH: usize = 64;
/// Room for one datagram: WebRTC media stays under the 1,200–1,500 byte MTU; anything
/// longer is truncated by the kernel and then rejected by SRTP, never misread.
const SLOT: usize = 2048;
/// Kernel buffer asked for in each direction: a burst of a whole fan-out must fit while
/// the loop is busy forwarding.
const KERNEL_BUFFER_BYTES: libc::c_int = 4 * 1024 * 1024;

/// A datagram read from the socket.
pub(crate) struct Received {
    /// Sender.
    pub from: SocketAddr,
    /// Payload, split off the batch buffer (no allocation of its own).
    pub data: BytesMut,
}

/// Binds the worker's socket: non-blocking, large kernel buffers.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<StdUdpSocket> {
    let socket = StdUdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // Best effort: the kernel caps it at net.core.[rw]mem_max.
        set_int_option(&socket, libc::SOL_SOCKET, opt, KERNEL_BUFFER_BYTES);
    }
    Ok(socket)
}

fn set_int_option(socket: &StdUdpSocket, level: libc::c_int, opt: libc::c_int, value: libc::c_int) {
    // SAFETY: a valid fd and a pointer to a c_int of the size passed.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Receive side state: one buffer of `RECV_BATCH` slots, reclaimed once the datagrams split
/// off it have been dropped by the core.
pub(crate) struct Receiver {
    pool: BytesMut,
}

impl Receiver {
    /// An empty receiver; its buffer is allocated on first use.
    pub(crate) fn new() -> Receiver {
        Receiver {
            pool: BytesMut::new(),
        }
    }

    /// Reads up to [`RECV_BATCH`] datagrams without blocking into `out`. Returns how many
    /// were read; `WouldBlock` when none is waiting.
    pub(crate) fn recv_batch(
        &mut self,
        socket: &impl AsRawFd,
        out: &mut Vec<Received>,
    ) -> io::Result<usize> {
        self.pool.clear();
        self.pool.reserve(RECV_BATCH * SLOT);
        let base = self.pool.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        let mut iovecs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut names: [MaybeUninit<libc::sockaddr_storage>; RECV_BATCH] =
            [MaybeUninit::zeroed(); RECV_BATCH];
        let mut headers: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..RECV_BATCH {
            iovecs[i] = libc::iovec {
                // SAFETY: the pool reserved RECV_BATCH * SLOT bytes.
                iov_base: unsafe { base.add(i * SLOT) }.cast(),
                iov_len: SLOT,
            };
            headers[i].msg_hdr.msg_iov = &mut iovecs[i];
            headers[i].msg_hdr.msg_iovlen = 1;
            headers[i].msg_hdr.msg_name = names[i].as_mut_ptr().cast();
            headers[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: every header points at live iovecs and names of the sizes given.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        // SAFETY: the kernel wrote the first n slots; lengths are bounded by SLOT below.
        unsafe { self.pool.set_len(n * SLOT) };
        for (i, header) in headers.iter().enumerate().take(n) {
            let mut data = self.pool.split_to(SLOT);
            let len = (header.msg_len as usize).min(SLOT);
            data.truncate(len);
            // SAFETY: the kernel filled msg_namelen bytes of a sockaddr_storage.
            let from =
                unsafe { sockaddr_to_std(names[i].assume_init_ref(), header.msg_hdr.msg_namelen) };
            if let Some(from) = from {
                out.push(Received { from, data });
            }
        }
        Ok(n)
    }
}

/// A datagram waiting to be sent.
pub(crate) struct Outgoing {
    /// Destination.
    pub to: SocketAddr,
    /// Payload.
    pub data: BytesMut,
}

/// Sends the front of `queue` with as few `sendmmsg` calls as possible and removes what
/// was sent. Returns `WouldBlock` when the kernel buffer is full (the rest stays queued).
pub(crate) fn send_batch(
    socket: &impl AsRawFd,
    queue: &mut std::collections::VecDeque<Outgoing>,
) -> io::Result<usize> {
    let mut total = 0;
    while !queue.is_empty() {
        let count = queue.len().min(SEND_BATCH);
        let mut iovecs: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
        let mut names: [libc::sockaddr_storage; SEND_BATCH] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
        for (i, item) in queue.iter().take(count).enumerate() {
            iovecs[i] = libc::iovec {
                iov_base: item.data.as_ptr() as *mut libc::c_void,
                iov_len: item.data.len(),
            };
            let name_len = std_to_sockaddr(&item.to, &mut names[i]);
            headers[i].msg_hdr.msg_iov = &mut iovecs[i];
            headers[i].msg_hdr.msg_iovlen = 1;
            headers[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            headers[i].msg_hdr.msg_namelen = name_len;
        }
        // SAFETY: headers point at live iovecs (borrowed from queued buffers) and names.
        let sent = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock && total > 0 {
                return Ok(total);
            }
            return match err.raw_os_error() {
                // A datagram the kernel refuses (unreachable destination, too large): drop
                // it rather than retry it forever, and go on with the rest.
                Some(code) if code != libc::EAGAIN && code != libc::EINTR => {
                    queue.pop_front();
                    Err(err)
                }
                _ => Err(err),
            };
        }
        let sent = sent as usize;
        queue.drain(..sent);
        total += sent;
        if sent < count {
            // The kernel took only part of the batch: its buffer is full.
            return Ok(total);
        }
    }
    Ok(total)
}

/// Decodes a kernel socket address (IPv4 or IPv6).
///
/// # Safety
/// `storage` must hold `len` bytes written by the kernel.
unsafe fn sockaddr_to_std(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            let a = &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            let a = &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Encodes a socket address for the kernel; returns its length.
fn std_to_sockaddr(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            let a = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), a) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            let a = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), a) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_senders() {
        let a = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = b.local_addr().unwrap();
        let mut queue: VecDeque<Outgoing> = (0..100u8)
            .map(|i| Outgoing {
                to,
                data: BytesMut::from(&[i; 100][..]),
            })
            .collect();
        let mut sent = 0;
        while !queue.is_empty() {
            sent += send_batch(&a, &mut queue).unwrap();
        }
        assert_eq!(sent, 100);
        let mut rx = Receiver::new();
        let mut got = Vec::new();
        while got.len() < 100 {
            let mut batch = Vec::new();
            match rx.recv_batch(&b, &mut batch) {
                Ok(n) => assert!(n <= RECV_BATCH),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
            got.extend(batch);
        }
        assert!(got.iter().all(|r| r.from == a.local_addr().unwrap()));
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.data.len(), 100);
            assert_eq!(r.data[0], i as u8, "order kept on loopback");
        }
        assert_eq!(
            rx.recv_batch(&b, &mut Vec::new()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn addresses_round_trip() {
        for s in ["127.0.0.1:7882", "[::1]:9"] {
            let addr: SocketAddr = s.parse().unwrap();
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = std_to_sockaddr(&addr, &mut st);
            assert_eq!(unsafe { sockaddr_to_std(&st, len) }, Some(addr));
        }
    }
}
