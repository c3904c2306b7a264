//! Identifiers: small integer newtypes, so an order id can never be passed
//! where a participant id is expected.
//!
//! Integer ids keep the matching engine's hot path free of allocation and
//! hashing of strings; people see them through `Display` (`p-17`, `gw-3`, ...)
//! and type them back through `FromStr`. Device ids are the exception: they
//! are names chosen in a gateway's config (`meter`, `inverter1`), validated
//! here so they are safe in MQTT topics and file names.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An id that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {input:?}: {reason}")]
pub struct IdError {
    /// Which kind of id was expected, e.g. `"gateway"`.
    pub kind: &'static str,
    /// The text that was given.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident($int:ty), $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $int);

        impl $name {
            /// The prefix used by `Display` and accepted by `FromStr`.
            pub const PREFIX: &'static str = $prefix;

            /// The raw integer.
            #[inline]
            pub const fn get(self) -> $int {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}-{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            /// Accepts `"<prefix>-<n>"` or a bare number.
            fn from_str(s: &str) -> Result<Self, IdError> {
                let digits = s
                    .strip_prefix(concat!($prefix, "-"))
                    .unwrap_or(s);
                digits.parse::<$int>().map(Self).map_err(|_| IdError {
                    kind: $kind,
                    input: s.to_owned(),
                    reason: concat!("expected ", $prefix, "-<number> or a number"),
                })
            }
        }
    };
}

numeric_id!(
    /// A market participant: a home, the utility, the grid operator, a trader.
    ParticipantId(u64), "p", "participant"
);
numeric_id!(
    /// A home gateway; it owns one signing key.
    GatewayId(u64), "gw", "gateway"
);
numeric_id!(
    /// An order, unique per market service (the engine rejects duplicates).
    OrderId(u64), "o", "order"
);
numeric_id!(
    /// A trade, assigned by the matching engine in sequence.
    TradeId(u64), "t", "trade"
);
numeric_id!(
    /// A market zone (one order book per zone and delivery interval).
    ZoneId(u32), "z", "zone"
);
numeric_id!(
    /// A node of the feeder tree: substation, feeder, transformer or home connection.
    NodeId(u32), "n", "node"
);
numeric_id!(
    /// A settlement batch; sequential from 1.
    BatchId(u64), "b", "batch"
);
numeric_id!(
    /// A demand-response program.
    ProgramId(u64), "prg", "program"
);
numeric_id!(
    /// A demand-response event.
    EventId(u64), "ev", "event"
);

/// A device within one gateway, named in that gateway's config
/// (1–32 characters of `a-z`, `0-9`, `_`, `-`, starting with a letter).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    /// Longest accepted device name.
    pub const MAX_LEN: usize = 32;

    /// Validate and wrap a device name.
    pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
        let name = name.into();
        let err = |reason| IdError {
            kind: "device",
            input: name.clone(),
            reason,
        };
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(err("must be 1 to 32 characters"));
        }
        if !name.as_bytes()[0].is_ascii_lowercase() {
            return Err(err("must start with a lowercase letter"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(err("only a-z, 0-9, '_' and '-' are allowed"));
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DeviceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_display_and_parse() {
        assert_eq!(GatewayId(42).to_string(), "gw-42");
        assert_eq!("gw-42".parse::<GatewayId>(), Ok(GatewayId(42)));
        assert_eq!("42".parse::<GatewayId>(), Ok(GatewayId(42)));
        let err = "p-42".parse::<GatewayId>().unwrap_err();
        assert_eq!(err.kind, "gateway");
        assert!(err.to_string().contains("p-42"));
    }

    #[test]
    fn device_ids_are_validated() {
        assert!(DeviceId::new("meter-1").is_ok());
        assert!(DeviceId::new("").is_err());
        assert!(DeviceId::new("Meter").is_err());
        assert!(DeviceId::new("1meter").is_err());
        assert!(DeviceId::new("a/b").is_err());
        assert!(DeviceId::new("x".repeat(33)).is_err());
        let bad: Result<DeviceId, _> = serde_json::from_str("\"a+b\"");
        assert!(bad.is_err());
    }
}
