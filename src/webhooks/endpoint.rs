//! An organization's endpoint: setting it (URL rules, event subscription, secret),
//! removing it, and the test event. Audited like every other organization setting,
//! without the secret.

use serde_json::json;

use super::events::{emit, EventType, Ping};
use super::target::{check_url, UrlPolicy};
use crate::auth::Claims;
use crate::clock::now_ms;
use crate::random::url_token;
use crate::store::audit::{self, AuditEntry};
use crate::store::webhooks::{self as store, Endpoint, EndpointWrite};
use crate::store::Store;

/// Prefix of generated secrets (so that one found in a file is recognisable).
pub const SECRET_PREFIX: &str = "whsec_";
/// Shortest secret accepted from a caller, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// Longest secret accepted from a caller, in bytes.
pub const MAX_SECRET_LEN: usize = 256;

/// Why an endpoint change was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL breaks the rules of [`super::target`].
    #[error("{0}")]
    InvalidUrl(String),
    /// An unknown event type.
    #[error("{0}")]
    InvalidEvents(String),
    /// A secret that is too short, too long or not printable.
    #[error("{0}")]
    InvalidSecret(String),
    /// The organization has no endpoint.
    #[error("this organization has no webhook")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// What a caller asks `PUT` to set.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput<'a> {
    /// The URL.
    pub url: &'a str,
    /// A secret of the caller's, if any.
    pub secret: Option<&'a str>,
    /// Event types; none or empty for all.
    pub events: Option<&'a [String]>,
    /// Replace the current secret by a generated one.
    pub rotate_secret: bool,
}

/// The endpoint after `PUT`, with the secret in clear when it is new.
#[derive(Debug, Clone)]
pub struct Configured {
    /// The endpoint as stored.
    pub endpoint: Endpoint,
    /// True when the secret changed (the only time it is shown).
    pub secret_changed: bool,
}

/// Sets the endpoint of `organization_id` (checked by the caller to be one `actor`
/// administers). Without a secret, a new endpoint gets a generated one and an existing
/// one keeps its own (unless `rotate_secret`). Audited as `organization.webhook.update`.
pub async fn configure(
    store: &Store,
    actor: &Claims,
    organization_id: &str,
    policy: UrlPolicy,
    input: EndpointInput<'_>,
) -> Result<Configured, EndpointError> {
    let url = check_url(policy, input.url).map_err(EndpointError::InvalidUrl)?;
    let events = subscription(input.events)?;
    if let Some(secret) = input.secret {
        check_secret(secret)?;
    }
    let mut tx = store.pool().begin().await?;
    let before = store::endpoint_in(&mut tx, organization_id).await?;
    let secret = match (input.secret, &before) {
        (Some(given), _) => given.to_string(),
        (None, Some(current)) if !input.rotate_secret => current.secret.clone(),
        (None, _) => format!("{SECRET_PREFIX}{}", url_token()),
    };
    let secret_changed = before.as_ref().is_none_or(|b| b.secret != secret);
    store::upsert_endpoint(
        &mut tx,
        EndpointWrite {
            organization_id,
            url: url.as_str(),
            secret: &secret,
            events: &events,
            now_ms: now_ms(),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            actor,
            Some(organization_id),
            "organization.webhook.update",
            ("organization", organization_id),
        )
        .before(json!(before
            .as_ref()
            .map(|b| json!({"url": b.url, "events": b.events}))))
        .after(json!({"url": url.as_str(), "events": events, "secret_changed": secret_changed})),
    )
    .await?;
    let endpoint = store::endpoint_in(&mut tx, organization_id)
        .await?
        .ok_or(EndpointError::Store(sqlx::Error::RowNotFound))?;
    tx.commit().await?;
    tracing::info!(organization_id, secret_changed, "webhook configured");
    Ok(Configured {
        endpoint,
        secret_changed,
    })
}

