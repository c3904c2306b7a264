//! Proofs of equivocation over HTTP (issue 22): a gateway that signed two different envelopes
//! with one sequence number is revoked by the intake, and its proof taken on chain by the
//! settlement task (`GatewayStaking.slashEquivocation`). The grid operator and administrators see
//! every proof; a homeowner sees those against their own gateways only (the envelopes carry the
//! home's readings and orders); other roles are refused.

use axum::extract::State;
use gridshare_storage::evidence::{self, Equivocation};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiJson, ApiQuery as Query};

/// Most proofs one answer holds.
pub const MAX_LIMIT: u32 = 500;

/// How many proofs.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EquivocationsQuery {
    /// At most this many, newest first (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A proof of equivocation, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EquivocationView {
    /// `0x…`: keccak256 of the two envelopes' digests, lower first (the staking contract's key).
    pub evidence: String,
    /// The gateway that signed both.
    pub gateway: u64,
    /// Its owner (the home).
    pub owner: u64,
    /// The sequence number both envelopes carry.
    pub seq: u64,
    /// When the second envelope arrived (RFC 3339).
    pub detected_at: String,
    /// The same, ms since the epoch.
    pub detected_at_ms: i64,
    /// `pending` (not on chain yet), `slashed` (the bond was slashed by `slashed_tx`) or
    /// `refused` (the chain refused the proof, `slash_error` says why).
    pub status: String,
    /// The transaction that slashed the bond, once on chain.
    pub slashed_tx: Option<String>,
    /// Why the chain refused the proof.
    pub slash_error: Option<String>,
    /// The envelope accepted first: a JSON object, or the text as received when it is not JSON.
    pub first_envelope: serde_json::Value,
    /// The second envelope, likewise.
    pub second_envelope: serde_json::Value,
}

/// A proof's state on chain: `pending`, `slashed` or `refused`.
pub fn status(e: &Equivocation) -> &'static str {
    match (&e.slashed_tx, &e.slash_error) {
        (Some(_), _) => "slashed",
        (None, Some(_)) => "refused",
        (None, None) => "pending",
    }
}

/// A stored envelope as JSON; the text itself when it does not parse (one bad row never fails a
/// list).
pub fn envelope_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// A stored proof as the API shows it.
pub fn view(e: &Equivocation) -> EquivocationView {
    EquivocationView {
        evidence: e.evidence.clone(),
        gateway: e.gateway.0,
        owner: e.owner.0,
        seq: e.seq,
        detected_at: e.detected_at.to_rfc3339(),
        detected_at_ms: e.detected_at.0,
        status: status(e).to_owned(),
        slashed_tx: e.slashed_tx.clone(),
        slash_error: e.slash_error.clone(),
        first_envelope: envelope_json(&e.first),
        second_envelope: envelope_json(&e.second),
    }
}

/// The proofs `who` may see, newest first (at most `limit`): every one for the grid operator and
/// administrators, those against their own gateways for a homeowner; other roles are refused.
pub async fn visible_to(state: &AppState, who: &Principal, limit: u32) -> Result<Vec<Equivocation>, ApiError> {
    who.require_scope(Scope::Read)?;
    let owner = match who.role {
        Role::Operator | Role::Admin => None,
        Role::Homeowner => Some(who.participant),
        Role::Installer | Role::Trader => {
            return Err(ApiError::forbidden(format!(
                "the {} role may not see proofs of equivocation: the grid operator sees them, and each home its own",
                who.role.as_str()
            )));
        }
    };
    Ok(evidence::list(state.db()?, owner, limit).await?)
}

/// Proofs that a gateway signed two different envelopes with one sequence number, newest first,
/// with their slashing on chain. The grid operator and administrators see all; a homeowner those
/// against their own gateways.
#[utoipa::path(get, path = "/api/v1/equivocations", tag = "slashing", security(("api_key" = [])),
    params(EquivocationsQuery),
    responses(
        (status = 200, description = "Proofs, newest first", body = Vec<EquivocationView>),
        (status = 400, description = "Bad limit", body = crate::error::ErrorBody),
        (status = 401, description = "No credentials", body = crate::error::ErrorBody),
        (status = 403, description = "Neither the grid operator, an administrator nor a homeowner", body = crate::error::ErrorBody),
    ))]
pub async fn equivocations(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<EquivocationsQuery>,
) -> Result<ApiJson<Vec<EquivocationView>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to {MAX_LIMIT}, got {limit}"),
        ));
    }
    let rows = visible_to(&state, &who, limit).await?;
    Ok(ApiJson(rows.iter().map(view).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_that_do_not_parse_stay_text() {
        assert_eq!(envelope_json(r#"{"v":1,"seq":7}"#)["seq"], 7);
        assert_eq!(envelope_json("{not json"), serde_json::json!("{not json"));
        assert_eq!(envelope_json(""), serde_json::json!(""));
    }
}
