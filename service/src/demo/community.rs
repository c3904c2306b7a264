//! The demo's community deciding a rule: once the first reward epoch is on chain (so the homes
//! hold reward tokens, counted as their votes), the grid operator proposes one per-hop grid fee
//! for every line of the feeder and a minimum bond per gateway, through the API as a real
//! operator would (once it applies, the service bonds each home's gateway from the home's own
//! rewards: `crate::slashing::bond_held`); the homes vote through
//! the API with their own keys (most for, some against or abstaining); the service casts their
//! votes from their custodial accounts, queues the passed proposal and executes it after the
//! timelock's delay, and the books opened from then on charge the new fee. Each step is said on
//! the terminal; the network page shows the proposal, its votes and the parameters in force.
//!
//! The demo's governor decides in minutes of chain time ([`settings`]): the in-process chain
//! makes a 12-second block per transaction, so a vote lasts a few minutes of the demo.

use std::time::Duration;

use tokio::sync::watch;

use crate::config::Governance;

/// The demo's decision rules: voting opens a block after the proposal, lasts 5 minutes of chain
/// time and a passed proposal waits 1 minute in the timelock.
pub(super) fn settings() -> Governance {
    Governance {
        voting_delay_s: 12,
        voting_period_s: 300,
        timelock_delay_s: 60,
        ..Governance::default()
    }
}

/// The fee the operator proposes for every hop (µ-currency per kWh).
const FEE_PER_HOP: u64 = 3_000;
/// The bond the operator proposes per gateway (µ-token): 0.1 GSR, less than any demo home earns
/// in its first epoch, so the service can bond every home's gateway from its own rewards.
const MIN_BOND: u64 = 100_000;

/// How home `i` (1-based) votes: 0 against, 1 for, 2 abstain.
fn support_of(i: usize) -> &'static str {
    match i % 6 {
        0 => "against",
        5 => "abstain",
        _ => "for",
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

/// The operator's proposal and the homes' votes, then what becomes of it, until `stop`.
#[allow(clippy::print_stdout)] // the demo talks to its user on the terminal
pub(super) async fn run(
    client: reqwest::Client,
    base: String,
    operator_key: String,
    home_keys: Vec<String>,
    stop: watch::Receiver<bool>,
) {
    let proposals = format!("{base}/api/v1/governance/proposals");
    let wait = |s: u64| {
        let mut stop = stop.clone();
        async move {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => false,
                () = tokio::time::sleep(Duration::from_secs(s)) => true,
            }
        }
    };
    // a resumed demo has proposed already: only follow it
    let existing = get(&client, &proposals).await;
    let mut id = existing.as_ref().and_then(|v| v.as_array()?.last()?["id"].as_u64());
    if id.is_none() {
        // the homes' first rewards on chain, claimed and counted as their votes
        loop {
            let posted = get(&client, &format!("{base}/api/v1/epochs"))
                .await
                .and_then(|v| v.as_array().map(|a| a.iter().any(|e| !e["posted_tx"].is_null())));
            if posted == Some(true) {
                break;
            }
            if !wait(5).await {
                return;
            }
        }
        if !wait(20).await {
            return;
        }
        let body = serde_json::json!({
            "description": format!("One grid fee for every line ({FEE_PER_HOP} µ/kWh per hop) and a bond of 0.1 GSR per gateway"),
            "changes": [
                {"parameter": "feePerHop", "value": FEE_PER_HOP.to_string()},
                {"parameter": "minBond", "value": MIN_BOND.to_string()},
            ],
        });
        let made = client
            .post(&proposals)
            .bearer_auth(&operator_key)
            .json(&body)
            .send()
            .await;
        match made {
            Ok(r) if r.status().is_success() => {
                id = r.json::<serde_json::Value>().await.ok().and_then(|v| v["id"].as_u64());
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(%status, body, "the demo operator's proposal was refused");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the demo operator's proposal");
                return;
            }
        }
        let Some(id) = id else { return };
        println!(
            "governance: the grid operator proposed one fee of {FEE_PER_HOP} µ/kWh per hop and a bond of 0.1 GSR per gateway (proposal {id}); the homes vote"
        );
        for (i, key) in home_keys.iter().enumerate() {
            let vote = serde_json::json!({"support": support_of(i + 1)});
            match client
                .post(format!("{proposals}/{id}/votes"))
                .bearer_auth(key)
                .json(&vote)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    tracing::warn!(home = i + 1, %status, body, "a demo home's vote was refused");
                }
                Err(e) => tracing::warn!(home = i + 1, error = %e, "a demo home's vote"),
            }
        }
    }
    let Some(id) = id else { return };
    // say each state the proposal reaches, until it is decided
    let mut last = String::new();
    loop {
        let state = get(&client, &proposals).await.and_then(|v| {
            let p = v.as_array()?.iter().find(|p| p["id"].as_u64() == Some(id))?.clone();
            Some(p)
        });
        if let Some(p) = state {
            let now = p["state"].as_str().unwrap_or("?").to_owned();
            if now != last {
                let votes = |k: &str| {
                    p[k].as_str()
                        .and_then(|v| v.parse::<f64>().ok())
                        .map_or_else(|| "?".into(), |v| format!("{:.2}", v / 1e6))
                };
                println!(
                    "governance: proposal {id} is {now} (for {}, against {}, abstaining {} GSR)",
                    votes("votes_for"),
                    votes("votes_against"),
                    votes("votes_abstain")
                );
                if now == "executed" {
                    println!(
                        "governance: books opened from now on charge {FEE_PER_HOP} µ/kWh per hop; the service bonds each home's gateway from the home's own rewards"
                    );
                }
                if matches!(
                    now.as_str(),
                    "executed" | "defeated" | "expired" | "canceled" | "refused"
                ) {
                    return;
                }
                last = now;
            }
        }
        if !wait(3).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_homes_vote_for_and_some_against_or_abstain() {
        let votes: Vec<&str> = (1..=12).map(support_of).collect();
        assert_eq!(votes.iter().filter(|v| **v == "for").count(), 8);
        assert_eq!(votes.iter().filter(|v| **v == "against").count(), 2);
        assert_eq!(votes.iter().filter(|v| **v == "abstain").count(), 2);
    }
}
