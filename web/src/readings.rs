//! Gateways and their readings as time buckets. A homeowner sees the gateways of their home, an
//! installer those they commissioned, the grid operator and admins all of them.

use axum::extract::State;
use gridshare_domain::{GatewayId, Timestamp};
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::readings::{self, BucketSize};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiJson, ApiPath as Path, ApiQuery as Query};

fn may_see(who: &Principal, g: &Gateway) -> bool {
    match who.role {
        Role::Admin | Role::Operator => true,
        Role::Installer => g.installer == Some(who.participant),
        Role::Homeowner | Role::Trader => g.owner == who.participant,
    }
}

/// A gateway.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GatewayView {
    /// Id.
    pub id: u64,
    /// The home it belongs to.
    pub owner: u64,
    /// Who commissioned it.
    pub installer: Option<u64>,
    /// Its feeder node.
    pub feeder_node: u32,
    /// Its public key (hex).
    pub public_key: String,
    /// Its bond as the service last read it from chain: `bonded` (at least the minimum),
    /// `unbonded` (below it: the gateway earns no uptime or local-renewable rewards) or
    /// `not_required` (the minimum is zero); none before the first reading or without the
    /// incentive contracts.
    pub bond: Option<String>,
}

/// The gateways I may see.
#[utoipa::path(get, path = "/api/v1/gateways", tag = "readings", security(("api_key" = [])),
    responses((status = 200, description = "Gateways", body = Vec<GatewayView>)))]
pub async fn list(State(state): State<AppState>, who: Principal) -> Result<ApiJson<Vec<GatewayView>>, ApiError> {
    Ok(ApiJson(visible_gateways(&state, &who).await?))
}

/// The active gateways `who` may see: their own, the ones they commissioned, or all (operators).
pub async fn visible_gateways(state: &AppState, who: &Principal) -> Result<Vec<GatewayView>, ApiError> {
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let all = gateways::active(db).await?;
    let bonds = gateways::bond_states(db).await?;
    Ok(all
        .iter()
        .filter(|g| may_see(who, g))
        .map(|g| GatewayView {
            bond: bonds.get(&g.id).cloned(),
            id: g.id.0,
            owner: g.owner.0,
            installer: g.installer.map(|p| p.0),
            feeder_node: g.feeder_node.0,
            public_key: g.public_key.to_hex(),
        })
        .collect())
}

/// Which readings.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReadingsQuery {
    /// Device name (e.g. `meter`).
    pub device: String,
    /// `15m` (default), `1h` or `1d`.
    pub bucket: Option<String>,
    /// From (RFC 3339, inclusive); default 24 h ago.
    pub from: Option<String>,
    /// To (RFC 3339, exclusive); default now.
    pub to: Option<String>,
}

/// One bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BucketView {
    /// Bucket start (RFC 3339).
    pub start: String,
    /// Samples in it.
    pub samples: i64,
    /// Mean power, W.
    pub avg_power_w: Option<i64>,
    /// Energy drawn, Wh.
    pub energy_in_wh: Option<i64>,
    /// Energy delivered, Wh.
    pub energy_out_wh: Option<i64>,
}

/// A device's readings as time buckets.
#[utoipa::path(get, path = "/api/v1/gateways/{id}/readings", tag = "readings", security(("api_key" = [])),
    params(("id" = u64, Path, description = "Gateway id"), ReadingsQuery),
    responses(
        (status = 200, description = "Buckets, oldest first", body = Vec<BucketView>),
        (status = 403, description = "Not a gateway you may see", body = crate::error::ErrorBody),
        (status = 404, description = "No such gateway", body = crate::error::ErrorBody),
    ))]
pub async fn readings(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<u64>,
    Query(q): Query<ReadingsQuery>,
) -> Result<ApiJson<Vec<BucketView>>, ApiError> {
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let g = gateways::active(db)
        .await?
        .into_iter()
        .find(|g| g.id == GatewayId(id))
        .ok_or_else(|| ApiError::not_found(format!("no gateway {id}")))?;
    if !may_see(&who, &g) {
        return Err(ApiError::forbidden(format!("gateway {id} is not one you may see")));
    }
    let size = match q.bucket.as_deref().unwrap_or("15m") {
        "15m" => BucketSize::Quarter,
        "1h" => BucketSize::Hour,
        "1d" => BucketSize::Day,
        other => {
            return Err(ApiError::bad_request(
                "invalid_bucket",
                format!("bucket must be 15m, 1h or 1d, got {other:?}"),
            ));
        }
    };
    let now = state.clock.now();
    let parse = |s: Option<&str>, default: Timestamp, name: &str| match s {
        None => Ok(default),
        Some(s) => {
            Timestamp::parse_rfc3339(s).map_err(|e| ApiError::bad_request("invalid_time", format!("{name}: {e}")))
        }
    };
    let from = parse(q.from.as_deref(), Timestamp(now.0 - 86_400_000), "from")?;
    let to = parse(q.to.as_deref(), now, "to")?;
    if to.0 - from.0 > 400 * 86_400_000 || to.0 < from.0 {
        return Err(ApiError::bad_request(
            "invalid_range",
            "from must be before to, at most 400 days apart",
        ));
    }
    let rows = readings::buckets(db, g.id, &q.device, size, from, to).await?;
    Ok(ApiJson(
        rows.iter()
            .map(|b| BucketView {
                start: b.start.to_rfc3339(),
                samples: b.samples,
                avg_power_w: b.avg_power.map(|w| w.0),
                energy_in_wh: b.energy_in.map(|w| w.0),
                energy_out_wh: b.energy_out.map(|w| w.0),
            })
            .collect(),
    ))
}
