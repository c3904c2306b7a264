// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Time} from "@openzeppelin/contracts/utils/types/Time.sol";

/// @title RewardToken
/// @notice "GridShare Reward" (GSR): the token homes earn for verified contributions (local
///         renewable energy, demand response, gateway uptime). 6 decimals: one unit is one
///         micro-token, the unit the Rust side counts rewards in.
///
/// Supply. The total supply has a hard cap fixed at construction and enforced on every mint
/// (OpenZeppelin's `ERC20Capped`: a mint past it reverts with `ERC20ExceededCap`). Only
/// `MINTER_ROLE` mints; in GridShare that is the `RewardDistributor` alone, which mints each
/// epoch's new rewards to itself (bounded by the epoch budget) and pays them out on claims.
/// Anyone may burn their own tokens (`burn`) or tokens they were allowed to spend
/// (`burnFrom`, `ERC20Burnable`); the `RewardRedeemer` burns what homes redeem against their
/// energy bill. Burning lowers the supply, so the cap is on tokens in existence, not on all
/// tokens ever minted (the distributor's epoch budgets bound emission).
///
/// Voting (`ERC20Votes`, for `GridGovernor`). The clock is the block timestamp
/// (`CLOCK_MODE() == "mode=timestamp"`), so voting delays and periods are in seconds. Tokens
/// count as votes only once their holder has delegated them (to themselves or to someone
/// else): an account that never called `delegate` (or `delegateBySig`) has no voting power
/// whatever its balance. The service delegates each custodial account to itself when it
/// creates it. Delegation and vote checkpoints follow every transfer, mint and burn. The cap is
/// at most 2^208 - 1, the largest supply ERC20Votes can checkpoint. `ERC20Permit` supplies the
/// EIP-712 domain (name "GridShare Reward", version "1") for `permit` and `delegateBySig`.
contract RewardToken is ERC20Capped, ERC20Burnable, ERC20Permit, ERC20Votes, AccessControl {
    /// @notice The role allowed to mint (granted by the admin to the distributor).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice The cap is zero or larger than 2^208 - 1 (what ERC20Votes can checkpoint).
    error InvalidCap(uint256 cap);
    /// @notice A zero address where an account is required.
    error ZeroAddress();

    /// @param admin holds DEFAULT_ADMIN_ROLE (grants MINTER_ROLE to the distributor)
    /// @param cap_ the hard cap on the total supply, in micro-tokens
    constructor(address admin, uint256 cap_)
        ERC20("GridShare Reward", "GSR")
        ERC20Capped(_checkedCap(cap_))
        ERC20Permit("GridShare Reward")
    {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    function _checkedCap(uint256 cap_) private pure returns (uint256) {
        if (cap_ == 0 || cap_ > type(uint208).max) revert InvalidCap(cap_);
        return cap_;
    }

    /// @notice 6 decimals: one unit is one micro-token.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint `amount` to `to`; reverts with `ERC20ExceededCap` past the cap.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice The vote clock: the block timestamp, in seconds.
    function clock() public view override returns (uint48) {
        return Time.timestamp();
    }

    /// @notice EIP-6372: the clock is the block timestamp.
    // forge-lint: disable-next-line(mixed-case-function)
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
