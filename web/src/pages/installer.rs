//! The installer's pages: their gateways — online or not, last reading, devices and their
//! problems, last remote check — with the form to commission one (`GET /installer`, `POST
//! /installer/gateways`), and remote checks (`POST /installer/gateways/{id}/check`, `GET
//! /installer/gateways/{id}/checks/{check}`).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gridshare_domain::ParticipantId;
use gridshare_storage::{gateways, participants};
use gridshare_ui::Page;
use gridshare_ui::pages::{CheckData, CheckRow, DeviceRow, GatewayRow, InstallerData};
use serde::Deserialize;

use super::{Installer, PageQuery, SignedIn, back_with, error_page, html, session_of, session_or_error};
use crate::auth::Principal;
use crate::{AppState, readings, remote};

/// `GET /installer`: the installer's gateways — online or not, last reading, devices and their
/// problems — and the form to commission one.
pub async fn installer(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Installer>,
    Query(q): Query<PageQuery>,
) -> Response {
    let flash = q.flash();
    let session = match session_or_error(&state, &who).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match installer_gateways(&state, &who).await {
        Ok(gateways) => html(
            &state,
            StatusCode::OK,
            &Page::Installer(Box::new(InstallerData {
                session,
                gateways,
                flash,
            })),
        ),
        Err(e) => super::not_loaded(&state, Some(session), "Your gateways could not be loaded", &e),
    }
}

