//! The webhook settings of `serve` (flags with environment variables, flattened into
//! [`crate::config::Settings`]) and the delivery configuration they make.

use std::time::Duration;

use clap::Args;
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::target::UrlPolicy;

/// Default waits before the 2nd, 3rd, ... attempt: about 24 hours in all, then the
/// event is `failed`.
pub const DEFAULT_RETRY_SCHEDULE: &str = "10s,30s,2m,10m,30m,1h,2h,4h,8h,8h";

/// Webhook flags; each also reads an environment variable.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Also allow webhook URLs to loopback hosts, over plain `http://` too (tests and
    /// local development; never in production).
    #[arg(
        long,
        env = "THERAROOM_WEBHOOKS_ALLOW_INSECURE_LOOPBACK",
        global = true
    )]
    pub webhooks_allow_insecure_loopback: bool,
    /// Waits before each retry of a failed delivery, comma-separated (`500ms`, `10s`,
    /// `2m`, `1h`); after the last one the event is `failed`. Each wait gets up to 25 %
    /// random jitter.
    #[arg(
        long,
        env = "THERAROOM_WEBHOOKS_RETRY_SCHEDULE",
        default_value = DEFAULT_RETRY_SCHEDULE,
        global = true
    )]
    pub webhooks_retry_schedule: String,
    /// How often the delivery worker looks for due events.
    #[arg(
        long,
        env = "THERAROOM_WEBHOOKS_POLL_INTERVAL",
        default_value = "2s",
        global = true
    )]
    pub webhooks_poll_interval: String,
    /// Deadline of one delivery attempt (connect, TLS, request, response head).
    #[arg(
        long,
        env = "THERAROOM_WEBHOOKS_TIMEOUT",
        default_value = "10s",
        global = true
    )]
    pub webhooks_timeout: String,
    /// How long delivered and failed events stay in the delivery log.
    #[arg(
        long,
        env = "THERAROOM_WEBHOOKS_RETENTION",
        default_value = "30d",
        global = true
    )]
    pub webhooks_retention: String,
}

/// How the delivery worker behaves.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Waits before the 2nd, 3rd, ... attempt.
    pub retry_schedule: Vec<Duration>,
    /// Pause between looks for due events when there was nothing more to do.
    pub poll_interval: Duration,
    /// Deadline of one attempt.
    pub timeout: Duration,
    /// How long a claimed event belongs to its worker: past this, a worker that died is
    /// presumed dead and the event is due again.
    pub lease: Duration,
    /// How long settled events are kept.
    pub retention: Duration,
    /// Events claimed (and sent concurrently) per look.
    pub batch: usize,
    /// Which URLs and addresses are allowed.
    pub policy: UrlPolicy,
    /// Extra trusted roots (tests with their own CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl DeliveryConfig {
    /// The defaults, with `policy`.
    pub fn new(policy: UrlPolicy) -> DeliveryConfig {
        let timeout = Duration::from_secs(10);
        DeliveryConfig {
            retry_schedule: parse_schedule(DEFAULT_RETRY_SCHEDULE).unwrap_or_default(),
            poll_interval: Duration::from_secs(2),
            timeout,
            lease: lease_for(timeout),
            retention: Duration::from_secs(30 * 86_400),
            batch: 16,
            policy,
            extra_roots: Vec::new(),
        }
    }
}

/// The lease of an attempt with deadline `timeout`: twice the deadline plus a second
/// for the bookkeeping around it.
pub fn lease_for(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(1)
}

/// Parses `500ms`, or a duration of [`crate::clock::parse_duration_secs`].
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    crate::clock::parse_duration_secs(text).map(Duration::from_secs)
}

/// Parses a comma-separated retry schedule (at least one wait).
pub fn parse_schedule(text: &str) -> Option<Vec<Duration>> {
    let waits: Option<Vec<Duration>> = text.split(',').map(parse_duration).collect();
    waits.filter(|w| !w.is_empty())
}

impl WebhookSettings {
    /// The URL policy of the REST routes and the worker.
    pub fn policy(&self) -> UrlPolicy {
        UrlPolicy {
            allow_insecure_loopback: self.webhooks_allow_insecure_loopback,
        }
    }

    /// The worker's configuration, or which setting is wrong.
    pub fn delivery_config(&self) -> Result<DeliveryConfig, String> {
        let positive = |text: &str, var: &str| {
            parse_duration(text)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("invalid {var} {text:?}"))
        };
        let timeout = positive(&self.webhooks_timeout, "THERAROOM_WEBHOOKS_TIMEOUT")?;
        Ok(DeliveryConfig {
            retry_schedule: parse_schedule(&self.webhooks_retry_schedule).ok_or_else(|| {
                format!(
                    "invalid THERAROOM_WEBHOOKS_RETRY_SCHEDULE {:?}",
                    self.webhooks_retry_schedule
                )
            })?,
            poll_interval: positive(
                &self.webhooks_poll_interval,
                "THERAROOM_WEBHOOKS_POLL_INTERVAL",
            )?,
            timeout,
            lease: lease_for(timeout),
            retention: positive(&self.webhooks_retention, "THERAROOM_WEBHOOKS_RETENTION")?,
            ..DeliveryConfig::new(self.policy())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_and_durations_parse() {
        let default = parse_schedule(DEFAULT_RETRY_SCHEDULE).unwrap();
        assert_eq!(default.len(), 10);
        let total: Duration = default.iter().sum();
        assert!(total > Duration::from_secs(23 * 3600) && total < Duration::from_secs(25 * 3600));
        assert_eq!(
            parse_schedule("200ms, 1s").unwrap(),
            [Duration::from_millis(200), Duration::from_secs(1)]
        );
        assert_eq!(parse_schedule("soon"), None);
        assert_eq!(parse_schedule(""), None);
    }
}
