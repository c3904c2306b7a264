//! Readings ingest: one batched transaction of 1,000 rows vs one row per
//! statement (autocommit), on SQLite and PostgreSQL in the same run; and a
//! batch as the intake stores it with a neighbourhood of 1,000 homes (one
//! reading from each, a minute after the last), where every reading touches
//! its own block of the epochs' roll-up (`storage::blocks`).
//!
//! `cargo bench -p gridshare-storage --bench ingest` (PostgreSQL from
//! `GRIDSHARE_TEST_POSTGRES_URL`; without it only SQLite runs, and says so).
//! Every iteration writes new rows: re-inserting would hit the idempotency
//! check and measure nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // bench code

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, TelemetrySample};
use gridshare_domain::{DeviceId, GatewayId, NodeId, ParticipantId, Timestamp, W, Wh};
use gridshare_storage::Db;
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_storage::readings::{self, Reading};
use sqlx::Connection;

const BATCH: usize = 1000;
/// Homes in the neighbourhood case (gateways 1..=HOMES).
const HOMES: u64 = 1000;
static SEQ: AtomicU64 = AtomicU64::new(1);
static ROUND: AtomicU64 = AtomicU64::new(1);

/// One reading from each home, a minute after the last round's.
fn next_round() -> Vec<Reading> {
    let round = ROUND.fetch_add(1, Ordering::Relaxed);
    (1..=HOMES)
        .map(|h| {
            let mut r = next_rows(1).pop().unwrap();
            r.gateway = GatewayId(h);
            r.seq = round;
            r.sample.at = Timestamp(1_764_064_800_000 + round as i64 * 60_000);
            r
        })
        .collect()
}

fn next_rows(n: usize) -> Vec<Reading> {
    let first = SEQ.fetch_add(n as u64, Ordering::Relaxed);
    (0..n as u64)
        .map(|i| Reading {
            gateway: GatewayId(1),
            seq: first + i,
            sample: TelemetrySample {
                device: DeviceId::new("meter").unwrap(),
                kind: DeviceKind::GridMeter,
                at: Timestamp(1_764_064_800_000 + ((first + i) as i64) * 1000),
                power_w: Some(W(1234)),
                energy_in_wh: Some(Wh((first + i) as i64)),
                energy_out_wh: Some(Wh(7)),
                soc_permille: None,
                status: DeviceStatus::Ok,
                quality: Quality::Good,
            },
        })
        .collect()
}

async fn prepare(db: &Db) {
    let now = Timestamp(0);
    let p = Participant {
        id: ParticipantId(1),
        name: "bench".into(),
        role: "homeowner".into(),
        evm_address: None,
        feeder_node: None,
        custody_address: None,
    };
    participants::upsert(db, &p, now).await.unwrap();
    for h in 1..=HOMES {
        let mut secret = [5u8; 32];
        secret[24..].copy_from_slice(&h.to_be_bytes());
        let g = Gateway {
            id: GatewayId(h),
            owner: p.id,
            installer: None,
            public_key: GatewayKey::from_bytes(&secret).unwrap().public(),
            feeder_node: NodeId(1),
            window: ReplayWindow::default(),
            revoked_at: None,
        };
        gateways::register(db, &g, now).await.unwrap();
    }
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, db: &Db) {
    let mut g = c.benchmark_group(format!("ingest/{name}"));
    g.sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(5));
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("batched_1000", |b| {
        b.to_async(rt).iter_batched(
            || next_rows(BATCH),
            |rows| async move { assert_eq!(readings::insert_batch(db, &rows).await.unwrap(), BATCH as u64) },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("batched_1000_homes", |b| {
        b.to_async(rt).iter_batched(
            next_round,
            |rows| async move { assert_eq!(readings::insert_batch(db, &rows).await.unwrap(), HOMES) },
            criterion::BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_row", |b| {
        b.to_async(rt).iter_batched(
            || next_rows(1),
            |rows| async move { assert_eq!(readings::insert_one(db, &rows[0]).await.unwrap(), 1) },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(async {
        let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
        prepare(&db).await;
        db
    });
    bench_backend(c, &rt, "sqlite", &sqlite);

    match std::env::var(gridshare_testkit::POSTGRES_URL) {
        Ok(admin) => {
            let name = format!("gs_bench_{}", std::process::id());
            let pg = rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let (base, _) = admin.rsplit_once('/').unwrap();
                let db = Db::open(&format!("{base}/{name}")).await.unwrap();
                prepare(&db).await;
                db
            });
            bench_backend(c, &rt, "postgres", &pg);
            rt.block_on(async {
                pg.close().await;
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
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
}

criterion_group!(benches, ingest);
criterion_main!(benches);
