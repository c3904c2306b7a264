//! GridShare's market runtime: everything the market service does between "an order arrived" and
//! "the trade is in the database and on its way to the gateway", independent of how it arrived.
//! It knows neither HTTP nor an MQTT client: `web/` (REST, WebSocket, dashboard pages) and the MQTT
//! intake in `service/src/mqtt.rs` are thin adapters that parse, authorize and call this crate.
//!
//! ```text
//!  web (REST, dashboard) ─┐                                   ┌─▶ feed (broadcast Outcome) ─▶ WebSocket frames, MQTT fills
//!  MQTT intake (orders) ──┼─▶ Market handle ─▶ engine thread ─┤
//!  scheduler (gates) ─────┘   handle.rs        journal▶apply  └─▶ recorder ─▶ storage (orders, trades, results)
//!                                                                recorder.rs
//!  MQTT intake (telemetry) ─▶ storage ─▶ live feed (live.rs) ─▶ WebSocket `power` frames
//!  web (DR events, preferences, checks) ─▶ Downlinks (downlink.rs) ─▶ MQTT side ─▶ gateways
//!  dr.rs: ended events ─▶ verified response from telemetry ─▶ rewards credited once
//!  epoch/: trades, meters, DR credits, uptime ─▶ rewards per epoch ─▶ report + root (storage)
//! ```
//!
//! Who owns each stage:
//! - [`Market`] (`handle.rs`): the one path into the engine — submit, cancel, amend, open and
//!   close books; the engine runs on its own thread, journals each command before it applies it,
//!   and replies with an [`Outcome`]; on start it replays the journal.
//! - `recorder.rs`: turns outcomes into row changes and writes them in bursts, retrying.
//! - [`scheduler`]: opens the next books of each zone and closes every gate on time.
//! - [`Clock`] (`clock.rs`): market time, passed in (wall clock, or the demo's accelerated one).
//! - [`dr`]: demand-response verification and crediting; how an event's targets resolve.
//! - [`epoch`]: verified contributions per epoch → rewards, a public report and a cumulative
//!   Merkle root for the chain.
//! - [`Downlinks`] (`downlink.rs`): what goes down to gateways.
//! - [`live`]: telemetry as it arrives, for the homes' live view.
//! - [`Metrics`] (`metrics.rs`): the service's Prometheus registry (each adapter adds its counts).
//!
//! So an order placed over the API goes `web/src/api.rs` (parse, authorize) → [`Market::submit`]
//! (`handle.rs`: engine thread, journal, match) → `recorder.rs` (database) and the feed.

mod clock;
mod downlink;
pub mod dr;
pub mod epoch;
mod handle;
pub mod live;
pub mod metrics;
mod recorder;
pub mod scheduler;

pub use clock::{Clock, wall_clock};
pub use downlink::{Downlink, Downlinks};
pub use gridshare_matching_engine::journal::Origin;
pub use handle::{
    FEED_CAPACITY, FEED_DEPTH_LEVELS, IntakeState, JournalConfig, Market, MarketError, NewOrder, Outcome, journal_path,
};
pub use live::{Live, live_channel};
pub use metrics::Metrics;
pub use scheduler::{add_participants, schedule};
