//! Pure forwarding decisions: no sockets, no tasks, no webrtc objects.
//!
//! - [`LegMapping`]: how a publisher's payload types and header extension ids translate
//!   onto one subscriber leg (webrtc 0.21 silently drops packets whose SSRC, payload type
//!   or extension id is not negotiated on the leg, so every one of them is rewritten).
//! - [`LegRewriter`]: per-leg SSRC / sequence number / timestamp rewriting that stays
//!   continuous when the source stream changes underneath the leg.
//! - [`SourceSelector`]: which SSRC of a remote track is forwarded (one layer).
//! - [`KeyframeThrottle`]: at most one PLI per interval per published track.
//! - [`FirstArrivals`]: each packet of a track is forwarded once, however often the
//!   publisher retransmits it.
//! - [`unique_track_id`]: track ids announced to clients are unique per room.

use std::time::{Duration, Instant};

use rtc::rtp::header::{Extension, EXTENSION_PROFILE_ONE_BYTE, EXTENSION_PROFILE_TWO_BYTE};
use rtc::rtp::packet::Packet;

/// Header extensions worth carrying from a publisher to a subscriber. Everything else is
/// stripped: transport-wide sequence numbers, abs-send-time, mid and rid describe the
/// publisher's transport, not the media, and would be wrong (or rejected) on another leg.
pub const FORWARDED_EXTENSION_URIS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "urn:3gpp:video-orientation",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
];

/// One codec as negotiated on a connection: payload type ↔ MIME type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// RTP payload type on that connection.
    pub payload_type: u8,
    /// MIME type, e.g. `video/VP8` (compared case-insensitively).
    pub mime_type: String,
    /// RTP clock rate.
    pub clock_rate: u32,
}

/// One header extension as negotiated on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiatedExtension {
    /// Extension id on that connection.
    pub id: u8,
    /// Extension URI.
    pub uri: String,
}

/// What was negotiated on one side (the publisher's receiver, or one subscriber sender).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NegotiatedParams {
    /// Codecs.
    pub codecs: Vec<NegotiatedCodec>,
    /// Header extensions.
    pub extensions: Vec<NegotiatedExtension>,
}

/// Whether a MIME type carries media itself (as opposed to retransmission / FEC / RED
/// wrappers whose payload refers to the publisher's own sequence numbers).
pub fn is_primary_media(mime: &str) -> bool {
    let sub = mime.rsplit('/').next().unwrap_or(mime).to_ascii_lowercase();
    !matches!(
        sub.as_str(),
        "rtx" | "red" | "ulpfec" | "flexfec" | "flexfec-03" | "telephone-event"
    )
}

/// Translation of one publisher track onto one subscriber leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegMapping {
    /// SSRC of the leg (chosen by the server when the leg was created).
    pub ssrc: u32,
    /// Source payload type → leg payload type, for primary media codecs both sides share.
    pt_map: Vec<(u8, u8, u32)>,
    /// Source extension id → leg extension id, for forwarded URIs both sides negotiated.
    ext_map: Vec<(u8, u8)>,
}

impl LegMapping {
    /// Matches the publisher side against what one subscriber leg negotiated.
    pub fn new(ssrc: u32, source: &NegotiatedParams, leg: &NegotiatedParams) -> Self {
        let mut pt_map = Vec::new();
        for src in source
            .codecs
            .iter()
            .filter(|c| is_primary_media(&c.mime_type))
        {
            if let Some(dst) = leg.codecs.iter().find(|c| {
                c.mime_type.eq_ignore_ascii_case(&src.mime_type) && c.clock_rate == src.clock_rate
            }) {
                pt_map.push((src.payload_type, dst.payload_type, src.clock_rate));
            }
        }
        let mut ext_map = Vec::new();
        for src in &source.extensions {
            if !FORWARDED_EXTENSION_URIS.contains(&src.uri.as_str()) {
                continue;
            }
            if let Some(dst) = leg.extensions.iter().find(|e| e.uri == src.uri) {
                ext_map.push((src.id, dst.id));
            }
        }
        LegMapping {
            ssrc,
            pt_map,
            ext_map,
        }
    }

