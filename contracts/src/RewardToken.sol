// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title RewardToken
/// @notice Minted by the reward role for verified renewable energy exported and consumed inside
///         the community, and for verified demand-response reductions. Each award names its kind
///         and an off-chain reference (interval or event id) and can be minted once only, so a
///         retried transaction never pays twice. 3 decimals: one unit is one Wh of verified energy
///         (rewards are quoted per Wh; the service decides the rate).
contract RewardToken is ERC20, AccessControl {
    bytes32 public constant REWARD_ROLE = keccak256("REWARD_ROLE");

    enum Kind {
        LocalRenewable,
        DemandResponse
    }

    mapping(bytes32 awardKey => bool) public awarded;

    event Rewarded(address indexed account, Kind indexed kind, uint64 indexed ref, uint256 amount);

    error AlreadyAwarded(address account, Kind kind, uint64 ref);
    error ZeroAmount();

    constructor(address admin) ERC20("GridShare Reward", "GSR") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    function decimals() public pure override returns (uint8) {
        return 3;
    }

    function awardKey(address account, Kind kind, uint64 ref) public pure returns (bytes32) {
        return keccak256(abi.encode(account, kind, ref));
    }

    function reward(address account, Kind kind, uint64 ref, uint256 amount) external onlyRole(REWARD_ROLE) {
        if (amount == 0) revert ZeroAmount();
        bytes32 key = awardKey(account, kind, ref);
        if (awarded[key]) revert AlreadyAwarded(account, kind, ref);
        awarded[key] = true;
        _mint(account, amount);
        emit Rewarded(account, kind, ref, amount);
    }
}
