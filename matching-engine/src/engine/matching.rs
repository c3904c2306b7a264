//! Continuous matching: an order meets the opposite side in priority order (delivered price,
//! then time), within its limit, the path fee and the room on its path; re-matching after a
//! trade frees an edge. The rules are in the [`super`] module docs.

use super::*;

impl Engine {
    /// Match a freshly (re)priced order and rest, expire or cancel what is
    /// left; then, if it traded, re-match what the trades unblocked.
    pub(super) fn process(&mut self, at: Timestamp, slot: u32, tif: TimeInForce, out: &mut impl EventSink) {
        let book_i = self.slots[slot as usize].book as usize;
        let trades_before = self.books[book_i].trades;
        self.match_and_rest(at, slot, tif, out);
        if self.books[book_i].trades != trades_before {
            self.rematch(at, book_i, out);
        }
    }

    pub(super) fn match_and_rest(&mut self, at: Timestamp, slot: u32, tif: TimeInForce, out: &mut impl EventSink) {
        let s = self.slots[slot as usize];
        let end = if s.auction_only {
            MatchEnd::Done
        } else {
            let (end, blocked) = self.match_order(at, slot, u64::MAX, true, out);
            if blocked {
                self.books[s.book as usize].blocked = true;
            }
            end
        };
        let rem = self.slots[slot as usize].qty;
        if rem == 0 {
            self.release(slot);
            return;
        }
        let reason = match (end, tif) {
            (MatchEnd::SelfTrade, _) => Some(CancelReason::SelfTrade),
            (_, TimeInForce::ImmediateOrCancel | TimeInForce::FillOrKill) => Some(CancelReason::ImmediateOrCancel),
            _ if self.crosses_own(slot) => Some(CancelReason::SelfTrade),
            _ => None,
        };
        match reason {
            Some(reason) => {
                out.push(Event::Cancelled {
                    id: s.id,
                    remaining: Wh(rem),
                    reason,
                });
                self.release(slot);
            }
            None => self.rest(slot),
        }
    }

    /// True when `slot`, about to rest, would cross an opposite order of the
    /// same owner that matching did not see: an auction-only one (or, for an
    /// auction-only order, any). Such a pair could only meet in the auction,
    /// where it must not trade, so the newer order goes.
    pub(super) fn crosses_own(&self, slot: u32) -> bool {
        let s = self.slots[slot as usize];
        let b = &self.books[s.book as usize];
        let ladders: [Option<&Ladder>; 2] = match (s.side, s.auction_only) {
            (Side::Buy, false) => [Some(&b.auction_asks), None],
            (Side::Sell, false) => [Some(&b.auction_bids), None],
            (Side::Buy, true) => [Some(&b.auction_asks), Some(&b.asks)],
            (Side::Sell, true) => [Some(&b.auction_bids), Some(&b.bids)],
        };
        ladders.into_iter().flatten().any(|l| {
            let mut t = match s.side {
                Side::Buy => l.lowest(),
                Side::Sell => l.highest(),
            };
            while let Some(tick) = t {
                let crosses = match s.side {
                    Side::Buy => tick <= s.tick,
                    Side::Sell => tick >= s.tick,
                };
                if !crosses {
                    return false;
                }
                let mut r = l.levels[tick as usize].head;
                while r != NIL {
                    if self.slots[r as usize].owner == s.owner {
                        return true;
                    }
                    r = self.slots[r as usize].next;
                }
                t = match s.side {
                    Side::Buy => l.lowest_at_or_above(tick + 1),
                    Side::Sell => tick.checked_sub(1).and_then(|t1| l.highest_at_or_below(t1)),
                };
            }
            false
        })
    }

