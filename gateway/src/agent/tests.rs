//! The agent's tests: its strategy, step by step, on made-up homes and markets.

use super::*;

fn rules() -> MarketRules {
    MarketRules {
        zone: ZoneId(1),
        interval: IntervalLength::Min15,
        gate_closure_minutes: 5,
        tick: 1_000,
    }
}

fn limits() -> AgentSection {
    AgentSection {
        enabled: true,
        min_sell_price: 90_500,
        max_buy_price: 280_700,
        battery_reserve_percent: 30,
        ev_ready_by_hour: Some(7),
        ..AgentSection::default()
    }
}

const BATTERY: Battery = Battery {
    capacity_wh: 10_000.0,
    max_w: 5_000.0,
};

/// 2025-06-21 at `h`:00 UTC.
fn at(h: i64) -> Timestamp {
    Timestamp(1_750_464_000_000 + h * 3_600_000)
}

fn reading(t: Timestamp, grid: f64, pv: f64, soc: u16, ev: f64) -> Reading {
    Reading {
        at: t,
        grid_w: Some(grid),
        pv_w: Some(pv),
        battery_w: Some(0.0),
        soc_permille: Some(soc),
        ev_w: Some(ev),
    }
}

/// Order ids 1, 2, 3, ... for `Agent::decide`.
fn order_ids() -> impl FnMut() -> OrderId {
    let mut ids = 0u64;
    move || {
        ids += 1;
        OrderId(ids)
    }
}

fn agent(r: Reading, battery: Option<Battery>) -> Agent {
    let mut a = Agent::new(limits(), rules(), battery);
    a.observe(r);
    a
}

#[test]
fn targets_the_next_interval_whose_gate_is_open() {
    let a = Agent::new(limits(), rules(), None);
    let noon = at(12);
    // 12:00: 12:15 closes at 12:10, open
    assert_eq!(a.target(noon).start().0, noon.0 + 15 * 60_000);
    // 12:09:30: 12:15's gate is 30 s away, so 12:30
    assert_eq!(a.target(Timestamp(noon.0 + 570_000)).start().0, noon.0 + 30 * 60_000);
}

#[test]
fn a_surplus_is_asked_at_the_minimum_sell_price_rounded_up() {
    // noon, 4 kW PV, 1 kW load: 3 kW over, 15 minutes = 750 Wh; battery at its reserve
    let a = agent(reading(at(12), -3_000.0, 4_000.0, 300, 0.0), Some(BATTERY));
    let p = a.plan(at(12)).unwrap();
    assert_eq!(p.orders.len(), 1, "{p:?}");
    let (&(side, price), &wh) = p.orders.iter().next().unwrap();
    assert_eq!((side, price), (Side::Sell, 91_000), "90 500 rounds up to the tick");
    // the PV curve is slightly lower at 12:22 than at 12:00
    assert!((730..=750).contains(&wh), "{wh}");
    assert_eq!(p.battery_w, 0.0);
}

#[test]
fn a_deficit_is_covered_by_the_battery_above_its_reserve_then_bought() {
    // evening, 2 kW load, no sun; battery at 40 %: 1 kWh above the 30 % reserve
    let a = agent(reading(at(20), 2_000.0, 0.0, 400, 0.0), Some(BATTERY));
    let p = a.plan(at(20)).unwrap();
    // 500 Wh needed, all from the battery: nothing to buy; the other 500 Wh above the reserve
    // is offered at the midpoint
    assert_eq!(p.orders.len(), 1, "{p:?}");
    assert_eq!(p.orders.get(&(Side::Sell, 186_000)), Some(&500), "{p:?}");
    assert!((p.battery_w + 2_000.0).abs() < 1e-6, "{p:?}");
    // at 31 % only 100 Wh is above the reserve: 400 Wh bought at the limit, rounded down
    let a = agent(reading(at(20), 2_000.0, 0.0, 310, 0.0), Some(BATTERY));
    let p = a.plan(at(20)).unwrap();
    assert_eq!(p.orders.get(&(Side::Buy, 280_000)), Some(&400), "{p:?}");
    assert!((p.battery_w + 400.0).abs() < 1e-6, "{p:?}");
    // below the reserve: the battery is not touched
    let a = agent(reading(at(20), 2_000.0, 0.0, 200, 0.0), Some(BATTERY));
    let p = a.plan(at(20)).unwrap();
    assert_eq!(p.orders.get(&(Side::Buy, 280_000)), Some(&500));
    assert_eq!(p.battery_w, 0.0);
}

#[test]
fn a_surplus_charges_the_battery_to_its_reserve_before_it_is_sold() {
    // 3 kW over (750 Wh); the battery is 200 Wh under its reserve
    let a = agent(reading(at(12), -3_000.0, 4_000.0, 280, 0.0), Some(BATTERY));
    let p = a.plan(at(12)).unwrap();
    assert!((p.battery_w - 800.0).abs() < 1e-6, "200 Wh in 15 min: {p:?}");
    let sold = p.orders.get(&(Side::Sell, 91_000)).copied().unwrap();
    assert!((530..=550).contains(&sold), "{sold}");
}

