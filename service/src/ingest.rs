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

use gridshare_domain::envelope::{Checked, Checker, EnvelopeError, ReplayWindow, SignedEnvelope, Verifier};
use gridshare_domain::ids::GatewayId;
use gridshare_domain::interval::Timestamp;
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::{
    CancelOrder, CheckResult, DrReport, Message, NewOrder, PreferencesApplied, TelemetrySample,
};

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
    /// The answer to the homeowner's trading preferences.
    PreferencesApplied {
        /// Sender.
        gateway: GatewayId,
        /// The answer.
        answer: PreferencesApplied,
    },
    /// What a remote check read.
    CheckResult {
        /// Sender.
        gateway: GatewayId,
        /// The result.
        result: CheckResult,
    },
    /// Presence, signed: `online`, or `offline` (the last will).
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
    /// A second, different envelope signed by the gateway with a sequence number it used
    /// before (within its replay window): proof of forgery (issue 22). The first is kept by the
    /// caller (the envelope log); this carries the second.
    #[error("gateway {gateway} signed two different envelopes with sequence {seq}")]
    Equivocation {
        /// The gateway.
        gateway: GatewayId,
        /// The sequence number both carry.
        seq: u64,
        /// The second envelope.
        second: Box<SignedEnvelope>,
    },
    /// A signed presence no newer than one taken before (a replayed or reordered status).
    #[error("a status of {gateway} no newer than the one taken (sealed at {ts} ms, sequence {seq})")]
    OldStatus {
        /// The gateway.
        gateway: GatewayId,
        /// When the refused status was sealed.
        ts: i64,
        /// Its sequence number.
        seq: u64,
    },
}

impl IngestError {
    /// Stable reason code for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownTopic(_) => "unknown_topic",
            Self::DownstreamTopic(_) => "downstream_topic",
            Self::Envelope(e) => e.reason(),
            Self::WrongChannel { .. } => "wrong_channel",
            Self::OldStatus { .. } => "old_status",
            Self::Equivocation { .. } => "equivocation",
        }
    }
}

/// Turns publishes into verified [`Inbound`] messages.
///
/// In two steps, so signatures can be checked on several cores while sequence numbers are
/// still taken in arrival order: [`IngestChecker::check`] (stateless, `Send`, from
/// [`Ingest::checker`]) and then [`Ingest::accept`]. [`Ingest::handle`] does both.
#[derive(Debug)]
pub struct Ingest {
    verifier: Verifier,
    /// The newest presence taken per gateway, as (timestamp, sequence number).
    presence: std::collections::HashMap<GatewayId, (i64, u64)>,
    /// Per gateway, the digests of the envelopes accepted within its replay window (sequence
    /// number, digest), to tell a message sent again (same digest: refused as replayed) from a
    /// forged one (another digest: [`IngestError::Equivocation`]).
    recent: std::collections::HashMap<GatewayId, Recent>,
}

/// The digests of one gateway's envelopes within its replay window: a ring indexed by the
/// sequence number modulo the window's width, so noting one is O(1) on the intake's hot path
/// (the window holds at most one sequence number per slot).
#[derive(Debug)]
struct Recent(Box<[Option<Noted>; ReplayWindow::WIDTH as usize]>);

/// A sequence number and its envelope's digest.
type Noted = (u64, [u8; 32]);

impl Recent {
    fn new() -> Self {
        Self(Box::new([None; ReplayWindow::WIDTH as usize]))
    }

    fn slot(seq: u64) -> usize {
        (seq % ReplayWindow::WIDTH) as usize
    }

    /// Notes `seq`'s digest, unless the slot holds a newer sequence number already.
    fn note(&mut self, seq: u64, digest: [u8; 32]) {
        let slot = &mut self.0[Self::slot(seq)];
        if slot.is_none_or(|(s, _)| s <= seq) {
            *slot = Some((seq, digest));
        }
    }

