//! Opening upstream envelopes: the registered keys made ready, the replay window, the freshness
//! policy, and the [`Verifier`] (with its [`Checker`], which can run on several cores).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[cfg(feature = "native-secp256k1")]
use super::signature_and_digest;
use super::{EnvelopeError, GatewayPublicKey, MAX_ENVELOPE_BYTES, SignedEnvelope};
use crate::ids::GatewayId;
use crate::interval::Timestamp;
use crate::wire::{Message, WIRE_VERSION};

/// A registered key made ready for verification. With the `native-secp256k1` feature the check
/// runs in libsecp256k1, about three times faster than k256 (see BENCHMARKS.md); the result is
/// the same (tested), and k256 stays the only implementation on wasm.
#[derive(Debug, Clone, Copy)]
pub(super) struct PreparedKey {
    #[cfg_attr(
        feature = "native-secp256k1",
        allow(dead_code, reason = "the k256 path, kept for wasm")
    )]
    key: GatewayPublicKey,
    #[cfg(feature = "native-secp256k1")]
    native: secp256k1::PublicKey,
}

impl PreparedKey {
    pub(super) fn new(key: GatewayPublicKey) -> Self {
        Self {
            key,
            #[cfg(feature = "native-secp256k1")]
            native: secp256k1::PublicKey::from_slice(key.0.to_encoded_point(true).as_bytes())
                .unwrap_or_else(|_| unreachable!("a valid k256 key is a valid libsecp256k1 key")),
        }
    }

    /// Whether `env` is signed by this key.
    #[cfg(test)]
    pub(super) fn verify(&self, env: &SignedEnvelope) -> bool {
        self.signed_digest(env).is_some()
    }

    /// The digest `env`'s signature signs, when it is this key's (the intake keeps it, to tell
    /// a message sent again from a forged one, without hashing the payload a second time).
    #[cfg(not(feature = "native-secp256k1"))]
    pub(super) fn signed_digest(&self, env: &SignedEnvelope) -> Option<[u8; 32]> {
        self.key.signed_digest(env)
    }

    /// See the k256 version.
    #[cfg(feature = "native-secp256k1")]
    pub(super) fn signed_digest(&self, env: &SignedEnvelope) -> Option<[u8; 32]> {
        static CONTEXT: std::sync::OnceLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> = std::sync::OnceLock::new();
        let (sig, d) = signature_and_digest(env)?;
        let sig = secp256k1::ecdsa::Signature::from_compact(&sig.to_bytes()).ok()?;
        CONTEXT
            .get_or_init(secp256k1::Secp256k1::verification_only)
            .verify_ecdsa(secp256k1::Message::from_digest(d), &sig, &self.native)
            .is_ok()
            .then_some(d)
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

    /// Takes in what `other` saw as well: afterwards every sequence number either window had
    /// accepted counts as seen (both kept for one gateway: the replay windows stored in the
    /// database, and those of the messages the market's journal holds).
    pub fn merge(&mut self, other: &Self) {
        let top = self.highest.max(other.highest);
        let aligned = |w: &Self| {
            let shift = top - w.highest;
            if shift >= Self::WIDTH { 0 } else { w.seen << shift }
        };
        self.seen = aligned(self) | aligned(other);
        self.highest = top;
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
    /// Gateways revoked (and not registered again): refused as such, not as unknown.
    revoked: std::sync::Arc<std::collections::HashSet<GatewayId>>,
    /// Gateways commissioned in the market whose key is not on chain yet: refused as such.
    held: std::sync::Arc<std::collections::HashSet<GatewayId>>,
    policy: FreshnessPolicy,
}

/// An envelope whose signature and payload are good, waiting for its replay check.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The envelope.
    pub envelope: SignedEnvelope,
    /// The digest its signature signs ([`SignedEnvelope::signing_digest`]).
    pub digest: [u8; 32],
    /// Its message.
    pub message: Message,
}

impl Checker {
    /// Why `gateway`, which has no key here, is refused.
    fn not_registered(&self, gateway: GatewayId) -> EnvelopeError {
        if self.revoked.contains(&gateway) {
            EnvelopeError::Revoked(gateway)
        } else if self.held.contains(&gateway) {
            EnvelopeError::NotOnChain(gateway)
        } else {
            EnvelopeError::UnknownGateway(gateway)
        }
    }

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
            .ok_or_else(|| self.not_registered(env.gateway))?;
        let Some(digest) = key.signed_digest(&env) else {
            return Err(EnvelopeError::BadSignature(env.gateway));
        };
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
            digest,
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
                revoked: std::sync::Arc::default(),
                held: std::sync::Arc::default(),
                policy,
            },
            windows: HashMap::new(),
        }
    }

    /// Register (or replace) a gateway's key; `window` restores persisted replay state.
    pub fn register(&mut self, gateway: GatewayId, key: GatewayPublicKey, window: ReplayWindow) {
        std::sync::Arc::make_mut(&mut self.checker.keys).insert(gateway, PreparedKey::new(key));
        if self.checker.revoked.contains(&gateway) {
            std::sync::Arc::make_mut(&mut self.checker.revoked).remove(&gateway);
        }
        if self.checker.held.contains(&gateway) {
            std::sync::Arc::make_mut(&mut self.checker.held).remove(&gateway);
        }
        self.windows.insert(gateway, window);
    }

    /// Hold a gateway commissioned in the market whose key is not in the registry on chain yet:
    /// its messages are refused as [`EnvelopeError::NotOnChain`] (not as unknown) until it is
    /// registered here. A gateway already registered is left as it is.
    pub fn hold(&mut self, gateway: GatewayId) {
        if !self.checker.keys.contains_key(&gateway) && !self.checker.held.contains(&gateway) {
            std::sync::Arc::make_mut(&mut self.checker.held).insert(gateway);
        }
    }

    /// Forget a gateway (revoked): its messages are refused from now on, as
    /// [`EnvelopeError::Revoked`].
    pub fn revoke(&mut self, gateway: GatewayId) {
        std::sync::Arc::make_mut(&mut self.checker.keys).remove(&gateway);
        std::sync::Arc::make_mut(&mut self.checker.revoked).insert(gateway);
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
            return Err(self.checker.not_registered(env.gateway));
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
