//! On-chain accounts of participants: where one without an address of its own is paid.
//!
//! A participant who gives an EVM address of their own acts for themselves. Every other one is
//! paid, rewarded and represented on chain by a custodial account whose key the service holds:
//! one secret seed ([`Custody`], the file `custody.key` in the market service's data directory)
//! from which each participant's key is derived, so that backing up that one file backs up every
//! custodial account, new ones included. The derivation is one-way: a participant's key reveals
//! neither the seed nor another participant's key.
//!
//! ```text
//! secret(p) = keccak256("gridshare custody v1\0" ‖ seed ‖ p as 8 big-endian bytes ‖ i as 4 big-endian bytes)
//! ```
//!
//! with `i` the first counter from 0 whose hash is a valid secp256k1 secret (non-zero and below
//! the group order; `i = 0` but for about one participant in 2^128).

use crate::envelope::{GatewayKey, KeyError, keccak256};
use crate::ids::ParticipantId;

/// The domain separator of the derivation.
const DOMAIN: &[u8] = b"gridshare custody v1\0";

/// The service's custody seed, from which every custodial account's key is derived.
#[derive(Clone, PartialEq, Eq)]
pub struct Custody {
    seed: [u8; 32],
}

impl core::fmt::Debug for Custody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the seed: it holds every custodial account.
        f.write_str("Custody(..)")
    }
}

impl Custody {
    /// From 32 secret bytes (read from `/dev/urandom` when the seed is made).
    pub fn from_bytes(seed: [u8; 32]) -> Self {
        Self { seed }
    }

    /// From 64 hex digits, `0x` optional.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(s.trim().trim_start_matches("0x")).map_err(|e| KeyError(e.to_string()))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError("a custody seed is 32 bytes (64 hex digits)".into()))?;
        Ok(Self { seed })
    }

    /// The seed as hex (for writing the seed file).
    pub fn to_hex(&self) -> String {
        hex::encode(self.seed)
    }

    /// The 32 secret bytes of `p`'s custodial account.
    pub fn secret(&self, p: ParticipantId) -> [u8; 32] {
        self.derive(p).0
    }

    /// The EVM address of `p`'s custodial account.
    pub fn address(&self, p: ParticipantId) -> [u8; 20] {
        self.derive(p).1.public().address()
    }

    /// The address as `0x` and 40 lower-case hex digits, as the database keeps it.
    pub fn address_hex(&self, p: ParticipantId) -> String {
        format!("0x{}", hex::encode(self.address(p)))
    }

    fn derive(&self, p: ParticipantId) -> ([u8; 32], GatewayKey) {
        let mut buf = Vec::with_capacity(DOMAIN.len() + 32 + 8 + 4);
        for i in 0u32.. {
            buf.clear();
            buf.extend_from_slice(DOMAIN);
            buf.extend_from_slice(&self.seed);
            buf.extend_from_slice(&p.0.to_be_bytes());
            buf.extend_from_slice(&i.to_be_bytes());
            let secret = keccak256(&buf);
            if let Ok(key) = GatewayKey::from_bytes(&secret) {
                return (secret, key);
            }
        }
        unreachable!("2^32 hashes in a row outside the secp256k1 group order")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custody(byte: u8) -> Custody {
        Custody::from_bytes([byte; 32])
    }

    #[test]
    fn each_participant_has_its_own_key_and_the_address_is_that_keys() {
        let c = custody(7);
        let mut seen = std::collections::HashSet::new();
        for p in 0..200u64 {
            let secret = c.secret(ParticipantId(p));
            let key = GatewayKey::from_bytes(&secret).unwrap();
            assert_eq!(key.public().address(), c.address(ParticipantId(p)), "participant {p}");
            assert!(
                seen.insert(c.address(ParticipantId(p))),
                "participant {p} shares an address"
            );
        }
        // the same seed gives the same accounts (a restored backup pays the same addresses)
        assert_eq!(
            Custody::from_hex(&c.to_hex()).unwrap().address(ParticipantId(3)),
            c.address(ParticipantId(3))
        );
        // another seed gives other accounts
        assert_ne!(custody(8).address(ParticipantId(3)), c.address(ParticipantId(3)));
    }

    #[test]
    fn the_derivation_is_the_documented_one() {
        // secret(p) = keccak256(domain ‖ seed ‖ p ‖ 0), computed here independently of `derive`
        let c = custody(1);
        let mut buf = b"gridshare custody v1\0".to_vec();
        buf.extend_from_slice(&[1u8; 32]);
        buf.extend_from_slice(&42u64.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(c.secret(ParticipantId(42)), keccak256(&buf));
        assert_eq!(c.address_hex(ParticipantId(42)).len(), 42);
        assert!(c.address_hex(ParticipantId(42)).starts_with("0x"));
    }

    #[test]
    fn a_malformed_seed_is_refused_by_name_and_never_printed() {
        assert!(Custody::from_hex("0x1234").unwrap_err().0.contains("32 bytes"));
        assert!(Custody::from_hex("zz").is_err());
        let c = custody(0xab);
        assert!(!format!("{c:?}").contains("ab"), "{c:?}");
    }
}
