// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {Console} from "./utils/Console.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {GatewayRegistry} from "../src/GatewayRegistry.sol";
import {GatewayStaking} from "../src/GatewayStaking.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// The real `GatewayStaking` (no harness), holding the registry's `SLASHER_ROLE` as deployed,
/// with two gateway keys whose private keys the tests know, so they sign envelopes as a gateway
/// does (vm.sign: r ‖ s ‖ v with v 27 or 28, low s, over the raw digest).
abstract contract SlashFixture is TestBase {
    RewardToken internal token;
    GatewayRegistry internal registry;
    GatewayStaking internal staking;
    address internal admin = address(0xAD);
    address internal installer = address(0x1257);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal reporter = address(0x5E1F);
    uint256 internal constant KEY_A = 0xA0A0A0;
    uint256 internal constant KEY_B = 0xB0B0B0;
    uint256 internal constant KEY_STRANGER = 0xC0C0C0;
    address internal gwA;
    address internal gwB;
    uint256 internal constant MIN = 100e6;
    uint64 internal constant COOLDOWN = 3 days;
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    function _deploy() internal {
        vm.warp(1_800_000_000);
        gwA = vm.addr(KEY_A);
        gwB = vm.addr(KEY_B);
        token = new RewardToken(admin, 1_000_000_000e6);
        registry = new GatewayRegistry(admin);
        staking = new GatewayStaking(token, registry, admin, MIN, COOLDOWN);
        vm.startPrank(admin);
        token.grantRole(token.MINTER_ROLE(), admin);
        registry.grantRole(registry.INSTALLER_ROLE(), installer);
        registry.grantRole(registry.SLASHER_ROLE(), address(staking));
        vm.stopPrank();
        vm.startPrank(installer);
        registry.commission(gwA, address(0x0E), "home-a");
        registry.commission(gwB, address(0x0F), "home-b");
        vm.stopPrank();
        _fund(alice, 1_000e6);
        _fund(bob, 1_000e6);
    }

    function _fund(address who, uint256 amount) internal {
        vm.prank(admin);
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(staking), type(uint256).max);
    }

    function _bond(address who, address gateway, uint256 amount) internal {
        vm.prank(who);
        staking.bond(gateway, amount);
    }

    /// The digest as the Rust side computes it, written out here independently of the contract.
    function _digest(GatewayStaking.Envelope memory e) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat("GridShare envelope v1\x00", bytes8(e.gateway), bytes8(e.seq), bytes8(uint64(e.ts)), e.payload)
        );
    }

    function _seal(uint256 key, uint64 gateway, uint64 seq, int64 ts, bytes memory payload)
        internal
        pure
        returns (GatewayStaking.Envelope memory e)
    {
        e = GatewayStaking.Envelope({gateway: gateway, seq: seq, ts: ts, payload: payload, sig: ""});
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, _digest(e));
        e.sig = abi.encodePacked(r, s, v);
    }

    /// Two different envelopes by `key` for gateway 7, sequence 42.
    function _pair(uint256 key)
        internal
        pure
        returns (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b)
    {
        a = _seal(key, 7, 42, 1_764_064_800_000, bytes('{"type":"cancel","order_id":5}'));
        b = _seal(key, 7, 42, 1_764_064_800_000, bytes('{"type":"cancel","order_id":6}'));
    }

    function _evidence(bytes32 x, bytes32 y) internal pure returns (bytes32) {
        return x < y ? keccak256(abi.encodePacked(x, y)) : keccak256(abi.encodePacked(y, x));
    }

    function _bondOf(address gateway) internal view returns (uint256) {
        return staking.activeBond(gateway) + staking.unbondingBond(gateway);
    }
}

