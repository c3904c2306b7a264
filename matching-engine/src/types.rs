//! Commands in, events out: the engine's whole interface, serialisable for
//! the journal and the JSON-lines replay tool.

use gridshare_domain::{
    DeliveryInterval, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce, Timestamp, TradeId,
    Wh, ZoneId,
};
use serde::{Deserialize, Serialize};

/// A new order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSpec {
    /// Unique among live orders.
    pub id: OrderId,
    /// Who trades.
    pub owner: ParticipantId,
    /// Where the owner connects to the feeder.
    pub node: NodeId,
    /// Zone of the book.
    pub zone: ZoneId,
    /// Delivery interval of the book.
    pub interval: DeliveryInterval,
    /// Buy or sell.
    pub side: Side,
    /// Energy, Wh.
    pub quantity: Wh,
    /// Limit: for a sell, the least the seller receives per kWh; for a buy,
    /// the most the buyer pays per kWh including grid fees.
    pub price: MicroPerKwh,
    /// Time in force.
    #[serde(default)]
    pub tif: TimeInForce,
    /// Continuous or auction-only.
    #[serde(default)]
    pub mode: OrderMode,
}

/// The grid fees a book charges, fixed when it opens (issue 22: governance sets `feePerHop` and
/// `networkFee` in the `GridParameters` contract; a change applies from the next book opened).
///
/// A trade from seller node `s` to buyer node `b` in such a book pays the grid fee
/// `per_kwh + per_hop × hops(s, b)` per kWh, where `hops` is the number of feeder-tree edges on
/// the path (0 without a tree). **`per_kwh` applies to every trade, also between two
/// participants at one connection point** (no edge crossed: the fee is `per_kwh` alone): it is
/// the community's network charge for a trade through the market, and keeping it flat keeps
/// every fee a sum over edges plus a constant, which continuous priority and the nodal auction
/// need (a per-edge fee cannot express "`per_kwh` only when an edge is crossed").
///
/// Both parts are µ-currency per kWh, never negative and at most [`GridFees::MAX`]; the engine
/// also refuses a book whose largest fee (across the longest path of its tree) is beyond the
/// market's price range, as no trade could pay it. So a fee is bounded like a price and
/// `price + fee` and `fee × quantity` stay as far from overflow as `price × quantity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridFees {
    /// Fee per kWh for each feeder-tree edge the energy crosses (`feePerHop`).
    pub per_hop: MicroPerKwh,
    /// Fee per kWh on every trade (`networkFee`).
    pub per_kwh: MicroPerKwh,
}

impl GridFees {
    /// The most either part may be: 1,000 currency units per kWh (thousands of times any
    /// real grid fee), so `per_kwh + per_hop × hops` fits `i64` for any tree (`hops < 2³²`).
    pub const MAX: MicroPerKwh = MicroPerKwh(1_000_000_000);

    /// Checked fees: `per_hop` then `per_kwh` (the order of the on-chain parameters).
    pub fn new(per_hop: MicroPerKwh, per_kwh: MicroPerKwh) -> Result<Self, GridFeesError> {
        let f = Self { per_hop, per_kwh };
        f.check()?;
        Ok(f)
    }

    /// Both parts within `0..=MAX` (the fields are public: the engine checks again when a book
    /// opens, with [`crate::Engine::check_grid_fees`]).
    pub fn check(&self) -> Result<(), GridFeesError> {
        for (what, value) in [("per_hop", self.per_hop), ("per_kwh", self.per_kwh)] {
            if value.0 < 0 {
                return Err(GridFeesError::Negative { what, value });
            }
            if value > Self::MAX {
                return Err(GridFeesError::TooLarge { what, value });
            }
        }
        Ok(())
    }

    /// The fee per kWh of a trade crossing `hops` edges (checked fees cannot overflow).
    #[inline]
    pub fn fee(&self, hops: u32) -> i64 {
        self.per_kwh.0 + self.per_hop.0 * i64::from(hops)
    }
}

