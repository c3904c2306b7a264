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

use std::collections::HashMap;

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::ids::GatewayId;
use crate::interval::Timestamp;
use crate::topics::Channel;
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
    /// The gateway is not registered (or was revoked).
    #[error("unknown gateway {0}")]
    UnknownGateway(GatewayId),
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

    #[cfg_attr(
        all(feature = "native-secp256k1", not(test)),
        allow(dead_code, reason = "libsecp256k1 verifies instead; tests compare the two")
    )]
    fn verify(&self, env: &SignedEnvelope) -> bool {
        let Some((sig, d)) = signature_and_digest(env) else {
            return false;
        };
        // v is well-formed (contracts recover the key from it), but the key is known, so a
        // plain verification does: it costs half a key recovery.
        self.0.verify_prehash(&d, &sig).is_ok()
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

/// A registered key made ready for verification. With the `native-secp256k1` feature the check
/// runs in libsecp256k1, about three times faster than k256 (see BENCHMARKS.md); the result is
/// the same (tested), and k256 stays the only implementation on wasm.
#[derive(Debug, Clone, Copy)]
struct PreparedKey {
    #[cfg_attr(
        feature = "native-secp256k1",
        allow(dead_code, reason = "the k256 path, kept for wasm")
    )]
    key: GatewayPublicKey,
    #[cfg(feature = "native-secp256k1")]
    native: secp256k1::PublicKey,
}

impl PreparedKey {
    fn new(key: GatewayPublicKey) -> Self {
        Self {
            key,
            #[cfg(feature = "native-secp256k1")]
            native: secp256k1::PublicKey::from_slice(key.0.to_encoded_point(true).as_bytes())
                .unwrap_or_else(|_| unreachable!("a valid k256 key is a valid libsecp256k1 key")),
        }
    }

    #[cfg(not(feature = "native-secp256k1"))]
    fn verify(&self, env: &SignedEnvelope) -> bool {
        self.key.verify(env)
    }

    #[cfg(feature = "native-secp256k1")]
    fn verify(&self, env: &SignedEnvelope) -> bool {
        static CONTEXT: std::sync::OnceLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> = std::sync::OnceLock::new();
        let Some((sig, d)) = signature_and_digest(env) else {
            return false;
        };
        let Ok(sig) = secp256k1::ecdsa::Signature::from_compact(&sig.to_bytes()) else {
            return false;
        };
        CONTEXT
            .get_or_init(secp256k1::Secp256k1::verification_only)
            .verify_ecdsa(secp256k1::Message::from_digest(d), &sig, &self.native)
            .is_ok()
    }
}

/// Per-gateway anti-replay state: the highest sequence accepted and a bitmap
/// of the 64 below it, so messages reordered in transit by up to 64 places
/// are still accepted once, and nothing is accepted twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayWindow {
    /// Highest sequence accepted (0 = none yet).
    pub highest: u64,
    /// Bit i set = sequence `highest - i` accepted (bit 0 is `highest` itself).
    pub seen: u64,
}

impl ReplayWindow {
    /// How far behind the highest sequence a message may arrive.
    pub const WIDTH: u64 = 64;

    /// Check `seq` against the window without changing it.
    pub fn check(&self, gateway: GatewayId, seq: u64) -> Result<(), EnvelopeError> {
        if seq > self.highest {
            return Ok(());
        }
        let behind = self.highest - seq;
        if seq == 0 || behind >= Self::WIDTH {
            return Err(EnvelopeError::SequenceTooOld {
                gateway,
                seq,
                highest: self.highest,
            });
        }
        if self.seen & (1 << behind) != 0 {
            return Err(EnvelopeError::Replayed { gateway, seq });
        }
        Ok(())
    }

    /// Record `seq` as accepted (call after [`Self::check`] passed).
    pub fn record(&mut self, seq: u64) {
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= Self::WIDTH { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = seq;
        } else {
            self.seen |= 1 << (self.highest - seq);
        }
    }
}

