// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {RewardTree} from "./utils/RewardTree.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {RewardDistributor} from "../src/RewardDistributor.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// Shared set-up: a token, a distributor with the minter role and a poster.
abstract contract RewardFixture is TestBase {
    RewardToken internal token;
    RewardDistributor internal dist;
    address internal admin = address(0xAD);
    address internal poster = address(0x9057);
    uint256 internal constant CAP = 1_000_000e6;
    uint256 internal constant BUDGET = 10_000e6;
    uint64 internal constant HALVING = 4;

    function _deploy(uint256 cap, uint256 budget, uint64 halving) internal {
        token = new RewardToken(admin, cap);
        dist = new RewardDistributor(token, admin, budget, halving);
        vm.startPrank(admin);
        token.grantRole(token.MINTER_ROLE(), address(dist));
        dist.grantRole(dist.POSTER_ROLE(), poster);
        vm.stopPrank();
    }

    /// `n` accounts in ascending order, with twenty non-zero-ish address bytes.
    function _accounts(uint256 n, uint256 salt) internal pure returns (address[] memory out) {
        out = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint160 low = uint160(uint256(keccak256(abi.encode(salt, i)))) >> 16;
            // forge-lint: disable-next-line(unsafe-typecast)
            out[i] = address(uint160((i + 1) << 144) | low);
        }
    }

    function _leaves(address[] memory accounts, uint256[] memory cumulatives)
        internal
        pure
        returns (bytes32[] memory leaves)
    {
        leaves = new bytes32[](accounts.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            leaves[i] = RewardTree.leaf(accounts[i], cumulatives[i]);
        }
    }

    function _sum(uint256[] memory xs) internal pure returns (uint256 s) {
        for (uint256 i = 0; i < xs.length; ++i) {
            s += xs[i];
        }
    }

    function _post(uint64 epoch, bytes32[][] memory levels, uint256 total) internal {
        vm.prank(poster);
        dist.postEpoch(epoch, RewardTree.root(levels), keccak256(abi.encode("report", epoch)), total);
    }

    function _all(uint256 n) internal pure returns (uint256[] memory positions) {
        positions = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            positions[i] = i;
        }
    }
}

