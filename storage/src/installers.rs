//! Which installer may serve which home: an installer commissions gateways only for the homes
//! assigned to them, by an administrator or by the homeowner.

use gridshare_domain::{ParticipantId, Timestamp};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// Lets `installer` serve `home` (again: assigning twice is fine), as `by` decided at `now`.
pub async fn assign(
    db: &Db,
    installer: ParticipantId,
    home: ParticipantId,
    by: ParticipantId,
    now: Timestamp,
) -> Result<()> {
    let sql = "INSERT INTO installer_homes (installer_id, home_id, assigned_by, assigned_at) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (installer_id, home_id) DO NOTHING";
    query!(db, sql, pool => |q| {
        q.bind(installer.0 as i64)
            .bind(home.0 as i64)
            .bind(by.0 as i64)
            .bind(now.0)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Ends `installer`'s assignment to `home`; `NotFound` if there was none. Gateways they
/// commissioned stay (the homeowner or an administrator revokes those).
pub async fn unassign(db: &Db, installer: ParticipantId, home: ParticipantId) -> Result<()> {
    let sql = "DELETE FROM installer_homes WHERE installer_id = $1 AND home_id = $2";
    let n = query!(db, sql, pool => |q| {
        q.bind(installer.0 as i64).bind(home.0 as i64).execute(pool).await?.rows_affected()
    });
    if n == 0 {
        return Err(StorageError::NotFound {
            what: "installer assignment",
            key: format!("installer {} for home {}", installer.0, home.0),
        });
    }
    Ok(())
}

/// Whether `installer` may serve `home`.
pub async fn may_serve(db: &Db, installer: ParticipantId, home: ParticipantId) -> Result<bool> {
    let sql = "SELECT 1 AS one FROM installer_homes WHERE installer_id = $1 AND home_id = $2";
    query!(db, sql, pool => |q| {
        let row = q.bind(installer.0 as i64).bind(home.0 as i64).fetch_optional(pool).await?;
        Ok::<bool, StorageError>(row.is_some())
    })
}

/// The homes `installer` may serve, in id order.
pub async fn homes_of(db: &Db, installer: ParticipantId) -> Result<Vec<ParticipantId>> {
    let sql = "SELECT home_id FROM installer_homes WHERE installer_id = $1 ORDER BY home_id";
    query!(db, sql, pool => |q| {
        let rows = q.bind(installer.0 as i64).fetch_all(pool).await?;
        rows.iter()
            .map(|r| Ok(ParticipantId(r.try_get::<i64, _>("home_id")? as u64)))
            .collect::<Result<Vec<_>>>()
    })
}
