//! Synthetic media: one task per local track writing tagged RTP packets at a fixed
//! packet rate, so a test or a load run controls exactly what enters the server.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use webrtc::media_stream::track_local::TrackLocal;

use super::clip::{Clip, ClipSet};
use super::media::LocalTrack;
use super::protocol::Kind;
use super::stats::{
    append_tag, in_measure_window, measure_epoch, now_micros, tag_offset, write_tag, SentStats,
    TAG_LEN,
};
use super::PcState;

/// How much synthetic media a participant sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRate {
    /// Video packets per second (each one a whole "frame": marker bit set).
    pub video_pps: u32,
    /// Video payload size in bytes (VP8 descriptor and tag included).
    pub video_bytes: usize,
    /// Audio packets per second (50 = one Opus frame every 20 ms).
    pub audio_pps: u32,
    /// Audio payload size in bytes (tag included).
    pub audio_bytes: usize,
}

impl Default for MediaRate {
    /// Roughly a 500 kbit/s camera and a 48 kbit/s microphone.
    fn default() -> Self {
        MediaRate {
            video_pps: 60,
            video_bytes: 1000,
            audio_pps: 50,
            audio_bytes: 120,
        }
    }
}

/// Counters of one local track, shared between its pacer task and readers.
#[derive(Debug)]
pub(crate) struct SentCounters {
    track_id: String,
    kind: Kind,
    packets: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    next_index: AtomicU32,
    window_packets: AtomicU64,
    window_epoch: AtomicU64,
    /// RTP sequence number and timestamp of the last packet: a restarted pacer continues
    /// them (a jump back would be dropped by SRTP replay protection at the server).
    rtp_sequence: AtomicU32,
    rtp_timestamp: AtomicU32,
}

impl SentCounters {
    pub(crate) fn new(track_id: &str, kind: Kind) -> Arc<Self> {
        Arc::new(SentCounters {
            track_id: track_id.to_owned(),
            kind,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            next_index: AtomicU32::new(0),
            window_packets: AtomicU64::new(0),
            window_epoch: AtomicU64::new(0),
            rtp_sequence: AtomicU32::new(u32::from(rand::random::<u16>())),
            rtp_timestamp: AtomicU32::new(rand::random()),
        })
    }

    pub(crate) fn snapshot(&self) -> SentStats {
        SentStats {
            track_id: self.track_id.clone(),
            kind: self.kind,
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            next_index: self.next_index.load(Ordering::Relaxed),
            window_packets: if self.window_epoch.load(Ordering::Relaxed) == measure_epoch() {
                self.window_packets.load(Ordering::Relaxed)
            } else {
                0
            },
        }
    }
}

/// Running pacer tasks; aborted on drop.
pub(crate) struct Pacer {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Pacer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Pacer {
    /// Starts one task per track in `tracks` whose rate is not zero. Ticks while the
    /// publisher connection (`connection`) is not connected are skipped, as a browser
    /// sends nothing before DTLS is up.
    pub(crate) fn start(
        tracks: &[(LocalTrack, Arc<SentCounters>)],
        rate: MediaRate,
        connection: &watch::Receiver<PcState>,
    ) -> Pacer {
        let tasks = tracks
            .iter()
            .filter_map(|(track, counters)| {
                let (pps, size) = match track.kind {
                    Kind::Video => (rate.video_pps, rate.video_bytes),
                    Kind::Audio => (rate.audio_pps, rate.audio_bytes),
                };
                (pps > 0).then(|| {
                    tokio::spawn(pace(
                        track.clone(),
                        Arc::clone(counters),
                        pps,
                        size,
                        connection.clone(),
                    ))
                })
            })
            .collect();
        Pacer { tasks }
    }

