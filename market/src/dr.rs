//! Demand response, verified: an event's response is measured from telemetry against a baseline,
//! and once the event has ended each gateway owner is credited for the verified reduction, once.
//! Also how an event's targets (the feeder, feeder nodes, sites) resolve to gateways.
//!
//! The HTTP side (`web/src/dr.rs`) creates and shows events; the MQTT side carries them to
//! gateways as [`Dispatch`]es and brings reports back.

use gridshare_domain::wire::{DrEvent, DrInterval};
use gridshare_domain::{GatewayId, Timestamp};
use gridshare_matching_engine::NodeConfig;
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::{StorageError, dr};
use serde::{Deserialize, Serialize};

/// An event on its way to gateways: the targets and the event as they receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// The gateways targeted.
    pub gateways: Vec<GatewayId>,
    /// The event (cancelled: the cancellation).
    pub event: DrEvent,
}

/// Reward for demand-response reduction, reward-token µ per kWh shed.
pub const REWARD_PER_KWH: i64 = 200_000;
/// The baseline: mean grid power over this many minutes before the event starts.
pub const BASELINE_MINUTES: i64 = 60;

/// One gateway's verified response in one interval of an event.
///
/// **Baseline** (documented rule): the gateway's mean grid-meter power over the hour before the
/// event starts. **Measured**: its mean grid-meter power during the interval. **Reduction**:
/// baseline − measured when positive, as energy over the interval; the reward is that energy at
/// [`REWARD_PER_KWH`], rounded down. Without readings on either side nothing is verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verified {
    /// The gateway.
    pub gateway: u64,
    /// Interval number.
    pub interval_id: u32,
    /// Baseline, W.
    pub baseline_w: Option<i64>,
    /// Measured, W.
    pub measured_w: Option<i64>,
    /// Verified reduction, Wh.
    pub reduction_wh: i64,
    /// Reward, µ.
    pub reward: i64,
}

/// Verifies an event's response from telemetry, for the intervals that have ended by `now`.
pub async fn verify(
    db: &gridshare_storage::Db,
    e: &dr::Event,
    all: &[Gateway],
    network: Option<&[NodeConfig]>,
    now: Timestamp,
) -> Result<Vec<Verified>, StorageError> {
    let (Ok(targets), Ok(intervals)) = (
        serde_json::from_str::<Targets>(&e.targets),
        serde_json::from_str::<Vec<DrInterval>>(&e.intervals),
    ) else {
        return Err(StorageError::Corrupt {
            field: "dr_events",
            reason: format!("event {} has damaged targets or intervals", e.id.0),
        });
    };
    let start = Timestamp(e.starts_at);
    let mut out = Vec::new();
    for g in targets.resolve(all, network) {
        let baseline =
            gridshare_storage::readings::mean_grid_power(db, g, start.plus_minutes(-BASELINE_MINUTES), start).await?;
        for iv in intervals.iter().filter(|iv| iv.end() <= now) {
            let measured = gridshare_storage::readings::mean_grid_power(db, g, iv.start, iv.end()).await?;
            let reduction_wh = match (baseline, measured) {
                (Some(b), Some(m)) => (b.0 - m.0).max(0) * i64::from(iv.duration_minutes) / 60,
                _ => 0,
            };
            out.push(Verified {
                gateway: g.0,
                interval_id: iv.id,
                baseline_w: baseline.map(|w| w.0),
                measured_w: measured.map(|w| w.0),
                reduction_wh,
                reward: reduction_wh.saturating_mul(REWARD_PER_KWH) / 1000,
            });
        }
    }
    Ok(out)
}

/// Verifies every event that has ended by `now` and is not cancelled or completed, credits each
/// gateway owner's reward (once: rewards are keyed by event, gateway and interval), and marks the
/// event completed. Returns the rewards newly credited.
pub async fn credit_completed(
    db: &gridshare_storage::Db,
    network: Option<&[NodeConfig]>,
    now: Timestamp,
) -> Result<usize, StorageError> {
    let all = gateways::active(db).await?;
    let mut credited = 0;
    for e in dr::events(db, 1_000).await? {
        if e.ends_at > now.0 || !(e.status == "scheduled" || e.status == "active") {
            continue;
        }
        for v in verify(db, &e, &all, network, now).await? {
            let Some(owner) = all.iter().find(|g| g.id.0 == v.gateway).map(|g| g.owner) else {
                continue;
            };
            if v.reward > 0
                && gridshare_storage::rewards::credit(
                    db,
                    &gridshare_storage::rewards::Reward {
                        participant: owner,
                        kind: "demand_response".into(),
                        amount: v.reward,
                        interval_start: None,
                        event: Some(e.id),
                        reference: format!("dr:{}:{}:{}", e.id.0, v.gateway, v.interval_id),
                        created_at: now.0,
                        minted_tx: None,
                    },
                )
                .await?
            {
                credited += 1;
            }
        }
        gridshare_storage::rewards::complete_event(db, e.id).await?;
        tracing::info!(event = e.id.0, "demand-response event verified and completed");
    }
    Ok(credited)
}

/// Who an event is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Targets {
    /// Every gateway on the feeder.
    Feeder,
    /// The gateways connected at these feeder nodes (transformers, lines, homes).
    Nodes {
        /// Node ids.
        nodes: Vec<u32>,
    },
    /// These sites' gateways.
    Sites {
        /// Gateway ids.
        gateways: Vec<u64>,
    },
}

impl Targets {
    /// The gateways these targets reach: for nodes, every gateway connected at or below them in
    /// the feeder tree (a transformer's target is every home behind it).
    pub fn resolve(&self, all: &[Gateway], network: Option<&[NodeConfig]>) -> Vec<GatewayId> {
        let below = match self {
            Self::Nodes { nodes } => subtree(nodes, network),
            _ => Vec::new(),
        };
        all.iter()
            .filter(|g| match self {
                Self::Feeder => true,
                Self::Nodes { .. } => below.contains(&g.feeder_node.0),
                Self::Sites { gateways } => gateways.contains(&g.id.0),
            })
            .map(|g| g.id)
            .collect()
    }
}

/// `nodes` and every node below them in `network`.
pub fn subtree(nodes: &[u32], network: Option<&[NodeConfig]>) -> Vec<u32> {
    let mut out: Vec<u32> = nodes.to_vec();
    let Some(net) = network else { return out };
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        for n in net.iter().filter(|n| n.parent.map(|p| p.0) == Some(parent)) {
            if !out.contains(&n.id.0) {
                out.push(n.id.0);
            }
        }
        i += 1;
    }
    out
}
