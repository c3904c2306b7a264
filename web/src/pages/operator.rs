//! The grid operator's pages: the feeder's load against its limits with the events and the form
//! to call one, and the gateways slashed for equivocation (`GET /operator`, `POST /operator/events`), and an event's targeted gateways and
//! their response (`GET /operator/events/{id}`, polled as JSON from `…/live` while it runs).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gridshare_domain::W;
use gridshare_domain::wire::{DrInterval, DrSignal};
use gridshare_domain::{EventId, Timestamp};
use gridshare_storage::gateways;
use gridshare_ui::Page;
use gridshare_ui::pages::{EventData, EventRow, FeederRow, Flash, OperatorData, ReportRow};

use super::{Operator, PageQuery, SignedIn, back_with, error_page, html, session_of, session_or_error};
use crate::auth::{Principal, Role};
use crate::{AppState, dr, evidence, feeder};

/// A signal in words.
fn signal_words(intervals: &[gridshare_domain::wire::DrInterval]) -> String {
    use gridshare_domain::wire::DrSignal;
    let Some(s) = intervals.first().and_then(|i| i.signals.first()) else {
        return "nothing".into();
    };
    let kw = |w: i64| gridshare_ui::format::power(gridshare_domain::W(w));
    match *s {
        DrSignal::LoadShed { w } => format!("shed {}", kw(w.0)),
        DrSignal::ImportLimit { w } => format!("import at most {}", kw(w.0)),
        DrSignal::ExportLimit { w } => format!("export at most {}", kw(w.0)),
        DrSignal::BatterySetpoint { w } => format!("battery at {}", kw(w.0)),
        DrSignal::EvCurrentLimit { milliamps } => format!("EV at most {} A", milliamps / 1_000),
        DrSignal::Price { .. } => "a price signal".into(),
    }
}

/// `GET /operator`: the feeder's load against its limits, events, and the form to call one.
pub async fn operator(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Operator>,
    Query(q): Query<PageQuery>,
) -> Response {
    let flash = q.flash();
    let session = session_of(&state, &who).await;
    match operator_data(&state, &who, flash).await {
        Ok(d) => html(&state, StatusCode::OK, &Page::Operator(Box::new(d))),
        Err(e) => super::not_loaded(&state, session, "The feeder could not be loaded", &e),
    }
}

async fn operator_data(
    state: &AppState,
    who: &Principal,
    flash: Option<Flash>,
) -> Result<OperatorData, crate::ApiError> {
    let db = state.db()?;
    let feeder = feeder::load(state, who, None, None).await?;
    let all = gateways::active(db).await?;
    let network = state.network.as_deref().map(Vec::as_slice);
    // parents before children, depth first
    let mut rows: Vec<FeederRow> = Vec::with_capacity(feeder.nodes.len());
    let mut stack: Vec<(u32, u32)> = feeder
        .nodes
        .iter()
        .filter(|n| n.parent.is_none())
        .map(|n| (n.node, 0))
        .collect();
    while let Some((id, depth)) = stack.pop() {
        let Some(n) = feeder.nodes.iter().find(|n| n.node == id) else {
            continue;
        };
        let below_nodes = gridshare_market::dr::subtree(&[id], network);
        let below: Vec<u64> = all
            .iter()
            .filter(|g| below_nodes.contains(&g.feeder_node.0))
            .map(|g| g.id.0)
            .collect();
        let kind = match depth {
            0 => "Substation",
            1 => "Feeder line",
            2 => "Transformer",
            _ => "Home connection",
        };
        rows.push(FeederRow {
            node: id,
            depth,
            label: format!("{kind} {id}"),
            load_w: n.load_w,
            limit_w: n.limit_w,
            gateways: n.gateways,
            price: n.auction_price,
            congestion: n.congestion,
            below,
        });
        let mut children: Vec<u32> = feeder
            .nodes
            .iter()
            .filter(|c| c.parent == Some(id))
            .map(|c| c.node)
            .collect();
        children.sort_unstable_by(|a, b| b.cmp(a));
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    let events = dr::list_events(state, who).await?;
    let now = state.clock.now();
    let step = state.interval_length.millis();
    let next = now.0 - now.0.rem_euclid(step) + step;
    let mut starts = vec![(now.0 - now.0.rem_euclid(60_000), "now".to_owned())];
    for k in 0..4 {
        let t = Timestamp(next + k * step);
        starts.push((t.0, gridshare_ui::format::when(&t.to_rfc3339())));
    }
    let session = session_of(state, who)
        .await
        .ok_or_else(|| crate::ApiError::internal("the account could not be read"))?;
    Ok(OperatorData {
        session,
        interval: feeder.interval,
        feeder: rows,
        events: events
            .iter()
            .take(20)
            .map(|e| EventRow {
                id: e.id,
                status: e.status.clone(),
                starts_at: e.starts_at.clone(),
                ends_at: e.ends_at.clone(),
                signal: signal_words(&e.intervals),
                targeted: e.gateways.len(),
                acknowledged: e
                    .gateways
                    .iter()
                    .filter(|g| e.reports.iter().any(|r| r.gateway == **g))
                    .count(),
            })
            .collect(),
        starts,
        flash,
        slashed: evidence::visible_to(state, who, 50)
            .await?
            .iter()
            .map(|e| super::slash_row(e, true))
            .collect(),
    })
}

/// The new-event form, as its fields came (`node` repeats: one per line or transformer ticked).
type EventForm = Vec<(String, String)>;

/// What the new-event form asks for, checked; or what to tell the operator.
fn event_request(fields: &[(String, String)]) -> Result<(Vec<u32>, DrSignal, Timestamp, u32), &'static str> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let nodes: Vec<u32> = fields
        .iter()
        .filter(|(k, _)| k == "node")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    if nodes.is_empty() {
        return Err("choose the lines or transformers it is for");
    }
    let w = get("kw")
        .and_then(|k| k.trim().replace(',', ".").parse::<f64>().ok())
        .filter(|k| k.is_finite() && *k >= 0.0 && *k <= 10_000.0)
        .map(|k| (k * 1_000.0).round() as i64)
        .ok_or("the power is a number of kW, 0 or more")?;
    let signal = match get("signal") {
        Some("load_shed") => DrSignal::LoadShed { w: W(w) },
        Some("import_limit") => DrSignal::ImportLimit { w: W(w) },
        Some("export_limit") => DrSignal::ExportLimit { w: W(w) },
        _ => return Err("choose a signal"),
    };
    let (Some(start), Some(minutes)) = (
        get("start").and_then(|s| s.parse::<i64>().ok()),
        get("minutes").and_then(|m| m.parse::<u32>().ok()),
    ) else {
        return Err("choose when it starts and how long it lasts");
    };
    Ok((nodes, signal, Timestamp(start), minutes))
}

