//! The governed parameters over HTTP (issue 22): what the community's governor and timelock on
//! chain have set — grid fees, tariffs, reward rates, the budget schedule, bond and slashing rules,
//! redemption — as the service last read them, with every version it has seen. Public, like the
//! epochs' reports: the rules that decide who earns what are for everyone to read.
//!
//! The grid operator and administrators propose changes ([`propose`]); homeowners vote on them
//! with the reward tokens they earned ([`vote`]): the service casts a homeowner's vote from their
//! custodial account (a ballot signed with the account's key, sent and paid by the service) once
//! the vote opens. A homeowner with an address of their own votes with their own wallet.

use axum::extract::State;
use axum::http::StatusCode;
use gridshare_storage::parameters;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiJson, ApiPath as Path, ApiQuery as Query};

/// How much history.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ParametersQuery {
    /// At most this many versions, newest first (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// One version of the parameters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParameterVersionView {
    /// How many changes were executed on chain up to it (0: the values at deployment).
    pub version: u64,
    /// When the service saw it (market time, RFC 3339).
    pub observed_at: String,
    /// The parameters, keyed as in the contract, values as decimal strings (µ-currency per kWh
    /// for fees and tariffs, µ-token for rewards and bonds, basis points, seconds).
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
}

/// The parameters in force and the versions before them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParametersView {
    /// The newest version (none before the service first read the chain).
    pub current: Option<ParameterVersionView>,
    /// Every version seen, newest first (the current one included).
    pub history: Vec<ParameterVersionView>,
}

impl ParametersQuery {
    /// The limit asked for (50 when none); a 400 outside 1–500.
    fn limit(self) -> Result<u32, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1 to 500, got {limit}"),
            ));
        }
        Ok(limit)
    }
}

fn view(v: &parameters::ParameterVersion) -> ParameterVersionView {
    ParameterVersionView {
        version: v.version,
        observed_at: v.observed_at.to_rfc3339(),
        params: serde_json::from_str(&v.params).unwrap_or_else(|_| serde_json::Value::String(v.params.clone())),
    }
}

/// The governed parameters in force, and their history.
#[utoipa::path(get, path = "/api/v1/governance/parameters", tag = "governance", params(ParametersQuery),
    responses(
        (status = 200, description = "Current parameters and their history", body = ParametersView),
        (status = 400, description = "Bad limit", body = crate::error::ErrorBody),
    ))]
pub async fn governed_parameters(
    State(state): State<AppState>,
    Query(q): Query<ParametersQuery>,
) -> Result<ApiJson<ParametersView>, ApiError> {
    let limit = q.limit()?;
    let history: Vec<ParameterVersionView> = parameters::history(state.db()?, limit)
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(ApiJson(ParametersView {
        current: history.first().cloned(),
        history,
    }))
}

/// One change a proposal makes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The parameter, as the contract names it (e.g. `feePerHop`).
    pub parameter: String,
    /// Its new value, a decimal integer (µ-currency per kWh for fees and tariffs, µ-token for
    /// rewards and bonds, basis points, seconds).
    pub value: String,
}

/// A proposal to change governed parameters.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProposal {
    /// What it is for, in words (1–1,000 characters; part of the proposal's identity on chain).
    pub description: String,
    /// The changes (1–16, each parameter at most once), each within the contract's bounds.
    pub changes: Vec<Change>,
}

/// A proposal, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProposalView {
    /// The service's number for it.
    pub id: u64,
    /// Who asked for it.
    pub proposer: u64,
    /// What it is for.
    pub description: String,
    /// The changes.
    pub changes: Vec<Change>,
    /// When it was asked for (market time, RFC 3339).
    pub created_at: String,
    /// The governor's proposal id (decimal), once proposed on chain.
    pub chain_id: Option<String>,
    /// `waiting` (not on chain yet), the governor's state (`pending`, `active`, `canceled`,
    /// `defeated`, `succeeded`, `queued`, `expired`, `executed`), or `refused`.
    pub state: String,
    /// Votes for (µ-token, decimal), as last read.
    pub votes_for: String,
    /// Votes against.
    pub votes_against: String,
    /// Abstentions.
    pub votes_abstain: String,
    /// Why the chain refused it or a step of it, if it did.
    pub error: Option<String>,
}

