//! The Merkle tree our contracts verify, over 32-byte leaves: the settlement vault's tree of a
//! batch's trades and the reward distributor's tree of cumulative totals use this one shape.
//!
//! An inner node is the keccak of its two children in ascending byte order (OpenZeppelin's
//! `MerkleProof`, commutative hashing), so a proof is just the list of siblings from the leaf up.
//! A lone node at the end of a level moves up unchanged (the vault's trade tree); the reward tree
//! is [`MerkleTree::padded`] with zero leaves to a power of two instead, so that any set of its
//! leaves can be proved at once ([`MerkleTree::multiproof`], OpenZeppelin's `multiProofVerify`).
//! The root of no leaves is zero. How a leaf is hashed is the caller's (each contract documents
//! its own).

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

    /// Builds the tree over `leaves` padded with zero leaves to the next power of two (the reward
    /// distributor's shape: no lone nodes, so every subset has a multiproof).
    pub fn padded(mut leaves: Vec<[u8; 32]>) -> Self {
        if leaves.is_empty() {
            return Self::new(leaves);
        }
        leaves.resize(leaves.len().next_power_of_two(), [0u8; 32]);
        Self::new(leaves)
    }

    /// An OpenZeppelin multiproof of the leaves at `positions` (strictly ascending; the leaves
    /// go to the contract in that order): `(proof, flags)`. Walking up level by level, a known
    /// node whose sibling is known too is hashed with it (flag `true`), else with the sibling
    /// from the proof (flag `false`). `None` for a position out of range, an unsorted list, or a
    /// tree with a lone node (build it [`MerkleTree::padded`]).
    pub fn multiproof(&self, positions: &[usize]) -> Option<(Vec<[u8; 32]>, Vec<bool>)> {
        if positions.is_empty()
            || positions.windows(2).any(|w| w[0] >= w[1])
            || positions.last().is_some_and(|&p| p >= self.len())
            || self.levels.iter().any(|l| l.len() > 1 && !l.len().is_multiple_of(2))
        {
            return None;
        }
        let (mut proof, mut flags) = (Vec::new(), Vec::new());
        let mut known = positions.to_vec();
        for level in &self.levels[..self.levels.len() - 1] {
            let mut next = Vec::with_capacity(known.len());
            let mut j = 0;
            while j < known.len() {
                let i = known[j];
                if i.is_multiple_of(2) && known.get(j + 1) == Some(&(i + 1)) {
                    flags.push(true);
                    j += 2;
                } else {
                    flags.push(false);
                    proof.push(level[i ^ 1]);
                    j += 1;
                }
                next.push(i / 2);
            }
            known = next;
        }
        Some((proof, flags))
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

/// What OpenZeppelin's `processMultiProof` computes from leaves (in ascending position), a
/// multiproof and its flags; `None` when the lengths do not fit together.
pub fn process_multiproof(leaves: &[[u8; 32]], proof: &[[u8; 32]], flags: &[bool]) -> Option<[u8; 32]> {
    if leaves.len() + proof.len() != flags.len() + 1 {
        return None;
    }
    if flags.is_empty() {
        return leaves.first().or(proof.first()).copied();
    }
    let (mut l, mut h, mut p) = (0, 0, 0);
    let mut hashes: Vec<[u8; 32]> = Vec::with_capacity(flags.len());
    let next = |hashes: &Vec<[u8; 32]>, l: &mut usize, h: &mut usize| {
        if *l < leaves.len() {
            *l += 1;
            leaves.get(*l - 1).copied()
        } else {
            *h += 1;
            hashes.get(*h - 1).copied()
        }
    };
    for &flag in flags {
        let a = next(&hashes, &mut l, &mut h)?;
        let b = if flag {
            next(&hashes, &mut l, &mut h)?
        } else {
            p += 1;
            *proof.get(p - 1)?
        };
        hashes.push(hash_pair(a, b));
    }
    hashes.last().copied()
}

/// The reward distributor's leaf of an account's cumulative total:
/// `keccak256(keccak256(abi.encode(address account, uint256 cumulative)))` (hashed twice, as
/// OpenZeppelin's StandardMerkleTree, so no inner node can pass for a leaf).
pub fn reward_leaf(account: &[u8; 20], cumulative: u64) -> [u8; 32] {
    let mut enc = [0u8; 64];
    enc[12..32].copy_from_slice(account);
    enc[56..64].copy_from_slice(&cumulative.to_be_bytes());
    keccak256(&keccak256(&enc))
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

    #[test]
    fn every_subset_of_a_padded_tree_has_a_multiproof() {
        for n in 1..=13u64 {
            let leaves: Vec<_> = (0..n).map(leaf).collect();
            let tree = MerkleTree::padded(leaves.clone());
            for mask in 1u32..(1 << n) {
                let positions: Vec<usize> = (0..n as usize).filter(|i| mask & (1 << i) != 0).collect();
                let (proof, flags) = tree.multiproof(&positions).unwrap();
                let chosen: Vec<_> = positions.iter().map(|&i| leaves[i]).collect();
                assert_eq!(
                    process_multiproof(&chosen, &proof, &flags),
                    Some(tree.root()),
                    "n={n} {positions:?}"
                );
                let mut wrong = chosen.clone();
                wrong[0] = leaf(1000);
                assert_ne!(process_multiproof(&wrong, &proof, &flags), Some(tree.root()));
            }
        }
        // an unpadded tree with a lone node has none
        assert!(
            MerkleTree::new((0..5).map(leaf).collect())
                .multiproof(&[0, 4])
                .is_none()
        );
    }
}
