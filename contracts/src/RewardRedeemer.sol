// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {RewardToken} from "./RewardToken.sol";
import {EnergySettlementVault} from "./EnergySettlementVault.sol";
import {GridParameters} from "./GridParameters.sol";

/// @title RewardRedeemer
/// @notice Homes redeem reward tokens against their energy bill: the redeemer burns the
///         account's reward tokens and pays the account's debt in the `EnergySettlementVault`
///         out of a pool of settlement tokens it holds.
///
/// Rate. `GridParameters.redemptionRate` is the number of settlement micro-units credited per
/// whole reward token (10^6 reward micro-tokens), i.e. a rate with 6 decimals in settlement
/// micro-units per reward micro-token: redeeming `amount` reward micro-tokens credits
/// `floor(amount * rate / 1e6)` settlement micro-units (rounded down, in the pool's favour).
/// The rate and the per-epoch budget live in `GridParameters` (governance sets them within
/// fixed bounds; a value out of bounds is refused there with `OutOfBounds`) and are read at
/// every redemption.
///
/// Debt only. A redemption pays debt and never more: an account whose vault balance is zero or
/// positive gets `NothingOwed(account)`; a credit above what it owes is refused with
/// `ExceedsDebt(owed, credit)` (nothing is capped silently: the caller asks for a smaller
/// amount; `maxRedeemable` says how much fits).
///
/// Budget. Epoch `e = floor((block.timestamp - genesis) / epochLength)` (both constructor
/// parameters; before `genesis`, `NotStarted`). The settlement micro-units credited in an
/// epoch may not pass `GridParameters.redemptionBudget` (`BudgetExhausted(epoch, left)`); the
/// count starts again at zero in the next epoch. A budget lowered mid-epoch below what was
/// already credited leaves zero for the rest of the epoch.
///
/// Pool. Anyone (the operator) funds the pool with `fund` (or a plain transfer of settlement
/// tokens); the owner (the timelock) can take tokens out with `withdrawPool`. A credit larger
/// than the pool is refused with `InsufficientPool(pool, credit)`. The redeemer approves the
/// vault once, at construction, for its whole balance; each credit is a vault `depositFor`.
///
/// Who redeems. `redeem(amount)` redeems the caller's own tokens (approve the redeemer for
/// `amount` first: the burn is a `burnFrom`). `redeemWithPermit(account, amount, deadline,
/// v, r, s)` redeems for `account` with its EIP-2612 permit for exactly `amount` to this
/// redeemer, submitted by anyone: this is how the service redeems for custodial accounts. It
/// holds their keys, signs the permit off chain and sends the transaction from its own funded
/// address, so custodial accounts need no gas and there is no operator role able to burn
/// anyone's tokens without their signature. A permit already used (say front-run) is ignored
/// when the allowance it granted is still there.
contract RewardRedeemer is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice The fixed point of the redemption rate (6 decimals).
    uint256 public constant RATE_SCALE = 1e6;

    RewardToken public immutable reward;
    EnergySettlementVault public immutable vault;
    IERC20 public immutable settlementToken;
    GridParameters public immutable parameters;
    /// @notice The start of epoch 0 (unix seconds).
    uint64 public immutable genesis;
    /// @notice The length of an epoch (seconds).
    uint64 public immutable epochLength;

    /// @notice Settlement micro-units credited in each epoch.
    mapping(uint64 epoch => uint256) public creditedIn;

    /// @notice `burned` reward micro-tokens of `account` redeemed for `credited` settlement
    ///         micro-units at `rate`; `owedBefore` is the account's debt before the credit and
    ///         `creditedInEpoch` the epoch's total after it.
    event Redeemed(
        address indexed account,
        address indexed caller,
        uint64 indexed epoch,
        uint256 burned,
        uint256 credited,
        uint256 rate,
        uint256 owedBefore,
        uint256 creditedInEpoch
    );
    event PoolFunded(address indexed from, uint256 amount);
    event PoolWithdrawn(address indexed to, uint256 amount);

    error ZeroAddress();
    error ZeroAmount();
    error InvalidEpochLength();
    error NotStarted(uint64 genesis);
    error ZeroCredit(uint256 amount, uint256 rate);
    error NothingOwed(address account);
    error ExceedsDebt(uint256 owed, uint256 credit);
    error BudgetExhausted(uint64 epoch, uint256 left);
    error InsufficientPool(uint256 pool, uint256 credit);

    /// @param reward_ the reward token (burnable, with permit)
    /// @param vault_ the settlement vault; its token is the pool's token
    /// @param parameters_ where the rate and the budget are read
    /// @param owner_ the timelock (may withdraw from the pool)
    /// @param genesis_ the start of epoch 0, unix seconds
    /// @param epochLength_ seconds per epoch, > 0
    constructor(
        RewardToken reward_,
        EnergySettlementVault vault_,
        GridParameters parameters_,
        address owner_,
        uint64 genesis_,
        uint64 epochLength_
    ) Ownable(owner_) {
        if (address(reward_) == address(0) || address(vault_) == address(0) || address(parameters_) == address(0)) {
            revert ZeroAddress();
        }
        if (epochLength_ == 0) revert InvalidEpochLength();
        reward = reward_;
        vault = vault_;
        parameters = parameters_;
        genesis = genesis_;
        epochLength = epochLength_;
        IERC20 token = vault_.token();
        settlementToken = token;
        token.forceApprove(address(vault_), type(uint256).max);
    }

    // ----------------------------------------------------------------------- reads

    /// @notice The current epoch; `NotStarted` before genesis.
    function currentEpoch() public view returns (uint64) {
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < genesis) revert NotStarted(genesis);
        return uint64((block.timestamp - genesis) / epochLength);
    }

    /// @notice Settlement micro-units the pool holds.
    function pool() public view returns (uint256) {
        return settlementToken.balanceOf(address(this));
    }

    /// @notice The current epoch and what is left of its budget.
    function budgetLeft() public view returns (uint64 epoch, uint256 left) {
        epoch = currentEpoch();
        (, uint256 budget) = parameters.redemption();
        left = _left(budget, creditedIn[epoch]);
    }

    /// @notice The settlement micro-units `amount` reward micro-tokens would credit now.
    function quote(uint256 amount) public view returns (uint256 credit) {
        (uint256 rate,) = parameters.redemption();
        return Math.mulDiv(amount, rate, RATE_SCALE);
    }

    /// @notice The largest `amount` `account` can redeem now (limited by its debt, the
    ///         epoch's budget left, the pool and its reward balance) and what it would credit.
    function maxRedeemable(address account) external view returns (uint256 amount, uint256 credit) {
        (uint256 rate, uint256 budget) = parameters.redemption();
        int256 balance = vault.balanceOf(account);
        if (rate == 0 || balance >= 0) return (0, 0);
        // balance < 0 here, and an int128 in the vault: -balance is positive and fits.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 cap = Math.min(Math.min(uint256(-balance), _left(budget, creditedIn[currentEpoch()])), pool());
        amount = Math.min(Math.mulDiv(cap, RATE_SCALE, rate), reward.balanceOf(account));
        credit = Math.mulDiv(amount, rate, RATE_SCALE);
    }

    // --------------------------------------------------------------------- redeem

    /// @notice Redeem `amount` of the caller's reward micro-tokens (approved to this contract)
    ///         against the caller's debt in the vault. Returns the settlement micro-units credited.
    function redeem(uint256 amount) external nonReentrant returns (uint256 credited) {
        return _redeem(msg.sender, amount);
    }

    /// @notice Redeem `amount` of `account`'s reward micro-tokens with its permit (value
    ///         `amount`, spender this contract); anyone may submit it.
    function redeemWithPermit(address account, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
        returns (uint256 credited)
    {
        // A permit front-run by someone else still left the allowance: then go on.
        try reward.permit(account, address(this), amount, deadline, v, r, s) {} catch {}
        return _redeem(account, amount);
    }

    function _redeem(address account, uint256 amount) private returns (uint256 credit) {
        if (amount == 0) revert ZeroAmount();
        uint64 epoch = currentEpoch();
        (uint256 rate, uint256 budget) = parameters.redemption();
        credit = Math.mulDiv(amount, rate, RATE_SCALE);
        if (credit == 0) revert ZeroCredit(amount, rate);
        int256 balance = vault.balanceOf(account);
        if (balance >= 0) revert NothingOwed(account);
        // balance < 0 here, and an int128 in the vault: -balance is positive and fits.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint256 owed = uint256(-balance);
        if (credit > owed) revert ExceedsDebt(owed, credit);
        uint256 total = creditedIn[epoch] + credit;
        if (total > budget) revert BudgetExhausted(epoch, _left(budget, total - credit));
        {
            uint256 available = pool();
            if (credit > available) revert InsufficientPool(available, credit);
        }
        creditedIn[epoch] = total;
        reward.burnFrom(account, amount);
        vault.depositFor(account, credit);
        emit Redeemed(account, msg.sender, epoch, amount, credit, rate, owed, total);
    }

    function _left(uint256 budget, uint256 spent) private pure returns (uint256) {
        return budget > spent ? budget - spent : 0;
    }

    // ----------------------------------------------------------------------- pool

    /// @notice Add `amount` settlement micro-units (approved beforehand) to the pool.
    function fund(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        settlementToken.safeTransferFrom(msg.sender, address(this), amount);
        emit PoolFunded(msg.sender, amount);
    }

    /// @notice Take `amount` out of the pool to `to` (owner: the timelock).
    function withdrawPool(address to, uint256 amount) external onlyOwner {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        settlementToken.safeTransfer(to, amount);
        emit PoolWithdrawn(to, amount);
    }
}
