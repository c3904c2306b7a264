//! The grid operator's feeder view: for one delivery interval, the load on every line and
//! transformer of the feeder tree (from telemetry) against its limit (from the market's network
//! configuration).
//!
//! The load of a node is the sum, over the gateways connected at it or anywhere below it, of
//! their mean grid-meter power in the interval (import positive, export negative): the flow on the
//! edge from the node up to its parent. The limit is the edge's capacity per interval (Wh)
//! expressed as power over the interval's length; headroom is limit − |load|.
//!
//! Beside the measured load, each node shows what the market planned for the interval: its
//! price in the gate-closure auction, the auction's flow over the edge above it and the
//! congestion charge where the auction filled that edge.

use std::collections::HashMap;

use axum::extract::State;
use gridshare_domain::wire::NodePrice;
use gridshare_domain::{DeliveryInterval, NodeId, ZoneId};
use gridshare_matching_engine::NodeConfig;
use gridshare_storage::gateways;
use gridshare_storage::market::node_prices;
use gridshare_storage::readings::mean_grid_power;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiJson, ApiQuery as Query};

/// Which interval.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeederQuery {
    /// Delivery interval, `start/duration`; default the one in progress.
    #[param(value_type = Option<String>, example = "2026-11-30T10:15:00Z/PT15M", pattern = "^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):(([0-5][05]:00Z/PT5M)|((00|15|30|45):00Z/PT15M)|(00:00Z/PT60M))$")]
    pub interval: Option<DeliveryInterval>,
    /// The zone whose gate-closure auction prices to show; default the first configured.
    pub zone: Option<u32>,
}

/// One node of the feeder tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NodeLoad {
    /// The node.
    pub node: u32,
    /// Its parent (none for the substation).
    pub parent: Option<u32>,
    /// Gateways connected at or below it that reported in the interval.
    pub gateways: u32,
    /// Net flow up to the parent, W (negative: power flows down).
    pub load_w: i64,
    /// The edge's limit, W (none: unlimited).
    pub limit_w: Option<i64>,
    /// Limit − |load|, W.
    pub headroom_w: Option<i64>,
    /// The interval's gate-closure auction price at the node, µ/kWh (none: the auction traded
    /// nothing, or nothing could reach the node).
    pub auction_price: Option<i64>,
    /// Energy the auction sent over the edge above, Wh (positive: up; none as for the price).
    pub auction_flow_wh: Option<i64>,
    /// How far the auction's price gap across the edge above exceeds its grid fee, µ/kWh:
    /// positive only where the auction filled the edge (it binds).
    pub congestion: Option<i64>,
}

/// The feeder in one interval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeederView {
    /// The interval.
    pub interval: String,
    /// The zone of the auction prices.
    pub zone: u32,
    /// Nodes, in configuration order.
    pub nodes: Vec<NodeLoad>,
}

/// Load per line and transformer against its limit.
#[utoipa::path(get, path = "/api/v1/feeder", tag = "demand response", security(("api_key" = [])), params(FeederQuery),
    responses(
        (status = 200, description = "The feeder", body = FeederView),
        (status = 403, description = "Operators only", body = crate::error::ErrorBody),
        (status = 404, description = "No feeder network is configured", body = crate::error::ErrorBody),
    ))]
pub async fn feeder(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<FeederQuery>,
) -> Result<ApiJson<FeederView>, ApiError> {
    Ok(ApiJson(load(&state, &who, q.interval, q.zone.map(ZoneId)).await?))
}

/// The feeder's load per node in `interval` (default: the one running now), with the prices of
/// `zone`'s gate-closure auction for it (default: the first zone), for operators.
pub async fn load(
    state: &AppState,
    who: &Principal,
    interval: Option<DeliveryInterval>,
    zone: Option<ZoneId>,
) -> Result<FeederView, ApiError> {
    who.require_role(&[Role::Operator])?;
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let network = state
        .network
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no feeder network is configured (market.engine.network)"))?;
    let interval = interval.unwrap_or_else(|| DeliveryInterval::containing(state.clock.now(), state.interval_length));
    // each gateway's mean power, added to its node and every node above it
    let parent: HashMap<NodeId, Option<NodeId>> = network.iter().map(|n| (n.id, n.parent)).collect();
    let mut load: HashMap<NodeId, (i64, u32)> = HashMap::new();
    for g in gateways::active(db).await? {
        let Some(p) = mean_grid_power(db, g.id, interval.start(), interval.end()).await? else {
            continue;
        };
        let mut at = Some(g.feeder_node);
        let mut hops = 0;
        while let Some(n) = at {
            let e = load.entry(n).or_default();
            e.0 += p.0;
            e.1 += 1;
            at = parent.get(&n).copied().flatten();
            hops += 1;
            if hops > network.len() {
                break; // a malformed tree never loops forever
            }
        }
    }
    let zone = zone.or_else(|| state.zones.first().copied()).unwrap_or(ZoneId(1));
    let prices: HashMap<NodeId, NodePrice> = node_prices(db, zone, interval)
        .await?
        .into_iter()
        .map(|p| (p.node, p))
        .collect();
    let minutes = interval.length().minutes();
    Ok(FeederView {
        interval: interval.to_string(),
        zone: zone.0,
        nodes: network
            .iter()
            .map(|n: &NodeConfig| {
                let (load_w, gateways) = load.get(&n.id).copied().unwrap_or((0, 0));
                let limit_w = n.capacity.map(|c| c.0 * 60 / minutes);
                let price = prices.get(&n.id);
                NodeLoad {
                    node: n.id.0,
                    parent: n.parent.map(|p| p.0),
                    gateways,
                    load_w,
                    limit_w,
                    headroom_w: limit_w.map(|l| l - load_w.abs()),
                    auction_price: price.map(|p| p.price.0),
                    auction_flow_wh: price.map(|p| p.flow.0),
                    congestion: price.map(|p| p.congestion.0),
                }
            })
            .collect(),
    })
}
