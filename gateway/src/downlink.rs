//! The gateway's guard on what the market sends it: every downlink must be an envelope signed by
//! the market's key (learnt at commissioning, `mqtt.market_key`), addressed to this gateway, for
//! the channel it arrived on, and newer than any accepted on that channel. Anything else is
//! refused, logged and counted, and never reaches the poller (no setpoint, no preferences, no
//! check). The replay windows are kept in the data directory, so a restart does not reopen old
//! sequence numbers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gridshare_domain::GatewayId;
use gridshare_domain::envelope::{DownlinkError, DownlinkVerifier, MarketPublicKey, ReplayWindow};
use gridshare_domain::topics::{self, Channel};

/// The file the downlink replay windows are kept in, below the data directory.
pub const WINDOWS_FILE: &str = "downlink-windows.json";

/// How many downlinks were accepted and refused (by reason), for whoever runs the gateway.
#[derive(Debug, Default)]
pub struct DownlinkCounts {
    accepted: Mutex<u64>,
    receipts: Mutex<u64>,
    refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl DownlinkCounts {
    /// The market's receipts accepted so far (not counted in [`Self::accepted`]).
    pub fn receipts(&self) -> u64 {
        *self.receipts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Downlinks accepted so far, receipts aside: the messages the gateway acts on.
    pub fn accepted(&self) -> u64 {
        *self.accepted.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Downlinks refused so far for `reason` ([`DownlinkError::reason`], or `unknown_topic`).
    pub fn refused(&self, reason: &str) -> u64 {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(reason)
            .copied()
            .unwrap_or(0)
    }

    /// Downlinks refused so far, for every reason.
    pub fn refused_total(&self) -> u64 {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }

    fn count_refused(&self, reason: &'static str) -> u64 {
        let mut m = self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(reason).or_default();
        *n += 1;
        *n
    }

    fn count_accepted(&self, channel: Channel) {
        let counter = if channel == Channel::Stored {
            &self.receipts
        } else {
            &self.accepted
        };
        *counter.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
    }
}

/// A downlink file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WindowsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not replay windows as JSON (by channel).
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        source: serde_json::Error,
    },
}

/// Checks downlinks before the gateway acts on them.
#[derive(Debug)]
pub struct DownlinkGuard {
    verifier: DownlinkVerifier,
    path: PathBuf,
    counts: Arc<DownlinkCounts>,
}

impl DownlinkGuard {
    /// The guard of gateway `me` trusting `market` (none: every downlink is refused), with the
    /// replay windows kept in `data_dir` from before; `counts` is where refusals are counted.
    pub fn open(
        me: GatewayId,
        market: Option<MarketPublicKey>,
        data_dir: &Path,
        counts: Arc<DownlinkCounts>,
    ) -> Result<Self, WindowsError> {
        let path = data_dir.join(WINDOWS_FILE);
        let windows = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let by_suffix: HashMap<String, ReplayWindow> =
                    serde_json::from_str(&text).map_err(|source| WindowsError::Parse {
                        path: path.clone(),
                        source,
                    })?;
                by_suffix
                    .into_iter()
                    .filter_map(|(s, w)| Channel::ALL.into_iter().find(|c| c.suffix() == s).map(|c| (c, w)))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => return Err(WindowsError::Read { path, source }),
        };
        if market.is_none() {
            tracing::warn!(
                "no mqtt.market_key in the configuration: every message from the market (demand response, \
                 preferences, order answers, checks) will be refused"
            );
        }
        Ok(Self {
            verifier: DownlinkVerifier::new(market, me, windows),
            path,
            counts,
        })
    }

    /// Checks a publish on `topic`: its channel and the message text the market signed, or why it
    /// was refused (logged and counted here).
    pub fn check(&mut self, topic: &str, payload: &[u8]) -> Option<(Channel, String)> {
        let Some((_, channel)) = topics::parse(topic) else {
            let n = self.counts.count_refused("unknown_topic");
            tracing::warn!(%topic, refused = n, "downlink on an unknown topic refused");
            return None;
        };
        match self.verifier.open(channel, payload) {
            Ok(env) => {
                self.counts.count_accepted(channel);
                // Receipts come several times a second and a replayed one is harmless (the
                // gateway never reuses a sequence number, so it names only deleted messages):
                // their window is kept in memory only.
                if channel != Channel::Stored {
                    self.keep_windows();
                }
                Some((channel, env.payload))
            }
            // the broker hands the retained preferences over again at every connection
            Err(e @ DownlinkError::Replayed { .. }) if channel == Channel::Preferences => {
                self.counts.count_refused(e.reason());
                tracing::debug!(%topic, "retained preferences seen before");
                None
            }
            Err(e) => {
                let n = self.counts.count_refused(e.reason());
                tracing::warn!(%topic, reason = e.reason(), error = %e, refused = n, "downlink refused, not acted on");
                None
            }
        }
    }

    /// Writes the replay windows aside, then renames: a crash leaves the old file or the new one.
    fn keep_windows(&self) {
        let by_suffix: BTreeMap<&str, ReplayWindow> =
            self.verifier.windows().iter().map(|(c, w)| (c.suffix(), *w)).collect();
        let tmp = self.path.with_extension("tmp");
        let written = serde_json::to_vec(&by_suffix)
            .map_err(std::io::Error::other)
            .and_then(|body| std::fs::write(&tmp, body))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), error = %e, "keeping the downlink replay windows; a restart may accept an old downlink again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridshare_domain::Timestamp;
    use gridshare_domain::envelope::GatewayKey;

    #[test]
    fn refusals_are_counted_and_windows_outlive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let market = GatewayKey::from_bytes(&[21u8; 32]).unwrap();
        let counts = Arc::new(DownlinkCounts::default());
        let mut guard = DownlinkGuard::open(GatewayId(4), Some(market.public()), dir.path(), counts.clone()).unwrap();
        let topic = topics::topic(GatewayId(4), Channel::Command);
        let env = market
            .seal_downlink(GatewayId(4), Channel::Command, 9, Timestamp(1), "{}".into())
            .unwrap();
        let bytes = serde_json::to_vec(&env).unwrap();
        assert_eq!(guard.check(&topic, &bytes), Some((Channel::Command, "{}".to_owned())));
        assert_eq!(guard.check(&topic, &bytes), None);
        assert_eq!(guard.check(&topic, b"{}"), None);
        assert_eq!(
            (
                counts.accepted(),
                counts.refused("replayed"),
                counts.refused("unsigned")
            ),
            (1, 1, 1)
        );
        let mut again = DownlinkGuard::open(GatewayId(4), Some(market.public()), dir.path(), counts.clone()).unwrap();
        assert_eq!(again.check(&topic, &bytes), None, "replayed after a restart");
        assert_eq!(counts.refused("replayed"), 2);
        std::fs::write(dir.path().join(WINDOWS_FILE), "[").unwrap();
        let err = DownlinkGuard::open(GatewayId(4), None, dir.path(), counts)
            .unwrap_err()
            .to_string();
        assert!(err.contains(WINDOWS_FILE), "{err}");
    }
}
