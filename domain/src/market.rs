//! Order vocabulary shared by the engine, the wire and the API.

use serde::{Deserialize, Serialize};

/// Which side of the book an order is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Wants to buy energy.
    Buy,
    /// Wants to sell energy.
    Sell,
}

impl Side {
    /// The other side.
    pub const fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }
}

/// How long an order may rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Rests until gate closure, then takes part in the call auction.
    #[default]
    GoodTillGateClosure,
    /// Immediate or cancel: fills what it can now, the rest is cancelled.
    ImmediateOrCancel,
    /// Fill or kill: fills completely now or not at all.
    FillOrKill,
}

/// Whether an order matches continuously or waits for the gate-closure auction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderMode {
    /// Matches on arrival (price-time priority) and joins the auction if it rests.
    #[default]
    Continuous,
    /// Only takes part in the call auction at gate closure.
    AuctionOnly,
}
