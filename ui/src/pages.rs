//! The pages: what each needs (serialisable, so the server can hand the same data to the browser
//! for hydration) and how it looks.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use gridshare_domain::wire::{CheckResult, TradingPreferences};
use gridshare_domain::{Micro, MicroPerKwh, W, Wh};

use crate::chart;
use crate::format::{energy, money, power, price, price_input, tokens, when};

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

/// An installer's remote check of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckData {
    /// Who.
    pub session: Session,
    /// The check (the API's shape, so a poll can update it).
    pub check: CheckRow,
}

/// A check as the API gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    /// Its number.
    pub id: u64,
    /// The gateway.
    pub gateway: u64,
    /// When it was asked (ms, market time).
    pub requested_at: i64,
    /// `waiting`, `answered` or `no_answer`.
    pub state: String,
    /// When the answer came (ms).
    #[serde(default)]
    pub answered_at: Option<i64>,
    /// What the gateway read.
    #[serde(default)]
    pub result: Option<CheckResult>,
}

impl CheckRow {
    /// In words: how it went.
    pub fn summary(&self) -> String {
        match (&self.result, self.state.as_str()) {
            (Some(r), _) => {
                let failed = r.devices.iter().filter(|d| !d.ok()).count();
                match (r.devices.len(), failed) {
                    (0, _) => "The gateway answered, but it has no devices configured.".to_owned(),
                    (n, 0) => format!("All {n} devices answered every point."),
                    (n, f) => format!("{f} of {n} devices could not be read fully: see the errors below."),
                }
            }
            (None, "no_answer") => format!(
                "Gateway {} did not answer within a minute. It is offline or cannot reach the market: check its power and network, then run the check again.",
                self.gateway
            ),
            _ => format!("Asking gateway {}…", self.gateway),
        }
    }
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

/// A price level of a book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// The price.
    pub price: MicroPerKwh,
    /// Energy resting at that price.
    pub quantity_wh: Wh,
}

/// One of my orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRow {
    /// Order id.
    pub id: u64,
    /// Delivery interval (ISO 8601).
    pub interval: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Energy.
    pub quantity_wh: Wh,
    /// Filled.
    pub filled_wh: Wh,
    /// Limit price.
    pub price: MicroPerKwh,
}

/// One of my API keys (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    /// Public id.
    pub id: String,
    /// Label.
    pub label: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Made at (RFC 3339).
    pub created_at: String,
    /// Revoked.
    pub revoked: bool,
}

/// The result of the last action, shown on top of the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// It worked.
    pub ok: bool,
    /// What happened.
    pub text: String,
}

/// The trader's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraderData {
    /// Who.
    pub session: Session,
    /// The zone.
    pub zone: u32,
    /// Books open for orders (ISO 8601 intervals), soonest first.
    pub intervals: Vec<String>,
    /// The book shown.
    pub interval: String,
    /// It still takes orders.
    pub open: bool,
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Asks, best first.
    pub asks: Vec<Level>,
    /// The book's trades, newest first: (time, energy, price).
    pub trades: Vec<(String, Wh, MicroPerKwh)>,
    /// My open orders.
    pub orders: Vec<OrderRow>,
    /// Clearing prices of the last day: (interval start ms, µ/kWh).
    pub prices: Vec<(i64, i64)>,
    /// My API keys.
    pub keys: Vec<KeyRow>,
    /// The price tick.
    pub tick: MicroPerKwh,
    /// The last action's result.
    pub flash: Option<Flash>,
    /// A key just made: its secret, shown this once.
    pub new_key: Option<String>,
}

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

/// A device behind a gateway, as last heard of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    /// Its name in the gateway's configuration.
    pub name: String,
    /// grid meter, PV inverter, battery…
    pub kind: String,
    /// ok, fault, unreachable…
    pub status: String,
    /// good, suspect, estimated.
    pub quality: String,
    /// Power, W.
    pub power_w: Option<i64>,
}

