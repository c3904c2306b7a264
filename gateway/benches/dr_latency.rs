//! Demand-response latency: from the market publishing an event on the gateway's `dr/event`
//! topic (signed with the market's key, as every downlink is) to the device's setpoint register
//! reading the new value, through Mosquitto, the real
//! `gateway run` binary (1 s poll cycle) and a simulated battery inverter over Modbus TCP. Each
//! iteration changes the setpoint within one ramp step, so one write does it. Prints p50 and
//! p95 of all iterations besides criterion's own figures.
//!
//! Needs Mosquitto: `scripts/services.sh start DIR && source DIR/env.sh`, then
//! `cargo bench -p gridshare-gateway --bench dr_latency`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)] // bench code

use gridshare_testkit::Killed;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gridshare_domain::envelope::GatewayKey;
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::{DrEvent, DrInterval, DrSignal, Message};
use gridshare_domain::{EventId, GatewayId, ProgramId, Timestamp, W};
use gridshare_gateway::modbus::Link;
use gridshare_gateway::profile::{Profile, Quantity, WordOrder};
use gridshare_gateway::simulate::Simulator;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const BIN: &str = env!("CARGO_BIN_EXE_gateway");

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn bench(c: &mut Criterion) {
    let Ok(url) = std::env::var(gridshare_testkit::MQTT_URL) else {
        eprintln!("dr_latency needs Mosquitto: set {}", gridshare_testkit::MQTT_URL);
        return;
    };
    let broker = gridshare_domain::topics::Broker::parse(&url).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hardware = format!("{}/../hardware", env!("CARGO_MANIFEST_DIR"));
    let battery = Profile::load(Path::new(&format!("{hardware}/generic-battery-inverter.toml"))).unwrap();
    let setpoint = battery.quantity(Quantity::BatterySetpointW).unwrap().clone();
    let sim = Simulator::new(1_750_507_200.0);
    sim.add(
        1,
        Profile::load(Path::new(&format!("{hardware}/eastron-sdm630.toml"))).unwrap(),
    );
    sim.add(3, battery);
    let modbus_port = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.serve(l, Duration::from_millis(200), 1.0, std::future::pending())
                .await
        });
        port
    });
    let gw = 700_000 + u64::from(std::process::id() % 90_000);
    let dir = tempfile::tempdir().unwrap();
    let key = GatewayKey::from_bytes(&[44; 32]).unwrap();
    // the gateway acts only on downlinks signed with the market key in its configuration
    let market_key = GatewayKey::from_bytes(&[45; 32]).unwrap();
    std::fs::write(dir.path().join("key.hex"), key.to_hex()).unwrap();
    let config = dir.path().join("gw.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = {gw}\nkey_file = \"{d}/key.hex\"\ndata_dir = \"{d}/data\"\ntelemetry_period_s = 1\n\
             [mqtt]\nurl = \"mqtt://{}:{}\"\nusername = \"{}\"\nmarket_key = \"{}\"\n\
             [[devices]]\nname = \"grid\"\nprofile = \"{hardware}/eastron-sdm630.toml\"\nhost = \"127.0.0.1\"\nport = {modbus_port}\nunit = 1\n\
             [[devices]]\nname = \"battery\"\nprofile = \"{hardware}/generic-battery-inverter.toml\"\nhost = \"127.0.0.1\"\nport = {modbus_port}\nunit = 3\n",
            broker.host,
            broker.port,
            broker.username.clone().unwrap_or_default(),
            market_key.public().to_hex(),
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let _gateway = Killed(
        std::process::Command::new(BIN)
            .args(["run", "--config", config.to_str().unwrap()])
            .env(
                "GRIDSHARE_GATEWAY_MQTT_PASSWORD",
                broker.password.clone().unwrap_or_default(),
            )
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let (market, mut link) = rt.block_on(async {
        let mut opts = MqttOptions::new(format!("gs-bench-market-{gw}"), broker.host.clone(), broker.port);
        if let (Some(u), Some(p)) = (&broker.username, &broker.password) {
            opts.set_credentials(u.clone(), p.clone());
        }
        let (market, mut events) = AsyncClient::new(opts, 100);
        let (online_tx, mut online) = tokio::sync::mpsc::unbounded_channel::<()>();
        market
            .subscribe(topics::topic(GatewayId(gw), Channel::Status), QoS::AtLeastOnce)
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Ok(ev) = events.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = ev
                    && is_online(&p.payload)
                {
                    let _ = online_tx.send(());
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), online.recv())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], modbus_port));
        (market, Link::new(addr, 3, Duration::from_secs(1), Duration::ZERO))
    });

    let mut latencies = Vec::new();
    let mut n = 0u64;
    let mut g = c.benchmark_group("dr_latency");
    g.sample_size(20);
    g.bench_function("event_to_confirmed_write_1s_cycle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let target: i32 = if n.is_multiple_of(2) { -1_000 } else { -2_000 };
                    let event = DrEvent {
                        event_id: EventId(1),
                        program_id: ProgramId(1),
                        priority: 1,
                        intervals: vec![DrInterval {
                            id: 0,
                            start: Timestamp(now_ms() - 1_000),
                            duration_minutes: 60,
                            signals: vec![DrSignal::BatterySetpoint {
                                w: W(i64::from(target)),
                            }],
                        }],
                        cancelled: false,
                    };
                    let payload = serde_json::to_string(&Message::DrEvent(event)).unwrap();
                    // the market's downlink sequence rises with every event
                    let sealed = market_key
                        .seal_downlink(GatewayId(gw), Channel::DrEvent, n, Timestamp(now_ms()), payload)
                        .unwrap();
                    let body = serde_json::to_vec(&sealed).unwrap();
                    let want = setpoint.ty.encode(f64::from(target), WordOrder::Big).unwrap();
                    let start = Instant::now();
                    market
                        .publish(
                            topics::topic(GatewayId(gw), Channel::DrEvent),
                            QoS::AtLeastOnce,
                            false,
                            body,
                        )
                        .await
                        .unwrap();
                    loop {
                        let words = link
                            .read(setpoint.table, setpoint.address, setpoint.ty.registers())
                            .await
                            .unwrap();
                        if words == want {
                            break;
                        }
                        assert!(start.elapsed() < Duration::from_secs(10), "written within 10 s");
                        tokio::time::sleep(Duration::from_micros(500)).await;
                    }
                    let took = start.elapsed();
                    latencies.push(took);
                    total += took;
                }
                total
            })
        });
    });
    g.finish();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "dr_latency: {} events, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// Whether a presence payload says `online` (its signature is the market's business here).
fn is_online(payload: &[u8]) -> bool {
    use gridshare_domain::wire::{Message, Presence};
    serde_json::from_slice::<gridshare_domain::envelope::SignedEnvelope>(payload)
        .ok()
        .and_then(|env| serde_json::from_str::<Message>(&env.payload).ok())
        == Some(Message::Status(Presence { online: true }))
}
