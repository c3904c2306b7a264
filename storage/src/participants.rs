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
    /// The participant's own EVM account, `0x…`: they act for themselves.
    pub evm_address: Option<String>,
    /// Connection point in the feeder tree, for homes.
    pub feeder_node: Option<u32>,
    /// The custodial account the service holds for them (`gridshare_domain::accounts::Custody`),
    /// `0x…` lower case: assigned once ([`assign_custody`]) and never changed by an upsert.
    pub custody_address: Option<String>,
}

impl Participant {
    /// Where the participant is paid and rewarded on chain: their own address, else the
    /// custodial one; `None` until the service has assigned a custodial account.
    pub fn account(&self) -> Option<&str> {
        self.evm_address.as_deref().or(self.custody_address.as_deref())
    }
}

/// Insert a participant, or update name, role, address and node if the id exists. A custodial
/// address is taken only while the participant has none: once assigned it never changes (funds
/// and rewards are paid there).
pub async fn upsert(db: &Db, p: &Participant, now: Timestamp) -> Result<()> {
    let sql = "INSERT INTO participants (id, name, role, evm_address, feeder_node, created_at, custody_address) \
               VALUES ($1, $2, $3, $4, $5, $6, $7) \
               ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, \
               evm_address = excluded.evm_address, feeder_node = excluded.feeder_node, \
               custody_address = COALESCE(participants.custody_address, excluded.custody_address)";
    query!(db, sql, pool => |q| {
        q.bind(p.id.0 as i64)
            .bind(p.name.clone())
            .bind(p.role.clone())
            .bind(p.evm_address.clone())
            .bind(p.feeder_node.map(i64::from))
            .bind(now.0)
            .bind(p.custody_address.clone())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Gives every participant without a custodial account the one `address_of` derives for them
/// (the service's custody: `gridshare_domain::accounts::Custody::address_hex`); returns the
/// participants given one. An account already assigned is never replaced, and two participants
/// can never share one (a unique index refuses it by name).
pub async fn assign_custody(db: &Db, address_of: impl Fn(ParticipantId) -> String) -> Result<Vec<ParticipantId>> {
    let sql = "SELECT id FROM participants WHERE custody_address IS NULL ORDER BY id";
    let ids: Vec<i64> = query!(db, sql, pool => |q| {
        q.fetch_all(pool).await?.iter().map(|r| r.try_get::<i64, _>("id")).collect::<std::result::Result<_, _>>()?
    });
    let mut assigned = Vec::with_capacity(ids.len());
    for id in ids {
        let p = ParticipantId(id as u64);
        let sql = "UPDATE participants SET custody_address = $2 WHERE id = $1 AND custody_address IS NULL";
        let n = query!(db, sql, pool => |q| {
            q.bind(id).bind(address_of(p)).execute(pool).await?.rows_affected()
        });
        if n == 1 {
            assigned.push(p);
        }
    }
    Ok(assigned)
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
            custody_address: r.try_get("custody_address")?,
            feeder_node: node.map(u32::try_from).transpose().map_err(|e| StorageError::Corrupt {
                field: "participants.feeder_node",
                reason: e.to_string(),
            })?,
        })
    }};
}

/// One participant.
pub async fn get(db: &Db, id: ParticipantId) -> Result<Participant> {
    let sql = "SELECT id, name, role, evm_address, feeder_node, custody_address FROM participants WHERE id = $1";
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
    let sql = "SELECT id, name, role, evm_address, feeder_node, custody_address FROM participants ORDER BY id";
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

/// A live dashboard session, joined with its user and participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user.
    pub user_id: i64,
    /// The participant the user acts for.
    pub participant: ParticipantId,
    /// That participant's role.
    pub role: String,
    /// Expiry (ms).
    pub expires_at: i64,
}

/// Stores a session by the hash of its token.
pub async fn create_session(
    db: &Db,
    token_hash: &str,
    user_id: i64,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    let sql = "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
    query!(db, sql, pool => |q| {
        q.bind(token_hash.to_owned()).bind(user_id).bind(now.0).bind(expires_at.0).execute(pool).await?;
    });
    Ok(())
}

/// The session with this token hash, if it exists and has not expired at `now`.
pub async fn find_session(db: &Db, token_hash: &str, now: Timestamp) -> Result<Option<Session>> {
    let sql = "SELECT s.user_id, s.expires_at, u.participant_id, p.role FROM sessions s \
               JOIN users u ON u.id = s.user_id JOIN participants p ON p.id = u.participant_id \
               WHERE s.token_hash = $1 AND s.expires_at > $2";
    query!(db, sql, pool => |q| {
        let row = q.bind(token_hash.to_owned()).bind(now.0).fetch_optional(pool).await?;
        row.map(|r| {
            Ok::<_, StorageError>(Session {
                user_id: r.try_get("user_id")?,
                participant: ParticipantId(r.try_get::<i64, _>("participant_id")? as u64),
                role: r.try_get("role")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    })
}

/// Ends a session (logout). Also removes every expired session.
pub async fn delete_session(db: &Db, token_hash: &str, now: Timestamp) -> Result<()> {
    let sql = "DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2";
    query!(db, sql, pool => |q| {
        q.bind(token_hash.to_owned()).bind(now.0).execute(pool).await?;
    });
    Ok(())
}
