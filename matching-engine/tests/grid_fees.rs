//! Books opened with grid fees (issue 22: the community sets `feePerHop` and `networkFee` on
//! chain; a change applies from the next book). A book opened with [`GridFees`] charges
//! `per_kwh + per_hop × hops` on every trade — continuous, the uniform call auction, the nodal
//! auction — and keeps those fees for its life; a book opened without charges the feeder tree's
//! per-edge fees as before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::journal::{Durability, Journaled};
use gridshare_matching_engine::{
    Command, Engine, Event, EventSink, GridFees, GridFeesError, MarketConfig, NodeConfig, OrderSpec, RejectReason,
};

const AT: Timestamp = Timestamp(1_764_064_000_000);

fn iv(i: i64) -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(1_764_064_800_000 + i * 900_000), IntervalLength::Min15).unwrap()
}

fn fees(per_hop: i64, per_kwh: i64) -> GridFees {
    GridFees {
        per_hop: MicroPerKwh(per_hop),
        per_kwh: MicroPerKwh(per_kwh),
    }
}

fn node(id: u32, parent: Option<u32>, cap: Option<i64>, fee: i64) -> NodeConfig {
    NodeConfig {
        id: NodeId(id),
        parent: parent.map(NodeId),
        capacity: cap.map(Wh),
        fee: MicroPerKwh(fee),
    }
}

/// 0 substation; transformers 1, 2 (edge fee 20.000); homes 10, 11 under 1 and 20 under 2
/// (edge fee 5.000): 10 → 11 crosses 2 edges (network fee 10.000), 10 → 20 crosses 4 (50.000).
fn tree() -> Vec<NodeConfig> {
    vec![
        node(0, None, None, 0),
        node(1, Some(0), None, 20_000),
        node(2, Some(0), None, 20_000),
        node(10, Some(1), None, 5_000),
        node(11, Some(1), None, 5_000),
        node(20, Some(2), None, 5_000),
    ]
}

fn order(id: u64, owner: u64, node: u32, book: i64, side: Side, qty: i64, price: i64) -> OrderSpec {
    OrderSpec {
        id: OrderId(id),
        owner: ParticipantId(owner),
        node: NodeId(node),
        zone: ZoneId(1),
        interval: iv(book),
        side,
        quantity: Wh(qty),
        price: MicroPerKwh(price),
        tif: TimeInForce::GoodTillGateClosure,
        mode: OrderMode::Continuous,
    }
}

fn apply(e: &mut Engine, cmd: Command) -> Vec<Event> {
    let mut out = Vec::new();
    e.apply(&cmd, &mut out);
    out
}

fn open(e: &mut Engine, book: i64, fees: Option<GridFees>) -> Vec<Event> {
    apply(
        e,
        Command::OpenBook {
            zone: ZoneId(1),
            interval: iv(book),
            fees,
        },
    )
}

fn submit(e: &mut Engine, o: OrderSpec) -> Vec<Event> {
    apply(e, Command::Submit { at: AT, order: o })
}

fn close(e: &mut Engine, book: i64) -> Vec<Event> {
    apply(
        e,
        Command::CloseGate {
            at: AT,
            zone: ZoneId(1),
            interval: iv(book),
        },
    )
}

/// (buy, sell, quantity, price, grid fee) of every trade.
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
            } => Some((buy.0, sell.0, quantity.0, price.0, grid_fee.0)),
            _ => None,
        })
        .collect()
}

