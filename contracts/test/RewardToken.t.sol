// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract RewardTokenTest is TestBase {
    RewardToken internal reward;
    address internal admin = address(0xAD);
    address internal minter = address(0x4E);
    address internal home = address(0x40);

    function setUp() public {
        reward = new RewardToken(admin);
        bytes32 role = reward.REWARD_ROLE();
        vm.prank(admin);
        reward.grantRole(role, minter);
    }

    function test_RewardOncePerKindAndReference() public {
        vm.startPrank(minter);
        reward.reward(home, RewardToken.Kind.LocalRenewable, 42, 1500);
        reward.reward(home, RewardToken.Kind.DemandResponse, 42, 700);
        vm.expectRevert(
            abi.encodeWithSelector(RewardToken.AlreadyAwarded.selector, home, RewardToken.Kind.LocalRenewable, uint64(42))
        );
        reward.reward(home, RewardToken.Kind.LocalRenewable, 42, 1500);
        vm.stopPrank();
        assertEq(reward.balanceOf(home), 2200, "both kinds paid once");
    }

    function test_OnlyRewardRoleMints() public {
        bytes32 role = reward.REWARD_ROLE();
        vm.prank(home);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, home, role));
        reward.reward(home, RewardToken.Kind.LocalRenewable, 1, 1);
    }

    function testFuzz_SupplyIsSumOfAwards(uint64[4] memory refs, uint32[4] memory amounts) public {
        uint256 total;
        vm.startPrank(minter);
        for (uint256 i = 0; i < 4; ++i) {
            uint256 amount = uint256(amounts[i]) + 1;
            address to = address(uint160(0x9000 + i));
            reward.reward(to, RewardToken.Kind.DemandResponse, refs[i], amount);
            total += amount;
        }
        vm.stopPrank();
        assertEq(reward.totalSupply(), total, "supply");
    }
}