fn proposal_view(p: &parameters::Proposal) -> ProposalView {
    ProposalView {
        id: p.id,
        proposer: p.proposer.0,
        description: p.description.clone(),
        changes: serde_json::from_str(&p.changes).unwrap_or_default(),
        created_at: p.created_at.to_rfc3339(),
        chain_id: p.chain_id.clone(),
        state: p.state.clone(),
        votes_for: p.votes.0.clone(),
        votes_against: p.votes.1.clone(),
        votes_abstain: p.votes.2.clone(),
        error: p.error.clone(),
    }
}

/// Proposals made through the service, newest first, with their state and votes on chain.
#[utoipa::path(get, path = "/api/v1/governance/proposals", tag = "governance", params(ParametersQuery),
    responses(
        (status = 200, description = "Proposals, newest first", body = Vec<ProposalView>),
        (status = 400, description = "Bad limit", body = crate::error::ErrorBody),
    ))]
pub async fn proposals(
    State(state): State<AppState>,
    Query(q): Query<ParametersQuery>,
) -> Result<ApiJson<Vec<ProposalView>>, ApiError> {
    let limit = q.limit()?;
    Ok(ApiJson(
        parameters::proposals(state.db()?, limit)
            .await?
            .iter()
            .map(proposal_view)
            .collect(),
    ))
}

/// Checks a proposal against the parameters' names and the bounds the contract enforces (as last
/// read from chain); the changes as stored.
pub fn check(p: &NewProposal, bounds: &serde_json::Value) -> Result<String, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_proposal", m);
    let description = p.description.trim();
    if description.is_empty() || description.chars().count() > 1_000 {
        return Err(invalid("description: 1 to 1,000 characters".into()));
    }
    if p.changes.is_empty() || p.changes.len() > parameters::NAMES.len() {
        return Err(invalid(format!("changes: 1 to {}", parameters::NAMES.len())));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &p.changes {
        if !parameters::NAMES.contains(&c.parameter.as_str()) {
            return Err(invalid(format!(
                "changes: {:?} is not a governed parameter (one of {})",
                c.parameter,
                parameters::NAMES.join(", ")
            )));
        }
        if !seen.insert(c.parameter.as_str()) {
            return Err(invalid(format!("changes: {} appears twice", c.parameter)));
        }
        let value: u128 = c
            .value
            .parse()
            .map_err(|_| invalid(format!("changes: {}: {:?} is not a whole number", c.parameter, c.value)))?;
        let bound = |i: usize| bounds[&c.parameter][i].as_str().and_then(|b| b.parse::<u128>().ok());
        let (Some(min), Some(max)) = (bound(0), bound(1)) else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_bounds",
                format!(
                    "the bounds of {} are not known yet: the service has not read the parameters from chain",
                    c.parameter
                ),
            ));
        };
        if !(min..=max).contains(&value) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_bounds",
                format!("{} = {value} is outside its bounds {min} to {max}", c.parameter),
            ));
        }
    }
    Ok(serde_json::to_string(&p.changes).unwrap_or_default())
}

/// Propose changes to the governed parameters (the grid operator and administrators, with the
/// `govern` scope). The service puts the proposal on chain from its own account at its next
/// settlement run; the reward tokens' holders vote on it; once passed, the service queues and
/// executes it. Values outside the contract's bounds are refused here already.
#[utoipa::path(post, path = "/api/v1/governance/proposals", tag = "governance", security(("api_key" = [])),
    request_body = NewProposal,
    responses(
        (status = 201, description = "Stored; it goes on chain at the next settlement run", body = ProposalView),
        (status = 401, description = "No credentials", body = crate::error::ErrorBody),
        (status = 403, description = "Neither the grid operator nor an administrator", body = crate::error::ErrorBody),
        (status = 409, description = "The parameters were not read from chain yet", body = crate::error::ErrorBody),
        (status = 422, description = "Unknown parameter, bad value, out of bounds", body = crate::error::ErrorBody),
    ))]
