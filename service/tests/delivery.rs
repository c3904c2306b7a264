//! End-to-end delivery (issue 17 item 5): a gateway deletes a message only when the market has
//! stored it, so killing the market loses nothing, whatever the broker held.
//!
//! A real gateway (`run_with`, in-process, a simulated meter polled every 10 ms) sends a burst of
//! about 2,000 telemetry messages to a real `gridshare serve`, which is killed with SIGKILL in
//! the middle of the burst and started again. On the embedded broker the broker dies with the
//! service (and with it everything it had acknowledged to the gateway); on Mosquitto the broker
//! lives on and drops what arrives for the market while it is away (the market's session is
//! clean). Afterwards every message the gateway made is stored exactly once, and its outbox is
//! empty. Without the market's receipts (a gateway trusting the broker's acknowledgement), the
//! same kill loses what the broker held.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use gridshare_domain::envelope::GatewayKey;
use gridshare_domain::{GatewayId, Timestamp};
use gridshare_gateway::config::{AgentSection, Config, DeviceConfig, GatewaySection, MqttSection};
use gridshare_gateway::profile::Profile;
use gridshare_gateway::run::Traffic;
use gridshare_gateway::simulate::Simulator;

mod common;
use common::{BIN, Server, admin};

const GW: u64 = 501;
const PASSWORD: &str = "gateway 501 secret";
/// Messages in the burst.
const BURST: u64 = 2_000;

fn hardware(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hardware")
        .join(file)
}

