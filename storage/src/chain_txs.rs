//! Settlement batches and the on-chain transaction queue.
//!
//! A signed transaction is stored (raw bytes, nonce, fees) *before* it is broadcast, so after a
//! crash at any step the settlement service finds it again and re-sends the same bytes instead of
//! signing a second transaction for the same batch.

use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};
use crate::positions::{NewPosition, TrueUp};

/// Status of a stored transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Signed and stored, maybe not broadcast yet.
    Signed,
    /// Sent to the chain.
    Broadcast,
    /// In a block, not yet at the confirmation depth.
    Mined,
    /// At the confirmation depth.
    Confirmed,
    /// Another version of the same nonce was mined.
    Replaced,
    /// Mined and reverted, or refused for good.
    Failed,
}

impl TxStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signed => "signed",
            Self::Broadcast => "broadcast",
            Self::Mined => "mined",
            Self::Confirmed => "confirmed",
            Self::Replaced => "replaced",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "signed" => Self::Signed,
            "broadcast" => Self::Broadcast,
            "mined" => Self::Mined,
            "confirmed" => Self::Confirmed,
            "replaced" => Self::Replaced,
            "failed" | "dropped" => Self::Failed,
            other => {
                return Err(StorageError::Corrupt {
                    field: "chain_txs.status",
                    reason: format!("unknown status {other:?}"),
                });
            }
        })
    }
}

/// One stored transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTx {
    /// Row id (insertion order).
    pub id: i64,
    /// The batch it settles.
    pub batch_id: u64,
    /// The chunk of the batch.
    pub chunk: u32,
    /// Its nonce.
    pub nonce: u64,
    /// EIP-2718 bytes.
    pub raw: Vec<u8>,
    /// `0x…` hash.
    pub tx_hash: String,
    /// Offered max fee per gas (wei, decimal).
    pub max_fee_per_gas: String,
    /// Offered priority fee (wei, decimal).
    pub max_priority_fee_per_gas: String,
    /// Status.
    pub status: TxStatus,
    /// Block it was mined in.
    pub block_number: Option<u64>,
    /// Hash of that block.
    pub block_hash: Option<String>,
    /// Last error.
    pub last_error: Option<String>,
}

/// A new settlement batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    /// Sequential id.
    pub batch_id: u64,
    /// First delivery interval start (ms).
    pub first_interval_start: i64,
    /// Last delivery interval end (ms).
    pub last_interval_end: i64,
    /// State hash the batch builds on (`0x…`).
    pub prev_state_hash: String,
    /// Root of its trades (`0x…`).
    pub trades_root: String,
    /// Number of trades.
    pub trade_count: u64,
    /// `(account, delta µ)`.
    pub deltas: Vec<(String, i64)>,
    /// The trades it settles, each with its on-chain form (JSON: leaf and addresses); their
    /// `batch_id` and `onchain` are set in the same transaction.
    pub trades: Vec<(u64, String)>,
    /// The positions it settles.
    pub positions: Vec<NewPosition>,
    /// The non-zero true-ups of earlier estimated positions it posts.
    pub true_ups: Vec<TrueUp>,
}

