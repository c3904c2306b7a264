//! Reward epochs: what an epoch is computed from (energy sold per interval, grid-meter export per
//! interval, telemetry periods per gateway, demand-response reductions credited) and what it
//! produced (the report, its hash and root, and each participant's reward).
//!
//! Trades are summed in SQL; meter export and uptime are read from the readings' five-minute
//! blocks ([`crate::blocks`], kept as readings are stored) and their rules applied here, in
//! integers, so both backends hand the market crate identical figures.

use gridshare_domain::{GatewayId, ParticipantId};
use sqlx::Row;

use crate::blocks::{self, BLOCK_MS, SLICE_MS};
use crate::db::{Db, query, with_pool};
use crate::error::{Result, StorageError};

/// Energy each seller sold in each interval starting in `[from, to)`: `(seller, interval start, Wh)`,
/// by seller and interval.
pub async fn sold_per_interval(db: &Db, from: i64, to: i64) -> Result<Vec<(ParticipantId, i64, i64)>> {
    // sorted here, not in SQL: an ORDER BY made PostgreSQL walk the seller index and fetch every
    // trade from the heap in its order
    let sql = "SELECT seller_id, interval_start, CAST(sum(quantity_wh) AS BIGINT) AS wh FROM trades \
               WHERE interval_start >= $1 AND interval_start < $2 GROUP BY seller_id, interval_start";
    let mut out: Vec<(ParticipantId, i64, i64)> = query!(db, sql, pool => |q| {
        let rows = q.bind(from).bind(to).fetch_all(pool).await?;
        rows.iter()
            .map(|r| Ok((ParticipantId(r.try_get::<i64, _>(0)? as u64), r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<_>>>()
    })?;
    out.sort_unstable();
    Ok(out)
}

/// What an epoch reads from the readings, through their five-minute blocks ([`crate::blocks`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FromReadings {
    /// Each gateway's grid-meter export in each interval: `(gateway, interval start, Wh)`, by
    /// gateway and interval.
    ///
    /// Rule: the export counter's last reading in an interval minus its last reading in the
    /// interval before, per meter (readings marked suspect or without the counter do not count),
    /// summed over a gateway's meters. An interval whose previous interval has no reading gets
    /// nothing (the energy cannot be placed in one interval), and a counter that went backwards
    /// (a meter swap) gives nothing rather than a negative figure.
    pub exported: Vec<(GatewayId, i64, i64)>,
    /// Per gateway, the uptime periods lying wholly in the range ([`blocks::periods_in`]) with a
    /// reading of every device the gateway reported in them: `(gateway, periods)`, by gateway. A
    /// gateway with no reading in the range is left out.
    pub complete: Vec<(GatewayId, u64)>,
}

/// The export per interval of `interval_ms` starting in `[from, to)` and the complete uptime
/// periods of `period_ms` in it ([`FromReadings`]), in one read of the blocks. `from`, `to` and
/// `interval_ms` are whole five-minute blocks, `period_ms` a whole number of five-second slices.
pub async fn from_readings(db: &Db, from: i64, to: i64, interval_ms: i64, period_ms: i64) -> Result<FromReadings> {
    blocks::whole("interval_ms", interval_ms, BLOCK_MS)?;
    blocks::whole("period_ms", period_ms, SLICE_MS)?;
    if from.rem_euclid(BLOCK_MS) != 0 || to.rem_euclid(BLOCK_MS) != 0 {
        return Err(StorageError::Refused {
            constraint: "epoch bounds".into(),
            message: format!("[{from}, {to}) ms does not begin and end on five-minute boundaries"),
        });
    }
    // from the interval before the first (its counters are where the first one's export starts)
    let sql =
        "SELECT gateway_id, device, block, periods, export_max FROM reading_blocks WHERE block >= $1 AND block < $2";
    // devices by number (in order of appearance): no string per row to keep or compare
    let mut devices: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut rows: Vec<(i64, u32, i64, i64, Option<i64>)> = query!(db, sql, pool => |q| {
        let rows = q.bind((from - interval_ms).div_euclid(BLOCK_MS)).bind(to / BLOCK_MS).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let name: &str = r.try_get(1)?;
                let next = devices.len() as u32;
                let device = match devices.get(name) {
                    Some(&d) => d,
                    None => *devices.entry(name.to_owned()).or_insert(next),
                };
                Ok((r.try_get(0)?, device, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    rows.sort_unstable();

    // export: per meter, its highest counter per interval, then the differences
    let mut exported: Vec<(GatewayId, i64, i64)> = Vec::new();
    for meter in rows.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
        let mut last: Option<(i64, i64)> = None; // (interval, highest counter)
        let mut highest: Vec<(i64, i64)> = Vec::new();
        for &(_, _, block, _, out) in meter {
            let Some(out) = out else { continue };
            let interval = block * BLOCK_MS / interval_ms;
            match last {
                Some((i, c)) if i == interval => last = Some((i, c.max(out))),
                _ => {
                    highest.extend(last);
                    last = Some((interval, out));
                }
            }
        }
        highest.extend(last);
        for w in highest.windows(2) {
            let ((b0, c0), (b1, c1)) = (w[0], w[1]);
            let start = b1 * interval_ms;
            if b1 == b0 + 1 && start >= from && c1 >= c0 {
                exported.push((GatewayId(meter[0].0 as u64), start, c1 - c0));
            }
        }
    }
    exported.sort_unstable();
    // two meters of one gateway: one figure per interval
    exported.dedup_by(|b, a| {
        if a.0 == b.0 && a.1 == b.1 {
            a.2 += b.2;
            true
        } else {
            false
        }
    });

    let (first, end) = blocks::periods_in(from, to, period_ms);
    let complete = blocks::complete(&rows, first, end, period_ms / SLICE_MS)
        .into_iter()
        .map(|(g, good)| (GatewayId(g as u64), good))
        .collect();
    Ok(FromReadings { exported, complete })
}

/// [`FromReadings::exported`] alone.
pub async fn exported_per_interval(
    db: &Db,
    from: i64,
    to: i64,
    interval_ms: i64,
) -> Result<Vec<(GatewayId, i64, i64)>> {
    Ok(from_readings(db, from, to, interval_ms, SLICE_MS).await?.exported)
}

/// [`FromReadings::complete`] alone (`from` and `to` on five-minute boundaries).
pub async fn complete_periods(db: &Db, from: i64, to: i64, period_ms: i64) -> Result<Vec<(GatewayId, u64)>> {
    Ok(from_readings(db, from, to, BLOCK_MS, period_ms).await?.complete)
}

/// A demand-response reward credited in a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrCredit {
    /// Who.
    pub participant: ParticipantId,
    /// The event.
    pub event: u64,
    /// The reference, `dr:{event}:{gateway}:{interval}`.
    pub reference: String,
    /// The event interval's start, ms.
    pub interval_start: i64,
    /// The amount credited, µ-token.
    pub amount: i64,
}

/// Demand-response rewards credited in `[from, to)` (market time), oldest first.
pub async fn dr_credits(db: &Db, from: i64, to: i64) -> Result<Vec<DrCredit>> {
    let sql = "SELECT participant_id, event_id, reference, interval_start, amount FROM rewards \
               WHERE kind = 'demand_response' AND created_at >= $1 AND created_at < $2 ORDER BY created_at, id";
    query!(db, sql, pool => |q| {
        let rows = q.bind(from).bind(to).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(DrCredit {
                    participant: ParticipantId(r.try_get::<i64, _>("participant_id")? as u64),
                    event: r.try_get::<Option<i64>, _>("event_id")?.unwrap_or(0) as u64,
                    reference: r.try_get("reference")?,
                    interval_start: r.try_get::<Option<i64>, _>("interval_start")?.unwrap_or(0),
                    amount: r.try_get("amount")?,
                })
            })
            .collect()
    })
}

/// A computed epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    /// Number, from 1.
    pub epoch: u64,
    /// Start, ms.
    pub start_ms: i64,
    /// End (exclusive), ms.
    pub end_ms: i64,
    /// Budget, µ-token.
    pub budget: i64,
    /// Paid, µ-token.
    pub paid: i64,
    /// Every account's cumulative total after it, summed.
    pub cumulative_total: i64,
    /// Participants rewarded.
    pub participants: i64,
    /// Cumulative Merkle root, `0x…`.
    pub root: String,
    /// keccak of the canonical report, `0x…`.
    pub report_hash: String,
    /// When it was computed (market time, ms).
    pub computed_at: i64,
    /// The transaction that posted it on chain.
    pub posted_tx: Option<String>,
}

/// One participant's reward in an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochReward {
    /// Epoch.
    pub epoch: u64,
    /// Participant.
    pub participant: ParticipantId,
    /// Its account.
    pub account: String,
    /// Raw local-renewable reward, µ-token.
    pub local_renewable: i64,
    /// Raw demand-response reward.
    pub demand_response: i64,
    /// Raw uptime reward.
    pub uptime: i64,
    /// Sum of the three.
    pub raw: i64,
    /// Paid after scaling to the budget.
    pub reward: i64,
    /// The account's cumulative total after the epoch.
    pub cumulative: i64,
}