/// How strict a [`Verifier`] is about time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessPolicy {
    /// How far in the future a timestamp may be (clock skew), ms. Default 30 s.
    pub max_future_ms: i64,
    /// Oldest order or cancel accepted, ms. Default 60 s: an order is a live intent.
    pub max_order_age_ms: i64,
    /// Oldest telemetry or report accepted, ms. Default 7 days: store-and-forward
    /// delivers samples after an outage, and the sequence window stops replays.
    pub max_data_age_ms: i64,
}

impl Default for FreshnessPolicy {
    fn default() -> Self {
        Self {
            max_future_ms: 30_000,
            max_order_age_ms: 60_000,
            max_data_age_ms: 7 * 24 * 3_600_000,
        }
    }
}

impl FreshnessPolicy {
    /// This policy's limits, which are real time, in the ms of a market clock that runs
    /// `speed` times faster than real time (the demo's accelerated clock): a message on the
    /// wire ages in real time whatever the market's clock says, so at 90× an order 1 s late
    /// is 90 s of market time late and must still count as 1 s. `speed` ≤ 1 (or not a
    /// number) leaves the policy as it is.
    #[must_use]
    pub fn at_speed(self, speed: f64) -> Self {
        if speed.is_nan() || speed <= 1.0 {
            return self;
        }
        // a float-to-integer `as` saturates: an absurd speed gives i64::MAX, never a wrap
        let scale = |ms: i64| (ms as f64 * speed) as i64;
        Self {
            max_future_ms: scale(self.max_future_ms),
            max_order_age_ms: scale(self.max_order_age_ms),
            max_data_age_ms: scale(self.max_data_age_ms),
        }
    }
}

/// Opens envelopes: checks size, version, key, signature, time and replay,
/// in that order (cheap checks first; state changes only on success).
///
/// The work splits in two so that signatures can be checked on several cores: a [`Checker`]
/// (from [`Verifier::checker`], cheap to clone and `Send`) does everything but the replay
/// check, and [`Verifier::accept`] then checks and records the sequence number, in the order
/// the messages arrived. [`Verifier::open`] does both at once.
#[derive(Debug, Default)]
pub struct Verifier {
    checker: Checker,
    windows: HashMap<GatewayId, ReplayWindow>,
}

/// The stateless part of opening an envelope: size, version, sender, key, signature, time and
/// payload. Holds a snapshot of the registered keys.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    keys: std::sync::Arc<HashMap<GatewayId, PreparedKey>>,
    policy: FreshnessPolicy,
}

/// An envelope whose signature and payload are good, waiting for its replay check.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The envelope.
    pub envelope: SignedEnvelope,
    /// Its message.
    pub message: Message,
}

impl Checker {
    /// Everything but the replay check, for `expected`'s channel when given (a message signed
    /// by any other gateway is refused before it can use up a sequence number).
    pub fn check(&self, bytes: &[u8], now: Timestamp, expected: Option<GatewayId>) -> Result<Checked, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge {
                size: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        let env: SignedEnvelope = serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if env.v != WIRE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(env.v));
        }
        if let Some(expected) = expected.filter(|e| *e != env.gateway) {
            return Err(EnvelopeError::WrongSender {
                expected,
                signed: env.gateway,
            });
        }
        let key = self
            .keys
            .get(&env.gateway)
            .ok_or(EnvelopeError::UnknownGateway(env.gateway))?;
        if !key.verify(&env) {
            return Err(EnvelopeError::BadSignature(env.gateway));
        }
        let ahead = env.ts.0.saturating_sub(now.0);
        if ahead > self.policy.max_future_ms {
            return Err(EnvelopeError::FromTheFuture {
                ts: env.ts,
                ahead_ms: ahead,
                max_ms: self.policy.max_future_ms,
            });
        }
        let msg: Message = serde_json::from_str(&env.payload).map_err(|e| EnvelopeError::BadPayload(e.to_string()))?;
        msg.validate().map_err(|e| EnvelopeError::BadPayload(e.to_string()))?;
        let max_age = match msg {
            Message::Order(_) | Message::Cancel(_) => self.policy.max_order_age_ms,
            // a last will is sealed at connection and published when the connection ends
            Message::Status(_) => i64::MAX,
            _ => self.policy.max_data_age_ms,
        };
        let age = now.0.saturating_sub(env.ts.0);
        if age > max_age {
            return Err(EnvelopeError::Stale {
                kind: msg.kind(),
                age_ms: age,
                max_ms: max_age,
            });
        }
        Ok(Checked {
            envelope: env,
            message: msg,
        })
    }
}

