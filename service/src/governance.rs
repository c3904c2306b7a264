//! The governed parameters, run by the settlement task between its steps: the parameters
//! contract's version is read on every run; a new version is stored (its history is what the
//! dashboard and `GET /api/v1/governance/parameters` show) and applied going forward — grid fees
//! to the books the scheduler opens from then on (a book already open keeps the fees it opened
//! with), never to anything already decided.
//!
//! Version 0 is the deployment's values, taken from this configuration ([`initial`]); the market
//! keeps charging its configured feeder-tree fees until the community first changes a parameter,
//! from when on the governed per-hop and per-kWh fees apply.
//!
//! Reward rates and the uptime threshold apply from the next epoch (the epoch computation takes
//! the version in force when an epoch began: `gridshare_market::epoch::collect::governed`); the
//! import and export tariffs price the imbalance of the intervals that begin after the change
//! (`gridshare_settlement::step`, each position keeping the tariff it was settled at). The bond
//! rules and slashing shares need nothing from the service: the parameters contract passes every
//! change on to the staking contract in the same transaction, and the service reads the minimum
//! bond from there. Not applied yet: the budget schedule (the distributor enforces the one it was
//! deployed with) and redemption.

use alloy::primitives::{Address, U256};
use gridshare_domain::MicroPerKwh;
use gridshare_domain::accounts::Custody;
use gridshare_market::Market;
use gridshare_matching_engine::GridFees;
use gridshare_settlement::chain::Chain;
use gridshare_settlement::governance::{self, Params, Settings};
use gridshare_settlement::onchain::SubmitError;
use gridshare_storage::Db;

use crate::config::Config;

/// The governance contracts' decision rules, from `[governance]`.
pub fn settings(cfg: &Config) -> Settings {
    let g = cfg.governance;
    Settings {
        voting_delay_s: g.voting_delay_s,
        voting_period_s: g.voting_period_s,
        timelock_delay_s: g.timelock_delay_s,
        proposal_threshold: g.proposal_threshold,
        quorum_percent: g.quorum_percent,
    }
}

