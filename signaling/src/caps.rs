//! Caps on open signaling connections, in total and per client address, so one
//! address (or everyone together) cannot hold an unbounded number of sockets.
//!
//! The transport reserves a [`ConnectionPermit`] before it upgrades the request and
//! keeps it for the life of the socket; dropping the permit gives the place back.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use crate::throttle::LogThrottle;

/// One refusal line per second for the whole process.
static REFUSAL_LOG: LogThrottle = LogThrottle::new(Duration::from_secs(1));

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapExceeded {
    /// The server holds its maximum number of connections.
    Total,
    /// This client address holds its maximum number of connections.
    PerAddress,
}

/// The counters behind the caps.
#[derive(Debug)]
pub(crate) struct ConnectionCaps {
    max_total: usize,
    max_per_address: usize,
    total: AtomicUsize,
    per_address: DashMap<IpAddr, usize>,
}

/// A place among the open connections; given back on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    caps: Arc<ConnectionCaps>,
    address: Option<IpAddr>,
}

impl ConnectionCaps {
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Self {
        ConnectionCaps {
            max_total,
            max_per_address,
            total: AtomicUsize::new(0),
            per_address: DashMap::new(),
        }
    }

    /// Reserves a place for a connection from `address` (`None`: unknown, only the
    /// total cap applies).
    pub(crate) fn reserve(
        self: &Arc<Self>,
        address: Option<IpAddr>,
    ) -> Result<ConnectionPermit, CapExceeded> {
        let result = self.try_reserve(address);
        if let Err(cap) = result {
            metrics::counter!("theraroom_ws_refused_total").increment(1);
            if let Some(suppressed) = REFUSAL_LOG.allow() {
                tracing::warn!(?cap, client = ?address, suppressed, "signaling connection refused: cap reached");
            }
        }
        result
    }

    fn try_reserve(
        self: &Arc<Self>,
        address: Option<IpAddr>,
    ) -> Result<ConnectionPermit, CapExceeded> {
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            })
            .map_err(|_| CapExceeded::Total)?;
        if let Some(ip) = address {
            let mut count = self.per_address.entry(ip).or_insert(0);
            if *count >= self.max_per_address {
                drop(count);
                self.per_address.remove_if(&ip, |_, n| *n == 0);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(CapExceeded::PerAddress);
            }
            *count += 1;
        }
        self.publish();
        Ok(ConnectionPermit {
            caps: Arc::clone(self),
            address,
        })
    }

    fn publish(&self) {
        metrics::gauge!("theraroom_ws_connections").set(self.total.load(Ordering::Relaxed) as f64);
    }

    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    pub(crate) fn open_from(&self, address: IpAddr) -> usize {
        self.per_address.get(&address).map_or(0, |n| *n)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if let Some(ip) = self.address {
            self.caps.per_address.remove_if_mut(&ip, |_, n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
        }
        self.caps.total.fetch_sub(1, Ordering::AcqRel);
        self.caps.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_permits_give_back() {
        let caps = Arc::new(ConnectionCaps::new(3, 2));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let p1 = caps.reserve(Some(a)).unwrap();
        let _p2 = caps.reserve(Some(a)).unwrap();
        assert_eq!(caps.reserve(Some(a)).unwrap_err(), CapExceeded::PerAddress);
        let _p3 = caps.reserve(Some(b)).unwrap();
        assert_eq!(caps.reserve(None).unwrap_err(), CapExceeded::Total);
        assert_eq!((caps.open(), caps.open_from(a)), (3, 2));
        drop(p1);
        assert_eq!((caps.open(), caps.open_from(a)), (2, 1));
        let _p4 = caps.reserve(Some(a)).unwrap();
        assert_eq!(caps.open(), 3);
    }
}
