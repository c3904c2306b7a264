// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {GridFixture} from "./utils/GridFixture.sol";
import {Console} from "./utils/Console.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {GatewayRegistry} from "../src/GatewayRegistry.sol";
import {GatewayStaking} from "../src/GatewayStaking.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// Exposes the internal `_slash` for the tests, counting what it took in `slashedTotal` (the
/// tokens stay in the contract: the harness disposes of nothing).
contract StakingHarness is GatewayStaking {
    uint256 public slashedTotal;

    constructor(IERC20 token_, GatewayRegistry registry_, address admin, uint256 minBond_, uint64 cooldown_)
        GatewayStaking(token_, registry_, admin, minBond_, cooldown_)
    {}

    function slash(address gateway, uint256 bps) external returns (uint256 taken) {
        taken = _slash(gateway, bps);
        slashedTotal += taken;
    }
}

abstract contract StakingFixture is TestBase {
    RewardToken internal token;
    GatewayRegistry internal registry;
    StakingHarness internal staking;
    address internal admin = address(0xAD);
    address internal installer = address(0x1257);
    address internal gw = address(0x6A7E);
    address internal gw2 = address(0x6A7F);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    uint256 internal constant MIN = 100e6;
    uint64 internal constant COOLDOWN = 3 days;

    function _deploy() internal {
        token = new RewardToken(admin, 1_000_000_000e6);
        registry = new GatewayRegistry(admin);
        staking = new StakingHarness(token, registry, admin, MIN, COOLDOWN);
        vm.startPrank(admin);
        token.grantRole(token.MINTER_ROLE(), admin);
        registry.grantRole(registry.INSTALLER_ROLE(), installer);
        vm.stopPrank();
        vm.startPrank(installer);
        registry.commission(gw, address(0x0E), "home-1");
        registry.commission(gw2, address(0x0F), "home-2");
        vm.stopPrank();
    }

    function _fund(address who, uint256 amount) internal {
        vm.prank(admin);
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(staking), type(uint256).max);
    }

    function _bond(address who, address gateway, uint256 amount) internal {
        vm.prank(who);
        staking.bond(gateway, amount);
    }
}

