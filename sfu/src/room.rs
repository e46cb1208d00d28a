//! A room: its participants and published tracks, and the fan-out of room events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

use crate::error::SfuError;
use crate::forward::unique_track_id;
use crate::participant::{Participant, ParticipantInner};
use crate::plan::{desired_subscriptions, PlannedTrack};
use crate::publication::Publication;
use crate::sfu::SfuShared;
use crate::stats::Gauge;
use crate::types::{IceServer, SfuEvent, TrackInfo};

/// A room of the SFU (one per session). Cheap to clone; obtained from [`crate::Sfu::room`].
#[derive(Clone)]
pub struct Room {
    pub(crate) inner: Arc<RoomInner>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("id", &self.inner.id).finish()
    }
}

#[derive(Default)]
struct RoomState {
    closed: bool,
    participants: HashMap<String, Arc<ParticipantInner>>,
    /// Published tracks in publication order.
    tracks: Vec<Arc<Publication>>,
}

/// A participant taken out of the room, with the tracks it published.
struct Removed {
    participant: Arc<ParticipantInner>,
    tracks: Vec<Arc<Publication>>,
    remaining: Vec<Arc<ParticipantInner>>,
}

pub(crate) struct RoomInner {
    id: String,
    shared: Arc<SfuShared>,
    span: tracing::Span,
    state: Mutex<RoomState>,
}

