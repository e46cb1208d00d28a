//! Configuration of the media plane.

use std::net::{IpAddr, Ipv4Addr};

use crate::error::SfuError;

/// How the SFU's peer connections reach the network. One value per process, handed to
/// [`crate::Sfu::new`]; the binary builds it from its own configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SfuConfig {
    /// Every UDP socket of every peer connection binds to this address (never a wildcard
    /// expansion over all interfaces). `127.0.0.1` in tests.
    pub bind_ip: IpAddr,
    /// Public addresses announced instead of `bind_ip` in host candidates (1:1 NAT, e.g. a
    /// cloud VM behind an elastic IP). Empty: announce `bind_ip` itself.
    pub public_ips: Vec<IpAddr>,
    /// Run server-side ICE in lite mode (the server answers connectivity checks but never
    /// starts them); only sensible when the server is directly reachable.
    pub ice_lite: bool,
    /// Lowest UDP port a peer connection may bind (inclusive). `0` together with
    /// `udp_port_max == 0` means "any ephemeral port".
    pub udp_port_min: u16,
    /// Highest UDP port a peer connection may bind (inclusive).
    pub udp_port_max: u16,
    /// UDP port of the first media worker; worker `i` listens on `rtc_port + i`. `0`: every
    /// worker takes an ephemeral port (tests).
    pub rtc_port: u16,
    /// Media workers (threads, one socket each); `0` means one per available core.
    pub workers: usize,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            public_ips: Vec::new(),
            ice_lite: false,
            udp_port_min: 0,
            udp_port_max: 0,
            rtc_port: 0,
            workers: 0,
        }
    }
}

impl SfuConfig {
    /// Whether a port range is configured (otherwise ephemeral ports are used).
    pub fn has_port_range(&self) -> bool {
        !(self.udp_port_min == 0 && self.udp_port_max == 0)
    }

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
        if self.has_port_range()
            && (self.udp_port_min == 0 || self.udp_port_min > self.udp_port_max)
        {
            return Err(SfuError::Config(format!(
                "invalid UDP port range {}..={}",
                self.udp_port_min, self.udp_port_max
            )));
        }
        if self.rtc_port != 0
            && usize::from(self.rtc_port) + self.worker_count() - 1 > usize::from(u16::MAX)
        {
            return Err(SfuError::Config(format!(
                "media ports {}.. for {} workers run past 65535",
                self.rtc_port,
                self.worker_count()
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
    fn default_is_loopback_any_port() {
        let c = SfuConfig::default();
        assert_eq!(c.bind_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(!c.has_port_range());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn rejects_bad_ranges_and_wildcards() {
        let mut c = SfuConfig {
            udp_port_min: 5000,
            udp_port_max: 4000,
            ..SfuConfig::default()
        };
        assert!(c.validate().is_err());
        c.udp_port_max = 5000;
        assert!(c.validate().is_ok());
        c.bind_ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert!(c.validate().is_err());
    }
}
