//! The demo's grid operator, who calls demand-response events through the API, and the metrics it
//! prints.

use std::collections::BTreeMap;
use std::time::Duration;

use gridshare_domain::Timestamp;
use gridshare_market::Clock;
use tokio::sync::watch;

use super::HOMES_PER_TRANSFORMER;
use super::neighbourhood::transformer_of;

/// Reads the whole Prometheus text of the service.
pub(super) async fn metrics(client: &reqwest::Client, base: &str) -> BTreeMap<String, f64> {
    let Ok(resp) = client.get(format!("{base}/metrics")).send().await else {
        return BTreeMap::new();
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The operator's side of the demo: one demand-response program, and every sixth interval an
/// event for the homes of one transformer (each in turn).
pub(super) async fn run(
    client: reqwest::Client,
    base: String,
    key: String,
    homes: usize,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let auth = format!("Bearer {key}");
    let program = client
        .post(format!("{base}/api/v1/dr/programs"))
        .header("Authorization", &auth)
        .json(&serde_json::json!({"name": "Evening peak", "description": "Demo: relieve a transformer"}))
        .send()
        .await;
    let made = match program {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok().and_then(|v| v["id"].as_u64()),
        _ => None,
    };
    // on a resumed demo the program exists already
    let program_id = match made {
        Some(id) => id,
        None => match list_first_program(&client, &base, &auth).await {
            Some(id) => id,
            None => {
                tracing::warn!("the demo operator could not make a demand-response program");
                return;
            }
        },
    };
    let interval_ms = 15 * 60_000;
    let mut last_called = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let now = clock.now().0;
        let this = now - now.rem_euclid(interval_ms);
        let n = this / interval_ms;
        if n % 6 != 0 || last_called == Some(n) {
            continue;
        }
        last_called = Some(n);
        let start = this + interval_ms;
        let t = n as usize / 6 % homes.div_ceil(HOMES_PER_TRANSFORMER).max(1);
        let transformer = 100 + t as u32;
        let sites: Vec<u64> = (1..=homes)
            .filter(|h| transformer_of(*h) == transformer)
            .map(|h| h as u64)
            .collect();
        let event = serde_json::json!({
            "program_id": program_id,
            "priority": 1,
            "targets": {"kind": "sites", "gateways": sites},
            "intervals": [{"id": 0, "start": start, "duration_minutes": 15,
                           "signals": [{"signal": "load_shed", "w": 1_500}]}],
        });
        match client
            .post(format!("{base}/api/v1/dr/events"))
            .header("Authorization", &auth)
            .json(&event)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                tracing::info!(transformer, start = %Timestamp(start).to_rfc3339(), "demand-response event called");
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(%status, body, "the demand-response event was refused");
            }
            Err(e) => tracing::warn!(error = %e, "calling a demand-response event"),
        }
    }
}

async fn list_first_program(client: &reqwest::Client, base: &str, auth: &str) -> Option<u64> {
    let v: serde_json::Value = client
        .get(format!("{base}/api/v1/dr/programs"))
        .header("Authorization", auth)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v.as_array()?.first()?["id"].as_u64()
}
