//! The engine: books per (zone, interval), continuous matching, amend and
//! cancel, and the gate-closure call auction. Single-threaded, no I/O, no
//! clock (time comes in the commands), no allocation per command once the
//! scratch buffers have grown to the largest book.
//!
//! # Rules
//! - **Books** are keyed by zone and the whole delivery interval, start *and*
//!   length: `10:00/PT15M` and `10:00/PT60M` are two books.
//! - **Prices** are what the seller receives per kWh. A buy limit is the
//!   most the buyer pays per kWh *including* the grid fee of the path; a sell
//!   limit is the least the seller receives. Continuous trades execute at the
//!   resting order's price: a resting ask trades at its price and the buyer
//!   pays price + fee; a resting bid trades at bid − fee, so its owner pays
//!   exactly its limit.
//! - **Priority** is by delivered price, then time of arrival. An incoming
//!   buy meets first the ask whose price *plus the path fee* (what this buyer
//!   would pay) is lowest; an incoming sell meets first the bid whose price
//!   *minus the path fee* (what this seller would receive) is highest. Ties go
//!   to the older order. Without a network every fee is 0 and this is plain
//!   price-time priority. Reducing an order's quantity keeps its place; any
//!   other amend takes a new place at the back.
//! - **Self-trade prevention**: when the next match of an incoming (or
//!   re-priced) order would be against its own owner's resting order, the
//!   incoming order's remaining quantity is cancelled (`CancelReason::SelfTrade`);
//!   trades made before that stand. An order that would *rest* crossing an
//!   opposite order of its owner that continuous matching cannot reach (an
//!   auction-only one, or any, for an auction-only order) is cancelled the
//!   same way, so an owner's buy and sell never meet in the auction either.
//! - **Network**: with a feeder tree configured, a pair matches only when the
//!   buyer's limit covers the price plus the path fee and every edge of the
//!   path has room (capacities net counter-flows; see [`crate::network`]).
//!   A blocked resting order is skipped, not removed, and matching goes on
//!   with the next one in priority order — also when the edge above the
//!   incoming order's own node is full (counterparties at or below that node
//!   do not use it). The fill-or-kill check walks the same orders in the same
//!   order.
//! - **Re-matching**: a trade frees room on its path for flows the other way,
//!   so two resting orders blocked until then may now trade. After a command
//!   that traded, every resting continuous order, oldest first, is matched as
//!   if it had just arrived against the *older* resting orders (same priority,
//!   at the older order's price; its owner's own orders are passed over, not a
//!   reason to cancel), and this repeats until no trade is made. So after
//!   every command no two resting continuous orders of different owners cross
//!   after their path fee with room left on their path.
//! - **Call auction at gate closure** over every resting order, continuous
//!   and auction-only: the clearing price maximises matched volume; among the
//!   prices that do, the price is `lo + k·(hi − lo)` rounded to the nearest
//!   tick, where `[lo, hi]` is the range of volume-maximising prices and `k`
//!   is `auction_k_permille / 1000` (default ½: the midpoint). Orders are then
//!   paired in priority order (price, then time — so the marginal price level
//!   is rationed by time, not pro rata): buyers pay the clearing price plus
//!   their path fee, sellers receive the clearing price. With a feeder tree
//!   the pairing is greedy and may match less than the unconstrained volume;
//!   it never breaks a limit. Unmatched orders are cancelled
//!   (`CancelReason::Unmatched`) and the book closes.
//! - **Limits**: `max_orders` is honoured exactly (any value); every order id
//!   is usable, `u64::MAX` included.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use gridshare_domain::{
    DeliveryInterval, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce, Timestamp, TradeId,
    Wh, ZoneId,
};
use serde::{Deserialize, Serialize};

use crate::index::OrderIndex;
use crate::ladder::{Ladder, Links, NIL};
use crate::network::{Network, NetworkError, NodeConfig};
use crate::types::{CancelReason, Command, Event, EventSink, OrderSpec, RejectReason};

/// A fast hasher for small integer keys (the owner map is read for every
/// order; SipHash's DoS resistance buys nothing for ids the service assigns).
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A market's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    /// Price step.
    pub tick: MicroPerKwh,
    /// Lowest allowed price (may be negative).
    pub min_price: MicroPerKwh,
    /// Highest allowed price.
    pub max_price: MicroPerKwh,
    /// Smallest order.
    pub min_quantity: Wh,
    /// Largest order.
    pub max_quantity: Wh,
    /// k of the k-double auction, in thousandths (0 = lowest, 1000 = highest volume-maximising price).
    #[serde(default = "default_k")]
    pub auction_k_permille: u16,
    /// Most live orders at once, over all books.
    pub max_orders: usize,
    /// Most books open at once.
    pub max_books: usize,
    /// The feeder tree; absent = no grid fees or limits.
    #[serde(default)]
    pub network: Option<Vec<NodeConfig>>,
}

