//! Process-wide counters: atomics for [`SfuStats`] snapshots, mirrored to the `metrics`
//! facade (the binary installs the exporter; without one the calls are no-ops).

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the SFU's counters, for health endpoints and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Rooms that exist.
    pub rooms: u64,
    /// Participants in all rooms.
    pub participants: u64,
    /// Tracks currently published.
    pub published_tracks: u64,
    /// Subscriber legs (one per published track per other participant).
    pub forwarded_tracks: u64,
    /// Subscriber video legs paused (hidden on the page, or audio only), as of each room's
    /// last quality evaluation.
    pub paused_videos: u64,
    /// RTP packets handed to subscriber connections since start.
    pub forwarded_packets: u64,
    /// RTP bytes (header + payload) handed to subscriber connections since start.
    pub forwarded_bytes: u64,
    /// RTP packets dropped because a subscriber leg's queue was full (slow subscriber).
    pub dropped_packets: u64,
    /// PLIs sent to publishers (after throttling).
    pub keyframe_requests: u64,
    /// Client ICE candidates dropped because the buffer of candidates waiting for a
    /// remote description was full.
    pub dropped_candidates: u64,
    /// Datagrams dropped because they came from an address bound to no connection and
    /// were not a STUN request naming one.
    pub dropped_unknown_address: u64,
    /// STUN requests dropped because their USERNAME names no connection.
    pub dropped_unknown_ufrag: u64,
    /// STUN requests naming a connection dropped because their MESSAGE-INTEGRITY did not
    /// match its password (and their address was not bound to it).
    pub dropped_unauthenticated: u64,
}

impl SfuStats {
    /// Datagrams that reached a media socket but no connection (unknown address, unknown
    /// ufrag, failed STUN check): what a port scan or a stale client costs.
    pub fn unrouted_datagrams(&self) -> u64 {
        self.dropped_unknown_address + self.dropped_unknown_ufrag + self.dropped_unauthenticated
    }
}

/// The live counters behind [`SfuStats`]. Gauges go up and down with the objects they
/// count; every change is also published as a `metrics` gauge/counter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    rooms: AtomicU64,
    participants: AtomicU64,
    published_tracks: AtomicU64,
    forwarded_tracks: AtomicU64,
    paused_videos: AtomicU64,
    forwarded_packets: AtomicU64,
    forwarded_bytes: AtomicU64,
    dropped_packets: AtomicU64,
    keyframe_requests: AtomicU64,
    dropped_candidates: AtomicU64,
    dropped_unknown_address: AtomicU64,
    dropped_unknown_ufrag: AtomicU64,
    dropped_unauthenticated: AtomicU64,
    ice_tcp_connections: AtomicU64,
}

/// Why a datagram reached no connection (see the `dropped_*` fields of [`SfuStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DatagramDrop {
    /// From an unbound address, not a STUN request naming a connection.
    UnknownAddress,
    /// A STUN request naming no connection.
    UnknownUfrag,
    /// A STUN request naming a connection, with a wrong or missing integrity.
    Unauthenticated,
}

/// Which gauge to move.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Gauge {
    Rooms,
    Participants,
    PublishedTracks,
    ForwardedTracks,
    /// Subscriber video legs not forwarded: the video is hidden on the subscriber's page or
    /// the subscriber receives audio only (counted at each room's quality evaluation).
    PausedVideos,
    /// Open ICE-TCP connections (clients whose UDP is blocked, and browsers' spare pairs).
    IceTcpConnections,
}

impl Gauge {
    fn name(self) -> &'static str {
        match self {
            Gauge::Rooms => "sfu_rooms",
            Gauge::Participants => "sfu_participants",
            Gauge::PublishedTracks => "sfu_published_tracks",
            Gauge::ForwardedTracks => "sfu_forwarded_tracks",
            Gauge::PausedVideos => "sfu_paused_videos",
            Gauge::IceTcpConnections => "sfu_ice_tcp_connections",
        }
    }
}

