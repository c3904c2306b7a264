// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SlashFixture} from "./GatewayStakingSlash.t.sol";
import {GatewayStaking} from "../src/GatewayStaking.sol";

/// Checks the envelopes the Rust side seals (domain/tests/envelope_vectors.rs writes
/// test/vectors/envelopes_v1.json): `envelopeDigest` equals every Rust digest, and
/// `slashEquivocation` does for each pair what the file says (`slash` or the error's name), with
/// the vector keys commissioned in a registry and bonded.
contract EquivocationVectorsTest is SlashFixture {
    string internal json;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/test/vectors/envelopes_v1.json"));
    }

    function _envelope(string memory p) internal view returns (GatewayStaking.Envelope memory e) {
        e.gateway = uint64(vm.parseJsonUint(json, string.concat(p, "gateway")));
        e.seq = uint64(vm.parseJsonUint(json, string.concat(p, "seq")));
        e.ts = int64(vm.parseJsonInt(json, string.concat(p, "ts")));
        e.payload = vm.parseJsonBytes(json, string.concat(p, "payloadHex"));
        e.sig = vm.parseJsonBytes(json, string.concat(p, "sig"));
        assertEq(
            keccak256(bytes(vm.parseJsonString(json, string.concat(p, "payload")))),
            keccak256(e.payload),
            "payload text = payload bytes"
        );
        assertEq(e.sig.length, 65, "r || s || v");
        assertEq(staking.envelopeDigest(e), vm.parseJsonBytes32(json, string.concat(p, "digest")), "Rust digest");
        assertEq(_digest(e), staking.envelopeDigest(e), "test digest");
    }

    function _is(string memory a, string memory b) internal pure returns (bool) {
        return keccak256(bytes(a)) == keccak256(bytes(b));
    }

    function test_RustVectorsOnChain() public {
        address[] memory keys = new address[](2);
        for (uint256 k = 0; k < 2; ++k) {
            string memory p = string.concat(".keys[", vm.toString(k), "].");
            keys[k] = vm.parseJsonAddress(json, string.concat(p, "address"));
            assertEq(vm.addr(vm.parseJsonUint(json, string.concat(p, "privateKey"))), keys[k], "key address");
        }
        uint256 n;
        uint256 slashed;
        while (vm.keyExistsJson(json, string.concat(".cases[", vm.toString(n), "]"))) {
            string memory p = string.concat(".cases[", vm.toString(n), "].");
            ++n;
            _deployWith(keys);
            GatewayStaking.Envelope memory a = _envelope(string.concat(p, "a."));
            GatewayStaking.Envelope memory b = _envelope(string.concat(p, "b."));
            address keyA = vm.parseJsonAddress(json, string.concat(p, "a.key"));
            address keyB = vm.parseJsonAddress(json, string.concat(p, "b.key"));
            string memory expect = vm.parseJsonString(json, string.concat(p, "expect"));
            uint256 supply = token.totalSupply();
            if (_is(expect, "slash")) {
                assertEq(keyA, keyB, "one key");
                vm.prank(reporter);
                (address key, uint256 burnt, uint256 reward) = staking.slashEquivocation(a, b);
                assertEq(key, keyA, "the signer is slashed");
                assertEq(burnt, 180e6, "90 % of 200 burnt");
                assertEq(reward, 20e6, "10 % of 200 to the reporter");
                assertEq(token.totalSupply(), supply - 180e6, "supply");
                assertEq(token.balanceOf(reporter), 20e6, "reporter");
                assertTrue(!registry.isActive(keyA), "revoked");
                address other = keyA == keys[0] ? keys[1] : keys[0];
                assertTrue(registry.isActive(other), "the other key stays");
                assertEq(_bondOf(other), 200e6, "the other bond stays");
                ++slashed;
                continue;
            }
            if (_is(expect, "SameContent")) {
                vm.expectRevert(abi.encodeWithSelector(GatewayStaking.SameContent.selector, _digest(a)));
            } else if (_is(expect, "DifferentSigners")) {
                assertTrue(keyA != keyB, "two keys");
                vm.expectRevert(abi.encodeWithSelector(GatewayStaking.DifferentSigners.selector, keyA, keyB));
            } else if (_is(expect, "NotSameSlot")) {
                vm.expectRevert(GatewayStaking.NotSameSlot.selector);
            } else {
                revert(string.concat("unknown expectation ", expect));
            }
            vm.prank(reporter);
            staking.slashEquivocation(a, b);
            assertTrue(registry.isActive(keys[0]) && registry.isActive(keys[1]), "nobody revoked");
            assertEq(_bondOf(keys[0]) + _bondOf(keys[1]), 400e6, "nothing taken");
        }
        assertTrue(n >= 4, "cases present");
        assertTrue(slashed >= 1, "an equivocation among them");
    }

    /// A fresh registry and staking contract with both vector keys commissioned and bonded 200.
    function _deployWith(address[] memory keys) internal {
        _deploy();
        vm.startPrank(installer);
        for (uint256 k = 0; k < keys.length; ++k) {
            registry.commission(keys[k], address(uint160(0x0100 + k)), "vector");
        }
        vm.stopPrank();
        _bond(alice, keys[0], 200e6);
        _bond(bob, keys[1], 200e6);
    }
}
