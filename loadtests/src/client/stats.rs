//! What goes into a synthetic media packet and what a receiver counts about it.
//!
//! The tool owns both ends of every stream, so each payload carries a per-track index and
//! the send time: the receiver can then count unique packets (loss, duplicates) and
//! one-way latency without any side channel. Everything here is allocation-free per
//! packet: fixed-size bitmaps and a fixed-bucket histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::protocol::Kind;

/// Marks a payload written by this tool; followed by the index (u32) and the send time
/// (u64 µs since the Unix epoch), big-endian.
pub const MAGIC: [u8; 4] = *b"TRLD";

/// Bytes of the tag ([`MAGIC`], index, send time).
pub const TAG_LEN: usize = 16;

/// First byte of every synthetic VP8 payload: a VP8 payload descriptor with the S bit
/// (start of partition) set and partition index 0, so the packet is well-formed VP8 RTP.
pub const VP8_DESCRIPTOR: u8 = 0x10;

/// Where the tag starts in a payload of `kind`: after the VP8 payload descriptor for
/// video, at the start for audio.
pub fn tag_offset(kind: Kind) -> usize {
    match kind {
        Kind::Video => 1,
        Kind::Audio => 0,
    }
}

/// Microseconds since the Unix epoch: the clock both ends share (same machine).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Fills `buf` (at least `tag_offset + TAG_LEN` long) with a tagged payload.
pub fn write_tag(buf: &mut [u8], kind: Kind, index: u32, sent_us: u64) {
    let o = tag_offset(kind);
    if kind == Kind::Video {
        buf[0] = VP8_DESCRIPTOR;
    }
    buf[o..o + 4].copy_from_slice(&MAGIC);
    buf[o + 4..o + 8].copy_from_slice(&index.to_be_bytes());
    buf[o + 8..o + 16].copy_from_slice(&sent_us.to_be_bytes());
}

/// Appends a tag to a real media payload (VP8 or Opus from a file): the payload keeps
/// its own bytes (and VP8 descriptor) first, the tag is its last [`TAG_LEN`] bytes.
pub fn append_tag(buf: &mut Vec<u8>, index: u32, sent_us: u64) {
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&index.to_be_bytes());
    buf.extend_from_slice(&sent_us.to_be_bytes());
}

/// Writes a tag into the last [`TAG_LEN`] bytes of `buf` (a real media payload copied
/// into a buffer [`TAG_LEN`] bytes longer than itself), in place: the same bytes as
/// [`append_tag`] without growing a vector.
pub fn write_tag_at_end(buf: &mut [u8], index: u32, sent_us: u64) {
    let Some(o) = buf.len().checked_sub(TAG_LEN) else {
        return;
    };
    buf[o..o + 4].copy_from_slice(&MAGIC);
    buf[o + 4..o + 8].copy_from_slice(&index.to_be_bytes());
    buf[o + 8..o + 16].copy_from_slice(&sent_us.to_be_bytes());
}

fn parse_tag(tag: &[u8]) -> Option<(u32, u64)> {
    if tag.len() != TAG_LEN || tag[..4] != MAGIC {
        return None;
    }
    let index = u32::from_be_bytes(tag[4..8].try_into().ok()?);
    let sent = u64::from_be_bytes(tag[8..16].try_into().ok()?);
    Some((index, sent))
}

/// Reads the tag of a payload of `kind`: `(index, send time in µs)`, or `None` for a
/// payload this tool did not write. Looks at the synthetic position ([`write_tag`])
/// first, then at the end of the payload ([`append_tag`]).
pub fn read_tag(payload: &[u8], kind: Kind) -> Option<(u32, u64)> {
    let o = tag_offset(kind);
    if let Some(t) = payload.get(o..o + TAG_LEN).and_then(parse_tag) {
        return Some(t);
    }
    let n = payload.len();
    if n < TAG_LEN + o {
        return None;
    }
    parse_tag(&payload[n - TAG_LEN..])
}

