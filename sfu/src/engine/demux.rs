//! Which connection a datagram arriving on the worker's one socket belongs to.
//!
//! - A datagram from an address bound to a connection goes to it.
//! - A STUN Binding request goes to the connection whose local ufrag is the first part of
//!   its USERNAME. An address is bound to (or moved to) that connection only when the
//!   request carries a MESSAGE-INTEGRITY made with the connection's local password: an
//!   attacker who only knows a ufrag cannot steal another client's address.
//! - A STUN response goes to the connection that sent the request (by transaction id): a
//!   full-ICE server checks the client's candidates before the client's own checks arrive.
//! - Everything else is dropped, with the reason, for the caller to count.
//!
//! An ICE restart gives a connection a new ufrag: the old one stops routing at once (the
//! connection would reject its checks anyway) and the old address bindings are kept,
//! marked stale, until the connection reports its new pair working ([`Demux::ice_connected`]),
//! so media does not gap while the client moves.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::crypto::RTCCrypto;

use super::io::{ConnKey, Peer};
use super::stun::{self, StunClass};

/// Most remote addresses bound to one connection (host, reflexive and relayed candidates of
/// one client, plus a network change or two). The oldest (stale first) is evicted.
pub(crate) const MAX_BINDINGS_PER_CONNECTION: usize = 8;
/// How long a check sent by a connection waits for its response to be routed back.
const TRANSACTION_TTL: Duration = Duration::from_secs(10);
/// Most checks in flight across the core (a full-ICE server sends a few per connection).
const MAX_TRANSACTIONS: usize = 16_384;

/// Why a datagram went to no connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Not a STUN request naming a connection, from an address bound to none.
    UnknownAddress,
    /// A STUN request whose USERNAME names no connection of this core.
    UnknownUfrag,
    /// A STUN request naming a connection, without a valid MESSAGE-INTEGRITY, from an
    /// address not bound to that connection.
    Unauthenticated,
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Feed it to this connection.
    To(ConnKey),
    /// Drop it.
    Drop(DropReason),
}

/// Why [`Demux::set_credentials`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UfragTaken;

#[derive(Clone, Copy, Debug)]
struct Binding {
    addr: Peer,
    /// Learnt before the connection's last ICE restart.
    stale: bool,
}

#[derive(Debug, Default)]
struct Entry {
    ufrag: Option<String>,
    pwd: String,
    bindings: Vec<Binding>,
}

/// The routing tables of one core.
#[derive(Default)]
pub(crate) struct Demux {
    by_addr: HashMap<Peer, ConnKey>,
    by_ufrag: HashMap<String, ConnKey>,
    entries: HashMap<ConnKey, Entry>,
    transactions: HashMap<[u8; 12], (ConnKey, Instant)>,
    transaction_expiry: VecDeque<(Instant, [u8; 12])>,
}

impl Demux {
    /// Records the local ICE credentials of `conn`'s current local description. A new
    /// ufrag for a connection that had one is an ICE restart: the old ufrag is forgotten
    /// and its address bindings become stale. Refused if another connection uses `ufrag`.
    pub(crate) fn set_credentials(
        &mut self,
        conn: ConnKey,
        ufrag: &str,
        pwd: &str,
    ) -> Result<(), UfragTaken> {
        if let Some(owner) = self.by_ufrag.get(ufrag) {
            if *owner != conn {
                return Err(UfragTaken);
            }
        }
        let entry = self.entries.entry(conn).or_default();
        entry.pwd.clear();
        entry.pwd.push_str(pwd);
        if entry.ufrag.as_deref() == Some(ufrag) {
            return Ok(());
        }
        if let Some(old) = entry.ufrag.replace(ufrag.to_owned()) {
            self.by_ufrag.remove(&old);
            for b in &mut entry.bindings {
                b.stale = true;
            }
        }
        self.by_ufrag.insert(ufrag.to_owned(), conn);
        Ok(())
    }

    /// `conn`'s ICE is connected again: bindings learnt before its restart and not
    /// confirmed since are dropped.
    pub(crate) fn ice_connected(&mut self, conn: ConnKey) {
        let Some(entry) = self.entries.get_mut(&conn) else {
            return;
        };
        let by_addr = &mut self.by_addr;
        entry.bindings.retain(|b| {
            if b.stale {
                by_addr.remove(&b.addr);
            }
            !b.stale
        });
    }

