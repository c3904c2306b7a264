//! Evidence of equivocation (issue 22): the envelopes each gateway had accepted within its replay
//! window (so a second, different envelope with one of those sequence numbers is recognised, also
//! after a restart), and the proofs found, with the slashing transaction that takes each one on
//! chain (stored signed before it is broadcast, so a crash re-sends the same bytes).

use gridshare_domain::{GatewayId, ParticipantId, Timestamp};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// How many sequence numbers below the highest accepted are kept (the replay window's width).
pub const KEPT: u64 = gridshare_domain::envelope::ReplayWindow::WIDTH;

/// An accepted envelope, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEnvelope {
    /// Its gateway.
    pub gateway: GatewayId,
    /// Its sequence number.
    pub seq: u64,
    /// The envelope's JSON, exactly as received.
    pub json: String,
}

fn int(v: u64, field: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StorageError::Refused {
        constraint: field.into(),
        message: format!("{v} does not fit a signed 64-bit column"),
    })
}

const PRUNE: &str = "DELETE FROM envelope_log WHERE gateway_id = $1 AND seq <= $2";
const LOG: &str = "INSERT INTO envelope_log (gateway_id, seq, envelope) VALUES ($1, $2, $3) \
                   ON CONFLICT (gateway_id, seq) DO NOTHING";
const LOG_PG: &str = "INSERT INTO envelope_log (gateway_id, seq, envelope) \
                      SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) \
                      ON CONFLICT (gateway_id, seq) DO NOTHING";

/// Within a transaction: forgets what fell out of the windows now saved (`highest` per gateway)
/// and keeps `envelopes`.
pub(crate) async fn log_sqlite(
    tx: &mut sqlx::SqliteConnection,
    highest: &[(GatewayId, u64)],
    envelopes: &[LoggedEnvelope],
) -> Result<()> {
    for e in envelopes {
        sqlx::query(sqlx::AssertSqlSafe(crate::db::sqlite_placeholders(LOG)))
            .bind(e.gateway.0 as i64)
            .bind(int(e.seq, "envelope_log.seq")?)
            .bind(e.json.as_str())
            .execute(&mut *tx)
            .await?;
    }
    for &(g, h) in highest {
        if h > KEPT {
            sqlx::query(sqlx::AssertSqlSafe(crate::db::sqlite_placeholders(PRUNE)))
                .bind(g.0 as i64)
                .bind(int(h - KEPT, "envelope_log.seq")?)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// [`log_sqlite`] on PostgreSQL (one statement for all the envelopes).
pub(crate) async fn log_postgres(
    tx: &mut sqlx::PgConnection,
    highest: &[(GatewayId, u64)],
    envelopes: &[LoggedEnvelope],
) -> Result<()> {
    if !envelopes.is_empty() {
        let mut gw = Vec::with_capacity(envelopes.len());
        let mut seq = Vec::with_capacity(envelopes.len());
        let mut json = Vec::with_capacity(envelopes.len());
        for e in envelopes {
            gw.push(e.gateway.0 as i64);
            seq.push(int(e.seq, "envelope_log.seq")?);
            json.push(e.json.as_str());
        }
        sqlx::query(LOG_PG)
            .bind(gw)
            .bind(seq)
            .bind(json)
            .execute(&mut *tx)
            .await?;
    }
    for &(g, h) in highest {
        if h > KEPT {
            sqlx::query(PRUNE)
                .bind(g.0 as i64)
                .bind(int(h - KEPT, "envelope_log.seq")?)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Every envelope kept, by gateway and sequence number (read at start-up).
pub async fn logged(db: &Db) -> Result<Vec<LoggedEnvelope>> {
    let sql = "SELECT gateway_id, seq, envelope FROM envelope_log ORDER BY gateway_id, seq";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(LoggedEnvelope {
                    gateway: GatewayId(r.try_get::<i64, _>("gateway_id")? as u64),
                    seq: r.try_get::<i64, _>("seq")? as u64,
                    json: r.try_get("envelope")?,
                })
            })
            .collect()
    })
}

/// The envelope kept for `gateway`'s sequence number `seq`, if it is still kept.
pub async fn logged_one(db: &Db, gateway: GatewayId, seq: u64) -> Result<Option<String>> {
    let sql = "SELECT envelope FROM envelope_log WHERE gateway_id = $1 AND seq = $2";
    query!(db, sql, pool => |q| {
        let row = q.bind(gateway.0 as i64).bind(int(seq, "envelope_log.seq")?).fetch_optional(pool).await?;
        row.map(|r| r.try_get("envelope")).transpose().map_err(Into::into)
    })
}

/// A proof of equivocation, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// `0x…`: keccak256 of the two envelopes' digests, lower first (the staking contract's key).
    pub evidence: String,
    /// The gateway.
    pub gateway: GatewayId,
    /// Its owner.
    pub owner: ParticipantId,
    /// The sequence number both envelopes carry.
    pub seq: u64,
    /// The envelope accepted first, as received.
    pub first: String,
    /// The second one, as received.
    pub second: String,
    /// When the second one arrived.
    pub detected_at: Timestamp,
    /// The slashing transaction stored before broadcast: `(nonce, hash, raw hex)`.
    pub signed: Option<(u64, String, String)>,
    /// The transaction that slashed, once on chain.
    pub slashed_tx: Option<String>,
    /// Why the chain refused the proof, if it did.
    pub slash_error: Option<String>,
}

/// Stores a proof and revokes its gateway, in one transaction. False when the same proof was
/// stored before (nothing changes); the gateway is revoked either way.
pub async fn record(
    db: &Db,
    gateway: GatewayId,
    seq: u64,
    evidence: &str,
    first: &str,
    second: &str,
    now: Timestamp,
) -> Result<bool> {
    const INSERT: &str = "INSERT INTO equivocations (evidence, gateway_id, seq, first_envelope, second_envelope, \
                          detected_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (evidence) DO NOTHING";
    const REVOKE: &str = "UPDATE gateways SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    let seq = int(seq, "equivocations.seq")?;
    macro_rules! run {
        ($tx:expr, $insert:expr, $revoke:expr) => {{
            let new = sqlx::query($insert)
                .bind(evidence)
                .bind(gateway.0 as i64)
                .bind(seq)
                .bind(first)
                .bind(second)
                .bind(now.0)
                .execute(&mut *$tx)
                .await?
                .rows_affected()
                == 1;
            sqlx::query($revoke)
                .bind(now.0)
                .bind(gateway.0 as i64)
                .execute(&mut *$tx)
                .await?;
            new
        }};
    }
    match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            let new = run!(
                tx,
                sqlx::AssertSqlSafe(crate::db::sqlite_placeholders(INSERT)),
                sqlx::AssertSqlSafe(crate::db::sqlite_placeholders(REVOKE))
            );
            tx.commit().await?;
            Ok(new)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let new = run!(tx, INSERT, REVOKE);
            tx.commit().await?;
            Ok(new)
        }
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT e.evidence, e.gateway_id, g.owner_id, e.seq, e.first_envelope, e.second_envelope, ",
            "e.detected_at, e.slash_nonce, e.slash_tx_hash, e.slash_raw, e.slashed_tx, e.slash_error ",
            "FROM equivocations e JOIN gateways g ON g.id = e.gateway_id ",
            $rest
        )
    };
}