    /// Leg payload type and clock rate for a source payload type, or `None` (not forwarded).
    pub fn map_payload_type(&self, pt: u8) -> Option<(u8, u32)> {
        self.pt_map
            .iter()
            .find(|(src, _, _)| *src == pt)
            .map(|(_, dst, clock)| (*dst, *clock))
    }

    /// Leg extension id for a source extension id, or `None` (stripped).
    pub fn map_extension(&self, id: u8) -> Option<u8> {
        self.ext_map
            .iter()
            .find(|(src, _)| *src == id)
            .map(|(_, dst)| *dst)
    }

    /// Whether anything at all can be forwarded on this leg.
    pub fn is_usable(&self) -> bool {
        !self.pt_map.is_empty()
    }
}

/// `a` is newer than `b` in RTP sequence space (RFC 3550 wrap-around).
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Packets after a change of source during which late packets from before it are
/// refused (a reordering window; longer, and a stream that has run half the sequence
/// space would look older than its own start).
const SWITCH_GUARD: u16 = 512;

/// Why [`LegRewriter::rewrite`] did not produce a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Its payload type is not negotiated on the leg.
    Unmapped,
    /// It is older than the first packet forwarded of its source (a late packet of a layer
    /// the leg just switched to): its sequence number would collide with ones already sent.
    BeforeSwitch,
}

#[derive(Clone, Copy, Debug)]
struct RewriteState {
    src_ssrc: u32,
    /// The first sequence number forwarded of this source.
    first_src_seq: u16,
    /// Packets of this source still to come during which one older than `first_src_seq`
    /// is refused (after that, sequence numbers have moved on and wrap around).
    guard: u16,
    seq_offset: u16,
    ts_offset: u32,
    last_out_seq: u16,
    last_out_ts: u32,
    last_out_at: Instant,
}

/// Per-leg header rewriting: SSRC, payload type, extensions, and sequence numbers and
/// timestamps that continue across a change of source stream (a publisher restarting its
/// encoder or changing SSRC), so the subscriber's jitter buffer never sees a jump back.
#[derive(Debug, Default)]
pub struct LegRewriter {
    state: Option<RewriteState>,
}

impl LegRewriter {
    /// A rewriter that has forwarded nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forces the next packet to be treated as the start of a new source stream.
    pub fn source_changed(&mut self) {
        if let Some(s) = &mut self.state {
            s.src_ssrc = s.src_ssrc.wrapping_add(1) ^ 0x5a5a_5a5a;
        }
    }

