//! The gateway's configuration: one TOML file, unknown keys refused. See
//! `gateway/gateway.example.toml` for every key with its meaning.
//!
//! A device is polled over Modbus (the default), or pushes its readings: `source = "p1"` (the
//! smart meter's P1 port on `serial`) or `source = "mqtt"` (JSON on the home's own broker at
//! `broker`, under `topic`), with a profile from `hardware/p1/` or `hardware/mqtt/`
//! ([`crate::push`]). [`Config::load_all`] gives both kinds; [`Config::load`] the Modbus ones.
//!
//! Profile paths are relative to the configuration file. Loading checks the values too (a
//! telemetry period of 1–5 s, unique device names, a limit within the homeowner's range) and
//! every error names the file and the line and key, or the device.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::modbus::{Bus, Endpoint, Link, Parity};
use crate::profile::{Profile, ProfileError};
pub use crate::push::PushDeviceConfig;
use crate::push::{PushDevice, PushProfile, Source};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This gateway.
    pub gateway: GatewaySection,
    /// The market's MQTT broker.
    pub mqtt: MqttSection,
    /// Devices to poll.
    #[serde(default, rename = "devices")]
    pub devices: Vec<DeviceConfig>,
    /// The homeowner's limits for the trading agent.
    #[serde(default)]
    pub agent: AgentSection,
}

/// This gateway.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Its id, as commissioned in the market.
    pub id: u64,
    /// File holding its secp256k1 private key (64 hex digits), readable by the gateway only.
    pub key_file: PathBuf,
    /// Where the outbox and state live.
    pub data_dir: PathBuf,
    /// Seconds between telemetry samples of each device (1–5).
    #[serde(default = "default_period")]
    pub telemetry_period_s: u64,
}

const fn default_period() -> u64 {
    2
}

/// The market's broker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// `mqtt://host:port`, or `mqtts://host:port` for TLS (port 8883 by default).
    pub url: String,
    /// With `mqtts://`: CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// User name.
    pub username: Option<String>,
    /// Password (better: the environment variable `GRIDSHARE_GATEWAY_MQTT_PASSWORD`).
    pub password: Option<String>,
    /// The market's public key (hex, from commissioning): only downlinks it signed are acted on.
    /// Without it every downlink is refused.
    #[serde(default)]
    pub market_key: Option<String>,
    /// Instead of `market_key`: a file holding it (as `gridshare market-key` prints it), read at
    /// start.
    #[serde(default)]
    pub market_key_file: Option<PathBuf>,
}

impl MqttSection {
    /// The market's public key, if configured (`market_key`, or read from `market_key_file`).
    /// Errors name the key or the file.
    pub fn market_key(&self) -> Result<Option<gridshare_domain::envelope::MarketPublicKey>, String> {
        use gridshare_domain::envelope::MarketPublicKey;
        match (&self.market_key, &self.market_key_file) {
            (Some(_), Some(_)) => Err("mqtt: give market_key or market_key_file, not both".into()),
            (Some(k), None) => MarketPublicKey::from_hex(k)
                .map(Some)
                .map_err(|e| format!("mqtt.market_key: {e}")),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("mqtt.market_key_file {}: {e}", path.display()))?;
                MarketPublicKey::from_hex(text.trim())
                    .map(Some)
                    .map_err(|e| format!("mqtt.market_key_file {}: {e}", path.display()))
            }
            (None, None) => Ok(None),
        }
    }
}

/// One device.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Name, unique on this gateway (used in telemetry).
    pub name: String,
    /// Its profile (relative to the configuration file).
    pub profile: PathBuf,
    /// Modbus TCP: the device's (or its RS-485 bridge's) host name or address.
    pub host: Option<String>,
    /// Modbus TCP port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Modbus RTU: the serial device (e.g. `/dev/ttyUSB0`); instead of `host`.
    pub serial: Option<PathBuf>,
    /// Serial speed, bits per second.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Serial parity: `none` (8N1, the default), `even` or `odd`.
    #[serde(default)]
    pub parity: Parity,
    /// Unit id; default the profile's.
    pub unit: Option<u8>,
    /// Timeout per request, ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

const fn default_port() -> u16 {
    502
}

const fn default_baud() -> u32 {
    9_600
}

const fn default_timeout() -> u64 {
    2_000
}

/// The file as written: [`Config`] with every kind of device in `devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gateway: GatewaySection,
    mqtt: MqttSection,
    #[serde(default)]
    devices: Vec<FileDevice>,
    #[serde(default)]
    agent: AgentSection,
}

