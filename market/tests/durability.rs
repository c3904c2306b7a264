//! Group commit: the market answers a command, records it and publishes it only once its journal
//! record is on disk, so nothing acknowledged (to the API, or to a gateway as stored) can be
//! taken back by a power cut.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use gridshare_domain::{
    DeliveryInterval, IntervalLength, MicroPerKwh, NodeId, OrderMode, ParticipantId, Side, TimeInForce, Timestamp, Wh,
    ZoneId,
};
use gridshare_market::{Clock, JournalConfig, Market, NewOrder, add_participants, journal_path};
use gridshare_matching_engine::journal::{self, Durability};
use gridshare_matching_engine::{Command, MarketConfig};
use gridshare_storage::Db;

fn order(owner: u64, interval: DeliveryInterval, side: Side) -> NewOrder {
    NewOrder {
        owner: ParticipantId(owner),
        origin: None,
        zone: ZoneId(1),
        interval,
        side,
        quantity: Wh(100),
        price: MicroPerKwh(100_000),
        tif: TimeInForce::GoodTillGateClosure,
        mode: OrderMode::Continuous,
    }
}

/// Commands in the journal file as it is on disk now.
fn on_disk(dir: &std::path::Path) -> usize {
    journal::read(&journal_path(dir)).unwrap().commands.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_group_commit_every_answer_comes_after_its_record_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let engine_dir = dir.path().join("engine");
    // a group that never fills and a wait that never runs out: only the engine thread's own
    // sync (when no request is waiting) can put these commands on disk
    let journal = JournalConfig {
        dir: engine_dir.clone(),
        durability: Durability::Group {
            max_commands: 1_000_000,
            max_wait: Duration::from_secs(3_600),
        },
    };
    let db = Db::open(dir.path().join("db").to_str().unwrap()).await.unwrap();
    let (market, _recorder) = Market::start(MarketConfig::default(), Some(journal), db, Clock::wall())
        .await
        .unwrap();
    add_participants(&market, [(ParticipantId(1), NodeId(1)), (ParticipantId(2), NodeId(2))])
        .await
        .unwrap();
    let interval = DeliveryInterval::new(Timestamp(1_764_064_800_000), IntervalLength::Min15).unwrap();
    market
        .command(Command::OpenBook {
            zone: ZoneId(1),
            interval,
            fees: None,
        })
        .await
        .unwrap();
    assert_eq!(
        on_disk(&engine_dir),
        3,
        "two participants and a book, on disk when answered"
    );

    // one order at a time: each answer finds its own record on disk
    let out = market.submit(order(1, interval, Side::Sell)).await.unwrap();
    assert!(out.order_id.is_some());
    assert_eq!(on_disk(&engine_dir), 4);

    // a burst from many tasks at once shares syncs, and still each answer, the moment it
    // arrives, finds its order in the file
    let ids_on_disk = |dir: &std::path::Path| -> Vec<gridshare_domain::OrderId> {
        journal::read(&journal_path(dir))
            .unwrap()
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::Submit { order, .. } => Some(order.id),
                _ => None,
            })
            .collect()
    };
    let mut tasks = Vec::new();
    for n in 0..200u64 {
        let market = market.clone();
        let dir = engine_dir.clone();
        tasks.push(tokio::spawn(async move {
            let side = if n % 2 == 0 { Side::Buy } else { Side::Sell };
            let id = market
                .submit(order(1 + n % 2, interval, side))
                .await
                .unwrap()
                .order_id
                .unwrap();
            assert!(
                ids_on_disk(&dir).contains(&id),
                "order {id:?} answered before it was written"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(on_disk(&engine_dir), 204);
}
