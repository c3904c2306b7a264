// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./utils/TestBase.sol";
import {GatewayRegistry} from "../src/GatewayRegistry.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract GatewayRegistryTest is TestBase {
    GatewayRegistry internal registry;
    address internal admin = address(0xAD);
    address internal installer = address(0x1257);
    address internal otherInstaller = address(0x1258);
    address internal owner = address(0x0E);
    address internal gw = address(0x6A7E);

    function setUp() public {
        registry = new GatewayRegistry(admin);
        vm.startPrank(admin);
        registry.grantRole(registry.INSTALLER_ROLE(), installer);
        registry.grantRole(registry.INSTALLER_ROLE(), otherInstaller);
        vm.stopPrank();
    }

    function test_CommissionThenOwnerOf() public {
        vm.prank(installer);
        registry.commission(gw, owner, "feeder-1/tx-2/home-3");
        assertEq(registry.ownerOf(gw), owner, "owner");
        assertTrue(registry.isActive(gw), "active");
        assertEq(registry.gateway(gw).installer, installer, "installer recorded");
    }

    function test_OnlyInstallersCommission() public {
        bytes32 role = registry.INSTALLER_ROLE();
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, role));
        registry.commission(gw, owner, "");
    }

    function test_KeyRegisteredOnceEvenAfterRevoke() public {
        vm.startPrank(installer);
        registry.commission(gw, owner, "");
        registry.revoke(gw);
        vm.expectRevert(abi.encodeWithSelector(GatewayRegistry.AlreadyRegistered.selector, gw));
        registry.commission(gw, owner, "");
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(GatewayRegistry.NotActive.selector, gw));
        registry.ownerOf(gw);
    }

    function test_RevokeByOtherInstallerRefusedByAdminAllowed() public {
        vm.prank(installer);
        registry.commission(gw, owner, "");
        vm.prank(otherInstaller);
        vm.expectRevert(abi.encodeWithSelector(GatewayRegistry.NotInstallerOfGateway.selector, gw, otherInstaller));
        registry.revoke(gw);
        vm.prank(admin);
        registry.revoke(gw);
        assertTrue(!registry.isActive(gw), "revoked");
    }

    function testFuzz_ZeroAddressesRefused(address key) public {
        vm.assume(key != address(0));
        vm.prank(installer);
        vm.expectRevert(GatewayRegistry.ZeroAddress.selector);
        registry.commission(key, address(0), "");
    }

    function test_ListGatewaysPages() public {
        vm.startPrank(installer);
        for (uint256 i = 0; i < 5; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast)
            registry.commission(address(uint160(0x1000 + i)), owner, bytes32(i));
        }
        registry.revoke(address(0x1001));
        vm.stopPrank();
        assertEq(registry.gatewayCount(), 5, "count includes revoked");
        (address[] memory keys, GatewayRegistry.Gateway[] memory records) = registry.listGateways(1, 3);
        assertEq(keys.length, 3, "page size");
        assertEq(keys[0], address(0x1001), "commissioning order");
        assertEq(keys[2], address(0x1003), "last of page");
        assertTrue(records[0].revokedAt != 0, "revoked record listed");
        assertEq(records[1].site, bytes32(uint256(2)), "record of the key");
        (keys, records) = registry.listGateways(3, 10);
        assertEq(keys.length, 2, "short last page");
        assertEq(records.length, 2, "records too");
        (keys,) = registry.listGateways(5, 10);
        assertEq(keys.length, 0, "past the end");
        (keys,) = registry.listGateways(type(uint256).max, type(uint256).max);
        assertEq(keys.length, 0, "far past the end");
        (keys,) = registry.listGateways(0, type(uint256).max);
        assertEq(keys.length, 5, "no overflow on a huge count");
    }

    function test_SlasherRevokesAnyActiveGateway() public {
        address slasher = address(0x5A5);
        bytes32 role = registry.SLASHER_ROLE();
        vm.prank(installer);
        registry.commission(gw, owner, "");
        vm.prank(installer);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, installer, role));
        registry.revokeForMisbehaviour(gw);
        vm.prank(admin);
        registry.grantRole(role, slasher);
        vm.expectEmit(address(registry));
        emit GatewayRegistry.GatewayRevoked(gw, slasher);
        vm.prank(slasher);
        registry.revokeForMisbehaviour(gw);
        assertTrue(!registry.isActive(gw), "revoked");
        assertEq(uint256(registry.gateway(gw).revokedAt), block.timestamp, "revocation time");
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(GatewayRegistry.NotActive.selector, gw));
        registry.revokeForMisbehaviour(gw);
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(GatewayRegistry.NotActive.selector, address(0x1234)));
        registry.revokeForMisbehaviour(address(0x1234));
    }
}
