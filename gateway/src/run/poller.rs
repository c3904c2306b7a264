//! The poller: the one task that touches the devices. Every telemetry period it samples each
//! device ([`super::sample`]), stores one telemetry envelope, lets the trading agent see the
//! readings and place or cancel orders, and then runs a demand-response cycle; between polls it
//! acts at once on what the [receiver](super::receiver) passes on (demand-response events, the
//! market's news of orders, preferences and remote checks). Everything it has for the market
//! goes through the [`Store`] into the outbox.
//!
//! Order within a cycle: demand response first (it holds the devices while an event runs), then
//! the battery setpoint the agent's sales need, then the demand-response reports. After
//! [`REVERT_AFTER`] without the broker a running event is ended and the devices restored.

use std::path::PathBuf;
use std::time::Duration;

use gridshare_domain::topics::Channel;
use gridshare_domain::wire::{CancelOrder, DeviceKind, DrEvent, Message, Telemetry};
use gridshare_domain::{OrderId, Timestamp};
use tokio::sync::watch;

use super::REVERT_AFTER;
use super::preferences::Preferences;
use super::receiver::{Control, Inbox, MarketNews};
use super::sample::{Sampler, reading};
use super::store::{Sequence, Store};
use crate::agent::{Action, Agent};
use crate::config::Device;
use crate::dr::Controller;
use crate::modbus::Link;
use crate::outbox::Kind;
use crate::profile::Quantity;

/// What woke the poller.
enum Woken {
    Tick,
    Dr(DrEvent),
    Market(MarketNews),
    Control(Control),
}

/// The poller's state between cycles.
// not Debug: the clock is a closure
pub(super) struct Poller {
    /// The devices, in configuration order; `links` and `samplers` follow the same order.
    pub(super) devices: Vec<Device>,
    pub(super) samplers: Vec<Sampler>,
    /// The devices that push their readings (P1, MQTT), sampled after the Modbus ones.
    pub(super) pushed: Vec<crate::push::Feed>,
    /// Each device's link, shared by polling, the agent's battery, demand response and checks.
    pub(super) links: Vec<Link>,
    pub(super) agent: Agent,
    pub(super) preferences: Preferences,
    /// Client order ids: unique for this gateway across restarts.
    pub(super) order_ids: Sequence,
    pub(super) store: Store,
    pub(super) inbox: Inbox,
    /// True while the sender is connected to the broker.
    pub(super) online: watch::Receiver<bool>,
    pub(super) clock: super::ClockFn,
    /// Where the preferences are kept.
    pub(super) data_dir: PathBuf,
    pub(super) dr: Controller,
    /// The grid meter's power at the last poll, for demand response between polls too.
    pub(super) grid_w: Option<f64>,
    /// The battery setpoint the agent last wrote, to give it back when its plan ends.
    pub(super) agent_battery: Option<f64>,
    pub(super) offline_since: Option<tokio::time::Instant>,
}

