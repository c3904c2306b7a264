//! The GridShare market service, as a library the `gridshare` binary wires up.
//!
//! ```text
//!  MQTT ──▶ ingest (verify, route) ──┬─▶ telemetry batcher ─▶ storage
//!                                    ├─▶ engine task (owns the books) ─▶ trades ─▶ storage, MQTT, WebSocket
//!                                    └─▶ DR reports ─▶ storage, verified response
//!  timers: gate closure ─▶ engine auction;  metering window closed ─▶ settlement ─▶ chain
//!  HTTP (gridshare-web) ─▶ same order path as MQTT
//! ```
//!
//! Here: [`config`], the embedded MQTT [`broker`] and its access control ([`acl`]), gateway
//! [`ingest`] and its [`mqtt`] client (the MQTT adapter over the market runtime) with its
//! [`fair`] intake queue, [`signing`] (the market's key on every downlink), [`custody`] (the
//! accounts held for participants without a wallet; [`secrets`] keeps its seed and the market's key), [`settle`] (the
//! settlement step on a timer) with [`rewards`] (reward epochs on chain), and [`serve`], which
//! wires them together. The runtime itself —
//! engine handle, recorder, scheduler, clock, demand response, downlinks, live feed — is
//! `gridshare_market`; the HTTP face is `gridshare_web`.

pub mod acl;
pub mod broker;
pub mod config;
pub mod custody;
pub mod demo;
pub mod fair;
pub mod governance;
pub mod ingest;
pub mod mqtt;
pub mod rewards;
pub mod secrets;
pub mod serve;
pub mod settle;
pub mod signing;
pub mod slashing;
