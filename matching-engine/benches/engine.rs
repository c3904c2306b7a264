//! Matching-engine benchmarks, side by side with obcore, lobster and matchcore (Rust
//! order books from crates.io) on identical pre-generated operation streams.
//!
//! `cargo bench -p gridshare-matching-engine --bench engine`
//!
//! Both books get buys from one owner and sells from another (so neither's
//! self-trade prevention fires) and plain limit orders (marketable ones are
//! priced through the spread); fill counts are compared before timing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)] // bench code

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::journal::{self, Durability, JournalWriter};
use gridshare_matching_engine::{Command, CountingSink, Engine, MarketConfig, NodeConfig, OrderSpec};
use obcore::{Evaluator, Instruction, OrderInterface};

// ---- workloads -----------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    Add {
        id: u64,
        buy: bool,
        tick: u32,
        qty: i64,
        book: u32,
        auction: bool,
    },
    Cancel {
        id: u64,
        buy: bool,
    },
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MID: u32 = 500;

/// exchange-core-like mix: 60 % resting adds, 30 % cancels, 10 % marketable adds, ±20 ticks of mid.
fn mix(n: usize, first_id: u64, seed: u64) -> Vec<Op> {
    let mut r = Lcg(seed);
    let mut ops = Vec::with_capacity(n);
    let mut live: Vec<(u64, bool)> = Vec::new();
    let mut id = first_id;
    for _ in 0..n {
        let k = r.below(100);
        if k < 30 && !live.is_empty() {
            let i = r.below(live.len() as u64) as usize;
            let (cid, buy) = live.swap_remove(i);
            ops.push(Op::Cancel { id: cid, buy });
            continue;
        }
        let buy = r.below(2) == 0;
        let tick = if k >= 90 {
            if buy {
                MID + r.below(20) as u32
            } else {
                MID - r.below(20) as u32
            }
        } else if buy {
            MID - 1 - r.below(20) as u32
        } else {
            MID + 1 + r.below(20) as u32
        };
        ops.push(Op::Add {
            id,
            buy,
            tick,
            qty: 1 + r.below(100) as i64,
            book: 0,
            auction: false,
        });
        live.push((id, buy));
        id += 1;
    }
    ops
}

/// 10,000 resting orders on 200 levels (100 each side, 50 per level).
fn prefill() -> Vec<Op> {
    let mut ops = Vec::with_capacity(10_000);
    let mut id = 1u64;
    for level in 0..100u32 {
        for _ in 0..50 {
            ops.push(Op::Add {
                id,
                buy: true,
                tick: MID - 1 - level,
                qty: 100,
                book: 0,
                auction: false,
            });
            id += 1;
            ops.push(Op::Add {
                id,
                buy: false,
                tick: MID + 1 + level,
                qty: 100,
                book: 0,
                auction: false,
            });
            id += 1;
        }
    }
    ops
}

/// Local-energy day: per book 10,000 orders of 100–5,000 Wh at 50–400 ticks, 70 % not crossing, then 10 % cancels.
fn energy(books: u32, per_book: usize) -> Vec<Op> {
    let mut r = Lcg(42);
    let mut ops = Vec::new();
    let mut side_of = vec![false; books as usize * per_book + 1];
    let mut id = 1u64;
    for book in 0..books {
        let first = id;
        for _ in 0..per_book {
            let buy = r.below(2) == 0;
            let crossing = r.below(100) < 30;
            let tick = match (buy, crossing) {
                (true, false) | (false, true) => 50 + r.below(175) as u32,
                (true, true) | (false, false) => 225 + r.below(176) as u32,
            };
            ops.push(Op::Add {
                id,
                buy,
                tick,
                qty: 100 + r.below(4901) as i64,
                book,
                auction: false,
            });
            side_of[id as usize] = buy;
            id += 1;
        }
        for _ in 0..per_book / 10 {
            let cid = first + r.below(per_book as u64);
            ops.push(Op::Cancel {
                id: cid,
                buy: side_of[cid as usize],
            });
        }
    }
    ops
}

