//! The contribution rules and the emission schedule, as pure integer functions: what a home's
//! verified contribution is worth, how much an epoch may pay, and how rewards are scaled down
//! when the contributions at the configured rates would pay more.

use serde::{Deserialize, Serialize};

/// One million: shares are in parts per million.
pub const PPM: u64 = 1_000_000;

/// The parameters an epoch is computed with (they go into its report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Hard cap on all reward tokens ever minted, µ-token (the token contract enforces it too).
    pub cap: u64,
    /// Reward for a verified demand-response reduction, µ-token per kWh.
    pub demand_response_per_kwh: u64,
    /// Length of an epoch, ms of market time (default one day).
    pub epoch_ms: i64,
    /// Start of epoch 1, ms since the epoch (market time).
    pub genesis_ms: i64,
    /// The budget halves every this many epochs.
    pub halving_epochs: u64,
    /// Emission budget of epoch 1, µ-token.
    pub initial_budget: u64,
    /// Reward for energy sold to neighbours and metered as exported, µ-token per kWh.
    pub local_renewable_per_kwh: u64,
    /// Reward for a gateway at 100 % uptime for a whole epoch, µ-token.
    pub uptime_per_epoch: u64,
    /// Telemetry period the uptime share is counted in, ms of market time (a whole number of
    /// five-second slices).
    pub uptime_period_ms: i64,
    /// Uptime share a gateway must exceed to earn anything, ppm.
    pub uptime_threshold_ppm: u64,
}

impl Params {
    /// The defaults: a day-long epoch; 0.05 token per kWh of local renewable energy, 0.2 per kWh
    /// of demand-response reduction, 1 token a day for a gateway always up, above 95 % uptime;
    /// 2,000 tokens in epoch 1, halving yearly, so at most 2 × 365 × 2,000 = 1.46 million
    /// tokens are ever emitted under a cap of 10 million (6 decimals).
    pub fn defaults(genesis_ms: i64) -> Self {
        Self {
            genesis_ms,
            epoch_ms: 86_400_000,
            uptime_period_ms: 60_000,
            local_renewable_per_kwh: 50_000,
            demand_response_per_kwh: crate::dr::REWARD_PER_KWH as u64,
            uptime_per_epoch: 1_000_000,
            uptime_threshold_ppm: 950_000,
            initial_budget: 2_000_000_000,
            halving_epochs: 365,
            cap: 10_000_000_000_000,
        }
    }

    /// Market-time span `[start, end)` of epoch `n` (n ≥ 1).
    pub fn span(&self, n: u64) -> (i64, i64) {
        let start = self.genesis_ms + (n as i64 - 1) * self.epoch_ms;
        (start, start + self.epoch_ms)
    }

    /// The last epoch that has ended by `now` (0 when none has).
    pub fn last_ended(&self, now_ms: i64) -> u64 {
        if now_ms < self.genesis_ms + self.epoch_ms || self.epoch_ms <= 0 {
            return 0;
        }
        ((now_ms - self.genesis_ms) / self.epoch_ms) as u64
    }
}

/// The budget of epoch `n` (n ≥ 1): `initial_budget >> ((n − 1) / halving_epochs)` — the formula
/// `RewardDistributor.epochBudget` applies on chain.
pub fn budget(p: &Params, n: u64) -> u64 {
    let halvings = n.saturating_sub(1) / p.halving_epochs.max(1);
    if halvings >= 64 {
        0
    } else {
        p.initial_budget >> halvings
    }
}

/// Local renewable energy of one interval: what was sold to neighbours that the grid meter also
/// shows exported — never more than either, never negative.
pub fn local_renewable_wh(sold_wh: i64, exported_wh: i64) -> i64 {
    sold_wh.min(exported_wh).max(0)
}

/// A gateway's uptime share in ppm: good periods over expected, in `[0, PPM]`.
pub fn uptime_share_ppm(good_periods: u64, expected_periods: u64) -> u64 {
    if expected_periods == 0 {
        return 0;
    }
    good_periods.min(expected_periods) * PPM / expected_periods
}