impl Verifier {
    /// A verifier with no gateways registered.
    pub fn new(policy: FreshnessPolicy) -> Self {
        Self {
            checker: Checker {
                keys: std::sync::Arc::default(),
                policy,
            },
            windows: HashMap::new(),
        }
    }

    /// Register (or replace) a gateway's key; `window` restores persisted replay state.
    pub fn register(&mut self, gateway: GatewayId, key: GatewayPublicKey, window: ReplayWindow) {
        std::sync::Arc::make_mut(&mut self.checker.keys).insert(gateway, PreparedKey::new(key));
        self.windows.insert(gateway, window);
    }

    /// Forget a gateway (revoked): its messages are refused from now on.
    pub fn revoke(&mut self, gateway: GatewayId) {
        std::sync::Arc::make_mut(&mut self.checker.keys).remove(&gateway);
        self.windows.remove(&gateway);
    }

    /// The replay state of a gateway, to persist.
    pub fn window(&self, gateway: GatewayId) -> Option<ReplayWindow> {
        self.windows.get(&gateway).copied()
    }

    /// Puts back a gateway's replay state as it was before an accept whose effect could not be
    /// made durable (so the message, delivered again, is taken then). Unknown gateways: nothing.
    pub fn restore_window(&mut self, gateway: GatewayId, window: ReplayWindow) {
        if let Some(w) = self.windows.get_mut(&gateway) {
            *w = window;
        }
    }

    /// A snapshot of the stateless checks, to run on another thread.
    pub fn checker(&self) -> Checker {
        self.checker.clone()
    }

    /// The replay check of a checked envelope: accepted once, in arrival order. A gateway
    /// revoked since the check is refused.
    pub fn accept(&mut self, checked: Checked) -> Result<(SignedEnvelope, Message), EnvelopeError> {
        let env = checked.envelope;
        if !self.checker.keys.contains_key(&env.gateway) {
            return Err(EnvelopeError::UnknownGateway(env.gateway));
        }
        let window = self.windows.entry(env.gateway).or_default();
        window.check(env.gateway, env.seq)?;
        window.record(env.seq);
        Ok((env, checked.message))
    }

    /// Verify raw bytes from the wire and return the envelope and its message.
    pub fn open(&mut self, bytes: &[u8], now: Timestamp) -> Result<(SignedEnvelope, Message), EnvelopeError> {
        let checked = self.checker.check(bytes, now, None)?;
        self.accept(checked)
    }

