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
        /// there pays (grid fee included).
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
