//! GridShare storage: one interface over SQLite (the embedded default) and
//! PostgreSQL (production, with TimescaleDB hypertables when available).
//!
//! ```text
//!  Db::open(url | data dir) ─▶ migrations (compiled in, per backend) ─▶ TimescaleDB step (PostgreSQL, if present)
//!  ingest:  [Reading] ─▶ readings::insert_batch ─▶ one transaction, duplicates ignored, count of new rows
//!                                                  └▶ the same transaction keeps blocks::roll_up (epochs read it)
//!  queries: readings::buckets (15 min / hour / day), gateways, market records, DR, rewards, epochs
//! ```
//!
//! Every function takes a [`Db`] and returns [`Result`]; database failures
//! come back as a [`StorageError`] that names the constraint or value that was
//! wrong. Writes that touch several rows run in one transaction.

pub mod api_keys;
pub mod blocks;
pub mod chain_txs;
pub mod checks;
pub mod db;
pub mod dr;
pub mod epochs;
pub mod error;
pub mod evidence;
pub mod gateways;
pub mod installers;
pub mod market;
pub mod orders;
pub mod parameters;
pub mod participants;
pub mod positions;
pub mod preferences;
pub mod readings;
pub mod rewards;
pub mod timescale;

pub use db::{Backend, Db};
pub use error::{Result, StorageError};
