//! The gateway at work (`gateway run`): polls its devices every telemetry period, seals one
//! telemetry envelope per cycle with every device's sample, puts it in the on-disk [`Outbox`],
//! and sends the outbox to the broker in order, one message at a time, removing each only when
//! the broker has acknowledged it (QoS 1). While the broker is unreachable the outbox fills and
//! polling goes on; a restart resumes from the outbox and the saved sequence number.
//!
//! Demand response: events arrive on the gateway's `dr/event` topic and are carried out by the
//! [`crate::dr::Controller`] at once and then after each poll (ramping one step per cycle); its
//! reports go through the outbox like telemetry.
//!
//! Presence: the broker publishes `offline` (retained) on the gateway's status topic when the
//! connection drops (last will); the gateway publishes `online` when it connects.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gridshare_domain::envelope::GatewayKey;
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::{
    CancelOrder, CheckRequest, DeviceKind, DeviceStatus, DrEvent, Fill, Message, OrderAck, PreferencesApplied, Quality,
    Telemetry, TelemetrySample, TradingPreferences,
};
use gridshare_domain::{DeviceId, GatewayId, OrderId, Timestamp, W, Wh};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Notify, watch};

use crate::agent::{Action, Agent, Battery, Reading};
use crate::config::{Config, Device};
use crate::dr::Controller;
use crate::modbus::{Backoff, Link, read_points};
use crate::outbox::{DEFAULT_CAPACITY, Kind, Outbox};
use crate::profile::Quantity;

/// How long without the market before a running demand-response event is ended and the
/// devices restored.
pub const REVERT_AFTER: Duration = Duration::from_secs(300);

/// Reads the gateway's private key (64 hex digits) from `path`.
pub fn load_key(path: &Path) -> Result<GatewayKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("key file {}: {e}", path.display()))?;
    GatewayKey::from_hex(text.trim()).map_err(|e| format!("key file {}: {e}", path.display()))
}

/// The next sequence number, kept in `data_dir/seq` and never below what the outbox holds.
struct Sequence {
    path: std::path::PathBuf,
    next: u64,
}

impl Sequence {
    fn open(dir: &Path, file: &str, outbox_last: Option<u64>) -> Result<Self, String> {
        let path = dir.join(file);
        let saved = match std::fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{}: not a sequence number", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Self {
            path,
            next: saved.max(outbox_last.map_or(1, |s| s + 1)),
        })
    }

    /// Takes a number, saving the one after it first (a crash skips a number, never repeats one).
    fn take(&mut self) -> Result<u64, String> {
        let n = self.next;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, (n + 1).to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.next = n + 1;
        Ok(n)
    }
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

/// What the market says of the agent's orders.
enum MarketNews {
    Ack(OrderAck),
    Fill(Fill),
}

/// What the market asks of the gateway.
enum Control {
    Preferences(TradingPreferences),
    Check(CheckRequest),
}

/// The agent's view of one cycle's samples.
fn reading(at: Timestamp, samples: &[TelemetrySample]) -> Reading {
    let sum = |kind: DeviceKind| {
        let mut it = samples
            .iter()
            .filter(|s| s.kind == kind)
            .filter_map(|s| s.power_w)
            .peekable();
        it.peek().is_some().then(|| it.map(|w| w.0 as f64).sum())
    };
    Reading {
        at,
        grid_w: sum(DeviceKind::GridMeter),
        pv_w: sum(DeviceKind::PvInverter),
        battery_w: sum(DeviceKind::Battery),
        soc_permille: samples
            .iter()
            .find(|s| s.kind == DeviceKind::Battery)
            .and_then(|s| s.soc_permille),
        ev_w: sum(DeviceKind::EvCharger),
    }
}

