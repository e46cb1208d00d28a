//! An in-memory media plane: canned SDP answers, every call recorded, and events the
//! test emits (server candidates, subscriber offers, tracks of others). No WebRTC, no
//! sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use signaling::protocol::{CandidateInit, PcName, TrackView};
use signaling::{MediaError, MediaEvent, MediaParticipant, MediaPlane, MediaRoom, NewParticipant};
use tokio::sync::{mpsc, Semaphore};

/// The answer to every publisher offer (but those containing `"bad"`, which fail).
pub const FAKE_ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake answer\r\n";

/// One thing the hub asked of the media plane. Rooms are told apart by the order in
/// which they were opened (`handle`, from 1).
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    OpenRoom {
        room: String,
        handle: usize,
    },
    CloseRoom {
        room: String,
        handle: usize,
    },
    AddParticipant {
        handle: usize,
        participant: String,
    },
    PublisherOffer {
        participant: String,
        sdp: String,
    },
    SubscriberAnswer {
        participant: String,
        sdp: String,
    },
    Candidate {
        participant: String,
        pc: PcName,
        candidate: Option<CandidateInit>,
    },
    Keyframe {
        participant: String,
        track_id: String,
    },
    AudioOnly {
        participant: String,
        enabled: bool,
    },
    VideoView {
        participant: String,
        track_id: String,
        visible: bool,
        size: Option<(u32, u32)>,
    },
    CloseParticipant {
        handle: usize,
        participant: String,
    },
}

/// What the plane, its rooms and participants share.
#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    fail_joins: AtomicBool,
    close_hold: Mutex<Option<Arc<Semaphore>>>,
}

impl Shared {
    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

/// The fake plane. Keep an `Arc` of it for assertions.
#[derive(Default)]
pub struct FakeMedia {
    shared: Arc<Shared>,
    rooms: Mutex<Vec<Arc<RoomCore>>>,
}

impl FakeMedia {
    pub fn new() -> Arc<FakeMedia> {
        Arc::new(FakeMedia::default())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        self.shared.calls.lock().unwrap().clear();
    }

    /// Makes `add_participant` fail (or succeed again).
    pub fn fail_joins(&self, fail: bool) {
        self.shared.fail_joins.store(fail, Ordering::SeqCst);
    }

    /// Makes closing a room wait for a permit of `hold` first (`None`: no waiting).
    pub fn hold_room_closes(&self, hold: Option<Arc<Semaphore>>) {
        *self.shared.close_hold.lock().unwrap() = hold;
    }

    /// Ids of the rooms open now (opened and not closed), in opening order.
    pub fn open_rooms(&self) -> Vec<String> {
        self.rooms
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !r.closed.load(Ordering::SeqCst))
            .map(|r| r.id.clone())
            .collect()
    }

    /// The open room of that id. Panics when there is none: the test expects one.
    fn open_room_of(&self, room: &str) -> Arc<RoomCore> {
        self.rooms
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.id == room && !r.closed.load(Ordering::SeqCst))
            .cloned()
            .unwrap_or_else(|| panic!("no open media room {room}"))
    }

    /// Participants of the open room `room`, sorted.
    pub fn participants(&self, room: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .open_room_of(room)
            .participants
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// Sends `event` to one participant of the open room `room`.
    pub fn emit(&self, room: &str, participant: &str, event: MediaEvent) {
        let room = self.open_room_of(room);
        let target = room.participants.lock().unwrap().get(participant).cloned();
        let target = target.unwrap_or_else(|| panic!("no media participant {participant}"));
        target.send(event);
    }

    /// `publisher` publishes `track` in the open room `room`: like the SFU, everyone in
    /// the room (the publisher too) hears of it, and later joiners see it in `tracks`.
    pub fn publish(&self, room: &str, publisher: &str, track: TrackView) {
        let room = self.open_room_of(room);
        room.tracks
            .lock()
            .unwrap()
            .push((publisher.to_string(), track.clone()));
        let everyone: Vec<_> = room
            .participants
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        for p in everyone {
            p.send(MediaEvent::TrackPublished {
                participant_id: publisher.to_string(),
                track: track.clone(),
            });
        }
    }
}

impl MediaPlane for FakeMedia {
    fn open_room(&self, room_id: &str) -> Arc<dyn MediaRoom> {
        let mut rooms = self.rooms.lock().unwrap();
        let room = Arc::new(RoomCore {
            id: room_id.to_string(),
            handle: rooms.len() + 1,
            shared: Arc::clone(&self.shared),
            closed: AtomicBool::new(false),
            participants: Mutex::new(HashMap::new()),
            tracks: Mutex::new(Vec::new()),
            next_serial: AtomicUsize::new(0),
        });
        rooms.push(Arc::clone(&room));
        self.shared.record(Call::OpenRoom {
            room: room_id.to_string(),
            handle: room.handle,
        });
        Arc::new(FakeRoom(room))
    }
}

