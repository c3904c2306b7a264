//! Gateways stopped for equivocation (issue 22): the "Slashed gateways" list the grid operator's,
//! the network's and the admin's pages show, and the words a homeowner reads when one of their
//! own gateways was stopped.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::format::when;

/// A proof that a gateway signed two different envelopes with one sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashRow {
    /// The proof's key on chain (`0x…`).
    pub evidence: String,
    /// The gateway.
    pub gateway: u64,
    /// Its home.
    pub owner: u64,
    /// The sequence number both envelopes carry.
    pub seq: u64,
    /// When the second envelope arrived (RFC 3339).
    pub detected_at: String,
    /// `pending`, `slashed` or `refused`.
    pub status: String,
    /// The slashing transaction, once on chain.
    pub slashed_tx: Option<String>,
    /// Why the chain refused the proof.
    pub slash_error: Option<String>,
    /// Both envelopes as received (indented when JSON); none where the viewer may not read them
    /// (they carry the home's readings and orders).
    pub envelopes: Option<(String, String)>,
}

/// The proof's state in words, with its transaction or the chain's reason.
#[component]
fn Status(row: SlashRow) -> impl IntoView {
    match (row.status.as_str(), row.slashed_tx, row.slash_error) {
        ("slashed", Some(tx), _) => {
            view! { <span data-status="slashed">"slashed · " <code>{tx}</code></span> }.into_any()
        }
        ("refused", _, Some(why)) => {
            view! { <span data-status="refused">"refused by the chain: " {why}</span> }.into_any()
        }
        _ => view! { <span data-status="pending" class="muted">"pending: on its way on chain"</span> }.into_any(),
    }
}

/// Both envelopes in full, folded.
#[component]
fn Envelopes(envelopes: (String, String)) -> impl IntoView {
    view! {
        <details class="envelopes">
            <summary>"Both envelopes"</summary>
            <p class="small muted">"Accepted first"</p>
            <pre class="envelope">{envelopes.0}</pre>
            <p class="small muted">"Then"</p>
            <pre class="envelope">{envelopes.1}</pre>
        </details>
    }
}

/// Every proof, newest first: gateway, home, sequence number, when, and its slashing on chain.
#[component]
pub(super) fn SlashedGateways(rows: Vec<SlashRow>) -> impl IntoView {
    let hidden = rows.iter().any(|r| r.envelopes.is_none());
    let empty = rows.is_empty();
    view! {
        <section class="card" id="slashed">
            <h2>"Slashed gateways"</h2>
            {(!empty).then(|| view! {
                <div class="scroll">
                    <table>
                        <thead><tr><th>"Gateway"</th><th>"Home"</th><th>"Sequence"</th><th>"Detected"</th><th>"Status"</th><th>"Evidence"</th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|r| view! {
                                <tr class="slashed" data-gateway=r.gateway data-status=r.status.clone()>
                                    <td>{r.gateway}</td>
                                    <td>{r.owner}</td>
                                    <td>{r.seq}</td>
                                    <td>{when(&r.detected_at)}</td>
                                    <td><Status row=r.clone()/></td>
                                    <td>
                                        <code class="small" title="the proof's key on chain">{r.evidence.clone()}</code>
                                        {r.envelopes.map(|e| view! { <Envelopes envelopes=e/> })}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            })}
            {empty.then(|| view! { <p class="muted">"No gateway has signed two different messages with one sequence number."</p> })}
            {hidden.then(|| view! { <p class="muted small">"The envelopes themselves carry a home's readings and orders: the grid operator and the home see them."</p> })}
        </section>
    }
}

/// What a homeowner reads when one of their gateways was stopped for equivocation.
pub fn explanation(r: &SlashRow) -> String {
    let bond = match (r.status.as_str(), &r.slashed_tx, &r.slash_error) {
        ("slashed", Some(tx), _) => format!("its bond was slashed (transaction {tx})"),
        ("refused", _, Some(why)) => format!("the chain refused to slash its bond ({why})"),
        _ => "its bond is being slashed".to_owned(),
    };
    format!(
        "Your gateway {} signed two different messages with the same number {} at {} UTC. It is stopped and {bond}. \
         Ask your installer to check it and commission a new one.",
        r.gateway,
        r.seq,
        when(&r.detected_at)
    )
}

/// The home's gateways stopped for equivocation, in plain words, with the evidence.
#[component]
pub(super) fn StoppedGateways(rows: Vec<SlashRow>) -> impl IntoView {
    (!rows.is_empty()).then(|| {
        view! {
            <section class="card" id="stopped">
                <h2>"A gateway of yours was stopped"</h2>
                {rows.into_iter().map(|r| view! {
                    <div class="stopped" data-gateway=r.gateway data-status=r.status.clone()>
                        <p class="error" role="alert">{explanation(&r)}</p>
                        <p class="small muted">"Evidence " <code>{r.evidence.clone()}</code></p>
                        {r.envelopes.clone().map(|e| view! { <Envelopes envelopes=e/> })}
                    </div>
                }).collect_view()}
            </section>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, tx: Option<&str>, error: Option<&str>) -> SlashRow {
        SlashRow {
            evidence: "0xev".into(),
            gateway: 11,
            owner: 1,
            seq: 42,
            detected_at: "2025-11-25T10:15:00Z".into(),
            status: status.into(),
            slashed_tx: tx.map(Into::into),
            slash_error: error.map(Into::into),
            envelopes: None,
        }
    }

    #[test]
    fn the_homeowner_reads_what_happened_and_what_to_do() {
        let pending = explanation(&row("pending", None, None));
        assert!(
            pending.starts_with(
                "Your gateway 11 signed two different messages with the same number 42 at 25 Nov 10:15 UTC."
            ),
            "{pending}"
        );
        assert!(pending.contains("its bond is being slashed") && pending.contains("Ask your installer"));
        assert!(explanation(&row("slashed", Some("0xtx"), None)).contains("its bond was slashed (transaction 0xtx)"));
        assert!(
            explanation(&row("refused", None, Some("EvidenceUsed")))
                .contains("refused to slash its bond (EvidenceUsed)")
        );
    }
}