/// Moves the battery's setpoint one ramp step towards `target` W (clamped to its profile) and
/// reads it back; returns the value written, or `None` when there is no battery or it failed.
async fn drive_battery(links: &mut [Link], devices: &[Device], target: f64) -> Option<f64> {
    let (i, device, p) = devices.iter().enumerate().find_map(|(i, d)| {
        let p = d
            .profile
            .quantity(Quantity::BatterySetpointW)
            .filter(|p| p.writable.is_some())?;
        Some((i, d, p))
    })?;
    let link = links.get_mut(i)?;
    let current = match crate::dr::read_value(link, device, p).await {
        Ok(Some(v)) => v,
        Ok(None) => 0.0,
        Err(e) => {
            tracing::warn!(error = %e, "reading the battery setpoint");
            return None;
        }
    };
    let goal = crate::dr::clamp(p, target)?;
    if (goal - current).abs() < 0.5 {
        return Some(current);
    }
    let next = crate::dr::ramp(p, current, goal);
    match crate::dr::write_value(link, device, p, next).await {
        Ok(true) => Some(next),
        Ok(false) => {
            tracing::warn!(wrote = next, "battery setpoint did not read back as written");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "writing the battery setpoint");
            None
        }
    }
}

/// The homeowner's preferences as the gateway holds them: those in force, and the newest
/// version it refused (so that the retained message, delivered again at every connection, is not
/// answered again).
#[derive(Debug, Default)]
struct Preferences {
    current: Option<TradingPreferences>,
    refused: Option<u64>,
}

impl Preferences {
    /// The version in force.
    fn version(&self) -> Option<u64> {
        self.current.as_ref().map(|p| p.version)
    }

    /// Takes preferences newer than any seen: checks them, keeps them on disk, gives them to the
    /// agent, and returns the answer for the market. A version seen before: nothing to do, no
    /// answer.
    fn take(&mut self, dir: &Path, agent: &mut Agent, p: TradingPreferences) -> Option<PreferencesApplied> {
        if self.version().max(self.refused).is_some_and(|seen| seen >= p.version) {
            return None;
        }
        let mut refuse = |reason: String| {
            tracing::warn!(version = p.version, %reason, "trading preferences refused");
            self.refused = Some(p.version);
            Some(PreferencesApplied {
                version: p.version,
                applied: false,
                reason: Some(reason),
            })
        };
        if let Err(e) = p.validate() {
            return refuse(e.to_string());
        }
        if let Err(e) = crate::remote::save_preferences(dir, &p) {
            // not kept: a restart would trade within the old limits, so do not take them now either
            return refuse(format!("cannot keep them: {e}"));
        }
        agent.set_preferences(&p);
        tracing::info!(
            version = p.version,
            min_sell_price = p.min_sell_price.0,
            max_buy_price = p.max_buy_price.0,
            battery_reserve_percent = p.battery_reserve_percent,
            "trading preferences taken"
        );
        let version = p.version;
        self.current = Some(p);
        Some(PreferencesApplied {
            version,
            applied: true,
            // kept for when trading is switched on; the homeowner should know it is off
            reason: (!agent.limits().enabled)
                .then(|| "kept, but trading is off in this gateway's configuration (agent.enabled)".to_owned()),
        })
    }
}

/// How long a device's readings may stay exactly the same, while it reports power, before its
/// samples are flagged suspect: real power readings carry noise in their last digits.
pub const STUCK_AFTER_MS: i64 = 30_000;

/// Spots a device whose values have frozen (a hung meter or a gateway in front of it answering
/// from a stale cache): every value the same as before, bit for bit, with power not zero, for
/// [`STUCK_AFTER_MS`].
#[derive(Debug, Default)]
struct Freeze {
    last: Option<Vec<Option<u64>>>,
    since: Option<Timestamp>,
}

