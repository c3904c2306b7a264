//! Epochs: once per epoch of market time, every home's verified contributions become rewards,
//! and the rewards become one public report and one cumulative Merkle root for the chain.
//!
//! ```text
//!  trades (sold per interval) ──┐
//!  grid meters (export/interval)┤                     rules.rs              report.rs
//!  DR reductions credited ──────┼─▶ Inputs ─▶ compute ─▶ raw rewards ─▶ scale to budget ─▶ Report
//!  telemetry periods (uptime) ──┤    (collect.rs                               │  canonical JSON, keccak hash
//!  gateways (owner, bonded) ────┘     reads storage)                           └▶ cumulative totals ─▶ Merkle root
//! ```
//!
//! [`compute`] is pure: the same inputs give a byte-identical report. [`report::verify`] checks a
//! report from the document alone (every amount re-derived from the contributions it lists and
//! the parameters it names, the root from its accounts), so anyone can audit an epoch with
//! nothing but the report and the chain.
//!
//! **Contributions** (per participant; amounts in µ-token, energy in Wh):
//! - *local renewable*: per interval, `min(sold to neighbours, grid-meter export)` — only for a
//!   participant with a bonded gateway; paid at `local_renewable_per_kwh`;
//! - *demand response*: the verified reductions credited during the epoch (`dr.rs`'s rule), at
//!   `demand_response_per_kwh`; not bond-gated (answering a call is its own proof);
//! - *uptime*: per bonded gateway, the share of the telemetry periods lying wholly in the epoch
//!   in which every device it reports has a reading; paid above the threshold, in proportion to
//!   the share above it. Counted from the readings' five-minute blocks (`storage::blocks`), so a
//!   period is a whole number of five-second slices.
//!
//! **Budget**: the raw total is paid in full when it fits the epoch's budget (and what the cap
//! leaves); otherwise every participant is scaled by the same fraction, rounded down
//! ([`rules::scale`]).
//!
//! **Accounts**: rewards go to the participant's EVM account (its own address, or the custodial
//! one the service holds for it). Each account's *cumulative* total — everything it was ever
//! awarded — is a leaf `keccak256(keccak256(abi.encode(address, uint256)))` of the root posted for
//! the epoch; the distributor pays a claim the difference from what the account has claimed.

pub mod collect;
pub mod report;
pub mod rules;

use std::collections::BTreeMap;

use gridshare_domain::{GatewayId, ParticipantId};

pub use report::{
    AccountTotal, DemandResponse, DrItem, LocalRenewable, LrInterval, ParticipantReward, Report, Uptime, UptimeItem,
};
pub use rules::Params;

/// A gateway as the epoch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayInfo {
    /// Id.
    pub id: GatewayId,
    /// Its home.
    pub owner: ParticipantId,
    /// True when at least the minimum bond was locked for it (always, with a minimum of zero).
    pub bonded: bool,
}

/// Everything an epoch is computed from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Energy each participant sold to neighbours: `(participant, interval start ms, Wh)`.
    pub sold: Vec<(ParticipantId, i64, i64)>,
    /// Energy each gateway's grid meter exported: `(gateway, interval start ms, Wh)`.
    pub exported: Vec<(GatewayId, i64, i64)>,
    /// Verified demand-response reductions credited in the epoch.
    pub demand_response: Vec<(ParticipantId, DrItem)>,
    /// Telemetry periods per gateway: `(gateway, good, expected)`.
    pub uptime: Vec<(GatewayId, u64, u64)>,
    /// The gateways.
    pub gateways: Vec<GatewayInfo>,
    /// Each participant's account, `0x` and 40 lower-case hex digits.
    pub accounts: BTreeMap<ParticipantId, String>,
    /// Every account's cumulative total after the previous epoch.
    pub previous: BTreeMap<String, u64>,
}

/// Computes epoch `n`'s report from its inputs. Participants without an account are left out
/// (they are named in the report's `unaccounted`); participants whose contributions are worth
/// nothing are not listed.
pub fn compute(n: u64, params: &Params, inputs: &Inputs) -> Report {
    let (start_ms, end_ms) = params.span(n);
    let mut by: BTreeMap<ParticipantId, ParticipantReward> = BTreeMap::new();
    let owner_of: BTreeMap<GatewayId, GatewayInfo> = inputs.gateways.iter().map(|g| (g.id, *g)).collect();

    // local renewable: sold vs the export of the participant's bonded gateways, per interval
    let mut exported: BTreeMap<(ParticipantId, i64), i64> = BTreeMap::new();
    for &(g, at, wh) in &inputs.exported {
        if let Some(info) = owner_of.get(&g).filter(|i| i.bonded) {
            *exported.entry((info.owner, at)).or_default() += wh;
        }
    }
    let mut sold: BTreeMap<(ParticipantId, i64), i64> = BTreeMap::new();
    for &(p, at, wh) in &inputs.sold {
        *sold.entry((p, at)).or_default() += wh;
    }
    for (&(p, at), &sold_wh) in &sold {
        let exported_wh = exported.get(&(p, at)).copied().unwrap_or(0);
        let wh = rules::local_renewable_wh(sold_wh, exported_wh);
        if wh > 0 {
            let r = by.entry(p).or_insert_with(|| ParticipantReward::empty(p.0));
            r.local_renewable.intervals.push(LrInterval {
                start_ms: at,
                sold_wh,
                exported_wh,
                wh,
            });
        }
    }
    // demand response
    for (p, item) in &inputs.demand_response {
        if item.wh > 0 {
            let r = by.entry(*p).or_insert_with(|| ParticipantReward::empty(p.0));
            r.demand_response.items.push(item.clone());
        }
    }
    // uptime, bonded gateways only
    for &(g, good, expected) in &inputs.uptime {
        let Some(info) = owner_of.get(&g).filter(|i| i.bonded) else {
            continue;
        };
        let share_ppm = rules::uptime_share_ppm(good, expected);
        let raw = rules::uptime_reward(params, share_ppm);
        // listed even below the threshold, so a home sees why it earned nothing for it
        let r = by
            .entry(info.owner)
            .or_insert_with(|| ParticipantReward::empty(info.owner.0));
        r.uptime.gateways.push(UptimeItem {
            gateway: g.0,
            good,
            expected,
            share_ppm,
            raw,
        });
    }

    let mut unaccounted = Vec::new();
    let mut participants = Vec::with_capacity(by.len());
    for (p, mut r) in by {
        let Some(account) = inputs.accounts.get(&p) else {
            unaccounted.push(p.0);
            continue;
        };
        r.account = account.clone();
        r.derive(params);
        if r.raw > 0 {
            participants.push(r);
        }
    }
    report::finish(
        n,
        start_ms,
        end_ms,
        *params,
        participants,
        unaccounted,
        &inputs.previous,
    )
}

#[cfg(test)]
mod tests;
