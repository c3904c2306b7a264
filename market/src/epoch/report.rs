//! An epoch's public report: its canonical JSON, its hash, its accounts' Merkle tree, and the
//! check that re-derives every figure in it from the contributions it lists.
//!
//! **Canonical JSON**: object keys in byte order, no white space, integers only (every amount is
//! below 2^53, so any JSON reader reads it exactly) — RFC 8785's form for documents without
//! fractions. The report hash is `keccak256` of those bytes, so any reader can recompute it from
//! the document alone, whatever its own serializer does with key order. The structs below declare
//! their fields in that order, so that serde writes the canonical form as it goes.

use std::collections::BTreeMap;

use gridshare_domain::envelope::keccak256;
use gridshare_domain::merkle::{self, MerkleTree};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rules::{self, Params};

/// Version of the report format.
pub const VERSION: u32 = 1;

/// One interval's local renewable energy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LrInterval {
    /// Exported by the home's bonded gateways' grid meters, Wh.
    pub exported_wh: i64,
    /// Sold to neighbours, Wh.
    pub sold_wh: i64,
    /// Interval start, ms.
    pub start_ms: i64,
    /// `min(sold, exported)`, Wh.
    pub wh: i64,
}

/// Local renewable contribution of a participant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRenewable {
    /// The intervals it comes from.
    pub intervals: Vec<LrInterval>,
    /// At the rate, µ-token.
    pub raw: u64,
    /// Their sum, Wh.
    pub wh: u64,
}

/// One verified demand-response reduction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrItem {
    /// The event.
    pub event: u64,
    /// The gateway that answered.
    pub gateway: u64,
    /// The event interval, start ms.
    pub interval_start_ms: i64,
    /// Verified reduction, Wh.
    pub wh: i64,
}

/// Demand-response contribution of a participant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandResponse {
    /// The reductions it comes from.
    pub items: Vec<DrItem>,
    /// At the rate, µ-token.
    pub raw: u64,
    /// Their sum, Wh.
    pub wh: u64,
}

/// One gateway's uptime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UptimeItem {
    /// Periods in the epoch.
    pub expected: u64,
    /// The gateway.
    pub gateway: u64,
    /// Periods with a valid envelope carrying every device.
    pub good: u64,
    /// Its reward, µ-token.
    pub raw: u64,
    /// `good / expected`, ppm.
    pub share_ppm: u64,
}

/// Uptime contribution of a participant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uptime {
    /// Per gateway.
    pub gateways: Vec<UptimeItem>,
    /// Their sum, µ-token.
    pub raw: u64,
}

/// A participant's contributions and reward in one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantReward {
    /// Its account.
    pub account: String,
    /// Demand response.
    pub demand_response: DemandResponse,
    /// Local renewable.
    pub local_renewable: LocalRenewable,
    /// Participant id.
    pub participant: u64,
    /// Sum at the configured rates, µ-token.
    pub raw: u64,
    /// Paid after scaling to the budget, µ-token.
    pub reward: u64,
    /// Uptime.
    pub uptime: Uptime,
}

impl ParticipantReward {
    pub(super) fn empty(participant: u64) -> Self {
        Self {
            participant,
            account: String::new(),
            local_renewable: LocalRenewable::default(),
            demand_response: DemandResponse::default(),
            uptime: Uptime::default(),
            raw: 0,
            reward: 0,
        }
    }

    /// Fills in the sums and raw amounts from the listed items.
    pub(super) fn derive(&mut self, p: &Params) {
        let lr = &mut self.local_renewable;
        lr.wh = lr.intervals.iter().map(|i| i.wh.max(0) as u64).sum();
        lr.raw = rules::at_rate(lr.wh, p.local_renewable_per_kwh);
        let dr = &mut self.demand_response;
        dr.wh = dr.items.iter().map(|i| i.wh.max(0) as u64).sum();
        dr.raw = rules::at_rate(dr.wh, p.demand_response_per_kwh);
        self.uptime.raw = self.uptime.gateways.iter().map(|g| g.raw).sum();
        self.raw = lr.raw.saturating_add(dr.raw).saturating_add(self.uptime.raw);
    }
}

/// An account's cumulative total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountTotal {
    /// `0x` and 40 lower-case hex digits.
    pub account: String,
    /// After this one, µ-token.
    pub cumulative: u64,
    /// After the previous epoch, µ-token.
    pub previous: u64,
}

