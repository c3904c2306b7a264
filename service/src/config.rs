//! The service's configuration: a TOML file (every key optional, defaults below), then
//! environment variables and command-line flags on top (see `gridshare serve --help`).
//!
//! ```toml
//! data_dir = "data"                 # SQLite database, engine journal and snapshots
//! database = "postgres://…"         # optional; default: SQLite under data_dir
//!
//! [http]
//! listen = "127.0.0.1:8080"
//! rate_per_second = 20.0            # per API key
//! rate_burst = 40.0
//! max_connections = 2048            # open at once (WebSockets included); more are closed at once
//! max_connections_per_address = 64  # open at once from one client address
//! header_read_timeout_s = 10        # a client that does not send its request headers in time is cut off
//! secure_cookies = false            # true when reached over TLS (directly or through a proxy)
//! allowed_origins = []              # other origins that may post forms, as "https://host[:port]"
//! trusted_proxies = []              # reverse proxies whose X-Forwarded-For names the client
//! metrics_token = "…"               # /metrics needs `Authorization: Bearer …`; absent: this host only
//!
//! [market]
//! zones = [1]
//! horizon = 96                      # intervals kept open ahead (96 × 15 min = 24 h)
//! durability = "every_command"      # or "none", or { group = { commands = 64, micros = 2000 } }
//! intervals = { length = 15, gate_closure_minutes = 5, metering_window_minutes = 15 }
//! engine = { tick = 1000, min_price = -500000, max_price = 2000000, … }   # matching-engine MarketConfig
//!
//! [mqtt]
//! url = "mqtt://user:password@host:1883"   # an external broker (Mosquitto; mqtts:// for TLS); absent: the embedded one
//! ca_file = "/etc/gridshare/mqtt-ca.pem"  # with mqtts://: the CA to trust (default: the system's)
//! embedded = true                   # without url: run the embedded broker (false: no gateway intake)
//! listen = "127.0.0.1:1883"         # the embedded broker's address
//! users = { 1 = "secret" }          # the embedded broker's gateway logins (user name: the gateway id); empty: anonymous
//! tls_listen = "0.0.0.0:8883"       # the embedded broker over TLS too (mqtts://), with:
//! tls_cert = "/etc/gridshare/mqtt-server.pem"   # its certificate chain (PEM)
//! tls_key = "/etc/gridshare/mqtt-server.key"    # and private key (PEM)
//!
//! [chain]                           # absent rpc_url: the in-process EVM in data_dir/chain.log
//! rpc_url = "https://…"
//! settler_key = "0x…"               # or GRIDSHARE_SETTLER_KEY
//! vault = "0x…"                     # absent: deploy at first start (data_dir/deployment.json)
//! confirmations = 1
//! custody_key_file = "/secrets/custody.key"  # seed of the custodial accounts; absent: data_dir/custody.key
//!
//! [settlement]
//! import_tariff = 300000            # µ/kWh
//! export_tariff = 80000
//! every_ms = 2000
//! true_up_hours = 168               # late readings still true up an estimated position this long
//!
//! [governance]                      # deployed with the reward contracts (issue 22); seconds of chain time
//! voting_delay_s = 86400            # from a proposal to its vote
//! voting_period_s = 604800          # how long the vote lasts
//! timelock_delay_s = 172800         # from a passed proposal's queuing to its execution
//! quorum_percent = 4                # of all delegated votes
//! proposal_threshold = 0            # µ-token of votes needed to propose
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gridshare_domain::{IntervalRules, ZoneId};
use gridshare_matching_engine::MarketConfig;
use gridshare_matching_engine::journal::Durability;
use serde::Deserialize;

/// A configuration that cannot be used, naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message names line, column and key).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("config: {0}")]
    Invalid(String),
}

/// HTTP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Sustained requests per second per API key.
    pub rate_per_second: f64,
    /// Burst per API key.
    pub rate_burst: f64,
    /// Connections open at once, WebSockets included.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers.
    pub header_read_timeout_s: u64,
    /// Cookies carry `Secure` (the service is reached over TLS).
    pub secure_cookies: bool,
    /// Origins besides the service's own that may send state-changing requests.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The token `/metrics` asks for (or `GRIDSHARE_METRICS_TOKEN`); absent: loopback clients only.
    pub metrics_token: Option<String>,
}

