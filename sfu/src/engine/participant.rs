//! One participant as the core sees it: its two connections, its subscriber legs and the
//! offer/answer state of its subscriber connection.

use std::collections::{BTreeMap, HashMap};

use rtc::rtp_transceiver::RTCRtpSenderId;

use tracing::debug;

use super::connection::Connection;
use super::ctx::Ctx;
use super::io::{ConnKey, ParticipantKey, TrackKey};
use super::publication::Publication;
use super::quality::Link;
use super::sections::LegSpec;
use crate::allocation::UpgradeBackoff;
use crate::error::SfuError;
use crate::forward::{LegMapping, LegRewriter};
use crate::plan::OfferState;
use crate::quality::LegLoss;
use crate::simulcast::LayerSwitch;
use crate::stats::Gauge;
use crate::types::{MediaKind, PcRole, TrackSource};

/// A fall of the estimate to this fraction of the allocated one reallocates at once.
const ESTIMATE_DROP: f64 = 0.9;

/// One sendonly leg of the subscriber connection: one published track of someone else.
#[derive(Debug)]
pub(crate) struct Leg {
    /// Its sender on the subscriber connection.
    pub sender: RTCRtpSenderId,
    /// SSRC chosen for the leg.
    pub ssrc: u32,
    /// Payload type / extension translation, known once the subscriber answered.
    pub mapping: Option<LegMapping>,
    /// Sequence numbers and timestamps of the leg.
    pub rewriter: LegRewriter,
    /// Which layer the leg forwards and which it should (video; set by the allocator).
    pub switch: LayerSwitch,
    /// Size the subscriber's page shows the video at (device pixels), if it said.
    pub shown: Option<(u32, u32)>,
    /// Waits before layers that the downlink could not carry are tried again.
    pub backoff: UpgradeBackoff,
    /// The allocator paused the video for lack of bandwidth (and told the subscriber).
    pub bandwidth_paused: bool,
    /// A packet could not be written or mapped (logged once).
    pub complained: bool,
    /// The subscriber's page does not show this video: nothing is forwarded on the leg.
    pub hidden: bool,
    /// Packets written on the leg (for the loss its receiver reports).
    pub written: u64,
    /// Loss on the way out, from the subscriber's reports.
    pub loss: LegLoss,
}

impl Leg {
    /// Whether nothing is forwarded on this leg for now: a video the subscriber's page
    /// hides, or any video while the subscriber receives audio only.
    pub(crate) fn is_paused(&self, kind: MediaKind, audio_only: bool) -> bool {
        kind == MediaKind::Video && (self.hidden || audio_only)
    }
}

/// A participant of a room.
pub(crate) struct Participant {
    /// Key given by the facade.
    pub key: ParticipantKey,
    /// Participant id (signaling's), the stream id of everything it publishes.
    pub id: String,
    /// Client → server media.
    pub publisher: Connection,
    /// Server → client media.
    pub subscriber: Connection,
    /// One subscriber offer outstanding at a time.
    pub offer: OfferState,
    /// The next subscriber offer restarts ICE.
    pub ice_restart: bool,
    /// Legs changed since the last offer that went out (an offer failed): the next
    /// renegotiation must offer even if the room did not change again.
    pub unoffered: bool,
    /// Legs by published track.
    pub legs: BTreeMap<TrackKey, Leg>,
    /// Own tracks: rtc track id on the publisher connection → publication.
    pub published: HashMap<String, TrackKey>,
    /// Sources the client declared with its last offer, by its own track id.
    pub sources: HashMap<String, TrackSource>,
    /// `MediaFlowing` was sent.
    pub media_flowing: bool,
    /// Loss, delay and verdict of its connection.
    pub link: Link,
    /// Receives audio only: its video legs get nothing until this is turned off.
    pub audio_only: bool,
    /// The downlink estimate the last allocation used.
    pub allocated_estimate: Option<u64>,
}

impl Participant {
    /// A participant with no connection built yet.
    pub(crate) fn new(key: ParticipantKey, id: String) -> Self {
        Participant {
            key,
            id,
            publisher: Connection::new(ConnKey::new(key, PcRole::Publisher)),
            subscriber: Connection::new(ConnKey::new(key, PcRole::Subscriber)),
            offer: OfferState::default(),
            ice_restart: false,
            unoffered: false,
            legs: BTreeMap::new(),
            published: HashMap::new(),
            sources: HashMap::new(),
            media_flowing: false,
            link: Link::default(),
            audio_only: false,
            allocated_estimate: None,
        }
    }

    /// Whether the downlink estimate fell by more than [`ESTIMATE_DROP`] since the last
    /// allocation (the layers must shrink before the subscriber's queue overflows).
    pub(crate) fn estimate_fell(&self) -> bool {
        match (self.subscriber.estimate(), self.allocated_estimate) {
            (Some(now), Some(then)) => (now as f64) < then as f64 * ESTIMATE_DROP,
            _ => false,
        }
    }

    /// The connection of `role`.
    pub(crate) fn conn(&mut self, role: PcRole) -> &mut Connection {
        match role {
            PcRole::Publisher => &mut self.publisher,
            PcRole::Subscriber => &mut self.subscriber,
        }
    }

    /// Adds a sendonly leg for `track` (key `tk`) to the subscriber connection.
    pub(crate) fn add_leg(
        &mut self,
        ctx: &mut Ctx<'_>,
        tk: TrackKey,
        track: &mut Publication,
    ) -> Result<(), SfuError> {
        let ssrc = loop {
            let s = rand::random::<u32>();
            if s != 0 {
                break s;
            }
        };
        let spec = LegSpec {
            stream_id: &track.info.stream_id,
            track_id: &track.info.track_id,
            kind: track.info.kind,
            codec: &track.codec,
            ssrc,
        };
        let sender = self.subscriber.add_leg(ctx, &spec)?;
        // Until the room's next allocation: the track's top layer, from its next keyframe.
        let mut switch = LayerSwitch::new();
        switch.set_target(track.layers.last().map(|l| l.layer));
        self.legs.insert(
            tk,
            Leg {
                sender,
                ssrc,
                mapping: None,
                rewriter: LegRewriter::new(),
                switch,
                shown: None,
                backoff: UpgradeBackoff::default(),
                bandwidth_paused: false,
                complained: false,
                hidden: false,
                written: 0,
                loss: LegLoss::default(),
            },
        );
        track.subscribers.push(self.key);
        ctx.counters.add(Gauge::ForwardedTracks, 1);
        debug!(participant = self.key, track_id = %track.info.track_id, ssrc, "subscriber leg added");
        Ok(())
    }

    /// Removes the leg of track `tk` (gone from the room).
    pub(crate) fn remove_leg(&mut self, ctx: &mut Ctx<'_>, tk: TrackKey) {
        if let Some(leg) = self.legs.remove(&tk) {
            self.subscriber.remove_leg(leg.sender);
            ctx.counters.sub(Gauge::ForwardedTracks, 1);
        }
    }

    /// Closes both connections (their routes and timers go with them).
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.publisher.close(ctx);
        self.subscriber.close(ctx);
    }
}
