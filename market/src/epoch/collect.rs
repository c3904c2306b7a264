//! Reading an epoch's inputs from storage, computing it, and storing the result — once per epoch,
//! in order, catching up after downtime.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gridshare_domain::{GatewayId, ParticipantId};
use gridshare_storage::epochs::{self, Epoch, EpochReward};
use gridshare_storage::{Db, StorageError, gateways, participants};

use super::report::{self, DrItem, Report};
use super::{GatewayInfo, Inputs, Params, compute};
use crate::Clock;

/// The rules of epoch `n`: `configured`, with the reward rates and uptime threshold of the
/// governed parameters (issue 22) in force when the epoch began — the newest version the service
/// had seen on chain by then, if the community had changed anything (version 0 is the
/// configuration's own values). A change seen during an epoch applies from the next one, and an
/// epoch already computed is never computed again. The report carries the rules it was computed
/// with, so `gridshare epoch verify` checks it with them. The budget schedule and the cap stay the
/// configured ones: the distributor on chain enforces those it was deployed with.
pub async fn governed(db: &Db, configured: &Params, n: u64) -> Result<Params, StorageError> {
    let (start, _) = configured.span(n);
    let Some(v) = gridshare_storage::parameters::in_force(db, gridshare_domain::Timestamp(start)).await? else {
        return Ok(*configured);
    };
    if v.version == 0 {
        return Ok(*configured);
    }
    let p = v.values()?;
    let value = |key: &str, fallback: u64| {
        p.get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(fallback)
    };
    Ok(Params {
        local_renewable_per_kwh: value("rewardGeneration", configured.local_renewable_per_kwh),
        demand_response_per_kwh: value("rewardDemandResponse", configured.demand_response_per_kwh),
        uptime_per_epoch: value("rewardUptime", configured.uptime_per_epoch),
        uptime_threshold_ppm: value("uptimeThresholdBps", configured.uptime_threshold_ppm / 100).saturating_mul(100),
        ..*configured
    })
}

/// Which gateways count as bonded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bonds {
    /// The minimum bond is zero (a pilot): every active gateway counts.
    NoMinimum,
    /// Exactly these gateways had at least the minimum bond locked.
    Bonded(BTreeSet<GatewayId>),
}

/// A participant's account, lower-cased: their own address when it is one, else the custodial
/// account the service holds for them; `None` while neither is there (the service assigns
/// custodial accounts at start and before each settlement step).
pub fn account_of(p: &participants::Participant) -> Option<String> {
    let valid = |a: &&String| report::parse_address(&a.to_ascii_lowercase()).is_some();
    p.evm_address
        .as_ref()
        .filter(valid)
        .or(p.custody_address.as_ref().filter(valid))
        .map(|a| a.to_ascii_lowercase())
}

/// Reads epoch `n`'s inputs: trades and meter readings of its span, the demand-response rewards
/// credited in it, telemetry periods, gateways, accounts, and the previous epoch's totals.
pub async fn inputs(db: &Db, params: &Params, n: u64, interval_ms: i64, bonds: &Bonds) -> Result<Inputs, StorageError> {
    let (start, end) = params.span(n);
    let readings = epochs::from_readings(db, start, end, interval_ms, params.uptime_period_ms).await?;
    let (first, last) = gridshare_storage::blocks::periods_in(start, end, params.uptime_period_ms);
    let expected = u64::try_from(last - first).unwrap_or(0);
    let mut i = Inputs {
        sold: epochs::sold_per_interval(db, start, end).await?,
        exported: readings.exported,
        uptime: readings
            .complete
            .into_iter()
            .map(|(g, good)| (g, good, expected))
            .collect(),
        ..Inputs::default()
    };
    for c in epochs::dr_credits(db, start, end).await? {
        // reference `dr:{event}:{gateway}:{interval}`; the amount was credited at dr.rs's rate
        let gateway = c.reference.split(':').nth(2).and_then(|g| g.parse().ok()).unwrap_or(0);
        let wh = c.amount.saturating_mul(1000) / crate::dr::REWARD_PER_KWH;
        i.demand_response.push((
            c.participant,
            DrItem {
                event: c.event,
                gateway,
                interval_start_ms: c.interval_start,
                wh,
            },
        ));
    }
    i.gateways = gateways::active(db)
        .await?
        .into_iter()
        .map(|g| GatewayInfo {
            id: g.id,
            owner: g.owner,
            bonded: match bonds {
                Bonds::NoMinimum => true,
                Bonds::Bonded(set) => set.contains(&g.id),
            },
        })
        .collect();
    for p in participants::list(db).await? {
        // an epoch waits for every account rather than leave someone's reward out of its root
        let account = account_of(&p).ok_or_else(|| StorageError::Corrupt {
            field: "participants.custody_address",
            reason: format!(
                "participant {} has no on-chain account yet (no evm_address, no custodial account): epoch {n} waits for it",
                p.id.0
            ),
        })?;
        i.accounts.insert(p.id, account);
    }
    i.previous = previous_totals(db, n).await?;
    Ok(i)
}

