//! Shared harness of the signaling tests: an in-memory gatekeeper, an in-memory media
//! plane ([`fake_media`]), and helpers that read a connection's outbound queue.

#![allow(dead_code)]

pub mod fake_media;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use signaling::protocol::{ServerMessage, SessionSummary};
use signaling::{
    Admission, Authenticated, Gatekeeper, Hub, HubConfig, Outbound, OutboundQueue, Refusal,
};

use fake_media::FakeMedia;

/// Tokens are "<person>@<session>", optionally with a tag: "#host" (a therapist, a
/// host), "#wait" (a guest who must wait until admitted), "#resume" (video access is
/// off: only a participant of the running call may enter). "bad" is refused; sessions
/// have 2 seats unless `seats` says otherwise.
#[derive(Default)]
pub struct MemoryGate {
    pub active: Mutex<HashMap<String, bool>>,
    /// Recorded waiting-room decisions: (person, admitted, actor).
    pub decisions: Mutex<Vec<(String, bool, String)>>,
    /// Seats per session (default 2).
    pub seats: Mutex<Option<u32>>,
    /// When set, each admission waits for a permit of this semaphore (to hold an
    /// admission in flight while the test does something else).
    pub hold: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

#[async_trait]
impl Gatekeeper for MemoryGate {
    async fn admit(&self, token: &str, session_id: &str) -> Result<Admission, Refusal> {
        let hold = self.hold.lock().unwrap().clone();
        if let Some(hold) = hold {
            hold.acquire().await.expect("semaphore open").forget();
        }
        let (token, tag) = token.split_once('#').unwrap_or((token, ""));
        let Some((pid, sid)) = token.split_once('@') else {
            return Err(Refusal {
                code: "unauthorized".into(),
                message: "bad token".into(),
            });
        };
        if sid != session_id {
            return Err(Refusal {
                code: "forbidden".into(),
                message: "other session".into(),
            });
        }
        let admitted = self
            .decisions
            .lock()
            .unwrap()
            .iter()
            .any(|(person, yes, _)| person == pid && *yes);
        let host = tag == "host";
        Ok(Admission {
            person_id: pid.to_string(),
            subject: pid.to_string(),
            display_name: format!("Name {pid}"),
            role: if host { "therapist" } else { "guest" }.into(),
            is_guest: !host,
            host,
            must_wait: tag == "wait" && !admitted,
            therapist_name: "Dr. Test".into(),
            resume_only: (tag == "resume")
                .then(|| Refusal::new("therapist_disabled", "video sessions are disabled")),
            session: SessionSummary {
                id: session_id.to_string(),
                name: "Test".into(),
                kind: "instant".into(),
                max_participants: self.seats.lock().unwrap().unwrap_or(2),
                expires_at: "2099-01-01T00:00:00Z".into(),
                waiting_room: tag == "wait",
            },
            expires_at_ms: i64::MAX / 4,
            ice_servers: vec![],
            token_id: Some(token.to_string()),
        })
    }
    async fn authenticate(&self, token: &str) -> Result<Authenticated, Refusal> {
        match token.split_once('@') {
            Some((pid, _)) => Ok(Authenticated {
                subject: pid.to_string(),
                token_id: Some(token.to_string()),
            }),
            None => Err(Refusal {
                code: "unauthorized".into(),
                message: "bad token".into(),
            }),
        }
    }
    async fn probe(
        &self,
        token: &str,
        session_id: &str,
    ) -> Result<Vec<signaling::protocol::IceServerInfo>, Refusal> {
        self.admit(token, session_id).await.map(|a| a.ice_servers)
    }
    async fn waiting_decision(
        &self,
        decision: signaling::WaitingDecision<'_>,
    ) -> Result<(), Refusal> {
        self.decisions.lock().unwrap().push((
            decision.person_id.to_string(),
            decision.admitted,
            decision.actor_subject.to_string(),
        ));
        Ok(())
    }
    async fn participant_joined(&self, participant_id: &str) {
        self.active
            .lock()
            .unwrap()
            .insert(participant_id.to_string(), true);
    }
    async fn participant_left(&self, participant_id: &str) {
        self.active
            .lock()
            .unwrap()
            .insert(participant_id.to_string(), false);
    }
}

pub fn hub_with(grace: Duration) -> (Hub, Arc<MemoryGate>) {
    hub_with_config(HubConfig {
        reconnect_grace: grace,
        ..HubConfig::default()
    })
}

pub fn hub_with_config(config: HubConfig) -> (Hub, Arc<MemoryGate>) {
    let (hub, gate, _) = hub_with_media(config);
    (hub, gate)
}

/// A hub over the fake media plane, with the plane for assertions.
pub fn hub_with_media(config: HubConfig) -> (Hub, Arc<MemoryGate>, Arc<FakeMedia>) {
    let gate = Arc::new(MemoryGate::default());
    let media = FakeMedia::new();
    let hub = Hub::new(media.clone(), gate.clone(), config);
    (hub, gate, media)
}

pub async fn next(rx: &mut OutboundQueue) -> Outbound {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("message in time")
        .expect("open")
}

/// Next message that is not media negotiation noise.
pub async fn next_message(rx: &mut OutboundQueue) -> ServerMessage {
    loop {
        match next(rx).await {
            Outbound::Message(ServerMessage::Candidate { .. } | ServerMessage::Offer { .. }) => {
                continue
            }
            Outbound::Message(m) => return m,
            Outbound::Close { code, reason } => panic!("unexpected close {code} {reason}"),
        }
    }
}

pub async fn expect_fatal(rx: &mut OutboundQueue, code: &str, close_code: u16) {
    match next(rx).await {
        Outbound::Message(ServerMessage::Error {
            code: c,
            fatal: true,
            ..
        }) => assert_eq!(c, code),
        other => panic!("expected fatal {code}, got {other:?}"),
    }
    match next(rx).await {
        Outbound::Close { code: c, .. } => assert_eq!(c, close_code),
        other => panic!("expected close, got {other:?}"),
    }
}

pub fn join(session: &str, token: &str) -> String {
    format!(r#"{{"type":"join","protocol":1,"session_id":"{session}","token":"{token}"}}"#)
}
