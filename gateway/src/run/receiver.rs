//! What the market sends the gateway: each message arriving on one of its topics is decoded and
//! handed to the poller over a channel, so that everything touching the devices, the agent and
//! the outbox happens in the poller's one task.
//!
//! | topic | message | to the poller as |
//! |---|---|---|
//! | `order_ack` | [`OrderAck`] | [`MarketNews::Ack`] |
//! | `market_result` | [`Fill`], [`Message::IntervalResult`] | [`MarketNews::Fill`]; a result is logged |
//! | `dr/event` | [`Message::DrEvent`] | a [`DrEvent`] |
//! | `preferences` | [`Message::Preferences`] | [`Control::Preferences`] |
//! | `command` | [`Message::CheckRequest`] | [`Control::Check`] |
//! | `market/stored` | [`Stored`] | returned to the sender, which deletes those from the outbox |
//!
//! Every message is first checked by the [`DownlinkGuard`] (the market's signature, this gateway,
//! this channel, not seen before); what it refuses is logged, counted and dropped unread. Anything
//! unreadable or unexpected inside a good envelope is logged and dropped too: the market does not
//! wait for an answer to those.

use gridshare_domain::topics::Channel;
use gridshare_domain::wire::{CheckRequest, DrEvent, Fill, Message, OrderAck, Stored, TradingPreferences};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::downlink::DownlinkGuard;

/// The gateway's topics the sender subscribes to at every connection.
pub(super) const SUBSCRIBED: [Channel; 6] = [
    Channel::Stored,
    Channel::DrEvent,
    Channel::OrderAck,
    Channel::MarketResult,
    Channel::Preferences,
    Channel::Command,
];

/// What the market says of the agent's orders.
#[derive(Debug)]
pub(super) enum MarketNews {
    Ack(OrderAck),
    Fill(Fill),
}

/// What the market asks of the gateway.
#[derive(Debug)]
pub(super) enum Control {
    Preferences(TradingPreferences),
    Check(CheckRequest),
}

/// The poller's ends of the channels.
#[derive(Debug)]
pub(super) struct Inbox {
    pub(super) dr: UnboundedReceiver<DrEvent>,
    pub(super) market: UnboundedReceiver<MarketNews>,
    pub(super) control: UnboundedReceiver<Control>,
}

/// Decodes incoming messages and passes them on to the [`Inbox`].
#[derive(Debug)]
pub(super) struct Receiver {
    guard: DownlinkGuard,
    dr: UnboundedSender<DrEvent>,
    market: UnboundedSender<MarketNews>,
    control: UnboundedSender<Control>,
}

/// A receiver and the inbox it fills.
pub(super) fn channel(guard: DownlinkGuard) -> (Receiver, Inbox) {
    let (dr, dr_rx) = unbounded_channel();
    let (market, market_rx) = unbounded_channel();
    let (control, control_rx) = unbounded_channel();
    (
        Receiver {
            guard,
            dr,
            market,
            control,
        },
        Inbox {
            dr: dr_rx,
            market: market_rx,
            control: control_rx,
        },
    )
}

