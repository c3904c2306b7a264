//! One side of a book: a price ladder with a FIFO queue per tick, linked
//! through the engine's order slots, and a bitmap of non-empty ticks so the
//! best price is found by scanning words, not levels.

/// "No slot" in the intrusive lists.
pub const NIL: u32 = u32::MAX;

/// A price level: queue ends and total quantity.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// First order (oldest).
    pub head: u32,
    /// Last order (newest).
    pub tail: u32,
    /// Total remaining quantity.
    pub qty: i64,
}

const EMPTY_LEVEL: Level = Level {
    head: NIL,
    tail: NIL,
    qty: 0,
};

/// The queue links of an order slot, as the ladder sees them.
pub trait Links {
    /// Previous and next slot of `slot`.
    fn links(&mut self, slot: u32) -> (&mut u32, &mut u32);
}

/// Price levels indexed by tick, plus a bitmap of non-empty ones.
#[derive(Debug, Clone, Default)]
pub struct Ladder {
    /// Levels by tick.
    pub levels: Vec<Level>,
    bits: Vec<u64>,
    count: u32,
}

impl Ladder {
    /// A ladder for ticks `0..ticks`.
    pub fn new(ticks: u32) -> Self {
        Self {
            levels: vec![EMPTY_LEVEL; ticks as usize],
            bits: vec![0; (ticks as usize).div_ceil(64)],
            count: 0,
        }
    }

    /// Give back the memory of a closed book.
    pub fn release(&mut self) {
        self.levels = Vec::new();
        self.bits = Vec::new();
    }

    /// Number of non-empty levels.
    pub fn level_count(&self) -> u32 {
        self.count
    }

    /// Highest non-empty tick.
    #[inline]
    pub fn highest(&self) -> Option<u32> {
        self.highest_at_or_below(u32::MAX)
    }

    /// Lowest non-empty tick.
    #[inline]
    pub fn lowest(&self) -> Option<u32> {
        self.lowest_at_or_above(0)
    }

    /// Highest non-empty tick ≤ `t`.
    #[inline]
    pub fn highest_at_or_below(&self, t: u32) -> Option<u32> {
        if self.count == 0 {
            return None;
        }
        let last = self.levels.len() as u32 - 1;
        let t = t.min(last);
        let mut w = (t / 64) as usize;
        let mut word = self.bits[w] & (u64::MAX >> (63 - (t % 64)));
        loop {
            if word != 0 {
                return Some(w as u32 * 64 + 63 - word.leading_zeros());
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            word = self.bits[w];
        }
    }

    /// Lowest non-empty tick ≥ `t`.
    #[inline]
    pub fn lowest_at_or_above(&self, t: u32) -> Option<u32> {
        if self.count == 0 || t as usize >= self.levels.len() {
            return None;
        }
        let mut w = (t / 64) as usize;
        let mut word = self.bits[w] & (u64::MAX << (t % 64));
        loop {
            if word != 0 {
                return Some(w as u32 * 64 + word.trailing_zeros());
            }
            w += 1;
            if w >= self.bits.len() {
                return None;
            }
            word = self.bits[w];
        }
    }

    /// Append `slot` (quantity `qty`) to the back of tick `t`'s queue.
    #[inline]
    pub fn push_back(&mut self, links: &mut impl Links, t: u32, slot: u32, qty: i64) {
        let level = &mut self.levels[t as usize];
        let tail = level.tail;
        {
            let (prev, next) = links.links(slot);
            *prev = tail;
            *next = NIL;
        }
        if tail == NIL {
            level.head = slot;
            self.bits[(t / 64) as usize] |= 1 << (t % 64);
            self.count += 1;
        } else {
            *links.links(tail).1 = slot;
        }
        level.tail = slot;
        level.qty += qty;
    }

    /// Unlink `slot` (remaining quantity `qty`) from tick `t`'s queue.
    #[inline]
    pub fn unlink(&mut self, links: &mut impl Links, t: u32, slot: u32, qty: i64) {
        let (prev, next) = {
            let (p, n) = links.links(slot);
            (*p, *n)
        };
        let level = &mut self.levels[t as usize];
        if prev == NIL {
            level.head = next;
        } else {
            *links.links(prev).1 = next;
        }
        if next == NIL {
            level.tail = prev;
        } else {
            *links.links(next).0 = prev;
        }
        level.qty -= qty;
        if level.head == NIL {
            self.bits[(t / 64) as usize] &= !(1 << (t % 64));
            self.count -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slots(Vec<(u32, u32)>);
    impl Links for Slots {
        fn links(&mut self, slot: u32) -> (&mut u32, &mut u32) {
            let (p, n) = &mut self.0[slot as usize];
            (p, n)
        }
    }

    #[test]
    fn best_prices_follow_pushes_and_unlinks() {
        let mut s = Slots(vec![(NIL, NIL); 8]);
        let mut l = Ladder::new(200);
        assert_eq!((l.highest(), l.lowest()), (None, None));
        l.push_back(&mut s, 5, 0, 10);
        l.push_back(&mut s, 130, 1, 10);
        l.push_back(&mut s, 130, 2, 5);
        l.push_back(&mut s, 199, 3, 1);
        assert_eq!((l.highest(), l.lowest()), (Some(199), Some(5)));
        assert_eq!(l.highest_at_or_below(198), Some(130));
        assert_eq!(l.lowest_at_or_above(6), Some(130));
        assert_eq!(l.lowest_at_or_above(131), Some(199));
        assert_eq!(l.levels[130].qty, 15);
        l.unlink(&mut s, 130, 1, 10);
        assert_eq!((l.levels[130].head, l.levels[130].tail), (2, 2));
        l.unlink(&mut s, 130, 2, 5);
        assert_eq!(l.lowest_at_or_above(6), Some(199));
        l.unlink(&mut s, 199, 3, 1);
        l.unlink(&mut s, 5, 0, 10);
        assert_eq!((l.highest(), l.lowest(), l.level_count()), (None, None, 0));
    }
}
