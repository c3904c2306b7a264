//! The order book's history as the market service records it from the engine's events: every
//! accepted order, its fills and how it ended. Recording is idempotent (replaying the engine's
//! journal after a crash records what was missed and changes nothing else), so the engine's
//! journal stays the source of truth and this is a queryable projection of it.

use gridshare_domain::wire::{IntervalResult, TradeReport};
use gridshare_domain::{
    DeliveryInterval, GatewayId, IntervalLength, MicroPerKwh, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use sqlx::Row;

use crate::db::{Db, query, with_pool};
use crate::error::{Result, StorageError};

/// How an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// In the book.
    Open,
    /// Completely filled.
    Filled,
    /// Left the book with a remainder (cancelled, IOC rest, self-trade, unmatched at gate closure).
    Cancelled,
}

impl OrderStatus {
    /// Stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Filled => "filled",
            Self::Cancelled => "cancelled",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "open" => Self::Open,
            "filled" => Self::Filled,
            "cancelled" => Self::Cancelled,
            other => return Err(corrupt("orders.status", format!("unknown status {other:?}"))),
        })
    }
}

fn corrupt(field: &'static str, reason: String) -> StorageError {
    StorageError::Corrupt { field, reason }
}

/// One recorded order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// Id (assigned by the market service).
    pub id: OrderId,
    /// Owner.
    pub owner: ParticipantId,
    /// The gateway that sent it, when it came over MQTT.
    pub gateway: Option<GatewayId>,
    /// Zone.
    pub zone: ZoneId,
    /// Delivery interval.
    pub interval: DeliveryInterval,
    /// Side.
    pub side: Side,
    /// Quantity (after the latest amend).
    pub quantity: Wh,
    /// Limit price (after the latest amend).
    pub price: MicroPerKwh,
    /// Time in force.
    pub tif: TimeInForce,
    /// Mode.
    pub mode: OrderMode,
    /// Status.
    pub status: OrderStatus,
    /// Filled so far (sum of its trades).
    pub filled: Wh,
    /// Why it left the book, when cancelled (`requested`, `immediate_or_cancel`, …).
    pub reason: Option<String>,
    /// Accepted at.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// One change to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An accepted order.
    Accepted(OrderRecord),
    /// A trade (the orders' filled quantities follow from their trades).
    Trade(TradeReport),
    /// An amend.
    Amended {
        /// Order.
        id: OrderId,
        /// New quantity.
        quantity: Wh,
        /// New price.
        price: MicroPerKwh,
        /// When.
        at: Timestamp,
    },
    /// The order is completely filled.
    Filled {
        /// Order.
        id: OrderId,
        /// When.
        at: Timestamp,
    },
    /// The order left the book with a remainder.
    Cancelled {
        /// Order.
        id: OrderId,
        /// Why.
        reason: &'static str,
        /// When.
        at: Timestamp,
    },
    /// A feeder node's price in a book's gate-closure auction.
    NodePrice(gridshare_domain::wire::NodePrice),
    /// A gateway's own id for one of its orders (the newest order under that id wins).
    Linked {
        /// The gateway.
        gateway: GatewayId,
        /// Its id for the order.
        client_order_id: OrderId,
        /// The market's.
        order_id: OrderId,
    },
    /// A book's gate-closure result.
    Result {
        /// The result.
        result: IntervalResult,
        /// When the gate closed.
        closed_at: Timestamp,
    },
}

const fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}
const fn tif_str(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::GoodTillGateClosure => "good_till_gate_closure",
        TimeInForce::ImmediateOrCancel => "immediate_or_cancel",
        TimeInForce::FillOrKill => "fill_or_kill",
    }
}
const fn mode_str(m: OrderMode) -> &'static str {
    match m {
        OrderMode::Continuous => "continuous",
        OrderMode::AuctionOnly => "auction_only",
    }
}