/// Stores a batch with its deltas (status `built`), its trades, its positions and its true-ups, in
/// one transaction. `Refused` for a trade already in a batch, `NotFound` for a true-up of a
/// position that is not an estimate awaiting its readings; nothing is stored then.
pub async fn insert_batch(db: &Db, b: &NewBatch, now: i64) -> Result<()> {
    let sql = "INSERT INTO settlement_batches (batch_id, first_interval_start, last_interval_end, prev_state_hash, \
               trades_root, trade_count, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'built', $7, $7)";
    let delta_sql = "INSERT INTO batch_deltas (batch_id, account, delta) VALUES ($1, $2, $3)";
    let trade_sql = "UPDATE trades SET batch_id = $1, onchain = $2 WHERE trade_id = $3 AND batch_id IS NULL";
    let position_sql = "INSERT INTO positions (interval_start, interval_end, participant_id, batch_id, bought_wh, \
                        sold_wh, metered_net_import_wh, estimated, imbalance_wh, imbalance_cash, import_tariff, \
                        export_tariff) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    crate::db::with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let q = match db {
            Db::Sqlite(_) => sqlx::query(sqlx::AssertSqlSafe(crate::db::sqlite_placeholders(sql))),
            Db::Postgres(_) => sqlx::query(sql),
        };
        q.bind(b.batch_id as i64)
            .bind(b.first_interval_start)
            .bind(b.last_interval_end)
            .bind(&b.prev_state_hash)
            .bind(&b.trades_root)
            .bind(b.trade_count as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for (account, delta) in &b.deltas {
            let q = match db {
                Db::Sqlite(_) => sqlx::query(sqlx::AssertSqlSafe(crate::db::sqlite_placeholders(delta_sql))),
                Db::Postgres(_) => sqlx::query(delta_sql),
            };
            q.bind(b.batch_id as i64).bind(account).bind(*delta).execute(&mut *tx).await?;
        }
        for (id, onchain) in &b.trades {
            let q = match db {
                Db::Sqlite(_) => sqlx::query(sqlx::AssertSqlSafe(crate::db::sqlite_placeholders(trade_sql))),
                Db::Postgres(_) => sqlx::query(trade_sql),
            };
            let n = q
                .bind(b.batch_id as i64)
                .bind(onchain)
                .bind(*id as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(StorageError::Refused {
                    constraint: "trades.batch_id".to_owned(),
                    message: format!("trade {id} is unknown or already in a batch"),
                });
            }
        }
        for p in &b.positions {
            let q = match db {
                Db::Sqlite(_) => sqlx::query(sqlx::AssertSqlSafe(crate::db::sqlite_placeholders(position_sql))),
                Db::Postgres(_) => sqlx::query(position_sql),
            };
            q.bind(p.interval_start.0)
                .bind(p.interval_end.0)
                .bind(p.participant.0 as i64)
                .bind(b.batch_id as i64)
                .bind(p.bought.0)
                .bind(p.sold.0)
                .bind(p.metered_net_import.0)
                .bind(p.estimated)
                .bind(p.imbalance.0)
                .bind(p.imbalance_cash.0)
                .bind(p.import_tariff.0)
                .bind(p.export_tariff.0)
                .execute(&mut *tx)
                .await?;
        }
        crate::positions::write_true_ups!(db, tx, &b.true_ups, Some(b.batch_id), now);
        tx.commit().await?;
    });
    Ok(())
}

/// Sets a batch's status (`built`, `submitting`, `confirmed`, `parked`), its resulting state hash
/// and the error that parked it.
pub async fn set_batch_status(
    db: &Db,
    batch_id: u64,
    status: &str,
    state_hash: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> Result<()> {
    let sql = "UPDATE settlement_batches SET status = $1, state_hash = COALESCE($2, state_hash), error = $3, \
               updated_at = $4 WHERE batch_id = $5";
    let n = query!(db, sql, pool => |q| {
        q.bind(status).bind(state_hash).bind(error).bind(now).bind(batch_id as i64).execute(pool).await?.rows_affected()
    });
    if n == 0 {
        return Err(StorageError::NotFound {
            what: "settlement batch",
            key: batch_id.to_string(),
        });
    }
    Ok(())
}

/// A batch's status and error.
pub async fn batch_status(db: &Db, batch_id: u64) -> Result<Option<(String, Option<String>)>> {
    let sql = "SELECT status, error FROM settlement_batches WHERE batch_id = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(batch_id as i64).fetch_optional(pool).await?;
        row.map(|r| Ok((r.try_get("status")?, r.try_get("error")?))).transpose()
    })
}

