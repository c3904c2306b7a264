//! GridShare's matching engine: a double auction per (zone, delivery interval).
//!
//! ```text
//!  Command ──▶ Engine::apply ──▶ events into an EventSink (Vec<Event>, reused)
//!     │            │  books: (zone, interval) → bid/ask ladders (tick-indexed FIFO levels)
//!     │            │  continuous: price-time, at the resting price, grid fees + feeder limits
//!     │            └─ CloseGate: uniform-price call auction, unmatched cancelled, book closed
//!     └─▶ journal (length + CRC32C frames, appended before the command is acknowledged)
//!          recovery = snapshot + journal tail; `gridshare-replay` turns JSON lines into events
//! ```
//!
//! The core ([`engine`]) does no I/O, reads no clock and allocates nothing
//! per command once warm (a gate closure under a feeder tree builds its
//! per-node curves), so the same commands always give the same events.
//! Prices and quantities are integers (domain units); the rules are in the
//! [`engine`] module docs.

pub mod engine;
pub mod index;
pub mod journal;
pub mod ladder;
pub mod network;
pub mod types;

pub use engine::{
    BookSnapshot, BookSummary, ConfigError, Depth, Engine, MarketConfig, OrderSnapshot, Snapshot, SnapshotError,
};
pub use network::{Network, NodeConfig};
pub use types::{
    CancelReason, Command, CountingSink, Event, EventSink, GridFees, GridFeesError, OrderSpec, RejectReason,
};
