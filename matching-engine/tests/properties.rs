//! Invariants over random feeder trees and random command streams:
//! - no edge carries more than its capacity (flows recomputed from trades);
//! - no trade is outside either order's limit (buyer pays price + fee ≤ bid);
//! - volume is conserved per order: every accepted order ends filled,
//!   cancelled with the exact remainder, or amended, never over-filled;
//! - no one trades with themselves;
//! - the same commands give byte-identical events, also after a journal replay;
//! - after every command, no two resting continuous orders of different owners
//!   cross after their path fee with room left on their path (issue 19).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashMap;

use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::journal::{self, Durability, JournalWriter};
use gridshare_matching_engine::{Command, Engine, Event, MarketConfig, Network, NodeConfig, OrderSpec};
use proptest::prelude::*;

fn iv(i: i64) -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(1_764_064_800_000 + i * 900_000), IntervalLength::Min15).unwrap()
}

#[derive(Debug, Clone)]
struct Scenario {
    nodes: Vec<NodeConfig>,
    homes: Vec<u32>,
    commands: Vec<Command>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    // A tree: root 0, 1-3 transformers, homes under them.
    (1usize..4, 2usize..10, any::<u64>())
        .prop_flat_map(|(transformers, homes, seed)| {
            let ops = prop::collection::vec(
                (
                    0u8..10,
                    0usize..64,
                    any::<bool>(),
                    1i64..400,
                    0i64..60,
                    0u8..4,
                    0usize..2,
                ),
                1..120,
            );
            (
                Just((transformers, homes, seed)),
                ops,
                prop::collection::vec((0i64..600, 0i64..20), transformers + homes),
            )
        })
        .prop_map(|((transformers, homes, seed), ops, edges)| {
            let mut nodes = vec![NodeConfig {
                id: NodeId(0),
                parent: None,
                capacity: None,
                fee: MicroPerKwh(0),
            }];
            for (t, &(cap, fee)) in edges.iter().enumerate().take(transformers) {
                nodes.push(NodeConfig {
                    id: NodeId(100 + t as u32),
                    parent: Some(NodeId(0)),
                    capacity: Some(Wh(cap + 50)),
                    fee: MicroPerKwh(fee * 1000),
                });
            }
            let mut home_nodes = Vec::new();
            for h in 0..homes {
                let (cap, fee) = edges[transformers + h];
                let parent = 100 + ((seed as usize + h * 7) % transformers) as u32;
                let id = 1000 + h as u32;
                nodes.push(NodeConfig {
                    id: NodeId(id),
                    parent: Some(NodeId(parent)),
                    capacity: Some(Wh(cap)),
                    fee: MicroPerKwh(fee * 1000),
                });
                home_nodes.push(id);
            }
            let mut commands = Vec::new();
            for (i, &n) in home_nodes.iter().enumerate() {
                commands.push(Command::AddParticipant {
                    owner: ParticipantId(i as u64 + 1),
                    node: NodeId(n),
                });
            }
            for b in 0..2 {
                commands.push(Command::OpenBook {
                    zone: ZoneId(1),
                    interval: iv(b),
                    fees: None,
                });
            }
            let mut next_id = 1u64;
            for (kind, who, buy, qty, price, tif, book) in ops {
                let owner = (who % home_nodes.len()) as u64 + 1;
                let at = Timestamp(1_764_060_000_000 + next_id as i64);
                match kind {
                    0..=6 => {
                        let order = OrderSpec {
                            id: OrderId(next_id),
                            owner: ParticipantId(owner),
                            node: NodeId(home_nodes[owner as usize - 1]),
                            zone: ZoneId(1),
                            interval: iv(book as i64),
                            side: if buy { Side::Buy } else { Side::Sell },
                            quantity: Wh(qty),
                            price: MicroPerKwh((40 + price) * 1000),
                            tif: match tif {
                                1 => TimeInForce::ImmediateOrCancel,
                                2 => TimeInForce::FillOrKill,
                                _ => TimeInForce::GoodTillGateClosure,
                            },
                            mode: if tif == 3 {
                                OrderMode::AuctionOnly
                            } else {
                                OrderMode::Continuous
                            },
                        };
                        next_id += 1;
                        commands.push(Command::Submit { at, order });
                    }
                    7 => commands.push(Command::Cancel {
                        at,
                        id: OrderId(1 + (who as u64 % next_id)),
                        owner: ParticipantId(owner),
                    }),
                    _ => commands.push(Command::Amend {
                        at,
                        id: OrderId(1 + (who as u64 % next_id)),
                        owner: ParticipantId(owner),
                        quantity: Wh(qty),
                        price: MicroPerKwh((40 + price) * 1000),
                    }),
                }
            }
            for b in 0..2 {
                commands.push(Command::CloseGate {
                    at: Timestamp(1_764_064_000_000),
                    zone: ZoneId(1),
                    interval: iv(b),
                });
            }
            Scenario {
                nodes,
                homes: home_nodes,
                commands,
            }
        })
}