/// Removes the endpoint; its undelivered events are cancelled. Audited as
/// `organization.webhook.delete`.
pub async fn remove(
    store: &Store,
    actor: &Claims,
    organization_id: &str,
) -> Result<(), EndpointError> {
    let mut tx = store.pool().begin().await?;
    let before = store::endpoint_in(&mut tx, organization_id)
        .await?
        .ok_or(EndpointError::NotFound)?;
    store::delete_endpoint(&mut tx, organization_id).await?;
    audit::record(
        &mut tx,
        AuditEntry::by(
            actor,
            Some(organization_id),
            "organization.webhook.delete",
            ("organization", organization_id),
        )
        .before(json!({"url": before.url, "events": before.events})),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(organization_id, "webhook removed");
    Ok(())
}

/// Queues a `ping` event; returns its id.
pub async fn ping(
    store: &Store,
    actor: &Claims,
    organization_id: &str,
) -> Result<String, EndpointError> {
    let mut tx = store.pool().begin().await?;
    let data = Ping {
        requested_by: &actor.sub,
    };
    let id = emit(&mut tx, organization_id, EventType::Ping, &data)
        .await?
        .ok_or(EndpointError::NotFound)?;
    tx.commit().await?;
    Ok(id)
}

/// The stored form of a subscription: `*`, or the types in canonical order.
fn subscription(events: Option<&[String]>) -> Result<String, EndpointError> {
    let Some(events) = events.filter(|e| !e.is_empty()) else {
        return Ok("*".into());
    };
    let mut chosen = Vec::new();
    for name in events {
        let kind = EventType::parse(name.trim()).ok_or_else(|| {
            let known: Vec<&str> = EventType::SUBSCRIBABLE.iter().map(|t| t.as_str()).collect();
            EndpointError::InvalidEvents(format!(
                "unknown event type {name:?}; known: {}",
                known.join(", ")
            ))
        })?;
        chosen.push(kind);
    }
    let names: Vec<&str> = EventType::SUBSCRIBABLE
        .into_iter()
        .filter(|t| chosen.contains(t))
        .map(EventType::as_str)
        .collect();
    Ok(names.join(","))
}

/// The subscribed event types of a stored subscription (all for `*`).
pub fn subscribed_types(events: &str) -> Vec<&'static str> {
    EventType::SUBSCRIBABLE
        .into_iter()
        .filter(|t| super::events::subscribed(events, *t))
        .map(EventType::as_str)
        .collect()
}

fn check_secret(secret: &str) -> Result<(), EndpointError> {
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
        return Err(EndpointError::InvalidSecret(format!(
            "secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters"
        )));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EndpointError::InvalidSecret(
            "secret must be printable ASCII without spaces".into(),
        ));
    }
    Ok(())
}

/// The secret as `GET` shows it: the prefix and the last four characters.
pub fn masked(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let prefix = if secret.starts_with(SECRET_PREFIX) {
        SECRET_PREFIX
    } else {
        ""
    };
    format!("{prefix}****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_canonical() {
        assert_eq!(subscription(None).unwrap(), "*");
        assert_eq!(subscription(Some(&[])).unwrap(), "*");
        let given = ["booking.created".to_string(), "session.started".to_string()];
        assert_eq!(
            subscription(Some(&given)).unwrap(),
            "session.started,booking.created"
        );
        let bad = ["session.paused".to_string()];
        assert!(matches!(
            subscription(Some(&bad)),
            Err(EndpointError::InvalidEvents(_))
        ));
        assert_eq!(subscribed_types("*").len(), 9);
    }

    #[test]
    fn secrets_are_checked_and_masked() {
        assert!(check_secret(&"x".repeat(31)).is_err());
        assert!(check_secret(&format!("{} y", "x".repeat(32))).is_err());
        assert!(check_secret(&"x".repeat(32)).is_ok());
        assert_eq!(masked("whsec_abcdefgh"), "whsec_****efgh");
        assert_eq!(masked("0123456789"), "****6789");
    }
}
