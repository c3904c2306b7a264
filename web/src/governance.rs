//! The governed parameters over HTTP (issue 22): what the community's governor and timelock on
//! chain have set — grid fees, tariffs, reward rates, the budget schedule, bond and slashing rules,
//! redemption — as the service last read them, with every version it has seen. Public, like the
//! epochs' reports: the rules that decide who earns what are for everyone to read.

use axum::extract::State;
use gridshare_storage::parameters;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiQuery as Query};

/// How much history.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ParametersQuery {
    /// At most this many versions, newest first (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// One version of the parameters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParameterVersionView {
    /// How many changes were executed on chain up to it (0: the values at deployment).
    pub version: u64,
    /// When the service saw it (market time, RFC 3339).
    pub observed_at: String,
    /// The parameters, keyed as in the contract, values as decimal strings (µ-currency per kWh
    /// for fees and tariffs, µ-token for rewards and bonds, basis points, seconds).
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
}

/// The parameters in force and the versions before them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParametersView {
    /// The newest version (none before the service first read the chain).
    pub current: Option<ParameterVersionView>,
    /// Every version seen, newest first (the current one included).
    pub history: Vec<ParameterVersionView>,
}

fn view(v: &parameters::ParameterVersion) -> ParameterVersionView {
    ParameterVersionView {
        version: v.version,
        observed_at: v.observed_at.to_rfc3339(),
        params: serde_json::from_str(&v.params).unwrap_or_else(|_| serde_json::Value::String(v.params.clone())),
    }
}

/// The governed parameters in force, and their history.
#[utoipa::path(get, path = "/api/v1/governance/parameters", tag = "governance", params(ParametersQuery),
    responses(
        (status = 200, description = "Current parameters and their history", body = ParametersView),
        (status = 400, description = "Bad limit", body = crate::error::ErrorBody),
    ))]
pub async fn governed_parameters(
    State(state): State<AppState>,
    Query(q): Query<ParametersQuery>,
) -> Result<ApiJson<ParametersView>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to 500, got {limit}"),
        ));
    }
    let history: Vec<ParameterVersionView> = parameters::history(state.db()?, limit)
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(ApiJson(ParametersView {
        current: history.first().cloned(),
        history,
    }))
}
