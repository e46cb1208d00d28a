//! What one node tells the others, over Redis pub/sub.
//!
//! - Events on the bus channel, applied by every node to its own sockets: a
//!   notification for a user, a revoked token or subject, an ended session, a removed
//!   participant. The sender applies each at once itself, so a node cut off from Redis
//!   still serves its own sockets.
//! - Requests to the node that holds a room, answered on the asker's reply channel:
//!   the waiting room as REST shows it, and a host's admit or decline over REST.
//!
//! [`ClusterLive`] is the REST layer's [`LiveControl`] in multi-node mode.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use signaling::Hub;
use tokio::sync::oneshot;

use super::Cluster;
use crate::state::{LiveControl, WaitingPerson};

/// How long a request to another node waits for its answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause before subscribing again after the subscription broke.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(300);

/// An event every node applies to its own sockets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BusEvent {
    /// A notification for a user's `listen` (and joined) sockets.
    Notify {
        /// The user.
        user_id: String,
        /// The notification object.
        notification: Value,
    },
    /// One token was revoked.
    TokenRevoked {
        /// Its `jti`.
        jti: String,
    },
    /// Every token of a subject was revoked.
    SubjectRevoked {
        /// The subject.
        subject: String,
    },
    /// A session was ended: its room closes wherever it is, and is not made again.
    SessionEnded {
        /// The session.
        session_id: String,
    },
    /// The therapist removed a participant.
    ParticipantRemoved {
        /// The session.
        session_id: String,
        /// The participant.
        participant_id: String,
    },
}

/// A request to the node holding a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// The room's waiting room.
    Waiting {
        /// The session.
        session_id: String,
    },
    /// The person behind a waiting participant id.
    WaitingPerson {
        /// The session.
        session_id: String,
        /// The waiting participant.
        participant_id: String,
    },
    /// Let a waiting person in.
    Admit {
        /// The session.
        session_id: String,
        /// The person.
        person_id: String,
    },
    /// Refuse a waiting person.
    Decline {
        /// The session.
        session_id: String,
        /// The person.
        person_id: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    event: BusEvent,
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: u64,
    from: String,
    #[serde(flatten)]
    call: Call,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    id: u64,
    answer: Value,
}

/// Requests sent and not answered yet.
#[derive(Default)]
pub(super) struct Calls {
    next: AtomicU64,
    waiting: DashMap<u64, oneshot::Sender<Value>>,
}

/// Applies an event to this node's sockets.
async fn apply(hub: &Hub, event: BusEvent) {
    match event {
        BusEvent::Notify {
            user_id,
            notification,
        } => {
            hub.notify(&user_id, notification);
        }
        BusEvent::TokenRevoked { jti } => {
            hub.revoke_token(&jti);
        }
        BusEvent::SubjectRevoked { subject } => {
            hub.revoke_subject(&subject);
        }
        BusEvent::SessionEnded { session_id } => {
            hub.end_session(&session_id, "ended_by_therapist").await;
        }
        BusEvent::ParticipantRemoved {
            session_id,
            participant_id,
        } => hub.remove_participant(&session_id, &participant_id).await,
    }
}

/// Answers a request from this node's hub.
async fn answer(hub: &Hub, call: Call) -> Value {
    match call {
        Call::Waiting { session_id } => {
            serde_json::to_value(hub.waiting_list(&session_id).await).unwrap_or(Value::Null)
        }
        Call::WaitingPerson {
            session_id,
            participant_id,
        } => serde_json::to_value(hub.waiting_person(&session_id, &participant_id).await)
            .unwrap_or(Value::Null),
        Call::Admit {
            session_id,
            person_id,
        } => Value::Bool(hub.admit_person(&session_id, &person_id).await.is_ok()),
        Call::Decline {
            session_id,
            person_id,
        } => Value::Bool(hub.decline_person(&session_id, &person_id).await.is_ok()),
    }
}

