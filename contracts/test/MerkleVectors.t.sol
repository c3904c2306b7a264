// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {Deltas} from "./utils/Deltas.sol";
import {SettlementToken} from "../src/SettlementToken.sol";
import {EnergySettlementVault} from "../src/EnergySettlementVault.sol";

/// Checks the vectors the Rust side generates (settlement/tests/merkle_vectors.rs): the vault
/// hashes every trade to the same leaf and accepts every proof against the same root.
contract MerkleVectorsTest is TestBase {
    function _trade(string memory json, uint256 i) internal pure returns (EnergySettlementVault.Trade memory t) {
        string memory p = string.concat(".trades[", vm.toString(i), "].");
        t.tradeId = uint64(vm.parseJsonUint(json, string.concat(p, "tradeId")));
        t.intervalStartMs = uint64(vm.parseJsonUint(json, string.concat(p, "intervalStartMs")));
        t.buyer = vm.parseJsonAddress(json, string.concat(p, "buyer"));
        t.seller = vm.parseJsonAddress(json, string.concat(p, "seller"));
        t.energyWh = uint64(vm.parseJsonUint(json, string.concat(p, "energyWh")));
        t.priceMicroPerKwh = int64(vm.parseJsonInt(json, string.concat(p, "priceMicroPerKwh")));
        t.gridFeeMicroPerKwh = uint64(vm.parseJsonUint(json, string.concat(p, "gridFeeMicroPerKwh")));
        t.buyerPaysMicro = int128(vm.parseJsonInt(json, string.concat(p, "buyerPaysMicro")));
        t.sellerReceivesMicro = int128(vm.parseJsonInt(json, string.concat(p, "sellerReceivesMicro")));
    }

    function test_RustVectorsVerifyOnChain() public {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/test/vectors/merkle_v1.json"));
        bytes32 root = vm.parseJsonBytes32(json, ".root");
        uint256 count = vm.parseJsonUint(json, ".count");
        assertTrue(count >= 2, "vectors present");

        address admin = address(0xAD);
        SettlementToken token = new SettlementToken("T", "T", admin);
        EnergySettlementVault vault = new EnergySettlementVault(token, admin, 10);
        address[] memory two = new address[](2);
        two[0] = address(1);
        two[1] = address(2);
        vm.startPrank(admin);
        vault.grantRole(vault.SETTLER_ROLE(), admin);
        vault.registerAccounts(two);
        vault.settleInterval(1, 0, 1, bytes32(0), root, Deltas.pair(0, -1, 1, 1));
        vm.stopPrank();

        for (uint256 i = 0; i < count; ++i) {
            EnergySettlementVault.Trade memory t = _trade(json, i);
            string memory p = string.concat(".trades[", vm.toString(i), "].");
            assertEq(vault.tradeLeaf(t), vm.parseJsonBytes32(json, string.concat(p, "leaf")), "leaf hash");
            bytes32[] memory proof = vm.parseJsonBytes32Array(json, string.concat(p, "proof"));
            assertTrue(vault.verifyTrade(1, t, proof), "proof accepted");
            t.energyWh += 1;
            assertTrue(!vault.verifyTrade(1, t, proof), "tampered trade refused");
        }
    }
}
