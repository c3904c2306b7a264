//! Participants' positions per settled delivery interval, and the true-ups of those settled on an
//! estimate.
//!
//! ```text
//!  settlement batch ─▶ chain_txs::insert_batch ─▶ positions (one per trader and interval, same transaction)
//!  estimated, readings arrived later ─▶ true-up: posted in the next batch (insert_batch), or recorded here when it moves no money
//! ```

use gridshare_domain::{Micro, MicroPerKwh, ParticipantId, Timestamp, Wh};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::Result;

/// A position as a settlement batch stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPosition {
    /// Start of the delivery interval, ms.
    pub interval_start: Timestamp,
    /// Its end, ms.
    pub interval_end: Timestamp,
    /// Whose.
    pub participant: ParticipantId,
    /// Energy bought in the market.
    pub bought: Wh,
    /// Energy sold in the market.
    pub sold: Wh,
    /// Metered net import, or the estimate that stood in for it.
    pub metered_net_import: Wh,
    /// Whether `metered_net_import` is an estimate (the readings were late).
    pub estimated: bool,
    /// `metered_net_import − (bought − sold)`.
    pub imbalance: Wh,
    /// The participant's cash for the imbalance (negative: paid to the utility).
    pub imbalance_cash: Micro,
    /// The utility's import tariff it was priced at.
    pub import_tariff: MicroPerKwh,
    /// The utility's export tariff it was priced at.
    pub export_tariff: MicroPerKwh,
}

/// The correction of an estimated position once its readings arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrueUp {
    /// Start of the position's delivery interval.
    pub interval_start: Timestamp,
    /// Whose.
    pub participant: ParticipantId,
    /// The net import the readings show.
    pub real_net_import: Wh,
    /// The participant's side of the correction (positive: credited); may be zero.
    pub cash: Micro,
}

/// A stored position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// What the batch settled.
    pub settled: NewPosition,
    /// The batch.
    pub batch_id: u64,
    /// The true-up, once the readings of an estimate arrived.
    pub true_up: Option<TrueUp>,
    /// The batch that posted a non-zero true-up.
    pub true_up_batch_id: Option<u64>,
    /// When the true-up was recorded.
    pub trued_up_at: Option<Timestamp>,
}

macro_rules! select_positions {
    ($($rest:literal),+) => {
        concat!(
            "SELECT interval_start, interval_end, participant_id, batch_id, bought_wh, sold_wh, \
             metered_net_import_wh, estimated, imbalance_wh, imbalance_cash, import_tariff, export_tariff, \
             real_net_import_wh, true_up_cash, true_up_batch_id, trued_up_at FROM positions ",
            $($rest),+
        )
    };
}

/// A position from a row of [`select_positions`].
fn position_from_row<R: Row>(r: &R) -> Result<Position>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let interval_start = Timestamp(r.try_get("interval_start")?);
    let participant = ParticipantId(r.try_get::<i64, _>("participant_id")? as u64);
    let real: Option<i64> = r.try_get("real_net_import_wh")?;
    let cash: Option<i64> = r.try_get("true_up_cash")?;
    Ok(Position {
        settled: NewPosition {
            interval_start,
            interval_end: Timestamp(r.try_get("interval_end")?),
            participant,
            bought: Wh(r.try_get("bought_wh")?),
            sold: Wh(r.try_get("sold_wh")?),
            metered_net_import: Wh(r.try_get("metered_net_import_wh")?),
            estimated: r.try_get("estimated")?,
            imbalance: Wh(r.try_get("imbalance_wh")?),
            imbalance_cash: Micro(r.try_get("imbalance_cash")?),
            import_tariff: MicroPerKwh(r.try_get("import_tariff")?),
            export_tariff: MicroPerKwh(r.try_get("export_tariff")?),
        },
        batch_id: r.try_get::<i64, _>("batch_id")? as u64,
        true_up: real.zip(cash).map(|(real, cash)| TrueUp {
            interval_start,
            participant,
            real_net_import: Wh(real),
            cash: Micro(cash),
        }),
        true_up_batch_id: r.try_get::<Option<i64>, _>("true_up_batch_id")?.map(|b| b as u64),
        trued_up_at: r.try_get::<Option<i64>, _>("trued_up_at")?.map(Timestamp),
    })
}

