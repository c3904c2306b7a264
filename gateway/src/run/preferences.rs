//! The homeowner's trading preferences as the running gateway holds them: the market publishes
//! them (retained) from the dashboard; each newer version is checked, kept on disk
//! ([`crate::remote::save_preferences`]), given to the agent and answered; a version seen
//! before is ignored.

use std::path::Path;

use gridshare_domain::wire::{PreferencesApplied, TradingPreferences};

use crate::agent::Agent;

/// The homeowner's preferences as the gateway holds them: those in force, and the newest
/// version it refused (so that the retained message, delivered again at every connection, is not
/// answered again).
#[derive(Debug, Default)]
pub(super) struct Preferences {
    pub(super) current: Option<TradingPreferences>,
    pub(super) refused: Option<u64>,
}

impl Preferences {
    /// The version in force.
    pub(super) fn version(&self) -> Option<u64> {
        self.current.as_ref().map(|p| p.version)
    }

    /// Takes preferences newer than any seen: checks them, keeps them on disk, gives them to the
    /// agent, and returns the answer for the market. A version seen before: nothing to do, no
    /// answer.
    pub(super) fn take(&mut self, dir: &Path, agent: &mut Agent, p: TradingPreferences) -> Option<PreferencesApplied> {
        if self.version().max(self.refused).is_some_and(|seen| seen >= p.version) {
            return None;
        }
        let mut refuse = |reason: String| {
            tracing::warn!(version = p.version, %reason, "trading preferences refused");
            self.refused = Some(p.version);
            Some(PreferencesApplied {
                version: p.version,
                applied: false,
                reason: Some(reason),
            })
        };
        if let Err(e) = p.validate() {
            return refuse(e.to_string());
        }
        if let Err(e) = crate::remote::save_preferences(dir, &p) {
            // not kept: a restart would trade within the old limits, so do not take them now either
            return refuse(format!("cannot keep them: {e}"));
        }
        agent.set_preferences(&p);
        tracing::info!(
            version = p.version,
            min_sell_price = p.min_sell_price.0,
            max_buy_price = p.max_buy_price.0,
            battery_reserve_percent = p.battery_reserve_percent,
            "trading preferences taken"
        );
        let version = p.version;
        self.current = Some(p);
        Some(PreferencesApplied {
            version,
            applied: true,
            // kept for when trading is switched on; the homeowner should know it is off
            reason: (!agent.limits().enabled)
                .then(|| "kept, but trading is off in this gateway's configuration (agent.enabled)".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentSection;
    use gridshare_domain::MicroPerKwh;

    #[test]
    fn newer_preferences_are_taken_kept_and_answered_versions_seen_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let on = AgentSection {
            enabled: true,
            ..AgentSection::default()
        };
        let mut agent = Agent::new(on.clone(), on.market_rules(), None);
        let mut held = Preferences::default();
        let p = |version, sell, buy| TradingPreferences {
            version,
            min_sell_price: MicroPerKwh(sell),
            max_buy_price: MicroPerKwh(buy),
            battery_reserve_percent: 40,
        };
        let a = held.take(dir.path(), &mut agent, p(3, 90_000, 200_000)).unwrap();
        assert!(a.applied && a.version == 3 && a.reason.is_none(), "{a:?}");
        assert_eq!(agent.limits().max_buy_price, 200_000);
        assert_eq!(
            crate::remote::load_preferences(dir.path()).unwrap(),
            Some(p(3, 90_000, 200_000))
        );
        // the same again (the retained message at every connection) or an older one: nothing
        assert_eq!(held.take(dir.path(), &mut agent, p(3, 90_000, 200_000)), None);
        assert_eq!(held.take(dir.path(), &mut agent, p(2, 1, 2)), None);
        assert_eq!(agent.limits().min_sell_price, 90_000);
        // upside down: refused with the reason; the limits in force stay
        let r = held.take(dir.path(), &mut agent, p(4, 300_000, 200_000)).unwrap();
        assert!(
            !r.applied && r.reason.as_deref().unwrap_or("").contains("min_sell_price"),
            "{r:?}"
        );
        assert_eq!(agent.limits().min_sell_price, 90_000);
        assert_eq!(held.version(), Some(3));
        // the refused version again (the retained message at the next connection): no answer
        assert_eq!(held.take(dir.path(), &mut agent, p(4, 300_000, 200_000)), None);
        // trading switched off in the configuration: kept, and the homeowner is told
        let off_dir = tempfile::tempdir().unwrap();
        let off = AgentSection::default();
        let mut idle = Agent::new(off.clone(), off.market_rules(), None);
        let a = Preferences::default()
            .take(off_dir.path(), &mut idle, p(1, 90_000, 200_000))
            .unwrap();
        assert!(
            a.applied && a.reason.as_deref().unwrap_or("").contains("trading is off"),
            "{a:?}"
        );
    }
}
