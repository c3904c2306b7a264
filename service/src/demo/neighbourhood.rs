//! The demo's neighbourhood: its homes, the feeder tree they hang on, the service configuration
//! for them, and the first start that seeds the database (crash-safe) and writes `demo.json`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use gridshare_domain::envelope::GatewayKey;
use gridshare_domain::{GatewayId, NodeId, ParticipantId, Timestamp};
use gridshare_market::wall_clock;
use gridshare_matching_engine::network::NodeConfig;
use gridshare_storage::gateways::{self, Gateway};
use gridshare_storage::participants::{self, Participant};
use gridshare_web::auth::{TokenKind, new_token};
use serde::{Deserialize, Serialize};

use super::homes::poll_period;
use super::{ADMIN, FEEDER, HOMES_PER_TRANSFORMER, INSTALLER, OPERATOR, Options, PASSWORD, SUBSTATION, TRADER};
use crate::config::Config;

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
    pub(super) fn devices(self) -> Vec<(&'static str, u8, &'static str)> {
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

pub(super) fn transformer_of(h: usize) -> u32 {
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
    // proposals decided in minutes, not days (fixed when the contracts are deployed)
    cfg.governance = super::community::settings();
    // an epoch every 4 hours of market time (under 3 minutes at the default speed), uptime
    // counted in periods of twice the gateways' polling period
    cfg.rewards.epoch_minutes = 240;
    let poll_market_s = (poll_period(n.homes.len()).as_secs_f64() * opts.speed).ceil() as i64;
    let period_s = (2 * poll_market_s).max(10);
    cfg.rewards.uptime_period_s = period_s + (5 - period_s % 5) % 5; // whole 5-second slices
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
                custody_address: None,
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
    n.operator_key = key_for(OPERATOR, "read,demand_response,govern", "demo operator").await?;
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
                custody_address: None,
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
            api_key: key_for(id, "read,vote", "demo").await?,
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
pub(super) async fn first_start(data_dir: &Path, saved: &Path, homes: usize) -> Result<Neighbourhood, String> {
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

pub(super) fn gridshare_free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port for the MQTT broker: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port for the MQTT broker: {e}"))
}

/// 06:00 UTC today, in market time.
pub(super) fn six_in_the_morning() -> Timestamp {
    let now = wall_clock().0;
    Timestamp(now - now.rem_euclid(86_400_000) + 6 * 3_600_000)
}