contract GatewayStakingTest is StakingFixture {
    function setUp() public {
        vm.warp(1_800_000_000);
        _deploy();
        _fund(alice, 1_000e6);
        _fund(bob, 1_000e6);
    }

    function test_ConstructorAndParameters() public {
        assertEq(address(staking.token()), address(token), "token");
        assertEq(address(staking.registry()), address(registry), "registry");
        assertEq(staking.minBond(), MIN, "min bond");
        assertEq(uint256(staking.cooldownSeconds()), COOLDOWN, "cool-down");
        vm.expectRevert(GatewayStaking.ZeroAddress.selector);
        new GatewayStaking(IERC20(address(0)), registry, admin, 0, 0);
        vm.expectRevert(GatewayStaking.ZeroAddress.selector);
        new GatewayStaking(token, GatewayRegistry(address(0)), admin, 0, 0);
        vm.expectRevert(GatewayStaking.ZeroAddress.selector);
        new GatewayStaking(token, registry, address(0), 0, 0);

        vm.startPrank(admin);
        vm.expectEmit(address(staking));
        emit GatewayStaking.MinBondChanged(MIN, 5);
        staking.setMinBond(5);
        vm.expectEmit(address(staking));
        emit GatewayStaking.CooldownChanged(COOLDOWN, 60);
        staking.setCooldown(60);
        vm.stopPrank();
        assertEq(staking.minBond(), 5, "min bond set");
        assertEq(uint256(staking.cooldownSeconds()), 60, "cool-down set");

        // neither the admin nor the parameters contract: refused, naming the parameters' role
        bytes32 role = staking.PARAMETERS_ROLE();
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        staking.setMinBond(0);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        staking.setCooldown(0);
        vm.stopPrank();
    }

    function test_BondMakesTheGatewayBonded() public {
        assertTrue(!staking.isBonded(gw), "not bonded before");
        vm.expectEmit(address(staking));
        emit GatewayStaking.Bonded(gw, alice, MIN, MIN);
        _bond(alice, gw, MIN);
        assertTrue(staking.isBonded(gw), "bonded at the minimum");
        assertEq(staking.activeBond(gw), MIN, "active bond");
        assertEq(token.balanceOf(address(staking)), MIN, "tokens locked");
        (uint256 active, uint256 unbonding, uint64 unlockAt) = staking.bondOf(gw, alice);
        assertEq(active, MIN, "alice's part");
        assertEq(unbonding + unlockAt, 0, "nothing cooling down");
        // Another bonder tops it up with any amount; each part is recorded apart.
        _bond(bob, gw, 1);
        (active,,) = staking.bondOf(gw, bob);
        assertEq(active, 1, "bob's part");
        assertEq(staking.activeBond(gw), MIN + 1, "total");
    }

    function test_BondedAmongAnswersForEachGatewayAsIsBonded() public {
        address[] memory some = new address[](3);
        (some[0], some[1], some[2]) = (gw, address(0x1234), gw);
        bool[] memory before = staking.bondedAmong(some);
        assertEq(before.length, 3, "one answer per gateway asked");
        assertTrue(!before[0] && !before[1] && !before[2], "none bonded yet");
        _bond(alice, gw, MIN);
        bool[] memory afterwards = staking.bondedAmong(some);
        assertTrue(afterwards[0] && !afterwards[1] && afterwards[2], "only the bonded one, wherever it is asked");
        assertEq(staking.bondedAmong(new address[](0)).length, 0, "nothing asked, nothing answered");
        vm.prank(admin);
        staking.setMinBond(0);
        assertTrue(staking.bondedAmong(some)[1], "with no minimum every gateway counts");
    }

    function test_BelowMinimumBondRefused() public {
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.BelowMinimumBond.selector, gw, MIN - 1, MIN));
        _bond(alice, gw, MIN - 1);
        assertEq(token.balanceOf(address(staking)), 0, "no state change");
        vm.expectRevert(GatewayStaking.ZeroAmount.selector);
        _bond(alice, gw, 0);
    }

    function test_ZeroMinimumBondsEveryGateway() public {
        vm.prank(admin);
        staking.setMinBond(0);
        assertTrue(staking.isBonded(address(0x1234)), "any gateway counts as bonded");
        _bond(alice, gw, 1);
        assertEq(staking.activeBond(gw), 1, "a bond of one unit");
    }

    function test_BondNeedsAnActiveGateway() public {
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.GatewayNotActive.selector, address(0x1234)));
        _bond(alice, address(0x1234), MIN);
        vm.prank(installer);
        registry.revoke(gw);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.GatewayNotActive.selector, gw));
        _bond(alice, gw, MIN);
    }

    function test_UnbondCooldownThenWithdraw() public {
        _bond(alice, gw, 300e6);
        uint64 unlock = uint64(block.timestamp) + COOLDOWN;
        vm.expectEmit(address(staking));
        emit GatewayStaking.UnbondRequested(gw, alice, 250e6, unlock);
        vm.prank(alice);
        assertEq(uint256(staking.requestUnbond(gw, 250e6)), unlock, "unlock time");
        assertEq(staking.activeBond(gw), 50e6, "active");
        assertEq(staking.unbondingBond(gw), 250e6, "cooling down");
        assertTrue(!staking.isBonded(gw), "below the minimum after unbonding");
        (uint256 active, uint256 unbonding, uint64 unlockAt) = staking.bondOf(gw, alice);
        assertEq(active, 50e6, "alice active");
        assertEq(unbonding, 250e6, "alice cooling down");
        assertEq(uint256(unlockAt), unlock, "alice unlock");

        vm.warp(unlock - 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.CooldownNotOver.selector, gw, alice, unlock));
        staking.withdraw(gw);

        vm.warp(unlock);
        vm.expectEmit(address(staking));
        emit GatewayStaking.Withdrawn(gw, alice, 250e6);
        vm.prank(alice);
        assertEq(staking.withdraw(gw), 250e6, "withdrawn");
        assertEq(token.balanceOf(alice), 1_000e6 - 50e6, "tokens back");
        assertEq(staking.unbondingBond(gw), 0, "pool empty");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.NothingToWithdraw.selector, gw, alice));
        staking.withdraw(gw);
    }

    function test_NewRequestRestartsTheCooldown() public {
        _bond(alice, gw, 300e6);
        vm.prank(alice);
        staking.requestUnbond(gw, 100e6);
        vm.warp(block.timestamp + COOLDOWN - 10);
        vm.prank(alice);
        uint64 unlock = staking.requestUnbond(gw, 100e6);
        vm.warp(block.timestamp + 10);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.CooldownNotOver.selector, gw, alice, unlock));
        staking.withdraw(gw);
        vm.warp(unlock);
        vm.prank(alice);
        assertEq(staking.withdraw(gw), 200e6, "both requests paid");
    }

    function test_CooldownChangeAppliesToLaterRequests() public {
        _bond(alice, gw, 300e6);
        vm.prank(alice);
        uint64 first = staking.requestUnbond(gw, 100e6);
        vm.prank(admin);
        staking.setCooldown(1 days);
        assertEq(uint256(first), block.timestamp + COOLDOWN, "first keeps its time");
        _bond(bob, gw, 100e6);
        vm.prank(bob);
        assertEq(uint256(staking.requestUnbond(gw, 100e6)), block.timestamp + 1 days, "later uses the new one");
    }

    function test_EachBonderUnbondsOnlyItsOwn() public {
        _bond(alice, gw, 200e6);
        _bond(bob, gw, 50e6);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.InsufficientBond.selector, gw, bob, 50e6));
        staking.requestUnbond(gw, 51e6);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.InsufficientBond.selector, gw2, bob, 0));
        staking.requestUnbond(gw2, 1);
        vm.prank(bob);
        vm.expectRevert(GatewayStaking.ZeroAmount.selector);
        staking.requestUnbond(gw, 0);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.NothingToWithdraw.selector, gw, bob));
        staking.withdraw(gw);
    }

    function test_RevokedGatewayBondComesBackAfterCooldown() public {
        _bond(alice, gw, MIN);
        vm.prank(installer);
        registry.revoke(gw);
        vm.prank(alice);
        uint64 unlock = staking.requestUnbond(gw, MIN);
        vm.warp(unlock);
        vm.prank(alice);
        assertEq(staking.withdraw(gw), MIN, "paid back");
    }

    function test_SlashCutsActiveAndCoolingDownAlike() public {
        _bond(alice, gw, 400e6);
        _bond(bob, gw, 200e6);
        _bond(bob, gw2, 200e6);
        vm.prank(alice);
        staking.requestUnbond(gw, 100e6);
        // gw: active 500 (alice 300, bob 200), cooling down 100 (alice).
        vm.expectEmit(address(staking));
        emit GatewayStaking.Slashed(gw, 1_000, 60e6);
        assertEq(staking.slash(gw, 1_000), 60e6, "10 % of 600");
        assertEq(staking.activeBond(gw), 450e6, "active cut");
        assertEq(staking.unbondingBond(gw), 90e6, "cooling down cut");
        assertEq(staking.activeBond(gw2), 200e6, "other gateway untouched");
        assertEq(staking.slashedTotal(), 60e6, "slashed balance");
        (uint256 aActive, uint256 aCooling,) = staking.bondOf(gw, alice);
        (uint256 bActive,,) = staking.bondOf(gw, bob);
        assertEq(aActive, 270e6, "alice active -10 %");
        assertEq(aCooling, 90e6, "alice cooling -10 %");
        assertEq(bActive, 180e6, "bob -10 %");

        vm.warp(block.timestamp + COOLDOWN);
        vm.prank(alice);
        assertEq(staking.withdraw(gw), 90e6, "withdraws the slashed amount");
        vm.prank(bob);
        staking.requestUnbond(gw, 180e6);
        vm.warp(block.timestamp + COOLDOWN);
        vm.prank(bob);
        assertEq(staking.withdraw(gw), 180e6, "bob's whole remaining part");
        assertEq(
            token.balanceOf(address(staking)),
            staking.activeBond(gw) + staking.activeBond(gw2) + staking.unbondingBond(gw) + staking.slashedTotal(),
            "tokens held = pools + slashed"
        );
    }

    function test_FullSlashThenNewBondIsPricedFairly() public {
        _bond(alice, gw, 200e6);
        staking.slash(gw, 10_000);
        assertEq(staking.activeBond(gw), 0, "wiped");
        (uint256 aActive,,) = staking.bondOf(gw, alice);
        assertEq(aActive, 0, "alice's shares are worth nothing");
        _bond(bob, gw, 150e6);
        (uint256 bActive,,) = staking.bondOf(gw, bob);
        assertEq(bActive, 150e6, "bob's bond is worth what he paid");
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.InvalidBps.selector, 10_001));
        staking.slash(gw, 10_001);
    }

    /// Any sequence of bonds, unbonds and slashes: what each bonder can still get back never
    /// exceeds what the contract holds for the gateway.
    function testFuzz_PartsNeverExceedThePool(uint96 a, uint96 b, uint96 u, uint16 bps) public {
        vm.prank(admin);
        staking.setMinBond(0);
        uint256 amountA = uint256(a) % 1_000e6 + 1;
        uint256 amountB = uint256(b) % 1_000e6 + 1;
        _bond(alice, gw, amountA);
        _bond(bob, gw, amountB);
        staking.slash(gw, uint256(bps) % 10_001);
        (uint256 aActive,,) = staking.bondOf(gw, alice);
        uint256 unbond = aActive == 0 ? 0 : uint256(u) % aActive + 1;
        if (unbond != 0) {
            vm.prank(alice);
            try staking.requestUnbond(gw, unbond) {} catch {}
        }
        staking.slash(gw, uint256(bps) % 5_000);
        (uint256 aA, uint256 aU,) = staking.bondOf(gw, alice);
        (uint256 bA, uint256 bU,) = staking.bondOf(gw, bob);
        assertLe(aA + bA, staking.activeBond(gw), "active parts <= active pool");
        assertLe(aU + bU, staking.unbondingBond(gw), "cooling parts <= cooling pool");
        assertLe(amountA + amountB, 2_000e6, "bounds");
        assertEq(
            token.balanceOf(address(staking)),
            staking.activeBond(gw) + staking.unbondingBond(gw) + staking.slashedTotal(),
            "tokens held = pools + slashed"
        );
    }
}

