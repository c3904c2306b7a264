//! The homeowner's trading agent: from what the home's devices say now and a simple forecast,
//! it bids and asks for the next delivery interval whose gate is still open, always within the
//! homeowner's limits, and runs the battery to deliver what it sold.
//!
//! # Strategy
//!
//! **Forecast** for the target interval, from the telemetry of every cycle:
//! - household load (grid − battery − EV + PV, the part the agent does not control): an
//!   exponentially weighted mean with a 15-minute time constant;
//! - PV: the power now (smoothed over 5 minutes against passing clouds), scaled by a clear-sky curve (a half sine from 06:00 to 18:00 local solar
//!   time) from now to the middle of the target interval — persistence that knows the sun sets;
//! - EV: if it is charging now, it goes on at the same power.
//!
//! **Energy balance**, in Wh over the interval, in this order:
//! 1. PV surplus over the household load covers the EV first;
//! 2. the battery's energy above the homeowner's reserve covers what the home still needs
//!    (household, then the EV), within its power rating;
//! 3. PV surplus left over charges the battery up to the reserve;
//! 4. what the home still needs is bought; PV left over is sold; battery energy above the
//!    reserve that the home does not need is offered too.
//!
//! A home therefore never bids and asks in the same interval.
//!
//! **Prices** are the homeowner's limits, which in a uniform-price auction are the right thing
//! to bid: what the home needs is bid at `max_buy_price`; PV surplus is offered at
//! `min_sell_price`. Flexible energy sits between them, at the midpoint: battery energy (keeping
//! it could save the home `max_buy_price` later) and EV charging when the car is not due within
//! [`EV_URGENT_HOURS`] of the ready-by hour (it buys only when local energy is cheap). Prices are
//! rounded to the market's tick inwards: asks up, bids down, so no limit is ever crossed.
//!
//! **Orders** are good till gate closure and continuous. Each cycle the wanted quantities are
//! compared with what rests in the book; an order is replaced (cancel, then a new one for what
//! is still wanted after fills) when the difference is more than `min_order_wh` and 20 %, at
//! most once a minute per order. A rejected order is not sent again for that interval.
//!
//! **Delivery**: during the interval, the battery's setpoint is what the plan said at gate
//! closure — charging to the reserve, covering the home — plus the battery energy that was
//! actually sold (from the fills). Demand response takes precedence over all of it.

use std::collections::BTreeMap;

use gridshare_domain::market::{OrderMode, Side, TimeInForce};
use gridshare_domain::wire::{Fill, NewOrder, OrderAck, TradingPreferences};
use gridshare_domain::{DeliveryInterval, IntervalLength, MicroPerKwh, OrderId, Timestamp, Wh, ZoneId};

use crate::config::AgentSection;

/// Hours before the ready-by hour in which EV charging is bought at any price up to the limit.
pub const EV_URGENT_HOURS: i64 = 4;
/// Time constant of the household load forecast, seconds.
const LOAD_TAU_S: f64 = 900.0;
/// Time constant of the PV smoothing (clouds come and go), seconds.
const PV_TAU_S: f64 = 300.0;
/// Orders are placed for an interval until this long before its gate closes, ms.
const LEAD_MS: i64 = 60_000;
/// An order is changed at most this often, ms.
const REQUOTE_MS: i64 = 60_000;
/// EV power below this is not charging, W.
const EV_CHARGING_W: f64 = 100.0;

/// The market's rules the agent needs (the same values as the market service's configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketRules {
    /// The home's zone.
    pub zone: ZoneId,
    /// Delivery interval length.
    pub interval: IntervalLength,
    /// Minutes before an interval starts that its book closes.
    pub gate_closure_minutes: i64,
    /// Price tick, µ/kWh.
    pub tick: i64,
}

/// The home's storage, from its battery's profile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Battery {
    /// Usable capacity, Wh.
    pub capacity_wh: f64,
    /// Most power it charges or discharges with, W.
    pub max_w: f64,
}