/// One of the installer's gateways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRow {
    /// Gateway id.
    pub id: u64,
    /// The home.
    pub owner: u64,
    /// Its feeder node.
    pub node: u32,
    /// Seconds (market time) since its last reading; none if it never sent one.
    pub last_reading_s: Option<i64>,
    /// Its devices.
    pub devices: Vec<DeviceRow>,
    /// Its latest remote check: (id, how it went).
    pub last_check: Option<(u64, String)>,
}

impl GatewayRow {
    /// Online: a reading within the last five minutes.
    pub fn online(&self) -> bool {
        self.last_reading_s.is_some_and(|s| s <= 300)
    }

    /// Its devices' problems, in words.
    pub fn problems(&self) -> Vec<String> {
        self.devices
            .iter()
            .filter(|d| d.status != "ok" || d.quality != "good")
            .map(|d| format!("{}: {} ({})", d.name, d.status, d.quality))
            .collect()
    }
}

/// The installer's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallerData {
    /// Who.
    pub session: Session,
    /// Their gateways.
    pub gateways: Vec<GatewayRow>,
    /// The last action's result.
    pub flash: Option<Flash>,
}

/// Every page, with its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "page", content = "data", rename_all = "snake_case")]
pub enum Page {
    /// `/login`.
    Login(LoginData),
    /// `/home/{participant}`.
    Home(Box<HomeData>),
    /// `/trader`.
    Trader(Box<TraderData>),
    /// `/installer`.
    Installer(Box<InstallerData>),
    /// `/operator`.
    Operator(Box<OperatorData>),
    /// `/operator/events/{id}`.
    Event(Box<EventData>),
    /// `/installer/gateways/{id}/checks/{check}`.
    Check(Box<CheckData>),
    /// Any error.
    Error(ErrorData),
}

impl Page {
    /// Seconds after which the page reloads itself (a running event's live view).
    pub fn refresh_seconds(&self) -> Option<u32> {
        match self {
            Self::Event(e) if matches!(e.status.as_str(), "scheduled" | "active") => Some(3),
            _ => None,
        }
    }

    /// The document title.
    pub fn title(&self) -> String {
        match self {
            Self::Login(_) => "Log in · GridShare".into(),
            Self::Home(d) => format!("{} · GridShare", d.session.name),
            Self::Trader(d) => format!("Trading · {} · GridShare", d.session.name),
            Self::Operator(_) => "Feeder · GridShare".into(),
            Self::Installer(_) => "Gateways · GridShare".into(),
            Self::Event(d) => format!("Event {} · GridShare", d.id),
            Self::Check(d) => format!("Check of gateway {} · GridShare", d.check.gateway),
            Self::Error(e) => format!("{} · GridShare", e.title),
        }
    }
}

