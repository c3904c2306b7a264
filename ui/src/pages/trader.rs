//! The trader's page: an interval's order book, placing and cancelling orders, trades, clearing
//! prices and API keys.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use gridshare_domain::{MicroPerKwh, Wh};

use super::common::{Flash, FlashLine, Header, Session, parse_price};
use crate::chart;
use crate::format::{energy, price, when};

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

#[component]
pub(super) fn TraderPage(data: TraderData) -> impl IntoView {
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
                <input type="hidden" name="zone" value=data.zone/>
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
                        <input type="hidden" name="zone" value=data.zone/>
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
                                            <input type="hidden" name="zone" value=data.zone/>
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
