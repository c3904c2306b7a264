//! Market records: trades, interval results and auction node prices, as the engine produced them.

use gridshare_domain::wire::{IntervalResult, NodePrice, TradeReport};
use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, ParticipantId, Timestamp, TradeId, Wh, ZoneId,
};
use sqlx::Row;

use crate::db::{Db, query, with_pool};
use crate::error::{Result, StorageError};

/// `SELECT` of every column [`trade_from_row`] reads, followed by `$rest` (`WHERE …`).
macro_rules! select_trades {
    ($rest:literal) => {
        concat!(
            "SELECT trade_id, zone, interval_start, interval_minutes, buy_order, sell_order, buyer_id, seller_id, ",
            "quantity_wh, price, grid_fee, at FROM trades ",
            $rest
        )
    };
}
pub(crate) use select_trades;

/// The `INSERT` of a trade's columns, in the order [`bind_trade`] binds them, then `$rest`.
macro_rules! insert_trade {
    ($rest:literal) => {
        concat!(
            "INSERT INTO trades (trade_id, zone, interval_start, buy_order, sell_order, buyer_id, seller_id, ",
            "quantity_wh, price, grid_fee, at, interval_minutes) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ",
            $rest
        )
    };
}
pub(crate) use insert_trade;

/// Binds a trade to an [`insert_trade`] statement.
macro_rules! bind_trade {
    ($q:expr, $t:expr) => {{
        let t = $t;
        $q.bind(t.trade_id.0 as i64)
            .bind(i64::from(t.zone.0))
            .bind(t.interval.start().0)
            .bind(t.buy_order.0 as i64)
            .bind(t.sell_order.0 as i64)
            .bind(t.buyer.0 as i64)
            .bind(t.seller.0 as i64)
            .bind(t.quantity.0)
            .bind(t.price.0)
            .bind(t.grid_fee.0)
            .bind(t.at.0)
            .bind(t.interval.length().minutes())
    }};
}
pub(crate) use bind_trade;

/// The `INSERT` of a book's result, in the order [`bind_result`] binds it, then `$rest`.
macro_rules! insert_result_sql {
    ($rest:literal) => {
        concat!(
            "INSERT INTO interval_results (zone, interval_start, interval_minutes, clearing_price, auction_volume, ",
            "total_volume, trades, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            $rest
        )
    };
}
pub(crate) use insert_result_sql;

/// Binds a book's result and when it closed to an [`insert_result_sql`] statement.
macro_rules! bind_result {
    ($q:expr, $r:expr, $closed_at:expr) => {{
        let r = $r;
        $q.bind(i64::from(r.zone.0))
            .bind(r.interval.start().0)
            .bind(r.interval.length().minutes())
            .bind(r.clearing_price.map(gridshare_domain::MicroPerKwh::get))
            .bind(r.auction_volume.0)
            .bind(r.total_volume.0)
            .bind(i64::from(r.trades))
            .bind($closed_at.0)
    }};
}
pub(crate) use bind_result;

