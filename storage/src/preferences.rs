//! A home's trading preferences (set on the dashboard, sent to its gateways) and what each
//! gateway answered.

use gridshare_domain::wire::{PreferencesApplied, TradingPreferences};
use gridshare_domain::{GatewayId, MicroPerKwh, ParticipantId, Timestamp};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::Result;

/// Saves a home's preferences as the next version (1 for the first) and returns them with it.
/// `p.version` is ignored. The database checks the ranges again.
pub async fn save(db: &Db, home: ParticipantId, p: &TradingPreferences, now: Timestamp) -> Result<TradingPreferences> {
    let sql = "INSERT INTO home_preferences (participant_id, version, min_sell_price, max_buy_price, \
               battery_reserve_percent, updated_at) VALUES ($1, 1, $2, $3, $4, $5) \
               ON CONFLICT (participant_id) DO UPDATE SET version = home_preferences.version + 1, \
               min_sell_price = excluded.min_sell_price, max_buy_price = excluded.max_buy_price, \
               battery_reserve_percent = excluded.battery_reserve_percent, updated_at = excluded.updated_at \
               RETURNING version";
    let version = query!(db, sql, pool => |q| {
        let row = q
            .bind(home.0 as i64)
            .bind(p.min_sell_price.0)
            .bind(p.max_buy_price.0)
            .bind(i64::from(p.battery_reserve_percent))
            .bind(now.0)
            .fetch_one(pool)
            .await?;
        row.try_get::<i64, _>("version")?
    });
    Ok(TradingPreferences {
        version: version as u64,
        ..p.clone()
    })
}

/// A home's preferences with when they were last changed, if it ever set any.
pub async fn get(db: &Db, home: ParticipantId) -> Result<Option<(TradingPreferences, Timestamp)>> {
    let sql = "SELECT version, min_sell_price, max_buy_price, battery_reserve_percent, updated_at \
               FROM home_preferences WHERE participant_id = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(home.0 as i64).fetch_optional(pool).await?;
        row.map(|r| {
            Ok((preferences_from_row(&r)?, Timestamp(r.try_get("updated_at")?)))
        })
        .transpose()
    })
}

/// The preferences in a `home_preferences` row (a reserve out of range reads as 100 %).
fn preferences_from_row<R: Row>(r: &R) -> Result<TradingPreferences>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TradingPreferences {
        version: r.try_get::<i64, _>("version")? as u64,
        min_sell_price: MicroPerKwh(r.try_get("min_sell_price")?),
        max_buy_price: MicroPerKwh(r.try_get("max_buy_price")?),
        battery_reserve_percent: u8::try_from(r.try_get::<i64, _>("battery_reserve_percent")?).unwrap_or(100),
    })
}

/// Every home's preferences (the market service sends them to the gateways when it starts).
pub async fn all(db: &Db) -> Result<Vec<(ParticipantId, TradingPreferences)>> {
    let sql = "SELECT participant_id, version, min_sell_price, max_buy_price, battery_reserve_percent \
               FROM home_preferences ORDER BY participant_id";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok((ParticipantId(r.try_get::<i64, _>("participant_id")? as u64), preferences_from_row(r)?))
            })
            .collect()
    })
}

/// Records a gateway's answer; an answer to an older version than the one stored is ignored.
pub async fn record_answer(db: &Db, gateway: GatewayId, a: &PreferencesApplied, at: Timestamp) -> Result<()> {
    let sql = "INSERT INTO gateway_preferences (gateway_id, version, applied, reason, at) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (gateway_id) DO UPDATE SET version = excluded.version, applied = excluded.applied, \
               reason = excluded.reason, at = excluded.at WHERE gateway_preferences.version <= excluded.version";
    query!(db, sql, pool => |q| {
        q.bind(gateway.0 as i64)
            .bind(a.version as i64)
            .bind(a.applied)
            .bind(a.reason.clone())
            .bind(at.0)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// The last answer of each of `gateways` that has answered, with when.
pub async fn answers(db: &Db, gateways: &[GatewayId]) -> Result<Vec<(GatewayId, PreferencesApplied, Timestamp)>> {
    let sql = "SELECT gateway_id, version, applied, reason, at FROM gateway_preferences WHERE gateway_id = $1";
    let mut out = Vec::new();
    for &g in gateways {
        let row = query!(db, sql, pool => |q| {
            let row = q.bind(g.0 as i64).fetch_optional(pool).await?;
            row.map(|r| {
                Ok::<_, crate::StorageError>((
                    PreferencesApplied {
                        version: r.try_get::<i64, _>("version")? as u64,
                        applied: r.try_get("applied")?,
                        reason: r.try_get("reason")?,
                    },
                    Timestamp(r.try_get("at")?),
                ))
            })
            .transpose()?
        });
        if let Some((a, at)) = row {
            out.push((g, a, at));
        }
    }
    Ok(out)
}
