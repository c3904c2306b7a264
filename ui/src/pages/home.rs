//! The homeowner's page: balance, energy traded, power now, trades and trading preferences.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use gridshare_domain::wire::TradingPreferences;
use gridshare_domain::{Micro, MicroPerKwh, W, Wh};

#[cfg(feature = "hydrate")]
use super::common::poll_json;
use super::common::{Flash, FlashLine, Header, Session, at_ms, parse_price};
use super::slashing::{SlashRow, StoppedGateways};
use crate::chart;
use crate::format::{energy, money, power, price, price_input, tokens, when};

/// A homeowner's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Settlement account (address on chain).
    pub account: String,
    /// Sum of confirmed settlement batches (the ledger).
    pub settled: Micro,
    /// Trades not settled yet.
    pub pending: Micro,
    /// What the vault holds (none when the chain cannot be read).
    pub on_chain: Option<Micro>,
    /// This month's intervals settled on an estimate, and their true-ups.
    #[serde(default)]
    pub corrections: Corrections,
}

/// Intervals settled as traded because the home's meter readings were late, and the true-ups
/// posted when the readings came.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corrections {
    /// Still waiting for their readings.
    pub awaiting: u32,
    /// Trued up.
    pub trued_up: u32,
    /// The true-ups' sum (positive: credited).
    pub total: Micro,
}

impl Corrections {
    /// What the balance card says of them; nothing when every interval was measured.
    pub fn summary(&self) -> Option<String> {
        let intervals = |n: u32| {
            if n == 1 {
                "1 interval".to_owned()
            } else {
                format!("{n} intervals")
            }
        };
        let mut parts = Vec::new();
        if self.awaiting > 0 {
            parts.push(format!(
                "{} settled as traded while your meter readings were late; corrected when they arrive",
                intervals(self.awaiting)
            ));
        }
        if self.trued_up > 0 {
            let sign = if self.total.0 > 0 { "+" } else { "" };
            parts.push(format!(
                "late readings corrected {}: {sign}{}",
                intervals(self.trued_up),
                money(self.total)
            ));
        }
        let text = parts.join("; ");
        let mut chars = text.chars();
        chars.next().map(|c| c.to_uppercase().chain(chars).collect())
    }
}

/// Energy traded in the community market over a period, and what it was worth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Energy {
    /// Bought from neighbours.
    pub bought_wh: Wh,
    /// Sold to neighbours.
    pub sold_wh: Wh,
    /// Paid for it (with grid fees).
    pub paid: Micro,
    /// Received for it.
    pub received: Micro,
    /// Saved against the utility (buying below its import tariff, selling above its export
    /// tariff); none when the tariffs are not known.
    pub saved: Option<Micro>,
    /// Drawn from the utility beyond what was bought locally, and fed to it beyond what was sold
    /// locally, as metered at the grid connection per settled interval; none without readings.
    pub utility: Option<(Wh, Wh)>,
}

/// One of my trades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRow {
    /// Trade id.
    pub id: u64,
    /// Delivery interval (ISO 8601).
    pub interval: String,
    /// I bought (else sold).
    pub bought: bool,
    /// Energy.
    pub quantity_wh: Wh,
    /// Price.
    pub price: MicroPerKwh,
    /// Grid fee the buyer paid on top.
    pub grid_fee: MicroPerKwh,
    /// The settlement batch it is in, once settled.
    pub batch: Option<u64>,
}

/// The home's power flows now, W (+ import at the grid, + charging the battery or the car).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerNow {
    /// Solar production.
    pub pv_w: i64,
    /// Battery (+ charging).
    pub battery_w: i64,
    /// EV charging.
    pub ev_w: i64,
    /// Grid connection (+ import).
    pub grid_w: i64,
    /// As of (RFC 3339).
    pub at: String,
}

impl PowerNow {
    /// The household's own use: what the grid and the sun bring, less what the battery and the
    /// car take.
    pub fn home_w(&self) -> i64 {
        (self.grid_w + self.pv_w - self.battery_w - self.ev_w).max(0)
    }

