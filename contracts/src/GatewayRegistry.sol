// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title GatewayRegistry
/// @notice Maps a home gateway's signing key (a secp256k1 key, so it is also an EVM address)
///         to the account of the home's owner. An installer commissions a gateway; an installer
///         or an admin revokes it. Rewards are only paid for telemetry signed by an active gateway.
contract GatewayRegistry is AccessControl {
    bytes32 public constant INSTALLER_ROLE = keccak256("INSTALLER_ROLE");

    struct Gateway {
        address owner; // the homeowner's account
        address installer; // who commissioned it
        uint64 commissionedAt; // unix seconds
        uint64 revokedAt; // 0 while active
        bytes32 site; // off-chain site / feeder node reference
    }

    mapping(address gatewayKey => Gateway) private _gateways;

    event GatewayCommissioned(address indexed gatewayKey, address indexed owner, address indexed installer, bytes32 site);
    event GatewayRevoked(address indexed gatewayKey, address indexed by);

    error ZeroAddress();
    error AlreadyRegistered(address gatewayKey);
    error NotActive(address gatewayKey);
    error NotInstallerOfGateway(address gatewayKey, address caller);

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Commission a gateway. A key is registered once: a revoked key stays revoked
    ///         (a new gateway, or a re-keyed one, gets a new key).
    function commission(address gatewayKey, address owner, bytes32 site) external onlyRole(INSTALLER_ROLE) {
        if (gatewayKey == address(0) || owner == address(0)) revert ZeroAddress();
        if (_gateways[gatewayKey].commissionedAt != 0) revert AlreadyRegistered(gatewayKey);
        _gateways[gatewayKey] = Gateway({
            owner: owner,
            installer: msg.sender,
            commissionedAt: uint64(block.timestamp),
            revokedAt: 0,
            site: site
        });
        emit GatewayCommissioned(gatewayKey, owner, msg.sender, site);
    }

    /// @notice Revoke a gateway: by the installer who commissioned it, or by an admin.
    function revoke(address gatewayKey) external {
        Gateway storage g = _gateways[gatewayKey];
        if (g.commissionedAt == 0 || g.revokedAt != 0) revert NotActive(gatewayKey);
        if (g.installer != msg.sender && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert NotInstallerOfGateway(gatewayKey, msg.sender);
        }
        g.revokedAt = uint64(block.timestamp);
        emit GatewayRevoked(gatewayKey, msg.sender);
    }

    function gateway(address gatewayKey) external view returns (Gateway memory) {
        return _gateways[gatewayKey];
    }

    function isActive(address gatewayKey) public view returns (bool) {
        Gateway storage g = _gateways[gatewayKey];
        return g.commissionedAt != 0 && g.revokedAt == 0;
    }

    /// @notice The owner of an active gateway; reverts for an unknown or revoked key.
    function ownerOf(address gatewayKey) external view returns (address) {
        if (!isActive(gatewayKey)) revert NotActive(gatewayKey);
        return _gateways[gatewayKey].owner;
    }
}
