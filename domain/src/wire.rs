//! Wire messages between gateways, the market service and API clients.
//!
//! Every message is a variant of [`Message`], serialised as JSON with a
//! `"type"` tag. Gateways wrap theirs in a [`crate::envelope::SignedEnvelope`]
//! which carries the wire version; a receiver rejects versions it does not
//! know instead of guessing.
//!
//! Sign convention for power and energy (load reference): **positive means
//! drawn** (consumed from the grid or the home's bus), **negative means
//! delivered** (PV production, battery discharge, export at the grid meter).

use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, EventId, NodeId, OrderId, ParticipantId, ProgramId, TradeId, ZoneId};
use crate::interval::{DeliveryInterval, Timestamp};
use crate::market::{OrderMode, Side, TimeInForce};
use crate::units::{MicroPerKwh, W, Wh};

/// The wire version this crate speaks.
pub const WIRE_VERSION: u16 = 1;

/// What kind of device a sample comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// The grid-connection meter of the home.
    GridMeter,
    /// A PV inverter.
    PvInverter,
    /// A battery (or hybrid) inverter.
    Battery,
    /// An EV charger.
    EvCharger,
    /// A sub-meter of some load.
    SubMeter,
}

/// The operating status a device reports, simplified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Running normally.
    #[default]
    Ok,
    /// Running but limited (curtailed, derated, at a setpoint).
    Limited,
    /// Off, standby or sleeping (PV at night).
    Standby,
    /// Reporting a fault.
    Fault,
    /// Not answering.
    Unreachable,
}

/// How far a sample can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Read from the device in this cycle.
    #[default]
    Good,
    /// Read, but unchanged for suspiciously long (possibly stuck).
    Suspect,
    /// Not read this cycle; carried forward or estimated.
    Estimated,
}

/// One device's state at one instant. Absent fields were not measured or the
/// device marks them "not implemented"; they are never reported as zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySample {
    /// The device, by its name in the gateway config.
    pub device: DeviceId,
    /// What the device is.
    pub kind: DeviceKind,
    /// When the values were read.
    pub at: Timestamp,
    /// Active power, load convention (positive = drawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<W>,
    /// Lifetime energy counter, drawn (import for a grid meter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_in_wh: Option<Wh>,
    /// Lifetime energy counter, delivered (export for a grid meter, production for PV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_out_wh: Option<Wh>,
    /// Battery state of charge in tenths of a percent (0..=1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soc_permille: Option<u16>,
    /// Operating status.
    #[serde(default)]
    pub status: DeviceStatus,
    /// Trust in the values.
    #[serde(default)]
    pub quality: Quality,
}

impl TelemetrySample {
    /// A device that could not be read at `at`: no values, status unreachable, quality
    /// estimated.
    pub fn unreachable(device: DeviceId, kind: DeviceKind, at: Timestamp) -> Self {
        Self {
            device,
            kind,
            at,
            power_w: None,
            energy_in_wh: None,
            energy_out_wh: None,
            soc_permille: None,
            status: DeviceStatus::Unreachable,
            quality: Quality::Estimated,
        }
    }
}

/// Samples of one gateway's devices from one polling cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// The samples, at most [`Telemetry::MAX_SAMPLES`].
    pub samples: Vec<TelemetrySample>,
}

impl Telemetry {
    /// Most samples one message may carry.
    pub const MAX_SAMPLES: usize = 64;
}

/// A new order. The owner and feeder node come from the sender's identity
/// (gateway registration or API key), never from the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Client-chosen id, unique per market service.
    pub order_id: OrderId,
    /// Zone of the book.
    pub zone: ZoneId,
    /// Delivery interval of the book.
    pub interval: DeliveryInterval,
    /// Buy or sell.
    pub side: Side,
    /// Energy, Wh, positive.
    pub quantity: Wh,
    /// Limit price; buyers pay at most this including grid fees, sellers receive at least this.
    pub limit_price: MicroPerKwh,
    /// Time in force.
    #[serde(default)]
    pub tif: TimeInForce,
    /// Continuous or auction-only.
    #[serde(default)]
    pub mode: OrderMode,
}

