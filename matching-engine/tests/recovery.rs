//! Recovery = snapshot + journal tail: an engine rebuilt at any point of a
//! command stream continues with exactly the events the original produced.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_matching_engine::journal::{self, Durability, JournalWriter};
use gridshare_matching_engine::{Command, Engine, Event, GridFees, MarketConfig, NodeConfig, OrderSpec};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn iv(i: i64) -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(1_764_064_800_000 + i * 900_000), IntervalLength::Min15).unwrap()
}

fn cfg() -> MarketConfig {
    let n = |id: u32, parent: Option<u32>, cap: i64, fee: i64| NodeConfig {
        id: NodeId(id),
        parent: parent.map(NodeId),
        capacity: Some(Wh(cap)),
        fee: MicroPerKwh(fee),
    };
    MarketConfig {
        network: Some(vec![
            n(0, None, 0, 0),
            n(10, Some(0), 900, 5000),
            n(20, Some(0), 700, 5000),
            n(1, Some(10), 300, 1000),
            n(2, Some(10), 300, 1000),
            n(3, Some(20), 300, 1000),
            n(4, Some(20), 300, 1000),
        ]),
        max_orders: 10_000,
        ..MarketConfig::default()
    }
}

fn stream() -> impl Strategy<Value = Vec<Command>> {
    prop::collection::vec(
        (0u8..10, 1u64..5, any::<bool>(), 1i64..200, 60i64..140, 0u8..3, 0i64..3),
        5..150,
    )
    .prop_map(|ops| {
        let mut cmds: Vec<Command> = (1..=4)
            .map(|p| Command::AddParticipant {
                owner: ParticipantId(p),
                node: NodeId(p as u32),
            })
            .collect();
        for b in 0..3 {
            cmds.push(Command::OpenBook {
                zone: ZoneId(1),
                interval: iv(b),
                // the middle book charges its own fees (issue 22), the others the tree's
                fees: (b == 1).then_some(GridFees {
                    per_hop: MicroPerKwh(2_000),
                    per_kwh: MicroPerKwh(3_000),
                }),
            });
        }
        let mut id = 0;
        for (k, owner, buy, qty, price, tif, book) in ops {
            let at = Timestamp(id as i64);
            match k {
                0..=6 => {
                    id += 1;
                    cmds.push(Command::Submit {
                        at,
                        order: OrderSpec {
                            id: OrderId(id),
                            owner: ParticipantId(owner),
                            node: NodeId(owner as u32),
                            zone: ZoneId(1),
                            interval: iv(book),
                            side: if buy { Side::Buy } else { Side::Sell },
                            quantity: Wh(qty),
                            price: MicroPerKwh(price * 1000),
                            tif: if tif == 1 {
                                TimeInForce::ImmediateOrCancel
                            } else {
                                TimeInForce::GoodTillGateClosure
                            },
                            mode: if tif == 2 {
                                OrderMode::AuctionOnly
                            } else {
                                OrderMode::Continuous
                            },
                        },
                    });
                }
                7 => cmds.push(Command::Cancel {
                    at,
                    id: OrderId(1 + qty as u64 % (id + 1)),
                    owner: ParticipantId(owner),
                }),
                8 => cmds.push(Command::Amend {
                    at,
                    id: OrderId(1 + qty as u64 % (id + 1)),
                    owner: ParticipantId(owner),
                    quantity: Wh(qty),
                    price: MicroPerKwh(price * 1000),
                }),
                _ => cmds.push(Command::CloseGate {
                    at,
                    zone: ZoneId(1),
                    interval: iv(book),
                }),
            }
        }
        cmds
    })
}

fn events(e: &mut Engine, cmds: &[Command]) -> Vec<Event> {
    let mut out = Vec::new();
    for c in cmds {
        e.apply(c, &mut out);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_plus_tail_continues_identically(cmds in stream(), split in any::<prop::sample::Index>()) {
        let k = split.index(cmds.len() + 1);
        let mut whole = Engine::new(cfg()).unwrap();
        let all = events(&mut whole, &cmds);

        let mut first = Engine::new(cfg()).unwrap();
        let head = events(&mut first, &cmds[..k]);
        let snap = first.snapshot(k as u64);
        let text = serde_json::to_string(&snap).unwrap();
        let mut second = Engine::restore(cfg(), &serde_json::from_str(&text).unwrap()).unwrap();
        let tail = events(&mut second, &cmds[k..]);
        prop_assert_eq!(head.len() + tail.len(), all.len());
        prop_assert_eq!(&all[head.len()..], &tail[..]);
        prop_assert_eq!(second.snapshot(0).orders, whole.snapshot(0).orders);
    }
}

#[test]
fn restore_from_files_with_a_torn_tail() {
    let cmds = {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        stream().new_tree(&mut runner).unwrap().current()
    };
    let dir = tempfile::tempdir().unwrap();
    let (jpath, spath) = (dir.path().join("journal"), dir.path().join("snapshot.json"));
    let k = cmds.len() / 2;
    let mut live = Engine::new(cfg()).unwrap();
    {
        let mut w = JournalWriter::open(&jpath, Durability::EveryCommand).unwrap();
        for (i, c) in cmds.iter().enumerate() {
            w.append(c).unwrap();
            live.apply(c, &mut Vec::new());
            if i + 1 == k {
                journal::write_snapshot(&spath, &live.snapshot(k as u64)).unwrap();
            }
        }
    }
    // A crash mid-write leaves half a record.
    let mut bytes = std::fs::read(&jpath).unwrap();
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2]);
    std::fs::write(&jpath, &bytes).unwrap();
    let restored = journal::restore(cfg(), &spath, &jpath).unwrap();
    assert_eq!(restored.replayed, (cmds.len() - k) as u64);
    assert!(restored.torn.is_some());
    assert_eq!(restored.engine.snapshot(0), live.snapshot(0));
    // Without a snapshot, the whole journal is replayed to the same state.
    let from_zero = journal::restore(cfg(), &dir.path().join("none.json"), &jpath).unwrap();
    assert_eq!(from_zero.engine.snapshot(0), live.snapshot(0));
}

