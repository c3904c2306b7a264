//! Order id → slot index: open addressing with linear probing and
//! backward-shift deletion. The table grows (doubling) with the number of
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
    /// An index that holds at most `max_len` live orders, starting small.
    pub fn with_capacity(max_len: usize) -> Self {
        let size = (max_len.max(8) * 2).next_power_of_two().min(1 << 12);
        Self {
            keys: vec![EMPTY; size],
            vals: vec![0; size],
            mask: size - 1,
            len: 0,
            max_len: max_len.max(8),
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
                let mut i = self.home(k);
                while self.keys[i] != EMPTY {
                    i = (i + 1) & self.mask;
                }
                self.keys[i] = k;
                self.vals[i] = v;
            }
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing spreads sequential ids over the table.
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

    /// The slot of `id`, if live.
    #[inline]
    pub fn get(&self, id: OrderId) -> Option<u32> {
        let key = id.0;
        if key == EMPTY {
            return None;
        }
        let mut i = self.home(key);
        loop {
            let k = self.keys[i];
            if k == key {
                return Some(self.vals[i]);
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Insert; false if the id is present, reserved (`u64::MAX`) or the index is full.
    #[inline]
    pub fn insert(&mut self, id: OrderId, slot: u32) -> bool {
        let key = id.0;
        if key == EMPTY || self.is_full() {
            return false;
        }
        // Keep the load factor at or under one half.
        if (self.len + 1) * 2 > self.mask + 1 {
            self.grow();
        }
        let mut i = self.home(key);
        loop {
            let k = self.keys[i];
            if k == key {
                return false;
            }
            if k == EMPTY {
                self.keys[i] = key;
                self.vals[i] = slot;
                self.len += 1;
                return true;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Remove `id`, returning its slot.
    #[inline]
    pub fn remove(&mut self, id: OrderId) -> Option<u32> {
        let key = id.0;
        if key == EMPTY {
            return None;
        }
        let mut i = self.home(key);
        loop {
            let k = self.keys[i];
            if k == EMPTY {
                return None;
            }
            if k == key {
                break;
            }
            i = (i + 1) & self.mask;
        }
        let val = self.vals[i];
        // Backward-shift: pull later entries of the probe run into the hole.
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        loop {
            let k = self.keys[j];
            if k == EMPTY {
                break;
            }
            let home = self.home(k);
            // Move k if its home is not in the cyclic range (hole, j].
            let in_range = if hole <= j {
                home > hole && home <= j
            } else {
                home > hole || home <= j
            };
            if !in_range {
                self.keys[hole] = k;
                self.vals[hole] = self.vals[j];
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.keys[hole] = EMPTY;
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