    /// The digest noted for `seq`, if it is still held.
    fn get(&self, seq: u64) -> Option<[u8; 32]> {
        self.0[Self::slot(seq)].filter(|(s, _)| *s == seq).map(|(_, d)| d)
    }
}

/// The stateless half of [`Ingest`]: topic, envelope, signature, time and payload.
#[derive(Debug, Clone)]
pub struct IngestChecker {
    checker: Checker,
}

/// A publish past the stateless checks, waiting for [`Ingest::accept`].
#[derive(Debug, Clone, PartialEq)]
pub enum Staged {
    /// Signed presence: not in the gateway's sequence of messages (no replay window, no
    /// receipt), taken when newer than the last one taken.
    Status(Checked),
    /// A signed message on its gateway's channel.
    Signed {
        /// The topic's channel.
        channel: Channel,
        /// The checked envelope.
        checked: Checked,
    },
}

impl IngestChecker {
    /// Check one publish, but not its sequence number.
    pub fn check(&self, topic: &str, payload: &[u8], now: Timestamp) -> Result<Staged, IngestError> {
        let (gateway, channel) = topics::parse(topic).ok_or_else(|| IngestError::UnknownTopic(topic.to_owned()))?;
        if !channel.is_upstream() {
            return Err(IngestError::DownstreamTopic(topic.to_owned()));
        }
        let checked = self.checker.check(payload, now, Some(gateway))?;
        // the kind must fit the channel before it takes a sequence number
        match (channel, &checked.message) {
            (Channel::Status, Message::Status(_)) => Ok(Staged::Status(checked)),
            (Channel::Telemetry, Message::Telemetry(_))
            | (Channel::Orders, Message::Order(_) | Message::Cancel(_))
            | (Channel::DrReport, Message::DrReport(_))
            | (Channel::CommandResult, Message::PreferencesApplied(_) | Message::CheckResult(_)) => {
                Ok(Staged::Signed { channel, checked })
            }
            (channel, msg) => Err(IngestError::WrongChannel {
                kind: msg.kind(),
                channel: channel.suffix(),
            }),
        }
    }
}

