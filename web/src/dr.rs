//! The grid operator's demand-response API, after OpenADR 3's concepts: programs; events with
//! intervals and signals (export/import limit, battery setpoint, EV current limit, price, load
//! shed); targets (the whole feeder, feeder nodes, or a list of sites); and the reports gateways
//! send back. Creating an event resolves its targets to gateways (the answer previews them) and
//! hands it to the MQTT side, which sends it to each targeted gateway.
//!
//! Only operators and admins, with the `demand_response` scope, create or cancel events; anyone
//! with `read` may see programs and events.

use axum::extract::State;
use axum::http::StatusCode;
use gridshare_domain::wire::{DrEvent, DrInterval, DrReport};
use gridshare_domain::{EventId, GatewayId, ProgramId, Timestamp};
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::{StorageError, dr};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use gridshare_market::dr::{Dispatch, Targets, Verified, verify};

use crate::AppState;
use crate::auth::{Principal, Role, Scope};
use crate::error::{ApiError, ApiJson, ApiPath as Path};

/// A reward, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RewardView {
    /// `renewable_export` or `demand_response`.
    pub kind: String,
    /// Amount, reward-token µ.
    pub amount: i64,
    /// The event it is for.
    pub event_id: Option<u64>,
    /// What it is for.
    pub reference: String,
    /// Credited at (RFC 3339).
    pub credited_at: String,
    /// The mint transaction, once minted.
    pub minted_tx: Option<String>,
}

/// My rewards, newest first.
#[utoipa::path(get, path = "/api/v1/rewards", tag = "demand response", security(("api_key" = [])),
    responses((status = 200, description = "Rewards", body = Vec<RewardView>)))]
pub async fn my_rewards(State(state): State<AppState>, who: Principal) -> Result<ApiJson<Vec<RewardView>>, ApiError> {
    Ok(ApiJson(rewards_of(&state, &who).await?))
}

/// `who`'s rewards, newest first.
pub async fn rewards_of(state: &AppState, who: &Principal) -> Result<Vec<RewardView>, ApiError> {
    who.require_scope(Scope::Read)?;
    let rows = gridshare_storage::rewards::of_participant(state.db()?, who.participant, 500).await?;
    Ok(rows
        .into_iter()
        .map(|r| RewardView {
            kind: r.kind,
            amount: r.amount,
            event_id: r.event.map(|e| e.0),
            reference: r.reference,
            credited_at: Timestamp(r.created_at).to_rfc3339(),
            minted_tx: r.minted_tx,
        })
        .collect())
}

fn net(state: &AppState) -> Option<&[gridshare_matching_engine::NodeConfig]> {
    state.network.as_deref().map(Vec::as_slice)
}

/// A program to make.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProgram {
    /// Name (unique, 1–100 characters).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// A program.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgramView {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
}

fn require_operator(who: &Principal) -> Result<(), ApiError> {
    who.require_role(&[Role::Operator])?;
    who.require_scope(Scope::DemandResponse)
}

/// Make a program.
#[utoipa::path(post, path = "/api/v1/dr/programs", tag = "demand response", security(("api_key" = [])), request_body = NewProgram,
    responses(
        (status = 201, description = "Made", body = ProgramView),
        (status = 403, description = "Operators only", body = crate::error::ErrorBody),
        (status = 409, description = "The name is taken", body = crate::error::ErrorBody),
    ))]
pub async fn create_program(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(p): ApiJson<NewProgram>,
) -> Result<(StatusCode, ApiJson<ProgramView>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(make_program(&state, &who, p).await?)))
}

