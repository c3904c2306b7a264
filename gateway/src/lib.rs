//! The GridShare home gateway, as a library the `gateway` binary wires up.
//!
//! Built so far (issue 5): the [`config`] file, device [`profile`]s as data (`hardware/*.toml`), the Modbus TCP
//! [`modbus`] link (timeouts, request gap, batched reads, link errors apart from device
//! exceptions, backoff), [`sunspec`] discovery and the device simulator ([`simulate`]). Still to
//! come: RTU, decoding of SunSpec models beyond 1 and 101–103, MQTT TLS and the homeowner
//! agent. [`run`] polls the devices, sends signed telemetry through the on-disk [`outbox`]
//! (store and forward) and carries out demand response ([`dr`]).

pub mod config;
pub mod dr;
pub mod modbus;
pub mod outbox;
pub mod profile;
pub mod run;
pub mod simulate;
pub mod sunspec;