/// Stores a signed transaction (status `signed`) before it is broadcast. Signing the same
/// transaction again (same hash, so the same bytes: e.g. after the node refused it for lack of
/// funds) brings its row back to `signed`, keeping its last error.
#[allow(clippy::too_many_arguments)]
pub async fn insert_signed(
    db: &Db,
    batch_id: u64,
    chunk: u32,
    nonce: u64,
    raw: &[u8],
    tx_hash: &str,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
    now: i64,
) -> Result<()> {
    let sql = "INSERT INTO chain_txs (batch_id, chunk_index, nonce, raw_tx, tx_hash, max_fee_per_gas, \
               max_priority_fee_per_gas, status, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'signed', $8, $8) \
               ON CONFLICT (tx_hash) DO UPDATE SET status = 'signed', block_number = NULL, block_hash = NULL, \
               updated_at = excluded.updated_at";
    query!(db, sql, pool => |q| {
        q.bind(batch_id as i64)
            .bind(i64::from(chunk))
            .bind(nonce as i64)
            .bind(raw)
            .bind(tx_hash)
            .bind(max_fee_per_gas.to_string())
            .bind(max_priority_fee_per_gas.to_string())
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Updates a stored transaction's status, block and error.
pub async fn set_tx_status(
    db: &Db,
    tx_hash: &str,
    status: TxStatus,
    block: Option<(u64, &str)>,
    error: Option<&str>,
    now: i64,
) -> Result<()> {
    let sql = "UPDATE chain_txs SET status = $1, block_number = $2, block_hash = $3, last_error = $4, \
               attempts = attempts + 1, updated_at = $5 WHERE tx_hash = $6";
    let n = query!(db, sql, pool => |q| {
        q.bind(status.as_str())
            .bind(block.map(|(n, _)| n as i64))
            .bind(block.map(|(_, h)| h))
            .bind(error)
            .bind(now)
            .bind(tx_hash)
            .execute(pool)
            .await?
            .rows_affected()
    });
    if n == 0 {
        return Err(StorageError::NotFound {
            what: "chain transaction",
            key: tx_hash.to_owned(),
        });
    }
    Ok(())
}

/// Every stored transaction of a batch, oldest first.
pub async fn txs_of_batch(db: &Db, batch_id: u64) -> Result<Vec<ChainTx>> {
    let sql = "SELECT id, batch_id, chunk_index, nonce, raw_tx, tx_hash, max_fee_per_gas, max_priority_fee_per_gas, \
               status, block_number, block_hash, last_error FROM chain_txs WHERE batch_id = $1 ORDER BY id";
    query!(db, sql, pool => |q| {
        let rows = q.bind(batch_id as i64).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ChainTx {
                    id: r.try_get("id")?,
                    batch_id: r.try_get::<i64, _>("batch_id")? as u64,
                    chunk: r.try_get::<i64, _>("chunk_index")? as u32,
                    nonce: r.try_get::<i64, _>("nonce")? as u64,
                    raw: r.try_get("raw_tx")?,
                    tx_hash: r.try_get("tx_hash")?,
                    max_fee_per_gas: r.try_get("max_fee_per_gas")?,
                    max_priority_fee_per_gas: r.try_get("max_priority_fee_per_gas")?,
                    status: TxStatus::parse(&r.try_get::<String, _>("status")?)?,
                    block_number: r.try_get::<Option<i64>, _>("block_number")?.map(|n| n as u64),
                    block_hash: r.try_get("block_hash")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

/// The highest nonce of a transaction still in flight (signed, broadcast or mined but not yet
/// confirmed), so a new transaction never reuses the nonce of one that may still be mined.
/// Confirmed, failed (mined and reverted) and replaced transactions are left out: the chain's own
/// nonce already counts the mined ones, and a replaced one gave its nonce to another version.
pub async fn max_pending_nonce(db: &Db) -> Result<Option<u64>> {
    let sql = "SELECT MAX(nonce) AS n FROM chain_txs WHERE status IN ('signed', 'broadcast', 'mined')";
    query!(db, sql, pool => |q| {
        let row = q.fetch_one(pool).await?;
        Ok::<_, StorageError>(row.try_get::<Option<i64>, _>("n")?.map(|n| n as u64))
    })
}

/// Marks every in-flight transaction (signed or broadcast) with a nonce of at least `nonce` as
/// `replaced`, with `reason`: the account's nonce on chain shows they can never be mined (a gap
/// below them). Their batches sign new versions. Returns how many were marked.
pub async fn abandon_from_nonce(db: &Db, nonce: u64, reason: &str, now: i64) -> Result<u64> {
    let sql = "UPDATE chain_txs SET status = 'replaced', last_error = $1, updated_at = $2 \
               WHERE status IN ('signed', 'broadcast') AND nonce >= $3";
    Ok(query!(db, sql, pool => |q| {
        q.bind(reason).bind(now).bind(nonce as i64).execute(pool).await?.rows_affected()
    }))
}

/// A stored batch, as the settlement step needs it to (re)submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    /// Id.
    pub batch_id: u64,
    /// First interval start (ms).
    pub first_interval_start: i64,
    /// Last interval end (ms).
    pub last_interval_end: i64,
    /// Root of its trades.
    pub trades_root: String,
    /// Number of trades.
    pub trade_count: u64,
    /// Status: `built`, `submitting`, `confirmed`, `parked`.
    pub status: String,
    /// Resulting state hash, once confirmed.
    pub state_hash: Option<String>,
    /// Last error.
    pub error: Option<String>,
    /// `(account, delta)`.
    pub deltas: Vec<(String, i64)>,
    /// Last change (ms).
    pub updated_at: i64,
}

async fn deltas_of(db: &Db, batch_id: u64) -> Result<Vec<(String, i64)>> {
    let sql = "SELECT account, delta FROM batch_deltas WHERE batch_id = $1 ORDER BY account";
    query!(db, sql, pool => |q| {
        let rows = q.bind(batch_id as i64).fetch_all(pool).await?;
        rows.iter().map(|r| Ok((r.try_get("account")?, r.try_get("delta")?))).collect::<Result<Vec<_>>>()
    })
}

/// Batches, newest first: at most `limit`, with ids below `before`; `unfinished` keeps only
/// those not yet confirmed or parked.
pub async fn batches(db: &Db, before: Option<u64>, limit: u32, unfinished: bool) -> Result<Vec<StoredBatch>> {
    let sql = "SELECT batch_id, first_interval_start, last_interval_end, trades_root, trade_count, status, state_hash, \
               error, updated_at FROM settlement_batches WHERE batch_id < $1 \
               AND ($2 = 0 OR status IN ('built', 'submitting')) ORDER BY batch_id DESC LIMIT $3";
    let rows = query!(db, sql, pool => |q| {
        let rows = q
            .bind(before.map_or(i64::MAX, |b| b as i64))
            .bind(i64::from(unfinished))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredBatch {
                    batch_id: r.try_get::<i64, _>("batch_id")? as u64,
                    first_interval_start: r.try_get("first_interval_start")?,
                    last_interval_end: r.try_get("last_interval_end")?,
                    trades_root: r.try_get("trades_root")?,
                    trade_count: r.try_get::<i64, _>("trade_count")? as u64,
                    status: r.try_get("status")?,
                    state_hash: r.try_get("state_hash")?,
                    error: r.try_get("error")?,
                    deltas: Vec::new(),
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for mut b in rows {
        b.deltas = deltas_of(db, b.batch_id).await?;
        out.push(b);
    }
    Ok(out)
}

/// The highest batch id stored.
pub async fn max_batch_id(db: &Db) -> Result<Option<u64>> {
    let sql = "SELECT MAX(batch_id) AS n FROM settlement_batches";
    query!(db, sql, pool => |q| {
        let row = q.fetch_one(pool).await?;
        Ok::<_, StorageError>(row.try_get::<Option<i64>, _>("n")?.map(|n| n as u64))
    })
}

/// Records the vault's index of an address (idempotent).
pub async fn save_account(db: &Db, index: u32, address: &str) -> Result<()> {
    let sql = "INSERT INTO settlement_accounts (account_index, address) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    query!(db, sql, pool => |q| {
        q.bind(i64::from(index)).bind(address.to_owned()).execute(pool).await?;
    });
    Ok(())
}

/// An address's settled total: the sum of its deltas in confirmed batches (µ), and how many
/// batches it was in. `(0, 0)` for an address never settled.
pub async fn settled_total(db: &Db, address: &str) -> Result<(i64, i64)> {
    let sql = "SELECT CAST(COALESCE(SUM(d.delta), 0) AS BIGINT) AS total, COUNT(d.delta) AS n FROM settlement_accounts a \
               JOIN batch_deltas d ON d.account = CAST(a.account_index AS TEXT) \
               JOIN settlement_batches b ON b.batch_id = d.batch_id \
               WHERE a.address = $1 AND b.status = 'confirmed'";
    query!(db, sql, pool => |q| {
        let row = q.bind(address.to_owned()).fetch_one(pool).await?;
        Ok::<_, StorageError>((row.try_get("total")?, row.try_get("n")?))
    })
}