static WINDOW_START_US: AtomicU64 = AtomicU64::new(u64::MAX);
static WINDOW_END_US: AtomicU64 = AtomicU64::new(u64::MAX);

/// Sets the process-wide measurement window `[start_us, end_us)` (send times, µs since
/// the Unix epoch). Senders count the packets they send inside it
/// ([`SentStats::window_packets`]); receivers count the unique packets *sent* inside it
/// and their latency ([`RemoteTrackStats::window_unique`], [`RemoteTrackStats::window_latency`]),
/// so delivery = received / sent is exact however late packets arrive.
///
/// Each new window (`start_us != u64::MAX`) starts a new epoch ([`measure_epoch`]): the
/// window counters of earlier windows are not carried over.
pub fn set_measure_window(start_us: u64, end_us: u64) {
    WINDOW_END_US.store(end_us, Ordering::Relaxed);
    WINDOW_START_US.store(start_us, Ordering::Relaxed);
    if start_us != u64::MAX {
        WINDOW_EPOCH.fetch_add(1, Ordering::Relaxed);
    }
}

static WINDOW_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Number of the current measurement window: window counters tagged with another
/// epoch belong to an earlier window and count as zero.
pub fn measure_epoch() -> u64 {
    WINDOW_EPOCH.load(Ordering::Relaxed)
}

/// Whether a packet sent at `sent_us` lies inside the measurement window.
pub fn in_measure_window(sent_us: u64) -> bool {
    sent_us >= WINDOW_START_US.load(Ordering::Relaxed)
        && sent_us < WINDOW_END_US.load(Ordering::Relaxed)
}

/// Number of recent indices [`SeqWindow`] remembers.
pub const SEQ_WINDOW: u32 = 1024;

/// Remembers which of the last [`SEQ_WINDOW`] indices arrived, to tell new packets from
/// duplicates (NACK retransmissions, replays) without a growing set.
#[derive(Debug, Clone, Default)]
pub struct SeqWindow {
    highest: Option<u32>,
    /// Bit `age` set = index `highest - age` arrived.
    bits: [u64; (SEQ_WINDOW / 64) as usize],
}

impl SeqWindow {
    /// Records `index`; true if it was not seen before (or is older than the window).
    pub fn insert(&mut self, index: u32) -> bool {
        let Some(highest) = self.highest else {
            self.highest = Some(index);
            self.bits[0] = 1;
            return true;
        };
        if index > highest {
            self.shift(index - highest);
            self.highest = Some(index);
            self.bits[0] |= 1;
            return true;
        }
        let age = highest - index;
        if age >= SEQ_WINDOW {
            return true;
        }
        let (w, b) = ((age / 64) as usize, age % 64);
        let seen = self.bits[w] & (1 << b) != 0;
        self.bits[w] |= 1 << b;
        !seen
    }

    /// Highest index seen.
    pub fn highest(&self) -> Option<u32> {
        self.highest
    }

    fn shift(&mut self, d: u32) {
        let n = self.bits.len();
        if d >= SEQ_WINDOW {
            self.bits = [0; (SEQ_WINDOW / 64) as usize];
            return;
        }
        let words = (d / 64) as usize;
        let bits = d % 64;
        for w in (0..n).rev() {
            let mut v = 0;
            if w >= words {
                let src = w - words;
                v = self.bits[src] << bits;
                if bits > 0 && src >= 1 {
                    v |= self.bits[src - 1] >> (64 - bits);
                }
            }
            self.bits[w] = v;
        }
    }
}

const FINE_BUCKETS: usize = 100; // [0, 10 ms) by 100 µs
const COARSE_BUCKETS: usize = 99; // [10 ms, 1 s) by 10 ms
const BUCKETS: usize = FINE_BUCKETS + COARSE_BUCKETS + 1; // + [1 s, ∞)

/// One-way latency samples in fixed buckets (100 µs below 10 ms, 10 ms below 1 s, one
/// overflow bucket): constant memory and no allocation per sample, precise enough to
/// report percentiles of a loopback or LAN test.
#[derive(Clone)]
pub struct LatencyHistogram {
    buckets: [u64; BUCKETS],
    count: u64,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
}

