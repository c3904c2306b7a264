//! Downlinks (market → gateway): the market seals them with its key under their own domain
//! separator, bound to the addressee and the channel; a gateway opens them with a
//! [`DownlinkVerifier`].

use std::collections::HashMap;

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use sha3::{Digest, Keccak256};

use super::{
    EnvelopeError, GatewayKey, GatewayPublicKey, MAX_ENVELOPE_BYTES, ReplayWindow, SignedEnvelope, parse_signature,
};
use crate::ids::GatewayId;
use crate::interval::Timestamp;
use crate::topics::Channel;
use crate::wire::WIRE_VERSION;

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
