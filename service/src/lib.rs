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
//! Only [`ingest`] exists so far; the other modules arrive with issue 7.

pub mod ingest;
