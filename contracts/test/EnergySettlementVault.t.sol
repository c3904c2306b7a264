// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {Deltas} from "./utils/Deltas.sol";
import {SettlementToken} from "../src/SettlementToken.sol";
import {EnergySettlementVault} from "../src/EnergySettlementVault.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

contract EnergySettlementVaultTest is TestBase {
    SettlementToken internal token;
    EnergySettlementVault internal vault;

    address internal admin = address(0xA11CE);
    address internal settler = address(0x5E771E);
    address internal alice = address(0xA);
    address internal bob = address(0xB);
    address internal carol = address(0xC);

    uint128 internal constant CREDIT = 50_000_000; // 50 currency units

    function setUp() public {
        token = new SettlementToken("Test", "TST", admin);
        vault = new EnergySettlementVault(token, admin, CREDIT);
        vm.startPrank(admin);
        vault.grantRole(vault.SETTLER_ROLE(), settler);
        token.mint(alice, 1_000_000_000);
        token.mint(bob, 1_000_000_000);
        vm.stopPrank();
        vm.prank(alice);
        token.approve(address(vault), type(uint256).max);
        vm.prank(bob);
        token.approve(address(vault), type(uint256).max);
    }

    function _deposit(address who, uint256 amount) internal {
        vm.prank(who);
        vault.deposit(amount);
    }

    function _register(address a, address b, address c) internal {
        address[] memory list = new address[](3);
        list[0] = a;
        list[1] = b;
        list[2] = c;
        vm.prank(settler);
        vault.registerAccounts(list);
    }

    function _settle(uint64 batchId, uint256[] memory deltas) internal {
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        vault.settleInterval(batchId, 0, 1, prev, keccak256(abi.encode(batchId)), deltas);
    }

    // ------------------------------------------------------------ deposits

    function test_DepositRegistersAndCredits() public {
        _deposit(alice, 10_000_000);
        assertEq(vault.indexOf(alice), 0, "first account gets index 0");
        assertEq(vault.balanceOf(alice), int256(10_000_000), "balance");
        assertEq(token.balanceOf(address(vault)), 10_000_000, "tokens held");
    }

    function test_WithdrawTakesOnlyPositiveBalance() public {
        _deposit(alice, 10_000_000);
        vm.prank(alice);
        vault.withdraw(4_000_000);
        assertEq(vault.balanceOf(alice), int256(6_000_000), "balance after withdraw");
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(EnergySettlementVault.InsufficientBalance.selector, alice, int256(6_000_000), 6_000_001)
        );
        vault.withdraw(6_000_001);
    }

    function test_WithdrawUnknownAccountReverts() public {
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.UnknownAccount.selector, carol));
        vault.withdraw(1);
    }

    function test_ZeroDepositReverts() public {
        vm.prank(alice);
        vm.expectRevert(EnergySettlementVault.ZeroAmount.selector);
        vault.deposit(0);
    }

    // ----------------------------------------------------------- settlement

    function test_SettleMovesBalancesAndChainsStateHash() public {
        _deposit(alice, 10_000_000);
        _deposit(bob, 10_000_000);
        bytes32 before = vault.stateHash();
        uint256[] memory deltas = Deltas.pair(0, -2_500_000, 1, 2_500_000);
        _settle(1, deltas);
        assertEq(vault.balanceOf(alice), int256(7_500_000), "buyer debited");
        assertEq(vault.balanceOf(bob), int256(12_500_000), "seller credited");
        (uint64 last,,,) = vault.cursor();
        assertEq(uint256(last), 1, "last batch id");
        bytes32 expected = keccak256(
            abi.encodePacked(
                before, uint64(1), uint32(0), uint32(1), keccak256(abi.encode(uint64(1))), keccak256(abi.encodePacked(deltas))
            )
        );
        assertEq(vault.stateHash(), expected, "state hash chain");
        assertEq(vault.tradesRoot(1), keccak256(abi.encode(uint64(1))), "root stored");
    }

    function test_BalancesPackedTwoPerSlotStayIndependent() public {
        _register(alice, bob, carol);
        uint256[] memory deltas = new uint256[](3);
        deltas[0] = Deltas.word(0, -int256(uint256(CREDIT)));
        deltas[1] = Deltas.word(1, 1);
        deltas[2] = Deltas.word(2, int256(uint256(CREDIT)) - 1);
        _settle(1, deltas);
        assertEq(vault.balanceOf(alice), -int256(uint256(CREDIT)), "low half negative");
        assertEq(vault.balanceOf(bob), int256(1), "high half");
        assertEq(vault.balanceOf(carol), int256(uint256(CREDIT)) - 1, "next slot");
    }

    function test_BatchIdsAreSequential() public {
        _register(alice, bob, carol);
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.BatchOutOfOrder.selector, uint64(1), uint64(2)));
        vault.settleInterval(2, 0, 1, prev, bytes32(0), Deltas.pair(0, -1, 1, 1));

        _settle(1, Deltas.pair(0, -1, 1, 1));
        prev = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.BatchOutOfOrder.selector, uint64(2), uint64(1)));
        vault.settleInterval(1, 0, 1, prev, bytes32(0), Deltas.pair(0, -1, 1, 1));
    }

    function test_StaleStateHashReverts() public {
        _register(alice, bob, carol);
        bytes32 stale = vault.stateHash();
        _settle(1, Deltas.pair(0, -1, 1, 1));
        bytes32 current = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.StateHashMismatch.selector, current, stale));
        vault.settleInterval(2, 0, 1, stale, bytes32(0), Deltas.pair(0, -1, 1, 1));
    }

    function test_NonZeroSumReverts() public {
        _register(alice, bob, carol);
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.NonZeroSum.selector, int256(1)));
        vault.settleInterval(1, 0, 1, prev, bytes32(0), Deltas.pair(0, -1, 1, 2));
    }

    function test_DebitBeyondCreditLineReverts() public {
        _register(alice, bob, carol);
        int256 tooMuch = int256(uint256(CREDIT)) + 1;
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(
            abi.encodeWithSelector(EnergySettlementVault.DebitExceedsCredit.selector, alice, -tooMuch, CREDIT)
        );
        vault.settleInterval(1, 0, 1, prev, bytes32(0), Deltas.pair(0, -tooMuch, 1, tooMuch));
    }

    function test_UnsortedOrDuplicateIndicesRevert() public {
        _register(alice, bob, carol);
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.DeltasNotSorted.selector, uint256(1)));
        vault.settleInterval(1, 0, 1, prev, bytes32(0), Deltas.pair(1, -1, 0, 1));
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.DeltasNotSorted.selector, uint256(1)));
        vault.settleInterval(1, 0, 1, prev, bytes32(0), Deltas.pair(1, -1, 1, 1));
    }

    function test_UnknownIndexReverts() public {
        _register(alice, bob, carol);
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.IndexOutOfRange.selector, uint256(1), uint256(3)));
        vault.settleInterval(1, 0, 1, prev, bytes32(0), Deltas.pair(0, -1, 3, 1));
    }

    function test_OnlySettlerSettles() public {
        _register(alice, bob, carol);
        bytes32 prev = vault.stateHash();
        bytes32 role = vault.SETTLER_ROLE();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role));
        vault.settleInterval(1, 0, 1, prev, bytes32(0), Deltas.pair(0, -1, 1, 1));
    }

    function test_PauseBlocksSettlementAndWithdrawals() public {
        _deposit(alice, 1_000_000);
        _register(alice, bob, carol);
        vm.prank(admin);
        vault.pause();
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vault.settleInterval(1, 0, 1, prev, bytes32(0), Deltas.pair(0, -1, 1, 1));
        vm.prank(alice);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vault.withdraw(1);
        vm.prank(admin);
        vault.unpause();
        _settle(1, Deltas.pair(0, -1, 1, 1));
    }

    function test_ChunkedBatchChecksSumAtTheEndAndBlocksWithdrawals() public {
        _deposit(alice, 5_000_000);
        _deposit(bob, 5_000_000);
        address[] memory more = new address[](1);
        more[0] = carol;
        vm.prank(settler);
        vault.registerAccounts(more);
        bytes32 root = keccak256("trades");

        uint256[] memory first = new uint256[](1);
        first[0] = Deltas.word(0, -3_000_000);
        uint256[] memory second = new uint256[](2);
        second[0] = Deltas.word(1, 1_000_000);
        second[1] = Deltas.word(2, 2_000_000);

        bytes32 start = vault.stateHash();
        vm.prank(settler);
        vault.settleInterval(1, 0, 2, start, root, first);
        (uint64 last, uint32 nextChunk, uint32 count, int128 pending) = vault.cursor();
        assertEq(uint256(last), 0, "batch not complete yet");
        assertEq(uint256(nextChunk), 1, "next chunk");
        assertEq(uint256(count), 2, "chunk count");
        assertEq(int256(pending), -3_000_000, "pending sum");

        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.BatchInProgress.selector, uint64(1)));
        vault.withdraw(1);

        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.TradesRootMismatch.selector, root, bytes32(0)));
        vault.settleInterval(1, 1, 2, prev, bytes32(0), second);
        vm.prank(settler);
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.BadChunkCount.selector, uint32(2), uint32(3)));
        vault.settleInterval(1, 1, 3, prev, root, second);

        vm.prank(settler);
        vault.settleInterval(1, 1, 2, prev, root, second);
        (last, nextChunk,,) = vault.cursor();
        assertEq(uint256(last), 1, "batch complete");
        assertEq(vault.balanceOf(alice), int256(2_000_000), "alice");
        assertEq(vault.balanceOf(bob), int256(6_000_000), "bob");
        assertEq(vault.balanceOf(carol), int256(2_000_000), "carol");
    }

    function test_LastChunkWithNonZeroTotalReverts() public {
        _register(alice, bob, carol);
        uint256[] memory first = new uint256[](1);
        first[0] = Deltas.word(0, -3);
        uint256[] memory second = new uint256[](1);
        second[0] = Deltas.word(1, 2);
        bytes32 start = vault.stateHash();
        vm.startPrank(settler);
        vault.settleInterval(1, 0, 2, start, bytes32(0), first);
        bytes32 prev = vault.stateHash();
        vm.expectRevert(abi.encodeWithSelector(EnergySettlementVault.NonZeroSum.selector, int256(-1)));
        vault.settleInterval(1, 1, 2, prev, bytes32(0), second);
        vm.stopPrank();
    }

    // ----------------------------------------------------------------- fuzz

    /// Any zero-sum batch within the credit line settles, and the books still match the tokens.
    function testFuzz_ZeroSumBatchKeepsBooksEqualToTokens(int64[8] memory raw, uint256 depositA) public {
        depositA = depositA % 500_000_000 + 1;
        _deposit(alice, depositA);
        address[] memory homes = new address[](8);
        for (uint256 i = 0; i < 8; ++i) {
            homes[i] = address(uint160(0x1000 + i));
        }
        vm.prank(settler);
        vault.registerAccounts(homes); // indices 1..8

        uint256[] memory deltas = new uint256[](9);
        int256 sum;
        for (uint256 i = 0; i < 8; ++i) {
            int256 d = int256(raw[i]) % int256(uint256(CREDIT));
            deltas[i + 1] = Deltas.word(i + 1, d);
            sum += d;
        }
        // alice (index 0) takes the other side; she must stay within her balance + credit
        vm.assume(int256(depositA) - sum >= -int256(uint256(CREDIT)));
        deltas[0] = Deltas.word(0, -sum);
        _settle(1, deltas);

        int256 books = vault.balanceOf(alice);
        for (uint256 i = 0; i < 8; ++i) {
            books += vault.balanceOf(homes[i]);
        }
        assertEq(books, int256(token.balanceOf(address(vault))), "sum of balances == tokens held");
    }

    function testFuzz_DepositWithdrawRoundTrip(uint128 amount, uint128 take) public {
        amount = uint128(bound(amount, 1, 1_000_000_000));
        take = uint128(bound(take, 1, amount));
        uint256 walletBefore = token.balanceOf(alice);
        _deposit(alice, amount);
        vm.prank(alice);
        vault.withdraw(take);
        assertEq(vault.balanceOf(alice), int256(uint256(amount - take)), "balance");
        assertEq(token.balanceOf(alice), walletBefore - amount + take, "wallet");
    }

    function bound(uint128 x, uint128 lo, uint128 hi) internal pure returns (uint128) {
        return lo + x % (hi - lo + 1);
    }
}
