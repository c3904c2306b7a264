//! The sender: the gateway's one connection to the market's broker. It sends the outbox in
//! order at QoS 1, up to [`WINDOW`] messages ahead of the market's receipts, and deletes a
//! message only when the market's signed [`Stored`] receipt names it: the broker's
//! acknowledgement says only that the broker has it, and a broker may lose what it acknowledged
//! (the embedded one dies with the market service; a market away from a broker misses what the
//! broker did not keep for it). At every connection, and when the oldest message sent has had
//! no receipt for a while ([`ReceiptTimer`]: 20 s, longer when receipts are slow), it sends
//! again from the oldest waiting message; the market
//! receipts what it had already stored without storing it twice. While the broker cannot be
//! reached it retries with a growing delay and the outbox fills.
//!
//! The same connection brings the market's messages in: at each connection the sender
//! subscribes to the gateway's topics and hands each arriving message to the
//! [receiver](super::receiver). It tells the poller whether it is connected, and publishes the
//! gateway's presence, signed like every upstream message ([`Presence`]): before each connection
//! it seals an `online` and an `offline` at the same instant, publishes the first when connected
//! and leaves the second with the broker as the last will, to publish when the connection drops.
//! The market takes a presence only when it is newer than the last one it took, so a replayed
//! or belated will cannot mark a connected gateway offline, and nobody without the gateway's key
//! can mark it anything.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gridshare_domain::GatewayId;
use gridshare_domain::envelope::GatewayKey;
use gridshare_domain::topics::{self, Broker, Channel};
use gridshare_domain::wire::{Message, Presence, Stored};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Notify, watch};

use super::receiver::{Receiver, SUBSCRIBED};
use super::{ClockFn, RunError};
use crate::config::Config;
use crate::modbus::Backoff;
use crate::outbox::Outbox;

/// Most messages sent and not yet receipted.
pub(super) const WINDOW: usize = 32;
const _: () = assert!(
    WINDOW as u64 * 2 <= gridshare_domain::envelope::ReplayWindow::WIDTH,
    "the market's replay window must take a resent window"
);
/// How long the oldest message sent may go without a receipt before the window is sent again,
/// at least (see [`ReceiptTimer`]).
pub(super) const RESEND_AFTER: Duration = Duration::from_secs(20);
/// ... and at most.
pub(super) const RESEND_MAX: Duration = Duration::from_secs(120);

/// How long to wait for a receipt before sending the window again, set from the receipts' round
/// trips as TCP sets its retransmission timeout (RFC 6298): the smoothed round trip plus four
/// times its variation, within [`RESEND_AFTER`]..=[`RESEND_MAX`], doubled after each timeout
/// until a receipt comes. A market that is slow because it is behind is then not sent its
/// backlog again (500 demo homes re-sent 25,934 messages that way, all refused as replayed, on
/// an intake that was already behind), and one that is away is still asked again. Round trips
/// of messages sent more than once are not sampled (Karn): their receipt may answer either send.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReceiptTimer {
    smoothed: Option<Duration>,
    variation: Duration,
    /// Timeouts since the last round trip sampled: each doubles the wait.
    timeouts: u32,
}

impl ReceiptTimer {
    /// A receipt came `rtt` after its message was sent.
    pub(super) fn sample(&mut self, rtt: Duration) {
        self.timeouts = 0;
        match self.smoothed {
            None => {
                self.smoothed = Some(rtt);
                self.variation = rtt / 2;
            }
            Some(s) => {
                let diff = s.abs_diff(rtt);
                self.variation = (self.variation * 3 + diff) / 4;
                self.smoothed = Some((s * 7 + rtt) / 8);
            }
        }
    }

    /// The wait ran out and the window was sent again.
    pub(super) fn timed_out(&mut self) {
        self.timeouts = self.timeouts.saturating_add(1);
    }