fn int(v: u64, field: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StorageError::Refused {
        constraint: field.into(),
        message: format!("{v} does not fit a signed 64-bit column"),
    })
}

/// Stores an epoch with its report and rewards in one transaction; `Duplicate` when the epoch is
/// already stored (an epoch is computed once).
pub async fn insert(db: &Db, e: &Epoch, report: &str, rewards: &[EpochReward]) -> Result<()> {
    let epoch = int(e.epoch, "epochs.epoch")?;
    let sql = "INSERT INTO epochs (epoch, start_ms, end_ms, budget, paid, cumulative_total, participants, root, \
               report_hash, report, computed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    let rsql = "INSERT INTO epoch_rewards (epoch, participant_id, account, local_renewable, demand_response, uptime, \
                raw, reward, cumulative) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    let (sqlite_sql, sqlite_rsql) = (
        crate::db::sqlite_placeholders(sql),
        crate::db::sqlite_placeholders(rsql),
    );
    let sqlite = matches!(db, Db::Sqlite(_));
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let q = if sqlite { sqlx::query(sqlx::AssertSqlSafe(sqlite_sql.clone())) } else { sqlx::query(sql) };
        q.bind(epoch)
            .bind(e.start_ms)
            .bind(e.end_ms)
            .bind(e.budget)
            .bind(e.paid)
            .bind(e.cumulative_total)
            .bind(e.participants)
            .bind(e.root.clone())
            .bind(e.report_hash.clone())
            .bind(report.to_owned())
            .bind(e.computed_at)
            .execute(&mut *tx)
            .await?;
        for r in rewards {
            let q = if sqlite { sqlx::query(sqlx::AssertSqlSafe(sqlite_rsql.clone())) } else { sqlx::query(rsql) };
            q.bind(epoch)
                .bind(r.participant.0 as i64)
                .bind(r.account.clone())
                .bind(r.local_renewable)
                .bind(r.demand_response)
                .bind(r.uptime)
                .bind(r.raw)
                .bind(r.reward)
                .bind(r.cumulative)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

macro_rules! epoch_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<Epoch, StorageError>(Epoch {
            epoch: r.try_get::<i64, _>("epoch")? as u64,
            start_ms: r.try_get("start_ms")?,
            end_ms: r.try_get("end_ms")?,
            budget: r.try_get("budget")?,
            paid: r.try_get("paid")?,
            cumulative_total: r.try_get("cumulative_total")?,
            participants: r.try_get("participants")?,
            root: r.try_get("root")?,
            report_hash: r.try_get("report_hash")?,
            computed_at: r.try_get("computed_at")?,
            posted_tx: r.try_get("posted_tx")?,
        })
    }};
}

