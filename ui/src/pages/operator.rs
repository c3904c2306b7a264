//! The grid operator's pages: the feeder's load against its limits, calling demand-response events,
//! and one event's response.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use gridshare_domain::{MicroPerKwh, W};

use super::common::{Flash, FlashLine, Header, Session, followed};
use super::slashing::{SlashRow, SlashedGateways};
use crate::format::{power, price, when};

/// One node of the feeder, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeederRow {
    /// Node id.
    pub node: u32,
    /// Depth in the tree (0: the substation).
    pub depth: u32,
    /// What it is: substation, feeder line, transformer, home connection.
    pub label: String,
    /// Net flow up to the parent, W.
    pub load_w: i64,
    /// The edge's limit, W (none: unlimited).
    pub limit_w: Option<i64>,
    /// Gateways reporting at or below it.
    pub gateways: u32,
    /// The interval's gate-closure auction price at the node, µ/kWh (none: no auction trade).
    pub price: Option<i64>,
    /// The auction's congestion charge on the edge above, µ/kWh: positive where the auction
    /// filled the edge (it binds).
    pub congestion: Option<i64>,
    /// The gateways at or below it (what targeting it reaches).
    pub below: Vec<u64>,
}

impl FeederRow {
    /// Share of the limit in use, ‰ (none without a limit).
    pub fn use_permille(&self) -> Option<i64> {
        self.limit_w.filter(|l| *l > 0).map(|l| self.load_w.abs() * 1_000 / l)
    }
}

/// A demand-response event in the operator's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// Event id.
    pub id: u64,
    /// scheduled, active, completed or cancelled.
    pub status: String,
    /// First interval start (RFC 3339).
    pub starts_at: String,
    /// Last interval end (RFC 3339).
    pub ends_at: String,
    /// What it asks, in words.
    pub signal: String,
    /// Gateways targeted.
    pub targeted: usize,
    /// Gateways that reported back.
    pub acknowledged: usize,
}

/// The operator's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorData {
    /// Who.
    pub session: Session,
    /// The interval the loads are for (ISO 8601).
    pub interval: String,
    /// The feeder tree, parents before children.
    pub feeder: Vec<FeederRow>,
    /// Recent events, newest first.
    pub events: Vec<EventRow>,
    /// Start times to offer: (ms, label).
    pub starts: Vec<(i64, String)>,
    /// The last action's result.
    pub flash: Option<Flash>,
    /// Gateways stopped for equivocation, newest first, with both envelopes.
    #[serde(default)]
    pub slashed: Vec<SlashRow>,
}

/// One targeted gateway of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    /// Gateway id.
    pub gateway: u64,
    /// It reported back (it has the event and acted on it).
    pub acknowledged: bool,
    /// Its setpoints read back as commanded.
    pub confirmed: bool,
    /// Its baseline, W.
    pub baseline_w: Option<i64>,
    /// Its measured grid power, W.
    pub measured_w: Option<i64>,
    /// What it could not do.
    pub note: Option<String>,
}

/// One demand-response event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    /// Who.
    pub session: Session,
    /// Event id.
    pub id: u64,
    /// scheduled, active, completed or cancelled.
    pub status: String,
    /// First interval start (RFC 3339).
    pub starts_at: String,
    /// Last interval end (RFC 3339).
    pub ends_at: String,
    /// What it asks, in words.
    pub signal: String,
    /// The targeted gateways and their response.
    pub gateways: Vec<ReportRow>,
}

