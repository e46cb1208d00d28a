//! The public face of the media plane: [`Sfu`] (the workers), [`Room`] and
//! [`Participant`] handles. Every call becomes a [`Command`] on the queue of the worker
//! that owns the room; the SFU keeps no room registry of its own (signaling's hub owns
//! the rooms and holds their handles).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::info;

use crate::config::SfuConfig;
use crate::engine::{Command, ParticipantKey, Reply, RoomKey};
use crate::error::SfuError;
use crate::stats::{Counters, SfuStats};
use crate::types::{IceCandidate, PcRole, SfuEvent, TrackInfo, TrackSource};
use crate::worker::{Message, WorkerHandle};

struct Shared {
    config: SfuConfig,
    counters: Arc<Counters>,
    workers: Vec<WorkerHandle>,
    next_key: AtomicU64,
}

/// The media plane of the process: its workers and counters. Cheap to clone.
#[derive(Clone)]
pub struct Sfu {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("config", &self.shared.config)
            .field("media_addrs", &self.media_addrs())
            .finish()
    }
}

impl Sfu {
    /// Validates the configuration, binds one UDP socket per worker and starts the
    /// workers. Fails when a socket cannot be bound (port taken, address not local).
    pub fn new(config: SfuConfig) -> Result<Sfu, SfuError> {
        config.validate()?;
        let counters = Arc::new(Counters::default());
        let mut workers = Vec::new();
        for index in 0..config.worker_count() {
            let worker =
                WorkerHandle::start(index, &config, Arc::clone(&counters)).map_err(|err| {
                    let bind = SocketAddr::new(config.bind_ip, config.worker_port(index));
                    SfuError::Config(format!("cannot bind media socket {bind}: {err}"))
                })?;
            workers.push(worker);
        }
        let addrs: Vec<SocketAddr> = workers.iter().map(|w| w.local_addr).collect();
        info!(media_addrs = ?addrs, public_ips = ?config.public_ips, ice_lite = config.ice_lite, "sfu started");
        Ok(Sfu {
            shared: Arc::new(Shared {
                config,
                counters,
                workers,
                next_key: AtomicU64::new(1),
            }),
        })
    }

    /// The configuration in effect.
    pub fn config(&self) -> &SfuConfig {
        &self.shared.config
    }

    /// The UDP address of every worker's socket (what a firewall must let through).
    pub fn media_addrs(&self) -> Vec<SocketAddr> {
        self.shared.workers.iter().map(|w| w.local_addr).collect()
    }

    /// Opens the media side of a room on the least loaded worker. The returned handle is
    /// the room: [`Room::close`] (or dropping the last handle) frees it.
    pub fn open_room(&self, id: &str) -> Room {
        let worker = self
            .shared
            .workers
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.rooms.load(Ordering::Relaxed))
            .map_or(0, |(i, _)| i);
        self.shared.workers[worker]
            .rooms
            .fetch_add(1, Ordering::Relaxed);
        let key = self.next_key();
        self.shared.workers[worker].cast(Command::OpenRoom {
            room: key,
            id: id.to_owned(),
        });
        Room {
            inner: Arc::new(RoomInner {
                key,
                id: id.to_owned(),
                worker,
                sfu: self.clone(),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SfuStats {
        self.shared.counters.snapshot()
    }

    fn next_key(&self) -> u64 {
        self.shared.next_key.fetch_add(1, Ordering::Relaxed)
    }

    fn worker(&self, index: usize) -> &WorkerHandle {
        &self.shared.workers[index]
    }
}

struct RoomInner {
    key: RoomKey,
    id: String,
    worker: usize,
    sfu: Sfu,
    closed: AtomicBool,
}

impl RoomInner {
    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let worker = self.sfu.worker(self.worker);
            worker.rooms.fetch_sub(1, Ordering::Relaxed);
            worker.cast(Command::CloseRoom { room: self.key });
        }
    }
}

impl Drop for RoomInner {
    fn drop(&mut self) {
        self.close();
    }
}

/// The media side of one room, pinned to one worker. Cheap to clone; the room closes when
/// [`Room::close`] is called or the last handle is dropped.
#[derive(Clone)]
pub struct Room {
    inner: Arc<RoomInner>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("id", &self.inner.id).finish()
    }
}

impl Room {
    /// The room id given to [`Sfu::open_room`].
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Adds a participant; its events (offers, candidates, tracks, states) arrive on
    /// `events`. A participant id already in the room replaces the older participant.
    pub async fn add_participant(
        &self,
        participant_id: &str,
        events: mpsc::UnboundedSender<SfuEvent>,
    ) -> Result<Participant, SfuError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SfuError::Closed);
        }
        let sfu = &self.inner.sfu;
        let key = sfu.next_key();
        let worker = sfu.worker(self.inner.worker);
        worker
            .tx
            .send(Message::Subscribe {
                participant: key,
                events,
            })
            .map_err(|_| SfuError::Closed)?;
        worker
            .call(Command::AddParticipant {
                room: self.inner.key,
                participant: key,
                id: participant_id.to_owned(),
            })
            .await?;
        Ok(Participant {
            inner: Arc::new(ParticipantInner {
                key,
                id: participant_id.to_owned(),
                room: self.clone(),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Published tracks as `(publisher id, track)`, in publication order (what a
    /// participant joining now is told about).
    pub async fn tracks(&self) -> Vec<(String, TrackInfo)> {
        match self
            .call(Command::Tracks {
                room: self.inner.key,
            })
            .await
        {
            Ok(Reply::Tracks(tracks)) => tracks,
            _ => Vec::new(),
        }
    }

    /// Closes every connection of the room; later joins are refused.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the room was closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    async fn call(&self, cmd: Command) -> Result<Reply, SfuError> {
        self.inner.sfu.worker(self.inner.worker).call(cmd).await
    }

    fn cast(&self, cmd: Command) {
        self.inner.sfu.worker(self.inner.worker).cast(cmd);
    }
}

struct ParticipantInner {
    key: ParticipantKey,
    id: String,
    room: Room,
    closed: AtomicBool,
}

impl Drop for ParticipantInner {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.room.cast(Command::RemoveParticipant {
                participant: self.key,
            });
        }
    }
}

/// A participant of a room, as handed to signaling. Cheap to clone; it leaves the room
/// on [`Participant::close`] or when the last handle is dropped.
#[derive(Clone)]
pub struct Participant {
    inner: Arc<ParticipantInner>,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("id", &self.inner.id)
            .finish()
    }
}