/// Grid fees a book cannot open with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GridFeesError {
    /// A part is negative.
    #[error("grid fee {what} is negative ({value})")]
    Negative {
        /// `per_hop` or `per_kwh`.
        what: &'static str,
        /// Its value.
        value: MicroPerKwh,
    },
    /// A part is above [`GridFees::MAX`].
    #[error("grid fee {what} {value} is above the most allowed, {max}", max = GridFees::MAX)]
    TooLarge {
        /// `per_hop` or `per_kwh`.
        what: &'static str,
        /// Its value.
        value: MicroPerKwh,
    },
    /// The fee across the tree's longest path is more than the market's whole price range.
    #[error(
        "the largest grid fee a trade could pay, {largest} (per_kwh + per_hop × {hops} edges), is above the \
         market's price range {range}: no trade could pay it"
    )]
    AbovePriceRange {
        /// `per_kwh + per_hop × hops`.
        largest: MicroPerKwh,
        /// Edges on the tree's longest path.
        hops: u32,
        /// `max_price − min_price`.
        range: MicroPerKwh,
    },
}

/// Everything the engine can be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Let a participant trade from a node.
    AddParticipant {
        /// The participant.
        owner: ParticipantId,
        /// Its connection node.
        node: NodeId,
    },
    /// Open the book of a zone and interval.
    OpenBook {
        /// Zone.
        zone: ZoneId,
        /// Interval.
        interval: DeliveryInterval,
        /// The grid fees the book charges for its whole life; `None`: the feeder tree's
        /// per-edge fees. Absent from journal lines (and JSON) of books opened without.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fees: Option<GridFees>,
    },
    /// Submit an order.
    Submit {
        /// When the command was accepted by the service.
        at: Timestamp,
        /// The order.
        order: OrderSpec,
    },
    /// Cancel a resting order.
    Cancel {
        /// When.
        at: Timestamp,
        /// The order.
        id: OrderId,
        /// Who asks (must own the order).
        owner: ParticipantId,
    },
    /// Change quantity and/or price of a resting order.
    Amend {
        /// When.
        at: Timestamp,
        /// The order.
        id: OrderId,
        /// Who asks (must own the order).
        owner: ParticipantId,
        /// New remaining quantity.
        quantity: Wh,
        /// New limit price.
        price: MicroPerKwh,
    },
    /// Gate closure: run the call auction and close the book.
    CloseGate {
        /// When.
        at: Timestamp,
        /// Zone.
        zone: ZoneId,
        /// Interval.
        interval: DeliveryInterval,
    },
}

/// Why a command was refused. State is unchanged after every reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// No book for that zone and interval.
    UnknownBook,
    /// The book exists but its gate has closed.
    BookClosed,
    /// The book is already open.
    BookExists,
    /// More books than configured.
    TooManyBooks,
    /// Price not a multiple of the tick.
    PriceOffTick,
    /// Price outside the market's bounds.
    PriceOutOfBounds,
    /// Quantity outside the market's bounds.
    QuantityOutOfBounds,
    /// Owner not registered.
    UnknownOwner,
    /// Node not in the feeder tree (or not the owner's node).
    UnknownNode,
    /// An order with this id is live.
    DuplicateOrderId,
    /// No live order with this id.
    UnknownOrder,
    /// The order belongs to someone else.
    NotOwner,
    /// The engine holds as many live orders as it was sized for.
    OrderCapacity,
    /// A fill-or-kill order could not be filled completely now.
    FillOrKillUnfilled,
    /// Time in force and mode do not go together (IOC/FOK auction-only).
    InvalidTimeInForce,
    /// A book's grid fees are negative or too large ([`crate::Engine::check_grid_fees`] says why).
    InvalidGridFees,
}

/// Why a live order left the book without filling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Its owner cancelled it.
    Requested,
    /// The unfilled rest of an immediate-or-cancel order.
    ImmediateOrCancel,
    /// It would have traded with its own owner's resting order (self-trade prevention cancels the newer order).
    SelfTrade,
    /// The book closed with it unmatched after the auction.
    Unmatched,
}

