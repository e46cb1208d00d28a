//! Our published tracks inside the engine: when each sends its next packet and what the
//! packet holds (synthetic tagged payloads at a fixed rate, or a real clip looped frame by
//! frame), with the same tags, counters and RTP numbering as the webrtc-rs pacer
//! (`client/pacer.rs`), so both clients measure the same thing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::rtp::header::{Header, EXTENSION_PROFILE_ONE_BYTE};
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::RTCRtpSenderId;

use super::arena::Arena;
use crate::client::clip::ClipSet;
use crate::client::pacer::{MediaRate, SentCounters};
use crate::client::protocol::Kind;
use crate::client::stats::{tag_offset, write_tag, write_tag_at_end, TAG_LEN};

/// What a publisher sends.
#[derive(Debug, Clone)]
pub enum MediaSource {
    /// Synthetic tagged packets at a fixed rate.
    Synthetic(MediaRate),
    /// Real VP8/Opus looped in real time.
    Clips(Arc<ClipSet>),
}

/// A periodic deadline that skips missed ticks (like tokio's `MissedTickBehavior::Skip`):
/// after a stall it resumes on the next multiple of the period instead of bursting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticker {
    period: Duration,
    next: Instant,
}

impl Ticker {
    /// First tick at `start`, then every `period` (at least 1 µs).
    pub(crate) fn new(period: Duration, start: Instant) -> Ticker {
        Ticker {
            period: period.max(Duration::from_micros(1)),
            next: start,
        }
    }

    /// When the next tick is due.
    pub(crate) fn deadline(&self) -> Instant {
        self.next
    }

    /// Consumes the tick due at or before `now` and schedules the next one after `now`.
    pub(crate) fn advance(&mut self, now: Instant) {
        self.next += self.period;
        if self.next <= now {
            let behind = now.duration_since(self.next).as_nanos();
            let skip = behind / self.period.as_nanos() + 1;
            self.next += self.period * u32::try_from(skip).unwrap_or(u32::MAX);
        }
    }
}

/// The RFC 6464 audio level extension browsers put on every audio packet: simulated
/// participants carry it too, so the server's speaker detection runs under load.
pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// A simulated participant talks for this many audio packets (2 s), then is silent as
/// long; each starts at a random point of the cycle, so a room's speakers keep changing.
const TALK_PACKETS: u32 = 100;
/// Level of speech (dBov), one byte as the extension carries it.
static SPEECH: [u8; 1] = [30];
/// Level of silence (dBov).
static SILENCE: [u8; 1] = [127];

/// The simulcast layers of a video track, lowest first: rid, SSRC offset from the track's
/// own SSRC, and the layer's share of the top layer's packets (synthetic: of its bytes).
/// The shares follow the browser client's 150 / 500 / 1,200 kbit/s.
pub(crate) const LAYERS: [(&str, u32, f64); 3] = [("q", 2, 0.125), ("h", 1, 0.4), ("f", 0, 1.0)];

/// What a simulcast track writes besides the top layer: every packet names its layer
/// (mid and rid extensions, as browsers keep sending them to our server), and the two
/// lower layers are sent untagged, so delivery is accounted on the top layer only (the
/// one a subscriber with room for it receives).
pub(crate) struct Simulcast {
    mid_ext: u8,
    rid_ext: u8,
    mid: Bytes,
    /// The lower layers: rid, SSRC, share, next sequence number.
    lower: Vec<(&'static str, u32, f64, u16)>,
}

impl Simulcast {
    /// The layers of a track on `ssrc`, sent with the negotiated extension ids.
    pub(crate) fn new(ssrc: u32, mid: &str, mid_ext: u8, rid_ext: u8) -> Simulcast {
        Simulcast {
            mid_ext,
            rid_ext,
            mid: Bytes::copy_from_slice(mid.as_bytes()),
            lower: LAYERS
                .iter()
                .filter(|(_, offset, _)| *offset != 0)
                .map(|&(rid, offset, share)| (rid, ssrc.wrapping_add(offset), share, 0))
                .collect(),
        }
    }

    fn name(&self, header: &mut Header, rid: &'static str) {
        header.extension = true;
        header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
        let _ = header.set_extension(self.mid_ext, self.mid.clone());
        let _ = header.set_extension(self.rid_ext, Bytes::from_static(rid.as_bytes()));
    }

