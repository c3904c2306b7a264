//! The Merkle tree of a batch's trades, hashed exactly as the vault verifies it.
//!
//! Leaf = `keccak256(abi.encode(Trade))` (the vault's `Trade` struct). An inner node is the
//! keccak of its two children in ascending byte order (OpenZeppelin's `MerkleProof`, commutative
//! hashing), so a proof is just the list of siblings. A lone node at the end of a level moves up
//! unchanged. The root of an empty batch is zero. Vectors shared with the forge tests are in
//! `contracts/test/vectors/merkle_v1.json`.

use alloy::primitives::{B256, keccak256};
use alloy::sol_types::SolValue;

use crate::contracts::EnergySettlementVault::Trade;

/// The leaf of one trade.
pub fn leaf(trade: &Trade) -> B256 {
    keccak256(trade.abi_encode())
}

fn hash_pair(a: B256, b: B256) -> B256 {
    let mut buf = [0u8; 64];
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// A complete tree over a batch's leaves.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<B256>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`, in the given order.
    pub fn new(leaves: Vec<B256>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let next = below
                .chunks(2)
                .map(|c| if let [a, b] = c { hash_pair(*a, *b) } else { c[0] })
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// Builds the tree over the leaves of `trades`.
    pub fn from_trades(trades: &[Trade]) -> Self {
        Self::new(trades.iter().map(leaf).collect())
    }

    /// The root (zero for no leaves).
    pub fn root(&self) -> B256 {
        match self.levels.last() {
            Some(top) if top.len() == 1 => top[0],
            _ => B256::ZERO,
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// True for a tree without leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The proof (siblings from the leaf up) of leaf `index`, or `None` when out of range.
    pub fn proof(&self, mut index: usize) -> Option<Vec<B256>> {
        if index >= self.len() {
            return None;
        }
        let mut out = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(index ^ 1) {
                out.push(*sibling);
            }
            index /= 2;
        }
        Some(out)
    }
}

/// Checks a proof the way the vault does.
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    proof.iter().fold(leaf, |acc, p| hash_pair(acc, *p)) == root
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Address;

    fn trade(id: u64) -> Trade {
        Trade {
            tradeId: id,
            intervalStartMs: 1_700_000_000_000,
            buyer: Address::with_last_byte(1),
            seller: Address::with_last_byte(2),
            energyWh: 100 + id,
            priceMicroPerKwh: 150_000,
            gridFeeMicroPerKwh: 10_000,
            buyerPaysMicro: 16_000,
            sellerReceivesMicro: 15_000,
        }
    }

    #[test]
    fn every_leaf_proves_for_every_size() {
        for n in 1..=17u64 {
            let trades: Vec<Trade> = (0..n).map(trade).collect();
            let tree = MerkleTree::from_trades(&trades);
            for (i, t) in trades.iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                assert!(verify(&proof, tree.root(), leaf(t)), "n={n} i={i}");
                assert!(!verify(&proof, tree.root(), leaf(&trade(999))));
            }
            assert!(tree.proof(n as usize).is_none());
        }
        assert_eq!(MerkleTree::new(vec![]).root(), B256::ZERO);
    }
}