impl Ingest {
    /// Ingest over a verifier that knows the registered gateways.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            presence: std::collections::HashMap::new(),
            recent: std::collections::HashMap::new(),
        }
    }

    /// Notes that `gateway`'s envelope `seq` with `digest` was accepted (done by
    /// [`Self::accept`]; at start-up, from the envelope log).
    pub fn remember(&mut self, gateway: GatewayId, seq: u64, digest: [u8; 32]) {
        self.recent.entry(gateway).or_insert_with(Recent::new).note(seq, digest);
    }

    /// Forgets what was remembered of a gateway (revoked).
    pub fn forget(&mut self, gateway: GatewayId) {
        self.recent.remove(&gateway);
        self.verifier.revoke(gateway);
    }

    /// The verifier, to register or revoke gateways and persist replay windows.
    pub fn verifier_mut(&mut self) -> &mut Verifier {
        &mut self.verifier
    }

    /// A snapshot of the stateless checks (take a new one after registering or revoking).
    pub fn checker(&self) -> IngestChecker {
        IngestChecker {
            checker: self.verifier.checker(),
        }
    }

    /// The replay check of a staged publish, in arrival order.
    pub fn accept(&mut self, staged: Staged) -> Result<Inbound, IngestError> {
        let checked = match staged {
            Staged::Status(checked) => return self.accept_status(&checked),
            Staged::Signed { checked, .. } => checked,
        };
        let (gateway, seq, digest) = (checked.envelope.gateway, checked.envelope.seq, checked.digest);
        if let Some(w) = self.verifier.window(gateway)
            && matches!(w.check(gateway, seq), Err(EnvelopeError::Replayed { .. }))
        {
            let first = self.recent.get(&gateway).and_then(|r| r.get(seq));
            if first.is_some_and(|d| d != digest) {
                return Err(IngestError::Equivocation {
                    gateway,
                    seq,
                    second: Box::new(checked.envelope),
                });
            }
        }
        let (env, msg) = self.verifier.accept(checked)?;
        // the digest the signature check computed: hashing a 12 KB payload again cost a fifth
        // of the intake's throughput at 64 samples per envelope
        self.remember(gateway, seq, digest);
        match msg {
            Message::Telemetry(t) => Ok(Inbound::Telemetry {
                gateway,
                seq: env.seq,
                samples: t.samples,
            }),
            Message::Order(order) => Ok(Inbound::Order { gateway, order }),
            Message::Cancel(cancel) => Ok(Inbound::Cancel { gateway, cancel }),
            Message::DrReport(report) => Ok(Inbound::DrReport { gateway, report }),
            Message::PreferencesApplied(answer) => Ok(Inbound::PreferencesApplied { gateway, answer }),
            Message::CheckResult(result) => Ok(Inbound::CheckResult { gateway, result }),
            msg => Err(IngestError::WrongChannel {
                kind: msg.kind(),
                channel: "upstream",
            }),
        }
    }

    /// A signed presence, taken when newer than the last one taken from its gateway. The order
    /// is kept in memory only: after a restart the broker's retained status comes first, and
    /// only the gateway's own login may publish on its status topic.
    fn accept_status(&mut self, checked: &Checked) -> Result<Inbound, IngestError> {
        let env = &checked.envelope;
        let Message::Status(presence) = checked.message else {
            return Err(IngestError::WrongChannel {
                kind: checked.message.kind(),
                channel: Channel::Status.suffix(),
            });
        };
        let key = (env.ts.0, env.seq);
        match self.presence.get(&env.gateway) {
            Some(&last) if key <= last => Err(IngestError::OldStatus {
                gateway: env.gateway,
                ts: env.ts.0,
                seq: env.seq,
            }),
            _ => {
                self.presence.insert(env.gateway, key);
                Ok(Inbound::Status {
                    gateway: env.gateway,
                    online: presence.online,
                })
            }
        }
    }

    /// Check one publish.
    pub fn handle(&mut self, topic: &str, payload: &[u8], now: Timestamp) -> Result<Inbound, IngestError> {
        let staged = self.checker().check(topic, payload, now)?;
        self.accept(staged)
    }
}

/// A publish as the pipeline sees it.
pub trait Publication: Send + 'static {
    /// Its topic.
    fn topic(&self) -> &str;
    /// Its payload.
    fn payload(&self) -> &[u8];
}

impl Publication for rumqttc::Publish {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
}

impl Publication for (String, Vec<u8>) {
    fn topic(&self) -> &str {
        &self.0
    }
    fn payload(&self) -> &[u8] {
        &self.1
    }
}

/// Signature checks on the runtime's worker threads (every core), results in arrival order:
/// push publishes as they come, take them back from [`Pipeline::next`] for [`Ingest::accept`].
/// At most `limit` are in flight, so a flood waits at the broker, not in memory.
#[derive(Debug)]
pub struct Pipeline<T> {
    inflight: futures_util::stream::FuturesOrdered<tokio::task::JoinHandle<(T, Result<Staged, IngestError>)>>,
    limit: usize,
}

impl<T: Publication> Pipeline<T> {
    /// A pipeline holding at most `limit` publishes in flight.
    pub fn new(limit: usize) -> Self {
        Self {
            inflight: futures_util::stream::FuturesOrdered::new(),
            limit: limit.max(1),
        }
    }

    /// True when no more may be pushed until one is taken.
    pub fn is_full(&self) -> bool {
        self.inflight.len() >= self.limit
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.inflight.is_empty()
    }

    /// Start checking `item` with `checker` (must be called within a Tokio runtime).
    pub fn push(&mut self, checker: &IngestChecker, now: Timestamp, item: T) {
        let checker = checker.clone();
        self.inflight.push_back(tokio::spawn(async move {
            let staged = checker.check(item.topic(), item.payload(), now);
            (item, staged)
        }));
    }

