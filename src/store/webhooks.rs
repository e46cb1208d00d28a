//! Webhook endpoints and the outbox of their events (migration 0010).
//!
//! The rules (what is sent, when, how often) live in [`crate::webhooks`]; this module
//! only reads and writes the rows. Claims are conditional updates, so two workers never
//! send the same attempt: whoever moves `next_attempt_at` past now first owns the row
//! until its lease ends, and only the holder of `claim_token` may record the outcome.

use sqlx::AnyConnection;

use super::{new_id, Store};

/// An organization's webhook endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Endpoint {
    /// The organization.
    pub organization_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// HMAC key of the signatures (never logged, shown once).
    pub secret: String,
    /// Comma-separated event types, or `*`.
    pub events: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// An endpoint as written by `PUT`.
#[derive(Debug, Clone, Copy)]
pub struct EndpointWrite<'a> {
    /// The organization.
    pub organization_id: &'a str,
    /// Validated URL.
    pub url: &'a str,
    /// Secret to keep.
    pub secret: &'a str,
    /// Comma-separated event types, or `*`.
    pub events: &'a str,
    /// Unix ms.
    pub now_ms: i64,
}

/// A new outbox row.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// Event id (also the `TheraRoom-Event-Id` header).
    pub id: &'a str,
    /// The organization whose endpoint receives it.
    pub organization_id: &'a str,
    /// Event type, e.g. `session.started`.
    pub event_type: &'a str,
    /// The JSON body, exactly as it is signed and sent.
    pub payload: &'a str,
    /// Unix ms; also when it is first due.
    pub now_ms: i64,
}

/// One event in the delivery log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    /// Event id.
    pub id: String,
    /// Event type.
    pub event_type: String,
    /// `pending`, `delivered`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// Due time (or lease end while an attempt runs), Unix ms; none once settled.
    pub next_attempt_at: Option<i64>,
    /// HTTP status of the last attempt, if it got an answer.
    pub last_status_code: Option<i64>,
    /// Why the last attempt failed without an answer (timeout, connection refused, ...).
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub delivered_at: Option<i64>,
}

/// One recorded attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    /// Event id.
    pub event_id: String,
    /// 1, 2, ...
    pub attempt: i64,
    /// Unix ms.
    pub at: i64,
    /// HTTP status, if any.
    pub status_code: Option<i64>,
    /// Failure without an answer, if any.
    pub error: Option<String>,
    /// How long the attempt took.
    pub duration_ms: i64,
}

/// A claimed event with the endpoint it goes to now (none when it was deleted).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// Event id.
    pub id: String,
    /// Event type.
    pub event_type: String,
    /// Body to send.
    pub payload: String,
    /// Attempts before this one.
    pub attempts: i64,
    /// Current URL of the organization's endpoint.
    pub url: Option<String>,
    /// Current secret of the organization's endpoint.
    pub secret: Option<String>,
}

/// What became of an attempt, as the worker decided it.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    /// The claimed event.
    pub event_id: &'a str,
    /// The claim this worker holds.
    pub claim_token: &'a str,
    /// Attempt number (attempts before + 1).
    pub attempt: i64,
    /// When it was made, Unix ms.
    pub at: i64,
    /// HTTP status, if any.
    pub status_code: Option<i64>,
    /// Failure without an answer, if any.
    pub error: Option<&'a str>,
    /// How long it took.
    pub duration_ms: i64,
    /// New status: `delivered`, `pending` (retry at `next_attempt_at`) or `failed`.
    pub status: &'a str,
    /// Next due time when `pending`.
    pub next_attempt_at: Option<i64>,
}

const ENDPOINT_COLUMNS: &str = "organization_id, url, secret, events, created_at, updated_at";
const LOG_COLUMNS: &str = "id, event_type, status, attempts, next_attempt_at, last_status_code, \
     last_error, created_at, delivered_at";

/// The endpoint of an organization, inside the caller's transaction.
pub async fn endpoint_in(
    conn: &mut AnyConnection,
    organization_id: &str,
) -> Result<Option<Endpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE organization_id = $1"
    ))
    .bind(organization_id)
    .fetch_optional(conn)
    .await
}