/// One `[[devices]]` entry as written: the keys of [`DeviceConfig`] and of
/// [`PushDeviceConfig`], with `source` saying which apply.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDevice {
    name: String,
    profile: PathBuf,
    #[serde(default = "modbus")]
    source: Source,
    host: Option<String>,
    port: Option<u16>,
    serial: Option<PathBuf>,
    baud: Option<u32>,
    parity: Option<Parity>,
    unit: Option<u8>,
    timeout_ms: Option<u64>,
    broker: Option<String>,
    topic: Option<String>,
    stale_after_s: Option<u64>,
}

const fn modbus() -> Source {
    Source::Modbus
}

impl FileDevice {
    /// The keys given that `source` does not use.
    fn foreign_keys(&self) -> Vec<&'static str> {
        let given = |present: bool, key: &'static str| present.then_some(key);
        let modbus = [
            given(self.host.is_some(), "host"),
            given(self.port.is_some(), "port"),
            given(self.parity.is_some(), "parity"),
            given(self.unit.is_some(), "unit"),
            given(self.timeout_ms.is_some(), "timeout_ms"),
        ];
        let mqtt = [
            given(self.broker.is_some(), "broker"),
            given(self.topic.is_some(), "topic"),
        ];
        let serial = [
            given(self.serial.is_some(), "serial"),
            given(self.baud.is_some(), "baud"),
        ];
        let stale = [given(self.stale_after_s.is_some(), "stale_after_s")];
        let foreign: Vec<Option<&'static str>> = match self.source {
            Source::Modbus => mqtt.into_iter().chain(stale).collect(),
            Source::P1 => modbus.into_iter().chain(mqtt).collect(),
            Source::Mqtt => modbus.into_iter().chain(serial).collect(),
        };
        foreign.into_iter().flatten().collect()
    }
}

/// Devices of both kinds, their profiles loaded, as [`Config::load_all`] gives them.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration (its `devices` are the Modbus ones).
    pub config: Config,
    /// The Modbus devices.
    pub devices: Vec<Device>,
    /// The devices that push their readings (P1, MQTT).
    pub pushed: Vec<PushDevice>,
}

/// The homeowner's limits for the trading agent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// Trade at all.
    pub enabled: bool,
    /// Never sell below, µ/kWh.
    pub min_sell_price: i64,
    /// Never buy above, µ/kWh.
    pub max_buy_price: i64,
    /// Battery state of charge kept for the home, %.
    pub battery_reserve_percent: u8,
    /// EV ready by this local hour (0–23), if any.
    pub ev_ready_by_hour: Option<u8>,
    /// Local time's offset from UTC, minutes (for the ready-by hour and the sun).
    pub utc_offset_minutes: i64,
    /// Smallest order worth sending, Wh.
    pub min_order_wh: i64,
    /// The market's zone for this home.
    pub zone: u32,
    /// The market's delivery interval, minutes (5, 15 or 60).
    pub interval_minutes: i64,
    /// The market's gate closure, minutes before an interval starts.
    pub gate_closure_minutes: i64,
    /// The market's price tick, µ/kWh.
    pub price_tick: i64,
}

