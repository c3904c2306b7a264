// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";

contract RewardTokenTest is TestBase {
    RewardToken internal reward;
    address internal admin = address(0xAD);
    address internal minter = address(0x4E);
    address internal home = address(0x40);
    uint256 internal constant CAP = 1_000_000e6;

    function setUp() public {
        reward = new RewardToken(admin, CAP);
        bytes32 role = reward.MINTER_ROLE();
        vm.prank(admin);
        reward.grantRole(role, minter);
    }

    function test_Metadata() public view {
        assertTrue(keccak256(bytes(reward.name())) == keccak256("GridShare Reward"), "name");
        assertTrue(keccak256(bytes(reward.symbol())) == keccak256("GSR"), "symbol");
        assertEq(reward.decimals(), 6, "decimals");
        assertEq(reward.cap(), CAP, "cap");
        assertEq(reward.totalSupply(), 0, "nothing minted at construction");
    }

    function test_MinterMintsUpToTheCap() public {
        vm.startPrank(minter);
        reward.mint(home, CAP - 1);
        reward.mint(home, 1);
        vm.expectRevert(abi.encodeWithSelector(ERC20Capped.ERC20ExceededCap.selector, CAP + 1, CAP));
        reward.mint(home, 1);
        vm.stopPrank();
        assertEq(reward.totalSupply(), CAP, "supply at the cap");
        assertEq(reward.balanceOf(home), CAP, "balance");
    }

    function test_OnlyMinterRoleMints() public {
        bytes32 role = reward.MINTER_ROLE();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, admin, role));
        reward.mint(home, 1);
    }

    function test_ConstructorChecks() public {
        vm.expectRevert(abi.encodeWithSelector(RewardToken.InvalidCap.selector, 0));
        new RewardToken(admin, 0);
        uint256 tooBig = uint256(type(uint208).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(RewardToken.InvalidCap.selector, tooBig));
        new RewardToken(admin, tooBig);
        vm.expectRevert(RewardToken.ZeroAddress.selector);
        new RewardToken(address(0), CAP);
        assertEq(new RewardToken(admin, type(uint208).max).cap(), type(uint208).max, "largest cap");
    }

    /// Whatever is minted, in whatever pieces, the supply never passes the cap and every
    /// refused mint leaves it unchanged.
    function testFuzz_MintedNeverExceedsCap(uint256[6] memory amounts) public {
        vm.startPrank(minter);
        for (uint256 i = 0; i < amounts.length; ++i) {
            uint256 amount = amounts[i] % (CAP / 2);
            uint256 before = reward.totalSupply();
            try reward.mint(home, amount) {
                assertEq(reward.totalSupply(), before + amount, "minted");
            } catch {
                assertTrue(before + amount > CAP, "refused only past the cap");
                assertEq(reward.totalSupply(), before, "refused mint changed the supply");
            }
            assertLe(reward.totalSupply(), CAP, "supply <= cap");
        }
        vm.stopPrank();
    }

    function test_BurnLowersTheSupply() public {
        vm.prank(minter);
        reward.mint(home, 100);
        vm.prank(home);
        reward.burn(30);
        assertEq(reward.totalSupply(), 70, "supply after burn");
        assertEq(reward.balanceOf(home), 70, "balance after burn");
        vm.prank(home);
        reward.approve(minter, 20);
        vm.prank(minter);
        reward.burnFrom(home, 20);
        assertEq(reward.totalSupply(), 50, "supply after burnFrom");
        // Burnt tokens leave room under the cap again (the distributor never re-mints them).
        vm.prank(minter);
        reward.mint(home, CAP - 50);
        assertEq(reward.totalSupply(), CAP, "cap reached");
    }
}
