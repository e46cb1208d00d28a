//! The delivery worker: takes due events from the outbox, POSTs them signed, and
//! records every attempt.
//!
//! At least once: an event leaves the outbox only as `delivered` (a 2xx answer) or
//! `failed` (the retry schedule is used up). A worker claims an event for a lease
//! ([`super::settings::DeliveryConfig::lease`]) before sending it; a worker that dies
//! mid-attempt leaves the event claimed until the lease ends, then any worker sends it
//! again. Two workers never hold the same claim, and a worker whose lease ran out
//! cannot record an outcome over the next one's.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hyper::body::Bytes;
use rand::Rng;

use super::client::{AttemptResult, Client};
use super::settings::DeliveryConfig;
use super::sign::{signature_header, EVENT_ID_HEADER, SIGNATURE_HEADER};
use super::target::check_url;
use crate::clock::now_ms;
use crate::store::webhooks::{Claimed, Outcome};
use crate::store::Store;

/// How often settled events past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One delivery worker over a store.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    config: DeliveryConfig,
    client: Client,
}

impl Worker {
    /// A worker with `config` (fails only on a bad extra root certificate).
    pub fn new(store: Store, config: DeliveryConfig) -> Result<Worker, String> {
        let client = Client::new(config.policy, config.timeout, &config.extra_roots)?;
        Ok(Worker {
            store,
            config,
            client,
        })
    }

    /// Starts the worker on the runtime; it runs until the process stops (or the
    /// handle is aborted: what a crash looks like to the outbox).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        tracing::info!(
            poll_ms = self.config.poll_interval.as_millis() as u64,
            retries = self.config.retry_schedule.len(),
            "webhook delivery worker started"
        );
        let mut pruned = Instant::now();
        loop {
            let claimed = match self.deliver_due().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err, "webhook outbox could not be read");
                    0
                }
            };
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                self.prune().await;
            }
            // A full batch means more may be due: look again at once.
            if claimed < self.config.batch {
                tokio::time::sleep(self.config.poll_interval).await;
            }
        }
    }

    /// Claims the events due now and sends them (concurrently); returns how many were
    /// claimed.
    pub async fn deliver_due(&self) -> Result<usize, sqlx::Error> {
        let now = now_ms();
        let limit = i64::try_from(self.config.batch).unwrap_or(16);
        let lease_until = now.saturating_add(duration_ms(self.config.lease));
        let mut claims = Vec::new();
        for id in self.store.due_webhook_events(now, limit).await? {
            let token = crate::store::new_id();
            if self
                .store
                .claim_webhook_event(&id, now, lease_until, &token)
                .await?
            {
                claims.push((id, token));
            }
        }
        let count = claims.len();
        join_all(
            claims
                .iter()
                .map(|(id, token)| self.deliver_claimed(id, token)),
        )
        .await;
        Ok(count)
    }

    /// Sends one claimed event and records the attempt.
    async fn deliver_claimed(&self, id: &str, token: &str) {
        let event = match self.store.claimed_webhook_event(id, token).await {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, event_id = id, "webhook event could not be read");
                return;
            }
        };
        let started = Instant::now();
        let at = now_ms();
        let result = self.attempt(&event).await;
        let attempt = event.attempts + 1;
        let (status, next) = next_step(&self.config.retry_schedule, attempt, &result, at);
        let error = result.as_ref().err().map(String::as_str);
        let outcome = Outcome {
            event_id: id,
            claim_token: token,
            attempt,
            at,
            status_code: result.as_ref().ok().map(|c| i64::from(*c)),
            error,
            duration_ms: duration_ms(started.elapsed()),
            status,
            next_attempt_at: next,
        };
        log_attempt(&event, attempt, &result, status);
        metrics::counter!("theraroom_webhook_attempts_total", "outcome" => status).increment(1);
        match self.store.record_webhook_attempt(&outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                event_id = id,
                "webhook attempt finished after its lease: left to the worker that took over"
            ),
            Err(err) => {
                tracing::warn!(error = %err, event_id = id, "webhook attempt could not be recorded")
            }
        }
    }

    /// One POST of the event to its organization's endpoint as configured now.
    async fn attempt(&self, event: &Claimed) -> AttemptResult {
        let (Some(url), Some(secret)) = (&event.url, &event.secret) else {
            return Err("no webhook is configured any more".into());
        };
        let url = check_url(self.config.policy, url).map_err(|e| format!("refused: {e}"))?;
        let body = Bytes::from(event.payload.clone());
        let timestamp = now_ms() / 1000;
        let headers = [
            (EVENT_ID_HEADER, event.id.clone()),
            (
                SIGNATURE_HEADER,
                signature_header(secret.as_bytes(), timestamp, &body),
            ),
        ];
        self.client.post(&url, &headers, body).await
    }

    async fn prune(&self) {
        let before = now_ms().saturating_sub(duration_ms(self.config.retention));
        match self.store.prune_webhook_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "old webhook events pruned"),
            Err(err) => tracing::warn!(error = %err, "webhook events could not be pruned"),
        }
    }
}

/// The event's status after attempt number `attempt` made at `at`, and when to try
/// again: 2xx delivers; otherwise the `attempt`-th wait of the schedule, or `failed`
/// once it is used up.
fn next_step(
    schedule: &[Duration],
    attempt: i64,
    result: &AttemptResult,
    at: i64,
) -> (&'static str, Option<i64>) {
    if matches!(result, Ok(code) if (200..300).contains(code)) {
        return ("delivered", None);
    }
    let index = usize::try_from(attempt - 1).unwrap_or(usize::MAX);
    match schedule.get(index) {
        Some(wait) => ("pending", Some(at.saturating_add(jittered_ms(*wait)))),
        None => ("failed", None),
    }
}

/// `wait` plus up to 25 % random jitter, in ms (so that retries of many events spread).
fn jittered_ms(wait: Duration) -> i64 {
    let base = duration_ms(wait);
    let jitter = rand::thread_rng().gen_range(0..=base / 4);
    base.saturating_add(jitter)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Logs an attempt with ids, type and outcome: never the URL, secret or body.
fn log_attempt(event: &Claimed, attempt: i64, result: &AttemptResult, status: &str) {
    match result {
        Ok(code) => tracing::info!(
            event_id = %event.id, event_type = %event.event_type, attempt, status_code = code,
            outcome = status, "webhook attempt"
        ),
        Err(error) => tracing::warn!(
            event_id = %event.id, event_type = %event.event_type, attempt, %error,
            outcome = status, "webhook attempt failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let ms = jittered_ms(Duration::from_secs(10));
            assert!((10_000..=12_500).contains(&ms), "{ms}");
        }
        assert_eq!(jittered_ms(Duration::ZERO), 0);
    }

    #[test]
    fn retries_follow_the_schedule_then_fail() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(30)];
        assert_eq!(next_step(&schedule, 1, &Ok(204), 0), ("delivered", None));
        let (status, next) = next_step(&schedule, 1, &Ok(500), 0);
        assert_eq!(status, "pending");
        assert!((10_000..=12_500).contains(&next.unwrap()));
        let (_, next) = next_step(&schedule, 2, &Err("timeout".into()), 1_000);
        assert!((31_000..=38_500).contains(&next.unwrap()));
        assert_eq!(next_step(&schedule, 3, &Ok(302), 0), ("failed", None));
    }
}
