//! `GET /internal/cluster/rooms`: the rooms this node holds and their participants, as
//! its hub has them, for the operator (and the consistency tests) to hold against
//! what Redis says. Only for callers with the cluster's relay secret (other nodes,
//! tools on the nodes' network), in the `x-theraroom-relay` header.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::socket::RtcState;
use crate::cluster::relay::RELAY_HEADER;
use crate::error::ApiError;

/// This node's id and rooms: `{"node", "rooms": {session_id: [participant ids]}}`.
pub(super) async fn rooms_held(
    State(rtc): State<RtcState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let Some(cluster) = rtc.cluster else {
        return Err(ApiError::not_found(
            "not_clustered",
            "this server runs alone",
        ));
    };
    let secret = headers
        .get(RELAY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !cluster.is_relay_secret(secret) {
        return Err(ApiError::forbidden(
            "forbidden",
            "the cluster secret is missing or wrong",
        ));
    }
    let rooms: serde_json::Map<String, Value> = rtc
        .hub
        .rooms_held()
        .await
        .into_iter()
        .map(|(id, participants)| (id, json!(participants)))
        .collect();
    Ok(Json(json!({"node": cluster.node_id(), "rooms": rooms})))
}