impl RoomInner {
    pub(crate) fn new(id: &str, shared: Arc<SfuShared>) -> Arc<Self> {
        Arc::new(RoomInner {
            id: id.to_owned(),
            shared,
            span: tracing::info_span!("sfu_room", room_id = %id),
            state: Mutex::new(RoomState::default()),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn shared(&self) -> &Arc<SfuShared> {
        &self.shared
    }

    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    fn state(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tracks `participant` should receive, in publication order.
    pub(crate) fn publications_for(&self, participant: &str) -> Vec<Arc<Publication>> {
        let st = self.state();
        let planned: Vec<PlannedTrack> = st
            .tracks
            .iter()
            .map(|t| PlannedTrack {
                track_id: t.info.track_id.clone(),
                publisher: t.publisher_id.clone(),
            })
            .collect();
        let wanted = desired_subscriptions(participant, &planned);
        st.tracks
            .iter()
            .filter(|t| wanted.contains(&t.info.track_id))
            .cloned()
            .collect()
    }

    pub(crate) fn publication(&self, track_id: &str) -> Option<Arc<Publication>> {
        self.state()
            .tracks
            .iter()
            .find(|t| t.info.track_id == track_id)
            .cloned()
    }

    /// Registers a new track of `publisher` (if it is still the room's participant of that
    /// id), tells everyone, and renegotiates the other subscribers.
    pub(crate) fn publish(
        &self,
        publisher: &Arc<ParticipantInner>,
        wanted_track_id: &str,
        build: impl FnOnce(String) -> Arc<Publication>,
    ) -> Option<Arc<Publication>> {
        let (publication, everyone) = {
            let mut st = self.state();
            let current = st.participants.get(&publisher.id)?;
            if st.closed || !Arc::ptr_eq(current, publisher) || publisher.is_closed() {
                return None;
            }
            let track_id = unique_track_id(wanted_track_id, &publisher.id, |c| {
                st.tracks.iter().any(|t| t.info.track_id == c)
            });
            let publication = build(track_id);
            st.tracks.push(Arc::clone(&publication));
            (
                publication,
                st.participants.values().cloned().collect::<Vec<_>>(),
            )
        };
        self.shared.counters.add(Gauge::PublishedTracks, 1);
        for p in &everyone {
            let _ = p.events.send(SfuEvent::TrackPublished {
                participant_id: publication.publisher_id.clone(),
                track: publication.info.clone(),
            });
        }
        // Spawned: the caller is the publisher's reader, which must start reading now.
        for p in everyone.into_iter().filter(|p| p.id != publisher.id) {
            let span = p.span.clone();
            tokio::spawn(
                async move {
                    if let Err(err) = p.renegotiate_subscriber().await {
                        warn!(%err, "subscriber renegotiation failed");
                    }
                }
                .instrument(span),
            );
        }
        Some(publication)
    }

    /// Removes a track (its publisher's track ended); no-op if already removed.
    pub(crate) async fn unpublish(&self, publication: &Arc<Publication>) {
        let everyone = {
            let mut st = self.state();
            let before = st.tracks.len();
            st.tracks.retain(|t| !Arc::ptr_eq(t, publication));
            if st.tracks.len() == before {
                return;
            }
            st.participants.values().cloned().collect::<Vec<_>>()
        };
        publication.shutdown();
        self.shared.counters.sub(Gauge::PublishedTracks, 1);
        info!(parent: &self.span, track_id = %publication.info.track_id, publisher = %publication.publisher_id, "track unpublished");
        for p in &everyone {
            let _ = p.events.send(SfuEvent::TrackUnpublished {
                participant_id: publication.publisher_id.clone(),
                track_id: publication.info.track_id.clone(),
            });
        }
        for p in everyone.iter().filter(|p| p.id != publication.publisher_id) {
            if let Err(err) = p.renegotiate_subscriber().instrument(p.span.clone()).await {
                warn!(parent: &p.span, %err, "subscriber renegotiation failed");
            }
        }
    }

    fn take_locked(st: &mut RoomState, id: &str) -> Option<Removed> {
        let participant = st.participants.remove(id)?;
        let (tracks, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut st.tracks)
            .into_iter()
            .partition(|t| t.publisher_id == id);
        st.tracks = rest;
        Some(Removed {
            participant,
            tracks,
            remaining: st.participants.values().cloned().collect(),
        })
    }

    /// Bookkeeping of a removal that needs no waiting: counters, forwarding stopped, other
    /// participants told.
    fn finish_removal_sync(&self, removed: &Removed) {
        self.shared.counters.sub(Gauge::Participants, 1);
        for t in &removed.tracks {
            t.shutdown();
            self.shared.counters.sub(Gauge::PublishedTracks, 1);
        }
        for p in &removed.remaining {
            for t in &removed.tracks {
                let _ = p.events.send(SfuEvent::TrackUnpublished {
                    participant_id: t.publisher_id.clone(),
                    track_id: t.info.track_id.clone(),
                });
            }
        }
        removed.participant.begin_shutdown();
    }

    async fn finish_removal(&self, removed: Removed) {
        self.finish_removal_sync(&removed);
        let p = &removed.participant;
        p.close_connections().instrument(p.span.clone()).await;
        info!(parent: &self.span, participant_id = %p.id, tracks = removed.tracks.len(), "participant removed");
        if removed.tracks.is_empty() {
            return;
        }
        for other in &removed.remaining {
            if let Err(err) = other
                .renegotiate_subscriber()
                .instrument(other.span.clone())
                .await
            {
                warn!(parent: &other.span, %err, "subscriber renegotiation failed");
            }
        }
    }

    pub(crate) async fn remove_participant(&self, id: &str) {
        let removed = Self::take_locked(&mut self.state(), id);
        if let Some(removed) = removed {
            self.finish_removal(removed).await;
        }
    }

    /// Removes `p` only if it is still the room's participant of its id (not replaced).
    pub(crate) async fn remove_participant_instance(&self, p: &Arc<ParticipantInner>) {
        let removed = {
            let mut st = self.state();
            match st.participants.get(&p.id) {
                Some(cur) if Arc::ptr_eq(cur, p) => Self::take_locked(&mut st, &p.id),
                _ => None,
            }
        };
        match removed {
            Some(removed) => self.finish_removal(removed).await,
            None => {
                if p.begin_shutdown() {
                    p.close_connections().instrument(p.span.clone()).await;
                }
            }
        }
    }

    /// Closes the room: everything is uncounted now, connections close in the background.
    pub(crate) fn close_all(self: &Arc<Self>) {
        let removed: Vec<Removed> = {
            let mut st = self.state();
            st.closed = true;
            let ids: Vec<String> = st.participants.keys().cloned().collect();
            let mut out: Vec<Removed> = ids
                .iter()
                .filter_map(|id| Self::take_locked(&mut st, id))
                .collect();
            // Tracks whose publisher is not a participant any more (none expected).
            let orphans = std::mem::take(&mut st.tracks);
            if let Some(first) = out.first_mut() {
                first.tracks.extend(orphans);
            } else {
                for t in orphans {
                    t.shutdown();
                    self.shared.counters.sub(Gauge::PublishedTracks, 1);
                }
            }
            out
        };
        for r in &removed {
            self.finish_removal_sync(r);
        }
        if removed.is_empty() {
            return;
        }
        let closing: Vec<Arc<ParticipantInner>> =
            removed.into_iter().map(|r| r.participant).collect();
        let span = self.span.clone();
        let job = async move {
            for p in closing {
                p.close_connections().instrument(p.span.clone()).await;
            }
            debug!("room connections closed");
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(job.instrument(span));
            }
            Err(_) => {
                warn!(parent: &span, "remove_room outside a tokio runtime: connections left to their drop")
            }
        }
    }
}

impl Room {
    /// The room id given to [`crate::Sfu::room`].
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Creates both server peer connections for `participant_id` and, if the room already
    /// has tracks, sends it a first subscriber offer. Events for this participant go to
    /// `events`. A participant already present with the same id (reload) is removed first.
    pub async fn add_participant(
        &self,
        participant_id: &str,
        ice_servers: Vec<IceServer>,
        events: mpsc::UnboundedSender<SfuEvent>,
    ) -> Result<Participant, SfuError> {
        let room = &self.inner;
        if room.state().closed {
            return Err(SfuError::Closed);
        }
        if room.state().participants.contains_key(participant_id) {
            room.remove_participant(participant_id).await;
        }
        let p = ParticipantInner::create(room, participant_id, ice_servers, events).await?;
        let replaced = {
            let mut st = room.state();
            if st.closed {
                None
            } else {
                let old = RoomInner::take_locked(&mut st, participant_id);
                st.participants
                    .insert(participant_id.to_owned(), Arc::clone(&p));
                Some(old)
            }
        };
        let Some(replaced) = replaced else {
            p.begin_shutdown();
            p.close_connections().await;
            return Err(SfuError::Closed);
        };
        room.shared.counters.add(Gauge::Participants, 1);
        if let Some(old) = replaced {
            room.finish_removal(old).await;
        }
        info!(parent: &p.span, "participant joined");
        if let Err(err) = p.renegotiate_subscriber().instrument(p.span.clone()).await {
            warn!(parent: &p.span, %err, "first subscriber offer failed");
        }
        Ok(Participant { inner: p })
    }

    /// Closes the participant's peer connections, unpublishes its tracks (the others get
    /// `TrackUnpublished` and a new subscriber offer) and releases everything it held.
    pub async fn remove_participant(&self, participant_id: &str) {
        self.inner.remove_participant(participant_id).await;
    }

    /// Number of participants.
    pub fn participant_count(&self) -> usize {
        self.inner.state().participants.len()
    }

    /// Currently published tracks with their publisher, in publication order (what a
    /// joining participant is told about in `joined`).
    pub fn tracks(&self) -> Vec<(String, TrackInfo)> {
        self.inner
            .state()
            .tracks
            .iter()
            .map(|t| (t.publisher_id.clone(), t.info.clone()))
            .collect()
    }

    /// The participant of that id, if present.
    pub fn participant(&self, participant_id: &str) -> Option<Participant> {
        self.inner
            .state()
            .participants
            .get(participant_id)
            .map(|p| Participant {
                inner: Arc::clone(p),
            })
    }
}