impl Freeze {
    /// True when the values `values` at `at` have been stuck long enough to be suspect.
    fn stuck(&mut self, at: Timestamp, values: Vec<Option<u64>>, power_w: Option<f64>) -> bool {
        let same = self.last.as_ref() == Some(&values) && power_w.is_some_and(|p| p != 0.0);
        if !same {
            self.last = Some(values);
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(at);
        at.0 - since.0 >= STUCK_AFTER_MS
    }
}

/// One device's poller: its link and its retry state.
struct Poller {
    device: Device,
    backoff: Backoff,
    retry_at: Option<tokio::time::Instant>,
    freeze: Freeze,
}

impl Poller {
    async fn sample(&mut self, link: &mut Link, at: Timestamp) -> Option<TelemetrySample> {
        let id = DeviceId::new(self.device.config.name.clone()).ok()?;
        let unreachable = TelemetrySample {
            device: id.clone(),
            kind: self.device.profile.device.kind,
            at,
            power_w: None,
            energy_in_wh: None,
            energy_out_wh: None,
            soc_permille: None,
            status: DeviceStatus::Unreachable,
            quality: Quality::Estimated,
        };
        if self.retry_at.is_some_and(|t| tokio::time::Instant::now() < t) {
            return Some(unreachable);
        }
        let values = read_points(link, &self.device.profile).await;
        if let Some(e) = values
            .iter()
            .find_map(|(_, v)| v.as_ref().err())
            .filter(|e| e.is_link())
        {
            let delay = self.backoff.next_delay();
            tracing::warn!(device = %self.device.config.name, error = %e, retry_in = ?delay, "device unreachable");
            self.retry_at = Some(tokio::time::Instant::now() + delay);
            return Some(unreachable);
        }
        self.backoff.reset();
        self.retry_at = None;
        let get = |q: Quantity| {
            let p = self.device.profile.quantity(q)?;
            values.iter().find(|(n, _)| *n == p.name)?.1.clone().ok().flatten()
        };
        let failed = values.iter().any(|(_, v)| v.is_err());
        let bits: Vec<Option<u64>> = values
            .iter()
            .map(|(_, v)| v.as_ref().ok().copied().flatten().map(f64::to_bits))
            .collect();
        let was_stuck = self.freeze.since.is_some_and(|s| at.0 - s.0 >= STUCK_AFTER_MS);
        let stuck = self.freeze.stuck(at, bits, get(Quantity::PowerW));
        if stuck && !was_stuck {
            tracing::warn!(device = %self.device.config.name, "values frozen for {} s: samples flagged suspect", STUCK_AFTER_MS / 1_000);
        }
        Some(TelemetrySample {
            power_w: get(Quantity::PowerW).map(|v| W(v.round() as i64)),
            energy_in_wh: get(Quantity::EnergyInWh).map(|v| Wh(v.max(0.0).round() as i64)),
            energy_out_wh: get(Quantity::EnergyOutWh).map(|v| Wh(v.max(0.0).round() as i64)),
            soc_permille: get(Quantity::SocPermille).map(|v| v.clamp(0.0, 1_000.0).round() as u16),
            status: if failed { DeviceStatus::Fault } else { DeviceStatus::Ok },
            quality: if failed || stuck {
                Quality::Suspect
            } else {
                Quality::Good
            },
            ..unreachable
        })
    }
}

/// How a gateway runs beyond its configuration (the demo runs many in one process, on the
/// market's accelerated clock).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The time stamped on messages and used for trading decisions.
    pub clock: fn() -> Timestamp,
    /// Between polls, instead of the configuration's `telemetry_period_s`.
    pub period: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: now,
            period: None,
        }
    }
}

/// Runs until `stop` turns true.
pub async fn run(
    cfg: Config,
    devices: Vec<Device>,
    key: GatewayKey,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    run_with(cfg, devices, key, stop, Options::default()).await
}