#[component]
pub(super) fn OperatorPage(data: OperatorData) -> impl IntoView {
    let (chosen, set_chosen) = signal(Vec::<u32>::new());
    let feeder = data.feeder.clone();
    let affected = move || {
        let nodes = chosen.get();
        let mut out: Vec<u64> = feeder
            .iter()
            .filter(|r| nodes.contains(&r.node))
            .flat_map(|r| r.below.iter().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    };
    view! {
        <Header session=Some(data.session.clone())/>
        <main>
            <h1>"Feeder"</h1>
            <FlashLine flash=data.flash.clone()/>
            <section class="card" id="feeder">
                <h2>"Load against limits · " {when(&data.interval)}</h2>
                <div class="scroll">
                    <table>
                        <thead><tr><th>"Node"</th><th>"Load"</th><th>"Limit"</th><th>"In use"</th><th>"Auction price"</th><th>"Gateways"</th></tr></thead>
                        <tbody>
                            {data.feeder.iter().map(|r| {
                                let use_pm = r.use_permille();
                                let class = match use_pm {
                                    Some(u) if u >= 900 => "node hot",
                                    Some(u) if u >= 700 => "node warm",
                                    _ => "node",
                                };
                                let width = use_pm.map_or(0, |u| u.min(1_000) / 10);
                                view! {
                                    <tr class=class data-node=r.node>
                                        <td style=format!("padding-left:{}rem", 0.5 + f64::from(r.depth))>{r.label.clone()}</td>
                                        <td>{power(W(r.load_w))}</td>
                                        <td>{r.limit_w.map_or_else(|| "—".to_owned(), |l| power(W(l)))}</td>
                                        <td>
                                            <svg class="meter" viewBox="0 0 100 8" preserveAspectRatio="none">
                                                <rect x="0" y="0" width="100" height="8" class="track"/>
                                                <rect x="0" y="0" width=width height="8" class="fill"/>
                                            </svg>
                                            {use_pm.map(|u| format!(" {}%", u / 10))}
                                        </td>
                                        <td class=if r.congestion.is_some_and(|c| c > 0) { "congested" } else { "" }>
                                            {r.price.map_or_else(|| "—".to_owned(), |p| price(MicroPerKwh(p)))}
                                            {r.congestion.filter(|c| *c > 0).map(|c| format!(" · edge full, +{}", price(MicroPerKwh(c))))}
                                        </td>
                                        <td>{r.gateways}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </section>
            <section class="card" id="new-event">
                <h2>"Call a demand-response event"</h2>
                <form method="post" action="/operator/events" class="form">
                    <fieldset>
                        <legend>"Targets"</legend>
                        {data.feeder.iter().filter(|r| r.depth >= 1 && r.depth <= 2).map(|r| {
                            let node = r.node;
                            view! {
                                <label class="check">
                                    <input type="checkbox" name="node" value=node
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            set_chosen.update(|v| {
                                                v.retain(|n| *n != node);
                                                if on { v.push(node); }
                                            });
                                        }/>
                                    " " {r.label.clone()}
                                </label>
                            }
                        }).collect_view()}
                    </fieldset>
                    <p class="muted" id="preview">
                        {move || {
                            let a = affected();
                            if a.is_empty() {
                                "Choose the lines or transformers it is for.".to_owned()
                            } else {
                                format!("{} homes affected: gateways {}", a.len(), a.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
                            }
                        }}
                    </p>
                    <label>"Signal"
                        <select name="signal">
                            <option value="load_shed">"shed load (kW)"</option>
                            <option value="import_limit">"limit import to (kW)"</option>
                            <option value="export_limit">"limit export to (kW)"</option>
                        </select>
                    </label>
                    <label>"Power (kW)" <input name="kw" inputmode="decimal" value="1.5" required/></label>
                    <label>"Start"
                        <select name="start">
                            {data.starts.iter().map(|(ms, label)| view! { <option value=*ms>{label.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>"For"
                        <select name="minutes">
                            <option value="15">"15 minutes"</option>
                            <option value="30">"30 minutes"</option>
                            <option value="60">"1 hour"</option>
                        </select>
                    </label>
                    <button type="submit">"Call the event"</button>
                </form>
            </section>
            <section class="card" id="events">
                <h2>"Events"</h2>
                <div class="scroll">
                    <table>
                        <thead><tr><th>"Event"</th><th>"Status"</th><th>"From"</th><th>"To"</th><th>"Asks"</th><th>"Acknowledged"</th></tr></thead>
                        <tbody>
                            {data.events.iter().map(|e| view! {
                                <tr class="event">
                                    <td><a href=format!("/operator/events/{}", e.id)>{format!("#{}", e.id)}</a></td>
                                    <td>{e.status.clone()}</td><td>{when(&e.starts_at)}</td><td>{when(&e.ends_at)}</td>
                                    <td>{e.signal.clone()}</td><td>{e.acknowledged} " of " {e.targeted}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {data.events.is_empty().then(|| view! { <p class="muted">"No events yet."</p> })}
            </section>
            <SlashedGateways rows=data.slashed.clone()/>
        </main>
    }
}

#[component]
pub(super) fn EventPage(data: EventData) -> impl IntoView {
    let session = data.session.clone();
    // while it runs, the response updates in place from the page's data (polled)
    let event = followed(
        data,
        |e| format!("/operator/events/{}/live", e.id),
        2_000,
        100_000,
        |e| matches!(e.status.as_str(), "scheduled" | "active"),
    );
    view! {
        <Header session=Some(session)/>
        <main>
            <p><a href="/operator">"← Feeder"</a></p>
            {move || {
                let data = event.get();
                let acknowledged = data.gateways.iter().filter(|g| g.acknowledged).count();
                view! {
                    <h1 data-status=data.status.clone()>"Event #" {data.id} " · " {data.status.clone()}</h1>
                    <p>{data.signal.clone()} ", " {when(&data.starts_at)} " to " {when(&data.ends_at)} " UTC"</p>
                    <p id="acknowledged" class=if acknowledged == data.gateways.len() { "ok" } else { "muted loading" }>
                        {acknowledged} " of " {data.gateways.len()} " targeted gateways acknowledged"
                    </p>
                    <section class="card" id="response">
                        <h2>"Response against baseline"</h2>
                        <div class="scroll">
                            <table>
                                <thead><tr><th>"Gateway"</th><th>"Status"</th><th>"Baseline"</th><th>"Measured"</th><th>"Change"</th><th>"Note"</th></tr></thead>
                                <tbody>
                                    {data.gateways.iter().map(|g| view! {
                                        <tr class="target" data-gateway=g.gateway data-ack=if g.acknowledged { "yes" } else { "no" }>
                                            <td>{g.gateway}</td>
                                            <td>{match (g.acknowledged, g.confirmed) {
                                                (true, true) => "acknowledged, confirmed",
                                                (true, false) => "acknowledged, not all confirmed",
                                                _ => "waiting",
                                            }}</td>
                                            <td>{g.baseline_w.map_or_else(|| "—".to_owned(), |b| power(W(b)))}</td>
                                            <td>{g.measured_w.map_or_else(|| "—".to_owned(), |m| power(W(m)))}</td>
                                            <td>{match (g.baseline_w, g.measured_w) {
                                                (Some(b), Some(m)) => power(W(m - b)),
                                                _ => "—".to_owned(),
                                            }}</td>
                                            <td>{g.note.clone().unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    </section>
                }
            }}
        </main>
    }
}