    /// Takes a `power` frame's samples (JSON, as the WebSocket sends them) into account.
    pub fn apply(&mut self, samples: &serde_json::Value) {
        let Some(list) = samples.as_array() else { return };
        for s in list {
            let w = s["power_w"].as_i64();
            match (s["kind"].as_str(), w) {
                (Some("grid_meter"), Some(w)) => self.grid_w = w,
                (Some("pv_inverter"), Some(w)) => self.pv_w = w,
                (Some("battery"), Some(w)) => self.battery_w = w,
                (Some("ev_charger"), Some(w)) => self.ev_w = w,
                _ => {}
            }
            if let Some(at) = s["at"].as_i64() {
                self.at = at.to_string();
            } else if let Some(at) = s["at"].as_str() {
                self.at = at.to_owned();
            }
        }
    }
}

/// A home's reward in one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRewardRow {
    /// Epoch number.
    pub epoch: u64,
    /// Energy sold to neighbours and metered as exported, at its rate.
    pub local_renewable: Micro,
    /// Verified demand-response reduction, at its rate.
    pub demand_response: Micro,
    /// Gateway uptime.
    pub uptime: Micro,
    /// Paid after scaling to the epoch's budget.
    pub reward: Micro,
    /// The account's total ever awarded after the epoch.
    pub cumulative: Micro,
    /// True once the epoch's root is on chain (the reward can be claimed).
    pub on_chain: bool,
}

/// A proposal to change the network's rules, with the home's vote on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRow {
    /// The proposal (the service's number).
    pub proposal: u64,
    /// What it is for.
    pub description: String,
    /// The changes, in words (`feePerHop = 3000, …`).
    pub changes: String,
    /// The proposal's state (`waiting`, `pending`, `active`, …).
    pub state: String,
    /// The home's vote: `for`, `against` or `abstain`, if it voted.
    pub support: Option<String>,
    /// What became of it: `waiting`, `cast` or `refused`.
    pub vote_state: Option<String>,
    /// The votes it carried, once cast.
    pub weight: Option<Micro>,
    /// Why it was not cast.
    pub error: Option<String>,
}

impl VoteRow {
    /// True while the home may still vote on it here.
    pub fn open(&self) -> bool {
        self.support.is_none() && matches!(self.state.as_str(), "waiting" | "pending" | "active")
    }
}

/// The homeowner's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeData {
    /// Who.
    pub session: Session,
    /// Money.
    pub balance: Balance,
    /// Today (UTC).
    pub today: Energy,
    /// This month.
    pub month: Energy,
    /// Latest trades, newest first.
    pub trades: Vec<TradeRow>,
    /// Rewards credited, reward-token µ.
    pub rewards: Micro,
    /// Reward credits.
    pub reward_count: usize,
    /// Rewards per epoch, newest first (the latest few).
    #[serde(default)]
    pub epochs: Vec<EpochRewardRow>,
    /// Grid power at the home's connection today, 15-minute means: (ms, W; + import).
    pub grid_power: Vec<(i64, i64)>,
    /// The power flows at the last reading, updated live over the WebSocket once hydrated.
    pub power_now: Option<PowerNow>,
    /// The trading preferences and whether the gateways took them.
    pub preferences: PreferencesData,
    /// The last action's result.
    pub flash: Option<Flash>,
    /// When the page was made (market time, RFC 3339).
    pub at: String,
    /// The home's gateways stopped for equivocation, with the evidence.
    #[serde(default)]
    pub stopped: Vec<SlashRow>,
    /// Proposals open to a vote and those the home voted on, newest first.
    #[serde(default)]
    pub votes: Vec<VoteRow>,
    /// The home's own address, when it has one: it votes with its own wallet, not here.
    #[serde(default)]
    pub own_wallet: Option<String>,
    /// Each of the home's gateways and its bond as last read from chain.
    #[serde(default)]
    pub bonds: Vec<(u64, Option<String>)>,
}

