// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {RewardFixture} from "./RewardDistributor.t.sol";
import {RewardTree} from "./utils/RewardTree.sol";
import {Console} from "./utils/Console.sol";
import {RewardDistributor} from "../src/RewardDistributor.sol";

/// Gas per home per epoch: one `postEpoch` plus one `claimMany` for every home, at 10, 100 and
/// 1,000 homes. Epoch 1 is the cold case (every home's `claimed` slot and token balance go from
/// zero to non-zero); epoch 2 the warm one (both slots already non-zero, but first touched in
/// the transaction: `vm.cool` resets the access lists between transactions). Figures are whole
/// transactions: execution measured around the call, plus 21,000 and the calldata (the larger of
/// the standard and the EIP-7623 floor price). Print them with
///     contracts/test.sh, then: forge test --match-contract RewardGasTest -vv
/// (with FOUNDRY_SOLC=tools/solc, as test.sh sets it).
contract RewardGasTest is RewardFixture {
    struct Tx {
        uint256 execution;
        uint256 total;
    }

    function setUp() public {
        _deploy(type(uint128).max, type(uint128).max, 1);
    }

    /// 21,000 + calldata + execution; calldata priced the standard way (4 per zero byte, 16 per
    /// other byte) unless the EIP-7623 floor (10 per token, a token per zero byte and four per
    /// other byte) is higher.
    function _tx(bytes memory data, uint256 execution) internal pure returns (Tx memory t) {
        uint256 zeros;
        for (uint256 i = 0; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 tokens = zeros + 4 * (data.length - zeros);
        uint256 standard = 21_000 + 4 * tokens + execution;
        uint256 floor = 21_000 + 10 * tokens;
        t.execution = execution;
        t.total = standard > floor ? standard : floor;
    }

    /// The gas of one call, measured around the CALL alone: Solidity's `.call(data)` would
    /// copy `data` into fresh memory inside the window, and this test's memory is large.
    function _measure(address target, bytes memory data) internal returns (uint256 used) {
        bool ok;
        assembly ("memory-safe") {
            let before := gas()
            ok := call(gas(), target, 0, add(data, 0x20), mload(data), 0, 0)
            used := sub(before, gas())
        }
        assertTrue(ok, "call failed");
    }

    function _postEpoch(uint64 epoch, bytes32 root, uint256 total) internal returns (Tx memory) {
        bytes memory data = abi.encodeCall(RewardDistributor.postEpoch, (epoch, root, keccak256("report"), total));
        vm.cool(address(dist));
        vm.cool(address(token));
        vm.prank(poster);
        return _tx(data, _measure(address(dist), data));
    }

    function _claimMany(bytes32[][] memory levels, address[] memory accounts, uint256[] memory cumulatives)
        internal
        returns (Tx memory)
    {
        (bytes32[] memory proof, bool[] memory flags) = RewardTree.multiproof(levels, _all(accounts.length));
        bytes memory data = abi.encodeCall(RewardDistributor.claimMany, (accounts, cumulatives, proof, flags));
        vm.cool(address(dist));
        vm.cool(address(token));
        return _tx(data, _measure(address(dist), data));
    }

    /// Prefixed to the printed labels (the self-delegated runs).
    string internal labelPrefix;

    function _epoch(uint64 epoch, address[] memory accounts, uint256 base) internal returns (uint256 perHome) {
        // Epochs are a day apart: each one's vote checkpoints are new entries, not overwrites.
        vm.warp(block.timestamp + 1 days);
        uint256 n = accounts.length;
        uint256[] memory cumulatives = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            cumulatives[i] = base + i * 1_000 + 123_456;
        }
        bytes32[][] memory levels = RewardTree.build(_leaves(accounts, cumulatives));
        Tx memory post = _postEpoch(epoch, RewardTree.root(levels), _sum(cumulatives));
        Tx memory batch = _claimMany(levels, accounts, cumulatives);
        for (uint256 i = 0; i < n; ++i) {
            assertEq(dist.claimed(accounts[i]), cumulatives[i], "claimed");
        }
        perHome = (post.total + batch.total) / n;
        string memory label = string.concat(labelPrefix, vm.toString(n), epoch == 1 ? " homes, cold" : " homes, warm");
        Console.log(string.concat(label, ": postEpoch tx gas"), post.total);
        Console.log(string.concat(label, ": claimMany tx gas"), batch.total);
        Console.log(string.concat(label, ": claimMany execution per home"), batch.execution / n);
        Console.log(string.concat(label, ": gas per home per epoch (post + claims)"), perHome);
    }

    function _run(uint256 n) internal returns (uint256 cold, uint256 warm) {
        address[] memory accounts = _accounts(n, n);
        cold = _epoch(1, accounts, 5_000_000);
        warm = _epoch(2, accounts, 9_000_000);
    }

    function test_Gas10Homes() public {
        (uint256 cold, uint256 warm) = _run(10);
        assertLe(warm, cold, "warm cheaper than cold");
    }

    function test_Gas100Homes() public {
        _run(100);
    }

    /// The issue's figure: at 1,000 homes, warm.
    function test_Gas1000Homes() public {
        (, uint256 warm) = _run(1_000);
        // Regression guard a little above today's figure (see README).
        // ERC20Votes costs ~2,900 per payout even for undelegated homes (it reads the
        // delegates of both sides).
        assertLe(warm, 19_500, "warm gas per home per epoch at 1,000 homes");
    }

    /// Homes delegated to themselves (as the service delegates custodial accounts): every
    /// payout also appends a vote checkpoint for the home (a new storage slot).
    function test_Gas100HomesSelfDelegated() public {
        address[] memory accounts = _accounts(100, 100);
        for (uint256 i = 0; i < accounts.length; ++i) {
            vm.prank(accounts[i]);
            token.delegate(accounts[i]);
        }
        labelPrefix = "self-delegated, ";
        (, uint256 warm) = _run(100);
        assertEq(token.getVotes(accounts[7]), token.balanceOf(accounts[7]), "votes follow the claims");
        assertLe(warm, 55_000, "warm gas per self-delegated home per epoch at 100 homes");
    }

    /// A single claim (a homeowner with a wallet), for comparison: cold and warm.
    function test_GasSingleClaim() public {
        address[] memory accounts = _accounts(1_000, 7);
        uint256[] memory c = new uint256[](1_000);
        for (uint256 i = 0; i < 1_000; ++i) {
            c[i] = 1e6 + i;
        }
        bytes32[][] memory levels = RewardTree.build(_leaves(accounts, c));
        _post(1, levels, _sum(c));
        for (uint256 round = 0; round < 2; ++round) {
            if (round == 1) {
                for (uint256 i = 0; i < 1_000; ++i) {
                    c[i] += 1e6;
                }
                levels = RewardTree.build(_leaves(accounts, c));
                _post(2, levels, _sum(c));
            }
            bytes memory data =
                abi.encodeCall(RewardDistributor.claim, (accounts[500], c[500], RewardTree.proof(levels, 500)));
            vm.cool(address(dist));
            vm.cool(address(token));
            uint256 used = _measure(address(dist), data);
            Console.log(round == 0 ? "single claim tx gas, cold" : "single claim tx gas, warm", _tx(data, used).total);
        }
    }
}
