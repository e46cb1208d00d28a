//! One client connection's UDP socket: non-blocking, bound to an explicit IP with an
//! ephemeral port, read with `recvmmsg` into an [`Arena`] and written with `sendmmsg`.
//! The kernel stamps every received datagram with its arrival time (`SO_TIMESTAMPNS`),
//! so latency is measured to the moment a packet reached us, however late the loop
//! gets to it.
//!
//! The server tells its connections apart by the client's address after ICE, so every
//! client connection has a socket of its own (never one shared socket for many).

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use bytes::BytesMut;

use super::arena::Arena;

/// Datagrams read per `recvmmsg` call at most.
pub(crate) const RECV_BATCH: usize = 16;
/// Datagrams written per `sendmmsg` call at most.
pub(crate) const SEND_BATCH: usize = 32;
/// Room for one received datagram (larger ones are truncated by the kernel and dropped).
pub(crate) const SLOT: usize = 2048;

/// A bound, non-blocking UDP socket.
pub(crate) struct Socket {
    socket: UdpSocket,
    local: SocketAddr,
}

/// One received datagram.
pub(crate) struct Datagram {
    /// Sender.
    pub(crate) from: SocketAddr,
    /// Arrival time stamped by the kernel (µs since the Unix epoch), if it did.
    pub(crate) arrived_us: Option<u64>,
    /// Payload, cut from the loop's receive arena.
    pub(crate) data: BytesMut,
}

impl Socket {
    /// Binds `ip:0` (an ephemeral port), non-blocking.
    pub(crate) fn bind(ip: IpAddr) -> io::Result<Socket> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        socket.set_nonblocking(true)?;
        let on: libc::c_int = 1;
        // SAFETY: a plain setsockopt with an int option on our own descriptor.
        check(unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
        let local = socket.local_addr()?;
        Ok(Socket { socket, local })
    }

    /// The address the socket is bound to (our host candidate).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The descriptor (for epoll).
    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads up to [`RECV_BATCH`] waiting datagrams with one `recvmmsg` into `arena`
    /// and appends them to `out`; returns how many were read (0 when none waited).
    pub(crate) fn recv_batch(
        &self,
        arena: &mut Arena,
        out: &mut Vec<Datagram>,
    ) -> io::Result<usize> {
        arena.reserve(RECV_BATCH * SLOT);
        let spare = arena.spare();
        let base = spare.as_mut_ptr();
        // SAFETY: zeroed sockaddr_storage/iovec/mmsghdr are valid initial values.
        let mut addrs: [libc::sockaddr_storage; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut controls = [Control([0; CONTROL_LEN]); RECV_BATCH];
        for i in 0..RECV_BATCH {
            // SAFETY: the arena holds at least RECV_BATCH * SLOT bytes from `base`.
            iovs[i].iov_base = unsafe { base.add(i * SLOT) }.cast();
            iovs[i].iov_len = SLOT;
            msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = controls[i].0.as_mut_ptr().cast();
            msgs[i].msg_hdr.msg_controllen = CONTROL_LEN * 8;
        }
        // SAFETY: every pointer in `msgs` points at the arrays above or into the arena,
        // all alive for the call.
        let n = unsafe {
            libc::recvmmsg(
                self.fd(),
                msgs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for i in 0..n {
            let mut data = arena.take(SLOT);
            let len = msgs[i].msg_len as usize;
            let truncated = msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            match sockaddr_to(&addrs[i]) {
                Some(from) if !truncated && len <= SLOT => {
                    data.truncate(len);
                    let arrived_us = arrival_us(&msgs[i].msg_hdr);
                    out.push(Datagram {
                        from,
                        arrived_us,
                        data,
                    });
                }
                _ => tracing::debug!(len, truncated, "dropped an unreadable datagram"),
            }
        }
        Ok(n)
    }

    /// Sends `items` (destination, payload) with as few `sendmmsg` calls as possible;
    /// returns how many the kernel took. A datagram the kernel refuses is dropped, as a
    /// lost packet on the wire would be.
    pub(crate) fn send_batch(&self, items: &[(SocketAddr, BytesMut)]) -> usize {
        let mut sent = 0;
        for chunk in items.chunks(SEND_BATCH) {
            let mut addrs: [MaybeUninit<libc::sockaddr_storage>; SEND_BATCH] =
                [MaybeUninit::zeroed(); SEND_BATCH];
            // SAFETY: zeroed iovec/mmsghdr are valid initial values.
            let mut iovs: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
            let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
            for (i, (to, data)) in chunk.iter().enumerate() {
                let len = sockaddr_from(*to, &mut addrs[i]);
                iovs[i].iov_base = data.as_ptr() as *mut libc::c_void;
                iovs[i].iov_len = data.len();
                msgs[i].msg_hdr.msg_name = addrs[i].as_mut_ptr().cast();
                msgs[i].msg_hdr.msg_namelen = len;
                msgs[i].msg_hdr.msg_iov = &mut iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            let mut at = 0;
            while at < chunk.len() {
                // SAFETY: `msgs[at..chunk.len()]` point at live addresses and payloads.
                let n = unsafe {
                    libc::sendmmsg(
                        self.fd(),
                        msgs[at..].as_mut_ptr(),
                        (chunk.len() - at) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n <= 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    tracing::debug!(error = %e, to = %chunk[at].0, "datagram not sent");
                    at += 1; // skip the one the kernel refused
                    continue;
                }
                at += n as usize;
                sent += n as usize;
            }
        }
        sent
    }
}

/// Room for the control messages of one datagram (the timestamp), in u64 words so
/// the buffer is aligned for `cmsghdr`.
const CONTROL_LEN: usize = 8;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u64; CONTROL_LEN]);

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The `SCM_TIMESTAMPNS` arrival time of a received message, in µs since the epoch.
fn arrival_us(hdr: &libc::msghdr) -> Option<u64> {
    // SAFETY: `hdr` was filled by recvmmsg; the CMSG macros stay inside
    // `msg_control[..msg_controllen]`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = libc::CMSG_DATA(c).cast::<libc::timespec>().read_unaligned();
                let us = (ts.tv_sec as u64)
                    .checked_mul(1_000_000)?
                    .checked_add(ts.tv_nsec as u64 / 1_000)?;
                return Some(us);
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    None
}

/// Reads a kernel socket address.
fn sockaddr_to(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(a.sin_addr.s_addr).into(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` as a kernel socket address into `out`; returns its length.
fn sockaddr_from(
    addr: SocketAddr,
    out: &mut MaybeUninit<libc::sockaddr_storage>,
) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { out.as_mut_ptr().cast::<libc::sockaddr_in>().write(sin) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { out.as_mut_ptr().cast::<libc::sockaddr_in6>().write(sin6) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_round_trip() {
        for addr in ["127.0.0.1:5004", "[::1]:7000", "10.1.2.3:65535"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut ss = MaybeUninit::zeroed();
            sockaddr_from(addr, &mut ss);
            // SAFETY: zero-initialised, then filled by sockaddr_from.
            let ss = unsafe { ss.assume_init() };
            assert_eq!(sockaddr_to(&ss), Some(addr));
        }
    }
}
