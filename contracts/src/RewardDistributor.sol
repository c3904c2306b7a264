// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {RewardToken} from "./RewardToken.sol";

/// @title RewardDistributor
/// @notice Pays the community's rewards with a cumulative Merkle distribution: once per epoch
///         the service posts the root of a tree in which every rewarded account appears once
///         with its cumulative total (everything it has earned since epoch 1); a claim pays the
///         difference between that total and what the account has already been paid. Anyone
///         may claim for any account (the tokens always go to the account itself), so a
///         homeowner never needs gas: the service claims for them in batches. An account that
///         skips epochs loses nothing; claiming every k epochs costs 1/k of the gas.
///
/// Epochs. `postEpoch` takes epoch `lastEpoch + 1` only (the first is 1): a root cannot be
/// replaced, replayed or go backwards. With the root come the keccak hash of the epoch's public
/// report and `cumulativeTotal`, the sum of every account's cumulative total in the new tree.
/// That sum never decreases and grows by at most `epochBudget(epoch)`; the growth is minted to
/// this contract, so the token's cap bounds all emission. The contract cannot see inside the
/// tree: that the stated sum matches the tree is for anyone to check against the public report
/// (`gridshare epoch verify`); claims can never pay more than this contract holds.
///
/// Budget schedule (epoch >= 1; the Rust side mirrors it exactly):
///     epochBudget(epoch) = initialBudget >> ((epoch - 1) / halvingEpochs)
/// i.e. `initialBudget` micro-tokens per epoch for the first `halvingEpochs` epochs, then half
/// (rounded down) for the next `halvingEpochs`, and so on (zero once the shift reaches 256).
///
/// Leaf of an account (double hashed, as OpenZeppelin's StandardMerkleTree, so that no inner
/// node of 64 bytes can pass for a leaf):
///     leaf = keccak256(bytes.concat(keccak256(abi.encode(address account, uint256 cumulative))))
/// Inner nodes: keccak256 of the two children in ascending byte order (OpenZeppelin's
/// `MerkleProof`, commutative), as the trade tree of `settlement/src/merkle.rs`.
///
/// Tree (rewards tree v1): the accounts with a positive cumulative total, one leaf each, sorted
/// by address ascending (as a 160-bit number), then padded with zero leaves (bytes32(0)) up to
/// the next power of two; levels are built pairwise from the left (`merkle.rs`'s builder, in
/// which no lone node ever occurs after the padding). No accounts: root zero; one account: the
/// root is its leaf. The padding makes the tree perfect, which every OpenZeppelin multiproof
/// needs (a promoted lone node can make a subset unprovable); a zero leaf can never be claimed
/// because no (account, cumulative) hashes to zero.
///
/// Multiproof for `claimMany` (OpenZeppelin `multiProofVerifyCalldata`): leaves are given in
/// ascending tree position (= ascending account address), each position at most once. The
/// proof and flags come from walking the tree up one level at a time:
///     known = the positions, ascending
///     for each level below the root:
///         next = []
///         for each position i in known, in order:
///             if i is even and i + 1 is the next entry of known: flag true, skip that entry
///             else: flag false, append the node at position i ^ 1 of this level to proof
///             append i / 2 to next
///         known = next
/// which yields exactly `leaves + proof - 1` flags. `test/utils/RewardTree.sol` and
/// `tools/rewards-vectors.mjs` are reference implementations.
contract RewardDistributor is AccessControl {
    using SafeERC20 for IERC20;

    /// @notice The role allowed to post epoch roots (the settlement service).
    bytes32 public constant POSTER_ROLE = keccak256("POSTER_ROLE");

    /// @notice The reward token; this contract must hold its `MINTER_ROLE`.
    RewardToken public immutable token;
    /// @notice Budget of each of the first `halvingEpochs` epochs, in micro-tokens.
    uint256 public immutable initialBudget;
    /// @notice Number of epochs between two halvings of the budget (at least 1).
    uint64 public immutable halvingEpochs;

    /// The epoch cursor, one storage slot.
    struct Cursor {
        uint64 lastEpoch; // last posted epoch (0 = none yet)
        uint192 cumulativeTotal; // sum of all cumulative totals in the latest root = all minted
    }

    Cursor private _cursor;
    mapping(uint64 epoch => bytes32) private _roots;
    mapping(uint64 epoch => bytes32) private _reportHashes;
    mapping(address account => uint256) private _claimed;

    /// @notice Epoch `epoch` was posted; `minted` new tokens came to this contract.
    event EpochPosted(
        uint64 indexed epoch, bytes32 root, bytes32 reportHash, uint256 minted, uint256 cumulativeTotal
    );
    /// @notice `amount` was paid to `account` by `claim`; its claimed total is now `cumulative`.
    event Claimed(address indexed account, uint256 amount, uint256 cumulative);
    /// @notice A `claimMany` against epoch `epoch`'s root paid `paid` in total to `accounts`
    ///         accounts (those with something new). Per account, the payout is the reward
    ///         token's Transfer from this contract (no per-account event here: it would cost
    ///         about 1,700 gas per home).
    event ClaimedMany(uint64 indexed epoch, uint256 accounts, uint256 paid);

    /// @notice A zero address where a contract or account is required.
    error ZeroAddress();
    /// @notice `halvingEpochs` must be at least 1.
    error InvalidSchedule();
    /// @notice Epochs start at 1; epoch 0 has no budget.
    error InvalidEpoch(uint64 epoch);
    /// @notice Only epoch `expected` (= lastEpoch + 1) can be posted next.
    error EpochOutOfOrder(uint64 expected, uint64 got);
    /// @notice The new root's cumulative total is below the previous one.
    error CumulativeTotalDecreased(uint256 previous, uint256 got);
    /// @notice The epoch's increase of the cumulative total exceeds its budget.
    error OverBudget(uint64 epoch, uint256 increase, uint256 budget);
    /// @notice (account, cumulative) is not a leaf of the latest root under this proof.
    error InvalidProof(address account, uint256 cumulative);
    /// @notice The batch's multiproof does not prove its leaves against the latest root.
    error InvalidMultiproof();
    /// @notice The account has already been paid `cumulative` or more.
    error NothingToClaim(address account, uint256 cumulative, uint256 claimed);
    /// @notice `accounts` and `cumulatives` differ in length.
    error LengthMismatch(uint256 accounts, uint256 cumulatives);
    /// @notice A batch claim without accounts.
    error EmptyBatch();

    /// @param token_ the reward token (grant this contract MINTER_ROLE on it)
    /// @param admin holds DEFAULT_ADMIN_ROLE (grants POSTER_ROLE)
    /// @param initialBudget_ budget of each of the first `halvingEpochs_` epochs (micro-tokens)
    /// @param halvingEpochs_ epochs between halvings of the budget, at least 1
    constructor(RewardToken token_, address admin, uint256 initialBudget_, uint64 halvingEpochs_) {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        if (halvingEpochs_ == 0) revert InvalidSchedule();
        token = token_;
        initialBudget = initialBudget_;
        halvingEpochs = halvingEpochs_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------- epochs

    /// @notice The most that epoch `epoch` may add to the cumulative total:
    ///         `initialBudget >> ((epoch - 1) / halvingEpochs)`; reverts for epoch 0.
    function epochBudget(uint64 epoch) public view returns (uint256) {
        if (epoch == 0) revert InvalidEpoch(epoch);
        uint256 halvings = (epoch - 1) / halvingEpochs;
        return halvings >= 256 ? 0 : initialBudget >> halvings;
    }

    /// @notice Post epoch `epoch` (= lastEpoch + 1): its cumulative Merkle root, the keccak hash
    ///         of its report and the sum of all cumulative totals in the root. Mints the increase
    ///         of that sum (at most the epoch's budget, and within the token's cap) to this
    ///         contract. The root replaces the previous one for claims.
    function postEpoch(uint64 epoch, bytes32 root, bytes32 reportHash, uint256 cumulativeTotal_)
        external
        onlyRole(POSTER_ROLE)
    {
        Cursor memory c = _cursor;
        uint64 expected = c.lastEpoch + 1;
        if (epoch != expected) revert EpochOutOfOrder(expected, epoch);
        if (cumulativeTotal_ < c.cumulativeTotal) revert CumulativeTotalDecreased(c.cumulativeTotal, cumulativeTotal_);
        uint256 increase = cumulativeTotal_ - c.cumulativeTotal;
        uint256 budget = epochBudget(epoch);
        if (increase > budget) revert OverBudget(epoch, increase, budget);

        _cursor = Cursor({lastEpoch: epoch, cumulativeTotal: SafeCast.toUint192(cumulativeTotal_)});
        _roots[epoch] = root;
        _reportHashes[epoch] = reportHash;
        if (increase != 0) token.mint(address(this), increase);
        emit EpochPosted(epoch, root, reportHash, increase, cumulativeTotal_);
    }

    /// @notice The last posted epoch (0 before the first).
    function lastEpoch() external view returns (uint64) {
        return _cursor.lastEpoch;
    }

    /// @notice The sum of all cumulative totals in the latest root: everything minted so far.
    function cumulativeTotal() external view returns (uint256) {
        return _cursor.cumulativeTotal;
    }

    /// @notice The root posted for `epoch` (zero if not posted).
    function rootOf(uint64 epoch) external view returns (bytes32) {
        return _roots[epoch];
    }

    /// @notice The report hash posted for `epoch` (zero if not posted).
    function reportHashOf(uint64 epoch) external view returns (bytes32) {
        return _reportHashes[epoch];
    }

    /// @notice The latest root, the one claims are verified against (zero before epoch 1).
    function latestRoot() public view returns (bytes32) {
        return _roots[_cursor.lastEpoch];
    }

    // ---------------------------------------------------------------- claims

    /// @notice What `account` has been paid in total (its cumulative total at its last claim).
    function claimed(address account) external view returns (uint256) {
        return _claimed[account];
    }

    /// @notice The leaf of (account, cumulative):
    ///         keccak256(bytes.concat(keccak256(abi.encode(account, cumulative)))).
    function leafOf(address account, uint256 cumulative) public pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            mstore(0x00, account)
            mstore(0x20, cumulative)
            mstore(0x00, keccak256(0x00, 0x40))
            leaf := keccak256(0x00, 0x20)
        }
    }

    /// @notice Pay `account` the difference between `cumulative` (proved against the latest
    ///         root) and what it has been paid so far. Anyone may call it.
    /// @return amount the amount paid
    function claim(address account, uint256 cumulative, bytes32[] calldata proof) external returns (uint256 amount) {
        if (!MerkleProof.verifyCalldata(proof, latestRoot(), leafOf(account, cumulative))) {
            revert InvalidProof(account, cumulative);
        }
        uint256 before = _claimed[account];
        if (cumulative <= before) revert NothingToClaim(account, cumulative, before);
        _claimed[account] = cumulative;
        amount = cumulative - before;
        IERC20(address(token)).safeTransfer(account, amount);
        emit Claimed(account, amount, cumulative);
    }

    /// @notice Batch claim with one multiproof (OpenZeppelin `multiProofVerifyCalldata`) for
    ///         all the leaves (accounts[i], cumulatives[i]) against the latest root. Leaves go in
    ///         ascending tree position (= ascending address, see the contract notes). A proof
    ///         that fails reverts the whole batch (`InvalidMultiproof`, or OpenZeppelin's
    ///         `MerkleProofInvalidMultiproof` for malformed lengths). An account with nothing new
    ///         (already paid up to its cumulative, e.g. it claimed itself meanwhile or appears
    ///         twice) is skipped, not an error, so a retried or overlapping batch still lands.
    ///         Emits one `ClaimedMany`; each payout is the token's Transfer to the account.
    /// @return paid the total paid by this batch
    function claimMany(
        address[] calldata accounts,
        uint256[] calldata cumulatives,
        bytes32[] calldata proof,
        bool[] calldata proofFlags
    ) external returns (uint256 paid) {
        uint256 n = accounts.length;
        if (n != cumulatives.length) revert LengthMismatch(n, cumulatives.length);
        if (n == 0) revert EmptyBatch();
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = leafOf(accounts[i], cumulatives[i]);
        }
        if (!MerkleProof.multiProofVerifyCalldata(proof, proofFlags, latestRoot(), leaves)) {
            revert InvalidMultiproof();
        }
        IERC20 t = IERC20(address(token));
        uint256 count;
        for (uint256 i = 0; i < n; ++i) {
            address account = accounts[i];
            uint256 cumulative = cumulatives[i];
            uint256 before = _claimed[account];
            if (cumulative <= before) continue;
            _claimed[account] = cumulative;
            uint256 amount = cumulative - before;
            paid += amount;
            ++count;
            t.safeTransfer(account, amount);
        }
        emit ClaimedMany(_cursor.lastEpoch, count, paid);
    }
}
