//! The governed parameters as the service has seen them on chain, one row per version (issue 22):
//! the history the dashboard and `GET /api/v1/governance/parameters` show.

use gridshare_domain::Timestamp;
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// One version of the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterVersion {
    /// How many changes were executed on chain up to it (0: the deployment's values).
    pub version: u64,
    /// When the service saw it (market time).
    pub observed_at: Timestamp,
    /// The parameters, JSON (an object of decimal strings, keyed as in the contract).
    pub params: String,
}

fn int(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StorageError::Refused {
        constraint: "parameter_versions.version".into(),
        message: format!("{v} does not fit a signed 64-bit column"),
    })
}

/// Stores a version seen for the first time; false when it was stored before (nothing changes).
pub async fn record(db: &Db, version: u64, observed_at: Timestamp, params: &str) -> Result<bool> {
    let sql = "INSERT INTO parameter_versions (version, observed_at, params) VALUES ($1, $2, $3) \
               ON CONFLICT (version) DO NOTHING";
    let n = query!(db, sql, pool => |q| {
        q.bind(int(version)?).bind(observed_at.0).bind(params.to_owned()).execute(pool).await?.rows_affected()
    });
    Ok(n == 1)
}

/// Every version stored, newest first (at most `limit`).
pub async fn history(db: &Db, limit: u32) -> Result<Vec<ParameterVersion>> {
    let sql = "SELECT version, observed_at, params FROM parameter_versions ORDER BY version DESC LIMIT $1";
    query!(db, sql, pool => |q| {
        let rows = q.bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ParameterVersion {
                    version: r.try_get::<i64, _>("version")? as u64,
                    observed_at: Timestamp(r.try_get("observed_at")?),
                    params: r.try_get("params")?,
                })
            })
            .collect()
    })
}

/// The newest version stored.
pub async fn latest(db: &Db) -> Result<Option<ParameterVersion>> {
    Ok(history(db, 1).await?.into_iter().next())
}
