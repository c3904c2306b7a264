//! The engine: books per (zone, interval), continuous matching, amend and
//! cancel, and the gate-closure call auction. Single-threaded, no I/O, no
//! clock (time comes in the commands), no allocation per command once the
//! scratch buffers have grown to the largest book — except a gate closure
//! under a feeder tree, which builds its per-node curves (once per book).
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
//! - **Grid fees of a book**: a book opened with [`GridFees`] charges every trade in it
//!   `per_kwh + per_hop × hops` (edges on the path; `per_kwh` alone at one connection point
//!   or without a tree) instead of the tree's per-edge fees, for its whole life — continuous
//!   matching, priority, fill-or-kill and the gate-closure auction alike. A book opened
//!   without charges the tree's per-edge fees (none without a tree). "The path fee" below is
//!   whichever applies to the book.
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
//!   and auction-only. Without a feeder tree: the clearing price (what sellers
//!   receive; buyers pay it plus the book's flat fee, if any) maximises
//!   matched volume; among the prices that do, the price is `lo + k·(hi − lo)`
//!   rounded to the nearest tick, where `[lo, hi]` is the range of
//!   volume-maximising prices and `k` is `auction_k_permille / 1000` (default
//!   ½: the midpoint). Orders are then paired in priority order (price, then
//!   time — so the marginal price level is rationed by time, not pro rata) at
//!   that price. With a feeder tree: the clearing maximises total surplus
//!   (buyers' limits minus sellers' limits minus path fees, over the matched
//!   Wh) within every edge's remaining room in both directions, and gives each
//!   node a price; a seller receives its node's price and a buyer pays its
//!   node's price, the difference being the path fee plus the congestion
//!   charge of any full edge. Ties go to more volume, then time priority. The
//!   algorithm and the price rule are in `nodal.rs`. Unmatched orders are
//!   cancelled (`CancelReason::Unmatched`) and the book closes.
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
use crate::types::{CancelReason, Command, Event, EventSink, GridFees, GridFeesError, OrderSpec, RejectReason};

mod auction;
mod matching;
mod nodal;
mod snapshot;

pub use snapshot::{BookSnapshot, BookSummary, Depth, OrderSnapshot, Snapshot, SnapshotError};

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
    /// The fees it opened with (`None`: the tree's per-edge fees).
    fees: Option<GridFees>,
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
                    fees: b.fees,
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
            Command::OpenBook { zone, interval, fees } => self.open_book(zone, interval, fees, out),
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

    /// Whether a book could open with `fees`: both parts within `0..=GridFees::MAX`, and the
    /// fee across the tree's longest path (`per_kwh` alone without a tree) within the market's
    /// price range `max_price − min_price` — a larger fee no trade could pay.
    pub fn check_grid_fees(&self, fees: &GridFees) -> Result<(), GridFeesError> {
        fees.check()?;
        let hops = self.network.as_ref().map_or(0, Network::diameter);
        let largest = fees.fee(hops);
        let range = self.cfg.max_price.0 - self.cfg.min_price.0; // checked in `new`
        if largest > range {
            return Err(GridFeesError::AbovePriceRange {
                largest: MicroPerKwh(largest),
                hops,
                range: MicroPerKwh(range),
            });
        }
        Ok(())
    }

    /// The grid fee per kWh seller → buyer (dense nodes) in a book charging `fees`.
    #[inline]
    fn fee_between(&self, fees: Option<GridFees>, seller: u32, buyer: u32) -> i64 {
        match (&self.network, fees) {
            (None, None) => 0,
            (None, Some(f)) => f.per_kwh.0,
            (Some(n), None) => n.path_fee(seller, buyer),
            (Some(n), Some(f)) => f.fee(n.hops(seller, buyer)),
        }
    }

    /// The least grid fee any trade of a book charging `fees` pays (fees are never negative).
    #[inline]
    fn least_fee(fees: Option<GridFees>) -> i64 {
        fees.map_or(0, |f| f.per_kwh.0)
    }

    fn open_book(
        &mut self,
        zone: ZoneId,
        interval: DeliveryInterval,
        fees: Option<GridFees>,
        out: &mut impl EventSink,
    ) {
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
        if fees.is_some_and(|f| self.check_grid_fees(&f).is_err()) {
            out.push(Event::Rejected {
                id: None,
                reason: RejectReason::InvalidGridFees,
            });
            return;
        }
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
            fees,
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
        out.push(Event::BookOpened { zone, interval, fees });
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