/// The uptime reward for a share: nothing up to the threshold, then in proportion to the share
/// above it, `uptime_per_epoch` at 100 %.
pub fn uptime_reward(p: &Params, share_ppm: u64) -> u64 {
    let threshold = p.uptime_threshold_ppm.min(PPM);
    if share_ppm <= threshold {
        return 0;
    }
    let above = u128::from(share_ppm.min(PPM) - threshold);
    (u128::from(p.uptime_per_epoch) * above / u128::from(PPM - threshold)) as u64
}

/// Energy at a rate per kWh, rounded down.
pub fn at_rate(wh: u64, per_kwh: u64) -> u64 {
    (u128::from(wh) * u128::from(per_kwh) / 1000).min(u128::from(u64::MAX)) as u64
}

/// Scales raw rewards to fit `available` (documented rule): when their sum is within it, each is
/// paid in full; otherwise each gets `raw × available / sum`, rounded down, so the total is never
/// more than `available` and at most one unit per reward below it.
pub fn scale(raw: &[u64], available: u64) -> Vec<u64> {
    let sum: u128 = raw.iter().map(|&r| u128::from(r)).sum();
    if sum <= u128::from(available) {
        return raw.to_vec();
    }
    raw.iter()
        .map(|&r| (u128::from(r) * u128::from(available) / sum) as u64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params() -> Params {
        Params::defaults(0)
    }

    proptest! {
        #[test]
        fn local_renewable_never_exceeds_sold_or_metered(sold in -10_000i64..1_000_000, exported in -10_000i64..1_000_000) {
            let wh = local_renewable_wh(sold, exported);
            prop_assert!(wh >= 0);
            prop_assert!(wh <= sold.max(0) && wh <= exported.max(0));
            prop_assert!(wh == sold.max(0) || wh == exported.max(0));
        }

        #[test]
        fn uptime_share_is_in_zero_one(good in 0u64..100_000, expected in 0u64..100_000) {
            let s = uptime_share_ppm(good, expected);
            prop_assert!(s <= PPM);
            let r = uptime_reward(&params(), s);
            prop_assert!(r <= params().uptime_per_epoch);
            if s <= params().uptime_threshold_ppm { prop_assert_eq!(r, 0); }
        }

        #[test]
        fn scaled_rewards_never_exceed_the_budget_and_miss_it_by_at_most_one_each(
            raw in proptest::collection::vec(0u64..u64::MAX / 4096, 0..300),
            available in 0u64..u64::MAX / 2,
        ) {
            let paid = scale(&raw, available);
            let total: u128 = paid.iter().map(|&p| u128::from(p)).sum();
            let raw_total: u128 = raw.iter().map(|&r| u128::from(r)).sum();
            prop_assert!(paid.iter().zip(&raw).all(|(p, r)| p <= r));
            if raw_total <= u128::from(available) {
                prop_assert_eq!(total, raw_total);
            } else {
                prop_assert!(total <= u128::from(available));
                prop_assert!(total + raw.len() as u128 >= u128::from(available));
            }
        }
    }

    #[test]
    fn the_budget_halves_on_schedule_and_sums_under_the_cap() {
        let p = params();
        assert_eq!(budget(&p, 1), p.initial_budget);
        assert_eq!(budget(&p, 365), p.initial_budget);
        assert_eq!(budget(&p, 366), p.initial_budget / 2);
        let all: u128 = (1..=365 * 70).map(|n| u128::from(budget(&p, n))).sum();
        assert!(all <= u128::from(p.cap), "{all}");
    }

    #[test]
    fn uptime_pays_in_proportion_above_the_threshold() {
        let p = params();
        assert_eq!(uptime_reward(&p, 950_000), 0);
        assert_eq!(uptime_reward(&p, 975_000), p.uptime_per_epoch / 2);
        assert_eq!(uptime_reward(&p, PPM), p.uptime_per_epoch);
        assert_eq!(uptime_share_ppm(95, 100), 950_000);
        assert_eq!(uptime_share_ppm(120, 100), PPM);
    }

    #[test]
    fn epochs_span_market_time_back_to_back() {
        let p = Params {
            epoch_ms: 1000,
            ..Params::defaults(5000)
        };
        assert_eq!(p.span(1), (5000, 6000));
        assert_eq!(p.span(3), (7000, 8000));
        assert_eq!(p.last_ended(5999), 0);
        assert_eq!(p.last_ended(6000), 1);
        assert_eq!(p.last_ended(8500), 3);
    }
}