/// Cancel a resting order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelOrder {
    /// The order to cancel.
    pub order_id: OrderId,
}

/// The market's answer to a gateway's order or cancel, published (unsigned, JSON) on the
/// gateway's `orders/ack` topic. The market gives every order its own id; `client_order_id` is
/// the id the gateway chose, so it can match the answer and cancel later with its own id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderAck {
    /// Format version (1).
    pub v: u8,
    /// The gateway's id for the order.
    pub client_order_id: OrderId,
    /// The market's id, when it accepted the order.
    pub order_id: Option<OrderId>,
    /// `accepted`, `rejected`, `cancelled` (a cancel went through) or `filled` (at once).
    pub status: String,
    /// The reason code when rejected (`price_off_tick`, `book_closed`, `unknown_order`, …).
    pub reason: Option<String>,
    /// Filled at once, Wh.
    pub filled: Wh,
}

/// A fill of a gateway's order, published (unsigned, JSON) on the gateway's `market/result` topic
/// as the trade happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    /// Format version (1).
    pub v: u8,
    /// The gateway's id for the order.
    pub client_order_id: OrderId,
    /// The market's id for it.
    pub order_id: OrderId,
    /// The trade.
    pub trade: TradeReport,
}

/// The market's receipt for a gateway's messages, published signed on the gateway's
/// `market/stored` topic: the sequence numbers (inclusive ranges, ascending) of messages whose
/// effect the market has made durable (telemetry committed, an order journaled) or that it has
/// refused for good (too old, unreadable). The gateway deletes exactly these from its outbox and
/// sends the rest again; the broker's acknowledgement only says the broker has a message.
///
/// Ranges rather than one "stored up to N": a gateway's sequence numbers have gaps (a crash skips
/// one; a full outbox drops old telemetry), and a message the broker dropped while the market was
/// away must not be counted as stored because a later one was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    /// Format version (1).
    pub v: u8,
    /// Inclusive `[first, last]` ranges of sequence numbers, ascending and not overlapping.
    pub seqs: Vec<[u64; 2]>,
}

impl Stored {
    /// Most ranges in one receipt.
    pub const MAX_RANGES: usize = 512;

    /// The receipt for these sequence numbers (in any order, repeats allowed), split into as
    /// many receipts as [`Self::MAX_RANGES`] needs.
    pub fn of(mut seqs: Vec<u64>) -> Vec<Self> {
        seqs.sort_unstable();
        seqs.dedup();
        let mut ranges: Vec<[u64; 2]> = Vec::new();
        for s in seqs {
            match ranges.last_mut() {
                Some(r) if r[1] + 1 == s => r[1] = s,
                _ => ranges.push([s, s]),
            }
        }
        ranges
            .chunks(Self::MAX_RANGES)
            .map(|c| Self { v: 1, seqs: c.to_vec() })
            .collect()
    }

    /// True if `seq` is in one of the ranges.
    pub fn contains(&self, seq: u64) -> bool {
        self.seqs.iter().any(|[a, b]| (*a..=*b).contains(&seq))
    }

    /// Checks the version, the number of ranges and their order.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.v != 1 {
            return Err(invalid("v", format!("unsupported version {}", self.v)));
        }
        if self.seqs.len() > Self::MAX_RANGES {
            return Err(invalid("seqs", format!("more than {} ranges", Self::MAX_RANGES)));
        }
        let mut after = 0;
        for (i, [a, b]) in self.seqs.iter().enumerate() {
            if a > b || (i > 0 && *a <= after) || *a == 0 {
                return Err(invalid(
                    format!("seqs[{i}]"),
                    "ranges must be ascending, non-empty and not overlap",
                ));
            }
            after = *b;
        }
        Ok(())
    }
}

/// A trade as published to the two parties and the public tape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeReport {
    /// The engine's trade id.
    pub trade_id: TradeId,
    /// Zone of the book.
    pub zone: ZoneId,
    /// Delivery interval of the book.
    pub interval: DeliveryInterval,
    /// The buying order.
    pub buy_order: OrderId,
    /// The selling order.
    pub sell_order: OrderId,
    /// Buyer.
    pub buyer: ParticipantId,
    /// Seller.
    pub seller: ParticipantId,
    /// Energy traded.
    pub quantity: Wh,
    /// Trade price (what the seller receives per kWh).
    pub price: MicroPerKwh,
    /// Grid fee along the path, paid by the buyer on top of the price.
    pub grid_fee: MicroPerKwh,
    /// When the engine made the trade.
    pub at: Timestamp,
}

