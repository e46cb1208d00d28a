//! Configuration of the media plane.

use std::net::{IpAddr, Ipv4Addr};

use crate::error::SfuError;

/// Default of [`SfuConfig::coalesce_us`]: one millisecond, far below what a jitter buffer
/// absorbs, and the point where wake-ups stop dominating a busy worker's CPU on a VM.
pub const DEFAULT_COALESCE_US: u32 = 1000;
/// Largest accepted [`SfuConfig::coalesce_us`]: beyond 10 ms the added latency is felt.
pub const MAX_COALESCE_US: u32 = 10_000;

/// How the SFU's peer connections reach the network. One value per process, handed to
/// [`crate::Sfu::new`]; the binary builds it from its own configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SfuConfig {
    /// Every media worker's UDP socket binds to this address (never a wildcard expansion
    /// over all interfaces). `127.0.0.1` in tests.
    pub bind_ip: IpAddr,
    /// Public addresses announced instead of `bind_ip` in host candidates (1:1 NAT, e.g. a
    /// cloud VM behind an elastic IP). Empty: announce `bind_ip` itself.
    pub public_ips: Vec<IpAddr>,
    /// Run server-side ICE in lite mode (the server answers connectivity checks but never
    /// starts them); only sensible when the server is directly reachable.
    pub ice_lite: bool,
    /// Accept ICE over TCP (RFC 6544, passive): every worker also listens on TCP at its
    /// UDP port, and every connection offers that TCP host candidate, so a client whose
    /// network blocks UDP still connects without a TURN server. Off: UDP only.
    pub ice_tcp: bool,
    /// UDP port of the first media worker; worker `i` listens on `rtc_port + i`. `0`: every
    /// worker takes an ephemeral port (tests).
    pub rtc_port: u16,
    /// Media workers (threads, one socket each); `0` means one per available core.
    pub workers: usize,
    /// Shortest time between two receive turns of a busy worker, in microseconds (`0`:
    /// none). A worker that has just handled datagrams sleeps out the rest of this
    /// interval before reading again, so the datagrams of that interval arrive in one
    /// batch and cost one wake-up instead of one each; an idle worker still wakes at
    /// once for the first datagram. Adds at most this much to one-way latency.
    pub coalesce_us: u32,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            public_ips: Vec::new(),
            ice_lite: false,
            ice_tcp: true,
            rtc_port: 0,
            workers: 0,
            coalesce_us: DEFAULT_COALESCE_US,
        }
    }
}

impl SfuConfig {
    /// How many media workers run: [`SfuConfig::workers`], or one per available core.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// The UDP port worker `index` binds (`0`: ephemeral).
    pub fn worker_port(&self, index: usize) -> u16 {
        if self.rtc_port == 0 {
            0
        } else {
            self.rtc_port.saturating_add(index as u16)
        }
    }

    /// Rejects configurations that cannot work, so the binary fails at start-up rather than
    /// at the first join.
    pub fn validate(&self) -> Result<(), SfuError> {
        if self.rtc_port != 0
            && usize::from(self.rtc_port) + self.worker_count() - 1 > usize::from(u16::MAX)
        {
            return Err(SfuError::Config(format!(
                "media ports {}.. for {} workers run past 65535",
                self.rtc_port,
                self.worker_count()
            )));
        }
        if self.coalesce_us > MAX_COALESCE_US {
            return Err(SfuError::Config(format!(
                "coalescing of {} µs is above the {MAX_COALESCE_US} µs limit",
                self.coalesce_us
            )));
        }
        if self.bind_ip.is_unspecified() {
            return Err(SfuError::Config(
                "bind_ip must be a concrete address, not a wildcard".to_owned(),
            ));
        }
        if let Some(ip) = self
            .public_ips
            .iter()
            .find(|ip| ip.is_ipv4() != self.bind_ip.is_ipv4())
        {
            return Err(SfuError::Config(format!(
                "public ip {ip} is not of the same family as bind_ip {}",
                self.bind_ip
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_loopback_ephemeral_ports_one_worker_per_core() {
        let c = SfuConfig::default();
        assert_eq!(c.bind_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.worker_port(1), 0);
        assert!(c.worker_count() >= 1);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn worker_ports_follow_the_first_and_stay_in_range() {
        let mut c = SfuConfig {
            rtc_port: 7882,
            workers: 4,
            ..SfuConfig::default()
        };
        assert_eq!((c.worker_port(0), c.worker_port(3)), (7882, 7885));
        assert!(c.validate().is_ok());
        c.rtc_port = 65534;
        assert!(c.validate().is_err(), "65534 + 3 runs past the last port");
        c.rtc_port = 7882;
        c.bind_ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert!(c.validate().is_err());
    }

    #[test]
    fn coalescing_is_bounded() {
        let mut c = SfuConfig::default();
        assert_eq!(c.coalesce_us, DEFAULT_COALESCE_US);
        c.coalesce_us = MAX_COALESCE_US;
        assert!(c.validate().is_ok());
        c.coalesce_us = MAX_COALESCE_US + 1;
        assert!(c.validate().is_err());
        c.coalesce_us = 0;
        assert!(c.validate().is_ok(), "0 turns coalescing off");
    }
}
