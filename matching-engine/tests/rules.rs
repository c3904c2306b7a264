//! The market rules, one behaviour per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::{
    CancelReason, Command, Engine, Event, MarketConfig, NodeConfig, OrderSpec, RejectReason,
};

const AT: Timestamp = Timestamp(1_764_064_000_000);

fn iv() -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap()
}

fn engine_with(cfg: MarketConfig) -> Engine {
    let mut e = Engine::new(cfg).unwrap();
    let mut out = Vec::new();
    for p in 1..=4 {
        e.apply(
            &Command::AddParticipant {
                owner: ParticipantId(p),
                node: NodeId(p as u32),
            },
            &mut out,
        );
    }
    e.apply(
        &Command::OpenBook {
            zone: ZoneId(1),
            interval: iv(),
            fees: None,
        },
        &mut out,
    );
    assert!(out.iter().all(|e| !matches!(e, Event::Rejected { .. })), "{out:?}");
    e
}

fn engine() -> Engine {
    engine_with(MarketConfig::default())
}

fn order(id: u64, owner: u64, side: Side, qty: i64, price_milli: i64) -> OrderSpec {
    OrderSpec {
        id: OrderId(id),
        owner: ParticipantId(owner),
        node: NodeId(owner as u32),
        zone: ZoneId(1),
        interval: iv(),
        side,
        quantity: Wh(qty),
        price: MicroPerKwh(price_milli * 1000),
        tif: TimeInForce::GoodTillGateClosure,
        mode: OrderMode::Continuous,
    }
}

fn submit(e: &mut Engine, o: OrderSpec) -> Vec<Event> {
    let mut out = Vec::new();
    e.apply(&Command::Submit { at: AT, order: o }, &mut out);
    out
}

fn trades(events: &[Event]) -> Vec<(u64, u64, i64, i64, i64)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Trade {
                buy,
                sell,
                quantity,
                price,
                grid_fee,
                ..
            } => Some((buy.0, sell.0, quantity.0, price.0 / 1000, grid_fee.0)),
            _ => None,
        })
        .collect()
}

