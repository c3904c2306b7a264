//! The governed parameters as the service has seen them on chain, one row per version, and the
//! proposals made through the service and the votes homeowners ask it to cast for them (issue
//! 22): what the dashboard and `GET /api/v1/governance/…` show.

use gridshare_domain::{ParticipantId, Timestamp};
use sqlx::Row;

use crate::db::{Db, query};
use crate::error::{Result, StorageError};

/// The governed parameters' names, as the contract keys them (in the order of its `Params`).
pub const NAMES: [&str; 16] = [
    "feePerHop",
    "networkFee",
    "importTariff",
    "exportTariff",
    "rewardGeneration",
    "rewardDemandResponse",
    "rewardUptime",
    "epochInitialBudget",
    "halvingEpochs",
    "uptimeThresholdBps",
    "minBond",
    "unbondingCooldown",
    "slashBurnBps",
    "slashReporterBps",
    "redemptionRate",
    "redemptionBudget",
];

/// One version of the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterVersion {
    /// How many changes were executed on chain up to it (0: the deployment's values).
    pub version: u64,
    /// When the service saw it (market time).
    pub observed_at: Timestamp,
    /// The parameters, JSON (an object of decimal strings, keyed as in the contract).
    pub params: String,
    /// The bounds the contract enforces, JSON (`{"feePerHop": ["0", "1000000"], …}`).
    pub bounds: String,
}

// a macro, not a function: the row type differs between the two backends
macro_rules! version_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<ParameterVersion, StorageError>(ParameterVersion {
            version: r.try_get::<i64, _>("version")? as u64,
            observed_at: Timestamp(r.try_get("observed_at")?),
            params: r.try_get("params")?,
            bounds: r.try_get("bounds")?,
        })
    }};
}

fn int(v: u64, field: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StorageError::Refused {
        constraint: field.into(),
        message: format!("{v} does not fit a signed 64-bit column"),
    })
}

/// Stores a version seen for the first time; false when it was stored before (nothing changes).
pub async fn record(db: &Db, version: u64, observed_at: Timestamp, params: &str, bounds: &str) -> Result<bool> {
    let sql = "INSERT INTO parameter_versions (version, observed_at, params, bounds) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (version) DO NOTHING";
    let n = query!(db, sql, pool => |q| {
        q.bind(int(version, "parameter_versions.version")?)
            .bind(observed_at.0)
            .bind(params.to_owned())
            .bind(bounds.to_owned())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Every version stored, newest first (at most `limit`).
pub async fn history(db: &Db, limit: u32) -> Result<Vec<ParameterVersion>> {
    let sql = "SELECT version, observed_at, params, bounds FROM parameter_versions ORDER BY version DESC LIMIT $1";
    query!(db, sql, pool => |q| {
        let rows = q.bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter().map(|r| version_from_row!(r)).collect()
    })
}

/// The newest version stored.
pub async fn latest(db: &Db) -> Result<Option<ParameterVersion>> {
    Ok(history(db, 1).await?.into_iter().next())
}

/// The version in force at `at` (market time): the newest one the service had seen by then.
pub async fn in_force(db: &Db, at: Timestamp) -> Result<Option<ParameterVersion>> {
    let sql = "SELECT version, observed_at, params, bounds FROM parameter_versions WHERE observed_at <= $1 \
               ORDER BY version DESC LIMIT 1";
    query!(db, sql, pool => |q| {
        let row = q.bind(at.0).fetch_optional(pool).await?;
        row.map(|r| version_from_row!(r)).transpose()
    })
}

impl ParameterVersion {
    /// The parameters, parsed (`Corrupt` when the stored JSON is not an object).
    pub fn values(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        match serde_json::from_str(&self.params) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => Err(StorageError::Corrupt {
                field: "parameter_versions.params",
                reason: format!("version {}: not a JSON object", self.version),
            }),
            Err(e) => Err(StorageError::Corrupt {
                field: "parameter_versions.params",
                reason: format!("version {}: {e}", self.version),
            }),
        }
    }

    /// One parameter's value (`None` when it is absent or not a whole number).
    pub fn value(&self, key: &str) -> Result<Option<u64>> {
        Ok(self
            .values()?
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok()))
    }
}

/// A proposal made through the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The service's number for it.
    pub id: u64,
    /// Who asked for it (the grid operator or an administrator).
    pub proposer: ParticipantId,
    /// What it is for (part of its identity on chain).
    pub description: String,
    /// The changes, JSON: `[{"parameter": "feePerHop", "value": "3000"}, …]`.
    pub changes: String,
    /// When it was asked for (market time).
    pub created_at: Timestamp,
    /// The governor's proposal id (decimal), once proposed on chain.
    pub chain_id: Option<String>,
    /// `waiting` (not on chain yet), or the governor's state: `pending`, `active`, `canceled`,
    /// `defeated`, `succeeded`, `queued`, `expired`, `executed`; `refused` when the chain refused it.
    pub state: String,
    /// Votes for, against and abstaining (µ-token, decimal), as last read.
    pub votes: (String, String, String),
    /// Why the chain refused it, if it did.
    pub error: Option<String>,
    /// When it was last read.
    pub updated_at: Timestamp,
}

