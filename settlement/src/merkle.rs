//! The Merkle tree of a batch's trades, hashed exactly as the vault verifies it.
//!
//! Leaf = `keccak256(abi.encode(Trade))` (the vault's `Trade` struct); the tree's shape (sorted
//! pairs, a lone node moves up, zero root when empty) is [`gridshare_domain::merkle`]'s. Vectors shared with the forge tests are in
//! `contracts/test/vectors/merkle_v1.json`.

use alloy::primitives::{B256, keccak256};
use alloy::sol_types::SolValue;
use gridshare_domain::merkle;

use crate::contracts::EnergySettlementVault::Trade;

/// The leaf of one trade.
pub fn leaf(trade: &Trade) -> B256 {
    keccak256(trade.abi_encode())
}

/// A complete tree over a batch's leaves ([`gridshare_domain::merkle::MerkleTree`] in the types
/// the contracts' bindings use).
#[derive(Debug, Clone)]
pub struct MerkleTree(merkle::MerkleTree);

impl MerkleTree {
    /// Builds the tree over `leaves`, in the given order.
    pub fn new(leaves: Vec<B256>) -> Self {
        Self(merkle::MerkleTree::new(leaves.into_iter().map(|l| l.0).collect()))
    }

    /// Builds the tree over the leaves of `trades`.
    pub fn from_trades(trades: &[Trade]) -> Self {
        Self::new(trades.iter().map(leaf).collect())
    }

    /// The root (zero for no leaves).
    pub fn root(&self) -> B256 {
        B256::from(self.0.root())
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a tree without leaves.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The proof (siblings from the leaf up) of leaf `index`, or `None` when out of range.
    pub fn proof(&self, index: usize) -> Option<Vec<B256>> {
        self.0.proof(index).map(|p| p.into_iter().map(B256::from).collect())
    }
}

/// Checks a proof the way the vault does.
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    let proof: Vec<[u8; 32]> = proof.iter().map(|p| p.0).collect();
    merkle::verify(&proof, root.0, leaf.0)
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
