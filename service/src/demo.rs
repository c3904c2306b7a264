//! `gridshare demo`: a simulated neighbourhood on the embedded defaults, in one process.
//!
//! - **Homes**: `--homes N` (12 by default), a mix of PV only, PV + battery, PV + battery + EV and
//!   consumers; each has a grid meter. Every home's devices are served by its own simulator over
//!   Modbus TCP on a loopback port, and read by its own gateway (the real `gateway run` code, as
//!   a task), which signs telemetry, trades for the homeowner within limits that differ from home
//!   to home, and answers demand-response events.
//! - **Market**: `gridshare serve` with SQLite and the engine journal in the data directory, the
//!   embedded MQTT broker (a login per gateway), the in-process EVM with the contracts deployed,
//!   and the API on `--listen`. The feeder: a substation, one feeder line, a transformer per eight
//!   homes, each home on its own service line, with fees and limits.
//! - **Clock**: market time runs `--speed` times faster than real time (90 by default: a
//!   15-minute interval in 10 s) and starts at 06:00 UTC of the day, so the sun rises in the first
//!   minute. Gateways and simulators run on the same clock.
//! - **Operator**: every sixth interval the demo, as the grid operator, calls a demand-response
//!   event for the homes of one transformer (each in turn) through the API.
//! - **State**: everything lives in `--data-dir` (a fresh temporary directory by default). The
//!   logins, keys and ports of a neighbourhood are kept in `demo.json` there; starting again with
//!   the same directory resumes from the journal and the database.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gridshare_domain::envelope::GatewayKey;
use gridshare_domain::{GatewayId, NodeId, ParticipantId, Timestamp};
use gridshare_gateway::config::{
    AgentSection, Config as GatewayConfig, Device, DeviceConfig, GatewaySection, MqttSection,
};
use gridshare_gateway::profile::Profile;
use gridshare_gateway::simulate::Simulator;
use gridshare_market::{Clock, wall_clock};
use gridshare_matching_engine::network::NodeConfig;
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_web::auth::{TokenKind, new_token};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::Config;

mod equivocate;

/// The password of every demo login.
pub const PASSWORD: &str = "gridshare-demo";
/// Most homes a demo may have.
pub const MAX_HOMES: usize = 500;
/// Homes per transformer.
const HOMES_PER_TRANSFORMER: usize = 8;
/// Participant ids of the other roles.
const OPERATOR: u64 = 100_001;
const INSTALLER: u64 = 100_002;
const TRADER: u64 = 100_003;
const ADMIN: u64 = 100_004;
/// Feeder nodes: substation, feeder line, transformers from 100, homes from 1000.
const SUBSTATION: u32 = 1;
const FEEDER: u32 = 2;

/// What `gridshare demo` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Homes (1 to [`MAX_HOMES`]); `None`: 12, or as many as the data directory holds.
    pub homes: Option<usize>,
    /// Market seconds per real second.
    pub speed: f64,
    /// Where state is kept; `None`: a fresh temporary directory.
    pub data_dir: Option<PathBuf>,
    /// The dashboard and API.
    pub listen: SocketAddr,
}

/// What kind of home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HomeKind {
    /// Solar only.
    Pv,
    /// Solar and a battery.
    PvBattery,
    /// Solar, a battery and an EV charger.
    PvBatteryEv,
    /// No generation.
    Consumer,
}

impl HomeKind {
    fn of(n: usize) -> Self {
        match n % 4 {
            1 => Self::Pv,
            2 => Self::PvBattery,
            3 => Self::PvBatteryEv,
            _ => Self::Consumer,
        }
    }

    /// Its devices: (name, unit, profile file).
    fn devices(self) -> Vec<(&'static str, u8, &'static str)> {
        let mut d = vec![("grid", 1, "eastron-sdm630.toml")];
        if self != Self::Consumer {
            d.push(("pv", 2, "sunspec-inverter-103.toml"));
        }
        if matches!(self, Self::PvBattery | Self::PvBatteryEv) {
            d.push(("battery", 3, "generic-battery-inverter.toml"));
        }
        if self == Self::PvBatteryEv {
            d.push(("ev", 4, "generic-ev-charger.toml"));
        }
        d
    }
}

