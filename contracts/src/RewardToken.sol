// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title RewardToken
/// @notice "GridShare Reward" (GSR): the token homes earn for verified contributions (local
///         renewable energy, demand response, gateway uptime). 6 decimals: one unit is one
///         micro-token, the unit the Rust side counts rewards in.
///
/// Supply. The total supply has a hard cap fixed at construction and enforced on every mint
/// (OpenZeppelin's `ERC20Capped`: a mint past it reverts with `ERC20ExceededCap`). Only
/// `MINTER_ROLE` mints; in GridShare that is the `RewardDistributor` alone, which mints each
/// epoch's new rewards to itself (bounded by the epoch budget) and pays them out on claims.
///
/// Burning. Any holder may burn its own tokens (`burn`) or tokens it has an allowance for
/// (`burnFrom`), OpenZeppelin's `ERC20Burnable`: the total supply goes down. `GatewayStaking`
/// burns most of a slashed bond this way. The cap bounds the supply in circulation, so burnt
/// tokens could in principle be minted again; the distributor never does (it only mints the
/// growth of its cumulative total, bounded by the epoch budgets).
///
/// Governance voting (ERC20Votes) is a later issue: the cap is at most 2^208 - 1, the largest
/// supply ERC20Votes can checkpoint, so the extension can be added without changing the cap
/// rule (both extensions override `_update`).
contract RewardToken is ERC20Capped, ERC20Burnable, AccessControl {
    /// @notice The role allowed to mint (granted by the admin to the distributor).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice The cap is zero or larger than 2^208 - 1 (what ERC20Votes could checkpoint).
    error InvalidCap(uint256 cap);
    /// @notice A zero address where an account is required.
    error ZeroAddress();

    /// @param admin holds DEFAULT_ADMIN_ROLE (grants MINTER_ROLE to the distributor)
    /// @param cap_ the hard cap on the total supply, in micro-tokens
    constructor(address admin, uint256 cap_) ERC20("GridShare Reward", "GSR") ERC20Capped(_checkedCap(cap_)) {
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

    /// The cap check of `ERC20Capped` on every mint (burns and transfers pass through).
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped) {
        super._update(from, to, value);
    }
}
