//! Ingest: from an MQTT publish (topic + bytes) to a verified, typed inbound
//! message — or a counted rejection with a reason. Never panics on input.
//!
//! ```text
//! topic ──parse──▶ (gateway, channel) ── downstream channel? reject
//! bytes ──Verifier::open_from(topic gateway)──▶ envelope + message ── kind fits channel? ──▶ Inbound
//!          (signed by another gateway: refused before it uses up a sequence number)
//! ```
//!
//! The topic check matters even though the broker's ACL confines each gateway
//! to its prefix: a message signed by gateway A and published under B's topic
//! is a replay or a misconfiguration, and either must be visible.

use gridshare_domain::envelope::{EnvelopeError, Verifier};
use gridshare_domain::ids::GatewayId;
use gridshare_domain::interval::Timestamp;
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::{CancelOrder, DrReport, Message, NewOrder, TelemetrySample};

/// A verified message from a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Device samples, to store.
    Telemetry {
        /// Sender.
        gateway: GatewayId,
        /// The envelope's sequence number (idempotency key with the gateway).
        seq: u64,
        /// The samples.
        samples: Vec<TelemetrySample>,
    },
    /// A new order for the engine.
    Order {
        /// Sender.
        gateway: GatewayId,
        /// The order.
        order: NewOrder,
    },
    /// A cancel for the engine.
    Cancel {
        /// Sender.
        gateway: GatewayId,
        /// The cancel.
        cancel: CancelOrder,
    },
    /// A demand-response report.
    DrReport {
        /// Sender.
        gateway: GatewayId,
        /// The report.
        report: DrReport,
    },
    /// Presence: `online` or `offline` (the last will).
    Status {
        /// The gateway.
        gateway: GatewayId,
        /// True when online.
        online: bool,
    },
}

/// Why an inbound publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// Not a GridShare topic.
    #[error("not a GridShare gateway topic: {0:?}")]
    UnknownTopic(String),
    /// A publish on a channel only the service may publish on.
    #[error("gateways may not publish on {0:?}")]
    DownstreamTopic(String),
    /// Envelope checks failed.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// A message kind that does not belong on this channel.
    #[error("a {kind} message does not belong on the {channel} channel")]
    WrongChannel {
        /// Message kind.
        kind: &'static str,
        /// Channel suffix.
        channel: &'static str,
    },
    /// A status payload other than `online`/`offline`.
    #[error("status must be \"online\" or \"offline\"")]
    BadStatus,
}

impl IngestError {
    /// Stable reason code for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownTopic(_) => "unknown_topic",
            Self::DownstreamTopic(_) => "downstream_topic",
            Self::Envelope(e) => e.reason(),
            Self::WrongChannel { .. } => "wrong_channel",
            Self::BadStatus => "bad_status",
        }
    }
}

/// Turns publishes into verified [`Inbound`] messages.
#[derive(Debug)]
pub struct Ingest {
    verifier: Verifier,
}

impl Ingest {
    /// Ingest over a verifier that knows the registered gateways.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    /// The verifier, to register or revoke gateways and persist replay windows.
    pub fn verifier_mut(&mut self) -> &mut Verifier {
        &mut self.verifier
    }