impl Cluster {
    /// Applies `event` here and tells the other nodes.
    pub async fn broadcast(&self, hub: &Hub, event: BusEvent) {
        apply(hub, event.clone()).await;
        let envelope = Envelope {
            from: self.node_id().to_string(),
            event,
        };
        self.publish(&self.keys().bus(), &envelope).await;
    }

    /// Asks `node` (the holder of a room) and waits for its answer; `None` when it did
    /// not answer in time.
    pub async fn call(&self, node: &str, call: Call) -> Option<Value> {
        let calls = &self.inner.calls;
        let id = calls.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        calls.waiting.insert(id, tx);
        let request = Request {
            id,
            from: self.node_id().to_string(),
            call,
        };
        self.publish(&self.keys().rpc(node), &request).await;
        let answer = tokio::time::timeout(CALL_TIMEOUT, rx).await;
        calls.waiting.remove(&id);
        match answer {
            Ok(Ok(value)) => Some(value),
            _ => {
                tracing::warn!(node, "a node did not answer a request in time");
                None
            }
        }
    }

    async fn publish(&self, channel: &str, message: &impl Serialize) {
        let Ok(text) = serde_json::to_string(message) else {
            return;
        };
        let mut redis = self.redis();
        let sent = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(text)
            .query_async::<i64>(&mut redis)
            .await;
        if let Err(e) = sent {
            self.redis_failed("publish", &e);
        }
    }

    /// Subscribes to the bus, this node's requests and its replies, and serves them
    /// until the process stops (subscribing again after each break).
    pub fn spawn_subscriber(&self, hub: Hub) {
        let cluster = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = cluster.subscribe(&hub).await {
                    tracing::debug!(error = %e, "cluster subscription broke; subscribing again");
                }
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        });
    }

    async fn subscribe(&self, hub: &Hub) -> redis::RedisResult<()> {
        let mut pubsub = self.inner.client.get_async_pubsub().await?;
        let keys = self.keys();
        let (bus, rpc, reply) = (
            keys.bus(),
            keys.rpc(self.node_id()),
            keys.reply(self.node_id()),
        );
        pubsub.subscribe(&[&bus, &rpc, &reply]).await?;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let channel = message.get_channel_name().to_string();
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            if channel == bus {
                self.on_event(hub, &payload);
            } else if channel == rpc {
                self.on_request(hub, &payload);
            } else if channel == reply {
                self.on_reply(&payload);
            }
        }
        Ok(())
    }

    fn on_event(&self, hub: &Hub, payload: &str) {
        match serde_json::from_str::<Envelope>(payload) {
            Ok(envelope) if envelope.from != self.node_id() => {
                let hub = hub.clone();
                tokio::spawn(async move { apply(&hub, envelope.event).await });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "unreadable cluster event"),
        }
    }

    fn on_request(&self, hub: &Hub, payload: &str) {
        let request = match serde_json::from_str::<Request>(payload) {
            Ok(request) => request,
            Err(e) => return tracing::warn!(error = %e, "unreadable cluster request"),
        };
        let (cluster, hub) = (self.clone(), hub.clone());
        tokio::spawn(async move {
            let answer = answer(&hub, request.call).await;
            let reply = Reply {
                id: request.id,
                answer,
            };
            cluster
                .publish(&cluster.keys().reply(&request.from), &reply)
                .await;
        });
    }

    fn on_reply(&self, payload: &str) {
        if let Ok(reply) = serde_json::from_str::<Reply>(payload) {
            if let Some((_, tx)) = self.inner.calls.waiting.remove(&reply.id) {
                let _ = tx.send(reply.answer);
            }
        }
    }
}

/// REST → live rooms when several nodes share them: room-scoped requests go to the
/// room's node, the rest is broadcast.
pub struct ClusterLive {
    /// This node's membership.
    pub cluster: Cluster,
    /// This node's hub.
    pub hub: Hub,
}