/// Estimated positions still waiting for their readings whose participant has a gateway (one
/// without a meter keeps the estimate), of intervals starting at or after `since`, in
/// (interval start, participant) order after `after` (from the start when `None`), at most `limit`.
pub async fn awaiting_readings(
    db: &Db,
    since: Timestamp,
    after: Option<(Timestamp, ParticipantId)>,
    limit: u32,
) -> Result<Vec<Position>> {
    let sql = select_positions!(
        "WHERE estimated AND real_net_import_wh IS NULL AND interval_start >= $1 ",
        "AND (interval_start > $2 OR (interval_start = $2 AND participant_id > $3)) ",
        "AND EXISTS (SELECT 1 FROM gateways g WHERE g.owner_id = positions.participant_id AND g.revoked_at IS NULL) ",
        "ORDER BY interval_start, participant_id LIMIT $4"
    );
    let (after_start, after_participant) = after.map_or((i64::MIN, -1), |(t, p)| (t.0, p.0 as i64));
    query!(db, sql, pool => |q| {
        let rows = q.bind(since.0).bind(after_start).bind(after_participant).bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter().map(position_from_row).collect()
    })
}

/// Records `$true_ups` (`&[TrueUp]`) on their positions in the open transaction `$tx` of `$db`,
/// posted by batch `$batch` (`Option<u64>`; `None`: they post no money), at `$now` (ms). Returns
/// `NotFound` from the enclosing function unless each position is an estimate still waiting for
/// its readings. Expanded inside `with_pool!`, once per backend.
macro_rules! write_true_ups {
    ($db:expr, $tx:expr, $true_ups:expr, $batch:expr, $now:expr) => {
        for t in $true_ups {
            let sql = "UPDATE positions SET real_net_import_wh = $1, true_up_cash = $2, true_up_batch_id = $3, \
                       trued_up_at = $4 WHERE interval_start = $5 AND participant_id = $6 AND estimated \
                       AND real_net_import_wh IS NULL";
            let q = match $db {
                $crate::db::Db::Sqlite(_) => sqlx::query(sqlx::AssertSqlSafe($crate::db::sqlite_placeholders(sql))),
                $crate::db::Db::Postgres(_) => sqlx::query(sql),
            };
            let n = q
                .bind(t.real_net_import.0)
                .bind(t.cash.0)
                .bind($batch.map(|b: u64| b as i64))
                .bind($now)
                .bind(t.interval_start.0)
                .bind(t.participant.0 as i64)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err($crate::error::StorageError::NotFound {
                    what: "estimated position awaiting its readings",
                    key: format!("participant {} at {}", t.participant, t.interval_start.0),
                });
            }
        }
    };
}
pub(crate) use write_true_ups;

/// Records true-ups that post no money, in one transaction: ones of zero (the readings confirmed
/// the estimate), or ones that cancel out within what would have been their batch. Others are
/// recorded with the batch that posts them (`chain_txs::insert_batch`). `NotFound` unless each
/// position is an estimate still waiting for its readings.
pub async fn record_unposted_true_ups(db: &Db, true_ups: &[TrueUp], now: Timestamp) -> Result<()> {
    crate::db::with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        write_true_ups!(db, tx, true_ups, None::<u64>, now.0);
        tx.commit().await?;
    });
    Ok(())
}

/// A participant's positions, newest interval first, of intervals starting before `before`
/// (all when `None`), at most `limit`.
pub async fn of_participant(
    db: &Db,
    participant: ParticipantId,
    before: Option<Timestamp>,
    limit: u32,
) -> Result<Vec<Position>> {
    let sql =
        select_positions!("WHERE participant_id = $1 AND interval_start < $2 ORDER BY interval_start DESC LIMIT $3");
    query!(db, sql, pool => |q| {
        let before = before.map_or(i64::MAX, |t| t.0);
        let rows = q.bind(participant.0 as i64).bind(before).bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter().map(position_from_row).collect()
    })
}

/// The positions settled or trued up in a batch.
pub async fn of_batch(db: &Db, batch_id: u64) -> Result<Vec<Position>> {
    let sql = select_positions!("WHERE batch_id = $1 OR true_up_batch_id = $1 ORDER BY interval_start, participant_id");
    query!(db, sql, pool => |q| {
        let rows = q.bind(batch_id as i64).fetch_all(pool).await?;
        rows.iter().map(position_from_row).collect()
    })
}