/// One home, as kept in `demo.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Home {
    /// Participant and gateway id.
    pub id: u64,
    /// What it has.
    pub kind: HomeKind,
    /// Its feeder node.
    pub node: u32,
    /// The gateway's MQTT password.
    pub mqtt_password: String,
    /// A read-only API key of the home (for scripts and the smoke test).
    pub api_key: String,
    /// The homeowner's limits, µ/kWh and %.
    pub min_sell_price: i64,
    /// See `min_sell_price`.
    pub max_buy_price: i64,
    /// Battery reserve, %.
    pub battery_reserve_percent: u8,
}

/// A demo neighbourhood, as kept in `data_dir/demo.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Neighbourhood {
    /// Its homes.
    pub homes: Vec<Home>,
    /// The embedded broker's port.
    pub mqtt_port: u16,
    /// Logins: user name → role.
    pub logins: BTreeMap<String, String>,
    /// The operator's API key (read, demand response).
    pub operator_key: String,
    /// The trader's API key (read, trade).
    pub trader_key: String,
}

fn random_hex(bytes: usize) -> String {
    let t = new_token(TokenKind::ApiKey);
    // the token's secret part is 64 hex digits of OS randomness
    t.token.rsplit('_').next().unwrap_or_default()[..bytes * 2].to_owned()
}

fn gateway_key() -> Result<GatewayKey, String> {
    for _ in 0..16 {
        let hex = random_hex(32);
        if let Ok(k) = GatewayKey::from_hex(&hex) {
            return Ok(k);
        }
    }
    Err("no gateway key could be made".into())
}

/// The feeder tree for `homes` homes: fees in µ/kWh, capacities per 15-minute interval.
pub fn network(homes: usize) -> Vec<NodeConfig> {
    let transformers = homes.div_ceil(HOMES_PER_TRANSFORMER).max(1);
    let mut nodes = vec![
        NodeConfig {
            id: NodeId(SUBSTATION),
            parent: None,
            capacity: None,
            fee: gridshare_domain::MicroPerKwh(0),
        },
        NodeConfig {
            id: NodeId(FEEDER),
            parent: Some(NodeId(SUBSTATION)),
            capacity: Some(gridshare_domain::Wh(250_000)),
            fee: gridshare_domain::MicroPerKwh(8_000),
        },
    ];
    for t in 0..transformers {
        nodes.push(NodeConfig {
            id: NodeId(100 + t as u32),
            parent: Some(NodeId(FEEDER)),
            capacity: Some(gridshare_domain::Wh(25_000)), // 100 kW
            fee: gridshare_domain::MicroPerKwh(4_000),
        });
    }
    for h in 1..=homes {
        nodes.push(NodeConfig {
            id: NodeId(home_node(h)),
            parent: Some(NodeId(transformer_of(h))),
            capacity: Some(gridshare_domain::Wh(6_000)), // 24 kW service line
            fee: gridshare_domain::MicroPerKwh(2_000),
        });
    }
    nodes
}

fn home_node(h: usize) -> u32 {
    1_000 + h as u32
}

fn transformer_of(h: usize) -> u32 {
    100 + ((h - 1) / HOMES_PER_TRANSFORMER) as u32
}

/// The market service's configuration for a demo.
pub fn service_config(opts: &Options, data_dir: &Path, n: &Neighbourhood) -> Config {
    let mut cfg = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    cfg.http.listen = opts.listen;
    cfg.market.speed = opts.speed;
    cfg.market.horizon = 8;
    cfg.market.engine.network = Some(network(n.homes.len()));
    cfg.mqtt.listen = SocketAddr::from(([127, 0, 0, 1], n.mqtt_port));
    cfg.mqtt.users = n
        .homes
        .iter()
        .map(|h| (h.id.to_string(), h.mqtt_password.clone()))
        .collect();
    cfg.settlement.every_ms = 1_000;
    // an epoch every 4 hours of market time (under 3 minutes at the default speed), uptime
    // counted in periods of twice the gateways' polling period
    cfg.rewards.epoch_minutes = 240;
    let poll_market_s = (poll_period(n.homes.len()).as_secs_f64() * opts.speed).ceil() as i64;
    cfg.rewards.uptime_period_s = (2 * poll_market_s).max(10);
    cfg
}