/// Makes a program (operators with the `demand_response` scope).
pub async fn make_program(state: &AppState, who: &Principal, p: NewProgram) -> Result<ProgramView, ApiError> {
    require_operator(who)?;
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "name: 1 to 100 characters",
        ));
    }
    match dr::create_program(state.db()?, name, &p.description, state.clock.now()).await {
        Ok(id) => Ok(ProgramView {
            id: id.0,
            name: name.to_owned(),
            description: p.description,
        }),
        Err(StorageError::Duplicate { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate",
            format!("a program named {name:?} exists"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Every program.
#[utoipa::path(get, path = "/api/v1/dr/programs", tag = "demand response", security(("api_key" = [])),
    responses((status = 200, description = "Programs", body = Vec<ProgramView>)))]
pub async fn programs(State(state): State<AppState>, who: Principal) -> Result<ApiJson<Vec<ProgramView>>, ApiError> {
    Ok(ApiJson(list_programs(&state, &who).await?))
}

/// Every program, as [`programs`] shows them.
pub async fn list_programs(state: &AppState, who: &Principal) -> Result<Vec<ProgramView>, ApiError> {
    who.require_scope(Scope::Read)?;
    let all = dr::programs(state.db()?).await?;
    Ok(all
        .into_iter()
        .map(|p| ProgramView {
            id: p.id.0,
            name: p.name,
            description: p.description,
        })
        .collect())
}

/// An event to make.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// Its program.
    pub program_id: u64,
    /// Priority (higher wins where events overlap).
    #[serde(default)]
    pub priority: u32,
    /// Who it is for.
    pub targets: Targets,
    /// Intervals in time order, each with its signals (`{"id":0,"start":1796144400000,"duration_minutes":15,
    /// "signals":[{"signal":"load_shed","w":2000}]}`; `start` in ms since the epoch, UTC).
    #[schema(value_type = Vec<Object>)]
    pub intervals: Vec<DrInterval>,
}

/// A gateway's report for one interval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    /// The gateway.
    pub gateway: u64,
    /// Interval number.
    pub interval_id: u32,
    /// Its baseline, W.
    pub baseline_w: Option<i64>,
    /// Measured, W.
    pub measured_w: i64,
    /// Whether it confirmed the command by read-back.
    pub confirmed: bool,
    /// A note.
    pub note: Option<String>,
}

/// An event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    /// Id.
    pub id: u64,
    /// Program.
    pub program_id: u64,
    /// Priority.
    pub priority: u32,
    /// `scheduled`, `active`, `completed` or `cancelled`.
    pub status: String,
    /// First interval start (RFC 3339).
    pub starts_at: String,
    /// Last interval end (RFC 3339).
    pub ends_at: String,
    /// Who it is for.
    pub targets: Targets,
    /// The gateways that targets resolve to now.
    pub gateways: Vec<u64>,
    /// Intervals and signals.
    #[schema(value_type = Vec<Object>)]
    pub intervals: Vec<DrInterval>,
    /// Reports so far, as the gateways sent them.
    pub reports: Vec<ReportView>,
    /// The response verified from telemetry, for the intervals that have ended.
    pub verified: Vec<Verified>,
    /// Whether it was handed to the gateways (false without an MQTT broker).
    pub dispatched: bool,
}

fn view(
    e: &dr::Event,
    all: &[Gateway],
    network: Option<&[gridshare_matching_engine::NodeConfig]>,
    reports: Vec<(GatewayId, DrReport)>,
    verified: Vec<Verified>,
    dispatched: bool,
) -> Result<EventView, ApiError> {
    let corrupt = |what: &str, err: serde_json::Error| {
        tracing::error!(event = e.id.0, what, error = %err, "stored event");
        ApiError::internal("a stored event is damaged; an operator has been told")
    };
    let targets: Targets = serde_json::from_str(&e.targets).map_err(|err| corrupt("targets", err))?;
    let intervals: Vec<DrInterval> = serde_json::from_str(&e.intervals).map_err(|err| corrupt("intervals", err))?;
    Ok(EventView {
        id: e.id.0,
        program_id: e.program.0,
        priority: e.priority,
        status: e.status.clone(),
        starts_at: Timestamp(e.starts_at).to_rfc3339(),
        ends_at: Timestamp(e.ends_at).to_rfc3339(),
        gateways: targets.resolve(all, network).iter().map(|g| g.0).collect(),
        targets,
        intervals,
        reports: reports
            .into_iter()
            .map(|(g, r)| ReportView {
                gateway: g.0,
                interval_id: r.interval_id,
                baseline_w: r.baseline_w.map(|w| w.0),
                measured_w: r.measured_w.0,
                confirmed: r.confirmed,
                note: r.note,
            })
            .collect(),
        verified,
        dispatched,
    })
}