impl std::fmt::Debug for LatencyHistogram {
    /// A summary (count, min, p50, p99, max in µs) rather than 200 buckets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count)
            .field("min_us", &self.min_us())
            .field("p50_us", &self.quantile_us(0.5))
            .field("p99_us", &self.quantile_us(0.99))
            .field("max_us", &self.max_us())
            .finish()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: [0; BUCKETS],
            count: 0,
            sum_us: 0,
            min_us: u64::MAX,
            max_us: 0,
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us < 10_000 {
        (us / 100) as usize
    } else if us < 1_000_000 {
        FINE_BUCKETS + ((us - 10_000) / 10_000) as usize
    } else {
        BUCKETS - 1
    }
}

fn bucket_upper_us(i: usize) -> u64 {
    if i < FINE_BUCKETS {
        (i as u64 + 1) * 100
    } else if i < FINE_BUCKETS + COARSE_BUCKETS {
        10_000 + (i - FINE_BUCKETS + 1) as u64 * 10_000
    } else {
        u64::MAX
    }
}

impl LatencyHistogram {
    /// Adds one sample.
    pub fn record(&mut self, us: u64) {
        self.buckets[bucket_of(us)] += 1;
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
    }

    /// Adds every sample of `other` (to aggregate tracks or participants).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest sample (µs), if any.
    pub fn min_us(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min_us)
    }

    /// Largest sample (µs), if any.
    pub fn max_us(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max_us)
    }

    /// Mean (µs), if any.
    pub fn mean_us(&self) -> Option<u64> {
        (self.count > 0).then(|| self.sum_us / self.count)
    }

    /// Upper bound (µs) of the bucket holding quantile `q` (0.0–1.0), capped by the
    /// largest sample; `None` without samples.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_upper_us(i).min(self.max_us));
            }
        }
        Some(self.max_us)
    }
}

/// What one remote track delivered so far (a snapshot).
#[derive(Debug, Clone)]
pub struct RemoteTrackStats {
    /// Track id: the `track_id` announced in `track_published`.
    pub track_id: String,
    /// MediaStream id: the publishing participant's id.
    pub stream_id: String,
    /// Audio or video.
    pub kind: Kind,
    /// SSRC of the last packet (0 before any).
    pub ssrc: u32,
    /// RTP packets received, duplicates included.
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Packets carrying this tool's tag.
    pub tagged: u64,
    /// Tagged packets whose index had not been seen before.
    pub unique: u64,
    /// Tagged packets whose index had been seen before.
    pub duplicates: u64,
    /// Lowest and highest tag index seen.
    pub index_range: Option<(u32, u32)>,
    /// When the first packet arrived.
    pub first_packet_at: Option<Instant>,
    /// When the last packet arrived.
    pub last_packet_at: Option<Instant>,
    /// One-way latency of the tagged packets (unique ones only).
    pub latency: LatencyHistogram,
    /// Unique tagged packets sent inside the measurement window ([`set_measure_window`]).
    pub window_unique: u64,
    /// One-way latency of those packets.
    pub window_latency: LatencyHistogram,
    /// Measurement window ([`measure_epoch`]) the two fields above belong to.
    pub window_epoch: u64,
    /// True once the track ended: the server announced `track_unpublished` for it, or
    /// webrtc ended it (connection closed).
    pub ended: bool,
}

impl RemoteTrackStats {
    /// Indices inside [`RemoteTrackStats::index_range`] that never arrived: losses
    /// since the first tagged packet received (packets sent before that are not counted).
    pub fn missing(&self) -> u64 {
        self.index_range.map_or(0, |(lo, hi)| {
            (u64::from(hi - lo) + 1).saturating_sub(self.unique)
        })
    }
}

/// The per-track receive state the reader task updates for every packet.
#[derive(Debug, Clone)]
pub(crate) struct RemoteTrackState {
    pub(crate) stats: RemoteTrackStats,
    pub(crate) window: SeqWindow,
}

