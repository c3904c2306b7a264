//! Epochs computed from a real database, on SQLite and on PostgreSQL: the contributions follow
//! from stored trades, meter readings and demand-response credits; both backends give a
//! byte-identical report; cumulative totals carry from one epoch to the next; an epoch is stored
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[path = "../../storage/tests/common/mod.rs"]
mod common;

use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample, TradeReport};
use gridshare_domain::{
    DeliveryInterval, DeviceId, GatewayId, IntervalLength, MicroPerKwh, OrderId, ParticipantId, Timestamp, TradeId, W,
    Wh, ZoneId,
};
use gridshare_market::epoch::collect::{self, Bonds};
use gridshare_market::epoch::{Params, report};
use gridshare_storage::Db;
use gridshare_storage::readings::{self, Reading};

const HOUR: i64 = 3_600_000;
const QUARTER: i64 = 900_000;
/// Epoch 1 starts on the hour after the test clock's `NOW`.
const GENESIS: i64 = (common::NOW.0 / HOUR + 1) * HOUR;

fn params() -> Params {
    Params {
        epoch_ms: HOUR,
        uptime_period_ms: 60_000,
        ..Params::defaults(GENESIS)
    }
}

fn trade(id: u64, seller: u64, buyer: u64, start: i64, wh: i64) -> TradeReport {
    TradeReport {
        trade_id: TradeId(id),
        zone: ZoneId(1),
        interval: DeliveryInterval::new(Timestamp(start), IntervalLength::Min15).unwrap(),
        buy_order: OrderId(id * 2),
        sell_order: OrderId(id * 2 + 1),
        buyer: ParticipantId(buyer),
        seller: ParticipantId(seller),
        quantity: Wh(wh),
        price: MicroPerKwh(150_000),
        grid_fee: MicroPerKwh(10_000),
        at: Timestamp(start),
    }
}

/// A grid-meter reading each minute from `from` for `minutes`, exporting `per_minute` Wh a
/// minute; minutes in `skip` are missing.
fn meter(g: u64, from: i64, minutes: i64, per_minute: i64, skip: &[i64]) -> Vec<Reading> {
    (0..minutes)
        .filter(|m| !skip.contains(m))
        .map(|m| Reading {
            gateway: GatewayId(g),
            seq: (from / 60_000 + m) as u64,
            sample: TelemetrySample {
                device: DeviceId::new("meter").unwrap(),
                kind: DeviceKind::GridMeter,
                at: Timestamp(from + m * 60_000),
                power_w: Some(W(-per_minute * 60)),
                energy_in_wh: Some(Wh(1_000)),
                energy_out_wh: Some(Wh(50_000 + (m + 1) * per_minute)),
                soc_permille: None,
                status: DeviceStatus::Ok,
                quality: Quality::Good,
            },
        })
        .collect()
}

