// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridFixture} from "./utils/GridFixture.sol";
import {GridParameters, IBondRules} from "../src/GridParameters.sol";
import {GatewayRegistry} from "../src/GatewayRegistry.sol";
import {GatewayStaking} from "../src/GatewayStaking.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract GridParametersTest is GridFixture {
    GridParameters internal params;
    address internal timelock = address(0x7173);

    event ParameterChanged(bytes32 indexed key, uint256 previous, uint256 current, uint64 at);

    function setUp() public {
        vm.warp(1_700_000_000);
        params = _deployParameters(timelock);
    }

    function _set(bytes32 key, uint256 value) internal {
        vm.prank(timelock);
        params.set(key, value);
    }

    function _hash(GridParameters.Params memory p) internal pure returns (bytes32) {
        return keccak256(abi.encode(p));
    }

    function test_ConstructionState() public view {
        assertEq(_hash(params.current()), _hash(_initial()), "current = initial");
        assertEq(_hash(params.minimum()), _hash(_minimum()), "minimum");
        assertEq(_hash(params.maximum()), _hash(_maximum()), "maximum");
        assertEq(params.owner(), timelock, "owner");
        assertEq(uint256(params.version()), 0, "version");
        assertEq(uint256(params.changedAt()), block.timestamp, "changedAt");
        bytes32[] memory k = params.keys();
        assertEq(k.length, 16, "sixteen keys");
        assertEq(k[0], params.FEE_PER_HOP(), "first key");
        assertEq(k[15], params.REDEMPTION_BUDGET(), "last key");
        // keys() follows the field order of Params.
        uint256[16] memory values = abi.decode(abi.encode(_initial()), (uint256[16]));
        for (uint256 i = 0; i < 16; ++i) {
            assertEq(params.get(k[i]), values[i], "get by key");
        }
        (uint256 lo, uint256 hi) = params.bounds(params.FEE_PER_HOP());
        assertEq(lo, 0, "fee min");
        assertEq(hi, 100_000, "fee max");
        (uint256 rate, uint256 budget) = params.redemption();
        assertEq(rate, 100_000, "redemption rate");
        assertEq(budget, 1_000e6, "redemption budget");
    }

    function test_SetChangesValueVersionAndEmits() public {
        bytes32 key = params.FEE_PER_HOP();
        vm.warp(block.timestamp + 60);
        vm.expectEmit(address(params));
        emit ParameterChanged(key, 10_000, 12_500, uint64(block.timestamp));
        _set(key, 12_500);
        assertEq(params.get(key), 12_500, "value");
        assertEq(params.current().feePerHop, 12_500, "current()");
        assertEq(uint256(params.version()), 1, "version");
        assertEq(uint256(params.changedAt()), block.timestamp, "changedAt");
        _set(key, 12_500); // same value: still a change of version
        assertEq(uint256(params.version()), 2, "version counts every set");
    }

    function test_BoundsAreInclusive() public {
        bytes32 key = params.UNBONDING_COOLDOWN();
        _set(key, 1 hours);
        _set(key, 90 days);
        vm.prank(timelock);
        vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, key, 90 days + 1, 1 hours, 90 days));
        params.set(key, 90 days + 1);
        vm.prank(timelock);
        vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, key, 1 hours - 1, 1 hours, 90 days));
        params.set(key, 1 hours - 1);
        assertEq(params.get(key), 90 days, "unchanged after refusals");
        assertEq(uint256(params.version()), 2, "refusals do not count");
    }

    function test_EveryKeyRefusesAboveItsMaximum() public {
        bytes32[] memory k = params.keys();
        for (uint256 i = 0; i < k.length; ++i) {
            (uint256 lo, uint256 hi) = params.bounds(k[i]);
            if (k[i] == params.SLASH_BURN_BPS()) hi = 10_000 - params.current().slashReporterBps;
            vm.prank(timelock);
            vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, k[i], hi + 1, lo, hi));
            params.set(k[i], hi + 1);
        }
    }

    function test_UnknownKey() public {
        vm.prank(timelock);
        vm.expectRevert(abi.encodeWithSelector(GridParameters.UnknownParameter.selector, keccak256("nope")));
        params.set(keccak256("nope"), 1);
        vm.expectRevert(abi.encodeWithSelector(GridParameters.UnknownParameter.selector, bytes32(0)));
        params.get(bytes32(0));
    }

    function test_OnlyOwnerSets() public {
        bytes32 key = params.FEE_PER_HOP();
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(0xBAD)));
        params.set(key, 1);
        assertEq(params.get(key), 10_000, "unchanged");
    }

    /// burn + reporter <= 10,000: the effective maximum of one is 10,000 minus the other.
    function test_SlashingSharesSumAtMostAWhole() public {
        bytes32 burn = params.SLASH_BURN_BPS();
        bytes32 reporter = params.SLASH_REPORTER_BPS();
        _set(reporter, 5_000);
        _set(burn, 5_000);
        vm.prank(timelock);
        vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, burn, 5_001, 0, 5_000));
        params.set(burn, 5_001);
        _set(reporter, 1_000);
        _set(burn, 9_000);
        vm.prank(timelock);
        vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, reporter, 1_001, 0, 1_000));
        params.set(reporter, 1_001);
    }

    function test_ConstructorRefusesBadBounds() public {
        GridParameters.Params memory lo = _minimum();
        GridParameters.Params memory hi = _maximum();
        GridParameters.Params memory v = _initial();

        hi.uptimeThresholdBps = 10_001;
        vm.expectRevert(
            abi.encodeWithSelector(GridParameters.InvalidBounds.selector, params.UPTIME_THRESHOLD_BPS(), 5_000, 10_001)
        );
        new GridParameters(timelock, IBondRules(address(0)), v, lo, hi);
        hi = _maximum();

        lo.halvingEpochs = 0;
        vm.expectRevert(abi.encodeWithSelector(GridParameters.InvalidBounds.selector, params.HALVING_EPOCHS(), 0, 1_000));
        new GridParameters(timelock, IBondRules(address(0)), v, lo, hi);
        lo = _minimum();

        lo.minBond = hi.minBond + 1;
        vm.expectRevert(
            abi.encodeWithSelector(GridParameters.InvalidBounds.selector, params.MIN_BOND(), hi.minBond + 1, hi.minBond)
        );
        new GridParameters(timelock, IBondRules(address(0)), v, lo, hi);
        lo = _minimum();

        hi.unbondingCooldown = uint256(type(uint64).max) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                GridParameters.InvalidBounds.selector, params.UNBONDING_COOLDOWN(), 1 hours, hi.unbondingCooldown
            )
        );
        new GridParameters(timelock, IBondRules(address(0)), v, lo, hi);
        hi = _maximum();

        v.feePerHop = 100_001;
        vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, params.FEE_PER_HOP(), 100_001, 0, 100_000));
        new GridParameters(timelock, IBondRules(address(0)), v, lo, hi);
        v = _initial();

        v.slashBurnBps = 9_500; // with reporter 1,000: the sum passes 10,000
        vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, params.SLASH_BURN_BPS(), 9_500, 0, 9_000));
        new GridParameters(timelock, IBondRules(address(0)), v, lo, hi);
        v = _initial();

        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new GridParameters(address(0), IBondRules(address(0)), v, lo, hi);
    }

    /// Whatever is asked, a parameter stays within its bounds and a refusal changes nothing.
    function testFuzz_SetStaysWithinBounds(uint8 which, uint256 value) public {
        bytes32[] memory k = params.keys();
        bytes32 key = k[which % k.length];
        uint256 before = params.get(key);
        uint64 version = params.version();
        (uint256 lo, uint256 hi) = params.bounds(key);
        vm.prank(timelock);
        try params.set(key, value) {
            assertTrue(value >= lo && value <= hi, "accepted only within bounds");
            assertEq(params.get(key), value, "set");
            assertEq(uint256(params.version()), uint256(version) + 1, "version");
        } catch {
            assertEq(params.get(key), before, "refusal changed the value");
            assertEq(uint256(params.version()), uint256(version), "refusal changed the version");
        }
        GridParameters.Params memory p = params.current();
        assertLe(p.slashBurnBps + p.slashReporterBps, 10_000, "slashing shares");
    }
}

