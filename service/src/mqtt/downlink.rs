//! What the market publishes to gateways, each signed for its gateway and topic: a home's
//! trading preferences (retained), demand-response events and installers' checks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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

pub(super) fn send_downlink(st: &mut State, client: &AsyncClient, d: Downlink) {
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
            st.pending_checks.sent(request.check_id, gateway, Instant::now());
            let body = serde_json::to_string(&Message::CheckRequest(request.clone())).unwrap_or_default();
            match publish_signed(st, client, gateway, Channel::Command, false, &body) {
                Ok(()) => tracing::info!(%gateway, check = request.check_id, "remote check asked"),
                Err(e) => tracing::warn!(%gateway, error = %e, "asking for a remote check"),
            }
        }
    }
}

/// How long a check the gateway has not answered is asked again for (real time).
pub(super) const CHECK_ASKED_FOR: Duration = Duration::from_secs(600);

/// How often unanswered checks are asked again.
pub(super) const CHECK_ASKED_EVERY: Duration = Duration::from_secs(5);

/// How many of a gateway's unanswered checks are asked again (its newest).
pub(super) const CHECKS_ASKED_AGAIN_PER_GATEWAY: usize = 3;

/// The checks sent and not answered yet. A check goes out once and is not retained by the
/// broker, so one asked while its gateway was offline (restarting, reconnecting) never reaches
/// it: it is asked again when the gateway says it is online and every [`CHECK_ASKED_EVERY`],
/// for [`CHECK_ASKED_FOR`]. The gateway answers each; a later answer replaces an earlier one.
/// Kept in memory: after a restart of the service an unanswered check shows `no_answer`, and the
/// installer asks again.
#[derive(Debug, Default)]
pub(super) struct PendingChecks {
    /// Check → its gateway and when it was first sent.
    sent: BTreeMap<u64, (GatewayId, Instant)>,
}

impl PendingChecks {
    /// Check `id` was sent to `gateway` at `at`. Only a gateway's newest
    /// [`CHECKS_ASKED_AGAIN_PER_GATEWAY`] checks are kept: an installer who asks again and again
    /// does not make the market send more and more (nor the gateway read its devices more often).
    pub(super) fn sent(&mut self, id: u64, gateway: GatewayId, at: Instant) {
        self.sent.entry(id).or_insert((gateway, at));
        let mine: Vec<u64> = self
            .sent
            .iter()
            .filter(|(_, (g, _))| *g == gateway)
            .map(|(id, _)| *id)
            .collect();
        for old in mine
            .iter()
            .take(mine.len().saturating_sub(CHECKS_ASKED_AGAIN_PER_GATEWAY))
        {
            self.sent.remove(old);
        }
    }

    /// Check `id` was answered by `gateway` (an answer from another gateway changes nothing).
    pub(super) fn answered(&mut self, id: u64, gateway: GatewayId) {
        if self.sent.get(&id).is_some_and(|(g, _)| *g == gateway) {
            self.sent.remove(&id);
        }
    }

    /// The checks to ask again at `now` (of `gateway` only, or of all), forgetting those sent
    /// longer than [`CHECK_ASKED_FOR`] ago.
    pub(super) fn again(&mut self, now: Instant, gateway: Option<GatewayId>) -> Vec<(u64, GatewayId)> {
        self.sent
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < CHECK_ASKED_FOR);
        self.sent
            .iter()
            .filter(|(_, (g, _))| gateway.is_none_or(|only| only == *g))
            .map(|(id, (g, _))| (*id, *g))
            .collect()
    }
}

/// Sends again the checks [`PendingChecks::again`] gives.
pub(super) fn ask_again(st: &mut State, client: &AsyncClient, gateway: Option<GatewayId>) {
    for (check_id, gateway) in st.pending_checks.again(Instant::now(), gateway) {
        send_downlink(
            st,
            client,
            Downlink::Check {
                gateway,
                request: gridshare_domain::wire::CheckRequest { check_id },
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanswered_checks_are_asked_again_for_ten_minutes() {
        let (mut p, t0) = (PendingChecks::default(), Instant::now());
        p.sent(1, GatewayId(7), t0);
        p.sent(2, GatewayId(8), t0 + Duration::from_secs(60));
        p.sent(1, GatewayId(7), t0 + Duration::from_secs(90)); // sent again: still since t0
        assert_eq!(p.again(t0, None), vec![(1, GatewayId(7)), (2, GatewayId(8))]);
        assert_eq!(p.again(t0, Some(GatewayId(8))), vec![(2, GatewayId(8))]);
        // another gateway's answer does not end it; its own does
        p.answered(2, GatewayId(7));
        assert_eq!(p.again(t0, Some(GatewayId(8))), vec![(2, GatewayId(8))]);
        p.answered(2, GatewayId(8));
        assert_eq!(p.again(t0, None), vec![(1, GatewayId(7))]);
        // ten minutes after it was first sent, a check is no longer asked
        assert_eq!(p.again(t0 + CHECK_ASKED_FOR, None), vec![]);
    }

    #[test]
    fn only_a_gateways_newest_checks_are_asked_again() {
        let (mut p, t0) = (PendingChecks::default(), Instant::now());
        p.sent(100, GatewayId(8), t0);
        for id in 1..=50 {
            p.sent(id, GatewayId(7), t0);
        }
        assert_eq!(
            p.again(t0, None),
            vec![
                (48, GatewayId(7)),
                (49, GatewayId(7)),
                (50, GatewayId(7)),
                (100, GatewayId(8))
            ],
            "a flood of checks for one gateway keeps its newest three, and another gateway's"
        );
    }
}
