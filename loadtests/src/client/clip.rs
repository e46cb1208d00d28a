//! Real media from files, packetized once and looped by the pacer: VP8 frames from an
//! IVF file and Opus packets from an Ogg file (both made by `loadtests/media/make.sh`).
//!
//! - VP8 (RFC 7741): each frame is split into payloads of at most
//!   [`MAX_VP8_PAYLOAD`] bytes, each starting with a one-byte payload descriptor (S bit on
//!   the first packet of the frame, partition index 0); the marker bit goes on the last
//!   packet; timestamps advance by 90 kHz / fps per frame.
//! - Opus (RFC 7587): one Ogg packet (one 20 ms frame) per RTP packet, 48 kHz clock.
//!
//! The measurement tag ([`super::stats::append_tag`]) is appended to each payload when
//! it is sent: the VP8 descriptor stays valid, the payload is not decodable as-is (the SFU
//! does not decode).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::protocol::Kind;
use super::stats::TAG_LEN;
use super::ClientError;

/// Largest VP8 RTP payload this packetizer produces, descriptor and tag included.
pub const MAX_VP8_PAYLOAD: usize = 1200;

/// One media frame: the payloads of its RTP packets, tag not yet appended.
#[derive(Debug, Clone)]
pub struct ClipFrame {
    /// RTP payloads in order (VP8 descriptor included for video).
    pub packets: Vec<Bytes>,
    /// Whether the frame is a keyframe (VP8) — always false for audio.
    pub keyframe: bool,
}

/// A looped media clip, packetized.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Audio or video.
    pub kind: Kind,
    /// Frames in order.
    pub frames: Vec<ClipFrame>,
    /// Time between frames (1/fps for video, 20 ms for Opus).
    pub frame_interval: Duration,
    /// RTP timestamp step per frame.
    pub ts_step: u32,
}

impl Clip {
    /// Average payload bits per second of the clip (tags excluded).
    pub fn bitrate(&self) -> f64 {
        let bytes: usize = self
            .frames
            .iter()
            .flat_map(|f| f.packets.iter())
            .map(|p| p.len())
            .sum();
        let secs = self.frames.len() as f64 * self.frame_interval.as_secs_f64();
        bytes as f64 * 8.0 / secs.max(1e-9)
    }

    /// Average RTP packets per second of the clip.
    pub fn packet_rate(&self) -> f64 {
        let n: usize = self.frames.iter().map(|f| f.packets.len()).sum();
        n as f64 / (self.frames.len() as f64 * self.frame_interval.as_secs_f64()).max(1e-9)
    }
}

/// Video and audio clips a publisher loops.
#[derive(Debug, Clone)]
pub struct ClipSet {
    /// VP8 clip for the camera track.
    pub video: Clip,
    /// Opus clip for the microphone track.
    pub audio: Clip,
}

impl ClipSet {
    /// Loads `video.ivf` and `audio.ogg` from `dir`.
    pub fn load(dir: &Path) -> Result<ClipSet, ClientError> {
        Ok(ClipSet {
            video: load_ivf(&dir.join("video.ivf"))?,
            audio: load_ogg_opus(&dir.join("audio.ogg"))?,
        })
    }
}

fn bad(what: impl Into<String>) -> ClientError {
    ClientError::Config(what.into())
}

/// Reads an IVF file of VP8 frames and packetizes every frame.
pub fn load_ivf(path: &Path) -> Result<Clip, ClientError> {
    let data = std::fs::read(path)?;
    parse_ivf(&data)
}

/// Packetizes an IVF file held in memory.
pub fn parse_ivf(data: &[u8]) -> Result<Clip, ClientError> {
    if data.len() < 32 || &data[..4] != b"DKIF" {
        return Err(bad("not an IVF file"));
    }
    if &data[8..12] != b"VP80" {
        return Err(bad("IVF file is not VP8"));
    }
    let header_len = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let rate = u32::from_le_bytes(data[16..20].try_into().unwrap_or_default());
    let scale = u32::from_le_bytes(data[20..24].try_into().unwrap_or_default());
    let fps = if rate > 0 && scale > 0 {
        f64::from(rate) / f64::from(scale)
    } else {
        30.0
    };
    // ffmpeg writes the time base (1/1000 or 1/fps); anything outside 1..=120 is not a
    // frame rate: assume 30.
    let fps = if (1.0..=120.0).contains(&fps) {
        fps
    } else {
        30.0
    };
    let mut frames = Vec::new();
    let mut at = header_len.max(32);
    while at + 12 <= data.len() {
        let size = u32::from_le_bytes(data[at..at + 4].try_into().unwrap_or_default()) as usize;
        at += 12;
        let Some(frame) = data.get(at..at + size) else {
            break;
        };
        at += size;
        if frame.is_empty() {
            continue;
        }
        frames.push(packetize_vp8(frame));
    }
    if frames.is_empty() {
        return Err(bad("IVF file has no frames"));
    }
    Ok(Clip {
        kind: Kind::Video,
        frames,
        frame_interval: Duration::from_secs_f64(1.0 / fps),
        ts_step: (90_000.0 / fps).round() as u32,
    })
}

