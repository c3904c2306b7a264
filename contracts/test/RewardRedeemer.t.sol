// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridFixture} from "./utils/GridFixture.sol";
import {Console} from "./utils/Console.sol";
import {Deltas} from "./utils/Deltas.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {SettlementToken} from "../src/SettlementToken.sol";
import {EnergySettlementVault} from "../src/EnergySettlementVault.sol";
import {GridParameters} from "../src/GridParameters.sol";
import {RewardRedeemer} from "../src/RewardRedeemer.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

contract RewardRedeemerTest is GridFixture {
    RewardToken internal reward;
    SettlementToken internal cash;
    EnergySettlementVault internal vault;
    GridParameters internal params;
    RewardRedeemer internal redeemer;

    address internal admin = address(0xAD);
    address internal settler = address(0x5E77);
    address internal timelock = address(0x7173);
    address internal operator = address(0x0FE4);
    address internal relayer = address(0x4E1A);
    address internal seller = address(0x5E11);
    uint256 internal constant HOME_KEY = 0x40AE;
    address internal home;

    uint64 internal constant GENESIS = 1_700_000_000;
    uint64 internal constant EPOCH = 1 days;
    uint256 internal constant POOL = 10_000e6;
    uint256 internal constant OWED = 200e6; // 200 currency units
    uint256 internal constant RATE = 100_000; // 0.1 currency unit per GSR (the default)

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

    function setUp() public {
        home = vm.addr(HOME_KEY);
        vm.warp(GENESIS + 3 * EPOCH + 10); // epoch 3
        cash = new SettlementToken("Test", "TST", admin);
        vault = new EnergySettlementVault(cash, admin, uint128(1_000e6));
        reward = new RewardToken(admin, 1_000_000_000e6);
        params = _deployParameters(timelock);
        redeemer = new RewardRedeemer(reward, vault, params, timelock, GENESIS, EPOCH);

        vm.startPrank(admin);
        vault.grantRole(vault.SETTLER_ROLE(), settler);
        reward.grantRole(reward.MINTER_ROLE(), admin);
        reward.mint(home, 5_000e6);
        cash.mint(operator, POOL);
        vm.stopPrank();

        vm.startPrank(operator);
        cash.approve(address(redeemer), POOL);
        redeemer.fund(POOL);
        vm.stopPrank();

        // The home bought OWED from the seller and owes it (within the credit line).
        address[] memory accounts = new address[](2);
        accounts[0] = home;
        accounts[1] = seller;
        vm.startPrank(settler);
        vault.registerAccounts(accounts);
        vault.settleInterval(1, 0, 1, bytes32(0), keccak256("trades"), Deltas.pair(0, -int256(OWED), 1, int256(OWED)));
        vm.stopPrank();

        vm.prank(home);
        reward.approve(address(redeemer), type(uint256).max);
    }

    function _redeem(address who, uint256 amount) internal returns (uint256) {
        vm.prank(who);
        return redeemer.redeem(amount);
    }

    function _setParam(bytes32 key, uint256 value) internal {
        vm.prank(timelock);
        params.set(key, value);
    }

    function _permit(uint256 key, uint256 amount, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        address owner = vm.addr(key);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                owner,
                address(redeemer),
                amount,
                reward.nonces(owner),
                deadline
            )
        );
        return vmSign.sign(key, keccak256(abi.encodePacked("\x19\x01", reward.DOMAIN_SEPARATOR(), structHash)));
    }

    function test_Setup() public view {
        assertEq(uint256(redeemer.currentEpoch()), 3, "epoch 3");
        assertEq(redeemer.pool(), POOL, "pool funded");
        assertEq(vault.balanceOf(home), -int256(OWED), "home owes");
        assertEq(address(redeemer.settlementToken()), address(cash), "pool token = vault token");
        assertEq(redeemer.owner(), timelock, "owner");
    }

    function test_RedeemCreditsExactlyRateTimesAmount() public {
        uint256 amount = 1_234_567_891; // 1,234.567891 GSR
        uint256 credit = amount * RATE / 1e6; // 123.456789 currency units (floor)
        assertEq(credit, 123_456_789, "credit");
        assertEq(redeemer.quote(amount), credit, "quote");
        uint256 supply = reward.totalSupply();

        vm.expectEmit(address(redeemer));
        emit Redeemed(home, home, 3, amount, credit, RATE, OWED, credit);
        assertEq(_redeem(home, amount), credit, "returned credit");

        assertEq(vault.balanceOf(home), -int256(OWED) + int256(credit), "vault balance rose by the credit");
        assertEq(reward.totalSupply(), supply - amount, "reward supply fell by the amount");
        assertEq(reward.balanceOf(home), 5_000e6 - amount, "home's tokens burnt");
        assertEq(redeemer.pool(), POOL - credit, "pool fell by the credit");
        assertEq(cash.balanceOf(address(vault)), credit, "vault holds the credit");
        assertEq(redeemer.creditedIn(3), credit, "epoch count");
    }

    function test_RateFromGovernance() public {
        _setParam(params.REDEMPTION_RATE(), 200_000);
        _redeem(home, 100e6);
        assertEq(vault.balanceOf(home), -int256(OWED) + 20e6, "doubled rate doubles the credit");
        // A rate outside its bounds is refused where it is set.
        bytes32 key = params.REDEMPTION_RATE();
        vm.prank(timelock);
        vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, key, 1_000_001, 1_000, 1_000_000));
        params.set(key, 1_000_001);
        vm.prank(timelock);
        vm.expectRevert(abi.encodeWithSelector(GridParameters.OutOfBounds.selector, key, 999, 1_000, 1_000_000));
        params.set(key, 999);
        assertEq(params.get(key), 200_000, "rate unchanged");
    }

    function test_NeverMoreThanOwed() public {
        // 2,000 GSR credit exactly the 200 owed; one micro-token more would credit more.
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.ExceedsDebt.selector, OWED, OWED + 1));
        _redeem(home, 2_000e6 + 10);
        _redeem(home, 2_000e6);
        assertEq(vault.balanceOf(home), 0, "debt paid, nothing more");
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.NothingOwed.selector, home));
        _redeem(home, 10e6);
        assertEq(reward.balanceOf(home), 3_000e6, "refusals burn nothing");
    }

    function test_NothingOwedForACreditor() public {
        vm.prank(admin);
        reward.mint(seller, 10e6);
        vm.prank(seller);
        reward.approve(address(redeemer), 10e6);
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.NothingOwed.selector, seller));
        _redeem(seller, 10e6);
        // An account the vault never saw owes nothing either.
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.NothingOwed.selector, address(0x999)));
        _redeem(address(0x999), 10e6);
    }

    function test_BudgetPerEpochAndReset() public {
        _setParam(params.REDEMPTION_BUDGET(), 15e6);
        _redeem(home, 100e6); // 10 credited
        (uint64 epoch, uint256 left) = redeemer.budgetLeft();
        assertEq(uint256(epoch), 3, "epoch");
        assertEq(left, 5e6, "left");
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.BudgetExhausted.selector, uint64(3), 5e6));
        _redeem(home, 60e6); // 6 > 5 left
        _redeem(home, 50e6); // exactly what is left
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.BudgetExhausted.selector, uint64(3), 0));
        _redeem(home, 10e6);

        vm.warp(GENESIS + 4 * EPOCH); // first second of epoch 4
        assertEq(uint256(redeemer.currentEpoch()), 4, "next epoch");
        _redeem(home, 150e6);
        assertEq(redeemer.creditedIn(4), 15e6, "fresh budget");
        assertEq(redeemer.creditedIn(3), 15e6, "old epoch kept");

        // A budget lowered below what the epoch already credited leaves nothing.
        _setParam(params.REDEMPTION_BUDGET(), 10e6);
        (, left) = redeemer.budgetLeft();
        assertEq(left, 0, "nothing left");
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.BudgetExhausted.selector, uint64(4), 0));
        _redeem(home, 10e6);
    }

    function test_PoolLimitsAndOwnerWithdraws() public {
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(0xBAD)));
        redeemer.withdrawPool(address(0xBAD), 1);
        vm.prank(timelock);
        redeemer.withdrawPool(operator, POOL - 5e6);
        assertEq(cash.balanceOf(operator), POOL - 5e6, "withdrawn");
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.InsufficientPool.selector, 5e6, 10e6));
        _redeem(home, 100e6);
        _redeem(home, 50e6);
        assertEq(redeemer.pool(), 0, "pool empty");
    }

    function test_SmallAndZeroAmounts() public {
        vm.expectRevert(RewardRedeemer.ZeroAmount.selector);
        _redeem(home, 0);
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.ZeroCredit.selector, 9, RATE));
        _redeem(home, 9); // 0.9 micro-units: rounds to zero
        assertEq(_redeem(home, 19), 1, "rounded down");
    }

    function test_NeedsAllowance() public {
        vm.prank(home);
        reward.approve(address(redeemer), 0);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(redeemer), 0, 10e6)
        );
        _redeem(home, 10e6);
    }

    function test_NotBeforeGenesis() public {
        RewardRedeemer later = new RewardRedeemer(reward, vault, params, timelock, uint64(block.timestamp + 1), EPOCH);
        vm.expectRevert(abi.encodeWithSelector(RewardRedeemer.NotStarted.selector, uint64(block.timestamp + 1)));
        later.currentEpoch();
        vm.expectRevert(RewardRedeemer.InvalidEpochLength.selector);
        new RewardRedeemer(reward, vault, params, timelock, GENESIS, 0);
    }

    /// The custodial path: the service signs a permit with the account's key and relays it.
    function test_RedeemWithPermitByRelayer() public {
        vm.prank(home);
        reward.approve(address(redeemer), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(HOME_KEY, 100e6, deadline);
        vm.expectEmit(address(redeemer));
        emit Redeemed(home, relayer, 3, 100e6, 10e6, RATE, OWED, 10e6);
        vm.prank(relayer);
        redeemer.redeemWithPermit(home, 100e6, deadline, v, r, s);
        assertEq(vault.balanceOf(home), -int256(OWED) + 10e6, "credited");
        assertEq(reward.allowance(home, address(redeemer)), 0, "permit spent");
        // The same signature again: permit refused (nonce used), no allowance left.
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(redeemer), 0, 100e6)
        );
        redeemer.redeemWithPermit(home, 100e6, deadline, v, r, s);
        // A permit for another amount does not authorise this one.
        (v, r, s) = _permit(HOME_KEY, 100e6, deadline);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(redeemer), 0, 200e6)
        );
        redeemer.redeemWithPermit(home, 200e6, deadline, v, r, s);
    }

    function test_PermitFrontRunStillRedeems() public {
        vm.prank(home);
        reward.approve(address(redeemer), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(HOME_KEY, 100e6, deadline);
        reward.permit(home, address(redeemer), 100e6, deadline, v, r, s); // someone else uses it first
        vm.prank(relayer);
        redeemer.redeemWithPermit(home, 100e6, deadline, v, r, s);
        assertEq(vault.balanceOf(home), -int256(OWED) + 10e6, "credited");
    }

    function test_MaxRedeemable() public {
        (uint256 amount, uint256 credit) = redeemer.maxRedeemable(home);
        assertEq(amount, 2_000e6, "limited by the debt");
        assertEq(credit, OWED, "credit = debt");
        _setParam(params.REDEMPTION_BUDGET(), 50e6);
        (amount, credit) = redeemer.maxRedeemable(home);
        assertEq(credit, 50e6, "limited by the budget");
        _redeem(home, amount);
        (amount, credit) = redeemer.maxRedeemable(home);
        assertEq(amount, 0, "nothing left this epoch");
        (amount,) = redeemer.maxRedeemable(seller);
        assertEq(amount, 0, "creditor");
    }

    /// Gas of one redemption by the account itself and of one relayed with a permit (whole
    /// transactions: 21,000 + calldata + execution, every contract cold; an hour apart, so
    /// each burn appends a total-supply checkpoint). The home approved the redeemer for the
    /// maximum, so `redeem` leaves the allowance untouched.
    function test_GasRedeem() public {
        address[5] memory touched = [address(redeemer), address(reward), address(vault), address(cash), address(params)];
        bytes memory data = abi.encodeCall(RewardRedeemer.redeem, (100e6));
        for (uint256 i = 0; i < touched.length; ++i) {
            vm.cool(touched[i]);
        }
        vm.prank(home);
        Tx memory first = _tx(data, _measure(address(redeemer), data));
        vm.warp(block.timestamp + 1 hours); // a later block: a new supply checkpoint
        for (uint256 i = 0; i < touched.length; ++i) {
            vm.cool(touched[i]);
        }
        vm.prank(home);
        Tx memory second = _tx(data, _measure(address(redeemer), data));

        vm.prank(home);
        reward.approve(address(redeemer), 0);
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(HOME_KEY, 100e6, deadline);
        data = abi.encodeCall(RewardRedeemer.redeemWithPermit, (home, 100e6, deadline, v, r, s));
        for (uint256 i = 0; i < touched.length; ++i) {
            vm.cool(touched[i]);
        }
        vm.warp(block.timestamp + 1 hours);
        vm.prank(relayer);
        Tx memory permit = _tx(data, _measure(address(redeemer), data));
        assertEq(vault.balanceOf(home), -int256(OWED) + 30e6, "three redemptions");
        Console.log("redeem tx gas, first in the epoch", first.total);
        Console.log("redeem tx gas, later in the epoch", second.total);
        Console.log("redeemWithPermit tx gas (relayed)", permit.total);
    }
}