    /// Forgets everything about `conn` (closed), checks it had in flight included.
    pub(crate) fn remove(&mut self, conn: ConnKey) {
        self.transactions.retain(|_, (c, _)| *c != conn);
        if let Some(entry) = self.entries.remove(&conn) {
            if let Some(ufrag) = entry.ufrag {
                self.by_ufrag.remove(&ufrag);
            }
            for b in entry.bindings {
                self.by_addr.remove(&b.addr);
            }
        }
    }

    /// Notes a datagram `conn` sends to `to`: a Binding request it sent is remembered so
    /// the response finds its way back.
    pub(crate) fn note_sent(&mut self, now: Instant, conn: ConnKey, data: &[u8]) {
        let Some(h) = stun::header(data) else {
            return;
        };
        if h.class != StunClass::Request {
            return;
        }
        self.expire_transactions(now);
        if self.transactions.len() >= MAX_TRANSACTIONS {
            return;
        }
        let deadline = now + TRANSACTION_TTL;
        self.transactions.insert(h.transaction, (conn, deadline));
        self.transaction_expiry.push_back((deadline, h.transaction));
    }

    fn expire_transactions(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.transaction_expiry.front() {
            if deadline > now {
                break;
            }
            self.transaction_expiry.pop_front();
            if self
                .transactions
                .get(&id)
                .is_some_and(|(_, d)| *d == deadline)
            {
                self.transactions.remove(&id);
            }
        }
    }

    /// Decides where a datagram from `from` goes, binding `from` on an authenticated check.
    pub(crate) fn route(
        &mut self,
        now: Instant,
        from: Peer,
        data: &[u8],
        crypto: &dyn RTCCrypto,
    ) -> Route {
        let bound = self.by_addr.get(&from).copied();
        let Some(h) = stun::header(data) else {
            return bound.map_or(Route::Drop(DropReason::UnknownAddress), Route::To);
        };
        match h.class {
            StunClass::Request => self.route_request(from, bound, data, crypto),
            StunClass::Response => {
                self.expire_transactions(now);
                match self.transactions.get(&h.transaction) {
                    Some((conn, _)) if self.entries.contains_key(conn) => Route::To(*conn),
                    _ => bound.map_or(Route::Drop(DropReason::UnknownAddress), Route::To),
                }
            }
            StunClass::Other => bound.map_or(Route::Drop(DropReason::UnknownAddress), Route::To),
        }
    }

    fn route_request(
        &mut self,
        from: Peer,
        bound: Option<ConnKey>,
        data: &[u8],
        crypto: &dyn RTCCrypto,
    ) -> Route {
        let target = stun::local_ufrag(data).and_then(|u| self.by_ufrag.get(u).copied());
        let Some(target) = target else {
            // Not addressed to a connection of ours: only the address can route it.
            return bound.map_or(Route::Drop(DropReason::UnknownUfrag), Route::To);
        };
        let Some(entry) = self.entries.get(&target) else {
            return Route::Drop(DropReason::UnknownUfrag);
        };
        let fresh = entry.bindings.iter().any(|b| b.addr == from && !b.stale);
        if bound == Some(target) && fresh {
            // Known pair: the connection checks the integrity itself.
            return Route::To(target);
        }
        if stun::integrity_ok(data, &entry.pwd, crypto) {
            self.bind(from, target);
            return Route::To(target);
        }
        if bound == Some(target) {
            Route::To(target)
        } else {
            Route::Drop(DropReason::Unauthenticated)
        }
    }

    fn bind(&mut self, addr: Peer, conn: ConnKey) {
        if let Some(previous) = self.by_addr.insert(addr, conn) {
            if previous != conn {
                if let Some(e) = self.entries.get_mut(&previous) {
                    e.bindings.retain(|b| b.addr != addr);
                }
            }
        }
        let Some(entry) = self.entries.get_mut(&conn) else {
            return;
        };
        if let Some(b) = entry.bindings.iter_mut().find(|b| b.addr == addr) {
            b.stale = false;
            return;
        }
        if entry.bindings.len() >= MAX_BINDINGS_PER_CONNECTION {
            let victim = entry.bindings.iter().position(|b| b.stale).unwrap_or(0);
            let evicted = entry.bindings.remove(victim);
            self.by_addr.remove(&evicted.addr);
        }
        entry.bindings.push(Binding { addr, stale: false });
    }

    #[cfg(test)]
    /// Number of addresses bound to any connection (for tests and gauges).
    pub(crate) fn bound_addresses(&self) -> usize {
        self.by_addr.len()
    }