#[test]
fn battery_energy_above_the_reserve_is_offered_at_the_midpoint_when_the_home_needs_none() {
    let a = agent(reading(at(12), -1_000.0, 2_000.0, 900, 0.0), Some(BATTERY));
    let p = a.plan(at(12)).unwrap();
    // midpoint of 90 500 and 280 700 is 185 600: asks round up to 186 000
    let battery = p.orders.get(&(Side::Sell, 186_000)).copied().unwrap();
    assert_eq!(battery, 1_250, "5 kW for 15 min, well above the reserve: {p:?}");
    assert_eq!(p.battery_ask_price, Some(186_000));
    assert!(
        p.orders.keys().all(|(s, _)| *s == Side::Sell),
        "never both sides: {p:?}"
    );
}

#[test]
fn ev_charging_is_bought_at_the_limit_only_close_to_its_ready_by_hour() {
    // 04:00 UTC, ready by 07:00: urgent; 11 kW for 15 min
    let a = agent(reading(at(4), 11_500.0, 0.0, 300, 11_000.0), Some(BATTERY));
    let p = a.plan(at(4)).unwrap();
    assert_eq!(p.orders.get(&(Side::Buy, 280_000)), Some(&2_875), "{p:?}");
    // 20:00: twelve hours to go, so only at the midpoint (bids round down: 185 000)
    let a = agent(reading(at(20), 11_500.0, 0.0, 300, 11_000.0), Some(BATTERY));
    let p = a.plan(at(20)).unwrap();
    assert_eq!(p.orders.get(&(Side::Buy, 280_000)), Some(&125), "the household's 500 W");
    assert_eq!(p.orders.get(&(Side::Buy, 185_000)), Some(&2_750), "{p:?}");
}

#[test]
fn limits_hold_whatever_the_home_does() {
    for h in [0, 5, 9, 12, 15, 19, 23] {
        for (grid, pv, soc, ev) in [
            (5_000.0, 0.0, 0, 0.0),
            (-4_000.0, 6_000.0, 1_000, 0.0),
            (8_000.0, 1_000.0, 500, 7_000.0),
            (0.0, 0.0, 300, 0.0),
        ] {
            let a = agent(reading(at(h), grid, pv, soc, ev), Some(BATTERY));
            let p = a.plan(at(h)).unwrap();
            let sides: std::collections::BTreeSet<Side> = p.orders.keys().map(|(s, _)| *s).collect();
            assert!(sides.len() <= 1, "never both sides: {p:?}");
            for (&(side, price), &wh) in &p.orders {
                assert!(wh >= 10 && price % 1_000 == 0, "{p:?}");
                match side {
                    Side::Sell => assert!(price >= 90_500, "{p:?}"),
                    Side::Buy => assert!(price <= 280_700, "{p:?}"),
                }
            }
            // the battery never goes below its reserve for the market
            let stored = 10_000.0 * f64::from(soc) / 1_000.0;
            let discharge = (-p.battery_w).max(0.0) * 0.25
                + p.battery_ask_price.map_or(0.0, |pr| p.orders[&(Side::Sell, pr)] as f64);
            assert!(stored - discharge >= 3_000.0 - 1e-6 || discharge == 0.0, "{p:?}");
        }
    }
}

#[test]
fn orders_are_placed_replaced_when_the_forecast_moves_and_cancelled_when_not_wanted() {
    let mut next = order_ids();
    let t0 = at(20);
    let mut a = agent(reading(t0, 2_000.0, 0.0, 200, 0.0), Some(BATTERY));
    let first = a.decide(t0, &mut next);
    assert!(
        matches!(&first[..], [Action::Place(o)] if o.quantity == Wh(500) && o.side == Side::Buy),
        "{first:?}"
    );
    // a small change: kept
    a.observe(reading(Timestamp(t0.0 + 2_000), 2_100.0, 0.0, 200, 0.0));
    assert!(a.decide(Timestamp(t0.0 + 2_000), &mut next).is_empty());
    // the load doubles for a while: replaced, but not within a minute of the last change
    for s in 1..=600 {
        a.observe(reading(Timestamp(t0.0 + s * 1_000), 4_000.0, 0.0, 200, 0.0));
    }
    let later = Timestamp(t0.0 + 30_000);
    assert!(a.decide(later, &mut next).is_empty(), "not within a minute");
    let later = Timestamp(t0.0 + 240_000); // 20:04, still the 20:15 interval
    let acts = a.decide(later, &mut next);
    assert!(
        matches!(&acts[..], [Action::Cancel(OrderId(1)), Action::Place(o)] if o.quantity.0 > 700),
        "{acts:?}"
    );
    // a fill counts: after 300 Wh filled, the replacement is for what is still wanted
    let Action::Place(placed) = &acts[1] else { panic!() };
    a.on_fill(&Fill {
        v: 1,
        client_order_id: placed.order_id,
        order_id: OrderId(900),
        trade: gridshare_domain::wire::TradeReport {
            trade_id: gridshare_domain::TradeId(1),
            zone: ZoneId(1),
            interval: placed.interval,
            buy_order: OrderId(900),
            sell_order: OrderId(901),
            buyer: gridshare_domain::ParticipantId(1),
            seller: gridshare_domain::ParticipantId(2),
            quantity: Wh(300),
            price: MicroPerKwh(200_000),
            grid_fee: MicroPerKwh(0),
            at: later,
        },
    });
    assert!(
        a.decide(Timestamp(later.0 + 1_000), &mut next).is_empty(),
        "the rest still rests"
    );
    // a cancel that comes too late (the order was filled meanwhile) is refused: no harm done
    a.on_ack(&OrderAck {
        v: 1,
        client_order_id: OrderId(1),
        order_id: None,
        status: "rejected".into(),
        reason: Some("unknown_order".into()),
        filled: Wh(0),
    });
    assert!(
        !a.books.values().any(|b| b.rejected),
        "a late cancel is not a refused order"
    );
    // a rejection of the order itself stops trading that interval
    a.on_ack(&OrderAck {
        v: 1,
        client_order_id: placed.order_id,
        order_id: None,
        status: "rejected".into(),
        reason: Some("book_closed".into()),
        filled: Wh(0),
    });
    for s in 1..=90 {
        a.observe(reading(Timestamp(later.0 + s * 1_000), 9_000.0, 0.0, 200, 0.0));
    }
    let same_interval = Timestamp(later.0 + 90_000);
    assert_eq!(a.target(same_interval), placed.interval);
    assert!(a.decide(same_interval, &mut next).is_empty());
}