/// One gateway's answer to the home's preferences (the API's shape, so a poll can update it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferenceAnswer {
    /// The gateway.
    pub gateway: u64,
    /// `applied`, `refused` or `pending`.
    pub state: String,
    /// The version it last answered.
    #[serde(default)]
    pub version: Option<u64>,
    /// Why it refused.
    #[serde(default)]
    pub reason: Option<String>,
    /// When it answered (ms, market time).
    #[serde(default)]
    pub at: Option<i64>,
}

/// The home's trading preferences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferencesData {
    /// Set on the dashboard, if ever.
    pub set: Option<TradingPreferences>,
    /// When they were last changed (ms, market time).
    pub updated_at: Option<i64>,
    /// Each of the home's gateways.
    pub gateways: Vec<PreferenceAnswer>,
}

/// What the form starts with when the home never set preferences (the gateway's own defaults).
pub const DEFAULT_PREFERENCES: (i64, i64, u8) = (80_000, 300_000, 20);

/// Checks the preferences form as typed (prices in €/kWh, the reserve in %) by the domain's
/// rules, and says what is wrong in words; the server checks the same again.
pub fn check_preferences(min_sell: &str, max_buy: &str, reserve: &str) -> Result<TradingPreferences, String> {
    let any = MicroPerKwh(1);
    let min_sell_price = parse_price(min_sell, any).map_err(|e| format!("Minimum sell price: {e}"))?;
    let max_buy_price = parse_price(max_buy, any).map_err(|e| format!("Maximum buy price: {e}"))?;
    let battery_reserve_percent = reserve
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|r| *r <= 100)
        .ok_or_else(|| "Battery reserve: a whole percentage from 0 to 100".to_owned())?;
    let p = TradingPreferences {
        version: 0,
        min_sell_price,
        max_buy_price,
        battery_reserve_percent,
    };
    p.validate().map_err(|e| match e.field.as_str() {
        "min_sell_price" if min_sell_price.0 >= 0 => format!(
            "The minimum sell price ({}) is above the maximum buy price ({}): your home would buy its own energy back at a loss",
            price(min_sell_price),
            price(max_buy_price)
        ),
        "min_sell_price" => "Minimum sell price: cannot be negative".to_owned(),
        "max_buy_price" => "Maximum buy price: cannot be negative".to_owned(),
        _ => e.to_string(),
    })?;
    Ok(p)
}

/// Which trades the table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    All,
    Bought,
    Sold,
}

/// Opens the live feed and keeps `set` up to date with this home's `power` frames.
#[cfg(feature = "hydrate")]
fn follow_power(set: WriteSignal<Option<PowerNow>>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Some(window) = web_sys::window() else { return };
    let location = window.location();
    let scheme = if location.protocol().is_ok_and(|p| p == "https:") {
        "wss"
    } else {
        "ws"
    };
    let Ok(host) = location.host() else { return };
    let Ok(socket) = web_sys::WebSocket::new(&format!("{scheme}://{host}/api/v1/ws")) else {
        return;
    };
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let Some(text) = ev.data().as_string() else { return };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return;
        };
        if v["type"] == "power" {
            set.update(|p| p.get_or_insert_with(PowerNow::default).apply(&v["samples"]));
        }
    });
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // the socket lives as long as the page
    std::mem::forget(socket);
}