/// The deployment's values (version 0) from this configuration, and the bounds the contract
/// enforces on every later change: `(initial, minimum, maximum)`.
pub fn initial(cfg: &Config) -> (Params, Params, Params) {
    let u = |v: u64| U256::from(v);
    let r = &cfg.rewards;
    // one fee for every edge of the feeder tree, when the configuration has one
    let edges: Vec<i64> = cfg
        .market
        .engine
        .network
        .iter()
        .flatten()
        .filter(|n| n.parent.is_some())
        .map(|n| n.fee.0)
        .collect();
    let per_hop = match edges.first() {
        Some(&f) if f >= 0 && edges.iter().all(|&e| e == f) => f as u64,
        _ => 0,
    };
    let tariff = |t: i64| t.max(0) as u64;
    let initial = Params {
        feePerHop: u(per_hop),
        networkFee: u(0),
        importTariff: u(tariff(cfg.settlement.import_tariff)),
        exportTariff: u(tariff(cfg.settlement.export_tariff)),
        rewardGeneration: u(r.local_renewable_per_kwh),
        rewardDemandResponse: u(r.demand_response_per_kwh),
        rewardUptime: u(r.uptime_per_epoch),
        epochInitialBudget: u(r.initial_budget),
        halvingEpochs: u(r.halving_epochs.max(1)),
        uptimeThresholdBps: u((r.uptime_threshold_ppm / 100).min(10_000)),
        minBond: u(crate::slashing::MIN_BOND),
        unbondingCooldown: u(crate::slashing::UNBONDING_COOLDOWN_S),
        slashBurnBps: u(9_000),
        slashReporterBps: u(1_000),
        redemptionRate: u(0),
        redemptionBudget: u(0),
    };
    let mut minimum = initial.clone();
    let mut maximum = initial.clone();
    // fees and tariffs: 0 to 1 (currency) per kWh, or ten times today's when that is more
    let money = |v: U256| v.max(u(100_000)).saturating_mul(u(10)).max(u(1_000_000));
    for (lo, hi, now) in [
        (&mut minimum.feePerHop, &mut maximum.feePerHop, initial.feePerHop),
        (&mut minimum.networkFee, &mut maximum.networkFee, initial.networkFee),
        (
            &mut minimum.importTariff,
            &mut maximum.importTariff,
            initial.importTariff,
        ),
        (
            &mut minimum.exportTariff,
            &mut maximum.exportTariff,
            initial.exportTariff,
        ),
    ] {
        (*lo, *hi) = (U256::ZERO, money(now));
    }
    // rewards and the budget: from none to ten times today's (never more than the token's cap)
    let cap = u(r.cap);
    for (lo, hi, now) in [
        (
            &mut minimum.rewardGeneration,
            &mut maximum.rewardGeneration,
            initial.rewardGeneration,
        ),
        (
            &mut minimum.rewardDemandResponse,
            &mut maximum.rewardDemandResponse,
            initial.rewardDemandResponse,
        ),
        (
            &mut minimum.rewardUptime,
            &mut maximum.rewardUptime,
            initial.rewardUptime,
        ),
        (
            &mut minimum.epochInitialBudget,
            &mut maximum.epochInitialBudget,
            initial.epochInitialBudget,
        ),
    ] {
        (*lo, *hi) = (U256::ZERO, now.saturating_mul(u(10)).min(cap).max(now));
    }
    (minimum.halvingEpochs, maximum.halvingEpochs) = (u(1), u(100_000).max(initial.halvingEpochs));
    (minimum.uptimeThresholdBps, maximum.uptimeThresholdBps) = (u(5_000), u(10_000));
    if initial.uptimeThresholdBps < minimum.uptimeThresholdBps {
        minimum.uptimeThresholdBps = initial.uptimeThresholdBps;
    }
    (minimum.minBond, maximum.minBond) = (U256::ZERO, cap);
    (minimum.unbondingCooldown, maximum.unbondingCooldown) = (u(86_400), u(90 * 86_400));
    (minimum.slashBurnBps, maximum.slashBurnBps) = (U256::ZERO, u(10_000));
    (minimum.slashReporterBps, maximum.slashReporterBps) = (U256::ZERO, u(2_000));
    (minimum.redemptionRate, maximum.redemptionRate) = (U256::ZERO, u(1_000_000));
    (minimum.redemptionBudget, maximum.redemptionBudget) = (U256::ZERO, u(1_000_000_000_000));
    (initial, minimum, maximum)
}

/// The parameters as JSON: field names as in the contract, values as decimal strings.
pub fn to_json(p: &Params) -> String {
    let fields = [
        ("feePerHop", p.feePerHop),
        ("networkFee", p.networkFee),
        ("importTariff", p.importTariff),
        ("exportTariff", p.exportTariff),
        ("rewardGeneration", p.rewardGeneration),
        ("rewardDemandResponse", p.rewardDemandResponse),
        ("rewardUptime", p.rewardUptime),
        ("epochInitialBudget", p.epochInitialBudget),
        ("halvingEpochs", p.halvingEpochs),
        ("uptimeThresholdBps", p.uptimeThresholdBps),
        ("minBond", p.minBond),
        ("unbondingCooldown", p.unbondingCooldown),
        ("slashBurnBps", p.slashBurnBps),
        ("slashReporterBps", p.slashReporterBps),
        ("redemptionRate", p.redemptionRate),
        ("redemptionBudget", p.redemptionBudget),
    ];
    let map: serde_json::Map<String, serde_json::Value> = fields
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The grid fees a version of the parameters sets (None: version 0, the configuration's).
pub fn fees(version: u64, p: &Params) -> Option<GridFees> {
    if version == 0 {
        return None;
    }
    let fee = |v: U256| MicroPerKwh(i64::try_from(v).unwrap_or(i64::MAX));
    Some(GridFees {
        per_hop: fee(p.feePerHop),
        per_kwh: fee(p.networkFee),
    })
}

/// The bounds as JSON: `{"feePerHop": ["0", "1000000"], …}`.
pub fn bounds_json(minimum: &Params, maximum: &Params) -> String {
    let (lo, hi): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&to_json(minimum)).unwrap_or_default(),
        serde_json::from_str(&to_json(maximum)).unwrap_or_default(),
    );
    let map: serde_json::Map<String, serde_json::Value> = lo
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), serde_json::json!([v, hi[k]])))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The governor's name for a proposal state.
pub fn state_name(state: u8) -> &'static str {
    match state {
        0 => "pending",
        1 => "active",
        2 => "canceled",
        3 => "defeated",
        4 => "succeeded",
        5 => "queued",
        6 => "expired",
        7 => "executed",
        _ => "unknown",
    }
}