    /// Check one publish.
    pub fn handle(&mut self, topic: &str, payload: &[u8], now: Timestamp) -> Result<Inbound, IngestError> {
        let (gateway, channel) = topics::parse(topic).ok_or_else(|| IngestError::UnknownTopic(topic.to_owned()))?;
        if !channel.is_upstream() {
            return Err(IngestError::DownstreamTopic(topic.to_owned()));
        }
        if channel == Channel::Status {
            // Presence is unsigned: the broker publishes the last will, not the gateway.
            return match payload {
                b"online" => Ok(Inbound::Status { gateway, online: true }),
                b"offline" => Ok(Inbound::Status { gateway, online: false }),
                _ => Err(IngestError::BadStatus),
            };
        }
        let (env, msg) = self.verifier.open_from(gateway, payload, now)?;
        match (channel, msg) {
            (Channel::Telemetry, Message::Telemetry(t)) => Ok(Inbound::Telemetry {
                gateway,
                seq: env.seq,
                samples: t.samples,
            }),
            (Channel::Orders, Message::Order(order)) => Ok(Inbound::Order { gateway, order }),
            (Channel::Orders, Message::Cancel(cancel)) => Ok(Inbound::Cancel { gateway, cancel }),
            (Channel::DrReport, Message::DrReport(report)) => Ok(Inbound::DrReport { gateway, report }),
            (channel, msg) => Err(IngestError::WrongChannel {
                kind: msg.kind(),
                channel: channel.suffix(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridshare_domain::envelope::{FreshnessPolicy, GatewayKey, ReplayWindow};
    use gridshare_domain::ids::{DeviceId, OrderId};
    use gridshare_domain::wire::{DeviceKind, DeviceStatus, Quality, Telemetry};
    use gridshare_domain::{W, Wh};

    const NOW: Timestamp = Timestamp(1_764_064_800_000);

    fn setup() -> (GatewayKey, Ingest) {
        let key = GatewayKey::from_bytes(&[9u8; 32]).unwrap();
        let mut v = Verifier::new(FreshnessPolicy::default());
        v.register(GatewayId(5), key.public(), ReplayWindow::default());
        (key, Ingest::new(v))
    }

    fn telemetry() -> Message {
        Message::Telemetry(Telemetry {
            samples: vec![TelemetrySample {
                device: DeviceId::new("meter").unwrap(),
                kind: DeviceKind::GridMeter,
                at: NOW,
                power_w: Some(W(300)),
                energy_in_wh: Some(Wh(1)),
                energy_out_wh: Some(Wh(2)),
                soc_permille: None,
                status: DeviceStatus::Ok,
                quality: Quality::Good,
            }],
        })
    }

    fn sealed(key: &GatewayKey, gw: u64, seq: u64, msg: &Message) -> Vec<u8> {
        serde_json::to_vec(&key.seal(GatewayId(gw), seq, NOW, msg).unwrap()).unwrap()
    }

    #[test]
    fn accepts_telemetry_on_its_own_topic() {
        let (key, mut ingest) = setup();
        let topic = topics::topic(GatewayId(5), Channel::Telemetry);
        let got = ingest.handle(&topic, &sealed(&key, 5, 1, &telemetry()), NOW).unwrap();
        assert!(matches!(got, Inbound::Telemetry { gateway: GatewayId(5), seq: 1, ref samples } if samples.len() == 1));
    }

    #[test]
    fn rejects_with_reasons() {
        let (key, mut ingest) = setup();
        let tele = topics::topic(GatewayId(5), Channel::Telemetry);
        let other = topics::topic(GatewayId(6), Channel::Telemetry);
        let orders = topics::topic(GatewayId(5), Channel::Orders);
        let event = topics::topic(GatewayId(5), Channel::DrEvent);
        let msg = sealed(&key, 5, 1, &telemetry());
        let reason = |r: Result<Inbound, IngestError>| r.unwrap_err().reason();
        assert_eq!(reason(ingest.handle("foo/bar", &msg, NOW)), "unknown_topic");
        assert_eq!(reason(ingest.handle(&event, &msg, NOW)), "downstream_topic");
        assert_eq!(reason(ingest.handle(&other, &msg, NOW)), "wrong_sender");
        assert_eq!(
            reason(ingest.handle(&orders, &sealed(&key, 5, 2, &telemetry()), NOW)),
            "wrong_channel"
        );
        assert_eq!(reason(ingest.handle(&tele, b"{not json", NOW)), "malformed");
        assert!(ingest.handle(&tele, &msg, NOW).is_ok());
        assert_eq!(reason(ingest.handle(&tele, &msg, NOW)), "replayed");
        let cancel = Message::Cancel(CancelOrder { order_id: OrderId(1) });
        assert!(matches!(
            ingest.handle(&orders, &sealed(&key, 5, 3, &cancel), NOW),
            Ok(Inbound::Cancel { .. })
        ));
    }

    #[test]
    fn presence_is_plain_text() {
        let (_, mut ingest) = setup();
        let status = topics::topic(GatewayId(5), Channel::Status);
        assert_eq!(
            ingest.handle(&status, b"offline", NOW),
            Ok(Inbound::Status {
                gateway: GatewayId(5),
                online: false
            })
        );
        assert_eq!(
            ingest.handle(&status, b"maybe", NOW).unwrap_err().reason(),
            "bad_status"
        );
    }
}
