//! Rewards: token amounts owed to participants for verified renewable export consumed locally and
//! for verified demand-response reduction. Crediting is idempotent per (participant, kind,
//! reference), so a verification that runs twice credits once.

use gridshare_domain::{EventId, ParticipantId};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::Result;

/// One credited reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    /// The participant.
    pub participant: ParticipantId,
    /// `renewable_export` or `demand_response`.
    pub kind: String,
    /// Amount in reward-token micro-units (> 0).
    pub amount: i64,
    /// The delivery interval it is for, if any (ms).
    pub interval_start: Option<i64>,
    /// The demand-response event, if any.
    pub event: Option<EventId>,
    /// What it is for, unique per participant and kind.
    pub reference: String,
    /// Credited at (ms).
    pub created_at: i64,
    /// The mint transaction, once minted on chain.
    pub minted_tx: Option<String>,
}

/// Credits a reward unless one with the same (participant, kind, reference) exists; true when
/// it was new.
pub async fn credit(db: &Db, r: &Reward) -> Result<bool> {
    let sql = "INSERT INTO rewards (participant_id, kind, amount, interval_start, event_id, reference, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (participant_id, kind, reference) DO NOTHING";
    let n = query!(db, sql, pool => |q| {
        q.bind(r.participant.0 as i64)
            .bind(r.kind.clone())
            .bind(r.amount)
            .bind(r.interval_start)
            .bind(r.event.map(|e| e.0 as i64))
            .bind(r.reference.clone())
            .bind(r.created_at)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// A participant's rewards, newest first (at most `limit`).
pub async fn of_participant(db: &Db, p: ParticipantId, limit: u32) -> Result<Vec<Reward>> {
    let sql = "SELECT participant_id, kind, amount, interval_start, event_id, reference, created_at, minted_tx \
               FROM rewards WHERE participant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2";
    query!(db, sql, pool => |q| {
        let rows = q.bind(p.0 as i64).bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Reward {
                    participant: ParticipantId(r.try_get::<i64, _>("participant_id")? as u64),
                    kind: r.try_get("kind")?,
                    amount: r.try_get("amount")?,
                    interval_start: r.try_get("interval_start")?,
                    event: r.try_get::<Option<i64>, _>("event_id")?.map(|e| EventId(e as u64)),
                    reference: r.try_get("reference")?,
                    created_at: r.try_get("created_at")?,
                    minted_tx: r.try_get("minted_tx")?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

/// Marks an event `completed` (after its response was verified).
pub async fn complete_event(db: &Db, event: EventId) -> Result<()> {
    let sql = "UPDATE dr_events SET status = 'completed' WHERE id = $1 AND status IN ('scheduled', 'active')";
    query!(db, sql, pool => |q| {
        q.bind(event.0 as i64).execute(pool).await?;
    });
    Ok(())
}