/// The page's view.
pub fn view(page: Page) -> AnyView {
    match page {
        Page::Login(d) => view! { <LoginPage data=d/> }.into_any(),
        Page::Home(d) => view! { <HomePage data=*d/> }.into_any(),
        Page::Trader(d) => view! { <TraderPage data=*d/> }.into_any(),
        Page::Operator(d) => view! { <OperatorPage data=*d/> }.into_any(),
        Page::Installer(d) => view! { <InstallerPage data=*d/> }.into_any(),
        Page::Event(d) => view! { <EventPage data=*d/> }.into_any(),
        Page::Check(d) => view! { <CheckPage data=*d/> }.into_any(),
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

/// The last action's result: a status, or an alert.
#[component]
fn FlashLine(flash: Option<Flash>) -> impl IntoView {
    flash.map(|f| {
        view! {
            <p class=if f.ok { "ok" } else { "error" } role=if f.ok { "status" } else { "alert" }>{f.text}</p>
        }
    })
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
fn HomePage(data: HomeData) -> impl IntoView {
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
        </main>
    }
}

/// A time in ms (market time) as `25 Nov 10:15`.
fn at_ms(ms: i64) -> String {
    crate::format::when_ms(ms)
}

/// Polls `url` (GET, JSON, with the session cookie) every `every_ms` until `on` says it is done
/// or `tries` polls have gone.
#[cfg(feature = "hydrate")]
fn poll_json(url: String, every_ms: i32, tries: u32, on: impl FnMut(serde_json::Value) -> bool + 'static) {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Some(window) = web_sys::window() else { return };
    let left = Rc::new(Cell::new(tries));
    let handle = Rc::new(Cell::new(0));
    let on = Rc::new(RefCell::new(on));
    let (left_t, handle_t, window_t) = (left.clone(), handle.clone(), window.clone());
    let tick = Closure::<dyn FnMut()>::new(move || {
        if left_t.get() == 0 {
            window_t.clear_interval_with_handle(handle_t.get());
            return;
        }
        left_t.set(left_t.get() - 1);
        let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
            return;
        };
        if xhr.open_with_async("GET", &url, true).is_err() {
            return;
        }
        let (xhr_l, on_l, left_l) = (xhr.clone(), on.clone(), left_t.clone());
        let onload = Closure::once_into_js(move || {
            if xhr_l.status() != Ok(200) {
                return;
            }
            let Ok(Some(text)) = xhr_l.response_text() else { return };
            let Ok(v) = serde_json::from_str(&text) else { return };
            if (on_l.borrow_mut())(v) {
                left_l.set(0);
            }
        });
        xhr.set_onload(Some(onload.unchecked_ref()));
        let _ = xhr.send();
    });
    if let Ok(h) =
        window.set_interval_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), every_ms)
    {
        handle.set(h);
    }
    // the timer lives until it clears itself
    tick.forget();
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