impl Default for Http {
    fn default() -> Self {
        let limits = gridshare_web::server::Limits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rate_per_second: gridshare_web::DEFAULT_RATE_LIMIT.per_second,
            rate_burst: gridshare_web::DEFAULT_RATE_LIMIT.burst,
            max_connections: limits.max_connections,
            max_connections_per_address: limits.max_per_address,
            header_read_timeout_s: limits.header_read_timeout.as_secs(),
            secure_cookies: false,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_token: None,
        }
    }
}

impl Http {
    /// The listener's limits.
    pub fn limits(&self) -> gridshare_web::server::Limits {
        gridshare_web::server::Limits {
            max_connections: self.max_connections,
            max_per_address: self.max_connections_per_address,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_s),
        }
    }
}

/// When journaled commands reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JournalDurability {
    /// fdatasync per command (default).
    #[default]
    EveryCommand,
    /// fdatasync every `commands` commands or `micros` µs.
    Group {
        /// Commands per flush.
        commands: u32,
        /// Longest wait, µs.
        micros: u64,
    },
    /// Leave it to the OS (tests, demos).
    None,
}

impl From<JournalDurability> for Durability {
    fn from(d: JournalDurability) -> Self {
        match d {
            JournalDurability::EveryCommand => Self::EveryCommand,
            JournalDurability::Group { commands, micros } => Self::Group {
                max_commands: commands,
                max_wait: Duration::from_micros(micros),
            },
            JournalDurability::None => Self::None,
        }
    }
}

/// Market settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Market {
    /// Zones with a book per interval.
    pub zones: Vec<u32>,
    /// Intervals kept open ahead.
    pub horizon: usize,
    /// Journal durability.
    pub durability: JournalDurability,
    /// How much faster than real time the market clock runs (demos: 90 makes a 15-minute interval
    /// pass in 10 s). The market time at first start is real time; it keeps running from there.
    pub speed: f64,
    /// Interval length, gate closure, metering window.
    pub intervals: IntervalRules,
    /// Prices, quantities, limits and the feeder network.
    pub engine: MarketConfig,
}

impl Default for Market {
    fn default() -> Self {
        Self {
            zones: vec![1],
            horizon: 96,
            durability: JournalDurability::default(),
            speed: 1.0,
            intervals: IntervalRules::default(),
            engine: MarketConfig::default(),
        }
    }
}

/// The MQTT broker the gateways publish to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mqtt {
    /// `mqtt://user:password@host:port` (or `mqtts://` for TLS), an external broker; absent: the
    /// embedded one.
    pub url: Option<String>,
    /// With `mqtts://`: CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Without `url`: run the embedded broker (`false`: no gateway intake at all).
    pub embedded: bool,
    /// The embedded broker's address.
    pub listen: SocketAddr,
    /// The embedded broker's logins for gateways (`user → password`); empty: anonymous.
    pub users: std::collections::HashMap<String, String>,
    /// The service's client id prefix: a random suffix is added for each start, so the id cannot
    /// be taken by guessing it (see `gridshare::mqtt::session_client_id`).
    pub client_id: String,
    /// The embedded broker's MQTT-over-TLS address (absent: plain MQTT only).
    pub tls_listen: Option<SocketAddr>,
    /// With `tls_listen`: the certificate chain it presents (PEM, its own first).
    pub tls_cert: Option<PathBuf>,
    /// With `tls_listen`: the certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
}

