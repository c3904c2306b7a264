//! The network's pages: the public page of the reward epochs (what each paid, its root and report,
//! what has been emitted against the cap, the rules in force) that anyone may audit, and the
//! admin's page over participants, installers' homes and gateways, with the network below.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use gridshare_domain::Micro;

use super::common::{Flash, FlashLine, Header, Session};
use super::slashing::{SlashRow, SlashedGateways};
use crate::format::tokens;

/// One epoch, as the network page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRow {
    /// Number.
    pub epoch: u64,
    /// Start, market time (RFC 3339).
    pub start: String,
    /// End.
    pub end: String,
    /// The schedule's budget.
    pub budget: Micro,
    /// Paid.
    pub paid: Micro,
    /// Participants rewarded.
    pub participants: i64,
    /// The cumulative Merkle root.
    pub root: String,
    /// The transaction that put it on chain, once it is there.
    pub posted_tx: Option<String>,
}

/// The rules the latest epoch was computed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesRow {
    /// Epoch length, minutes of market time.
    pub epoch_minutes: i64,
    /// Per kWh of local renewable energy.
    pub local_renewable_per_kwh: Micro,
    /// Per kWh of demand-response reduction.
    pub demand_response_per_kwh: Micro,
    /// For a gateway up a whole epoch.
    pub uptime_per_epoch: Micro,
    /// Uptime threshold, ppm.
    pub uptime_threshold_ppm: u64,
    /// Budget of epoch 1.
    pub initial_budget: Micro,
    /// Halving period, epochs.
    pub halving_epochs: u64,
}

/// One version of the parameters the community governs on chain (issue 22).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovernedRow {
    /// How many changes were executed up to it (0: the values at deployment).
    pub version: u64,
    /// When the service saw it (market time).
    pub observed_at: String,
    /// Grid fee per feeder hop, per kWh.
    pub fee_per_hop: Micro,
    /// Network fee per kWh.
    pub network_fee: Micro,
    /// Utility import tariff per kWh (imbalance).
    pub import_tariff: Micro,
    /// Utility export tariff per kWh.
    pub export_tariff: Micro,
}

/// A proposal to change governed parameters, with its state and votes on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalRow {
    /// The service's number for it.
    pub id: u64,
    /// What it is for.
    pub description: String,
    /// The changes, in words (`feePerHop = 3000, …`).
    pub changes: String,
    /// `waiting`, the governor's state, or `refused`.
    pub state: String,
    /// Votes for, against and abstaining (µ-token).
    pub votes: (Micro, Micro, Micro),
    /// Why the chain refused it or a step of it.
    pub error: Option<String>,
}

/// One governed parameter in force, with the bounds the contract enforces on a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterRow {
    /// Its name, as the contract keys it (`feePerHop`).
    pub name: String,
    /// Its value (decimal).
    pub value: String,
    /// The least a proposal may set.
    pub min: String,
    /// The most.
    pub max: String,
}

/// The public network page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkData {
    /// Who is looking, if signed in.
    pub session: Option<Session>,
    /// The latest epochs, newest first.
    pub epochs: Vec<EpochRow>,
    /// Emitted so far (every account's cumulative total).
    pub emitted: Micro,
    /// The cap on all reward tokens.
    pub cap: Option<Micro>,
    /// The rules in force.
    pub rules: Option<RulesRow>,
    /// Active gateways.
    pub gateways: u64,
    /// Their bonds in words (`3 bonded`, `no bond required yet`; none before the bonds were
    /// read from chain).
    #[serde(default)]
    pub bonds: Option<String>,
    /// Gateways stopped for equivocation, newest first (the envelopes only for the admin).
    #[serde(default)]
    pub slashed: Vec<SlashRow>,
    /// The governed parameters, newest version first.
    #[serde(default)]
    pub governed: Vec<GovernedRow>,
    /// Proposals made through the service, newest first.
    #[serde(default)]
    pub proposals: Vec<ProposalRow>,
    /// Every governed parameter in force, with its bounds (empty before the service read them).
    #[serde(default)]
    pub parameters: Vec<ParameterRow>,
    /// The last action's result.
    #[serde(default)]
    pub flash: Option<Flash>,
}

/// A participant, for the admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRow {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Its account (own address, or the derived one).
    pub account: String,
    /// Feeder node.
    pub node: Option<u32>,
    /// The installers who serve it (homes).
    pub installers: Vec<u64>,
}

/// A gateway, for the admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminGatewayRow {
    /// Id.
    pub id: u64,
    /// Owner.
    pub owner: u64,
    /// Who commissioned it.
    pub installer: Option<u64>,
    /// Feeder node.
    pub node: u32,
    /// Active, or revoked.
    pub active: bool,
    /// Its bond as last read from chain (see the installer's page).
    #[serde(default)]
    pub bond: Option<String>,
}