impl Poller {
    /// Polls every `period` until the task is aborted.
    pub(super) async fn run(mut self, period: Duration) {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // a poll every period; a demand-response event is acted on as it arrives
            let woken = tokio::select! {
                _ = every.tick() => Woken::Tick,
                Some(event) = self.inbox.dr.recv() => Woken::Dr(event),
                Some(news) = self.inbox.market.recv() => Woken::Market(news),
                Some(control) = self.inbox.control.recv() => Woken::Control(control),
            };
            let (poll, arrived) = match woken {
                Woken::Tick => (true, None),
                Woken::Dr(event) => (false, Some(event)),
                Woken::Market(MarketNews::Ack(a)) => {
                    self.agent.on_ack(&a);
                    continue;
                }
                Woken::Market(MarketNews::Fill(f)) => {
                    self.agent.on_fill(&f);
                    continue;
                }
                Woken::Control(control) => {
                    self.on_control(control).await;
                    continue;
                }
            };
            let at = (self.clock)();
            if poll {
                self.poll(at).await;
            }
            self.demand_response(at, arrived).await;
        }
    }

    /// Answers the market: preferences taken or refused, or a remote check's result.
    async fn on_control(&mut self, control: Control) {
        let at = (self.clock)();
        match control {
            Control::Preferences(p) => {
                if let Some(answer) = self.preferences.take(&self.data_dir, &mut self.agent, p) {
                    self.store.put(
                        Kind::Answer,
                        Channel::CommandResult,
                        at,
                        Message::PreferencesApplied(answer),
                    );
                }
            }
            Control::Check(request) => {
                let waiting = self.store.waiting();
                let result = crate::remote::check(
                    request.check_id,
                    &mut self.links,
                    &self.devices,
                    u32::try_from(waiting).unwrap_or(u32::MAX),
                    self.preferences.version(),
                )
                .await;
                tracing::info!(
                    check = request.check_id,
                    devices = result.devices.len(),
                    failed = result.devices.iter().filter(|d| !d.ok()).count(),
                    "remote check done"
                );
                self.store
                    .put(Kind::Answer, Channel::CommandResult, at, Message::CheckResult(result));
            }
        }
    }

    /// Samples every device, stores the telemetry, and sends the agent's orders.
    async fn poll(&mut self, at: Timestamp) {
        let mut samples = Vec::with_capacity(self.samplers.len());
        for (s, link) in self.samplers.iter_mut().zip(self.links.iter_mut()) {
            samples.extend(s.sample(link, at).await);
        }
        samples.extend(self.pushed.iter().filter_map(|f| f.sample(at)));
        self.grid_w = samples
            .iter()
            .find(|s| s.kind == DeviceKind::GridMeter)
            .and_then(|s| s.power_w)
            .map(|w| w.0 as f64);
        self.agent.observe(reading(at, &samples));
        if !samples.is_empty() {
            self.store.put(
                Kind::Telemetry,
                Channel::Telemetry,
                at,
                Message::Telemetry(Telemetry { samples }),
            );
        }
        // an id that could not be saved comes back as 0, which no order is sent with
        let order_ids = &mut self.order_ids;
        for action in self.agent.decide(at, || OrderId(order_ids.take().unwrap_or(0))) {
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
            self.store.put(Kind::Order, Channel::Orders, at, msg);
        }
    }

    /// Takes the events that arrived, ends an event the market has been gone too long for,
    /// drives the battery for the agent when no event holds it, and runs one control cycle.
    async fn demand_response(&mut self, at: Timestamp, arrived: Option<DrEvent>) {
        let dr_rx = &mut self.inbox.dr;
        for event in arrived.into_iter().chain(std::iter::from_fn(|| dr_rx.try_recv().ok())) {
            if let Err(e) = self.dr.on_event(event) {
                tracing::warn!(error = %e, "demand-response event refused");
            }
        }
        // lost the market for too long: give the home its devices back
        self.offline_since = match (*self.online.borrow(), self.offline_since) {
            (true, _) => None,
            (false, None) => Some(tokio::time::Instant::now()),
            (false, since) => since,
        };
        if self.dr.is_active() && self.offline_since.is_some_and(|t| t.elapsed() > REVERT_AFTER) {
            tracing::warn!(after = ?REVERT_AFTER, "no market connection; ending demand response");
            self.dr.revert(&mut self.links, &self.devices).await;
        }
        // the battery delivers what the agent sold (demand response comes first)
        if !self.dr.is_active() {
            let target = self.agent.battery_target(at).or(self.agent_battery.map(|_| 0.0));
            if let Some(t) = target {
                self.agent_battery = drive_battery(&mut self.links, &self.devices, t)
                    .await
                    .filter(|v| v.abs() > 0.5);
            }
        }
        for report in self.dr.cycle(&mut self.links, &self.devices, at, self.grid_w).await {
            tracing::info!(event = %report.event_id, interval = report.interval_id, confirmed = report.confirmed, "demand-response report");
            self.store
                .put(Kind::DrReport, Channel::DrReport, at, Message::DrReport(report));
        }
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