impl Counters {
    fn gauge_cell(&self, g: Gauge) -> &AtomicU64 {
        match g {
            Gauge::Rooms => &self.rooms,
            Gauge::Participants => &self.participants,
            Gauge::PublishedTracks => &self.published_tracks,
            Gauge::ForwardedTracks => &self.forwarded_tracks,
            Gauge::PausedVideos => &self.paused_videos,
            Gauge::IceTcpConnections => &self.ice_tcp_connections,
        }
    }

    pub(crate) fn add(&self, g: Gauge, n: u64) {
        if n == 0 {
            return;
        }
        let v = self.gauge_cell(g).fetch_add(n, Ordering::Relaxed) + n;
        metrics::gauge!(g.name()).set(v as f64);
    }

    pub(crate) fn sub(&self, g: Gauge, n: u64) {
        if n == 0 {
            return;
        }
        let cell = self.gauge_cell(g);
        // Saturating: a bookkeeping bug must never wrap a gauge to 2^64.
        let mut cur = cell.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_sub(n);
            match cell.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    metrics::gauge!(g.name()).set(next as f64);
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    pub(crate) fn forwarded(&self, packets: u64, bytes: u64) {
        self.forwarded_packets.fetch_add(packets, Ordering::Relaxed);
        self.forwarded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, packets: u64) {
        self.dropped_packets.fetch_add(packets, Ordering::Relaxed);
        metrics::counter!("sfu_dropped_packets_total").increment(packets);
    }

    pub(crate) fn keyframe_request_sent(&self) {
        self.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sfu_keyframe_requests_total").increment(1);
    }

    /// A subscriber's page showed (or hid) a remote video.
    pub(crate) fn video_view_switched(&self, visible: bool) {
        let to = if visible { "visible" } else { "hidden" };
        metrics::counter!("sfu_video_view_changes_total", "to" => to).increment(1);
    }

    /// A subscriber leg moved to another simulcast layer (or started one) at a keyframe.
    /// An ICE-TCP connection was accepted (`accepted`) or refused because the worker had
    /// its most open already.
    pub(crate) fn ice_tcp_connection(&self, accepted: bool) {
        let outcome = if accepted { "accepted" } else { "refused" };
        metrics::counter!("sfu_ice_tcp_connections_total", "outcome" => outcome).increment(1);
    }

    pub(crate) fn layer_switched(&self) {
        metrics::counter!("sfu_layer_switches_total").increment(1);
    }

    /// The allocator paused a video for lack of downlink bandwidth, or resumed it.
    pub(crate) fn bandwidth_pause_changed(&self, paused: bool) {
        let to = if paused { "paused" } else { "resumed" };
        metrics::counter!("sfu_bandwidth_pauses_total", "to" => to).increment(1);
    }

    /// A subscriber's downlink estimate, sampled at each allocation (bits per second).
    pub(crate) fn downlink_estimate(&self, bps: u64) {
        metrics::histogram!("sfu_downlink_estimate_bps").record(bps as f64);
    }

    /// A publisher was told which of its simulcast layers to encode (dynacast).
    pub(crate) fn publish_layers_sent(&self) {
        metrics::counter!("sfu_dynacast_updates_total").increment(1);
    }

    /// A participant switched audio-only mode on or off.
    pub(crate) fn audio_only_switched(&self, enabled: bool) {
        let to = if enabled { "on" } else { "off" };
        metrics::counter!("sfu_audio_only_switches_total", "to" => to).increment(1);
    }

    /// A publisher's packet arrived again (a retransmission of one already forwarded).
    pub(crate) fn duplicate_dropped(&self) {
        metrics::counter!("sfu_duplicate_packets_dropped_total").increment(1);
    }

    /// A participant's connection verdict changed to `q`.
    pub(crate) fn quality_changed(&self, q: crate::quality::Quality) {
        metrics::counter!("sfu_connection_quality_changes_total", "quality" => q.as_str())
            .increment(1);
    }

    /// A room's list of active speakers changed and was sent to its participants.
    pub(crate) fn speakers_reported(&self) {
        metrics::counter!("sfu_active_speaker_reports_total").increment(1);
    }

    pub(crate) fn candidate_dropped(&self) {
        self.dropped_candidates.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sfu_dropped_candidates_total").increment(1);
    }

    pub(crate) fn datagram_dropped(&self, why: DatagramDrop) {
        let (cell, name) = match why {
            DatagramDrop::UnknownAddress => (&self.dropped_unknown_address, "unknown_address"),
            DatagramDrop::UnknownUfrag => (&self.dropped_unknown_ufrag, "unknown_ufrag"),
            DatagramDrop::Unauthenticated => (&self.dropped_unauthenticated, "unauthenticated"),
        };
        cell.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sfu_dropped_datagrams_total", "reason" => name).increment(1);
    }

    pub(crate) fn snapshot(&self) -> SfuStats {
        SfuStats {
            rooms: self.rooms.load(Ordering::Relaxed),
            participants: self.participants.load(Ordering::Relaxed),
            published_tracks: self.published_tracks.load(Ordering::Relaxed),
            forwarded_tracks: self.forwarded_tracks.load(Ordering::Relaxed),
            paused_videos: self.paused_videos.load(Ordering::Relaxed),
            forwarded_packets: self.forwarded_packets.load(Ordering::Relaxed),
            forwarded_bytes: self.forwarded_bytes.load(Ordering::Relaxed),
            dropped_packets: self.dropped_packets.load(Ordering::Relaxed),
            keyframe_requests: self.keyframe_requests.load(Ordering::Relaxed),
            dropped_candidates: self.dropped_candidates.load(Ordering::Relaxed),
            dropped_unknown_address: self.dropped_unknown_address.load(Ordering::Relaxed),
            dropped_unknown_ufrag: self.dropped_unknown_ufrag.load(Ordering::Relaxed),
            dropped_unauthenticated: self.dropped_unauthenticated.load(Ordering::Relaxed),
        }
    }
}

/// Lets one log line through per interval and counts the ones held back, so a flood of
/// identical events logs a handful of lines. Usable in a `static`; signaling uses it too.
#[derive(Debug)]
pub struct LogThrottle {
    every: std::time::Duration,
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl LogThrottle {
    /// A throttle letting one line through per `every`.
    pub const fn new(every: std::time::Duration) -> Self {
        LogThrottle {
            every,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    /// `Some(suppressed)` when a line may be logged now, with the number of lines held
    /// back since the last one; `None` when this one should be skipped.
    pub fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if state.0.is_none_or(|t| now.duration_since(t) >= self.every) {
            state.0 = Some(now);
            Some(std::mem::take(&mut state.1))
        } else {
            state.1 += 1;
            None
        }
    }
}

/// Cached `metrics` handles for the per-packet counters, so the hot path does no registry
/// lookup (one per subscriber leg).
#[derive(Clone)]
pub(crate) struct PacketMetrics {
    packets: metrics::Counter,
    bytes: metrics::Counter,
}

impl PacketMetrics {
    pub(crate) fn new() -> Self {
        PacketMetrics {
            packets: metrics::counter!("sfu_forwarded_packets_total"),
            bytes: metrics::counter!("sfu_forwarded_bytes_total"),
        }
    }

    pub(crate) fn record(&self, counters: &Counters, bytes: u64) {
        counters.forwarded(1, bytes);
        self.packets.increment(1);
        self.bytes.increment(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_throttle_counts_suppressed() {
        let throttle = LogThrottle::new(std::time::Duration::from_secs(3600));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
    }

    #[test]
    fn gauges_move_and_saturate() {
        let c = Counters::default();
        c.add(Gauge::Participants, 2);
        c.sub(Gauge::Participants, 1);
        assert_eq!(c.snapshot().participants, 1);
        c.sub(Gauge::Participants, 5);
        assert_eq!(c.snapshot().participants, 0);
        c.forwarded(3, 300);
        c.candidate_dropped();
        assert_eq!(c.snapshot().dropped_candidates, 1);
        c.dropped(2);
        let s = c.snapshot();
        assert_eq!(
            (s.forwarded_packets, s.forwarded_bytes, s.dropped_packets),
            (3, 300, 2)
        );
    }
}