/// [`run`] with [`Options`].
pub async fn run_with(
    cfg: Config,
    devices: Vec<Device>,
    key: GatewayKey,
    mut stop: watch::Receiver<bool>,
    options: Options,
) -> Result<(), String> {
    let gateway = GatewayId(cfg.gateway.id);
    std::fs::create_dir_all(&cfg.gateway.data_dir)
        .map_err(|e| format!("data_dir {}: {e}", cfg.gateway.data_dir.display()))?;
    let outbox =
        Outbox::open(&cfg.gateway.data_dir.join("outbox"), DEFAULT_CAPACITY).map_err(|e| format!("outbox: {e}"))?;
    let mut seq = Sequence::open(&cfg.gateway.data_dir, "seq", outbox.last_seq())?;
    // client order ids: unique for this gateway across restarts
    let mut order_ids = Sequence::open(&cfg.gateway.data_dir, "order-id", None)?;
    tracing::info!(%gateway, waiting = outbox.len(), next_seq = seq.next, "gateway starting");
    let outbox = Arc::new(Mutex::new(outbox));
    let wake = Arc::new(Notify::new());

    // Each device's link, shared by polling and demand response. Addresses are resolved once,
    // at start: a host that does not resolve is a configuration error.
    let mut links = crate::config::links(&devices, Duration::from_millis(20)).await?;
    let (dr_tx, mut dr_rx) = tokio::sync::mpsc::unbounded_channel::<DrEvent>();
    let (market_tx, mut market_rx) = tokio::sync::mpsc::unbounded_channel::<MarketNews>();
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
    let mut preferences = Preferences {
        current: crate::remote::load_preferences(&cfg.gateway.data_dir)?,
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
    let (control_tx, mut control_rx) = tokio::sync::mpsc::unbounded_channel::<Control>();
    let (online_tx, online) = watch::channel(false);

    // The poller: one telemetry envelope per period into the outbox, then a demand-response
    // cycle; a report goes into the outbox too.
    let poll = {
        let outbox = outbox.clone();
        let wake = wake.clone();
        let period = options
            .period
            .unwrap_or(Duration::from_secs(cfg.gateway.telemetry_period_s));
        let devices_for_dr = devices.clone();
        let mut pollers: Vec<Poller> = devices
            .into_iter()
            .map(|device| Poller {
                device,
                backoff: Backoff::default(),
                retry_at: None,
                freeze: Freeze::default(),
            })
            .collect();
        let key = key.clone();
        let data_dir = cfg.gateway.data_dir.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut dr = Controller::default();
            let mut offline_since: Option<tokio::time::Instant> = None;
            let mut store = |kind: Kind, channel: Channel, at: Timestamp, msg: Message| {
                let result = seq.take().and_then(|n| {
                    let env = key.seal(gateway, n, at, &msg).map_err(|e| e.to_string())?;
                    let body = serde_json::to_vec(&env).map_err(|e| e.to_string())?;
                    let mut o = outbox.lock().map_err(|_| "outbox lock poisoned".to_owned())?;
                    o.push(n, kind, &topics::topic(gateway, channel), &body)
                        .map_err(|e| format!("outbox: {e}"))
                });
                match result {
                    Ok(()) => wake.notify_one(),
                    Err(e) => tracing::error!(error = %e, "storing a message"),
                }
            };
            let mut grid_w = None;
            // the battery setpoint the agent last wrote, to give it back when its plan ends
            let mut agent_battery: Option<f64> = None;
            loop {
                // a poll every period; a demand-response event is acted on as it arrives
                let (poll, arrived) = tokio::select! {
                    _ = every.tick() => (true, None),
                    Some(event) = dr_rx.recv() => (false, Some(event)),
                    Some(news) = market_rx.recv() => {
                        match news {
                            MarketNews::Ack(a) => agent.on_ack(&a),
                            MarketNews::Fill(f) => agent.on_fill(&f),
                        }
                        continue;
                    }
                    Some(control) = control_rx.recv() => {
                        let at = (options.clock)();
                        match control {
                            Control::Preferences(p) => {
                                if let Some(answer) = preferences.take(&data_dir, &mut agent, p) {
                                    store(Kind::Answer, Channel::CommandResult, at, Message::PreferencesApplied(answer));
                                }
                            }
                            Control::Check(request) => {
                                let waiting = outbox.lock().map(|o| o.len()).unwrap_or(0);
                                let result = crate::remote::check(
                                    request.check_id,
                                    &mut links,
                                    &devices_for_dr,
                                    u32::try_from(waiting).unwrap_or(u32::MAX),
                                    preferences.version(),
                                )
                                .await;
                                tracing::info!(check = request.check_id, devices = result.devices.len(),
                                    failed = result.devices.iter().filter(|d| !d.ok()).count(), "remote check done");
                                store(Kind::Answer, Channel::CommandResult, at, Message::CheckResult(result));
                            }
                        }
                        continue;
                    }
                };
                let at = (options.clock)();
                if poll {
                    let mut samples = Vec::with_capacity(pollers.len());
                    for (p, link) in pollers.iter_mut().zip(links.iter_mut()) {
                        samples.extend(p.sample(link, at).await);
                    }
                    grid_w = samples
                        .iter()
                        .find(|s| s.kind == gridshare_domain::wire::DeviceKind::GridMeter)
                        .and_then(|s| s.power_w)
                        .map(|w| w.0 as f64);
                    agent.observe(reading(at, &samples));
                    if !samples.is_empty() {
                        store(
                            Kind::Telemetry,
                            Channel::Telemetry,
                            at,
                            Message::Telemetry(Telemetry { samples }),
                        );
                    }
                    for action in agent.decide(at, || OrderId(order_ids.take().unwrap_or(0))) {
                        let msg = match action {
                            Action::Place(o) if o.order_id.0 == 0 => {
                                tracing::error!("no order id could be saved; order not sent");
                                continue;
                            }
                            Action::Place(o) => {
                                tracing::info!(order = o.order_id.0, side = ?o.side, wh = o.quantity.0, price = o.limit_price.0, interval = %o.interval, "order");
                                Message::Order(o)
                            }
                            Action::Cancel(id) => {
                                tracing::info!(order = id.0, "cancel");
                                Message::Cancel(CancelOrder { order_id: id })
                            }
                        };
                        store(Kind::Order, Channel::Orders, at, msg);
                    }
                }
                for event in arrived.into_iter().chain(std::iter::from_fn(|| dr_rx.try_recv().ok())) {
                    if let Err(e) = dr.on_event(event) {
                        tracing::warn!(error = %e, "demand-response event refused");
                    }
                }
                // lost the market for too long: give the home its devices back
                offline_since = match (*online.borrow(), offline_since) {
                    (true, _) => None,
                    (false, None) => Some(tokio::time::Instant::now()),
                    (false, since) => since,
                };
                if dr.is_active() && offline_since.is_some_and(|t| t.elapsed() > REVERT_AFTER) {
                    tracing::warn!(after = ?REVERT_AFTER, "no market connection; ending demand response");
                    dr.revert(&mut links, &devices_for_dr).await;
                }
                // the battery delivers what the agent sold (demand response comes first)
                if !dr.is_active() {
                    let target = agent.battery_target(at).or(agent_battery.map(|_| 0.0));
                    if let Some(t) = target {
                        agent_battery = drive_battery(&mut links, &devices_for_dr, t)
                            .await
                            .filter(|v| v.abs() > 0.5);
                    }
                }
                for report in dr.cycle(&mut links, &devices_for_dr, at, grid_w).await {
                    tracing::info!(event = %report.event_id, interval = report.interval_id, confirmed = report.confirmed, "demand-response report");
                    store(Kind::DrReport, Channel::DrReport, at, Message::DrReport(report));
                }
            }
        })
    };

    // the sender: the outbox to the broker, in order, one at a time
    let gridshare_domain::topics::Broker { host, port, tls, .. } =
        gridshare_domain::topics::Broker::parse(&cfg.mqtt.url).map_err(|e| format!("mqtt.url: {e}"))?;
    let status = topics::topic(gateway, Channel::Status);
    let mut opts = MqttOptions::new(format!("gridshare-gw-{}", gateway.0), host, port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_clean_session(true);
    opts.set_max_packet_size(256 * 1024, 256 * 1024);
    opts.set_last_will(LastWill::new(status.clone(), "offline", QoS::AtLeastOnce, true));
    let password = std::env::var("GRIDSHARE_GATEWAY_MQTT_PASSWORD")
        .ok()
        .or(cfg.mqtt.password.clone());
    if let Some(user) = &cfg.mqtt.username {
        opts.set_credentials(user.clone(), password.unwrap_or_default());
    }
    if tls {
        let tls = gridshare_domain::topics::tls::client_config(cfg.mqtt.ca_file.as_deref())
            .map_err(|e| format!("mqtt: {e}"))?;
        opts.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
            tls,
        )));
    }
    let (client, mut events) = AsyncClient::new(opts, 64);
    let mut connected = false;
    // the message sent and not yet acknowledged: (its sequence number, its packet id once known)
    let mut sent: Option<(u64, Option<u16>)> = None;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let send_next = |sent: &mut Option<(u64, Option<u16>)>| -> Result<(), String> {
        if sent.is_some() {
            return Ok(());
        }
        let front = outbox
            .lock()
            .map_err(|_| "outbox lock poisoned".to_owned())?
            .front()
            .map_err(|e| format!("outbox: {e}"))?;
        if let Some((entry, topic, payload)) = front {
            client
                .try_publish(topic, QoS::AtLeastOnce, false, payload)
                .map_err(|e| format!("queueing a publish: {e}"))?;
            *sent = Some((entry.seq, None));
        }
        Ok(())
    };
    let result = loop {
        tokio::select! {
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    backoff.reset();
                    tracing::info!(waiting = outbox.lock().map(|o| o.len()).unwrap_or(0), "connected to the broker");
                    let _ = client.try_publish(status.clone(), QoS::AtMostOnce, true, "online");
                    for channel in [
                        Channel::DrEvent,
                        Channel::OrderAck,
                        Channel::MarketResult,
                        Channel::Preferences,
                        Channel::Command,
                    ] {
                        let _ = client.try_subscribe(topics::topic(gateway, channel), QoS::AtLeastOnce);
                    }
                    let _ = online_tx.send(true);
                    sent = None; // a new session: what was in flight is sent again
                    if let Err(e) = send_next(&mut sent) {
                        break Err(e);
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => {
                    if let Some((_, id @ None)) = &mut sent {
                        *id = Some(pkid);
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some((n, Some(pkid))) = sent
                        && pkid == ack.pkid
                    {
                        let popped = outbox.lock().map_err(|_| "outbox lock poisoned".to_owned())
                            .and_then(|mut o| o.pop(n).map_err(|e| format!("outbox: {e}")));
                        if let Err(e) = popped {
                            break Err(e);
                        }
                        sent = None;
                        if let Err(e) = send_next(&mut sent) {
                            break Err(e);
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let channel = topics::parse(&p.topic).map(|(_, c)| c);
                    if channel == Some(Channel::OrderAck) {
                        match serde_json::from_slice::<OrderAck>(&p.payload) {
                            Ok(a) => {
                                let _ = market_tx.send(MarketNews::Ack(a));
                            }
                            Err(e) => tracing::warn!(topic = %p.topic, error = %e, "unreadable order acknowledgement"),
                        }
                        continue;
                    }
                    if channel == Some(Channel::MarketResult) {
                        match serde_json::from_slice::<Fill>(&p.payload) {
                            Ok(f) => {
                                tracing::info!(order = f.client_order_id.0, wh = f.trade.quantity.0, price = f.trade.price.0, "filled");
                                let _ = market_tx.send(MarketNews::Fill(f));
                            }
                            Err(e) => tracing::warn!(topic = %p.topic, error = %e, "unreadable fill"),
                        }
                        continue;
                    }
                    match serde_json::from_slice::<Message>(&p.payload) {
                        Ok(Message::DrEvent(event)) if channel == Some(Channel::DrEvent) => {
                            tracing::info!(event = %event.event_id, cancelled = event.cancelled, "demand-response event received");
                            let _ = dr_tx.send(event);
                        }
                        Ok(Message::Preferences(p)) if channel == Some(Channel::Preferences) => {
                            let _ = control_tx.send(Control::Preferences(p));
                        }
                        Ok(Message::CheckRequest(c)) if channel == Some(Channel::Command) => {
                            tracing::info!(check = c.check_id, "remote check asked");
                            let _ = control_tx.send(Control::Check(c));
                        }
                        Ok(other) => tracing::warn!(kind = other.kind(), topic = %p.topic, "unexpected message"),
                        Err(e) => tracing::warn!(topic = %p.topic, error = %e, "unreadable message"),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = online_tx.send(false);
                    if connected {
                        tracing::warn!(error = %e, "broker connection lost; keeping messages in the outbox");
                    } else {
                        // a wrong password or an untrusted certificate says so here, each retry
                        tracing::warn!(error = %e, "cannot connect to the broker; keeping messages in the outbox");
                    }
                    connected = false;
                    sent = None;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            },
            _ = wake.notified() => {
                if connected && let Err(e) = send_next(&mut sent) {
                    break Err(e);
                }
            }
            _ = stop.changed() => break Ok(()),
        }
    };
    poll.abort();
    if connected {
        let _ = client.try_publish(status, QoS::AtMostOnce, true, "offline");
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(ev) = events.poll().await {
                if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentSection;
    use gridshare_domain::MicroPerKwh;

    #[test]
    fn newer_preferences_are_taken_kept_and_answered_versions_seen_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let on = AgentSection {
            enabled: true,
            ..AgentSection::default()
        };
        let mut agent = Agent::new(on.clone(), on.market_rules(), None);
        let mut held = Preferences::default();
        let p = |version, sell, buy| TradingPreferences {
            version,
            min_sell_price: MicroPerKwh(sell),
            max_buy_price: MicroPerKwh(buy),
            battery_reserve_percent: 40,
        };
        let a = held.take(dir.path(), &mut agent, p(3, 90_000, 200_000)).unwrap();
        assert!(a.applied && a.version == 3 && a.reason.is_none(), "{a:?}");
        assert_eq!(agent.limits().max_buy_price, 200_000);
        assert_eq!(
            crate::remote::load_preferences(dir.path()).unwrap(),
            Some(p(3, 90_000, 200_000))
        );
        // the same again (the retained message at every connection) or an older one: nothing
        assert_eq!(held.take(dir.path(), &mut agent, p(3, 90_000, 200_000)), None);
        assert_eq!(held.take(dir.path(), &mut agent, p(2, 1, 2)), None);
        assert_eq!(agent.limits().min_sell_price, 90_000);
        // upside down: refused with the reason; the limits in force stay
        let r = held.take(dir.path(), &mut agent, p(4, 300_000, 200_000)).unwrap();
        assert!(
            !r.applied && r.reason.as_deref().unwrap_or("").contains("min_sell_price"),
            "{r:?}"
        );
        assert_eq!(agent.limits().min_sell_price, 90_000);
        assert_eq!(held.version(), Some(3));
        // the refused version again (the retained message at the next connection): no answer
        assert_eq!(held.take(dir.path(), &mut agent, p(4, 300_000, 200_000)), None);
        // trading switched off in the configuration: kept, and the homeowner is told
        let off_dir = tempfile::tempdir().unwrap();
        let off = AgentSection::default();
        let mut idle = Agent::new(off.clone(), off.market_rules(), None);
        let a = Preferences::default()
            .take(off_dir.path(), &mut idle, p(1, 90_000, 200_000))
            .unwrap();
        assert!(
            a.applied && a.reason.as_deref().unwrap_or("").contains("trading is off"),
            "{a:?}"
        );
    }

    #[test]
    fn frozen_values_become_suspect_after_thirty_seconds_unless_the_power_is_zero() {
        let mut f = Freeze::default();
        let v = |x: f64| vec![Some(x.to_bits()), Some(12_345.0f64.to_bits())];
        assert!(!f.stuck(Timestamp(0), v(812.5), Some(812.5)));
        for t in (1..30).map(|s| s * 1_000) {
            assert!(!f.stuck(Timestamp(t), v(812.5), Some(812.5)), "{t}");
        }
        assert!(f.stuck(Timestamp(31_000), v(812.5), Some(812.5)));
        // a change: fine again
        assert!(!f.stuck(Timestamp(32_000), v(812.6), Some(812.6)));
        // a device at rest legitimately reads the same
        let mut idle = Freeze::default();
        for t in (0..100).map(|s| s * 1_000) {
            assert!(!idle.stuck(Timestamp(t), v(0.0), Some(0.0)));
        }
    }
}