impl RemoteTrackState {
    pub(crate) fn new(track_id: String, stream_id: String, kind: Kind) -> Self {
        RemoteTrackState {
            stats: RemoteTrackStats {
                track_id,
                stream_id,
                kind,
                ssrc: 0,
                packets: 0,
                bytes: 0,
                tagged: 0,
                unique: 0,
                duplicates: 0,
                index_range: None,
                first_packet_at: None,
                last_packet_at: None,
                latency: LatencyHistogram::default(),
                window_unique: 0,
                window_latency: LatencyHistogram::default(),
                window_epoch: 0,
                ended: false,
            },
            window: SeqWindow::default(),
        }
    }

    /// Accounts one received packet.
    pub(crate) fn on_packet(&mut self, ssrc: u32, payload: &[u8], now: Instant, now_us: u64) {
        let s = &mut self.stats;
        s.ssrc = ssrc;
        s.packets += 1;
        s.bytes += payload.len() as u64;
        s.first_packet_at.get_or_insert(now);
        s.last_packet_at = Some(now);
        let Some((index, sent_us)) = read_tag(payload, s.kind) else {
            return;
        };
        s.tagged += 1;
        if self.window.insert(index) {
            s.unique += 1;
            let latency = now_us.saturating_sub(sent_us);
            s.latency.record(latency);
            if in_measure_window(sent_us) {
                let epoch = measure_epoch();
                if s.window_epoch != epoch {
                    s.window_epoch = epoch;
                    s.window_unique = 0;
                    s.window_latency = LatencyHistogram::default();
                }
                s.window_unique += 1;
                s.window_latency.record(latency);
            }
            s.index_range = Some(match s.index_range {
                None => (index, index),
                Some((lo, hi)) => (lo.min(index), hi.max(index)),
            });
        } else {
            s.duplicates += 1;
        }
    }
}

/// What one local track sent so far (a snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentStats {
    /// Our track id (the server keeps it: receivers see the same `track_id`).
    pub track_id: String,
    /// Audio or video.
    pub kind: Kind,
    /// Packets handed to the peer connection without error (the driver may still drop
    /// some: webrtc 0.21 reports no error for those, test delivery instead).
    pub packets: u64,
    /// Payload bytes of those packets.
    pub bytes: u64,
    /// Writes that failed (e.g. before the track was bound to the transport).
    pub errors: u64,
    /// Next tag index to be written (= tagged packets attempted).
    pub next_index: u32,
    /// Packets sent inside the current measurement window ([`set_measure_window`]).
    pub window_packets: u64,
}

