// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {GatewayRegistry} from "./GatewayRegistry.sol";

/// @title GatewayStaking
/// @notice The bond behind a gateway: reward tokens locked for a gateway key so that it earns
///         uptime and generation rewards. Anyone may bond for a gateway (its owner, its
///         installer, the service for a custodial participant); each bonder's part is recorded
///         per (gateway, bonder) and only that bonder can unbond and withdraw it.
///
/// Rules.
/// * `bond` needs a gateway that is active in the `GatewayRegistry` (`GatewayNotActive`).
///   Unbonding and withdrawing never look at the registry: a revoked gateway's bond comes back
///   after the cool-down (unless slashed).
/// * `isBonded(gateway)` is true when the gateway's active bond (all bonders together, funds in
///   cool-down excluded) is at least `minBond`. With `minBond == 0` (pilots) every gateway
///   counts as bonded, even one nobody bonded for. Rewards need both `registry.isActive` and
///   `isBonded`.
/// * A bond that would leave the gateway's active total below `minBond` is refused
///   (`BelowMinimumBond`): the first bond must reach the minimum by itself. Unbonding is never
///   refused for that reason (a bonder may always leave; the gateway then stops being bonded).
/// * `requestUnbond` moves an amount from active to cool-down; `withdraw` pays the bonder's whole
///   cool-down balance once `unlockAt` has passed (`CooldownNotOver` before). A new request
///   while funds are cooling down adds to them and restarts the cool-down for all of them.
///   `cooldownSeconds` is set by the admin; the service sets it to N epochs x the epoch length.
///   A change applies to later requests only.
/// * Funds in cool-down remain slashable.
///
/// Accounting. Each gateway has two pools, active and cool-down; a bonder holds shares of each.
/// A share's value is `pool amount / pool shares` (with a virtual share and unit, so an empty
/// or wiped pool prices new shares sanely); rounding always favours the pool, and a pool never
/// holds more units than it has shares (a share is worth at most one unit: slashing only lowers
/// the price and rounding never lifts it above one), so any non-zero amount buys at least one
/// share. Slashing a
/// gateway is therefore a proportional cut of its two pool amounts (`_slash`), with no loop
/// over bonders. There is no external slashing entry point yet: the next issue adds
/// `slash(gateway, ...)` (with its evidence rules and role) on top of `_slash`.
contract GatewayStaking is AccessControl {
    using SafeERC20 for IERC20;

    /// One gateway's pools: amounts in token units, shares in pool shares.
    struct Pool {
        uint256 active;
        uint256 activeShares;
        uint256 unbonding;
        uint256 unbondingShares;
    }

    /// One bonder's part in one gateway's pools.
    struct Position {
        uint256 activeShares;
        uint256 unbondingShares;
        uint64 unlockAt; // unix seconds from which the cool-down balance can be withdrawn
    }

    /// @notice The bonded token (the reward token).
    IERC20 public immutable token;
    /// @notice The registry in which a gateway must be active to receive a new bond.
    GatewayRegistry public immutable registry;
    /// @notice The least active bond for which `isBonded` is true (0: every gateway is bonded).
    uint256 public minBond;
    /// @notice The cool-down between `requestUnbond` and `withdraw`, in seconds.
    uint64 public cooldownSeconds;
    /// @notice Tokens taken by slashing and not owed to any bonder (their use is for the
    ///         slashing issue to decide).
    uint256 public slashedBalance;

    mapping(address gateway => Pool) private _pools;
    mapping(address gateway => mapping(address bonder => Position)) private _positions;

    uint256 private constant BPS = 10_000;

    /// @notice `bonder` bonded `amount` for `gateway`, whose active bond is now `activeTotal`.
    event Bonded(address indexed gateway, address indexed bonder, uint256 amount, uint256 activeTotal);
    /// @notice `bonder` moved `amount` of its bond for `gateway` to cool-down, until `unlockAt`.
    event UnbondRequested(address indexed gateway, address indexed bonder, uint256 amount, uint64 unlockAt);
    /// @notice `bonder` withdrew `amount` of its cooled-down bond for `gateway`.
    event Withdrawn(address indexed gateway, address indexed bonder, uint256 amount);
    /// @notice `amount` was taken from `gateway`'s active and cool-down pools (`bps` of each).
    event Slashed(address indexed gateway, uint256 bps, uint256 amount);
    /// @notice The minimum bond changed.
    event MinBondChanged(uint256 previous, uint256 current);
    /// @notice The cool-down changed (for later requests).
    event CooldownChanged(uint64 previous, uint64 current);

    /// @notice A zero address where a contract or account is required.
    error ZeroAddress();
    /// @notice A zero amount.
    error ZeroAmount();
    /// @notice The gateway is not active in the registry, so it cannot receive a new bond.
    error GatewayNotActive(address gateway);
    /// @notice The bond would leave the gateway's active total below the minimum.
    error BelowMinimumBond(address gateway, uint256 activeTotal, uint256 minBond);
    /// @notice The bonder's active bond for the gateway is only `available`.
    error InsufficientBond(address gateway, address bonder, uint256 available);
    /// @notice The bonder has nothing in cool-down for the gateway.
    error NothingToWithdraw(address gateway, address bonder);
    /// @notice The cool-down runs until `unlockAt` (unix seconds).
    error CooldownNotOver(address gateway, address bonder, uint64 unlockAt);
    /// @notice A slashing share above 100 % (10,000 basis points).
    error InvalidBps(uint256 bps);

    /// @param token_ the bonded token (the reward token)
    /// @param registry_ the gateway registry
    /// @param admin holds DEFAULT_ADMIN_ROLE (sets the minimum bond and the cool-down)
    /// @param minBond_ initial minimum bond (0 allowed)
    /// @param cooldownSeconds_ initial cool-down
    constructor(IERC20 token_, GatewayRegistry registry_, address admin, uint256 minBond_, uint64 cooldownSeconds_) {
        if (address(token_) == address(0) || address(registry_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        token = token_;
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        minBond = minBond_;
        cooldownSeconds = cooldownSeconds_;
        emit MinBondChanged(0, minBond_);
        emit CooldownChanged(0, cooldownSeconds_);
    }

    // ---------------------------------------------------------------- parameters

    /// @notice Set the minimum bond (0 allowed: every gateway counts as bonded).
    function setMinBond(uint256 minBond_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit MinBondChanged(minBond, minBond_);
        minBond = minBond_;
    }

    /// @notice Set the cool-down for later unbond requests (the service: N epochs x epoch length).
    function setCooldown(uint64 cooldownSeconds_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit CooldownChanged(cooldownSeconds, cooldownSeconds_);
        cooldownSeconds = cooldownSeconds_;
    }

    // ---------------------------------------------------------------- bonding

    /// @notice Bond `amount` tokens of the caller (approved beforehand) for `gateway`, which must
    ///         be active in the registry; the gateway's active total must reach `minBond`.
    function bond(address gateway, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        if (!registry.isActive(gateway)) revert GatewayNotActive(gateway);
        Pool storage pool = _pools[gateway];
        uint256 total = pool.active + amount;
        if (total < minBond) revert BelowMinimumBond(gateway, total, minBond);
        uint256 shares = _toShares(amount, pool.active, pool.activeShares, Math.Rounding.Floor);
        pool.active = total;
        pool.activeShares += shares;
        _positions[gateway][msg.sender].activeShares += shares;
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Bonded(gateway, msg.sender, amount, total);
    }

    /// @notice Move `amount` of the caller's active bond for `gateway` to cool-down; it can be
    ///         withdrawn `cooldownSeconds` from now (this restarts the cool-down of anything the
    ///         caller already has cooling down for the gateway).
    /// @return unlockAt when the cool-down ends (unix seconds)
    function requestUnbond(address gateway, uint256 amount) external returns (uint64 unlockAt) {
        if (amount == 0) revert ZeroAmount();
        Pool storage pool = _pools[gateway];
        Position storage pos = _positions[gateway][msg.sender];
        uint256 shares = _toShares(amount, pool.active, pool.activeShares, Math.Rounding.Ceil);
        if (shares > pos.activeShares) {
            revert InsufficientBond(gateway, msg.sender, _toAmount(pos.activeShares, pool.active, pool.activeShares));
        }
        uint256 cooling = _toShares(amount, pool.unbonding, pool.unbondingShares, Math.Rounding.Floor);
        pool.active -= amount;
        pool.activeShares -= shares;
        pos.activeShares -= shares;
        pool.unbonding += amount;
        pool.unbondingShares += cooling;
        pos.unbondingShares += cooling;
        unlockAt = uint64(block.timestamp) + cooldownSeconds;
        pos.unlockAt = unlockAt;
        emit UnbondRequested(gateway, msg.sender, amount, unlockAt);
    }

    /// @notice Pay the caller its whole cool-down balance for `gateway` (less any slashing),
    ///         once the cool-down is over.
    /// @return amount the amount paid
    function withdraw(address gateway) external returns (uint256 amount) {
        Pool storage pool = _pools[gateway];
        Position storage pos = _positions[gateway][msg.sender];
        uint256 shares = pos.unbondingShares;
        if (shares == 0) revert NothingToWithdraw(gateway, msg.sender);
        // A cool-down lasts epochs (days in production): a validator's few seconds do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < pos.unlockAt) revert CooldownNotOver(gateway, msg.sender, pos.unlockAt);
        amount = _toAmount(shares, pool.unbonding, pool.unbondingShares);
        pool.unbonding -= amount;
        pool.unbondingShares -= shares;
        pos.unbondingShares = 0;
        pos.unlockAt = 0;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(gateway, msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice True when `gateway`'s active bond is at least `minBond` (always with minBond 0).
    function isBonded(address gateway) external view returns (bool) {
        return _pools[gateway].active >= minBond;
    }

    /// @notice `gateway`'s active bond, all bonders together (cool-down excluded).
    function activeBond(address gateway) external view returns (uint256) {
        return _pools[gateway].active;
    }

    /// @notice `gateway`'s bond in cool-down, all bonders together (still slashable).
    function unbondingBond(address gateway) external view returns (uint256) {
        return _pools[gateway].unbonding;
    }

    /// @notice `gateway`'s pools: amounts and shares, active and in cool-down.
    function poolOf(address gateway) external view returns (Pool memory) {
        return _pools[gateway];
    }

    /// @notice `bonder`'s part of `gateway`'s bond: active, in cool-down, and when the cool-down
    ///         ends (0 when nothing is cooling down).
    function bondOf(address gateway, address bonder)
        external
        view
        returns (uint256 active, uint256 unbonding, uint64 unlockAt)
    {
        Pool storage pool = _pools[gateway];
        Position storage pos = _positions[gateway][bonder];
        active = _toAmount(pos.activeShares, pool.active, pool.activeShares);
        unbonding = _toAmount(pos.unbondingShares, pool.unbonding, pool.unbondingShares);
        unlockAt = pos.unlockAt;
    }

    // ---------------------------------------------------------------- slashing (internal)

    /// Take `bps` / 10,000 of `gateway`'s active and cool-down pools: every bonder of the
    /// gateway loses the same share of both. The tokens stay here, counted in `slashedBalance`.
    /// No external entry point yet (the slashing issue adds one).
    function _slash(address gateway, uint256 bps) internal returns (uint256 taken) {
        if (bps > BPS) revert InvalidBps(bps);
        Pool storage pool = _pools[gateway];
        uint256 fromActive = pool.active * bps / BPS;
        uint256 fromUnbonding = pool.unbonding * bps / BPS;
        pool.active -= fromActive;
        pool.unbonding -= fromUnbonding;
        taken = fromActive + fromUnbonding;
        slashedBalance += taken;
        emit Slashed(gateway, bps, taken);
    }

    /// Shares worth `amount` in a pool holding `total` for `shares` shares (one virtual unit and
    /// share, so an empty or wiped pool still has a price).
    function _toShares(uint256 amount, uint256 total, uint256 shares, Math.Rounding rounding)
        private
        pure
        returns (uint256)
    {
        return Math.mulDiv(amount, shares + 1, total + 1, rounding);
    }

    /// The amount `held` shares are worth (rounded down).
    function _toAmount(uint256 held, uint256 total, uint256 shares) private pure returns (uint256) {
        return Math.mulDiv(held, total + 1, shares + 1);
    }
}