    /// Like [`Self::open`], for a channel that belongs to `expected` (its MQTT
    /// topic): a message signed by any other gateway is refused before it can
    /// use up a sequence number.
    pub fn open_from(
        &mut self,
        expected: GatewayId,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<(SignedEnvelope, Message), EnvelopeError> {
        let checked = self.checker.check(bytes, now, Some(expected))?;
        self.accept(checked)
    }
}

/// Domain separator of downlinks: a downlink's signature can never pass for an upstream
/// envelope's (or anything else's), even if the market's key were also a gateway's.
const DOWNLINK_DOMAIN: &[u8] = b"GridShare downlink v1\0";

/// The digest the market signs for a downlink: it binds the addressed gateway and the channel
/// (topic suffix), so a downlink cannot be replayed to another gateway or on another channel.
fn downlink_digest(channel: Channel, gateway: GatewayId, seq: u64, ts: Timestamp, payload: &[u8]) -> [u8; 32] {
    let suffix = channel.suffix().as_bytes();
    let mut h = Keccak256::new();
    h.update(DOWNLINK_DOMAIN);
    h.update((suffix.len() as u64).to_be_bytes());
    h.update(suffix);
    h.update(gateway.0.to_be_bytes());
    h.update(seq.to_be_bytes());
    h.update(ts.0.to_be_bytes());
    h.update(payload);
    h.finalize().into()
}

/// The market's signing key for downlinks: the same kind of key as a gateway's (secp256k1), and
/// the same envelope, with `gateway` naming the addressee.
pub type MarketKey = GatewayKey;

/// The market's public key, as a gateway's configuration holds it (`mqtt.market_key`).
pub type MarketPublicKey = GatewayPublicKey;

impl GatewayKey {
    /// Signs `payload` as a downlink to `gateway` on `channel` with the market's sequence `seq`
    /// (strictly increasing) at `ts`.
    pub fn seal_downlink(
        &self,
        gateway: GatewayId,
        channel: Channel,
        seq: u64,
        ts: Timestamp,
        payload: String,
    ) -> Result<SignedEnvelope, EnvelopeError> {
        let d = downlink_digest(channel, gateway, seq, ts, payload.as_bytes());
        self.seal_digest(d, gateway, seq, ts, payload)
    }
}

/// Why a gateway refused a downlink. Each is logged and counted by the gateway under
/// [`DownlinkError::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownlinkError {
    /// The gateway has no market key (`mqtt.market_key`): it cannot tell the market's downlinks
    /// from forgeries, so it acts on none.
    #[error("no market key configured (mqtt.market_key): downlinks cannot be checked, so none is acted on")]
    NoMarketKey,
    /// More than [`MAX_ENVELOPE_BYTES`].
    #[error("downlink is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a signed envelope (an unsigned message, or garbage).
    #[error("not a signed downlink: {0}")]
    Unsigned(String),
    /// A wire version this build does not speak.
    #[error("unsupported wire version {0} (this build speaks {WIRE_VERSION})")]
    UnsupportedVersion(u16),
    /// Signed for another gateway.
    #[error("downlink addressed to gateway {addressed}, received by gateway {me}")]
    Misaddressed {
        /// The gateway it was signed for.
        addressed: GatewayId,
        /// This gateway.
        me: GatewayId,
    },
    /// Not the market's signature over this gateway, channel, sequence, time and payload (forged,
    /// tampered with, or moved to another channel).
    #[error("bad signature on a {channel} downlink (not the market's key, or moved from another channel)")]
    BadSignature {
        /// The channel it arrived on.
        channel: &'static str,
    },
    /// The sequence number was accepted before on this channel.
    #[error("replayed {channel} downlink, sequence {seq}")]
    Replayed {
        /// The channel.
        channel: &'static str,
        /// The repeated sequence.
        seq: u64,
    },
    /// Older than the channel's replay window.
    #[error("{channel} downlink sequence {seq} is older than the window (highest accepted {highest})")]
    TooOld {
        /// The channel.
        channel: &'static str,
        /// The sequence.
        seq: u64,
        /// Highest accepted on this channel.
        highest: u64,
    },
}

impl DownlinkError {
    /// A stable snake_case reason, for counters and logs.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::NoMarketKey => "no_market_key",
            Self::TooLarge { .. } => "too_large",
            Self::Unsigned(_) => "unsigned",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::Misaddressed { .. } => "misaddressed",
            Self::BadSignature { .. } => "bad_signature",
            Self::Replayed { .. } => "replayed",
            Self::TooOld { .. } => "sequence_too_old",
        }
    }
}

