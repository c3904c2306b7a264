//! What the market sends down to a home's gateways beyond demand response: the homeowner's
//! trading preferences (kept here, versioned, and confirmed by each gateway) and the installer's
//! remote check (asked here, answered by the gateway with what it read).

use axum::extract::State;
use axum::http::StatusCode;
use gridshare_domain::wire::{CheckRequest, CheckResult, TradingPreferences};
use gridshare_domain::{GatewayId, MicroPerKwh, ParticipantId};
use gridshare_storage::{checks, gateways, preferences};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use gridshare_market::Downlink;

use crate::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiJson, ApiPath as Path};

/// The trading preferences a homeowner sets.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// Never sell below, µ/kWh.
    pub min_sell_price: i64,
    /// Never buy above, µ/kWh.
    pub max_buy_price: i64,
    /// Battery state of charge kept for the home, % (0–100).
    pub battery_reserve_percent: u8,
}

/// One gateway's answer to the home's preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayAnswer {
    /// The gateway.
    pub gateway: u64,
    /// `applied` (the current version is in force), `refused` (see `reason`), or `pending` (no
    /// answer to the current version yet: the gateway is offline or has not answered).
    pub state: String,
    /// The version it last answered.
    pub version: Option<u64>,
    /// Why it refused.
    pub reason: Option<String>,
    /// When it answered (ms).
    pub at: Option<i64>,
}

/// A home's trading preferences and whether its gateways have taken them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreferencesView {
    /// The home.
    pub participant: u64,
    /// Set on the dashboard, if ever (else the gateways trade within their installer's settings).
    pub preferences: Option<StoredPreferences>,
    /// The home's gateways.
    pub gateways: Vec<GatewayAnswer>,
}

/// Preferences as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoredPreferences {
    /// Grows with every change.
    pub version: u64,
    /// Never sell below, µ/kWh.
    pub min_sell_price: i64,
    /// Never buy above, µ/kWh.
    pub max_buy_price: i64,
    /// Battery state of charge kept for the home, %.
    pub battery_reserve_percent: u8,
    /// When they were last changed (ms).
    pub updated_at: i64,
}

/// Only a homeowner has a home to set preferences for (an admin has none).
fn require_home(who: &Principal) -> Result<(), ApiError> {
    if who.role == Role::Homeowner {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "only a homeowner has trading preferences, not the {} role",
            who.role.as_str()
        )))
    }
}

/// A home's preferences with each of its gateways' answers.
pub async fn view(state: &AppState, home: ParticipantId) -> Result<PreferencesView, ApiError> {
    let mine: Vec<GatewayId> = gateways::active(state.db()?)
        .await?
        .into_iter()
        .filter(|g| g.owner == home)
        .map(|g| g.id)
        .collect();
    view_of(state, home, &mine).await
}

/// [`view`] for a home whose active gateways the caller has read already.
pub async fn view_of(state: &AppState, home: ParticipantId, mine: &[GatewayId]) -> Result<PreferencesView, ApiError> {
    let db = state.db()?;
    let stored = preferences::get(db, home).await?;
    let answers = preferences::answers(db, mine).await?;
    let current = stored.as_ref().map(|(p, _)| p.version);
    let gateways = mine
        .iter()
        .map(|&g| {
            let answer = answers.iter().find(|(id, _, _)| *id == g);
            let state = match (answer, current) {
                (Some((_, a, _)), Some(v)) if a.version == v && a.applied => "applied",
                (Some((_, a, _)), Some(v)) if a.version == v => "refused",
                _ => "pending",
            };
            GatewayAnswer {
                gateway: g.0,
                state: state.into(),
                version: answer.map(|(_, a, _)| a.version),
                reason: answer.and_then(|(_, a, _)| a.reason.clone()),
                at: answer.map(|(_, _, at)| at.0),
            }
        })
        .collect();
    Ok(PreferencesView {
        participant: home.0,
        preferences: stored.map(|(p, at)| StoredPreferences {
            version: p.version,
            min_sell_price: p.min_sell_price.0,
            max_buy_price: p.max_buy_price.0,
            battery_reserve_percent: p.battery_reserve_percent,
            updated_at: at.0,
        }),
        gateways,
    })
}