/// The outcome of one book at gate closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalResult {
    /// Zone of the book.
    pub zone: ZoneId,
    /// Delivery interval of the book.
    pub interval: DeliveryInterval,
    /// Uniform clearing price of the call auction, if anything crossed.
    pub clearing_price: Option<MicroPerKwh>,
    /// Energy matched in the auction.
    pub auction_volume: Wh,
    /// Energy matched in total (continuous + auction).
    pub total_volume: Wh,
    /// Number of trades in the book's life.
    pub trades: u32,
    /// With a feeder network, each node's price in the gate-closure auction (none when the
    /// auction traded nothing). Over MQTT a gateway is sent its own node's only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_prices: Vec<NodePrice>,
}

/// One feeder node's price in a book's gate-closure auction, with a feeder network: sellers
/// there receive it and buyers there pay it (grid fee included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePrice {
    /// Zone of the book.
    pub zone: ZoneId,
    /// Delivery interval of the book.
    pub interval: DeliveryInterval,
    /// The node.
    pub node: NodeId,
    /// Its price.
    pub price: MicroPerKwh,
    /// Energy the auction sent over the edge above the node (positive: up, toward the substation).
    pub flow: Wh,
    /// How far the price gap across that edge exceeds its grid fee: positive only where the
    /// edge was full (binding).
    pub congestion: MicroPerKwh,
}

/// A demand-response signal, after OpenADR 3 signal types, in our units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case", deny_unknown_fields)]
pub enum DrSignal {
    /// Limit export at the grid connection to this power (≥ 0).
    ExportLimit {
        /// The limit.
        w: W,
    },
    /// Limit import at the grid connection to this power (≥ 0).
    ImportLimit {
        /// The limit.
        w: W,
    },
    /// Battery setpoint, load convention (positive charges).
    BatterySetpoint {
        /// The setpoint.
        w: W,
    },
    /// EV charging current limit per phase, in milliamperes.
    EvCurrentLimit {
        /// The limit.
        milliamps: i64,
    },
    /// A price signal for the interval.
    Price {
        /// The price.
        price: MicroPerKwh,
    },
    /// Reduce load by this much against baseline.
    LoadShed {
        /// The reduction asked for.
        w: W,
    },
}

/// One interval of a demand-response event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrInterval {
    /// Interval number within the event, from 0.
    pub id: u32,
    /// Start of the interval.
    pub start: Timestamp,
    /// Length in minutes (> 0).
    pub duration_minutes: u32,
    /// The signals in force during the interval.
    pub signals: Vec<DrSignal>,
}

/// A demand-response event as sent to a gateway (OpenADR 3 concepts:
/// program, event, intervals, payloads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrEvent {
    /// The event.
    pub event_id: EventId,
    /// The program it belongs to.
    pub program_id: ProgramId,
    /// Higher runs first when events overlap (OpenADR: lower number = higher priority; we say it plainly).
    #[serde(default)]
    pub priority: u32,
    /// The intervals, in time order, not overlapping.
    pub intervals: Vec<DrInterval>,
    /// True when the operator cancelled the event: revert now.
    #[serde(default)]
    pub cancelled: bool,
}

/// A gateway's report on a demand-response event interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrReport {
    /// The event.
    pub event_id: EventId,
    /// The event interval reported on.
    pub interval_id: u32,
    /// The gateway's estimate of grid power without the event.
    pub baseline_w: Option<W>,
    /// Mean measured grid power over the report period.
    pub measured_w: W,
    /// True when every device write was confirmed by read-back.
    pub confirmed: bool,
    /// Human-readable note on what could not be done, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the report was made.
    pub at: Timestamp,
}