impl Receiver {
    /// One message published to `topic`; a receipt is returned, for the sender. A send fails
    /// only once the poller has stopped, when there is no one left to act on the message.
    pub(super) fn on_publish(&mut self, topic: &str, payload: &[u8]) -> Option<Stored> {
        let Some((channel, text)) = self.guard.check(topic, payload) else {
            return None; // refused: logged and counted by the guard
        };
        let payload = text.as_bytes();
        if channel == Channel::Stored {
            return match serde_json::from_slice::<Stored>(payload).map_err(|e| e.to_string()) {
                Ok(r) => match r.validate() {
                    Ok(()) => Some(r),
                    Err(e) => {
                        tracing::warn!(%topic, error = %e, "malformed receipt");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "unreadable receipt");
                    None
                }
            };
        }
        let channel = Some(channel);
        if channel == Some(Channel::OrderAck) {
            match serde_json::from_slice::<OrderAck>(payload) {
                Ok(a) => {
                    let _ = self.market.send(MarketNews::Ack(a));
                }
                Err(e) => tracing::warn!(%topic, error = %e, "unreadable order acknowledgement"),
            }
            return None;
        }
        if channel == Some(Channel::MarketResult) {
            match serde_json::from_slice::<Fill>(payload) {
                Ok(f) => {
                    tracing::info!(
                        order = f.client_order_id.0,
                        wh = f.trade.quantity.0,
                        price = f.trade.price.0,
                        "filled"
                    );
                    let _ = self.market.send(MarketNews::Fill(f));
                }
                Err(fill) => match serde_json::from_slice::<Message>(payload) {
                    Ok(Message::IntervalResult(r)) => {
                        // the book's result, with this home's node price when the auction traded:
                        // the agent bids at the homeowner's limits, so it is only logged
                        let node_price = r.node_prices.first().map(|p| p.price.0);
                        tracing::info!(
                            interval = %r.interval,
                            clearing_price = ?r.clearing_price.map(|p| p.0),
                            node_price = ?node_price,
                            volume_wh = r.total_volume.0,
                            "interval result"
                        );
                    }
                    _ => tracing::warn!(%topic, error = %fill, "unreadable fill or interval result"),
                },
            }
            return None;
        }
        match serde_json::from_slice::<Message>(payload) {
            Ok(Message::DrEvent(event)) if channel == Some(Channel::DrEvent) => {
                tracing::info!(event = %event.event_id, cancelled = event.cancelled, "demand-response event received");
                let _ = self.dr.send(event);
            }
            Ok(Message::Preferences(p)) if channel == Some(Channel::Preferences) => {
                let _ = self.control.send(Control::Preferences(p));
            }
            Ok(Message::CheckRequest(c)) if channel == Some(Channel::Command) => {
                tracing::info!(check = c.check_id, "remote check asked");
                let _ = self.control.send(Control::Check(c));
            }
            Ok(other) => tracing::warn!(kind = other.kind(), %topic, "unexpected message"),
            Err(e) => tracing::warn!(%topic, error = %e, "unreadable message"),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downlink::DownlinkCounts;
    use gridshare_domain::envelope::GatewayKey;
    use gridshare_domain::topics;
    use gridshare_domain::{GatewayId, Timestamp};
    use std::sync::Arc;

    #[test]
    fn messages_go_to_the_poller_by_topic_and_the_rest_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let market = GatewayKey::from_bytes(&[5u8; 32]).unwrap();
        let counts = Arc::new(DownlinkCounts::default());
        let guard = DownlinkGuard::open(GatewayId(7), Some(market.public()), dir.path(), counts.clone()).unwrap();
        let (mut receiver, mut inbox) = channel(guard);
        let topic = |c| topics::topic(GatewayId(7), c);
        let check = serde_json::to_string(&Message::CheckRequest(CheckRequest { check_id: 3 })).unwrap();
        let signed = |c, seq, text: &str| {
            serde_json::to_vec(
                &market
                    .seal_downlink(GatewayId(7), c, seq, Timestamp(1), text.to_owned())
                    .unwrap(),
            )
            .unwrap()
        };
        // unsigned: refused even on the right topic
        receiver.on_publish(&topic(Channel::Command), check.as_bytes());
        assert!(inbox.control.try_recv().is_err());
        assert_eq!(counts.refused("unsigned"), 1);
        receiver.on_publish(&topic(Channel::Command), &signed(Channel::Command, 1, &check));
        assert!(matches!(inbox.control.try_recv(), Ok(Control::Check(c)) if c.check_id == 3));
        // a check request signed for the command topic moved to another: refused; a check request
        // signed for the wrong topic, and signed garbage: neither reaches the poller
        receiver.on_publish(&topic(Channel::DrEvent), &signed(Channel::Command, 2, &check));
        assert_eq!(counts.refused("bad_signature"), 1);
        receiver.on_publish(&topic(Channel::DrEvent), &signed(Channel::DrEvent, 3, &check));
        receiver.on_publish(&topic(Channel::OrderAck), &signed(Channel::OrderAck, 4, "not json"));
        assert!(inbox.control.try_recv().is_err());
        assert!(inbox.dr.try_recv().is_err());
        assert!(inbox.market.try_recv().is_err());
    }
}
