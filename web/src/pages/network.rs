//! The network page (`GET /network`, public: the reward epochs anyone may audit, and the gateways
//! slashed for equivocation) and the admin's page (`GET /admin`: participants, which installer
//! serves which home, gateways, and the network, with the slashed gateways' envelopes).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use gridshare_domain::{Micro, Timestamp};
use gridshare_market::epoch::Report;
use gridshare_market::epoch::collect::account_of;
use gridshare_storage::{epochs, evidence, gateways, installers, participants};
use gridshare_ui::Page;
use gridshare_ui::pages::{
    AdminData, AdminGatewayRow, EpochRow, GovernedRow, NetworkData, ParameterRow, ParticipantRow, ProposalRow, RulesRow,
};

use super::{Admin, Anyone, MaybeSignedIn, PageQuery, SignedIn, back_with, html, session_of, session_or_error};
use crate::AppState;

/// The network's data: the latest epochs, what was emitted against the cap, the rules, the
/// gateways slashed for equivocation (with their envelopes when `envelopes`: they carry a home's
/// readings and orders, so not on the public page).
async fn network_data(state: &AppState, envelopes: bool) -> Result<NetworkData, crate::ApiError> {
    let db = state.db()?;
    let list = epochs::list(db, 30).await?;
    let latest: Option<Report> = match list.first() {
        Some(e) => epochs::report(db, e.epoch)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()),
        None => None,
    };
    let active = gateways::active(db).await?;
    let bonds = gateways::bond_states(db).await?;
    Ok(NetworkData {
        session: None,
        emitted: Micro(list.first().map_or(0, |e| e.cumulative_total)),
        cap: latest.as_ref().map(|r| Micro(r.params.cap as i64)),
        rules: latest.as_ref().map(|r| RulesRow {
            epoch_minutes: r.params.epoch_ms / 60_000,
            local_renewable_per_kwh: Micro(r.params.local_renewable_per_kwh as i64),
            demand_response_per_kwh: Micro(r.params.demand_response_per_kwh as i64),
            uptime_per_epoch: Micro(r.params.uptime_per_epoch as i64),
            uptime_threshold_ppm: r.params.uptime_threshold_ppm,
            initial_budget: Micro(r.params.initial_budget as i64),
            halving_epochs: r.params.halving_epochs,
        }),
        governed: gridshare_storage::parameters::history(db, 20)
            .await?
            .iter()
            .map(governed_row)
            .collect(),
        proposals: gridshare_storage::parameters::proposals(db, 20)
            .await?
            .iter()
            .map(proposal_row)
            .collect(),
        parameters: gridshare_storage::parameters::latest(db)
            .await?
            .map(|v| parameter_rows(&v))
            .unwrap_or_default(),
        flash: None,
        gateways: active.len() as u64,
        bonds: {
            let state = |s: &str| {
                active
                    .iter()
                    .filter(|g| bonds.get(&g.id).is_some_and(|b| b == s))
                    .count()
            };
            match (state("bonded"), state("unbonded"), state("not_required")) {
                (0, 0, 0) => None,
                (0, 0, _) => Some("no bond required yet".to_owned()),
                (bonded, _, _) => Some(format!("{bonded} bonded")),
            }
        },
        slashed: evidence::list(db, None, 50)
            .await?
            .iter()
            .map(|e| super::slash_row(e, envelopes))
            .collect(),
        epochs: list
            .into_iter()
            .map(|e| EpochRow {
                epoch: e.epoch,
                start: Timestamp(e.start_ms).to_rfc3339(),
                end: Timestamp(e.end_ms).to_rfc3339(),
                budget: Micro(e.budget),
                paid: Micro(e.paid),
                participants: e.participants,
                root: e.root,
                posted_tx: e.posted_tx,
            })
            .collect(),
    })
}

/// A stored version of the governed parameters for the page (a value that does not read is 0).
fn governed_row(v: &gridshare_storage::parameters::ParameterVersion) -> GovernedRow {
    let p: serde_json::Value = serde_json::from_str(&v.params).unwrap_or_default();
    let micro = |k: &str| Micro(p[k].as_str().and_then(|s| s.parse().ok()).unwrap_or(0));
    GovernedRow {
        version: v.version,
        observed_at: v.observed_at.to_rfc3339(),
        fee_per_hop: micro("feePerHop"),
        network_fee: micro("networkFee"),
        import_tariff: micro("importTariff"),
        export_tariff: micro("exportTariff"),
    }
}

/// Every governed parameter of a stored version, in the contract's order, with its bounds.
fn parameter_rows(v: &gridshare_storage::parameters::ParameterVersion) -> Vec<ParameterRow> {
    let params: serde_json::Value = serde_json::from_str(&v.params).unwrap_or_default();
    let bounds: serde_json::Value = serde_json::from_str(&v.bounds).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    gridshare_storage::parameters::NAMES
        .iter()
        .map(|&name| ParameterRow {
            name: name.to_owned(),
            value: text(&params[name]),
            min: text(&bounds[name][0]),
            max: text(&bounds[name][1]),
        })
        .collect()
}