    /// Rewrites `packet` for the leg, or says why it is not forwarded.
    pub fn rewrite(
        &mut self,
        mut packet: Packet,
        map: &LegMapping,
        now: Instant,
    ) -> Result<Packet, Skip> {
        let (pt, clock_rate) = map
            .map_payload_type(packet.header.payload_type)
            .ok_or(Skip::Unmapped)?;
        let src_ssrc = packet.header.ssrc;
        let src_seq = packet.header.sequence_number;
        let src_ts = packet.header.timestamp;

        let state = match self.state {
            Some(mut s) if s.src_ssrc == src_ssrc => {
                if s.guard > 0 {
                    if seq_newer(s.first_src_seq, src_seq) {
                        return Err(Skip::BeforeSwitch);
                    }
                    s.guard -= 1;
                }
                s
            }
            Some(prev) => {
                // New source: continue right after what the subscriber last saw, and advance
                // the timestamp by the wall time that passed (at least one tick).
                let elapsed = now.saturating_duration_since(prev.last_out_at);
                let ticks = (elapsed.as_secs_f64() * f64::from(clock_rate)).max(1.0) as u64;
                let out_seq = prev.last_out_seq.wrapping_add(1);
                let out_ts = prev.last_out_ts.wrapping_add(ticks as u32);
                RewriteState {
                    src_ssrc,
                    first_src_seq: src_seq,
                    guard: SWITCH_GUARD,
                    seq_offset: out_seq.wrapping_sub(src_seq),
                    ts_offset: out_ts.wrapping_sub(src_ts),
                    last_out_seq: prev.last_out_seq,
                    last_out_ts: prev.last_out_ts,
                    last_out_at: prev.last_out_at,
                }
            }
            None => RewriteState {
                src_ssrc,
                first_src_seq: src_seq,
                guard: SWITCH_GUARD,
                seq_offset: 0,
                ts_offset: 0,
                last_out_seq: src_seq.wrapping_sub(1),
                last_out_ts: src_ts,
                last_out_at: now,
            },
        };
        let out_seq = src_seq.wrapping_add(state.seq_offset);
        let out_ts = src_ts.wrapping_add(state.ts_offset);
        let mut next = state;
        if seq_newer(out_seq, state.last_out_seq) {
            next.last_out_seq = out_seq;
            next.last_out_ts = out_ts;
            next.last_out_at = now;
        }
        self.state = Some(next);

        let h = &mut packet.header;
        h.ssrc = map.ssrc;
        h.payload_type = pt;
        h.sequence_number = out_seq;
        h.timestamp = out_ts;
        remap_extensions(h, map);
        Ok(packet)
    }
}

fn remap_extensions(h: &mut rtc::rtp::header::Header, map: &LegMapping) {
    if !h.extension || h.extensions.is_empty() {
        h.extension = false;
        h.extensions.clear();
        h.extensions_padding = 0;
        return;
    }
    // In place: no second vector per packet.
    h.extensions
        .retain_mut(|ext: &mut Extension| match map.map_extension(ext.id) {
            Some(id) => {
                ext.id = id;
                true
            }
            None => false,
        });
    let kept = &h.extensions;
    h.extensions_padding = 0;
    if kept.is_empty() {
        h.extension = false;
        h.extension_profile = 0;
    } else {
        let needs_two_byte = kept
            .iter()
            .any(|e| e.id > 14 || e.payload.is_empty() || e.payload.len() > 16);
        h.extension_profile = if needs_two_byte {
            EXTENSION_PROFILE_TWO_BYTE
        } else {
            EXTENSION_PROFILE_ONE_BYTE
        };
        h.extension = true;
    }
}

/// Picks the one SSRC of a remote track that is forwarded. Sticks to the current SSRC
/// (so simulcast layers or RTX streams arriving on the same track never interleave) and
/// moves to another only after the current one has been silent for `switch_after`.
#[derive(Debug)]
pub struct SourceSelector {
    current: Option<(u32, Instant)>,
    switch_after: Duration,
}

impl SourceSelector {
    /// Selector that switches after `switch_after` of silence.
    pub fn new(switch_after: Duration) -> Self {
        SourceSelector {
            current: None,
            switch_after,
        }
    }

    /// Whether to forward a packet of `ssrc` arriving at `now`.
    pub fn accept(&mut self, ssrc: u32, now: Instant) -> bool {
        match &mut self.current {
            Some((cur, last)) if *cur == ssrc => {
                *last = now;
                true
            }
            Some((_, last)) if now.saturating_duration_since(*last) < self.switch_after => false,
            _ => {
                self.current = Some((ssrc, now));
                true
            }
        }
    }

    /// The SSRC currently forwarded, if any.
    pub fn current(&self) -> Option<u32> {
        self.current.map(|(s, _)| s)
    }
}

/// At most one keyframe request per `min_interval` towards a publisher; requests inside
/// the window are coalesced into one sent when the window ends (none is lost).
#[derive(Debug)]
pub struct KeyframeThrottle {
    min_interval: Duration,
    last_sent: Option<Instant>,
}

