//! One checked publish, routed by its message: telemetry to the batch buffer (and
//! [`flush_buffer`], which commits it with the replay windows and the evidence log), orders and
//! cancels into the market (answered on the gateway's `orders/ack` topic, fills published), reports and
//! answers stored; refusals counted under their reason.

use std::sync::Arc;

use gridshare_domain::topics::Channel;
use gridshare_domain::wire::{Fill, IntervalResult, Message, OrderAck};
use gridshare_domain::{GatewayId, Wh};
use gridshare_market::{Live, NewOrder, Origin};
use gridshare_matching_engine::{Command, Event};
use gridshare_storage::evidence::LoggedEnvelope;
use gridshare_storage::readings::{self, Reading};
use rumqttc::{AsyncClient, Publish};

use crate::ingest::{Inbound, IngestError, Staged};

use super::downlink::publish_signed;
use super::{State, done, equivocated, refused_for_good};

fn answer(st: &State, client: &AsyncClient, gateway: GatewayId, a: &OrderAck) {
    let body = serde_json::to_string(a).unwrap_or_default();
    if let Err(e) = publish_signed(st, client, gateway, Channel::OrderAck, false, &body) {
        tracing::warn!(%gateway, error = %e, "publishing an order ack");
    }
}

fn reject_code(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::Rejected { reason, .. } => Some(reason.code().to_owned()),
        _ => None,
    })
}