#[component]
fn CheckPage(data: CheckData) -> impl IntoView {
    let (check, set_check) = signal(data.check.clone());
    // the answer usually comes within seconds: follow it
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let c = check.get_untracked();
        if c.state == "waiting" {
            let url = format!("/api/v1/gateways/{}/checks/{}", c.gateway, c.id);
            poll_json(url, 1_000, 90, move |v| {
                let Ok(row) = serde_json::from_value::<CheckRow>(v) else {
                    return false;
                };
                let done = row.state != "waiting";
                set_check.set(row);
                done
            });
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = set_check;
    let gateway = data.check.gateway;
    view! {
        <Header session=Some(data.session.clone())/>
        <main>
            <p><a href="/installer">"← My gateways"</a></p>
            <h1>"Check of gateway " {gateway}</h1>
            {move || {
                let c = check.get();
                view! {
                    <section class="card" id="check" data-state=c.state.clone()>
                        <p class="muted">"Asked " {at_ms(c.requested_at)} " UTC"
                            {c.answered_at.map(|t| format!(", answered {} UTC", at_ms(t)))}</p>
                        <p class=match c.state.as_str() { "waiting" => "loading", "no_answer" => "bad", _ => "" }>{c.summary()}</p>
                        {c.result.clone().map(|r| view! {
                            <p class="muted small">
                                "Gateway software " {r.software.clone()} " · "
                                {match r.outbox {
                                    0 => "nothing waiting to be sent · ".to_owned(),
                                    1 => "1 message waiting to be sent · ".to_owned(),
                                    n => format!("{n} messages waiting to be sent · "),
                                }}
                                {match r.preferences_version {
                                    Some(v) => format!("homeowner's preferences version {v}"),
                                    None => "no homeowner's preferences yet".to_owned(),
                                }}
                            </p>
                        })}
                    </section>
                    {c.result.map(|r| r.devices.into_iter().map(|d| {
                        let ok = d.ok();
                        view! {
                            <section class="card device" data-device=d.device.to_string() data-ok=if ok { "yes" } else { "no" }>
                                <h2>{d.device.to_string()} " · " {d.model.clone()}</h2>
                                <p class="muted small">{d.address.clone()} " · read in " {d.elapsed_ms} " ms"
                                    {(d.not_shown > 0).then(|| format!(" · {} more points read, not shown (a check fits in one message)", d.not_shown))}</p>
                                <div class="scroll">
                                    <table>
                                        <thead><tr><th>"Point"</th><th>"Value"</th><th>"Problem"</th></tr></thead>
                                        <tbody>
                                            {d.points.into_iter().map(|p| {
                                                let failed = p.error.is_some();
                                                let value = match (p.value, failed) {
                                                    (Some(v), _) => format!("{v} {}", p.unit),
                                                    (None, true) => "—".to_owned(),
                                                    (None, false) => "not implemented".to_owned(),
                                                };
                                                view! {
                                                    <tr class="point" data-ok=if failed { "no" } else { "yes" }>
                                                        <td>{p.name}</td>
                                                        <td>{value}</td>
                                                        <td class=if failed { "bad" } else { "" }>{p.error.unwrap_or_default()}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            </section>
                        }
                    }).collect_view())}
                    <form method="post" action=format!("/installer/gateways/{gateway}/check")>
                        <button type="submit" disabled=c.state == "waiting">"Run the check again"</button>
                    </form>
                }
            }}
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

/// Parses a price typed in €/kWh (`0.123`, `0,123`) into µ/kWh, checking it against the tick.
pub fn parse_price(text: &str, tick: MicroPerKwh) -> Result<MicroPerKwh, String> {
    let tick = tick.0;
    let t = text.trim().replace(',', ".");
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    let negative = whole.starts_with('-');
    let whole = whole.trim_start_matches('-');
    if whole.is_empty() && frac.is_empty() {
        return Err("give a price in € per kWh, e.g. 0.120".into());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 6 {
        return Err(format!("{text:?} is not a price in € per kWh (e.g. 0.120)"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "the price is too large".to_owned())?
    };
    let micro = whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(format!("{frac:0<6}").parse::<i64>().ok()?))
        .ok_or_else(|| "the price is too large".to_owned())?;
    let micro = if negative { -micro } else { micro };
    if tick > 0 && micro % tick != 0 {
        return Err(format!("prices go in steps of {}", price(MicroPerKwh(tick))));
    }
    Ok(MicroPerKwh(micro))
}

#[component]
fn TraderPage(data: TraderData) -> impl IntoView {
    let tick = data.tick;
    let (price_text, set_price_text) = signal(String::new());
    let (qty_text, set_qty_text) = signal(String::new());
    let problem = move || {
        let p = price_text.get();
        let q = qty_text.get();
        if !p.trim().is_empty()
            && let Err(e) = parse_price(&p, tick)
        {
            return Some(e);
        }
        if !q.trim().is_empty() && q.trim().parse::<i64>().map_or(true, |v| v <= 0) {
            return Some("the quantity is a whole number of Wh above 0".to_owned());
        }
        None
    };
    let chart = chart::line(&data.prices, 600.0, 120.0);
    let interval = data.interval.clone();
    let book_rows = |levels: &[Level], side: &'static str| {
        levels
            .iter()
            .map(|l| view! { <tr class=format!("level {side}")><td>{price(l.price)}</td><td>{energy(l.quantity_wh)}</td></tr> })
            .collect_view()
    };
    view! {
        <Header session=Some(data.session.clone())/>
        <main>
            <h1>"Trading · zone " {data.zone}</h1>
            <FlashLine flash=data.flash.clone()/>
            {data.new_key.clone().map(|k| view! {
                <div class="card" id="new-key">
                    <h2>"Your new API key"</h2>
                    <p>"Copy it now: it is shown this once and never stored."</p>
                    <p><code class="secret">{k}</code></p>
                </div>
            })}
            <form method="get" action="/trader" class="chips">
                <label>"Delivery interval "
                    <select name="interval" onchange="this.form.submit()">
                        {data.intervals.iter().map(|i| {
                            let selected = *i == data.interval;
                            view! { <option value=i.clone() selected=selected>{when(i)}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <noscript><button type="submit">"Show"</button></noscript>
            </form>
            <section class="cards">
                <div class="card" id="book">
                    <h2>"Order book " {when(&data.interval)} {(!data.open).then_some(" (closed)")}</h2>
                    <table class="book">
                        <thead><tr><th>"Price"</th><th>"Energy"</th></tr></thead>
                        <tbody>
                            <tr class="side"><td colspan="2">"Asks (sell)"</td></tr>
                            {book_rows(&data.asks, "ask")}
                            <tr class="side"><td colspan="2">"Bids (buy)"</td></tr>
                            {book_rows(&data.bids, "bid")}
                        </tbody>
                    </table>
                </div>
                <div class="card" id="place">
                    <h2>"Place an order"</h2>
                    <form method="post" action="/trader/orders" class="form">
                        <input type="hidden" name="interval" value=interval.clone()/>
                        <label>"Side"
                            <select name="side"><option value="buy">"buy"</option><option value="sell">"sell"</option></select>
                        </label>
                        <label>"Energy (Wh)"
                            <input name="quantity_wh" inputmode="numeric" required
                                on:input=move |ev| set_qty_text.set(event_target_value(&ev))/>
                        </label>
                        <label>"Limit price (€/kWh)"
                            <input name="price" inputmode="decimal" required placeholder="0.120"
                                on:input=move |ev| set_price_text.set(event_target_value(&ev))/>
                        </label>
                        <p class="error" role="alert" class:hidden=move || problem().is_none()>{move || problem().unwrap_or_default()}</p>
                        <button type="submit" disabled=move || problem().is_some()>"Place order"</button>
                    </form>
                </div>
            </section>
            <section class="card" id="orders">
                <h2>"My open orders"</h2>
                <div class="scroll">
                    <table>
                        <thead><tr><th>"Interval"</th><th>"Side"</th><th>"Energy"</th><th>"Filled"</th><th>"Price"</th><th></th></tr></thead>
                        <tbody>
                            {data.orders.iter().map(|o| view! {
                                <tr class="order" data-id=o.id>
                                    <td>{when(&o.interval)}</td><td>{o.side.clone()}</td>
                                    <td>{energy(o.quantity_wh)}</td><td>{energy(o.filled_wh)}</td><td>{price(o.price)}</td>
                                    <td>
                                        <form method="post" action=format!("/trader/orders/{}/cancel", o.id)>
                                            <input type="hidden" name="interval" value=interval.clone()/>
                                            <button class="link" type="submit">"Cancel"</button>
                                        </form>
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {data.orders.is_empty().then(|| view! { <p class="muted">"No open orders."</p> })}
            </section>
            <section class="cards">
                <div class="card" id="tape">
                    <h2>"Trades in this interval"</h2>
                    {if data.trades.is_empty() {
                        view! { <p class="muted">"None yet."</p> }.into_any()
                    } else {
                        view! {
                            <table><tbody>
                                {data.trades.iter().map(|(at, q, p)| view! {
                                    <tr><td>{when(at)}</td><td>{energy(*q)}</td><td>{price(*p)}</td></tr>
                                }).collect_view()}
                            </tbody></table>
                        }.into_any()
                    }}
                </div>
                <div class="card" id="prices">
                    <h2>"Clearing prices, last 24 h"</h2>
                    {match chart {
                        Some(l) => view! {
                            <svg class="chart" viewBox="0 0 600 120" preserveAspectRatio="none" role="img" aria-label="clearing prices">
                                <path d=l.path class="series"/>
                            </svg>
                            <p class="muted small">{price(MicroPerKwh(l.y_range.0.max(0)))} " to " {price(MicroPerKwh(l.y_range.1))}</p>
                        }.into_any(),
                        None => view! { <p class="muted">"Not enough auctions yet."</p> }.into_any(),
                    }}
                </div>
            </section>
            <section class="card" id="keys">
                <h2>"API keys"</h2>
                <div class="scroll">
                    <table>
                        <thead><tr><th>"Key"</th><th>"Label"</th><th>"Scopes"</th><th>"Made"</th><th></th></tr></thead>
                        <tbody>
                            {data.keys.iter().map(|k| view! {
                                <tr class="key" data-id=k.id.clone()>
                                    <td><code>{k.id.clone()}</code></td><td>{k.label.clone()}</td>
                                    <td>{k.scopes.join(", ")}</td><td>{when(&k.created_at)}</td>
                                    <td>{if k.revoked {
                                        view! { <span class="muted">"revoked"</span> }.into_any()
                                    } else {
                                        view! {
                                            <form method="post" action=format!("/trader/keys/{}/revoke", k.id)>
                                                <button class="link" type="submit">"Revoke"</button>
                                            </form>
                                        }.into_any()
                                    }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <form method="post" action="/trader/keys" class="form inline">
                    <label>"Label " <input name="label" maxlength="64"/></label>
                    <label class="check"><input type="checkbox" name="read" checked/>" read"</label>
                    <label class="check"><input type="checkbox" name="trade"/>" trade"</label>
                    <button type="submit">"Make a key"</button>
                </form>
            </section>
        </main>
    }
}

/// Seconds as "12 s", "4 min", "3 h".
fn age(s: i64) -> String {
    match s {
        ..=0 => "just now".into(),
        1..=119 => format!("{s} s ago"),
        120..=7_199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3_600),
    }
}

#[component]
fn InstallerPage(data: InstallerData) -> impl IntoView {
    let (key_text, set_key_text) = signal(String::new());
    let key_problem = move || {
        let k = key_text.get();
        let k = k.trim().trim_start_matches("0x");
        if k.is_empty() {
            return None;
        }
        if !k.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some("a public key is hexadecimal (from `gateway keygen`)".to_owned());
        }
        match k.len() {
            66 | 130 => None,
            n => Some(format!("a public key has 66 or 130 hex digits, this one {n}")),
        }
    };
    view! {
        <Header session=Some(data.session.clone())/>
        <main>
            <h1>"My gateways"</h1>
            <FlashLine flash=data.flash.clone()/>
            <section class="card" id="gateways">
                <div class="scroll">
                    <table>
                        <thead><tr><th>"Gateway"</th><th>"Home"</th><th>"Node"</th><th>"State"</th><th>"Last reading"</th><th>"Devices"</th><th>"Problems"</th><th>"Remote check"</th></tr></thead>
                        <tbody>
                            {data.gateways.iter().map(|g| {
                                let problems = g.problems();
                                view! {
                                    <tr class="gateway" data-id=g.id data-online=if g.online() { "yes" } else { "no" }>
                                        <td>{g.id}</td><td>{g.owner}</td><td>{g.node}</td>
                                        <td class=if g.online() { "state on" } else { "state off" }>{if g.online() { "online" } else { "offline" }}</td>
                                        <td>{g.last_reading_s.map_or_else(|| "never".to_owned(), age)}</td>
                                        <td>{g.devices.iter().map(|d| format!("{} ({}{})", d.name, d.kind, d.power_w.map(|w| format!(", {}", power(W(w)))).unwrap_or_default())).collect::<Vec<_>>().join("; ")}</td>
                                        <td class=if problems.is_empty() { "" } else { "bad" }>{if problems.is_empty() { "none".to_owned() } else { problems.join("; ") }}</td>
                                        <td>
                                            <form method="post" action=format!("/installer/gateways/{}/check", g.id)>
                                                <button type="submit" class="small">"Run check"</button>
                                            </form>
                                            {g.last_check.clone().map(|(id, how)| view! {
                                                <a class="small" href=format!("/installer/gateways/{}/checks/{id}", g.id)>"last: " {how}</a>
                                            })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {data.gateways.is_empty().then(|| view! { <p class="muted">"You have not commissioned a gateway yet."</p> })}
            </section>
            <section class="card" id="commission">
                <h2>"Commission a gateway"</h2>
                <form method="post" action="/installer/gateways" class="form">
                    <label>"Gateway id (its configuration's gateway.id)" <input name="id" inputmode="numeric" required/></label>
                    <label>"Home (participant id)" <input name="owner" inputmode="numeric" required/></label>
                    <label>"Public key (printed by gateway keygen)"
                        <input name="public_key" required on:input=move |ev| set_key_text.set(event_target_value(&ev))/>
                    </label>
                    <label>"Feeder node (empty: the home's)" <input name="node" inputmode="numeric"/></label>
                    <p class="error" role="alert" class:hidden=move || key_problem().is_none()>{move || key_problem().unwrap_or_default()}</p>
                    <button type="submit" disabled=move || key_problem().is_some()>"Commission"</button>
                </form>
            </section>
        </main>
    }
}

#[component]
fn OperatorPage(data: OperatorData) -> impl IntoView {
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
                        <thead><tr><th>"Node"</th><th>"Load"</th><th>"Limit"</th><th>"In use"</th><th>"Gateways"</th></tr></thead>
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
        </main>
    }
}

#[component]
fn EventPage(data: EventData) -> impl IntoView {
    let session = data.session.clone();
    let (event, set_event) = signal(data);
    // while it runs, the response updates in place from the page's data (polled)
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let e = event.get_untracked();
        if matches!(e.status.as_str(), "scheduled" | "active") {
            poll_json(format!("/operator/events/{}/live", e.id), 2_000, 100_000, move |v| {
                let Ok(d) = serde_json::from_value::<EventData>(v) else {
                    return false;
                };
                let done = !matches!(d.status.as_str(), "scheduled" | "active");
                set_event.set(d);
                done
            });
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = set_event;
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
    fn prices_are_read_as_people_type_them() {
        assert_eq!(parse_price("0.120", MicroPerKwh(1_000)), Ok(MicroPerKwh(120_000)));
        assert_eq!(parse_price(" 0,5 ", MicroPerKwh(1_000)), Ok(MicroPerKwh(500_000)));
        assert_eq!(parse_price("1", MicroPerKwh(1_000)), Ok(MicroPerKwh(1_000_000)));
        assert_eq!(parse_price("-0.05", MicroPerKwh(1_000)), Ok(MicroPerKwh(-50_000)));
        assert!(
            parse_price("0.1234", MicroPerKwh(1_000))
                .unwrap_err()
                .contains("steps of €0.001/kWh")
        );
        assert!(
            parse_price("abc", MicroPerKwh(1_000))
                .unwrap_err()
                .contains("not a price")
        );
        assert!(parse_price("", MicroPerKwh(1_000)).is_err());
        assert!(
            parse_price("99999999999999", MicroPerKwh(1_000))
                .unwrap_err()
                .contains("too large")
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

    #[test]
    fn a_check_says_how_it_went() {
        use gridshare_domain::DeviceId;
        use gridshare_domain::wire::{DeviceCheck, DeviceKind, PointCheck};
        let point = |error: Option<&str>| PointCheck {
            name: "power".into(),
            value: error.is_none().then(|| "812".to_owned()),
            unit: "W".into(),
            error: error.map(str::to_owned),
        };
        let device = |error| DeviceCheck {
            device: DeviceId::new("meter").unwrap(),
            kind: DeviceKind::GridMeter,
            model: "Eastron SDM630".into(),
            address: "127.0.0.1:502 unit 1".into(),
            elapsed_ms: 20,
            points: vec![point(None), point(error)],
            not_shown: 0,
        };
        let row = |state: &str, devices: Option<Vec<DeviceCheck>>| CheckRow {
            id: 1,
            gateway: 7,
            requested_at: 0,
            state: state.into(),
            answered_at: None,
            result: devices.map(|devices| CheckResult {
                check_id: 1,
                software: "0.1.0".into(),
                outbox: 0,
                preferences_version: None,
                devices,
            }),
        };
        assert_eq!(row("waiting", None).summary(), "Asking gateway 7…");
        assert!(
            row("no_answer", None)
                .summary()
                .contains("did not answer within a minute")
        );
        assert_eq!(
            row("answered", Some(vec![device(None), device(None)])).summary(),
            "All 2 devices answered every point."
        );
        assert!(
            row("answered", Some(vec![device(None), device(Some("timeout"))]))
                .summary()
                .starts_with("1 of 2 devices")
        );
        assert!(row("answered", Some(vec![])).summary().contains("no devices"));
    }
}