/// The homeowner's limits for their gateway's trading agent, set on the dashboard and sent
/// (retained) on each of the home's gateways' `preferences` topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradingPreferences {
    /// Grows with every change; a gateway keeps the newest it has seen and ignores older ones.
    pub version: u64,
    /// Never sell below this price.
    pub min_sell_price: MicroPerKwh,
    /// Never buy above this price.
    pub max_buy_price: MicroPerKwh,
    /// Battery state of charge kept for the home, % (0..=100).
    pub battery_reserve_percent: u8,
}

impl TradingPreferences {
    /// Check the prices are not negative, the home never sells below what it would buy at
    /// (it would buy its own energy back at a loss), and the reserve is a percentage.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.min_sell_price.0 < 0 {
            return Err(invalid("min_sell_price", "cannot be negative"));
        }
        if self.max_buy_price.0 < 0 {
            return Err(invalid("max_buy_price", "cannot be negative"));
        }
        if self.min_sell_price > self.max_buy_price {
            return Err(invalid(
                "min_sell_price",
                "must not be above the maximum buy price: the home would buy its own energy back at a loss",
            ));
        }
        if self.battery_reserve_percent > 100 {
            return Err(invalid("battery_reserve_percent", "must be 0 to 100"));
        }
        Ok(())
    }
}

/// A gateway's answer to [`TradingPreferences`]: in force from now on, or refused and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesApplied {
    /// The version answered.
    pub version: u64,
    /// True when the agent now trades within them.
    pub applied: bool,
    /// Why not, when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Service → gateway, on its `command` topic: read every point of every device now and report
/// what was read (an installer's remote check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The check, as the market service numbers it.
    pub check_id: u64,
}

/// One point read during a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointCheck {
    /// The point's name in the device's profile.
    pub name: String,
    /// The value read, in `unit` (absent when the device says "not implemented" or it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Its unit.
    pub unit: String,
    /// Why it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One device's part of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCheck {
    /// The device, by its name in the gateway config.
    pub device: DeviceId,
    /// What it is.
    pub kind: DeviceKind,
    /// Maker and model, from its profile.
    pub model: String,
    /// Where it is reached (`192.168.1.20:502 unit 1`, `/dev/ttyUSB0 at 9600 Bd unit 2`).
    pub address: String,
    /// Time to read every point, ms.
    pub elapsed_ms: u32,
    /// Its points, at most [`DeviceCheck::MAX_POINTS`].
    pub points: Vec<PointCheck>,
    /// Points read but left out, so that the result fits in one message.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_shown: u32,
}

const fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl DeviceCheck {
    /// Most points one device reports in a check (more are counted in `not_shown`).
    pub const MAX_POINTS: usize = 64;

    /// True when every point was read.
    pub fn ok(&self) -> bool {
        self.points.iter().all(|p| p.error.is_none())
    }
}

/// Gateway → service: the result of a [`CheckRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// The check answered.
    pub check_id: u64,
    /// The gateway's software version.
    pub software: String,
    /// Messages waiting in its outbox when it checked.
    pub outbox: u32,
    /// The trading preferences version in force, if any came from the market.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences_version: Option<u64>,
    /// Its devices, at most [`CheckResult::MAX_DEVICES`].
    pub devices: Vec<DeviceCheck>,
}

impl CheckResult {
    /// Most devices one check reports.
    pub const MAX_DEVICES: usize = 32;

    /// Check the counts are within bounds.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.devices.len() > Self::MAX_DEVICES {
            return Err(invalid("devices", format!("at most {} devices", Self::MAX_DEVICES)));
        }
        for (i, d) in self.devices.iter().enumerate() {
            if d.points.len() > DeviceCheck::MAX_POINTS {
                return Err(invalid(
                    format!("devices[{i}].points"),
                    format!("at most {} points", DeviceCheck::MAX_POINTS),
                ));
            }
        }
        Ok(())
    }
}

