//! What the forwarder needs to know of a video payload: whether an RTP packet starts a
//! keyframe (a subscriber can only start decoding, or move to another simulcast layer,
//! there) and, for VP8, the frame size a keyframe announces (the size of a simulcast
//! layer, matched against the size a subscriber shows the video at).
//!
//! Payload formats: VP8 RFC 7741, VP9 draft-ietf-payload-vp9, H.264 RFC 6184. Other
//! codecs are not inspected: [`starts_keyframe`] returns `None` and the caller treats every
//! packet as a possible start (it cannot do better without parsing the codec).

/// Whether this RTP payload of `mime` (e.g. `video/VP8`) starts a keyframe; `None` when the
/// codec is not one this module parses.
pub fn starts_keyframe(mime: &str, payload: &[u8]) -> Option<bool> {
    let codec = mime.rsplit('/').next().unwrap_or(mime);
    if codec.eq_ignore_ascii_case("vp8") {
        Some(vp8_frame(payload).is_some_and(|f| f.keyframe))
    } else if codec.eq_ignore_ascii_case("vp9") {
        Some(vp9_starts_keyframe(payload))
    } else if codec.eq_ignore_ascii_case("h264") {
        Some(h264_starts_keyframe(payload))
    } else {
        None
    }
}

/// Width and height a VP8 keyframe's first packet announces (`None` for anything else).
pub fn vp8_keyframe_size(payload: &[u8]) -> Option<(u32, u32)> {
    let frame = vp8_frame(payload)?;
    if !frame.keyframe {
        return None;
    }
    let header = payload.get(frame.offset..frame.offset + 10)?;
    // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height (LE).
    if header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u32::from(u16::from_le_bytes([header[6], header[7]]) & 0x3fff);
    let height = u32::from(u16::from_le_bytes([header[8], header[9]]) & 0x3fff);
    (width > 0 && height > 0).then_some((width, height))
}

struct Vp8Frame {
    /// Offset of the VP8 payload after the payload descriptor.
    offset: usize,
    keyframe: bool,
}

/// Parses the VP8 payload descriptor of the first packet of a frame (S=1, partition 0).
fn vp8_frame(payload: &[u8]) -> Option<Vp8Frame> {
    let first = *payload.first()?;
    let start_of_partition = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start_of_partition || partition != 0 {
        return None;
    }
    let mut offset = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(offset)?;
        offset += 1;
        if ext & 0x80 != 0 {
            // Picture id: 7 or 15 bits (M bit).
            let pid = *payload.get(offset)?;
            offset += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            offset += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            offset += 1; // TID / KEYIDX
        }
    }
    let tag = *payload.get(offset)?;
    Some(Vp8Frame {
        offset,
        keyframe: tag & 0x01 == 0,
    })
}

/// VP9: not inter-predicted (P=0) and the start of a frame (B=1).
fn vp9_starts_keyframe(payload: &[u8]) -> bool {
    payload
        .first()
        .is_some_and(|b| b & 0x40 == 0 && b & 0x08 != 0)
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

/// H.264: an IDR slice or an SPS (sent right before the IDR), alone, aggregated (STAP-A) or
/// as the first fragment (FU-A).
fn h264_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let is_key = |nal: u8| matches!(nal & 0x1f, H264_IDR | H264_SPS);
    match first & 0x1f {
        H264_STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let Some(&nal) = rest.get(2) else { break };
                if is_key(nal) {
                    return true;
                }
                rest = rest.get(2 + size..).unwrap_or_default();
            }
            false
        }
        H264_FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && is_key(*fu)),
        nal => is_key(nal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 keyframe's first packet as Chromium sends it: descriptor with a 15-bit
    /// picture id, frame tag, start code, 1280×720.
    pub(crate) fn vp8_key_720p() -> Vec<u8> {
        let mut p = vec![0x90, 0x80, 0x81, 0x23];
        p.extend_from_slice(&[0x50, 0x2e, 0x01, 0x9d, 0x01, 0x2a]);
        p.extend_from_slice(&1280u16.to_le_bytes());
        p.extend_from_slice(&720u16.to_le_bytes());
        p.extend_from_slice(&[0u8; 20]);
        p
    }

    #[test]
    fn vp8_keyframe_and_size() {
        let key = vp8_key_720p();
        assert_eq!(starts_keyframe("video/VP8", &key), Some(true));
        assert_eq!(vp8_keyframe_size(&key), Some((1280, 720)));
        let mut delta = key.clone();
        delta[4] |= 0x01; // P bit of the frame tag: inter frame
        assert_eq!(starts_keyframe("video/vp8", &delta), Some(false));
        assert_eq!(vp8_keyframe_size(&delta), None);
        let mut middle = key;
        middle[0] &= !0x10; // not the start of the partition
        assert_eq!(starts_keyframe("video/VP8", &middle), Some(false));
        assert_eq!(starts_keyframe("video/VP8", &[]), Some(false));
        assert_eq!(starts_keyframe("video/VP8", &[0x90, 0x80]), Some(false));
    }

    #[test]
    fn vp9_h264_and_others() {
        assert_eq!(starts_keyframe("video/VP9", &[0x08]), Some(true));
        assert_eq!(starts_keyframe("video/VP9", &[0x48]), Some(false));
        assert_eq!(starts_keyframe("video/H264", &[0x65]), Some(true)); // IDR
        assert_eq!(starts_keyframe("video/H264", &[0x41]), Some(false)); // P slice
        assert_eq!(starts_keyframe("video/H264", &[0x7c, 0x85]), Some(true)); // FU-A start of IDR
        assert_eq!(starts_keyframe("video/H264", &[0x7c, 0x05]), Some(false)); // FU-A middle
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert_eq!(starts_keyframe("video/H264", &stap), Some(true)); // SPS + PPS
        assert_eq!(starts_keyframe("video/H264", &[0x78, 0x00]), Some(false));
        assert_eq!(starts_keyframe("video/AV1", &[0x00]), None);
    }
}