/// What `who` may see of an event: operators and administrators everything; anyone else only
/// the figures of their own gateways (owned, or commissioned by them as installer), never
/// another home's baseline, measurement or reward, nor which other homes were called.
fn as_seen_by(mut v: EventView, who: &Principal, all: &[Gateway]) -> EventView {
    if matches!(who.role, Role::Operator | Role::Admin) {
        return v;
    }
    let mine: std::collections::HashSet<u64> = all
        .iter()
        .filter(|g| g.owner == who.participant || g.installer == Some(who.participant))
        .map(|g| g.id.0)
        .collect();
    v.gateways.retain(|g| mine.contains(g));
    v.reports.retain(|r| mine.contains(&r.gateway));
    v.verified.retain(|r| mine.contains(&r.gateway));
    if let Targets::Sites { gateways } = &mut v.targets {
        gateways.retain(|g| mine.contains(g));
    }
    v
}

fn dispatch(state: &AppState, d: Dispatch) -> bool {
    state.downlink.send(gridshare_market::Downlink::Dr(d))
}

/// Make an event and send it to its gateways.
#[utoipa::path(post, path = "/api/v1/dr/events", tag = "demand response", security(("api_key" = [])), request_body = NewEvent,
    responses(
        (status = 201, description = "Made; `gateways` lists who it went to", body = EventView),
        (status = 403, description = "Operators only", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid intervals, signals or program", body = crate::error::ErrorBody),
    ))]
pub async fn create_event(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<NewEvent>,
) -> Result<(StatusCode, ApiJson<EventView>), ApiError> {
    Ok((StatusCode::CREATED, ApiJson(call_event(&state, &who, req).await?)))
}

/// Makes an event and hands it to the MQTT side for its gateways (operators with the
/// `demand_response` scope): for the REST handler and the operator's page.
pub async fn call_event(state: &AppState, who: &Principal, req: NewEvent) -> Result<EventView, ApiError> {
    require_operator(who)?;
    let db = state.db()?;
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", m);
    let draft = DrEvent {
        event_id: EventId(0),
        program_id: ProgramId(req.program_id),
        priority: req.priority,
        intervals: req.intervals.clone(),
        cancelled: false,
    };
    draft.validate().map_err(|e| invalid(e.to_string()))?;
    if !dr::programs(db).await?.iter().any(|p| p.id.0 == req.program_id) {
        return Err(invalid(format!("program_id: no program {}", req.program_id)));
    }
    let (Some(first), Some(last)) = (req.intervals.first(), req.intervals.last()) else {
        return Err(invalid("intervals: at least one".into()));
    };
    let all = gateways::active(db).await?;
    let targeted = req.targets.resolve(&all, net(state));
    if targeted.is_empty() {
        return Err(invalid("targets: they match no gateway".into()));
    }
    let targets_json = serde_json::to_string(&req.targets).unwrap_or_default();
    let intervals_json = serde_json::to_string(&req.intervals).unwrap_or_default();
    let id = dr::create_event(
        db,
        &dr::NewEvent {
            program: ProgramId(req.program_id),
            priority: req.priority,
            targets: &targets_json,
            intervals: &intervals_json,
            starts_at: first.start,
            ends_at: last.end(),
            created_by: who.participant,
        },
        state.clock.now(),
    )
    .await?;
    let sent = dispatch(
        state,
        Dispatch {
            gateways: targeted,
            event: DrEvent { event_id: id, ..draft },
        },
    );
    let stored = dr::event(db, id)
        .await?
        .ok_or_else(|| ApiError::internal("the event vanished"))?;
    view(&stored, &all, net(state), Vec::new(), Vec::new(), sent)
}