// ---- GridShare engine ----------------------------------------------------

fn iv(book: u32) -> DeliveryInterval {
    DeliveryInterval::new(
        Timestamp(1_764_064_800_000 + i64::from(book) * 900_000),
        IntervalLength::Min15,
    )
    .unwrap()
}

fn ours_engine(books: u32, network: Option<Vec<NodeConfig>>) -> Engine {
    let cfg = MarketConfig {
        tick: MicroPerKwh(1_000),
        min_price: MicroPerKwh(0),
        // one band wide enough for every workload, as the market runs (0–16,383 ticks)
        max_price: MicroPerKwh(16_383_000),
        max_orders: 2_000_000,
        max_books: 200,
        max_quantity: Wh(1_000_000),
        network,
        ..MarketConfig::default()
    };
    let mut e = Engine::new(cfg).unwrap();
    let mut sink = CountingSink::default();
    e.apply(
        &Command::AddParticipant {
            owner: ParticipantId(1),
            node: NodeId(1),
        },
        &mut sink,
    );
    e.apply(
        &Command::AddParticipant {
            owner: ParticipantId(2),
            node: NodeId(2),
        },
        &mut sink,
    );
    for b in 0..books {
        e.apply(
            &Command::OpenBook {
                zone: ZoneId(1),
                interval: iv(b),
                fees: None,
            },
            &mut sink,
        );
    }
    e
}

fn to_commands(ops: &[Op]) -> Vec<Command> {
    ops.iter()
        .map(|op| match *op {
            Op::Add {
                id,
                buy,
                tick,
                qty,
                book,
                auction,
            } => {
                let owner = if buy { 1 } else { 2 };
                Command::Submit {
                    at: Timestamp(0),
                    order: OrderSpec {
                        id: OrderId(id),
                        owner: ParticipantId(owner),
                        node: NodeId(owner as u32),
                        zone: ZoneId(1),
                        interval: iv(book),
                        side: if buy { Side::Buy } else { Side::Sell },
                        quantity: Wh(qty),
                        price: MicroPerKwh(i64::from(tick) * 1_000),
                        tif: TimeInForce::GoodTillGateClosure,
                        mode: if auction {
                            OrderMode::AuctionOnly
                        } else {
                            OrderMode::Continuous
                        },
                    },
                }
            }
            Op::Cancel { id, buy } => Command::Cancel {
                at: Timestamp(0),
                id: OrderId(id),
                owner: ParticipantId(if buy { 1 } else { 2 }),
            },
        })
        .collect()
}

fn run_ours(e: &mut Engine, cmds: &[Command]) -> CountingSink {
    let mut sink = CountingSink::default();
    for c in cmds {
        e.apply(c, &mut sink);
    }
    sink
}

// ---- obcore ----------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct ObOrder {
    id: u64,
    buy: bool,
    price: u64,
    qty: u64,
    remaining: u64,
    owner: u64,
}

impl OrderInterface for ObOrder {
    type I = u64;
    type N = u64;
    type O = u64;
    fn id(&self) -> &u64 {
        &self.id
    }
    fn is_buy(&self) -> bool {
        self.buy
    }
    fn price(&self) -> u64 {
        self.price
    }
    fn quantity(&self) -> u64 {
        self.qty
    }
    fn remaining(&self) -> u64 {
        self.remaining
    }
    fn fill(&mut self, q: u64) {
        self.remaining -= q;
    }
    fn owner(&self) -> &u64 {
        &self.owner
    }
}

struct Ob {
    books: Vec<obcore::OrderBook<ObOrder>>,
    eval: Evaluator<ObOrder>,
    /// book of each order id, for cancels (a dense array: ids are sequential)
    book_of: Vec<u32>,
}

