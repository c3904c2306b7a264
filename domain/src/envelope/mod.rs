//! Signed envelopes: how a gateway proves a message is its own, fresh and new.
//!
//! ```text
//!  gateway                                        market service
//!  Message ──serde_json──▶ payload text
//!  digest = keccak256("GridShare envelope v1\0" ‖ gateway u64 BE ‖ seq u64 BE ‖ ts i64 BE ‖ payload)
//!  sig = secp256k1 ECDSA (RFC 6979, low-s) over digest, 65 bytes r‖s‖v
//!  {"v":1,"gateway":..,"seq":..,"ts":..,"payload":"..","sig":"0x.."}  ──MQTT──▶  Verifier::open
//!                                        size ≤ MAX_ENVELOPE_BYTES → version → registered key
//!                                        → signature → clock skew / age → replay window → Message
//! ```
//!
//! **Why secp256k1 and not ed25519:** a gateway's key is also an EVM account.
//! The on-chain gateway registry stores the address derived from it, and a
//! contract can check a gateway's signature with `ecrecover`; ed25519 would
//! need a second key per gateway and a precompile chains do not have.
//!
//! **Downlinks** (market → gateway) use the same envelope, signed with the market's key
//! ([`GatewayKey::seal_downlink`]) over a digest under another domain separator that also binds
//! the channel; `gateway` names the addressee and `seq` is the market's strictly increasing
//! counter. A gateway checks them with a [`DownlinkVerifier`] before it acts.
//!
//! The payload stays as the exact text that was signed, so verification never
//! depends on how a JSON library re-serialises numbers or field order.

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::ids::GatewayId;
use crate::interval::Timestamp;
use crate::wire::{Message, WIRE_VERSION};

/// Largest envelope accepted, in bytes of JSON: 64 KiB. A telemetry message
/// of [`crate::wire::Telemetry::MAX_SAMPLES`] samples is about 12 KiB.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

/// Domain separator so a signature over an envelope can never be replayed as
/// a signature over anything else (a transaction, another protocol).
const DOMAIN: &[u8] = b"GridShare envelope v1\0";

/// keccak-256, as Ethereum uses it.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// Why an envelope was refused. Each variant is counted separately by the
/// market service, so the names are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// More than [`MAX_ENVELOPE_BYTES`].
    #[error("envelope is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a JSON envelope.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// A wire version this build does not speak.
    #[error("unsupported wire version {0} (this build speaks {WIRE_VERSION})")]
    UnsupportedVersion(u16),
    /// The gateway is not registered.
    #[error("unknown gateway {0}")]
    UnknownGateway(GatewayId),
    /// The gateway is commissioned in the market but its key is not in the registry on chain yet,
    /// which is the authority on gateways: refused until it is (within a settlement step).
    #[error("gateway {0} is not in the registry on chain yet")]
    NotOnChain(GatewayId),
    /// The gateway was registered and has been revoked (in the registry on chain, by an admin, or
    /// for equivocation): nothing more is taken from it.
    #[error("gateway {0} was revoked")]
    Revoked(GatewayId),
    /// The signature is not the registered key's.
    #[error("bad signature from {0}")]
    BadSignature(GatewayId),
    /// Timestamp further in the future than the allowed skew.
    #[error("timestamp {ts} is {ahead_ms} ms in the future (allowed {max_ms} ms)")]
    FromTheFuture {
        /// The envelope's timestamp.
        ts: Timestamp,
        /// How far ahead of now.
        ahead_ms: i64,
        /// Allowed skew.
        max_ms: i64,
    },
    /// Timestamp older than allowed for this kind of message.
    #[error("{kind} message is {age_ms} ms old (allowed {max_ms} ms)")]
    Stale {
        /// Message kind.
        kind: &'static str,
        /// Its age.
        age_ms: i64,
        /// Allowed age.
        max_ms: i64,
    },
    /// The sequence number was seen before.
    #[error("replayed sequence {seq} from {gateway}")]
    Replayed {
        /// Sender.
        gateway: GatewayId,
        /// The repeated sequence number.
        seq: u64,
    },
    /// The sequence number is older than the reorder window.
    #[error("sequence {seq} from {gateway} is older than the window (highest seen {highest})")]
    SequenceTooOld {
        /// Sender.
        gateway: GatewayId,
        /// The sequence number.
        seq: u64,
        /// Highest accepted so far.
        highest: u64,
    },
    /// Signed by another gateway than the one the channel belongs to.
    #[error("signed by {signed}, received on {expected}'s channel")]
    WrongSender {
        /// The gateway the channel (e.g. MQTT topic) belongs to.
        expected: GatewayId,
        /// The gateway that signed.
        signed: GatewayId,
    },
    /// The signed payload is not a valid message.
    #[error("invalid payload: {0}")]
    BadPayload(String),
}