/// Events, newest first. Operators see every gateway's figures; anyone else their own only.
#[utoipa::path(get, path = "/api/v1/dr/events", tag = "demand response", security(("api_key" = [])),
    responses((status = 200, description = "Events", body = Vec<EventView>)))]
pub async fn events(State(state): State<AppState>, who: Principal) -> Result<ApiJson<Vec<EventView>>, ApiError> {
    Ok(ApiJson(list_events(&state, &who).await?))
}

/// The latest events with their reports and verified response, newest first.
pub async fn list_events(state: &AppState, who: &Principal) -> Result<Vec<EventView>, ApiError> {
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let all = gateways::active(db).await?;
    let mut out = Vec::new();
    for e in dr::events(db, 200).await? {
        let reports = dr::reports(db, e.id).await?;
        let verified = verify(db, &e, &all, net(state), state.clock.now()).await?;
        let v = view(&e, &all, net(state), reports, verified, state.downlink.configured())?;
        out.push(as_seen_by(v, who, &all));
    }
    Ok(out)
}

/// One event with its reports (operators: every gateway's; anyone else: their own).
#[utoipa::path(get, path = "/api/v1/dr/events/{id}", tag = "demand response", security(("api_key" = [])),
    params(("id" = u64, Path, description = "Event id")),
    responses((status = 200, description = "The event", body = EventView), (status = 404, description = "No such event", body = crate::error::ErrorBody)))]
pub async fn event(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<u64>,
) -> Result<ApiJson<EventView>, ApiError> {
    Ok(ApiJson(get_event(&state, &who, EventId(id)).await?))
}

/// One event with its reports and verified response.
pub async fn get_event(state: &AppState, who: &Principal, id: EventId) -> Result<EventView, ApiError> {
    who.require_scope(Scope::Read)?;
    let db = state.db()?;
    let e = dr::event(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event {}", id.0)))?;
    let all = gateways::active(db).await?;
    let reports = dr::reports(db, e.id).await?;
    let verified = verify(db, &e, &all, net(state), state.clock.now()).await?;
    let v = view(&e, &all, net(state), reports, verified, state.downlink.configured())?;
    Ok(as_seen_by(v, who, &all))
}

/// Cancel an event (its gateways are told).
#[utoipa::path(delete, path = "/api/v1/dr/events/{id}", tag = "demand response", security(("api_key" = [])),
    params(("id" = u64, Path, description = "Event id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 403, description = "Operators only", body = crate::error::ErrorBody),
        (status = 404, description = "No such event still to cancel", body = crate::error::ErrorBody),
    ))]
pub async fn cancel_event(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    require_operator(&who)?;
    let db = state.db()?;
    let e = dr::event(db, EventId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    match dr::cancel_event(db, e.id, state.clock.now()).await {
        Ok(()) => {}
        Err(StorageError::NotFound { .. }) => {
            return Err(ApiError::not_found(format!("event {id} is {} already", e.status)));
        }
        Err(err) => return Err(err.into()),
    }
    let all = gateways::active(db).await?;
    let targets: Targets = serde_json::from_str(&e.targets).unwrap_or(Targets::Sites { gateways: Vec::new() });
    dispatch(
        &state,
        Dispatch {
            gateways: targets.resolve(&all, net(&state)),
            event: DrEvent {
                event_id: e.id,
                program_id: e.program,
                priority: e.priority,
                intervals: Vec::new(),
                cancelled: true,
            },
        },
    );
    Ok(StatusCode::NO_CONTENT)
}