const fn default_k() -> u16 {
    500
}

impl Default for MarketConfig {
    /// −0.5 to 2 €/kWh in 0.001 € ticks, 1 Wh to 1 MWh, 1M live orders, 200 books, no network.
    fn default() -> Self {
        Self {
            tick: MicroPerKwh(1_000),
            min_price: MicroPerKwh(-500_000),
            max_price: MicroPerKwh(2_000_000),
            min_quantity: Wh(1),
            max_quantity: Wh(1_000_000),
            auction_k_permille: default_k(),
            max_orders: 1_000_000,
            max_books: 200,
            network: None,
        }
    }
}

/// A configuration the engine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Tick must be positive and divide the price range.
    #[error("tick must be positive and divide max_price - min_price")]
    Tick,
    /// Too many ticks (the ladder is a dense array).
    #[error("price range has {0} ticks; at most 1,048,576")]
    TooManyTicks(i64),
    /// Quantity bounds out of order or not positive.
    #[error("need 0 < min_quantity <= max_quantity")]
    Quantity,
    /// k above 1000.
    #[error("auction_k_permille must be 0..=1000")]
    K,
    /// The feeder tree is invalid.
    #[error(transparent)]
    Network(#[from] NetworkError),
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    id: OrderId,
    owner: ParticipantId,
    node: u32,
    book: u32,
    tick: u32,
    qty: i64,
    seq: u64,
    prev: u32,
    next: u32,
    side: Side,
    auction_only: bool,
}

const FREE_SLOT: Slot = Slot {
    id: OrderId(u64::MAX),
    owner: ParticipantId(0),
    node: 0,
    book: 0,
    tick: 0,
    qty: 0,
    seq: 0,
    prev: NIL,
    next: NIL,
    side: Side::Buy,
    auction_only: false,
};

struct SlotLinks<'a>(&'a mut [Slot]);

impl Links for SlotLinks<'_> {
    #[inline]
    fn links(&mut self, slot: u32) -> (&mut u32, &mut u32) {
        let s = &mut self.0[slot as usize];
        (&mut s.prev, &mut s.next)
    }
}

#[derive(Debug, Clone)]
struct Book {
    zone: ZoneId,
    interval: DeliveryInterval,
    open: bool,
    bids: Ladder,
    asks: Ladder,
    auction_bids: Ladder,
    auction_asks: Ladder,
    flows: Vec<i64>,
    trades: u32,
    volume: i64,
    /// A price-compatible pair of resting orders may be blocked by the
    /// network (set when matching meets one; exact after a re-match pass).
    blocked: bool,
}

/// A candidate in the network priority walk: (key, seq, slot, path fee),
/// smallest key first; the key is ask + fee for a buyer, fee − bid for a seller.
type Candidate = Reverse<(i64, u64, u32, i64)>;

/// The matching engine. See the module docs for the rules.
#[derive(Debug)]
pub struct Engine {
    cfg: MarketConfig,
    ticks: u32,
    network: Option<Network>,
    owners: IdMap<ParticipantId, NodeId>,
    books: Vec<Book>,
    /// (zone, interval start, interval minutes, book index), sorted, for binary search.
    lookup: Vec<(u32, i64, i64, u32)>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: OrderIndex,
    /// Slot of the live order whose id is `u64::MAX` (the index's empty
    /// marker, so it is kept here), or `NIL`.
    max_id_slot: u32,
    seq: u64,
    next_trade: u64,
    scratch_bids: Vec<(u32, i64)>,
    scratch_asks: Vec<(u32, i64)>,
    scratch_flows: Vec<i64>,
    scratch_heap: BinaryHeap<Candidate>,
    scratch_orders: Vec<(u64, u32)>,
}

/// Outcome of matching an incoming order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchEnd {
    /// Nothing (more) crosses, or fully filled.
    Done,
    /// Stopped by self-trade prevention.
    SelfTrade,
}