/// Creates the neighbourhood's participants, logins, keys and gateways in the database, and
/// writes the gateways' keys under `data_dir/gateways/`.
async fn seed(db: &gridshare_storage::Db, data_dir: &Path, homes: usize) -> Result<Neighbourhood, String> {
    let now = wall_clock();
    let err = |e: gridshare_storage::StorageError| e.to_string();
    let mqtt_port = gridshare_free_port()?;
    let mut n = Neighbourhood {
        homes: Vec::with_capacity(homes),
        mqtt_port,
        logins: BTreeMap::new(),
        operator_key: String::new(),
        trader_key: String::new(),
    };
    let hash = gridshare_web::auth::hash_password(PASSWORD).map_err(|e| e.to_string())?;
    let key_for = |participant: u64, scopes: &str, label: &str| {
        let t = new_token(TokenKind::ApiKey);
        let (id, hash, token) = (t.id, t.hash, t.token);
        let scopes = scopes.to_owned();
        let label = label.to_owned();
        let db = db.clone();
        async move {
            let key = gridshare_storage::api_keys::NewKey {
                id: &id,
                participant: ParticipantId(participant),
                token_hash: &hash,
                scopes: &scopes,
                label: &label,
                parent: None,
            };
            gridshare_storage::api_keys::create(&db, &key, now)
                .await
                .map(|()| token)
                .map_err(|e| e.to_string())
        }
    };
    for (id, name, role, node) in [
        (OPERATOR, "Feeder operator", "operator", None),
        (INSTALLER, "SunFit installers", "installer", None),
        (TRADER, "Volt Trading", "trader", Some(FEEDER)),
        (ADMIN, "Administrator", "admin", None),
    ] {
        participants::upsert(
            db,
            &Participant {
                id: ParticipantId(id),
                name: name.into(),
                role: role.into(),
                evm_address: None,
                feeder_node: node,
            },
            now,
        )
        .await
        .map_err(err)?;
        participants::create_user(db, role, &hash, ParticipantId(id), now)
            .await
            .map_err(err)?;
        n.logins.insert(role.to_owned(), role.to_owned());
    }
    n.operator_key = key_for(OPERATOR, "read,demand_response", "demo operator").await?;
    n.trader_key = key_for(TRADER, "read,trade", "demo trader").await?;
    for h in 1..=homes {
        let kind = HomeKind::of(h);
        let id = h as u64;
        participants::upsert(
            db,
            &Participant {
                id: ParticipantId(id),
                name: format!("Home {h}"),
                role: "homeowner".into(),
                evm_address: None,
                feeder_node: Some(home_node(h)),
            },
            now,
        )
        .await
        .map_err(err)?;
        if h <= 3 {
            let user = format!("home{h}");
            participants::create_user(db, &user, &hash, ParticipantId(id), now)
                .await
                .map_err(err)?;
            n.logins.insert(user, "homeowner".into());
        }
        let key = gateway_key()?;
        let dir = data_dir.join("gateways").join(h.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("key.hex"), key.to_hex()).map_err(|e| format!("{}: {e}", dir.display()))?;
        gateways::register(
            db,
            &Gateway {
                id: GatewayId(id),
                owner: ParticipantId(id),
                installer: Some(ParticipantId(INSTALLER)),
                public_key: key.public(),
                feeder_node: NodeId(home_node(h)),
                window: Default::default(),
                revoked_at: None,
            },
            now,
        )
        .await
        .map_err(err)?;
        // the homeowner chose the demo's installer
        gridshare_storage::installers::assign(db, ParticipantId(INSTALLER), ParticipantId(id), ParticipantId(id), now)
            .await
            .map_err(err)?;
        // limits that differ from home to home, within a plausible band, stored as the home's
        // preferences (version 1) as if its owner had set them on the dashboard
        let spread = (h * 7 % 11) as i64;
        let home = Home {
            id,
            kind,
            node: home_node(h),
            mqtt_password: random_hex(12),
            api_key: key_for(id, "read", "demo").await?,
            min_sell_price: 80_000 + spread * 4_000,
            max_buy_price: 240_000 + spread * 6_000,
            battery_reserve_percent: 20 + (h % 3) as u8 * 10,
        };
        gridshare_storage::preferences::save(
            db,
            ParticipantId(id),
            &gridshare_domain::wire::TradingPreferences {
                version: 0,
                min_sell_price: gridshare_domain::MicroPerKwh(home.min_sell_price),
                max_buy_price: gridshare_domain::MicroPerKwh(home.max_buy_price),
                battery_reserve_percent: home.battery_reserve_percent,
            },
            // in market time, where the demo starts
            six_in_the_morning(),
        )
        .await
        .map_err(err)?;
        n.homes.push(home);
    }
    Ok(n)
}

