//! Gateways: registration (public key, owner, feeder node), revocation, and
//! the anti-replay window each one's messages are checked against, persisted
//! so a restart of the market service cannot re-open old sequence numbers.

use gridshare_domain::envelope::{GatewayPublicKey, ReplayWindow};
use gridshare_domain::{GatewayId, NodeId, ParticipantId, Timestamp};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// A registered gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// Id.
    pub id: GatewayId,
    /// The home that owns it.
    pub owner: ParticipantId,
    /// Who commissioned it.
    pub installer: Option<ParticipantId>,
    /// Its signing key.
    pub public_key: GatewayPublicKey,
    /// Where the home connects to the feeder.
    pub feeder_node: NodeId,
    /// Persisted replay state.
    pub window: ReplayWindow,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Register a gateway. `Duplicate` if the id or key is already registered.
pub async fn register(db: &Db, g: &Gateway, now: Timestamp) -> Result<()> {
    let sql = "INSERT INTO gateways (id, owner_id, installer_id, public_key, evm_address, feeder_node, commissioned_at, \
               replay_highest, replay_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    let (highest, seen) = window_columns(g.window);
    query!(db, sql, pool => |q| {
        q.bind(g.id.0 as i64)
            .bind(g.owner.0 as i64)
            .bind(g.installer.map(|p| p.0 as i64))
            .bind(g.public_key.to_hex())
            .bind(g.public_key.address_hex())
            .bind(i64::from(g.feeder_node.0))
            .bind(now.0)
            .bind(highest)
            .bind(seen)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Revoke a gateway: its messages are refused from now on.
pub async fn revoke(db: &Db, id: GatewayId, now: Timestamp) -> Result<()> {
    let sql = "UPDATE gateways SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    let n = query!(db, sql, pool => |q| q.bind(now.0).bind(id.0 as i64).execute(pool).await?.rows_affected());
    if n == 0 {
        return Err(StorageError::NotFound {
            what: "active gateway",
            key: id.to_string(),
        });
    }
    Ok(())
}

/// Records that `id`'s key was found in the registry on chain at `now` (the first time counts;
/// later calls change nothing). Returns whether this call recorded it.
pub async fn mark_on_chain(db: &Db, id: GatewayId, now: Timestamp) -> Result<bool> {
    let sql = "UPDATE gateways SET on_chain_at = $1 WHERE id = $2 AND on_chain_at IS NULL";
    let n = query!(db, sql, pool => |q| q.bind(now.0).bind(id.0 as i64).execute(pool).await?.rows_affected());
    Ok(n == 1)
}

/// The gateways whose key has been found in the registry on chain ([`mark_on_chain`]).
pub async fn on_chain(db: &Db) -> Result<std::collections::HashSet<GatewayId>> {
    let sql = "SELECT id FROM gateways WHERE on_chain_at IS NOT NULL";
    query!(db, sql, pool => |q| {
        q.fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok(GatewayId(r.try_get::<i64, _>("id")? as u64)))
            .collect()
    })
}

/// Records the bonds as read from chain: `None` when the minimum bond is zero (every active
/// gateway `not_required`), else the gateways whose bond reaches it (`bonded`; every other active
/// gateway `unbonded`). One transaction, so a page never sees half a reading.
pub async fn record_bonds(db: &Db, bonded: Option<&std::collections::BTreeSet<GatewayId>>) -> Result<()> {
    macro_rules! record {
        ($tx:expr, $ph:literal) => {{
            match bonded {
                None => {
                    sqlx::query("UPDATE gateways SET bond_state = 'not_required' WHERE revoked_at IS NULL")
                        .execute(&mut *$tx)
                        .await?;
                }
                Some(set) => {
                    sqlx::query("UPDATE gateways SET bond_state = 'unbonded' WHERE revoked_at IS NULL")
                        .execute(&mut *$tx)
                        .await?;
                    for id in set {
                        sqlx::query(concat!(
                            "UPDATE gateways SET bond_state = 'bonded' WHERE revoked_at IS NULL AND id = ",
                            $ph
                        ))
                        .bind(id.0 as i64)
                        .execute(&mut *$tx)
                        .await?;
                    }
                }
            }
        }};
    }
    match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            record!(tx, "?1");
            tx.commit().await?;
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            record!(tx, "$1");
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Each gateway's bond state as last recorded ([`record_bonds`]); gateways never read are absent.
pub async fn bond_states(db: &Db) -> Result<std::collections::HashMap<GatewayId, String>> {
    let sql = "SELECT id, bond_state FROM gateways WHERE bond_state IS NOT NULL";
    query!(db, sql, pool => |q| {
        q.fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((GatewayId(r.try_get::<i64, _>("id")? as u64), r.try_get::<String, _>("bond_state")?)))
            .collect()
    })
}

// The bitmap is a u64; the column is a signed BIGINT holding the same 64 bits.
pub(crate) fn window_columns(w: ReplayWindow) -> (i64, i64) {
    (w.highest as i64, w.seen as i64)
}

/// Save a gateway's replay window.
pub async fn save_window(db: &Db, id: GatewayId, w: ReplayWindow) -> Result<()> {
    let (highest, seen) = window_columns(w);
    let sql = "UPDATE gateways SET replay_highest = $1, replay_seen = $2 WHERE id = $3";
    let n =
        query!(db, sql, pool => |q| q.bind(highest).bind(seen).bind(id.0 as i64).execute(pool).await?.rows_affected());
    if n == 0 {
        return Err(StorageError::NotFound {
            what: "gateway",
            key: id.to_string(),
        });
    }
    Ok(())
}

/// Every gateway not revoked, with keys and replay windows, by id.
pub async fn active(db: &Db) -> Result<Vec<Gateway>> {
    Ok(all(db).await?.into_iter().filter(|g| g.revoked_at.is_none()).collect())
}

/// Every gateway ever registered, revoked ones included, by id.
pub async fn all(db: &Db) -> Result<Vec<Gateway>> {
    let sql = "SELECT id, owner_id, installer_id, public_key, feeder_node, replay_highest, replay_seen, revoked_at \
               FROM gateways ORDER BY id";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get("public_key")?;
                let node: i64 = r.try_get("feeder_node")?;
                Ok(Gateway {
                    id: GatewayId(r.try_get::<i64, _>("id")? as u64),
                    owner: ParticipantId(r.try_get::<i64, _>("owner_id")? as u64),
                    installer: r.try_get::<Option<i64>, _>("installer_id")?.map(|p| ParticipantId(p as u64)),
                    public_key: GatewayPublicKey::from_hex(&key)
                        .map_err(|e| StorageError::Corrupt { field: "gateways.public_key", reason: e.to_string() })?,
                    feeder_node: NodeId(u32::try_from(node).map_err(|e| StorageError::Corrupt {
                        field: "gateways.feeder_node",
                        reason: e.to_string(),
                    })?),
                    window: ReplayWindow {
                        highest: r.try_get::<i64, _>("replay_highest")? as u64,
                        seen: r.try_get::<i64, _>("replay_seen")? as u64,
                    },
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
                })
            })
            .collect()
    })
}
