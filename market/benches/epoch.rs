//! Computing one reward epoch at the size the issue names: 1,000 homes, a day-long epoch of 96
//! fifteen-minute intervals, each home's grid meter read once a minute (1.44 million readings)
//! and each home selling in every interval (96,000 trades); on PostgreSQL and on SQLite in the same
//! run. Measured: reading the inputs from the database plus the computation and the report's
//! canonical JSON and hash — everything `compute_and_store` does except its one insert.
//!
//! `cargo bench -p gridshare-market --bench epoch` (PostgreSQL from `GRIDSHARE_TEST_POSTGRES_URL`;
//! without it only SQLite runs, and says so). Seeding takes a minute or two per backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // bench code

use criterion::{Criterion, criterion_group, criterion_main};
use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample, TradeReport};
use gridshare_domain::{
    DeliveryInterval, DeviceId, GatewayId, IntervalLength, MicroPerKwh, NodeId, OrderId, ParticipantId, Timestamp,
    TradeId, W, Wh, ZoneId,
};
use gridshare_market::epoch::collect::{self, Bonds};
use gridshare_market::epoch::{Params, compute};
use gridshare_storage::Db;
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::readings::{self, Reading};
use sqlx::Connection;

const HOMES: u64 = 1_000;
const DAY: i64 = 86_400_000;
const QUARTER: i64 = 900_000;
const GENESIS: i64 = 1_764_028_800_000; // a UTC midnight

fn params() -> Params {
    Params {
        uptime_period_ms: 60_000,
        ..Params::defaults(GENESIS)
    }
}

async fn seed(db: &Db) {
    let now = Timestamp(GENESIS);
    for h in 1..=HOMES {
        let p = Participant {
            id: ParticipantId(h),
            name: format!("home {h}"),
            role: "homeowner".into(),
            evm_address: None,
            feeder_node: Some(h as u32),
            custody_address: None,
        };
        participants::upsert(db, &p, now).await.unwrap();
        let mut secret = [0u8; 32];
        secret[24..].copy_from_slice(&(h + 1).to_be_bytes());
        gateways::register(
            db,
            &Gateway {
                id: GatewayId(h),
                owner: p.id,
                installer: None,
                public_key: GatewayKey::from_bytes(&secret).unwrap().public(),
                feeder_node: NodeId(h as u32),
                window: ReplayWindow::default(),
                revoked_at: None,
            },
            now,
        )
        .await
        .unwrap();
        // a reading a minute from the quarter before the epoch to its end
        let rows: Vec<Reading> = (0..(DAY + QUARTER) / 60_000)
            .map(|m| Reading {
                gateway: GatewayId(h),
                seq: m as u64 + 1,
                sample: TelemetrySample {
                    device: DeviceId::new("meter").unwrap(),
                    kind: DeviceKind::GridMeter,
                    at: Timestamp(GENESIS - QUARTER + m * 60_000),
                    power_w: Some(W(-600)),
                    energy_in_wh: Some(Wh(1_000 + m)),
                    energy_out_wh: Some(Wh(5_000 + m * 10)),
                    soc_permille: None,
                    status: DeviceStatus::Ok,
                    quality: Quality::Good,
                },
            })
            .collect();
        for chunk in rows.chunks(1_000) {
            readings::insert_batch(db, chunk).await.unwrap();
        }
    }
    let mut trades = Vec::with_capacity(HOMES as usize * 96);
    for q in 0..96u64 {
        for h in 1..=HOMES {
            let id = q * HOMES + h;
            trades.push(TradeReport {
                trade_id: TradeId(id),
                zone: ZoneId(1),
                interval: DeliveryInterval::new(Timestamp(GENESIS + q as i64 * QUARTER), IntervalLength::Min15)
                    .unwrap(),
                buy_order: OrderId(2 * id),
                sell_order: OrderId(2 * id + 1),
                buyer: ParticipantId(h % HOMES + 1),
                seller: ParticipantId(h),
                quantity: Wh(100 + (h % 50) as i64),
                price: MicroPerKwh(150_000),
                grid_fee: MicroPerKwh(10_000),
                at: Timestamp(GENESIS + q as i64 * QUARTER),
            });
        }
    }
    for chunk in trades.chunks(5_000) {
        gridshare_storage::market::insert_trades(db, chunk).await.unwrap();
    }
}

/// One epoch's computation once, timed by phase (where the time goes; criterion measures the
/// whole below).
async fn phases(name: &str, db: &Db, p: &Params) {
    use gridshare_storage::epochs;
    let (start, end) = p.span(1);
    let mut t = std::time::Instant::now();
    let mut lap = |what: &str| {
        eprintln!("{name}: {what} {} ms", t.elapsed().as_millis());
        t = std::time::Instant::now();
    };
    epochs::sold_per_interval(db, start, end).await.unwrap();
    lap("energy sold per interval (trades)");
    epochs::from_readings(db, start, end, QUARTER, p.uptime_period_ms)
        .await
        .unwrap();
    lap("export per interval and complete uptime periods (the readings' blocks)");
    let inputs = collect::inputs(db, p, 1, QUARTER, &Bonds::NoMinimum).await.unwrap();
    lap("all inputs together");
    let r = compute(1, p, &inputs);
    lap("computation");
    std::hint::black_box((r.canonical_json(), r.hash()));
    lap("canonical JSON and hash");
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, db: &Db) {
    let started = std::time::Instant::now();
    rt.block_on(seed(db));
    eprintln!(
        "{name}: seeded {HOMES} homes × 96 intervals in {:.0?}",
        started.elapsed()
    );
    let p = params();
    rt.block_on(phases(name, db, &p));
    let mut g = c.benchmark_group(format!("epoch/{name}"));
    g.sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(20));
    g.bench_function("1000_homes_96_intervals", |b| {
        b.to_async(rt).iter(|| async {
            let inputs = collect::inputs(db, &p, 1, QUARTER, &Bonds::NoMinimum).await.unwrap();
            let r = compute(1, &p, &inputs);
            assert_eq!(r.participants.len(), HOMES as usize);
            std::hint::black_box((r.canonical_json(), r.hash()))
        })
    });
    g.finish();
}

fn epoch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    match std::env::var(gridshare_testkit::POSTGRES_URL) {
        Ok(admin) => {
            let name = format!("gs_bench_epoch_{}", std::process::id());
            let pg = rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let (base, _) = admin.rsplit_once('/').unwrap();
                Db::open(&format!("{base}/{name}")).await.unwrap()
            });
            bench_backend(c, &rt, "postgres", &pg);
            rt.block_on(async {
                pg.close().await;
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .unwrap();
            });
        }
        Err(_) => eprintln!(
            "PostgreSQL skipped: set {} to include it",
            gridshare_testkit::POSTGRES_URL
        ),
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(async { Db::open(dir.path().to_str().unwrap()).await.unwrap() });
    bench_backend(c, &rt, "sqlite", &sqlite);
}

criterion_group!(benches, epoch);
criterion_main!(benches);