/// The newest epochs first, at most `limit`.
pub async fn list(db: &Db, limit: u32) -> Result<Vec<Epoch>> {
    let sql = "SELECT epoch, start_ms, end_ms, budget, paid, cumulative_total, participants, root, report_hash, \
               computed_at, posted_tx FROM epochs ORDER BY epoch DESC LIMIT $1";
    query!(db, sql, pool => |q| {
        let rows = q.bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter().map(|r| epoch_from_row!(r)).collect()
    })
}

/// The last computed epoch, if any.
pub async fn last(db: &Db) -> Result<Option<Epoch>> {
    Ok(list(db, 1).await?.into_iter().next())
}

/// An epoch's report (canonical JSON), if it was computed (an epoch number past what a column
/// holds never was).
pub async fn report(db: &Db, epoch: u64) -> Result<Option<String>> {
    let Ok(epoch) = i64::try_from(epoch) else {
        return Ok(None);
    };
    let sql = "SELECT report FROM epochs WHERE epoch = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(epoch).fetch_optional(pool).await?;
        row.map(|r| r.try_get::<String, _>("report")).transpose().map_err(StorageError::from)
    })
}

/// Records the transaction that posted an epoch's root.
pub async fn set_posted(db: &Db, epoch: u64, tx_hash: &str) -> Result<()> {
    let sql = "UPDATE epochs SET posted_tx = $1 WHERE epoch = $2";
    query!(db, sql, pool => |q| {
        q.bind(tx_hash.to_owned()).bind(int(epoch, "epochs.epoch")?).execute(pool).await?;
    });
    Ok(())
}

