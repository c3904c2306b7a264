//! What the market publishes to gateways, each signed for its gateway and topic: a home's
//! trading preferences (retained), demand-response events and installers' checks.

use gridshare_domain::GatewayId;
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::Message;
use gridshare_market::Downlink;
use rumqttc::{AsyncClient, QoS};

use super::State;

/// Publishes (retained) each home's stored preferences to those of `gateways` that belong to it.
pub(super) async fn send_stored_preferences(st: &State, client: &AsyncClient, gateways: &[GatewayId]) {
    let stored = match gridshare_storage::preferences::all(&st.db).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "reading the homes' preferences; they go out at the next connection");
            return;
        }
    };
    for (home, prefs) in stored {
        let mine: Vec<GatewayId> = gateways
            .iter()
            .copied()
            .filter(|g| st.owners.get(g) == Some(&home))
            .collect();
        send_preferences(st, client, &mine, &prefs);
    }
}

/// Publishes `body` signed for `gateway`'s `channel` (see [`crate::signing`]).
pub(super) fn publish_signed(
    st: &State,
    client: &AsyncClient,
    gateway: GatewayId,
    channel: Channel,
    retain: bool,
    body: &str,
) -> Result<(), String> {
    let bytes = st
        .sealer
        .seal(gateway, channel, st.market.clock().now(), body.to_owned())
        .ok_or("cannot be signed")?;
    client
        .try_publish(topics::topic(gateway, channel), QoS::AtLeastOnce, retain, bytes)
        .map_err(|e| e.to_string())
}

pub(super) fn send_preferences(
    st: &State,
    client: &AsyncClient,
    gateways: &[GatewayId],
    prefs: &gridshare_domain::wire::TradingPreferences,
) {
    let body = serde_json::to_string(&Message::Preferences(prefs.clone())).unwrap_or_default();
    for g in gateways {
        if let Err(e) = publish_signed(st, client, *g, Channel::Preferences, true, &body) {
            tracing::warn!(gateway = %g, error = %e, "sending trading preferences");
        }
    }
}

pub(super) fn send_downlink(st: &State, client: &AsyncClient, d: Downlink) {
    match d {
        Downlink::Dr(d) => {
            let body = serde_json::to_string(&Message::DrEvent(d.event.clone())).unwrap_or_default();
            for g in &d.gateways {
                if let Err(e) = publish_signed(st, client, *g, Channel::DrEvent, false, &body) {
                    tracing::warn!(gateway = %g, error = %e, "sending a demand-response event");
                }
            }
            tracing::info!(event = %d.event.event_id, gateways = d.gateways.len(), cancelled = d.event.cancelled, "demand-response event sent");
        }
        Downlink::Preferences { gateways, preferences } => {
            send_preferences(st, client, &gateways, &preferences);
            tracing::info!(
                version = preferences.version,
                gateways = gateways.len(),
                "trading preferences sent"
            );
        }
        Downlink::Check { gateway, request } => {
            let body = serde_json::to_string(&Message::CheckRequest(request.clone())).unwrap_or_default();
            match publish_signed(st, client, gateway, Channel::Command, false, &body) {
                Ok(()) => tracing::info!(%gateway, check = request.check_id, "remote check asked"),
                Err(e) => tracing::warn!(%gateway, error = %e, "asking for a remote check"),
            }
        }
    }
}