fn run(cfg: &MarketConfig, commands: &[Command]) -> Vec<Event> {
    let mut e = Engine::new(cfg.clone()).unwrap();
    let mut out = Vec::new();
    for c in commands {
        e.apply(c, &mut out);
    }
    assert_eq!(e.live_orders(), 0, "every book closed, so no order is left");
    out
}

fn check_invariants(s: &Scenario, cfg: &MarketConfig, events: &[Event]) -> Result<(), TestCaseError> {
    let net = Network::new(&s.nodes).unwrap();
    let node_of: HashMap<ParticipantId, u32> = s
        .homes
        .iter()
        .enumerate()
        .map(|(i, n)| (ParticipantId(i as u64 + 1), net.index_of(NodeId(*n)).unwrap()))
        .collect();
    // Current limit price and remaining quantity of every live order, from the commands and events.
    let mut limits: HashMap<OrderId, (Side, i64)> = HashMap::new();
    for c in &s.commands {
        if let Command::Submit { order, .. } = c {
            limits.insert(order.id, (order.side, order.price.0));
        }
    }
    let mut remaining: HashMap<OrderId, i64> = HashMap::new();
    let mut pending_qty: HashMap<OrderId, i64> = HashMap::new();
    for c in &s.commands {
        if let Command::Submit { order, .. } = c {
            pending_qty.insert(order.id, order.quantity.0);
        }
    }
    let mut flows: HashMap<DeliveryInterval, Vec<i64>> = HashMap::new();
    for e in events {
        match *e {
            Event::Accepted { id } => {
                remaining.insert(id, pending_qty[&id]);
            }
            Event::Amended {
                id, quantity, price, ..
            } => {
                let side = limits[&id].0;
                limits.insert(id, (side, price.0));
                prop_assert!(remaining.contains_key(&id));
                remaining.insert(id, quantity.0);
            }
            Event::Trade {
                buy,
                sell,
                buyer,
                seller,
                quantity,
                price,
                grid_fee,
                interval,
                auction,
                ..
            } => {
                prop_assert_ne!(buyer, seller, "self trade");
                prop_assert!(quantity.0 > 0);
                let (bs, bid) = limits[&buy];
                let (ss, ask) = limits[&sell];
                prop_assert_eq!((bs, ss), (Side::Buy, Side::Sell));
                prop_assert!(
                    price.0 + grid_fee.0 <= bid,
                    "buyer pays {} + {} > limit {}",
                    price.0,
                    grid_fee.0,
                    bid
                );
                prop_assert!(price.0 >= ask, "seller gets {} < limit {}", price.0, ask);
                let (sn, bn) = (node_of[&seller], node_of[&buyer]);
                if auction {
                    // the buyer's node price minus the seller's: the fee, plus congestion on a full edge
                    prop_assert!(grid_fee.0 >= net.path_fee(sn, bn));
                } else {
                    prop_assert_eq!(grid_fee.0, net.path_fee(sn, bn));
                }
                for id in [buy, sell] {
                    let r = remaining.get_mut(&id).unwrap();
                    *r -= quantity.0;
                    prop_assert!(*r >= 0, "order {} over-filled", id);
                }
                let f = flows.entry(interval).or_insert_with(|| vec![0; net.len()]);
                net.apply(sn, bn, quantity.0, f);
                prop_assert!(net.within_limits(f), "capacity exceeded in {}", interval);
            }
            Event::Cancelled {
                id, remaining: left, ..
            } => {
                prop_assert_eq!(
                    remaining.remove(&id),
                    Some(left.0),
                    "cancelled {} with the wrong remainder",
                    id
                );
            }
            _ => {}
        }
    }
    remaining.retain(|_, r| *r != 0);
    prop_assert!(
        remaining.is_empty(),
        "orders neither filled nor cancelled: {:?}",
        remaining
    );
    let _ = cfg;
    Ok(())
}

/// `s` with participants moving: now and then an owner re-registers at
/// another home, and its later orders come from there (its resting orders
/// stay where they were placed). Also returns each order's node.
fn with_moves(s: &Scenario, moves: &[(usize, usize)]) -> (Vec<Command>, HashMap<OrderId, NodeId>) {
    let mut at: HashMap<ParticipantId, NodeId> = HashMap::new();
    let mut node_of = HashMap::new();
    let mut out = Vec::new();
    for (i, c) in s.commands.iter().enumerate() {
        for &(when, who) in moves {
            if when == i && !at.is_empty() {
                let owner = ParticipantId(1 + (who % s.homes.len()) as u64);
                let node = NodeId(s.homes[(who / 7) % s.homes.len()]);
                at.insert(owner, node);
                out.push(Command::AddParticipant { owner, node });
            }
        }
        let mut c = *c;
        match &mut c {
            Command::AddParticipant { owner, node } => {
                at.insert(*owner, *node);
            }
            Command::Submit { order, .. } => {
                order.node = at[&order.owner];
                node_of.insert(order.id, order.node);
            }
            _ => {}
        }
        out.push(c);
    }
    (out, node_of)
}