impl KeyframeThrottle {
    /// Throttle with the given minimum interval.
    pub fn new(min_interval: Duration) -> Self {
        KeyframeThrottle {
            min_interval,
            last_sent: None,
        }
    }

    /// `Ok(())`: send now (recorded as sent). `Err(at)`: wait until `at`, then ask again.
    pub fn poll(&mut self, now: Instant) -> Result<(), Instant> {
        match self.last_sent {
            Some(last) if now < last + self.min_interval => Err(last + self.min_interval),
            _ => {
                self.last_sent = Some(now);
                Ok(())
            }
        }
    }
}

/// The track id to announce for a publisher's track: its own id if the room does not use
/// it yet, otherwise `"{publisher}-{id}"` (plus a counter if needed). Track ids route RTP
/// and RTCP inside a webrtc 0.21 peer connection, so they must be unique per subscriber
/// connection, i.e. per room.
pub fn unique_track_id(wanted: &str, publisher: &str, taken: impl Fn(&str) -> bool) -> String {
    let base = if wanted.is_empty() {
        format!("{publisher}-track")
    } else {
        wanted.to_owned()
    };
    if !taken(&base) {
        return base;
    }
    let prefixed = format!("{publisher}-{base}");
    if !taken(&prefixed) {
        return prefixed;
    }
    (2u32..)
        .map(|n| format!("{prefixed}-{n}"))
        .find(|c| !taken(c))
        .expect("unbounded iterator")
}

/// Sequence numbers remembered by [`FirstArrivals`] (about 10 s of audio, 2 s of video).
const FIRST_ARRIVAL_WINDOW: u16 = 512;

/// Which packets of the forwarded stream have been seen: a publisher answers every NACK
/// of the server's with a retransmission, and when the first copy arrives late (or the
/// retransmission is itself repeated) a second copy must not go out to every subscriber.
#[derive(Debug, Default)]
pub struct FirstArrivals {
    /// SSRC the window belongs to (a new one starts afresh).
    ssrc: Option<u32>,
    highest: u16,
    seen: Vec<u64>,
}

