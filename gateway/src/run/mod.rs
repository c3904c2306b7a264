//! The gateway at work (`gateway run`): polls its devices every telemetry period, seals one
//! telemetry envelope per cycle with every device's sample, puts it in the on-disk [`Outbox`],
//! and sends the outbox to the broker in order, one message at a time, removing each only when
//! the broker has acknowledged it (QoS 1). While the broker is unreachable the outbox fills and
//! polling goes on; a restart resumes from the outbox and the saved sequence number.
//!
//! Devices that push their readings (the P1 port, MQTT devices on the home's broker) have
//! readers of their own ([`crate::push`]) beside the poller, which samples their latest values
//! with the Modbus devices' ([`run_all`]).
//!
//! Demand response: events arrive on the gateway's `dr/event` topic and are carried out by the
//! [`crate::dr::Controller`] at once and then after each poll (ramping one step per cycle); its
//! reports go through the outbox like telemetry.
//!
//! Presence: the gateway publishes a signed `online` (retained) on its status topic when it
//! connects, and the broker its signed `offline`, sealed at the same instant, when the connection
//! drops (last will).
//!
//! ```text
//!                        every telemetry period
//!                                  |
//!  devices    <--- Modbus --->  +--v-------------------------+
//!  (meters, inverters,          | poller         poller.rs   |  one device's sample: sample.rs
//!   battery, EV charger)        |  trading agent, demand     |  the homeowner's limits:
//!                               |  response, remote checks   |    preferences.rs
//!                               +----------------------------+
//!               seal, with the     |                  ^  DrEvent, MarketNews, Control (channels)
//!               next sequence      |                  |  connected or not (watch)
//!               number (store.rs)  v                  |
//!                               +--------+  wake  +---------------------------+
//!                               | outbox |------->| sender        sender.rs   |
//!                               | (disk) |<-------|  one message in flight,   |
//!                               +--------+  pop   |  QoS 1; reconnects        |
//!                                          on ack |  receiver    receiver.rs  |
//!                                                 |  (decodes by topic)       |
//!                                                 +---------------------------+
//!                                          publish   |                   ^  the gateway's topics
//!                                                    v                   |
//!                                                 the market's MQTT broker
//! ```
//!
//! | stage | file | runs as |
//! |---|---|---|
//! | wiring, start and shutdown | `run/mod.rs` | the caller's task |
//! | poller: devices, agent, demand response, preferences, checks | `run/poller.rs` | a spawned task |
//! | one device's sample | `run/sample.rs` | within the poller |
//! | the homeowner's preferences | `run/preferences.rs` | within the poller |
//! | sealing into the outbox, sequence numbers | `run/store.rs` | within the poller |
//! | sender: the broker connection, outbox out, reconnects | `run/sender.rs` | the caller's task |
//! | receiver: the market's messages to the poller | `run/receiver.rs` | within the sender |

mod poller;
mod preferences;
mod receiver;
mod sample;
mod sender;
mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gridshare_domain::envelope::GatewayKey;
use gridshare_domain::{GatewayId, Timestamp};
use tokio::sync::{Notify, watch};

pub use self::sample::STUCK_AFTER_MS;
pub use self::store::SequenceError;

/// How many sequence numbers a gateway reserves with one durable write: after a restart (or a
/// crash) it goes on after the reserved block, so up to this many numbers are never used.
pub const SEQUENCE_BLOCK: u64 = store::Sequence::BLOCK;
pub use crate::key::{KeyError, load_key};

use self::poller::Poller;
use self::preferences::Preferences;
use self::sample::Sampler;
use self::sender::Sender;
use self::store::{Sequence, Store};
use crate::agent::{Agent, Battery};
use crate::config::{Config, Device, EndpointError, Loaded};
use crate::downlink::{DownlinkCounts, DownlinkGuard, WindowsError};
use crate::dr::Controller;
use crate::outbox::{DEFAULT_CAPACITY, Outbox};
use crate::profile::Quantity;
use crate::push::PushDevice;
use crate::remote::PreferencesError;

/// How long without the market before a running demand-response event is ended and the
/// devices restored.
pub const REVERT_AFTER: Duration = Duration::from_secs(300);

