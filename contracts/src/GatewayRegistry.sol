// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title GatewayRegistry
/// @notice Maps a home gateway's signing key (a secp256k1 key, so it is also an EVM address)
///         to the account of the home's owner. An installer commissions a gateway; an installer
///         or an admin revokes it. Rewards are only paid for telemetry signed by an active gateway.
///
/// Misbehaviour. `SLASHER_ROLE` may revoke any active gateway (`revokeForMisbehaviour`): it is
/// held by `GatewayStaking`, which revokes a key once it has proved the key equivocated (two
/// different envelopes signed for one sequence number). The deployment grants the role to the
/// staking contract (`grantRole(SLASHER_ROLE, staking)` by the admin); without it, slashing
/// reverts with OpenZeppelin's `AccessControlUnauthorizedAccount`. A revocation is final either
/// way (keys are never reused).
///
/// Reading all gateways: every key ever commissioned is kept in commissioning order, so a
/// mirror reads `gatewayCount()` and then pages of `listGateways(start, count)` (keys with
/// their records, revoked ones included) in a few calls, and follows `GatewayCommissioned` /
/// `GatewayRevoked` from the block it read at.
contract GatewayRegistry is AccessControl {
    /// @notice The role allowed to commission gateways.
    bytes32 public constant INSTALLER_ROLE = keccak256("INSTALLER_ROLE");
    /// @notice The role allowed to revoke any gateway for misbehaviour (the staking contract).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");

    struct Gateway {
        address owner; // the homeowner's account
        address installer; // who commissioned it
        uint64 commissionedAt; // unix seconds
        uint64 revokedAt; // 0 while active
        bytes32 site; // off-chain site / feeder node reference
    }

    mapping(address gatewayKey => Gateway) private _gateways;
    address[] private _keys;

    /// @notice `gatewayKey` was commissioned for `owner` by `installer` at `site`.
    event GatewayCommissioned(address indexed gatewayKey, address indexed owner, address indexed installer, bytes32 site);
    /// @notice `gatewayKey` was revoked by `by` (its installer, an admin, or a slasher).
    event GatewayRevoked(address indexed gatewayKey, address indexed by);

    /// @notice A zero address where a key or account is required.
    error ZeroAddress();
    /// @notice The key was commissioned before (keys are never reused, even after revocation).
    error AlreadyRegistered(address gatewayKey);
    /// @notice The key is unknown or revoked.
    error NotActive(address gatewayKey);
    /// @notice Only the installer who commissioned the gateway, or an admin, may revoke it.
    error NotInstallerOfGateway(address gatewayKey, address caller);

    /// @param admin holds DEFAULT_ADMIN_ROLE (grants INSTALLER_ROLE, may revoke any gateway)
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
        _keys.push(gatewayKey);
        emit GatewayCommissioned(gatewayKey, owner, msg.sender, site);
    }

    /// @notice Revoke a gateway: by the installer who commissioned it, or by an admin.
    function revoke(address gatewayKey) external {
        Gateway storage g = _activeGateway(gatewayKey);
        if (g.installer != msg.sender && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert NotInstallerOfGateway(gatewayKey, msg.sender);
        }
        g.revokedAt = uint64(block.timestamp);
        emit GatewayRevoked(gatewayKey, msg.sender);
    }

    /// @notice Revoke a gateway that misbehaved (the staking contract, after a proof of
    ///         equivocation); reverts with `NotActive` for an unknown or revoked key.
    function revokeForMisbehaviour(address gatewayKey) external onlyRole(SLASHER_ROLE) {
        Gateway storage g = _activeGateway(gatewayKey);
        g.revokedAt = uint64(block.timestamp);
        emit GatewayRevoked(gatewayKey, msg.sender);
    }

    /// The record of an active gateway; reverts with `NotActive` otherwise.
    function _activeGateway(address gatewayKey) private view returns (Gateway storage g) {
        g = _gateways[gatewayKey];
        if (g.commissionedAt == 0 || g.revokedAt != 0) revert NotActive(gatewayKey);
    }

    /// @notice The record of `gatewayKey` (all zero for an unknown key).
    function gateway(address gatewayKey) external view returns (Gateway memory) {
        return _gateways[gatewayKey];
    }

    /// @notice True when `gatewayKey` is commissioned and not revoked.
    function isActive(address gatewayKey) public view returns (bool) {
        Gateway storage g = _gateways[gatewayKey];
        return g.commissionedAt != 0 && g.revokedAt == 0;
    }

    /// @notice The owner of an active gateway; reverts for an unknown or revoked key.
    function ownerOf(address gatewayKey) external view returns (address) {
        if (!isActive(gatewayKey)) revert NotActive(gatewayKey);
        return _gateways[gatewayKey].owner;
    }

    /// @notice How many keys have ever been commissioned (revoked ones included).
    function gatewayCount() external view returns (uint256) {
        return _keys.length;
    }

    /// @notice Up to `count` keys from position `start` in commissioning order, with their
    ///         records (fewer, possibly none, at the end of the list).
    function listGateways(uint256 start, uint256 count)
        external
        view
        returns (address[] memory keys, Gateway[] memory records)
    {
        uint256 n = _keys.length;
        uint256 end = start >= n ? start : (n - start < count ? n : start + count);
        keys = new address[](end - start);
        records = new Gateway[](end - start);
        for (uint256 i = start; i < end; ++i) {
            address key = _keys[i];
            keys[i - start] = key;
            records[i - start] = _gateways[key];
        }
    }
}