impl Participant {
    /// The participant id given to [`Room::add_participant`].
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Applies a publisher offer (initial, added tracks, or ICE restart) and returns the
    /// answer SDP to send back as `{"type":"answer","pc":"publisher"}`. `sources` are the
    /// client's declared track sources, by its own track id (undeclared: camera or
    /// microphone).
    pub async fn handle_publisher_offer(
        &self,
        sdp: String,
        sources: Vec<(String, TrackSource)>,
    ) -> Result<String, SfuError> {
        match self
            .call(Command::PublisherOffer {
                participant: self.inner.key,
                sdp,
                sources,
            })
            .await?
        {
            Reply::Answer(answer) => Ok(answer),
            other => Err(SfuError::WebRtc(format!("unexpected reply {other:?}"))),
        }
    }

    /// Applies the client's answer to the last [`SfuEvent::SubscriberOffer`].
    pub async fn handle_subscriber_answer(&self, sdp: String) -> Result<(), SfuError> {
        self.call(Command::SubscriberAnswer {
            participant: self.inner.key,
            sdp,
        })
        .await
        .map(|_| ())
    }

    /// Adds a trickled client candidate (`None` or an empty candidate: end of candidates).
    /// Candidates arriving before the matching description are kept, bounded, and applied
    /// with it; extra ones are dropped and counted in [`SfuStats`].
    pub async fn add_ice_candidate(
        &self,
        pc: PcRole,
        candidate: Option<IceCandidate>,
    ) -> Result<(), SfuError> {
        let candidate = candidate.unwrap_or(IceCandidate {
            candidate: String::new(),
            sdp_mid: None,
            sdp_mline_index: None,
            username_fragment: None,
        });
        self.call(Command::AddCandidate {
            participant: self.inner.key,
            pc,
            candidate,
        })
        .await
        .map(|_| ())
    }

    /// How many client candidates wait for `pc`'s remote description (diagnostics, tests).
    pub async fn pending_candidates(&self, pc: PcRole) -> usize {
        match self
            .call(Command::PendingCandidates {
                participant: self.inner.key,
                pc,
            })
            .await
        {
            Ok(Reply::Count(n)) => n,
            _ => 0,
        }
    }

    /// Restarts ICE on the subscriber connection (the server is its offerer): the next
    /// [`SfuEvent::SubscriberOffer`] carries fresh ICE credentials.
    pub async fn restart_subscriber_ice(&self) -> Result<(), SfuError> {
        self.call(Command::RestartSubscriberIce {
            participant: self.inner.key,
        })
        .await
        .map(|_| ())
    }

    /// Asks the publisher of `track_id` for a keyframe for this subscriber (throttled).
    pub fn request_keyframe(&self, track_id: &str) {
        self.inner.room.cast(Command::RequestKeyframe {
            participant: self.inner.key,
            track_id: track_id.to_owned(),
        });
    }

    /// Stops (true) or resumes (false) forwarding video to this participant, for a link too
    /// weak for it; resumed video starts at a keyframe.
    pub fn set_audio_only(&self, enabled: bool) {
        self.inner.room.cast(Command::SetAudioOnly {
            participant: self.inner.key,
            enabled,
        });
    }

    /// Stops (false) or resumes (true) forwarding the video `track_id` to this
    /// participant, whose page does not show it; resumed video starts at a keyframe.
    /// `size` is the size the page shows it at (device pixels, width × height): the
    /// simulcast layer forwarded is never larger than needed for it.
    pub fn set_video_visible(&self, track_id: &str, visible: bool, size: Option<(u32, u32)>) {
        self.inner.room.cast(Command::SetVideoVisible {
            participant: self.inner.key,
            track_id: track_id.to_owned(),
            visible,
            size,
        });
    }

    /// Leaves the room: closes both connections, unpublishes this participant's tracks.
    pub async fn close(&self) {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            let _ = self
                .inner
                .room
                .call(Command::RemoveParticipant {
                    participant: self.inner.key,
                })
                .await;
        }
    }

    /// Whether this participant has left (or its room was closed).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire) || self.inner.room.is_closed()
    }

    async fn call(&self, cmd: Command) -> Result<Reply, SfuError> {
        if self.is_closed() {
            return Err(SfuError::Closed);
        }
        self.inner.room.call(cmd).await
    }
}
