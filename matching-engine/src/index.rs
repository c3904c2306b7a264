//! Order id → slot index: open addressing with Robin Hood linear probing
//! and backward-shift deletion (entries stay ordered by probe distance, so a
//! miss or a delete stops at the first entry closer to home than we are). The table grows (doubling) with the number of
//! live orders, so it stays dense and cache-friendly instead of being sized
//! for the configured maximum; once it has grown to the busiest moment seen
//! (warm-up), inserting and removing never allocate again.

use gridshare_domain::OrderId;

const EMPTY: u64 = u64::MAX;

/// A fixed-capacity map from order id to slot.
#[derive(Debug, Clone)]
pub struct OrderIndex {
    keys: Vec<u64>,
    vals: Vec<u32>,
    mask: usize,
    len: usize,
    max_len: usize,
}

impl OrderIndex {
    /// An index that holds at most `max_len` live orders (exactly that many,
    /// however few), starting small.
    pub fn with_capacity(max_len: usize) -> Self {
        let size = (max_len.max(8) * 2).next_power_of_two().min(1 << 12);
        Self {
            keys: vec![EMPTY; size],
            vals: vec![0; size],
            mask: size - 1,
            len: 0,
            max_len,
        }
    }

    /// Double the table and re-insert every entry (only while warming up).
    fn grow(&mut self) {
        let size = (self.mask + 1) * 2;
        let keys = std::mem::replace(&mut self.keys, vec![EMPTY; size]);
        let vals = std::mem::replace(&mut self.vals, vec![0; size]);
        self.mask = size - 1;
        for (k, v) in keys.into_iter().zip(vals) {
            if k != EMPTY {
                self.place(k, v);
            }
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing spreads ids evenly, whatever their pattern.
        // (Placing sequential ids by their low bits was faster on some
        // workloads but let later ids wrap into long dense runs: 14x slower
        // on a pre-filled book. See BENCHMARKS.md.)
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize & self.mask
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more entries fit.
    pub fn is_full(&self) -> bool {
        self.len >= self.max_len
    }

    #[inline]
    fn dist(&self, i: usize) -> usize {
        i.wrapping_sub(self.home(self.keys[i])) & self.mask
    }

    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        if key == EMPTY {
            return None;
        }
        let mut i = self.home(key);
        let mut d = 0;
        loop {
            let k = self.keys[i];
            if k == key {
                return Some(i);
            }
            // Robin Hood: past an entry closer to its home than we are, the key cannot be.
            if k == EMPTY || self.dist(i) < d {
                return None;
            }
            i = (i + 1) & self.mask;
            d += 1;
        }
    }

    /// The slot of `id`, if live.
    #[inline]
    pub fn get(&self, id: OrderId) -> Option<u32> {
        self.find(id.0).map(|i| self.vals[i])
    }

    /// Put a key known to be absent, swapping with richer entries on the way.
    #[inline]
    fn place(&mut self, mut key: u64, mut val: u32) {
        let mut i = self.home(key);
        let mut d = 0;
        loop {
            if self.keys[i] == EMPTY {
                self.keys[i] = key;
                self.vals[i] = val;
                return;
            }
            let existing = self.dist(i);
            if existing < d {
                std::mem::swap(&mut self.keys[i], &mut key);
                std::mem::swap(&mut self.vals[i], &mut val);
                d = existing;
            }
            i = (i + 1) & self.mask;
            d += 1;
        }
    }

    /// Insert; false if the id is present, reserved (`u64::MAX`) or the index is full.
    #[inline]
    pub fn insert(&mut self, id: OrderId, slot: u32) -> bool {
        let key = id.0;
        if key == EMPTY || self.is_full() || self.find(key).is_some() {
            return false;
        }
        // Keep the load factor at or under one half.
        if (self.len + 1) * 2 > self.mask + 1 {
            self.grow();
        }
        self.place(key, slot);
        self.len += 1;
        true
    }

    /// Remove `id`, returning its slot.
    #[inline]
    pub fn remove(&mut self, id: OrderId) -> Option<u32> {
        let mut i = self.find(id.0)?;
        let val = self.vals[i];
        // Backward shift until an empty slot or an entry already at its home.
        loop {
            let j = (i + 1) & self.mask;
            if self.keys[j] == EMPTY || self.dist(j) == 0 {
                self.keys[i] = EMPTY;
                break;
            }
            self.keys[i] = self.keys[j];
            self.vals[i] = self.vals[j];
            i = j;
        }
        self.len -= 1;
        Some(val)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn behaves_like_a_hashmap(ops in prop::collection::vec((any::<bool>(), 0u64..64), 0..400)) {
            let mut idx = OrderIndex::with_capacity(64);
            let mut model = HashMap::new();
            for (n, (insert, key)) in ops.into_iter().enumerate() {
                if insert {
                    let fresh = !model.contains_key(&key);
                    prop_assert_eq!(idx.insert(OrderId(key), n as u32), fresh);
                    model.entry(key).or_insert(n as u32);
                } else {
                    prop_assert_eq!(idx.remove(OrderId(key)), model.remove(&key));
                }
                prop_assert_eq!(idx.len(), model.len());
                for (k, v) in &model {
                    prop_assert_eq!(idx.get(OrderId(*k)), Some(*v));
                }
            }
        }
    }

    proptest! {
        #[test]
        fn colliding_keys_behave_like_a_hashmap(ops in prop::collection::vec((any::<bool>(), 0u64..300), 0..600)) {
            // Multiples of 4096 share their low bits: every key lands on one home slot.
            let mut idx = OrderIndex::with_capacity(1000);
            let mut model = HashMap::new();
            for (n, (insert, k)) in ops.into_iter().enumerate() {
                let key = k * 4096;
                if insert {
                    prop_assert_eq!(idx.insert(OrderId(key), n as u32), !model.contains_key(&key));
                    model.entry(key).or_insert(n as u32);
                } else {
                    prop_assert_eq!(idx.remove(OrderId(key)), model.remove(&key));
                }
            }
            for (k, v) in &model {
                prop_assert_eq!(idx.get(OrderId(*k)), Some(*v));
            }
            prop_assert_eq!(idx.len(), model.len());
        }
    }

    #[test]
    fn grows_beyond_its_first_table() {
        let mut idx = OrderIndex::with_capacity(100_000);
        for i in 0..50_000u64 {
            assert!(idx.insert(OrderId(i * 3), i as u32));
        }
        for i in 0..50_000u64 {
            assert_eq!(idx.get(OrderId(i * 3)), Some(i as u32));
            assert_eq!(idx.get(OrderId(i * 3 + 1)), None);
        }
    }

    #[test]
    fn full_and_reserved() {
        let mut idx = OrderIndex::with_capacity(8);
        for i in 0..8 {
            assert!(idx.get(OrderId(i)).is_none());
            assert!(idx.insert(OrderId(i), 0));
        }
        assert!(!idx.insert(OrderId(100), 0), "full");
        assert!(!idx.insert(OrderId(u64::MAX), 0), "reserved key");
        assert_eq!(idx.get(OrderId(u64::MAX)), None);
    }
}