#[test]
fn the_battery_delivers_what_it_sold() {
    let t0 = at(12);
    let mut a = agent(reading(t0, -1_000.0, 2_000.0, 900, 0.0), Some(BATTERY));
    let acts = a.decide(t0, order_ids());
    let battery_order = acts
        .iter()
        .find_map(|x| match x {
            Action::Place(o) if o.limit_price == MicroPerKwh(186_000) => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    let during = Timestamp(battery_order.interval.start().0 + 60_000);
    assert_eq!(a.battery_target(during), Some(0.0), "nothing sold yet");
    a.on_ack(&OrderAck {
        v: 1,
        client_order_id: battery_order.order_id,
        order_id: Some(OrderId(77)),
        status: "filled".into(),
        reason: None,
        filled: Wh(500),
    });
    assert_eq!(a.battery_target(during), Some(-2_000.0), "500 Wh over 15 minutes");
    assert_eq!(a.battery_target(at(18)), None, "no plan then");
}

#[test]
fn a_disabled_agent_sends_nothing() {
    let mut a = Agent::new(
        AgentSection {
            enabled: false,
            ..limits()
        },
        rules(),
        None,
    );
    a.observe(reading(at(20), 2_000.0, 0.0, 0, 0.0));
    assert!(a.decide(at(20), || OrderId(1)).is_empty());
}

#[test]
fn new_preferences_replace_orders_they_no_longer_allow_at_once() {
    let mut next = order_ids();
    // evening, the battery at its reserve: 500 Wh bid at the 280 000 limit
    let t0 = at(20);
    let mut a = agent(reading(t0, 2_000.0, 0.0, 200, 0.0), Some(BATTERY));
    let first = a.decide(t0, &mut next);
    assert!(
        matches!(&first[..], [Action::Place(o)] if o.limit_price == MicroPerKwh(280_000)),
        "{first:?}"
    );
    // two seconds later the homeowner lowers the limit: the bid goes now, not in a minute
    a.set_preferences(&TradingPreferences {
        version: 2,
        min_sell_price: MicroPerKwh(90_000),
        max_buy_price: MicroPerKwh(200_000),
        battery_reserve_percent: 30,
    });
    assert_eq!(a.limits().max_buy_price, 200_000);
    let t1 = Timestamp(t0.0 + 2_000);
    a.observe(reading(t1, 2_000.0, 0.0, 200, 0.0));
    let acts = a.decide(t1, &mut next);
    assert!(
        matches!(&acts[..], [Action::Cancel(OrderId(1)), Action::Place(o)]
            if o.limit_price == MicroPerKwh(200_000) && o.side == Side::Buy),
        "{acts:?}"
    );
    // raising it again re-prices the bid at once too: never two bids for the same energy
    a.set_preferences(&TradingPreferences {
        version: 3,
        min_sell_price: MicroPerKwh(90_000),
        max_buy_price: MicroPerKwh(250_000),
        battery_reserve_percent: 30,
    });
    let t2 = Timestamp(t0.0 + 4_000);
    let acts = a.decide(t2, &mut next);
    assert!(
        matches!(&acts[..], [Action::Cancel(OrderId(2)), Action::Place(o)] if o.limit_price == MicroPerKwh(250_000)),
        "{acts:?}"
    );
    // and then it settles
    assert!(a.decide(Timestamp(t0.0 + 6_000), &mut next).is_empty());
}
