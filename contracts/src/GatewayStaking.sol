// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
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
/// * Funds in cool-down remain slashable (while the gateway's key is active).
///
/// Slashing for equivocation. A gateway signs every envelope it sends over
/// `keccak256("GridShare envelope v1\0" ‖ gateway u64 BE ‖ seq u64 BE ‖ ts i64 BE ‖ payload)`
/// (`envelopeDigest`; the Rust `domain::envelope` digest, NUL byte included) with its key, whose
/// address is its key in the registry; the signature is r ‖ s ‖ v (65 bytes, v 27 or 28, low s,
/// no eth_sign prefix). Two envelopes for the same gateway id and sequence number with different
/// digests, both signed by the same active key, prove that the key equivocated. Anyone may send
/// such a pair to `slashEquivocation`; it is refused when the two are not for the same slot
/// (`NotSameSlot`), have the same digest (`SameContent`), a signature is malformed, malleable
/// (high s) or does not recover (`BadSignature(0)` for the first, `BadSignature(1)` for the
/// second), the signers differ (`DifferentSigners`), the same two digests, in either order, were
/// used before (`EvidenceUsed`), or the signer is not active in the registry (`GatewayNotActive`:
/// an unknown key, or one already revoked, by slashing or by its installer). Otherwise:
/// * the signer key's bond, active and in cool-down alike, loses `slashBurnBps + slashReporterBps`
///   (`_slash`: every bonder loses the same share); of what is taken, the reporter (the caller)
///   receives `taken × slashReporterBps / (slashBurnBps + slashReporterBps)` (rounded down) and
///   the rest is burnt (the token's total supply goes down); what is not taken stays with the
///   bonders, who unbond and withdraw it as usual. Nothing stays in this contract.
/// * the key is revoked in the registry (`revokeForMisbehaviour`: this contract must hold the
///   registry's `SLASHER_ROLE`, granted at deployment), so it earns nothing more, takes no new
///   bond and cannot be slashed twice. A key with no bond is revoked all the same (nothing is
///   burnt or paid).
/// The shares are set by the admin (`setSlashShares`, sum at most 10,000 basis points);
/// defaults: 9,000 burnt, 1,000 to the reporter (the whole bond is taken). The bonded token must
/// be burnable (`ERC20Burnable`, as `RewardToken` is).
///
/// Accounting. Each gateway has two pools, active and cool-down; a bonder holds shares of each.
/// A share's value is `pool amount / pool shares` (with a virtual share and unit, so an empty
/// or wiped pool prices new shares sanely); rounding always favours the pool, and a pool never
/// holds more units than it has shares (a share is worth at most one unit: slashing only lowers
/// the price and rounding never lifts it above one), so any non-zero amount buys at least one
/// share. Slashing a
/// gateway is therefore a proportional cut of its two pool amounts (`_slash`), with no loop
/// over bonders.
contract GatewayStaking is AccessControl {
    using SafeERC20 for IERC20;

    /// A signed envelope as the gateway sent it (`domain::envelope::SignedEnvelope` without the
    /// wire version): `payload` is the exact signed bytes, `sig` is r ‖ s ‖ v (65 bytes).
    struct Envelope {
        uint64 gateway;
        uint64 seq;
        int64 ts;
        bytes payload;
        bytes sig;
    }

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
    /// @notice Share of a slashed bond that is burnt, in basis points.
    uint16 public slashBurnBps;
    /// @notice Share of a slashed bond paid to the reporter, in basis points.
    uint16 public slashReporterBps;
    /// @notice Evidence already used: keccak256 of the two digests in ascending order.
    mapping(bytes32 evidence => bool) public evidenceUsed;

    mapping(address gateway => Pool) private _pools;
    mapping(address gateway => mapping(address bonder => Position)) private _positions;

    uint256 private constant BPS = 10_000;
    /// The first sequence number reserved for presence (`Presence::ONLINE_SEQ` in the domain crate).
    uint64 private constant PRESENCE_SEQ = type(uint64).max - 1;
    /// The envelope domain separator, with its trailing NUL byte (`domain::envelope::DOMAIN`).
    bytes private constant ENVELOPE_DOMAIN = "GridShare envelope v1\x00";

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
    /// @notice The slashing shares changed (burnt, to the reporter; basis points of the bond).
    event SlashSharesChanged(uint16 burnBps, uint16 reporterBps);
    /// @notice `reporter` proved that `gatewayKey` signed two envelopes (digests `digestA` and
    ///         `digestB`) for sequence `seq` of gateway `gateway`: `burnt` was burnt, `reward`
    ///         paid to the reporter, and the key revoked.
    event Equivocation(
        address indexed gatewayKey,
        address indexed reporter,
        uint64 gateway,
        uint64 seq,
        bytes32 digestA,
        bytes32 digestB,
        uint256 burnt,
        uint256 reward
    );

    /// @notice A zero address where a contract or account is required.
    error ZeroAddress();
    /// @notice A zero amount.
    error ZeroAmount();
    /// `bondWithPermit` for a gateway `owner` does not own (`registered` does).
    error NotGatewayOwner(address gateway, address owner, address registered);
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
    /// @notice The two envelopes are not for the same gateway id and sequence number.
    error NotSameSlot();
    /// @notice The two envelopes have the same digest (one message, not two).
    error SameContent(bytes32 digest);
    /// @notice A presence sequence number (2^64 - 2 for `online`, 2^64 - 1 for `offline`): every
    ///         connection of an honest gateway seals a new presence with these, so two different
    ///         ones prove nothing.
    error PresenceSequence(uint64 seq);
    /// @notice Envelope `which` (0: the first, 1: the second) has a malformed, malleable (high s)
    ///         or unrecoverable signature.
    error BadSignature(uint8 which);
    /// @notice The two envelopes were signed by different keys.
    error DifferentSigners(address a, address b);
    /// @notice These two envelopes (in either order) were already used as evidence.
    error EvidenceUsed(bytes32 evidence);

    /// @param token_ the bonded token (the reward token)
    /// @param registry_ the gateway registry
    /// @param admin holds DEFAULT_ADMIN_ROLE (sets the minimum bond, the cool-down and the
    ///        slashing shares)
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
        _setSlashShares(9_000, 1_000);
    }

    // ---------------------------------------------------------------- parameters

    /// @notice May set the bond and slashing rules besides the admin: `GridParameters`, which
    ///         passes on every change the community makes to them there.
    bytes32 public constant PARAMETERS_ROLE = keccak256("PARAMETERS_ROLE");

    /// The admin or the holder of `PARAMETERS_ROLE`; anyone else gets
    /// `AccessControlUnauthorizedAccount(account, PARAMETERS_ROLE)`.
    modifier onlyRules() {
        if (!hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) _checkRole(PARAMETERS_ROLE);
        _;
    }

    /// @notice Set the minimum bond (0 allowed: every gateway counts as bonded).
    function setMinBond(uint256 minBond_) external onlyRules {
        emit MinBondChanged(minBond, minBond_);
        minBond = minBond_;
    }

    /// @notice Set the cool-down for later unbond requests (the service: N epochs x epoch length).
    function setCooldown(uint64 cooldownSeconds_) external onlyRules {
        emit CooldownChanged(cooldownSeconds, cooldownSeconds_);
        cooldownSeconds = cooldownSeconds_;
    }

    /// @notice Set the shares of a slashed bond that are burnt and paid to the reporter, in basis
    ///         points (sum at most 10,000: `InvalidBps`); the rest stays with the bonders.
    function setSlashShares(uint16 burnBps, uint16 reporterBps) external onlyRules {
        _setSlashShares(burnBps, reporterBps);
    }

    function _setSlashShares(uint16 burnBps, uint16 reporterBps) private {
        uint256 sum = uint256(burnBps) + reporterBps;
        if (sum > BPS) revert InvalidBps(sum);
        slashBurnBps = burnBps;
        slashReporterBps = reporterBps;
        emit SlashSharesChanged(burnBps, reporterBps);
    }

    // ---------------------------------------------------------------- bonding

    /// @notice Bond `amount` tokens of the caller (approved beforehand) for `gateway`, which must
    ///         be active in the registry; the gateway's active total must reach `minBond`.
    function bond(address gateway, uint256 amount) external {
        _bond(msg.sender, gateway, amount);
    }

    /// @notice Bond `amount` of `owner`'s tokens for `gateway` with `owner`'s EIP-2612 permit (for
    ///         exactly `amount` to this contract, until `deadline`); anyone may send it. This is
    ///         how the service bonds for a home whose account it holds: the account signs, the
    ///         service pays the gas, and the bond is the account's own (only it can unbond).
    ///         Only for a gateway `owner` owns in the registry (`NotGatewayOwner`), so a permit
    ///         copied from a pending transaction cannot bond the owner's tokens for another
    ///         gateway. A permit already used (say front-run) is ignored while the allowance it
    ///         granted is still there; without an allowance the token's transfer refuses.
    function bondWithPermit(
        address owner,
        address gateway,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (!registry.isActive(gateway)) revert GatewayNotActive(gateway);
        address registered = registry.ownerOf(gateway);
        if (registered != owner) revert NotGatewayOwner(gateway, owner, registered);
        try IERC20Permit(address(token)).permit(owner, address(this), amount, deadline, v, r, s) {} catch {}
        _bond(owner, gateway, amount);
    }

    function _bond(address bonder, address gateway, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        if (!registry.isActive(gateway)) revert GatewayNotActive(gateway);
        Pool storage pool = _pools[gateway];
        uint256 total = pool.active + amount;
        if (total < minBond) revert BelowMinimumBond(gateway, total, minBond);
        uint256 shares = _toShares(amount, pool.active, pool.activeShares, Math.Rounding.Floor);
        pool.active = total;
        pool.activeShares += shares;
        _positions[gateway][bonder].activeShares += shares;
        token.safeTransferFrom(bonder, address(this), amount);
        emit Bonded(gateway, bonder, amount, total);
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

    /// @notice For each of `gateways`, whether its active bond reaches the minimum: what the market
    /// reads for every gateway it runs, in one call rather than one per gateway.
    function bondedAmong(address[] calldata gateways) external view returns (bool[] memory bonded) {
        bonded = new bool[](gateways.length);
        uint256 min = minBond;
        for (uint256 i; i < gateways.length; ++i) {
            bonded[i] = _pools[gateways[i]].active >= min;
        }
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

    // ---------------------------------------------------------------- slashing

    /// @notice The digest a gateway signs: keccak256 of the domain string (with its NUL byte),
    ///         gateway id, sequence number and timestamp (big-endian, 8 bytes each) and payload.
    function envelopeDigest(Envelope calldata e) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(ENVELOPE_DOMAIN, e.gateway, e.seq, e.ts, e.payload));
    }

    /// @notice Slash the key that signed both `a` and `b`, two different envelopes for the same
    ///         gateway id and sequence number (see the contract's notice for every rule): burn
    ///         `slashBurnBps` of its bond, pay `slashReporterBps` of it to the caller, revoke the
    ///         key. Callable by anyone.
    /// @return gatewayKey the key that equivocated (now revoked)
    /// @return burnt the tokens burnt
    /// @return reward the tokens paid to the caller
    function slashEquivocation(Envelope calldata a, Envelope calldata b)
        external
        returns (address gatewayKey, uint256 burnt, uint256 reward)
    {
        if (a.gateway != b.gateway || a.seq != b.seq) revert NotSameSlot();
        if (a.seq >= PRESENCE_SEQ) revert PresenceSequence(a.seq);
        bytes32 digestA = envelopeDigest(a);
        bytes32 digestB = envelopeDigest(b);
        if (digestA == digestB) revert SameContent(digestA);
        gatewayKey = _signer(digestA, a.sig, 0);
        address signerB = _signer(digestB, b.sig, 1);
        if (gatewayKey != signerB) revert DifferentSigners(gatewayKey, signerB);
        bytes32 evidence = digestA < digestB
            ? keccak256(abi.encodePacked(digestA, digestB))
            : keccak256(abi.encodePacked(digestB, digestA));
        if (evidenceUsed[evidence]) revert EvidenceUsed(evidence);
        if (!registry.isActive(gatewayKey)) revert GatewayNotActive(gatewayKey);
        evidenceUsed[evidence] = true;

        uint256 burnBps = slashBurnBps;
        uint256 shareBps = burnBps + slashReporterBps;
        uint256 taken = _slash(gatewayKey, shareBps);
        if (taken != 0) {
            reward = Math.mulDiv(taken, shareBps - burnBps, shareBps);
            burnt = taken - reward;
        }
        registry.revokeForMisbehaviour(gatewayKey);
        if (burnt != 0) ERC20Burnable(address(token)).burn(burnt);
        if (reward != 0) token.safeTransfer(msg.sender, reward);
        emit Equivocation(gatewayKey, msg.sender, a.gateway, a.seq, digestA, digestB, burnt, reward);
    }

    /// The signer of `digest`; reverts with `BadSignature(which)` for a signature that is not
    /// 65 bytes, has a high s or a v other than 27/28, or recovers no address.
    function _signer(bytes32 digest, bytes calldata sig, uint8 which) private pure returns (address signer) {
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecoverCalldata(digest, sig);
        if (err != ECDSA.RecoverError.NoError) revert BadSignature(which);
    }

    /// Take `bps` / 10,000 of `gateway`'s active and cool-down pools: every bonder of the
    /// gateway loses the same share of both. The caller disposes of the `taken` tokens (still
    /// held here, no longer in any pool).
    function _slash(address gateway, uint256 bps) internal returns (uint256 taken) {
        if (bps > BPS) revert InvalidBps(bps);
        Pool storage pool = _pools[gateway];
        uint256 fromActive = pool.active * bps / BPS;
        uint256 fromUnbonding = pool.unbonding * bps / BPS;
        pool.active -= fromActive;
        pool.unbonding -= fromUnbonding;
        taken = fromActive + fromUnbonding;
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