/// Stores a new proposal (`waiting` until the settlement task proposes it); returns its number.
pub async fn propose(
    db: &Db,
    proposer: ParticipantId,
    description: &str,
    changes: &str,
    now: Timestamp,
) -> Result<u64> {
    let sql = "INSERT INTO proposals (proposer_id, description, changes, created_at, state, votes_for, votes_against, \
               votes_abstain, updated_at) VALUES ($1, $2, $3, $4, 'waiting', '0', '0', '0', $4) RETURNING id";
    query!(db, sql, pool => |q| {
        let row = q
            .bind(proposer.0 as i64)
            .bind(description.to_owned())
            .bind(changes.to_owned())
            .bind(now.0)
            .fetch_one(pool)
            .await?;
        Ok(row.try_get::<i64, _>("id")? as u64)
    })
}

/// Updates what was read of a proposal on chain.
pub async fn update(
    db: &Db,
    id: u64,
    chain_id: Option<&str>,
    state: &str,
    votes: (&str, &str, &str),
    error: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let sql = "UPDATE proposals SET chain_id = COALESCE($1, chain_id), state = $2, votes_for = $3, votes_against = $4, \
               votes_abstain = $5, error = $6, updated_at = $7 WHERE id = $8";
    query!(db, sql, pool => |q| {
        q.bind(chain_id.map(str::to_owned))
            .bind(state.to_owned())
            .bind(votes.0.to_owned())
            .bind(votes.1.to_owned())
            .bind(votes.2.to_owned())
            .bind(error.map(str::to_owned))
            .bind(now.0)
            .bind(int(id, "proposals.id")?)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Proposals, newest first (at most `limit`).
pub async fn proposals(db: &Db, limit: u32) -> Result<Vec<Proposal>> {
    let sql = "SELECT id, proposer_id, description, changes, created_at, chain_id, state, votes_for, votes_against, \
               votes_abstain, error, updated_at FROM proposals ORDER BY id DESC LIMIT $1";
    query!(db, sql, pool => |q| {
        let rows = q.bind(i64::from(limit)).fetch_all(pool).await?;
        rows.iter().map(proposal_of).collect()
    })
}

/// One proposal.
pub async fn proposal(db: &Db, id: u64) -> Result<Option<Proposal>> {
    let sql = "SELECT id, proposer_id, description, changes, created_at, chain_id, state, votes_for, votes_against, \
               votes_abstain, error, updated_at FROM proposals WHERE id = $1";
    query!(db, sql, pool => |q| {
        let row = q.bind(int(id, "proposals.id")?).fetch_optional(pool).await?;
        row.as_ref().map(proposal_of).transpose()
    })
}

/// Proposals the settlement task still follows (not finished: executed, defeated, canceled,
/// expired or refused ones are left alone), oldest first.
pub async fn open(db: &Db) -> Result<Vec<Proposal>> {
    let sql = "SELECT id, proposer_id, description, changes, created_at, chain_id, state, votes_for, votes_against, \
               votes_abstain, error, updated_at FROM proposals \
               WHERE state IN ('waiting', 'pending', 'active', 'succeeded', 'queued') ORDER BY id";
    query!(db, sql, pool => |q| {
        let rows = q.fetch_all(pool).await?;
        rows.iter().map(proposal_of).collect()
    })
}

fn proposal_of<R: sqlx::Row>(r: &R) -> Result<Proposal>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Proposal {
        id: r.try_get::<i64, _>("id")? as u64,
        proposer: ParticipantId(r.try_get::<i64, _>("proposer_id")? as u64),
        description: r.try_get("description")?,
        changes: r.try_get("changes")?,
        created_at: Timestamp(r.try_get("created_at")?),
        chain_id: r.try_get("chain_id")?,
        state: r.try_get("state")?,
        votes: (
            r.try_get("votes_for")?,
            r.try_get("votes_against")?,
            r.try_get("votes_abstain")?,
        ),
        error: r.try_get("error")?,
        updated_at: Timestamp(r.try_get("updated_at")?),
    })
}

/// A vote a participant asked the service to cast for their custodial account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The proposal (the service's number).
    pub proposal: u64,
    /// Whose vote.
    pub participant: ParticipantId,
    /// 0 against, 1 for, 2 abstain.
    pub support: u8,
    /// When it was asked for (market time).
    pub requested_at: Timestamp,
    /// `waiting`, `cast` or `refused`.
    pub state: String,
    /// The votes it carried (µ-token, decimal), once cast.
    pub weight: Option<String>,
    /// The transaction that cast it, when this service sent it.
    pub tx_hash: Option<String>,
    /// Why it was not cast.
    pub error: Option<String>,
    /// When its state last changed.
    pub updated_at: Timestamp,
}

