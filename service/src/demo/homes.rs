//! One demo home: its devices served by a simulator over Modbus TCP and read by the real gateway
//! code, as a task.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gridshare_gateway::config::{
    AgentSection, Config as GatewayConfig, Device, DeviceConfig, GatewaySection, MqttSection,
};
use gridshare_gateway::profile::Profile;
use gridshare_gateway::simulate::Simulator;
use gridshare_market::Clock;
use tokio::sync::watch;

use super::Home;

fn hardware_dir() -> PathBuf {
    // next to the binary's source tree when run with cargo, else ./hardware
    let candidates = [
        std::env::var_os("GRIDSHARE_HARDWARE").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware")),
        Some(PathBuf::from("hardware")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("eastron-sdm630.toml").exists())
        .unwrap_or_else(|| PathBuf::from("hardware"))
}

/// How often each gateway polls its devices and sends telemetry, in real time. Up to 200 homes,
/// every half second: 45 s of market time at the default 90×, so meters are read close to every
/// interval's start and end. Above that, every second, the fastest a real gateway may poll
/// (`telemetry_period_s` ≥ 1): at twice that rate 500 homes sent 1,000 messages a second, more
/// than this machine's market stores while also running every home's gateway and devices, and
/// orders waited behind telemetry until their interval had closed.
pub(super) fn poll_period(homes: usize) -> Duration {
    if homes <= 200 {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(1)
    }
}

/// The file, in a home's directory, its meters' energy counters are kept in across restarts.
const COUNTERS_FILE: &str = "meter-counters.json";

/// How often the counters are saved while the demo runs (and once more when it stops).
const COUNTERS_EVERY: Duration = Duration::from_secs(5);

type Counters = std::collections::BTreeMap<u8, (f64, f64)>;

fn load_counters(path: &Path) -> Result<Option<Counters>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn save_counters(sim: &Simulator, path: &Path) {
    let text = match serde_json::to_string(&sim.energy_counters()) {
        Ok(t) => t,
        Err(e) => return tracing::warn!(error = %e, "saving the meters' counters"),
    };
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(file = %path.display(), error = %e, "saving the meters' counters");
    }
}

/// Starts a home's simulator and gateway (polling every `period`); the gateway stops when `stop`
/// turns true, and the handle returned ends then.
#[allow(clippy::too_many_arguments)] // the home and what it shares with the others, spelled out
pub(super) async fn start_home(
    home: &Home,
    data_dir: &Path,
    mqtt_port: u16,
    speed: f64,
    period: Duration,
    clock: &Clock,
    stop: watch::Receiver<bool>,
    traffic: &std::sync::Arc<gridshare_gateway::run::Traffic>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let hw = hardware_dir();
    let sim = Simulator::new(clock.now().0 as f64 / 1_000.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("home {}: simulator: {e}", home.id))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut devices = Vec::new();
    for (name, unit, file) in home.kind.devices() {
        let path = hw.join(file);
        let profile = Profile::load(&path).map_err(|e| e.to_string())?;
        sim.add(unit, profile.clone());
        devices.push(Device {
            config: DeviceConfig {
                name: name.into(),
                profile: path,
                host: Some("127.0.0.1".into()),
                port,
                serial: None,
                baud: 9_600,
                parity: Default::default(),
                unit: Some(unit),
                timeout_ms: 2_000,
            },
            profile,
        });
    }
    let dir = data_dir.join("gateways").join(home.id.to_string());
    // the meters count on from where they were when the demo stopped, as real ones do
    let counters = dir.join(COUNTERS_FILE);
    match load_counters(&counters) {
        Ok(Some(c)) => sim.restore_energy_counters(&c),
        Ok(None) => {}
        Err(e) => tracing::warn!(home = home.id, error = %e, "the meters start from zero"),
    }
    {
        let sim = sim.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = sim.serve(listener, Duration::from_millis(200), speed, stopped).await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
    }
    {
        // and every few seconds, so that a kill loses no more than that
        let (sim, mut stop, counters) = (sim.clone(), stop.clone(), counters.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(COUNTERS_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => save_counters(&sim, &counters),
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }
    let key_file = dir.join("key.hex");
    let key = gridshare_gateway::run::load_key(&key_file)?;
    let cfg = GatewayConfig {
        gateway: GatewaySection {
            id: home.id,
            key_file,
            data_dir: dir.join("data"),
            telemetry_period_s: 1,
        },
        mqtt: MqttSection {
            url: format!("mqtt://127.0.0.1:{mqtt_port}"),
            ca_file: None,
            username: Some(home.id.to_string()),
            password: Some(home.mqtt_password.clone()),
            // as commissioning tells an installer: the key the market signs downlinks with
            market_key: Some(crate::signing::market_key(data_dir)?.public().to_hex()),
            market_key_file: None,
        },
        devices: devices.iter().map(|d| d.config.clone()).collect(),
        agent: AgentSection {
            enabled: true,
            min_sell_price: home.min_sell_price,
            max_buy_price: home.max_buy_price,
            battery_reserve_percent: home.battery_reserve_percent,
            ev_ready_by_hour: Some(7),
            ..AgentSection::default()
        },
    };
    let options = gridshare_gateway::run::Options {
        clock: {
            let clock = clock.clone();
            std::sync::Arc::new(move || clock.now())
        },
        period: Some(period),
        // one count for every home: the demo reports the sums
        traffic: traffic.clone(),
        ..Default::default()
    };
    let id = home.id;
    Ok(tokio::spawn(async move {
        if let Err(e) = gridshare_gateway::run::run_with(cfg, devices, key, stop, options).await {
            tracing::error!(home = id, error = %e, "gateway stopped");
        }
        // the demo waits for this task when it stops: the counters as they were last
        save_counters(&sim, &counters);
    }))
}