contract GatewayStakingSlashTest is SlashFixture {
    function setUp() public {
        _deploy();
    }

    function test_DefaultsAndSlashShares() public {
        assertEq(uint256(staking.slashBurnBps()), 9_000, "default burn");
        assertEq(uint256(staking.slashReporterBps()), 1_000, "default reward");
        vm.expectEmit(address(staking));
        emit GatewayStaking.SlashSharesChanged(5_000, 500);
        vm.prank(admin);
        staking.setSlashShares(5_000, 500);
        assertEq(uint256(staking.slashBurnBps()), 5_000, "burn set");
        assertEq(uint256(staking.slashReporterBps()), 500, "reward set");
        vm.prank(admin);
        staking.setSlashShares(0, 10_000);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.InvalidBps.selector, 10_001));
        staking.setSlashShares(9_001, 1_000);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.InvalidBps.selector, 2 * uint256(type(uint16).max)));
        staking.setSlashShares(type(uint16).max, type(uint16).max);
        // neither the admin nor the parameters contract: refused, naming the parameters' role
        bytes32 role = staking.PARAMETERS_ROLE();
        vm.prank(reporter);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, reporter, role)
        );
        staking.setSlashShares(1, 1);
    }

    function test_EnvelopeDigestIsTheRustLayout() public view {
        GatewayStaking.Envelope memory e = _seal(KEY_A, type(uint64).max, 1, -1, "");
        assertEq(staking.envelopeDigest(e), _digest(e), "digest");
        assertEq(
            staking.envelopeDigest(e),
            keccak256(
                abi.encodePacked(
                    hex"47726964536861726520656e76656c6f706520763100", // "GridShare envelope v1" + NUL
                    hex"ffffffffffffffff",
                    hex"0000000000000001",
                    hex"ffffffffffffffff"
                )
            ),
            "spelled out"
        );
    }

    /// Custom shares (30 % burnt, 10 % to the reporter): everyone of the gateway loses 40 %,
    /// active and cooling down alike; the reporter gets a quarter of it and the rest is burnt.
    function test_SlashBurnsPaysTheReporterAndRevokes() public {
        vm.prank(admin);
        staking.setSlashShares(3_000, 1_000);
        _bond(alice, gwA, 400e6);
        _bond(bob, gwA, 200e6);
        _bond(bob, gwB, 200e6);
        vm.prank(bob);
        staking.requestUnbond(gwA, 100e6);
        // gwA: active 500 (alice 400, bob 100), cooling down 100 (bob); 40 % of 600 = 240.
        uint256 supply = token.totalSupply();
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_A);
        vm.expectEmit(address(registry));
        emit GatewayRegistry.GatewayRevoked(gwA, address(staking));
        vm.expectEmit(address(staking));
        emit GatewayStaking.Equivocation(gwA, reporter, 7, 42, _digest(a), _digest(b), 180e6, 60e6);
        vm.prank(reporter);
        (address key, uint256 burnt, uint256 reward) = staking.slashEquivocation(a, b);
        assertEq(key, gwA, "key");
        assertEq(burnt, 180e6, "burnt");
        assertEq(reward, 60e6, "reward");
        assertEq(token.totalSupply(), supply - 180e6, "burn lowers the supply");
        assertEq(token.balanceOf(reporter), 60e6, "reporter paid");
        assertTrue(!registry.isActive(gwA), "key revoked");
        assertEq(uint256(registry.gateway(gwA).revokedAt), block.timestamp, "revoked now");
        assertTrue(registry.isActive(gwB), "other key active");
        assertTrue(staking.evidenceUsed(_evidence(_digest(a), _digest(b))), "evidence recorded");

        assertEq(staking.activeBond(gwA), 300e6, "active -40 %");
        assertEq(staking.unbondingBond(gwA), 60e6, "cooling down -40 %");
        assertEq(staking.activeBond(gwB), 200e6, "other gateway untouched");
        (uint256 aActive,,) = staking.bondOf(gwA, alice);
        (uint256 bActive, uint256 bCooling,) = staking.bondOf(gwA, bob);
        assertEq(aActive, 240e6, "alice -40 %");
        assertEq(bActive, 60e6, "bob active -40 %");
        assertEq(bCooling, 60e6, "bob cooling down -40 %");
        assertEq(token.balanceOf(address(staking)), 300e6 + 60e6 + 200e6, "tokens held = pools");

        // The rest stays with the bonders: they leave with it as usual.
        vm.warp(block.timestamp + COOLDOWN);
        vm.prank(bob);
        assertEq(staking.withdraw(gwA), 60e6, "bob withdraws what is left of his cool-down");
        vm.prank(alice);
        uint64 unlock = staking.requestUnbond(gwA, 240e6);
        vm.warp(unlock);
        vm.prank(alice);
        assertEq(staking.withdraw(gwA), 240e6, "alice withdraws what is left");
        // A revoked key takes no new bond.
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.GatewayNotActive.selector, gwA));
        _bond(alice, gwA, MIN);
    }

    /// With the defaults (90 % burnt, 10 % to the reporter) the whole bond is taken.
    function test_DefaultSharesTakeTheWholeBond() public {
        _bond(alice, gwA, 300e6);
        vm.prank(alice);
        staking.requestUnbond(gwA, 100e6);
        uint256 supply = token.totalSupply();
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_A);
        vm.prank(reporter);
        (, uint256 burnt, uint256 reward) = staking.slashEquivocation(a, b);
        assertEq(burnt, 270e6, "90 % burnt");
        assertEq(reward, 30e6, "10 % to the reporter");
        assertEq(token.totalSupply(), supply - 270e6, "supply");
        assertEq(_bondOf(gwA), 0, "nothing left");
        (uint256 active, uint256 cooling,) = staking.bondOf(gwA, alice);
        assertEq(active + cooling, 0, "alice keeps nothing");
        assertEq(token.balanceOf(address(staking)), 0, "nothing stays in the contract");
    }

    function test_NoBondIsStillRevoked() public {
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_B);
        uint256 supply = token.totalSupply();
        vm.prank(reporter);
        (address key, uint256 burnt, uint256 reward) = staking.slashEquivocation(a, b);
        assertEq(key, gwB, "key");
        assertEq(burnt + reward, 0, "nothing to take");
        assertEq(token.totalSupply(), supply, "supply unchanged");
        assertTrue(!registry.isActive(gwB), "revoked");
    }

    function test_ZeroSharesOnlyRevoke() public {
        vm.prank(admin);
        staking.setSlashShares(0, 0);
        _bond(alice, gwA, 300e6);
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_A);
        (, uint256 burnt, uint256 reward) = staking.slashEquivocation(a, b);
        assertEq(burnt + reward, 0, "nothing taken");
        assertEq(staking.activeBond(gwA), 300e6, "bond intact");
        assertTrue(!registry.isActive(gwA), "revoked");
    }

    /// Odd amounts: the reward is rounded down, the burn takes the remainder, nothing is lost.
    function test_RoundingFavoursTheBurn() public {
        vm.prank(admin);
        staking.setSlashShares(2_000, 1_000);
        vm.prank(admin);
        staking.setMinBond(0);
        _bond(alice, gwA, 1_000_001);
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_A);
        uint256 supply = token.totalSupply();
        vm.prank(reporter);
        (, uint256 burnt, uint256 reward) = staking.slashEquivocation(a, b);
        // taken = 1,000,001 × 30 % = 300,000 (floor); reward = 300,000 / 3 = 100,000.
        assertEq(reward, 100_000, "reward");
        assertEq(burnt, 200_000, "burnt");
        assertEq(staking.activeBond(gwA), 700_001, "rest with the bonder");
        assertEq(token.totalSupply() + burnt, supply, "burnt");
        assertEq(token.balanceOf(address(staking)), staking.activeBond(gwA), "tokens held = pool");
    }

    function test_NotSameSlot() public {
        (GatewayStaking.Envelope memory a,) = _pair(KEY_A);
        GatewayStaking.Envelope memory b = _seal(KEY_A, 7, 43, a.ts, a.payload);
        vm.expectRevert(GatewayStaking.NotSameSlot.selector);
        staking.slashEquivocation(a, b);
        b = _seal(KEY_A, 8, 42, a.ts, a.payload);
        vm.expectRevert(GatewayStaking.NotSameSlot.selector);
        staking.slashEquivocation(a, b);
    }

    /// Every connection of an honest gateway seals a new `online` and last will with the two
    /// reserved presence numbers: two different presences are never a proof.
    function test_PresenceSequence() public {
        (GatewayStaking.Envelope memory a,) = _pair(KEY_A);
        for (uint64 i = 0; i < 2; ++i) {
            uint64 seq = type(uint64).max - 1 + i;
            GatewayStaking.Envelope memory online1 = _seal(KEY_A, a.gateway, seq, a.ts, bytes("{\"kind\":\"status\",\"online\":true}"));
            GatewayStaking.Envelope memory online2 = _seal(KEY_A, a.gateway, seq, a.ts + 1, online1.payload);
            vm.expectRevert(abi.encodeWithSelector(GatewayStaking.PresenceSequence.selector, seq));
            staking.slashEquivocation(online1, online2);
        }
        assertTrue(registry.isActive(vm.addr(KEY_A)), "still active");
    }

    function test_SameContent() public {
        (GatewayStaking.Envelope memory a,) = _pair(KEY_A);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.SameContent.selector, _digest(a)));
        staking.slashEquivocation(a, a);
        // Another (malleated) signature over the same digest is still one message.
        GatewayStaking.Envelope memory b = _seal(KEY_A, a.gateway, a.seq, a.ts, a.payload);
        b.sig = _highS(b.sig);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.SameContent.selector, _digest(a)));
        staking.slashEquivocation(a, b);
    }

    /// The same signature with s replaced by n - s and v flipped: recovers the same key, but is
    /// refused as malleable.
    function _highS(bytes memory sig) internal pure returns (bytes memory out) {
        bytes32 r;
        bytes32 s;
        assembly ("memory-safe") {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
        }
        uint8 v = uint8(sig[64]);
        out = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function test_BadSignature() public {
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_A);
        bytes memory good = b.sig;
        bytes[] memory bad = new bytes[](6);
        bad[0] = _highS(good);
        bad[1] = abi.encodePacked(good, uint8(0)); // 66 bytes
        bad[2] = new bytes(65); // all zero: recovers nothing
        bad[3] = bytes.concat(good);
        bad[3][64] = bytes1(uint8(29)); // v out of range
        bad[4] = bytes.concat(good);
        bad[4][64] = bytes1(uint8(1)); // a raw recovery id, not 27/28
        bad[5] = new bytes(64); // EIP-2098 length
        for (uint256 i = 0; i < bad.length; ++i) {
            b.sig = bad[i];
            vm.expectRevert(abi.encodeWithSelector(GatewayStaking.BadSignature.selector, uint8(1)));
            staking.slashEquivocation(a, b);
            vm.expectRevert(abi.encodeWithSelector(GatewayStaking.BadSignature.selector, uint8(0)));
            staking.slashEquivocation(b, a);
        }
        b.sig = good;
        staking.slashEquivocation(a, b);
    }

    function test_DifferentSigners() public {
        (GatewayStaking.Envelope memory a,) = _pair(KEY_A);
        (, GatewayStaking.Envelope memory b) = _pair(KEY_B);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.DifferentSigners.selector, gwA, gwB));
        staking.slashEquivocation(a, b);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.DifferentSigners.selector, gwB, gwA));
        staking.slashEquivocation(b, a);
    }

    function test_GatewayNotActive() public {
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_STRANGER);
        address stranger = vm.addr(KEY_STRANGER);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.GatewayNotActive.selector, stranger));
        staking.slashEquivocation(a, b);
        // A key its installer revoked is out of reach (its bond comes back after the cool-down).
        _bond(alice, gwB, MIN);
        vm.prank(installer);
        registry.revoke(gwB);
        (a, b) = _pair(KEY_B);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.GatewayNotActive.selector, gwB));
        staking.slashEquivocation(a, b);
        assertEq(staking.activeBond(gwB), MIN, "bond intact");
    }

    function test_EvidenceUsedInEitherOrder() public {
        _bond(alice, gwA, MIN);
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_A);
        staking.slashEquivocation(a, b);
        bytes32 evidence = _evidence(_digest(a), _digest(b));
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.EvidenceUsed.selector, evidence));
        staking.slashEquivocation(a, b);
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.EvidenceUsed.selector, evidence));
        staking.slashEquivocation(b, a);
    }

    /// Once revoked, a key is not slashed again, whatever new pair is shown.
    function test_SecondPairForARevokedKeyRefused() public {
        _bond(alice, gwA, MIN);
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_A);
        vm.prank(reporter);
        staking.slashEquivocation(a, b);
        GatewayStaking.Envelope memory c = _seal(KEY_A, 7, 42, 1, "other");
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.GatewayNotActive.selector, gwA));
        staking.slashEquivocation(a, c);
        GatewayStaking.Envelope memory d = _seal(KEY_A, 9, 1, 1, "x");
        GatewayStaking.Envelope memory e = _seal(KEY_A, 9, 1, 1, "y");
        vm.expectRevert(abi.encodeWithSelector(GatewayStaking.GatewayNotActive.selector, gwA));
        staking.slashEquivocation(d, e);
    }

    /// A staking contract without the registry's SLASHER_ROLE cannot slash (the whole call
    /// reverts: no burn, no reward).
    function test_NeedsTheSlasherRole() public {
        GatewayStaking other = new GatewayStaking(token, registry, admin, 0, COOLDOWN);
        (GatewayStaking.Envelope memory a, GatewayStaking.Envelope memory b) = _pair(KEY_A);
        bytes32 role = registry.SLASHER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, address(other), role)
        );
        other.slashEquivocation(a, b);
    }

    // ---------------------------------------------------------------- fuzz

    /// Set byte `i` (0 = most significant) of a 64-bit value.
    function _setByte(uint64 x, uint256 i, uint8 value) internal pure returns (uint64) {
        uint256 shift = 8 * (7 - i);
        uint256 y = (uint256(x) & ~(uint256(0xff) << shift)) | (uint256(value) << shift);
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(y); // y < 2^64: byte i of a 64-bit value replaced
    }

    function _tamper(GatewayStaking.Envelope memory e, uint256 field, uint256 pos, uint8 value) internal pure {
        if (field == 0) {
            if (e.payload.length == 0) e.payload = new bytes(1);
            e.payload[pos % e.payload.length] = bytes1(value);
        } else if (field == 1) {
            e.sig[pos % 65] = bytes1(value);
        } else if (field == 2) {
            e.ts = int64(_setByte(uint64(e.ts), pos % 8, value));
        } else if (field == 3) {
            e.seq = _setByte(e.seq, pos % 8, value);
        } else {
            e.gateway = _setByte(e.gateway, pos % 8, value);
        }
    }

    function _recovers(GatewayStaking.Envelope memory e, address key) internal pure returns (bool) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(_digest(e), e.sig);
        return err == ECDSA.RecoverError.NoError && signer == key;
    }

    /// Any single byte of either envelope (payload, signature, ts, seq or gateway) set to any
    /// value: the call reverts, or the pair is still a valid proof against the key that signed
    /// both. Nobody else's bond or registration is ever touched.
    function testFuzz_TamperedProofNeverSlashesAnotherKey(
        bool second,
        uint8 field,
        uint256 pos,
        uint8 value,
        bytes calldata payloadA,
        bytes calldata payloadB
    ) public {
        _bond(alice, gwA, 300e6);
        _bond(bob, gwB, 200e6);
        GatewayStaking.Envelope memory a = _seal(KEY_A, 7, 42, -5, payloadA);
        GatewayStaking.Envelope memory b = _seal(KEY_A, 7, 42, 6, payloadB);
        _tamper(second ? b : a, field % 5, pos, value);
        try staking.slashEquivocation(a, b) returns (address key, uint256 burnt, uint256 reward) {
            assertEq(key, gwA, "only the signer of both");
            assertTrue(a.gateway == b.gateway && a.seq == b.seq, "same slot");
            assertTrue(_digest(a) != _digest(b), "different content");
            assertTrue(_recovers(a, gwA) && _recovers(b, gwA), "both signed by the key");
            assertEq(burnt + reward, 300e6, "the whole bond");
            assertTrue(!registry.isActive(gwA), "revoked");
        } catch {
            assertEq(_bondOf(gwA), 300e6, "signer untouched on a refusal");
            assertTrue(registry.isActive(gwA), "signer still active on a refusal");
        }
        assertEq(_bondOf(gwB), 200e6, "another key's bond is never touched");
        assertTrue(registry.isActive(gwB), "another key is never revoked");
    }

    /// A key that signed only one envelope of a pair (the other signed by another key, or
    /// forged from its signature) is never slashed.
    function testFuzz_KeySigningOnlyOneIsNeverSlashed(
        bytes calldata payloadA,
        bytes calldata payloadB,
        int64 ts,
        uint64 seq,
        bool swap,
        bool forge
    ) public {
        _bond(alice, gwA, 300e6);
        _bond(bob, gwB, 200e6);
        GatewayStaking.Envelope memory a = _seal(KEY_A, 7, seq, ts, payloadA);
        GatewayStaking.Envelope memory b = _seal(KEY_B, 7, seq, ts, payloadB);
        if (forge) b.sig = a.sig; // A's signature over A's envelope, claimed for B's content
        if (swap) (a, b) = (b, a);
        try staking.slashEquivocation(a, b) {
            assertTrue(false, "a key that signed one envelope was slashed");
        } catch {}
        assertEq(_bondOf(gwA), 300e6, "A untouched");
        assertEq(_bondOf(gwB), 200e6, "B untouched");
        assertTrue(registry.isActive(gwA) && registry.isActive(gwB), "both still active");
    }
}