/// Stores `participant`'s vote on `proposal` (`waiting` until the settlement task casts it).
/// False, and nothing changed, when they already voted on it: the governor counts one vote per
/// account, and the first one stands.
pub async fn request_vote(
    db: &Db,
    proposal: u64,
    participant: ParticipantId,
    support: u8,
    now: Timestamp,
) -> Result<bool> {
    if support > 2 {
        return Err(StorageError::Refused {
            constraint: "proposal_votes.support".into(),
            message: format!("support must be 0 (against), 1 (for) or 2 (abstain), got {support}"),
        });
    }
    let sql = "INSERT INTO proposal_votes (proposal_id, participant_id, support, requested_at, state, updated_at) \
               VALUES ($1, $2, $3, $4, 'waiting', $4) ON CONFLICT (proposal_id, participant_id) DO NOTHING";
    query!(db, sql, pool => |q| {
        let done = q
            .bind(int(proposal, "proposal_votes.proposal_id")?)
            .bind(int(participant.0, "proposal_votes.participant_id")?)
            .bind(i64::from(support))
            .bind(now.0)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
    })
}

/// Records what became of a vote: `cast` (with the votes it carried and its transaction, when
/// this service sent it) or `refused` (with why). Only a waiting vote changes.
pub async fn vote_done(
    db: &Db,
    vote: (u64, ParticipantId),
    state: &str,
    (weight, tx_hash, error): (Option<&str>, Option<&str>, Option<&str>),
    now: Timestamp,
) -> Result<()> {
    let sql = "UPDATE proposal_votes SET state = $1, weight = $2, tx_hash = $3, error = $4, updated_at = $5 \
               WHERE proposal_id = $6 AND participant_id = $7 AND state = 'waiting'";
    query!(db, sql, pool => |q| {
        q.bind(state.to_owned())
            .bind(weight.map(str::to_owned))
            .bind(tx_hash.map(str::to_owned))
            .bind(error.map(str::to_owned))
            .bind(now.0)
            .bind(int(vote.0, "proposal_votes.proposal_id")?)
            .bind(int(vote.1.0, "proposal_votes.participant_id")?)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// The votes on `proposal` still to be cast, in the order they were asked for.
pub async fn waiting_votes(db: &Db, proposal: u64) -> Result<Vec<Vote>> {
    let sql = "SELECT proposal_id, participant_id, support, requested_at, state, weight, tx_hash, error, updated_at \
               FROM proposal_votes WHERE proposal_id = $1 AND state = 'waiting' ORDER BY requested_at, participant_id";
    query!(db, sql, pool => |q| {
        let rows = q.bind(int(proposal, "proposal_votes.proposal_id")?).fetch_all(pool).await?;
        rows.iter().map(vote_of).collect()
    })
}

/// `participant`'s votes, newest proposal first (at most `limit`).
pub async fn votes_of(db: &Db, participant: ParticipantId, limit: u32) -> Result<Vec<Vote>> {
    let sql = "SELECT proposal_id, participant_id, support, requested_at, state, weight, tx_hash, error, updated_at \
               FROM proposal_votes WHERE participant_id = $1 ORDER BY proposal_id DESC LIMIT $2";
    query!(db, sql, pool => |q| {
        let rows = q
            .bind(int(participant.0, "proposal_votes.participant_id")?)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        rows.iter().map(vote_of).collect()
    })
}

fn vote_of<R: sqlx::Row>(r: &R) -> Result<Vote>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let support = r.try_get::<i64, _>("support")?;
    Ok(Vote {
        proposal: r.try_get::<i64, _>("proposal_id")? as u64,
        participant: ParticipantId(r.try_get::<i64, _>("participant_id")? as u64),
        support: u8::try_from(support).map_err(|_| StorageError::Corrupt {
            field: "proposal_votes.support",
            reason: format!("{support} is not 0, 1 or 2"),
        })?,
        requested_at: Timestamp(r.try_get("requested_at")?),
        state: r.try_get("state")?,
        weight: r.try_get("weight")?,
        tx_hash: r.try_get("tx_hash")?,
        error: r.try_get("error")?,
        updated_at: Timestamp(r.try_get("updated_at")?),
    })
}
