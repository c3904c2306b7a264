//! The pages: what each needs (serialisable, so the server can hand the same data to the browser
//! for hydration) and how it looks.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::chart;
use crate::format::{energy, money, power, price, tokens, when};

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The participant they act for.
    pub participant: u64,
    /// The participant's name.
    pub name: String,
    /// homeowner, installer, operator, trader or admin.
    pub role: String,
}

/// A homeowner's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Settlement account (address on chain).
    pub account: String,
    /// Sum of confirmed settlement batches, µ (the ledger).
    pub settled: i64,
    /// Trades not settled yet, µ.
    pub pending: i64,
    /// What the vault holds, µ (none when the chain cannot be read).
    pub on_chain: Option<i64>,
}

/// Energy traded in the community market over a period, and what it was worth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Energy {
    /// Bought from neighbours, Wh.
    pub bought_wh: i64,
    /// Sold to neighbours, Wh.
    pub sold_wh: i64,
    /// Paid for it (with grid fees), µ.
    pub paid: i64,
    /// Received for it, µ.
    pub received: i64,
    /// Saved against the utility (buying below its import tariff, selling above its export
    /// tariff), µ; none when the tariffs are not known.
    pub saved: Option<i64>,
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
    /// Energy, Wh.
    pub quantity_wh: i64,
    /// Price, µ/kWh.
    pub price: i64,
    /// Grid fee the buyer paid on top, µ/kWh.
    pub grid_fee: i64,
    /// The settlement batch it is in, once settled.
    pub batch: Option<u64>,
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
    pub rewards: i64,
    /// Reward credits.
    pub reward_count: usize,
    /// Grid power at the home's connection today, 15-minute means: (ms, W; + import).
    pub grid_power: Vec<(i64, i64)>,
    /// When the page was made (market time, RFC 3339).
    pub at: String,
}

/// Something went wrong; said so a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    /// Logged in, if so.
    pub session: Option<Session>,
    /// HTTP status.
    pub status: u16,
    /// Short title.
    pub title: String,
    /// What happened and what to do.
    pub message: String,
}

/// The login form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginData {
    /// The name tried, to fill in again.
    pub username: String,
    /// Why the last try failed.
    pub error: Option<String>,
}

/// Every page, with its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "page", content = "data", rename_all = "snake_case")]
pub enum Page {
    /// `/login`.
    Login(LoginData),
    /// `/home/{participant}`.
    Home(Box<HomeData>),
    /// Any error.
    Error(ErrorData),
}

impl Page {
    /// The document title.
    pub fn title(&self) -> String {
        match self {
            Self::Login(_) => "Log in · GridShare".into(),
            Self::Home(d) => format!("{} · GridShare", d.session.name),
            Self::Error(e) => format!("{} · GridShare", e.title),
        }
    }
}

/// The page's view.
pub fn view(page: Page) -> AnyView {
    match page {
        Page::Login(d) => view! { <LoginPage data=d/> }.into_any(),
        Page::Home(d) => view! { <HomePage data=*d/> }.into_any(),
        Page::Error(d) => view! { <ErrorPage data=d/> }.into_any(),
    }
}

#[component]
fn Header(session: Option<Session>) -> impl IntoView {
    view! {
        <header class="top">
            <a class="brand" href="/">"GridShare"</a>
            {session.map(|s| view! {
                <nav>
                    <span class="who">{s.name.clone()} " · " {s.role.clone()}</span>
                    <form method="post" action="/logout"><button class="link" type="submit">"Log out"</button></form>
                </nav>
            })}
        </header>
    }
}

#[component]
fn LoginPage(data: LoginData) -> impl IntoView {
    view! {
        <Header session=None/>
        <main class="narrow">
            <h1>"Log in"</h1>
            <p class="muted">"Homeowners, installers, grid operators and traders log in here."</p>
            {data.error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <form method="post" action="/login" class="card form">
                <label>"User name" <input name="username" autocomplete="username" required value=data.username/></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required/></label>
                <button type="submit">"Log in"</button>
            </form>
        </main>
    }
}

#[component]
fn ErrorPage(data: ErrorData) -> impl IntoView {
    view! {
        <Header session=data.session.clone()/>
        <main class="narrow">
            <h1>{data.title.clone()}</h1>
            <p class="error" role="alert" data-status=data.status>{data.message.clone()}</p>
            <p><a href="/">"Back to my dashboard"</a></p>
        </main>
    }
}

/// Which trades the table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    All,
    Bought,
    Sold,
}

#[component]
fn HomePage(data: HomeData) -> impl IntoView {
    let (filter, set_filter) = signal(Filter::All);
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
                </div>
            </section>
            <section class="card" id="power">
                <h2>"Grid power today"</h2>
                {match chart {
                    Some(l) => view! {
                        <svg class="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="grid power over the day">
                            <line x1="0" x2="600" y1=format!("{:.1}", l.zero_y) y2=format!("{:.1}", l.zero_y) class="axis"/>
                            <path d=l.path class="series"/>
                        </svg>
                        <p class="muted small">"Import up to " {power(peak)} ", export up to " {power(-trough.min(0))} " (15-minute means)"</p>
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
            {e.saved.map(|s| view! { <p>"Saved against the utility: " <b>{money(s)}</b></p> })}
        </div>
    }
}