impl Engine {
    /// An engine for `cfg`.
    pub fn new(cfg: MarketConfig) -> Result<Self, ConfigError> {
        let range = cfg.max_price.0.checked_sub(cfg.min_price.0).ok_or(ConfigError::Tick)?;
        if cfg.tick.0 <= 0 || range < 0 || range % cfg.tick.0 != 0 {
            return Err(ConfigError::Tick);
        }
        let ticks = range / cfg.tick.0 + 1;
        if ticks > 1 << 20 {
            return Err(ConfigError::TooManyTicks(ticks));
        }
        if cfg.min_quantity.0 <= 0 || cfg.min_quantity > cfg.max_quantity {
            return Err(ConfigError::Quantity);
        }
        if cfg.auction_k_permille > 1000 {
            return Err(ConfigError::K);
        }
        let network = cfg.network.as_deref().map(Network::new).transpose()?;
        let nodes = network.as_ref().map_or(0, Network::len);
        Ok(Self {
            ticks: ticks as u32,
            network,
            owners: IdMap::default(),
            books: Vec::new(),
            lookup: Vec::new(),
            slots: Vec::with_capacity(cfg.max_orders.min(1 << 20)),
            free: Vec::new(),
            index: OrderIndex::with_capacity(cfg.max_orders),
            max_id_slot: NIL,
            seq: 0,
            next_trade: 1,
            scratch_bids: Vec::new(),
            scratch_asks: Vec::new(),
            scratch_flows: vec![0; nodes],
            scratch_heap: BinaryHeap::new(),
            scratch_orders: Vec::new(),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MarketConfig {
        &self.cfg
    }

    /// Number of live orders.
    pub fn live_orders(&self) -> usize {
        self.index.len() + usize::from(self.max_id_slot != NIL)
    }

    /// The slot of live order `id`.
    #[inline]
    fn slot_of(&self, id: OrderId) -> Option<u32> {
        if id.0 == u64::MAX {
            (self.max_id_slot != NIL).then_some(self.max_id_slot)
        } else {
            self.index.get(id)
        }
    }

    /// Index a new live order; false if the id is live or `max_orders` are.
    #[inline]
    fn index_insert(&mut self, id: OrderId, slot: u32) -> bool {
        if self.live_orders() >= self.cfg.max_orders {
            return false;
        }
        if id.0 == u64::MAX {
            if self.max_id_slot != NIL {
                return false;
            }
            self.max_id_slot = slot;
            true
        } else {
            self.index.insert(id, slot)
        }
    }

    #[inline]
    fn index_remove(&mut self, id: OrderId) {
        if id.0 == u64::MAX {
            self.max_id_slot = NIL;
        } else {
            self.index.remove(id);
        }
    }

    /// Every book the engine holds, in (zone, interval) order: whether it still takes orders,
    /// its trades and volume so far.
    pub fn books(&self) -> Vec<BookSummary> {
        self.lookup
            .iter()
            .map(|&(_, _, _, i)| {
                let b = &self.books[i as usize];
                BookSummary {
                    zone: b.zone,
                    interval: b.interval,
                    open: b.open,
                    trades: b.trades,
                    volume: Wh(b.volume),
                }
            })
            .collect()
    }

    /// The best `levels` price levels of each side of a book, best first, as total remaining
    /// quantity per price (continuous and auction-only orders together, as the gate-closure
    /// auction will see them); None for an unknown book.
    pub fn depth(&self, zone: ZoneId, interval: DeliveryInterval, levels: usize) -> Option<Depth> {
        let book = &self.books[self.lookup[self.find_book(zone, interval).ok()?].3 as usize];
        let merged = |a: &Ladder, b: &Ladder, t: u32| {
            a.levels.get(t as usize).map_or(0, |l| l.qty) + b.levels.get(t as usize).map_or(0, |l| l.qty)
        };
        let mut bids = Vec::new();
        let mut t = u32::MAX;
        while bids.len() < levels {
            let next = [&book.bids, &book.auction_bids]
                .into_iter()
                .filter(|l| !l.levels.is_empty()) // released at gate closure, or never used
                .filter_map(|l| l.highest_at_or_below(t))
                .max();
            let Some(tick) = next else { break };
            bids.push((
                MicroPerKwh(self.price_of(tick)),
                Wh(merged(&book.bids, &book.auction_bids, tick)),
            ));
            let Some(below) = tick.checked_sub(1) else { break };
            t = below;
        }
        let mut asks = Vec::new();
        let mut t = 0;
        while asks.len() < levels {
            let next = [&book.asks, &book.auction_asks]
                .into_iter()
                .filter(|l| !l.levels.is_empty())
                .filter_map(|l| l.lowest_at_or_above(t))
                .min();
            let Some(tick) = next else { break };
            asks.push((
                MicroPerKwh(self.price_of(tick)),
                Wh(merged(&book.asks, &book.auction_asks, tick)),
            ));
            t = tick + 1;
        }
        Some(Depth {
            open: book.open,
            bids,
            asks,
        })
    }

    /// Apply one command; its events go to `out`.
    pub fn apply(&mut self, cmd: &Command, out: &mut impl EventSink) {
        match *cmd {
            Command::AddParticipant { owner, node } => self.add_participant(owner, node, out),
            Command::OpenBook { zone, interval } => self.open_book(zone, interval, out),
            Command::Submit { at, order } => self.submit(at, &order, out),
            Command::Cancel { id, owner, .. } => self.cancel(id, owner, out),
            Command::Amend {
                at,
                id,
                owner,
                quantity,
                price,
            } => self.amend(at, id, owner, quantity, price, out),
            Command::CloseGate { at, zone, interval } => self.close_gate(at, zone, interval, out),
        }
    }

    fn add_participant(&mut self, owner: ParticipantId, node: NodeId, out: &mut impl EventSink) {
        if self.network.as_ref().is_some_and(|n| n.index_of(node).is_none()) {
            out.push(Event::Rejected {
                id: None,
                reason: RejectReason::UnknownNode,
            });
            return;
        }
        self.owners.insert(owner, node);
        out.push(Event::ParticipantAdded { owner, node });
    }

    fn find_book(&self, zone: ZoneId, interval: DeliveryInterval) -> Result<usize, usize> {
        let key = book_key(zone, interval);
        self.lookup.binary_search_by(|&(z, s, m, _)| (z, s, m).cmp(&key))
    }

    fn open_book(&mut self, zone: ZoneId, interval: DeliveryInterval, out: &mut impl EventSink) {
        let pos = match self.find_book(zone, interval) {
            Ok(_) => {
                out.push(Event::Rejected {
                    id: None,
                    reason: RejectReason::BookExists,
                });
                return;
            }
            Err(pos) => pos,
        };
        if self.books.iter().filter(|b| b.open).count() >= self.cfg.max_books {
            out.push(Event::Rejected {
                id: None,
                reason: RejectReason::TooManyBooks,
            });
            return;
        }
        let idx = self.books.len() as u32;
        self.books.push(Book {
            zone,
            interval,
            open: true,
            bids: Ladder::new(self.ticks),
            asks: Ladder::new(self.ticks),
            auction_bids: Ladder::new(self.ticks),
            auction_asks: Ladder::new(self.ticks),
            flows: vec![0; self.scratch_flows.len()],
            trades: 0,
            volume: 0,
            blocked: false,
        });
        let (z, start, minutes) = book_key(zone, interval);
        self.lookup.insert(pos, (z, start, minutes, idx));
        out.push(Event::BookOpened { zone, interval });
    }

    #[inline]
    fn tick_of(&self, price: MicroPerKwh) -> Result<u32, RejectReason> {
        if price < self.cfg.min_price || price > self.cfg.max_price {
            return Err(RejectReason::PriceOutOfBounds);
        }
        let off = price.0 - self.cfg.min_price.0;
        if off % self.cfg.tick.0 != 0 {
            return Err(RejectReason::PriceOffTick);
        }
        Ok((off / self.cfg.tick.0) as u32)
    }

    #[inline]
    fn price_of(&self, tick: u32) -> i64 {
        self.cfg.min_price.0 + i64::from(tick) * self.cfg.tick.0
    }

    #[inline]
    fn open_book_index(&self, zone: ZoneId, interval: DeliveryInterval) -> Result<u32, RejectReason> {
        match self.find_book(zone, interval) {
            Ok(pos) => {
                let b = self.lookup[pos].3;
                if self.books[b as usize].open {
                    Ok(b)
                } else {
                    Err(RejectReason::BookClosed)
                }
            }
            Err(_) => Err(RejectReason::UnknownBook),
        }
    }

    /// Validate an order; on success the book index, the tick and the dense node.
    #[inline]
    fn validate(&self, o: &OrderSpec) -> Result<(u32, u32, u32), RejectReason> {
        let book = self.open_book_index(o.zone, o.interval)?;
        let tick = self.tick_of(o.price)?;
        if o.quantity < self.cfg.min_quantity || o.quantity > self.cfg.max_quantity {
            return Err(RejectReason::QuantityOutOfBounds);
        }
        match self.owners.get(&o.owner) {
            None => return Err(RejectReason::UnknownOwner),
            Some(node) if *node != o.node => return Err(RejectReason::UnknownNode),
            Some(_) => {}
        }
        let node = match &self.network {
            Some(n) => n.index_of(o.node).ok_or(RejectReason::UnknownNode)?,
            None => 0,
        };
        if o.mode == OrderMode::AuctionOnly && o.tif != TimeInForce::GoodTillGateClosure {
            return Err(RejectReason::InvalidTimeInForce);
        }
        if self.slot_of(o.id).is_some() {
            return Err(RejectReason::DuplicateOrderId);
        }
        if self.live_orders() >= self.cfg.max_orders {
            return Err(RejectReason::OrderCapacity);
        }
        Ok((book, tick, node))
    }

    fn submit(&mut self, at: Timestamp, o: &OrderSpec, out: &mut impl EventSink) {
        let (book, tick, node) = match self.validate(o) {
            Ok(v) => v,
            Err(reason) => {
                out.push(Event::Rejected { id: Some(o.id), reason });
                return;
            }
        };
        if o.tif == TimeInForce::FillOrKill
            && self.fillable(book, o.side, tick, node, o.owner, o.quantity.0) < o.quantity.0
        {
            out.push(Event::Rejected {
                id: Some(o.id),
                reason: RejectReason::FillOrKillUnfilled,
            });
            return;
        }
        out.push(Event::Accepted { id: o.id });
        self.seq += 1;
        let slot = self.alloc(Slot {
            id: o.id,
            owner: o.owner,
            node,
            book,
            tick,
            qty: o.quantity.0,
            seq: self.seq,
            prev: NIL,
            next: NIL,
            side: o.side,
            auction_only: o.mode == OrderMode::AuctionOnly,
        });
        // Cannot fail: the id is not live and there is room (checked above).
        let _indexed = self.index_insert(o.id, slot);
        self.process(at, slot, o.tif, out);
    }

    /// Match a freshly (re)priced order and rest, expire or cancel what is
    /// left; then, if it traded, re-match what the trades unblocked.
    fn process(&mut self, at: Timestamp, slot: u32, tif: TimeInForce, out: &mut impl EventSink) {
        let book_i = self.slots[slot as usize].book as usize;
        let trades_before = self.books[book_i].trades;
        self.match_and_rest(at, slot, tif, out);
        if self.books[book_i].trades != trades_before {
            self.rematch(at, book_i, out);
        }
    }

    fn match_and_rest(&mut self, at: Timestamp, slot: u32, tif: TimeInForce, out: &mut impl EventSink) {
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
    fn crosses_own(&self, slot: u32) -> bool {
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

    fn alloc(&mut self, s: Slot) -> u32 {
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

    fn release(&mut self, slot: u32) {
        let id = self.slots[slot as usize].id;
        self.index_remove(id);
        self.slots[slot as usize] = FREE_SLOT;
        self.free.push(slot);
    }

    fn ladder_of(book: &mut Book, side: Side, auction_only: bool) -> &mut Ladder {
        match (side, auction_only) {
            (Side::Buy, false) => &mut book.bids,
            (Side::Sell, false) => &mut book.asks,
            (Side::Buy, true) => &mut book.auction_bids,
            (Side::Sell, true) => &mut book.auction_asks,
        }
    }

    fn rest(&mut self, slot: u32) {
        let s = self.slots[slot as usize];
        let ladder = Self::ladder_of(&mut self.books[s.book as usize], s.side, s.auction_only);
        ladder.push_back(&mut SlotLinks(&mut self.slots), s.tick, slot, s.qty);
    }

    fn unrest(&mut self, slot: u32) {
        let s = self.slots[slot as usize];
        let ladder = Self::ladder_of(&mut self.books[s.book as usize], s.side, s.auction_only);
        ladder.unlink(&mut SlotLinks(&mut self.slots), s.tick, slot, s.qty);
    }

    /// Fee and room for a pair (the call auction's pairing).
    #[inline]
    fn pair_terms(&self, seller_node: u32, buyer_node: u32, flows: &[i64]) -> (i64, i64) {
        match &self.network {
            None => (0, i64::MAX),
            Some(n) => (
                n.path_fee(seller_node, buyer_node),
                n.path_room(seller_node, buyer_node, flows),
            ),
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
    /// Without a network every fee is 0: the ladder is walked level by level.
    /// With one, levels are walked in price order and their orders pushed on
    /// a heap; an order at a level not yet reached is worth at least that
    /// level's price (fees are never negative), so everything on the heap
    /// strictly better than the next level is final and is visited first.
    #[allow(clippy::too_many_arguments)] // the incoming order's terms, spelled out
    #[inline]
    fn walk_opposite(
        &mut self,
        book_i: usize,
        side: Side,
        tick: u32,
        node: u32,
        owner: ParticipantId,
        older_than: u64,
        mut visit: impl FnMut(&mut Self, u32, i64) -> bool,
    ) {
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
            let mut level = next_level(&self.books[book_i], first);
            while let Some(t) = level {
                let mut r = head(&self.books[book_i], t);
                while r != NIL {
                    let rs = &self.slots[r as usize];
                    let next = rs.next;
                    if rs.seq < older_than && !visit(self, r, 0) {
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
            let (Some(t), Some(net)) = (level, &self.network) else {
                break;
            };
            let price = self.price_of(t);
            let mut r = head(&self.books[book_i], t);
            while r != NIL {
                let rs = &self.slots[r as usize];
                if rs.seq < older_than {
                    let (key, ok) = match side {
                        Side::Buy => {
                            let fee = net.path_fee(rs.node, node);
                            ((price + fee, fee), price + fee <= limit)
                        }
                        Side::Sell => {
                            let fee = net.path_fee(node, rs.node);
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
    fn match_order(
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
    fn rematch(&mut self, at: Timestamp, book_i: usize, out: &mut impl EventSink) {
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
    fn unrest_filled(&mut self, slot: u32) {
        // `unlink` subtracts the slot's qty (0 now) from the level.
        self.unrest(slot);
        self.release(slot);
    }

    #[allow(clippy::too_many_arguments)] // one trade's full description
    #[inline]
    fn execute(
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
    fn fillable(&mut self, book: u32, side: Side, tick: u32, node: u32, owner: ParticipantId, want: i64) -> i64 {
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

    /// The slot of a live order `id` that `owner` may change.
    fn owned_slot(&self, id: OrderId, owner: ParticipantId) -> Result<u32, RejectReason> {
        let slot = self.slot_of(id).ok_or(RejectReason::UnknownOrder)?;
        if self.slots[slot as usize].owner != owner {
            return Err(RejectReason::NotOwner);
        }
        Ok(slot)
    }

    fn cancel(&mut self, id: OrderId, owner: ParticipantId, out: &mut impl EventSink) {
        let slot = match self.owned_slot(id, owner) {
            Ok(slot) => slot,
            Err(reason) => {
                out.push(Event::Rejected { id: Some(id), reason });
                return;
            }
        };
        let s = self.slots[slot as usize];
        self.unrest(slot);
        self.release(slot);
        out.push(Event::Cancelled {
            id,
            remaining: Wh(s.qty),
            reason: CancelReason::Requested,
        });
    }

    fn amend(
        &mut self,
        at: Timestamp,
        id: OrderId,
        owner: ParticipantId,
        quantity: Wh,
        price: MicroPerKwh,
        out: &mut impl EventSink,
    ) {
        let checked = self.owned_slot(id, owner).and_then(|slot| {
            let tick = self.tick_of(price)?;
            if quantity < self.cfg.min_quantity || quantity > self.cfg.max_quantity {
                return Err(RejectReason::QuantityOutOfBounds);
            }
            Ok((slot, tick))
        });
        let (slot, tick) = match checked {
            Ok(v) => v,
            Err(reason) => {
                out.push(Event::Rejected { id: Some(id), reason });
                return;
            }
        };
        let s = self.slots[slot as usize];
        if tick == s.tick && quantity.0 <= s.qty {
            // Same price, not more: keep the place in the queue.
            let delta = s.qty - quantity.0;
            Self::ladder_of(&mut self.books[s.book as usize], s.side, s.auction_only).levels[s.tick as usize].qty -=
                delta;
            self.slots[slot as usize].qty = quantity.0;
            out.push(Event::Amended {
                id,
                quantity,
                price,
                kept_priority: true,
            });
            return;
        }
        self.unrest(slot);
        self.seq += 1;
        let sl = &mut self.slots[slot as usize];
        sl.tick = tick;
        sl.qty = quantity.0;
        sl.seq = self.seq;
        out.push(Event::Amended {
            id,
            quantity,
            price,
            kept_priority: false,
        });
        self.process(at, slot, TimeInForce::GoodTillGateClosure, out);
    }

    fn close_gate(&mut self, at: Timestamp, zone: ZoneId, interval: DeliveryInterval, out: &mut impl EventSink) {
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

        let clearing = self.clearing_tick(book_i);
        let mut volume = 0i64;
        if let Some(pt) = clearing {
            let p = self.price_of(pt);
            let mut first_ask = 0usize;
            for bid in bids.iter_mut() {
                let b = self.slots[bid.0 as usize];
                if self.price_of(b.tick) < p {
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
                    let (fee, room) = self.pair_terms(a.node, b.node, &self.books[book_i].flows);
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
        out.push(Event::AuctionResult {
            zone,
            interval,
            clearing_price: clearing.filter(|_| volume > 0).map(|t| MicroPerKwh(self.price_of(t))),
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

    /// The uniform clearing tick: maximise volume, then `lo + k·(hi − lo)`.
    fn clearing_tick(&self, book_i: usize) -> Option<u32> {
        let b = &self.books[book_i];
        let lo = min_opt(b.asks.lowest(), b.auction_asks.lowest())?;
        let hi = max_opt(b.bids.highest(), b.auction_bids.highest())?;
        if lo > hi {
            return None;
        }
        let qty = |l: &Ladder, t: u32| l.levels[t as usize].qty;
        // Demand at t: bids at t or above; supply at t: asks at t or below.
        // Walking t upward, supply grows as a running sum and demand shrinks
        // from the total, so one pass over [lo, hi] finds the best range.
        let mut demand: i64 = (lo..=hi).map(|t| qty(&b.bids, t) + qty(&b.auction_bids, t)).sum();
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
            demand -= qty(&b.bids, t) + qty(&b.auction_bids, t);
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

/// The engine's whole state, in a stable, serialisable form: what recovery
/// loads before replaying the journal tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Format version (1).
    pub version: u32,
    /// How many journal commands this state includes.
    pub journal_commands: u64,
    /// Participants and their nodes, by id.
    pub participants: Vec<(ParticipantId, NodeId)>,
    /// Books in the order they were opened.
    pub books: Vec<BookSnapshot>,
    /// Live orders in time priority (arrival) order.
    pub orders: Vec<OrderSnapshot>,
    /// Last time-priority sequence number used.
    pub seq: u64,
    /// Next trade id.
    pub next_trade: u64,
}

/// A book as [`Engine::books`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSummary {
    /// Zone.
    pub zone: ZoneId,
    /// Delivery interval.
    pub interval: DeliveryInterval,
    /// Still accepting orders (gate not closed).
    pub open: bool,
    /// Trades so far.
    pub trades: u32,
    /// Energy traded so far.
    pub volume: Wh,
}

/// Aggregated depth of one book ([`Engine::depth`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    /// Still accepting orders.
    pub open: bool,
    /// (price, total quantity), highest price first.
    pub bids: Vec<(MicroPerKwh, Wh)>,
    /// (price, total quantity), lowest price first.
    pub asks: Vec<(MicroPerKwh, Wh)>,
}

/// One book in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookSnapshot {
    /// Zone.
    pub zone: ZoneId,
    /// Interval.
    pub interval: DeliveryInterval,
    /// Still accepting orders.
    pub open: bool,
    /// Trades so far.
    pub trades: u32,
    /// Energy traded so far.
    pub volume: Wh,
    /// Net flow per feeder edge (dense node order), empty without a network.
    pub flows: Vec<i64>,
}

/// One live order in a [`Snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSnapshot {
    /// Id.
    pub id: OrderId,
    /// Owner (its node comes from the participant list).
    pub owner: ParticipantId,
    /// Index into [`Snapshot::books`].
    pub book: u32,
    /// Side.
    pub side: Side,
    /// Limit.
    pub price: MicroPerKwh,
    /// Remaining quantity.
    pub quantity: Wh,
    /// Time-priority sequence number.
    pub seq: u64,
    /// Auction-only.
    pub auction_only: bool,
}

/// A snapshot that does not fit the configuration it is restored with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The configuration itself is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Version, book, owner, price or flow data that does not fit.
    #[error("snapshot does not fit this market: {0}")]
    Mismatch(String),
}

impl Engine {
    /// The current state, to be saved at gate closure; `journal_commands`
    /// is how many journal records it covers.
    pub fn snapshot(&self, journal_commands: u64) -> Snapshot {
        let mut participants: Vec<_> = self.owners.iter().map(|(p, n)| (*p, *n)).collect();
        participants.sort();
        let books = self
            .books
            .iter()
            .map(|b| BookSnapshot {
                zone: b.zone,
                interval: b.interval,
                open: b.open,
                trades: b.trades,
                volume: Wh(b.volume),
                flows: b.flows.clone(),
            })
            .collect();
        let mut orders: Vec<OrderSnapshot> = self
            .slots
            .iter()
            .enumerate()
            .filter(|&(i, s)| self.slot_of(s.id) == Some(i as u32))
            .map(|(_, s)| s)
            .map(|s| OrderSnapshot {
                id: s.id,
                owner: s.owner,
                book: s.book,
                side: s.side,
                price: MicroPerKwh(self.price_of(s.tick)),
                quantity: Wh(s.qty),
                seq: s.seq,
                auction_only: s.auction_only,
            })
            .collect();
        orders.sort_by_key(|o| o.seq);
        Snapshot {
            version: 1,
            journal_commands,
            participants,
            books,
            orders,
            seq: self.seq,
            next_trade: self.next_trade,
        }
    }

    /// Rebuild an engine from a snapshot taken under the same configuration.
    pub fn restore(cfg: MarketConfig, snap: &Snapshot) -> Result<Self, SnapshotError> {
        let bad = |m: String| SnapshotError::Mismatch(m);
        if snap.version != 1 {
            return Err(bad(format!("version {}", snap.version)));
        }
        let mut e = Self::new(cfg)?;
        for &(owner, node) in &snap.participants {
            if e.network.as_ref().is_some_and(|n| n.index_of(node).is_none()) {
                return Err(bad(format!("{owner} at unknown node {node}")));
            }
            e.owners.insert(owner, node);
        }
        for (i, b) in snap.books.iter().enumerate() {
            if b.flows.len() != e.scratch_flows.len() {
                return Err(bad(format!(
                    "book {i} has {} flows for {} nodes",
                    b.flows.len(),
                    e.scratch_flows.len()
                )));
            }
            let pos = e
                .find_book(b.zone, b.interval)
                .err()
                .ok_or_else(|| bad(format!("book {i} twice")))?;
            let ladder = || {
                if b.open {
                    Ladder::new(e.ticks)
                } else {
                    Ladder::default()
                }
            };
            e.books.push(Book {
                zone: b.zone,
                interval: b.interval,
                open: b.open,
                bids: ladder(),
                asks: ladder(),
                auction_bids: ladder(),
                auction_asks: ladder(),
                flows: b.flows.clone(),
                trades: b.trades,
                volume: b.volume.0,
                // The snapshot does not say; a re-match pass after the next trade finds out.
                blocked: b.open,
            });
            let (z, start, minutes) = book_key(b.zone, b.interval);
            e.lookup.insert(pos, (z, start, minutes, i as u32));
        }
        // Orders come in arrival order, so pushing each to the back of its
        // level rebuilds every queue exactly.
        for o in &snap.orders {
            let book = e
                .books
                .get(o.book as usize)
                .ok_or_else(|| bad(format!("order {} in book {}", o.id, o.book)))?;
            if !book.open {
                return Err(bad(format!("order {} rests in a closed book", o.id)));
            }
            let tick = e.tick_of(o.price).map_err(|r| bad(format!("order {}: {r:?}", o.id)))?;
            let node_id = *e
                .owners
                .get(&o.owner)
                .ok_or_else(|| bad(format!("order {}: unknown owner", o.id)))?;
            let node = match &e.network {
                Some(n) => n
                    .index_of(node_id)
                    .ok_or_else(|| bad(format!("order {}: node", o.id)))?,
                None => 0,
            };
            let slot = e.alloc(Slot {
                id: o.id,
                owner: o.owner,
                node,
                book: o.book,
                tick,
                qty: o.quantity.0,
                seq: o.seq,
                prev: NIL,
                next: NIL,
                side: o.side,
                auction_only: o.auction_only,
            });
            if !e.index_insert(o.id, slot) {
                return Err(bad(format!("order {} twice or over capacity", o.id)));
            }
            e.rest(slot);
        }
        e.seq = snap.seq;
        e.next_trade = snap.next_trade;
        Ok(e)
    }
}

impl Book {
    #[inline]
    fn level_sub(&mut self, side: Side, t: u32, q: i64) {
        match side {
            Side::Buy => self.bids.levels[t as usize].qty -= q,
            Side::Sell => self.asks.levels[t as usize].qty -= q,
        }
    }
}

/// (seq, slot) of every order of `ladder` at ticks `lo..=hi`.
fn collect_range(ladder: &Ladder, lo: u32, hi: u32, slots: &[Slot], into: &mut Vec<(u64, u32)>) {
    let mut t = ladder.lowest_at_or_above(lo);
    while let Some(tick) = t.filter(|&t| t <= hi) {
        let mut s = ladder.levels[tick as usize].head;
        while s != NIL {
            into.push((slots[s as usize].seq, s));
            s = slots[s as usize].next;
        }
        t = ladder.lowest_at_or_above(tick + 1);
    }
}

fn collect(ladder: &Ladder, slots: &[Slot], into: &mut Vec<(u32, i64)>) {
    let mut t = ladder.lowest();
    while let Some(tick) = t {
        let mut s = ladder.levels[tick as usize].head;
        while s != NIL {
            into.push((s, slots[s as usize].qty));
            s = slots[s as usize].next;
        }
        t = ladder.lowest_at_or_above(tick + 1);
    }
}

/// A book's place in the lookup: zone, interval start, interval length.
fn book_key(zone: ZoneId, interval: DeliveryInterval) -> (u32, i64, i64) {
    (zone.0, interval.start().0, interval.length().minutes())
}

fn min_opt(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