/// `POST /operator/events`: calls the event as the API would (the targets' gateways get it at
/// once) and shows its live response.
pub async fn new_event(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Operator>,
    Form(fields): Form<EventForm>,
) -> Response {
    let back = |text: String| back_with("/operator", false, &text, None);
    let (nodes, signal, start, minutes) = match event_request(&fields) {
        Ok(r) => r,
        Err(why) => return back(format!("Not called: {why}.")),
    };
    // the program: the operator's first, made on first use
    let program_id = match dr::list_programs(&state, &who).await {
        Ok(p) if !p.is_empty() => p[0].id,
        _ => match dr::make_program(
            &state,
            &who,
            dr::NewProgram {
                name: "Operator events".into(),
                description: "Called from the dashboard".into(),
            },
        )
        .await
        {
            Ok(p) => p.id,
            Err(e) => return back(format!("Not called: {}.", e.message)),
        },
    };
    let req = dr::NewEvent {
        program_id,
        priority: 1,
        targets: gridshare_market::dr::Targets::Nodes { nodes },
        intervals: vec![DrInterval {
            id: 0,
            start,
            duration_minutes: minutes,
            signals: vec![signal],
        }],
    };
    match dr::call_event(&state, &who, req).await {
        Ok(e) => Redirect::to(&format!("/operator/events/{}", e.id)).into_response(),
        Err(e) => back(format!("Not called: {}.", e.message)),
    }
}

/// `GET /operator/events/{id}`: an event's targeted gateways and their response; reloads itself
/// while the event runs.
pub async fn event(
    State(state): State<AppState>,
    SignedIn { who, .. }: SignedIn<Operator>,
    Path(id): Path<u64>,
) -> Response {
    match event_data(&state, &who, id).await {
        Ok(data) => html(&state, StatusCode::OK, &Page::Event(Box::new(data))),
        Err(r) => r,
    }
}

/// `GET /operator/events/{id}/live`: the event page's data as JSON, polled by the page while the
/// event runs so the response against baseline updates in place. Polled by script, so it answers
/// as the API does (401 and 403 as JSON errors), not with the pages' redirect and 403 page.
pub async fn event_live(State(state): State<AppState>, who: Principal, Path(id): Path<u64>) -> Response {
    if who.require_role(&[Role::Operator]).is_err() {
        return crate::ApiError::forbidden("operators only").into_response();
    }
    match event_data(&state, &who, id).await {
        Ok(data) => axum::Json(data).into_response(),
        Err(r) => r,
    }
}

async fn event_data(state: &AppState, who: &Principal, id: u64) -> Result<EventData, Response> {
    let e = match dr::get_event(state, who, EventId(id)).await {
        Ok(e) => e,
        Err(err) => {
            let session = session_of(state, who).await;
            return Err(error_page(state, session, err.status, "No such event", &err.message));
        }
    };
    let session = session_or_error(state, who).await?;
    let gateways = e
        .gateways
        .iter()
        .map(|g| {
            let mine: Vec<_> = e.reports.iter().filter(|r| r.gateway == *g).collect();
            let last = mine.last();
            ReportRow {
                gateway: *g,
                acknowledged: !mine.is_empty(),
                confirmed: !mine.is_empty() && mine.iter().all(|r| r.confirmed),
                baseline_w: last.and_then(|r| r.baseline_w),
                measured_w: last.map(|r| r.measured_w),
                note: last.and_then(|r| r.note.clone()),
            }
        })
        .collect();
    Ok(EventData {
        session,
        id: e.id,
        status: e.status.clone(),
        starts_at: e.starts_at.clone(),
        ends_at: e.ends_at.clone(),
        signal: signal_words(&e.intervals),
        gateways,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &[(&str, &str)]) -> EventForm {
        body.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_event_form_reads_every_ticked_node() {
        let f = fields(&[
            ("node", "100"),
            ("node", "101"),
            ("node", "x"),
            ("kw", "1,5"),
            ("signal", "load_shed"),
            ("start", "1796144400000"),
            ("minutes", "30"),
        ]);
        assert_eq!(
            event_request(&f),
            Ok((
                vec![100, 101],
                DrSignal::LoadShed { w: W(1_500) },
                Timestamp(1_796_144_400_000),
                30
            ))
        );
        assert_eq!(
            event_request(&f[2..]),
            Err("choose the lines or transformers it is for")
        );
        let mut no_signal = f.clone();
        no_signal.retain(|(k, _)| k != "signal");
        assert_eq!(event_request(&no_signal), Err("choose a signal"));
        let mut negative = f;
        negative[3].1 = "-2".into();
        assert_eq!(event_request(&negative), Err("the power is a number of kW, 0 or more"));
    }
}
