//! What a scenario needs from a server under test, so the same scenarios drive
//! TheraRoom (its own protocol) and Janus (VideoRoom over its WebSocket API).

use std::sync::Arc;
use std::time::Instant;

use theraroom_load::engine::{Engine, EngineParticipant, EngineStats};
use theraroom_load::rest;
use theraroom_load::{
    ClientMessage, ClipSet, JoinOptions, Kind, MediaRate, Participant, Publish, RemoteTrackStats,
    SentStats,
};

use super::server::{ServerCounters, TheraServer};

/// The media publishers send.
#[derive(Clone)]
pub enum Media {
    /// Real VP8 + Opus looped from files.
    Clips(Arc<ClipSet>),
    /// Synthetic tagged packets at a fixed rate (when no media files can be made).
    Synthetic(MediaRate),
}

/// Which client stack the simulated participants use.
#[derive(Clone)]
pub enum Client {
    /// The sans-IO engine (`theraroom_load::engine`): one loop thread per core.
    Engine(Engine),
    /// webrtc-rs peer connections ([`Participant`], a task and sockets per
    /// connection), kept for comparison.
    Webrtc,
}

impl Client {
    /// Counters of the engine (none for webrtc-rs).
    pub fn engine_stats(&self) -> Option<EngineStats> {
        match self {
            Client::Engine(e) => Some(e.stats()),
            Client::Webrtc => None,
        }
    }

    /// Short name for reports (`engine x2`, `webrtc`).
    pub fn label(&self) -> String {
        match self {
            Client::Engine(e) => format!("engine x{}", e.threads()),
            Client::Webrtc => "webrtc".into(),
        }
    }
}

/// A room created on the server under test.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    /// Server-side id (session id, Janus room number).
    pub id: String,
    /// What a participant needs to get in (share token for TheraRoom).
    pub secret: String,
}

/// One simulated participant, whatever the server.
#[async_trait::async_trait]
pub trait Peer: Send + Sync {
    /// The id other participants' received tracks carry as stream id.
    fn id(&self) -> String;
    /// What our tracks sent.
    fn sent(&self) -> Vec<SentStats>;
    /// What every remote track delivered (stream id = publisher's [`Peer::id`]).
    fn received(&self) -> Vec<RemoteTrackStats>;
    /// Starts publishing.
    fn start_media(&self, media: &Media);
    /// Asks the server for a keyframe of a remote video track (as a browser does when a
    /// track starts or loses packets).
    fn request_keyframe(&self, track_id: &str);
    /// Problems seen so far (negotiation errors, unexpected close).
    fn errors(&self) -> Vec<String>;
    /// Local UDP port of the subscriber connection (engine client only): what a
    /// benchmark shapes to constrain one subscriber's downlink.
    fn subscriber_port(&self) -> Option<u16>;
    /// Leaves the room and closes everything.
    async fn leave(&self) -> Result<(), String>;
}

/// A server under test.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Short name for reports.
    fn name(&self) -> &'static str;
    /// The client stack the participants use (`engine x2`, `webrtc`).
    fn client(&self) -> String;
    /// Counters of the client engine, when participants use it.
    fn engine_stats(&self) -> Option<EngineStats>;
    /// Process id of the server (CPU and RSS come from /proc).
    fn pid(&self) -> u32;
    /// Every server process, named (several nodes: one per node), for CPU per node.
    fn pids(&self) -> Vec<(String, u32)> {
        vec![(self.name().to_owned(), self.pid())]
    }
    /// Creates a room for `size` participants.
    async fn create_room(&self, size: usize) -> Result<RoomHandle, String>;
    /// Joins `room`; returns the peer and the instant its signaling socket started
    /// opening (the start of the join time).
    async fn join(
        &self,
        room: &RoomHandle,
        index: usize,
        publish: Publish,
    ) -> Result<(Arc<dyn Peer>, Instant), String>;
    /// Forwarding counters of the server itself, if it exports them.
    async fn counters(&self) -> Option<ServerCounters>;
}

/// TheraRoom through its public protocol.
pub struct TheraBackend {
    /// The server.
    pub server: TheraServer,
    /// The client stack participants join with.
    pub client: Client,
}

/// Largest room TheraRoom's session API accepts.
pub const THERAROOM_MAX_ROOM: usize = 50;