fn reject(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match *e {
        Event::Rejected { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn price_time_priority_at_the_resting_price() {
    let mut e = engine();
    submit(&mut e, order(1, 1, Side::Sell, 100, 100));
    submit(&mut e, order(2, 2, Side::Sell, 100, 100));
    submit(&mut e, order(3, 3, Side::Sell, 100, 90));
    let out = submit(&mut e, order(4, 4, Side::Buy, 250, 110));
    assert_eq!(
        trades(&out),
        vec![(4, 3, 100, 90, 0), (4, 1, 100, 100, 0), (4, 2, 50, 100, 0)]
    );
    assert_eq!(e.live_orders(), 1, "order 2's rest is still there");
    let out = submit(&mut e, order(5, 1, Side::Buy, 10, 100));
    assert_eq!(trades(&out), vec![(5, 2, 10, 100, 0)]);
    let mut out = Vec::new();
    e.apply(
        &Command::Cancel {
            at: AT,
            id: OrderId(2),
            owner: ParticipantId(2),
        },
        &mut out,
    );
    assert_eq!(
        out,
        vec![Event::Cancelled {
            id: OrderId(2),
            remaining: Wh(40),
            reason: CancelReason::Requested
        }]
    );
    // An incoming sell trades at the resting bid.
    submit(&mut e, order(6, 3, Side::Buy, 10, 120));
    let out = submit(&mut e, order(7, 4, Side::Sell, 10, 50));
    assert_eq!(trades(&out), vec![(6, 7, 10, 120, 0)]);
}

#[test]
fn ioc_and_fok() {
    let mut e = engine();
    submit(&mut e, order(1, 1, Side::Sell, 100, 100));
    let mut ioc = order(2, 2, Side::Buy, 150, 100);
    ioc.tif = TimeInForce::ImmediateOrCancel;
    let out = submit(&mut e, ioc);
    assert_eq!(trades(&out), vec![(2, 1, 100, 100, 0)]);
    assert!(out.contains(&Event::Cancelled {
        id: OrderId(2),
        remaining: Wh(50),
        reason: CancelReason::ImmediateOrCancel
    }));
    assert_eq!(e.live_orders(), 0);

    submit(&mut e, order(3, 1, Side::Sell, 100, 100));
    let mut fok = order(4, 2, Side::Buy, 101, 100);
    fok.tif = TimeInForce::FillOrKill;
    let out = submit(&mut e, fok);
    assert_eq!(
        out,
        vec![Event::Rejected {
            id: Some(OrderId(4)),
            reason: RejectReason::FillOrKillUnfilled
        }]
    );
    fok.quantity = Wh(100);
    assert_eq!(trades(&submit(&mut e, fok)), vec![(4, 3, 100, 100, 0)]);
}

#[test]
fn self_trade_prevention_cancels_the_newer_order() {
    let mut e = engine();
    submit(&mut e, order(1, 2, Side::Sell, 50, 90));
    submit(&mut e, order(2, 1, Side::Sell, 50, 95));
    submit(&mut e, order(3, 3, Side::Sell, 50, 99));
    let out = submit(&mut e, order(4, 1, Side::Buy, 200, 100));
    assert_eq!(
        trades(&out),
        vec![(4, 1, 50, 90, 0)],
        "trades before the own order stand"
    );
    assert!(out.contains(&Event::Cancelled {
        id: OrderId(4),
        remaining: Wh(150),
        reason: CancelReason::SelfTrade
    }));
    assert_eq!(e.live_orders(), 2, "orders 2 and 3 still rest");
}

#[test]
fn amend_keeps_priority_only_when_reducing() {
    let mut e = engine();
    submit(&mut e, order(1, 1, Side::Sell, 100, 100));
    submit(&mut e, order(2, 2, Side::Sell, 100, 100));
    let mut out = Vec::new();
    e.apply(
        &Command::Amend {
            at: AT,
            id: OrderId(1),
            owner: ParticipantId(1),
            quantity: Wh(60),
            price: MicroPerKwh(100_000),
        },
        &mut out,
    );
    assert_eq!(
        out,
        vec![Event::Amended {
            id: OrderId(1),
            quantity: Wh(60),
            price: MicroPerKwh(100_000),
            kept_priority: true
        }]
    );
    assert_eq!(
        trades(&submit(&mut e, order(3, 3, Side::Buy, 10, 100))),
        vec![(3, 1, 10, 100, 0)]
    );
    out.clear();
    e.apply(
        &Command::Amend {
            at: AT,
            id: OrderId(1),
            owner: ParticipantId(1),
            quantity: Wh(80),
            price: MicroPerKwh(100_000),
        },
        &mut out,
    );
    assert!(matches!(
        out[0],
        Event::Amended {
            kept_priority: false,
            ..
        }
    ));
    assert_eq!(
        trades(&submit(&mut e, order(4, 3, Side::Buy, 10, 100))),
        vec![(4, 2, 10, 100, 0)],
        "order 1 went to the back"
    );
    // Re-pricing across the spread trades at once.
    submit(&mut e, order(5, 4, Side::Buy, 30, 95));
    out.clear();
    e.apply(
        &Command::Amend {
            at: AT,
            id: OrderId(1),
            owner: ParticipantId(1),
            quantity: Wh(80),
            price: MicroPerKwh(95_000),
        },
        &mut out,
    );
    assert_eq!(trades(&out), vec![(5, 1, 30, 95, 0)]);
}

#[test]
fn every_bad_input_is_a_typed_reject_and_changes_nothing() {
    let mut e = engine();
    submit(&mut e, order(1, 1, Side::Sell, 100, 100));
    let cases: Vec<(OrderSpec, RejectReason)> = vec![
        (
            {
                let mut o = order(9, 2, Side::Buy, 10, 100);
                o.interval = iv().next();
                o
            },
            RejectReason::UnknownBook,
        ),
        (
            {
                let mut o = order(9, 2, Side::Buy, 10, 100);
                o.price = MicroPerKwh(100_500);
                o
            },
            RejectReason::PriceOffTick,
        ),
        (order(9, 2, Side::Buy, 10, 2_001), RejectReason::PriceOutOfBounds),
        (order(9, 2, Side::Buy, 0, 100), RejectReason::QuantityOutOfBounds),
        (
            order(9, 2, Side::Buy, 1_000_001, 100),
            RejectReason::QuantityOutOfBounds,
        ),
        (order(9, 7, Side::Buy, 10, 100), RejectReason::UnknownOwner),
        (
            {
                let mut o = order(9, 2, Side::Buy, 10, 100);
                o.node = NodeId(3);
                o
            },
            RejectReason::UnknownNode,
        ),
        (order(1, 2, Side::Buy, 10, 100), RejectReason::DuplicateOrderId),
        (
            {
                let mut o = order(9, 2, Side::Buy, 10, 100);
                o.mode = OrderMode::AuctionOnly;
                o.tif = TimeInForce::ImmediateOrCancel;
                o
            },
            RejectReason::InvalidTimeInForce,
        ),
    ];
    for (o, want) in cases {
        let out = submit(&mut e, o);
        assert_eq!(
            out,
            vec![Event::Rejected {
                id: Some(o.id),
                reason: want
            }],
            "{o:?}"
        );
        assert_eq!(e.live_orders(), 1);
    }
    let mut out = Vec::new();
    e.apply(
        &Command::Cancel {
            at: AT,
            id: OrderId(1),
            owner: ParticipantId(2),
        },
        &mut out,
    );
    e.apply(
        &Command::Cancel {
            at: AT,
            id: OrderId(42),
            owner: ParticipantId(2),
        },
        &mut out,
    );
    e.apply(
        &Command::Amend {
            at: AT,
            id: OrderId(1),
            owner: ParticipantId(1),
            quantity: Wh(5),
            price: MicroPerKwh(1),
        },
        &mut out,
    );
    e.apply(
        &Command::OpenBook {
            zone: ZoneId(1),
            interval: iv(),
            fees: None,
        },
        &mut out,
    );
    assert_eq!(
        out.iter().map(|e| reject(std::slice::from_ref(e))).collect::<Vec<_>>(),
        vec![
            Some(RejectReason::NotOwner),
            Some(RejectReason::UnknownOrder),
            Some(RejectReason::PriceOffTick),
            Some(RejectReason::BookExists)
        ]
    );
    // the order is untouched: it still fills fully at its price
    assert_eq!(
        trades(&submit(&mut e, order(2, 2, Side::Buy, 100, 100))),
        vec![(2, 1, 100, 100, 0)]
    );
    // a closed book refuses orders
    out.clear();
    e.apply(
        &Command::CloseGate {
            at: AT,
            zone: ZoneId(1),
            interval: iv(),
        },
        &mut out,
    );
    assert_eq!(
        reject(&submit(&mut e, order(3, 2, Side::Buy, 10, 100))),
        Some(RejectReason::BookClosed)
    );
}

#[test]
fn call_auction_maximises_volume_then_takes_the_midpoint() {
    let mut e = engine();
    let auction = |mut o: OrderSpec| {
        o.mode = OrderMode::AuctionOnly;
        o
    };
    // Auction-only orders cross but do not trade continuously.
    assert!(trades(&submit(&mut e, auction(order(1, 1, Side::Sell, 100, 80)))).is_empty());
    assert!(trades(&submit(&mut e, auction(order(2, 2, Side::Sell, 100, 100)))).is_empty());
    assert!(trades(&submit(&mut e, auction(order(3, 3, Side::Buy, 150, 120)))).is_empty());
    submit(&mut e, order(4, 4, Side::Buy, 100, 90));
    // Demand: ≥120:150, ≥90: 250. Supply: ≤80:100, ≤100:200. Volume is 150
    // for prices 100..=120 (at 90..99 it is 100), so the midpoint is 110.
    let mut out = Vec::new();
    e.apply(
        &Command::CloseGate {
            at: AT,
            zone: ZoneId(1),
            interval: iv(),
        },
        &mut out,
    );
    assert_eq!(trades(&out), vec![(3, 1, 100, 110, 0), (3, 2, 50, 110, 0)]);
    assert!(out.contains(&Event::AuctionResult {
        zone: ZoneId(1),
        interval: iv(),
        clearing_price: Some(MicroPerKwh(110_000)),
        volume: Wh(150)
    }));
    assert!(out.contains(&Event::Cancelled {
        id: OrderId(2),
        remaining: Wh(50),
        reason: CancelReason::Unmatched
    }));
    assert!(out.contains(&Event::Cancelled {
        id: OrderId(4),
        remaining: Wh(100),
        reason: CancelReason::Unmatched
    }));
    assert!(matches!(
        out.last(),
        Some(Event::BookClosed {
            total_volume: Wh(150),
            trades: 2,
            ..
        })
    ));
    assert_eq!(e.live_orders(), 0);
}

#[test]
fn auction_k_moves_the_price_within_the_range() {
    for (k, price) in [(0, 100), (1000, 120), (250, 105)] {
        let mut e = engine_with(MarketConfig {
            auction_k_permille: k,
            ..MarketConfig::default()
        });
        let mut o1 = order(1, 1, Side::Sell, 100, 100);
        o1.mode = OrderMode::AuctionOnly;
        let mut o2 = order(2, 2, Side::Buy, 100, 120);
        o2.mode = OrderMode::AuctionOnly;
        submit(&mut e, o1);
        submit(&mut e, o2);
        let mut out = Vec::new();
        e.apply(
            &Command::CloseGate {
                at: AT,
                zone: ZoneId(1),
                interval: iv(),
            },
            &mut out,
        );
        assert_eq!(trades(&out), vec![(2, 1, 100, price, 0)], "k = {k}");
    }
}

fn network_config() -> MarketConfig {
    let node = |id: u32, parent: Option<u32>, cap: Option<i64>, fee: i64| NodeConfig {
        id: NodeId(id),
        parent: parent.map(NodeId),
        capacity: cap.map(Wh),
        fee: MicroPerKwh(fee),
    };
    MarketConfig {
        network: Some(vec![
            node(0, None, None, 0),
            node(10, Some(0), Some(1000), 10_000),
            node(20, Some(0), Some(1000), 10_000),
            node(1, Some(10), Some(100), 5_000),
            node(2, Some(10), Some(500), 5_000),
            node(3, Some(20), Some(500), 5_000),
            node(4, Some(20), Some(500), 5_000),
        ]),
        ..MarketConfig::default()
    }
}

#[test]
fn network_fees_and_limits_shape_continuous_matching() {
    let mut e = engine_with(network_config());
    // Home 1 sells; home 2 shares its transformer (fee 10), home 3 does not (fee 30).
    submit(&mut e, order(1, 1, Side::Sell, 300, 100));
    // Home 3's limit 125 does not cover 100 + 30: no trade.
    assert!(trades(&submit(&mut e, order(2, 3, Side::Buy, 50, 125))).is_empty());
    // Home 2 pays 100 + 10; home 1's edge carries at most 100 Wh.
    let mut ioc = order(3, 2, Side::Buy, 300, 110);
    ioc.tif = TimeInForce::ImmediateOrCancel;
    let out = submit(&mut e, ioc);
    assert_eq!(trades(&out), vec![(3, 1, 100, 100, 10_000)]);
    let mut out = Vec::new();
    e.apply(
        &Command::Cancel {
            at: AT,
            id: OrderId(2),
            owner: ParticipantId(3),
        },
        &mut out,
    );
    // A counter-flow into home 1 frees its edge again.
    assert!(trades(&submit(&mut e, order(4, 4, Side::Sell, 50, 60))).is_empty());
    let mut buy = order(5, 1, Side::Buy, 50, 200);
    buy.node = NodeId(1);
    assert_eq!(trades(&submit(&mut e, buy)), vec![(5, 4, 50, 60, 30_000)]);
    let out = submit(&mut e, order(6, 2, Side::Buy, 100, 110));
    assert_eq!(trades(&out), vec![(6, 1, 50, 100, 10_000)]);
    // An incoming sell against a resting bid: the bid pays its limit, the seller gets limit - fee.
    submit(&mut e, order(7, 3, Side::Buy, 10, 150));
    assert_eq!(
        trades(&submit(&mut e, order(8, 4, Side::Sell, 10, 100))),
        vec![(7, 8, 10, 140, 10_000)]
    );
}

#[test]
fn depth_aggregates_levels_best_first_with_auction_only_orders() {
    let mut e = engine();
    assert_eq!(e.depth(ZoneId(2), iv(), 5), None, "unknown book");
    submit(&mut e, order(1, 1, Side::Buy, 100, 100));
    submit(&mut e, order(2, 2, Side::Buy, 50, 100));
    submit(&mut e, order(3, 1, Side::Buy, 70, 90));
    let mut auction = order(4, 2, Side::Buy, 30, 95);
    auction.mode = OrderMode::AuctionOnly;
    submit(&mut e, auction);
    submit(&mut e, order(5, 3, Side::Sell, 40, 120));
    submit(&mut e, order(6, 4, Side::Sell, 60, 110));
    submit(&mut e, order(7, 4, Side::Sell, 5, 110));
    let d = e.depth(ZoneId(1), iv(), 2).unwrap();
    assert!(d.open);
    let milli = |p: i64| MicroPerKwh(p * 1000);
    assert_eq!(d.bids, vec![(milli(100), Wh(150)), (milli(95), Wh(30))]);
    assert_eq!(d.asks, vec![(milli(110), Wh(65)), (milli(120), Wh(40))]);
    let all = e.depth(ZoneId(1), iv(), 10).unwrap();
    assert_eq!(all.bids.len(), 3);
    assert_eq!(all.bids[2], (milli(90), Wh(70)));

    let books = e.books();
    assert_eq!(books.len(), 1);
    assert_eq!((books[0].zone, books[0].open, books[0].trades), (ZoneId(1), true, 0));
    let mut out = Vec::new();
    e.apply(
        &Command::CloseGate {
            at: AT,
            zone: ZoneId(1),
            interval: iv(),
        },
        &mut out,
    );
    let closed = e.depth(ZoneId(1), iv(), 10).unwrap();
    assert!(!closed.open);
    assert!(closed.bids.is_empty() && closed.asks.is_empty(), "{closed:?}");
    assert!(!e.books()[0].open);
}

// ---- network correctness (issue 19) -------------------------------------------

fn node(id: u32, parent: Option<u32>, cap: Option<i64>, fee: i64) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        parent: parent.map(NodeId),
        capacity: cap.map(Wh),
        fee: MicroPerKwh(fee),
    }
}

/// An engine with `participants` (owner, node) and the usual book.
fn engine_at(cfg: MarketConfig, participants: &[(u64, u32)]) -> Engine {
    let mut e = Engine::new(cfg).unwrap();
    let mut out = Vec::new();
    for &(owner, node) in participants {
        e.apply(
            &Command::AddParticipant {
                owner: ParticipantId(owner),
                node: NodeId(node),
            },
            &mut out,
        );
    }
    e.apply(
        &Command::OpenBook {
            zone: ZoneId(1),
            interval: iv(),
            fees: None,
        },
        &mut out,
    );
    assert!(out.iter().all(|e| !matches!(e, Event::Rejected { .. })), "{out:?}");
    e
}

fn order_at(id: u64, owner: u64, node: u32, side: Side, qty: i64, price_milli: i64) -> OrderSpec {
    OrderSpec {
        node: NodeId(node),
        ..order(id, owner, side, qty, price_milli)
    }
}

#[test]
fn a_full_edge_above_the_node_does_not_block_a_counterparty_at_the_same_node() {
    // Issue 19's reproducer: node 1's edge has no capacity at all.
    let cfg = || MarketConfig {
        network: Some(vec![node(0, None, None, 0), node(1, Some(0), Some(0), 0)]),
        ..MarketConfig::default()
    };
    let mut e = engine_at(cfg(), &[(1, 1), (2, 1)]);
    submit(&mut e, order_at(1, 1, 1, Side::Sell, 100, 100));
    let out = submit(&mut e, order_at(2, 2, 1, Side::Buy, 100, 100));
    assert_eq!(trades(&out), vec![(2, 1, 100, 100, 0)], "{out:?}");
    assert_eq!(e.live_orders(), 0, "nothing rests, the book is not crossed");

    // Fill-or-kill agrees with matching, both ways.
    let mut e = engine_at(cfg(), &[(1, 1), (2, 1)]);
    submit(&mut e, order_at(1, 1, 1, Side::Sell, 100, 100));
    let mut fok = order_at(2, 2, 1, Side::Buy, 100, 100);
    fok.tif = TimeInForce::FillOrKill;
    assert_eq!(trades(&submit(&mut e, fok)), vec![(2, 1, 100, 100, 0)]);
    submit(&mut e, order_at(3, 2, 1, Side::Buy, 50, 100));
    let mut fok = order_at(4, 1, 1, Side::Sell, 50, 100);
    fok.tif = TimeInForce::FillOrKill;
    assert_eq!(trades(&submit(&mut e, fok)), vec![(3, 4, 50, 100, 0)]);
}

#[test]
fn a_blocked_resting_order_is_skipped_and_matching_goes_on() {
    // 0 ─ 10 (cap 0) ─ 1, 2 ; 0 ─ 20 ─ 3. Home 3 cannot reach homes 1 and 2.
    let cfg = MarketConfig {
        network: Some(vec![
            node(0, None, None, 0),
            node(10, Some(0), Some(0), 0),
            node(20, Some(0), None, 0),
            node(1, Some(10), None, 0),
            node(2, Some(10), None, 0),
            node(3, Some(20), None, 0),
        ]),
        ..MarketConfig::default()
    };
    for fok in [false, true] {
        let mut e = engine_at(cfg.clone(), &[(1, 1), (2, 2), (3, 3)]);
        // The best ask is out of reach; the next one is behind the same transformer.
        submit(&mut e, order_at(1, 3, 3, Side::Sell, 100, 90));
        submit(&mut e, order_at(2, 1, 1, Side::Sell, 100, 100));
        let mut buy = order_at(3, 2, 2, Side::Buy, 100, 100);
        if fok {
            buy.tif = TimeInForce::FillOrKill;
        }
        assert_eq!(trades(&submit(&mut e, buy)), vec![(3, 2, 100, 100, 0)], "fok {fok}");
        assert_eq!(e.live_orders(), 1, "the blocked ask still rests");
        // A fill-or-kill that needs the blocked ask is refused, by both.
        submit(&mut e, order_at(4, 1, 1, Side::Sell, 100, 100));
        let mut big = order_at(5, 2, 2, Side::Buy, 150, 100);
        big.tif = TimeInForce::FillOrKill;
        assert_eq!(reject(&submit(&mut e, big)), Some(RejectReason::FillOrKillUnfilled));
    }
}

#[test]
fn priority_is_by_delivered_price_then_time() {
    // network_config: homes 1, 2 under transformer 10; 3, 4 under 20.
    // Fees: between homes 1 and 2, 10; across transformers, 30.
    let mut e = engine_at(network_config(), &[(1, 1), (2, 2), (3, 3), (4, 4), (5, 1)]);
    // The cheapest ask (home 3, 100) costs home 2 130 delivered; home 1's 110 costs 120.
    submit(&mut e, order_at(1, 3, 3, Side::Sell, 10, 100));
    submit(&mut e, order_at(2, 1, 1, Side::Sell, 10, 110));
    // Equal delivered price (120) as order 2, but later: after it.
    submit(&mut e, order_at(3, 5, 1, Side::Sell, 10, 110));
    let out = submit(&mut e, order_at(4, 2, 2, Side::Buy, 30, 200));
    assert_eq!(
        trades(&out),
        vec![
            (4, 2, 10, 110, 10_000),
            (4, 3, 10, 110, 10_000),
            (4, 1, 10, 100, 30_000)
        ]
    );
    // An incoming sell: home 3's bid 150 is worth 120 to home 2, home 1's 140 is worth 130.
    submit(&mut e, order_at(5, 3, 3, Side::Buy, 10, 150));
    submit(&mut e, order_at(6, 1, 1, Side::Buy, 10, 140));
    let out = submit(&mut e, order_at(7, 2, 2, Side::Sell, 20, 100));
    assert_eq!(
        trades(&out),
        vec![(6, 7, 10, 130, 10_000), (5, 7, 10, 120, 30_000)],
        "the seller receives bid − fee; the buyer pays its limit"
    );
}

#[test]
fn a_trade_that_frees_an_edge_re_matches_the_resting_orders_it_unblocks() {
    // Resting orders that cross with room between them once a trade has
    // freed an edge. With delivered-price priority in a tree such a pair is
    // hard to reach from scratch (the freeing trade's parties would have
    // preferred the blocked ones), so the state is written as a snapshot —
    // one an engine without re-matching could leave behind. The next trade
    // in the book re-matches: the newer order against the older one, at the
    // older order's price.
    let cfg = || MarketConfig {
        network: Some(vec![
            node(0, None, None, 0),
            node(1, Some(0), Some(100), 5_000),
            node(2, Some(0), None, 5_000),
        ]),
        ..MarketConfig::default()
    };
    let mut e = engine_at(cfg(), &[(1, 1), (2, 2), (5, 1)]);
    submit(&mut e, order_at(1, 1, 1, Side::Sell, 100, 100));
    assert_eq!(
        trades(&submit(&mut e, order_at(2, 2, 2, Side::Buy, 100, 120))),
        vec![(2, 1, 100, 100, 10_000)]
    );
    let mut snap = e.snapshot(0);
    assert_eq!(snap.books[0].flows[1], 100, "node 1's edge is full upward");
    let resting =
        |id: u64, owner: u64, side: Side, qty: i64, price_milli: i64| gridshare_matching_engine::OrderSnapshot {
            id: OrderId(id),
            owner: ParticipantId(owner),
            book: 0,
            side,
            price: MicroPerKwh(price_milli * 1000),
            quantity: Wh(qty),
            seq: id,
            auction_only: false,
        };
    // 10 (node 1) → 11 (node 2): 100 + fee 10 ≤ 115, but no room.
    snap.orders.push(resting(10, 1, Side::Sell, 50, 100));
    snap.orders.push(resting(11, 2, Side::Buy, 50, 115));
    // An ask at node 2 that a buyer at node 1 will take (owner 2's own bid does not).
    snap.orders.push(resting(12, 2, Side::Sell, 30, 80));
    snap.seq = 12;
    let mut e = Engine::restore(cfg(), &snap).unwrap();
    // 30 Wh flow into node 1 and free 30 Wh of its edge upward.
    let out = submit(&mut e, order_at(20, 5, 1, Side::Buy, 30, 95));
    assert_eq!(
        trades(&out),
        vec![(20, 12, 30, 80, 10_000), (11, 10, 30, 100, 10_000)],
        "{out:?}"
    );
    // 20 Wh of each still cross, but the edge is full again: they rest.
    assert_eq!(e.live_orders(), 2);
    assert!(trades(&submit(&mut e, order_at(21, 5, 1, Side::Buy, 10, 90))).is_empty());
}

// ---- smaller defects (issue 19) ------------------------------------------------

#[test]
fn order_id_u64_max_is_an_ordinary_id() {
    let mut e = engine();
    let max = u64::MAX;
    assert!(reject(&submit(&mut e, order(max, 1, Side::Sell, 100, 100))).is_none());
    assert_eq!(
        reject(&submit(&mut e, order(max, 2, Side::Sell, 100, 100))),
        Some(RejectReason::DuplicateOrderId)
    );
    assert_eq!(e.live_orders(), 1);
    assert_eq!(
        trades(&submit(&mut e, order(1, 2, Side::Buy, 40, 100))),
        vec![(1, max, 40, 100, 0)]
    );
    assert_eq!(e.snapshot(0).orders.len(), 1, "the snapshot holds it once");
    let mut out = Vec::new();
    e.apply(
        &Command::Cancel {
            at: AT,
            id: OrderId(max),
            owner: ParticipantId(1),
        },
        &mut out,
    );
    assert_eq!(
        out,
        vec![Event::Cancelled {
            id: OrderId(max),
            remaining: Wh(60),
            reason: CancelReason::Requested
        }]
    );
    assert_eq!(e.live_orders(), 0);
    assert!(
        reject(&submit(&mut e, order(max, 2, Side::Sell, 10, 100))).is_none(),
        "reusable"
    );
}

#[test]
fn books_of_one_start_and_different_lengths_are_different_books() {
    let mut e = engine();
    let hour = DeliveryInterval::new(iv().start(), IntervalLength::Min60).unwrap();
    let mut out = Vec::new();
    e.apply(
        &Command::OpenBook {
            zone: ZoneId(1),
            interval: hour,
            fees: None,
        },
        &mut out,
    );
    assert_eq!(
        out,
        vec![Event::BookOpened {
            zone: ZoneId(1),
            interval: hour,
            fees: None
        }]
    );
    let mut o = order(1, 1, Side::Sell, 100, 100);
    o.interval = hour;
    submit(&mut e, o);
    // It rests in the hour's book only: the quarter's buyer does not meet it.
    assert!(trades(&submit(&mut e, order(2, 2, Side::Buy, 100, 100))).is_empty());
    assert_eq!(
        e.depth(ZoneId(1), hour, 5).unwrap().asks,
        vec![(MicroPerKwh(100_000), Wh(100))]
    );
    assert!(e.depth(ZoneId(1), iv(), 5).unwrap().asks.is_empty());
    assert_eq!(e.books().len(), 2);
    let mut close = Vec::new();
    e.apply(
        &Command::CloseGate {
            at: AT,
            zone: ZoneId(1),
            interval: iv(),
        },
        &mut close,
    );
    assert!(
        e.depth(ZoneId(1), hour, 5).unwrap().open,
        "closing the quarter leaves the hour open"
    );
}

#[test]
fn max_orders_is_honoured_below_eight() {
    for max in [0usize, 1, 3] {
        let mut e = engine_with(MarketConfig {
            max_orders: max,
            ..MarketConfig::default()
        });
        for i in 0..max as u64 {
            assert!(reject(&submit(&mut e, order(i + 1, 1, Side::Sell, 10, 100 + i as i64))).is_none());
        }
        assert_eq!(
            reject(&submit(&mut e, order(99, 2, Side::Sell, 10, 100))),
            Some(RejectReason::OrderCapacity),
            "max_orders {max}"
        );
        assert_eq!(e.live_orders(), max);
    }
}

#[test]
fn a_full_edge_splits_the_auction_into_two_prices_and_the_gap_is_congestion() {
    // Home 1 sells cheap behind an edge of 100 Wh; home 2 buys 300 Wh; home 3, beside home 2,
    // sells dearer. The best clearing: all 100 Wh the edge allows from home 1, the rest from
    // home 3 (the greedy pairing at one price took 100 Wh and stopped).
    let cfg = MarketConfig {
        network: Some(vec![
            node(0, None, None, 0),
            node(1, Some(0), Some(100), 0),
            node(2, Some(0), None, 0),
            node(3, Some(0), None, 0),
        ]),
        ..MarketConfig::default()
    };
    let mut e = engine_at(cfg, &[(1, 1), (2, 2), (3, 3)]);
    let auction = |mut o: OrderSpec| {
        o.mode = OrderMode::AuctionOnly;
        o
    };
    submit(&mut e, auction(order_at(1, 1, 1, Side::Sell, 300, 50)));
    submit(&mut e, auction(order_at(2, 2, 2, Side::Buy, 300, 150)));
    submit(&mut e, auction(order_at(3, 3, 3, Side::Sell, 300, 120)));
    let mut out = Vec::new();
    e.apply(
        &Command::CloseGate {
            at: AT,
            zone: ZoneId(1),
            interval: iv(),
        },
        &mut out,
    );
    // Home 1 receives its own node's price (50: its ask is the margin there); home 2 pays the
    // substation's (120: home 3's ask is the margin there); the 70 between is the full edge's
    // congestion charge, collected with the grid fee.
    let mut t = trades(&out);
    t.sort_unstable();
    assert_eq!(t, vec![(2, 1, 100, 50, 70_000), (2, 3, 200, 120, 0)], "{out:?}");
    let node_price = |id: u32| {
        out.iter().find_map(|e| match *e {
            Event::NodePrice {
                node,
                price,
                flow,
                congestion,
                ..
            } if node == NodeId(id) => Some((price.0 / 1000, flow.0, congestion.0 / 1000)),
            _ => None,
        })
    };
    assert_eq!(node_price(1), Some((50, 100, 70)), "node 1 exports to its edge's limit");
    assert_eq!(node_price(0), Some((120, 0, 0)));
    assert_eq!(node_price(2), Some((120, -300, 0)));
    assert_eq!(node_price(3), Some((120, 200, 0)));
    assert!(out.contains(&Event::AuctionResult {
        zone: ZoneId(1),
        interval: iv(),
        clearing_price: Some(MicroPerKwh(120_000)),
        volume: Wh(300)
    }));
    assert!(out.contains(&Event::Cancelled {
        id: OrderId(1),
        remaining: Wh(200),
        reason: CancelReason::Unmatched
    }));
    // the closure's events read as one interval result carrying every node's price
    let results = Event::interval_results(&out);
    assert_eq!(results.len(), 1, "{out:?}");
    let r = &results[0];
    assert_eq!(
        (
            r.zone,
            r.interval,
            r.clearing_price,
            r.auction_volume,
            r.total_volume,
            r.trades
        ),
        (ZoneId(1), iv(), Some(MicroPerKwh(120_000)), Wh(300), Wh(300), 2)
    );
    let mut nodes: Vec<(u32, i64)> = r.node_prices.iter().map(|p| (p.node.0, p.price.0 / 1000)).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, vec![(0, 120), (1, 50), (2, 120), (3, 120)]);
}