impl RemoteTrackStats {
    /// Unique packets of the current measurement window (0 if the counters belong to
    /// an earlier one).
    pub fn current_window_unique(&self) -> u64 {
        if self.window_epoch == measure_epoch() {
            self.window_unique
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_round_trip() {
        for kind in [Kind::Audio, Kind::Video] {
            let mut buf = vec![0u8; 40];
            write_tag(&mut buf, kind, 7, 123_456);
            assert_eq!(read_tag(&buf, kind), Some((7, 123_456)));
            if kind == Kind::Video {
                assert_eq!(buf[0], VP8_DESCRIPTOR);
            }
        }
        assert_eq!(read_tag(&[0u8; 40], Kind::Audio), None);
        assert_eq!(read_tag(&[0u8; 3], Kind::Video), None);
        let mut real = vec![0x10, 0x9d, 0x01, 0x2a, 5, 6, 7];
        append_tag(&mut real, 9, 77);
        assert_eq!(read_tag(&real, Kind::Video), Some((9, 77)));
        assert_eq!(read_tag(&real, Kind::Audio), Some((9, 77)));
    }

    #[test]
    fn tag_at_end_matches_append() {
        let body = [0x10u8, 0x9d, 0x01, 0x2a, 5];
        let mut appended = body.to_vec();
        append_tag(&mut appended, 41, 987_654);
        let mut in_place = vec![0u8; body.len() + TAG_LEN];
        in_place[..body.len()].copy_from_slice(&body);
        write_tag_at_end(&mut in_place, 41, 987_654);
        assert_eq!(in_place, appended);
        assert_eq!(read_tag(&in_place, Kind::Video), Some((41, 987_654)));
        let mut short = [1u8; 3];
        write_tag_at_end(&mut short, 1, 1);
        assert_eq!(short, [1, 1, 1], "too short: untouched");
    }

    #[test]
    fn window_tells_duplicates() {
        let mut w = SeqWindow::default();
        assert!(w.insert(10));
        assert!(!w.insert(10));
        assert!(w.insert(12));
        assert!(w.insert(11));
        assert!(!w.insert(11));
        assert!(w.insert(200));
        assert!(!w.insert(12), "still inside the window after a shift");
        assert!(w.insert(13));
        assert!(w.insert(200 + 70));
        assert!(!w.insert(200));
        assert!(!w.insert(13));
        assert!(w.insert(5000));
        assert!(w.insert(13), "older than the window counts as new");
        assert_eq!(w.highest(), Some(5000));
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile_us(0.5), None);
        for us in [50, 150, 250, 20_000, 2_000_000] {
            h.record(us);
        }
        assert_eq!(h.count(), 5);
        assert_eq!(h.min_us(), Some(50));
        assert_eq!(h.max_us(), Some(2_000_000));
        assert_eq!(h.quantile_us(0.2), Some(100));
        assert_eq!(h.quantile_us(0.6), Some(300));
        assert_eq!(h.quantile_us(0.8), Some(30_000));
        assert_eq!(h.quantile_us(1.0), Some(2_000_000));
        let mut g = LatencyHistogram::default();
        g.merge(&h);
        assert_eq!(g.count(), 5);
    }

    #[test]
    fn window_counters_restart_with_each_window() {
        let mut st = RemoteTrackState::new("w".into(), "p".into(), Kind::Audio);
        let mut buf = vec![0u8; 40];
        let now = Instant::now();
        set_measure_window(1_000, 2_000);
        write_tag(&mut buf, Kind::Audio, 1, 1_500);
        st.on_packet(1, &buf, now, 1_600);
        write_tag(&mut buf, Kind::Audio, 2, 2_500); // after the window
        st.on_packet(1, &buf, now, 2_600);
        assert_eq!(st.stats.current_window_unique(), 1);
        set_measure_window(3_000, 4_000);
        assert_eq!(
            st.stats.current_window_unique(),
            0,
            "earlier window not carried over"
        );
        write_tag(&mut buf, Kind::Audio, 3, 3_500);
        st.on_packet(1, &buf, now, 3_600);
        assert_eq!(st.stats.current_window_unique(), 1);
        assert_eq!(st.stats.window_latency.count(), 1);
        set_measure_window(u64::MAX, u64::MAX);
        assert_eq!(
            st.stats.current_window_unique(),
            1,
            "closing keeps the last window"
        );
    }

    #[test]
    fn track_state_counts() {
        let mut st = RemoteTrackState::new("t".into(), "p".into(), Kind::Video);
        let mut buf = vec![0u8; 100];
        let now = Instant::now();
        write_tag(&mut buf, Kind::Video, 1, 1_000);
        st.on_packet(9, &buf, now, 1_500);
        st.on_packet(9, &buf, now, 1_600);
        write_tag(&mut buf, Kind::Video, 2, 2_000);
        st.on_packet(9, &buf, now, 2_300);
        st.on_packet(9, &[1, 2, 3], now, 0);
        let s = &st.stats;
        assert_eq!((s.packets, s.tagged, s.unique, s.duplicates), (4, 3, 2, 1));
        assert_eq!(s.index_range, Some((1, 2)));
        assert_eq!(s.latency.min_us(), Some(300));
        assert_eq!(s.latency.max_us(), Some(500));
    }
}