    /// The oldest publish and its check, once done; `None` when nothing is in flight.
    pub async fn next(&mut self) -> Option<(T, Result<Staged, IngestError>)> {
        use futures_util::StreamExt;
        loop {
            match self.inflight.next().await? {
                Ok(done) => return Some(done),
                // a check never panics on input; if one did, its publish is not acknowledged
                // and the broker delivers it again
                Err(e) => tracing::error!(error = %e, "a signature check failed to run"),
            }
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
    fn the_ring_of_digests_holds_the_newest_sequence_number_per_slot() {
        let mut r = Recent::new();
        r.note(5, [1; 32]);
        assert_eq!(r.get(5), Some([1; 32]));
        // 69 shares 5's slot: it takes it, and 5 is no longer known (it left the window)
        r.note(69, [2; 32]);
        assert_eq!(r.get(5), None);
        assert_eq!(r.get(69), Some([2; 32]));
        // an older number never pushes out a newer one (start-up may note them in any order)
        r.note(5, [3; 32]);
        assert_eq!(r.get(69), Some([2; 32]));
        assert_eq!(r.get(5), None);
        // a whole window of numbers is held at once
        for seq in 100..100 + ReplayWindow::WIDTH {
            r.note(seq, [seq as u8; 32]);
        }
        for seq in 100..100 + ReplayWindow::WIDTH {
            assert_eq!(r.get(seq), Some([seq as u8; 32]), "seq {seq}");
        }
    }

    #[test]
    fn a_second_different_envelope_with_a_used_sequence_number_is_equivocation() {
        let (key, mut ingest) = setup();
        let topic = topics::topic(GatewayId(5), Channel::Telemetry);
        let first = sealed(&key, 5, 7, &telemetry());
        ingest.handle(&topic, &first, NOW).unwrap();
        // the same envelope again (sent again for want of a receipt): a replay, nothing more
        let again = ingest.handle(&topic, &first, NOW).unwrap_err();
        assert_eq!(again.reason(), "replayed");
        // the same sequence number, other content, same key: forgery
        let mut other = telemetry();
        if let Message::Telemetry(t) = &mut other {
            t.samples[0].power_w = Some(W(-4_000));
        }
        let forged = sealed(&key, 5, 7, &other);
        let err = ingest.handle(&topic, &forged, NOW).unwrap_err();
        assert_eq!(err.reason(), "equivocation");
        let IngestError::Equivocation { gateway, seq, second } = err else {
            unreachable!()
        };
        assert_eq!((gateway, seq), (GatewayId(5), 7));
        let first: gridshare_domain::envelope::SignedEnvelope = serde_json::from_slice(&first).unwrap();
        let proof = gridshare_domain::envelope::Equivocation::of(first.clone(), *second.clone()).unwrap();
        // the evidence is the same whichever envelope came first
        let swapped = gridshare_domain::envelope::Equivocation::of(*second, first).unwrap();
        assert_eq!(proof.evidence(), swapped.evidence());
        // another key cannot frame the gateway: its envelope fails the signature check first
        let stranger = GatewayKey::from_bytes(&[8u8; 32]).unwrap();
        let framed = ingest
            .handle(&topic, &sealed(&stranger, 5, 7, &other), NOW)
            .unwrap_err();
        assert_eq!(framed.reason(), "bad_signature");
        // a sequence number not seen before is simply taken, and after a restart the digests
        // come back from the log
        assert!(ingest.handle(&topic, &sealed(&key, 5, 8, &telemetry()), NOW).is_ok());
        let (_, mut restarted) = setup();
        restarted
            .verifier_mut()
            .restore_window(GatewayId(5), ReplayWindow { highest: 8, seen: 0b11 });
        restarted.remember(GatewayId(5), 7, proof.first.signing_digest());
        assert_eq!(
            restarted.handle(&topic, &forged, NOW).unwrap_err().reason(),
            "equivocation"
        );
    }

    #[test]
    fn presence_is_never_evidence() {
        let (key, mut ingest) = setup();
        let topic = topics::topic(GatewayId(5), Channel::Status);
        let online = |at: i64| {
            let env = key
                .seal(
                    GatewayId(5),
                    gridshare_domain::wire::Presence::ONLINE_SEQ,
                    Timestamp(NOW.0 + at),
                    &Message::Status(gridshare_domain::wire::Presence { online: true }),
                )
                .unwrap();
            serde_json::to_vec(&env).unwrap()
        };
        // every connection seals a new `online` with the same reserved number
        assert!(ingest.handle(&topic, &online(0), NOW).is_ok());
        assert!(ingest.handle(&topic, &online(1_000), NOW).is_ok());
        let a: gridshare_domain::envelope::SignedEnvelope = serde_json::from_slice(&online(0)).unwrap();
        let b: gridshare_domain::envelope::SignedEnvelope = serde_json::from_slice(&online(1_000)).unwrap();
        assert!(gridshare_domain::envelope::Equivocation::of(a, b).is_none());
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
    fn presence_is_signed_and_only_a_newer_one_is_taken() {
        use gridshare_domain::wire::Presence;
        let (key, mut ingest) = setup();
        let status = topics::topic(GatewayId(5), Channel::Status);
        let tele = topics::topic(GatewayId(5), Channel::Telemetry);
        let presence = |online| Message::Status(Presence { online });
        let at = |ts: Timestamp, seq, online| {
            serde_json::to_vec(&key.seal(GatewayId(5), seq, ts, &presence(online)).unwrap()).unwrap()
        };
        let reason = |r: Result<Inbound, IngestError>| r.unwrap_err().reason();
        // anyone with a login could once mark a gateway offline with a plain word
        assert_eq!(reason(ingest.handle(&status, b"offline", NOW)), "malformed");
        let forger = GatewayKey::from_bytes(&[7u8; 32]).unwrap();
        let forged = serde_json::to_vec(
            &forger
                .seal(GatewayId(5), Presence::OFFLINE_SEQ, NOW, &presence(false))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(reason(ingest.handle(&status, &forged, NOW)), "bad_signature");
        // a connection's `online` and its last will, sealed together
        let online = at(NOW, Presence::ONLINE_SEQ, true);
        let will = at(NOW, Presence::OFFLINE_SEQ, false);
        let gw = GatewayId(5);
        assert_eq!(
            ingest.handle(&status, &online, NOW),
            Ok(Inbound::Status {
                gateway: gw,
                online: true
            })
        );
        // the will comes days later: presence has no maximum age
        let later = Timestamp(NOW.0 + 10 * 86_400_000);
        assert_eq!(
            ingest.handle(&status, &will, later),
            Ok(Inbound::Status {
                gateway: gw,
                online: false
            })
        );
        // replayed or reordered: refused
        assert_eq!(reason(ingest.handle(&status, &online, later)), "old_status");
        assert_eq!(reason(ingest.handle(&status, &will, later)), "old_status");
        // the next connection is newer
        assert!(
            ingest
                .handle(&status, &at(later, Presence::ONLINE_SEQ, true), later)
                .is_ok()
        );
        // presence is not in the gateway's sequence of messages: telemetry 1 is still new
        assert!(ingest.handle(&tele, &sealed(&key, 5, 1, &telemetry()), NOW).is_ok());
        // each kind on its own channel
        assert_eq!(
            reason(ingest.handle(&tele, &at(later, 2, true), later)),
            "wrong_channel"
        );
        assert_eq!(
            reason(ingest.handle(&status, &sealed(&key, 5, 2, &telemetry()), NOW)),
            "wrong_channel"
        );
    }
}