/// What happened. Every command produces at least one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A participant may trade.
    ParticipantAdded {
        /// Who.
        owner: ParticipantId,
        /// From where.
        node: NodeId,
    },
    /// A book opened.
    BookOpened {
        /// Zone.
        zone: ZoneId,
        /// Interval.
        interval: DeliveryInterval,
        /// The grid fees it charges, if opened with them (absent otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fees: Option<GridFees>,
    },
    /// An order was accepted (trades, if any, follow).
    Accepted {
        /// The order.
        id: OrderId,
    },
    /// A command was refused.
    Rejected {
        /// The order concerned, if the command named one.
        id: Option<OrderId>,
        /// Why.
        reason: RejectReason,
    },
    /// An amend took effect.
    Amended {
        /// The order.
        id: OrderId,
        /// Its remaining quantity now.
        quantity: Wh,
        /// Its limit now.
        price: MicroPerKwh,
        /// True when it kept its time priority (quantity reduced, price unchanged).
        kept_priority: bool,
    },
    /// A trade.
    Trade {
        /// Trade id, sequential.
        trade_id: TradeId,
        /// Zone.
        zone: ZoneId,
        /// Interval.
        interval: DeliveryInterval,
        /// Buying order.
        buy: OrderId,
        /// Selling order.
        sell: OrderId,
        /// Buyer.
        buyer: ParticipantId,
        /// Seller.
        seller: ParticipantId,
        /// Energy.
        quantity: Wh,
        /// What the seller receives per kWh.
        price: MicroPerKwh,
        /// Grid fee per kWh the buyer pays on top.
        grid_fee: MicroPerKwh,
        /// True when made by the gate-closure auction.
        auction: bool,
        /// When.
        at: Timestamp,
    },
    /// An order left the book unfilled (in part or whole).
    Cancelled {
        /// The order.
        id: OrderId,
        /// Quantity that was left.
        remaining: Wh,
        /// Why.
        reason: CancelReason,
    },
    /// With a feeder tree: one node's price in the gate-closure auction (one event per node
    /// that has one, before [`Event::AuctionResult`], when the auction traded; a part of the
    /// tree with no order, cut off by full edges, has none).
    NodePrice {
        /// Zone.
        zone: ZoneId,
        /// Interval.
        interval: DeliveryInterval,
        /// The node.
        node: NodeId,
        /// The value of one more Wh at the node: what a seller there receives, what a buyer
        /// there pays (grid fee included; in a book opened with [`GridFees`], a buyer pays
        /// this plus `per_kwh`).
        price: MicroPerKwh,
        /// Energy the auction sent up the edge above the node (negative: down); 0 at the root.
        flow: Wh,
        /// By how much the price difference across the edge above exceeds its fee: positive
        /// only where the edge is full (binding).
        congestion: MicroPerKwh,
    },
    /// The gate-closure auction's outcome.
    AuctionResult {
        /// Zone.
        zone: ZoneId,
        /// Interval.
        interval: DeliveryInterval,
        /// Uniform price, if anything traded; with a feeder tree, the root's (the substation's) node
        /// price, none when full edges kept every trade below it.
        clearing_price: Option<MicroPerKwh>,
        /// Energy matched in the auction.
        volume: Wh,
    },
    /// The book closed; no more orders.
    BookClosed {
        /// Zone.
        zone: ZoneId,
        /// Interval.
        interval: DeliveryInterval,
        /// Energy traded over the book's life.
        total_volume: Wh,
        /// Trades over the book's life.
        trades: u32,
    },
}

impl Event {
    /// The node price this event reports, as stored and shown to the grid operator.
    pub fn node_price(&self) -> Option<gridshare_domain::wire::NodePrice> {
        match *self {
            Self::NodePrice {
                zone,
                interval,
                node,
                price,
                flow,
                congestion,
            } => Some(gridshare_domain::wire::NodePrice {
                zone,
                interval,
                node,
                price,
                flow,
                congestion,
            }),
            _ => None,
        }
    }

