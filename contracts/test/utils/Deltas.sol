// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Builds the vault's packed delta words `(index << 128) | uint128(int128 delta)`.
library Deltas {
    function word(uint256 index, int256 delta) internal pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return (index << 128) | uint256(uint128(int128(delta)));
    }

    function pair(uint256 a, int256 da, uint256 b, int256 db) internal pure returns (uint256[] memory out) {
        out = new uint256[](2);
        out[0] = word(a, da);
        out[1] = word(b, db);
    }
}