impl Mqtt {
    /// The embedded broker's TLS listener: its address and server configuration, when
    /// `tls_listen` is set. Errors name the key or file that is wrong.
    pub fn tls(&self) -> Result<Option<(SocketAddr, std::sync::Arc<rustls::ServerConfig>)>, ConfigError> {
        let Some(listen) = self.tls_listen else {
            if self.tls_cert.is_some() || self.tls_key.is_some() {
                return Err(ConfigError::Invalid(
                    "mqtt.tls_cert and mqtt.tls_key are for mqtt.tls_listen, which is not set".into(),
                ));
            }
            return Ok(None);
        };
        if self.url.is_some() || !self.embedded {
            return Err(ConfigError::Invalid(
                "mqtt.tls_listen is for the embedded broker; with mqtt.url (or embedded = false) TLS is the \
                 external broker's"
                    .into(),
            ));
        }
        if listen == self.listen {
            return Err(ConfigError::Invalid(format!(
                "mqtt.tls_listen and mqtt.listen are both {listen}"
            )));
        }
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Err(ConfigError::Invalid(
                "mqtt.tls_listen needs mqtt.tls_cert and mqtt.tls_key (PEM files)".into(),
            ));
        };
        let config = gridshare_domain::topics::tls::server_config(cert, key)
            .map_err(|e| ConfigError::Invalid(format!("mqtt.tls_listen: {e}")))?;
        Ok(Some((listen, config)))
    }
}

impl Default for Mqtt {
    fn default() -> Self {
        Self {
            url: None,
            ca_file: None,
            embedded: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            users: std::collections::HashMap::new(),
            client_id: "gridshare-market".into(),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Where settlement goes on chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Chain {
    /// A JSON-RPC node (`http(s)://…`); absent: the in-process EVM, durable in `data_dir/chain.log`.
    pub rpc_url: Option<String>,
    /// The settler's private key (hex). With the in-process EVM and no key, one is generated and
    /// kept in `data_dir/settler.key`. Better given by environment: `GRIDSHARE_SETTLER_KEY`.
    pub settler_key: Option<String>,
    /// The deployed vault. Absent: the contracts are deployed at first start and their addresses
    /// kept in `data_dir/deployment.json`.
    pub vault: Option<String>,
    /// Credit line per account when deploying, µ.
    pub credit_line: u128,
    /// Blocks on top before a settlement counts as final.
    pub confirmations: u64,
    /// Request timeout for the JSON-RPC node, ms.
    pub rpc_timeout_ms: u64,
    /// The community account (rounding remainders); default a derived placeholder.
    pub community: Option<String>,
    /// The grid operator's account (network fees).
    pub grid_operator: Option<String>,
    /// The utility's account (imbalance).
    pub utility: Option<String>,
    /// The seed of the custodial accounts the service holds for participants without an address
    /// of their own (`gridshare_domain::accounts::Custody`). Absent: `data_dir/custody.key`, made
    /// at the first start. Back it up: it is the only key to those accounts.
    pub custody_key_file: Option<PathBuf>,
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            rpc_url: None,
            settler_key: None,
            vault: None,
            credit_line: 100_000_000,
            confirmations: 1,
            rpc_timeout_ms: 10_000,
            community: None,
            grid_operator: None,
            utility: None,
            custody_key_file: None,
        }
    }
}

/// The settlement step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settlement {
    /// Off: trades are recorded but not settled.
    pub enabled: bool,
    /// Utility import tariff, µ/kWh (what drawing from the utility costs).
    pub import_tariff: i64,
    /// Utility export tariff, µ/kWh (what the utility pays for energy fed in).
    pub export_tariff: i64,
    /// How often the step looks for due intervals, ms.
    pub every_ms: u64,
    /// Most accounts per settlement transaction.
    pub max_accounts: usize,
    /// How long after an interval started late readings still true up a position settled on an
    /// estimate, hours.
    pub true_up_hours: u32,
}

impl Default for Settlement {
    fn default() -> Self {
        Self {
            enabled: true,
            import_tariff: 300_000,
            export_tariff: 80_000,
            every_ms: 2_000,
            max_accounts: 1_500,
            true_up_hours: 168,
        }
    }
}

/// How the community decides on the parameters (the governor and timelock on chain). Fixed when
/// the contracts are deployed: a later change here does not change a deployed governor.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Governance {
    /// From a proposal to the start of its vote, seconds of chain time.
    pub voting_delay_s: u64,
    /// How long the vote lasts, seconds.
    pub voting_period_s: u64,
    /// From a passed proposal's queuing to when it may be executed, seconds.
    pub timelock_delay_s: u64,
    /// Share of all delegated votes that must take part, percent.
    pub quorum_percent: u64,
    /// Votes (µ-token) an account needs to propose.
    pub proposal_threshold: u64,
}