    pub(super) fn alloc(&mut self, s: Slot) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = s;
                i
            }
            None => {
                self.slots.push(s);
                (self.slots.len() - 1) as u32
            }
        }
    }

    pub(super) fn release(&mut self, slot: u32) {
        let id = self.slots[slot as usize].id;
        self.index_remove(id);
        self.slots[slot as usize] = FREE_SLOT;
        self.free.push(slot);
    }

    pub(super) fn ladder_of(book: &mut Book, side: Side, auction_only: bool) -> &mut Ladder {
        match (side, auction_only) {
            (Side::Buy, false) => &mut book.bids,
            (Side::Sell, false) => &mut book.asks,
            (Side::Buy, true) => &mut book.auction_bids,
            (Side::Sell, true) => &mut book.auction_asks,
        }
    }

    pub(super) fn rest(&mut self, slot: u32) {
        let s = self.slots[slot as usize];
        let ladder = Self::ladder_of(&mut self.books[s.book as usize], s.side, s.auction_only);
        ladder.push_back(&mut SlotLinks(&mut self.slots), s.tick, slot, s.qty);
    }

    pub(super) fn unrest(&mut self, slot: u32) {
        let s = self.slots[slot as usize];
        let ladder = Self::ladder_of(&mut self.books[s.book as usize], s.side, s.auction_only);
        ladder.unlink(&mut SlotLinks(&mut self.slots), s.tick, slot, s.qty);
    }

    /// Fee and room for a pair in book `book_i` (the call auction's pairing).
    #[inline]
    pub(super) fn pair_terms(&self, book_i: usize, seller_node: u32, buyer_node: u32) -> (i64, i64) {
        let book = &self.books[book_i];
        let fee = self.fee_between(book.fees, seller_node, buyer_node);
        match &self.network {
            None => (fee, i64::MAX),
            Some(n) => (fee, n.path_room(seller_node, buyer_node, &book.flows)),
        }
    }

    /// Visit the resting continuous orders opposite an order of `side`
    /// limited at `tick`, from dense node `node`, in priority order: best
    /// delivered price (ask + path fee for a buyer, bid − path fee for a
    /// seller), then time. Only orders older than `older_than` (a sequence
    /// number) and price-compatible after the fee are visited, plus `owner`'s
    /// own (for self-trade prevention). `visit` returns false to stop; it may
    /// trade the visited order away, nothing else.
    ///
    /// Without a network every fee is the same (0, or the book's `per_kwh`): the
    /// ladder is walked level by level. With one, levels are walked in price
    /// order and their orders pushed on a heap; an order at a level not yet
    /// reached is worth at least that level's price (fees are never negative),
    /// so everything on the heap strictly better than the next level is final
    /// and is visited first.
    #[allow(clippy::too_many_arguments)] // the incoming order's terms, spelled out
    #[inline]
    pub(super) fn walk_opposite(
        &mut self,
        book_i: usize,
        side: Side,
        tick: u32,
        node: u32,
        owner: ParticipantId,
        older_than: u64,
        mut visit: impl FnMut(&mut Self, u32, i64) -> bool,
    ) {
        let fees = self.books[book_i].fees;
        let crosses = |t: u32| match side {
            Side::Buy => t <= tick,
            Side::Sell => t >= tick,
        };
        let next_level = |b: &Book, from: Option<u32>| {
            from.and_then(|f| match side {
                Side::Buy => b.asks.lowest_at_or_above(f),
                Side::Sell => b.bids.highest_at_or_below(f),
            })
            .filter(|&t| crosses(t))
        };
        let after = |t: u32| match side {
            Side::Buy => t.checked_add(1),
            Side::Sell => t.checked_sub(1),
        };
        let first = Some(match side {
            Side::Buy => 0,
            Side::Sell => u32::MAX,
        });
        let head = |b: &Book, t: u32| match side {
            Side::Buy => b.asks.levels[t as usize].head,
            Side::Sell => b.bids.levels[t as usize].head,
        };
        if self.network.is_none() {
            // Every fee is the book's flat one: a level within `shift` ticks of the limit (the
            // fee, rounded up to whole ticks) crosses before the fee, not after it; its orders
            // are visited only when they are the owner's own (self-trade prevention, as with a
            // tree), after every order that matches.
            let fee = Self::least_fee(fees);
            let shift = (fee + self.cfg.tick.0 - 1) / self.cfg.tick.0;
            let mut level = next_level(&self.books[book_i], first);
            while let Some(t) = level {
                let matches = match side {
                    Side::Buy => i64::from(t) + shift <= i64::from(tick),
                    Side::Sell => i64::from(t) >= i64::from(tick) + shift,
                };
                let mut r = head(&self.books[book_i], t);
                while r != NIL {
                    let rs = &self.slots[r as usize];
                    let next = rs.next;
                    if rs.seq < older_than && (matches || rs.owner == owner) && !visit(self, r, fee) {
                        return;
                    }
                    r = next;
                }
                level = next_level(&self.books[book_i], after(t));
            }
            return;
        }
        let limit = self.price_of(tick);
        let mut heap = std::mem::take(&mut self.scratch_heap);
        heap.clear();
        let mut from = first;
        loop {
            let level = next_level(&self.books[book_i], from);
            let bound = level.map(|t| match side {
                Side::Buy => self.price_of(t),
                Side::Sell => -self.price_of(t),
            });
            while let Some(&Reverse((key, _, slot, fee))) = heap.peek() {
                if bound.is_some_and(|b| key >= b) {
                    break;
                }
                heap.pop();
                if !visit(self, slot, fee) {
                    heap.clear();
                    self.scratch_heap = heap;
                    return;
                }
            }
            let Some(t) = level else {
                break;
            };
            let price = self.price_of(t);
            let mut r = head(&self.books[book_i], t);
            while r != NIL {
                let rs = &self.slots[r as usize];
                if rs.seq < older_than {
                    let (key, ok) = match side {
                        Side::Buy => {
                            let fee = self.fee_between(fees, rs.node, node);
                            ((price + fee, fee), price + fee <= limit)
                        }
                        Side::Sell => {
                            let fee = self.fee_between(fees, node, rs.node);
                            ((fee - price, fee), price - fee >= limit)
                        }
                    };
                    if ok || rs.owner == owner {
                        heap.push(Reverse((key.0, rs.seq, r, key.1)));
                    }
                }
                r = rs.next;
            }
            from = after(t);
        }
        self.scratch_heap = heap;
    }

    /// Continuous matching of `slot` against the opposite continuous ladder
    /// (orders older than `older_than` only). With `stp`, meeting its owner's
    /// order stops matching (self-trade prevention); without, such orders are
    /// passed over. The order's remaining quantity is written back; a resting
    /// order's level is the caller's to adjust. Also returns whether a
    /// price-compatible pair was left without room on its path.
    pub(super) fn match_order(
        &mut self,
        at: Timestamp,
        slot: u32,
        older_than: u64,
        stp: bool,
        out: &mut impl EventSink,
    ) -> (MatchEnd, bool) {
        let inc = self.slots[slot as usize];
        let book_i = inc.book as usize;
        let mut rem = inc.qty;
        let mut end = MatchEnd::Done;
        let mut blocked = false;
        self.walk_opposite(
            book_i,
            inc.side,
            inc.tick,
            inc.node,
            inc.owner,
            older_than,
            |e, r, fee| {
                let rs = e.slots[r as usize];
                if rs.owner == inc.owner {
                    if stp {
                        end = MatchEnd::SelfTrade;
                        return false;
                    }
                    return true;
                }
                let (buy, sell) = match inc.side {
                    Side::Buy => (inc, rs),
                    Side::Sell => (rs, inc),
                };
                let room = match &e.network {
                    None => i64::MAX,
                    Some(n) => n.path_room(sell.node, buy.node, &e.books[book_i].flows),
                };
                if room == 0 {
                    // Skipped, not removed: the next one may have room.
                    blocked = true;
                    return true;
                }
                let q = rem.min(rs.qty).min(room);
                if q == room {
                    blocked = true;
                }
                rem -= q;
                // The resting order's price: a buyer pays ask + fee; a resting bid pays its limit.
                let price = match inc.side {
                    Side::Buy => e.price_of(rs.tick),
                    Side::Sell => e.price_of(rs.tick) - fee,
                };
                e.execute(at, book_i, &buy, &sell, q, price, fee, false, out);
                // The resting order shrinks (or goes).
                e.books[book_i].level_sub(rs.side, rs.tick, q);
                e.slots[r as usize].qty -= q;
                if e.slots[r as usize].qty == 0 {
                    e.unrest_filled(r);
                }
                rem > 0
            },
        );
        self.slots[slot as usize].qty = rem;
        (end, blocked)
    }

    /// After trades changed a book's flows, trade the resting pairs they
    /// unblocked: every resting continuous order in the crossed part of the
    /// book, oldest first, is matched against the older ones as if it had
    /// just arrived; passes repeat until one trades nothing or leaves no
    /// blocked pair. Only a book that may hold a blocked pair is looked at.
    pub(super) fn rematch(&mut self, at: Timestamp, book_i: usize, out: &mut impl EventSink) {
        if self.network.is_none() {
            return;
        }
        let mut list = std::mem::take(&mut self.scratch_orders);
        while self.books[book_i].blocked {
            list.clear();
            let b = &self.books[book_i];
            let (Some(lowest_ask), Some(highest_bid)) = (b.asks.lowest(), b.bids.highest()) else {
                self.books[book_i].blocked = false;
                break;
            };
            if highest_bid < lowest_ask {
                self.books[book_i].blocked = false;
                break;
            }
            // Fees are never negative: only orders in the crossed range can pair.
            collect_range(&b.bids, lowest_ask, highest_bid, &self.slots, &mut list);
            collect_range(&b.asks, lowest_ask, highest_bid, &self.slots, &mut list);
            list.sort_unstable();
            let (mut traded, mut blocked) = (false, false);
            for &(seq, slot) in &list {
                let s = self.slots[slot as usize];
                if s.seq != seq {
                    continue; // filled earlier in this pass
                }
                let (_, b) = self.match_order(at, slot, seq, false, out);
                blocked |= b;
                let left = self.slots[slot as usize].qty;
                if left < s.qty {
                    traded = true;
                    self.books[book_i].level_sub(s.side, s.tick, s.qty - left);
                    if left == 0 {
                        self.unrest_filled(slot);
                    }
                }
            }
            // No trade: nothing changed, `blocked` is exact. No pair left
            // blocked: every compatible pair traded until one side ran out.
            self.books[book_i].blocked = blocked;
            if !traded {
                break;
            }
        }
        self.scratch_orders = list;
    }

    /// Remove a resting order whose quantity reached zero (level qty already reduced).
    pub(super) fn unrest_filled(&mut self, slot: u32) {
        // `unlink` subtracts the slot's qty (0 now) from the level.
        self.unrest(slot);
        self.release(slot);
    }

    #[allow(clippy::too_many_arguments)] // one trade's full description
    #[inline]
    pub(super) fn execute(
        &mut self,
        at: Timestamp,
        book_i: usize,
        buy: &Slot,
        sell: &Slot,
        q: i64,
        price: i64,
        fee: i64,
        auction: bool,
        out: &mut impl EventSink,
    ) {
        let book = &mut self.books[book_i];
        if let Some(n) = &self.network {
            n.apply(sell.node, buy.node, q, &mut book.flows);
        }
        book.trades += 1;
        book.volume += q;
        let trade_id = TradeId(self.next_trade);
        self.next_trade += 1;
        out.push(Event::Trade {
            trade_id,
            zone: book.zone,
            interval: book.interval,
            buy: buy.id,
            sell: sell.id,
            buyer: buy.owner,
            seller: sell.owner,
            quantity: Wh(q),
            price: MicroPerKwh(price),
            grid_fee: MicroPerKwh(fee),
            auction,
            at,
        });
    }

    /// How much of an order of `side` at `tick` could fill now, up to `want`
    /// (a dry run of continuous matching, for fill-or-kill: the same walk).
    pub(super) fn fillable(
        &mut self,
        book: u32,
        side: Side,
        tick: u32,
        node: u32,
        owner: ParticipantId,
        want: i64,
    ) -> i64 {
        let book_i = book as usize;
        self.scratch_flows.copy_from_slice(&self.books[book_i].flows);
        let mut got = 0;
        self.walk_opposite(book_i, side, tick, node, owner, u64::MAX, |e, r, _fee| {
            let rs = e.slots[r as usize];
            if rs.owner == owner {
                return false;
            }
            let (seller_node, buyer_node) = match side {
                Side::Buy => (rs.node, node),
                Side::Sell => (node, rs.node),
            };
            if let Some(n) = &e.network {
                let room = n.path_room(seller_node, buyer_node, &e.scratch_flows);
                if room > 0 {
                    let q = (want - got).min(rs.qty).min(room);
                    n.apply(seller_node, buyer_node, q, &mut e.scratch_flows);
                    got += q;
                }
            } else {
                got += (want - got).min(rs.qty);
            }
            got < want
        });
        got
    }
}