/// The bond and slashing rules the community sets in `GridParameters` are the ones the staking
/// contract enforces: every change reaches it in the same transaction, a change it refuses
/// changes nothing in either, and nobody else may set them there.
contract GridParametersBondRulesTest is GridFixture {
    GridParameters internal params;
    GatewayStaking internal staking;
    address internal timelock = address(0x7173);

    function setUp() public {
        vm.warp(1_700_000_000);
        RewardToken token = new RewardToken(address(this), 1_000_000e6);
        GatewayRegistry registry = new GatewayRegistry(address(this));
        GridParameters.Params memory v = _initial();
        // deployed with the same rules as the parameters, as the service does
        staking = new GatewayStaking(token, registry, address(this), v.minBond, uint64(v.unbondingCooldown));
        staking.setSlashShares(uint16(v.slashBurnBps), uint16(v.slashReporterBps));
        params = new GridParameters(timelock, IBondRules(address(staking)), v, _minimum(), _maximum());
        staking.grantRole(staking.PARAMETERS_ROLE(), address(params));
        // the deployer hands the staking contract's admin role over, as the service does
        staking.grantRole(staking.DEFAULT_ADMIN_ROLE(), timelock);
        staking.renounceRole(staking.DEFAULT_ADMIN_ROLE(), address(this));
    }

    function _set(bytes32 key, uint256 value) internal {
        vm.prank(timelock);
        params.set(key, value);
    }

    function test_EveryBondRuleChangeReachesTheStakingContract() public {
        _set(params.MIN_BOND(), 250e6);
        assertEq(staking.minBond(), 250e6, "minimum bond");
        _set(params.UNBONDING_COOLDOWN(), 3 days);
        assertEq(uint256(staking.cooldownSeconds()), 3 days, "cool-down");
        _set(params.SLASH_BURN_BPS(), 7_000);
        assertEq(uint256(staking.slashBurnBps()), 7_000, "burnt share");
        assertEq(uint256(staking.slashReporterBps()), 1_000, "reporter's share kept");
        _set(params.SLASH_REPORTER_BPS(), 2_500);
        assertEq(uint256(staking.slashReporterBps()), 2_500, "reporter's share");
        assertEq(uint256(staking.slashBurnBps()), 7_000, "burnt share kept");
        // other parameters leave the staking contract alone
        _set(params.FEE_PER_HOP(), 5_000);
        assertEq(staking.minBond(), 250e6, "follows");
    }

    function test_OnlyTheParametersAndTheAdminSetTheRules() public {
        address stranger = address(0xBAD);
        bytes32 role = staking.PARAMETERS_ROLE();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role));
        staking.setMinBond(0);
        // the timelock (the admin) still may, directly
        vm.prank(timelock);
        staking.setMinBond(1);
        assertEq(staking.minBond(), 1, "follows");
    }

    function test_ARuleTheStakingContractRefusesChangesNothing() public {
        // without the role, a change of a bond rule reverts as a whole: the parameters keep theirs
        bytes32 role = staking.PARAMETERS_ROLE();
        vm.prank(timelock);
        staking.revokeRole(role, address(params));
        uint64 version = params.version();
        bytes32 key = params.MIN_BOND();
        vm.prank(timelock);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, address(params), role)
        );
        params.set(key, 250e6);
        assertEq(params.get(key), 100e6, "parameter unchanged");
        assertEq(staking.minBond(), 100e6, "staking unchanged");
        assertEq(uint256(params.version()), uint256(version), "version unchanged");
    }

    /// Whatever the community sets, the staking contract enforces the same rules.
    function testFuzz_TheStakingContractFollows(uint8 which, uint256 value) public {
        bytes32[4] memory keys =
            [params.MIN_BOND(), params.UNBONDING_COOLDOWN(), params.SLASH_BURN_BPS(), params.SLASH_REPORTER_BPS()];
        bytes32 key = keys[which % 4];
        (uint256 lo, uint256 hi) = params.bounds(key);
        value = lo + value % (hi - lo + 1);
        vm.prank(timelock);
        try params.set(key, value) {} catch {} // the shares' sum rule may refuse it
        assertEq(staking.minBond(), params.get(params.MIN_BOND()), "follows");
        assertEq(uint256(staking.cooldownSeconds()), params.get(params.UNBONDING_COOLDOWN()), "follows");
        assertEq(uint256(staking.slashBurnBps()), params.get(params.SLASH_BURN_BPS()), "follows");
        assertEq(uint256(staking.slashReporterBps()), params.get(params.SLASH_REPORTER_BPS()), "follows");
    }
}