/// Store trades in one transaction (all or nothing). `Duplicate` if a trade id exists.
pub async fn insert_trades(db: &Db, trades: &[TradeReport]) -> Result<()> {
    let sql = insert_trade!("");
    let sqlite_sql = crate::db::sqlite_placeholders(sql);
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for t in trades {
            let q = match db {
                Db::Sqlite(_) => sqlx::query(sqlx::AssertSqlSafe(sqlite_sql.clone())),
                Db::Postgres(_) => sqlx::query(sql),
            };
            bind_trade!(q, t).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// A trade from a `trades` row (all its columns).
pub(crate) fn trade_from_row<R: Row>(r: &R) -> Result<TradeReport>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let corrupt = |reason: String| StorageError::Corrupt {
        field: "trades.interval",
        reason,
    };
    let length = IntervalLength::from_minutes(r.try_get("interval_minutes")?).map_err(|e| corrupt(e.to_string()))?;
    let interval =
        DeliveryInterval::new(Timestamp(r.try_get("interval_start")?), length).map_err(|e| corrupt(e.to_string()))?;
    let zone = u32::try_from(r.try_get::<i64, _>("zone")?).map_err(|e| corrupt(e.to_string()))?;
    Ok(TradeReport {
        trade_id: TradeId(r.try_get::<i64, _>("trade_id")? as u64),
        zone: ZoneId(zone),
        interval,
        buy_order: OrderId(r.try_get::<i64, _>("buy_order")? as u64),
        sell_order: OrderId(r.try_get::<i64, _>("sell_order")? as u64),
        buyer: ParticipantId(r.try_get::<i64, _>("buyer_id")? as u64),
        seller: ParticipantId(r.try_get::<i64, _>("seller_id")? as u64),
        quantity: Wh(r.try_get("quantity_wh")?),
        price: MicroPerKwh(r.try_get("price")?),
        grid_fee: MicroPerKwh(r.try_get("grid_fee")?),
        at: Timestamp(r.try_get("at")?),
    })
}

/// Trades of one book, by trade id.
pub async fn trades_of_interval(db: &Db, zone: ZoneId, interval: DeliveryInterval) -> Result<Vec<TradeReport>> {
    let sql = select_trades!("WHERE zone = $1 AND interval_start = $2 ORDER BY trade_id");
    query!(db, sql, pool => |q| {
        let rows = q.bind(i64::from(zone.0)).bind(interval.start().0).fetch_all(pool).await?;
        rows.iter().map(trade_from_row).collect::<Result<Vec<_>>>()
    })
}

/// Store a book's result; `Duplicate` if that book already has one.
pub async fn insert_interval_result(db: &Db, r: &IntervalResult, closed_at: Timestamp) -> Result<()> {
    let sql = insert_result_sql!("");
    query!(db, sql, pool => |q| {
        bind_result!(q, r, closed_at).execute(pool).await?;
    });
    Ok(())
}

/// Results of a zone's books whose intervals start in `[from, to)`, oldest first, each with its
/// nodes' auction prices (only `node`'s, if given).
pub async fn interval_results(
    db: &Db,
    zone: ZoneId,
    from: Timestamp,
    to: Timestamp,
    node: Option<NodeId>,
) -> Result<Vec<IntervalResult>> {
    let sql = "SELECT interval_start, interval_minutes, clearing_price, auction_volume, total_volume, trades \
               FROM interval_results WHERE zone = $1 AND interval_start >= $2 AND interval_start < $3 ORDER BY interval_start";
    let mut results = query!(db, sql, pool => |q| {
        let rows = q.bind(i64::from(zone.0)).bind(from.0).bind(to.0).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let corrupt = |reason: String| StorageError::Corrupt { field: "interval_results.interval", reason };
                let length = IntervalLength::from_minutes(r.try_get("interval_minutes")?).map_err(|e| corrupt(e.to_string()))?;
                let interval = DeliveryInterval::new(Timestamp(r.try_get("interval_start")?), length)
                    .map_err(|e| corrupt(e.to_string()))?;
                let trades: i64 = r.try_get("trades")?;
                Ok(IntervalResult {
                    zone,
                    interval,
                    clearing_price: r.try_get::<Option<i64>, _>("clearing_price")?.map(MicroPerKwh),
                    auction_volume: Wh(r.try_get("auction_volume")?),
                    total_volume: Wh(r.try_get("total_volume")?),
                    trades: u32::try_from(trades).map_err(|e| corrupt(e.to_string()))?,
                    node_prices: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut prices = node_prices_between(db, zone, from, to, node)
        .await?
        .into_iter()
        .peekable();
    for r in &mut results {
        // both lists are ordered by interval; a price of a book without a result is skipped
        while prices.next_if(|p| p.interval.start() < r.interval.start()).is_some() {}
        while let Some(p) = prices.next_if(|p| p.interval.start() == r.interval.start()) {
            if p.interval == r.interval {
                r.node_prices.push(p);
            }
        }
    }
    Ok(results)
}

/// The node prices of a zone's books whose intervals start in `[from, to)` (only `node`'s, if
/// given), by interval and node.
async fn node_prices_between(
    db: &Db,
    zone: ZoneId,
    from: Timestamp,
    to: Timestamp,
    node: Option<NodeId>,
) -> Result<Vec<NodePrice>> {
    let sql = "SELECT interval_start, interval_minutes, node, price, flow_wh, congestion FROM node_prices \
               WHERE zone = $1 AND interval_start >= $2 AND interval_start < $3 AND ($4 < 0 OR node = $4) \
               ORDER BY interval_start, interval_minutes, node";
    let node = node.map_or(-1, |n| i64::from(n.0));
    query!(db, sql, pool => |q| {
        let rows = q.bind(i64::from(zone.0)).bind(from.0).bind(to.0).bind(node).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let corrupt = |reason: String| StorageError::Corrupt { field: "node_prices.interval", reason };
                let length = IntervalLength::from_minutes(r.try_get("interval_minutes")?).map_err(|e| corrupt(e.to_string()))?;
                let interval = DeliveryInterval::new(Timestamp(r.try_get("interval_start")?), length)
                    .map_err(|e| corrupt(e.to_string()))?;
                node_price_of(zone, interval, r)
            })
            .collect::<Result<Vec<_>>>()
    })
}

/// The feeder nodes' prices in the gate-closure auction of the book (`zone`, `interval`), by
/// node; empty without a feeder network or when the auction traded nothing.
pub async fn node_prices(db: &Db, zone: ZoneId, interval: DeliveryInterval) -> Result<Vec<NodePrice>> {
    let sql = "SELECT node, price, flow_wh, congestion FROM node_prices \
               WHERE zone = $1 AND interval_start = $2 AND interval_minutes = $3 ORDER BY node";
    query!(db, sql, pool => |q| {
        let rows = q
            .bind(i64::from(zone.0))
            .bind(interval.start().0)
            .bind(interval.length().minutes())
            .fetch_all(pool)
            .await?;
        rows.iter().map(|r| node_price_of(zone, interval, r)).collect::<Result<Vec<_>>>()
    })
}

fn node_price_of<R: sqlx::Row>(zone: ZoneId, interval: DeliveryInterval, r: &R) -> Result<NodePrice>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let node: i64 = r.try_get("node")?;
    Ok(NodePrice {
        zone,
        interval,
        node: NodeId(u32::try_from(node).map_err(|e| StorageError::Corrupt {
            field: "node_prices.node",
            reason: e.to_string(),
        })?),
        price: MicroPerKwh(r.try_get("price")?),
        flow: Wh(r.try_get("flow_wh")?),
        congestion: MicroPerKwh(r.try_get("congestion")?),
    })
}

/// Delivery intervals (start, minutes) that have trades not yet in a settlement batch, oldest
/// first.
pub async fn unsettled_intervals(db: &Db) -> Result<Vec<DeliveryInterval>> {
    let sql = "SELECT DISTINCT interval_start, interval_minutes FROM trades WHERE batch_id IS NULL \
               ORDER BY interval_start";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let corrupt = |reason: String| StorageError::Corrupt { field: "trades.interval", reason };
                let length = IntervalLength::from_minutes(r.try_get("interval_minutes")?).map_err(|e| corrupt(e.to_string()))?;
                DeliveryInterval::new(Timestamp(r.try_get("interval_start")?), length).map_err(|e| corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()
    })
}

/// Every trade (all zones) of a delivery interval that is not in a batch yet, by trade id.
pub async fn unsettled_trades(db: &Db, interval: DeliveryInterval) -> Result<Vec<TradeReport>> {
    let sql = select_trades!("WHERE interval_start = $1 AND batch_id IS NULL ORDER BY trade_id");
    query!(db, sql, pool => |q| {
        let rows = q.bind(interval.start().0).fetch_all(pool).await?;
        rows.iter().map(trade_from_row).collect::<Result<Vec<_>>>()
    })
}

/// The trades of a batch, by trade id (the order of its Merkle leaves), and the batch a trade is in.
pub async fn trades_of_batch(db: &Db, batch_id: u64) -> Result<Vec<TradeReport>> {
    let sql = select_trades!("WHERE batch_id = $1 ORDER BY trade_id");
    query!(db, sql, pool => |q| {
        let rows = q.bind(batch_id as i64).fetch_all(pool).await?;
        rows.iter().map(trade_from_row).collect::<Result<Vec<_>>>()
    })
}

/// The batch a trade was settled in, if any (`NotFound` for an unknown trade).
pub async fn batch_of_trade(db: &Db, trade_id: u64) -> Result<Option<u64>> {
    let sql = "SELECT batch_id FROM trades WHERE trade_id = $1";
    let row = query!(db, sql, pool => |q| {
        let row = q.bind(trade_id as i64).fetch_optional(pool).await?;
        row.map(|r| r.try_get::<Option<i64>, _>("batch_id")).transpose()?
    });
    match row {
        None => Err(StorageError::NotFound {
            what: "trade",
            key: trade_id.to_string(),
        }),
        Some(b) => Ok(b.map(|b| b as u64)),
    }
}

/// The on-chain form (JSON) of each trade of a batch, by trade id: the order of its Merkle leaves.
pub async fn onchain_trades_of_batch(db: &Db, batch_id: u64) -> Result<Vec<(u64, String)>> {
    let sql = "SELECT trade_id, onchain FROM trades WHERE batch_id = $1 ORDER BY trade_id";
    query!(db, sql, pool => |q| {
        let rows = q.bind(batch_id as i64).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let id = r.try_get::<i64, _>("trade_id")? as u64;
                let json: Option<String> = r.try_get("onchain")?;
                let json = json.ok_or_else(|| StorageError::Corrupt {
                    field: "trades.onchain",
                    reason: format!("trade {id} is in batch {batch_id} without its on-chain form"),
                })?;
                Ok((id, json))
            })
            .collect::<Result<Vec<_>>>()
    })
}

