//! Client ICE candidates that arrive before the remote description they belong to: kept,
//! bounded by count and bytes, and applied with the description. A browser gathers a
//! handful; the bound is there for clients that send thousands.

use crate::types::IceCandidate;

/// Most client candidates kept per connection while its remote description is missing.
/// Extra ones are dropped and counted (`dropped_candidates`).
pub const MAX_EARLY_CANDIDATES: usize = 64;
/// Most bytes of candidate text kept per connection before its remote description.
pub const MAX_EARLY_CANDIDATE_BYTES: usize = 32 * 1024;

/// The bounded buffer of one connection.
#[derive(Debug, Default)]
pub(crate) struct EarlyCandidates {
    list: Vec<IceCandidate>,
    bytes: usize,
}

impl EarlyCandidates {
    /// Keeps `c` if there is room; false when it was dropped.
    pub(crate) fn push(&mut self, c: IceCandidate) -> bool {
        let size = c.candidate.len()
            + c.sdp_mid.as_ref().map_or(0, String::len)
            + c.username_fragment.as_ref().map_or(0, String::len);
        if self.list.len() >= MAX_EARLY_CANDIDATES || self.bytes + size > MAX_EARLY_CANDIDATE_BYTES
        {
            return false;
        }
        self.bytes += size;
        self.list.push(c);
        true
    }

    /// Everything kept, emptying the buffer.
    pub(crate) fn take(&mut self) -> Vec<IceCandidate> {
        self.bytes = 0;
        std::mem::take(&mut self.list)
    }

    /// Number kept.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(text: String) -> IceCandidate {
        IceCandidate {
            candidate: text,
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        }
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let mut e = EarlyCandidates::default();
        for i in 0..MAX_EARLY_CANDIDATES {
            assert!(e.push(cand(format!("candidate:{i} 1 udp 1 10.0.0.1 {i} typ host"))));
        }
        assert!(!e.push(cand("candidate:x".into())), "count bound");
        assert_eq!(e.take().len(), MAX_EARLY_CANDIDATES);
        assert_eq!(e.len(), 0);
        assert!(e.push(cand("x".repeat(MAX_EARLY_CANDIDATE_BYTES - 1))));
        assert!(!e.push(cand("y".repeat(8))), "byte bound");
        assert_eq!(e.len(), 1);
    }
}