/// One cycle's readings (`None` for a device the home does not have or could not read). Signs:
/// grid + import, PV + production, battery + charging, EV + charging.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reading {
    /// When.
    pub at: Timestamp,
    /// Grid connection power, W.
    pub grid_w: Option<f64>,
    /// PV production, W.
    pub pv_w: Option<f64>,
    /// Battery power, W.
    pub battery_w: Option<f64>,
    /// Battery state of charge, ‰.
    pub soc_permille: Option<u16>,
    /// EV charging power, W.
    pub ev_w: Option<f64>,
}

/// What the agent wants for one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The interval.
    pub interval: DeliveryInterval,
    /// Quantities wanted, by side and limit price, Wh.
    pub orders: BTreeMap<(Side, i64), i64>,
    /// Battery power planned regardless of trades (+ charge to the reserve, − covering the
    /// home), W.
    pub battery_w: f64,
    /// Of the asks, the one at this price is battery energy (delivered by discharging when sold).
    pub battery_ask_price: Option<i64>,
}

/// Something for the gateway to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A new order.
    Place(NewOrder),
    /// Cancel an order.
    Cancel(OrderId),
}

#[derive(Debug, Clone)]
struct Resting {
    id: OrderId,
    quantity: i64,
    filled: i64,
    placed_at: Timestamp,
    live: bool,
}

/// Everything the agent did for one interval.
#[derive(Debug, Clone, Default)]
struct Book {
    orders: BTreeMap<(Side, i64), Vec<Resting>>,
    battery_w: f64,
    battery_ask_price: Option<i64>,
    rejected: bool,
}

impl Book {
    fn filled(&self, key: (Side, i64)) -> i64 {
        self.orders.get(&key).map_or(0, |v| v.iter().map(|r| r.filled).sum())
    }
}

/// The agent. Feed it readings with [`Agent::observe`]; ask it what to do with [`Agent::decide`].
#[derive(Debug, Clone)]
pub struct Agent {
    limits: AgentSection,
    rules: MarketRules,
    battery: Option<Battery>,
    load_w: Option<f64>,
    pv_w: Option<f64>,
    last: Option<Reading>,
    books: BTreeMap<DeliveryInterval, Book>,
    /// The limits changed since the last decision: re-price resting orders now.
    repriced: bool,
}

/// Clear-sky shape of PV at `t` (0 at night, 1 at solar noon), local solar time = UTC + offset.
fn clear_sky(t: Timestamp, utc_offset_minutes: i64) -> f64 {
    let minutes = (t.0.div_euclid(60_000) + utc_offset_minutes).rem_euclid(24 * 60) as f64;
    let h = minutes / 60.0;
    if (6.0..18.0).contains(&h) {
        (std::f64::consts::PI * (h - 6.0) / 12.0).sin()
    } else {
        0.0
    }
}

fn round_up(price: i64, tick: i64) -> i64 {
    price.div_euclid(tick) * tick + if price.rem_euclid(tick) == 0 { 0 } else { tick }
}

fn round_down(price: i64, tick: i64) -> i64 {
    price.div_euclid(tick) * tick
}

impl Agent {
    /// An agent with the homeowner's limits, the market's rules and the home's battery, if any.
    pub fn new(limits: AgentSection, rules: MarketRules, battery: Option<Battery>) -> Self {
        Self {
            limits,
            rules,
            battery,
            load_w: None,
            pv_w: None,
            last: None,
            books: BTreeMap::new(),
            repriced: false,
        }
    }

    /// The limits it trades within.
    pub fn limits(&self) -> &AgentSection {
        &self.limits
    }

    /// Takes the homeowner's new limits (validated by the caller). At the next decision, resting
    /// orders at prices the plan no longer uses are replaced at once, without the usual wait.
    pub fn set_preferences(&mut self, p: &TradingPreferences) {
        self.limits.min_sell_price = p.min_sell_price.0;
        self.limits.max_buy_price = p.max_buy_price.0;
        self.limits.battery_reserve_percent = p.battery_reserve_percent;
        self.repriced = true;
    }