/// A TheraRoom session for `size` participants, made over REST on `base` by the
/// therapist of `therapist_token` (one node or several: the room is the same).
pub async fn create_theraroom_room(
    base: &str,
    therapist_token: &str,
    size: usize,
) -> Result<RoomHandle, String> {
    if size > THERAROOM_MAX_ROOM {
        return Err(format!(
            "TheraRoom sessions hold at most {THERAROOM_MAX_ROOM} participants, asked {size}"
        ));
    }
    let s = rest::create_session(base, therapist_token, "load test", size.max(2) as u32)
        .await
        .map_err(|e| format!("create session: {e}"))?;
    Ok(RoomHandle {
        id: s.id,
        secret: s.share_token,
    })
}

#[async_trait::async_trait]
impl Backend for TheraBackend {
    fn name(&self) -> &'static str {
        "theraroom"
    }

    fn client(&self) -> String {
        self.client.label()
    }

    fn engine_stats(&self) -> Option<EngineStats> {
        self.client.engine_stats()
    }

    fn pid(&self) -> u32 {
        self.server.pid
    }

    async fn create_room(&self, size: usize) -> Result<RoomHandle, String> {
        create_theraroom_room(&self.server.base, &self.server.therapist_token, size).await
    }

    async fn join(
        &self,
        room: &RoomHandle,
        index: usize,
        publish: Publish,
    ) -> Result<(Arc<dyn Peer>, Instant), String> {
        let guest = rest::guest_token(&self.server.base, &room.secret, &format!("load-{index}"))
            .await
            .map_err(|e| format!("guest token: {e}"))?;
        let mut opts = JoinOptions::new(&self.server.ws, &room.id, &guest.token);
        opts.publish = publish;
        let start = Instant::now();
        let peer: Arc<dyn Peer> = match &self.client {
            Client::Engine(engine) => Arc::new(EnginePeer {
                p: EngineParticipant::join(engine, opts)
                    .await
                    .map_err(|e| format!("join: {e}"))?,
            }),
            Client::Webrtc => Arc::new(TheraPeer {
                p: Participant::join(opts)
                    .await
                    .map_err(|e| format!("join: {e}"))?,
            }),
        };
        Ok((peer, start))
    }

    async fn counters(&self) -> Option<ServerCounters> {
        self.server.counters().await.ok()
    }
}

/// A webrtc-rs participant as a [`Peer`].
pub struct TheraPeer {
    /// The participant.
    pub p: Participant,
}

/// An engine participant as a [`Peer`].
pub struct EnginePeer {
    /// The participant.
    pub p: EngineParticipant,
}

/// Both clients (webrtc-rs `Participant`, engine `EngineParticipant`) offer the same
/// methods under the same names: one `Peer` implementation serves both.
macro_rules! impl_peer {
    ($peer:ty) => {
        #[async_trait::async_trait]
        impl Peer for $peer {
            fn id(&self) -> String {
                self.p.participant_id().to_owned()
            }

            fn sent(&self) -> Vec<SentStats> {
                self.p.sent()
            }

            fn received(&self) -> Vec<RemoteTrackStats> {
                self.p.received()
            }

            fn start_media(&self, media: &Media) {
                match media {
                    Media::Clips(c) => self.p.start_clips(c),
                    Media::Synthetic(rate) => self.p.start_media(*rate),
                }
            }

            fn request_keyframe(&self, track_id: &str) {
                let _ = self.p.send(ClientMessage::RequestKeyframe {
                    track_id: track_id.to_owned(),
                });
            }

            fn errors(&self) -> Vec<String> {
                let mut e = self.p.negotiation_errors();
                if let Some(c) = self.p.close_info() {
                    e.push(format!("signaling closed: {c}"));
                }
                e
            }

            fn subscriber_port(&self) -> Option<u16> {
                self.p.subscriber_port()
            }

            async fn leave(&self) -> Result<(), String> {
                match self.p.leave().await {
                    Ok(c) if c.code == 1000 => Ok(()),
                    Ok(c) => Err(format!("leave closed with {c}")),
                    Err(e) => Err(format!("leave: {e}")),
                }
            }
        }
    };
}

impl_peer!(TheraPeer);
impl_peer!(EnginePeer);

/// Kind of a track, for matching sent and received tracks.
pub fn kind_key(k: Kind) -> u8 {
    match k {
        Kind::Audio => 0,
        Kind::Video => 1,
    }
}