/// The admin's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminData {
    /// Who.
    pub session: Session,
    /// Every participant.
    pub participants: Vec<ParticipantRow>,
    /// Every gateway.
    pub gateways: Vec<AdminGatewayRow>,
    /// The network.
    pub network: NetworkData,
}

#[component]
fn Network(data: NetworkData) -> impl IntoView {
    let emitted = data.cap.map(|cap| {
        let share = if cap.0 > 0 {
            data.emitted.0 as f64 * 100.0 / cap.0 as f64
        } else {
            0.0
        };
        format!("{} of a cap of {} ({share:.4} %)", tokens(data.emitted), tokens(cap))
    });
    view! {
        <section class="grid">
            <div class="card" id="emission">
                <h2>"Emitted"</h2>
                <p class="big">{tokens(data.emitted)}</p>
                <p class="small">{emitted.unwrap_or_else(|| "No epoch has ended yet.".into())}</p>
                <p class="small">{format!("{} active gateways{}", data.gateways, data.bonds.map(|b| format!(", {b}")).unwrap_or_default())}</p>
            </div>
            {data.rules.map(|r| view! {
                <div class="card" id="rules">
                    <h2>"Rules"</h2>
                    <p class="small">"An epoch every " {r.epoch_minutes} " minutes of market time."</p>
                    <p class="small">"Local solar: " {tokens(r.local_renewable_per_kwh)} " per kWh sold to neighbours and metered as exported."</p>
                    <p class="small">"Demand response: " {tokens(r.demand_response_per_kwh)} " per kWh of verified reduction."</p>
                    <p class="small">"Uptime: up to " {tokens(r.uptime_per_epoch)} " an epoch above " {format!("{:.1}", r.uptime_threshold_ppm as f64 / 10_000.0)} " % of periods."</p>
                    <p class="small">"Budget: " {tokens(r.initial_budget)} " in epoch 1, halving every " {r.halving_epochs} " epochs."</p>
                </div>
            })}
        </section>
        {(!data.governed.is_empty()).then(|| view! {
            <section class="card" id="governance">
                <h2>"Governed parameters"</h2>
                <p class="muted small">"Set on chain by the community's governor and timelock, within bounds the contract enforces; a change applies to the books opened after it. From " <code>"/api/v1/governance/parameters"</code> "."</p>
                <table>
                    <thead>
                        <tr><th>"Version"</th><th>"Seen"</th><th>"Fee per hop"</th><th>"Network fee"</th><th>"Import tariff"</th><th>"Export tariff"</th></tr>
                    </thead>
                    <tbody>
                        {data.governed.into_iter().map(|g| view! {
                            <tr>
                                <td>{if g.version == 0 { "0 (deployment)".to_owned() } else { g.version.to_string() }}</td>
                                <td class="small">{g.observed_at}</td>
                                <td>{g.fee_per_hop.to_string()}</td>
                                <td>{g.network_fee.to_string()}</td>
                                <td>{g.import_tariff.to_string()}</td>
                                <td>{g.export_tariff.to_string()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        })}
        {(!data.parameters.is_empty()).then(|| {
            let may_propose = data
                .session
                .as_ref()
                .is_some_and(|s| matches!(s.role.as_str(), "operator" | "admin"));
            view! {
                <section class="card" id="propose">
                    <h2>"Parameters in force"</h2>
                    <p class="muted small">"Each value and the bounds a proposal must keep it within (µ-currency per kWh for fees and tariffs, µ-token for rewards and bonds, basis points, seconds)."</p>
                    <table>
                        <thead><tr><th>"Parameter"</th><th>"Value"</th><th>"Bounds"</th></tr></thead>
                        <tbody>
                            {data.parameters.iter().map(|p| view! {
                                <tr><td><code>{p.name.clone()}</code></td><td>{p.value.clone()}</td><td class="small">{format!("{} – {}", p.min, p.max)}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    {may_propose.then(|| view! {
                        <h3>"Propose a change"</h3>
                        <p class="muted small">"The service puts the proposal on chain at its next run; homes vote with their reward tokens; a passed proposal applies after the timelock's delay."</p>
                        <form method="post" action="/network/proposals" class="form">
                            <label>"What it is for"
                                <input name="description" required maxlength="1000"/>
                            </label>
                            <label>"Parameter"
                                <select name="parameter">
                                    {data.parameters.iter().map(|p| view! {
                                        <option value=p.name.clone()>{format!("{} (now {})", p.name, p.value)}</option>
                                    }).collect_view()}
                                </select>
                            </label>
                            <label>"New value"
                                <input name="value" inputmode="numeric" required pattern="[0-9]+"/>
                            </label>
                            <button type="submit">"Propose"</button>
                        </form>
                    })}
                </section>
            }
        })}
        {(!data.proposals.is_empty()).then(|| view! {
            <section class="card" id="proposals">
                <h2>"Proposals"</h2>
                <p class="muted small">"Made by the grid operator or an administrator; the reward tokens' holders vote (with delegated votes); a passed proposal waits in the timelock before it applies. From " <code>"/api/v1/governance/proposals"</code> "."</p>
                <table>
                    <thead>
                        <tr><th>"#"</th><th>"What"</th><th>"Changes"</th><th>"State"</th><th>"For"</th><th>"Against"</th><th>"Abstain"</th></tr>
                    </thead>
                    <tbody>
                        {data.proposals.into_iter().map(|p| view! {
                            <tr>
                                <td>{p.id}</td>
                                <td>{p.description}</td>
                                <td class="small"><code>{p.changes}</code></td>
                                <td title=p.error.clone().unwrap_or_default()>{p.state}</td>
                                <td>{tokens(p.votes.0)}</td>
                                <td>{tokens(p.votes.1)}</td>
                                <td>{tokens(p.votes.2)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        })}
        <section class="card" id="epochs">
            <h2>"Epochs"</h2>
            <table>
                <thead>
                    <tr><th>"Epoch"</th><th>"Market time"</th><th>"Budget"</th><th>"Paid"</th><th>"Homes"</th><th>"Root"</th><th>"On chain"</th></tr>
                </thead>
                <tbody>
                    {data.epochs.into_iter().map(|e| {
                        let report = format!("/api/v1/epochs/{}/report", e.epoch);
                        let root = format!("{}…", e.root.chars().take(10).collect::<String>());
                        view! {
                            <tr>
                                <td><a href=report>{e.epoch}</a></td>
                                <td class="small">{e.start} " – " {e.end}</td>
                                <td>{tokens(e.budget)}</td>
                                <td>{tokens(e.paid)}</td>
                                <td>{e.participants}</td>
                                <td><code title=e.root.clone()>{root}</code></td>
                                <td class="small">{match e.posted_tx {
                                    Some(tx) => format!("✓ {}…", tx.chars().take(10).collect::<String>()),
                                    None => "posting".into(),
                                }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <p class="muted small">"Each report is public; " <code>"gridshare epoch verify report.json"</code> " recomputes it and its root."</p>
        </section>
        <SlashedGateways rows=data.slashed/>
    }
}

#[component]
pub(super) fn NetworkPage(data: NetworkData) -> impl IntoView {
    view! {
        <Header session=data.session.clone()/>
        <main>
            <h1>"The network's rewards"</h1>
            <FlashLine flash=data.flash.clone()/>
            <Network data=data/>
        </main>
    }
}

#[component]
pub(super) fn AdminPage(data: AdminData) -> impl IntoView {
    view! {
        <Header session=Some(data.session.clone())/>
        <main>
            <h1>"Administration"</h1>
            <section class="card" id="participants">
                <h2>"Participants"</h2>
                <table>
                    <thead><tr><th>"Id"</th><th>"Name"</th><th>"Role"</th><th>"Node"</th><th>"Installers"</th><th>"Account"</th></tr></thead>
                    <tbody>
                        {data.participants.into_iter().map(|p| view! {
                            <tr>
                                <td>{p.id}</td>
                                <td>{p.name}</td>
                                <td>{p.role}</td>
                                <td>{p.node.map(|n| n.to_string()).unwrap_or_default()}</td>
                                <td>{p.installers.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")}</td>
                                <td><code class="small">{p.account}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
            <section class="card" id="gateways">
                <h2>"Gateways"</h2>
                <table>
                    <thead><tr><th>"Id"</th><th>"Home"</th><th>"Installer"</th><th>"Node"</th><th>"State"</th><th>"Bond"</th></tr></thead>
                    <tbody>
                        {data.gateways.into_iter().map(|g| view! {
                            <tr>
                                <td>{g.id}</td>
                                <td>{g.owner}</td>
                                <td>{g.installer.map(|i| i.to_string()).unwrap_or_default()}</td>
                                <td>{g.node}</td>
                                <td>{if g.active { "active" } else { "revoked" }}</td>
                                <td class="small">{super::common::bond_words(g.bond.as_deref())}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <p class="muted small">"Bonds are not shown yet: the staking contract is deployed by a later version."</p>
            </section>
            <h2>"Network"</h2>
            <Network data=data.network/>
        </main>
    }
}
