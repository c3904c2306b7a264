//! Reward epochs over HTTP: the list of epochs and each one's public report (anyone may read
//! them: the report is what the root on chain commits to, so auditing it must need no account),
//! a participant's rewards per epoch, and the proof of their account's cumulative total in an
//! epoch's root (what a claim from their own wallet needs).

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gridshare_domain::Timestamp;
use gridshare_market::epoch::collect::account_of;
use gridshare_market::epoch::report::{self, Report};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiJson, ApiPath as Path};

/// An epoch, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EpochView {
    /// Number, from 1.
    pub epoch: u64,
    /// Start (market time, RFC 3339).
    pub start: String,
    /// End, exclusive.
    pub end: String,
    /// The emission schedule's budget, µ-token.
    pub budget: i64,
    /// Paid, µ-token.
    pub paid: i64,
    /// Every account's cumulative total after it, summed, µ-token.
    pub cumulative_total: i64,
    /// Participants rewarded.
    pub participants: i64,
    /// The cumulative Merkle root.
    pub root: String,
    /// keccak256 of the canonical report.
    pub report_hash: String,
    /// The transaction that posted root and hash on chain, once posted.
    pub posted_tx: Option<String>,
}

/// How many epochs.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EpochsQuery {
    /// At most this many, newest first (1–1000, default 50).
    pub limit: Option<u32>,
}

/// The epochs computed so far, newest first. Public.
#[utoipa::path(get, path = "/api/v1/epochs", tag = "rewards", params(EpochsQuery),
    responses((status = 200, description = "Epochs", body = Vec<EpochView>), (status = 400, description = "Bad limit")))]
pub async fn epochs(
    State(state): State<AppState>,
    Query(q): Query<EpochsQuery>,
) -> Result<ApiJson<Vec<EpochView>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_limit",
            format!("limit: 1 to 1000, got {limit}"),
        ));
    }
    let rows = gridshare_storage::epochs::list(state.db()?, limit).await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|e| EpochView {
                epoch: e.epoch,
                start: Timestamp(e.start_ms).to_rfc3339(),
                end: Timestamp(e.end_ms).to_rfc3339(),
                budget: e.budget,
                paid: e.paid,
                cumulative_total: e.cumulative_total,
                participants: e.participants,
                root: e.root,
                report_hash: e.report_hash,
                posted_tx: e.posted_tx,
            })
            .collect(),
    ))
}

/// An epoch's report, exactly the canonical JSON its hash is taken over (`gridshare epoch verify`
/// checks it). Public.
#[utoipa::path(get, path = "/api/v1/epochs/{epoch}/report", tag = "rewards",
    params(("epoch" = u64, Path, description = "Epoch number")),
    responses((status = 200, description = "The report (canonical JSON)", content_type = "application/json"),
        (status = 404, description = "Not computed (yet)")))]
pub async fn epoch_report(State(state): State<AppState>, Path(epoch): Path<u64>) -> Result<Response, ApiError> {
    match gridshare_storage::epochs::report(state.db()?, epoch).await? {
        Some(json) => Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response()),
        None => Err(ApiError::not_found(format!("epoch {epoch} is not computed"))),
    }
}

/// A participant's reward in one epoch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EpochRewardView {
    /// The epoch.
    pub epoch: u64,
    /// The account rewarded.
    pub account: String,
    /// Local renewable energy, at its rate, µ-token.
    pub local_renewable: i64,
    /// Demand response, at its rate.
    pub demand_response: i64,
    /// Uptime.
    pub uptime: i64,
    /// Their sum at the configured rates.
    pub raw: i64,
    /// Paid, after scaling to the epoch's budget.
    pub reward: i64,
    /// The account's cumulative total after the epoch (what the distributor pays up to).
    pub cumulative: i64,
}

/// My rewards per epoch, newest first.
#[utoipa::path(get, path = "/api/v1/epochs/rewards", tag = "rewards", security(("api_key" = [])),
    responses((status = 200, description = "Rewards per epoch", body = Vec<EpochRewardView>), (status = 401, description = "No credentials")))]
pub async fn my_epoch_rewards(
    State(state): State<AppState>,
    who: Principal,
) -> Result<ApiJson<Vec<EpochRewardView>>, ApiError> {
    who.require_scope(Scope::Read)?;
    let rows = gridshare_storage::epochs::rewards_of(state.db()?, who.participant, 500).await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|r| EpochRewardView {
                epoch: r.epoch,
                account: r.account,
                local_renewable: r.local_renewable,
                demand_response: r.demand_response,
                uptime: r.uptime,
                raw: r.raw,
                reward: r.reward,
                cumulative: r.cumulative,
            })
            .collect(),
    ))
}

/// The proof a claim needs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClaimProof {
    /// The epoch whose root it proves against.
    pub epoch: u64,
    /// That root.
    pub root: String,
    /// The account.
    pub account: String,
    /// Its cumulative total (µ-token).
    pub cumulative: u64,
    /// Sibling hashes from the leaf up.
    pub proof: Vec<String>,
}

/// The proof of my account's cumulative total in an epoch's root: `claim(account, cumulative,
/// proof)` on the distributor, from any wallet.
#[utoipa::path(get, path = "/api/v1/epochs/{epoch}/proof", tag = "rewards", security(("api_key" = [])),
    params(("epoch" = u64, Path, description = "Epoch number")),
    responses((status = 200, description = "The proof", body = ClaimProof), (status = 401, description = "No credentials"),
        (status = 404, description = "Epoch not computed, or my account is not in its root")))]
pub async fn my_proof(
    State(state): State<AppState>,
    who: Principal,
    Path(epoch): Path<u64>,
) -> Result<ApiJson<ClaimProof>, ApiError> {
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let Some(json) = gridshare_storage::epochs::report(db, epoch).await? else {
        return Err(ApiError::not_found(format!("epoch {epoch} is not computed")));
    };
    let r: Report = serde_json::from_str(&json)
        .map_err(|e| ApiError::internal(format!("epoch {epoch}'s stored report does not parse: {e}")))?;
    let me = gridshare_storage::participants::get(db, who.participant).await?;
    let account = account_of(&me).ok_or_else(|| ApiError::not_found("you have no on-chain account yet"))?;
    let Some((cumulative, proof)) = r.proof_of(&account) else {
        return Err(ApiError::not_found(format!(
            "account {account} has no reward in epoch {epoch}'s root"
        )));
    };
    Ok(ApiJson(ClaimProof {
        epoch,
        root: r.root,
        account,
        cumulative,
        proof: proof.iter().map(report::hex32).collect(),
    }))
}