/// Why the gateway could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The data directory could not be made.
    #[error("data_dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The outbox could not be opened, read or shortened.
    #[error("outbox: {0}")]
    Outbox(std::io::Error),
    /// The poller panicked while holding the outbox.
    #[error("outbox lock poisoned")]
    OutboxPoisoned,
    /// A counter file (sequence numbers, order ids).
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// A device's address.
    #[error(transparent)]
    Device(#[from] EndpointError),
    /// The preferences kept from before.
    #[error(transparent)]
    Preferences(#[from] PreferencesError),
    /// `mqtt.url` is not a broker's address.
    #[error("mqtt.url: {0}")]
    MqttUrl(String),
    /// The TLS settings (`mqtt.ca_file`).
    #[error("mqtt: {0}")]
    Tls(String),
    /// `mqtt.market_key` is not a public key.
    #[error("{0}")]
    MarketKey(String),
    /// The downlink replay windows kept from before.
    #[error("downlink replay windows: {0}")]
    DownlinkWindows(#[from] WindowsError),
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

/// How a gateway runs beyond its configuration (the demo runs many in one process, on the
/// market's accelerated clock).
#[derive(Clone)]
pub struct Options {
    /// The time stamped on messages and used for trading decisions (the market's clock in the
    /// demo, which runs faster than real time).
    pub clock: ClockFn,
    /// Between polls, instead of the configuration's `telemetry_period_s`.
    pub period: Option<Duration>,
    /// Where downlinks accepted and refused are counted (see [`crate::downlink`]).
    pub downlinks: Arc<DownlinkCounts>,
    /// Where the messages made and receipted are counted.
    pub traffic: Arc<Traffic>,
}

/// How many messages a gateway made for the market and how many the market receipted, since it
/// started: what waits in the outbox is the difference (less telemetry dropped when it was full).
#[derive(Debug, Default)]
pub struct Traffic {
    made: std::sync::atomic::AtomicU64,
    receipted: std::sync::atomic::AtomicU64,
}

impl Traffic {
    /// Messages made (signed and put in the outbox).
    pub fn made(&self) -> u64 {
        self.made.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Messages the market receipted (and the outbox deleted).
    pub fn receipted(&self) -> u64 {
        self.receipted.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_made(&self) {
        self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn count_receipted(&self, n: usize) {
        self.receipted.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What "now" is for a gateway.
pub type ClockFn = std::sync::Arc<dyn Fn() -> Timestamp + Send + Sync>;

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("now", &(self.clock)())
            .field("period", &self.period)
            .field("downlinks", &self.downlinks)
            .field("traffic", &self.traffic)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: std::sync::Arc::new(now),
            period: None,
            downlinks: Arc::default(),
            traffic: Arc::default(),
        }
    }
}

/// Runs until `stop` turns true; stops within about a second of it in every state (the
/// broker's goodbye is given at most a second).
pub async fn run(
    cfg: Config,
    devices: Vec<Device>,
    key: GatewayKey,
    stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    run_with(cfg, devices, key, stop, Options::default()).await
}

/// [`run_all`] with a configuration as [`Config::load_all`] gives it, and default options.
pub async fn run_loaded(loaded: Loaded, key: GatewayKey, stop: watch::Receiver<bool>) -> Result<(), RunError> {
    run_all(
        loaded.config,
        loaded.devices,
        loaded.pushed,
        key,
        stop,
        Options::default(),
    )
    .await
}

/// [`run`] with [`Options`].
pub async fn run_with(
    cfg: Config,
    devices: Vec<Device>,
    key: GatewayKey,
    stop: watch::Receiver<bool>,
    options: Options,
) -> Result<(), RunError> {
    run_all(cfg, devices, Vec::new(), key, stop, options).await
}

/// [`run_with`] with devices that push their readings too (P1 meters, MQTT devices, as
/// [`Config::load_all`] gives them): their readers run beside the poller, which samples them
/// with the Modbus devices.
pub async fn run_all(
    cfg: Config,
    devices: Vec<Device>,
    pushed: Vec<PushDevice>,
    key: GatewayKey,
    mut stop: watch::Receiver<bool>,
    options: Options,
) -> Result<(), RunError> {
    let gateway = GatewayId(cfg.gateway.id);
    let data_dir = cfg.gateway.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| RunError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let outbox = Outbox::open(&data_dir.join("outbox"), DEFAULT_CAPACITY).map_err(RunError::Outbox)?;
    let seq = Sequence::open(&data_dir, "seq", outbox.last_seq())?;
    let order_ids = Sequence::open(&data_dir, "order-id", None)?;
    tracing::info!(%gateway, waiting = outbox.len(), next_seq = seq.peek(), "gateway starting");
    let outbox = Arc::new(Mutex::new(outbox));
    let wake = Arc::new(Notify::new());

    // Addresses are resolved once, at start: a host that does not resolve is a configuration
    // error.
    let links = crate::config::links(&devices, Duration::from_millis(20)).await?;
    let battery = devices.iter().find_map(|d| {
        let capacity_wh = d.profile.device.capacity_wh?;
        let setpoint = d.profile.quantity(Quantity::BatterySetpointW)?.writable?;
        Some(Battery {
            capacity_wh,
            max_w: setpoint.max.min(-setpoint.min).max(0.0),
        })
    });
    let mut agent = Agent::new(cfg.agent.clone(), cfg.agent.market_rules(), battery);
    // the homeowner's preferences from the dashboard, kept from before: they win over the file's
    let preferences = Preferences {
        current: crate::remote::load_preferences(&data_dir)?,
        refused: None,
    };
    if let Some(p) = &preferences.current {
        agent.set_preferences(p);
    }
    if cfg.agent.enabled {
        let l = agent.limits();
        tracing::info!(battery = ?battery, min_sell_price = l.min_sell_price, max_buy_price = l.max_buy_price,
            battery_reserve_percent = l.battery_reserve_percent, preferences = ?preferences.version(),
            "trading agent on");
    }
    let market_key = cfg.mqtt.market_key().map_err(RunError::MarketKey)?;
    let guard = DownlinkGuard::open(gateway, market_key, &data_dir, options.downlinks.clone())?;
    let (receiver, inbox) = receiver::channel(guard);
    let (online_tx, online) = watch::channel(false);
    // set up before the poller starts, so that a bad `mqtt` section leaves no poller behind
    let mut sender = Sender::new(
        &cfg,
        key.clone(),
        options.clock.clone(),
        outbox.clone(),
        wake.clone(),
        receiver,
        online_tx,
        options.traffic.clone(),
    )?;

    // the readers of pushing devices stop when this is dropped, at the end of the run
    let readers = crate::push::start(pushed, &format!("gridshare-gw-{}-local", gateway.0));
    let period = options
        .period
        .unwrap_or(Duration::from_secs(cfg.gateway.telemetry_period_s));
    let poller = Poller {
        samplers: devices.iter().cloned().map(Sampler::new).collect(),
        pushed: readers.feeds.clone(),
        devices,
        links,
        agent,
        preferences,
        order_ids,
        store: Store {
            gateway,
            key,
            seq,
            outbox,
            wake,
            traffic: options.traffic,
        },
        inbox,
        online,
        clock: options.clock,
        data_dir,
        dr: Controller::default(),
        grid_w: None,
        agent_battery: None,
        offline_since: None,
    };
    let poll = tokio::spawn(poller.run(period));
    let result = sender.run(&mut stop).await;
    // The poller stops wherever it waits (a Modbus request, the next tick): it stores into the
    // outbox only synchronously, so a message is either wholly in the outbox or not at all.
    poll.abort();
    let _ = poll.await;
    drop(readers);
    sender.shutdown().await;
    tracing::info!(%gateway, "gateway stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service's demo and its tests spawn gateways on their runtime and read each home's
    /// key with `?` in functions whose errors are text: both must keep compiling.
    #[test]
    fn a_gateway_can_be_spawned_and_its_key_read_into_a_text_error() {
        let _spawn = |cfg, devices, key, stop| tokio::spawn(run_with(cfg, devices, key, stop, Options::default()));
        fn key_as_text(path: &std::path::Path) -> Result<GatewayKey, String> {
            Ok(load_key(path)?)
        }
        let err = key_as_text(std::path::Path::new("/nonexistent/key.hex")).unwrap_err();
        assert!(err.starts_with("key file /nonexistent/key.hex: "), "{err}");
    }
}
