#!/usr/bin/env node
// Writes test/vectors/rewards_v1.json: the reward tree (rewards tree v1, see the notes of
// src/RewardDistributor.sol) of a fixed set of accounts, with every leaf's proof, one
// OpenZeppelin multiproof for a subset, and budget schedule samples. Deterministic: running it
// again gives the same file. test/RewardVectors.t.sol checks the file on chain; the Rust side
// checks that it computes the same. This script is also the reference for building the tree
// and the multiproof. Only uses js-sha3 (in node_modules through solc).
//   node tools/rewards-vectors.mjs           write the file
//   node tools/rewards-vectors.mjs --check   fail when the file differs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { keccak256 } = require('js-sha3');
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = path.join(root, 'test', 'vectors', 'rewards_v1.json');

const hex = (bytes) => '0x' + Buffer.from(bytes).toString('hex');
const bytes = (h) => Buffer.from(h.slice(2), 'hex');
const keccak = (buf) => '0x' + keccak256(buf);
const word = (n) => bytes('0x' + BigInt(n).toString(16).padStart(64, '0'));
const ZERO = '0x' + '00'.repeat(32);

/// leaf = keccak256(bytes.concat(keccak256(abi.encode(address account, uint256 cumulative))))
function leaf(account, cumulative) {
  const encoded = Buffer.concat([word(BigInt(account)), word(cumulative)]);
  return keccak(bytes(keccak(encoded)));
}

/// Sorted-pair hashing (OpenZeppelin's commutative keccak).
function hashPair(a, b) {
  const [lo, hi] = a <= b ? [a, b] : [b, a]; // same-length lower-case hex: string order = byte order
  return keccak(Buffer.concat([bytes(lo), bytes(hi)]));
}

/// Levels of the tree over `leaves` (in tree order) padded with zero leaves to a power of two.
function build(leaves) {
  let size = 1;
  while (size < leaves.length) size *= 2;
  const levels = [[...leaves, ...Array(size - leaves.length).fill(ZERO)]];
  while (levels[levels.length - 1].length > 1) {
    const below = levels[levels.length - 1];
    const up = [];
    for (let i = 0; i < below.length; i += 2) up.push(hashPair(below[i], below[i + 1]));
    levels.push(up);
  }
  return levels;
}

function proof(levels, index) {
  const out = [];
  for (let d = 0; d + 1 < levels.length; d++) {
    out.push(levels[d][index ^ 1]);
    index >>= 1;
  }
  return out;
}

/// OpenZeppelin multiproof of the leaves at `positions` (strictly ascending); the leaves are
/// then given to the contract in that order.
function multiproof(levels, positions) {
  const proofOut = [];
  const flags = [];
  let known = positions;
  for (let d = 0; d + 1 < levels.length; d++) {
    const next = [];
    for (let j = 0; j < known.length; ) {
      const i = known[j];
      if (i % 2 === 0 && known[j + 1] === i + 1) {
        flags.push(true);
        j += 2;
      } else {
        flags.push(false);
        proofOut.push(levels[d][i ^ 1]);
        j += 1;
      }
      next.push(i >> 1);
    }
    known = next;
  }
  return { proof: proofOut, proofFlags: flags };
}

/// What OpenZeppelin's processMultiProof computes, to check the generator here too.
function processMultiproof(leaves, proofIn, flags) {
  if (leaves.length + proofIn.length !== flags.length + 1) throw new Error('bad multiproof lengths');
  if (flags.length === 0) return leaves.length ? leaves[0] : proofIn[0];
  const hashes = [];
  let l = 0, h = 0, p = 0;
  for (const flag of flags) {
    const a = l < leaves.length ? leaves[l++] : hashes[h++];
    const b = flag ? (l < leaves.length ? leaves[l++] : hashes[h++]) : proofIn[p++];
    hashes.push(hashPair(a, b));
  }
  return hashes[hashes.length - 1];
}

const budget = (initial, halving, epoch) => {
  const shift = (epoch - 1n) / halving;
  return shift >= 256n ? 0n : initial >> shift;
};

// Eleven accounts (not a power of two, so the padding shows), addresses from a fixed seed,
// cumulative totals in micro-tokens, sorted by address.
const accounts = [];
for (let i = 0; i < 11; i++) {
  const account = '0x' + keccak256(`gridshare rewards v1 account ${i}`).slice(24);
  const cumulative = BigInt(i === 3 ? 1 : 1_000_000 * (i + 1) + 12_345 * i * i);
  accounts.push({ account, cumulative });
}
accounts.sort((a, b) => (BigInt(a.account) < BigInt(b.account) ? -1 : 1));
const leaves = accounts.map((a) => leaf(a.account, a.cumulative));
const levels = build(leaves);
const treeRoot = levels[levels.length - 1][0];
const subset = [0, 1, 4, 7, 8, 10];
const mp = multiproof(levels, subset);
if (processMultiproof(subset.map((i) => leaves[i]), mp.proof, mp.proofFlags) !== treeRoot) {
  throw new Error('multiproof does not rebuild the root');
}

const out = {
  description:
    'Reward tree v1 (RewardDistributor): leaf = keccak256(bytes.concat(keccak256(abi.encode(address account, uint256 cumulative)))), ' +
    'leaves sorted by address ascending, padded with zero leaves to a power of two, sorted-pair hashing; ' +
    'proofs are sibling lists from the leaf up; the multiproof is OpenZeppelin multiProofVerify with the leaves in ascending position. ' +
    'Generated by contracts/tools/rewards-vectors.mjs.',
  count: accounts.length,
  paddedCount: levels[0].length,
  root: treeRoot,
  cumulativeTotal: accounts.reduce((s, a) => s + a.cumulative, 0n).toString(),
  accounts: accounts.map((a, i) => ({
    account: a.account,
    cumulative: Number(a.cumulative),
    leaf: leaves[i],
    proof: proof(levels, i),
  })),
  multiproof: {
    positions: subset,
    accounts: subset.map((i) => accounts[i].account),
    cumulatives: subset.map((i) => Number(accounts[i].cumulative)),
    leaves: subset.map((i) => leaves[i]),
    proof: mp.proof,
    proofFlags: mp.proofFlags,
  },
  budget: [
    [10_000_000_000n, 4n, 1n],
    [10_000_000_000n, 4n, 4n],
    [10_000_000_000n, 4n, 5n],
    [10_000_000_000n, 4n, 13n],
    [7n, 1n, 3n],
    [10_000_000_000n, 1n, 300n],
  ].map(([initialBudget, halvingEpochs, epoch]) => ({
    initialBudget: Number(initialBudget),
    halvingEpochs: Number(halvingEpochs),
    epoch: Number(epoch),
    budget: Number(budget(initialBudget, halvingEpochs, epoch)),
  })),
};
out.cumulativeTotal = Number(out.cumulativeTotal);
const text = JSON.stringify(out, null, 2) + '\n';
if (process.argv.includes('--check')) {
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) {
    console.error('contracts/test/vectors/rewards_v1.json is stale: run node tools/rewards-vectors.mjs');
    process.exit(1);
  }
} else {
  fs.writeFileSync(file, text);
}
