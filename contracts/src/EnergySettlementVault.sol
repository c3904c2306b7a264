// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title EnergySettlementVault
/// @notice Holds the community's settlement token and applies one netted delta per account per
///         settlement batch.
///
/// Accounts. Every account gets a dense index the first time it is seen (deposit or
/// `registerAccounts`). Settlement calldata names accounts by index, not by address.
///
/// Balances are signed 128-bit numbers in token units (micro-currency), two per storage slot:
/// account `i` lives in slot `i / 2`, low half for even `i`, high half for odd `i`. A balance may go
/// negative down to `-creditLine` (the community lets a home buy before it has deposited);
/// withdrawals only ever take a positive balance (pull payments).
///
/// Batches. `settleInterval` applies batch `lastBatchId + 1` on top of the current state hash.
/// Its deltas are words `(index << 128) | uint128(int128 delta)`, strictly increasing by index
/// (so an account appears once and neighbours share a storage write). The deltas of a batch
/// sum to exactly zero. A batch too big for one transaction is sent as `chunkCount` chunks
/// under one batch id, in order; the zero sum is checked when the last chunk lands, and
/// withdrawals wait while a batch is part-applied. Each chunk extends the state hash chain:
///     stateHash' = keccak256(stateHash, batchId, chunk, chunkCount, tradesRoot, keccak256(deltas))
/// `tradesRoot` is the root of the batch's trades (leaf = keccak256(abi.encode(Trade)),
/// OpenZeppelin's sorted-pair hashing), so anyone can prove a trade was settled with
/// `verifyTrade`.
contract EnergySettlementVault is AccessControl, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// One matched trade as the settlement service hashed it into the batch's Merkle tree.
    struct Trade {
        uint64 tradeId;
        uint64 intervalStartMs; // delivery interval start, unix milliseconds (UTC)
        address buyer;
        address seller;
        uint64 energyWh;
        int64 priceMicroPerKwh; // clearing or resting price
        uint64 gridFeeMicroPerKwh; // network fee along the path
        int128 buyerPaysMicro; // rounded up
        int128 sellerReceivesMicro; // rounded down
    }

    /// The batch cursor, one storage slot.
    struct Cursor {
        uint64 lastBatchId; // last fully settled batch (0 = none yet)
        uint32 nextChunk; // next chunk of batch lastBatchId + 1 (0 = none started)
        uint32 chunkCount; // chunks announced for the batch in progress
        int128 pendingSum; // sum of the deltas applied so far in the batch in progress
    }

    IERC20 public immutable token;
    uint128 public creditLine;
    Cursor public cursor;
    bytes32 public stateHash;
    mapping(uint64 batchId => bytes32) public tradesRoot;

    address[] private _accounts;
    mapping(address account => uint256) private _indexPlusOne;
    mapping(uint256 slot => uint256) private _balanceSlots;

    uint256 private constant LOW128 = type(uint128).max;
    /// The largest amount a balance can hold (int128 max).
    uint256 private constant MAX_AMOUNT = 2 ** 127 - 1;

    event AccountRegistered(address indexed account, uint256 indexed index);
    event Deposited(address indexed account, address indexed from, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event CreditLineChanged(uint128 previous, uint128 current);
    event ChunkSettled(uint64 indexed batchId, uint32 chunk, uint32 chunkCount, bytes32 stateHash, uint256 accounts);
    event BatchSettled(uint64 indexed batchId, bytes32 indexed tradesRoot, bytes32 stateHash);

    error ZeroAddress();
    error ZeroAmount();
    error AmountTooLarge(uint256 amount);
    error UnknownAccount(address account);
    error InsufficientBalance(address account, int256 balance, uint256 requested);
    error BatchOutOfOrder(uint64 expected, uint64 got);
    error ChunkOutOfOrder(uint32 expected, uint32 got);
    error BadChunkCount(uint32 expected, uint32 got);
    error StateHashMismatch(bytes32 expected, bytes32 got);
    error TradesRootMismatch(bytes32 expected, bytes32 got);
    error EmptyChunk();
    error DeltasNotSorted(uint256 position);
    error IndexOutOfRange(uint256 position, uint256 index);
    error DebitExceedsCredit(address account, int256 newBalance, uint128 creditLine);
    error BalanceOverflow(address account);
    error NonZeroSum(int256 sum);
    error BatchInProgress(uint64 batchId);

    constructor(IERC20 token_, address admin, uint128 creditLine_) {
        if (address(token_) == address(0) || admin == address(0)) revert ZeroAddress();
        token = token_;
        creditLine = creditLine_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        emit CreditLineChanged(0, creditLine_);
    }

    // ---------------------------------------------------------------- accounts

    function accountCount() external view returns (uint256) {
        return _accounts.length;
    }

    function accountAt(uint256 index) external view returns (address) {
        return _accounts[index];
    }

    /// @notice The index of an account, reverting for an account never seen.
    function indexOf(address account) public view returns (uint256) {
        uint256 ip1 = _indexPlusOne[account];
        if (ip1 == 0) revert UnknownAccount(account);
        return ip1 - 1;
    }

    function isRegistered(address account) external view returns (bool) {
        return _indexPlusOne[account] != 0;
    }

    /// @notice Give accounts an index (idempotent: known accounts keep theirs).
    function registerAccounts(address[] calldata accounts) external onlyRole(SETTLER_ROLE) {
        for (uint256 i = 0; i < accounts.length; ++i) {
            _register(accounts[i]);
        }
    }

    function _register(address account) private returns (uint256 index) {
        if (account == address(0)) revert ZeroAddress();
        uint256 ip1 = _indexPlusOne[account];
        if (ip1 != 0) return ip1 - 1;
        index = _accounts.length;
        _accounts.push(account);
        _indexPlusOne[account] = index + 1;
        emit AccountRegistered(account, index);
    }

    function balanceOf(address account) public view returns (int256) {
        uint256 ip1 = _indexPlusOne[account];
        if (ip1 == 0) return 0;
        return _balanceAt(ip1 - 1);
    }

    function _balanceAt(uint256 index) private view returns (int256) {
        return _half(_balanceSlots[index >> 1], (index & 1) * 128);
    }

    function _setBalanceAt(uint256 index, int256 value) private {
        uint256 key = index >> 1;
        _balanceSlots[key] = _withHalf(_balanceSlots[key], (index & 1) * 128, value);
    }

    /// The signed 128-bit half of `word` at bit `shift` (0 or 128): a bit reinterpretation.
    function _half(uint256 word, uint256 shift) private pure returns (int256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return int256(int128(uint128(word >> shift)));
    }

    /// `word` with its half at `shift` replaced by `value`, which callers have range-checked
    /// to int128.
    function _withHalf(uint256 word, uint256 shift, int256 value) private pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return (word & ~(LOW128 << shift)) | (uint256(uint128(int128(value))) << shift);
    }

    // ------------------------------------------------------- deposits/withdrawals

    /// @notice Deposit `amount` tokens (approved beforehand) to the caller's account.
    function deposit(uint256 amount) external {
        depositFor(msg.sender, amount);
    }

    /// @notice Deposit `amount` of the caller's tokens to `account`.
    function depositFor(address account, uint256 amount) public nonReentrant whenNotPaused {
        if (amount == 0) revert ZeroAmount();
        if (amount > MAX_AMOUNT) revert AmountTooLarge(amount);
        uint256 index = _register(account);
        int256 next = _balanceAt(index) + SafeCast.toInt256(amount);
        if (next > type(int128).max) revert BalanceOverflow(account);
        _setBalanceAt(index, next);
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(account, msg.sender, amount);
    }

    /// @notice Withdraw `amount` from the caller's positive balance.
    function withdraw(uint256 amount) external nonReentrant whenNotPaused {
        if (amount == 0) revert ZeroAmount();
        Cursor memory c = cursor;
        if (c.nextChunk != 0) revert BatchInProgress(c.lastBatchId + 1);
        uint256 index = indexOf(msg.sender);
        int256 balance = _balanceAt(index);
        if (amount > MAX_AMOUNT || balance < SafeCast.toInt256(amount)) {
            revert InsufficientBalance(msg.sender, balance, amount);
        }
        _setBalanceAt(index, balance - SafeCast.toInt256(amount));
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Apply one chunk of settlement batch `batchId`. See the contract notes for the
    ///         delta encoding and the state hash chain.
    function settleInterval(
        uint64 batchId,
        uint32 chunk,
        uint32 chunkCount,
        bytes32 prevStateHash,
        bytes32 root,
        uint256[] calldata deltas
    ) external onlyRole(SETTLER_ROLE) whenNotPaused {
        Cursor memory c = cursor;
        if (batchId != c.lastBatchId + 1) revert BatchOutOfOrder(c.lastBatchId + 1, batchId);
        if (chunk != c.nextChunk) revert ChunkOutOfOrder(c.nextChunk, chunk);
        if (chunk == 0) {
            if (chunkCount == 0) revert BadChunkCount(1, 0);
            tradesRoot[batchId] = root;
        } else {
            if (chunkCount != c.chunkCount) revert BadChunkCount(c.chunkCount, chunkCount);
            bytes32 known = tradesRoot[batchId];
            if (root != known) revert TradesRootMismatch(known, root);
        }
        bytes32 current = stateHash;
        if (prevStateHash != current) revert StateHashMismatch(current, prevStateHash);
        if (deltas.length == 0) revert EmptyChunk();

        int256 sum = int256(c.pendingSum) + _applyDeltas(deltas);

        bytes32 next = keccak256(
            abi.encodePacked(current, batchId, chunk, chunkCount, root, keccak256(abi.encodePacked(deltas)))
        );
        stateHash = next;
        emit ChunkSettled(batchId, chunk, chunkCount, next, deltas.length);

        if (chunk + 1 == chunkCount) {
            if (sum != 0) revert NonZeroSum(sum);
            cursor = Cursor({lastBatchId: batchId, nextChunk: 0, chunkCount: 0, pendingSum: 0});
            emit BatchSettled(batchId, root, next);
        } else {
            // A pending sum outside int128 could never be brought back to zero: refuse it here.
            if (sum > type(int128).max || sum < type(int128).min) revert NonZeroSum(sum);
            cursor = Cursor({
                lastBatchId: c.lastBatchId,
                nextChunk: chunk + 1,
                chunkCount: chunkCount,
                pendingSum: SafeCast.toInt128(sum)
            });
        }
    }

    function _applyDeltas(uint256[] calldata deltas) private returns (int256 sum) {
        uint256 n = _accounts.length;
        int256 credit = -SafeCast.toInt256(uint256(creditLine));
        uint256 slotKey = type(uint256).max;
        uint256 slotWord;
        uint256 prevIndex;
        for (uint256 i = 0; i < deltas.length; ++i) {
            uint256 word = deltas[i];
            uint256 index = word >> 128;
            if (i != 0 && index <= prevIndex) revert DeltasNotSorted(i);
            if (index >= n) revert IndexOutOfRange(i, index);
            prevIndex = index;
            int256 delta = _half(word, 0);

            uint256 key = index >> 1;
            if (key != slotKey) {
                if (slotKey != type(uint256).max) _balanceSlots[slotKey] = slotWord;
                slotKey = key;
                slotWord = _balanceSlots[key];
            }
            uint256 shift = (index & 1) * 128;
            int256 balance = _half(slotWord, shift) + delta;
            if (balance > type(int128).max || balance < type(int128).min) revert BalanceOverflow(_accounts[index]);
            if (delta < 0 && balance < credit) revert DebitExceedsCredit(_accounts[index], balance, creditLine);
            slotWord = _withHalf(slotWord, shift, balance);
            sum += delta;
        }
        _balanceSlots[slotKey] = slotWord;
    }

    /// @notice True when `trade` is a leaf of settled (or part-settled) batch `batchId`.
    function verifyTrade(uint64 batchId, Trade calldata trade, bytes32[] calldata proof) external view returns (bool) {
        bytes32 root = tradesRoot[batchId];
        if (root == bytes32(0)) return false;
        return MerkleProof.verifyCalldata(proof, root, tradeLeaf(trade));
    }

    function tradeLeaf(Trade calldata trade) public pure returns (bytes32) {
        return keccak256(abi.encode(trade));
    }

    // ----------------------------------------------------------------------- admin

    function setCreditLine(uint128 value) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit CreditLineChanged(creditLine, value);
        creditLine = value;
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }
}
