//! Per-client-IP rate limits of the public, unauthenticated-or-cheap-to-abuse REST
//! routes: guest tokens, share-link lookups and session creation.
//!
//! The limiter is `tower_governor` (GCRA). A limit `N/period` lets a client make up
//! to `N` requests at once, then one more every `period / N`. Over the limit the
//! client gets 429 `rate_limited` with a `Retry-After` header (seconds).
//!
//! The key is the client's IP: the peer address from axum's `ConnectInfo` (the
//! server runs with `into_make_service_with_connect_info`), or with `--trust-proxy`
//! the last `X-Forwarded-For` entry (the address our own proxy saw). IPv6 addresses
//! are keyed by their /64 network, which one client usually holds whole.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, Response};
use axum::response::IntoResponse;
use governor::middleware::NoOpMiddleware;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

use crate::error::ApiError;

/// A rate: at most `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in one period (also the burst).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl FromStr for Rate {
    type Err = String;

    /// Parses `N/UNIT` with UNIT one of `s`, `sec`, `min`, `m`, `h`, `hour`, or a
    /// duration such as `30s`, `5m` (e.g. `10/min`, `100/h`, `3/10s`).
    fn from_str(text: &str) -> Result<Rate, String> {
        let bad = || format!("invalid rate {text:?}, expected N/PERIOD such as 10/min");
        let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            other => crate::clock::parse_duration_secs(other).ok_or_else(bad)?,
        };
        if count == 0 || secs == 0 {
            return Err(bad());
        }
        Ok(Rate {
            count,
            per: Duration::from_secs(secs),
        })
    }
}

/// The configured limits (see `Settings::rate_limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `POST /api/join/{share_token}/guest`.
    pub guest_tokens: Rate,
    /// `GET /api/join/{share_token}`.
    pub share_lookups: Rate,
    /// `POST /api/sessions`.
    pub session_creation: Rate,
    /// Key on `X-Forwarded-For` (set only behind a proxy that overwrites it).
    pub trust_proxy: bool,
}

/// Production defaults: far above what a person does, far below what a script does.
pub const DEFAULT_GUEST_TOKENS: &str = "10/min";
/// See [`DEFAULT_GUEST_TOKENS`].
pub const DEFAULT_SHARE_LOOKUPS: &str = "60/min";
/// See [`DEFAULT_GUEST_TOKENS`].
pub const DEFAULT_SESSION_CREATION: &str = "30/min";

impl Default for RateLimits {
    fn default() -> Self {
        let rate = |text: &str| {
            Rate::from_str(text).unwrap_or(Rate {
                count: 10,
                per: Duration::from_secs(60),
            })
        };
        RateLimits {
            guest_tokens: rate(DEFAULT_GUEST_TOKENS),
            share_lookups: rate(DEFAULT_SHARE_LOOKUPS),
            session_creation: rate(DEFAULT_SESSION_CREATION),
            trust_proxy: false,
        }
    }
}

/// The rate-limiting key of a request: the client's IP (IPv6 by /64).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp {
    /// Read `X-Forwarded-For` before the peer address.
    pub trust_proxy: bool,
}

impl ClientIp {
    /// The client address of `req`. Without `ConnectInfo` (a router driven without a
    /// listener) every such request shares one key: limited together, never unlimited.
    pub fn of<T>(&self, req: &Request<T>) -> IpAddr {
        let forwarded = self.trust_proxy.then(|| last_forwarded_for(req)).flatten();
        let ip = forwarded
            .or_else(|| {
                req.extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(addr)| addr.ip())
            })
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        network_of(ip)
    }
}

fn last_forwarded_for<T>(req: &Request<T>) -> Option<IpAddr> {
    let last = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()?;
    last.trim().parse().ok()
}

/// IPv4 as is (IPv4-mapped IPv6 too); other IPv6 addresses by their /64 network.
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        Ok(self.of(req))
    }
}

/// The limited routes, as `(method, OpenAPI path, limit name)`; the OpenAPI
/// document lists 429 on exactly these.
pub const LIMITED_ROUTES: [(&str, &str, &str); 3] = [
    ("post", "/api/join/{share_token}/guest", "guest_tokens"),
    ("get", "/api/join/{share_token}", "share_lookups"),
    ("post", "/api/sessions", "session_creation"),
];

type Config = GovernorConfig<ClientIp, NoOpMiddleware>;

/// The limiters' state, shared by every clone of the router built with it. Build one
/// per server (and one per test app, so tests do not share buckets).
#[derive(Clone)]
pub struct RateLimiters {
    guest_tokens: Arc<Config>,
    share_lookups: Arc<Config>,
    session_creation: Arc<Config>,
    /// The limits, for the count shared across nodes.
    pub(super) limits: RateLimits,
    /// Several nodes: the cluster the limits are also counted in.
    pub(super) shared: Arc<std::sync::OnceLock<crate::cluster::Cluster>>,
}

/// A rate-limit layer for one route.
pub type RateLimitLayer = GovernorLayer<ClientIp, NoOpMiddleware, Body>;

impl RateLimiters {
    /// Fresh (empty) limiters for `limits`.
    pub fn new(limits: &RateLimits) -> RateLimiters {
        let key = ClientIp {
            trust_proxy: limits.trust_proxy,
        };
        RateLimiters {
            guest_tokens: config(limits.guest_tokens, key, None),
            share_lookups: config(limits.share_lookups, key, None),
            session_creation: config(limits.session_creation, key, Some(Method::POST)),
            limits: *limits,
            shared: Arc::default(),
        }
    }

    /// Several nodes: the limits also count across the cluster (per client address and
    /// period), so spreading requests over the nodes does not multiply them.
    pub fn share(&self, cluster: crate::cluster::Cluster) {
        let _ = self.shared.set(cluster);
    }

