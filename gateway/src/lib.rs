//! The GridShare home gateway, as a library the `gateway` binary wires up.
//!
//! Built so far (issue 5): the [`config`] file, device [`profile`]s as data (`hardware/*.toml`), the Modbus TCP
//! [`modbus`] link (timeouts, request gap, batched reads, link errors apart from device
//! exceptions, backoff), [`sunspec`] discovery and the device simulator ([`simulate`]). Still to
//! come: RTU, decoding of SunSpec models beyond 1 and 101–103, the poll loop and telemetry over
//! MQTT with store and forward, demand response and the homeowner agent.

pub mod config;
pub mod modbus;
pub mod profile;
pub mod simulate;
pub mod sunspec;