    /// Names the top layer's packets of this tick (`out[from..]`) and appends the lower
    /// layers' packets for the same frame, untagged: `share` of the top layer's bytes in
    /// `share` of its packets (at least one), each starting like the top packet it is
    /// cut from (so a keyframe's first packet still reads as one).
    fn add_lower(
        &mut self,
        out: &mut Vec<Outgoing>,
        from: usize,
        (kind, synthetic): (Kind, bool),
        arena: &mut Arena,
    ) {
        // The top layer's packets of this tick: no list of their own, `out` holds them.
        let top = from..out.len();
        for i in top.clone() {
            self.name(&mut out[i].packet.header, "f");
        }
        if top.is_empty() {
            return;
        }
        let untagged = |len: usize| {
            if synthetic {
                len
            } else {
                len.saturating_sub(TAG_LEN)
            }
        };
        let frame_bytes: usize = top
            .clone()
            .map(|i| untagged(out[i].packet.payload.len()))
            .sum();
        for l in 0..self.lower.len() {
            let (rid, ssrc, share, _) = self.lower[l];
            let count = ((top.len() as f64 * share).ceil() as usize).clamp(1, top.len());
            let per_packet = ((frame_bytes as f64 * share) / count as f64) as usize;
            for (n, i) in top.clone().take(count).enumerate() {
                let source = out[i].packet.payload.clone();
                let body = per_packet.clamp(
                    tag_offset(kind) + 1,
                    untagged(source.len()).max(tag_offset(kind) + 1),
                );
                let mut payload = arena.take(body);
                let copied = body.min(source.len());
                payload[..copied].copy_from_slice(&source[..copied]);
                if synthetic {
                    // Never a tag: a lower layer's packet is not one of the top layer's.
                    if let Some(tag) = payload.get_mut(tag_offset(kind)..) {
                        let end = tag.len().min(TAG_LEN);
                        tag[..end].fill(0);
                    }
                }
                let sequence = self.lower[l].3.wrapping_add(1);
                self.lower[l].3 = sequence;
                let mut header = out[i].packet.header.clone();
                header.ssrc = ssrc;
                header.sequence_number = sequence;
                header.marker = n + 1 == count;
                self.name(&mut header, rid);
                out.push(Outgoing {
                    packet: Packet {
                        header,
                        payload: payload.freeze(),
                    },
                    size: body,
                    sent_us: out[i].sent_us,
                    counted: false,
                });
            }
        }
    }
}

/// One of our tracks: its RTP sender in the connection, numbering and pacing.
pub(crate) struct LocalSender {
    pub(crate) sender: RTCRtpSenderId,
    pub(crate) kind: Kind,
    pub(crate) ssrc: u32,
    pub(crate) payload_type: u8,
    pub(crate) counters: Arc<SentCounters>,
    sequence: u16,
    timestamp: u32,
    frame_no: usize,
    ticker: Option<Ticker>,
    /// Negotiated audio-level extension id, and where in the talk cycle this one starts.
    audio_level: Option<(u8, u32)>,
    /// Video in simulcast layers, once the answer named the extension ids.
    pub(crate) simulcast: Option<Simulcast>,
}

/// One packet ready for the connection.
pub(crate) struct Outgoing {
    pub(crate) packet: Packet,
    pub(crate) size: usize,
    pub(crate) sent_us: u64,
    /// Counts as sent (tagged): false for the lower simulcast layers.
    pub(crate) counted: bool,
}

impl LocalSender {
    /// A sender continuing the RTP numbering recorded in `counters`.
    pub(crate) fn new(
        sender: RTCRtpSenderId,
        kind: Kind,
        ssrc: u32,
        payload_type: u8,
        counters: Arc<SentCounters>,
    ) -> LocalSender {
        let (sequence, timestamp) = counters.rtp_position();
        LocalSender {
            sender,
            kind,
            ssrc,
            payload_type,
            counters,
            sequence,
            timestamp,
            frame_no: 0,
            ticker: None,
            audio_level: None,
            simulcast: None,
        }
    }

    /// The audio-level extension id the answer negotiated (audio tracks; `None`: not sent).
    pub(crate) fn set_audio_level_ext(&mut self, id: Option<u8>) {
        self.audio_level = id
            .filter(|_| self.kind == Kind::Audio)
            .map(|id| (id, rand::random::<u32>() % (2 * TALK_PACKETS)));
    }

    /// Starts pacing for `source` from `now` (first tick at once); returns the first
    /// deadline, or `None` when this track sends nothing for that source (rate 0).
    pub(crate) fn start(&mut self, source: &MediaSource, now: Instant) -> Option<Instant> {
        self.ticker = match source {
            MediaSource::Synthetic(rate) => {
                let pps = self.synthetic(rate).0;
                (pps > 0).then(|| Ticker::new(Duration::from_secs_f64(1.0 / f64::from(pps)), now))
            }
            MediaSource::Clips(clips) => {
                let clip = self.clip(clips);
                // Publishers start at different points of the clip so keyframes do not
                // line up.
                self.frame_no = rand::random::<usize>() % clip.frames.len().max(1);
                Some(Ticker::new(clip.frame_interval, now))
            }
        };
        self.ticker.map(|t| t.deadline())
    }

