//! Buffers for datagrams and RTP payloads without one allocation per packet.
//!
//! The sans-IO core takes every datagram and payload as an owned `BytesMut`/`Bytes`.
//! Allocating one per packet is what this engine avoids: an [`Arena`] is one large zeroed
//! buffer that hands out disjoint pieces (`split_to`, a reference count bump), so the
//! allocator is called once per arena, not once per packet. A piece keeps its arena alive
//! until the core drops it; a fresh arena is allocated when the current one runs low.

use bytes::BytesMut;

/// One large zeroed buffer cut into owned pieces.
pub(crate) struct Arena {
    buf: BytesMut,
    size: usize,
    refills: u64,
}

impl Arena {
    /// An arena that allocates `size` bytes at a time.
    pub(crate) fn new(size: usize) -> Arena {
        Arena {
            buf: BytesMut::zeroed(size),
            size,
            refills: 0,
        }
    }

    /// Makes sure at least `len` contiguous bytes are left, allocating a new arena if not.
    pub(crate) fn reserve(&mut self, len: usize) {
        if self.buf.len() < len {
            self.buf = BytesMut::zeroed(self.size.max(len));
            self.refills += 1;
        }
    }

    /// The bytes not handed out yet (at least what [`Arena::reserve`] asked for).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[..]
    }

    /// Hands out the next `len` bytes (zeroed unless written through [`Arena::spare`]).
    pub(crate) fn take(&mut self, len: usize) -> BytesMut {
        self.reserve(len);
        self.buf.split_to(len)
    }

    #[cfg(test)]
    /// How many times a new buffer was allocated (for tests and stats).
    pub(crate) fn refills(&self) -> u64 {
        self.refills
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_disjoint_zeroed_and_share_one_allocation() {
        let mut a = Arena::new(4096);
        let mut p1 = a.take(1000);
        let p2 = a.take(1000);
        assert!(p1.iter().chain(p2.iter()).all(|b| *b == 0));
        p1[0] = 7;
        assert_eq!(p2[0], 0, "writing one piece leaves the next alone");
        let end1 = p1.as_ptr() as usize + p1.len();
        assert_eq!(
            end1,
            p2.as_ptr() as usize,
            "consecutive pieces of one buffer"
        );
        let _p3 = a.take(2000);
        assert_eq!(a.refills(), 0);
        let _p4 = a.take(200);
        assert_eq!(
            a.refills(),
            1,
            "a new buffer only when the old one is used up"
        );
    }

    #[test]
    fn spare_writes_land_in_the_next_piece() {
        let mut a = Arena::new(256);
        a.reserve(64);
        a.spare()[..3].copy_from_slice(b"abc");
        let mut p = a.take(64);
        p.truncate(3);
        assert_eq!(&p[..], b"abc");
        a.reserve(1000);
        assert!(
            a.spare().len() >= 1000,
            "asks larger than the arena still fit"
        );
    }
}