/// Records `changes` in one transaction, idempotently: an order, trade or result that is
/// already stored is left as it is, and status changes apply only to open orders.
pub async fn record(db: &Db, changes: &[Change]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let new_order = "INSERT INTO orders (order_id, participant_id, gateway_id, zone, interval_start, interval_minutes, \
                     side, quantity_wh, limit_price, tif, mode, status, filled_wh, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', 0, $12, $12) \
                     ON CONFLICT (order_id) DO NOTHING";
    let trade = crate::market::insert_trade!("ON CONFLICT (trade_id) DO NOTHING");
    let filled = "UPDATE orders SET filled_wh = (SELECT COALESCE(SUM(quantity_wh), 0) FROM trades \
                  WHERE buy_order = $1 OR sell_order = $1), updated_at = $2 WHERE order_id = $1";
    let amended = "UPDATE orders SET quantity_wh = $1, limit_price = $2, updated_at = $3 \
                   WHERE order_id = $4 AND status = 'open'";
    let ended = "UPDATE orders SET status = $1, reason = $2, updated_at = $3 WHERE order_id = $4 AND status = 'open'";
    let result = crate::market::insert_result_sql!(" ON CONFLICT (zone, interval_start) DO NOTHING");
    let node_price = "INSERT INTO node_prices (zone, interval_start, interval_minutes, node, price, flow_wh, congestion) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (zone, interval_start, interval_minutes, node) DO NOTHING";
    let linked = "INSERT INTO gateway_orders (gateway_id, client_order_id, order_id) VALUES ($1, $2, $3) \
                  ON CONFLICT (gateway_id, client_order_id) DO UPDATE SET order_id = excluded.order_id";
    macro_rules! q {
        ($sql:expr) => {
            match db {
                Db::Sqlite(_) => sqlx::query(sqlx::AssertSqlSafe(crate::db::sqlite_placeholders($sql))),
                Db::Postgres(_) => sqlx::query($sql),
            }
        };
    }
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for c in changes {
            match c {
                Change::Accepted(o) => {
                    q!(new_order)
                        .bind(o.id.0 as i64)
                        .bind(o.owner.0 as i64)
                        .bind(o.gateway.map(|g| g.0 as i64))
                        .bind(i64::from(o.zone.0))
                        .bind(o.interval.start().0)
                        .bind(o.interval.length().minutes())
                        .bind(side_str(o.side))
                        .bind(o.quantity.0)
                        .bind(o.price.0)
                        .bind(tif_str(o.tif))
                        .bind(mode_str(o.mode))
                        .bind(o.created_at.0)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Trade(t) => {
                    crate::market::bind_trade!(q!(trade), t).execute(&mut *tx).await?;
                    for id in [t.buy_order, t.sell_order] {
                        q!(filled).bind(id.0 as i64).bind(t.at.0).execute(&mut *tx).await?;
                    }
                }
                Change::Amended { id, quantity, price, at } => {
                    q!(amended).bind(quantity.0).bind(price.0).bind(at.0).bind(id.0 as i64).execute(&mut *tx).await?;
                }
                Change::Filled { id, at } => {
                    q!(ended)
                        .bind(OrderStatus::Filled.as_str())
                        .bind(None::<String>)
                        .bind(at.0)
                        .bind(id.0 as i64)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Cancelled { id, reason, at } => {
                    q!(ended)
                        .bind(OrderStatus::Cancelled.as_str())
                        .bind(*reason)
                        .bind(at.0)
                        .bind(id.0 as i64)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::NodePrice(p) => {
                    q!(node_price)
                        .bind(i64::from(p.zone.0))
                        .bind(p.interval.start().0)
                        .bind(p.interval.length().minutes())
                        .bind(i64::from(p.node.0))
                        .bind(p.price.0)
                        .bind(p.flow.0)
                        .bind(p.congestion.0)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Linked {
                    gateway,
                    client_order_id,
                    order_id,
                } => {
                    q!(linked)
                        .bind(gateway.0 as i64)
                        .bind(client_order_id.0 as i64)
                        .bind(order_id.0 as i64)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Result { result: r, closed_at } => {
                    crate::market::bind_result!(q!(result), r, closed_at)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
    });
    Ok(())
}

fn parse_side(s: &str) -> Result<Side> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(corrupt("orders.side", format!("{other:?}"))),
    }
}
fn parse_tif(s: &str) -> Result<TimeInForce> {
    [
        TimeInForce::GoodTillGateClosure,
        TimeInForce::ImmediateOrCancel,
        TimeInForce::FillOrKill,
    ]
    .into_iter()
    .find(|t| tif_str(*t) == s)
    .ok_or_else(|| corrupt("orders.tif", format!("{s:?}")))
}
fn parse_mode(s: &str) -> Result<OrderMode> {
    [OrderMode::Continuous, OrderMode::AuctionOnly]
        .into_iter()
        .find(|m| mode_str(*m) == s)
        .ok_or_else(|| corrupt("orders.mode", format!("{s:?}")))
}

macro_rules! order_from_row {
    ($r:expr) => {{
        let r = $r;
        let length = IntervalLength::from_minutes(r.try_get("interval_minutes")?)
            .map_err(|e| corrupt("orders.interval_minutes", e.to_string()))?;
        let interval = DeliveryInterval::new(Timestamp(r.try_get("interval_start")?), length)
            .map_err(|e| corrupt("orders.interval_start", e.to_string()))?;
        Ok::<OrderRecord, StorageError>(OrderRecord {
            id: OrderId(r.try_get::<i64, _>("order_id")? as u64),
            owner: ParticipantId(r.try_get::<i64, _>("participant_id")? as u64),
            gateway: r.try_get::<Option<i64>, _>("gateway_id")?.map(|g| GatewayId(g as u64)),
            zone: ZoneId(
                u32::try_from(r.try_get::<i64, _>("zone")?).map_err(|e| corrupt("orders.zone", e.to_string()))?,
            ),
            interval,
            side: parse_side(&r.try_get::<String, _>("side")?)?,
            quantity: Wh(r.try_get("quantity_wh")?),
            price: MicroPerKwh(r.try_get("limit_price")?),
            tif: parse_tif(&r.try_get::<String, _>("tif")?)?,
            mode: parse_mode(&r.try_get::<String, _>("mode")?)?,
            status: OrderStatus::parse(&r.try_get::<String, _>("status")?)?,
            filled: Wh(r.try_get("filled_wh")?),
            reason: r.try_get("reason")?,
            created_at: Timestamp(r.try_get("created_at")?),
            updated_at: Timestamp(r.try_get("updated_at")?),
        })
    }};
}

/// One order.
pub async fn get(db: &Db, id: OrderId) -> Result<Option<OrderRecord>> {
    let sql = "SELECT * FROM orders WHERE order_id = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(id.0 as i64).fetch_optional(pool).await?;
        row.map(|r| order_from_row!(r)).transpose()
    })
}

/// A participant's orders, newest first: at most `limit`, with ids below `before` (paging).
pub async fn of_participant(
    db: &Db,
    owner: ParticipantId,
    before: Option<OrderId>,
    limit: u32,
) -> Result<Vec<OrderRecord>> {
    let sql = "SELECT * FROM orders WHERE participant_id = $1 AND order_id < $2 ORDER BY order_id DESC LIMIT $3";
    query!(db, sql, pool => |q| {
        let rows = q
            .bind(owner.0 as i64)
            .bind(before.map_or(i64::MAX, |b| b.0 as i64))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        rows.into_iter().map(|r| order_from_row!(r)).collect::<Result<Vec<_>>>()
    })
}

/// The highest order id recorded, so new ids continue after it.
pub async fn max_id(db: &Db) -> Result<Option<OrderId>> {
    let sql = "SELECT MAX(order_id) AS n FROM orders";
    query!(db, sql, pool => |q| {
        let row = q.fetch_one(pool).await?;
        Ok(row.try_get::<Option<i64>, _>("n")?.map(|n| OrderId(n as u64)))
    })
}

/// A participant's trades (as buyer or seller), newest first, paged by trade id.
pub async fn trades_of_participant(
    db: &Db,
    who: ParticipantId,
    before: Option<u64>,
    limit: u32,
) -> Result<Vec<TradeReport>> {
    let sql = crate::market::select_trades!(
        "WHERE (buyer_id = $1 OR seller_id = $1) AND trade_id < $2 \
               ORDER BY trade_id DESC LIMIT $3"
    );
    query!(db, sql, pool => |q| {
        let rows = q
            .bind(who.0 as i64)
            .bind(before.map_or(i64::MAX, |b| b as i64))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        rows.iter().map(crate::market::trade_from_row).collect::<Result<Vec<_>>>()
    })
}

/// Links a gateway's own id for an order to the market's (a reused gateway id now names the
/// newer order).
pub async fn link_client_id(db: &Db, gateway: GatewayId, client_order_id: OrderId, order_id: OrderId) -> Result<()> {
    record(
        db,
        &[Change::Linked {
            gateway,
            client_order_id,
            order_id,
        }],
    )
    .await
}

/// The links of orders still open: `(gateway, its id, the market's id)`, to restore at start.
pub async fn open_client_ids(db: &Db) -> Result<Vec<(GatewayId, OrderId, OrderId)>> {
    let sql = "SELECT g.gateway_id, g.client_order_id, g.order_id FROM gateway_orders g \
               JOIN orders o ON o.order_id = g.order_id WHERE o.status = 'open' ORDER BY g.order_id";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok::<_, StorageError>((
                    GatewayId(r.try_get::<i64, _>("gateway_id")? as u64),
                    OrderId(r.try_get::<i64, _>("client_order_id")? as u64),
                    OrderId(r.try_get::<i64, _>("order_id")? as u64),
                ))
            })
            .collect()
    })
}