/// An epoch whose root is not known to be on chain yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unposted {
    /// Epoch.
    pub epoch: u64,
    /// Root, `0x…`.
    pub root: String,
    /// Report hash, `0x…`.
    pub report_hash: String,
    /// Every account's cumulative total, summed.
    pub cumulative_total: i64,
    /// The transaction stored to post it, if one was signed: `(nonce, hash, raw hex)`.
    pub signed: Option<(u64, String, String)>,
}

/// Epochs not known to be posted, oldest first.
pub async fn unposted(db: &Db) -> Result<Vec<Unposted>> {
    let sql = "SELECT epoch, root, report_hash, cumulative_total, post_nonce, post_tx_hash, post_raw FROM epochs \
               WHERE posted_tx IS NULL ORDER BY epoch";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let nonce: Option<i64> = r.try_get("post_nonce")?;
                let hash: Option<String> = r.try_get("post_tx_hash")?;
                let raw: Option<String> = r.try_get("post_raw")?;
                Ok(Unposted {
                    epoch: r.try_get::<i64, _>("epoch")? as u64,
                    root: r.try_get("root")?,
                    report_hash: r.try_get("report_hash")?,
                    cumulative_total: r.try_get("cumulative_total")?,
                    signed: match (nonce, hash, raw) {
                        (Some(n), Some(h), Some(raw)) => Some((n as u64, h, raw)),
                        _ => None,
                    },
                })
            })
            .collect()
    })
}

/// Stores the signed transaction that will post an epoch (before it is broadcast).
pub async fn save_post_tx(db: &Db, epoch: u64, nonce: u64, tx_hash: &str, raw_hex: &str) -> Result<()> {
    let sql = "UPDATE epochs SET post_nonce = $1, post_tx_hash = $2, post_raw = $3 WHERE epoch = $4";
    query!(db, sql, pool => |q| {
        q.bind(int(nonce, "epochs.post_nonce")?)
            .bind(tx_hash.to_owned())
            .bind(raw_hex.to_owned())
            .bind(int(epoch, "epochs.epoch")?)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// A participant's rewards per epoch, newest first (at most `limit`).
pub async fn rewards_of(db: &Db, p: ParticipantId, limit: u32) -> Result<Vec<EpochReward>> {
    let sql = "SELECT epoch, participant_id, account, local_renewable, demand_response, uptime, raw, reward, cumulative \
               FROM epoch_rewards WHERE participant_id = $1 ORDER BY epoch DESC LIMIT $2";
    query!(db, sql, pool => |q| {
        let rows = q.bind(p.0 as i64).bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(EpochReward {
                    epoch: r.try_get::<i64, _>("epoch")? as u64,
                    participant: ParticipantId(r.try_get::<i64, _>("participant_id")? as u64),
                    account: r.try_get("account")?,
                    local_renewable: r.try_get("local_renewable")?,
                    demand_response: r.try_get("demand_response")?,
                    uptime: r.try_get("uptime")?,
                    raw: r.try_get("raw")?,
                    reward: r.try_get("reward")?,
                    cumulative: r.try_get("cumulative")?,
                })
            })
            .collect()
    })
}
