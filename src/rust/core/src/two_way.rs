//! A small two-way set-associative table, used to store and make each
//! distinct text of a character vector once (the writer by R string, the
//! reader by text position in the region). It is a cache, not a map: an
//! entry may be forgotten, which costs a duplicate, never a wrong answer.
//! Its size follows the vector's length (up to 4096 slots), so a million
//! short vectors do not each carry a full-size table.

pub struct TwoWay<K, V> {
    slots: Box<[(K, V)]>,
    /// `usize::BITS - log2(slots)`: the hash's top bits pick the set.
    shift: u32,
}

impl<K: Copy + Eq, V: Copy> TwoWay<K, V> {
    const MAX_SLOTS: usize = 4096;

    /// A table for a vector of `len` elements; `empty` fills the slots (its
    /// key must never be looked up).
    pub fn new(len: u64, empty: (K, V)) -> TwoWay<K, V> {
        let slots = (len.saturating_mul(2).min(Self::MAX_SLOTS as u64) as usize).next_power_of_two().max(2);
        TwoWay { slots: vec![empty; slots].into_boxed_slice(), shift: usize::BITS - slots.trailing_zeros() }
    }

    /// The first of the two slots a key with this `hash` may be in.
    fn set(&self, hash: usize) -> usize {
        // The multiply spreads the hash's low bits into the top ones.
        let top = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (top.checked_shr(self.shift).unwrap_or(0)) & !1
    }

    pub fn find(&self, hash: usize, key: K) -> Option<V> {
        let set = self.set(hash);
        self.slots[set..set + 2].iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }

    /// Remembers `key`; the set's older entry goes.
    pub fn insert(&mut self, hash: usize, key: K, value: V) {
        let set = self.set(hash);
        self.slots[set + 1] = self.slots[set];
        self.slots[set] = (key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::TwoWay;

    #[test]
    fn sized_by_length_and_finds_what_it_keeps() {
        assert_eq!(TwoWay::<u64, u64>::new(0, (0, 0)).slots.len(), 2);
        assert_eq!(TwoWay::<u64, u64>::new(3, (0, 0)).slots.len(), 8);
        assert_eq!(TwoWay::<u64, u64>::new(1 << 40, (0, 0)).slots.len(), 4096);
        for len in [1u64, 2, 5, 100, 5000] {
            let mut t = TwoWay::new(len, (0u64, 0u64));
            for k in 1..=len.min(64) {
                t.insert(k as usize * 8, k, k * 10);
                assert_eq!(t.find(k as usize * 8, k), Some(k * 10));
            }
            assert_eq!(t.find(12345, 999_999), None);
        }
    }
}