/// Checks `body` (the domain's rules, then the market's price range), stores it as the home's
/// next version and sends it to the home's gateways.
pub async fn set(state: &AppState, home: ParticipantId, body: &PreferencesBody) -> Result<PreferencesView, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_preferences", m);
    let draft = TradingPreferences {
        version: 0,
        min_sell_price: MicroPerKwh(body.min_sell_price),
        max_buy_price: MicroPerKwh(body.max_buy_price),
        battery_reserve_percent: body.battery_reserve_percent,
    };
    draft.validate().map_err(|e| invalid(e.to_string()))?;
    if let Some((lo, hi)) = state.price_limits {
        for (field, v) in [
            ("min_sell_price", draft.min_sell_price),
            ("max_buy_price", draft.max_buy_price),
        ] {
            if v < lo || v > hi {
                return Err(invalid(format!(
                    "{field}: the market trades between {} and {} µ/kWh",
                    lo.0, hi.0
                )));
            }
        }
    }
    let db = state.db()?;
    let saved = preferences::save(db, home, &draft, state.clock.now()).await?;
    let view = view(state, home).await?;
    let gateways: Vec<GatewayId> = view.gateways.iter().map(|g| GatewayId(g.gateway)).collect();
    if !gateways.is_empty()
        && !state.downlink.send(Downlink::Preferences {
            gateways,
            preferences: saved,
        })
    {
        tracing::warn!(home = %home, "no MQTT side: preferences stored, not sent to the gateways");
    }
    Ok(view)
}

/// My home's trading preferences and whether its gateways have taken them.
#[utoipa::path(get, path = "/api/v1/preferences", tag = "homes", security(("api_key" = [])),
    responses(
        (status = 200, description = "Preferences", body = PreferencesView),
        (status = 403, description = "Homeowners only", body = crate::error::ErrorBody),
    ))]
pub async fn get_preferences(
    State(state): State<AppState>,
    who: Principal,
) -> Result<ApiJson<PreferencesView>, ApiError> {
    who.require_scope(Scope::Read)?;
    require_home(&who)?;
    Ok(ApiJson(view(&state, who.participant).await?))
}

/// Set my home's trading preferences: stored as a new version and sent to its gateways, which
/// answer whether they took them (see `gateways`).
#[utoipa::path(put, path = "/api/v1/preferences", tag = "homes", security(("api_key" = [])), request_body = PreferencesBody,
    responses(
        (status = 200, description = "Stored and sent", body = PreferencesView),
        (status = 403, description = "Homeowners with the trade scope only", body = crate::error::ErrorBody),
        (status = 422, description = "A price or the reserve out of range, or the minimum sell price above the maximum buy price", body = crate::error::ErrorBody),
    ))]
pub async fn put_preferences(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(body): ApiJson<PreferencesBody>,
) -> Result<ApiJson<PreferencesView>, ApiError> {
    who.require_scope(Scope::Trade)?;
    require_home(&who)?;
    Ok(ApiJson(set(&state, who.participant, &body).await?))
}

/// A remote check of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckView {
    /// Its number.
    pub id: u64,
    /// The gateway.
    pub gateway: u64,
    /// When it was asked (ms).
    pub requested_at: i64,
    /// `waiting` for the gateway, `answered`, or `no_answer` (none within a minute: the gateway
    /// is offline or could not answer).
    pub state: String,
    /// When the answer came (ms).
    pub answered_at: Option<i64>,
    /// What the gateway read.
    #[schema(value_type = Option<Object>)]
    pub result: Option<CheckResult>,
}

/// How long a check waits for its answer before it is shown as unanswered.
pub const CHECK_TIMEOUT_MS: i64 = 60_000;