/// A proposal's stored changes in words: `feePerHop = 3000, networkFee = 500`.
pub(super) fn changes_in_words(changes: &str) -> String {
    let changes: Vec<serde_json::Value> = serde_json::from_str(changes).unwrap_or_default();
    changes
        .iter()
        .map(|c| {
            format!(
                "{} = {}",
                c["parameter"].as_str().unwrap_or("?"),
                c["value"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored proposal for the page.
fn proposal_row(p: &gridshare_storage::parameters::Proposal) -> ProposalRow {
    let micro = |v: &str| Micro(v.parse().unwrap_or(0));
    ProposalRow {
        id: p.id,
        description: p.description.clone(),
        changes: changes_in_words(&p.changes),
        state: p.state.clone(),
        votes: (micro(&p.votes.0), micro(&p.votes.1), micro(&p.votes.2)),
        error: p.error.clone(),
    }
}

/// `GET /network`: public; shows who is signed in when someone is (and, to the grid operator and
/// administrators, the form to propose a change).
pub async fn network(
    State(state): State<AppState>,
    MaybeSignedIn(who): MaybeSignedIn,
    Query(q): Query<PageQuery>,
) -> Response {
    let session = match &who {
        Some(w) => session_of(&state, w).await,
        None => None,
    };
    match network_data(&state, false).await {
        Ok(data) => html(
            &state,
            StatusCode::OK,
            &Page::Network(Box::new(NetworkData {
                session,
                flash: q.flash(),
                ..data
            })),
        ),
        Err(e) => super::not_loaded(&state, session, "The network could not be loaded", &e),
    }
}

/// `GET /admin`: participants, installers' homes, gateways, and the network.
pub async fn admin(State(state): State<AppState>, SignedIn { who, .. }: SignedIn<Admin>) -> Response {
    let session = match session_or_error(&state, &who).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match admin_data(&state).await {
        Ok((participants, gateways, network)) => html(
            &state,
            StatusCode::OK,
            &Page::Admin(Box::new(AdminData {
                session,
                participants,
                gateways,
                network,
            })),
        ),
        Err(e) => super::not_loaded(&state, Some(session), "The administration page could not be loaded", &e),
    }
}

async fn admin_data(
    state: &AppState,
) -> Result<(Vec<ParticipantRow>, Vec<AdminGatewayRow>, NetworkData), crate::ApiError> {
    let db = state.db()?;
    let all = participants::list(db).await?;
    let mut served: std::collections::BTreeMap<u64, Vec<u64>> = std::collections::BTreeMap::new();
    for p in all.iter().filter(|p| p.role == "installer") {
        for home in installers::homes_of(db, p.id).await? {
            served.entry(home.0).or_default().push(p.id.0);
        }
    }
    let rows = all
        .iter()
        .map(|p| ParticipantRow {
            id: p.id.0,
            name: p.name.clone(),
            role: p.role.clone(),
            account: account_of(p).unwrap_or_default(),
            node: p.feeder_node,
            installers: served.remove(&p.id.0).unwrap_or_default(),
        })
        .collect();
    let bonds = gateways::bond_states(db).await?;
    let gateways = gateways::all(db)
        .await?
        .into_iter()
        .map(|g| AdminGatewayRow {
            bond: bonds.get(&g.id).cloned(),
            id: g.id.0,
            owner: g.owner.0,
            installer: g.installer.map(|i| i.0),
            node: g.feeder_node.0,
            active: g.revoked_at.is_none(),
        })
        .collect();
    Ok((rows, gateways, network_data(state, true).await?))
}

/// The proposal form: one parameter and its new value.
#[derive(Debug, serde::Deserialize)]
pub struct ProposalForm {
    description: String,
    parameter: String,
    value: String,
}

/// `POST /network/proposals`: the grid operator or an administrator proposes a change (checked as
/// the API checks it: the role, the scope, the bounds); back to the network page with what
/// happened.
pub async fn propose(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Anyone>,
    Form(f): Form<ProposalForm>,
) -> Response {
    let req = crate::governance::NewProposal {
        description: f.description,
        changes: vec![crate::governance::Change {
            parameter: f.parameter.trim().to_owned(),
            value: f.value.trim().to_owned(),
        }],
    };
    match crate::governance::make_proposal(&state, &who, &req).await {
        Ok(p) => back_with(
            "/network",
            true,
            &format!(
                "Proposal {} stored: the service puts it on chain at its next run, and homes vote on it.",
                p.id
            ),
            Some("proposals"),
        ),
        Err(e) => back_with(
            "/network",
            false,
            &format!("Not proposed: {}.", e.message),
            Some("propose"),
        ),
    }
}
