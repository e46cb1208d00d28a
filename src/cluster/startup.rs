//! Turning multi-node mode on at `serve`: the settings it needs checked before
//! anything starts, then the node's identity, its Redis connection and its tasks.

use std::net::SocketAddr;

use signaling::Hub;

use super::settings::valid_node_id;
use super::{Cluster, NodeIdentity};
use crate::auth::AuthGuard;
use crate::config::Settings;

/// Refuses settings several nodes cannot share: SQLite (one node's file), secrets
/// each node would generate for itself, TLS on the nodes (the relay between nodes is
/// plain HTTP on their network; TLS ends at the load balancer), a bad node id.
pub fn check_settings(settings: &Settings, tls: bool) -> Result<(), String> {
    let cluster = &settings.cluster;
    if !cluster.enabled() {
        return Ok(());
    }
    let url = settings.database_url();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(
            "multi-node mode (--redis-url) needs PostgreSQL as the shared store: set \
             DATABASE_URL=postgres://...; SQLite is a file of one node"
                .into(),
        );
    }
    let missing = |value: &Option<String>| value.as_deref().is_none_or(|v| v.trim().is_empty());
    if missing(&settings.jwt_secret) {
        return Err(
            "multi-node mode needs the same THERAROOM_JWT_SECRET on every node \
             (a token issued by one node is checked by the others)"
                .into(),
        );
    }
    if missing(&settings.data_key) {
        return Err(
            "multi-node mode needs the same THERAROOM_DATA_KEY on every node \
             (notes sealed by one node are opened by the others)"
                .into(),
        );
    }
    if !settings.turn_uris.is_empty() && missing(&settings.turn_secret) {
        return Err(
            "multi-node mode with TURN needs the same THERAROOM_TURN_SECRET on every node".into(),
        );
    }
    if tls {
        return Err(
            "multi-node mode serves plain HTTP: the nodes relay signaling to each \
             other over their own network, and TLS ends at the load balancer in front \
             (drop --tls-*)"
                .into(),
        );
    }
    if let Some(id) = &cluster.node_id {
        if !valid_node_id(id) {
            return Err(format!(
                "invalid --node-id {id:?}: 1-64 letters, digits, '-' or '_'"
            ));
        }
    }
    if let Some(url) = &cluster.node_url {
        if !url.starts_with("http://") {
            return Err(format!(
                "invalid --node-url {url:?}: expected http://host:port"
            ));
        }
    } else if settings.bind.ip().is_unspecified() {
        return Err(format!(
            "--bind {} is a wildcard address: set --node-url to the address other nodes reach this one at",
            settings.bind
        ));
    }
    Ok(())
}

/// Connects this node to the cluster and starts its heartbeat and subscriber; `None`
/// without `--redis-url`. The failed-authentication limit is shared from here on.
pub async fn join(
    settings: &Settings,
    local: SocketAddr,
    hub: &Hub,
    auth_guard: &AuthGuard,
) -> Result<Option<Cluster>, String> {
    let cluster_settings = &settings.cluster;
    if !cluster_settings.enabled() {
        return Ok(None);
    }
    let id = cluster_settings
        .node_id
        .clone()
        .unwrap_or_else(|| format!("node-{}", &crate::random::url_token()[..10]));
    let url = cluster_settings
        .node_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let media_ip = settings
        .rtc_public_ips
        .first()
        .copied()
        .unwrap_or(settings.rtc_ip);
    let me = NodeIdentity {
        id,
        url: url.trim_end_matches('/').to_string(),
        media: SocketAddr::new(media_ip, settings.rtc_port).to_string(),
        capacity: cluster_settings.node_capacity,
    };
    let jwt_secret = settings.jwt_secret.clone().unwrap_or_default();
    let cluster = Cluster::connect(cluster_settings, me, jwt_secret.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    super::sync::spawn(cluster.clone(), hub.clone());
    cluster.spawn_subscriber(hub.clone());
    auth_guard.share(cluster.clone());
    Ok(Some(cluster))
}
