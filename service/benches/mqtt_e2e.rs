//! Gateway intake end to end: signed telemetry envelopes (1 or 10 samples) published by 625
//! gateways, each on its own connection and login, to a real broker, received by the service's
//! MQTT intake ([`gridshare::mqtt::run`]: fair queues, signature checks on both cores, replay
//! windows, batched writes, receipts after commit), stored in PostgreSQL. In one iteration every
//! gateway sends at once what a real gateway may have in flight ahead of its receipts (at most its
//! window of 32 envelopes): 32 envelopes of 1 sample (20,000 readings) or 4 of 10 (25,000), sealed
//! beforehand; it ends when the last reading is in the database. Throughput is in readings per
//! second. (Before the fair intake, 8 clients sent 2,500 envelopes each; a gateway's queue now
//! holds 256 and refuses the rest for it to send again, as a real gateway would, so a burst that
//! size measures refusals, not storage.)
//!
//! Brokers: the embedded rumqttd always, Mosquitto when `GRIDSHARE_TEST_MQTT_URL` is set.
//! Needs `GRIDSHARE_TEST_POSTGRES_URL` (`scripts/services.sh start DIR && source DIR/env.sh`).
//!
//! `cargo bench -p gridshare --bench mqtt_e2e`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gridshare::mqtt::{self, Broker};
use gridshare_domain::envelope::{GatewayKey, ReplayWindow};
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::{DeviceKind, DeviceStatus, Message, Quality, Telemetry, TelemetrySample};
use gridshare_domain::{DeviceId, GatewayId, NodeId, ParticipantId, W, Wh};
use gridshare_market::{Clock, Market, wall_clock as now};
use gridshare_matching_engine::MarketConfig;
use gridshare_storage::Db;
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use sqlx::Connection;

/// Marks a gateway login meaning "each gateway logs in as itself, password as given".
const PER_GATEWAY: &str = "<each gateway>";
const GATEWAYS: u64 = 625;
/// Envelopes a real gateway may send ahead of its receipts (`gateway::run::sender::WINDOW`).
const WINDOW: u64 = 32;
/// Readings per iteration with 1 sample per envelope (a window from every gateway).
const READINGS: u64 = GATEWAYS * WINDOW;

struct Rig {
    db: Db,
    metrics: Arc<gridshare_market::Metrics>,
    keys: Vec<GatewayKey>,
    clients: Vec<AsyncClient>,
    seq: u64,
}

async fn fresh_postgres(admin: &str, name: &str) -> Db {
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    let (base, _) = admin.rsplit_once('/').unwrap();
    Db::open(&format!("{base}/{name}")).await.unwrap()
}