/// What the step keeps between runs.
#[derive(Debug, Default)]
pub struct GovernanceStep {
    /// The version applied last (None: none yet in this run).
    applied: Option<u64>,
}

impl GovernanceStep {
    /// Reads the parameters; a new version is stored and applied to what comes next.
    pub async fn run<C: Chain>(
        &mut self,
        chain: &C,
        db: &Db,
        market: &Market,
        parameters: Address,
    ) -> Result<(), GovernanceError> {
        let version = gridshare_settlement::onchain::view(
            chain,
            parameters,
            gridshare_settlement::contracts::GridParameters::versionCall {},
        )
        .await?;
        if self.applied == Some(version) {
            return Ok(());
        }
        let (version, p) = governance::read(chain, parameters).await?;
        let minimum = gridshare_settlement::onchain::view(
            chain,
            parameters,
            gridshare_settlement::contracts::GridParameters::minimumCall {},
        )
        .await?;
        let maximum = gridshare_settlement::onchain::view(
            chain,
            parameters,
            gridshare_settlement::contracts::GridParameters::maximumCall {},
        )
        .await?;
        let now = market.clock().now();
        let bounds = bounds_json(&minimum, &maximum);
        if gridshare_storage::parameters::record(db, version, now, &to_json(&p), &bounds).await? {
            tracing::info!(version, "new governed parameters seen on chain");
        }
        let fees = fees(version, &p);
        market.set_grid_fees(fees).await?;
        tracing::info!(version, ?fees, "grid fees for the books opened from now on");
        self.applied = Some(version);
        Ok(())
    }