    /// How long the oldest message sent may go without a receipt.
    pub(super) fn timeout(&self) -> Duration {
        let base = self.smoothed.map_or(RESEND_AFTER, |s| {
            (s + self.variation * 4).clamp(RESEND_AFTER, RESEND_MAX)
        });
        base.saturating_mul(1 << self.timeouts.min(8)).min(RESEND_MAX)
    }
}

/// The environment variable that, when set, overrides `mqtt.password`.
const PASSWORD_VARIABLE: &str = "GRIDSHARE_GATEWAY_MQTT_PASSWORD";

/// The connection and what is in flight on it.
pub(super) struct Sender {
    gateway: GatewayId,
    /// The gateway's presence topic.
    status: String,
    /// Seals presence.
    key: GatewayKey,
    clock: ClockFn,
    /// The `online` sealed with the last will of the coming connection.
    online_status: Vec<u8>,
    client: AsyncClient,
    events: EventLoop,
    outbox: Arc<Mutex<Outbox>>,
    /// Woken by the poller when it has stored a message.
    wake: Arc<Notify>,
    receiver: Receiver,
    /// Tells the poller whether the broker is connected.
    online: watch::Sender<bool>,
    connected: bool,
    /// Messages sent and not yet receipted, oldest first: sequence number and when sent.
    in_flight: VecDeque<(u64, Instant)>,
    /// The last message sent on this connection (`None`: send from the oldest waiting).
    cursor: Option<u64>,
    /// The highest sequence number sent before the last time the window was sent again: the
    /// round trips of those are not sampled.
    resent_upto: Option<u64>,
    /// The highest sequence number sent.
    sent_upto: Option<u64>,
    timer: ReceiptTimer,
    backoff: Backoff,
    /// After a failed connection: how long to wait before the next try (a wait that watches
    /// the stop signal, so that a stop never waits for the back-off).
    pause: Option<Duration>,
    traffic: Arc<super::Traffic>,
}