/// Every account's cumulative total after epoch `n − 1` (from its stored report).
async fn previous_totals(db: &Db, n: u64) -> Result<BTreeMap<String, u64>, StorageError> {
    if n <= 1 {
        return Ok(BTreeMap::new());
    }
    let Some(json) = epochs::report(db, n - 1).await? else {
        return Err(StorageError::Corrupt {
            field: "epochs",
            reason: format!("epoch {} is not stored, so epoch {n} cannot be computed", n - 1),
        });
    };
    let r: Report = serde_json::from_str(&json).map_err(|e| StorageError::Corrupt {
        field: "epochs.report",
        reason: format!("epoch {}: {e}", n - 1),
    })?;
    Ok(r.accounts.into_iter().map(|a| (a.account, a.cumulative)).collect())
}

/// Computes and stores epoch `n`; returns its report.
pub async fn compute_and_store(
    db: &Db,
    params: &Params,
    n: u64,
    interval_ms: i64,
    bonds: &Bonds,
    now_ms: i64,
) -> Result<Report, StorageError> {
    let inputs = inputs(db, params, n, interval_ms, bonds).await?;
    let r = compute(n, params, &inputs);
    let cumulative: BTreeMap<&str, u64> = r.accounts.iter().map(|a| (a.account.as_str(), a.cumulative)).collect();
    let rewards: Vec<EpochReward> = r
        .participants
        .iter()
        .map(|p| EpochReward {
            epoch: n,
            participant: ParticipantId(p.participant),
            account: p.account.clone(),
            local_renewable: p.local_renewable.raw as i64,
            demand_response: p.demand_response.raw as i64,
            uptime: p.uptime.raw as i64,
            raw: p.raw as i64,
            reward: p.reward as i64,
            cumulative: cumulative.get(p.account.as_str()).copied().unwrap_or(0) as i64,
        })
        .collect();
    let json = r.canonical_json();
    let hash = gridshare_domain::envelope::keccak256(json.as_bytes());
    epochs::insert(db, &stored_with_hash(&r, hash, now_ms), &json, &rewards).await?;
    Ok(r)
}

/// The stored row of a report computed at `now_ms` (not posted yet).
pub fn stored(r: &Report, now_ms: i64) -> Epoch {
    stored_with_hash(r, r.hash(), now_ms)
}

/// [`stored`], with the report's hash already computed.
fn stored_with_hash(r: &Report, hash: [u8; 32], now_ms: i64) -> Epoch {
    Epoch {
        epoch: r.epoch,
        start_ms: r.start_ms,
        end_ms: r.end_ms,
        budget: r.budget as i64,
        paid: r.paid as i64,
        cumulative_total: r.cumulative_total as i64,
        participants: r.participants.len() as i64,
        root: r.root.clone(),
        report_hash: report::hex32(&hash),
        computed_at: now_ms,
        posted_tx: None,
    }
}

/// Computes every epoch that has ended by `now` and is not stored yet, oldest first (an epoch is
/// computed only after its end plus `settle_ms`, so late telemetry and DR credits are in). Returns
/// the epochs computed.
pub async fn catch_up(
    db: &Db,
    params: &Params,
    interval_ms: i64,
    bonds: &Bonds,
    now_ms: i64,
    settle_ms: i64,
) -> Result<Vec<u64>, StorageError> {
    let done = epochs::last(db).await?.map_or(0, |e| e.epoch);
    let due = params.last_ended(now_ms.saturating_sub(settle_ms));
    let mut out = Vec::new();
    for n in done + 1..=due {
        let rules = governed(db, params, n).await?;
        compute_and_store(db, &rules, n, interval_ms, bonds, now_ms).await?;
        out.push(n);
    }
    Ok(out)
}

/// The service's epoch task: every `every` of wall time, computes the epochs that are due on
/// `clock`, with the bonds last read from chain (`bonds`; nothing is computed before the first
/// reading, so that no epoch pays a gateway that was not bonded). Runs until the task is dropped.
pub async fn run(
    db: Db,
    params: Params,
    interval_ms: i64,
    clock: Clock,
    every: Duration,
    bonds: tokio::sync::watch::Receiver<Option<Bonds>>,
) {
    let settle_ms = interval_ms;
    loop {
        let Some(bonded) = bonds.borrow().clone() else {
            tracing::debug!("reward epochs wait for the bonds to be read from chain");
            tokio::time::sleep(every).await;
            continue;
        };
        match catch_up(&db, &params, interval_ms, &bonded, clock.now().0, settle_ms).await {
            Ok(done) if done.is_empty() => {}
            Ok(done) => tracing::info!(epochs = ?done, "reward epochs computed"),
            Err(e) => tracing::warn!(error = %e, "computing reward epochs"),
        }
        tokio::time::sleep(every).await;
    }
}
