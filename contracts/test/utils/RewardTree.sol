// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Reference implementation of rewards tree v1 for the tests (the contract notes of
/// `RewardDistributor` define it; `tools/rewards-vectors.mjs` is the same in JavaScript):
/// leaves sorted by account, padded with zero leaves to a power of two, sorted-pair hashing,
/// single proofs as sibling lists and OpenZeppelin multiproofs for a set of positions.
library RewardTree {
    function leaf(address account, uint256 cumulative) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))));
    }

    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    /// The levels of the tree over `leaves` (already in tree order), padded to a power of two;
    /// levels[0] are the padded leaves, the last level is the root alone.
    function build(bytes32[] memory leaves) internal pure returns (bytes32[][] memory levels) {
        uint256 size = 1;
        uint256 depth = 0;
        while (size < leaves.length) {
            size <<= 1;
            ++depth;
        }
        levels = new bytes32[][](depth + 1);
        bytes32[] memory level = new bytes32[](size);
        for (uint256 i = 0; i < leaves.length; ++i) {
            level[i] = leaves[i];
        }
        levels[0] = level;
        for (uint256 d = 1; d <= depth; ++d) {
            bytes32[] memory below = levels[d - 1];
            bytes32[] memory up = new bytes32[](below.length / 2);
            for (uint256 i = 0; i < up.length; ++i) {
                up[i] = hashPair(below[2 * i], below[2 * i + 1]);
            }
            levels[d] = up;
        }
    }

    function root(bytes32[][] memory levels) internal pure returns (bytes32) {
        return levels[levels.length - 1][0];
    }

    /// Siblings from the leaf at `index` up to the root.
    function proof(bytes32[][] memory levels, uint256 index) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](levels.length - 1);
        for (uint256 d = 0; d + 1 < levels.length; ++d) {
            out[d] = levels[d][index ^ 1];
            index >>= 1;
        }
    }

    /// The OpenZeppelin multiproof of the leaves at `positions` (strictly ascending), to be
    /// verified with the leaves in that order.
    function multiproof(bytes32[][] memory levels, uint256[] memory positions)
        internal
        pure
        returns (bytes32[] memory proofOut, bool[] memory flags)
    {
        uint256 depth = levels.length - 1;
        // Upper bounds: one flag per inner node on the paths (< positions * depth + 1), one
        // proof node per flag.
        uint256 bound = positions.length * depth + 1;
        proofOut = new bytes32[](bound);
        flags = new bool[](bound);
        uint256 nProof;
        uint256 nFlags;
        uint256[] memory known = positions;
        for (uint256 d = 0; d < depth; ++d) {
            uint256[] memory next = new uint256[](known.length);
            uint256 nNext;
            uint256 j = 0;
            while (j < known.length) {
                uint256 i = known[j];
                if (i % 2 == 0 && j + 1 < known.length && known[j + 1] == i + 1) {
                    flags[nFlags++] = true;
                    j += 2;
                } else {
                    flags[nFlags++] = false;
                    proofOut[nProof++] = levels[d][i ^ 1];
                    j += 1;
                }
                next[nNext++] = i >> 1;
            }
            assembly ("memory-safe") {
                mstore(next, nNext)
            }
            known = next;
        }
        assembly ("memory-safe") {
            mstore(proofOut, nProof)
            mstore(flags, nFlags)
        }
    }
}