impl Default for Governance {
    fn default() -> Self {
        Self {
            voting_delay_s: 86_400,
            voting_period_s: 7 * 86_400,
            timelock_delay_s: 2 * 86_400,
            quorum_percent: 4,
            proposal_threshold: 0,
        }
    }
}

/// Reward epochs: verified contributions become rewards once per epoch of market time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rewards {
    /// Off: no epochs are computed.
    pub enabled: bool,
    /// Start of epoch 1 (RFC 3339, UTC, on an interval boundary); default: midnight (UTC, market
    /// time) of the day the service first computed epochs, kept in `data_dir/epochs.json`.
    pub genesis: Option<String>,
    /// Length of an epoch, minutes of market time (a multiple of the interval length).
    pub epoch_minutes: i64,
    /// Telemetry period the uptime share is counted in, seconds of market time (a multiple of 5).
    pub uptime_period_s: i64,
    /// µ-token per kWh sold to neighbours and metered as exported.
    pub local_renewable_per_kwh: u64,
    /// µ-token per kWh of verified demand-response reduction.
    pub demand_response_per_kwh: u64,
    /// µ-token for a gateway up for a whole epoch.
    pub uptime_per_epoch: u64,
    /// Uptime share a gateway must exceed to earn, ppm.
    pub uptime_threshold_ppm: u64,
    /// Emission budget of epoch 1, µ-token.
    pub initial_budget: u64,
    /// The budget halves every this many epochs.
    pub halving_epochs: u64,
    /// Cap on all reward tokens, µ-token.
    pub cap: u64,
}

impl Default for Rewards {
    fn default() -> Self {
        let p = gridshare_market::epoch::Params::defaults(0);
        Self {
            enabled: true,
            genesis: None,
            epoch_minutes: p.epoch_ms / 60_000,
            uptime_period_s: p.uptime_period_ms / 1000,
            local_renewable_per_kwh: p.local_renewable_per_kwh,
            demand_response_per_kwh: p.demand_response_per_kwh,
            uptime_per_epoch: p.uptime_per_epoch,
            uptime_threshold_ppm: p.uptime_threshold_ppm,
            initial_budget: p.initial_budget,
            halving_epochs: p.halving_epochs,
            cap: p.cap,
        }
    }
}