/// An epoch's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Every account ever rewarded, by address: the leaves of the root.
    pub accounts: Vec<AccountTotal>,
    /// What could be paid: the budget, or what the cap leaves if less.
    pub available: u64,
    /// The schedule's budget for this epoch, µ-token.
    pub budget: u64,
    /// Sum of every account's cumulative total after this epoch.
    pub cumulative_total: u64,
    /// End (exclusive), ms.
    pub end_ms: i64,
    /// Epoch number (from 1).
    pub epoch: u64,
    /// Sum paid.
    pub paid: u64,
    /// The parameters used.
    pub params: Params,
    /// Participants with a reward, by id.
    pub participants: Vec<ParticipantReward>,
    /// Sum of every account's cumulative total before this epoch.
    pub previous_total: u64,
    /// Sum of raw rewards.
    pub raw_total: u64,
    /// The cumulative Merkle root, `0x…`.
    pub root: String,
    /// Start, ms of market time.
    pub start_ms: i64,
    /// Participants who contributed but have no account (left out), by id.
    pub unaccounted: Vec<u64>,
    /// Format version.
    pub version: u32,
}

/// Scales, sums and builds the accounts and root of a report from its participants.
pub(super) fn finish(
    epoch: u64,
    start_ms: i64,
    end_ms: i64,
    params: Params,
    mut participants: Vec<ParticipantReward>,
    unaccounted: Vec<u64>,
    previous: &BTreeMap<String, u64>,
) -> Report {
    let budget = rules::budget(&params, epoch);
    let previous_total: u64 = previous.values().sum();
    let available = budget.min(params.cap.saturating_sub(previous_total));
    let raw: Vec<u64> = participants.iter().map(|p| p.raw).collect();
    for (p, paid) in participants.iter_mut().zip(rules::scale(&raw, available)) {
        p.reward = paid;
    }
    let mut totals: BTreeMap<String, AccountTotal> = previous
        .iter()
        .map(|(a, &v)| {
            (
                a.clone(),
                AccountTotal {
                    account: a.clone(),
                    previous: v,
                    cumulative: v,
                },
            )
        })
        .collect();
    for p in participants.iter().filter(|p| p.reward > 0) {
        totals
            .entry(p.account.clone())
            .or_insert_with(|| AccountTotal {
                account: p.account.clone(),
                previous: 0,
                cumulative: 0,
            })
            .cumulative += p.reward;
    }
    let accounts: Vec<AccountTotal> = totals.into_values().collect();
    let root = hex32(&tree(&accounts).map_or([0; 32], |t| t.root()));
    Report {
        version: VERSION,
        epoch,
        start_ms,
        end_ms,
        params,
        budget,
        available,
        raw_total: raw.iter().sum(),
        paid: participants.iter().map(|p| p.reward).sum(),
        previous_total,
        cumulative_total: accounts.iter().map(|a| a.cumulative).sum(),
        participants,
        unaccounted,
        accounts,
        root,
    }
}

/// `0x` and 64 hex digits.
pub fn hex32(b: &[u8; 32]) -> String {
    format!("0x{}", hex_lower(b))
}