/// A participant's trades not in a settlement batch yet, by trade id.
pub async fn unsettled_trades_of(db: &Db, who: ParticipantId) -> Result<Vec<TradeReport>> {
    let sql = select_trades!(
        "WHERE (buyer_id = $1 OR seller_id = $1) AND batch_id IS NULL \
               ORDER BY trade_id"
    );
    query!(db, sql, pool => |q| {
        let rows = q.bind(who.0 as i64).fetch_all(pool).await?;
        rows.iter().map(trade_from_row).collect::<Result<Vec<_>>>()
    })
}

/// A participant's trades delivered from `from` on, newest first (at most `limit`), each with
/// the settlement batch it is in, if any.
pub async fn trades_of_participant_since(
    db: &Db,
    who: ParticipantId,
    from: Timestamp,
    limit: u32,
) -> Result<Vec<(TradeReport, Option<u64>)>> {
    let sql = "SELECT trade_id, zone, interval_start, interval_minutes, buy_order, sell_order, buyer_id, seller_id, \
               quantity_wh, price, grid_fee, at, batch_id FROM trades \
               WHERE (buyer_id = $1 OR seller_id = $1) AND interval_start >= $2 \
               ORDER BY interval_start DESC, trade_id DESC LIMIT $3";
    query!(db, sql, pool => |q| {
        let rows = q.bind(who.0 as i64).bind(from.0).bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let batch = r.try_get::<Option<i64>, _>("batch_id")?.map(|b| b as u64);
                Ok((trade_from_row(r)?, batch))
            })
            .collect::<Result<Vec<_>>>()
    })
}