impl EnvelopeError {
    /// A stable snake_case reason, for metrics labels and error codes.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed(_) => "malformed",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::UnknownGateway(_) => "unknown_gateway",
            Self::Revoked(_) => "revoked",
            Self::NotOnChain(_) => "not_on_chain",
            Self::BadSignature(_) => "bad_signature",
            Self::FromTheFuture { .. } => "from_the_future",
            Self::Stale { .. } => "stale",
            Self::Replayed { .. } => "replayed",
            Self::SequenceTooOld { .. } => "sequence_too_old",
            Self::WrongSender { .. } => "wrong_sender",
            Self::BadPayload(_) => "bad_payload",
        }
    }
}

/// A signed message on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEnvelope {
    /// Wire version.
    pub v: u16,
    /// The sender.
    pub gateway: GatewayId,
    /// Sender's sequence number, strictly increasing per gateway (starts at 1).
    pub seq: u64,
    /// When the sender signed it.
    pub ts: Timestamp,
    /// The message as JSON text, exactly as signed.
    pub payload: String,
    /// `0x` + 130 hex digits: r ‖ s ‖ v (v = 27 or 28, as `ecrecover` wants).
    pub sig: String,
}

impl SignedEnvelope {
    /// The 32-byte digest that was signed (for cross-language checks and tools).
    pub fn signing_digest(&self) -> [u8; 32] {
        digest(self.gateway, self.seq, self.ts, self.payload.as_bytes())
    }
}

/// Two envelopes signed by one gateway with one sequence number and different content: proof
/// that the gateway, or whoever holds its key, forged data. The staking contract accepts exactly
/// such a pair (recovering both signers with `ecrecover`) and slashes the gateway's bond.
///
/// Presence envelopes are never evidence: every connection seals a new `online` and a new last
/// will with the two reserved sequence numbers ([`crate::wire::Presence::ONLINE_SEQ`] and
/// [`crate::wire::Presence::OFFLINE_SEQ`]), so two different ones are normal; the contract refuses
/// them too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The envelope accepted first.
    pub first: SignedEnvelope,
    /// The conflicting one.
    pub second: SignedEnvelope,
}

impl Equivocation {
    /// The pair, when it proves equivocation: same gateway, same sequence number (not a presence
    /// one), different digests. The signatures must have been checked against the gateway's key
    /// by the caller.
    pub fn of(first: SignedEnvelope, second: SignedEnvelope) -> Option<Self> {
        let slot = first.gateway == second.gateway && first.seq == second.seq;
        let presence = first.seq >= crate::wire::Presence::ONLINE_SEQ;
        (slot && !presence && first.signing_digest() != second.signing_digest()).then_some(Self { first, second })
    }

    /// The key the staking contract records the proof under: keccak256 of the two digests, the
    /// lower first, so that the pair in either order is the same evidence.
    pub fn evidence(&self) -> [u8; 32] {
        let (a, b) = (self.first.signing_digest(), self.second.signing_digest());
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut both = [0u8; 64];
        both[..32].copy_from_slice(&lo);
        both[32..].copy_from_slice(&hi);
        keccak256(&both)
    }

    /// [`Self::evidence`] as `0x` and 64 hex digits.
    pub fn evidence_hex(&self) -> String {
        format!("0x{}", hex::encode(self.evidence()))
    }
}

fn digest(gateway: GatewayId, seq: u64, ts: Timestamp, payload: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(DOMAIN);
    h.update(gateway.0.to_be_bytes());
    h.update(seq.to_be_bytes());
    h.update(ts.0.to_be_bytes());
    h.update(payload);
    h.finalize().into()
}

/// A gateway's private key.
#[derive(Clone)]
pub struct GatewayKey(SigningKey);

impl core::fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        write!(f, "GatewayKey({})", self.public().address_hex())
    }
}

/// A key that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key: {0}")]
pub struct KeyError(pub String);

fn decode_hex(s: &str) -> Result<Vec<u8>, KeyError> {
    hex::decode(s.trim().trim_start_matches("0x")).map_err(|e| KeyError(e.to_string()))
}

