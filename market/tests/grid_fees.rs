//! Grid fees set on the market handle (as a chain watcher does when governance changes them)
//! reach the books opened after the change; a book already open keeps the fees it opened with.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use gridshare_domain::{
    DeliveryInterval, IntervalLength, IntervalRules, MicroPerKwh, NodeId, OrderMode, ParticipantId, Side, TimeInForce,
    Timestamp, Wh, ZoneId,
};
use gridshare_market::{Clock, Market, MarketError, NewOrder, add_participants, schedule};
use gridshare_matching_engine::{Command, Event, GridFees, MarketConfig};
use gridshare_storage::Db;

const F1: GridFees = GridFees {
    per_hop: MicroPerKwh(2_000),
    per_kwh: MicroPerKwh(10_000),
};
const F2: GridFees = GridFees {
    per_hop: MicroPerKwh(3_000),
    per_kwh: MicroPerKwh(25_000),
};

async fn market(clock: Clock) -> (Market, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let (market, _recorder) = Market::start(MarketConfig::default(), None, db, clock).await.unwrap();
    add_participants(&market, [(ParticipantId(1), NodeId(1)), (ParticipantId(2), NodeId(2))])
        .await
        .unwrap();
    (market, dir)
}

fn iv(start: &str) -> DeliveryInterval {
    DeliveryInterval::new(Timestamp::parse_rfc3339(start).unwrap(), IntervalLength::Min15).unwrap()
}

fn order(owner: u64, interval: DeliveryInterval, side: Side, price: i64) -> NewOrder {
    NewOrder {
        owner: ParticipantId(owner),
        origin: None,
        zone: ZoneId(1),
        interval,
        side,
        quantity: Wh(100),
        price: MicroPerKwh(price),
        tif: TimeInForce::GoodTillGateClosure,
        mode: OrderMode::Continuous,
    }
}

/// The grid fee of the one trade a sell at 100.000 and a buy at 200.000 make in `interval`.
async fn fee_of_a_trade(m: &Market, interval: DeliveryInterval) -> i64 {
    m.submit(order(1, interval, Side::Sell, 100_000)).await.unwrap();
    let out = m.submit(order(2, interval, Side::Buy, 200_000)).await.unwrap();
    let fees: Vec<i64> = out
        .events
        .iter()
        .filter_map(|e| match *e {
            Event::Trade { grid_fee, price, .. } => {
                assert_eq!(price, MicroPerKwh(100_000), "at the resting ask's price");
                Some(grid_fee.0)
            }
            _ => None,
        })
        .collect();
    assert_eq!(fees.len(), 1, "{:?}", out.events);
    fees[0]
}

#[tokio::test]
async fn a_fee_change_reaches_the_next_book_not_the_open_one() {
    let (m, _dir) = market(Clock::wall()).await;
    assert_eq!(m.grid_fees(), None, "no fees until set");
    let (a, b) = (iv("2026-11-25T10:15:00Z"), iv("2026-11-25T10:30:00Z"));
    let open = |interval| Command::OpenBook {
        zone: ZoneId(1),
        interval,
        fees: m.grid_fees(),
    };
    m.set_grid_fees(Some(F1)).await.unwrap();
    m.command(open(a)).await.unwrap();
    let mut changes = m.watch_grid_fees();
    m.set_grid_fees(Some(F2)).await.unwrap();
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), Some(F2));
    m.command(open(b)).await.unwrap();
    // a second opening cannot change an open book's fees
    let again = m
        .command(Command::OpenBook {
            zone: ZoneId(1),
            interval: a,
            fees: Some(F2),
        })
        .await
        .unwrap();
    assert!(
        matches!(again.events[..], [Event::Rejected { .. }]),
        "{:?}",
        again.events
    );

    // No feeder tree: every trade is at one connection point's distance, so it pays per_kwh.
    assert_eq!(fee_of_a_trade(&m, a).await, F1.per_kwh.0, "opened before the change");
    assert_eq!(fee_of_a_trade(&m, b).await, F2.per_kwh.0, "opened after the change");
    let books = m.books().await.unwrap();
    let fees_of = |i| books.iter().find(|s| s.interval == i).unwrap().fees;
    assert_eq!((fees_of(a), fees_of(b)), (Some(F1), Some(F2)));

    // Back to the feeder tree's fees (none without a tree).
    m.set_grid_fees(None).await.unwrap();
    let c = iv("2026-11-25T10:45:00Z");
    m.command(open(c)).await.unwrap();
    assert_eq!(fee_of_a_trade(&m, c).await, 0);
}

#[tokio::test]
async fn fees_the_engine_would_refuse_are_refused_and_the_old_ones_stay() {
    let (m, _dir) = market(Clock::wall()).await;
    m.set_grid_fees(Some(F1)).await.unwrap();
    for bad in [
        GridFees {
            per_hop: MicroPerKwh(-1),
            per_kwh: MicroPerKwh(0),
        },
        GridFees {
            per_hop: MicroPerKwh(0),
            per_kwh: MicroPerKwh(GridFees::MAX.0 + 1),
        },
        // within GridFees::MAX, but more than the default market's whole price range (2.5/kWh)
        GridFees {
            per_hop: MicroPerKwh(0),
            per_kwh: MicroPerKwh(2_500_001),
        },
    ] {
        let err = m.set_grid_fees(Some(bad)).await.unwrap_err();
        assert!(matches!(err, MarketError::GridFees(_)), "{err}");
        assert!(err.to_string().starts_with("grid fees refused: "), "{err}");
        assert_eq!(m.grid_fees(), Some(F1));
    }
}

/// The scheduler opens each book with the fees current when it opens it.
#[tokio::test]
async fn the_scheduler_opens_books_with_the_current_fees() {
    // Market time from 10:00 at 200× (the 10:15 book's gate closes at 10:10, 3 s from now).
    let clock = Clock::accelerated(Timestamp::parse_rfc3339("2026-11-25T10:00:00Z").unwrap(), 200.0);
    let (m, _dir) = market(clock).await;
    m.set_grid_fees(Some(F1)).await.unwrap();
    let (first, second) = (iv("2026-11-25T10:15:00Z"), iv("2026-11-25T10:30:00Z"));
    let task = tokio::spawn(schedule(
        m.clone(),
        vec![ZoneId(1)],
        IntervalRules::default(),
        1,
        Duration::from_millis(10),
    ));
    let book = async |i: DeliveryInterval| {
        for _ in 0..1000 {
            if let Some(b) = m.books().await.unwrap().into_iter().find(|b| b.interval == i) {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{i} never opened");
    };
    let b1 = book(first).await;
    assert_eq!(b1.fees, Some(F1));
    m.set_grid_fees(Some(F2)).await.unwrap();
    let b2 = book(second).await;
    assert_eq!(b2.fees, Some(F2), "opened after the change");
    let b1 = m
        .books()
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.interval == first)
        .unwrap();
    assert_eq!(b1.fees, Some(F1), "kept the fees it opened with");
    task.abort();
}
