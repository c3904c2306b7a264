//! The market's signature on everything it sends gateways (demand-response events, preferences,
//! checks, order answers, fills): one secp256k1 key, made once and kept in the data directory
//! (`market.key`, readable by its owner only), whose public half each gateway holds in its
//! configuration (`mqtt.market_key`, printed when it is commissioned). Every downlink is an
//! envelope ([`gridshare_domain::envelope::GatewayKey::seal_downlink`]) bound to its gateway and
//! channel, with a sequence number that only grows, across restarts too: it follows the wall clock
//! in microseconds, and at least one more than the last.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gridshare_domain::envelope::MarketKey;
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::{GatewayId, Timestamp};

/// The file the market's key is kept in, below the data directory.
pub const KEY_FILE: &str = "market.key";

/// The market's key, from `data_dir/market.key`, made there at the first call. Errors name the
/// file.
pub fn market_key(data_dir: &Path) -> Result<MarketKey, String> {
    let path: PathBuf = data_dir.join(KEY_FILE);
    let (text, made) = crate::secrets::load_or_make(&path, "market key", crate::secrets::Readers::Any)?;
    let key = MarketKey::from_hex(&text).map_err(|e| format!("market key {}: {e}", path.display()))?;
    if made {
        tracing::info!(path = %path.display(), public_key = %key.public().to_hex(), "market key made");
    }
    Ok(key)
}

/// Signs downlinks with the market's key and a sequence number that only grows.
#[derive(Debug)]
pub struct Sealer {
    key: MarketKey,
    last: AtomicU64,
}

impl Sealer {
    /// A sealer over the market's key.
    pub fn new(key: MarketKey) -> Self {
        Self {
            key,
            last: AtomicU64::new(0),
        }
    }

    /// The next sequence number: the wall clock in microseconds, or one more than the last.
    fn next_seq(&self) -> u64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut seq = 0;
        // infallible: the closure always returns Some
        let _ = self.last.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            seq = wall.max(last + 1);
            Some(seq)
        });
        seq
    }

    /// `payload` signed for `gateway`'s `channel` at market time `at`: the bytes to publish on
    /// its topic, or `None` (logged) if it cannot be signed.
    pub fn seal(&self, gateway: GatewayId, channel: Channel, at: Timestamp, payload: String) -> Option<Vec<u8>> {
        match self.key.seal_downlink(gateway, channel, self.next_seq(), at, payload) {
            Ok(env) => serde_json::to_vec(&env).ok(),
            Err(e) => {
                tracing::error!(%gateway, topic = %topics::topic(gateway, channel), error = %e, "signing a downlink");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;

    #[test]
    fn the_key_is_made_once_and_sequences_only_grow() {
        let dir = tempfile::tempdir().unwrap();
        let a = market_key(dir.path()).unwrap();
        let b = market_key(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        let s = Sealer::new(a);
        let (x, y) = (s.next_seq(), s.next_seq());
        assert!(y > x && x > 1_700_000_000_000_000, "{x} {y}");
        // a sealer after a restart starts above the last one's numbers
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(Sealer::new(b).next_seq() > y);
        std::fs::write(dir.path().join(KEY_FILE), "zz").unwrap();
        let err = market_key(dir.path()).unwrap_err();
        assert!(err.contains(KEY_FILE), "{err}");
    }
}
