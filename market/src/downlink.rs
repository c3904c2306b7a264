//! What the market sends down to gateways — demand-response events, a home's trading preferences,
//! an installer's remote check — handed by whoever decides it (the API, the dashboard) to whoever
//! carries it (the MQTT side), without either knowing the other.

use gridshare_domain::GatewayId;
use gridshare_domain::wire::{CheckRequest, TradingPreferences};
use tokio::sync::mpsc;

use crate::dr::Dispatch;

/// Something for gateways, on its way to the MQTT side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downlink {
    /// A demand-response event (or its cancellation).
    Dr(Dispatch),
    /// A home's preferences for each of its gateways (sent retained).
    Preferences {
        /// The home's gateways.
        gateways: Vec<GatewayId>,
        /// The preferences.
        preferences: TradingPreferences,
    },
    /// A remote check for one gateway.
    Check {
        /// The gateway.
        gateway: GatewayId,
        /// The request.
        request: CheckRequest,
    },
}

/// The sending end: cheap to clone; "no carrier" when the service runs without MQTT.
#[derive(Debug, Clone, Default)]
pub struct Downlinks {
    tx: Option<mpsc::UnboundedSender<Downlink>>,
}

impl Downlinks {
    /// A channel: the sending end for deciders, the receiving end for the carrier.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Downlink>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx: Some(tx) }, rx)
    }

    /// No carrier: every send answers false.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether the service has a carrier at all (an MQTT side).
    pub fn configured(&self) -> bool {
        self.tx.is_some()
    }

    /// Hands `d` to the carrier; false when there is none or it has stopped.
    pub fn send(&self, d: Downlink) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(d).is_ok())
    }
}
