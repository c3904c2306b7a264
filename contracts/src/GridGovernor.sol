// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from
    "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

/// @title GridGovernor
/// @notice On-chain governance of GridShare's parameters: OpenZeppelin's Governor over the
///         delegated votes of `RewardToken`, executing through a `TimelockController`.
///
/// Clock. The governor takes the token's clock, the block timestamp, so `votingDelay`,
/// `votingPeriod` (and the timelock's `getMinDelay`) are seconds. Voting power is read at the
/// proposal's snapshot (`proposalSnapshot` = proposal time + voting delay): only tokens
/// delegated before then count.
///
/// Lifecycle. `propose` (the proposer needs `proposalThreshold` votes) -> after `votingDelay`,
/// `castVote` (0 against, 1 for, 2 abstain) for `votingPeriod` -> if quorum (for + abstain
/// >= `quorumNumerator`% of the total supply at the snapshot) is reached and for > against,
/// `queue` schedules the calls in the timelock -> after its minimum delay, `execute` (anyone)
/// makes them, from the timelock. A call that reverts (say `GridParameters.set` with a value
/// out of bounds) makes `execute` revert with the same error and changes nothing.
///
/// Deployment. The timelock is deployed with this governor as its only proposer and canceller,
/// executor address(0) (anyone may execute a ready operation) and no admin once set up; the
/// timelock owns `GridParameters` (and whatever else governance controls).
contract GridGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    /// @param token the RewardToken (its ERC20Votes checkpoints)
    /// @param timelock the TimelockController that executes passed proposals
    /// @param votingDelaySeconds seconds between a proposal and the start of voting
    /// @param votingPeriodSeconds seconds voting stays open
    /// @param proposalThreshold_ votes (reward micro-tokens) needed to propose
    /// @param quorumPercent percent of the supply at the snapshot that must vote for or abstain
    constructor(
        IVotes token,
        TimelockController timelock,
        uint48 votingDelaySeconds,
        uint32 votingPeriodSeconds,
        uint256 proposalThreshold_,
        uint256 quorumPercent
    )
        Governor("GridGovernor")
        GovernorSettings(votingDelaySeconds, votingPeriodSeconds, proposalThreshold_)
        GovernorVotes(token)
        GovernorVotesQuorumFraction(quorumPercent)
        GovernorTimelockControl(timelock)
    {}

    function votingDelay() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingDelay();
    }

    function votingPeriod() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingPeriod();
    }

    function quorum(uint256 timepoint)
        public
        view
        override(Governor, GovernorVotesQuorumFraction)
        returns (uint256)
    {
        return super.quorum(timepoint);
    }

    function state(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (ProposalState)
    {
        return super.state(proposalId);
    }

    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