    /// True when the limits allow an order at `price` on `side`.
    fn allows(&self, side: Side, price: i64) -> bool {
        match side {
            Side::Sell => price >= self.limits.min_sell_price,
            Side::Buy => price <= self.limits.max_buy_price,
        }
    }

    /// Takes a cycle's readings into the forecast.
    pub fn observe(&mut self, r: Reading) {
        let dt = self.last.map_or(0.0, |l| (r.at.0 - l.at.0).max(0) as f64 / 1_000.0);
        let smooth = |prev: Option<f64>, now: f64, tau: f64| match prev {
            None => now,
            Some(p) => p + (1.0 - (-dt / tau).exp()) * (now - p),
        };
        if let Some(grid) = r.grid_w {
            let load = (grid - r.battery_w.unwrap_or(0.0) - r.ev_w.unwrap_or(0.0) + r.pv_w.unwrap_or(0.0)).max(0.0);
            self.load_w = Some(smooth(self.load_w, load, LOAD_TAU_S));
        }
        if let Some(pv) = r.pv_w {
            self.pv_w = Some(smooth(self.pv_w, pv.max(0.0), PV_TAU_S));
        }
        self.last = Some(r);
    }

    /// The interval orders go to at `now`: the first whose gate closes more than a minute later.
    pub fn target(&self, now: Timestamp) -> DeliveryInterval {
        let mut i = DeliveryInterval::containing(now, self.rules.interval).next();
        while i.start().0 - self.rules.gate_closure_minutes * 60_000 - LEAD_MS <= now.0 {
            i = i.next();
        }
        i
    }

    fn mid_price(&self) -> i64 {
        (self.limits.min_sell_price + self.limits.max_buy_price) / 2
    }

    /// What the agent wants for the target interval at `now`, or `None` before the first reading.
    pub fn plan(&self, now: Timestamp) -> Option<Plan> {
        let last = self.last?;
        let load_w = self.load_w?;
        let interval = self.target(now);
        let hours = self.rules.interval.minutes() as f64 / 60.0;
        let mid_time = Timestamp(interval.start().0 + self.rules.interval.millis() / 2);
        let offset = self.limits.utc_offset_minutes;
        let sky_now = clear_sky(last.at, offset);
        let pv_w = match self.pv_w {
            Some(pv) if sky_now > 0.1 => pv * (clear_sky(mid_time, offset) / sky_now).min(3.0),
            _ => 0.0,
        };
        let ev_w = last.ev_w.filter(|w| *w > EV_CHARGING_W).unwrap_or(0.0);
        let ev_urgent = self.limits.ev_ready_by_hour.is_some_and(|ready| {
            let local_min = (interval.start().0.div_euclid(60_000) + offset).rem_euclid(24 * 60);
            let until = (i64::from(ready) * 60 - local_min).rem_euclid(24 * 60);
            until <= EV_URGENT_HOURS * 60
        });

        // energy over the interval, Wh
        let load = load_w * hours;
        let pv = pv_w * hours;
        let (mut ev_urgent_wh, mut ev_flexible_wh) = if ev_urgent {
            (ev_w * hours, 0.0)
        } else {
            (0.0, ev_w * hours)
        };
        let mut surplus = (pv - load).max(0.0);
        let mut deficit = (load - pv).max(0.0);
        // 1. PV surplus covers the EV
        for need in [&mut ev_urgent_wh, &mut ev_flexible_wh] {
            let take = surplus.min(*need);
            *need -= take;
            surplus -= take;
        }
        // 2. the battery above its reserve covers the home, within its power
        let (mut above, mut below, mut power_wh) = (0.0, 0.0, 0.0);
        if let (Some(b), Some(soc)) = (self.battery, last.soc_permille) {
            let stored = b.capacity_wh * f64::from(soc) / 1_000.0;
            let reserve = b.capacity_wh * f64::from(self.limits.battery_reserve_percent) / 100.0;
            above = (stored - reserve).max(0.0);
            below = (reserve - stored).max(0.0);
            power_wh = b.max_w * hours;
        }
        let mut cover = 0.0;
        for need in [&mut deficit, &mut ev_urgent_wh, &mut ev_flexible_wh] {
            let take = (above.min(power_wh) - cover).max(0.0).min(*need);
            *need -= take;
            cover += take;
        }
        above -= cover;
        // 3. PV left over charges the battery up to its reserve
        let charge = surplus.min(below).min(power_wh);
        surplus -= charge;
        // 4. buy what is still needed, sell what is left
        let min_order = self.limits.min_order_wh as f64;
        let tick = self.rules.tick;
        let mut orders = BTreeMap::new();
        let mut put = |side: Side, price: i64, wh: f64| {
            if wh >= min_order {
                *orders.entry((side, price)).or_insert(0) += wh.floor() as i64;
            }
        };
        let max_buy = round_down(self.limits.max_buy_price, tick);
        let min_sell = round_up(self.limits.min_sell_price, tick);
        // the midpoint, rounded so that it stays within both limits
        let mid_buy = round_down(self.mid_price(), tick).max(min_sell).min(max_buy);
        let mid_sell = round_up(self.mid_price(), tick).min(max_buy).max(min_sell);
        put(Side::Buy, max_buy, deficit + ev_urgent_wh);
        put(Side::Buy, mid_buy, ev_flexible_wh);
        let needs = deficit + ev_urgent_wh + ev_flexible_wh;
        put(Side::Sell, min_sell, surplus);
        let battery_sell = if needs < min_order {
            (above.min(power_wh - charge - cover)).max(0.0)
        } else {
            0.0
        };
        // (when the midpoint rounds to the minimum sell price, PV and battery share one ask; the
        // battery then delivers whatever of it is sold beyond the PV surplus — see `battery_target`)
        let battery_ask_price = (battery_sell >= min_order).then_some(mid_sell);
        put(Side::Sell, mid_sell, battery_sell);
        Some(Plan {
            interval,
            orders,
            battery_w: (charge - cover) / hours,
            battery_ask_price,
        })
    }

