//! The Merkle tree our contracts verify, over 32-byte leaves: the settlement vault's tree of a
//! batch's trades and the reward distributor's tree of cumulative totals use this one shape.
//!
//! An inner node is the keccak of its two children in ascending byte order (OpenZeppelin's
//! `MerkleProof`, commutative hashing), so a proof is just the list of siblings from the leaf up.
//! A lone node at the end of a level moves up unchanged. The root of no leaves is zero. How a
//! leaf is hashed is the caller's (each contract documents its own).

use crate::envelope::keccak256;

/// The hash of two sibling nodes, smaller first.
pub fn hash_pair(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&lo);
    buf[32..].copy_from_slice(&hi);
    keccak256(&buf)
}

/// A complete tree over leaves in a fixed order.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<[u8; 32]>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`, in the given order.
    pub fn new(leaves: Vec<[u8; 32]>) -> Self {
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

    /// The root (zero for no leaves).
    pub fn root(&self) -> [u8; 32] {
        match self.levels.last() {
            Some(top) if top.len() == 1 => top[0],
            _ => [0u8; 32],
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
    pub fn proof(&self, mut index: usize) -> Option<Vec<[u8; 32]>> {
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

/// Checks a proof the way the contracts do.
pub fn verify(proof: &[[u8; 32]], root: [u8; 32], leaf: [u8; 32]) -> bool {
    proof.iter().fold(leaf, |acc, p| hash_pair(acc, *p)) == root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u64) -> [u8; 32] {
        keccak256(&i.to_be_bytes())
    }

    #[test]
    fn every_leaf_proves_for_every_size_and_no_other_leaf_does() {
        for n in 1..=33u64 {
            let leaves: Vec<_> = (0..n).map(leaf).collect();
            let tree = MerkleTree::new(leaves.clone());
            for (i, l) in leaves.iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                assert!(verify(&proof, tree.root(), *l), "n={n} i={i}");
                assert!(!verify(&proof, tree.root(), leaf(999)));
            }
            assert!(tree.proof(n as usize).is_none());
        }
        assert_eq!(MerkleTree::new(vec![]).root(), [0u8; 32]);
        assert_eq!(MerkleTree::new(vec![leaf(7)]).root(), leaf(7));
    }
}