#[test]
fn journaled_engine_snapshots_at_gate_closure_and_resumes() {
    let cmds = {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut c = stream().new_tree(&mut runner).unwrap().current();
        c.push(Command::CloseGate {
            at: Timestamp(9),
            zone: ZoneId(1),
            interval: iv(0),
        });
        c
    };
    let last_close = cmds
        .iter()
        .rposition(|c| matches!(c, Command::CloseGate { .. }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut reference = Engine::new(cfg()).unwrap();
    let half = cmds.len() / 2;
    {
        let (mut j, restored) = journal::Journaled::open(cfg(), dir.path(), Durability::EveryCommand).unwrap();
        assert_eq!(restored.total, 0);
        for c in &cmds[..half] {
            j.apply(c, &mut Vec::new()).unwrap();
            reference.apply(c, &mut Vec::new());
        }
    }
    // Restart: state is recovered, and the rest continues identically.
    let (mut j, restored) = journal::Journaled::open(cfg(), dir.path(), Durability::EveryCommand).unwrap();
    assert_eq!(restored.total, half as u64);
    for c in &cmds[half..] {
        let mut a = Vec::new();
        let mut b = Vec::new();
        j.apply(c, &mut a).unwrap();
        reference.apply(c, &mut b);
        assert_eq!(a, b);
    }
    assert!(
        dir.path().join("engine.snapshot.json").exists(),
        "a snapshot after each gate closure"
    );
    drop(j);
    let (again, report) = journal::Journaled::open(cfg(), dir.path(), Durability::EveryCommand).unwrap();
    assert_eq!(
        report.replayed,
        (cmds.len() - 1 - last_close) as u64,
        "only the tail after the last snapshot is replayed"
    );
    assert_eq!(again.engine().snapshot(0), reference.snapshot(0));
}

/// Issue 17: a snapshot that disagrees with its journal never stops a restart. The journal is
/// the record; a snapshot that does not decode, does not fit the configuration, or covers more
/// commands than the journal holds is set aside (renamed, kept) and the whole journal replayed,
/// and recovery says why. Before, each of these refused every start.
#[test]
fn a_snapshot_that_disagrees_with_the_journal_is_set_aside_and_the_journal_replayed() {
    let cmds = {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        stream().new_tree(&mut runner).unwrap().current()
    };
    let dir = tempfile::tempdir().unwrap();
    let (jpath, spath) = (dir.path().join("journal"), dir.path().join("snapshot.json"));
    let mut live = Engine::new(cfg()).unwrap();
    {
        let mut w = JournalWriter::open(&jpath, Durability::EveryCommand).unwrap();
        for c in &cmds {
            w.append(c).unwrap();
            live.apply(c, &mut Vec::new());
        }
    }
    let good = serde_json::to_vec(&live.snapshot(cmds.len() as u64)).unwrap();
    let ahead = serde_json::to_vec(&live.snapshot(cmds.len() as u64 + 5)).unwrap();
    let other_config = MarketConfig { network: None, ..cfg() };
    // the same snapshot, good, restores without a replay
    std::fs::write(&spath, &good).unwrap();
    let r = journal::restore(cfg(), &spath, &jpath).unwrap();
    assert_eq!((r.replayed, r.set_aside.is_none()), (0, true));
    let cases: [(&str, Vec<u8>, MarketConfig, &str); 3] = [
        ("torn", good[..good.len() / 2].to_vec(), cfg(), "cannot decode"),
        ("ahead", ahead, cfg(), "covers"),
        ("another configuration", good.clone(), other_config, ""),
    ];
    for (what, bytes, config, says) in cases {
        std::fs::write(&spath, &bytes).unwrap();
        let r = journal::restore(config.clone(), &spath, &jpath)
            .unwrap_or_else(|e| panic!("{what}: a restart is refused: {e}"));
        let aside = r.set_aside.unwrap_or_else(|| panic!("{what}: the snapshot was used"));
        assert!(aside.reason.contains(says), "{what}: {}", aside.reason);
        assert_eq!(
            std::fs::read(&aside.moved_to).unwrap(),
            bytes,
            "{what}: kept aside as it was"
        );
        assert!(!spath.exists(), "{what}: no longer in the way");
        assert_eq!(r.replayed, cmds.len() as u64, "{what}: the whole journal replayed");
        let mut reference = Engine::new(config).unwrap();
        for c in &cmds {
            reference.apply(c, &mut Vec::new());
        }
        assert_eq!(r.engine.snapshot(0), reference.snapshot(0), "{what}");
    }
    // and the next start of a journaled market takes its own new snapshot as usual
    let journaled = tempfile::tempdir().unwrap();
    std::fs::copy(&jpath, journaled.path().join("engine.journal")).unwrap();
    std::fs::write(journaled.path().join("engine.snapshot.json"), b"{ not a snapshot").unwrap();
    let (j, recovery) = journal::Journaled::open(cfg(), journaled.path(), Durability::EveryCommand).unwrap();
    assert!(recovery.set_aside.is_some());
    assert_eq!(j.engine().snapshot(0), live.snapshot(0));
}