/// Gas of `slashEquivocation` as whole transactions (21,000 + calldata + execution, measured
/// around the call with cold accounts, as `RewardGas.t.sol` does). Print them with
///     contracts/test.sh, then: forge test --match-contract SlashGasTest -vv
/// (with FOUNDRY_SOLC=tools/solc, as test.sh sets it).
contract SlashGasTest is SlashFixture {
    function setUp() public {
        _deploy();
    }

    function _tx(bytes memory data, uint256 execution) internal pure returns (uint256) {
        uint256 zeros;
        for (uint256 i = 0; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 tokens = zeros + 4 * (data.length - zeros);
        uint256 standard = 21_000 + 4 * tokens + execution;
        uint256 floor = 21_000 + 10 * tokens;
        return standard > floor ? standard : floor;
    }

    function _measure(bytes memory data) internal returns (uint256 used) {
        address target = address(staking);
        bool ok;
        assembly ("memory-safe") {
            let before := gas()
            ok := call(gas(), target, 0, add(data, 0x20), mload(data), 0, 0)
            used := sub(before, gas())
        }
        assertTrue(ok, "call failed");
    }

    function _slashTx(uint256 key, uint64 gateway, string memory label) internal returns (uint256 total) {
        // A telemetry-sized payload (~300 bytes), as an equivocation would typically carry.
        bytes memory payload = bytes(
            '{"type":"telemetry","samples":[{"device":"meter","kind":"grid_meter","at":1764064801000,"power_w":-1200,"energy_in_wh":10,"energy_out_wh":3456,"status":"ok","quality":"good"},{"device":"pv","kind":"pv_inverter","at":1764064801000,"power_w":3400,"status":"ok"}]}'
        );
        GatewayStaking.Envelope memory a = _seal(key, gateway, 42, 1_764_064_801_234, payload);
        GatewayStaking.Envelope memory b = _seal(key, gateway, 42, 1_764_064_801_235, payload);
        bytes memory data = abi.encodeCall(GatewayStaking.slashEquivocation, (a, b));
        vm.cool(address(staking));
        vm.cool(address(registry));
        vm.cool(address(token));
        vm.prank(reporter);
        uint256 used = _measure(data);
        total = _tx(data, used);
        Console.log(string.concat(label, ": slashEquivocation tx gas"), total);
        Console.log(string.concat(label, ": execution"), used);
        Console.log(string.concat(label, ": calldata bytes"), data.length);
    }

    function test_GasSlashEquivocation() public {
        _bond(alice, gwA, 400e6);
        _bond(bob, gwA, 200e6);
        vm.prank(bob);
        staking.requestUnbond(gwA, 100e6);
        uint256 bonded = _slashTx(KEY_A, 7, "bonded, two bonders, reporter's first tokens");
        uint256 empty = _slashTx(KEY_B, 8, "no bond");
        assertTrue(!registry.isActive(gwA) && !registry.isActive(gwB), "both revoked");
        // Regression guards a little above today's figures (see README).
        assertLe(bonded, 180_000, "bonded");
        assertLe(empty, 120_000, "no bond");
    }
}