impl Rewards {
    /// The epoch parameters, checked against the interval length: the genesis (`fallback` when
    /// none is configured) parses and sits on an interval boundary, an epoch is a whole number of
    /// intervals, the rest is positive.
    pub fn params(
        &self,
        intervals: &IntervalRules,
        fallback: gridshare_domain::Timestamp,
    ) -> Result<gridshare_market::epoch::Params, ConfigError> {
        let genesis = match &self.genesis {
            None => fallback.0,
            Some(g) => {
                gridshare_domain::Timestamp::parse_rfc3339(g)
                    .map_err(|e| ConfigError::Invalid(format!("rewards.genesis: {g:?} is not an RFC 3339 time: {e}")))?
                    .0
            }
        };
        let interval = intervals.length.millis();
        if genesis % interval != 0 {
            return Err(ConfigError::Invalid(format!(
                "rewards.genesis: {} is not on a {}-minute interval boundary",
                gridshare_domain::Timestamp(genesis).to_rfc3339(),
                intervals.length.minutes()
            )));
        }
        let epoch_ms = self.epoch_minutes.saturating_mul(60_000);
        if epoch_ms <= 0 || epoch_ms % interval != 0 {
            return Err(ConfigError::Invalid(format!(
                "rewards.epoch_minutes: a positive multiple of the {}-minute interval, got {}",
                intervals.length.minutes(),
                self.epoch_minutes
            )));
        }
        if self.uptime_period_s <= 0 || self.halving_epochs == 0 || self.uptime_threshold_ppm > 1_000_000 {
            return Err(ConfigError::Invalid(
                "rewards: uptime_period_s and halving_epochs must be positive, uptime_threshold_ppm at most 1000000"
                    .into(),
            ));
        }
        let slice_s = gridshare_storage::blocks::SLICE_MS / 1000;
        if self.uptime_period_s % slice_s != 0 {
            return Err(ConfigError::Invalid(format!(
                "rewards.uptime_period_s: a multiple of {slice_s} s (readings are kept in {slice_s}-second slices), got {}",
                self.uptime_period_s
            )));
        }
        if self.cap > (1 << 53) {
            return Err(ConfigError::Invalid(format!(
                "rewards.cap: at most 2^53 µ-token (reports keep amounts exact in any JSON reader), got {}",
                self.cap
            )));
        }
        Ok(gridshare_market::epoch::Params {
            genesis_ms: genesis,
            epoch_ms,
            uptime_period_ms: self.uptime_period_s * 1000,
            local_renewable_per_kwh: self.local_renewable_per_kwh,
            demand_response_per_kwh: self.demand_response_per_kwh,
            uptime_per_epoch: self.uptime_per_epoch,
            uptime_threshold_ppm: self.uptime_threshold_ppm,
            initial_budget: self.initial_budget,
            halving_epochs: self.halving_epochs,
            cap: self.cap,
        })
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database and the engine's journal.
    pub data_dir: PathBuf,
    /// Database URL; default SQLite under `data_dir`.
    pub database: Option<String>,
    /// HTTP.
    pub http: Http,
    /// Market.
    pub market: Market,
    /// MQTT.
    pub mqtt: Mqtt,
    /// Chain.
    pub chain: Chain,
    /// Settlement.
    pub settlement: Settlement,
    /// Reward epochs.
    pub rewards: Rewards,
    /// Governance of the parameters.
    pub governance: Governance,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database: None,
            http: Http::default(),
            market: Market::default(),
            mqtt: Mqtt::default(),
            chain: Chain::default(),
            settlement: Settlement::default(),
            rewards: Rewards::default(),
            governance: Governance::default(),
        }
    }
}

/// The settler's private key, taken from the environment over `chain.settler_key`: a secret is
/// better kept out of a file that is mounted, copied and checked in (the compose deployment sets
/// it from `.env`).
pub const SETTLER_KEY_ENV: &str = "GRIDSHARE_SETTLER_KEY";

/// The `/metrics` token, taken from the environment over `http.metrics_token` (a secret, like
/// the settler's key).
pub const METRICS_TOKEN_ENV: &str = "GRIDSHARE_METRICS_TOKEN";

