//! The recorder: the database is a projection of the journal. The [`Projector`] turns each
//! command and its events into row changes (tracking every live order's remaining quantity, so a
//! complete fill is known); [`record`] writes them in bursts, one transaction each, retrying a
//! failing database with backoff so nothing is dropped. On start the whole journal is replayed
//! through the projector again, idempotently (see `handle.rs`).

use std::collections::HashMap;
use std::time::Duration;

use gridshare_domain::{DeliveryInterval, NodeId, OrderId, ParticipantId, Timestamp, Wh, ZoneId};
use gridshare_matching_engine::journal::Origin;
use gridshare_matching_engine::{CancelReason, Command, Event};
use gridshare_storage::Db;
use gridshare_storage::orders::{self, Change, OrderRecord, OrderStatus};
use tokio::sync::mpsc;

/// Turns commands and their events into database changes, tracking each live order's remaining
/// quantity so a complete fill is known.
#[derive(Debug, Default)]
pub(crate) struct Projector {
    /// Each live order.
    pub(crate) live: HashMap<OrderId, LiveOrder>,
    pub(crate) nodes: HashMap<ParticipantId, NodeId>,
    pub(crate) max_id: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LiveOrder {
    rest: i64,
    owner: ParticipantId,
    zone: ZoneId,
    interval: DeliveryInterval,
}

fn cancel_reason(r: CancelReason) -> &'static str {
    match r {
        CancelReason::Requested => "requested",
        CancelReason::ImmediateOrCancel => "immediate_or_cancel",
        CancelReason::SelfTrade => "self_trade",
        CancelReason::Unmatched => "unmatched",
    }
}

impl Projector {
    /// The book of a live order.
    pub(crate) fn book_of(&self, id: OrderId) -> Option<(ZoneId, DeliveryInterval)> {
        self.live.get(&id).map(|l| (l.zone, l.interval))
    }

    /// Owners of the orders `events` name, looked up before [`Self::changes`] forgets them.
    pub(crate) fn owners(&self, cmd: &Command, events: &[Event]) -> Vec<(OrderId, ParticipantId)> {
        let mut out = Vec::new();
        let mut add = |id: OrderId, owner: Option<ParticipantId>| {
            if let Some(o) = owner.or_else(|| self.live.get(&id).map(|l| l.owner))
                && !out.contains(&(id, o))
            {
                out.push((id, o));
            }
        };
        let submitted = match cmd {
            Command::Submit { order, .. } => Some((order.id, order.owner)),
            _ => None,
        };
        for e in events {
            match *e {
                Event::Accepted { id } | Event::Amended { id, .. } | Event::Cancelled { id, .. } => {
                    add(id, submitted.filter(|s| s.0 == id).map(|s| s.1));
                }
                Event::Rejected { id: Some(id), .. } => add(id, submitted.filter(|s| s.0 == id).map(|s| s.1)),
                Event::Trade {
                    buy,
                    sell,
                    buyer,
                    seller,
                    ..
                } => {
                    add(buy, Some(buyer));
                    add(sell, Some(seller));
                }
                _ => {}
            }
        }
        out
    }

    pub(crate) fn changes(&mut self, cmd: &Command, origin: Option<&Origin>, events: &[Event], out: &mut Vec<Change>) {
        let at = match *cmd {
            Command::Submit { at, .. }
            | Command::Cancel { at, .. }
            | Command::Amend { at, .. }
            | Command::CloseGate { at, .. } => at,
            Command::AddParticipant { .. } | Command::OpenBook { .. } => Timestamp(0),
        };
        if let Command::AddParticipant { owner, node } = *cmd
            && events.iter().any(|e| matches!(e, Event::ParticipantAdded { .. }))
        {
            self.nodes.insert(owner, node);
        }
        if let Command::Submit { order, .. } = cmd {
            self.max_id = self.max_id.max(order.id.0);
            if events
                .iter()
                .any(|e| matches!(e, Event::Accepted { id } if *id == order.id))
            {
                self.live.insert(
                    order.id,
                    LiveOrder {
                        rest: order.quantity.0,
                        owner: order.owner,
                        zone: order.zone,
                        interval: order.interval,
                    },
                );
                out.push(Change::Accepted(OrderRecord {
                    id: order.id,
                    owner: order.owner,
                    gateway: origin.map(|o| o.gateway),
                    zone: order.zone,
                    interval: order.interval,
                    side: order.side,
                    quantity: order.quantity,
                    price: order.price,
                    tif: order.tif,
                    mode: order.mode,
                    status: OrderStatus::Open,
                    filled: Wh(0),
                    reason: None,
                    created_at: at,
                    updated_at: at,
                }));
                if let Some(o) = origin {
                    out.push(Change::Linked {
                        gateway: o.gateway,
                        client_order_id: o.client_order_id,
                        order_id: order.id,
                    });
                }
            }
        }
        let results = Event::interval_results(events);
        for e in events {
            match *e {
                Event::Trade {
                    buy,
                    sell,
                    quantity,
                    at,
                    ..
                } => {
                    if let Some(t) = e.trade_report() {
                        out.push(Change::Trade(t));
                    }
                    for id in [buy, sell] {
                        if let Some(o) = self.live.get_mut(&id) {
                            o.rest -= quantity.0;
                            if o.rest <= 0 {
                                self.live.remove(&id);
                                out.push(Change::Filled { id, at });
                            }
                        }
                    }
                }
                Event::Amended {
                    id, quantity, price, ..
                } => {
                    if let Some(o) = self.live.get_mut(&id) {
                        o.rest = quantity.0;
                    }
                    out.push(Change::Amended {
                        id,
                        quantity,
                        price,
                        at,
                    });
                }
                Event::Cancelled { id, reason, .. } => {
                    self.live.remove(&id);
                    out.push(Change::Cancelled {
                        id,
                        reason: cancel_reason(reason),
                        at,
                    });
                }
                Event::BookClosed { zone, interval, .. } => {
                    if let Some(result) = results.iter().find(|r| (r.zone, r.interval) == (zone, interval)) {
                        out.push(Change::Result {
                            result: result.clone(),
                            closed_at: at,
                        });
                    }
                }
                Event::NodePrice { .. } => out.extend(e.node_price().map(Change::NodePrice)),
                Event::ParticipantAdded { .. }
                | Event::BookOpened { .. }
                | Event::Accepted { .. }
                | Event::Rejected { .. }
                | Event::AuctionResult { .. } => {}
            }
        }
    }
}

/// Writes changes in bursts (everything queued goes in one transaction); a failing database is
/// retried with backoff and nothing is dropped.
pub(crate) async fn record(db: Db, mut rx: mpsc::UnboundedReceiver<Vec<Change>>) {
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        while batch.len() < 5_000 {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let mut wait = Duration::from_millis(100);
        while let Err(e) = orders::record(&db, &batch).await {
            tracing::warn!(error = %e, changes = batch.len(), "recording market changes failed; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }
}