impl Ob {
    fn new(books: u32, max_id: usize) -> Self {
        Self {
            books: (0..books).map(|_| obcore::OrderBook::default()).collect(),
            eval: Evaluator::default(),
            book_of: vec![0; max_id + 1],
        }
    }

    /// Apply ops; returns the number of maker fills (= trades).
    fn run(&mut self, ops: &[Op]) -> u64 {
        let mut fills = 0;
        for op in ops {
            let (book, o) = match *op {
                Op::Add {
                    id,
                    buy,
                    tick,
                    qty,
                    book,
                    ..
                } => {
                    self.book_of[id as usize] = book;
                    let order = ObOrder {
                        id,
                        buy,
                        price: u64::from(tick),
                        qty: qty as u64,
                        remaining: qty as u64,
                        owner: u64::from(!buy),
                    };
                    (book, obcore::Op::Insert(order))
                }
                Op::Cancel { id, .. } => (self.book_of[id as usize], obcore::Op::Delete(id)),
            };
            let ob = &mut self.books[book as usize];
            self.eval.reset();
            for ins in self.eval.eval(ob, o) {
                if let Instruction::Fill(_, _, _, _, false) = ins {
                    fills += 1;
                }
                ob.apply(ins);
            }
        }
        fills
    }
}

// ---- lobster ---------------------------------------------------------------

struct Lob {
    books: Vec<lobster::OrderBook>,
    book_of: Vec<u32>,
}

impl Lob {
    fn new(books: u32, max_id: usize, arena: usize) -> Self {
        Self {
            books: (0..books).map(|_| lobster::OrderBook::new(arena, 16, false)).collect(),
            book_of: vec![0; max_id + 1],
        }
    }

    fn run(&mut self, ops: &[Op]) -> u64 {
        let mut fills = 0;
        for op in ops {
            let (book, o) = match *op {
                Op::Add {
                    id,
                    buy,
                    tick,
                    qty,
                    book,
                    ..
                } => {
                    self.book_of[id as usize] = book;
                    let side = if buy { lobster::Side::Bid } else { lobster::Side::Ask };
                    (
                        book,
                        lobster::OrderType::Limit {
                            id: u128::from(id),
                            side,
                            qty: qty as u64,
                            price: u64::from(tick),
                        },
                    )
                }
                Op::Cancel { id, .. } => (
                    self.book_of[id as usize],
                    lobster::OrderType::Cancel { id: u128::from(id) },
                ),
            };
            match self.books[book as usize].execute(o) {
                lobster::OrderEvent::PartiallyFilled { fills: f, .. }
                | lobster::OrderEvent::Filled { fills: f, .. } => {
                    fills += f.len() as u64;
                }
                _ => {}
            }
        }
        fills
    }
}

// ---- matchcore -------------------------------------------------------------

struct Mc {
    books: Vec<matchcore::OrderBook>,
    /// next command sequence number per book (matchcore requires them consecutive)
    seq: Vec<u64>,
    /// matchcore order id (= the submit's sequence number) of each of our ids
    id_map: Vec<u64>,
    book_of: Vec<u32>,
}

impl Mc {
    fn new(books: u32, max_id: usize) -> Self {
        Self {
            books: (0..books)
                .map(|b| matchcore::OrderBook::new(&format!("book{b}")))
                .collect(),
            seq: vec![0; books as usize],
            id_map: vec![u64::MAX; max_id + 1],
            book_of: vec![0; max_id + 1],
        }
    }

