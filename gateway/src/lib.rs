//! The GridShare home gateway, as a library the `gateway` binary wires up.
//!
//! - [`config`]: the one configuration file;
//! - [`profile`]: device profiles as data (`hardware/*.toml`);
//! - [`modbus`]: Modbus TCP and RTU links (timeouts, request gap, shared buses, batched reads,
//!   every answer checked against its request, the RTU line kept clean after faults,
//!   link errors apart from device exceptions, backoff);
//! - [`push`]: devices that push their readings: the smart meter's P1 port (DSMR 5) and
//!   meters and plugs publishing JSON on the home's own MQTT broker;
//! - [`sunspec`]: discovery and decoding of SunSpec models;
//! - [`scan`] and [`check`]: the installer's search for devices and check of a configuration;
//! - [`simulate`]: the device simulator;
//! - [`key`]: the gateway's signing key on disk;
//! - [`downlink`]: the check of every message from the market (the market's signature);
//! - [`run`]: polling, signed telemetry through the on-disk [`outbox`] (store and forward),
//!   demand response ([`dr`]) and the homeowner's trading [`agent`].

pub mod agent;
pub mod check;
pub mod config;
pub mod downlink;
pub mod dr;
pub mod key;
pub mod modbus;
pub mod outbox;
pub mod profile;
pub mod push;
pub mod remote;
pub mod run;
pub mod scan;
pub mod simulate;
pub mod sunspec;
