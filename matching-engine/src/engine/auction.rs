//! The gate-closure call auction: the uniform clearing price, pairing in priority order within
//! the feeder limits, and the cancellation of what is left. The rules are in the [`super`] module docs.

use super::*;

impl Engine {
    pub(super) fn close_gate(
        &mut self,
        at: Timestamp,
        zone: ZoneId,
        interval: DeliveryInterval,
        out: &mut impl EventSink,
    ) {
        let book_i = match self.open_book_index(zone, interval) {
            Ok(b) => b as usize,
            Err(reason) => {
                out.push(Event::Rejected { id: None, reason });
                return;
            }
        };
        let mut bids = std::mem::take(&mut self.scratch_bids);
        let mut asks = std::mem::take(&mut self.scratch_asks);
        bids.clear();
        asks.clear();
        {
            let b = &self.books[book_i];
            for ladder in [&b.bids, &b.auction_bids] {
                collect(ladder, &self.slots, &mut bids);
            }
            for ladder in [&b.asks, &b.auction_asks] {
                collect(ladder, &self.slots, &mut asks);
            }
        }
        let slots = &self.slots;
        // Priority: best price first, then arrival.
        bids.sort_unstable_by_key(|&(s, _)| (std::cmp::Reverse(slots[s as usize].tick), slots[s as usize].seq));
        asks.sort_unstable_by_key(|&(s, _)| (slots[s as usize].tick, slots[s as usize].seq));

        let (clearing, volume) = if self.network.is_some() {
            self.clear_network(at, book_i, &mut bids, &mut asks, out)
        } else {
            // Every trade pays the book's flat fee (0 or `per_kwh`): a bid of limit `b` buys at
            // seller prices up to `b − fee`, `shift` ticks lower (rounded so it stays within).
            let fee = Self::least_fee(self.books[book_i].fees);
            let shift = (fee + self.cfg.tick.0 - 1) / self.cfg.tick.0;
            let tick = self.clearing_tick(book_i, shift);
            let volume = self.pair_uniform(at, book_i, tick, &mut bids, &mut asks, out);
            (
                tick.filter(|_| volume > 0).map(|t| MicroPerKwh(self.price_of(t))),
                volume,
            )
        };
        out.push(Event::AuctionResult {
            zone,
            interval,
            clearing_price: clearing,
            volume: Wh(volume),
        });
        for &(slot, rem) in bids.iter().chain(asks.iter()) {
            if rem > 0 {
                out.push(Event::Cancelled {
                    id: self.slots[slot as usize].id,
                    remaining: Wh(rem),
                    reason: CancelReason::Unmatched,
                });
            }
            self.release(slot);
        }
        let book = &mut self.books[book_i];
        book.open = false;
        for l in [
            &mut book.bids,
            &mut book.asks,
            &mut book.auction_bids,
            &mut book.auction_asks,
        ] {
            l.release();
        }
        out.push(Event::BookClosed {
            zone,
            interval,
            total_volume: Wh(book.volume),
            trades: book.trades,
        });
        self.scratch_bids = bids;
        self.scratch_asks = asks;
    }

    /// Without a network: pair in priority order at the uniform price `clearing` (a tick), which
    /// sellers receive; buyers pay it plus the book's flat fee.
    fn pair_uniform(
        &mut self,
        at: Timestamp,
        book_i: usize,
        clearing: Option<u32>,
        bids: &mut [(u32, i64)],
        asks: &mut [(u32, i64)],
        out: &mut impl EventSink,
    ) -> i64 {
        let mut volume = 0i64;
        if let Some(pt) = clearing {
            let p = self.price_of(pt);
            let fee = Self::least_fee(self.books[book_i].fees); // every pair's, without a network
            let mut first_ask = 0usize;
            for bid in bids.iter_mut() {
                let b = self.slots[bid.0 as usize];
                if self.price_of(b.tick) < p + fee {
                    break;
                }
                let mut j = first_ask;
                while j < asks.len() && bid.1 > 0 {
                    let (a_slot, a_rem) = asks[j];
                    if a_rem == 0 {
                        if j == first_ask {
                            first_ask += 1;
                        }
                        j += 1;
                        continue;
                    }
                    let a = self.slots[a_slot as usize];
                    if a.tick > pt {
                        break;
                    }
                    if a.owner == b.owner {
                        j += 1;
                        continue;
                    }
                    let (fee, room) = self.pair_terms(book_i, a.node, b.node);
                    if p + fee > self.price_of(b.tick) || room == 0 {
                        j += 1;
                        continue;
                    }
                    let q = bid.1.min(a_rem).min(room);
                    self.execute(at, book_i, &b, &a, q, p, fee, true, out);
                    bid.1 -= q;
                    asks[j].1 -= q;
                    volume += q;
                    if asks[j].1 > 0 {
                        // Room on this path ran out; try the next seller.
                        j += 1;
                    }
                }
            }
        }
        volume
    }

    /// The uniform clearing tick (what sellers receive): maximise volume, then
    /// `lo + k·(hi − lo)`. A bid at tick `b` buys at seller ticks up to `b − shift` (the book's
    /// flat fee, in ticks rounded up; 0 without fees).
    pub(super) fn clearing_tick(&self, book_i: usize, shift: i64) -> Option<u32> {
        let b = &self.books[book_i];
        let lo = min_opt(b.asks.lowest(), b.auction_asks.lowest())?;
        let top_bid = max_opt(b.bids.highest(), b.auction_bids.highest())?;
        // A shift beyond the highest bid leaves no seller price any bid pays.
        let hi = u32::try_from(i64::from(top_bid) - shift).ok()?;
        if lo > hi {
            return None;
        }
        let s = top_bid - hi; // = shift, now known to fit
        let qty = |l: &Ladder, t: u32| l.levels[t as usize].qty;
        // Demand at t: bids at t + shift or above; supply at t: asks at t or below.
        // Walking t upward, supply grows as a running sum and demand shrinks
        // from the total, so one pass over [lo, hi] finds the best range.
        let mut demand: i64 = (lo + s..=top_bid)
            .map(|t| qty(&b.bids, t) + qty(&b.auction_bids, t))
            .sum();
        let mut supply: i64 = 0;
        let mut best = (0i64, lo, lo);
        for t in lo..=hi {
            supply += qty(&b.asks, t) + qty(&b.auction_asks, t);
            let v = demand.min(supply);
            if v > best.0 {
                best = (v, t, t);
            } else if v == best.0 && v > 0 && best.2 + 1 == t {
                best.2 = t;
            }
            demand -= qty(&b.bids, t + s) + qty(&b.auction_bids, t + s);
        }
        if best.0 == 0 {
            return None;
        }
        let (lo_t, hi_t) = (best.1, best.2);
        let k = u64::from(self.cfg.auction_k_permille);
        let span = u64::from(hi_t - lo_t);
        Some(lo_t + ((k * span + 500) / 1000) as u32)
    }
}