    /// Layer of `POST /api/join/{share_token}/guest`.
    pub fn guest_tokens(&self) -> RateLimitLayer {
        layer(&self.guest_tokens, "guest_tokens")
    }

    /// Layer of `GET /api/join/{share_token}`.
    pub fn share_lookups(&self) -> RateLimitLayer {
        layer(&self.share_lookups, "share_lookups")
    }

    /// Layer of `/api/sessions`; only `POST` (creation) counts.
    pub fn session_creation(&self) -> RateLimitLayer {
        layer(&self.session_creation, "session_creation")
    }

    /// Forgets clients whose buckets are full again, so the key map does not grow
    /// with every address ever seen. Call it periodically.
    pub fn retain_recent(&self) {
        for config in [
            &self.guest_tokens,
            &self.share_lookups,
            &self.session_creation,
        ] {
            config.limiter().retain_recent();
            config.limiter().shrink_to_fit();
        }
    }

    /// Runs [`RateLimiters::retain_recent`] every `every`, forever.
    pub async fn prune_forever(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.retain_recent();
        }
    }
}

fn config(rate: Rate, key: ClientIp, only: Option<Method>) -> Arc<Config> {
    // One request comes back every `per / count`; never zero (finish() refuses it).
    let replenish = (rate.per / rate.count).max(Duration::from_millis(1));
    let mut builder = GovernorConfigBuilder::default().key_extractor(key);
    builder.period(replenish).burst_size(rate.count);
    if let Some(method) = only {
        builder.methods(vec![method]);
    }
    let config = builder
        .finish()
        .expect("a Rate has a non-zero count, and the period is at least 1 ms");
    Arc::new(config)
}

fn layer(config: &Arc<Config>, limit: &'static str) -> RateLimitLayer {
    GovernorLayer::new(Arc::clone(config)).error_handler(move |err| rate_limit_response(err, limit))
}

/// Our JSON error body instead of tower_governor's plain text.
fn rate_limit_response(err: GovernorError, limit: &'static str) -> Response<Body> {
    match err {
        GovernorError::TooManyRequests { wait_time, .. } => {
            // tower_governor truncates to whole seconds: round up so that a client
            // retrying after `Retry-After` is let in.
            let retry_after = wait_time.saturating_add(1);
            // A flood must not flood the log too: count every refusal, log at debug.
            metrics::counter!("theraroom_rate_limited_total", "limit" => limit).increment(1);
            tracing::debug!(limit, retry_after, "rate limit exceeded");
            ApiError::rate_limited(
                retry_after,
                format!("too many requests; retry in {retry_after} s"),
            )
            .into_response()
        }
        other => {
            tracing::error!(limit, error = %other, "rate limiter failed");
            ApiError::internal().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let r = |s: &str| s.parse::<Rate>();
        assert_eq!(
            r("10/min"),
            Ok(Rate {
                count: 10,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(r(" 5 / s ").map(|r| r.per), Ok(Duration::from_secs(1)));
        assert_eq!(r("100/h").map(|r| r.per), Ok(Duration::from_secs(3600)));
        assert_eq!(r("3/10s").map(|r| r.per), Ok(Duration::from_secs(10)));
        assert_eq!(r("3/5m").map(|r| r.per), Ok(Duration::from_secs(300)));
        for bad in ["", "10", "0/min", "10/0s", "x/min", "10/fortnight", "-1/s"] {
            assert!(r(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_parse() {
        let d = RateLimits::default();
        assert_eq!(d.guest_tokens, DEFAULT_GUEST_TOKENS.parse().unwrap());
        assert_eq!(d.share_lookups, DEFAULT_SHARE_LOOKUPS.parse().unwrap());
        assert_eq!(
            d.session_creation,
            DEFAULT_SESSION_CREATION.parse().unwrap()
        );
        assert!(!d.trust_proxy);
    }

    fn request(peer: Option<&str>, xff: &[&str]) -> Request<()> {
        let mut req = Request::builder().uri("/");
        for v in xff {
            req = req.header("x-forwarded-for", *v);
        }
        let mut req = req.body(()).unwrap();
        if let Some(peer) = peer {
            req.extensions_mut()
                .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        }
        req
    }

    #[test]
    fn key_is_the_peer_unless_the_proxy_is_trusted() {
        let direct = ClientIp { trust_proxy: false };
        let proxied = ClientIp { trust_proxy: true };
        let req = request(Some("192.0.2.7:5000"), &["198.51.100.1, 203.0.113.9"]);
        assert_eq!(direct.of(&req), "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(proxied.of(&req), "203.0.113.9".parse::<IpAddr>().unwrap());
        // Several headers: the last entry of the last one.
        let req = request(Some("192.0.2.7:5000"), &["198.51.100.1", "203.0.113.10"]);
        assert_eq!(proxied.of(&req), "203.0.113.10".parse::<IpAddr>().unwrap());
        // Garbage or no header: the peer.
        let req = request(Some("192.0.2.7:5000"), &["not-an-ip"]);
        assert_eq!(proxied.of(&req), "192.0.2.7".parse::<IpAddr>().unwrap());
        // No ConnectInfo: one shared key.
        assert_eq!(
            direct.of(&request(None, &[])),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        let key = ClientIp { trust_proxy: false };
        let a = key.of(&request(Some("[2001:db8:1:2:aaaa::1]:443"), &[]));
        let b = key.of(&request(Some("[2001:db8:1:2:bbbb::2]:443"), &[]));
        let c = key.of(&request(Some("[2001:db8:1:3::1]:443"), &[]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = key.of(&request(Some("[::ffff:192.0.2.1]:443"), &[]));
        assert_eq!(mapped, "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
