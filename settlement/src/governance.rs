//! Governance of the market's parameters on chain (issue 22): the `GridParameters` contract holds
//! the numbers that decide who earns what (grid fees, tariffs, reward rates, the budget schedule,
//! bond and slashing rules, redemption), each within bounds fixed at deployment; it is owned by a
//! `TimelockController` whose only proposer is the `GridGovernor`, voting with the reward token.
//! Nobody else, the service included, can change a parameter: the service renounces the
//! timelock's admin role at deployment.
//!
//! The service reads the parameters ([`read`]) and applies them going forward; the functions
//! here also drive a proposal through its life (propose, vote, queue, execute) for the dashboard
//! and the tests.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::sol_types::{SolCall, SolConstructor};

use crate::chain::Chain;
use crate::contracts::{GridGovernor, GridParameters, TimelockController};
use crate::onchain::{SubmitError, Submitter, view};

pub use crate::contracts::GridParameters::Params;

/// The governance contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GovernanceContracts {
    /// The parameters.
    pub parameters: Address,
    /// The timelock that owns them.
    pub timelock: Address,
    /// The governor, the timelock's only proposer.
    pub governor: Address,
}

/// How proposals are decided (seconds: the reward token's clock is the block's timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// From a proposal to the start of its vote.
    pub voting_delay_s: u64,
    /// How long the vote lasts.
    pub voting_period_s: u64,
    /// From a passed proposal's queuing to when it may be executed.
    pub timelock_delay_s: u64,
    /// Votes (µ-token) an account needs to propose.
    pub proposal_threshold: u64,
    /// Share of all votes that must take part, percent.
    pub quorum_percent: u64,
}

/// The key of a parameter as the contract names it (ASCII, left-aligned in 32 bytes).
pub fn key(name: &str) -> B256 {
    B256::right_padding_from(name.as_bytes())
}

/// Deploys the timelock, the governor over `token`'s votes and the parameters (owned by the
/// timelock) with `initial` values within `[minimum, maximum]`; then gives up the timelock's admin
/// role, so that only a passed proposal changes anything. The parameters pass every change of the
/// bond and slashing rules on to `staking` (`Address::ZERO`: none), which must give them its
/// `PARAMETERS_ROLE` ([`bind_staking`]).
pub async fn deploy<C: Chain>(
    s: &mut Submitter<'_, C>,
    token: Address,
    staking: Address,
    settings: Settings,
    initial: Params,
    minimum: Params,
    maximum: Params,
) -> Result<GovernanceContracts, SubmitError> {
    let me = s.address();
    let timelock = s
        .deploy(
            &TimelockController::BYTECODE,
            TimelockController::constructorCall {
                minDelay: U256::from(settings.timelock_delay_s),
                proposers: vec![],
                // anyone may execute a passed, queued proposal once its delay is over
                executors: vec![Address::ZERO],
                admin: me,
            }
            .abi_encode(),
        )
        .await?;
    let governor = s
        .deploy(
            &GridGovernor::BYTECODE,
            GridGovernor::constructorCall {
                token,
                timelock,
                votingDelaySeconds: alloy::primitives::aliases::U48::from(settings.voting_delay_s),
                votingPeriodSeconds: u32::try_from(settings.voting_period_s).unwrap_or(u32::MAX),
                proposalThreshold_: U256::from(settings.proposal_threshold),
                quorumPercent: U256::from(settings.quorum_percent),
            }
            .abi_encode(),
        )
        .await?;
    let parameters = s
        .deploy(
            &GridParameters::BYTECODE,
            GridParameters::constructorCall {
                owner_: timelock,
                staking_: staking,
                initial,
                minimum_: minimum,
                maximum_: maximum,
            }
            .abi_encode(),
        )
        .await?;
    for role in [
        view(s.chain(), timelock, TimelockController::PROPOSER_ROLECall {}).await?,
        view(s.chain(), timelock, TimelockController::CANCELLER_ROLECall {}).await?,
    ] {
        s.send(
            timelock,
            TimelockController::grantRoleCall {
                role,
                account: governor,
            },
        )
        .await?;
    }
    let admin = view(s.chain(), timelock, TimelockController::DEFAULT_ADMIN_ROLECall {}).await?;
    s.send(
        timelock,
        TimelockController::renounceRoleCall {
            role: admin,
            callerConfirmation: me,
        },
    )
    .await?;
    Ok(GovernanceContracts {
        parameters,
        timelock,
        governor,
    })
}

/// Gives `parameters` the staking contract's `PARAMETERS_ROLE`, so that the bond and slashing
/// rules the community sets there are the ones `staking` enforces; sent by the staking
/// contract's admin (the deployer, before it hands the admin role to the timelock). Returns
/// whether it granted it: false when the parameters already hold it, do not pass their rules on
/// to this staking contract (deployed before they did, or for another one), or the sender is no
/// longer the staking contract's admin (then only a proposal can grant it).
pub async fn bind_staking<C: Chain>(
    s: &mut Submitter<'_, C>,
    parameters: Address,
    staking: Address,
) -> Result<bool, SubmitError> {
    use crate::contracts::GatewayStaking;
    match view(s.chain(), parameters, GridParameters::stakingCall {}).await {
        Ok(bound) if bound == staking => {}
        Ok(_) | Err(SubmitError::CallReverted(_)) => return Ok(false),
        Err(e) => return Err(e),
    }
    let role = view(s.chain(), staking, GatewayStaking::PARAMETERS_ROLECall {}).await?;
    let held = view(
        s.chain(),
        staking,
        GatewayStaking::hasRoleCall {
            role,
            account: parameters,
        },
    )
    .await?;
    let admin = view(s.chain(), staking, GatewayStaking::DEFAULT_ADMIN_ROLECall {}).await?;
    let me = s.address();
    let may = view(
        s.chain(),
        staking,
        GatewayStaking::hasRoleCall {
            role: admin,
            account: me,
        },
    )
    .await?;
    if held || !may {
        return Ok(false);
    }
    s.send(
        staking,
        GatewayStaking::grantRoleCall {
            role,
            account: parameters,
        },
    )
    .await?;
    Ok(true)
}