/// Every message that travels in an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Gateway → service: device samples.
    Telemetry(Telemetry),
    /// Gateway or trader → service: a new order.
    Order(NewOrder),
    /// Gateway or trader → service: cancel an order.
    Cancel(CancelOrder),
    /// Service → participants: a trade.
    Trade(TradeReport),
    /// Service → everyone: a book's result at gate closure.
    IntervalResult(IntervalResult),
    /// Service → gateway: a demand-response event.
    DrEvent(DrEvent),
    /// Gateway → service: a demand-response report.
    DrReport(DrReport),
    /// Service → gateway: the homeowner's trading preferences.
    Preferences(TradingPreferences),
    /// Gateway → service: preferences taken or refused.
    PreferencesApplied(PreferencesApplied),
    /// Service → gateway: run a check.
    CheckRequest(CheckRequest),
    /// Gateway → service: what a check read.
    CheckResult(CheckResult),
    /// Gateway → service: presence, signed (the `offline` one is the last will, sealed when the
    /// gateway connects).
    Status(Presence),
}

/// Gateway → service: whether the gateway is connected. The last will is sealed before the
/// connection it covers and published by the broker later, maybe days later, so presence is not
/// held to a maximum age: the newest by (timestamp, sequence number) wins, and the gateway seals
/// each connection's `online` and `offline` at the same instant, with [`Presence::ONLINE_SEQ`]
/// before [`Presence::OFFLINE_SEQ`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// True when the gateway is connected.
    pub online: bool,
}

impl Presence {
    /// The sequence number of a connection's `online`: presence is outside the gateway's
    /// sequence of messages (no replay window, no receipt), and these two numbers are never an
    /// outbox message's.
    pub const ONLINE_SEQ: u64 = u64::MAX - 1;
    /// The sequence number of an `offline` (the last will, or a goodbye), after the `online`
    /// sealed at the same instant.
    pub const OFFLINE_SEQ: u64 = u64::MAX;
}

