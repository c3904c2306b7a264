//! The live feed of gateway telemetry: each accepted envelope's samples, as the MQTT intake
//! stores them, for the homes' live view (the HTTP side's WebSocket `power` frames). A slow reader
//! misses samples; it never slows intake.

use std::sync::Arc;

use gridshare_domain::wire::TelemetrySample;
use gridshare_domain::{GatewayId, ParticipantId};
use tokio::sync::broadcast;

/// One gateway envelope's samples, for its home's live view.
#[derive(Debug, Clone)]
pub struct Live {
    /// The home.
    pub owner: ParticipantId,
    /// The gateway.
    pub gateway: GatewayId,
    /// Its samples.
    pub samples: Vec<TelemetrySample>,
}

/// How many envelopes a reader may fall behind before it loses its place.
pub const LIVE_CAPACITY: usize = 1_024;

/// A channel for [`Live`] telemetry.
pub fn live_channel() -> broadcast::Sender<Arc<Live>> {
    broadcast::channel(LIVE_CAPACITY).0
}
