//! The book scheduler: keeps books open for the next intervals of each zone and closes every
//! gate on time, by the market's [`crate::Clock`]; and registering participants with the engine.

use std::time::Duration;

use gridshare_domain::{DeliveryInterval, IntervalRules, NodeId, ParticipantId, ZoneId};
use gridshare_matching_engine::Command;

use crate::handle::{Market, MarketError};

/// Keeps books open for the next `horizon` intervals of `zones` and closes each gate on time.
/// "Now" is the market's clock (the demo runs an accelerated one). Runs until the market stops.
///
/// Each book opens with the market's grid fees at the moment it opens ([`Market::grid_fees`])
/// and keeps them: a fee change reaches the books opened after it, not those already open.
pub async fn schedule(market: Market, zones: Vec<ZoneId>, rules: IntervalRules, horizon: usize, tick: Duration) {
    let mut opened: std::collections::BTreeSet<(ZoneId, DeliveryInterval)> = Default::default();
    if let Ok(books) = market.books().await {
        opened.extend(books.iter().filter(|b| b.open).map(|b| (b.zone, b.interval)));
    }
    loop {
        let t = market.clock().now();
        for iv in rules.first_open(t).iter_from(horizon) {
            for &zone in &zones {
                if opened.insert((zone, iv)) {
                    let open = Command::OpenBook {
                        zone,
                        interval: iv,
                        fees: market.grid_fees(),
                    };
                    match market.command(open).await {
                        Ok(_) => {}
                        Err(MarketError::Stopped) => return,
                        Err(e) => tracing::error!(error = %e, "opening a book"),
                    }
                }
            }
        }
        let due: Vec<_> = opened
            .iter()
            .filter(|(_, iv)| iv.gate_closure(&rules) <= t)
            .copied()
            .collect();
        for (zone, interval) in due {
            opened.remove(&(zone, interval));
            match market.command(Command::CloseGate { at: t, zone, interval }).await {
                Ok(o) => tracing::info!(%zone, %interval, events = o.events.len(), "gate closed"),
                Err(MarketError::Stopped) => return,
                Err(e) => tracing::error!(error = %e, "closing a gate"),
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// Registers participants with the engine (their feeder node decides grid fees and limits).
pub async fn add_participants(
    market: &Market,
    participants: impl IntoIterator<Item = (ParticipantId, NodeId)>,
) -> Result<(), MarketError> {
    for (owner, node) in participants {
        market.command(Command::AddParticipant { owner, node }).await?;
    }
    Ok(())
}