    fn run(&mut self, ops: &[Op]) -> u64 {
        use matchcore::{CommandKind, CommandOutcome, CommandReport};
        let mut fills = 0;
        for op in ops {
            let (book, kind) = match *op {
                Op::Add {
                    id,
                    buy,
                    tick,
                    qty,
                    book,
                    ..
                } => {
                    self.book_of[id as usize] = book;
                    self.id_map[id as usize] = self.seq[book as usize];
                    let side = if buy {
                        matchcore::Side::Buy
                    } else {
                        matchcore::Side::Sell
                    };
                    let order = matchcore::LimitOrder::new(
                        matchcore::Price(u64::from(tick)),
                        matchcore::QuantityPolicy::Standard {
                            quantity: matchcore::Quantity(qty as u64),
                        },
                        matchcore::OrderFlags::new(side, false, matchcore::TimeInForce::Gtc),
                    );
                    (
                        book,
                        CommandKind::Submit(matchcore::SubmitCmd {
                            order: matchcore::NewOrder::Limit(order),
                        }),
                    )
                }
                Op::Cancel { id, .. } => {
                    let book = self.book_of[id as usize];
                    let cancel = matchcore::CancelCmd {
                        order_id: matchcore::OrderId(self.id_map[id as usize]),
                        order_kind: matchcore::OrderKind::Limit,
                    };
                    (book, CommandKind::Cancel(cancel))
                }
            };
            let b = book as usize;
            let seq = self.seq[b];
            self.seq[b] += 1;
            let cmd = matchcore::Command {
                meta: matchcore::CommandMeta {
                    sequence_number: matchcore::SequenceNumber(seq),
                    timestamp: matchcore::Timestamp(seq),
                },
                kind,
            };
            if let CommandOutcome::Applied(CommandReport::Submit(eff)) = self.books[b].execute(&cmd) {
                fills += eff.target_order().match_result().map_or(0, |m| m.trades().len() as u64);
            }
        }
        fills
    }
}

fn report_fills(name: &str, ours: u64, peer: &str, theirs: u64) {
    if ours == theirs {
        eprintln!("{name}: gridshare and {peer} both made {ours} fills");
    } else {
        eprintln!("{name}: FILL COUNTS DIFFER: gridshare {ours}, {peer} {theirs} (timing shown, but not comparable)");
    }
}

// ---- benches -----------------------------------------------------------------

fn fast<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

fn check_same_fills(name: &str, ours: u64, peer: &str, theirs: u64) {
    assert_eq!(
        ours, theirs,
        "{name}: fill counts differ (ours {ours}, {peer} {theirs})"
    );
    eprintln!("{name}: gridshare and {peer} both made {ours} fills");
}