async fn installer_gateways(state: &AppState, who: &Principal) -> Result<Vec<GatewayRow>, crate::ApiError> {
    let db = state.db()?;
    let now = state.clock.now();
    let mine = readings::visible_gateways(state, who).await?;
    let mut rows = Vec::with_capacity(mine.len());
    for g in mine {
        let latest = gridshare_storage::readings::latest_per_device(db, gridshare_domain::GatewayId(g.id), now).await?;
        let last = latest.iter().map(|r| r.sample.at.0).max();
        let word = |v: String| v.replace('_', " ");
        rows.push(GatewayRow {
            bond: g.bond.clone(),
            id: g.id,
            owner: g.owner,
            node: g.feeder_node,
            last_reading_s: last.map(|t| (now.0 - t) / 1_000),
            devices: latest
                .iter()
                .map(|r| DeviceRow {
                    name: r.sample.device.to_string(),
                    kind: word(
                        serde_json::to_value(r.sample.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    ),
                    status: word(
                        serde_json::to_value(r.sample.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    ),
                    quality: serde_json::to_value(r.sample.quality)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    power_w: r.sample.power_w.map(|w| w.0),
                })
                .collect(),
            last_check: gridshare_storage::checks::latest(db, gridshare_domain::GatewayId(g.id))
                .await?
                .map(|c| {
                    let c = remote::CheckView::of(c, now);
                    let how = match (&c.result, c.state.as_str()) {
                        (Some(r), _) if r.devices.iter().all(|d| d.ok()) => "all read".to_owned(),
                        (Some(r), _) => format!("{} devices with errors", r.devices.iter().filter(|d| !d.ok()).count()),
                        (None, "no_answer") => "no answer".to_owned(),
                        _ => "waiting".to_owned(),
                    };
                    (c.id, how)
                }),
        });
    }
    Ok(rows)
}

/// `POST /installer/gateways/{id}/check`: asks the gateway for a remote check and shows its page.
pub async fn check(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    SignedIn { who, .. }: SignedIn<Installer>,
) -> Response {
    match remote::start_check(&state, &who, id).await {
        Ok(c) => Redirect::to(&format!("/installer/gateways/{id}/checks/{}", c.id)).into_response(),
        Err(e) => back_with(
            "/installer",
            false,
            &format!("No check of gateway {id}: {}.", e.message),
            None,
        ),
    }
}

/// `GET /installer/gateways/{id}/checks/{check}`: a remote check, waiting or with what the
/// gateway read.
pub async fn check_page(
    State(state): State<AppState>,
    Path((id, check)): Path<(u64, u64)>,
    SignedIn { who, .. }: SignedIn<Installer>,
) -> Response {
    let found = remote::check_of(&state, &who, id, check).await;
    let session = session_of(&state, &who).await;
    match (found, session) {
        (Ok(c), Some(session)) => html(
            &state,
            StatusCode::OK,
            &Page::Check(Box::new(CheckData {
                session,
                check: CheckRow {
                    id: c.id,
                    gateway: c.gateway,
                    requested_at: c.requested_at,
                    state: c.state,
                    answered_at: c.answered_at,
                    result: c.result,
                },
            })),
        ),
        (Ok(_), None) => error_page(
            &state,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "the account could not be read",
        ),
        (Err(e), session) => error_page(
            &state,
            session,
            e.status,
            "This check could not be shown",
            &format!("{} Go back to your gateways and run a check.", e.message),
        ),
    }
}

/// The commissioning form.
#[derive(Debug, Deserialize)]
pub struct CommissionForm {
    id: String,
    owner: String,
    public_key: String,
    #[serde(default)]
    node: String,
}

/// `POST /installer/gateways`: registers a gateway's key for a home, with this installer.
pub async fn commission(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Installer>,
    Form(f): Form<CommissionForm>,
) -> Response {
    let back = |ok: bool, text: String| back_with("/installer", ok, &text, None);
    let Ok(db) = state.db() else {
        return back(false, "The database is not available.".into());
    };
    let (Ok(id), Ok(owner)) = (f.id.trim().parse::<u64>(), f.owner.trim().parse::<u64>()) else {
        return back(
            false,
            "Not commissioned: the gateway id and the home are numbers.".into(),
        );
    };
    let key = match gridshare_domain::envelope::GatewayPublicKey::from_hex(f.public_key.trim()) {
        Ok(k) => k,
        Err(e) => return back(false, format!("Not commissioned: the public key: {e}.")),
    };
    let home = match participants::get(db, ParticipantId(owner)).await {
        Ok(p) if p.role == "homeowner" => p,
        Ok(_) => return back(false, format!("Not commissioned: participant {owner} is not a home.")),
        Err(_) => return back(false, format!("Not commissioned: there is no home {owner}.")),
    };
    if who.role != crate::auth::Role::Admin {
        match gridshare_storage::installers::may_serve(db, who.participant, ParticipantId(owner)).await {
            Ok(true) => {}
            Ok(false) => {
                return back(
                    false,
                    format!(
                        "Not commissioned: home {owner} has not chosen you as its installer (its owner or an administrator does that)."
                    ),
                );
            }
            Err(_) => return back(false, "The database is not available.".into()),
        }
    }
    let node = match (f.node.trim(), home.feeder_node) {
        ("", Some(n)) => n,
        ("", None) => {
            return back(
                false,
                format!("Not commissioned: home {owner} has no feeder node; give one."),
            );
        }
        (n, _) => match n.parse() {
            Ok(n) => n,
            Err(_) => return back(false, "Not commissioned: the feeder node is a number.".into()),
        },
    };
    let g = gateways::Gateway {
        id: gridshare_domain::GatewayId(id),
        owner: ParticipantId(owner),
        installer: Some(who.participant),
        public_key: key,
        feeder_node: gridshare_domain::NodeId(node),
        window: Default::default(),
        revoked_at: None,
    };
    match gateways::register(db, &g, state.clock.now()).await {
        Ok(()) => back(
            true,
            format!("Gateway {id} commissioned for home {owner} at node {node}."),
        ),
        Err(gridshare_storage::StorageError::Duplicate { .. }) => back(
            false,
            format!("Not commissioned: gateway {id} or its key is registered already."),
        ),
        Err(e) => back(false, format!("Not commissioned: {e}.")),
    }
}
