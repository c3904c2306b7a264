//! One side of a book: a price ladder with a FIFO queue per tick, linked
//! through the engine's order slots, a bitmap of non-empty ticks, and the
//! lowest and highest non-empty tick kept up to date, so the best price is
//! read in O(1) whatever the band's width, and the next one is found by
//! scanning bitmap words from where the best was (near it, in practice).

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
    /// Lowest and highest non-empty tick (meaningless while `count` is 0).
    lo: u32,
    hi: u32,
}

impl Ladder {
    /// A ladder for ticks `0..ticks`.
    pub fn new(ticks: u32) -> Self {
        Self {
            levels: vec![EMPTY_LEVEL; ticks as usize],
            bits: vec![0; (ticks as usize).div_ceil(64)],
            count: 0,
            lo: 0,
            hi: 0,
        }
    }

    /// Give back the memory of a closed book.
    pub fn release(&mut self) {
        self.levels = Vec::new();
        self.bits = Vec::new();
        self.count = 0;
    }

    /// Number of non-empty levels.
    pub fn level_count(&self) -> u32 {
        self.count
    }

    /// Highest non-empty tick.
    #[inline]
    pub fn highest(&self) -> Option<u32> {
        (self.count > 0).then_some(self.hi)
    }

    /// Lowest non-empty tick.
    #[inline]
    pub fn lowest(&self) -> Option<u32> {
        (self.count > 0).then_some(self.lo)
    }

    /// Highest non-empty tick ≤ `t`.
    #[inline]
    pub fn highest_at_or_below(&self, t: u32) -> Option<u32> {
        if self.count == 0 || t < self.lo {
            return None;
        }
        if t >= self.hi {
            return Some(self.hi);
        }
        self.scan_down(t)
    }

    /// Highest set bit at or below `t` (`lo ≤ t`), by words.
    #[inline]
    fn scan_down(&self, t: u32) -> Option<u32> {
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
        if self.count == 0 || t > self.hi {
            return None;
        }
        if t <= self.lo {
            return Some(self.lo);
        }
        self.scan_up(t)
    }

    /// Lowest set bit at or above `t` (`t ≤ hi`), by words.
    #[inline]
    fn scan_up(&self, t: u32) -> Option<u32> {
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
            if self.count == 0 {
                (self.lo, self.hi) = (t, t);
            } else {
                self.lo = self.lo.min(t);
                self.hi = self.hi.max(t);
            }
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
            if self.count > 0 {
                // the next best is found from where the best was
                if t == self.lo {
                    self.lo = self.scan_up(t).unwrap_or(self.hi);
                }
                if t == self.hi {
                    self.hi = self.scan_down(t).unwrap_or(self.lo);
                }
            }
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

    #[test]
    fn best_prices_agree_with_a_scan_of_every_level_across_a_wide_band() {
        // 16,384 ticks; pushes and unlinks at random, the kept best prices and every
        // at-or-above / at-or-below query checked against a map of the occupied ticks
        const TICKS: u32 = 16_384;
        let mut s = Slots(vec![(NIL, NIL); 512]);
        let mut l = Ladder::new(TICKS);
        let mut at: Vec<Option<u32>> = vec![None; 512];
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        // how many slots rest at each tick, for the plain answers
        let mut count: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
        for step in 0..20_000 {
            let slot = rand(512) as usize;
            match at[slot] {
                None => {
                    // clustered prices with outliers anywhere in the band
                    let t = match rand(10) {
                        0 => rand(u64::from(TICKS)) as u32,
                        _ => 8_000 + rand(200) as u32,
                    };
                    l.push_back(&mut s, t, slot as u32, 1);
                    at[slot] = Some(t);
                    *count.entry(t).or_default() += 1;
                }
                Some(t) => {
                    l.unlink(&mut s, t, slot as u32, 1);
                    at[slot] = None;
                    let c = count.get_mut(&t).unwrap();
                    *c -= 1;
                    if *c == 0 {
                        count.remove(&t);
                    }
                }
            }
            assert_eq!(l.lowest(), count.keys().next().copied(), "step {step}");
            assert_eq!(l.highest(), count.keys().next_back().copied(), "step {step}");
            let q = rand(u64::from(TICKS)) as u32;
            assert_eq!(
                l.lowest_at_or_above(q),
                count.range(q..).next().map(|(t, _)| *t),
                "step {step}: at or above {q}"
            );
            assert_eq!(
                l.highest_at_or_below(q),
                count.range(..=q).next_back().map(|(t, _)| *t),
                "step {step}: at or below {q}"
            );
        }
    }
}