/// What a first start leaves in the data directory while it seeds: a start that finds it knows
/// the seeding before it was cut off (a kill, a power cut) and starts it over.
const SEEDING_MARKER: &str = "demo-seeding";

/// A first start: seeds a new neighbourhood and writes `saved` (`demo.json`), which marks the
/// seeding done. Crash-safe: a marker file is written (and synced) before anything else, and
/// `demo.json` atomically (a temporary file renamed) only once the database holds everything; a
/// start that finds the marker without `demo.json` removes what the cut-off seeding left and
/// seeds again. A data directory that holds a database but neither file is not a demo's, and is
/// left alone.
async fn first_start(data_dir: &Path, saved: &Path, homes: usize) -> Result<Neighbourhood, String> {
    let marker = data_dir.join(SEEDING_MARKER);
    let seeded_here = ["gridshare.db", "gridshare.db-wal", "gridshare.db-shm", "gateways"];
    if marker.exists() {
        tracing::warn!(data_dir = %data_dir.display(), "a first start was cut off; seeding it again");
        for name in seeded_here {
            let path = data_dir.join(name);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
    } else if data_dir.join("gridshare.db").exists() {
        return Err(format!(
            "{} holds a database but no demo.json: it is not a demo's data directory; use another --data-dir",
            data_dir.display()
        ));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    write_synced(&marker, b"seeding\n")?;
    let probe = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    let db = crate::serve::open_db(&probe).await?;
    let n = seed(&db, data_dir, homes).await?;
    db.close().await;
    let text = serde_json::to_string_pretty(&n).map_err(|e| e.to_string())?;
    let partial = saved.with_extension("json.partial");
    write_synced(&partial, text.as_bytes())?;
    std::fs::rename(&partial, saved).map_err(|e| format!("{}: {e}", saved.display()))?;
    sync_dir(data_dir)?;
    std::fs::remove_file(&marker).map_err(|e| format!("{}: {e}", marker.display()))?;
    Ok(n)
}

/// Writes `bytes` to `path` and syncs the file and its directory.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let named = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::create(path).map_err(named)?;
    f.write_all(bytes).map_err(named)?;
    f.sync_all().map_err(named)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn gridshare_free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port for the MQTT broker: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port for the MQTT broker: {e}"))
}

/// 06:00 UTC today, in market time.
fn six_in_the_morning() -> Timestamp {
    let now = wall_clock().0;
    Timestamp(now - now.rem_euclid(86_400_000) + 6 * 3_600_000)
}

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
fn poll_period(homes: usize) -> Duration {
    if homes <= 200 {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(1)
    }
}

/// Starts a home's simulator and gateway (polling every `period`); the gateway stops when `stop`
/// turns true, and the handle returned ends then.
#[allow(clippy::too_many_arguments)] // the home and what it shares with the others, spelled out
async fn start_home(
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
    let dir = data_dir.join("gateways").join(home.id.to_string());
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
    }))
}

/// Reads the whole Prometheus text of the service.
async fn metrics(client: &reqwest::Client, base: &str) -> BTreeMap<String, f64> {
    let Ok(resp) = client.get(format!("{base}/metrics")).send().await else {
        return BTreeMap::new();
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The operator's side of the demo: one demand-response program, and every sixth interval an
/// event for the homes of one transformer (each in turn).
async fn operator(
    client: reqwest::Client,
    base: String,
    key: String,
    homes: usize,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let auth = format!("Bearer {key}");
    let program = client
        .post(format!("{base}/api/v1/dr/programs"))
        .header("Authorization", &auth)
        .json(&serde_json::json!({"name": "Evening peak", "description": "Demo: relieve a transformer"}))
        .send()
        .await;
    let made = match program {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok().and_then(|v| v["id"].as_u64()),
        _ => None,
    };
    // on a resumed demo the program exists already
    let program_id = match made {
        Some(id) => id,
        None => match list_first_program(&client, &base, &auth).await {
            Some(id) => id,
            None => {
                tracing::warn!("the demo operator could not make a demand-response program");
                return;
            }
        },
    };
    let interval_ms = 15 * 60_000;
    let mut last_called = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let now = clock.now().0;
        let this = now - now.rem_euclid(interval_ms);
        let n = this / interval_ms;
        if n % 6 != 0 || last_called == Some(n) {
            continue;
        }
        last_called = Some(n);
        let start = this + interval_ms;
        let t = n as usize / 6 % homes.div_ceil(HOMES_PER_TRANSFORMER).max(1);
        let transformer = 100 + t as u32;
        let sites: Vec<u64> = (1..=homes)
            .filter(|h| transformer_of(*h) == transformer)
            .map(|h| h as u64)
            .collect();
        let event = serde_json::json!({
            "program_id": program_id,
            "priority": 1,
            "targets": {"kind": "sites", "gateways": sites},
            "intervals": [{"id": 0, "start": start, "duration_minutes": 15,
                           "signals": [{"signal": "load_shed", "w": 1_500}]}],
        });
        match client
            .post(format!("{base}/api/v1/dr/events"))
            .header("Authorization", &auth)
            .json(&event)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                tracing::info!(transformer, start = %Timestamp(start).to_rfc3339(), "demand-response event called");
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(%status, body, "the demand-response event was refused");
            }
            Err(e) => tracing::warn!(error = %e, "calling a demand-response event"),
        }
    }
}

