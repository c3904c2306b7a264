//! Signed downlinks, attacked with real components: the embedded broker, the service's MQTT side
//! signing with the market's key, and two gateways (`gateway run`, in-process) driving simulated
//! batteries over Modbus TCP. An attacker who can publish on one gateway's downlinks forges
//! demand-response events and retained preferences for it; captured genuine downlinks are replayed
//! to the other gateway and, later, to their own. None is acted on, each is counted, and the
//! market's genuine ones still are.
//!
//! The broker's access control already stops another gateway's login from doing any of this
//! (`tests/broker_acl.rs`); here the attacker and the observer use the broker's internal login,
//! which passes no access control, to stand for a broker without it (or a stolen market login):
//! the gateway's own checks must hold on their own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gridshare::mqtt;
use gridshare_domain::envelope::{GatewayKey, MarketKey};
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::{DrEvent, DrInterval, DrSignal, Message, TradingPreferences};
use gridshare_domain::{EventId, GatewayId, MicroPerKwh, ParticipantId, ProgramId, W};
use gridshare_gateway::config::{AgentSection, Config, DeviceConfig, GatewaySection, MqttSection};
use gridshare_gateway::downlink::DownlinkCounts;
use gridshare_gateway::profile::Profile;
use gridshare_gateway::simulate::Simulator;
use gridshare_market::dr::Dispatch;
use gridshare_market::{Clock, Downlink, Market, Metrics, wall_clock as now};
use gridshare_matching_engine::MarketConfig;
use gridshare_storage::Db;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const A: u64 = 71;
const B: u64 = 72;
const BATTERY: u8 = 3;

fn gateway_key(gw: u64) -> GatewayKey {
    GatewayKey::from_bytes(&[gw as u8; 32]).unwrap()
}

fn market_key() -> MarketKey {
    MarketKey::from_bytes(&[99u8; 32]).unwrap()
}

fn hardware(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hardware")
        .join(file)
}

/// A home: its simulated meter and battery, and its gateway running in-process.
struct Home {
    sim: Simulator,
    counts: Arc<DownlinkCounts>,
    data_dir: std::path::PathBuf,
}

async fn start_home(gw: u64, broker: &mqtt::Broker, password: &str, dir: &std::path::Path) -> Home {
    let sim = Simulator::new(1_750_507_200.0);
    let mut devices = Vec::new();
    for (name, unit, file) in [
        ("grid", 1u8, "eastron-sdm630.toml"),
        ("battery", BATTERY, "generic-battery-inverter.toml"),
    ] {
        let profile = Profile::load(&hardware(file)).unwrap();
        sim.add(unit, profile.clone());
        devices.push((name, unit, file, profile));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.serve(listener, Duration::from_millis(200), 1.0, std::future::pending())
                .await
        });
    }
    let devices: Vec<gridshare_gateway::config::Device> = devices
        .into_iter()
        .map(|(name, unit, file, profile)| gridshare_gateway::config::Device {
            config: DeviceConfig {
                name: name.into(),
                profile: hardware(file),
                host: Some("127.0.0.1".into()),
                port,
                serial: None,
                baud: 9_600,
                parity: Default::default(),
                unit: Some(unit),
                timeout_ms: 1_000,
            },
            profile,
        })
        .collect();
    let data_dir = dir.join(format!("gw{gw}"));
    let cfg = Config {
        gateway: GatewaySection {
            id: gw,
            key_file: dir.join("unused.hex"),
            data_dir: data_dir.clone(),
            telemetry_period_s: 1,
        },
        mqtt: MqttSection {
            url: format!("mqtt://{}:{}", broker.host, broker.port),
            ca_file: None,
            username: Some(gw.to_string()),
            password: Some(password.to_owned()),
            market_key: Some(market_key().public().to_hex()),
            market_key_file: None,
        },
        devices: devices.iter().map(|d| d.config.clone()).collect(),
        agent: AgentSection::default(),
    };
    let counts = Arc::new(DownlinkCounts::default());
    let options = gridshare_gateway::run::Options {
        period: Some(Duration::from_millis(300)),
        downlinks: counts.clone(),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::mem::forget(stop); // runs for the whole test
    tokio::spawn(gridshare_gateway::run::run_with(
        cfg,
        devices,
        gateway_key(gw),
        stopped,
        options,
    ));
    Home { sim, counts, data_dir }
}

/// An MQTT client with `login`; what arrives on `filters` comes out of the receiver.
async fn client(
    broker: &mqtt::Broker,
    name: &str,
    filters: &[String],
) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let mut opts = MqttOptions::new(
        format!("test-{name}-{}", std::process::id()),
        broker.host.clone(),
        broker.port,
    );
    opts.set_credentials(
        broker.username.clone().unwrap_or_default(),
        broker.password.clone().unwrap_or_default(),
    );
    opts.set_max_packet_size(256 * 1024, 256 * 1024);
    let (c, mut events) = AsyncClient::new(opts, 100);
    for f in filters {
        c.subscribe(f.clone(), QoS::AtLeastOnce).await.unwrap();
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev {
                let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
            }
        }
    });
    (c, rx)
}

async fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stays true for `ms`.
async fn holds(ms: u64, mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    while tokio::time::Instant::now() < deadline {
        assert!(ok(), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn load_shed(id: u64, cancelled: bool) -> DrEvent {
    DrEvent {
        event_id: EventId(id),
        program_id: ProgramId(1),
        priority: 1,
        intervals: if cancelled {
            Vec::new()
        } else {
            vec![DrInterval {
                id: 0,
                start: gridshare_domain::Timestamp(now().0 - 1_000),
                duration_minutes: 10,
                signals: vec![DrSignal::LoadShed { w: W(2_000) }],
            }]
        },
        cancelled,
    }
}

fn kept_preferences(dir: &std::path::Path) -> Option<TradingPreferences> {
    gridshare_gateway::remote::load_preferences(dir).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_misaddressed_and_replayed_downlinks_are_refused_and_genuine_ones_act() {
    let dir = tempfile::tempdir().unwrap();
    let port = gridshare_testkit::free_port().unwrap();
    let users = HashMap::from([
        (A.to_string(), "pass a".to_owned()),
        (B.to_string(), "pass b".to_owned()),
    ]);
    let broker = gridshare::broker::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &users,
        Arc::new(Metrics::new()),
    )
    .unwrap();
    // gateways connect through the access control; the attacker and observer do not
    let front = mqtt::Broker::parse(&format!("mqtt://127.0.0.1:{}", broker.listen().port())).unwrap();
    let internal = broker.service();

    // the market: two homes, one gateway each, signing downlinks with its key
    let db = Db::open(dir.path().join("db").to_str().unwrap()).await.unwrap();
    for (p, gw) in [(1u64, A), (2, B)] {
        common::home_with_gateway(&db, p, gw, &gateway_key(gw)).await;
    }
    let (market, _) = Market::start(MarketConfig::default(), None, db.clone(), Clock::wall())
        .await
        .unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (downlink, downlink_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(mqtt::run(
        internal.clone(),
        "gs-market-downlinks".into(),
        db.clone(),
        market.clone(),
        Arc::new(Metrics::new()),
        downlink_rx,
        stopped,
        None,
        market_key(),
        mqtt::Authority::Market,
    ));

    // an observer that records every downlink
    let (_observer, mut seen) = client(
        &internal,
        "observer",
        &[
            topics::all_gateways(Channel::Status),
            topics::all_gateways(Channel::DrEvent),
        ],
    )
    .await;
    let home_a = start_home(A, &front, "pass a", dir.path()).await;
    let home_b = start_home(B, &front, "pass b", dir.path()).await;
    let mut online = std::collections::HashSet::new();
    while online.len() < 2 {
        let (topic, payload) = tokio::time::timeout(Duration::from_secs(20), seen.recv())
            .await
            .expect("both gateways come online")
            .unwrap();
        if topic.ends_with("/status") && is_online(&payload) {
            online.insert(topic);
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await; // their subscriptions follow the connect
    let battery_idle = |h: &Home| h.sim.power_w(BATTERY) == Some(0.0);
    assert!(battery_idle(&home_a) && battery_idle(&home_b));

    // 1. an attacker (holding B's gateway key) forges load-shed events for A: unsigned, signed
    // with B's own gateway key as a downlink, and as an upstream envelope. None is acted on; each
    // is counted.
    let (attacker, _) = client(&internal, "attacker", &[]).await;
    let forged = serde_json::to_string(&Message::DrEvent(load_shed(66, false))).unwrap();
    let a_event = topics::topic(GatewayId(A), Channel::DrEvent);
    let forgeries = [
        forged.clone().into_bytes(),
        serde_json::to_vec(
            &gateway_key(B)
                .seal_downlink(GatewayId(A), Channel::DrEvent, u64::MAX / 2, now(), forged.clone())
                .unwrap(),
        )
        .unwrap(),
        serde_json::to_vec(&gateway_key(B).seal_raw(GatewayId(B), 1, now(), forged.clone()).unwrap()).unwrap(),
    ];
    for f in forgeries {
        attacker.publish(&a_event, QoS::AtLeastOnce, false, f).await.unwrap();
    }
    wait_for("the three forgeries refused", 10, || home_a.counts.refused_total() >= 3).await;
    assert_eq!(home_a.counts.refused("unsigned"), 1);
    assert_eq!(home_a.counts.refused("bad_signature"), 1);
    assert_eq!(
        home_a.counts.refused("misaddressed"),
        1,
        "the upstream envelope names B"
    );
    holds(
        1_500,
        || battery_idle(&home_a),
        "no setpoint written for a forged event",
    )
    .await;

    // 2. the market's own event for A is acted on: the battery discharges 2 kW
    while seen.try_recv().is_ok() {}
    assert!(
        downlink
            .send(Downlink::Dr(Dispatch {
                gateways: vec![GatewayId(A)],
                event: load_shed(31, false),
            }))
            .is_ok()
    );
    let genuine_start = loop {
        let (topic, payload) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .expect("the market's event goes out")
            .unwrap();
        if topic == a_event {
            break payload;
        }
    };
    wait_for("the genuine event discharges A's battery", 20, || {
        home_a.sim.power_w(BATTERY) == Some(-2_000.0)
    })
    .await;
    let accepted_before = home_a.counts.accepted();

    // 3. the captured event replayed to B's topic: misaddressed, refused, B's battery idle
    let b_misaddressed = home_b.counts.refused("misaddressed");
    attacker
        .publish(
            topics::topic(GatewayId(B), Channel::DrEvent),
            QoS::AtLeastOnce,
            false,
            genuine_start.clone(),
        )
        .await
        .unwrap();
    wait_for("B refuses A's event", 10, || {
        home_b.counts.refused("misaddressed") == b_misaddressed + 1
    })
    .await;
    holds(1_000, || battery_idle(&home_b), "B writes no setpoint").await;

    // 4. the market cancels; the captured start replayed afterwards is refused and the battery
    // stays restored
    assert!(
        downlink
            .send(Downlink::Dr(Dispatch {
                gateways: vec![GatewayId(A)],
                event: load_shed(31, true),
            }))
            .is_ok()
    );
    wait_for("the cancel restores A's battery", 20, || battery_idle(&home_a)).await;
    let old = home_a.counts.refused("replayed") + home_a.counts.refused("sequence_too_old");
    attacker
        .publish(&a_event, QoS::AtLeastOnce, false, genuine_start)
        .await
        .unwrap();
    wait_for("the old event refused", 10, || {
        home_a.counts.refused("replayed") + home_a.counts.refused("sequence_too_old") == old + 1
    })
    .await;
    holds(1_500, || battery_idle(&home_a), "an old event replayed moves nothing").await;
    assert_eq!(
        home_a.counts.accepted(),
        accepted_before + 1,
        "only the cancel was taken"
    );

    // 5. the attacker leaves forged preferences, version 1,000,000, retained on A's topic: refused,
    // and the homeowner's genuine versions that follow are taken
    let refused_before = home_a.counts.refused_total();
    let bogus = TradingPreferences {
        version: 1_000_000,
        min_sell_price: MicroPerKwh(0),
        max_buy_price: MicroPerKwh(2_000_000),
        battery_reserve_percent: 0,
    };
    let bogus_text = serde_json::to_string(&Message::Preferences(bogus)).unwrap();
    let a_prefs = topics::topic(GatewayId(A), Channel::Preferences);
    attacker
        .publish(&a_prefs, QoS::AtLeastOnce, true, bogus_text.clone().into_bytes())
        .await
        .unwrap();
    let signed_by_b = gateway_key(B)
        .seal_downlink(GatewayId(A), Channel::Preferences, u64::MAX / 2, now(), bogus_text)
        .unwrap();
    attacker
        .publish(
            &a_prefs,
            QoS::AtLeastOnce,
            true,
            serde_json::to_vec(&signed_by_b).unwrap(),
        )
        .await
        .unwrap();
    wait_for("the forged preferences refused", 10, || {
        home_a.counts.refused_total() >= refused_before + 2
    })
    .await;
    assert_eq!(kept_preferences(&home_a.data_dir), None, "nothing forged was kept");
    for (sell, buy) in [(95_000, 210_000), (97_000, 220_000)] {
        let draft = TradingPreferences {
            version: 0,
            min_sell_price: MicroPerKwh(sell),
            max_buy_price: MicroPerKwh(buy),
            battery_reserve_percent: 35,
        };
        let saved = gridshare_storage::preferences::save(&db, ParticipantId(1), &draft, now())
            .await
            .unwrap();
        assert!(saved.version < 1_000_000);
        assert!(
            downlink
                .send(Downlink::Preferences {
                    gateways: vec![GatewayId(A)],
                    preferences: saved.clone(),
                })
                .is_ok()
        );
        wait_for("the homeowner's genuine version is taken", 20, || {
            kept_preferences(&home_a.data_dir) == Some(saved.clone())
        })
        .await;
        // and confirmed to the market
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answers = gridshare_storage::preferences::answers(&db, &[GatewayId(A)])
                .await
                .unwrap();
            if answers.iter().any(|(_, a, _)| a.version == saved.version && a.applied) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{answers:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether a presence payload says `online` (its signature is the market's business here).
fn is_online(payload: &[u8]) -> bool {
    use gridshare_domain::wire::{Message, Presence};
    serde_json::from_slice::<gridshare_domain::envelope::SignedEnvelope>(payload)
        .ok()
        .and_then(|env| serde_json::from_str::<Message>(&env.payload).ok())
        == Some(Message::Status(Presence { online: true }))
}
