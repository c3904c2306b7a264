// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridFixture} from "./utils/GridFixture.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Votes} from "@openzeppelin/contracts/governance/utils/Votes.sol";

/// Voting power, burning and permit on the reward token.
contract RewardTokenVotesTest is GridFixture {
    RewardToken internal reward;
    address internal admin = address(0xAD);
    address internal minter = address(0x4E);
    address internal home = address(0x40);
    address internal other = address(0x41);
    uint256 internal constant CAP = 1_000_000e6;

    function setUp() public {
        vm.warp(1_000_000);
        reward = new RewardToken(admin, CAP);
        bytes32 role = reward.MINTER_ROLE();
        vm.prank(admin);
        reward.grantRole(role, minter);
    }

    function _mint(address to, uint256 amount) internal {
        vm.prank(minter);
        reward.mint(to, amount);
    }

    function test_TimestampClock() public {
        assertEq(uint256(reward.clock()), block.timestamp, "clock is the timestamp");
        assertTrue(keccak256(bytes(reward.CLOCK_MODE())) == keccak256("mode=timestamp"), "clock mode");
        vm.warp(2_000_000);
        assertEq(uint256(reward.clock()), 2_000_000, "clock follows the timestamp");
    }

    function test_VotesOnlyOnceDelegated() public {
        _mint(home, 500e6);
        assertEq(reward.getVotes(home), 0, "undelegated tokens have no votes");
        vm.prank(home);
        reward.delegate(home);
        assertEq(reward.delegates(home), home, "self-delegated");
        assertEq(reward.getVotes(home), 500e6, "votes after delegation");
        // Later mints follow the delegation.
        _mint(home, 100e6);
        assertEq(reward.getVotes(home), 600e6, "mint adds votes");
    }

    function test_CheckpointsFollowTransfersAndBurns() public {
        _mint(home, 500e6);
        vm.prank(home);
        reward.delegate(home);
        vm.prank(other);
        reward.delegate(other);
        uint256 t0 = block.timestamp;

        vm.warp(t0 + 100);
        vm.prank(home);
        reward.transfer(other, 200e6);
        vm.warp(t0 + 200);
        vm.prank(other);
        reward.burn(50e6);
        vm.warp(t0 + 300);

        assertEq(reward.getVotes(home), 300e6, "home now");
        assertEq(reward.getVotes(other), 150e6, "other now");
        assertEq(reward.getPastVotes(home, t0), 500e6, "home at t0");
        assertEq(reward.getPastVotes(other, t0), 0, "other at t0");
        assertEq(reward.getPastVotes(other, t0 + 100), 200e6, "other after the transfer");
        assertEq(reward.getPastVotes(other, t0 + 200), 150e6, "other after the burn");
        assertEq(reward.getPastTotalSupply(t0 + 100), 500e6, "supply before the burn");
        assertEq(reward.getPastTotalSupply(t0 + 200), 450e6, "supply after the burn");
        assertEq(reward.totalSupply(), 450e6, "supply");
        assertEq(uint256(reward.numCheckpoints(home)), 2, "home checkpoints");
        // Delegating a zero balance writes no checkpoint: other has the transfer and the burn.
        assertEq(uint256(reward.numCheckpoints(other)), 2, "other checkpoints");
        // A timepoint not yet past is refused.
        vm.expectRevert(abi.encodeWithSelector(Votes.ERC5805FutureLookup.selector, t0 + 300, uint48(t0 + 300)));
        reward.getPastVotes(home, t0 + 300);
    }

    function test_DelegateToAnother() public {
        _mint(home, 500e6);
        vm.prank(home);
        reward.delegate(other);
        assertEq(reward.getVotes(other), 500e6, "delegate votes");
        assertEq(reward.getVotes(home), 0, "delegator keeps none");
        assertEq(reward.balanceOf(other), 0, "no tokens moved");
    }

    function test_BurnFromNeedsAllowance() public {
        _mint(home, 100e6);
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, other, 0, 10e6));
        reward.burnFrom(home, 10e6);
        vm.prank(home);
        reward.approve(other, 10e6);
        vm.prank(other);
        reward.burnFrom(home, 10e6);
        assertEq(reward.balanceOf(home), 90e6, "burnt from home");
        assertEq(reward.totalSupply(), 90e6, "supply fell");
        assertEq(reward.allowance(home, other), 0, "allowance spent");
    }

    /// Burning frees room under the cap (the cap is on the supply in existence).
    function test_CapStillEnforcedWithVotesAndBurns() public {
        _mint(home, CAP);
        vm.prank(minter);
        vm.expectRevert(abi.encodeWithSelector(ERC20Capped.ERC20ExceededCap.selector, CAP + 1, CAP));
        reward.mint(home, 1);
        vm.prank(home);
        reward.burn(10);
        _mint(home, 10);
        assertEq(reward.totalSupply(), CAP, "back at the cap");
        assertEq(reward.cap(), CAP, "cap unchanged");
    }

    function test_LargestCapCheckpoints() public {
        RewardToken big = new RewardToken(admin, type(uint208).max);
        bytes32 role = big.MINTER_ROLE();
        vm.prank(admin);
        big.grantRole(role, minter);
        vm.prank(minter);
        big.mint(home, type(uint208).max);
        vm.prank(home);
        big.delegate(home);
        assertEq(big.getVotes(home), type(uint208).max, "votes at the largest cap");
    }

    function test_PermitDomain() public {
        uint256 key = 0xA11CE;
        address owner = vm.addr(key);
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("GridShare Reward"),
                keccak256("1"),
                block.chainid,
                address(reward)
            )
        );
        assertEq(reward.DOMAIN_SEPARATOR(), domain, "EIP-712 domain");
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01",
                domain,
                keccak256(
                    abi.encode(
                        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                        owner,
                        other,
                        uint256(5e6),
                        uint256(0),
                        block.timestamp + 1
                    )
                )
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vmSign.sign(key, digest);
        reward.permit(owner, other, 5e6, block.timestamp + 1, v, r, s);
        assertEq(reward.allowance(owner, other), 5e6, "permit allowance");
        assertEq(reward.nonces(owner), 1, "nonce used");
    }
}