    /// Stops pacing.
    pub(crate) fn stop(&mut self) {
        self.ticker = None;
    }

    /// The next tick, if pacing.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.ticker.map(|t| t.deadline())
    }

    /// Consumes the tick due at `now`; the next one follows.
    pub(crate) fn advance(&mut self, now: Instant) {
        if let Some(t) = &mut self.ticker {
            t.advance(now);
        }
    }

    fn synthetic(&self, rate: &MediaRate) -> (u32, usize) {
        match self.kind {
            Kind::Video => (rate.video_pps, rate.video_bytes),
            Kind::Audio => (rate.audio_pps, rate.audio_bytes),
        }
    }

    fn clip<'a>(&self, clips: &'a ClipSet) -> &'a crate::client::clip::Clip {
        match self.kind {
            Kind::Video => &clips.video,
            Kind::Audio => &clips.audio,
        }
    }

    fn header(&mut self, marker: bool) -> Header {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = Header {
            version: 2,
            marker,
            payload_type: self.payload_type,
            sequence_number: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        if let Some((id, phase)) = self.audio_level {
            let talking =
                (u32::from(self.sequence).wrapping_add(phase) / TALK_PACKETS).is_multiple_of(2);
            let level = if talking { &SPEECH } else { &SILENCE };
            header.extension = true;
            header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
            // An id of 1..=14 always fits the one-byte profile the answer chose.
            let _ = header.set_extension(id, Bytes::from_static(level));
        }
        header
    }

    /// The packets of one tick of `source` (one synthetic packet, or every packet of the
    /// next clip frame), payloads cut from `arena`, tagged with `now_us`.
    pub(crate) fn tick(
        &mut self,
        source: &MediaSource,
        arena: &mut Arena,
        now_us: u64,
        out: &mut Vec<Outgoing>,
    ) {
        let from = out.len();
        match source {
            MediaSource::Synthetic(rate) => {
                let (pps, size) = self.synthetic(rate);
                let size = size.max(tag_offset(self.kind) + TAG_LEN);
                let clock: u32 = match self.kind {
                    Kind::Video => 90_000,
                    Kind::Audio => 48_000,
                };
                self.timestamp = self.timestamp.wrapping_add(clock / pps.max(1));
                let mut payload: BytesMut = arena.take(size);
                let index = self.counters.take_index();
                write_tag(&mut payload, self.kind, index, now_us);
                let header = self.header(self.kind == Kind::Video);
                out.push(Outgoing {
                    packet: Packet {
                        header,
                        payload: payload.freeze(),
                    },
                    size,
                    sent_us: now_us,
                    counted: true,
                });
            }
            MediaSource::Clips(clips) => {
                let clip = self.clip(clips);
                let Some(frame) = clip.frames.get(self.frame_no % clip.frames.len().max(1)) else {
                    return;
                };
                self.frame_no = self.frame_no.wrapping_add(1);
                self.timestamp = self.timestamp.wrapping_add(clip.ts_step);
                let last = frame.packets.len().saturating_sub(1);
                let video = self.kind == Kind::Video;
                for (i, body) in frame.packets.iter().enumerate() {
                    let size = body.len() + TAG_LEN;
                    let mut payload = arena.take(size);
                    payload[..body.len()].copy_from_slice(body);
                    let index = self.counters.take_index();
                    write_tag_at_end(&mut payload, index, now_us);
                    let header = self.header(video && i == last);
                    out.push(Outgoing {
                        packet: Packet {
                            header,
                            payload: payload.freeze(),
                        },
                        size,
                        sent_us: now_us,
                        counted: true,
                    });
                }
            }
        }
        self.counters
            .set_rtp_position(self.sequence, self.timestamp);
        if let Some(layers) = &mut self.simulcast {
            let synthetic = matches!(source, MediaSource::Synthetic(_));
            layers.add_lower(out, from, (self.kind, synthetic), arena);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::clip::{Clip, ClipFrame};
    use crate::client::stats::read_tag;
    use bytes::Bytes;

    fn sender(kind: Kind) -> LocalSender {
        LocalSender::new(
            RTCRtpSenderId::default(),
            kind,
            1234,
            96,
            SentCounters::new("t", kind),
        )
    }

    #[test]
    fn audio_carries_a_level_that_alternates_between_speech_and_silence() {
        let rate = MediaSource::Synthetic(MediaRate::default());
        let mut arena = Arena::new(64 * 1024);
        let mut out = Vec::new();
        let mut video = sender(Kind::Video);
        video.set_audio_level_ext(Some(3));
        video.tick(&rate, &mut arena, 0, &mut out);
        assert!(
            out[0].packet.header.get_extension(3).is_none(),
            "video has none"
        );

        let mut audio = sender(Kind::Audio);
        audio.tick(&rate, &mut arena, 0, &mut out);
        assert!(
            out[1].packet.header.get_extension(3).is_none(),
            "not negotiated"
        );
        audio.set_audio_level_ext(Some(3));
        out.clear();
        for _ in 0..2 * TALK_PACKETS {
            audio.tick(&rate, &mut arena, 0, &mut out);
        }
        let levels: Vec<u8> = out
            .iter()
            .map(|o| o.packet.header.get_extension(3).expect("level")[0])
            .collect();
        let speech = levels.iter().filter(|l| **l == SPEECH[0]).count();
        assert_eq!(speech, TALK_PACKETS as usize, "half of a cycle talks");
        assert_eq!(
            levels.len() - speech,
            TALK_PACKETS as usize,
            "half is silent"
        );
    }

    #[test]
    fn ticker_skips_missed_ticks() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = Ticker::new(Duration::from_millis(20), t0);
        assert_eq!(t.deadline(), t0, "first tick at once");
        t.advance(ms(1));
        assert_eq!(t.deadline(), ms(20));
        t.advance(ms(20));
        assert_eq!(t.deadline(), ms(40));
        t.advance(ms(95)); // stalled past 40, 60, 80
        assert_eq!(t.deadline(), ms(100), "next multiple, no burst");
    }

    #[test]
    fn synthetic_tick_tags_and_numbers_packets() {
        let mut s = sender(Kind::Video);
        let (seq0, ts0) = s.counters.rtp_position();
        let rate = MediaSource::Synthetic(MediaRate::default());
        let mut arena = Arena::new(64 * 1024);
        let mut out = Vec::new();
        assert!(s.start(&rate, Instant::now()).is_some());
        s.tick(&rate, &mut arena, 1_000, &mut out);
        s.tick(&rate, &mut arena, 2_000, &mut out);
        assert_eq!(out.len(), 2);
        let (a, b) = (&out[0].packet, &out[1].packet);
        assert_eq!(a.header.sequence_number, seq0.wrapping_add(1));
        assert_eq!(b.header.sequence_number, seq0.wrapping_add(2));
        assert_eq!(a.header.timestamp, ts0.wrapping_add(90_000 / 60));
        assert!(a.header.marker, "every synthetic video packet is a frame");
        assert_eq!((a.header.ssrc, a.header.payload_type), (1234, 96));
        assert_eq!(a.payload.len(), 1000);
        assert_eq!(read_tag(&a.payload, Kind::Video), Some((0, 1_000)));
        assert_eq!(read_tag(&b.payload, Kind::Video), Some((1, 2_000)));
        assert_eq!(
            s.counters.rtp_position(),
            (b.header.sequence_number, b.header.timestamp)
        );
        assert_eq!(arena.refills(), 0, "payloads cut from one buffer");
    }

    #[test]
    fn clip_tick_sends_a_whole_frame_with_the_marker_last() {
        let frame = ClipFrame {
            packets: vec![
                Bytes::from_static(&[0x10, 1, 2]),
                Bytes::from_static(&[0, 3]),
            ],
            keyframe: true,
        };
        let clips = Arc::new(ClipSet {
            video: Clip {
                kind: Kind::Video,
                frames: vec![frame],
                frame_interval: Duration::from_millis(33),
                ts_step: 3000,
            },
            audio: Clip {
                kind: Kind::Audio,
                frames: vec![ClipFrame {
                    packets: vec![Bytes::from_static(&[9; 40])],
                    keyframe: false,
                }],
                frame_interval: Duration::from_millis(20),
                ts_step: 960,
            },
        });
        let src = MediaSource::Clips(clips);
        let mut s = sender(Kind::Video);
        let mut arena = Arena::new(4096);
        let mut out = Vec::new();
        s.start(&src, Instant::now());
        s.tick(&src, &mut arena, 5, &mut out);
        assert_eq!(out.len(), 2);
        assert!(!out[0].packet.header.marker && out[1].packet.header.marker);
        assert_eq!(
            out[0].packet.header.timestamp,
            out[1].packet.header.timestamp
        );
        assert_eq!(&out[0].packet.payload[..3], &[0x10, 1, 2]);
        assert_eq!(out[0].size, 3 + TAG_LEN);
        assert_eq!(read_tag(&out[0].packet.payload, Kind::Video), Some((0, 5)));
        assert_eq!(read_tag(&out[1].packet.payload, Kind::Video), Some((1, 5)));
    }

    #[test]
    fn simulcast_sends_three_named_layers_and_accounts_the_top_one() {
        let mut s = sender(Kind::Video);
        s.simulcast = Some(Simulcast::new(1234, "0", 4, 5));
        let rate = MediaSource::Synthetic(MediaRate::default());
        let mut arena = Arena::new(64 * 1024);
        let mut out = Vec::new();
        s.tick(&rate, &mut arena, 7, &mut out);
        assert_eq!(out.len(), 3, "one packet per layer");
        let rid = |o: &Outgoing| o.packet.header.get_extension(5).expect("rid").to_vec();
        let (f, q, h) = (&out[0], &out[1], &out[2]);
        assert_eq!(rid(f), b"f");
        assert_eq!((rid(q), q.packet.header.ssrc), (b"q".to_vec(), 1236));
        assert_eq!((rid(h), h.packet.header.ssrc), (b"h".to_vec(), 1235));
        for o in &out {
            assert_eq!(o.packet.header.get_extension(4).as_deref(), Some(&b"0"[..]));
            assert_eq!(o.packet.header.timestamp, f.packet.header.timestamp);
        }
        assert!(f.counted && !q.counted && !h.counted);
        assert_eq!(read_tag(&f.packet.payload, Kind::Video), Some((0, 7)));
        assert_eq!(
            read_tag(&q.packet.payload, Kind::Video),
            None,
            "lower layers untagged"
        );
        assert_eq!(read_tag(&h.packet.payload, Kind::Video), None);
        assert_eq!(q.packet.payload.len(), 125, "an eighth of the top layer");
        assert_eq!(h.packet.payload.len(), 400);
        let q_seq = q.packet.header.sequence_number;
        s.tick(&rate, &mut arena, 8, &mut out);
        assert_eq!(
            out[4].packet.header.sequence_number,
            q_seq.wrapping_add(1),
            "each layer numbers its own packets"
        );
    }

    #[test]
    fn simulcast_clip_layers_are_smaller_cuts_of_the_frame_without_its_tag() {
        let keyframe_start: Vec<u8> = [0x10, 0x50, 0x2e, 0x01, 0x9d, 0x01, 0x2a]
            .into_iter()
            .chain(std::iter::repeat_n(7u8, 993))
            .collect();
        let frame = ClipFrame {
            packets: vec![Bytes::from(keyframe_start), Bytes::from(vec![0u8; 1000])],
            keyframe: true,
        };
        let clip = |kind| Clip {
            kind,
            frames: vec![frame.clone()],
            frame_interval: Duration::from_millis(33),
            ts_step: 3000,
        };
        let src = MediaSource::Clips(Arc::new(ClipSet {
            video: clip(Kind::Video),
            audio: clip(Kind::Audio),
        }));
        let mut s = sender(Kind::Video);
        s.simulcast = Some(Simulcast::new(1234, "0", 4, 5));
        let mut arena = Arena::new(64 * 1024);
        let mut out = Vec::new();
        s.start(&src, Instant::now());
        s.tick(&src, &mut arena, 5, &mut out);
        // f: 2 packets; q: 1 packet of 2000 / 8 bytes; h: 1 packet of 800 bytes.
        assert_eq!(out.len(), 4);
        let (q, h) = (&out[2], &out[3]);
        assert_eq!((q.packet.header.ssrc, q.packet.payload.len()), (1236, 250));
        assert_eq!((h.packet.header.ssrc, h.packet.payload.len()), (1235, 800));
        for lower in [q, h] {
            assert_eq!(
                &lower.packet.payload[..7],
                &out[0].packet.payload[..7],
                "starts as the keyframe"
            );
            assert_eq!(read_tag(&lower.packet.payload, Kind::Video), None);
            assert!(lower.packet.header.marker, "one packet: the frame's last");
        }
    }

    #[test]
    fn zero_rate_sends_nothing() {
        let mut s = sender(Kind::Audio);
        let rate = MediaSource::Synthetic(MediaRate {
            audio_pps: 0,
            ..MediaRate::default()
        });
        assert_eq!(s.start(&rate, Instant::now()), None);
        assert_eq!(s.deadline(), None);
    }
}