/// A message that parsed but breaks a rule of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The offending field, as a path (`samples[3].soc_permille`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Telemetry {
    /// Check sample count and value ranges.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.samples.is_empty() || self.samples.len() > Self::MAX_SAMPLES {
            return Err(invalid(
                "samples",
                format!(
                    "must hold 1 to {} samples, got {}",
                    Self::MAX_SAMPLES,
                    self.samples.len()
                ),
            ));
        }
        for (i, s) in self.samples.iter().enumerate() {
            if s.soc_permille.is_some_and(|soc| soc > 1000) {
                return Err(invalid(format!("samples[{i}].soc_permille"), "must be 0..=1000"));
            }
            for (name, counter) in [("energy_in_wh", s.energy_in_wh), ("energy_out_wh", s.energy_out_wh)] {
                if counter.is_some_and(|c| c.0 < 0) {
                    return Err(invalid(
                        format!("samples[{i}].{name}"),
                        "an energy counter cannot be negative",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl DrEvent {
    /// Most intervals one event may carry (a day of 5-minute intervals).
    pub const MAX_INTERVALS: usize = 288;

    /// Check intervals are present, positive, in time order and not overlapping,
    /// and that limits are not negative.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.intervals.is_empty() && !self.cancelled {
            return Err(invalid("intervals", "an event needs at least one interval"));
        }
        if self.intervals.len() > Self::MAX_INTERVALS {
            return Err(invalid(
                "intervals",
                format!("at most {} intervals", Self::MAX_INTERVALS),
            ));
        }
        let mut prev_end: Option<Timestamp> = None;
        for (i, iv) in self.intervals.iter().enumerate() {
            if iv.duration_minutes == 0 {
                return Err(invalid(format!("intervals[{i}].duration_minutes"), "must be positive"));
            }
            if prev_end.is_some_and(|end| iv.start < end) {
                return Err(invalid(
                    format!("intervals[{i}].start"),
                    "intervals must be in time order and not overlap",
                ));
            }
            prev_end = Some(iv.end());
            for (j, sig) in iv.signals.iter().enumerate() {
                let negative = match *sig {
                    DrSignal::ExportLimit { w } | DrSignal::ImportLimit { w } | DrSignal::LoadShed { w } => w.0 < 0,
                    DrSignal::EvCurrentLimit { milliamps } => milliamps < 0,
                    DrSignal::BatterySetpoint { .. } | DrSignal::Price { .. } => false,
                };
                if negative {
                    return Err(invalid(
                        format!("intervals[{i}].signals[{j}]"),
                        "limits cannot be negative",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl DrInterval {
    /// First instant after the interval.
    pub fn end(&self) -> Timestamp {
        self.start.plus_minutes(i64::from(self.duration_minutes))
    }
}

impl Message {
    /// Check the rules of the message's type beyond what parsing checks.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Self::Telemetry(t) => t.validate(),
            Self::Order(o) if o.quantity.0 <= 0 => Err(invalid("quantity", "must be positive")),
            Self::DrEvent(e) => e.validate(),
            Self::Trade(t) if t.quantity.0 <= 0 => Err(invalid("quantity", "must be positive")),
            Self::Preferences(p) => p.validate(),
            Self::CheckResult(c) => c.validate(),
            _ => Ok(()),
        }
    }

    /// A short name for logs and metrics.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Telemetry(_) => "telemetry",
            Self::Order(_) => "order",
            Self::Cancel(_) => "cancel",
            Self::Trade(_) => "trade",
            Self::IntervalResult(_) => "interval_result",
            Self::DrEvent(_) => "dr_event",
            Self::DrReport(_) => "dr_report",
            Self::Preferences(_) => "preferences",
            Self::PreferencesApplied(_) => "preferences_applied",
            Self::CheckRequest(_) => "check_request",
            Self::CheckResult(_) => "check_result",
            Self::Status(_) => "status",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_json_shape() {
        let msg = Message::Telemetry(Telemetry {
            samples: vec![TelemetrySample {
                device: DeviceId::new("meter").unwrap(),
                kind: DeviceKind::GridMeter,
                at: Timestamp(1_764_064_800_000),
                power_w: Some(W(-1200)),
                energy_in_wh: Some(Wh(10)),
                energy_out_wh: None,
                soc_permille: None,
                status: DeviceStatus::Ok,
                quality: Quality::Good,
            }],
        });
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(
            json,
            r#"{"type":"telemetry","samples":[{"device":"meter","kind":"grid_meter","at":1764064800000,"power_w":-1200,"energy_in_wh":10,"status":"ok","quality":"good"}]}"#
        );
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), msg);
    }

    fn sample(soc: Option<u16>) -> TelemetrySample {
        TelemetrySample {
            device: DeviceId::new("bat").unwrap(),
            kind: DeviceKind::Battery,
            at: Timestamp(0),
            power_w: None,
            energy_in_wh: None,
            energy_out_wh: None,
            soc_permille: soc,
            status: DeviceStatus::Ok,
            quality: Quality::Good,
        }
    }

    #[test]
    fn telemetry_validation() {
        assert!(
            Telemetry {
                samples: vec![sample(Some(1000))]
            }
            .validate()
            .is_ok()
        );
        let err = Telemetry {
            samples: vec![sample(Some(500)), sample(Some(1001))],
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "samples[1].soc_permille");
        assert!(Telemetry { samples: vec![] }.validate().is_err());
        assert!(
            Telemetry {
                samples: vec![sample(None); 65]
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn dr_event_validation() {
        let iv = |id, start, minutes| DrInterval {
            id,
            start: Timestamp(start),
            duration_minutes: minutes,
            signals: vec![DrSignal::ExportLimit { w: W(2000) }],
        };
        let ev = |intervals| DrEvent {
            event_id: EventId(1),
            program_id: ProgramId(1),
            priority: 0,
            intervals,
            cancelled: false,
        };
        assert!(ev(vec![iv(0, 0, 15), iv(1, 900_000, 15)]).validate().is_ok());
        assert_eq!(
            ev(vec![iv(0, 0, 15), iv(1, 600_000, 15)]).validate().unwrap_err().field,
            "intervals[1].start"
        );
        assert!(ev(vec![iv(0, 0, 0)]).validate().is_err());
        assert!(ev(vec![]).validate().is_err());
        let mut neg = iv(0, 0, 15);
        neg.signals = vec![DrSignal::ImportLimit { w: W(-1) }];
        assert_eq!(ev(vec![neg]).validate().unwrap_err().field, "intervals[0].signals[0]");
    }

    #[test]
    fn unknown_fields_and_types_are_rejected() {
        let extra = r#"{"type":"cancel","order_id":1,"owner":2}"#;
        assert!(serde_json::from_str::<Message>(extra).is_err());
        let unknown = r#"{"type":"launch","order_id":1}"#;
        assert!(serde_json::from_str::<Message>(unknown).is_err());
        let dr = r#"{"signal":"export_limit","w":0}"#;
        assert_eq!(
            serde_json::from_str::<DrSignal>(dr).unwrap(),
            DrSignal::ExportLimit { w: W(0) }
        );
    }

    #[test]
    fn preferences_validation_names_the_field() {
        let p = |sell, buy, reserve| TradingPreferences {
            version: 1,
            min_sell_price: MicroPerKwh(sell),
            max_buy_price: MicroPerKwh(buy),
            battery_reserve_percent: reserve,
        };
        assert!(p(80_000, 300_000, 20).validate().is_ok());
        assert!(p(100_000, 100_000, 0).validate().is_ok());
        assert!(p(0, 0, 100).validate().is_ok());
        assert_eq!(p(300_001, 300_000, 20).validate().unwrap_err().field, "min_sell_price");
        assert_eq!(p(-1, 300_000, 20).validate().unwrap_err().field, "min_sell_price");
        assert_eq!(p(0, -1, 20).validate().unwrap_err().field, "max_buy_price");
        assert_eq!(p(0, 1, 101).validate().unwrap_err().field, "battery_reserve_percent");
        let json = serde_json::to_string(&Message::Preferences(p(80_000, 300_000, 20))).unwrap();
        assert_eq!(
            json,
            r#"{"type":"preferences","version":1,"min_sell_price":80000,"max_buy_price":300000,"battery_reserve_percent":20}"#
        );
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap().validate(), Ok(()));
    }

    #[test]
    fn check_result_bounds() {
        let point = PointCheck {
            name: "power".into(),
            value: Some("812.5".into()),
            unit: "W".into(),
            error: None,
        };
        let device = |n| DeviceCheck {
            device: DeviceId::new("meter").unwrap(),
            kind: DeviceKind::GridMeter,
            model: "Eastron SDM630".into(),
            address: "127.0.0.1:502 unit 1".into(),
            elapsed_ms: 12,
            points: vec![point.clone(); n],
            not_shown: 0,
        };
        let result = |devices| CheckResult {
            check_id: 7,
            software: "0.1.0".into(),
            outbox: 0,
            preferences_version: None,
            devices,
        };
        assert!(result(vec![device(3)]).validate().is_ok());
        assert!(device(3).ok());
        assert_eq!(
            result(vec![device(1), device(DeviceCheck::MAX_POINTS + 1)])
                .validate()
                .unwrap_err()
                .field,
            "devices[1].points"
        );
        assert!(
            result(vec![device(1); CheckResult::MAX_DEVICES + 1])
                .validate()
                .is_err()
        );
        let mut failed = device(2);
        failed.points[1].error = Some("timeout".into());
        assert!(!failed.ok());
    }

    #[test]
    fn receipts_are_ranges_that_keep_gaps_and_refuse_disorder() {
        let r = Stored::of(vec![7, 3, 4, 5, 9, 4, 10]);
        assert_eq!(
            r,
            vec![Stored {
                v: 1,
                seqs: vec![[3, 5], [7, 7], [9, 10]]
            }]
        );
        assert!(r[0].contains(4) && r[0].contains(7) && !r[0].contains(6) && !r[0].contains(8));
        assert!(r[0].validate().is_ok());
        // every other number: one range each, split at the bound
        let many = Stored::of((1..=2 * Stored::MAX_RANGES as u64 + 2).map(|s| s * 2).collect());
        assert_eq!(many.len(), 3);
        assert!(many.iter().all(|r| r.validate().is_ok()));
        for bad in [vec![[5, 4]], vec![[1, 3], [3, 4]], vec![[4, 5], [1, 2]], vec![[0, 2]]] {
            let e = Stored {
                v: 1,
                seqs: bad.clone(),
            }
            .validate()
            .unwrap_err();
            assert!(e.field.starts_with("seqs["), "{bad:?}: {e}");
        }
        assert_eq!(Stored { v: 2, seqs: vec![] }.validate().unwrap_err().field, "v");
    }
}