impl std::fmt::Debug for Sender {
    // rumqttc's event loop has no Debug; what is in flight is what one wants to see
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("gateway", &self.gateway)
            .field("connected", &self.connected)
            .field("in_flight", &self.in_flight.len())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Sets the connection up from the configuration's `mqtt` section; it is made when
    /// [`Sender::run`] starts.
    #[expect(clippy::too_many_arguments, reason = "the sender's collaborators, each kept once")]
    pub(super) fn new(
        cfg: &Config,
        key: GatewayKey,
        clock: ClockFn,
        outbox: Arc<Mutex<Outbox>>,
        wake: Arc<Notify>,
        receiver: Receiver,
        online: watch::Sender<bool>,
        traffic: Arc<super::Traffic>,
    ) -> Result<Self, RunError> {
        let gateway = GatewayId(cfg.gateway.id);
        let Broker { host, port, tls, .. } = Broker::parse(&cfg.mqtt.url).map_err(RunError::MqttUrl)?;
        let status = topics::topic(gateway, Channel::Status);
        let mut opts = MqttOptions::new(format!("gridshare-gw-{}", gateway.0), host, port);
        opts.set_keep_alive(Duration::from_secs(10));
        opts.set_clean_session(true);
        opts.set_max_packet_size(256 * 1024, 256 * 1024);
        let password = std::env::var(PASSWORD_VARIABLE).ok().or(cfg.mqtt.password.clone());
        if let Some(user) = &cfg.mqtt.username {
            opts.set_credentials(user.clone(), password.unwrap_or_default());
        }
        if tls {
            let tls = topics::tls::client_config(cfg.mqtt.ca_file.as_deref()).map_err(RunError::Tls)?;
            opts.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
                tls,
            )));
        }
        let (client, events) = AsyncClient::new(opts, 2 * WINDOW);
        let mut sender = Self {
            gateway,
            status,
            key,
            clock,
            online_status: Vec::new(),
            client,
            events,
            outbox,
            wake,
            receiver,
            online,
            connected: false,
            in_flight: VecDeque::new(),
            cursor: None,
            resent_upto: None,
            sent_upto: None,
            timer: ReceiptTimer::default(),
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            pause: None,
            traffic,
        };
        sender.seal_presence();
        Ok(sender)
    }

    /// The signed presence `online` (sequence [`Presence::ONLINE_SEQ`]) or `offline`
    /// ([`Presence::OFFLINE_SEQ`]), sealed now.
    fn presence(&self, online: bool, at: gridshare_domain::Timestamp) -> Vec<u8> {
        let seq = if online {
            Presence::ONLINE_SEQ
        } else {
            Presence::OFFLINE_SEQ
        };
        self.key
            .seal(self.gateway, seq, at, &Message::Status(Presence { online }))
            .ok()
            .and_then(|env| serde_json::to_vec(&env).ok())
            .unwrap_or_default()
    }

    /// Seals the next connection's `online` and its last will at the same instant; the event
    /// loop takes the will when it connects.
    fn seal_presence(&mut self) {
        let at = (self.clock)();
        self.online_status = self.presence(true, at);
        let will = self.presence(false, at);
        self.events
            .mqtt_options
            .set_last_will(LastWill::new(self.status.clone(), will, QoS::AtLeastOnce, true));
    }

    /// Connects, and reconnects, until `stop` changes; an error is the outbox failing. Every
    /// wait (for the broker, for the poller, for the back-off after a failed connection)
    /// watches `stop`.
    pub(super) async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), RunError> {
        let mut check = tokio::time::interval(Duration::from_secs(1));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            if let Some(pause) = self.pause.take() {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {
                        // the next connection's presence, newer than anything sent on this one
                        self.seal_presence();
                    }
                    _ = stop.changed() => return Ok(()),
                }
                continue;
            }
            tokio::select! {
                ev = self.events.poll() => self.on_event(ev).await?,
                _ = self.wake.notified() => self.send_more()?,
                _ = check.tick() => self.resend_if_unanswered()?,
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    async fn on_event(&mut self, ev: Result<Event, ConnectionError>) -> Result<(), RunError> {
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                self.connected = true;
                self.backoff.reset();
                tracing::info!(
                    waiting = self.outbox.lock().map(|o| o.len()).unwrap_or(0),
                    "connected to the broker"
                );
                // subscribed before it says it is online: the market answers `online` with what
                // it asked while the gateway was away (unanswered checks), and the broker takes one
                // connection's packets in order
                for channel in SUBSCRIBED {
                    let _ = self
                        .client
                        .try_subscribe(topics::topic(self.gateway, channel), QoS::AtLeastOnce);
                }
                let _ = self
                    .client
                    .try_publish(self.status.clone(), QoS::AtMostOnce, true, self.online_status.clone());
                let _ = self.online.send(true);
                self.send_again();
                self.send_more()?;
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(receipt) = self.receiver.on_publish(&p.topic, &p.payload) {
                    self.on_receipt(&receipt)?;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = self.online.send(false);
                if self.connected {
                    tracing::warn!(error = %e, "broker connection lost; keeping messages in the outbox");
                } else {
                    // a wrong password or an untrusted certificate says so here, each retry
                    tracing::warn!(error = %e, "cannot connect to the broker; keeping messages in the outbox");
                }
                self.connected = false;
                self.send_again();
                self.pause = Some(self.backoff.next_delay());
            }
        }
        Ok(())
    }

    /// Deletes what the market has stored, then sends on.
    fn on_receipt(&mut self, receipt: &Stored) -> Result<(), RunError> {
        let removed = self
            .outbox
            .lock()
            .map_err(|_| RunError::OutboxPoisoned)?
            .remove_stored(receipt)
            .map_err(RunError::Outbox)?;
        self.traffic.count_receipted(removed);
        for &(seq, sent) in &self.in_flight {
            if receipt.contains(seq) && self.resent_upto.is_none_or(|r| seq > r) {
                self.timer.sample(sent.elapsed());
            }
        }
        self.in_flight.retain(|(seq, _)| !receipt.contains(*seq));
        self.send_more()
    }

    /// Forgets what was sent: the next [`Sender::send_more`] starts again from the oldest waiting
    /// message.
    fn send_again(&mut self) {
        self.in_flight.clear();
        self.cursor = None;
        self.resent_upto = self.sent_upto;
    }

    /// Sends the window again when its oldest message has gone unanswered for too long (the
    /// market was away, or its receipt was lost).
    fn resend_if_unanswered(&mut self) -> Result<(), RunError> {
        let Some((seq, sent)) = self.in_flight.front().copied() else {
            return Ok(());
        };
        let wait = self.timer.timeout();
        if self.connected && sent.elapsed() >= wait {
            tracing::info!(
                seq,
                after_s = wait.as_secs(),
                "no receipt from the market; sending the waiting messages again"
            );
            self.timer.timed_out();
            self.send_again();
            self.send_more()?;
        }
        Ok(())
    }

    /// Sends the next waiting messages while connected and the window has room.
    fn send_more(&mut self) -> Result<(), RunError> {
        while self.connected && self.in_flight.len() < WINDOW {
            let next = self
                .outbox
                .lock()
                .map_err(|_| RunError::OutboxPoisoned)?
                .next_after(self.cursor)
                .map_err(RunError::Outbox)?;
            let Some((entry, topic, payload)) = next else {
                break;
            };
            // Never more than a window of sequence numbers ahead of the oldest unreceipted: the
            // market's replay window is twice as wide, so when the oldest is sent again it is
            // still taken. (Counting messages alone is not enough: while the oldest waited for a
            // lost receipt, newer ones receipted at once kept moving the market's window on, and
            // the oldest came back "too old", receipted unstored.)
            if let Some((oldest, _)) = self.in_flight.front()
                && entry.seq >= oldest + WINDOW as u64
            {
                break;
            }
            // the request queue holds more than a window: full only while the connection is
            // stuck, and then the message goes at the next connection
            if self
                .client
                .try_publish(topic, QoS::AtLeastOnce, false, payload)
                .is_err()
            {
                break;
            }
            self.in_flight.push_back((entry.seq, Instant::now()));
            self.sent_upto = self.sent_upto.max(Some(entry.seq));
            self.cursor = Some(entry.seq);
        }
        Ok(())
    }

    /// Says goodbye when connected: `offline` on the presence topic (a clean disconnect sends
    /// no last will), then a disconnect, given a second to go out.
    pub(super) async fn shutdown(mut self) {
        if !self.connected {
            return;
        }
        let goodbye = self.presence(false, (self.clock)());
        let _ = self
            .client
            .try_publish(self.status.clone(), QoS::AtMostOnce, true, goodbye);
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(ev) = self.events.poll().await {
                if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receipt_timer_follows_slow_receipts_and_backs_off_but_stays_bounded() {
        let mut t = ReceiptTimer::default();
        assert_eq!(t.timeout(), RESEND_AFTER, "no round trip yet");
        // fast receipts: the floor holds
        for _ in 0..20 {
            t.sample(Duration::from_millis(30));
        }
        assert_eq!(t.timeout(), RESEND_AFTER);
        // a market 15-20 s behind: wait longer than it takes, so nothing is sent twice
        for i in 0..40 {
            t.sample(Duration::from_secs(15 + i % 6));
        }
        let slow = t.timeout();
        assert!(slow > Duration::from_secs(20) && slow < RESEND_MAX, "{slow:?}");
        // no receipt at all: each timeout doubles the wait, up to the ceiling
        t.timed_out();
        assert_eq!(t.timeout(), (slow * 2).min(RESEND_MAX));
        for _ in 0..20 {
            t.timed_out();
        }
        assert_eq!(t.timeout(), RESEND_MAX);
        // a receipt again: back to the round trips
        t.sample(Duration::from_millis(30));
        assert!(t.timeout() < RESEND_MAX);
    }
}