async fn rig(admin: &str, name: &str, service: Broker, gateway: Broker) -> Rig {
    let db = fresh_postgres(admin, name).await;
    let mut keys = Vec::new();
    for g in 1..=GATEWAYS {
        participants::upsert(
            &db,
            &Participant {
                id: ParticipantId(g),
                name: format!("home {g}"),
                role: "homeowner".into(),
                evm_address: None,
                feeder_node: Some(1),
                custody_address: None,
            },
            now(),
        )
        .await
        .unwrap();
        let mut secret = [7u8; 32];
        secret[24..].copy_from_slice(&g.to_be_bytes());
        let key = GatewayKey::from_bytes(&secret).unwrap();
        gateways::register(
            &db,
            &Gateway {
                id: GatewayId(g),
                owner: ParticipantId(g),
                installer: None,
                public_key: key.public(),
                feeder_node: NodeId(1),
                window: ReplayWindow::default(),
                revoked_at: None,
            },
            now(),
        )
        .await
        .unwrap();
        keys.push(key);
    }
    let metrics = Arc::new(gridshare_market::Metrics::new());
    let (market, _) = Market::start(MarketConfig::default(), None, db.clone(), Clock::wall())
        .await
        .unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (_dr_out, dr_in) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget((_stop, _dr_out)); // the service runs for the whole bench
    tokio::spawn(mqtt::run(
        service,
        format!("gs-bench-market-{name}"),
        db.clone(),
        market,
        metrics.clone(),
        dr_in,
        stopped,
        None,
        gridshare_domain::envelope::MarketKey::from_bytes(&[99u8; 32]).unwrap(),
        mqtt::Authority::Market,
    ));
    let mut clients = Vec::new();
    for g in 1..=GATEWAYS {
        let per_gateway = gateway.username.as_deref() == Some(PER_GATEWAY);
        let id = if per_gateway {
            g.to_string()
        } else {
            format!("gs-bench-{name}-{g}")
        };
        let mut opts = MqttOptions::new(id, gateway.host.clone(), gateway.port);
        if let (Some(u), Some(p)) = (&gateway.username, &gateway.password) {
            opts.set_credentials(if per_gateway { g.to_string() } else { u.clone() }, p.clone());
        }
        opts.set_inflight(500);
        let (client, mut events) = AsyncClient::new(opts, 1_000);
        tokio::spawn(async move {
            loop {
                if let Err(e) = events.poll().await {
                    eprintln!("gateway client {g}: {e}; reconnecting");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        clients.push(client);
    }
    // until the service has subscribed, publishes go nowhere: wait for one to arrive
    let mut r = Rig {
        db,
        metrics,
        keys,
        clients,
        seq: 0,
    };
    for _ in 0..100 {
        let one = seal(&mut r, 1, 1);
        send(&r, one).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stored(&r.db).await > 0 {
            break;
        }
    }
    r
}

fn sample(g: u64, seq: u64, samples: usize) -> Message {
    Message::Telemetry(Telemetry {
        samples: (0..samples)
            .map(|d| TelemetrySample {
                device: DeviceId::new(format!("dev{d}")).unwrap(),
                kind: DeviceKind::GridMeter,
                at: now(),
                power_w: Some(W(1_000 + (g * seq % 500) as i64)),
                energy_in_wh: Some(Wh(seq as i64)),
                energy_out_wh: Some(Wh(0)),
                soc_permille: None,
                status: DeviceStatus::Ok,
                quality: Quality::Good,
            })
            .collect(),
    })
}

type Sealed = Vec<(usize, String, Vec<u8>)>;

/// `per_gateway` envelopes from every gateway, interleaved.
fn seal(r: &mut Rig, per_gateway: u64, samples: usize) -> Sealed {
    let mut sealed = Vec::new();
    for i in 0..per_gateway {
        for (n, key) in r.keys.iter().enumerate() {
            let g = n as u64 + 1;
            let seq = r.seq + i + 1;
            let body =
                serde_json::to_vec(&key.seal(GatewayId(g), seq, now(), &sample(g, seq, samples)).unwrap()).unwrap();
            sealed.push((n, topics::topic(GatewayId(g), Channel::Telemetry), body));
        }
    }
    r.seq += per_gateway;
    sealed
}

async fn send(r: &Rig, sealed: Sealed) {
    let sends = sealed.into_iter().map(|(n, topic, body)| {
        let c = r.clients[n].clone();
        async move { c.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap() }
    });
    futures_util::future::join_all(sends).await;
}

async fn stored(db: &Db) -> i64 {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar("SELECT count(*) FROM readings")
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Sqlite(_) => unreachable!("PostgreSQL only"),
    }
}

fn bench(c: &mut Criterion) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RUST_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let Ok(admin) = std::env::var(gridshare_testkit::POSTGRES_URL) else {
        eprintln!("mqtt_e2e needs PostgreSQL: set {}", gridshare_testkit::POSTGRES_URL);
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut brokers = Vec::new();
    let port = gridshare_testkit::free_port().unwrap();
    // each gateway logs in as itself (user name = its id), through the broker's access control
    let users: HashMap<String, String> = (1..=GATEWAYS).map(|g| (g.to_string(), "gw".to_owned())).collect();
    let embedded = gridshare::broker::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &users,
        std::sync::Arc::new(gridshare_market::Metrics::new()),
    )
    .unwrap();
    let gateway = Broker {
        port: embedded.listen().port(),
        username: Some(PER_GATEWAY.into()),
        password: Some("gw".into()),
        ..embedded.service()
    };
    brokers.push(("embedded_rumqttd", embedded.service(), gateway));
    match std::env::var(gridshare_testkit::MQTT_URL) {
        Ok(url) => {
            let b = Broker::parse(&url).unwrap();
            brokers.push(("mosquitto", b.clone(), b));
        }
        Err(_) => eprintln!("Mosquitto skipped: set {}", gridshare_testkit::MQTT_URL),
    }
    let mut g = c.benchmark_group("mqtt_e2e");
    g.sample_size(10);
    for (name, service, gateway) in brokers {
        let db_name = format!("gs_e2e_{name}_{}", std::process::id());
        let mut r = rt.block_on(rig(&admin, &db_name, service, gateway));
        for samples in [1usize, 10] {
            // within the window: 32 envelopes of 1 sample, or 4 of 10
            let per_gateway = (READINGS / samples as u64).div_ceil(GATEWAYS).min(WINDOW);
            let readings = GATEWAYS * per_gateway * samples as u64;
            g.throughput(Throughput::Elements(readings));
            g.bench_function(format!("{name}_to_postgres_{samples}_samples_per_envelope"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let want = stored(&r.db).await + readings as i64;
                            let sealed = seal(&mut r, per_gateway, samples);
                            let start = Instant::now();
                            send(&r, sealed).await;
                            let deadline = start + Duration::from_secs(120);
                            while stored(&r.db).await < want {
                                if Instant::now() > deadline {
                                    let m = r.metrics.encode().unwrap();
                                    let got = stored(&r.db).await;
                                    panic!("{got} of {want} readings stored after 2 min:\n{m}");
                                }
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                            total += start.elapsed();
                        }
                        total
                    })
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