pub async fn propose(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<NewProposal>,
) -> Result<(StatusCode, ApiJson<ProposalView>), ApiError> {
    let stored = make_proposal(&state, &who, &req).await?;
    Ok((StatusCode::CREATED, ApiJson(proposal_view(&stored))))
}

/// Stores `who`'s proposal for the service to put on chain (the API's and the dashboard's
/// proposal): the grid operator and administrators only, with the `govern` scope, each change
/// within the bounds the contract enforces.
pub async fn make_proposal(
    state: &AppState,
    who: &Principal,
    req: &NewProposal,
) -> Result<parameters::Proposal, ApiError> {
    if !matches!(who.role, Role::Operator | Role::Admin) {
        return Err(ApiError::forbidden(format!(
            "the {} role may not propose: the grid operator and administrators propose, the reward tokens' holders vote",
            who.role.as_str()
        )));
    }
    who.require_scope(Scope::Govern)?;
    let db = state.db()?;
    let bounds: serde_json::Value = match parameters::latest(db).await? {
        Some(v) => serde_json::from_str(&v.bounds).unwrap_or_default(),
        None => serde_json::Value::Null,
    };
    let changes = check(req, &bounds)?;
    let id = parameters::propose(db, who.participant, req.description.trim(), &changes, state.clock.now()).await?;
    parameters::proposal(db, id)
        .await?
        .ok_or_else(|| ApiError::internal("the proposal just stored is gone"))
}

/// How a vote goes (the governor's simple counting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// Against the proposal.
    Against,
    /// For it.
    For,
    /// Neither (counts towards the quorum).
    Abstain,
}

impl Support {
    /// The governor's number for it.
    pub fn number(self) -> u8 {
        match self {
            Self::Against => 0,
            Self::For => 1,
            Self::Abstain => 2,
        }
    }

    /// Its name (`for`, `against`, `abstain`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Against => "against",
            Self::For => "for",
            Self::Abstain => "abstain",
        }
    }

    /// From the governor's number.
    pub fn from_number(n: u8) -> Option<Self> {
        [Self::Against, Self::For, Self::Abstain]
            .into_iter()
            .find(|s| s.number() == n)
    }
}

/// A homeowner's vote on a proposal.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVote {
    /// `for`, `against` or `abstain`.
    pub support: Support,
}

/// A vote the service casts (or cast) for its owner.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VoteView {
    /// The proposal (the service's number).
    pub proposal: u64,
    /// How.
    pub support: Support,
    /// `waiting` (cast when the vote opens, at the service's next run), `cast` or `refused`.
    pub state: String,
    /// The votes it carried (µ-token, decimal: the account's delegated tokens at the proposal's
    /// snapshot), once cast.
    pub votes: Option<String>,
    /// The transaction that cast it, when the service sent it.
    pub tx_hash: Option<String>,
    /// Why it was not cast.
    pub error: Option<String>,
    /// When it was asked for (market time, RFC 3339).
    pub requested_at: String,
}

fn vote_view(v: &parameters::Vote) -> VoteView {
    VoteView {
        proposal: v.proposal,
        support: Support::from_number(v.support).unwrap_or(Support::Abstain),
        state: v.state.clone(),
        votes: v.weight.clone(),
        tx_hash: v.tx_hash.clone(),
        error: v.error.clone(),
        requested_at: v.requested_at.to_rfc3339(),
    }
}