fn rejected(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match *e {
        Event::Rejected { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn continuous_trades_pay_per_kwh_plus_per_hop_times_hops() {
    let mut e = Engine::new(MarketConfig {
        network: Some(tree()),
        ..MarketConfig::default()
    })
    .unwrap();
    // 1 and 4 share connection point 10; 2 is at 11, 3 at 20.
    for (p, n) in [(1, 10), (2, 11), (3, 20), (4, 10)] {
        apply(
            &mut e,
            Command::AddParticipant {
                owner: ParticipantId(p),
                node: NodeId(n),
            },
        );
    }
    let g = fees(3_000, 10_000);
    assert_eq!(
        open(&mut e, 0, Some(g)),
        vec![Event::BookOpened {
            zone: ZoneId(1),
            interval: iv(0),
            fees: Some(g)
        }]
    );
    open(&mut e, 1, None);
    for (book, expected) in [(0, [10_000, 16_000, 22_000]), (1, [0, 10_000, 50_000])] {
        let base = 100 * book as u64;
        submit(&mut e, order(base + 1, 1, 10, book, Side::Sell, 300, 100_000));
        let mut got = Vec::new();
        for (k, (owner, node)) in [(4, 10), (2, 11), (3, 20)].into_iter().enumerate() {
            let out = submit(
                &mut e,
                order(base + 2 + k as u64, owner, node, book, Side::Buy, 100, 200_000),
            );
            let t = trades(&out);
            assert_eq!(t.len(), 1, "{out:?}");
            assert_eq!(t[0].3, 100_000, "at the resting ask's price");
            got.push(t[0].4);
        }
        assert_eq!(got, expected, "book {book}: same node, 2 hops, 4 hops");
    }
    let books = e.books();
    assert_eq!(books[0].fees, Some(g));
    assert_eq!(books[1].fees, None);
}

#[test]
fn without_a_tree_every_trade_pays_per_kwh_continuous_and_at_gate_closure() {
    let mut e = Engine::new(MarketConfig::default()).unwrap();
    for p in 1..=3 {
        apply(
            &mut e,
            Command::AddParticipant {
                owner: ParticipantId(p),
                node: NodeId(p as u32),
            },
        );
    }
    open(&mut e, 0, Some(fees(7_000, 10_000)));
    submit(&mut e, order(1, 1, 1, 0, Side::Sell, 100, 100_000));
    // 100.000 + 10.000 is more than this buyer pays: it rests
    assert_eq!(
        trades(&submit(&mut e, order(2, 2, 2, 0, Side::Buy, 100, 105_000))),
        vec![]
    );
    assert_eq!(
        trades(&submit(&mut e, order(3, 3, 3, 0, Side::Buy, 40, 110_000))),
        vec![(3, 1, 40, 100_000, 10_000)]
    );
    // a resting bid pays exactly its limit: the seller gets 105.000 − 10.000
    assert_eq!(
        trades(&submit(&mut e, order(4, 1, 1, 0, Side::Sell, 30, 95_000))),
        vec![(2, 4, 30, 95_000, 10_000)]
    );
    // Gate closure: the bid of 105.000 (70 Wh left) meets asks at seller prices up to 95.000;
    // the ask of 100.000 (60 Wh left) cannot trade, one of 90.000 can: the range is
    // 90.000–95.000, the midpoint on the tick grid 93.000.
    submit(
        &mut e,
        OrderSpec {
            mode: OrderMode::AuctionOnly,
            ..order(5, 3, 3, 0, Side::Sell, 50, 90_000)
        },
    );
    let out = close(&mut e, 0);
    assert_eq!(trades(&out), vec![(2, 5, 50, 93_000, 10_000)]);
    assert!(out.contains(&Event::AuctionResult {
        zone: ZoneId(1),
        interval: iv(0),
        clearing_price: Some(MicroPerKwh(93_000)),
        volume: Wh(50),
    }));
}

/// Without a tree, an owner's own order that crosses before the flat fee but not after it
/// still stops the owner's incoming order (self-trade prevention), as an own order across a
/// tree's fee does; other owners' orders there do not trade.
#[test]
fn self_trade_prevention_sees_own_orders_the_fee_keeps_apart() {
    let mut e = Engine::new(MarketConfig::default()).unwrap();
    for p in 1..=2 {
        apply(
            &mut e,
            Command::AddParticipant {
                owner: ParticipantId(p),
                node: NodeId(p as u32),
            },
        );
    }
    open(&mut e, 0, Some(fees(0, 10_000)));
    submit(&mut e, order(1, 2, 2, 0, Side::Sell, 100, 99_000));
    submit(&mut e, order(2, 1, 1, 0, Side::Sell, 100, 100_000));
    let out = submit(&mut e, order(3, 1, 1, 0, Side::Buy, 150, 109_000));
    assert_eq!(trades(&out), vec![(3, 1, 100, 99_000, 10_000)], "{out:?}");
    assert!(
        out.contains(&Event::Cancelled {
            id: OrderId(3),
            remaining: Wh(50),
            reason: gridshare_matching_engine::CancelReason::SelfTrade
        }),
        "{out:?}"
    );
}

#[test]
fn invalid_fees_are_refused_with_a_reason() {
    assert_eq!(
        GridFees::new(MicroPerKwh(-1), MicroPerKwh(0)).unwrap_err(),
        GridFeesError::Negative {
            what: "per_hop",
            value: MicroPerKwh(-1)
        }
    );
    let too_large = GridFees::new(MicroPerKwh(0), MicroPerKwh(GridFees::MAX.0 + 1)).unwrap_err();
    assert_eq!(
        too_large.to_string(),
        "grid fee per_kwh 1000.000001/kWh is above the most allowed, 1000.000000/kWh"
    );
    assert_eq!(
        GridFees::new(MicroPerKwh(5), MicroPerKwh(7)),
        Ok(fees(5, 7)),
        "order: per_hop, per_kwh"
    );

    let mut e = Engine::new(MarketConfig {
        network: Some(tree()),
        ..MarketConfig::default()
    })
    .unwrap();
    // The tree's longest path is 4 edges; the default price range is 2.500.000.
    let ok = fees(600_000, 100_000);
    assert_eq!(e.check_grid_fees(&ok), Ok(()));
    let beyond = fees(600_001, 100_000);
    let err = e.check_grid_fees(&beyond).unwrap_err();
    assert_eq!(
        err,
        GridFeesError::AbovePriceRange {
            largest: MicroPerKwh(2_500_004),
            hops: 4,
            range: MicroPerKwh(2_500_000)
        }
    );
    assert!(err.to_string().contains("no trade could pay it"), "{err}");
    for bad in [
        fees(-1, 0),
        fees(0, -1),
        fees(GridFees::MAX.0 + 1, 0),
        fees(0, GridFees::MAX.0 + 1),
        fees(i64::MAX, i64::MAX),
        beyond,
    ] {
        assert_eq!(
            rejected(&open(&mut e, 0, Some(bad))),
            Some(RejectReason::InvalidGridFees),
            "{bad:?}"
        );
    }
    assert!(e.books().is_empty(), "nothing opened");
    assert_eq!(RejectReason::InvalidGridFees.code(), "invalid_grid_fees");
    assert_eq!(open(&mut e, 0, Some(ok)).len(), 1);
    // a second opening neither opens again nor changes the fees
    assert_eq!(rejected(&open(&mut e, 0, None)), Some(RejectReason::BookExists));
    assert_eq!(
        rejected(&open(&mut e, 0, Some(fees(1, 1)))),
        Some(RejectReason::BookExists)
    );
    assert_eq!(e.books()[0].fees, Some(ok));
}

#[test]
fn old_journal_lines_parse_and_fee_less_lines_are_unchanged() {
    let old = r#"{"cmd":"open_book","zone":1,"interval":"2026-11-25T10:15:00Z/PT15M"}"#;
    let cmd: Command = serde_json::from_str(old).unwrap();
    let interval: DeliveryInterval = "2026-11-25T10:15:00Z/PT15M".parse().unwrap();
    assert_eq!(
        cmd,
        Command::OpenBook {
            zone: ZoneId(1),
            interval,
            fees: None
        }
    );
    assert_eq!(serde_json::to_string(&cmd).unwrap(), old);
    let opened = Event::BookOpened {
        zone: ZoneId(1),
        interval,
        fees: None,
    };
    assert_eq!(
        serde_json::to_string(&opened).unwrap(),
        r#"{"event":"book_opened","zone":1,"interval":"2026-11-25T10:15:00Z/PT15M"}"#
    );

    let new = r#"{"cmd":"open_book","zone":1,"interval":"2026-11-25T10:15:00Z/PT15M","fees":{"per_hop":3000,"per_kwh":10000}}"#;
    let cmd: Command = serde_json::from_str(new).unwrap();
    assert_eq!(
        cmd,
        Command::OpenBook {
            zone: ZoneId(1),
            interval,
            fees: Some(fees(3_000, 10_000))
        }
    );
    assert_eq!(serde_json::to_string(&cmd).unwrap(), new);
    // unknown fields stay refused, in the command and in its fees
    for bad in [
        r#"{"cmd":"open_book","zone":1,"interval":"2026-11-25T10:15:00Z/PT15M","fee":1}"#,
        r#"{"cmd":"open_book","zone":1,"interval":"2026-11-25T10:15:00Z/PT15M","fees":{"per_hop":1,"per_kwh":1,"x":1}}"#,
        r#"{"cmd":"open_book","zone":1,"interval":"2026-11-25T10:15:00Z/PT15M","fees":{"per_hop":1}}"#,
    ] {
        assert!(serde_json::from_str::<Command>(bad).is_err(), "{bad}");
    }
}

// ---- equivalence on random trees -------------------------------------------------------------

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The events of a run: participants, one book (opened with `book_fees`), orders (bids at their
/// limit minus `bid_shift`), then gate closure.
fn run(
    network: Option<Vec<NodeConfig>>,
    book_fees: Option<GridFees>,
    orders: &[(u32, Side, i64, i64, bool)],
    bid_shift: i64,
) -> Vec<Event> {
    let mut e = Engine::new(MarketConfig {
        network,
        ..MarketConfig::default()
    })
    .unwrap();
    let mut out = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        e.apply(
            &Command::AddParticipant {
                owner: ParticipantId(i as u64 + 1),
                node: NodeId(o.0),
            },
            &mut out,
        );
    }
    out.push(open(&mut e, 0, book_fees).remove(0));
    for (i, &(node, side, qty, price, continuous)) in orders.iter().enumerate() {
        let o = OrderSpec {
            mode: if continuous {
                OrderMode::Continuous
            } else {
                OrderMode::AuctionOnly
            },
            ..order(
                i as u64 + 1,
                i as u64 + 1,
                node,
                0,
                side,
                qty,
                if side == Side::Buy { price - bid_shift } else { price },
            )
        };
        e.apply(&Command::Submit { at: AT, order: o }, &mut out);
    }
    out.extend(close(&mut e, 0));
    out
}

/// Book fees `{per_hop: h, per_kwh: c}` on any tree make the same trades, at the same prices,
/// as a tree with fee `h` on every edge and every bid `c` lower, each trade's grid fee `c`
/// higher; node prices, flows and congestion are the same. So the book's fees reach continuous
/// matching, fill priority, feeder limits, and the nodal (or, without a tree, uniform) auction.
#[test]
fn book_fees_equal_a_tree_with_per_hop_on_every_edge_and_per_kwh_off_every_bid() {
    let seeds: u64 = std::env::var("GRIDSHARE_FEE_SEEDS").map_or(150, |s| s.parse().unwrap());
    let mut traded = 0;
    for seed in 0..seeds {
        let mut r = Rng(seed);
        let n = 2 + r.below(12) as u32;
        let mut configured = vec![node(0, None, None, 0)];
        let mut uniform = vec![node(0, None, None, 0)];
        let h = 1_000 * r.below(30) as i64;
        let c = 1_000 * r.below(60) as i64;
        for i in 1..n {
            let parent = Some(r.below(u64::from(i)) as u32);
            let cap = match r.below(3) {
                0 => None,
                _ => Some(r.below(400) as i64),
            };
            configured.push(node(i, parent, cap, 1_000 * r.below(50) as i64));
            uniform.push(node(i, parent, cap, h));
        }
        let orders: Vec<_> = (0..2 + r.below(40))
            .map(|_| {
                let side = if r.below(2) == 0 { Side::Buy } else { Side::Sell };
                let price = 1_000 * (100 + r.below(200) as i64);
                (
                    r.below(u64::from(n)) as u32,
                    side,
                    1 + r.below(300) as i64,
                    price,
                    r.below(3) != 0,
                )
            })
            .collect();
        let g = fees(h, c);
        for (tree_of_book, tree_of_reference) in [(Some(configured.clone()), Some(uniform.clone())), (None, None)] {
            let with_fees = run(tree_of_book, Some(g), &orders, 0);
            let reference = run(tree_of_reference, None, &orders, c);
            assert_eq!(with_fees.len(), reference.len(), "seed {seed}");
            for (a, b) in with_fees.iter().zip(&reference) {
                let mut a = *a;
                match (&mut a, b) {
                    (Event::Trade { grid_fee, .. }, Event::Trade { grid_fee: fb, .. }) => {
                        traded += 1;
                        assert_eq!(grid_fee.0, fb.0 + c, "seed {seed}: {b:?}");
                        *grid_fee = *fb;
                    }
                    (Event::BookOpened { fees, .. }, _) => *fees = None,
                    _ => {}
                }
                assert_eq!(a, *b, "seed {seed}, h {h}, c {c}");
            }
        }
    }
    assert!(traded > seeds, "the scenarios trade ({traded} trades)");
}

// ---- journal, snapshot, replay ---------------------------------------------------------------

struct Collect(Vec<Event>);

impl EventSink for Collect {
    fn push(&mut self, e: Event) {
        self.0.push(e);
    }
}

/// A book opened with fees keeps them across a snapshot (taken at another book's gate closure)
/// and a restart, and replaying the journal from scratch gives the same events.
#[test]
fn journal_and_snapshot_keep_each_books_fees() {
    let cfg = MarketConfig {
        network: Some(tree()),
        ..MarketConfig::default()
    };
    let g = fees(3_000, 10_000);
    let mut cmds = vec![];
    for (p, n) in [(1, 10), (2, 20)] {
        cmds.push(Command::AddParticipant {
            owner: ParticipantId(p),
            node: NodeId(n),
        });
    }
    cmds.push(Command::OpenBook {
        zone: ZoneId(1),
        interval: iv(0),
        fees: None,
    });
    cmds.push(Command::OpenBook {
        zone: ZoneId(1),
        interval: iv(1),
        fees: Some(g),
    });
    cmds.push(Command::Submit {
        at: AT,
        order: order(1, 1, 10, 1, Side::Sell, 500, 100_000),
    });
    cmds.push(Command::CloseGate {
        at: AT,
        zone: ZoneId(1),
        interval: iv(0),
    });
    let after = [
        Command::Submit {
            at: AT,
            order: order(2, 2, 20, 1, Side::Buy, 100, 200_000),
        },
        Command::CloseGate {
            at: AT,
            zone: ZoneId(1),
            interval: iv(1),
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut first = Collect(Vec::new());
    {
        let (mut j, _) = Journaled::open(cfg.clone(), dir.path(), Durability::None).unwrap();
        for c in &cmds {
            j.apply(c, &mut first).unwrap();
        }
        j.flush().unwrap();
    }
    let snapshot = std::fs::read_to_string(dir.path().join("engine.snapshot.json")).unwrap();
    assert!(
        snapshot.contains(r#""fees":{"per_hop":3000,"per_kwh":10000}"#),
        "{snapshot}"
    );
    let (mut j, recovery) = Journaled::open(cfg.clone(), dir.path(), Durability::None).unwrap();
    assert_eq!(recovery.replayed, 0, "restored from the snapshot");
    assert_eq!(j.engine().books()[1].fees, Some(g));
    for c in &after {
        j.apply(c, &mut first).unwrap();
    }
    assert_eq!(
        trades(&first.0),
        vec![(2, 1, 100, 100_000, 10_000 + 4 * 3_000)],
        "the book's fees, not the tree's 50.000"
    );
    drop(j);

    let mut again = Engine::new(cfg).unwrap();
    let mut replayed = Vec::new();
    for c in cmds.iter().chain(&after) {
        again.apply(c, &mut replayed);
    }
    assert_eq!(replayed, first.0);
    let read = gridshare_matching_engine::journal::read(&dir.path().join("engine.journal")).unwrap();
    assert_eq!(read.commands, cmds.iter().chain(&after).copied().collect::<Vec<_>>());
}
