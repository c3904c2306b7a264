//! The production shape, by configuration only: the same `gridshare` binary against PostgreSQL,
//! Mosquitto and a JSON-RPC chain (anvil), all real and started by the test harness. A gateway,
//! commissioned with `gridshare gateway`, polls a simulated meter and publishes signed telemetry
//! through Mosquitto into PostgreSQL; two homes trade through the API; the batch is confirmed on
//! anvil and the vault agrees with the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gridshare_domain::Timestamp;
use gridshare_domain::envelope::GatewayKey;
use gridshare_gateway::config::{AgentSection, Config, Device, DeviceConfig, GatewaySection, MqttSection};
use gridshare_gateway::profile::Profile;
use gridshare_gateway::simulate::Simulator;
use gridshare_testkit::Killed;
use serde_json::{Value, json};

mod common;
use common::http;

const BIN: &str = env!("CARGO_BIN_EXE_gridshare");

fn admin(dir: &Path, config: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The service's accelerated market clock, read from its `clock.json`, so the gateway stamps
/// its messages in market time.
static ANCHOR: OnceLock<(i64, i64, f64)> = OnceLock::new();

fn market_now() -> Timestamp {
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (real0, market0, speed) = ANCHOR.get().copied().unwrap_or((real, real, 1.0));
    Timestamp(market0 + ((real - real0) as f64 * speed) as i64)
}

async fn fresh_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("gs_production_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    }
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

async fn readings_stored(url: &str, gateway: i64) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM readings WHERE gateway_id = $1")
        .bind(gateway)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_binary_runs_on_postgres_mosquitto_and_anvil() {
    let Some(pg) = gridshare_testkit::service(gridshare_testkit::POSTGRES_URL, "PostgreSQL") else {
        return;
    };
    let Some(mqtt) = gridshare_testkit::service(gridshare_testkit::MQTT_URL, "Mosquitto") else {
        return;
    };
    let Some(anvil) = gridshare_testkit::Anvil::start(&[]) else {
        return;
    };
    let anvil = anvil.unwrap();
    let database = fresh_database(&pg).await;
    let broker = gridshare_domain::topics::Broker::parse(&mqtt).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("production.toml");
    std::fs::write(
        &config,
        format!(
            "database = \"{database}\"\n\
             [market]\nzones = [1]\nhorizon = 6\nspeed = 900.0\n\
             [mqtt]\nurl = \"{mqtt}\"\nclient_id = \"gs-production-{pid}\"\n\
             [chain]\nrpc_url = \"{rpc}\"\nsettler_key = \"0x{key}\"\n\
             [settlement]\nevery_ms = 200\n",
            pid = std::process::id(),
            rpc = anvil.url,
            key = gridshare_testkit::ANVIL_KEY_0,
        ),
    )
    .unwrap();
    for (id, node) in [("1", "1"), ("2", "2")] {
        admin(
            &data,
            &config,
            &[
                "participant",
                "--id",
                id,
                "--name",
                "home",
                "--role",
                "homeowner",
                "--node",
                node,
            ],
        );
    }
    let seller = admin(
        &data,
        &config,
        &["api-key", "--participant", "1", "--scopes", "read,trade"],
    );
    let buyer = admin(
        &data,
        &config,
        &["api-key", "--participant", "2", "--scopes", "read,trade"],
    );
    let gw = 700 + u64::from(std::process::id() % 100);
    let key = GatewayKey::from_bytes(&[9; 32]).unwrap();
    let said = admin(
        &data,
        &config,
        &[
            "gateway",
            "--id",
            &gw.to_string(),
            "--owner",
            "1",
            "--public-key",
            &key.public().to_hex(),
        ],
    );
    assert!(said.contains("commissioned"), "{said}");
    // a wrong key is refused with its flag named
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .args(["gateway", "--id", "5", "--owner", "1", "--public-key", "abc"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--public-key"));

    let port = gridshare_testkit::free_port().unwrap();
    let _server = Killed(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() && http(port, "GET", "/readyz", "", None).0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the service is ready within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let anchor: Value = serde_json::from_str(&std::fs::read_to_string(data.join("clock.json")).unwrap()).unwrap();
    let real0 = anchor["real_ms"].as_i64().unwrap();
    ANCHOR
        .set((
            real0,
            anchor["market_ms"].as_i64().unwrap_or(real0),
            anchor["speed"].as_f64().unwrap(),
        ))
        .unwrap();

    // the gateway: a simulated meter, polled every 200 ms, telemetry through Mosquitto
    let profile_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware/eastron-sdm630.toml");
    let profile = Profile::load(&profile_path).unwrap();
    let sim = Simulator::new(market_now().0 as f64 / 1_000.0);
    sim.add(1, profile.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let modbus_port = listener.local_addr().unwrap().port();
    {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.serve(listener, Duration::from_millis(100), 900.0, std::future::pending())
                .await
        });
    }
    let device = DeviceConfig {
        name: "grid".into(),
        profile: profile_path,
        host: Some("127.0.0.1".into()),
        port: modbus_port,
        serial: None,
        baud: 9_600,
        parity: Default::default(),
        unit: Some(1),
        timeout_ms: 1_000,
    };
    let cfg = Config {
        gateway: GatewaySection {
            id: gw,
            key_file: dir.path().join("unused.hex"),
            data_dir: dir.path().join("gateway"),
            telemetry_period_s: 1,
        },
        mqtt: MqttSection {
            url: format!("mqtt://{}:{}", broker.host, broker.port),
            ca_file: None,
            username: broker.username.clone(),
            password: broker.password.clone(),
            market_key: None,
            market_key_file: None,
        },
        devices: vec![device.clone()],
        agent: AgentSection::default(),
    };
    let (stop_gateway, stopped) = tokio::sync::watch::channel(false);
    let gateway = tokio::spawn(gridshare_gateway::run::run_with(
        cfg,
        vec![Device {
            config: device,
            profile,
        }],
        key,
        stopped,
        gridshare_gateway::run::Options {
            clock: std::sync::Arc::new(market_now),
            period: Some(Duration::from_millis(200)),
            ..Default::default()
        },
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while readings_stored(&database, gw as i64).await < 5 {
        assert!(
            Instant::now() < deadline,
            "telemetry reaches PostgreSQL through Mosquitto"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // a trade through the API, settled on anvil
    let interval = common::furthest_open_interval(port, &seller);
    let order =
        |side: &str| json!({"zone": 1, "interval": interval, "side": side, "quantity_wh": 400, "price": 120_000});
    let (st, ack) = http(port, "POST", "/api/v1/orders", &seller, Some(order("sell")));
    assert_eq!(st, 201, "{ack}");
    let (st, ack) = http(port, "POST", "/api/v1/orders", &buyer, Some(order("buy")));
    assert_eq!((st, ack["status"].as_str()), (201, Some("filled")), "{ack}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let batch = loop {
        let (_, batches) = http(port, "GET", "/api/v1/settlement/batches", &buyer, None);
        if let Some(b) = batches
            .as_array()
            .and_then(|a| a.iter().find(|b| b["status"] == "confirmed" && b["trades"] == 1))
        {
            break b.clone();
        }
        assert!(
            Instant::now() < deadline,
            "a batch confirmed on anvil within 90 s: {batches}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(batch["net_micro"], 0, "{batch}");
    assert!(
        batch["transactions"][0]["block"].as_u64().is_some(),
        "mined in an anvil block: {batch}"
    );
    for k in [&seller, &buyer] {
        let (_, bal) = http(port, "GET", "/api/v1/balance", k, None);
        assert_eq!(
            bal["settled"].as_i64(),
            bal["on_chain"].as_i64(),
            "vault = ledger: {bal}"
        );
    }
    // the buyer has no meter: settled as traded, 400 Wh at 0.12/kWh (the seller's metered
    // imbalance is priced at the tariff on top of its sale)
    let (_, bal) = http(port, "GET", "/api/v1/balance", &buyer, None);
    assert_eq!(bal["settled"], -48_000, "{bal}");
    let _ = stop_gateway.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), gateway).await;
}