/// State of one fake media room.
struct RoomCore {
    id: String,
    handle: usize,
    shared: Arc<Shared>,
    closed: AtomicBool,
    participants: Mutex<HashMap<String, Arc<FakeParticipant>>>,
    tracks: Mutex<Vec<(String, TrackView)>>,
    next_serial: AtomicUsize,
}

impl RoomCore {
    /// Takes `p` out of the room (if it is still the room's participant of its id).
    fn remove(&self, p: &FakeParticipant) {
        let mut participants = self.participants.lock().unwrap();
        if participants
            .get(&p.id)
            .is_some_and(|q| q.serial == p.serial)
        {
            participants.remove(&p.id);
            self.tracks
                .lock()
                .unwrap()
                .retain(|(publisher, _)| publisher != &p.id);
        }
    }
}

/// One fake media room, as the hub holds it.
struct FakeRoom(Arc<RoomCore>);

#[async_trait]
impl MediaRoom for FakeRoom {
    async fn add_participant(&self, participant_id: &str) -> Result<NewParticipant, MediaError> {
        let room = &self.0;
        room.shared.record(Call::AddParticipant {
            handle: room.handle,
            participant: participant_id.to_string(),
        });
        if room.shared.fail_joins.load(Ordering::SeqCst) {
            return Err(MediaError::new("fake: no ports left"));
        }
        if room.closed.load(Ordering::SeqCst) {
            return Err(MediaError::new("fake: room closed"));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let participant = Arc::new(FakeParticipant {
            id: participant_id.to_string(),
            serial: room.next_serial.fetch_add(1, Ordering::SeqCst),
            room: Arc::clone(room),
            events: Mutex::new(Some(tx)),
        });
        room.participants
            .lock()
            .unwrap()
            .insert(participant_id.to_string(), Arc::clone(&participant));
        Ok(NewParticipant {
            participant,
            events: Box::new(rx),
        })
    }

    async fn tracks(&self) -> Vec<(String, TrackView)> {
        self.0.tracks.lock().unwrap().clone()
    }

    async fn close(&self) {
        let room = &self.0;
        room.shared.record(Call::CloseRoom {
            room: room.id.clone(),
            handle: room.handle,
        });
        let hold = room.shared.close_hold.lock().unwrap().clone();
        if let Some(hold) = hold {
            hold.acquire().await.expect("semaphore open").forget();
        }
        room.closed.store(true, Ordering::SeqCst);
        let gone: Vec<_> = room.participants.lock().unwrap().drain().collect();
        for (_, p) in gone {
            p.events.lock().unwrap().take();
        }
    }
}

/// One fake participant.
struct FakeParticipant {
    id: String,
    serial: usize,
    room: Arc<RoomCore>,
    /// Dropped on close, which ends the participant's event stream.
    events: Mutex<Option<mpsc::UnboundedSender<MediaEvent>>>,
}

impl FakeParticipant {
    fn send(&self, event: MediaEvent) {
        if let Some(tx) = self.events.lock().unwrap().as_ref() {
            let _ = tx.send(event);
        }
    }

    fn record(&self, call: Call) {
        self.room.shared.record(call);
    }

    fn check_open(&self) -> Result<(), MediaError> {
        if self.events.lock().unwrap().is_some() {
            Ok(())
        } else {
            Err(MediaError::new("fake: participant closed"))
        }
    }
}

#[async_trait]
impl MediaParticipant for FakeParticipant {
    async fn handle_publisher_offer(
        &self,
        sdp: String,
        _tracks: Vec<signaling::protocol::TrackSourceDecl>,
    ) -> Result<String, MediaError> {
        self.record(Call::PublisherOffer {
            participant: self.id.clone(),
            sdp: sdp.clone(),
        });
        self.check_open()?;
        if sdp.contains("bad") {
            return Err(MediaError::new("fake: unparsable sdp"));
        }
        Ok(FAKE_ANSWER.to_string())
    }

    async fn handle_subscriber_answer(&self, sdp: String) -> Result<(), MediaError> {
        self.record(Call::SubscriberAnswer {
            participant: self.id.clone(),
            sdp,
        });
        self.check_open()
    }

    async fn add_ice_candidate(
        &self,
        pc: PcName,
        candidate: Option<CandidateInit>,
    ) -> Result<(), MediaError> {
        self.record(Call::Candidate {
            participant: self.id.clone(),
            pc,
            candidate,
        });
        self.check_open()
    }

    fn request_keyframe(&self, track_id: &str) {
        self.record(Call::Keyframe {
            participant: self.id.clone(),
            track_id: track_id.to_string(),
        });
    }

    fn set_audio_only(&self, enabled: bool) {
        self.record(Call::AudioOnly {
            participant: self.id.clone(),
            enabled,
        });
    }

    fn set_video_visible(&self, track_id: &str, visible: bool, size: Option<(u32, u32)>) {
        self.record(Call::VideoView {
            participant: self.id.clone(),
            track_id: track_id.to_string(),
            visible,
            size,
        });
    }

    async fn close(&self) {
        self.record(Call::CloseParticipant {
            handle: self.room.handle,
            participant: self.id.clone(),
        });
        self.events.lock().unwrap().take();
        self.room.remove(self);
    }
}