    /// The trade this event reports, as published to the parties and stored.
    pub fn trade_report(&self) -> Option<gridshare_domain::wire::TradeReport> {
        match *self {
            Self::Trade {
                trade_id,
                zone,
                interval,
                buy,
                sell,
                buyer,
                seller,
                quantity,
                price,
                grid_fee,
                at,
                ..
            } => Some(gridshare_domain::wire::TradeReport {
                trade_id,
                zone,
                interval,
                buy_order: buy,
                sell_order: sell,
                buyer,
                seller,
                quantity,
                price,
                grid_fee,
                at,
            }),
            _ => None,
        }
    }

    /// The results of the books these events closed, in closing order: each book's auction price
    /// and volume, its totals and, with a feeder network, its nodes' prices (a gate closure's
    /// events carry each closed book's auction result and node prices before its `BookClosed`).
    pub fn interval_results(events: &[Self]) -> Vec<gridshare_domain::wire::IntervalResult> {
        let mut out = Vec::new();
        let mut auction = None;
        let mut nodes = Vec::new();
        for e in events {
            match *e {
                Self::AuctionResult {
                    zone,
                    interval,
                    clearing_price,
                    volume,
                } => auction = Some((zone, interval, clearing_price, volume)),
                Self::NodePrice { .. } => nodes.extend(e.node_price()),
                Self::BookClosed {
                    zone,
                    interval,
                    total_volume,
                    trades,
                } => {
                    let (clearing_price, auction_volume) = match auction.take() {
                        Some((z, i, price, volume)) if (z, i) == (zone, interval) => (price, volume),
                        _ => (None, Wh(0)),
                    };
                    let mut node_prices = std::mem::take(&mut nodes);
                    node_prices.retain(|p| (p.zone, p.interval) == (zone, interval));
                    out.push(gridshare_domain::wire::IntervalResult {
                        zone,
                        interval,
                        clearing_price,
                        auction_volume,
                        total_volume,
                        trades,
                        node_prices,
                    });
                }
                _ => {}
            }
        }
        out
    }
}

impl RejectReason {
    /// The stable snake_case code (as serialised), for API errors and metrics.
    pub const fn code(self) -> &'static str {
        match self {
            Self::UnknownBook => "unknown_book",
            Self::BookClosed => "book_closed",
            Self::BookExists => "book_exists",
            Self::TooManyBooks => "too_many_books",
            Self::PriceOffTick => "price_off_tick",
            Self::PriceOutOfBounds => "price_out_of_bounds",
            Self::QuantityOutOfBounds => "quantity_out_of_bounds",
            Self::UnknownOwner => "unknown_owner",
            Self::UnknownNode => "unknown_node",
            Self::DuplicateOrderId => "duplicate_order_id",
            Self::UnknownOrder => "unknown_order",
            Self::NotOwner => "not_owner",
            Self::OrderCapacity => "order_capacity",
            Self::FillOrKillUnfilled => "fill_or_kill_unfilled",
            Self::InvalidTimeInForce => "invalid_time_in_force",
            Self::InvalidGridFees => "invalid_grid_fees",
        }
    }
}

/// Where events go: a `Vec<Event>` (cleared and reused by the caller, so no
/// allocation after warm-up) or anything else that takes them one by one.
pub trait EventSink {
    /// Take one event.
    fn push(&mut self, e: Event);
}

impl EventSink for Vec<Event> {
    #[inline]
    fn push(&mut self, e: Event) {
        Vec::push(self, e);
    }
}

/// A sink that only counts events (benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingSink {
    /// Events seen.
    pub events: u64,
    /// Trades seen.
    pub trades: u64,
}

impl EventSink for CountingSink {
    #[inline]
    fn push(&mut self, e: Event) {
        self.events += 1;
        if matches!(e, Event::Trade { .. }) {
            self.trades += 1;
        }
    }
}