/// The parameters in force and how many changes were executed so far.
pub async fn read<C: Chain>(chain: &C, parameters: Address) -> Result<(u64, Params), SubmitError> {
    let version = view(chain, parameters, GridParameters::versionCall {}).await?;
    let current = view(chain, parameters, GridParameters::currentCall {}).await?;
    Ok((version, current))
}

/// One proposal: calls of `GridParameters.set` and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The parameters contract.
    pub parameters: Address,
    /// (key, new value) pairs.
    pub changes: Vec<(B256, U256)>,
    /// What it is for, in words (part of its identity).
    pub description: String,
}

impl Proposal {
    fn calls(&self) -> (Vec<Address>, Vec<U256>, Vec<Bytes>) {
        let targets = vec![self.parameters; self.changes.len()];
        let values = vec![U256::ZERO; self.changes.len()];
        let data = self
            .changes
            .iter()
            .map(|&(key, value)| Bytes::from(GridParameters::setCall { key, value }.abi_encode()))
            .collect();
        (targets, values, data)
    }

    fn description_hash(&self) -> B256 {
        keccak256(self.description.as_bytes())
    }

    /// Its id, as the governor computes it.
    pub async fn id<C: Chain>(&self, chain: &C, governor: Address) -> Result<U256, SubmitError> {
        let (targets, values, calldatas) = self.calls();
        view(
            chain,
            governor,
            GridGovernor::hashProposalCall {
                targets,
                values,
                calldatas,
                descriptionHash: self.description_hash(),
            },
        )
        .await
    }

    /// Proposes it (the sender needs the proposal threshold in delegated votes).
    pub async fn propose<C: Chain>(&self, s: &mut Submitter<'_, C>, governor: Address) -> Result<U256, SubmitError> {
        let (targets, values, calldatas) = self.calls();
        s.send(
            governor,
            GridGovernor::proposeCall {
                targets,
                values,
                calldatas,
                description: self.description.clone(),
            },
        )
        .await?;
        self.id(s.chain(), governor).await
    }

    /// Queues it in the timelock once it passed.
    pub async fn queue<C: Chain>(&self, s: &mut Submitter<'_, C>, governor: Address) -> Result<(), SubmitError> {
        let (targets, values, calldatas) = self.calls();
        s.send(
            governor,
            GridGovernor::queueCall {
                targets,
                values,
                calldatas,
                descriptionHash: self.description_hash(),
            },
        )
        .await?;
        Ok(())
    }

    /// Executes it once the timelock's delay is over (anyone may).
    pub async fn execute<C: Chain>(&self, s: &mut Submitter<'_, C>, governor: Address) -> Result<(), SubmitError> {
        let (targets, values, calldatas) = self.calls();
        s.send(
            governor,
            GridGovernor::executeCall {
                targets,
                values,
                calldatas,
                descriptionHash: self.description_hash(),
            },
        )
        .await?;
        Ok(())
    }
}

/// A vote: against, for, abstain (OpenZeppelin's simple counting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Against.
    Against = 0,
    /// For.
    For = 1,
    /// Abstain.
    Abstain = 2,
}

/// Casts the sender's vote on a proposal.
pub async fn vote<C: Chain>(
    s: &mut Submitter<'_, C>,
    governor: Address,
    proposal: U256,
    support: Support,
) -> Result<(), SubmitError> {
    s.send(
        governor,
        GridGovernor::castVoteCall {
            proposalId: proposal,
            support: support as u8,
        },
    )
    .await?;
    Ok(())
}

/// A proposal's state as the governor reports it: 0 pending, 1 active, 2 canceled, 3 defeated,
/// 4 succeeded, 5 queued, 6 expired, 7 executed.
pub async fn state<C: Chain>(chain: &C, governor: Address, proposal: U256) -> Result<u8, SubmitError> {
    view(chain, governor, GridGovernor::stateCall { proposalId: proposal }).await
}

/// Hands the admin role of `contracts` (AccessControl: the reward token, the distributor, the
/// staking contract) from the sender to the timelock, so that only a passed proposal can grant a
/// minter, change the bond rules or the slashing shares. Idempotent: a contract the sender is no
/// longer admin of is left as it is. The registry is not among them: the service commissions
/// gateways and keeps its admin role to grant installers. Returns how many were handed over.
pub async fn hand_over<C: Chain>(
    s: &mut Submitter<'_, C>,
    contracts: &[Address],
    timelock: Address,
) -> Result<usize, SubmitError> {
    use crate::contracts::RewardToken as AccessControlled; // every GridShare AccessControl has this ABI
    let me = s.address();
    let mut n = 0;
    for &c in contracts {
        let admin = view(s.chain(), c, AccessControlled::DEFAULT_ADMIN_ROLECall {}).await?;
        if !view(
            s.chain(),
            c,
            AccessControlled::hasRoleCall {
                role: admin,
                account: me,
            },
        )
        .await?
        {
            continue;
        }
        s.send(
            c,
            AccessControlled::grantRoleCall {
                role: admin,
                account: timelock,
            },
        )
        .await?;
        s.send(
            c,
            AccessControlled::renounceRoleCall {
                role: admin,
                callerConfirmation: me,
            },
        )
        .await?;
        n += 1;
    }
    Ok(n)
}