/// Vote on a proposal with your reward tokens (homeowners, with the `vote` scope). The service
/// casts the vote from your account on chain once the vote opens (at its next run): a ballot
/// signed with your account's key, its gas paid by the service. It carries the tokens your
/// account held at the proposal's snapshot (rewards claimed before the vote opened). One vote per
/// proposal: the first stands.
#[utoipa::path(post, path = "/api/v1/governance/proposals/{id}/votes", tag = "governance", security(("api_key" = [])),
    params(("id" = u64, Path, description = "The proposal (the service's number)")),
    request_body = NewVote,
    responses(
        (status = 202, description = "Stored; cast when the vote opens", body = VoteView),
        (status = 401, description = "No credentials", body = crate::error::ErrorBody),
        (status = 403, description = "Not a homeowner, or no `vote` scope", body = crate::error::ErrorBody),
        (status = 404, description = "No such proposal", body = crate::error::ErrorBody),
        (status = 409, description = "Already voted, the vote is over, or you vote with a wallet of your own", body = crate::error::ErrorBody),
        (status = 422, description = "Bad body", body = crate::error::ErrorBody),
    ))]
pub async fn vote(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<u64>,
    ApiJson(req): ApiJson<NewVote>,
) -> Result<(StatusCode, ApiJson<VoteView>), ApiError> {
    let stored = request_vote(&state, &who, id, req.support).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(vote_view(&stored))))
}

/// Stores `who`'s vote on proposal `id` for the service to cast (the API's and the dashboard's
/// vote): only a homeowner, with the `vote` scope, on a proposal whose vote is not over, once,
/// and only for an account the service holds (a homeowner with an address of their own votes
/// with their wallet).
pub async fn request_vote(
    state: &AppState,
    who: &Principal,
    id: u64,
    support: Support,
) -> Result<parameters::Vote, ApiError> {
    who.require_scope(Scope::Vote)?;
    if who.role != Role::Homeowner {
        return Err(ApiError::forbidden(format!(
            "the {} role does not vote through the service: homeowners vote with the reward tokens their homes earned",
            who.role.as_str()
        )));
    }
    let db = state.db()?;
    let Some(proposal) = parameters::proposal(db, id).await? else {
        return Err(ApiError::not_found(format!("no proposal {id}")));
    };
    if !matches!(proposal.state.as_str(), "waiting" | "pending" | "active") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "vote_closed",
            format!("proposal {id} is {}: its vote is over", proposal.state),
        ));
    }
    let me = gridshare_storage::participants::get(db, who.participant).await?;
    if let Some(own) = me.evm_address {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "own_wallet",
            format!(
                "your rewards are paid to your own address {own}, so you vote with your own wallet: `castVote` on the governor, proposal {}",
                proposal.chain_id.as_deref().unwrap_or("(not on chain yet)")
            ),
        ));
    }
    if !parameters::request_vote(db, id, who.participant, support.number(), state.clock.now()).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_voted",
            format!("you already voted on proposal {id}; the first vote stands"),
        ));
    }
    parameters::votes_of(db, who.participant, 500)
        .await?
        .into_iter()
        .find(|v| v.proposal == id)
        .ok_or_else(|| ApiError::internal("the vote just stored is gone"))
}

/// Your votes, newest proposal first, with what became of each.
#[utoipa::path(get, path = "/api/v1/governance/votes", tag = "governance", security(("api_key" = [])),
    params(ParametersQuery),
    responses(
        (status = 200, description = "Your votes", body = Vec<VoteView>),
        (status = 400, description = "Bad limit", body = crate::error::ErrorBody),
        (status = 401, description = "No credentials", body = crate::error::ErrorBody),
    ))]
pub async fn my_votes(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ParametersQuery>,
) -> Result<ApiJson<Vec<VoteView>>, ApiError> {
    who.require_scope(Scope::Read)?;
    let limit = q.limit()?;
    Ok(ApiJson(
        parameters::votes_of(state.db()?, who.participant, limit)
            .await?
            .iter()
            .map(vote_view)
            .collect(),
    ))
}
