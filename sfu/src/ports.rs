//! UDP port allocation within the configured range.
//!
//! webrtc 0.21 has no single-port UDP mux: every peer connection binds its own socket. With
//! a configured range (firewalls), the SFU hands each connection a port that neither another
//! of its connections nor another process holds.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

/// Round-robin allocator over an inclusive port range (pure bookkeeping).
#[derive(Debug)]
pub struct PortRange {
    min: u16,
    max: u16,
    next: u16,
    in_use: HashSet<u16>,
}

impl PortRange {
    /// Allocator over `min..=max`.
    pub fn new(min: u16, max: u16) -> Self {
        PortRange {
            min,
            max,
            next: min,
            in_use: HashSet::new(),
        }
    }

    /// Number of ports in the range.
    pub fn size(&self) -> usize {
        usize::from(self.max - self.min) + 1
    }

    /// The next port not held by us for which `usable` (e.g. "binds right now") holds,
    /// marked in use; `None` if every port is held or unusable.
    pub fn acquire(&mut self, mut usable: impl FnMut(u16) -> bool) -> Option<u16> {
        for _ in 0..self.size() {
            let p = self.next;
            self.next = if p >= self.max { self.min } else { p + 1 };
            if self.in_use.contains(&p) {
                continue;
            }
            if usable(p) {
                self.in_use.insert(p);
                return Some(p);
            }
        }
        None
    }

    /// Gives a port back.
    pub fn release(&mut self, port: u16) {
        self.in_use.remove(&port);
    }

    /// Ports currently held.
    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }
}

/// Shared allocator: `None` range means ephemeral ports (port 0).
#[derive(Clone, Debug)]
pub(crate) struct PortAllocator {
    ip: IpAddr,
    range: Option<Arc<Mutex<PortRange>>>,
}

/// A port held until dropped.
#[derive(Debug)]
pub(crate) struct PortLease {
    port: u16,
    range: Option<Arc<Mutex<PortRange>>>,
}

impl PortLease {
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Some(range) = &self.range {
            range
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(self.port);
        }
    }
}

impl PortAllocator {
    pub(crate) fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        let range = if min == 0 && max == 0 {
            None
        } else {
            Some(Arc::new(Mutex::new(PortRange::new(min, max))))
        };
        PortAllocator { ip, range }
    }

    /// Number of candidate ports (1 for ephemeral).
    pub(crate) fn attempts(&self) -> usize {
        self.range
            .as_ref()
            .map_or(1, |r| r.lock().unwrap_or_else(|e| e.into_inner()).size())
    }

    /// A port that could be bound a moment ago (probe-bound and released: another process
    /// may still take it, so callers retry on bind failure).
    pub(crate) fn acquire(&self) -> Option<PortLease> {
        let Some(range) = &self.range else {
            return Some(PortLease {
                port: 0,
                range: None,
            });
        };
        let ip = self.ip;
        let port = range
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .acquire(|p| UdpSocket::bind(SocketAddr::new(ip, p)).is_ok())?;
        Some(PortLease {
            port,
            range: Some(Arc::clone(range)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_skips_held_and_unusable() {
        let mut r = PortRange::new(5000, 5003);
        assert_eq!(r.acquire(|_| true), Some(5000));
        assert_eq!(r.acquire(|p| p != 5001), Some(5002));
        assert_eq!(r.acquire(|_| true), Some(5003));
        assert_eq!(r.acquire(|_| true), Some(5001));
        assert_eq!(r.acquire(|_| true), None, "all four held");
        r.release(5002);
        assert_eq!(r.acquire(|_| true), Some(5002));
        assert_eq!(r.in_use(), 4);
    }

    #[test]
    fn lease_returns_port_on_drop() {
        let a = PortAllocator::new(IpAddr::from([127, 0, 0, 1]), 0, 0);
        assert_eq!(a.acquire().unwrap().port(), 0);
        // A real range on loopback: ports come back when the lease drops.
        let a = PortAllocator::new(IpAddr::from([127, 0, 0, 1]), 47200, 47201);
        let l1 = a.acquire().unwrap();
        let l2 = a.acquire().unwrap();
        assert_ne!(l1.port(), l2.port());
        assert!(a.acquire().is_none());
        drop(l1);
        assert!(a.acquire().is_some());
    }
}
