// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {RewardTree} from "./utils/RewardTree.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {RewardDistributor} from "../src/RewardDistributor.sol";

/// Checks the shared reward vectors (test/vectors/rewards_v1.json, written by
/// tools/rewards-vectors.mjs; the Rust side checks the same file): the distributor hashes every
/// account to the same leaf, accepts every proof and the multiproof against the same root, the
/// Solidity reference tree agrees with the JavaScript one, and the budget samples match.
contract RewardVectorsTest is TestBase {
    string internal json;
    address internal admin = address(0xAD);

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/test/vectors/rewards_v1.json"));
    }

    function _key(uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(".accounts[", vm.toString(i), "].", field);
    }

    function _deploy(bytes32 root) internal returns (RewardToken token, RewardDistributor dist) {
        token = new RewardToken(admin, 1_000_000e6);
        dist = new RewardDistributor(token, admin, 1_000_000e6, 1);
        vm.startPrank(admin);
        token.grantRole(token.MINTER_ROLE(), address(dist));
        dist.grantRole(dist.POSTER_ROLE(), admin);
        dist.postEpoch(1, root, keccak256("report"), vm.parseJsonUint(json, ".cumulativeTotal"));
        vm.stopPrank();
    }

    function _tree()
        internal
        view
        returns (address[] memory accounts, uint256[] memory cumulatives, bytes32[] memory leaves)
    {
        uint256 count = vm.parseJsonUint(json, ".count");
        assertTrue(count >= 2, "vectors present");
        accounts = new address[](count);
        cumulatives = new uint256[](count);
        leaves = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            accounts[i] = vm.parseJsonAddress(json, _key(i, "account"));
            cumulatives[i] = vm.parseJsonUint(json, _key(i, "cumulative"));
            leaves[i] = vm.parseJsonBytes32(json, _key(i, "leaf"));
            if (i > 0) assertTrue(accounts[i - 1] < accounts[i], "sorted by address");
        }
    }

    /// The multiproof of the file equals the Solidity reference's and pays its accounts.
    function _claimBatch(RewardDistributor dist, bytes32[][] memory levels) internal returns (uint256[] memory positions) {
        positions = vm.parseJsonUintArray(json, ".multiproof.positions");
        address[] memory mAccounts = vm.parseJsonAddressArray(json, ".multiproof.accounts");
        uint256[] memory mCumulatives = vm.parseJsonUintArray(json, ".multiproof.cumulatives");
        bytes32[] memory mProof = vm.parseJsonBytes32Array(json, ".multiproof.proof");
        bool[] memory mFlags = vm.parseJsonBoolArray(json, ".multiproof.proofFlags");
        (bytes32[] memory refProof, bool[] memory refFlags) = RewardTree.multiproof(levels, positions);
        assertEq(refProof.length, mProof.length, "proof length");
        assertEq(refFlags.length, mFlags.length, "flags length");
        for (uint256 i = 0; i < mProof.length; ++i) {
            assertEq(refProof[i], mProof[i], "proof node");
        }
        for (uint256 i = 0; i < mFlags.length; ++i) {
            assertTrue(refFlags[i] == mFlags[i], "flag");
        }
        uint256 expected;
        for (uint256 i = 0; i < positions.length; ++i) {
            assertEq(RewardTree.leaf(mAccounts[i], mCumulatives[i]), levels[0][positions[i]], "multiproof leaf");
            expected += mCumulatives[i];
        }
        assertEq(dist.claimMany(mAccounts, mCumulatives, mProof, mFlags), expected, "batch paid");
    }

    function test_VectorsVerifyOnChain() public {
        bytes32 root = vm.parseJsonBytes32(json, ".root");
        (RewardToken token, RewardDistributor dist) = _deploy(root);
        (address[] memory accounts, uint256[] memory cumulatives, bytes32[] memory leaves) = _tree();
        for (uint256 i = 0; i < accounts.length; ++i) {
            assertEq(dist.leafOf(accounts[i], cumulatives[i]), leaves[i], "leaf hash");
        }
        // The Solidity reference builds the same tree.
        bytes32[][] memory levels = RewardTree.build(leaves);
        assertEq(RewardTree.root(levels), root, "same root");
        assertEq(levels[0].length, vm.parseJsonUint(json, ".paddedCount"), "padded count");

        uint256[] memory positions = _claimBatch(dist, levels);

        // Every single proof: accepted for the others, nothing left for the batch's accounts.
        uint256 p = 0;
        for (uint256 i = 0; i < accounts.length; ++i) {
            bytes32[] memory proof = vm.parseJsonBytes32Array(json, _key(i, "proof"));
            assertEq(proof.length, levels.length - 1, "proof length");
            if (p < positions.length && positions[p] == i) {
                ++p;
                vm.expectRevert(
                    abi.encodeWithSelector(
                        RewardDistributor.NothingToClaim.selector, accounts[i], cumulatives[i], cumulatives[i]
                    )
                );
                dist.claim(accounts[i], cumulatives[i], proof);
            } else {
                assertEq(dist.claim(accounts[i], cumulatives[i], proof), cumulatives[i], "claim paid");
            }
            assertEq(token.balanceOf(accounts[i]), cumulatives[i], "paid in full");
        }
        assertEq(token.balanceOf(address(dist)), 0, "cumulative total = sum of the tree");
    }

    function test_BudgetSamples() public {
        RewardToken token = new RewardToken(admin, 1);
        for (uint256 i = 0; i < 6; ++i) {
            string memory k = string.concat(".budget[", vm.toString(i), "].");
            uint256 initial = vm.parseJsonUint(json, string.concat(k, "initialBudget"));
            uint64 halving = uint64(vm.parseJsonUint(json, string.concat(k, "halvingEpochs")));
            uint64 epoch = uint64(vm.parseJsonUint(json, string.concat(k, "epoch")));
            RewardDistributor dist = new RewardDistributor(token, admin, initial, halving);
            assertEq(dist.epochBudget(epoch), vm.parseJsonUint(json, string.concat(k, "budget")), "budget");
        }
    }
}