impl Config {
    /// Reads `path` (defaults when None), then the settings the environment gives
    /// ([`SETTLER_KEY_ENV`], [`METRICS_TOKEN_ENV`]).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// [`Self::load`] with the environment read through `env`, so a caller (a test of a
    /// deployment's environment) need not change the process's own.
    pub fn load_with_env(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut cfg = match path {
            None => Self::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::parse(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                })?
            }
        };
        if let Some(key) = env(SETTLER_KEY_ENV).filter(|k| !k.trim().is_empty()) {
            cfg.chain.settler_key = Some(key);
        }
        if let Some(token) = env(METRICS_TOKEN_ENV).filter(|k| !k.trim().is_empty()) {
            cfg.http.metrics_token = Some(token);
        }
        Ok(cfg)
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let g = &self.governance;
        if g.voting_period_s == 0 || g.voting_period_s > u64::from(u32::MAX) {
            return Err(ConfigError::Invalid(format!(
                "governance.voting_period_s must be 1 to {}, got {}",
                u32::MAX,
                g.voting_period_s
            )));
        }
        if g.voting_delay_s >= 1 << 48 {
            return Err(ConfigError::Invalid(format!(
                "governance.voting_delay_s must be below 2^48, got {}",
                g.voting_delay_s
            )));
        }
        if g.quorum_percent > 100 {
            return Err(ConfigError::Invalid(format!(
                "governance.quorum_percent must be 0 to 100, got {}",
                g.quorum_percent
            )));
        }
        self.market
            .intervals
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("market.intervals: {e}")))?;
        if self.market.zones.is_empty() {
            return Err(ConfigError::Invalid("market.zones: at least one zone".into()));
        }
        if !(1..=10_000).contains(&self.market.horizon) {
            return Err(ConfigError::Invalid(format!(
                "market.horizon: 1 to 10000 intervals, got {}",
                self.market.horizon
            )));
        }
        if !(self.http.rate_per_second > 0.0 && self.http.rate_burst >= 1.0) {
            return Err(ConfigError::Invalid(
                "http.rate_per_second must be > 0 and http.rate_burst ≥ 1".into(),
            ));
        }
        if self.http.max_connections == 0 || self.http.max_connections_per_address == 0 {
            return Err(ConfigError::Invalid(
                "http.max_connections and http.max_connections_per_address must be at least 1".into(),
            ));
        }
        if !(1..=300).contains(&self.http.header_read_timeout_s) {
            return Err(ConfigError::Invalid(format!(
                "http.header_read_timeout_s: 1 to 300 seconds, got {}",
                self.http.header_read_timeout_s
            )));
        }
        if let Some(o) = self
            .http
            .allowed_origins
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/'))
        {
            return Err(ConfigError::Invalid(format!(
                "http.allowed_origins: {o:?} is not an origin like \"https://host:port\""
            )));
        }
        if self.http.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::Invalid(
                "http.metrics_token: at least 16 characters".into(),
            ));
        }
        if !(self.market.speed >= 1.0 && self.market.speed <= 100_000.0) {
            return Err(ConfigError::Invalid(format!(
                "market.speed: 1 to 100000, got {}",
                self.market.speed
            )));
        }
        if let Some(url) = &self.mqtt.url {
            crate::mqtt::Broker::parse(url).map_err(|e| ConfigError::Invalid(format!("mqtt.url: {e}")))?;
        }
        self.mqtt.tls()?;
        if let Some(ca) = &self.mqtt.ca_file {
            gridshare_domain::topics::tls::client_config(Some(ca))
                .map_err(|e| ConfigError::Invalid(format!("mqtt.ca_file: {e}")))?;
        }
        self.rewards
            .params(&self.market.intervals, gridshare_domain::Timestamp(0))?;
        if self.settlement.max_accounts == 0 || self.settlement.every_ms == 0 {
            return Err(ConfigError::Invalid(
                "settlement.max_accounts and settlement.every_ms must be positive".into(),
            ));
        }
        if self.chain.rpc_url.is_some() && self.settlement.enabled && self.chain.settler_key.is_none() {
            return Err(ConfigError::Invalid(
                "chain.settler_key (or GRIDSHARE_SETTLER_KEY) is required with chain.rpc_url".into(),
            ));
        }
        gridshare_matching_engine::Engine::new(self.market.engine.clone())
            .map_err(|e| ConfigError::Invalid(format!("market.engine: {e}")))?;
        Ok(())
    }

    /// The database target: the configured URL, or the data directory (SQLite).
    pub fn database_target(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| self.data_dir.to_string_lossy().into_owned())
    }

    /// The zones as ids.
    pub fn zones(&self) -> Vec<ZoneId> {
        self.market.zones.iter().copied().map(ZoneId).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)] // test code
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let c = Config::parse("").unwrap();
        c.validate().unwrap();
        assert_eq!(c.http.listen.port(), 8080);
        assert_eq!(c.database_target(), "data");
    }

    #[test]
    fn bad_reward_settings_are_named() {
        for (toml, needle) in [
            ("[rewards]\ngenesis = \"yesterday\"", "rewards.genesis"),
            ("[rewards]\ngenesis = \"2026-01-01T00:07:00Z\"", "interval boundary"),
            ("[rewards]\nepoch_minutes = 20", "rewards.epoch_minutes"),
            ("[rewards]\nepoch_minutes = 0", "rewards.epoch_minutes"),
            ("[rewards]\nhalving_epochs = 0", "halving_epochs"),
            ("[rewards]\nuptime_threshold_ppm = 1000001", "uptime_threshold_ppm"),
            (
                "[rewards]\nuptime_period_s = 62",
                "rewards.uptime_period_s: a multiple of 5 s",
            ),
            ("[rewards]\ncap = 10000000000000000", "rewards.cap"),
        ] {
            let e = Config::parse(toml).unwrap().validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{toml}: {e}");
        }
        let c = Config::parse("[rewards]\nepoch_minutes = 60\ngenesis = \"2026-12-06T10:00:00Z\"").unwrap();
        let p = c
            .rewards
            .params(&c.market.intervals, gridshare_domain::Timestamp(0))
            .unwrap();
        assert_eq!((p.epoch_ms, p.genesis_ms % 3_600_000), (3_600_000, 0));
    }

    #[test]
    fn a_full_file_parses() {
        let c = Config::parse(
            r#"
            data_dir = "/var/lib/gridshare"
            database = "postgres://gs@db/gridshare"
            [http]
            listen = "0.0.0.0:9000"
            [market]
            zones = [1, 2]
            horizon = 8
            durability = { group = { commands = 64, micros = 2000 } }
            intervals = { length = 5, gate_closure_minutes = 1 }
            engine = { tick = 500, min_price = 0, max_price = 1000000, min_quantity = 1, max_quantity = 50000, max_orders = 1000, max_books = 50 }
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.zones(), vec![ZoneId(1), ZoneId(2)]);
        assert_eq!(c.database_target(), "postgres://gs@db/gridshare");
        assert!(matches!(
            c.market.durability,
            JournalDurability::Group { commands: 64, .. }
        ));
    }

    #[test]
    fn the_embedded_brokers_tls_settings_are_checked() {
        let tls = |extra: &str| {
            Config::parse(&format!("[mqtt]\n{extra}"))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        assert!(tls("tls_listen = \"127.0.0.1:8883\"").contains("needs mqtt.tls_cert and mqtt.tls_key"));
        assert!(tls("tls_cert = \"c.pem\"").contains("not set"));
        assert!(tls("tls_listen = \"127.0.0.1:1883\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"").contains("both"));
        let e = tls("tls_listen = \"127.0.0.1:8883\"\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"k.pem\"");
        assert!(e.contains("mqtt.tls_listen") && e.contains("/nonexistent/c.pem"), "{e}");
        let e = tls(
            "url = \"mqtt://broker:1883\"\ntls_listen = \"127.0.0.1:8883\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"",
        );
        assert!(e.contains("embedded broker"), "{e}");
    }

    #[test]
    fn the_settler_key_comes_from_the_environment_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("market.toml");
        std::fs::write(
            &file,
            "[chain]\nrpc_url = \"http://node:8545\"\nsettler_key = \"0x01\"\n",
        )
        .unwrap();
        let env = |value: &'static str| move |name: &str| (name == SETTLER_KEY_ENV).then(|| value.to_owned());
        let c = Config::load_with_env(Some(&file), env("0x02")).unwrap();
        assert_eq!(c.chain.settler_key.as_deref(), Some("0x02"));
        let c = Config::load_with_env(Some(&file), env(" ")).unwrap();
        assert_eq!(
            c.chain.settler_key.as_deref(),
            Some("0x01"),
            "a blank variable is no key"
        );
        let c = Config::load_with_env(None, env("0x03")).unwrap();
        assert_eq!(c.chain.settler_key.as_deref(), Some("0x03"));
        let c = Config::load_with_env(None, |_| None).unwrap();
        assert_eq!(c.chain.settler_key, None);
    }

    #[test]
    fn mistakes_are_named() {
        let e = Config::parse("[http]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("listen"), "{e}");
        let e = Config::parse("[market]\nzone = [1]\n").unwrap_err();
        assert!(e.contains("zone"), "{e}");
        let c = Config::parse("[market]\nhorizon = 0\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("market.horizon"));
        let c = Config::parse("[market.engine]\ntick = 0\nmin_price = 0\nmax_price = 10\nmin_quantity = 1\nmax_quantity = 10\nmax_orders = 10\nmax_books = 10\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("market.engine"));
    }
}