#[component]
fn PowerCard(power: ReadSignal<Option<PowerNow>>) -> impl IntoView {
    let flow = |w: i64, into: &'static str, out_of: &'static str| {
        if w > 0 {
            format!("{} {into}", crate::format::power(W(w)))
        } else if w < 0 {
            format!("{} {out_of}", crate::format::power(W(-w)))
        } else {
            "idle".to_owned()
        }
    };
    view! {
        <section class="card" id="power-now">
            <h2>"Power now"</h2>
            {move || match power.get() {
                None => view! { <p class="muted">"Waiting for your gateway's first reading…"</p> }.into_any(),
                Some(p) => view! {
                    <div class="flows" data-at=p.at.clone()>
                        <div class="flow"><span class="muted">"Solar"</span><b id="pv">{crate::format::power(W(p.pv_w))}</b></div>
                        <div class="flow"><span class="muted">"Home"</span><b id="load">{crate::format::power(W(p.home_w()))}</b></div>
                        <div class="flow"><span class="muted">"Battery"</span><b id="battery">{flow(p.battery_w, "charging", "discharging")}</b></div>
                        <div class="flow"><span class="muted">"Car"</span><b id="ev">{flow(p.ev_w, "charging", "")}</b></div>
                        <div class="flow"><span class="muted">"Grid and neighbours"</span><b id="grid">{flow(p.grid_w, "in", "out")}</b></div>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
pub(super) fn HomePage(data: HomeData) -> impl IntoView {
    let (filter, set_filter) = signal(Filter::All);
    let (power_now, set_power_now) = signal(data.power_now.clone());
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| follow_power(set_power_now));
    #[cfg(not(feature = "hydrate"))]
    let _ = set_power_now;
    let trades = data.trades.clone();
    let balance = data.balance.clone();
    let agrees = balance.on_chain.map(|c| c == balance.settled);
    let chart = chart::line(&data.grid_power, 600.0, 160.0);
    let peak = data.grid_power.iter().map(|p| p.1).max().unwrap_or(0);
    let trough = data.grid_power.iter().map(|p| p.1).min().unwrap_or(0);
    let button = move |f: Filter, label: &'static str| {
        view! {
            <button
                class="chip"
                class:on=move || filter.get() == f
                data-filter=label
                on:click=move |_| set_filter.set(f)
            >
                {label}
            </button>
        }
    };
    view! {
        <Header session=Some(data.session.clone())/>
        <main>
            <h1>{data.session.name.clone()}</h1>
            <p class="muted">"As of " {when(&data.at)} " UTC"</p>
            <FlashLine flash=data.flash.clone()/>
            <StoppedGateways rows=data.stopped.clone()/>
            <section class="cards">
                <div class="card" id="balance">
                    <h2>"Balance"</h2>
                    <p class="big">{money(balance.settled)}</p>
                    <p>"Pending settlement: " {money(balance.pending)}</p>
                    <p>
                        "On chain: "
                        {match balance.on_chain {
                            Some(c) => money(c),
                            None => "cannot be read right now".to_owned(),
                        }}
                        {match agrees {
                            Some(true) => " ✓ matches the ledger",
                            Some(false) => " (a batch is being confirmed)",
                            None => "",
                        }}
                    </p>
                    {balance.corrections.summary().map(|t| view! { <p class="small" id="corrections">{t}</p> })}
                    <p class="muted small">"Account " <code>{balance.account.clone()}</code></p>
                </div>
                <EnergyCard id="today" title="Today" e=data.today.clone()/>
                <EnergyCard id="month" title="This month" e=data.month.clone()/>
                <div class="card" id="rewards">
                    <h2>"Rewards"</h2>
                    <p class="big">{tokens(data.rewards)}</p>
                    <p>
                        {data.reward_count}
                        {if data.reward_count == 1 { " credit" } else { " credits" }}
                        " for verified generation and demand response"
                    </p>
                    <EpochRewards rows=data.epochs.clone()/>
                    {data.bonds.iter().map(|(g, state)| view! {
                        <p class="small bond">{format!("Gateway {g}: {}", super::common::bond_words(state.as_deref()))}</p>
                    }).collect_view()}
                </div>
            </section>
            <PowerCard power=power_now/>
            <section class="card" id="power">
                <h2>"Grid power today"</h2>
                {match chart {
                    Some(l) => view! {
                        <svg class="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="grid power over the day">
                            <line x1="0" x2="600" y1=format!("{:.1}", l.zero_y) y2=format!("{:.1}", l.zero_y) class="axis"/>
                            <path d=l.path class="series"/>
                        </svg>
                        <p class="muted small">"Import up to " {power(W(peak))} ", export up to " {power(W(-trough.min(0)))} " (15-minute means)"</p>
                    }.into_any(),
                    None => view! { <p class="muted">"No readings from your gateway today yet."</p> }.into_any(),
                }}
            </section>
            <section class="card" id="trades">
                <h2>"My trades"</h2>
                <div class="chips">
                    {button(Filter::All, "all")}
                    {button(Filter::Bought, "bought")}
                    {button(Filter::Sold, "sold")}
                </div>
                <div class="scroll">
                    <table>
                        <thead><tr><th>"Interval"</th><th>""</th><th>"Energy"</th><th>"Price"</th><th>"Settlement"</th></tr></thead>
                        <tbody>
                            {move || {
                                let f = filter.get();
                                trades
                                    .iter()
                                    .filter(|t| match f {
                                        Filter::All => true,
                                        Filter::Bought => t.bought,
                                        Filter::Sold => !t.bought,
                                    })
                                    .map(|t| view! {
                                        <tr class="trade" data-side=if t.bought { "bought" } else { "sold" }>
                                            <td>{when(&t.interval)}</td>
                                            <td>{if t.bought { "bought" } else { "sold" }}</td>
                                            <td>{energy(t.quantity_wh)}</td>
                                            <td>{price(t.price)}</td>
                                            <td>{match t.batch {
                                                Some(b) => view! {
                                                    <a href=format!("/api/v1/trades/{}/proof", t.id)>"batch " {b} " · proof"</a>
                                                }.into_any(),
                                                None => view! { <span class="muted">"pending"</span> }.into_any(),
                                            }}</td>
                                        </tr>
                                    })
                                    .collect_view()
                            }}
                        </tbody>
                    </table>
                </div>
                {data.trades.is_empty().then(|| view! { <p class="muted">"No trades yet: your gateway bids and asks for you."</p> })}
            </section>
            <PreferencesCard data=data.preferences.clone() home=data.session.participant/>
            <VotesCard rows=data.votes.clone() home=data.session.participant own_wallet=data.own_wallet.clone()/>
        </main>
    }
}

#[component]
fn EnergyCard(id: &'static str, title: &'static str, e: Energy) -> impl IntoView {
    view! {
        <div class="card" id=id>
            <h2>{title}</h2>
            <p>"Bought from neighbours: " <b>{energy(e.bought_wh)}</b> " for " {money(e.paid)}</p>
            <p>"Sold to neighbours: " <b>{energy(e.sold_wh)}</b> " for " {money(e.received)}</p>
            {e.utility.map(|(from, to)| view! {
                <p class="utility">"From the utility: " <b>{energy(from)}</b> " · to the utility: " <b>{energy(to)}</b></p>
            })}
            {e.saved.map(|s| view! { <p>"Saved against the utility: " <b>{money(s)}</b></p> })}
        </div>
    }
}

#[component]
fn PreferencesCard(data: PreferencesData, home: u64) -> impl IntoView {
    let (answers, set_answers) = signal(data.gateways.clone());
    // after a change, follow the gateways' answers as they come
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if answers.get_untracked().iter().any(|a| a.state == "pending") {
            poll_json("/api/v1/preferences".into(), 1_500, 40, move |v| {
                let Ok(list) = serde_json::from_value::<Vec<PreferenceAnswer>>(v["gateways"].clone()) else {
                    return false;
                };
                let done = list.iter().all(|a| a.state != "pending");
                set_answers.set(list);
                done
            });
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = set_answers;
    let (sell0, buy0, reserve0) = data.set.as_ref().map_or(DEFAULT_PREFERENCES, |p| {
        (p.min_sell_price.0, p.max_buy_price.0, p.battery_reserve_percent)
    });
    let (min_sell, set_min_sell) = signal(price_input(MicroPerKwh(sell0)));
    let (max_buy, set_max_buy) = signal(price_input(MicroPerKwh(buy0)));
    let (reserve, set_reserve) = signal(reserve0.to_string());
    let problem = move || check_preferences(&min_sell.get(), &max_buy.get(), &reserve.get()).err();
    let version = data.set.as_ref().map(|p| p.version);
    view! {
        <section class="card" id="preferences">
            <h2>"Trading preferences"</h2>
            <p class="muted">
                {match (version, data.updated_at) {
                    (Some(v), Some(at)) => format!("Version {v}, set {} UTC. Your gateway never sells below the minimum, never buys above the maximum, and keeps the reserve in the battery for your home.", at_ms(at)),
                    _ => "Your gateway trades within the limits its installer set. Set your own here.".to_owned(),
                }}
            </p>
            <ul class="answers">
                {move || answers.get().into_iter().map(|a| {
                    let text = match a.state.as_str() {
                        "applied" => format!(
                            "✓ in force since {} UTC{}",
                            a.at.map(at_ms).unwrap_or_default(),
                            a.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
                        ),
                        "refused" => format!("✗ refused: {}", a.reason.clone().unwrap_or_default()),
                        _ => "waiting for the gateway… (it takes them as soon as it is online)".to_owned(),
                    };
                    view! {
                        <li class="answer" data-gateway=a.gateway data-state=a.state.clone()>
                            "Gateway " {a.gateway} ": " {text}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form method="post" action=format!("/home/{home}/preferences") class="form">
                <label>"Never sell below (€/kWh)"
                    <input name="min_sell_price" inputmode="decimal" required value=min_sell.get_untracked()
                        on:input=move |ev| set_min_sell.set(event_target_value(&ev))/>
                </label>
                <label>"Never buy above (€/kWh)"
                    <input name="max_buy_price" inputmode="decimal" required value=max_buy.get_untracked()
                        on:input=move |ev| set_max_buy.set(event_target_value(&ev))/>
                </label>
                <label>"Battery reserve kept for my home (%)"
                    <input name="battery_reserve_percent" inputmode="numeric" required value=reserve.get_untracked()
                        on:input=move |ev| set_reserve.set(event_target_value(&ev))/>
                </label>
                <p class="error" role="alert" class:hidden=move || problem().is_none()>{move || problem().unwrap_or_default()}</p>
                <button type="submit" disabled=move || problem().is_some()>"Save and send to my gateway"</button>
            </form>
        </section>
    }
}

/// The proposals to change the network's rules: vote with the reward tokens the home earned (the
/// service casts the vote from the home's account when the vote opens), or see what became of
/// the home's vote.
#[component]
fn VotesCard(rows: Vec<VoteRow>, home: u64, own_wallet: Option<String>) -> impl IntoView {
    (!rows.is_empty()).then(|| {
        view! {
            <section class="card" id="governance">
                <h2>"The network's rules"</h2>
                <p class="muted small">"The grid operator proposes changes to fees, tariffs and rewards; homes vote with the reward tokens they earned (those claimed before the vote opens). A passed proposal applies after a waiting period. "
                    <a href="/network#proposals">"All proposals"</a>
                </p>
                {own_wallet.as_ref().map(|a| view! {
                    <p class="muted small">"Your rewards go to your own address " <code>{a.clone()}</code> ": you vote with your own wallet."</p>
                })}
                <ul class="votes">
                    {rows.into_iter().map(|r| {
                        let open = r.open() && own_wallet.is_none();
                        let outcome = match (r.support.as_deref(), r.vote_state.as_deref()) {
                            (Some(how), Some("cast")) => format!(
                                "You voted {how}: counted on chain with {}.",
                                r.weight.map(tokens).unwrap_or_else(|| "your votes".into())
                            ),
                            (Some(how), Some("refused")) => format!(
                                "Your vote ({how}) was not counted: {}.",
                                r.error.clone().unwrap_or_default()
                            ),
                            (Some(how), _) => format!("You voted {how}: it is cast on chain when the vote opens."),
                            (None, _) if open => String::new(),
                            (None, _) => format!("Vote {}.", r.state),
                        };
                        view! {
                            <li class="vote" data-proposal=r.proposal>
                                <p><b>{format!("#{} ", r.proposal)}</b>{r.description.clone()}
                                    " " <code class="small">{r.changes.clone()}</code>
                                    " " <span class="muted small">{r.state.clone()}</span>
                                </p>
                                {open.then(|| view! {
                                    <form method="post" action=format!("/home/{home}/votes") class="chips">
                                        <input type="hidden" name="proposal" value=r.proposal/>
                                        <button type="submit" name="support" value="for">"Vote for"</button>
                                        <button type="submit" name="support" value="against">"Against"</button>
                                        <button type="submit" name="support" value="abstain">"Abstain"</button>
                                    </form>
                                })}
                                {(!outcome.is_empty()).then(|| view! { <p class="small">{outcome}</p> })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_of_late_readings_are_said_only_when_there_are_some() {
        let c = |awaiting, trued_up, total| Corrections {
            awaiting,
            trued_up,
            total: Micro(total),
        };
        assert_eq!(c(0, 0, 0).summary(), None);
        assert_eq!(
            c(1, 0, 0).summary().unwrap(),
            "1 interval settled as traded while your meter readings were late; corrected when they arrive"
        );
        assert_eq!(
            c(0, 2, 8_000).summary().unwrap(),
            "Late readings corrected 2 intervals: +€0.01"
        );
        assert_eq!(
            c(3, 1, -90_000).summary().unwrap(),
            "3 intervals settled as traded while your meter readings were late; corrected when they arrive; \
             late readings corrected 1 interval: −€0.09"
        );
        assert_eq!(
            c(0, 1, 0).summary().unwrap(),
            "Late readings corrected 1 interval: €0.00"
        );
    }

    #[test]
    fn preferences_are_checked_as_typed_and_said_in_words() {
        let p = check_preferences("0.090", "0,25", "30 %").unwrap();
        assert_eq!(
            (p.min_sell_price, p.max_buy_price, p.battery_reserve_percent),
            (MicroPerKwh(90_000), MicroPerKwh(250_000), 30)
        );
        // not on the market's tick is fine: the gateway rounds inwards
        assert_eq!(
            check_preferences("0.0905", "0.25", "0").unwrap().min_sell_price,
            MicroPerKwh(90_500)
        );
        let upside_down = check_preferences("0.300", "0.200", "20").unwrap_err();
        assert!(
            upside_down.contains("above the maximum buy price") && upside_down.contains("€0.300/kWh"),
            "{upside_down}"
        );
        for (sell, buy, reserve, says) in [
            ("-0.01", "0.2", "20", "Minimum sell price: cannot be negative"),
            ("cheap", "0.2", "20", "Minimum sell price"),
            ("0.1", "", "20", "Maximum buy price"),
            ("0.1", "0.2", "101", "Battery reserve"),
            ("0.1", "0.2", "half", "Battery reserve"),
        ] {
            let problem = check_preferences(sell, buy, reserve).unwrap_err();
            assert!(problem.starts_with(says), "{sell} {buy} {reserve}: {problem}");
        }
    }
}

/// The latest epochs' rewards: what each kind of contribution earned, what was paid, and
/// whether the epoch's root is on chain yet (then the total can be claimed).
#[component]
fn EpochRewards(rows: Vec<EpochRewardRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted small" id="epochs">"No reward epoch has ended yet."</p> }.into_any();
    }
    view! {
        <table class="small" id="epochs">
            <thead>
                <tr>
                    <th>"Epoch"</th>
                    <th>"Local solar"</th>
                    <th>"Demand response"</th>
                    <th>"Uptime"</th>
                    <th>"Paid"</th>
                    <th>"Total"</th>
                </tr>
            </thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|r| {
                        view! {
                            <tr>
                                <td>{r.epoch}</td>
                                <td>{tokens(r.local_renewable)}</td>
                                <td>{tokens(r.demand_response)}</td>
                                <td>{tokens(r.uptime)}</td>
                                <td>{tokens(r.reward)}</td>
                                <td>
                                    {tokens(r.cumulative)}
                                    {if r.on_chain { " ✓ on chain" } else { " (posting)" }}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