/// A home that holds no ether bonds for its own gateway with a permit the service sends: the bond
/// is the home's (only it can unbond), a copied permit cannot bond for another gateway, a permit
/// front-run straight to the token still bonds, and a forged or replayed one moves nothing.
contract GatewayStakingPermitTest is StakingFixture, GridFixture {
    uint256 internal constant HOME_KEY = 0x40e;
    address internal home;
    address internal service = address(0x5e7);
    address internal gwHome = address(0x6A80);

    function setUp() public {
        vm.warp(1_800_000_000);
        _deploy();
        home = vm.addr(HOME_KEY);
        vm.prank(admin);
        token.mint(home, 1_000e6);
        vm.prank(installer);
        registry.commission(gwHome, home, "home-3");
    }

    function _permit(uint256 key, uint256 amount, uint256 deadline) internal view returns (uint8, bytes32, bytes32) {
        address owner = vm.addr(key);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                owner,
                address(staking),
                amount,
                token.nonces(owner),
                deadline
            )
        );
        return vm.sign(key, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
    }

    function test_TheServiceBondsForTheHomeWithItsPermit() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(HOME_KEY, MIN, deadline);
        bytes memory data = abi.encodeCall(GatewayStaking.bondWithPermit, (home, gwHome, MIN, deadline, v, r, s));
        vm.cool(address(staking));
        vm.cool(address(token));
        vm.cool(address(registry));
        vm.prank(service);
        Tx memory bonded = _tx(data, _measure(address(staking), data));
        Console.log("bondWithPermit tx gas (relayed, first bond of the gateway)", bonded.total);
        assertTrue(staking.isBonded(gwHome), "bonded");
        (uint256 active,,) = staking.bondOf(gwHome, home);
        assertEq(active, MIN, "the bond is the home's");
        (uint256 serviceBond,,) = staking.bondOf(gwHome, service);
        assertEq(serviceBond, 0, "not the sender's");
        assertEq(token.balanceOf(home), 1_000e6 - MIN, "taken from the home");
        // only the home can unbond it
        vm.prank(service);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.InsufficientBond.selector, gwHome, service, 0));
        staking.requestUnbond(gwHome, MIN);
        // the same permit again: its nonce is used and no allowance is left
        vm.prank(service);
        vm.expectRevert();
        staking.bondWithPermit(home, gwHome, MIN, deadline, v, r, s);
        assertEq(token.balanceOf(home), 1_000e6 - MIN, "nothing more taken");
    }

    function test_ACopiedPermitCannotBondForAnotherGateway() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(HOME_KEY, MIN, deadline);
        // gw belongs to 0x0E, not to the home
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.NotGatewayOwner.selector, gw, home, address(0x0E)));
        staking.bondWithPermit(home, gw, MIN, deadline, v, r, s);
        assertEq(token.balanceOf(home), 1_000e6, "nothing taken");
    }

    function test_AFrontRunPermitStillBondsAndAForgedOneMovesNothing() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(HOME_KEY, MIN, deadline);
        // someone sends the permit to the token first: the allowance is there, the bond goes on
        token.permit(home, address(staking), MIN, deadline, v, r, s);
        staking.bondWithPermit(home, gwHome, MIN, deadline, v, r, s);
        (uint256 active,,) = staking.bondOf(gwHome, home);
        assertEq(active, MIN, "bonded");
        // a permit signed by another key for the home's tokens grants nothing
        (v, r, s) = _permit(0xBAD, MIN, deadline);
        vm.expectRevert();
        staking.bondWithPermit(home, gwHome, MIN, deadline, v, r, s);
        assertEq(token.balanceOf(home), 1_000e6 - MIN, "nothing more taken");
    }

    function test_ARevokedGatewayTakesNoBond() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(HOME_KEY, MIN, deadline);
        vm.prank(installer);
        registry.revoke(gwHome);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.GatewayNotActive.selector, gwHome));
        staking.bondWithPermit(home, gwHome, MIN, deadline, v, r, s);
    }
}