/// Reads one stored proof from a row of `select!` (both backends' rows).
trait RowLike {
    fn equivocation(&self) -> Result<Equivocation>;
}

macro_rules! impl_row {
    ($t:ty) => {
        impl RowLike for $t {
            fn equivocation(&self) -> Result<Equivocation> {
                let nonce: Option<i64> = self.try_get("slash_nonce")?;
                let hash: Option<String> = self.try_get("slash_tx_hash")?;
                let raw: Option<String> = self.try_get("slash_raw")?;
                Ok(Equivocation {
                    evidence: self.try_get("evidence")?,
                    gateway: GatewayId(self.try_get::<i64, _>("gateway_id")? as u64),
                    owner: ParticipantId(self.try_get::<i64, _>("owner_id")? as u64),
                    seq: self.try_get::<i64, _>("seq")? as u64,
                    first: self.try_get("first_envelope")?,
                    second: self.try_get("second_envelope")?,
                    detected_at: Timestamp(self.try_get("detected_at")?),
                    signed: match (nonce, hash, raw) {
                        (Some(n), Some(h), Some(raw)) => Some((n as u64, h, raw)),
                        _ => None,
                    },
                    slashed_tx: self.try_get("slashed_tx")?,
                    slash_error: self.try_get("slash_error")?,
                })
            }
        }
    };
}
impl_row!(sqlx::sqlite::SqliteRow);
impl_row!(sqlx::postgres::PgRow);

/// Every proof stored, newest first (at most `limit`); only `owner`'s gateways' when given.
pub async fn list(db: &Db, owner: Option<ParticipantId>, limit: u32) -> Result<Vec<Equivocation>> {
    let sql = select!("WHERE ($1 < 0 OR g.owner_id = $1) ORDER BY e.detected_at DESC, e.evidence LIMIT $2");
    let owner = owner.map_or(-1, |p| p.0 as i64);
    query!(db, sql, pool => |q| {
        let rows = q.bind(owner).bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter().map(RowLike::equivocation).collect()
    })
}

/// Proofs not yet on chain and not refused by it, oldest first.
pub async fn unslashed(db: &Db) -> Result<Vec<Equivocation>> {
    let sql = select!("WHERE e.slashed_tx IS NULL AND e.slash_error IS NULL ORDER BY e.detected_at, e.evidence");
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter().map(RowLike::equivocation).collect()
    })
}

/// Stores the signed slashing transaction of a proof (before it is broadcast).
pub async fn save_slash_tx(db: &Db, evidence: &str, nonce: u64, tx_hash: &str, raw_hex: &str) -> Result<()> {
    let sql = "UPDATE equivocations SET slash_nonce = $1, slash_tx_hash = $2, slash_raw = $3 WHERE evidence = $4";
    query!(db, sql, pool => |q| {
        q.bind(int(nonce, "equivocations.slash_nonce")?)
            .bind(tx_hash.to_owned())
            .bind(raw_hex.to_owned())
            .bind(evidence.to_owned())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Marks a proof as taken on chain by `tx_hash`.
pub async fn set_slashed(db: &Db, evidence: &str, tx_hash: &str) -> Result<()> {
    let sql = "UPDATE equivocations SET slashed_tx = $1 WHERE evidence = $2";
    query!(db, sql, pool => |q| {
        q.bind(tx_hash.to_owned()).bind(evidence.to_owned()).execute(pool).await?;
    });
    Ok(())
}

/// Marks a proof as refused by the chain, with the contract's reason.
pub async fn set_refused(db: &Db, evidence: &str, reason: &str) -> Result<()> {
    let sql = "UPDATE equivocations SET slash_error = $1 WHERE evidence = $2";
    query!(db, sql, pool => |q| {
        q.bind(reason.to_owned()).bind(evidence.to_owned()).execute(pool).await?;
    });
    Ok(())
}