/// A gateway's check of downlinks: the market's key, its own id, and a replay window per
/// channel (the market's sequence is one counter over every gateway and channel, so a gateway
/// sees it rise with gaps; per channel, a retained message delivered again at a reconnect cannot
/// push out newer ones on other channels).
#[derive(Debug, Clone)]
pub struct DownlinkVerifier {
    market: Option<MarketPublicKey>,
    me: GatewayId,
    windows: HashMap<Channel, ReplayWindow>,
}

impl DownlinkVerifier {
    /// For gateway `me`, trusting `market` (none: every downlink is refused), with the replay
    /// windows kept from before (see [`Self::windows`]).
    pub fn new(market: Option<MarketPublicKey>, me: GatewayId, windows: HashMap<Channel, ReplayWindow>) -> Self {
        Self { market, me, windows }
    }

    /// The replay windows, to keep across restarts (by channel).
    pub fn windows(&self) -> &HashMap<Channel, ReplayWindow> {
        &self.windows
    }

    /// Checks a downlink received on `channel` and records its sequence; returns its envelope,
    /// whose `payload` is the message. Nothing is recorded when it is refused.
    pub fn open(&mut self, channel: Channel, bytes: &[u8]) -> Result<SignedEnvelope, DownlinkError> {
        let market = self.market.ok_or(DownlinkError::NoMarketKey)?;
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(DownlinkError::TooLarge {
                size: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        let env: SignedEnvelope = serde_json::from_slice(bytes).map_err(|e| DownlinkError::Unsigned(e.to_string()))?;
        if env.v != WIRE_VERSION {
            return Err(DownlinkError::UnsupportedVersion(env.v));
        }
        if env.gateway != self.me {
            return Err(DownlinkError::Misaddressed {
                addressed: env.gateway,
                me: self.me,
            });
        }
        let bad = DownlinkError::BadSignature {
            channel: channel.suffix(),
        };
        let sig = parse_signature(&env.sig).ok_or_else(|| bad.clone())?;
        let d = downlink_digest(channel, env.gateway, env.seq, env.ts, env.payload.as_bytes());
        market.0.verify_prehash(&d, &sig).map_err(|_| bad)?;
        let window = self.windows.entry(channel).or_default();
        window.check(self.me, env.seq).map_err(|e| match e {
            EnvelopeError::Replayed { seq, .. } => DownlinkError::Replayed {
                channel: channel.suffix(),
                seq,
            },
            _ => DownlinkError::TooOld {
                channel: channel.suffix(),
                seq: env.seq,
                highest: window.highest,
            },
        })?;
        window.record(env.seq);
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrderId;
    use crate::wire::CancelOrder;

    // Anvil's first development key: a well-known key whose address any EVM tool confirms.
    const ANVIL_KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const ANVIL_ADDR_0: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

    fn setup() -> (GatewayKey, Verifier) {
        let key = GatewayKey::from_hex(ANVIL_KEY_0).unwrap();
        let mut v = Verifier::new(FreshnessPolicy::default());
        v.register(GatewayId(7), key.public(), ReplayWindow::default());
        (key, v)
    }

    fn cancel() -> Message {
        Message::Cancel(CancelOrder { order_id: OrderId(5) })
    }

    fn bytes(env: &SignedEnvelope) -> Vec<u8> {
        serde_json::to_vec(env).unwrap()
    }

    #[test]
    fn address_matches_the_evm() {
        let key = GatewayKey::from_hex(ANVIL_KEY_0).unwrap();
        assert_eq!(key.public().address_hex(), ANVIL_ADDR_0);
        let again = GatewayPublicKey::from_hex(&key.public().to_hex()).unwrap();
        assert_eq!(again, key.public());
        assert!(!format!("{key:?}").contains(ANVIL_KEY_0));
    }

    #[test]
    fn seal_then_open() {
        let (key, mut v) = setup();
        let now = Timestamp(1_000_000);
        let env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
        let (opened, msg) = v.open(&bytes(&env), now).unwrap();
        assert_eq!(opened, env);
        assert_eq!(msg, cancel());
    }

    #[test]
    fn rejects_tampering_and_strangers() {
        let (key, mut v) = setup();
        let now = Timestamp(1_000_000);
        let mut env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
        env.payload = env.payload.replace('5', "6");
        assert_eq!(
            v.open(&bytes(&env), now),
            Err(EnvelopeError::BadSignature(GatewayId(7)))
        );
        let env = key.seal(GatewayId(8), 1, now, &cancel()).unwrap();
        assert_eq!(
            v.open(&bytes(&env), now),
            Err(EnvelopeError::UnknownGateway(GatewayId(8)))
        );
        // A signature by another key for gateway 7.
        let other = GatewayKey::from_bytes(&[3u8; 32]).unwrap();
        let env = other.seal(GatewayId(7), 1, now, &cancel()).unwrap();
        assert_eq!(
            v.open(&bytes(&env), now),
            Err(EnvelopeError::BadSignature(GatewayId(7)))
        );
        // The same signature claimed under another sequence number.
        let mut env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
        env.seq = 2;
        assert_eq!(
            v.open(&bytes(&env), now),
            Err(EnvelopeError::BadSignature(GatewayId(7)))
        );
    }

    /// Both verifiers agree on good signatures and on every kind of bad one (tampered payload,
    /// sequence or signature, another gateway's key, high s, bad v).
    #[test]
    fn libsecp256k1_and_k256_agree() {
        let now = Timestamp(1_000_000);
        for i in 1..=40u8 {
            let key = GatewayKey::from_bytes(&[i; 32]).unwrap();
            let other = GatewayKey::from_bytes(&[i.wrapping_add(100); 32]).unwrap().public();
            let good = key.seal(GatewayId(7), u64::from(i), now, &cancel()).unwrap();
            let mut variants = vec![(good.clone(), true)];
            let mut e = good.clone();
            e.payload.push(' ');
            variants.push((e, false));
            let mut e = good.clone();
            e.seq += 1;
            variants.push((e, false));
            let mut raw = decode_hex(&good.sig).unwrap();
            raw[10] ^= 1;
            let mut e = good.clone();
            e.sig = format!("0x{}", hex::encode(&raw));
            variants.push((e, false));
            let mut raw = decode_hex(&good.sig).unwrap();
            raw[64] = 29;
            let mut e = good.clone();
            e.sig = format!("0x{}", hex::encode(&raw));
            variants.push((e, false));
            let raw = decode_hex(&good.sig).unwrap();
            let (r, s) = Signature::from_slice(&raw[..64]).unwrap().split_scalars();
            let mut high = Signature::from_scalars(r, -*s).unwrap().to_bytes().to_vec();
            high.push(raw[64] ^ 1);
            let mut e = good.clone();
            e.sig = format!("0x{}", hex::encode(high));
            variants.push((e, false));
            for (env, want) in variants {
                let prepared = PreparedKey::new(key.public());
                assert_eq!(key.public().verify(&env), want, "k256 on {env:?}");
                assert_eq!(prepared.verify(&env), want, "prepared on {env:?}");
                assert!(!PreparedKey::new(other).verify(&env), "another key on {env:?}");
            }
        }
    }

    #[test]
    fn rejects_high_s_malleated_signature() {
        let (key, mut v) = setup();
        let now = Timestamp(1_000_000);
        let mut env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
        let raw = decode_hex(&env.sig).unwrap();
        let sig = Signature::from_slice(&raw[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap();
        let mut out = high.to_bytes().to_vec();
        out.push(raw[64] ^ 1);
        env.sig = format!("0x{}", hex::encode(out));
        assert_eq!(
            v.open(&bytes(&env), now),
            Err(EnvelopeError::BadSignature(GatewayId(7)))
        );
    }

    #[test]
    fn rejects_replay_and_allows_reorder_within_window() {
        let (key, mut v) = setup();
        let now = Timestamp(1_000_000);
        let seal = |seq| bytes(&key.seal(GatewayId(7), seq, now, &cancel()).unwrap());
        assert!(v.open(&seal(10), now).is_ok());
        assert!(v.open(&seal(8), now).is_ok(), "late by 2 is fine once");
        assert!(matches!(
            v.open(&seal(8), now),
            Err(EnvelopeError::Replayed { seq: 8, .. })
        ));
        assert!(matches!(
            v.open(&seal(10), now),
            Err(EnvelopeError::Replayed { seq: 10, .. })
        ));
        assert!(v.open(&seal(100), now).is_ok());
        assert!(matches!(
            v.open(&seal(36), now),
            Err(EnvelopeError::SequenceTooOld { .. })
        ));
        assert!(v.open(&seal(37), now).is_ok());
        assert!(matches!(
            v.open(&seal(0), now),
            Err(EnvelopeError::SequenceTooOld { .. })
        ));
    }

    #[test]
    fn wrong_sender_does_not_use_up_the_sequence() {
        let (key, mut v) = setup();
        let now = Timestamp(1_000_000);
        let env = bytes(&key.seal(GatewayId(7), 1, now, &cancel()).unwrap());
        assert_eq!(
            v.open_from(GatewayId(8), &env, now),
            Err(EnvelopeError::WrongSender {
                expected: GatewayId(8),
                signed: GatewayId(7)
            })
        );
        assert!(v.open_from(GatewayId(7), &env, now).is_ok());
    }

    #[test]
    fn rejects_stale_and_future() {
        let (key, mut v) = setup();
        let now = Timestamp(10_000_000);
        let env = key.seal(GatewayId(7), 1, Timestamp(now.0 - 61_000), &cancel()).unwrap();
        assert!(matches!(
            v.open(&bytes(&env), now),
            Err(EnvelopeError::Stale { kind: "cancel", .. })
        ));
        let env = key.seal(GatewayId(7), 2, Timestamp(now.0 + 31_000), &cancel()).unwrap();
        assert!(matches!(
            v.open(&bytes(&env), now),
            Err(EnvelopeError::FromTheFuture { .. })
        ));
        // a rejected message does not consume its sequence number
        let env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
        assert!(v.open(&bytes(&env), now).is_ok());
    }

    #[test]
    fn freshness_is_real_time_on_an_accelerated_clock() {
        // at 90x, an order sent 30 s (real) ago is 2,700 s of market time old: fresh
        let key = GatewayKey::from_hex(ANVIL_KEY_0).unwrap();
        let policy = FreshnessPolicy::default().at_speed(90.0);
        assert_eq!(policy.max_order_age_ms, 90 * 60_000);
        assert_eq!(policy.max_future_ms, 90 * 30_000);
        let mut v = Verifier::new(policy);
        v.register(GatewayId(7), key.public(), ReplayWindow::default());
        let now = Timestamp(100_000_000);
        let env = key
            .seal(GatewayId(7), 1, Timestamp(now.0 - 2_700_000), &cancel())
            .unwrap();
        assert!(v.open(&bytes(&env), now).is_ok());
        // and 61 s real (5,490 s market) is stale there as on the wall clock
        let env = key
            .seal(GatewayId(7), 2, Timestamp(now.0 - 5_490_000), &cancel())
            .unwrap();
        assert!(matches!(
            v.open(&bytes(&env), now),
            Err(EnvelopeError::Stale { kind: "cancel", .. })
        ));
        // the wall clock, a slowed clock and nonsense leave the policy alone; no overflow
        for speed in [1.0, 0.5, 0.0, -3.0, f64::NAN] {
            assert_eq!(FreshnessPolicy::default().at_speed(speed), FreshnessPolicy::default());
        }
        assert_eq!(
            FreshnessPolicy::default().at_speed(f64::INFINITY).max_data_age_ms,
            i64::MAX
        );
    }

    #[test]
    fn rejects_oversize_malformed_and_unknown_version() {
        let (key, mut v) = setup();
        let now = Timestamp(0);
        let big = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(v.open(&big, now), Err(EnvelopeError::TooLarge { .. })));
        assert!(matches!(v.open(b"{\"v\":1", now), Err(EnvelopeError::Malformed(_))));
        let mut env = key.seal(GatewayId(7), 1, now, &cancel()).unwrap();
        env.v = 2;
        assert_eq!(v.open(&bytes(&env), now), Err(EnvelopeError::UnsupportedVersion(2)));
        let env = key
            .seal_raw(GatewayId(7), 1, now, "{\"type\":\"nope\"}".into())
            .unwrap();
        assert!(matches!(v.open(&bytes(&env), now), Err(EnvelopeError::BadPayload(_))));
    }

    /// A downlink opens only at the gateway and on the channel it was signed for, once, and
    /// only with the market's key; refusals record nothing.
    #[test]
    fn downlinks_are_bound_to_gateway_channel_and_sequence() {
        let market = GatewayKey::from_bytes(&[11u8; 32]).unwrap();
        let forger = GatewayKey::from_bytes(&[12u8; 32]).unwrap();
        let ts = Timestamp(1_000);
        let seal = |k: &GatewayKey, gw, ch, seq| {
            serde_json::to_vec(&k.seal_downlink(GatewayId(gw), ch, seq, ts, "{\"x\":1}".into()).unwrap()).unwrap()
        };
        let mut a = DownlinkVerifier::new(Some(market.public()), GatewayId(1), HashMap::new());
        let mut b = DownlinkVerifier::new(Some(market.public()), GatewayId(2), HashMap::new());
        let for_a = seal(&market, 1, Channel::DrEvent, 10);
        let reason = |r: Result<SignedEnvelope, DownlinkError>| r.unwrap_err().reason();
        assert_eq!(reason(b.open(Channel::DrEvent, &for_a)), "misaddressed");
        assert_eq!(
            reason(a.open(Channel::Command, &for_a)),
            "bad_signature",
            "moved to another channel"
        );
        assert_eq!(
            reason(a.open(Channel::DrEvent, &seal(&forger, 1, Channel::DrEvent, 11))),
            "bad_signature"
        );
        assert_eq!(reason(a.open(Channel::DrEvent, b"{\"type\":\"dr_event\"}")), "unsigned");
        assert_eq!(a.open(Channel::DrEvent, &for_a).unwrap().payload, "{\"x\":1}");
        assert_eq!(reason(a.open(Channel::DrEvent, &for_a)), "replayed");
        assert!(
            a.open(Channel::DrEvent, &seal(&market, 1, Channel::DrEvent, 200))
                .is_ok()
        );
        assert_eq!(
            reason(a.open(Channel::DrEvent, &seal(&market, 1, Channel::DrEvent, 100))),
            "sequence_too_old"
        );
        // windows are per channel: an older sequence on another channel is still new there
        assert!(
            a.open(Channel::Preferences, &seal(&market, 1, Channel::Preferences, 5))
                .is_ok()
        );
        // kept windows survive a restart
        let mut again = DownlinkVerifier::new(Some(market.public()), GatewayId(1), a.windows().clone());
        assert_eq!(reason(again.open(Channel::DrEvent, &for_a)), "sequence_too_old");
        let mut keyless = DownlinkVerifier::new(None, GatewayId(1), HashMap::new());
        assert_eq!(
            reason(keyless.open(Channel::DrEvent, &seal(&market, 1, Channel::DrEvent, 300))),
            "no_market_key"
        );
        // an upstream envelope signature does not pass as a downlink's
        let mut up = market.seal_raw(GatewayId(1), 400, ts, "{\"x\":1}".into()).unwrap();
        assert_eq!(
            reason(a.open(Channel::DrEvent, &serde_json::to_vec(&up).unwrap())),
            "bad_signature"
        );
        up.seq = 401;
        assert_eq!(
            reason(a.open(Channel::DrEvent, &serde_json::to_vec(&up).unwrap())),
            "bad_signature"
        );
    }
}