/// `gridshare serve` on these ports (the embedded broker on `mqtt_port` unless the config names
/// a broker), ready when `/readyz` answers.
fn start(dir: &std::path::Path, config: &std::path::Path, http: u16, mqtt_port: u16) -> Server {
    use std::io::{Read, Write};
    let server = Server(
        std::process::Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", &format!("127.0.0.1:{http}")])
            .args(["--mqtt-listen", &format!("127.0.0.1:{mqtt_port}")])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", http)) {
            let _ = write!(s, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            if r.starts_with("HTTP/1.1 200") {
                return server;
            }
        }
        assert!(std::time::Instant::now() < deadline, "server not ready in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the burst against the service with `broker_section` as its configuration and the gateway
/// on `gateway_url` (`None`: the embedded broker) with `login`; kills the service with SIGKILL
/// somewhere in the middle of the burst and starts it again.
async fn burst_with_a_kill(broker_section: &str, gateway_url: Option<String>, login: (String, String)) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("market");
    let config = dir.path().join("market.toml");
    std::fs::write(&config, broker_section).unwrap();
    let http = gridshare_testkit::free_port().unwrap();
    let mqtt_port = gridshare_testkit::free_port().unwrap();
    let key = GatewayKey::from_bytes(&[51u8; 32]).unwrap();
    admin(
        &data,
        &[
            "participant",
            "--id",
            "1",
            "--name",
            "home",
            "--role",
            "homeowner",
            "--node",
            "1",
        ],
    );
    admin(
        &data,
        &[
            "gateway",
            "--id",
            &GW.to_string(),
            "--owner",
            "1",
            "--public-key",
            &key.public().to_hex(),
        ],
    );
    let market_key = admin(&data, &["market-key"]);
    let mut server = start(&data, &config, http, mqtt_port);

    // the gateway: one simulated meter, polled every 10 ms
    let sim = Simulator::new(1_750_507_200.0);
    let profile = Profile::load(&hardware("eastron-sdm630.toml")).unwrap();
    sim.add(1, profile.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let modbus = listener.local_addr().unwrap().port();
    {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.serve(listener, Duration::from_millis(50), 1.0, std::future::pending())
                .await
        });
    }
    let device = gridshare_gateway::config::Device {
        config: DeviceConfig {
            name: "grid".into(),
            profile: hardware("eastron-sdm630.toml"),
            host: Some("127.0.0.1".into()),
            port: modbus,
            serial: None,
            baud: 9_600,
            parity: Default::default(),
            unit: Some(1),
            timeout_ms: 1_000,
        },
        profile,
    };
    let gw_dir = dir.path().join("gateway");
    let cfg = Config {
        gateway: GatewaySection {
            id: GW,
            key_file: dir.path().join("unused.hex"),
            data_dir: gw_dir.clone(),
            telemetry_period_s: 1,
        },
        mqtt: MqttSection {
            url: gateway_url.unwrap_or_else(|| format!("mqtt://127.0.0.1:{mqtt_port}")),
            ca_file: None,
            username: Some(login.0),
            password: Some(login.1),
            market_key: Some(market_key),
            market_key_file: None,
        },
        devices: vec![device.config.clone()],
        agent: AgentSection::default(),
    };
    let traffic = Arc::new(Traffic::default());
    let options = gridshare_gateway::run::Options {
        period: Some(Duration::from_millis(10)),
        traffic: traffic.clone(),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let gateway = tokio::spawn(gridshare_gateway::run::run_with(
        cfg,
        vec![device],
        key,
        stopped,
        options,
    ));

    // kill -9 somewhere in the middle of the burst, with messages in flight
    let kill_at = BURST / 3 + u64::from(std::process::id()) % (BURST / 3);
    let wait = |what: &'static str, secs: u64, ok: Box<dyn Fn() -> bool>| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !ok() {
            assert!(tokio::time::Instant::now() < deadline, "{what} within {secs} s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    {
        // past the kill point, at a moment when some messages wait for their receipt (receipts
        // come at most once a second, so such a moment always comes; a market that has just
        // receipted everything would make the kill test nothing)
        let t = traffic.clone();
        wait(
            "messages made, some in flight",
            120,
            Box::new(move || t.made() >= kill_at && t.made() > t.receipted()),
        )
        .await;
    }
    let receipted_before_kill = traffic.receipted();
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let made_at_kill = traffic.made();
    assert!(
        made_at_kill > receipted_before_kill,
        "messages were in flight at the kill ({made_at_kill} made, {receipted_before_kill} receipted)"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let server = start(&data, &config, http, mqtt_port);
    {
        let t = traffic.clone();
        wait("the rest of the burst", 180, Box::new(move || t.made() >= BURST)).await;
    }
    // receipts flow again: the outbox is back to about a window
    {
        let t = traffic.clone();
        wait(
            "the outbox drained by receipts",
            90,
            Box::new(move || t.made().saturating_sub(t.receipted()) <= 40),
        )
        .await;
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
    let made = traffic.made();
    drop(server);

    // what still waits in the outbox, by sequence number
    let waiting: BTreeSet<u64> = std::fs::read_dir(gw_dir.join("outbox"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .split_once('.')
                .and_then(|(n, kind)| (kind != "tmp").then_some(n)?.parse().ok())
        })
        .collect();
    let db = gridshare_storage::Db::open(data.to_str().unwrap()).await.unwrap();
    let rows = gridshare_storage::readings::list(&db, GatewayId(GW), "grid", Timestamp(0), Timestamp(i64::MAX / 2))
        .await
        .unwrap();
    let stored: BTreeSet<u64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(rows.len(), stored.len(), "no message stored twice");
    let missing: Vec<u64> = (1..=made)
        .filter(|s| !stored.contains(s) && !waiting.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {made} messages neither stored nor waiting (killed at {made_at_kill} made, {receipted_before_kill} receipted): {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(stored.len() as u64 + 40 >= made, "{} of {made} stored", stored.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_of_the_market_mid_burst_loses_nothing_on_the_embedded_broker() {
    // the service's config names the gateway's login; the broker's port is chosen in the test
    let section = format!("[mqtt]\nusers = {{ \"{GW}\" = \"{PASSWORD}\" }}\n");
    burst_with_a_kill(&section, None, (GW.to_string(), PASSWORD.to_owned())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_of_the_market_mid_burst_loses_nothing_on_mosquitto() {
    let Some(url) = gridshare_testkit::service(gridshare_testkit::MQTT_URL, "Mosquitto") else {
        return;
    };
    let login = url
        .strip_prefix("mqtt://")
        .and_then(|r| r.rsplit_once('@'))
        .and_then(|(auth, _)| auth.split_once(':'))
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .unwrap();
    let host = url.rsplit_once('@').unwrap().1.trim_end_matches('/').to_owned();
    let section = format!("[mqtt]\nurl = \"{url}\"\n");
    burst_with_a_kill(&section, Some(format!("mqtt://{host}")), login).await;
}
