//! The gate-closure auction under a feeder tree, checked against an independent optimum:
//! on seeded random trees and books (continuous trading first, so edges are part used), the
//! engine's total surplus equals a min-cost-flow optimum computed here by successive shortest
//! paths on the explicit graph, and its node prices are an equilibrium (every fill inside its
//! limit at its node's price, every unfilled Wh out of the money there, neighbouring prices a
//! fee apart where the edge is not full). `GRIDSHARE_AUCTION_SEEDS` sets how many seeds
//! (default 400; the long run uses 10,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashMap;

use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::network::Network;
use gridshare_matching_engine::{CancelReason, Command, Engine, Event, MarketConfig, NodeConfig, OrderSpec};

const AT: Timestamp = Timestamp(1_764_064_000_000);

fn iv() -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap()
}

/// splitmix64: a seeded stream, so a failing seed can be run again.
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

/// One scenario: a tree, and orders (node, side, Wh, price in µ/kWh, continuous?).
struct Scenario {
    nodes: Vec<NodeConfig>,
    orders: Vec<(u32, Side, i64, i64, bool)>,
}

fn scenario(seed: u64, max_nodes: u64, max_orders: u64) -> Scenario {
    let mut r = Rng(seed);
    let n = 2 + r.below(max_nodes - 1);
    let mut nodes = vec![NodeConfig {
        id: NodeId(0),
        parent: None,
        capacity: None,
        fee: MicroPerKwh(0),
    }];
    for i in 1..n {
        let capacity = match r.below(4) {
            0 => None,
            1 => Some(Wh(0)),
            _ => Some(Wh(r.below(400) as i64)),
        };
        // fees on and off the 1,000 µ tick
        let fee = if r.below(3) == 0 { 0 } else { r.below(40) as i64 * 500 };
        nodes.push(NodeConfig {
            id: NodeId(i as u32),
            parent: Some(NodeId(r.below(i) as u32)),
            capacity,
            fee: MicroPerKwh(fee),
        });
    }
    let orders = (0..1 + r.below(max_orders))
        .map(|_| {
            let node = r.below(n) as u32;
            let side = if r.below(2) == 0 { Side::Buy } else { Side::Sell };
            let qty = 1 + r.below(300) as i64;
            let price = (50 + r.below(100) as i64) * 1000;
            (node, side, qty, price, r.below(3) == 0)
        })
        .collect();
    Scenario { nodes, orders }
}

struct Outcome {
    events: Vec<Event>,
    /// Each order's node, side and limit.
    orders: HashMap<OrderId, (u32, Side, i64)>,
    /// What each order had left at gate closure.
    left: HashMap<OrderId, i64>,
    /// The book's flows at gate closure (after continuous trading), by dense node index.
    flows_before: Vec<i64>,
}

/// Every order from its own participant (no self-trade prevention in the way), then the gate closes.
fn run(s: &Scenario, k_permille: u16) -> Outcome {
    run_with(
        s,
        MarketConfig {
            network: Some(s.nodes.clone()),
            auction_k_permille: k_permille,
            ..MarketConfig::default()
        },
    )
}

/// [`run`] on an engine of `cfg` (with or without the scenario's tree).
fn run_with(s: &Scenario, cfg: MarketConfig) -> Outcome {
    let net = Network::new(&s.nodes).unwrap();
    let mut e = Engine::new(cfg).unwrap();
    let mut events = Vec::new();
    let mut orders = HashMap::new();
    for (i, &(node, ..)) in s.orders.iter().enumerate() {
        e.apply(
            &Command::AddParticipant {
                owner: ParticipantId(i as u64 + 1),
                node: NodeId(node),
            },
            &mut events,
        );
    }
    e.apply(
        &Command::OpenBook {
            zone: ZoneId(1),
            interval: iv(),
            fees: None,
        },
        &mut events,
    );
    for (i, &(node, side, qty, price, continuous)) in s.orders.iter().enumerate() {
        let id = OrderId(i as u64 + 1);
        orders.insert(id, (net.index_of(NodeId(node)).unwrap(), side, price));
        let order = OrderSpec {
            id,
            owner: ParticipantId(i as u64 + 1),
            node: NodeId(node),
            zone: ZoneId(1),
            interval: iv(),
            side,
            quantity: Wh(qty),
            price: MicroPerKwh(price),
            tif: TimeInForce::GoodTillGateClosure,
            mode: if continuous {
                OrderMode::Continuous
            } else {
                OrderMode::AuctionOnly
            },
        };
        e.apply(&Command::Submit { at: AT, order }, &mut events);
    }
    assert!(
        !events.iter().any(|e| matches!(e, Event::Rejected { .. })),
        "{events:?}"
    );
    let mut left: HashMap<OrderId, i64> = s
        .orders
        .iter()
        .enumerate()
        .map(|(i, o)| (OrderId(i as u64 + 1), o.2))
        .collect();
    let mut flows_before = vec![0; net.len()];
    for ev in &events {
        if let Event::Trade {
            buy, sell, quantity, ..
        } = *ev
        {
            *left.get_mut(&buy).unwrap() -= quantity.0;
            *left.get_mut(&sell).unwrap() -= quantity.0;
            net.apply(orders[&sell].0, orders[&buy].0, quantity.0, &mut flows_before);
        }
    }
    let mut events = Vec::new();
    e.apply(
        &Command::CloseGate {
            at: AT,
            zone: ZoneId(1),
            interval: iv(),
        },
        &mut events,
    );
    assert_eq!(e.live_orders(), 0);
    Outcome {
        events,
        orders,
        left,
        flows_before,
    }
}