/// Homes 1–4: 1 and 2 sell to 3 and 4. Home 1 exports 10 Wh a minute (150 Wh a quarter) and
/// sells 100 Wh a quarter: 100 counts. Home 2 exports 4 Wh a minute (60 a quarter) and sells
/// 200: 60 counts; it misses five minutes of telemetry. Home 3 answered a DR call.
async fn seed(db: &Db) {
    for n in 1..=4 {
        common::home_with_gateway(db, n).await;
    }
    // the custodial accounts the service would assign (one address each, as the service derives)
    gridshare_storage::participants::assign_custody(db, |p| format!("0x{:040x}", 0xc0_0000 + p.0))
        .await
        .unwrap();
    let from = GENESIS - QUARTER; // the quarter before the epoch gives the first counter
    let mut rows = meter(1, from, 90, 10, &[]);
    rows.extend(meter(2, from, 75, 4, &[20, 21, 22, 23, 24]));
    rows.extend(meter(3, from, 75, 0, &[]));
    readings::insert_batch(db, &rows).await.unwrap();
    let mut trades = Vec::new();
    for q in 0..4 {
        let start = GENESIS + q * QUARTER;
        trades.push(trade(10 + q as u64, 1, 3, start, 100));
        trades.push(trade(20 + q as u64, 2, 4, start, 200));
    }
    // a trade of the next epoch does not count in this one
    trades.push(trade(99, 1, 3, GENESIS + HOUR, 500));
    gridshare_storage::market::insert_trades(db, &trades).await.unwrap();
    gridshare_storage::rewards::credit(
        db,
        &gridshare_storage::rewards::Reward {
            participant: ParticipantId(3),
            kind: "demand_response".into(),
            amount: 300 * gridshare_market::dr::REWARD_PER_KWH / 1000,
            interval_start: Some(GENESIS + QUARTER),
            event: None,
            reference: "dr:0:3:1".into(),
            created_at: GENESIS + 2 * QUARTER,
            minted_tx: None,
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn epochs_follow_from_stored_data_identically_on_both_backends() {
    let mut reports = Vec::new();
    for t in common::backends().await {
        let db = &t.db;
        seed(db).await;
        let p = params();
        // not yet due: the epoch has not ended plus its settling time
        let early = collect::catch_up(db, &p, QUARTER, &Bonds::NoMinimum, GENESIS + HOUR + 1_000, QUARTER).await;
        assert_eq!(early.unwrap(), Vec::<u64>::new(), "{}", t.name);
        let done = collect::catch_up(db, &p, QUARTER, &Bonds::NoMinimum, GENESIS + HOUR + QUARTER, QUARTER)
            .await
            .unwrap();
        assert_eq!(done, vec![1], "{}", t.name);
        let json = gridshare_storage::epochs::report(db, 1).await.unwrap().unwrap();
        let r: report::Report = serde_json::from_str(&json).unwrap();
        assert_eq!(r.canonical_json(), json, "{}: stored as canonical JSON", t.name);
        let (root, hash) = report::verify(&r).unwrap();
        let stored = gridshare_storage::epochs::last(db).await.unwrap().unwrap();
        assert_eq!(
            (stored.root.clone(), stored.report_hash.clone()),
            (report::hex32(&root), report::hex32(&hash))
        );

        let home = |n: u64| r.participants.iter().find(|x| x.participant == n).unwrap();
        assert_eq!(
            home(1).local_renewable.wh,
            400,
            "{}: 4 quarters × min(100 sold, 150 exported)",
            t.name
        );
        // home 2 misses minutes 5–9 of the epoch: its counter still places each quarter's export
        let h2: Vec<i64> = home(2).local_renewable.intervals.iter().map(|i| i.wh).collect();
        assert!(h2.iter().all(|&wh| wh == 60), "{}: {h2:?}", t.name);
        assert_eq!(home(3).demand_response.wh, 300, "{}", t.name);
        assert_eq!(home(1).uptime.gateways[0].share_ppm, 1_000_000, "{}", t.name);
        assert_eq!(home(2).uptime.gateways[0].good, 55, "{}: five minutes missing", t.name);
        assert!(home(2).uptime.raw < home(1).uptime.raw);
        assert!(
            r.participants.iter().all(|x| x.participant != 4),
            "{}: home 4 only bought",
            t.name
        );
        // computing again is refused: an epoch is stored once
        let again = collect::compute_and_store(db, &p, 1, QUARTER, &Bonds::NoMinimum, GENESIS + 2 * HOUR).await;
        assert!(again.is_err(), "{}", t.name);

        // epoch 2 carries every account's total forward
        let done = collect::catch_up(
            db,
            &p,
            QUARTER,
            &Bonds::NoMinimum,
            GENESIS + 2 * HOUR + QUARTER,
            QUARTER,
        )
        .await
        .unwrap();
        assert_eq!(done, vec![2]);
        let r2: report::Report =
            serde_json::from_str(&gridshare_storage::epochs::report(db, 2).await.unwrap().unwrap()).unwrap();
        report::verify(&r2).unwrap();
        for a in &r.accounts {
            let b = r2.accounts.iter().find(|b| b.account == a.account).unwrap();
            assert_eq!(b.previous, a.cumulative, "{}", t.name);
            assert!(b.cumulative >= a.cumulative);
        }
        let mine = gridshare_storage::epochs::rewards_of(db, ParticipantId(1), 10)
            .await
            .unwrap();
        assert_eq!(
            mine.iter().map(|e| e.epoch).collect::<Vec<_>>(),
            vec![2, 1],
            "{}",
            t.name
        );
        reports.push((t.name, json));
        t.finish().await;
    }
    if gridshare_testkit::in_ci() {
        assert_eq!(reports.len(), 2, "PostgreSQL is required in CI");
    }
    for w in reports.windows(2) {
        assert_eq!(w[0].1, w[1].1, "{} and {} computed different reports", w[0].0, w[1].0);
    }
}

/// A participant without an on-chain account (no address of their own, no custodial account
/// yet) holds the epoch back, by name, rather than being left out of its root; once the account
/// is there the epoch is computed with it.
#[tokio::test]
async fn an_epoch_waits_for_every_participants_account_rather_than_leave_one_out() {
    let t = common::sqlite().await;
    seed(&t.db).await;
    common::home_with_gateway(&t.db, 5).await; // added after the custodial accounts were assigned
    let p = params();
    let due = GENESIS + HOUR + QUARTER;
    let err = collect::catch_up(&t.db, &p, QUARTER, &Bonds::NoMinimum, due, QUARTER)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("participant 5 has no on-chain account"),
        "{err}"
    );
    assert!(gridshare_storage::epochs::report(&t.db, 1).await.unwrap().is_none());
    gridshare_storage::participants::assign_custody(&t.db, |p| format!("0x{:040x}", 0xc0_0000 + p.0))
        .await
        .unwrap();
    let done = collect::catch_up(&t.db, &p, QUARTER, &Bonds::NoMinimum, due, QUARTER)
        .await
        .unwrap();
    assert_eq!(done, vec![1]);
    t.finish().await;
}

#[tokio::test]
async fn unbonded_gateways_earn_neither_uptime_nor_local_renewable() {
    let t = common::sqlite().await;
    seed(&t.db).await;
    let p = params();
    let bonded = Bonds::Bonded([GatewayId(2)].into_iter().collect());
    collect::catch_up(&t.db, &p, QUARTER, &bonded, GENESIS + HOUR + QUARTER, QUARTER)
        .await
        .unwrap();
    let r: report::Report =
        serde_json::from_str(&gridshare_storage::epochs::report(&t.db, 1).await.unwrap().unwrap()).unwrap();
    assert!(
        r.participants.iter().all(|x| x.participant != 1),
        "home 1's gateway is not bonded"
    );
    assert!(
        r.participants
            .iter()
            .any(|x| x.participant == 2 && x.local_renewable.raw > 0)
    );
    assert!(
        r.participants
            .iter()
            .any(|x| x.participant == 3 && x.demand_response.raw > 0),
        "DR is not bond-gated"
    );
    t.finish().await;
}

/// The service's epoch task computes nothing until the bonds have been read from chain (an epoch
/// computed before would pay gateways that were never bonded), then computes with them.
#[tokio::test]
async fn the_epoch_task_waits_for_the_bonds_read_from_chain() {
    let t = common::sqlite().await;
    seed(&t.db).await;
    // market time stands (almost) still just after epoch 1 has ended and settled
    let clock = gridshare_market::Clock::accelerated(Timestamp(GENESIS + HOUR + QUARTER), 1e-6);
    let (bonds, read) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(collect::run(
        t.db.clone(),
        params(),
        QUARTER,
        clock,
        std::time::Duration::from_millis(20),
        read,
    ));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        gridshare_storage::epochs::last(&t.db).await.unwrap().is_none(),
        "no epoch before the bonds are known"
    );
    bonds.send_replace(Some(Bonds::Bonded([GatewayId(2)].into_iter().collect())));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let json = loop {
        if let Some(json) = gridshare_storage::epochs::report(&t.db, 1).await.unwrap() {
            break json;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "epoch 1 computed once the bonds are known"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    task.abort();
    let r: report::Report = serde_json::from_str(&json).unwrap();
    assert!(
        r.participants.iter().all(|x| x.participant != 1),
        "home 1's gateway is not bonded"
    );
    assert!(
        r.participants
            .iter()
            .any(|x| x.participant == 2 && x.local_renewable.raw > 0)
    );
    t.finish().await;
}

/// Issue 22: an epoch is computed with the reward rates the community set on chain in force when
/// it began (the newest version the service had seen by then); version 0 (the deployment's values)
/// and no version at all mean the configuration's; a change seen during an epoch waits for the
/// next one.
#[tokio::test]
async fn an_epoch_takes_the_governed_rates_in_force_when_it_began() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    let configured = params();
    assert_eq!(collect::governed(&db, &configured, 1).await.unwrap(), configured);
    let rates = |generation: u64, uptime_bps: u64| {
        serde_json::json!({
            "rewardGeneration": generation.to_string(),
            "rewardDemandResponse": "7",
            "rewardUptime": "9",
            "uptimeThresholdBps": uptime_bps.to_string(),
        })
        .to_string()
    };
    let (start1, end1) = configured.span(1);
    let t = gridshare_domain::Timestamp;
    gridshare_storage::parameters::record(&db, 0, t(start1 - HOUR), &rates(1, 1), "{}")
        .await
        .unwrap();
    assert_eq!(
        collect::governed(&db, &configured, 1).await.unwrap(),
        configured,
        "version 0 is the configuration's own"
    );
    // seen during epoch 1: epoch 1 keeps the configured rates, epoch 2 takes the new ones
    gridshare_storage::parameters::record(&db, 3, t(start1 + 1), &rates(123, 9_000), "{}")
        .await
        .unwrap();
    assert_eq!(collect::governed(&db, &configured, 1).await.unwrap(), configured);
    let second = collect::governed(&db, &configured, 2).await.unwrap();
    assert_eq!(
        (
            second.local_renewable_per_kwh,
            second.demand_response_per_kwh,
            second.uptime_per_epoch,
            second.uptime_threshold_ppm
        ),
        (123, 7, 9, 900_000)
    );
    assert_eq!(
        (
            second.initial_budget,
            second.halving_epochs,
            second.cap,
            second.epoch_ms
        ),
        (
            configured.initial_budget,
            configured.halving_epochs,
            configured.cap,
            configured.epoch_ms
        ),
        "the budget schedule stays the one the distributor enforces"
    );
    // a version seen exactly at an epoch's start applies to it
    gridshare_storage::parameters::record(&db, 4, t(end1 + configured.epoch_ms), &rates(5, 9_500), "{}")
        .await
        .unwrap();
    assert_eq!(
        collect::governed(&db, &configured, 3)
            .await
            .unwrap()
            .local_renewable_per_kwh,
        5
    );
    assert_eq!(
        collect::governed(&db, &configured, 2)
            .await
            .unwrap()
            .local_renewable_per_kwh,
        123
    );
}
