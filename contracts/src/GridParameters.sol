// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";

/// @notice The rules a staking contract enforces that the community governs here
///         (`GatewayStaking` implements it; `GridParameters` holds its `PARAMETERS_ROLE`).
interface IBondRules {
    function setMinBond(uint256 minBond_) external;
    function setCooldown(uint64 cooldownSeconds_) external;
    function setSlashShares(uint16 burnBps, uint16 reporterBps) external;
}

/// @title GridParameters
/// @notice The parameters that decide who earns what, in one place, changed only by governance.
///
/// Owner. The owner is the `TimelockController` that executes `GridGovernor` proposals; it is
/// the only account that can `set` (`OwnableUnauthorizedAccount` for anyone else). A change is
/// therefore a passed proposal that has waited out the timelock delay.
///
/// Keys. Each parameter has a key, a short ASCII name left-aligned in a bytes32 (Solidity's
/// `bytes32("feePerHop")`; in Rust `B256::right_padding_from(b"feePerHop")`), also exposed as
/// the constants below. `keys()` lists them in the order of the fields of `Params`.
///
/// Bounds. Every parameter has a minimum and a maximum, both fixed at construction and never
/// changeable (`minimum()`, `maximum()`, `bounds(key)`). `set` reverts with
/// `OutOfBounds(key, value, min, max)` outside them. The constructor refuses bounds that break
/// these hard limits (`InvalidBounds`): min <= max; the three basis-point parameters have
/// max <= 10,000; `halvingEpochs` has min >= 1; `halvingEpochs` and `unbondingCooldown` have
/// max <= 2^64 - 1 (what the contracts that use them store). One rule joins two parameters:
/// `slashBurnBps + slashReporterBps <= 10,000`; setting either reports the tighter effective
/// maximum (10,000 minus the other) in `OutOfBounds` when that is what it breaks.
///
/// Changes. Every successful `set` (even one to the same value) increments `version`, stamps
/// `changedAt` and emits `ParameterChanged(key, previous, current, at)`. The constructor emits
/// `ParameterChanged(key, 0, initial, at)` for every parameter and leaves `version` at 0.
///
/// Bond rules. The staking contract (`staking`, fixed at construction; none with address 0)
/// keeps the minimum bond, the cool-down and the slashing shares it enforces in its own storage,
/// so that a bond or a slash reads them cheaply. A `set` of `minBond`, `unbondingCooldown`,
/// `slashBurnBps` or `slashReporterBps` passes the new value on to it in the same transaction
/// (this contract holds the staking contract's `PARAMETERS_ROLE`), so the rules in force there
/// are always the governed ones, whoever made the proposal; if the staking contract refuses, the
/// whole `set` reverts and nothing changes. Its values at deployment are the ones this contract is
/// deployed with (the deployer gives both the same).
///
/// Units (all micro-units are millionths of the settlement currency; reward amounts are
/// reward micro-tokens, 10^-6 GSR):
///   feePerHop            settlement micro-units per kWh, network fee per feeder hop
///   networkFee           settlement micro-units per kWh, network fee per kWh traded
///   importTariff         settlement micro-units per kWh, utility import tariff (imbalance)
///   exportTariff         settlement micro-units per kWh, utility export tariff (imbalance)
///   rewardGeneration     reward micro-tokens per kWh of local renewable generation
///   rewardDemandResponse reward micro-tokens per kWh of demand response
///   rewardUptime         reward micro-tokens per gateway per epoch of uptime
///   epochInitialBudget   reward micro-tokens, the budget of epoch 1
///   halvingEpochs        epochs between budget halvings
///   uptimeThresholdBps   basis points of an epoch a gateway must be up to earn uptime
///   minBond              reward micro-tokens, minimum bond per gateway
///   unbondingCooldown    seconds between an unbond request and the withdrawal
///   slashBurnBps         basis points of a slashed amount burnt
///   slashReporterBps     basis points of a slashed amount paid to the reporter
///   redemptionRate       settlement micro-units credited per whole reward token (10^6
///                        reward micro-tokens) redeemed by `RewardRedeemer`
///   redemptionBudget     settlement micro-units `RewardRedeemer` may credit per epoch
contract GridParameters is Ownable {
    /// Every parameter; the field order is the key order of `keys()`.
    struct Params {
        uint256 feePerHop;
        uint256 networkFee;
        uint256 importTariff;
        uint256 exportTariff;
        uint256 rewardGeneration;
        uint256 rewardDemandResponse;
        uint256 rewardUptime;
        uint256 epochInitialBudget;
        uint256 halvingEpochs;
        uint256 uptimeThresholdBps;
        uint256 minBond;
        uint256 unbondingCooldown;
        uint256 slashBurnBps;
        uint256 slashReporterBps;
        uint256 redemptionRate;
        uint256 redemptionBudget;
    }

    bytes32 public constant FEE_PER_HOP = "feePerHop";
    bytes32 public constant NETWORK_FEE = "networkFee";
    bytes32 public constant IMPORT_TARIFF = "importTariff";
    bytes32 public constant EXPORT_TARIFF = "exportTariff";
    bytes32 public constant REWARD_GENERATION = "rewardGeneration";
    bytes32 public constant REWARD_DEMAND_RESPONSE = "rewardDemandResponse";
    bytes32 public constant REWARD_UPTIME = "rewardUptime";
    bytes32 public constant EPOCH_INITIAL_BUDGET = "epochInitialBudget";
    bytes32 public constant HALVING_EPOCHS = "halvingEpochs";
    bytes32 public constant UPTIME_THRESHOLD_BPS = "uptimeThresholdBps";
    bytes32 public constant MIN_BOND = "minBond";
    bytes32 public constant UNBONDING_COOLDOWN = "unbondingCooldown";
    bytes32 public constant SLASH_BURN_BPS = "slashBurnBps";
    bytes32 public constant SLASH_REPORTER_BPS = "slashReporterBps";
    bytes32 public constant REDEMPTION_RATE = "redemptionRate";
    bytes32 public constant REDEMPTION_BUDGET = "redemptionBudget";

    /// @notice Basis points in a whole.
    uint256 public constant BPS = 10_000;

    uint256 private constant COUNT = 16;
    uint256 private constant I_HALVING_EPOCHS = 8;
    uint256 private constant I_UPTIME_THRESHOLD_BPS = 9;
    uint256 private constant I_MIN_BOND = 10;
    uint256 private constant I_UNBONDING_COOLDOWN = 11;
    uint256 private constant I_SLASH_BURN_BPS = 12;
    uint256 private constant I_SLASH_REPORTER_BPS = 13;
    uint256 private constant I_REDEMPTION_RATE = 14;
    uint256 private constant I_REDEMPTION_BUDGET = 15;

    uint256[COUNT] private _value;
    uint256[COUNT] private _min;
    uint256[COUNT] private _max;

    /// @notice The staking contract whose bond and slashing rules follow these (none: address 0).
    IBondRules public immutable staking;

    /// @notice Incremented by every successful `set` (0 right after construction).
    uint64 public version;
    /// @notice The timestamp of the last `set` (construction time before any).
    uint64 public changedAt;

    event ParameterChanged(bytes32 indexed key, uint256 previous, uint256 current, uint64 at);

    error OutOfBounds(bytes32 key, uint256 value, uint256 min, uint256 max);
    error UnknownParameter(bytes32 key);
    error InvalidBounds(bytes32 key, uint256 min, uint256 max);

    /// @param owner_ the timelock (the only account that may `set`)
    /// @param staking_ the staking contract that enforces the bond and slashing rules (address 0:
    ///        none)
    /// @param initial the values in force at deployment, each within its bounds
    /// @param minimum_ the lowest value each parameter may ever take
    /// @param maximum_ the highest value each parameter may ever take
    constructor(
        address owner_,
        IBondRules staking_,
        Params memory initial,
        Params memory minimum_,
        Params memory maximum_
    ) Ownable(owner_) {
        staking = staking_;
        uint256[COUNT] memory v = _array(initial);
        uint256[COUNT] memory lo = _array(minimum_);
        uint256[COUNT] memory hi = _array(maximum_);
        bytes32[] memory k = keys();
        for (uint256 i = 0; i < COUNT; ++i) {
            if (lo[i] > hi[i] || hi[i] > _hardMax(i) || lo[i] < _hardMin(i)) revert InvalidBounds(k[i], lo[i], hi[i]);
        }
        _min = lo;
        _max = hi;
        _value = v;
        uint64 now_ = Time.timestamp();
        changedAt = now_;
        for (uint256 i = 0; i < COUNT; ++i) {
            (uint256 min_, uint256 max_) = _effectiveBounds(i);
            if (v[i] < min_ || v[i] > max_) revert OutOfBounds(k[i], v[i], min_, max_);
            emit ParameterChanged(k[i], 0, v[i], now_);
        }
    }

    // ----------------------------------------------------------------------- reads

    /// @notice Every parameter key, in the order of the fields of `Params`.
    function keys() public pure returns (bytes32[] memory k) {
        k = new bytes32[](COUNT);
        k[0] = FEE_PER_HOP;
        k[1] = NETWORK_FEE;
        k[2] = IMPORT_TARIFF;
        k[3] = EXPORT_TARIFF;
        k[4] = REWARD_GENERATION;
        k[5] = REWARD_DEMAND_RESPONSE;
        k[6] = REWARD_UPTIME;
        k[7] = EPOCH_INITIAL_BUDGET;
        k[8] = HALVING_EPOCHS;
        k[9] = UPTIME_THRESHOLD_BPS;
        k[10] = MIN_BOND;
        k[11] = UNBONDING_COOLDOWN;
        k[12] = SLASH_BURN_BPS;
        k[13] = SLASH_REPORTER_BPS;
        k[14] = REDEMPTION_RATE;
        k[15] = REDEMPTION_BUDGET;
    }

    /// @notice Every parameter in force.
    function current() external view returns (Params memory) {
        return _params(_value);
    }

    /// @notice The lowest value of every parameter.
    function minimum() external view returns (Params memory) {
        return _params(_min);
    }

    /// @notice The highest value of every parameter.
    function maximum() external view returns (Params memory) {
        return _params(_max);
    }

    /// @notice One parameter in force; `UnknownParameter` for a key not in `keys()`.
    function get(bytes32 key) external view returns (uint256) {
        return _value[_indexOf(key)];
    }

    /// @notice The fixed bounds of one parameter (before the slashing-sum rule).
    function bounds(bytes32 key) external view returns (uint256 min, uint256 max) {
        uint256 i = _indexOf(key);
        return (_min[i], _max[i]);
    }

    /// @notice What `RewardRedeemer` needs, in one call: the redemption rate and budget.
    function redemption() external view returns (uint256 rate, uint256 budgetPerEpoch) {
        return (_value[I_REDEMPTION_RATE], _value[I_REDEMPTION_BUDGET]);
    }

    // ---------------------------------------------------------------------- change

    /// @notice Set one parameter (owner only): `UnknownParameter` for an unknown key,
    ///         `OutOfBounds` outside its bounds.
    function set(bytes32 key, uint256 value) external onlyOwner {
        uint256 i = _indexOf(key);
        (uint256 min_, uint256 max_) = _effectiveBounds(i);
        if (value < min_ || value > max_) revert OutOfBounds(key, value, min_, max_);
        uint256 previous = _value[i];
        _value[i] = value;
        uint64 now_ = Time.timestamp();
        ++version;
        changedAt = now_;
        emit ParameterChanged(key, previous, value, now_);
        _passOn(i);
    }

    // -------------------------------------------------------------------- internals

    /// Passes a changed bond or slashing rule on to the staking contract (see "Bond rules").
    /// The casts are safe: `unbondingCooldown` is at most 2^64 - 1 and both shares at most
    /// 10,000 (hard limits checked at construction).
    function _passOn(uint256 i) private {
        if (address(staking) == address(0)) return;
        if (i == I_MIN_BOND) {
            staking.setMinBond(_value[i]);
        } else if (i == I_UNBONDING_COOLDOWN) {
            // forge-lint: disable-next-line(unsafe-typecast)
            staking.setCooldown(uint64(_value[i]));
        } else if (i == I_SLASH_BURN_BPS || i == I_SLASH_REPORTER_BPS) {
            // forge-lint: disable-next-line(unsafe-typecast)
            staking.setSlashShares(uint16(_value[I_SLASH_BURN_BPS]), uint16(_value[I_SLASH_REPORTER_BPS]));
        }
    }

    function _indexOf(bytes32 key) private pure returns (uint256) {
        bytes32[] memory k = keys();
        for (uint256 i = 0; i < COUNT; ++i) {
            if (k[i] == key) return i;
        }
        revert UnknownParameter(key);
    }

    /// The bounds of parameter `i` given the others in force (the slashing-sum rule).
    function _effectiveBounds(uint256 i) private view returns (uint256 min_, uint256 max_) {
        min_ = _min[i];
        max_ = _max[i];
        uint256 other;
        if (i == I_SLASH_BURN_BPS) {
            other = _value[I_SLASH_REPORTER_BPS];
        } else if (i == I_SLASH_REPORTER_BPS) {
            other = _value[I_SLASH_BURN_BPS];
        } else {
            return (min_, max_);
        }
        // `other` is at most BPS (hard limit on both maxima).
        if (BPS - other < max_) max_ = BPS - other;
    }

    function _hardMax(uint256 i) private pure returns (uint256) {
        if (i == I_UPTIME_THRESHOLD_BPS || i == I_SLASH_BURN_BPS || i == I_SLASH_REPORTER_BPS) return BPS;
        if (i == I_HALVING_EPOCHS || i == I_UNBONDING_COOLDOWN) return type(uint64).max;
        return type(uint256).max;
    }

    function _hardMin(uint256 i) private pure returns (uint256) {
        return i == I_HALVING_EPOCHS ? 1 : 0;
    }

    /// `Params` (sixteen uint256 fields) and `uint256[16]` have the same ABI encoding.
    function _array(Params memory p) private pure returns (uint256[COUNT] memory) {
        return abi.decode(abi.encode(p), (uint256[16]));
    }

    function _params(uint256[COUNT] memory a) private pure returns (Params memory) {
        return abi.decode(abi.encode(a), (Params));
    }
}