/// The most surplus the orders left at closure can make within the rooms left, by successive
/// shortest paths (Bellman-Ford) on source → asks → tree (both directions per edge) → bids → sink.
fn optimum(s: &Scenario, o: &Outcome) -> i128 {
    let net = Network::new(&s.nodes).unwrap();
    let n = net.len();
    let (src, sink) = (n, n + 1);
    // arcs: (to, cap, cost); arc i's reverse is i ^ 1
    let mut arcs: Vec<(usize, i64, i64)> = Vec::new();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n + 2];
    let mut add = |from: usize, to: usize, cap: i64, cost: i64| {
        adj[from].push(arcs.len());
        arcs.push((to, cap, cost));
        adj[to].push(arcs.len());
        arcs.push((from, 0, -cost));
    };
    const BIG: i64 = 1 << 40;
    for v in 0..n as u32 {
        if let Some(p) = net.parent(v) {
            let cap = net.capacity(v).min(BIG);
            let f = o.flows_before[v as usize];
            add(v as usize, p as usize, (cap - f).max(0), net.fee(v));
            add(p as usize, v as usize, (cap + f).max(0), net.fee(v));
        }
    }
    for (id, &(node, side, price)) in &o.orders {
        let q = o.left[id];
        if q > 0 {
            match side {
                Side::Sell => add(src, node as usize, q, price),
                Side::Buy => add(node as usize, sink, q, -price),
            }
        }
    }
    let mut total: i128 = 0;
    loop {
        let mut dist = vec![i64::MAX; n + 2];
        let mut via = vec![usize::MAX; n + 2];
        dist[src] = 0;
        for _ in 0..n + 2 {
            let mut changed = false;
            for u in 0..n + 2 {
                if dist[u] == i64::MAX {
                    continue;
                }
                for &a in &adj[u] {
                    let (to, cap, cost) = arcs[a];
                    if cap > 0 && dist[u] + cost < dist[to] {
                        dist[to] = dist[u] + cost;
                        via[to] = a;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        if dist[sink] >= 0 {
            return -total;
        }
        let mut push = i64::MAX;
        let mut v = sink;
        while v != src {
            let a = via[v];
            push = push.min(arcs[a].1);
            v = arcs[a ^ 1].0;
        }
        let mut v = sink;
        while v != src {
            let a = via[v];
            arcs[a].1 -= push;
            arcs[a ^ 1].1 += push;
            v = arcs[a ^ 1].0;
        }
        total += i128::from(push) * i128::from(dist[sink]);
    }
}

/// The auction's surplus: Σ Wh × (bid limit − ask limit − path fee) over its trades.
fn surplus(o: &Outcome, net: &Network) -> i128 {
    o.events
        .iter()
        .filter_map(|e| match *e {
            Event::Trade {
                buy,
                sell,
                quantity,
                auction: true,
                ..
            } => {
                let (bn, _, b) = o.orders[&buy];
                let (sn, _, a) = o.orders[&sell];
                Some(i128::from(quantity.0) * i128::from(b - a - net.path_fee(sn, bn)))
            }
            _ => None,
        })
        .sum()
}

/// The equilibrium conditions on the auction's node prices and trades.
fn check_equilibrium(seed: u64, s: &Scenario, o: &Outcome) {
    let net = Network::new(&s.nodes).unwrap();
    let price: HashMap<u32, i64> = o
        .events
        .iter()
        .filter_map(|e| match *e {
            Event::NodePrice { node, price, .. } => Some((net.index_of(node).unwrap(), price.0)),
            _ => None,
        })
        .collect();
    let volume: i64 = o
        .events
        .iter()
        .filter_map(|e| match *e {
            Event::AuctionResult { volume, .. } => Some(volume.0),
            _ => None,
        })
        .sum();
    if volume == 0 {
        assert!(price.is_empty(), "seed {seed}: node prices without a trade");
        return;
    }
    assert!(price.len() <= net.len(), "seed {seed}: at most a price per node");
    let mut flows = o.flows_before.clone();
    for e in &o.events {
        match *e {
            Event::Trade {
                buy,
                sell,
                quantity,
                price: p,
                grid_fee,
                auction: true,
                ..
            } => {
                let (bn, _, b) = o.orders[&buy];
                let (sn, _, a) = o.orders[&sell];
                assert_eq!(p.0, price[&sn], "seed {seed}: a seller receives its node's price");
                assert_eq!(
                    p.0 + grid_fee.0,
                    price[&bn],
                    "seed {seed}: a buyer pays its node's price"
                );
                assert!(
                    a <= price[&sn] && b >= price[&bn],
                    "seed {seed}: a fill outside its limit"
                );
                assert!(grid_fee.0 >= net.path_fee(sn, bn), "seed {seed}: the fee is covered");
                net.apply(sn, bn, quantity.0, &mut flows);
            }
            Event::Cancelled {
                id,
                remaining,
                reason: CancelReason::Unmatched,
            } if remaining.0 > 0 => {
                let (node, side, limit) = o.orders[&id];
                let pv = price[&node];
                match side {
                    Side::Buy => assert!(limit <= pv, "seed {seed}: bid {id} at {limit} unfilled below {pv}"),
                    Side::Sell => assert!(limit >= pv, "seed {seed}: ask {id} at {limit} unfilled above {pv}"),
                }
            }
            _ => {}
        }
    }
    assert!(net.within_limits(&flows), "seed {seed}: an edge over its capacity");
    for e in &o.events {
        if let Event::NodePrice {
            node, flow, congestion, ..
        } = *e
        {
            let v = net.index_of(node).unwrap();
            let Some(pp) = net.parent(v).and_then(|p| price.get(&p)) else {
                assert_eq!(congestion.0, 0, "seed {seed}: congestion against no price");
                continue;
            };
            let gap = (price[&v] - pp).abs();
            let full = |dir_up: bool| {
                let cap = net.capacity(v);
                if dir_up {
                    flows[v as usize] == cap
                } else {
                    flows[v as usize] == -cap
                }
            };
            assert_eq!(
                congestion.0,
                (gap - net.fee(v)).max(0),
                "seed {seed}: congestion is the gap over the fee"
            );
            if congestion.0 > 0 {
                // energy would cross toward the dearer side, and cannot
                let up = *pp > price[&v];
                assert!(full(up), "seed {seed}: node {node} congested but its edge is not full");
            }
            if flow.0 != 0 && congestion.0 == 0 {
                assert_eq!(
                    gap,
                    net.fee(v),
                    "seed {seed}: node {node} carries energy a fee away from its parent"
                );
            }
        }
    }
}

fn seeds() -> u64 {
    std::env::var("GRIDSHARE_AUCTION_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

#[test]
fn the_network_auction_reaches_the_optimum_and_its_prices_are_an_equilibrium() {
    let mut traded = 0;
    for seed in 0..seeds() {
        let s = scenario(seed, 7, 12);
        let k = [0, 500, 1000][(seed % 3) as usize];
        let o = run(&s, k);
        let net = Network::new(&s.nodes).unwrap();
        assert_eq!(
            surplus(&o, &net),
            optimum(&s, &o),
            "seed {seed}: surplus below the optimum"
        );
        check_equilibrium(seed, &s, &o);
        traded += u64::from(o.events.iter().any(|e| matches!(e, Event::Trade { .. })));
    }
    assert!(traded > seeds() / 2, "most scenarios trade ({traded} of {})", seeds());
}

#[test]
fn large_books_over_a_deep_tree_clear_to_an_equilibrium() {
    for seed in 0..8 {
        let s = scenario(1_000_000 + seed, 60, 600);
        let o = run(&s, 500);
        check_equilibrium(seed, &s, &o);
    }
}

#[test]
fn with_free_unlimited_edges_the_network_auction_matches_the_plain_one() {
    // Same volume and surplus as the uniform-price auction without a network.
    for seed in 0..200 {
        let mut s = scenario(2_000_000 + seed, 6, 12);
        for n in &mut s.nodes {
            n.capacity = None;
            n.fee = MicroPerKwh(0);
        }
        for o in &mut s.orders {
            o.4 = false; // all to the auction
        }
        let with = run(&s, 500);
        let plain = run_with(&s, MarketConfig::default());
        let volume = |o: &Outcome| -> i64 {
            o.events
                .iter()
                .filter_map(|e| match *e {
                    Event::AuctionResult { volume, .. } => Some(volume.0),
                    _ => None,
                })
                .sum()
        };
        let net = Network::new(&s.nodes).unwrap();
        assert_eq!(volume(&with), volume(&plain), "seed {seed}: volume");
        assert_eq!(surplus(&with, &net), surplus(&plain, &net), "seed {seed}: surplus");
    }
}