impl Default for AgentSection {
    fn default() -> Self {
        Self {
            enabled: false,
            min_sell_price: 80_000,
            max_buy_price: 300_000,
            battery_reserve_percent: 20,
            ev_ready_by_hour: None,
            utc_offset_minutes: 0,
            min_order_wh: 10,
            zone: 1,
            interval_minutes: 15,
            gate_closure_minutes: 5,
            price_tick: 1_000,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for the schema (the message names line, column and key).
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value that makes no sense.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A device's profile.
    #[error("config {path}: device {device:?}: {source}")]
    Profile {
        /// The file.
        path: PathBuf,
        /// The device.
        device: String,
        /// The profile's error.
        source: ProfileError,
    },
}

/// A device with its profile loaded.
#[derive(Debug, Clone)]
pub struct Device {
    /// Its configuration.
    pub config: DeviceConfig,
    /// Its profile.
    pub profile: Profile,
}

impl Device {
    /// The unit id to use.
    pub fn unit(&self) -> u8 {
        self.config.unit.unwrap_or(self.profile.device.default_unit)
    }

    /// The timeout per request.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    /// Where the device is; a host name is looked up. The error names the device and the host.
    pub async fn endpoint(&self) -> Result<Endpoint, EndpointError> {
        let c = &self.config;
        match (&c.host, &c.serial) {
            (Some(host), None) => {
                let addr: Option<SocketAddr> = tokio::net::lookup_host((host.as_str(), c.port))
                    .await
                    .map_err(|source| EndpointError::Lookup {
                        device: c.name.clone(),
                        host: host.clone(),
                        port: c.port,
                        source,
                    })?
                    .next();
                addr.map(Endpoint::Tcp).ok_or_else(|| EndpointError::NoAddress {
                    device: c.name.clone(),
                    host: host.clone(),
                    port: c.port,
                })
            }
            (None, Some(path)) => Ok(Endpoint::Serial {
                path: path.clone(),
                baud: c.baud,
                parity: c.parity,
            }),
            _ => Err(EndpointError::NoTransport { device: c.name.clone() }),
        }
    }
}

/// A device that cannot be reached as configured.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Its host name could not be looked up.
    #[error("device {device:?}: {host}:{port}: {source}")]
    Lookup {
        /// The device.
        device: String,
        /// The host name.
        host: String,
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// Its host name resolves to no address.
    #[error("device {device:?}: {host}:{port}: no address")]
    NoAddress {
        /// The device.
        device: String,
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
    /// Neither or both of `host` and `serial` (a configuration that was not loaded through
    /// [`Config::load`], which refuses it).
    #[error("device {device:?}: give either host or serial")]
    NoTransport {
        /// The device.
        device: String,
    },
}

/// A link to every device, in order. Devices on one endpoint (units on one serial line, or
/// behind one RS-485 bridge) share one [`Bus`], so their requests take turns.
pub async fn links(devices: &[Device], min_gap: Duration) -> Result<Vec<Link>, EndpointError> {
    let mut buses: Vec<Bus> = Vec::new();
    let mut links = Vec::with_capacity(devices.len());
    for d in devices {
        let endpoint = d.endpoint().await?;
        let bus = match buses.iter().find(|b| *b.endpoint() == endpoint) {
            Some(b) => b.clone(),
            None => {
                let b = Bus::new(endpoint, min_gap);
                buses.push(b.clone());
                b
            }
        };
        links.push(bus.link(d.unit(), d.timeout()));
    }
    Ok(links)
}

impl Config {
    /// Reads and checks a configuration file, loading the Modbus devices' profiles; devices
    /// that push their readings are checked and left out (see [`Config::load_all`]).
    pub fn load(path: &Path) -> Result<(Self, Vec<Device>), ConfigError> {
        Self::load_all(path).map(|l| (l.config, l.devices))
    }

    /// Reads and checks a configuration file, loading every device's profile.
    pub fn load_all(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: File = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut cfg = Self {
            gateway: file.gateway,
            mqtt: file.mqtt,
            devices: Vec::new(),
            agent: file.agent,
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        if !(1..=5).contains(&cfg.gateway.telemetry_period_s) {
            return Err(invalid(format!(
                "gateway.telemetry_period_s: 1 to 5 seconds, got {}",
                cfg.gateway.telemetry_period_s
            )));
        }
        gridshare_domain::topics::Broker::parse(&cfg.mqtt.url).map_err(|e| invalid(format!("mqtt.url: {e}")))?;
        // a key file is read at start (the market's set-up may write it after this check)
        if cfg.mqtt.market_key_file.is_none() || cfg.mqtt.market_key.is_some() {
            cfg.mqtt.market_key().map_err(invalid)?;
        }
        if let Some(ca) = &cfg.mqtt.ca_file {
            gridshare_domain::topics::tls::client_config(Some(ca))
                .map_err(|e| invalid(format!("mqtt.ca_file: {e}")))?;
        }
        let a = &cfg.agent;
        if a.min_sell_price < 0 || a.max_buy_price < 0 {
            return Err(invalid("agent: prices must not be negative".into()));
        }
        if a.battery_reserve_percent > 100 {
            return Err(invalid(format!(
                "agent.battery_reserve_percent: 0 to 100, got {}",
                a.battery_reserve_percent
            )));
        }
        if a.ev_ready_by_hour.is_some_and(|h| h > 23) {
            return Err(invalid("agent.ev_ready_by_hour: 0 to 23".into()));
        }
        if a.min_sell_price > a.max_buy_price {
            return Err(invalid(format!(
                "agent: min_sell_price {} is above max_buy_price {}: the home would buy its own energy back at a loss",
                a.min_sell_price, a.max_buy_price
            )));
        }
        if a.utc_offset_minutes.abs() > 14 * 60 {
            return Err(invalid("agent.utc_offset_minutes: -840 to 840".into()));
        }
        if a.min_order_wh < 1 || a.price_tick < 1 || !(0..=a.interval_minutes * 4).contains(&a.gate_closure_minutes) {
            return Err(invalid(
                "agent: min_order_wh and price_tick must be at least 1, gate_closure_minutes 0 to 4 intervals".into(),
            ));
        }
        gridshare_domain::IntervalLength::from_minutes(a.interval_minutes)
            .map_err(|e| invalid(format!("agent.interval_minutes: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut names = std::collections::HashSet::new();
        let mut devices = Vec::new();
        let mut pushed = Vec::new();
        for d in file.devices {
            if d.name.is_empty() || !names.insert(d.name.clone()) {
                return Err(invalid(format!(
                    "devices: names must be unique and not empty ({:?})",
                    d.name
                )));
            }
            if let Some(key) = d.foreign_keys().first() {
                return Err(invalid(format!(
                    "device {:?}: {key} is not a key of a {:?} device",
                    d.name, d.source
                )));
            }
            let profile_error = |source| ConfigError::Profile {
                path: path.to_owned(),
                device: d.name.clone(),
                source,
            };
            if d.source == Source::Modbus {
                let c = DeviceConfig {
                    name: d.name.clone(),
                    profile: d.profile.clone(),
                    host: d.host.clone(),
                    port: d.port.unwrap_or(default_port()),
                    serial: d.serial.clone(),
                    baud: d.baud.unwrap_or(default_baud()),
                    parity: d.parity.unwrap_or_default(),
                    unit: d.unit,
                    timeout_ms: d.timeout_ms.unwrap_or(default_timeout()),
                };
                check_modbus(&c).map_err(invalid)?;
                let profile = Profile::load(&base.join(&c.profile)).map_err(profile_error)?;
                cfg.devices.push(c.clone());
                devices.push(Device { config: c, profile });
                continue;
            }
            let c = PushDeviceConfig {
                name: d.name.clone(),
                profile: d.profile.clone(),
                serial: d.serial.clone(),
                baud: d.baud.unwrap_or(crate::push::p1::BAUD),
                broker: d.broker.clone(),
                topic: d.topic.clone(),
                stale_after: Duration::from_secs(d.stale_after_s.unwrap_or(match d.source {
                    Source::P1 => 10,
                    _ => 60,
                })),
            };
            check_push(&c, d.source).map_err(invalid)?;
            let profile = PushProfile::load(&base.join(&c.profile)).map_err(profile_error)?;
            if profile.device.source != d.source {
                return Err(invalid(format!(
                    "device {:?}: its profile is for a {:?} device, not {:?}",
                    d.name, profile.device.source, d.source
                )));
            }
            pushed.push(PushDevice { config: c, profile });
        }
        Ok(Loaded {
            config: cfg,
            devices,
            pushed,
        })
    }
}

/// The values of a Modbus device's keys.
fn check_modbus(d: &DeviceConfig) -> Result<(), String> {
    if d.host.is_some() == d.serial.is_some() {
        return Err(format!(
            "device {:?}: give either host (Modbus TCP) or serial (Modbus RTU), not {}",
            d.name,
            if d.host.is_some() { "both" } else { "neither" }
        ));
    }
    if !(300..=1_000_000).contains(&d.baud) {
        return Err(format!("device {:?}: baud 300 to 1000000, got {}", d.name, d.baud));
    }
    if !(100..=30_000).contains(&d.timeout_ms) {
        return Err(format!(
            "device {:?}: timeout_ms 100 to 30000, got {}",
            d.name, d.timeout_ms
        ));
    }
    Ok(())
}

/// The values of a pushing device's keys.
fn check_push(d: &PushDeviceConfig, source: Source) -> Result<(), String> {
    if !(1..=3_600).contains(&d.stale_after.as_secs()) {
        return Err(format!(
            "device {:?}: stale_after_s 1 to 3600, got {}",
            d.name,
            d.stale_after.as_secs()
        ));
    }
    match source {
        Source::P1 => {
            if d.serial.is_none() {
                return Err(format!(
                    "device {:?}: a P1 device needs serial (its P1 cable's line)",
                    d.name
                ));
            }
            if !(300..=1_000_000).contains(&d.baud) {
                return Err(format!("device {:?}: baud 300 to 1000000, got {}", d.name, d.baud));
            }
        }
        Source::Mqtt => {
            let broker = d
                .broker
                .as_deref()
                .ok_or_else(|| format!("device {:?}: an MQTT device needs broker (the home's broker)", d.name))?;
            gridshare_domain::topics::Broker::parse(broker).map_err(|e| format!("device {:?}: broker: {e}", d.name))?;
            match d.topic.as_deref() {
                Some(t) if !t.is_empty() && !t.contains(['+', '#']) => {}
                _ => {
                    return Err(format!(
                        "device {:?}: an MQTT device needs topic (its own, with no wildcards)",
                        d.name
                    ));
                }
            }
        }
        Source::Modbus => {}
    }
    Ok(())
}