async fn list_first_program(client: &reqwest::Client, base: &str, auth: &str) -> Option<u64> {
    let v: serde_json::Value = client
        .get(format!("{base}/api/v1/dr/programs"))
        .header("Authorization", auth)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v.as_array()?.first()?["id"].as_u64()
}

/// Runs the demo until `shutdown` resolves.
#[allow(clippy::print_stdout)] // the demo talks to its user on the terminal
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    if let Some(h) = opts.homes
        && (h == 0 || h > MAX_HOMES)
    {
        return Err(format!("--homes must be 1 to {MAX_HOMES}, got {h}"));
    }
    if !(opts.speed >= 1.0 && opts.speed <= 10_000.0) {
        return Err(format!("--speed must be 1 to 10000, got {}", opts.speed));
    }
    let data_dir = match &opts.data_dir {
        Some(d) => d.clone(),
        None => {
            let d = std::env::temp_dir().join(format!("gridshare-demo-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            d
        }
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("data directory {}: {e}", data_dir.display()))?;
    // a taken port is named before anything else starts
    drop(std::net::TcpListener::bind(opts.listen).map_err(|e| {
        format!(
            "cannot listen on {}: {e} (another program has the port: choose another with --listen)",
            opts.listen
        )
    })?);

    let saved = data_dir.join("demo.json");
    let n: Neighbourhood = match std::fs::read_to_string(&saved) {
        Ok(text) => {
            let n: Neighbourhood = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", saved.display()))?;
            if opts.homes.is_some_and(|h| h != n.homes.len()) {
                return Err(format!(
                    "{} holds a neighbourhood of {} homes; start it without --homes, or use another --data-dir",
                    data_dir.display(),
                    n.homes.len()
                ));
            }
            println!("resuming the neighbourhood in {}", data_dir.display());
            n
        }
        Err(_) => first_start(&data_dir, &saved, opts.homes.unwrap_or(12)).await?,
    };
    let mut cfg = service_config(&opts, &data_dir, &n);
    cfg.validate().map_err(|e| e.to_string())?;

    // the service reads the same anchor (data_dir/clock.json), so both keep one market time
    let clock = crate::serve::start_clock(&cfg, Some(six_in_the_morning()))?;
    // reward epochs count from the hour the demo's market time first started
    let origin = crate::serve::market_origin(&cfg.data_dir).unwrap_or_else(|| clock.now());
    cfg.rewards.genesis = Some(Timestamp(origin.0 - origin.0.rem_euclid(3_600_000)).to_rfc3339());
    cfg.validate().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut service = {
        let mut stop = stop_rx.clone();
        let cfg = cfg.clone();
        tokio::spawn(crate::serve::serve(cfg, Some(six_in_the_morning()), async move {
            let _ = stop.wait_for(|s| *s).await;
        }))
    };
    let base = format!("http://{}", opts.listen);
    // reqwest is built with rustls and no default crypto provider (see the settlement crate)
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    // wait for the API
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if service.is_finished() {
            return match service.await {
                Ok(Err(e)) => Err(e),
                _ => Err("the market service stopped while starting".into()),
            };
        }
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the market service did not come up within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let traffic = std::sync::Arc::new(gridshare_gateway::run::Traffic::default());
    let mut gateways = Vec::with_capacity(n.homes.len());
    for home in &n.homes {
        gateways.push(
            start_home(
                home,
                &data_dir,
                n.mqtt_port,
                opts.speed,
                poll_period(n.homes.len()),
                &clock,
                stop_rx.clone(),
                &traffic,
            )
            .await?,
        );
    }
    // one home's gateway is made to equivocate a while later: caught, stopped and slashed
    if let Some(liar) = n.homes.last() {
        let db = crate::serve::open_db(&cfg).await?;
        let (liar, dir, port, stop) = (liar.clone(), data_dir.clone(), n.mqtt_port, stop_rx.clone());
        tokio::spawn(async move { equivocate::run(db, liar, &dir, port, stop).await });
    }
    tokio::spawn(operator(
        client.clone(),
        base.clone(),
        n.operator_key.clone(),
        n.homes.len(),
        clock.clone(),
        stop_rx.clone(),
    ));

    let kinds = |k: HomeKind| n.homes.iter().filter(|h| h.kind == k).count();
    println!();
    println!(
        "GridShare demo: {} homes ({} PV, {} PV + battery, {} PV + battery + EV, {} consumers)",
        n.homes.len(),
        kinds(HomeKind::Pv),
        kinds(HomeKind::PvBattery),
        kinds(HomeKind::PvBatteryEv),
        kinds(HomeKind::Consumer)
    );
    println!("  dashboard and API   {base}/   (API docs: {base}/docs)");
    println!("  logins (password \"{PASSWORD}\"):");
    for (user, role) in &n.logins {
        println!("    {user:<10} {role}");
    }
    println!(
        "  data                {} (start again with --data-dir to resume)",
        data_dir.display()
    );
    println!(
        "  market clock        {}× real time: a 15-minute interval every {:.0} s",
        opts.speed,
        900.0 / opts.speed
    );
    println!("Ctrl-C stops.\n");

    // progress on the terminal until asked to stop
    let progress = {
        let client = client.clone();
        let base = base.clone();
        let clock = clock.clone();
        let traffic = traffic.clone();
        tokio::spawn(async move {
            let mut last = String::new();
            // gateway messages at the last report, and since when that number has not moved
            let mut arrived = (0.0, tokio::time::Instant::now());
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let m = metrics(&client, &base).await;
                let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
                let line = format!(
                    "market {} · {} gate closures · {} trades ({:.1} kWh) · {} batches settled on chain · {} gateway messages",
                    clock
                        .now()
                        .to_datetime()
                        .map(|d| d.format("%H:%M").to_string())
                        .unwrap_or_default(),
                    get("gridshare_gate_closures_total"),
                    get("gridshare_trades_total"),
                    get("gridshare_traded_wh_total") / 1_000.0,
                    get("gridshare_settlement_batches_total{status=\"confirmed\"}"),
                    m.iter()
                        .filter(|(k, _)| k.starts_with("gridshare_messages_in_total"))
                        .map(|(_, v)| v)
                        .sum::<f64>(),
                );
                let messages: f64 = m
                    .iter()
                    .filter(|(k, _)| k.starts_with("gridshare_messages_in_total"))
                    .map(|(_, v)| v)
                    .sum();
                let waiting = traffic.made().saturating_sub(traffic.receipted());
                let line = if messages > arrived.0 {
                    arrived = (messages, tokio::time::Instant::now());
                    format!("{line} ({waiting} waiting in outboxes)")
                } else {
                    // say so rather than print gate closures over an idle market
                    format!(
                        "{line} · NO gateway message for {} s ({waiting} waiting in outboxes): trading waits for them",
                        arrived.1.elapsed().as_secs()
                    )
                };
                if line != last {
                    println!("{line}");
                    last = line;
                }
            }
        })
    };

    let outcome = |r: Result<Result<(), String>, tokio::task::JoinError>| match r {
        Ok(r) => r,
        Err(e) => Err(format!("the market service failed: {e}")),
    };
    let early = tokio::select! {
        () = shutdown => None,
        r = &mut service => Some(outcome(r)),
    };
    progress.abort();
    println!("stopping…");
    // the gateways say goodbye, then the service drains its journal and recorder and stops
    let _ = stop_tx.send(true);
    for g in gateways {
        let _ = tokio::time::timeout(Duration::from_secs(10), g).await;
    }
    println!(
        "gateways made {} messages; the market receipted {} (stored, or refused for good); {} wait in their outboxes for the next start",
        traffic.made(),
        traffic.receipted(),
        traffic.made().saturating_sub(traffic.receipted())
    );
    match early {
        Some(r) => r,
        None => outcome(service.await),
    }
}