impl CheckView {
    /// The view of a stored check at `now`.
    pub fn of(c: checks::Check, now: gridshare_domain::Timestamp) -> Self {
        let state = match (&c.result, now.0 - c.requested_at.0 > CHECK_TIMEOUT_MS) {
            (Some(_), _) => "answered",
            (None, true) => "no_answer",
            (None, false) => "waiting",
        };
        Self {
            id: c.id,
            gateway: c.gateway.0,
            requested_at: c.requested_at.0,
            state: state.into(),
            answered_at: c.answered_at.map(|t| t.0),
            result: c.result,
        }
    }
}

/// The gateway, if `who` may check it: its installer, or an admin.
async fn checkable(state: &AppState, who: &Principal, id: u64) -> Result<gateways::Gateway, ApiError> {
    who.require_role(&[Role::Installer])?;
    let g = gateways::active(state.db()?)
        .await?
        .into_iter()
        .find(|g| g.id.0 == id)
        .ok_or_else(|| ApiError::not_found(format!("no active gateway {id}")))?;
    if who.role != Role::Admin && g.installer != Some(who.participant) {
        return Err(ApiError::forbidden(format!(
            "gateway {id} was commissioned by another installer"
        )));
    }
    Ok(g)
}

/// Asks gateway `id` for a check on behalf of `who`.
pub async fn start_check(state: &AppState, who: &Principal, id: u64) -> Result<CheckView, ApiError> {
    let g = checkable(state, who, id).await?;
    if !state.downlink.configured() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_mqtt",
            "no MQTT side: gateways cannot be reached",
        ));
    }
    let db = state.db()?;
    let at = state.clock.now();
    let check_id = checks::request(db, g.id, who.participant, at).await?;
    state.downlink.send(Downlink::Check {
        gateway: g.id,
        request: CheckRequest { check_id },
    });
    let c = checks::get(db, check_id)
        .await?
        .ok_or_else(|| ApiError::internal("a check just stored is gone"))?;
    Ok(CheckView::of(c, at))
}

/// Run a remote check: the gateway reads every point of every device and answers with what it
/// read. Poll the check's URL for the answer.
#[utoipa::path(post, path = "/api/v1/gateways/{id}/checks", tag = "readings", security(("api_key" = [])),
    params(("id" = u64, Path, description = "Gateway")),
    responses(
        (status = 202, description = "Asked; the answer follows", body = CheckView),
        (status = 403, description = "Its installer only", body = crate::error::ErrorBody),
        (status = 404, description = "No such gateway", body = crate::error::ErrorBody),
    ))]
pub async fn create_check(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<u64>,
) -> Result<(StatusCode, ApiJson<CheckView>), ApiError> {
    who.require_scope(Scope::Read)?;
    Ok((StatusCode::ACCEPTED, ApiJson(start_check(&state, &who, id).await?)))
}

/// A remote check and, once the gateway has answered, what it read.
#[utoipa::path(get, path = "/api/v1/gateways/{id}/checks/{check}", tag = "readings", security(("api_key" = [])),
    params(("id" = u64, Path, description = "Gateway"), ("check" = u64, Path, description = "Check")),
    responses(
        (status = 200, description = "The check", body = CheckView),
        (status = 403, description = "Its installer only", body = crate::error::ErrorBody),
        (status = 404, description = "No such gateway or check", body = crate::error::ErrorBody),
    ))]
pub async fn get_check(
    State(state): State<AppState>,
    who: Principal,
    Path((id, check)): Path<(u64, u64)>,
) -> Result<ApiJson<CheckView>, ApiError> {
    Ok(ApiJson(check_of(&state, &who, id, check).await?))
}

/// Gateway `id`'s remote check `check`, if `who` may see it (its installer, or an admin).
pub async fn check_of(state: &AppState, who: &Principal, id: u64, check: u64) -> Result<CheckView, ApiError> {
    who.require_scope(Scope::Read)?;
    let g = checkable(state, who, id).await?;
    let c = checks::get(state.db()?, check)
        .await?
        .filter(|c| c.gateway == g.id)
        .ok_or_else(|| ApiError::not_found(format!("gateway {id} has no check {check}")))?;
    Ok(CheckView::of(c, state.clock.now()))
}
