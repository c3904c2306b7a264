//! The sender: the gateway's one connection to the market's broker. It sends the outbox in
//! order, one message at a time at QoS 1, and removes a message only when the broker has
//! acknowledged it; a new session sends the unacknowledged one again. While the broker cannot
//! be reached it retries with a growing delay and the outbox fills.
//!
//! The same connection brings the market's messages in: at each connection the sender
//! subscribes to the gateway's topics and hands each arriving message to the
//! [receiver](super::receiver). It tells the poller whether it is connected, and publishes the
//! gateway's presence (`online` when connected; the broker publishes the last will, `offline`,
//! when the connection drops).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gridshare_domain::GatewayId;
use gridshare_domain::topics::{self, Broker, Channel};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Notify, watch};

use super::RunError;
use super::receiver::{Receiver, SUBSCRIBED};
use crate::config::Config;
use crate::modbus::Backoff;
use crate::outbox::Outbox;

/// The environment variable that, when set, overrides `mqtt.password`.
const PASSWORD_VARIABLE: &str = "GRIDSHARE_GATEWAY_MQTT_PASSWORD";

/// The connection and what is in flight on it.
pub(super) struct Sender {
    gateway: GatewayId,
    /// The gateway's presence topic.
    status: String,
    client: AsyncClient,
    events: EventLoop,
    outbox: Arc<Mutex<Outbox>>,
    /// Woken by the poller when it has stored a message.
    wake: Arc<Notify>,
    receiver: Receiver,
    /// Tells the poller whether the broker is connected.
    online: watch::Sender<bool>,
    connected: bool,
    /// The message sent and not yet acknowledged: its sequence number, its packet id once known.
    sent: Option<(u64, Option<u16>)>,
    backoff: Backoff,
}

impl std::fmt::Debug for Sender {
    // rumqttc's event loop has no Debug; what is in flight is what one wants to see
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("gateway", &self.gateway)
            .field("connected", &self.connected)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Sets the connection up from the configuration's `mqtt` section; it is made when
    /// [`Sender::run`] starts.
    pub(super) fn new(
        cfg: &Config,
        outbox: Arc<Mutex<Outbox>>,
        wake: Arc<Notify>,
        receiver: Receiver,
        online: watch::Sender<bool>,
    ) -> Result<Self, RunError> {
        let gateway = GatewayId(cfg.gateway.id);
        let Broker { host, port, tls, .. } = Broker::parse(&cfg.mqtt.url).map_err(RunError::MqttUrl)?;
        let status = topics::topic(gateway, Channel::Status);
        let mut opts = MqttOptions::new(format!("gridshare-gw-{}", gateway.0), host, port);
        opts.set_keep_alive(Duration::from_secs(10));
        opts.set_clean_session(true);
        opts.set_max_packet_size(256 * 1024, 256 * 1024);
        opts.set_last_will(LastWill::new(status.clone(), "offline", QoS::AtLeastOnce, true));
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
        let (client, events) = AsyncClient::new(opts, 64);
        Ok(Self {
            gateway,
            status,
            client,
            events,
            outbox,
            wake,
            receiver,
            online,
            connected: false,
            sent: None,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
        })
    }

    /// Connects, and reconnects, until `stop` changes; an error is the outbox failing.
    pub(super) async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), RunError> {
        loop {
            let event = tokio::select! {
                ev = self.events.poll() => Some(ev),
                _ = self.wake.notified() => None,
                _ = stop.changed() => return Ok(()),
            };
            match event {
                Some(ev) => self.on_event(ev).await?,
                None if self.connected => self.send_next()?,
                None => {}
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
                let _ = self
                    .client
                    .try_publish(self.status.clone(), QoS::AtMostOnce, true, "online");
                for channel in SUBSCRIBED {
                    let _ = self
                        .client
                        .try_subscribe(topics::topic(self.gateway, channel), QoS::AtLeastOnce);
                }
                let _ = self.online.send(true);
                self.sent = None; // a new session: what was in flight is sent again
                self.send_next()?;
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => {
                if let Some((_, id @ None)) = &mut self.sent {
                    *id = Some(pkid);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some((n, Some(pkid))) = self.sent
                    && pkid == ack.pkid
                {
                    self.outbox
                        .lock()
                        .map_err(|_| RunError::OutboxPoisoned)?
                        .pop(n)
                        .map_err(RunError::Outbox)?;
                    self.sent = None;
                    self.send_next()?;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => self.receiver.on_publish(&p.topic, &p.payload),
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
                self.sent = None;
                tokio::time::sleep(self.backoff.next_delay()).await;
            }
        }
        Ok(())
    }

    /// Publishes the outbox's first message unless one is in flight already.
    fn send_next(&mut self) -> Result<(), RunError> {
        if self.sent.is_some() {
            return Ok(());
        }
        let front = self
            .outbox
            .lock()
            .map_err(|_| RunError::OutboxPoisoned)?
            .front()
            .map_err(RunError::Outbox)?;
        if let Some((entry, topic, payload)) = front {
            self.client
                .try_publish(topic, QoS::AtLeastOnce, false, payload)
                .map_err(RunError::Publish)?;
            self.sent = Some((entry.seq, None));
        }
        Ok(())
    }

    /// Says goodbye when connected: `offline` on the presence topic (a clean disconnect sends
    /// no last will), then a disconnect, given a second to go out.
    pub(super) async fn shutdown(mut self) {
        if !self.connected {
            return;
        }
        let _ = self.client.try_publish(self.status, QoS::AtMostOnce, true, "offline");
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
