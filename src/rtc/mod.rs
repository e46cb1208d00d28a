//! Wiring of live video into the server: the `/rtc` WebSocket route ([`socket`]),
//! the [`signaling::Gatekeeper`] backed by the store and the room rules ([`gate`]),
//! the SFU adapted to signaling's media trait ([`media`]), the [`LiveControl`]
//! that lets REST changes reach live rooms, and (several nodes) the node's own report
//! of the rooms it holds ([`held`]).

mod gate;
mod held;
mod media;
mod socket;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use signaling::Hub;

pub use gate::StoreGatekeeper;
pub use media::SfuMedia;

use crate::state::LiveControl;

/// REST → live rooms.
pub struct HubControl(pub Hub);

#[async_trait::async_trait]
impl LiveControl for HubControl {
    async fn waiting(&self, session_id: &str) -> Vec<crate::state::WaitingPerson> {
        self.0.waiting_list(session_id).await
    }

    async fn waiting_person(&self, session_id: &str, participant_id: &str) -> Option<String> {
        self.0.waiting_person(session_id, participant_id).await
    }

    async fn admit(&self, session_id: &str, person_id: &str) -> bool {
        self.0.admit_person(session_id, person_id).await.is_ok()
    }

    async fn decline(&self, session_id: &str, person_id: &str) -> bool {
        self.0.decline_person(session_id, person_id).await.is_ok()
    }

    fn session_ended(&self, session_id: &str) {
        let hub = self.0.clone();
        let id = session_id.to_string();
        tokio::spawn(async move { hub.end_session(&id, "ended_by_therapist").await });
    }

    fn notify(&self, user_id: &str, notification: serde_json::Value) {
        self.0.notify(user_id, notification);
    }

    fn token_revoked(&self, jti: &str) {
        self.0.revoke_token(jti);
    }

    fn subject_revoked(&self, subject: &str) {
        self.0.revoke_subject(subject);
    }

    fn participant_removed(&self, session_id: &str, participant_id: &str) {
        let hub = self.0.clone();
        let (sid, pid) = (session_id.to_string(), participant_id.to_string());
        tokio::spawn(async move { hub.remove_participant(&sid, &pid).await });
    }
}

/// Builds the hub over `sfu` (behind [`SfuMedia`]) with the store-backed gatekeeper.
pub fn hub(sfu: sfu::Sfu, gate: StoreGatekeeper, config: signaling::HubConfig) -> Hub {
    Hub::new(Arc::new(SfuMedia::new(sfu)), Arc::new(gate), config)
}

/// The `/rtc` route; with a cluster, sockets whose room another node holds are
/// relayed there, and `GET /internal/cluster/rooms` reports this node's rooms.
pub fn routes(hub: Hub, cluster: Option<crate::cluster::Cluster>) -> Router {
    let state = socket::RtcState { hub, cluster };
    Router::new()
        .route("/rtc", get(socket::upgrade))
        .route("/internal/cluster/rooms", get(held::rooms_held))
        .with_state(state)
}
