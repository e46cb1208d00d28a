//! Failed authentication: rate limited per client address (so tokens cannot be
//! guessed or replayed in bulk) and audited (`auth.failed`), the audit itself bounded
//! so that a flood cannot fill the table.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::principal::Denial;
use crate::error::ApiError;
use crate::store::Store;

/// Default number of failed authentications one address may make per minute.
pub const DEFAULT_FAILURES_PER_MINUTE: u32 = 20;
/// At most this many `auth.failed` audit rows per minute, over all addresses.
const AUDITS_PER_MINUTE: u32 = 600;
/// A flood of refusals writes a WARN line a second, not one per request.
static OVER_LIMIT_LOG: signaling::LogThrottle =
    signaling::LogThrottle::new(std::time::Duration::from_secs(1));
/// Past this many tracked addresses, forget those whose limit has fully recovered.
const TRACKED_ADDRESSES_SOFT_CAP: usize = 10_000;

/// Rate limit and audit of failed authentication. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct AuthGuard {
    inner: Arc<GuardInner>,
}

struct GuardInner {
    /// Keyed by client address; `None` is the shared key of requests without one.
    per_address: DefaultKeyedRateLimiter<Option<IpAddr>>,
    /// The limit per address and minute, also counted across nodes when shared.
    failures_per_minute: u32,
    /// Several nodes: the count every node adds to.
    shared: std::sync::OnceLock<crate::cluster::Cluster>,
    audits: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl Default for AuthGuard {
    fn default() -> Self {
        Self::new(NonZeroU32::new(DEFAULT_FAILURES_PER_MINUTE).unwrap_or(NonZeroU32::MIN))
    }
}

impl AuthGuard {
    /// A guard allowing `failures_per_minute` failed authentications per address (as a
    /// burst, refilled evenly over the minute).
    pub fn new(failures_per_minute: NonZeroU32) -> Self {
        let audits = NonZeroU32::new(AUDITS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self {
            inner: Arc::new(GuardInner {
                per_address: RateLimiter::keyed(Quota::per_minute(failures_per_minute)),
                failures_per_minute: failures_per_minute.get(),
                shared: std::sync::OnceLock::new(),
                audits: RateLimiter::direct(Quota::per_minute(audits)),
                clock: DefaultClock::default(),
            }),
        }
    }

    /// Several nodes: failed authentications are also counted across the cluster (per
    /// address and minute), so spreading guesses over the nodes does not multiply them.
    pub fn share(&self, cluster: crate::cluster::Cluster) {
        let _ = self.inner.shared.set(cluster);
    }

    /// Counts one failed authentication from `client` and answers it: 401 with the
    /// denial's code, recorded in the audit log; or, past the limit, 429
    /// `rate_limited` with `Retry-After`, not recorded.
    pub async fn refuse(&self, store: &Store, client: Option<IpAddr>, denial: &Denial) -> ApiError {
        let inner = &self.inner;
        if inner.per_address.len() > TRACKED_ADDRESSES_SOFT_CAP {
            inner.per_address.retain_recent();
        }
        if let Err(not_until) = inner.per_address.check_key(&client) {
            let wait = not_until.wait_time_from(inner.clock.now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Some(suppressed) = OVER_LIMIT_LOG.allow() {
                tracing::warn!(client = ?client, suppressed, "failed authentications over the limit");
            }
            return ApiError::rate_limited(secs.max(1), "too many failed attempts; retry later");
        }
        if let Some(cluster) = inner.shared.get() {
            let key = client.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
            let verdict = cluster
                .count_shared("auth_failures", &key, inner.failures_per_minute, 60)
                .await;
            if let crate::cluster::limits::Verdict::Limited { retry_after_secs } = verdict {
                if let Some(suppressed) = OVER_LIMIT_LOG.allow() {
                    tracing::warn!(client = ?client, suppressed, "failed authentications over the cluster's limit");
                }
                return ApiError::rate_limited(
                    retry_after_secs,
                    "too many failed attempts; retry later",
                );
            }
        }
        let (subject, role) = match &denial.claimed {
            Some((sub, role)) => (Some(sub.as_str()), Some(role.as_str())),
            None => (None, None),
        };
        let reason = denial.error.reason();
        tracing::info!(client = ?client, reason, subject, "authentication failed");
        if inner.audits.check().is_ok() {
            let ip = client.map(|ip| ip.to_string());
            if let Err(err) = store
                .record_auth_failure(ip.as_deref(), reason, subject, role)
                .await
            {
                tracing::error!(error = %err, "could not audit a failed authentication");
            }
        } else if let Some(suppressed) = OVER_LIMIT_LOG.allow() {
            tracing::warn!(suppressed, "auth.failed audit over its limit; not recorded");
        }
        denial.error.into()
    }
}
