// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./utils/TestBase.sol";
import {Deltas} from "./utils/Deltas.sol";
import {SettlementToken} from "../src/SettlementToken.sol";
import {EnergySettlementVault} from "../src/EnergySettlementVault.sol";

/// Drives the vault the way the community does, at random: deposits, withdrawals, zero-sum
/// batches (sometimes in two chunks), replays of old batch ids, settlement attempts while paused.
contract VaultHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    SettlementToken public immutable token;
    EnergySettlementVault public immutable vault;
    address public immutable admin;
    address public immutable settler;
    address[] public homes;

    uint64 public batchesSettled;
    uint256 public replaysAccepted;
    uint256 public settledWhilePaused;

    constructor(SettlementToken token_, EnergySettlementVault vault_, address admin_, address settler_) {
        token = token_;
        vault = vault_;
        admin = admin_;
        settler = settler_;
        for (uint256 i = 0; i < 6; ++i) {
            address home = address(uint160(0xB000 + i));
            homes.push(home);
            vm.prank(home);
            token.approve(address(vault), type(uint256).max);
        }
    }

    function homeCount() external view returns (uint256) {
        return homes.length;
    }

    function deposit(uint256 who, uint256 amount) external {
        address home = homes[who % homes.length];
        amount = amount % 10_000_000 + 1;
        vm.prank(admin);
        token.mint(home, amount);
        vm.prank(home);
        try vault.deposit(amount) {} catch {}
    }

    function withdraw(uint256 who, uint256 amount) external {
        address home = homes[who % homes.length];
        amount = amount % 20_000_000 + 1;
        vm.prank(home);
        try vault.withdraw(amount) {} catch {}
    }

    /// A batch between two registered homes, with random amounts; it may be refused by the
    /// credit line, which is fine: the invariants must hold either way.
    function settle(uint256 a, uint256 b, int64 amount, bool chunked) external {
        uint256 n = vault.accountCount();
        if (n < 2) return;
        uint256 i = a % n;
        uint256 j = b % n;
        if (i == j) return;
        if (i > j) (i, j) = (j, i);
        int256 d = int256(amount) % 30_000_000;
        if (d == 0) d = 1;
        bool paused = vault.paused();
        bool ok = chunked ? _settleChunked(i, j, d) : _settleOnce(i, j, d);
        if (ok) {
            batchesSettled++;
            if (paused) settledWhilePaused++;
        }
    }

    function _next() internal view returns (uint64 id, bytes32 root) {
        (uint64 last,,,) = vault.cursor();
        id = last + 1;
        root = keccak256(abi.encode("batch", id));
    }

    function _settleOnce(uint256 i, uint256 j, int256 d) internal returns (bool ok) {
        (uint64 id, bytes32 root) = _next();
        uint256[] memory deltas = Deltas.pair(i, d, j, -d);
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        try vault.settleInterval(id, 0, 1, prev, root, deltas) {
            ok = true;
        } catch {}
    }

    function _one(uint256 i, int256 d) internal pure returns (uint256[] memory out) {
        out = new uint256[](1);
        out[0] = Deltas.word(i, d);
    }

    function _settleChunked(uint256 i, uint256 j, int256 d) internal returns (bool) {
        (uint64 id, bytes32 root) = _next();
        bytes32 prev = vault.stateHash();
        vm.prank(settler);
        try vault.settleInterval(id, 0, 2, prev, root, _one(i, d)) {}
        catch {
            return false;
        }
        prev = vault.stateHash();
        vm.prank(settler);
        try vault.settleInterval(id, 1, 2, prev, root, _one(j, -d)) {
            return true;
        } catch {
            // The second account could not take its side: finish the batch by undoing the
            // first chunk's delta on the same account, so no batch is left half-applied.
            prev = vault.stateHash();
            vm.prank(settler);
            vault.settleInterval(id, 1, 2, prev, root, _one(i, -d));
            return true;
        }
    }

    function replayOldBatch(uint64 which) external {
        (uint64 last,,,) = vault.cursor();
        if (last == 0) return;
        uint64 id = which % last + 1;
        bytes32 prev = vault.stateHash();
        uint256[] memory deltas = Deltas.pair(0, 1, 1, -1);
        vm.prank(settler);
        try vault.settleInterval(id, 0, 1, prev, bytes32(0), deltas) {
            replaysAccepted++;
        } catch {}
    }

    function togglePause() external {
        vm.startPrank(admin);
        if (vault.paused()) vault.unpause();
        else vault.pause();
        vm.stopPrank();
    }
}

contract VaultInvariantTest is TestBase {
    SettlementToken internal token;
    EnergySettlementVault internal vault;
    VaultHandler internal handler;

    function setUp() public {
        address admin = address(0xAD);
        address settler = address(0x5E);
        token = new SettlementToken("Test", "TST", admin);
        vault = new EnergySettlementVault(token, admin, 20_000_000);
        handler = new VaultHandler(token, vault, admin, settler);
        vm.startPrank(admin);
        vault.grantRole(vault.SETTLER_ROLE(), settler);
        token.grantRole(token.MINTER_ROLE(), address(handler));
        vm.stopPrank();
        targetContract(address(handler));
    }

    /// Settlement only moves money between accounts: the books equal the tokens held.
    function invariant_BalancesSumToTokensHeld() public view {
        int256 books;
        uint256 n = vault.accountCount();
        for (uint256 i = 0; i < n; ++i) {
            books += vault.balanceOf(vault.accountAt(i));
        }
        assertEq(books, int256(token.balanceOf(address(vault))), "sum of balances == tokens held");
    }

    /// Every batch id is settled exactly once, in order.
    function invariant_NoBatchIdTwice() public view {
        (uint64 last, uint32 nextChunk,,) = vault.cursor();
        assertEq(uint256(last), uint256(handler.batchesSettled()), "one batch id per settled batch");
        assertEq(handler.replaysAccepted(), 0, "an old batch id was accepted again");
        assertEq(uint256(nextChunk), 0, "no batch left half-applied");
    }

    function invariant_PausedBlocksSettlement() public view {
        assertEq(handler.settledWhilePaused(), 0, "a batch settled while paused");
    }

    /// No account is below the credit line.
    function invariant_CreditLineHolds() public view {
        uint256 n = vault.accountCount();
        for (uint256 i = 0; i < n; ++i) {
            assertTrue(vault.balanceOf(vault.accountAt(i)) >= -int256(uint256(vault.creditLine())), "below credit line");
        }
    }
}
