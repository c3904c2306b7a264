//! GridShare domain types, shared by every other crate and by the browser UI.
//!
//! ```text
//!  units ─┬─ money (trade cash legs, rounding rule: batches sum to zero)
//!         └─ wire (messages) ── envelope (signed, versioned, replay-checked)
//!  ids, interval (UTC delivery intervals), market (side, time in force)
//!  merkle (the tree the settlement vault and the reward distributor verify), accounts
//! ```
//!
//! This crate does no I/O and compiles to `wasm32-unknown-unknown`. Energy,
//! power, prices and money are `i64` newtypes in fixed units (see
//! [`units`]); decimals appear only at the edges through checked conversions.

pub mod accounts;
pub mod envelope;
pub mod ids;
pub mod interval;
pub mod market;
pub mod merkle;
pub mod money;
pub mod topics;
pub mod units;
pub mod wire;

pub use ids::{BatchId, DeviceId, EventId, GatewayId, NodeId, OrderId, ParticipantId, ProgramId, TradeId, ZoneId};
pub use interval::{DeliveryInterval, IntervalLength, IntervalRules, Timestamp};
pub use market::{OrderMode, Side, TimeInForce};
pub use units::{Micro, MicroPerKwh, W, Wh};