    /// Takes the proposals made through the service along: proposes the waiting ones (from the
    /// service's account), casts the votes homeowners asked for while a vote is open
    /// ([`cast_votes`]), queues those that passed and executes those whose delay is over (both
    /// anyone may do), and stores each one's state and votes. Every step is looked up on chain
    /// first, so a run after a crash never does one twice (and a second `propose` of the same
    /// proposal would be refused by the governor anyway).
    pub async fn follow_proposals<C: Chain>(
        &mut self,
        chain: &C,
        db: &Db,
        wallet: &gridshare_settlement::onchain::Wallet,
        contracts: governance::GovernanceContracts,
        custody: &Custody,
        now: gridshare_domain::Timestamp,
    ) -> Result<(), GovernanceError> {
        use gridshare_settlement::contracts::GridGovernor;
        use gridshare_settlement::onchain::{Submitter, view};
        use gridshare_storage::parameters::update;
        let refuse = |id: u64, reason: String| async move {
            update(db, id, None, "refused", ("0", "0", "0"), Some(&reason), now).await
        };
        for stored in gridshare_storage::parameters::open(db).await? {
            let Some(proposal) = on_chain(&stored, contracts.parameters) else {
                refuse(stored.id, "the stored changes do not read".into()).await?;
                continue;
            };
            let id = proposal.id(chain, contracts.governor).await?;
            let snapshot = view(
                chain,
                contracts.governor,
                GridGovernor::proposalSnapshotCall { proposalId: id },
            )
            .await?;
            if snapshot.is_zero() {
                // a signer (and its nonce read) only when a transaction is due
                let mut s = Submitter::new(chain, wallet.clone()).await?;
                if let Err(e) = proposal.propose(&mut s, contracts.governor).await {
                    let reason = e.to_string();
                    tracing::warn!(proposal = stored.id, %reason, "the governor refused a proposal");
                    refuse(stored.id, reason).await?;
                    continue;
                }
                tracing::info!(proposal = stored.id, chain_id = %id, "proposal made on chain");
            }
            let mut state = governance::state(chain, contracts.governor, id).await?;
            cast_votes(
                chain,
                db,
                wallet,
                contracts.governor,
                custody,
                (&stored, id, state),
                now,
            )
            .await?;
            let mut error = None;
            if state == 4 || state == 5 {
                let mut s = Submitter::new(chain, wallet.clone()).await?;
                if state == 4 {
                    match proposal.queue(&mut s, contracts.governor).await {
                        Ok(()) => tracing::info!(proposal = stored.id, "proposal passed and queued in the timelock"),
                        Err(e) => error = Some(e.to_string()),
                    }
                } else {
                    // executable once the timelock's delay is over: until then the call is refused
                    match proposal.execute(&mut s, contracts.governor).await {
                        Ok(()) => tracing::info!(proposal = stored.id, "proposal executed"),
                        Err(e) if e.to_string().contains("TimelockUnexpectedOperationState") => {}
                        Err(e) => error = Some(e.to_string()),
                    }
                }
                state = governance::state(chain, contracts.governor, id).await?;
            }
            let votes = view(
                chain,
                contracts.governor,
                GridGovernor::proposalVotesCall { proposalId: id },
            )
            .await?;
            let votes = (
                votes.forVotes.to_string(),
                votes.againstVotes.to_string(),
                votes.abstainVotes.to_string(),
            );
            let chain_id = id.to_string();
            let unchanged = stored.chain_id.as_deref() == Some(chain_id.as_str())
                && stored.state == state_name(state)
                && stored.votes == votes
                && stored.error == error;
            if !unchanged {
                update(
                    db,
                    stored.id,
                    Some(&chain_id),
                    state_name(state),
                    (&votes.0, &votes.1, &votes.2),
                    error.as_deref(),
                    now,
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Casts the votes homeowners asked the service to cast on a proposal (`POST
/// /api/v1/governance/proposals/{id}/votes`), each as a ballot signed by the homeowner's custodial
/// account and sent, with its gas, from the service's account: while the vote is open (state 1),
/// every waiting vote is cast; once it has closed, a vote still waiting is refused, saying so;
/// before it opens they wait. A vote is recorded as cast when the governor has the account's vote
/// (looked up first, so a ballot sent before a crash is found, not sent again), with the votes it
/// carried (the account's delegated tokens at the proposal's snapshot). Never cast: a participant
/// with an address of their own (they vote with their wallet), or one whose recorded account is
/// not the one this seed derives (the service signs only for accounts it holds). A ballot the
/// governor refuses is recorded with its reason; a chain that does not answer leaves the vote
/// waiting for the next run.
async fn cast_votes<C: Chain>(
    chain: &C,
    db: &Db,
    wallet: &gridshare_settlement::onchain::Wallet,
    governor: Address,
    custody: &Custody,
    (stored, id, state): (&gridshare_storage::parameters::Proposal, U256, u8),
    now: gridshare_domain::Timestamp,
) -> Result<(), GovernanceError> {
    use gridshare_settlement::contracts::GridGovernor;
    use gridshare_settlement::onchain::{Submitter, view};
    use gridshare_storage::parameters::{vote_done, waiting_votes};
    if state == 0 {
        return Ok(()); // the vote has not opened yet
    }
    let waiting = waiting_votes(db, stored.id).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let refuse = |p: gridshare_domain::ParticipantId, reason: String| async move {
        tracing::info!(proposal = stored.id, participant = %p, %reason, "a vote was not cast");
        vote_done(db, (stored.id, p), "refused", (None, None, Some(&reason)), now).await
    };
    if state != 1 {
        for v in waiting {
            let reason = format!("the vote closed ({}) before this vote could be cast", state_name(state));
            refuse(v.participant, reason).await?;
        }
        return Ok(());
    }
    let snapshot = view(chain, governor, GridGovernor::proposalSnapshotCall { proposalId: id }).await?;
    let mut submitter = None;
    for v in waiting {
        let p = gridshare_storage::participants::get(db, v.participant).await?;
        if p.evm_address.is_some() {
            refuse(
                v.participant,
                "this participant has an address of their own and votes with their own wallet".into(),
            )
            .await?;
            continue;
        }
        let held = custody.address_hex(v.participant);
        let account = match p.custody_address.as_deref() {
            Some(a) if a.eq_ignore_ascii_case(&held) => {
                held.parse::<Address>()
                    .map_err(|e| gridshare_storage::StorageError::Corrupt {
                        field: "participants.custody_address",
                        reason: e.to_string(),
                    })?
            }
            _ => {
                refuse(
                    v.participant,
                    "the account recorded for this participant is not one this service holds the key of".into(),
                )
                .await?;
                continue;
            }
        };
        let weight = || async move {
            view(
                chain,
                governor,
                GridGovernor::getVotesCall {
                    account,
                    timepoint: snapshot,
                },
            )
            .await
            .map(|w| w.to_string())
        };
        let voted = view(
            chain,
            governor,
            GridGovernor::hasVotedCall {
                proposalId: id,
                account,
            },
        )
        .await?;
        if voted {
            // cast before a crash (or by the account some other way): found, not sent again
            let w = weight().await?;
            vote_done(db, (stored.id, v.participant), "cast", (Some(&w), None, None), now).await?;
            continue;
        }
        let key = gridshare_settlement::custody::signer(custody, v.participant)
            .map_err(|e| SubmitError::Sign(alloy::signers::Error::other(e)))?;
        let ballot = gridshare_settlement::custody::ballot(chain, governor, &key, id, v.support).await?;
        let s = match submitter.as_mut() {
            Some(s) => s,
            None => submitter.insert(Submitter::new(chain, wallet.clone()).await?),
        };
        match s.send(governor, ballot).await {
            Ok(receipt) => {
                let w = weight().await?;
                let tx = receipt.tx_hash.to_string();
                vote_done(db, (stored.id, v.participant), "cast", (Some(&w), Some(&tx), None), now).await?;
                tracing::info!(proposal = stored.id, participant = %v.participant, support = v.support, votes = %w, "vote cast for a homeowner");
            }
            Err(e @ (SubmitError::Reverted { .. } | SubmitError::CallReverted(_))) => {
                refuse(v.participant, e.to_string()).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A stored proposal as the governor takes it (None when its changes do not read).
fn on_chain(p: &gridshare_storage::parameters::Proposal, parameters: Address) -> Option<governance::Proposal> {
    let changes: Vec<serde_json::Value> = serde_json::from_str(&p.changes).ok()?;
    let changes = changes
        .iter()
        .map(|c| {
            let name = c["parameter"]
                .as_str()
                .filter(|n| gridshare_storage::parameters::NAMES.contains(n))?;
            let value: U256 = c["value"].as_str()?.parse().ok()?;
            Some((governance::key(name), value))
        })
        .collect::<Option<Vec<_>>>()?;
    (!changes.is_empty()).then(|| governance::Proposal {
        parameters,
        changes,
        description: p.description.clone(),
    })
}

/// Why the parameters could not be read or stored (tried again on the next run).
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    /// Reading the chain failed.
    #[error(transparent)]
    Chain(#[from] SubmitError),
    /// Storing failed.
    #[error(transparent)]
    Storage(#[from] gridshare_storage::StorageError),
    /// The market refused the fees (beyond its price range: the contract's bounds are wider than
    /// this market's prices) or has stopped; the books keep the fees they had.
    #[error("applying the governed grid fees: {0}")]
    Market(#[from] gridshare_market::MarketError),
}
