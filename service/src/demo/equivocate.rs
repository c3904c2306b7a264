//! The demo's liar: a while after the homes start, one home's gateway is made to equivocate —
//! its key signs a second, different reading (twice the generation it reported) with a sequence
//! number the gateway already used, published on the gateway's own topic with its own login, as a
//! tampered gateway would. The market catches it at intake, stores both envelopes, stops the
//! gateway, and the settlement task takes the proof on chain, where the staking contract slashes
//! its bond (none in the demo: nobody bonds, so the slash burns nothing) and revokes its key; the
//! network page and the home's page show it.

use std::path::Path;
use std::time::Duration;

use gridshare_domain::envelope::SignedEnvelope;
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::Message;
use gridshare_domain::{GatewayId, W, Wh};
use gridshare_storage::{Db, evidence, gateways};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::watch;

use super::Home;

/// How long after the homes start the liar lies (real time).
pub const AFTER: Duration = Duration::from_secs(90);

/// A reading that claims more than was measured: generation doubled (exported energy and power).
fn inflated(msg: Message) -> Option<Message> {
    let Message::Telemetry(mut t) = msg else {
        return None;
    };
    for s in &mut t.samples {
        s.power_w = s.power_w.map(|w| W(w.0.saturating_mul(2).saturating_sub(1_000)));
        s.energy_out_wh = s.energy_out_wh.map(|e| Wh(e.0.saturating_mul(2).saturating_add(1)));
    }
    Some(Message::Telemetry(t))
}

/// Waits [`AFTER`], then has `home`'s gateway equivocate once (unless it did in an earlier run of
/// this data directory). Stops early when `stop` turns true.
#[allow(clippy::print_stdout)] // the demo talks to its user on the terminal
pub async fn run(db: Db, home: Home, data_dir: &Path, mqtt_port: u16, mut stop: watch::Receiver<bool>) {
    let gateway = GatewayId(home.id);
    tokio::select! {
        () = tokio::time::sleep(AFTER) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    match evidence::list(&db, Some(gridshare_domain::ParticipantId(home.id)), 1).await {
        Ok(l) if !l.is_empty() => return,
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "demo liar: reading the evidence");
            return;
        }
    }
    let key_file = data_dir.join("gateways").join(home.id.to_string()).join("key.hex");
    let key = match gridshare_gateway::run::load_key(&key_file) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "demo liar: the gateway's key");
            return;
        }
    };
    // the newest telemetry the market took from the gateway, as it was signed
    let mut first = None;
    for _ in 0..60 {
        let highest = gateways::all(&db)
            .await
            .ok()
            .and_then(|all| all.into_iter().find(|g| g.id == gateway))
            .map_or(0, |g| g.window.highest);
        for seq in (highest.saturating_sub(8)..=highest).rev() {
            if let Ok(Some(json)) = evidence::logged_one(&db, gateway, seq).await
                && let Ok(env) = serde_json::from_str::<SignedEnvelope>(&json)
                && let Ok(msg) = serde_json::from_str::<Message>(&env.payload)
                && let Some(lie) = inflated(msg)
            {
                first = Some((env, lie));
                break;
            }
        }
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let Some((env, lie)) = first else {
        tracing::warn!(%gateway, "demo liar: no telemetry of the gateway to contradict");
        return;
    };
    let forged = match key.seal(gateway, env.seq, env.ts, &lie) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "demo liar: sealing");
            return;
        }
    };
    // the gateway's own login, on the second client id the broker allows it
    let mut opts = MqttOptions::new(format!("gridshare-gw-{}", home.id), "127.0.0.1", mqtt_port);
    opts.set_credentials(home.id.to_string(), home.mqtt_password.clone());
    let (client, mut events) = AsyncClient::new(opts, 10);
    let body = serde_json::to_vec(&forged).unwrap_or_default();
    if let Err(e) = client
        .publish(
            topics::topic(gateway, Channel::Telemetry),
            QoS::AtLeastOnce,
            false,
            body,
        )
        .await
    {
        tracing::warn!(error = %e, "demo liar: publishing");
        return;
    }
    // drive the connection until the broker acknowledges the publish
    let acked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => return true,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "demo liar: the broker");
                    return false;
                }
            }
        }
    })
    .await
    .unwrap_or(false);
    let _ = client.disconnect().await;
    if acked {
        println!(
            "demo: home {}'s gateway was made to sign a second, different reading with sequence number {} \
             (twice the generation it measured): the market stops it and the staking contract takes its bond and revokes its key \
             (no bond is required yet this early in the demo, so only the key goes) — see the network page",
            home.id, env.seq
        );
    }
}