    #[cfg(test)]
    /// Number of connections known (for tests: must reach zero when everything closed).
    pub(crate) fn connections(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    /// The connection `addr` is bound to.
    pub(crate) fn bound(&self, addr: Peer) -> Option<ConnKey> {
        self.by_addr.get(&addr).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stun::tests::binding_request;
    use crate::types::PcRole;

    fn conn(p: u64) -> ConnKey {
        ConnKey::new(p, PcRole::Subscriber)
    }

    fn addr(port: u16) -> Peer {
        Peer::udp(std::net::SocketAddr::from(([10, 0, 0, 1], port)))
    }

    fn tcp(port: u16) -> Peer {
        Peer::tcp(std::net::SocketAddr::from(([10, 0, 0, 1], port)))
    }

    struct Fixture {
        demux: Demux,
        provider: std::sync::Arc<dyn rtc::crypto::RTCCryptoProvider>,
        now: Instant,
    }

    impl Fixture {
        fn new() -> Self {
            let mut demux = Demux::default();
            demux
                .set_credentials(conn(1), "ufragone", "password-one-0123456789")
                .unwrap();
            demux
                .set_credentials(conn(2), "ufragtwo", "password-two-0123456789")
                .unwrap();
            Fixture {
                demux,
                provider: rtc::crypto::default_provider().unwrap(),
                now: Instant::now(),
            }
        }

        fn route(&mut self, from: Peer, data: &[u8]) -> Route {
            self.demux
                .route(self.now, from, data, self.provider.crypto())
        }
    }

    const SRTP: &[u8] = &[0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4];

    #[test]
    fn routes_by_ufrag_then_by_address() {
        let mut f = Fixture::new();
        assert_eq!(
            f.route(addr(5000), SRTP),
            Route::Drop(DropReason::UnknownAddress)
        );
        let check = binding_request("ufragtwo:client", Some("password-two-0123456789"));
        assert_eq!(f.route(addr(5000), &check), Route::To(conn(2)));
        assert_eq!(
            f.route(addr(5000), SRTP),
            Route::To(conn(2)),
            "address learnt"
        );
        assert_eq!(
            f.route(addr(5001), SRTP),
            Route::Drop(DropReason::UnknownAddress)
        );
        assert_eq!(f.demux.bound(addr(5000)), Some(conn(2)));
    }

    #[test]
    fn a_tcp_connection_is_routed_apart_from_udp_on_the_same_address() {
        let mut f = Fixture::new();
        let to_two = binding_request("ufragtwo:client", Some("password-two-0123456789"));
        assert_eq!(f.route(addr(5000), &to_two), Route::To(conn(2)));
        assert_eq!(
            f.route(tcp(5000), SRTP),
            Route::Drop(DropReason::UnknownAddress),
            "the UDP binding says nothing about a TCP connection"
        );
        let to_one = binding_request("ufragone:client", Some("password-one-0123456789"));
        assert_eq!(f.route(tcp(5000), &to_one), Route::To(conn(1)));
        assert_eq!(f.route(tcp(5000), SRTP), Route::To(conn(1)));
        assert_eq!(f.route(addr(5000), SRTP), Route::To(conn(2)));
        f.demux.remove(conn(1));
        assert_eq!(f.demux.bound(tcp(5000)), None);
        assert_eq!(f.demux.bound(addr(5000)), Some(conn(2)));
    }

    #[test]
    fn unknown_ufrag_and_forged_checks_are_dropped() {
        let mut f = Fixture::new();
        let stranger = binding_request("nobody:client", Some("password-two-0123456789"));
        assert_eq!(
            f.route(addr(5000), &stranger),
            Route::Drop(DropReason::UnknownUfrag)
        );
        let forged = binding_request("ufragone:client", Some("not-the-password-123456"));
        assert_eq!(
            f.route(addr(5000), &forged),
            Route::Drop(DropReason::Unauthenticated)
        );
        let unsigned = binding_request("ufragone:client", None);
        assert_eq!(
            f.route(addr(5000), &unsigned),
            Route::Drop(DropReason::Unauthenticated)
        );
        assert_eq!(
            f.demux.bound_addresses(),
            0,
            "nothing bound by a failed check"
        );
    }

    #[test]
    fn bound_address_moves_only_on_an_authenticated_check() {
        let mut f = Fixture::new();
        let one = binding_request("ufragone:client", Some("password-one-0123456789"));
        assert_eq!(f.route(addr(5000), &one), Route::To(conn(1)));
        // Someone who knows conn 2's ufrag but not its password cannot take the address.
        let forged = binding_request("ufragtwo:client", Some("guess-guess-guess-guess"));
        assert_eq!(
            f.route(addr(5000), &forged),
            Route::Drop(DropReason::Unauthenticated)
        );
        assert_eq!(f.route(addr(5000), SRTP), Route::To(conn(1)));
        // The real owner of conn 2 (same NAT mapping reused) can.
        let two = binding_request("ufragtwo:client", Some("password-two-0123456789"));
        assert_eq!(f.route(addr(5000), &two), Route::To(conn(2)));
        assert_eq!(f.route(addr(5000), SRTP), Route::To(conn(2)));
    }

    #[test]
    fn ice_restart_keeps_the_old_address_until_the_new_pair_works() {
        let mut f = Fixture::new();
        let old = binding_request("ufragone:client", Some("password-one-0123456789"));
        assert_eq!(f.route(addr(5000), &old), Route::To(conn(1)));
        f.demux
            .set_credentials(conn(1), "ufragnew", "password-new-0123456789")
            .unwrap();
        // The old ufrag no longer routes (from a fresh address); the old address still does.
        assert_eq!(
            f.route(addr(6000), &old),
            Route::Drop(DropReason::UnknownUfrag)
        );
        assert_eq!(
            f.route(addr(5000), SRTP),
            Route::To(conn(1)),
            "no gap during restart"
        );
        // The client moved: checks with the new credentials from a new address.
        let new = binding_request("ufragnew:client", Some("password-new-0123456789"));
        assert_eq!(f.route(addr(6000), &new), Route::To(conn(1)));
        assert_eq!(f.route(addr(6000), SRTP), Route::To(conn(1)));
        assert_eq!(f.route(addr(5000), SRTP), Route::To(conn(1)));
        f.demux.ice_connected(conn(1));
        assert_eq!(
            f.route(addr(5000), SRTP),
            Route::Drop(DropReason::UnknownAddress)
        );
        assert_eq!(f.route(addr(6000), SRTP), Route::To(conn(1)));
    }

    #[test]
    fn restart_from_the_same_address_keeps_it() {
        let mut f = Fixture::new();
        let old = binding_request("ufragone:client", Some("password-one-0123456789"));
        f.route(addr(5000), &old);
        f.demux
            .set_credentials(conn(1), "ufragnew", "password-new-0123456789")
            .unwrap();
        let new = binding_request("ufragnew:client", Some("password-new-0123456789"));
        assert_eq!(f.route(addr(5000), &new), Route::To(conn(1)));
        f.demux.ice_connected(conn(1));
        assert_eq!(
            f.route(addr(5000), SRTP),
            Route::To(conn(1)),
            "re-confirmed, kept"
        );
    }

    #[test]
    fn responses_follow_their_request_and_removal_forgets_everything() {
        let mut f = Fixture::new();
        let mut request = rtc::stun::message::Message::new();
        request.set_type(rtc::stun::message::BINDING_REQUEST);
        request.new_transaction_id().unwrap();
        request.write_header();
        f.demux.note_sent(f.now, conn(2), &request.raw);
        let mut response = rtc::stun::message::Message::new();
        response.set_type(rtc::stun::message::BINDING_SUCCESS);
        response.transaction_id = request.transaction_id;
        response.write_header();
        assert_eq!(f.route(addr(7000), &response.raw), Route::To(conn(2)));
        f.now += TRANSACTION_TTL;
        assert_eq!(
            f.route(addr(7000), &response.raw),
            Route::Drop(DropReason::UnknownAddress),
            "expired"
        );

        let check = binding_request("ufragone:client", Some("password-one-0123456789"));
        f.route(addr(5000), &check);
        f.demux.remove(conn(1));
        f.demux.remove(conn(2));
        assert_eq!(f.demux.connections(), 0);
        assert_eq!(f.demux.bound_addresses(), 0);
        assert_eq!(
            f.route(addr(5000), &check),
            Route::Drop(DropReason::UnknownUfrag)
        );
        assert!(f
            .demux
            .set_credentials(conn(3), "ufragone", "password-3-0123456789")
            .is_ok());
    }

    #[test]
    fn ufrags_are_unique_and_bindings_bounded() {
        let mut f = Fixture::new();
        assert_eq!(
            f.demux
                .set_credentials(conn(3), "ufragone", "password-x-0123456789"),
            Err(UfragTaken)
        );
        let check = binding_request("ufragone:client", Some("password-one-0123456789"));
        for port in 0..20 {
            assert_eq!(f.route(addr(8000 + port), &check), Route::To(conn(1)));
        }
        assert_eq!(f.demux.bound_addresses(), MAX_BINDINGS_PER_CONNECTION);
        assert_eq!(f.route(addr(8019), SRTP), Route::To(conn(1)), "newest kept");
        assert_eq!(
            f.route(addr(8000), SRTP),
            Route::Drop(DropReason::UnknownAddress)
        );
    }
}