pub(super) async fn handle(st: &mut State, client: &AsyncClient, p: Publish, staged: Result<Staged, IngestError>) {
    // the signer and sequence number of a signed message, which its receipt names
    let message = match &staged {
        Ok(Staged::Signed { checked, .. }) => Some((checked.envelope.gateway, checked.envelope.seq)),
        _ => None,
    };
    let sender = message.map(|(g, _)| g);
    let before = sender.and_then(|g| st.ingest.verifier_mut().window(g));
    let inbound = match staged.and_then(|s| st.ingest.accept(s)) {
        Ok(i) => i,
        Err(IngestError::Equivocation { second, .. }) => {
            st.metrics.reject("equivocation");
            equivocated(st, *second, &p.payload).await;
            return;
        }
        Err(e) => {
            st.metrics.reject(e.reason());
            tracing::debug!(topic = %p.topic, error = %e, "gateway message rejected");
            // counted and dropped; a genuine message seen before (sent again for want of a
            // receipt) or refused for good is receipted, so that its gateway stops sending it
            let receipted = match &e {
                IngestError::Envelope(
                    gridshare_domain::envelope::EnvelopeError::Replayed { .. }
                    | gridshare_domain::envelope::EnvelopeError::SequenceTooOld { .. },
                ) => message,
                _ => refused_for_good(&p, &e),
            };
            done(st, receipted);
            return;
        }
    };
    // Not acted on (the engine or the database is down): the sequence number is given back, so
    // the message is taken when its gateway sends it again for want of a receipt.
    let undo = |st: &mut State| {
        if let (Some(g), Some(b)) = (sender, before) {
            st.ingest.verifier_mut().restore_window(g, b);
        }
    };
    // Sequence numbers are durable before a message is receipted, and no restart reopens one
    // to a second effect. Telemetry's window is stored with its batch, in the same transaction.
    // An order's or a cancel's is journaled by the engine with its command (its origin), in the
    // same write, and the journal's windows are merged into the stored ones at every start. A
    // report or an answer is stored first (an upsert: storing it again changes nothing) and its
    // window with the next batch, so a crash in between makes its resend store the same again.
    // Each is receipted after that batch's commit (`flush_buffer`).
    match inbound {
        Inbound::Telemetry { gateway, seq, samples } => {
            st.metrics.messages_in.get_or_create(&kind("telemetry")).inc();
            if let (Some(tx), Some(&owner)) = (&st.live, st.owners.get(&gateway))
                && tx.receiver_count() > 0
            {
                let _ = tx.send(Arc::new(Live {
                    owner,
                    gateway,
                    samples: samples.clone(),
                }));
            }
            st.buffer
                .extend(samples.into_iter().map(|sample| Reading { gateway, seq, sample }));
            st.touched.push(gateway);
            st.uncommitted.push((gateway, seq));
            st.logged.push(LoggedEnvelope {
                gateway,
                seq,
                json: String::from_utf8_lossy(&p.payload).into_owned(),
            });
        }
        Inbound::Order { gateway, order } => {
            st.metrics.messages_in.get_or_create(&kind("order")).inc();
            let Some(&owner) = st.owners.get(&gateway) else {
                done(st, message);
                return;
            };
            let origin = message.map(|(_, seq)| Origin {
                gateway,
                seq,
                client_order_id: order.order_id,
            });
            let result = st
                .market
                .submit(NewOrder {
                    owner,
                    origin,
                    zone: order.zone,
                    interval: order.interval,
                    side: order.side,
                    quantity: order.quantity,
                    price: order.limit_price,
                    tif: order.tif,
                    mode: order.mode,
                })
                .await;
            let a = match result {
                Ok(o) => match reject_code(&o.events) {
                    Some(reason) => OrderAck {
                        v: 1,
                        client_order_id: order.order_id,
                        order_id: None,
                        status: "rejected".into(),
                        reason: Some(reason),
                        filled: Wh(0),
                    },
                    None => {
                        let filled: i64 = o
                            .events
                            .iter()
                            .filter_map(|e| match e {
                                Event::Trade { quantity, .. } => Some(quantity.0),
                                _ => None,
                            })
                            .sum();
                        // the link is journaled with the order and recorded with it
                        if let Some(id) = o.order_id {
                            st.client_ids.insert((gateway, order.order_id), id);
                            st.by_market_id.insert(id, (gateway, order.order_id));
                        }
                        OrderAck {
                            v: 1,
                            client_order_id: order.order_id,
                            order_id: o.order_id,
                            status: if filled >= order.quantity.0 {
                                "filled"
                            } else {
                                "accepted"
                            }
                            .into(),
                            reason: None,
                            filled: Wh(filled),
                        }
                    }
                },
                Err(e) => {
                    // the engine is down: no receipt, the gateway sends it again
                    tracing::error!(error = %e, "order from a gateway not taken");
                    undo(st);
                    return;
                }
            };
            answer(st, client, gateway, &a);
            acted(st, &p, message);
        }
        Inbound::Cancel { gateway, cancel } => {
            st.metrics.messages_in.get_or_create(&kind("cancel")).inc();
            let Some(&owner) = st.owners.get(&gateway) else {
                done(st, message);
                return;
            };
            let id = st
                .client_ids
                .get(&(gateway, cancel.order_id))
                .copied()
                .unwrap_or(cancel.order_id);
            let cmd = Command::Cancel {
                at: st.market.clock().now(),
                id,
                owner,
            };
            let result = match message {
                Some((_, seq)) => {
                    let origin = Origin {
                        gateway,
                        seq,
                        client_order_id: cancel.order_id,
                    };
                    st.market.command_from(origin, cmd).await
                }
                None => st.market.command(cmd).await,
            };
            let a = match result {
                Ok(o) => {
                    let reason = reject_code(&o.events);
                    OrderAck {
                        v: 1,
                        client_order_id: cancel.order_id,
                        order_id: Some(id),
                        status: if reason.is_some() { "rejected" } else { "cancelled" }.into(),
                        reason,
                        filled: Wh(0),
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cancel from a gateway not taken");
                    undo(st);
                    return;
                }
            };
            answer(st, client, gateway, &a);
            acted(st, &p, message);
        }
        Inbound::DrReport { gateway, report } => {
            match gridshare_storage::dr::record_report(&st.db, gateway, &report).await {
                Ok(()) => {
                    st.metrics.messages_in.get_or_create(&kind("dr_report")).inc();
                    acted(st, &p, message);
                }
                Err(gridshare_storage::StorageError::MissingReference { .. }) => {
                    st.metrics.reject("unknown_event");
                    acted(st, &p, message);
                }
                // the database is down: no receipt, the gateway sends it again
                Err(e) => {
                    tracing::warn!(%gateway, error = %e, "storing a demand-response report");
                    undo(st);
                }
            }
        }
        Inbound::PreferencesApplied { gateway, answer } => {
            if !answer.applied {
                tracing::warn!(%gateway, version = answer.version, reason = answer.reason.as_deref().unwrap_or(""), "a gateway refused its home's preferences");
            }
            match gridshare_storage::preferences::record_answer(&st.db, gateway, &answer, st.market.clock().now()).await
            {
                Ok(()) => {
                    st.metrics.messages_in.get_or_create(&kind("preferences_applied")).inc();
                    acted(st, &p, message);
                }
                // the database is down: no receipt, the gateway sends it again
                Err(e) => {
                    tracing::warn!(%gateway, error = %e, "storing a gateway's answer to preferences");
                    undo(st);
                }
            }
        }
        Inbound::CheckResult { gateway, result } => {
            match gridshare_storage::checks::answer(&st.db, gateway, &result, st.market.clock().now()).await {
                Ok(()) => {
                    st.pending_checks.answered(result.check_id, gateway);
                    st.metrics.messages_in.get_or_create(&kind("check_result")).inc();
                    tracing::info!(%gateway, check = result.check_id, devices = result.devices.len(), "remote check answered");
                    acted(st, &p, message);
                }
                Err(gridshare_storage::StorageError::NotFound { .. }) => {
                    st.metrics.reject("unknown_check");
                    acted(st, &p, message);
                }
                Err(e) => {
                    tracing::warn!(%gateway, error = %e, "storing a check result");
                    undo(st);
                }
            }
        }
        Inbound::Status { gateway, online } => {
            st.metrics.messages_in.get_or_create(&kind("status")).inc();
            tracing::info!(%gateway, online, "gateway presence");
            if online {
                super::downlink::ask_again(st, client, Some(gateway));
            }
            done(st, message);
        }
    }
}

/// A message acted on (an order or a cancel journaled with its origin, a report or an answer
/// stored): its window and its envelope (the evidence log) go with the next batch, and its
/// receipt after that batch's commit.
fn acted(st: &mut State, p: &Publish, message: Option<(GatewayId, u64)>) {
    if let Some((gateway, seq)) = message {
        st.touched.push(gateway);
        st.logged.push(LoggedEnvelope {
            gateway,
            seq,
            json: String::from_utf8_lossy(&p.payload).into_owned(),
        });
    }
    done(st, message);
}

/// Sends what the market's outcome tells gateways: each trade's fill to the gateways whose
/// orders traded, and each closed book's result to every gateway, with its own node's price only.
pub(super) fn publish_outcome(st: &State, client: &AsyncClient, o: &gridshare_market::Outcome) {
    for trade in o.events.iter().filter_map(Event::trade_report) {
        for id in [trade.buy_order, trade.sell_order] {
            if let Some(&(gateway, client_order_id)) = st.by_market_id.get(&id) {
                let fill = Fill {
                    v: 1,
                    client_order_id,
                    order_id: id,
                    trade: trade.clone(),
                };
                let body = serde_json::to_string(&fill).unwrap_or_default();
                if let Err(e) = publish_signed(st, client, gateway, Channel::MarketResult, false, &body) {
                    tracing::warn!(%gateway, error = %e, "publishing a fill");
                }
            }
        }
    }
    for result in Event::interval_results(&o.events) {
        for (&gateway, &node) in &st.nodes {
            let mine = IntervalResult {
                node_prices: result.node_prices.iter().filter(|p| p.node == node).copied().collect(),
                ..result.clone()
            };
            let body = serde_json::to_string(&Message::IntervalResult(mine)).unwrap_or_default();
            if let Err(e) = publish_signed(st, client, gateway, Channel::MarketResult, false, &body) {
                tracing::warn!(%gateway, error = %e, "publishing an interval result");
            }
        }
    }
}

fn kind(k: &str) -> gridshare_market::metrics::KindLabels {
    gridshare_market::metrics::KindLabels { kind: k.to_owned() }
}

/// Writes the buffered samples and the replay windows of the gateways they came from in one
/// transaction; then everything handled so far is durable and due a receipt. On a database
/// error everything stays buffered (and unreceipted) for the next try.
pub(super) async fn flush_buffer(st: &mut State) {
    if st.buffer.is_empty() && st.logged.is_empty() {
        for (g, seq) in st.uncommitted.drain(..) {
            st.receipts.entry(g).or_default().push(seq);
        }
        return;
    }
    st.touched.sort_unstable();
    st.touched.dedup();
    let windows: Vec<_> = st
        .touched
        .iter()
        .filter_map(|&g| st.ingest.verifier_mut().window(g).map(|w| (g, w)))
        .collect();
    if let Err(e) = readings::insert_batch_with_windows(&st.db, &st.buffer, &windows, &st.logged).await {
        tracing::warn!(error = %e, rows = st.buffer.len(), "storing telemetry failed; will retry");
        return;
    }
    st.touched.clear();
    st.buffer.clear();
    st.logged.clear();
    for (g, seq) in st.uncommitted.drain(..) {
        st.receipts.entry(g).or_default().push(seq);
    }
}