impl ClusterLive {
    /// The node holding `session_id` when it is another one than this.
    async fn elsewhere(&self, session_id: &str) -> Option<String> {
        match self.cluster.lease_holder(session_id).await {
            Ok(Some(node)) if node != self.cluster.node_id() => Some(node),
            _ => None,
        }
    }

    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        session_id: &str,
        call: Call,
    ) -> Option<Option<T>> {
        let node = self.elsewhere(session_id).await?;
        let answer = self.cluster.call(&node, call).await;
        Some(answer.and_then(|v| serde_json::from_value(v).ok()))
    }
}

#[async_trait::async_trait]
impl LiveControl for ClusterLive {
    async fn waiting(&self, session_id: &str) -> Vec<WaitingPerson> {
        let call = Call::Waiting {
            session_id: session_id.to_string(),
        };
        match self.ask(session_id, call).await {
            Some(answer) => answer.unwrap_or_default(),
            None => self.hub.waiting_list(session_id).await,
        }
    }

    async fn waiting_person(&self, session_id: &str, participant_id: &str) -> Option<String> {
        let call = Call::WaitingPerson {
            session_id: session_id.to_string(),
            participant_id: participant_id.to_string(),
        };
        match self.ask::<Option<String>>(session_id, call).await {
            Some(answer) => answer.flatten(),
            None => self.hub.waiting_person(session_id, participant_id).await,
        }
    }

    async fn admit(&self, session_id: &str, person_id: &str) -> bool {
        let call = Call::Admit {
            session_id: session_id.to_string(),
            person_id: person_id.to_string(),
        };
        match self.ask::<bool>(session_id, call).await {
            Some(answer) => answer.unwrap_or(false),
            None => self.hub.admit_person(session_id, person_id).await.is_ok(),
        }
    }

    async fn decline(&self, session_id: &str, person_id: &str) -> bool {
        let call = Call::Decline {
            session_id: session_id.to_string(),
            person_id: person_id.to_string(),
        };
        match self.ask::<bool>(session_id, call).await {
            Some(answer) => answer.unwrap_or(false),
            None => self.hub.decline_person(session_id, person_id).await.is_ok(),
        }
    }

    fn session_ended(&self, session_id: &str) {
        self.spawn_broadcast(BusEvent::SessionEnded {
            session_id: session_id.to_string(),
        });
    }

    fn participant_removed(&self, session_id: &str, participant_id: &str) {
        self.spawn_broadcast(BusEvent::ParticipantRemoved {
            session_id: session_id.to_string(),
            participant_id: participant_id.to_string(),
        });
    }

    fn notify(&self, user_id: &str, notification: Value) {
        self.spawn_broadcast(BusEvent::Notify {
            user_id: user_id.to_string(),
            notification,
        });
    }

    fn token_revoked(&self, jti: &str) {
        self.spawn_broadcast(BusEvent::TokenRevoked {
            jti: jti.to_string(),
        });
    }

    fn subject_revoked(&self, subject: &str) {
        self.spawn_broadcast(BusEvent::SubjectRevoked {
            subject: subject.to_string(),
        });
    }

    fn accepting_joins(&self) -> bool {
        self.cluster.redis_reachable()
    }
}

impl ClusterLive {
    fn spawn_broadcast(&self, event: BusEvent) {
        let (cluster, hub) = (self.cluster.clone(), self.hub.clone());
        tokio::spawn(async move { cluster.broadcast(&hub, event).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_requests_keep_their_wire_shape() {
        let envelope = Envelope {
            from: "a".into(),
            event: BusEvent::TokenRevoked { jti: "j1".into() },
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(text, r#"{"from":"a","event":"token_revoked","jti":"j1"}"#);
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.event, envelope.event);
        let request: Request = serde_json::from_str(
            r#"{"id":7,"from":"b","call":"admit","session_id":"s","person_id":"p"}"#,
        )
        .unwrap();
        assert_eq!(
            request.call,
            Call::Admit {
                session_id: "s".into(),
                person_id: "p".into()
            }
        );
    }
}