/// No two resting continuous orders of different owners in one open book are
/// price-compatible after the path fee with room on their path.
fn check_no_tradable_pair_rests(
    e: &Engine,
    net: &Network,
    order_nodes: &HashMap<OrderId, NodeId>,
) -> Result<(), TestCaseError> {
    let snap = e.snapshot(0);
    let node_of = |o: &gridshare_matching_engine::OrderSnapshot| net.index_of(order_nodes[&o.id]).unwrap();
    for (bi, book) in snap.books.iter().enumerate().filter(|(_, b)| b.open) {
        let resting = |side| {
            snap.orders
                .iter()
                .filter(move |o| o.book as usize == bi && o.side == side && !o.auction_only)
        };
        for bid in resting(Side::Buy) {
            for ask in resting(Side::Sell).filter(|a| a.owner != bid.owner) {
                let (s, b) = (node_of(ask), node_of(bid));
                if ask.price.0 + net.path_fee(s, b) <= bid.price.0 {
                    prop_assert_eq!(
                        net.path_room(s, b, &book.flows),
                        0,
                        "bid {} and ask {} cross with room in {}",
                        bid.id,
                        ask.id,
                        book.interval
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_tradable_pair_is_left_resting_after_any_command(
        s in scenario(),
        moves in prop::collection::vec((0usize..200, 0usize..1000), 0..6),
    ) {
        let cfg = MarketConfig { network: Some(s.nodes.clone()), max_orders: 4096, ..MarketConfig::default() };
        let net = Network::new(&s.nodes).unwrap();
        let (commands, order_nodes) = with_moves(&s, &moves);
        let mut e = Engine::new(cfg).unwrap();
        let mut out = Vec::new();
        for c in &commands {
            e.apply(c, &mut out);
            check_no_tradable_pair_rests(&e, &net, &order_nodes)?;
        }
    }

    #[test]
    fn invariants_hold_with_network_limits(s in scenario()) {
        let cfg = MarketConfig { network: Some(s.nodes.clone()), max_orders: 4096, ..MarketConfig::default() };
        let events = run(&cfg, &s.commands);
        check_invariants(&s, &cfg, &events)?;
    }

    #[test]
    fn same_input_same_bytes_also_after_journal_replay(s in scenario()) {
        let cfg = MarketConfig { network: Some(s.nodes.clone()), max_orders: 4096, ..MarketConfig::default() };
        let first = serde_json::to_vec(&run(&cfg, &s.commands)).unwrap();
        let second = serde_json::to_vec(&run(&cfg, &s.commands)).unwrap();
        prop_assert_eq!(&first, &second);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        {
            let mut w = JournalWriter::open(&path, Durability::None).unwrap();
            for c in &s.commands {
                w.append(c).unwrap();
            }
        }
        let rec = journal::read(&path).unwrap();
        prop_assert!(rec.torn.is_none());
        let replayed = serde_json::to_vec(&run(&cfg, &rec.commands)).unwrap();
        prop_assert_eq!(&first, &replayed);
    }

    #[test]
    fn without_network_the_auction_matches_every_crossing_unit(s in scenario()) {
        // No tree: the call auction must leave no crossing pair of different owners.
        let cfg = MarketConfig { max_orders: 4096, ..MarketConfig::default() };
        let mut cmds = s.commands.clone();
        for c in &mut cmds {
            if let Command::AddParticipant { node, .. } = c { *node = NodeId(0); }
            if let Command::Submit { order, .. } = c { order.node = NodeId(0); }
        }
        let events = run(&cfg, &cmds);
        // Orders cancelled as unmatched at closure must not cross each other (different owners).
        let mut unmatched: Vec<(OrderId, Side, i64, ParticipantId, DeliveryInterval)> = Vec::new();
        let mut spec: HashMap<OrderId, (Side, i64, ParticipantId, DeliveryInterval)> = HashMap::new();
        for c in &cmds {
            if let Command::Submit { order, .. } = c { spec.insert(order.id, (order.side, order.price.0, order.owner, order.interval)); }
        }
        for e in &events {
            match *e {
                Event::Amended { id, price, .. } => { if let Some(s) = spec.get_mut(&id) { s.1 = price.0; } }
                Event::Cancelled { id, reason: gridshare_matching_engine::CancelReason::Unmatched, .. } => {
                    let (side, p, o, i) = spec[&id];
                    unmatched.push((id, side, p, o, i));
                }
                _ => {}
            }
        }
        for (_, s1, p1, o1, i1) in &unmatched {
            for (_, s2, p2, o2, i2) in &unmatched {
                if s1 == &Side::Buy && s2 == &Side::Sell && i1 == i2 && o1 != o2 {
                    prop_assert!(p1 < p2, "unmatched bid {} crosses unmatched ask {}", p1, p2);
                }
            }
        }
    }
}