    /// Starts one task per track looping the matching clip of `clips` in real time.
    pub(crate) fn start_clips(
        tracks: &[(LocalTrack, Arc<SentCounters>)],
        clips: &Arc<ClipSet>,
        connection: &watch::Receiver<PcState>,
    ) -> Pacer {
        let tasks = tracks
            .iter()
            .map(|(track, counters)| {
                tokio::spawn(pace_clip(
                    track.clone(),
                    Arc::clone(counters),
                    Arc::clone(clips),
                    connection.clone(),
                ))
            })
            .collect();
        Pacer { tasks }
    }
}

async fn pace(
    track: LocalTrack,
    counters: Arc<SentCounters>,
    pps: u32,
    size: usize,
    connection: watch::Receiver<PcState>,
) {
    let size = size.max(tag_offset(track.kind) + TAG_LEN);
    let clock_rate: u32 = match track.kind {
        Kind::Video => 90_000,
        Kind::Audio => 48_000,
    };
    let ts_step = clock_rate / pps.max(1);
    let mut sequence = counters.rtp_sequence.load(Ordering::Relaxed) as u16;
    let mut timestamp = counters.rtp_timestamp.load(Ordering::Relaxed);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(pps.max(1))));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        if *connection.borrow() != PcState::Connected {
            continue;
        }
        let index = counters.next_index.fetch_add(1, Ordering::Relaxed);
        let mut payload = BytesMut::zeroed(size);
        let sent_us = now_micros();
        write_tag(&mut payload, track.kind, index, sent_us);
        sequence = sequence.wrapping_add(1);
        timestamp = timestamp.wrapping_add(ts_step);
        counters
            .rtp_sequence
            .store(u32::from(sequence), Ordering::Relaxed);
        counters.rtp_timestamp.store(timestamp, Ordering::Relaxed);
        let packet = Packet {
            header: Header {
                version: 2,
                marker: track.kind == Kind::Video,
                payload_type: track.payload_type,
                sequence_number: sequence,
                timestamp,
                ssrc: track.ssrc,
                ..Default::default()
            },
            payload: payload.freeze(),
        };
        match track.track.write_rtp(packet).await {
            Ok(()) => counters.sent(size, sent_us),
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl SentCounters {
    /// The tag index of the next packet (and counts it as attempted).
    pub(crate) fn take_index(&self) -> u32 {
        self.next_index.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a write the peer connection refused.
    pub(crate) fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The RTP sequence number and timestamp to continue from.
    pub(crate) fn rtp_position(&self) -> (u16, u32) {
        (
            self.rtp_sequence.load(Ordering::Relaxed) as u16,
            self.rtp_timestamp.load(Ordering::Relaxed),
        )
    }

    /// Remembers where the RTP sequence and timestamp stand.
    pub(crate) fn set_rtp_position(&self, sequence: u16, timestamp: u32) {
        self.rtp_sequence
            .store(u32::from(sequence), Ordering::Relaxed);
        self.rtp_timestamp.store(timestamp, Ordering::Relaxed);
    }

    /// Counts one packet of `size` payload bytes handed to the connection at `sent_us`.
    pub(crate) fn sent(&self, size: usize, sent_us: u64) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
        if in_measure_window(sent_us) {
            // One writer per track (its pacer task): reset when a new window began.
            let epoch = measure_epoch();
            if self.window_epoch.swap(epoch, Ordering::Relaxed) != epoch {
                self.window_packets.store(0, Ordering::Relaxed);
            }
            self.window_packets.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Loops `clip` on `track` in real time: one tick per frame, all packets of the frame
/// back to back (as a browser's pacer would send a small frame), tag appended to each.
async fn pace_clip(
    track: LocalTrack,
    counters: Arc<SentCounters>,
    clip: Arc<ClipSet>,
    connection: watch::Receiver<PcState>,
) {
    let clip: &Clip = match track.kind {
        Kind::Video => &clip.video,
        Kind::Audio => &clip.audio,
    };
    let mut sequence = counters.rtp_sequence.load(Ordering::Relaxed) as u16;
    let mut timestamp = counters.rtp_timestamp.load(Ordering::Relaxed);
    // Publishers start at different points of the clip so keyframes do not line up.
    let mut frame_no = rand::random::<usize>() % clip.frames.len();
    let mut ticker = tokio::time::interval(clip.frame_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        if *connection.borrow() != PcState::Connected {
            continue;
        }
        let frame = &clip.frames[frame_no % clip.frames.len()];
        frame_no = frame_no.wrapping_add(1);
        timestamp = timestamp.wrapping_add(clip.ts_step);
        let last = frame.packets.len().saturating_sub(1);
        for (i, body) in frame.packets.iter().enumerate() {
            let index = counters.next_index.fetch_add(1, Ordering::Relaxed);
            let sent_us = now_micros();
            let mut payload = Vec::with_capacity(body.len() + TAG_LEN);
            payload.extend_from_slice(body);
            append_tag(&mut payload, index, sent_us);
            let size = payload.len();
            sequence = sequence.wrapping_add(1);
            let packet = Packet {
                header: Header {
                    version: 2,
                    marker: track.kind == Kind::Video && i == last,
                    payload_type: track.payload_type,
                    sequence_number: sequence,
                    timestamp,
                    ssrc: track.ssrc,
                    ..Default::default()
                },
                payload: payload.into(),
            };
            match track.track.write_rtp(packet).await {
                Ok(()) => counters.sent(size, sent_us),
                Err(_) => {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        counters
            .rtp_sequence
            .store(u32::from(sequence), Ordering::Relaxed);
        counters.rtp_timestamp.store(timestamp, Ordering::Relaxed);
    }
}