/// Creates or replaces the endpoint of an organization (keeping `created_at`).
pub async fn upsert_endpoint(
    conn: &mut AnyConnection,
    write: EndpointWrite<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (organization_id, url, secret, events, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (organization_id) DO UPDATE SET \
         url = excluded.url, secret = excluded.secret, events = excluded.events, \
         updated_at = excluded.updated_at",
    )
    .bind(write.organization_id)
    .bind(write.url)
    .bind(write.secret)
    .bind(write.events)
    .bind(write.now_ms)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Deletes the endpoint of an organization and cancels its undelivered events (the
/// log keeps them). False when there was none.
pub async fn delete_endpoint(
    conn: &mut AnyConnection,
    organization_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE organization_id = $1")
        .bind(organization_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE webhook_events SET status = 'cancelled', next_attempt_at = NULL, claim_token = NULL \
         WHERE organization_id = $1 AND status = 'pending'",
    )
    .bind(organization_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds an event to the outbox, due at once, inside the caller's transaction.
pub async fn insert_event(conn: &mut AnyConnection, new: NewEvent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_events (id, organization_id, event_type, payload, status, attempts, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
    )
    .bind(new.id)
    .bind(new.organization_id)
    .bind(new.event_type)
    .bind(new.payload)
    .bind(new.now_ms)
    .execute(conn)
    .await
    .map(|_| ())
}

impl Store {
    /// The endpoint of an organization, if it has one.
    pub async fn webhook_endpoint(
        &self,
        organization_id: &str,
    ) -> Result<Option<Endpoint>, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        endpoint_in(&mut conn, organization_id).await
    }

    /// Ids of pending events due at `now_ms`, the longest due first.
    pub async fn due_webhook_events(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Claims a due event until `lease_until` for the holder of `claim_token`; false
    /// when another worker got it first (or it is no longer due).
    pub async fn claim_webhook_event(
        &self,
        id: &str,
        now_ms: i64,
        lease_until: i64,
        claim_token: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE webhook_events SET next_attempt_at = $1, claim_token = $2 \
             WHERE id = $3 AND status = 'pending' AND next_attempt_at <= $4",
        )
        .bind(lease_until)
        .bind(claim_token)
        .bind(id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A claimed event and its organization's endpoint as it is now.
    pub async fn claimed_webhook_event(
        &self,
        id: &str,
        claim_token: &str,
    ) -> Result<Option<Claimed>, sqlx::Error> {
        sqlx::query_as(
            "SELECT e.id, e.event_type, e.payload, e.attempts, w.url, w.secret FROM webhook_events e \
             LEFT JOIN webhook_endpoints w ON w.organization_id = e.organization_id \
             WHERE e.id = $1 AND e.claim_token = $2 AND e.status = 'pending'",
        )
        .bind(id)
        .bind(claim_token)
        .fetch_optional(self.pool())
        .await
    }

    /// Records an attempt and its outcome, if this worker still holds the claim (a
    /// worker whose lease ran out records nothing: the row went to another one).
    /// Returns whether it was recorded.
    pub async fn record_webhook_attempt(&self, outcome: &Outcome<'_>) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let delivered_at = (outcome.status == "delivered").then_some(outcome.at);
        let done = sqlx::query(
            "UPDATE webhook_events SET status = $1, attempts = $2, next_attempt_at = $3, \
             claim_token = NULL, last_status_code = $4, last_error = $5, delivered_at = $6 \
             WHERE id = $7 AND claim_token = $8 AND status = 'pending'",
        )
        .bind(outcome.status)
        .bind(outcome.attempt)
        .bind(outcome.next_attempt_at)
        .bind(outcome.status_code)
        .bind(outcome.error)
        .bind(delivered_at)
        .bind(outcome.event_id)
        .bind(outcome.claim_token)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO webhook_attempts (id, event_id, attempt, at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(outcome.event_id)
        .bind(outcome.attempt)
        .bind(outcome.at)
        .bind(outcome.status_code)
        .bind(outcome.error)
        .bind(outcome.duration_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// When an event of this organization was created (the pagination cursor), if it
    /// is one of its events.
    pub async fn webhook_event_created_at(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT created_at FROM webhook_events WHERE organization_id = $1 AND id = $2",
        )
        .bind(organization_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(at,)| at))
    }

    /// The delivery log of an organization, newest first, strictly before the cursor
    /// `(created_at, id)` when given.
    pub async fn webhook_deliveries(
        &self,
        organization_id: &str,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        let query = match before {
            Some(_) => format!(
                "SELECT {LOG_COLUMNS} FROM webhook_events WHERE organization_id = $1 \
                 AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            None => format!(
                "SELECT {LOG_COLUMNS} FROM webhook_events WHERE organization_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            ),
        };
        let mut query = sqlx::query_as(&query).bind(organization_id);
        if let Some((at, id)) = before {
            query = query.bind(at).bind(id);
        }
        query.bind(limit).fetch_all(self.pool()).await
    }

    /// The attempts of an organization's events created in `[from_ms, to_ms]`, in
    /// attempt order (the caller keeps those of the events it shows).
    pub async fn webhook_attempts_between(
        &self,
        organization_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AttemptRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT a.event_id, a.attempt, a.at, a.status_code, a.error, a.duration_ms \
             FROM webhook_attempts a JOIN webhook_events e ON e.id = a.event_id \
             WHERE e.organization_id = $1 AND e.created_at >= $2 AND e.created_at <= $3 \
             ORDER BY a.event_id, a.attempt",
        )
        .bind(organization_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.pool())
        .await
    }

    /// Deletes settled events (delivered, failed, cancelled) created before `before_ms`,
    /// with their attempts. Returns how many events went.
    pub async fn prune_webhook_events(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE event_id IN (SELECT id FROM webhook_events \
             WHERE status <> 'pending' AND created_at < $1)",
        )
        .bind(before_ms)
        .execute(&mut *tx)
        .await?;
        let done =
            sqlx::query("DELETE FROM webhook_events WHERE status <> 'pending' AND created_at < $1")
                .bind(before_ms)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