contract RewardDistributorTest is RewardFixture {
    address[] internal accounts;
    uint256[] internal cum1;
    uint256[] internal cum2;
    bytes32[][] internal levels1;
    bytes32[][] internal levels2;

    function setUp() public {
        _deploy(CAP, BUDGET, HALVING);
        address[] memory a = _accounts(5, 1);
        for (uint256 i = 0; i < a.length; ++i) {
            accounts.push(a[i]);
            cum1.push((i + 1) * 100e6);
            cum2.push((i + 1) * 100e6 + (i % 2 == 0 ? 50e6 : 0));
        }
        _store(levels1, RewardTree.build(_leaves(accounts, cum1)));
        _store(levels2, RewardTree.build(_leaves(accounts, cum2)));
    }

    function _store(bytes32[][] storage dst, bytes32[][] memory src) internal {
        for (uint256 d = 0; d < src.length; ++d) {
            dst.push(src[d]);
        }
    }

    function _post1() internal {
        _post(1, levels1, _sum(cum1));
    }

    // ------------------------------------------------------------ constructor, budget

    function test_ConstructorChecks() public {
        vm.expectRevert(RewardDistributor.ZeroAddress.selector);
        new RewardDistributor(RewardToken(address(0)), admin, BUDGET, HALVING);
        vm.expectRevert(RewardDistributor.ZeroAddress.selector);
        new RewardDistributor(token, address(0), BUDGET, HALVING);
        vm.expectRevert(RewardDistributor.InvalidSchedule.selector);
        new RewardDistributor(token, admin, BUDGET, 0);
        assertEq(address(dist.token()), address(token), "token");
        assertEq(dist.initialBudget(), BUDGET, "initial budget");
        assertEq(dist.halvingEpochs(), HALVING, "halving");
    }

    function test_BudgetHalvesEveryHalvingEpochs() public {
        assertEq(dist.epochBudget(1), BUDGET, "epoch 1");
        assertEq(dist.epochBudget(4), BUDGET, "epoch 4");
        assertEq(dist.epochBudget(5), BUDGET / 2, "epoch 5");
        assertEq(dist.epochBudget(9), BUDGET / 4, "epoch 9");
        assertEq(dist.epochBudget(13), BUDGET >> 3, "epoch 13");
        assertEq(dist.epochBudget(type(uint64).max), 0, "far future");
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.InvalidEpoch.selector, 0));
        dist.epochBudget(0);
        RewardDistributor odd = new RewardDistributor(token, admin, 7, 1);
        assertEq(odd.epochBudget(2), 3, "halving rounds down");
        assertEq(odd.epochBudget(4), 0, "down to zero");
    }

    // ------------------------------------------------------------ postEpoch

    function test_PostEpochStoresAndMints() public {
        bytes32 root = RewardTree.root(levels1);
        bytes32 report = keccak256(abi.encode("report", uint64(1)));
        uint256 total = _sum(cum1);
        vm.expectEmit(address(dist));
        emit RewardDistributor.EpochPosted(1, root, report, total, total);
        _post1();
        assertEq(uint256(dist.lastEpoch()), 1, "last epoch");
        assertEq(dist.rootOf(1), root, "root");
        assertEq(dist.latestRoot(), root, "latest root");
        assertEq(dist.reportHashOf(1), report, "report hash");
        assertEq(dist.cumulativeTotal(), total, "cumulative total");
        assertEq(token.balanceOf(address(dist)), total, "minted to the distributor");
        assertEq(dist.rootOf(2), bytes32(0), "no root yet");

        // The second epoch mints only the increase.
        uint256 total2 = _sum(cum2);
        vm.expectEmit(address(dist));
        emit RewardDistributor.EpochPosted(
            2, RewardTree.root(levels2), keccak256(abi.encode("report", uint64(2))), total2 - total, total2
        );
        _post(2, levels2, total2);
        assertEq(token.totalSupply(), total2, "supply = cumulative total");
        assertEq(dist.rootOf(1), root, "old root kept");
    }

    function test_EpochWithoutNewRewardsMintsNothing() public {
        _post1();
        _post(2, levels1, _sum(cum1));
        assertEq(token.totalSupply(), _sum(cum1), "nothing minted");
        vm.prank(poster);
        dist.postEpoch(3, bytes32(0), bytes32(0), _sum(cum1));
        assertEq(uint256(dist.lastEpoch()), 3, "empty epoch still counts");
    }

    function test_OnlyPosterPosts() public {
        bytes32 role = dist.POSTER_ROLE();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, admin, role));
        dist.postEpoch(1, bytes32(uint256(1)), bytes32(0), 0);
    }

    function test_EpochsStrictlySequential() public {
        vm.startPrank(poster);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.EpochOutOfOrder.selector, 1, 0));
        dist.postEpoch(0, bytes32(uint256(1)), bytes32(0), 0);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.EpochOutOfOrder.selector, 1, 2));
        dist.postEpoch(2, bytes32(uint256(1)), bytes32(0), 0);
        dist.postEpoch(1, bytes32(uint256(1)), bytes32(0), 0);
        // A second root for the same epoch, and going backwards, are both refused.
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.EpochOutOfOrder.selector, 2, 1));
        dist.postEpoch(1, bytes32(uint256(2)), bytes32(0), 0);
        dist.postEpoch(2, bytes32(uint256(3)), bytes32(0), 0);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.EpochOutOfOrder.selector, 3, 1));
        dist.postEpoch(1, bytes32(uint256(4)), bytes32(0), 0);
        vm.stopPrank();
        assertEq(dist.rootOf(1), bytes32(uint256(1)), "epoch 1 root unchanged");
    }

    function test_CumulativeTotalNeverDecreases() public {
        _post1();
        uint256 total = _sum(cum1);
        vm.prank(poster);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.CumulativeTotalDecreased.selector, total, total - 1));
        dist.postEpoch(2, bytes32(uint256(1)), bytes32(0), total - 1);
    }

    function test_IncreaseBoundedByBudget() public {
        vm.startPrank(poster);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.OverBudget.selector, 1, BUDGET + 1, BUDGET));
        dist.postEpoch(1, bytes32(uint256(1)), bytes32(0), BUDGET + 1);
        dist.postEpoch(1, bytes32(uint256(1)), bytes32(0), BUDGET);
        dist.postEpoch(2, bytes32(uint256(1)), bytes32(0), 2 * BUDGET);
        dist.postEpoch(3, bytes32(uint256(1)), bytes32(0), 3 * BUDGET);
        dist.postEpoch(4, bytes32(uint256(1)), bytes32(0), 4 * BUDGET);
        // Epoch 5 has half the budget.
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.OverBudget.selector, 5, BUDGET / 2 + 1, BUDGET / 2));
        dist.postEpoch(5, bytes32(uint256(1)), bytes32(0), 4 * BUDGET + BUDGET / 2 + 1);
        vm.stopPrank();
        assertEq(uint256(dist.lastEpoch()), 4, "refused epoch not recorded");
    }

    function test_CapBoundsEmission() public {
        _deploy(BUDGET + BUDGET / 2, BUDGET, HALVING);
        vm.startPrank(poster);
        dist.postEpoch(1, bytes32(uint256(1)), bytes32(0), BUDGET);
        vm.expectRevert(abi.encodeWithSelector(ERC20Capped.ERC20ExceededCap.selector, 2 * BUDGET, BUDGET + BUDGET / 2));
        dist.postEpoch(2, bytes32(uint256(2)), bytes32(0), 2 * BUDGET);
        vm.stopPrank();
        assertEq(uint256(dist.lastEpoch()), 1, "refused epoch not recorded");
        assertEq(dist.cumulativeTotal(), BUDGET, "total unchanged");
    }

    // ------------------------------------------------------------ claim

    function test_LeafIsDoubleHashed() public view {
        address a = accounts[0];
        assertEq(dist.leafOf(a, 123), keccak256(bytes.concat(keccak256(abi.encode(a, uint256(123))))), "leaf");
    }

    function test_ClaimPaysTheDifference() public {
        _post1();
        address a = accounts[2];
        vm.expectEmit(address(dist));
        emit RewardDistributor.Claimed(a, cum1[2], cum1[2]);
        // Anyone may claim for the account; the tokens go to the account.
        vm.prank(address(0xBEEF));
        assertEq(dist.claim(a, cum1[2], RewardTree.proof(levels1, 2)), cum1[2], "paid");
        assertEq(token.balanceOf(a), cum1[2], "balance");
        assertEq(dist.claimed(a), cum1[2], "claimed");

        _post(2, levels2, _sum(cum2));
        assertEq(dist.claim(a, cum2[2], RewardTree.proof(levels2, 2)), cum2[2] - cum1[2], "difference paid");
        assertEq(token.balanceOf(a), cum2[2], "balance is the cumulative total");
    }

    function test_ClaimTwiceRefused() public {
        _post1();
        address a = accounts[1];
        bytes32[] memory proof = RewardTree.proof(levels1, 1);
        dist.claim(a, cum1[1], proof);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.NothingToClaim.selector, a, cum1[1], cum1[1]));
        dist.claim(a, cum1[1], proof);
        // Account 1 earned nothing in epoch 2: same cumulative, nothing to claim.
        _post(2, levels2, _sum(cum2));
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.NothingToClaim.selector, a, cum2[1], cum1[1]));
        dist.claim(a, cum2[1], RewardTree.proof(levels2, 1));
    }

    function test_ClaimMoreThanCumulativeRefused() public {
        _post1();
        address a = accounts[0];
        bytes32[] memory proof = RewardTree.proof(levels1, 0);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.InvalidProof.selector, a, cum1[0] + 1));
        dist.claim(a, cum1[0] + 1, proof);
        assertEq(token.balanceOf(a), 0, "nothing paid");
    }

    function test_ClaimWithWrongProofRefused() public {
        _post1();
        address a = accounts[0];
        bytes32[] memory proof = RewardTree.proof(levels1, 1);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.InvalidProof.selector, a, cum1[0]));
        dist.claim(a, cum1[0], proof);
        // Someone else's leaf and proof do not pay this account.
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.InvalidProof.selector, a, cum1[1]));
        dist.claim(a, cum1[1], proof);
        assertEq(dist.claimed(a), 0, "no state change");
    }

    function test_ClaimAgainstOldRootRefused() public {
        _post1();
        _post(2, levels2, _sum(cum2));
        address a = accounts[0];
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.InvalidProof.selector, a, cum1[0]));
        dist.claim(a, cum1[0], RewardTree.proof(levels1, 0));
    }

    function test_ClaimBeforeAnyEpochRefused() public {
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.InvalidProof.selector, accounts[0], cum1[0]));
        dist.claim(accounts[0], cum1[0], new bytes32[](0));
    }

    // ------------------------------------------------------------ claimMany

    function test_ClaimManyPaysEveryone() public {
        _post1();
        (bytes32[] memory proof, bool[] memory flags) = RewardTree.multiproof(levels1, _all(5));
        assertEq(dist.claimMany(accounts, cum1, proof, flags), _sum(cum1), "paid");
        for (uint256 i = 0; i < 5; ++i) {
            assertEq(token.balanceOf(accounts[i]), cum1[i], "balance");
            assertEq(dist.claimed(accounts[i]), cum1[i], "claimed");
        }
        assertEq(token.balanceOf(address(dist)), 0, "everything paid out");
    }

    function test_ClaimManySubsetAndSkipsAccountsWithNothingNew() public {
        _post1();
        dist.claim(accounts[3], cum1[3], RewardTree.proof(levels1, 3));
        uint256[] memory positions = new uint256[](3);
        positions[0] = 0;
        positions[1] = 3;
        positions[2] = 4;
        (bytes32[] memory proof, bool[] memory flags) = RewardTree.multiproof(levels1, positions);
        address[] memory a = new address[](3);
        uint256[] memory c = new uint256[](3);
        for (uint256 i = 0; i < 3; ++i) {
            a[i] = accounts[positions[i]];
            c[i] = cum1[positions[i]];
        }
        vm.expectEmit(address(token));
        emit IERC20.Transfer(address(dist), a[0], c[0]);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(address(dist), a[2], c[2]);
        vm.expectEmit(address(dist));
        emit RewardDistributor.ClaimedMany(1, 2, c[0] + c[2]);
        assertEq(dist.claimMany(a, c, proof, flags), c[0] + c[2], "account 3 skipped");
        // The same batch again pays nothing and does not revert.
        vm.expectEmit(address(dist));
        emit RewardDistributor.ClaimedMany(1, 0, 0);
        assertEq(dist.claimMany(a, c, proof, flags), 0, "retried batch");
        assertEq(token.balanceOf(accounts[3]), cum1[3], "paid once");
    }

    function test_ClaimManyWrongProofRevertsWholeBatch() public {
        _post1();
        (bytes32[] memory proof, bool[] memory flags) = RewardTree.multiproof(levels1, _all(5));
        uint256[] memory c = new uint256[](5);
        for (uint256 i = 0; i < 5; ++i) {
            c[i] = cum1[i];
        }
        c[4] += 1;
        vm.expectRevert(RewardDistributor.InvalidMultiproof.selector);
        dist.claimMany(accounts, c, proof, flags);
        // Leaves out of order do not verify either.
        address[] memory swapped = new address[](5);
        for (uint256 i = 0; i < 5; ++i) {
            swapped[i] = accounts[i];
            c[i] = cum1[i];
        }
        (swapped[0], swapped[1]) = (swapped[1], swapped[0]);
        (c[0], c[1]) = (c[1], c[0]);
        // Sorted-pair hashing makes a swap of two siblings harmless; swap across subtrees.
        (swapped[1], swapped[4]) = (swapped[4], swapped[1]);
        (c[1], c[4]) = (c[4], c[1]);
        vm.expectRevert(RewardDistributor.InvalidMultiproof.selector);
        dist.claimMany(swapped, c, proof, flags);
        // Malformed lengths: OpenZeppelin's own error.
        bool[] memory short = new bool[](flags.length - 1);
        vm.expectRevert(MerkleProof.MerkleProofInvalidMultiproof.selector);
        dist.claimMany(accounts, cum1, proof, short);
        for (uint256 i = 0; i < 5; ++i) {
            assertEq(dist.claimed(accounts[i]), 0, "no state change");
        }
    }

    function test_ClaimManyInputChecks() public {
        _post1();
        uint256[] memory c = new uint256[](4);
        vm.expectRevert(abi.encodeWithSelector(RewardDistributor.LengthMismatch.selector, 5, 4));
        dist.claimMany(accounts, c, new bytes32[](0), new bool[](0));
        bytes32[] memory rootOnly = new bytes32[](1);
        rootOnly[0] = dist.latestRoot();
        vm.expectRevert(RewardDistributor.EmptyBatch.selector);
        dist.claimMany(new address[](0), new uint256[](0), rootOnly, new bool[](0));
    }

    function test_SingleAccountTree() public {
        address[] memory one = new address[](1);
        one[0] = accounts[0];
        uint256[] memory c = new uint256[](1);
        c[0] = 7e6;
        bytes32[][] memory levels = RewardTree.build(_leaves(one, c));
        assertEq(RewardTree.root(levels), RewardTree.leaf(one[0], c[0]), "root is the leaf");
        _post(1, levels, 7e6);
        (bytes32[] memory proof, bool[] memory flags) = RewardTree.multiproof(levels, _all(1));
        assertEq(proof.length + flags.length, 0, "empty multiproof");
        assertEq(dist.claimMany(one, c, proof, flags), 7e6, "paid");
    }

    /// Any subset of any tree size proves with the reference multiproof, and claims in any
    /// order and pieces never pay an account more than its cumulative total.
    function testFuzz_ClaimedNeverExceedsCumulative(uint8 size, uint256 subsetBits, uint256 growth) public {
        uint256 n = uint256(size) % 40 + 1;
        address[] memory a = _accounts(n, growth);
        uint256[] memory c1 = new uint256[](n);
        uint256[] memory c2 = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            c1[i] = uint256(keccak256(abi.encode(growth, i))) % 100e6;
            c2[i] = c1[i] + uint256(keccak256(abi.encode(growth, i, 2))) % 100e6;
        }
        bytes32[][] memory l1 = RewardTree.build(_leaves(a, c1));
        _post(1, l1, _sum(c1));
        _claimSubset(l1, a, c1, subsetBits);
        bytes32[][] memory l2 = RewardTree.build(_leaves(a, c2));
        _post(2, l2, _sum(c2));
        _claimSubset(l2, a, c2, subsetBits >> 128 | 1);
        uint256 paid;
        for (uint256 i = 0; i < n; ++i) {
            assertLe(dist.claimed(a[i]), c2[i], "claimed <= cumulative");
            assertEq(token.balanceOf(a[i]), dist.claimed(a[i]), "balance = claimed");
            paid += dist.claimed(a[i]);
        }
        assertEq(paid + token.balanceOf(address(dist)), dist.cumulativeTotal(), "paid + held = minted");
    }

    function _claimSubset(bytes32[][] memory levels, address[] memory a, uint256[] memory c, uint256 bits) internal {
        uint256 k;
        for (uint256 i = 0; i < a.length; ++i) {
            if ((bits >> (i % 256)) & 1 == 1) ++k;
        }
        if (k == 0) return;
        uint256[] memory positions = new uint256[](k);
        address[] memory sa = new address[](k);
        uint256[] memory sc = new uint256[](k);
        k = 0;
        for (uint256 i = 0; i < a.length; ++i) {
            if ((bits >> (i % 256)) & 1 == 1) {
                positions[k] = i;
                sa[k] = a[i];
                sc[k] = c[i];
                ++k;
            }
        }
        (bytes32[] memory proof, bool[] memory flags) = RewardTree.multiproof(levels, positions);
        dist.claimMany(sa, sc, proof, flags);
        // Everyone else claims one by one where there is something new.
        for (uint256 i = 0; i < a.length; ++i) {
            if (i % 3 == 0 && dist.claimed(a[i]) < c[i]) dist.claim(a[i], c[i], RewardTree.proof(levels, i));
        }
    }
}
