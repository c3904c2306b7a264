//! Participants (homes, traders, the utility, the grid operator) and the
//! dashboard users that act for them.

use gridshare_domain::{ParticipantId, Timestamp};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// A market participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Id.
    pub id: ParticipantId,
    /// Display name.
    pub name: String,
    /// Role: homeowner, installer, operator, trader, admin, utility, grid_operator, community.
    pub role: String,
    /// EVM account for settlement, `0x…`.
    pub evm_address: Option<String>,
    /// Connection point in the feeder tree, for homes.
    pub feeder_node: Option<u32>,
}

/// Insert a participant, or update name, role, address and node if the id exists.
pub async fn upsert(db: &Db, p: &Participant, now: Timestamp) -> Result<()> {
    let sql = "INSERT INTO participants (id, name, role, evm_address, feeder_node, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
               ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, \
               evm_address = excluded.evm_address, feeder_node = excluded.feeder_node";
    query!(db, sql, pool => |q| {
        q.bind(p.id.0 as i64)
            .bind(p.name.clone())
            .bind(p.role.clone())
            .bind(p.evm_address.clone())
            .bind(p.feeder_node.map(i64::from))
            .bind(now.0)
            .execute(pool)
            .await?;
    });
    Ok(())
}

macro_rules! participant_from_row {
    ($r:expr) => {{
        let r = $r;
        let node: Option<i64> = r.try_get("feeder_node")?;
        Ok::<Participant, StorageError>(Participant {
            id: ParticipantId(r.try_get::<i64, _>("id")? as u64),
            name: r.try_get("name")?,
            role: r.try_get("role")?,
            evm_address: r.try_get("evm_address")?,
            feeder_node: node.map(u32::try_from).transpose().map_err(|e| StorageError::Corrupt {
                field: "participants.feeder_node",
                reason: e.to_string(),
            })?,
        })
    }};
}

/// One participant.
pub async fn get(db: &Db, id: ParticipantId) -> Result<Participant> {
    let sql = "SELECT id, name, role, evm_address, feeder_node FROM participants WHERE id = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(id.0 as i64).fetch_optional(pool).await?;
        match row {
            Some(r) => participant_from_row!(&r),
            None => Err(StorageError::NotFound { what: "participant", key: id.to_string() }),
        }
    })
}

/// Every participant, by id.
pub async fn list(db: &Db) -> Result<Vec<Participant>> {
    let sql = "SELECT id, name, role, evm_address, feeder_node FROM participants ORDER BY id";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter().map(|r| participant_from_row!(r)).collect()
    })
}

/// A dashboard login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The participant the user acts for.
    pub participant: ParticipantId,
}

/// Create a user; `Duplicate` if the username is taken.
pub async fn create_user(
    db: &Db,
    username: &str,
    password_hash: &str,
    participant: ParticipantId,
    now: Timestamp,
) -> Result<i64> {
    let sql =
        "INSERT INTO users (username, password_hash, participant_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id";
    query!(db, sql, pool => |q| {
        let row = q
            .bind(username.to_owned())
            .bind(password_hash.to_owned())
            .bind(participant.0 as i64)
            .bind(now.0)
            .fetch_one(pool)
            .await?;
        Ok(row.try_get::<i64, _>("id")?)
    })
}

/// A user by login name.
pub async fn find_user(db: &Db, username: &str) -> Result<Option<User>> {
    let sql = "SELECT id, username, password_hash, participant_id FROM users WHERE username = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(username.to_owned()).fetch_optional(pool).await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(User {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
                password_hash: r.try_get("password_hash")?,
                participant: ParticipantId(r.try_get::<i64, _>("participant_id")? as u64),
            })),
        }
    })
}