/// Splits one VP8 frame into RTP payloads (descriptor + up to the size limit).
pub fn packetize_vp8(frame: &[u8]) -> ClipFrame {
    let room = MAX_VP8_PAYLOAD - 1 - TAG_LEN;
    // Keyframe: bit 0 of the first byte of the VP8 frame header is 0 (RFC 6386 9.1).
    let keyframe = frame.first().is_some_and(|b| b & 1 == 0);
    let packets = frame
        .chunks(room)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Vec::with_capacity(1 + chunk.len() + TAG_LEN);
            p.push(if i == 0 { 0x10 } else { 0x00 });
            p.extend_from_slice(chunk);
            Bytes::from(p)
        })
        .collect();
    ClipFrame { packets, keyframe }
}

/// Reads an Ogg Opus file; every Opus packet (after the two header packets) becomes one
/// frame of one RTP packet.
pub fn load_ogg_opus(path: &Path) -> Result<Clip, ClientError> {
    let data = std::fs::read(path)?;
    parse_ogg_opus(&data)
}

/// Parses an Ogg Opus file held in memory.
pub fn parse_ogg_opus(data: &[u8]) -> Result<Clip, ClientError> {
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut at = 0;
    while at + 27 <= data.len() {
        if &data[at..at + 4] != b"OggS" {
            return Err(bad("broken Ogg page"));
        }
        let segments = usize::from(data[at + 26]);
        let table = data
            .get(at + 27..at + 27 + segments)
            .ok_or_else(|| bad("short Ogg page"))?;
        let mut body = at + 27 + segments;
        for &lace in table {
            let len = usize::from(lace);
            let seg = data
                .get(body..body + len)
                .ok_or_else(|| bad("short Ogg segment"))?;
            current.extend_from_slice(seg);
            body += len;
            if lace < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        at = body;
    }
    // Skip OpusHead and OpusTags.
    let frames: Vec<ClipFrame> = packets
        .into_iter()
        .filter(|p| !p.starts_with(b"OpusHead") && !p.starts_with(b"OpusTags") && !p.is_empty())
        .map(|p| ClipFrame {
            packets: vec![Bytes::from(p)],
            keyframe: false,
        })
        .collect();
    if frames.is_empty() {
        return Err(bad("Ogg file has no Opus packets"));
    }
    Ok(Clip {
        kind: Kind::Audio,
        frames,
        frame_interval: Duration::from_millis(20),
        ts_step: 960,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_frames_split_with_descriptors() {
        let mut frame = vec![0u8; 3000];
        frame[0] = 0x50; // keyframe (bit 0 clear)
        let f = packetize_vp8(&frame);
        assert!(f.keyframe);
        assert_eq!(f.packets.len(), 3);
        assert_eq!(f.packets[0][0], 0x10);
        assert_eq!(f.packets[1][0], 0x00);
        assert!(f
            .packets
            .iter()
            .all(|p| p.len() + TAG_LEN <= MAX_VP8_PAYLOAD));
        let total: usize = f.packets.iter().map(|p| p.len() - 1).sum();
        assert_eq!(total, 3000);
        assert!(!packetize_vp8(&[0x51, 0, 0]).keyframe);
    }

    #[test]
    fn ivf_and_ogg_parse() {
        let mut ivf = Vec::new();
        ivf.extend_from_slice(b"DKIF");
        ivf.extend_from_slice(&0u16.to_le_bytes());
        ivf.extend_from_slice(&32u16.to_le_bytes());
        ivf.extend_from_slice(b"VP80");
        ivf.extend_from_slice(&[0; 4]);
        ivf.extend_from_slice(&30u32.to_le_bytes());
        ivf.extend_from_slice(&1u32.to_le_bytes());
        ivf.extend_from_slice(&[0; 8]);
        for size in [10u32, 2500] {
            ivf.extend_from_slice(&size.to_le_bytes());
            ivf.extend_from_slice(&[0; 8]);
            ivf.extend(std::iter::repeat_n(0u8, size as usize));
        }
        let clip = parse_ivf(&ivf).unwrap();
        assert_eq!(clip.frames.len(), 2);
        assert_eq!(clip.ts_step, 3000);
        assert_eq!(clip.frames[1].packets.len(), 3);

        // One page: OpusHead (19 bytes), then a page with a 300-byte packet (laced 255+45)
        // and a 10-byte packet.
        let mut ogg = Vec::new();
        let page = |ogg: &mut Vec<u8>, lacing: &[u8], body: &[u8]| {
            ogg.extend_from_slice(b"OggS");
            ogg.extend_from_slice(&[0; 22]);
            ogg.push(lacing.len() as u8);
            ogg.extend_from_slice(lacing);
            ogg.extend_from_slice(body);
        };
        let mut head = b"OpusHead".to_vec();
        head.resize(19, 0);
        page(&mut ogg, &[19], &head);
        let body = vec![7u8; 310];
        page(&mut ogg, &[255, 45, 10], &body);
        let clip = parse_ogg_opus(&ogg).unwrap();
        assert_eq!(clip.frames.len(), 2);
        assert_eq!(clip.frames[0].packets[0].len(), 300);
        assert_eq!(clip.frames[1].packets[0].len(), 10);
    }
}
