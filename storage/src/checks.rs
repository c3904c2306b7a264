//! Installers' remote checks of gateways: asked for, then answered with what the gateway read.

use gridshare_domain::wire::CheckResult;
use gridshare_domain::{GatewayId, ParticipantId, Timestamp};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// A check, answered or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Its number.
    pub id: u64,
    /// The gateway checked.
    pub gateway: GatewayId,
    /// Who asked.
    pub requested_by: ParticipantId,
    /// When.
    pub requested_at: Timestamp,
    /// When the answer came, if it did.
    pub answered_at: Option<Timestamp>,
    /// The answer.
    pub result: Option<CheckResult>,
}

/// Records that `by` asked `gateway` for a check; returns its number.
pub async fn request(db: &Db, gateway: GatewayId, by: ParticipantId, now: Timestamp) -> Result<u64> {
    let sql = "INSERT INTO gateway_checks (gateway_id, requested_by, requested_at) VALUES ($1, $2, $3) RETURNING id";
    query!(db, sql, pool => |q| {
        let row = q.bind(gateway.0 as i64).bind(by.0 as i64).bind(now.0).fetch_one(pool).await?;
        Ok(row.try_get::<i64, _>("id")? as u64)
    })
}

/// Stores a gateway's answer. `NotFound` when the check is unknown or was asked of another
/// gateway; a second answer replaces the first.
pub async fn answer(db: &Db, gateway: GatewayId, result: &CheckResult, now: Timestamp) -> Result<()> {
    let json = serde_json::to_string(result).map_err(|e| StorageError::Corrupt {
        field: "result",
        reason: e.to_string(),
    })?;
    let sql = "UPDATE gateway_checks SET answered_at = $1, result = $2 WHERE id = $3 AND gateway_id = $4";
    let n = query!(db, sql, pool => |q| {
        q.bind(now.0)
            .bind(json)
            .bind(result.check_id as i64)
            .bind(gateway.0 as i64)
            .execute(pool)
            .await?
            .rows_affected()
    });
    if n == 0 {
        return Err(StorageError::NotFound {
            what: "check of this gateway",
            key: result.check_id.to_string(),
        });
    }
    Ok(())
}

macro_rules! check_from_row {
    ($r:expr) => {{
        let r = $r;
        let result: Option<String> = r.try_get("result")?;
        Ok::<Check, StorageError>(Check {
            id: r.try_get::<i64, _>("id")? as u64,
            gateway: GatewayId(r.try_get::<i64, _>("gateway_id")? as u64),
            requested_by: ParticipantId(r.try_get::<i64, _>("requested_by")? as u64),
            requested_at: Timestamp(r.try_get("requested_at")?),
            answered_at: r.try_get::<Option<i64>, _>("answered_at")?.map(Timestamp),
            result: result
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|e| StorageError::Corrupt {
                    field: "result",
                    reason: e.to_string(),
                })?,
        })
    }};
}

/// One check.
pub async fn get(db: &Db, id: u64) -> Result<Option<Check>> {
    let sql =
        "SELECT id, gateway_id, requested_by, requested_at, answered_at, result FROM gateway_checks WHERE id = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(id as i64).fetch_optional(pool).await?;
        row.map(|r| check_from_row!(r)).transpose()
    })
}

/// The newest check of a gateway, if it ever had one.
pub async fn latest(db: &Db, gateway: GatewayId) -> Result<Option<Check>> {
    let sql = "SELECT id, gateway_id, requested_by, requested_at, answered_at, result FROM gateway_checks \
               WHERE gateway_id = $1 ORDER BY id DESC LIMIT 1";
    query!(db, sql, pool => |q| {
        let row = q.bind(gateway.0 as i64).fetch_optional(pool).await?;
        row.map(|r| check_from_row!(r)).transpose()
    })
}
