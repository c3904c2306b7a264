//! API keys for traders and scripts: stored as a SHA-256 hash of the secret, scoped, revocable.
//! The secret itself is shown once, when the key is made, and never stored.

use gridshare_domain::{ParticipantId, Timestamp};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// A stored key, joined with its owner's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id (`gsk_…`).
    pub id: String,
    /// The participant it acts for.
    pub participant: ParticipantId,
    /// That participant's role.
    pub role: String,
    /// SHA-256 of the secret token, hex.
    pub token_hash: String,
    /// Scopes, comma-separated (`read,trade`).
    pub scopes: String,
    /// The owner's label for it.
    pub label: String,
    /// When it was made (ms).
    pub created_at: i64,
    /// When it was revoked (ms), if it was.
    pub revoked_at: Option<i64>,
    /// The key it was made with (`None`: made in a dashboard session or by an administrator).
    pub parent: Option<String>,
}

/// A key to store: its columns, bar the time it is made.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    /// Its public id (`gsk_…`).
    pub id: &'a str,
    /// The participant it acts for.
    pub participant: ParticipantId,
    /// SHA-256 of the secret token, hex.
    pub token_hash: &'a str,
    /// Scopes, comma-separated (`read,trade`).
    pub scopes: &'a str,
    /// The owner's label for it.
    pub label: &'a str,
    /// The key it is made with: revoking that one revokes this one (`None`: made in a
    /// dashboard session or by an administrator).
    pub parent: Option<&'a str>,
}

/// Stores a new key; `Duplicate` if the id exists.
pub async fn create(db: &Db, key: &NewKey<'_>, now: Timestamp) -> Result<()> {
    let NewKey {
        id,
        participant,
        token_hash,
        scopes,
        label,
        parent,
    } = *key;
    let sql = "INSERT INTO api_keys (id, participant_id, token_hash, scopes, label, created_at, parent_id) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    query!(db, sql, pool => |q| {
        q.bind(id.to_owned())
            .bind(participant.0 as i64)
            .bind(token_hash.to_owned())
            .bind(scopes.to_owned())
            .bind(label.to_owned())
            .bind(now.0)
            .bind(parent.map(str::to_owned))
            .execute(pool)
            .await?;
    });
    Ok(())
}

macro_rules! key_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<ApiKey, StorageError>(ApiKey {
            id: r.try_get("id")?,
            participant: ParticipantId(r.try_get::<i64, _>("participant_id")? as u64),
            role: r.try_get("role")?,
            token_hash: r.try_get("token_hash")?,
            scopes: r.try_get("scopes")?,
            label: r.try_get("label")?,
            created_at: r.try_get("created_at")?,
            revoked_at: r.try_get("revoked_at")?,
            parent: r.try_get("parent_id")?,
        })
    }};
}

macro_rules! select {
    ($where:literal) => {
        concat!(
            "SELECT k.id, k.participant_id, p.role, k.token_hash, k.scopes, k.label, k.created_at, k.revoked_at, k.parent_id ",
            "FROM api_keys k JOIN participants p ON p.id = k.participant_id ",
            $where
        )
    };
}

/// A key by its public id (revoked ones too: the caller checks `revoked_at`).
pub async fn find(db: &Db, id: &str) -> Result<Option<ApiKey>> {
    let sql = select!("WHERE k.id = $1");
    query!(db, sql, pool => |q| {
        let row = q.bind(id.to_owned()).fetch_optional(pool).await?;
        row.map(|r| key_from_row!(r)).transpose()
    })
}

/// A participant's keys, newest first.
pub async fn list(db: &Db, participant: ParticipantId) -> Result<Vec<ApiKey>> {
    let sql = select!("WHERE k.participant_id = $1 ORDER BY k.created_at DESC, k.id");
    query!(db, sql, pool => |q| {
        let rows = q.bind(participant.0 as i64).fetch_all(pool).await?;
        rows.into_iter().map(|r| key_from_row!(r)).collect::<Result<Vec<_>>>()
    })
}

/// Revokes a participant's key and every live key made with it, directly or through others
/// (one statement, so no child outlives its parent); `NotFound` if they have no such live key.
pub async fn revoke(db: &Db, participant: ParticipantId, id: &str, now: Timestamp) -> Result<()> {
    let sql = "WITH RECURSIVE tree (id) AS ( \
                   SELECT id FROM api_keys WHERE id = $2 AND participant_id = $3 AND revoked_at IS NULL \
                   UNION SELECT k.id FROM api_keys k JOIN tree t ON k.parent_id = t.id) \
               UPDATE api_keys SET revoked_at = $1 WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL";
    let n = query!(db, sql, pool => |q| {
        q.bind(now.0).bind(id.to_owned()).bind(participant.0 as i64).execute(pool).await?.rows_affected()
    });
    if n == 0 {
        return Err(StorageError::NotFound {
            what: "API key",
            key: id.to_owned(),
        });
    }
    Ok(())
}