/// `0x` and 40 hex digits.
pub fn hex20(b: &[u8; 20]) -> String {
    format!("0x{}", hex_lower(b))
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses `0x` + 40 hex digits.
pub fn parse_address(s: &str) -> Option<[u8; 20]> {
    let h = s.strip_prefix("0x")?;
    if h.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The leaf of an account's cumulative total ([`merkle::reward_leaf`]).
pub fn leaf(account: &[u8; 20], cumulative: u64) -> [u8; 32] {
    merkle::reward_leaf(account, cumulative)
}

/// The distributor's tree over the accounts with a positive total (in the report's order,
/// ascending address), padded with zero leaves to a power of two; `None` when an address does
/// not parse.
pub fn tree(accounts: &[AccountTotal]) -> Option<MerkleTree> {
    let leaves = accounts
        .iter()
        .filter(|a| a.cumulative > 0)
        .map(|a| parse_address(&a.account).map(|addr| leaf(&addr, a.cumulative)))
        .collect::<Option<Vec<_>>>()?;
    Some(MerkleTree::padded(leaves))
}

impl Report {
    /// The canonical JSON of the report. Every struct of the report declares its fields in byte
    /// order of their names and has no map with other than string keys, so serde writes the
    /// canonical form directly (a test holds it to [`canonical`] of the same document); at 1,000
    /// homes × 96 intervals that is about ten times faster than sorting a `Value` tree.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `keccak256` of the canonical JSON.
    pub fn hash(&self) -> [u8; 32] {
        keccak256(self.canonical_json().as_bytes())
    }

    /// An account's cumulative total and its proof, if the account is in the root.
    pub fn proof_of(&self, account: &str) -> Option<(u64, Vec<[u8; 32]>)> {
        let leaves: Vec<&AccountTotal> = self.accounts.iter().filter(|a| a.cumulative > 0).collect();
        let i = leaves.iter().position(|a| a.account == account)?;
        let proof = tree(&self.accounts)?.proof(i)?;
        Some((leaves[i].cumulative, proof))
    }
}

/// The canonical form of any JSON document (keys sorted at every level, no white space).
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What a report got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("epoch report: {what}")]
pub struct VerifyError {
    /// The figure that does not follow from the rest, and how.
    pub what: String,
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), VerifyError> {
    if ok { Ok(()) } else { Err(VerifyError { what: what() }) }
}

/// Checks a report from the document alone: every contribution against its rule, every sum, the
/// scaling to the budget, each account's cumulative total, and the root. Returns the root and the
/// report hash to compare with the chain.
pub fn verify(r: &Report) -> Result<([u8; 32], [u8; 32]), VerifyError> {
    check(r.version == VERSION, || {
        format!("version {} (this build reads {VERSION})", r.version)
    })?;
    check(r.epoch >= 1, || "epoch 0".into())?;
    check((r.start_ms, r.end_ms) == r.params.span(r.epoch), || {
        format!(
            "span {}..{} is not epoch {}'s under its parameters",
            r.start_ms, r.end_ms, r.epoch
        )
    })?;
    let budget = rules::budget(&r.params, r.epoch);
    check(r.budget == budget, || {
        format!("budget {} (the schedule gives {budget})", r.budget)
    })?;
    let previous_total: u64 = r.accounts.iter().map(|a| a.previous).sum();
    check(r.previous_total == previous_total, || {
        format!(
            "previous_total {} (the accounts sum to {previous_total})",
            r.previous_total
        )
    })?;
    let available = budget.min(r.params.cap.saturating_sub(previous_total));
    check(r.available == available, || {
        format!("available {} (should be {available})", r.available)
    })?;
    let mut re = Vec::with_capacity(r.participants.len());
    for p in &r.participants {
        for i in &p.local_renewable.intervals {
            check(i.wh == rules::local_renewable_wh(i.sold_wh, i.exported_wh), || {
                format!(
                    "participant {} interval {}: {} Wh is not min(sold, exported)",
                    p.participant, i.start_ms, i.wh
                )
            })?;
            check(i.start_ms >= r.start_ms && i.start_ms < r.end_ms, || {
                format!(
                    "participant {} interval {} is outside the epoch",
                    p.participant, i.start_ms
                )
            })?;
        }
        for g in &p.uptime.gateways {
            let share = rules::uptime_share_ppm(g.good, g.expected);
            check(
                g.share_ppm == share && g.raw == rules::uptime_reward(&r.params, share),
                || {
                    format!(
                        "participant {} gateway {}: uptime share or reward does not follow",
                        p.participant, g.gateway
                    )
                },
            )?;
        }
        let mut d = p.clone();
        d.derive(&r.params);
        d.reward = p.reward;
        check(d == *p, || {
            format!(
                "participant {}: sums or raw amounts do not follow from its items",
                p.participant
            )
        })?;
        re.push(p.raw);
    }
    check(
        r.participants.windows(2).all(|w| w[0].participant < w[1].participant),
        || "participants are not in ascending id order".into(),
    )?;
    for (p, paid) in r.participants.iter().zip(rules::scale(&re, available)) {
        check(p.reward == paid, || {
            format!(
                "participant {}: reward {} (scaling gives {paid})",
                p.participant, p.reward
            )
        })?;
    }
    check(r.raw_total == re.iter().sum::<u64>(), || {
        "raw_total is not the sum of raw rewards".into()
    })?;
    let paid: u64 = r.participants.iter().map(|p| p.reward).sum();
    check(r.paid == paid && paid <= available, || {
        format!("paid {} (rewards sum to {paid})", r.paid)
    })?;
    let mut gained: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &r.participants {
        *gained.entry(p.account.as_str()).or_default() += p.reward;
    }
    check(r.accounts.windows(2).all(|w| w[0].account < w[1].account), || {
        "accounts are not in ascending, distinct order".into()
    })?;
    for a in &r.accounts {
        let g = gained.remove(a.account.as_str()).unwrap_or(0);
        check(a.cumulative == a.previous + g, || {
            format!(
                "account {}: cumulative {} is not previous {} + rewards {g}",
                a.account, a.cumulative, a.previous
            )
        })?;
    }
    check(gained.values().all(|&g| g == 0), || {
        format!(
            "rewarded accounts missing from the leaves: {:?}",
            gained.keys().collect::<Vec<_>>()
        )
    })?;
    let cumulative_total: u64 = r.accounts.iter().map(|a| a.cumulative).sum();
    check(r.cumulative_total == cumulative_total, || {
        "cumulative_total is not the sum of the accounts".into()
    })?;
    let t = tree(&r.accounts).ok_or_else(|| VerifyError {
        what: "an account is not an address".into(),
    })?;
    check(r.root == hex32(&t.root()), || {
        format!("root {} (the accounts give {})", r.root, hex32(&t.root()))
    })?;
    Ok((t.root(), r.hash()))
}

/// Checks an account's proof against a root, as the distributor does.
pub fn verify_proof(root: [u8; 32], account: &[u8; 20], cumulative: u64, proof: &[[u8; 32]]) -> bool {
    merkle::verify(proof, root, leaf(account, cumulative))
}
