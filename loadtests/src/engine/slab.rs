//! Connections of one loop by key, and the key as the epoll token of their socket.
//!
//! Every client connection has its own UDP socket, so demultiplexing a datagram is the
//! readiness token of the socket it arrived on: no address lookup at all. A slot is
//! reused after its connection closed; the generation in the key makes a token of the
//! old connection (an event already returned by epoll, a late timer) resolve to nothing
//! instead of to the new occupant.

/// Identifies a connection on its loop: slot index and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    /// The epoll token of this key.
    pub(crate) fn token(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The key a token stands for.
    pub(crate) fn from_token(token: u64) -> Key {
        Key {
            index: token as u32,
            generation: (token >> 32) as u32,
        }
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A slab of values addressed by generation-checked keys.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// The key the next [`Slab::insert`] will return.
    pub(crate) fn next_key(&self) -> Key {
        match self.free.last() {
            Some(&index) => Key {
                index,
                generation: self.slots[index as usize].generation,
            },
            None => Key {
                index: self.slots.len() as u32,
                generation: 0,
            },
        }
    }

    /// Stores `value` and returns its key.
    pub(crate) fn insert(&mut self, value: T) -> Key {
        let key = self.next_key();
        match self.free.pop() {
            Some(index) => self.slots[index as usize].value = Some(value),
            None => self.slots.push(Slot {
                generation: 0,
                value: Some(value),
            }),
        }
        self.len += 1;
        key
    }

    /// The value of `key`, unless it was removed (or the slot reused since).
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// Removes and returns the value of `key`; the slot's next occupant gets a new
    /// generation.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        Some(value)
    }

    #[cfg(test)]
    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every key in use.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| Key {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        let mut s = Slab::default();
        let _ = s.insert('a');
        let k = s.insert('b');
        assert_eq!(Key::from_token(k.token()), k);
        assert_ne!(k.token(), u64::MAX, "the waker's token is never a key");
    }

    #[test]
    fn a_reused_slot_does_not_answer_to_the_old_key() {
        let mut s = Slab::default();
        let old = s.insert("first socket");
        assert_eq!(s.remove(old), Some("first socket"));
        let new = s.insert("second socket");
        assert_ne!(old, new);
        assert_eq!(old.index, new.index, "slot reused");
        assert_eq!(s.get_mut(old), None, "late event of the closed socket");
        assert_eq!(s.get_mut(new).copied(), Some("second socket"));
        assert_eq!(s.remove(old), None);
        assert_eq!(s.len(), 1);
        assert_eq!(s.keys(), vec![new]);
    }

    #[test]
    fn next_key_predicts_insert() {
        let mut s = Slab::default();
        let a = s.insert(1);
        let _b = s.insert(2);
        s.remove(a);
        let predicted = s.next_key();
        assert_eq!(s.insert(3), predicted);
        assert_eq!(s.next_key(), s.insert(4));
    }
}