fn bench_mix(c: &mut Criterion) {
    const N: usize = 1_000_000;
    for (label, pre) in [("a_mix_empty", Vec::new()), ("a_prime_mix_10k_book", prefill())] {
        let ops = mix(N, 100_000, 7);
        let pre_cmds = to_commands(&pre);
        let cmds = to_commands(&ops);
        // correctness first: same fills
        let mut e = ours_engine(1, None);
        run_ours(&mut e, &pre_cmds);
        let ours = run_ours(&mut e, &cmds).trades;
        let mut ob = Ob::new(1, 100_000 + N);
        ob.run(&pre);
        check_same_fills(label, ours, "obcore", ob.run(&ops));
        let mut lob = Lob::new(1, 100_000 + N, 20_000);
        lob.run(&pre);
        check_same_fills(label, ours, "lobster", lob.run(&ops));
        let mut mc = Mc::new(1, 100_000 + N);
        mc.run(&pre);
        report_fills(label, ours, "matchcore", mc.run(&ops));

        let mut g = fast(c, label);
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function("gridshare", |b| {
            b.iter_batched_ref(
                || {
                    let mut e = ours_engine(1, None);
                    run_ours(&mut e, &pre_cmds);
                    e
                },
                |e| run_ours(e, &cmds),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("obcore", |b| {
            b.iter_batched_ref(
                || {
                    let mut ob = Ob::new(1, 100_000 + N);
                    ob.run(&pre);
                    ob
                },
                |ob| ob.run(&ops),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("lobster", |b| {
            b.iter_batched_ref(
                || {
                    let mut lob = Lob::new(1, 100_000 + N, 20_000);
                    lob.run(&pre);
                    lob
                },
                |lob| lob.run(&ops),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("matchcore", |b| {
            b.iter_batched_ref(
                || {
                    let mut mc = Mc::new(1, 100_000 + N);
                    mc.run(&pre);
                    mc
                },
                |mc| mc.run(&ops),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

fn bench_add_cancel(c: &mut Criterion) {
    let pre = prefill();
    let pre_cmds = to_commands(&pre);
    // 1,000 resting adds into the 10k book, and 1,000 cancels of resting orders.
    let mut r = Lcg(3);
    let adds: Vec<Op> = (0..1000u64)
        .map(|i| {
            let buy = i % 2 == 0;
            let tick = if buy {
                MID - 1 - r.below(100) as u32
            } else {
                MID + 1 + r.below(100) as u32
            };
            Op::Add {
                id: 1_000_000 + i,
                buy,
                tick,
                qty: 100,
                book: 0,
                auction: false,
            }
        })
        .collect();
    let cancels: Vec<Op> = (0..1000u64)
        .map(|i| Op::Cancel {
            id: 1 + i * 10,
            buy: (1 + i * 10) % 2 == 1,
        })
        .collect();
    for (label, ops) in [("b_add_1000_into_10k", adds), ("b_cancel_1000_from_10k", cancels)] {
        let cmds = to_commands(&ops);
        let mut g = fast(c, label);
        g.throughput(Throughput::Elements(ops.len() as u64));
        g.bench_function("gridshare", |b| {
            b.iter_batched_ref(
                || {
                    let mut e = ours_engine(1, None);
                    run_ours(&mut e, &pre_cmds);
                    e
                },
                |e| run_ours(e, &cmds),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("obcore", |b| {
            b.iter_batched_ref(
                || {
                    let mut ob = Ob::new(1, 1_100_000);
                    ob.run(&pre);
                    ob
                },
                |ob| ob.run(&ops),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("lobster", |b| {
            b.iter_batched_ref(
                || {
                    let mut lob = Lob::new(1, 1_100_000, 20_000);
                    lob.run(&pre);
                    lob
                },
                |lob| lob.run(&ops),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("matchcore", |b| {
            b.iter_batched_ref(
                || {
                    let mut mc = Mc::new(1, 1_100_000);
                    mc.run(&pre);
                    mc
                },
                |mc| mc.run(&ops),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

/// Re-own each order by one of `homes` homes (owner = node = 1 + id % homes).
fn spread_over_homes(cmds: &[Command], homes: u64) -> Vec<Command> {
    cmds.iter()
        .map(|c| match *c {
            Command::Submit { at, mut order } => {
                let h = 1 + order.id.0 % homes;
                order.owner = ParticipantId(h);
                order.node = NodeId(h as u32);
                Command::Submit { at, order }
            }
            Command::Cancel { at, id, .. } => Command::Cancel {
                at,
                id,
                owner: ParticipantId(1 + id.0 % homes),
            },
            other => other,
        })
        .collect()
}

fn homes_engine(books: u32, homes: u64, network: Option<Vec<NodeConfig>>) -> Engine {
    let mut e = ours_engine(books, network);
    let mut sink = CountingSink::default();
    for h in 1..=homes {
        e.apply(
            &Command::AddParticipant {
                owner: ParticipantId(h),
                node: NodeId(h as u32),
            },
            &mut sink,
        );
    }
    e
}

fn tree(homes: u32) -> Vec<NodeConfig> {
    let mut nodes = vec![NodeConfig {
        id: NodeId(0),
        parent: None,
        capacity: None,
        fee: MicroPerKwh(0),
    }];
    // Transformers are nodes 10_000..10_009; homes 1..=homes hang under them.
    for t in 0..10 {
        nodes.push(NodeConfig {
            id: NodeId(10_000 + t),
            parent: Some(NodeId(0)),
            capacity: Some(Wh(400_000)),
            fee: MicroPerKwh(10_000),
        });
    }
    for h in 1..=homes {
        nodes.push(NodeConfig {
            id: NodeId(h),
            parent: Some(NodeId(10_000 + h % 10)),
            capacity: Some(Wh(50_000)),
            fee: MicroPerKwh(2_000),
        });
    }
    nodes
}

fn bench_energy(c: &mut Criterion) {
    const BOOKS: u32 = 96;
    const PER: usize = 10_000;
    let ops = energy(BOOKS, PER);
    let cmds = to_commands(&ops);
    let closes: Vec<Command> = (0..BOOKS)
        .map(|b| Command::CloseGate {
            at: Timestamp(1),
            zone: ZoneId(1),
            interval: iv(b),
        })
        .collect();
    let mut e = ours_engine(BOOKS, None);
    let ours = run_ours(&mut e, &cmds).trades;
    check_same_fills(
        "c_energy (continuous part)",
        ours,
        "obcore",
        Ob::new(BOOKS, ops.len() + 1).run(&ops),
    );
    check_same_fills(
        "c_energy (continuous part)",
        ours,
        "lobster",
        Lob::new(BOOKS, ops.len() + 1, 12_000).run(&ops),
    );
    report_fills(
        "c_energy (continuous part)",
        ours,
        "matchcore",
        Mc::new(BOOKS, ops.len() + 1).run(&ops),
    );

    let mut g = fast(c, "c_energy_96_books");
    g.throughput(Throughput::Elements(ops.len() as u64));
    g.bench_function("gridshare", |b| {
        b.iter_batched_ref(
            || ours_engine(BOOKS, None),
            |e| run_ours(e, &cmds),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("gridshare_with_auctions", |b| {
        b.iter_batched_ref(
            || ours_engine(BOOKS, None),
            |e| {
                run_ours(e, &cmds);
                run_ours(e, &closes)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("obcore", |b| {
        b.iter_batched_ref(
            || Ob::new(BOOKS, ops.len() + 1),
            |ob| ob.run(&ops),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("lobster", |b| {
        b.iter_batched_ref(
            || Lob::new(BOOKS, ops.len() + 1, 12_000),
            |lob| lob.run(&ops),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("matchcore", |b| {
        b.iter_batched_ref(
            || Mc::new(BOOKS, ops.len() + 1),
            |mc| mc.run(&ops),
            BatchSize::PerIteration,
        )
    });
    // The same orders spread over 200 homes, each its own owner and node,
    // without and with the feeder tree (fees, home and transformer limits).
    let homes_cmds = spread_over_homes(&cmds, 200);
    g.bench_function("gridshare_200_homes_no_network", |b| {
        b.iter_batched_ref(
            || homes_engine(BOOKS, 200, None),
            |e| run_ours(e, &homes_cmds),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("gridshare_200_homes_network", |b| {
        b.iter_batched_ref(
            || homes_engine(BOOKS, 200, Some(tree(200))),
            |e| run_ours(e, &homes_cmds),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench_auction(c: &mut Criterion) {
    let mut r = Lcg(11);
    let ops: Vec<Op> = (1..=10_000u64)
        .map(|id| Op::Add {
            id,
            buy: id % 2 == 0,
            tick: 50 + r.below(351) as u32,
            qty: 100 + r.below(4901) as i64,
            book: 0,
            auction: true,
        })
        .collect();
    let cmds = to_commands(&ops);
    let close = [Command::CloseGate {
        at: Timestamp(1),
        zone: ZoneId(1),
        interval: iv(0),
    }];
    // The same books from 200 homes on the feeder tree: 100 buying homes, 100 selling.
    let homes_cmds: Vec<Command> = cmds
        .iter()
        .map(|c| match *c {
            Command::Submit { at, mut order } => {
                let h = 1 + (order.id.0 / 2) % 100 + if order.side == Side::Sell { 100 } else { 0 };
                order.owner = ParticipantId(h);
                order.node = NodeId(h as u32);
                Command::Submit { at, order }
            }
            other => other,
        })
        .collect();
    report_network_auction(&homes_cmds, &close);
    let mut g = fast(c, "call_auction_10k_orders");
    g.bench_function("gridshare", |b| {
        b.iter_batched_ref(
            || {
                let mut e = ours_engine(1, None);
                run_ours(&mut e, &cmds);
                e
            },
            |e| run_ours(e, &close),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("gridshare_200_home_tree", |b| {
        b.iter_batched_ref(
            || {
                let mut e = homes_engine(1, 200, Some(tree(200)));
                run_ours(&mut e, &homes_cmds);
                e
            },
            |e| run_ours(e, &close),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Prints what the gate-closure auction over the 200-home tree matches: energy and surplus
/// (Σ Wh × (bid − ask − path fee)), for comparing clearing rules on the same books.
fn report_network_auction(cmds: &[Command], close: &[Command]) {
    let nodes = tree(200);
    let net = gridshare_matching_engine::network::Network::new(&nodes).unwrap();
    let mut e = homes_engine(1, 200, Some(nodes));
    let mut sink = CountingSink::default();
    for c in cmds {
        e.apply(c, &mut sink);
    }
    let limits: std::collections::HashMap<OrderId, (NodeId, i64)> = cmds
        .iter()
        .filter_map(|c| match *c {
            Command::Submit { order, .. } => Some((order.id, (order.node, order.price.0))),
            _ => None,
        })
        .collect();
    let mut events: Vec<gridshare_matching_engine::Event> = Vec::new();
    for c in close {
        e.apply(c, &mut events);
    }
    let (mut wh, mut surplus, mut trades) = (0i64, 0i128, 0u32);
    for ev in &events {
        if let gridshare_matching_engine::Event::Trade {
            buy, sell, quantity, ..
        } = *ev
        {
            let ((bn, b), (sn, a)) = (limits[&buy], limits[&sell]);
            let fee = net.path_fee(net.index_of(sn).unwrap(), net.index_of(bn).unwrap());
            wh += quantity.0;
            surplus += i128::from(quantity.0) * i128::from(b - a - fee);
            trades += 1;
        }
    }
    eprintln!(
        "call auction, 10,000 orders from 200 homes on the feeder tree: {trades} trades, {wh} Wh matched, surplus {:.2} EUR",
        surplus as f64 / 1e9
    );
}

fn bench_journal(c: &mut Criterion) {
    const N: usize = 200_000;
    let cmds = to_commands(&mix(N, 1, 9));
    let dir = tempfile::tempdir().unwrap();
    let mut g = fast(c, "journal");
    g.throughput(Throughput::Elements(N as u64));
    let mut round = 0u32;
    g.bench_function("append_group_commit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let path = dir.path().join(format!("j{round}"));
                let mut w = JournalWriter::open(
                    &path,
                    Durability::Group {
                        max_commands: 4096,
                        max_wait: Duration::from_millis(2),
                    },
                )
                .unwrap();
                let t = Instant::now();
                for c in &cmds {
                    w.append(c).unwrap();
                }
                w.flush().unwrap();
                total += t.elapsed();
                drop(w);
                std::fs::remove_file(&path).unwrap();
            }
            total
        })
    });
    // replay: read + decode the journal and apply every command to a fresh engine
    let path = dir.path().join("replay");
    {
        let mut w = JournalWriter::open(&path, Durability::None).unwrap();
        for c in &cmds {
            w.append(c).unwrap();
        }
    }
    let events = {
        let mut e = ours_engine(1, None);
        run_ours(&mut e, &journal::read(&path).unwrap().commands).events
    };
    g.throughput(Throughput::Elements(events));
    g.bench_function("replay_events", |b| {
        b.iter_batched_ref(
            || ours_engine(1, None),
            |e| {
                let rec = journal::read(&path).unwrap();
                run_ours(e, &rec.commands)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_mix,
    bench_add_cancel,
    bench_energy,
    bench_auction,
    bench_journal
);
criterion_main!(benches);