impl FirstArrivals {
    /// Whether `seq` of `ssrc` arrives for the first time (and remembers it). A packet
    /// older than the window is treated as seen: nobody can use it any more.
    pub fn first_time(&mut self, ssrc: u32, seq: u16) -> bool {
        let words = usize::from(FIRST_ARRIVAL_WINDOW / 64);
        if self.ssrc != Some(ssrc) {
            self.ssrc = Some(ssrc);
            self.highest = seq;
            self.seen = vec![0; words];
            self.set(seq);
            return true;
        }
        let ahead = seq.wrapping_sub(self.highest);
        if ahead != 0 && ahead < 0x8000 {
            // Newer: forget the slots it moves past.
            if ahead >= FIRST_ARRIVAL_WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for d in 1..=ahead {
                    self.clear(self.highest.wrapping_add(d));
                }
            }
            self.highest = seq;
            self.set(seq);
            return true;
        }
        if self.highest.wrapping_sub(seq) >= FIRST_ARRIVAL_WINDOW {
            return false;
        }
        if self.is_set(seq) {
            return false;
        }
        self.set(seq);
        true
    }

    fn slot(seq: u16) -> (usize, u64) {
        let i = usize::from(seq % FIRST_ARRIVAL_WINDOW);
        (i / 64, 1u64 << (i % 64))
    }

    fn set(&mut self, seq: u16) {
        let (w, bit) = Self::slot(seq);
        self.seen[w] |= bit;
    }

    fn clear(&mut self, seq: u16) {
        let (w, bit) = Self::slot(seq);
        self.seen[w] &= !bit;
    }

    fn is_set(&self, seq: u16) -> bool {
        let (w, bit) = Self::slot(seq);
        self.seen[w] & bit != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtc::rtp::header::Header;

    fn codec(pt: u8, mime: &str, clock: u32) -> NegotiatedCodec {
        NegotiatedCodec {
            payload_type: pt,
            mime_type: mime.to_owned(),
            clock_rate: clock,
        }
    }

    fn ext(id: u8, uri: &str) -> NegotiatedExtension {
        NegotiatedExtension {
            id,
            uri: uri.to_owned(),
        }
    }

    fn source() -> NegotiatedParams {
        NegotiatedParams {
            codecs: vec![
                codec(120, "video/VP8", 90000),
                codec(121, "video/rtx", 90000),
                codec(109, "audio/opus", 48000),
            ],
            extensions: vec![
                ext(
                    3,
                    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
                ),
                ext(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
                ext(4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            ],
        }
    }

    fn leg() -> NegotiatedParams {
        NegotiatedParams {
            codecs: vec![
                codec(96, "video/vp8", 90000),
                codec(97, "video/rtx", 90000),
                codec(111, "audio/opus", 48000),
            ],
            extensions: vec![
                ext(5, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
                ext(1, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            ],
        }
    }

    fn pkt(ssrc: u32, pt: u8, seq: u16, ts: u32, exts: &[(u8, &[u8])]) -> Packet {
        Packet {
            header: Header {
                version: 2,
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                extension: !exts.is_empty(),
                extension_profile: if exts.is_empty() {
                    0
                } else {
                    EXTENSION_PROFILE_ONE_BYTE
                },
                extensions: exts
                    .iter()
                    .map(|(id, p)| Extension {
                        id: *id,
                        payload: Bytes::copy_from_slice(p),
                    })
                    .collect(),
                ..Default::default()
            },
            payload: Bytes::from_static(b"payload"),
        }
    }

    #[test]
    fn payload_types_map_by_mime_and_skip_rtx() {
        let m = LegMapping::new(42, &source(), &leg());
        assert_eq!(m.map_payload_type(120), Some((96, 90000)));
        assert_eq!(m.map_payload_type(109), Some((111, 48000)));
        assert_eq!(m.map_payload_type(121), None, "rtx is never forwarded raw");
        assert_eq!(m.map_payload_type(50), None);
        assert!(m.is_usable());
        assert!(!LegMapping::new(1, &source(), &NegotiatedParams::default()).is_usable());
    }

    #[test]
    fn extensions_are_remapped_or_stripped() {
        let m = LegMapping::new(42, &source(), &leg());
        assert_eq!(m.map_extension(1), Some(5), "audio level remapped");
        assert_eq!(m.map_extension(3), None, "transport-cc stripped");
        assert_eq!(m.map_extension(4), None, "publisher mid stripped");

        let mut rw = LegRewriter::new();
        let now = Instant::now();
        let out = rw
            .rewrite(
                pkt(7, 109, 10, 1000, &[(1, &[0x90]), (3, &[0, 1])]),
                &m,
                now,
            )
            .unwrap();
        assert_eq!(out.header.extensions.len(), 1);
        assert_eq!(out.header.extensions[0].id, 5);
        assert!(out.header.extension);

        let out = rw
            .rewrite(pkt(7, 109, 11, 1960, &[(3, &[0, 2]), (4, b"0")]), &m, now)
            .unwrap();
        assert!(!out.header.extension, "all stripped: no extension block");
        assert!(out.header.extensions.is_empty());
    }

    #[test]
    fn rewrites_ssrc_pt_and_keeps_numbering() {
        let m = LegMapping::new(0xabcd, &source(), &leg());
        let mut rw = LegRewriter::new();
        let t0 = Instant::now();
        let a = rw.rewrite(pkt(7, 120, 65535, 100, &[]), &m, t0).unwrap();
        let b = rw.rewrite(pkt(7, 120, 0, 3100, &[]), &m, t0).unwrap();
        assert_eq!(a.header.ssrc, 0xabcd);
        assert_eq!(a.header.payload_type, 96);
        assert_eq!(
            b.header.sequence_number,
            a.header.sequence_number.wrapping_add(1)
        );
        assert_eq!(b.header.timestamp.wrapping_sub(a.header.timestamp), 3000);
        assert_eq!(
            rw.rewrite(pkt(7, 121, 1, 3100, &[]), &m, t0).err(),
            Some(Skip::Unmapped)
        );
    }

    #[test]
    fn source_switch_continues_sequence_and_timestamp() {
        let m = LegMapping::new(1, &source(), &leg());
        let mut rw = LegRewriter::new();
        let t0 = Instant::now();
        let mut last = None;
        for i in 0..10u16 {
            last = rw
                .rewrite(
                    pkt(7, 120, 1000 + i, 50_000 + u32::from(i) * 3000, &[]),
                    &m,
                    t0,
                )
                .ok();
        }
        let last = last.unwrap();
        // Publisher republishes: new SSRC, unrelated numbering, 100 ms later.
        let t1 = t0 + Duration::from_millis(100);
        let first = rw.rewrite(pkt(99, 120, 7, 123, &[]), &m, t1).unwrap();
        assert_eq!(
            first.header.sequence_number,
            last.header.sequence_number.wrapping_add(1)
        );
        let dt = first.header.timestamp.wrapping_sub(last.header.timestamp);
        assert!((8900..=9100).contains(&dt), "~100 ms at 90 kHz, got {dt}");
        let second = rw.rewrite(pkt(99, 120, 8, 3123, &[]), &m, t1).unwrap();
        assert_eq!(
            second.header.sequence_number,
            first.header.sequence_number.wrapping_add(1)
        );
        assert_eq!(
            second.header.timestamp.wrapping_sub(first.header.timestamp),
            3000
        );
    }

    #[test]
    fn reordered_packets_do_not_move_the_high_water_mark() {
        let m = LegMapping::new(1, &source(), &leg());
        let mut rw = LegRewriter::new();
        let t0 = Instant::now();
        rw.rewrite(pkt(7, 120, 10, 0, &[]), &m, t0).unwrap();
        rw.rewrite(pkt(7, 120, 12, 0, &[]), &m, t0).unwrap();
        let late = rw.rewrite(pkt(7, 120, 11, 0, &[]), &m, t0).unwrap();
        assert_eq!(late.header.sequence_number, 11);
        rw.source_changed();
        let next = rw.rewrite(pkt(7, 120, 500, 0, &[]), &m, t0).unwrap();
        assert_eq!(
            next.header.sequence_number, 13,
            "continues after highest (12)"
        );
    }

    #[test]
    fn late_packets_of_a_layer_switched_to_are_not_forwarded() {
        let m = LegMapping::new(1, &source(), &leg());
        let mut rw = LegRewriter::new();
        let t0 = Instant::now();
        for seq in 100..110u16 {
            rw.rewrite(pkt(7, 120, seq, u32::from(seq) * 3000, &[]), &m, t0)
                .unwrap();
        }
        // Switch to another layer (SSRC 8) at its keyframe, sequence 5000.
        let key = rw.rewrite(pkt(8, 120, 5000, 7, &[]), &m, t0).unwrap();
        assert_eq!(key.header.sequence_number, 110);
        // A packet of that layer from before the keyframe arrives late: it would reuse
        // sequence number 109, already sent for the old layer.
        assert_eq!(
            rw.rewrite(pkt(8, 120, 4999, 4, &[]), &m, t0).err(),
            Some(Skip::BeforeSwitch)
        );
        let next = rw.rewrite(pkt(8, 120, 5001, 3007, &[]), &m, t0).unwrap();
        assert_eq!(next.header.sequence_number, 111);
        assert_eq!(
            next.header.timestamp.wrapping_sub(key.header.timestamp),
            3000
        );
    }

    #[test]
    fn a_long_stream_is_never_taken_for_late_packets_of_its_start() {
        let m = LegMapping::new(1, &source(), &leg());
        let mut rw = LegRewriter::new();
        let t0 = Instant::now();
        for i in 0..70_000u32 {
            let seq = (1000 + i) as u16;
            assert!(
                rw.rewrite(pkt(7, 120, seq, i * 3000, &[]), &m, t0).is_ok(),
                "packet {i} forwarded"
            );
        }
    }

    #[test]
    fn seq_newer_wraps() {
        assert!(seq_newer(1, 65535));
        assert!(!seq_newer(65535, 1));
        assert!(!seq_newer(5, 5));
    }

    #[test]
    fn selector_sticks_then_fails_over() {
        let mut s = SourceSelector::new(Duration::from_millis(500));
        let t0 = Instant::now();
        assert!(s.accept(1, t0));
        assert!(!s.accept(2, t0 + Duration::from_millis(10)));
        assert!(s.accept(1, t0 + Duration::from_millis(20)));
        assert!(!s.accept(2, t0 + Duration::from_millis(400)));
        assert!(s.accept(2, t0 + Duration::from_millis(600)));
        assert_eq!(s.current(), Some(2));
    }

    #[test]
    fn keyframe_throttle_coalesces() {
        let mut t = KeyframeThrottle::new(Duration::from_millis(500));
        let t0 = Instant::now();
        assert_eq!(t.poll(t0), Ok(()));
        let at = t0 + Duration::from_millis(500);
        assert_eq!(t.poll(t0 + Duration::from_millis(100)), Err(at));
        assert_eq!(t.poll(t0 + Duration::from_millis(499)), Err(at));
        assert_eq!(t.poll(at), Ok(()));
        assert!(t.poll(at + Duration::from_millis(1)).is_err());
    }

    #[test]
    fn track_ids_are_unique_per_room() {
        let taken = ["cam", "alice-cam"];
        let is_taken = |s: &str| taken.contains(&s);
        assert_eq!(unique_track_id("mic", "alice", is_taken), "mic");
        assert_eq!(unique_track_id("cam", "bob", is_taken), "bob-cam");
        assert_eq!(unique_track_id("cam", "alice", is_taken), "alice-cam-2");
        assert_eq!(unique_track_id("", "bob", is_taken), "bob-track");
    }

    #[test]
    fn primary_media_filter() {
        assert!(is_primary_media("video/VP8"));
        assert!(is_primary_media("audio/opus"));
        assert!(is_primary_media("video/H264"));
        assert!(!is_primary_media("video/rtx"));
        assert!(!is_primary_media("audio/red"));
        assert!(!is_primary_media("video/ulpfec"));
    }

    #[test]
    fn each_packet_goes_out_once_however_often_it_is_retransmitted() {
        let mut f = FirstArrivals::default();
        assert!(f.first_time(7, 65_530));
        assert!(f.first_time(7, 65_532), "a gap");
        assert!(f.first_time(7, 2), "across the wrap");
        assert!(f.first_time(7, 65_531), "the repair of the gap goes out");
        assert!(!f.first_time(7, 65_531), "its retransmission does not");
        assert!(!f.first_time(7, 2));
        assert!(f.first_time(7, 1), "a late first arrival goes out");
        assert!(f.first_time(7, 3000), "a jump beyond the window");
        assert!(!f.first_time(7, 2), "too old to be of use");
        assert!(f.first_time(7, 2999), "inside the window after the jump");
        assert!(f.first_time(8, 2), "a new SSRC starts afresh");
        // A slot reused one window later is free again.
        let mut g = FirstArrivals::default();
        assert!(g.first_time(1, 0));
        for s in 1..=FIRST_ARRIVAL_WINDOW {
            assert!(g.first_time(1, s));
        }
        assert!(!g.first_time(1, 0), "slot of 0 now holds 512");
        assert!(!g.first_time(1, FIRST_ARRIVAL_WINDOW));
    }
}