impl GatewayKey {
    /// From 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        SigningKey::from_bytes(bytes.into())
            .map(Self)
            .map_err(|e| KeyError(e.to_string()))
    }

    /// From 64 hex digits, `0x` optional.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes: [u8; 32] = decode_hex(s)?
            .try_into()
            .map_err(|_| KeyError("a secret key is 32 bytes (64 hex digits)".into()))?;
        Self::from_bytes(&bytes)
    }

    /// The 32 secret bytes as hex (for writing a key file).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> GatewayPublicKey {
        GatewayPublicKey(*self.0.verifying_key())
    }

    /// Sign `msg` as `gateway` with sequence `seq` at `ts`.
    pub fn seal(
        &self,
        gateway: GatewayId,
        seq: u64,
        ts: Timestamp,
        msg: &Message,
    ) -> Result<SignedEnvelope, EnvelopeError> {
        let payload = serde_json::to_string(msg).map_err(|e| EnvelopeError::BadPayload(e.to_string()))?;
        self.seal_raw(gateway, seq, ts, payload)
    }

    /// Sign already-serialised payload text (used by test vectors and tools).
    pub fn seal_raw(
        &self,
        gateway: GatewayId,
        seq: u64,
        ts: Timestamp,
        payload: String,
    ) -> Result<SignedEnvelope, EnvelopeError> {
        let d = digest(gateway, seq, ts, payload.as_bytes());
        self.seal_digest(d, gateway, seq, ts, payload)
    }

    /// The envelope of `payload` with a signature over `d`, the digest of its fields (an
    /// upstream message's, or a downlink's, which binds the channel too).
    fn seal_digest(
        &self,
        d: [u8; 32],
        gateway: GatewayId,
        seq: u64,
        ts: Timestamp,
        payload: String,
    ) -> Result<SignedEnvelope, EnvelopeError> {
        let (sig, recid) = self
            .0
            .sign_prehash_recoverable(&d)
            .map_err(|e| EnvelopeError::BadPayload(format!("signing failed: {e}")))?;
        let mut raw = [0u8; 65];
        raw[..64].copy_from_slice(&sig.to_bytes());
        raw[64] = 27 + recid.to_byte();
        Ok(SignedEnvelope {
            v: WIRE_VERSION,
            gateway,
            seq,
            ts,
            payload,
            sig: format!("0x{}", hex::encode(raw)),
        })
    }
}

/// A gateway's public key, as registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayPublicKey(VerifyingKey);

impl GatewayPublicKey {
    /// From SEC1 bytes (33 compressed or 65 uncompressed), as hex.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        VerifyingKey::from_sec1_bytes(&decode_hex(s)?)
            .map(Self)
            .map_err(|e| KeyError(e.to_string()))
    }

    /// Compressed SEC1 form as hex (66 digits), how we store it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_encoded_point(true).as_bytes())
    }

    /// The EVM address of this key: the last 20 bytes of keccak256 of the
    /// uncompressed point without its 0x04 prefix.
    pub fn address(&self) -> [u8; 20] {
        let point = self.0.to_encoded_point(false);
        let hash = keccak256(&point.as_bytes()[1..]);
        let mut a = [0u8; 20];
        a.copy_from_slice(&hash[12..]);
        a
    }

    /// The EVM address as `0x` + 40 lowercase hex digits.
    pub fn address_hex(&self) -> String {
        format!("0x{}", hex::encode(self.address()))
    }

    #[cfg(test)]
    fn verify(&self, env: &SignedEnvelope) -> bool {
        self.signed_digest(env).is_some()
    }

    /// The digest `env`'s signature signs, when it is this key's.
    #[cfg_attr(
        all(feature = "native-secp256k1", not(test)),
        allow(dead_code, reason = "libsecp256k1 verifies instead; tests compare the two")
    )]
    fn signed_digest(&self, env: &SignedEnvelope) -> Option<[u8; 32]> {
        let (sig, d) = signature_and_digest(env)?;
        // v is well-formed (contracts recover the key from it), but the key is known, so a
        // plain verification does: it costs half a key recovery.
        self.0.verify_prehash(&d, &sig).is_ok().then_some(d)
    }
}

/// The signature (low-s, with a well-formed v) and the digest it signs, or `None`.
fn signature_and_digest(env: &SignedEnvelope) -> Option<(Signature, [u8; 32])> {
    let sig = parse_signature(&env.sig)?;
    Some((sig, digest(env.gateway, env.seq, env.ts, env.payload.as_bytes())))
}

/// A `0x` r ‖ s ‖ v signature: low-s, with v 27 or 28; `None` otherwise.
fn parse_signature(sig: &str) -> Option<Signature> {
    let raw = decode_hex(sig).ok()?;
    if raw.len() != 65 {
        return None;
    }
    let sig = Signature::from_slice(&raw[..64]).ok()?;
    // High-s signatures are malleable copies of low-s ones: refuse them, like Ethereum.
    if sig.normalize_s().is_some() {
        return None;
    }
    // v is 27 or 28, as `ecrecover` wants (recovery ids 2 and 3 never occur in practice)
    if !matches!(raw[64], 27 | 28) {
        return None;
    }
    Some(sig)
}

mod downlink;
#[cfg(test)]
mod tests;
mod verify;

pub use downlink::{DownlinkError, DownlinkVerifier, MarketKey, MarketPublicKey};
pub use verify::{Checked, Checker, FreshnessPolicy, ReplayWindow, Verifier};