    /// What to send at `now`: new orders and cancels for the target interval. `next_id` gives
    /// a fresh client order id each time it is called.
    pub fn decide(&mut self, now: Timestamp, mut next_id: impl FnMut() -> OrderId) -> Vec<Action> {
        // books whose interval is over are done with
        self.books.retain(|i, _| i.end().0 > now.0);
        if !self.limits.enabled {
            return Vec::new();
        }
        let Some(plan) = self.plan(now) else {
            return Vec::new();
        };
        let rules = self.rules;
        let min_order_wh = self.limits.min_order_wh;
        // resting orders at prices the limits forbid, or (after new limits) the plan no longer uses
        let repriced = std::mem::take(&mut self.repriced);
        let stale: std::collections::BTreeSet<(Side, i64)> = self
            .books
            .get(&plan.interval)
            .map(|b| {
                b.orders
                    .keys()
                    .copied()
                    .filter(|&(side, price)| {
                        !self.allows(side, price) || (repriced && !plan.orders.contains_key(&(side, price)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let book = self.books.entry(plan.interval).or_default();
        book.battery_w = plan.battery_w;
        book.battery_ask_price = plan.battery_ask_price;
        if book.rejected {
            return Vec::new();
        }
        let mut actions = Vec::new();
        // every key wanted now or resting from before
        let keys: Vec<(Side, i64)> = plan.orders.keys().chain(book.orders.keys()).copied().collect();
        let mut done = std::collections::BTreeSet::new();
        for key in keys {
            if !done.insert(key) {
                continue;
            }
            let wanted = plan.orders.get(&key).copied().unwrap_or(0);
            let still = (wanted - book.filled(key)).max(0);
            let resting: Vec<&mut Resting> = book
                .orders
                .entry(key)
                .or_default()
                .iter_mut()
                .filter(|r| r.live)
                .collect();
            let open: i64 = resting.iter().map(|r| r.quantity - r.filled).sum();
            let threshold = min_order_wh.max(wanted / 5);
            // an order the homeowner's limits no longer allow, or re-priced, goes at once
            let forbidden = stale.contains(&key);
            if (still - open).abs() <= threshold && !forbidden {
                continue;
            }
            if !forbidden && resting.iter().any(|r| now.0 - r.placed_at.0 < REQUOTE_MS) {
                continue; // changed a moment ago: let it settle
            }
            for r in resting {
                r.live = false;
                actions.push(Action::Cancel(r.id));
            }
            if still >= min_order_wh {
                let id = next_id();
                let (side, price) = key;
                book.orders.entry(key).or_default().push(Resting {
                    id,
                    quantity: still,
                    filled: 0,
                    placed_at: now,
                    live: true,
                });
                actions.push(Action::Place(NewOrder {
                    order_id: id,
                    zone: rules.zone,
                    interval: plan.interval,
                    side,
                    quantity: Wh(still),
                    limit_price: MicroPerKwh(price),
                    tif: TimeInForce::GoodTillGateClosure,
                    mode: OrderMode::Continuous,
                }));
            }
        }
        // cancels first: the home is never in the market twice for the same energy
        actions.sort_by_key(|a| !matches!(a, Action::Cancel(_)));
        actions
    }

    /// The market's answer to an order or a cancel. A rejected order stops trading for its
    /// interval (the market would refuse it again); a rejected cancel only means the order was
    /// already gone (filled, or closed at the gate).
    pub fn on_ack(&mut self, ack: &OrderAck) {
        for book in self.books.values_mut() {
            let mut order_refused = false;
            for r in book
                .orders
                .values_mut()
                .flatten()
                .filter(|r| r.id == ack.client_order_id)
            {
                r.filled = r.filled.max(ack.filled.0);
                match ack.status.as_str() {
                    // we cancel by marking the order not live first: a rejection now is the cancel's
                    "rejected" if !r.live => {
                        tracing::debug!(order = ack.client_order_id.0, reason = ?ack.reason, "cancel came too late");
                    }
                    "rejected" => {
                        r.live = false;
                        order_refused = true;
                        tracing::warn!(order = ack.client_order_id.0, reason = ?ack.reason, "order rejected; not trading this interval any more");
                    }
                    "cancelled" => r.live = false,
                    "filled" if r.filled >= r.quantity => r.live = false,
                    _ => {}
                }
            }
            if order_refused {
                book.rejected = true;
            }
        }
    }

    /// A fill of one of the agent's orders.
    pub fn on_fill(&mut self, fill: &Fill) {
        for r in self.books.values_mut().flat_map(|b| b.orders.values_mut().flatten()) {
            if r.id == fill.client_order_id {
                r.filled += fill.trade.quantity.0;
                if r.filled >= r.quantity {
                    r.live = false;
                }
            }
        }
    }

    /// The battery power the trades ask for at `now` (+ charge, − discharge), W: `None` when no
    /// plan covers the interval of `now`.
    pub fn battery_target(&self, now: Timestamp) -> Option<f64> {
        let interval = DeliveryInterval::containing(now, self.rules.interval);
        let book = self.books.get(&interval)?;
        let hours = self.rules.interval.minutes() as f64 / 60.0;
        let sold_from_battery = book
            .battery_ask_price
            .map_or(0, |price| book.filled((Side::Sell, price))) as f64;
        Some(book.battery_w - sold_from_battery / hours)
    }
}

// The rules from the configuration live here, so the configuration need not know the agent.
impl AgentSection {
    /// The market's rules as the agent needs them (checked when the file was loaded).
    pub fn market_rules(&self) -> MarketRules {
        MarketRules {
            zone: gridshare_domain::ZoneId(self.zone),
            interval: gridshare_domain::IntervalLength::from_minutes(self.interval_minutes).unwrap_or_default(),
            gate_closure_minutes: self.gate_closure_minutes,
            tick: self.price_tick,
        }
    }
}

#[cfg(test)]
mod tests;
