//! Gateways over MQTT: the market service's client subscribes to every gateway's upstream topics,
//! checks each publish with [`Ingest`] (topic, registration, signature, sequence, timestamp),
//! and routes it: telemetry to batched storage, orders and cancels into the same market handle as
//! the API (answered on the gateway's `orders/ack` topic), demand-response reports stored,
//! presence counted, answers to preferences and remote checks stored; demand-response events
//! from the operator's API go out on each targeted gateway's `dr/event` topic, a homeowner's
//! trading preferences on each of the home's gateways' `preferences` topic (retained, and sent
//! again at every connection and to a newly commissioned gateway, so a gateway that was away gets
//! the newest), and an installer's check on the gateway's `command` topic. A bad message is
//! counted under its reason and dropped; it never stops the loop.
//!
//! **Signed downlinks.** Everything published to a gateway (events, preferences, checks, order
//! answers, fills) is signed with the market's key for that gateway and topic
//! ([`crate::signing`]); gateways act on nothing else.
//!
//! **No data lost, end to end.** The broker is only the transport: a gateway deletes a message
//! from its outbox when the market's signed receipt on its `market/stored` topic names it
//! ([`Stored`]), and sends again what has no receipt. A receipt goes out only once the message's
//! effect is durable: telemetry after its batch is committed, an order after the engine has
//! journaled it, a report or answer after it is stored. A message seen before (a gateway sending
//! again because a receipt was lost) or refused for good (too old, unreadable) is receipted too,
//! so it is not sent forever; storage is idempotent on (gateway, sequence, device). So the
//! market's own session at the broker need not outlive it: it connects with a clean session and
//! lets the client acknowledge publishes as they arrive, and neither a crash of the market (with
//! the embedded broker inside it) nor a broker that drops what it held loses a message. Sequence
//! numbers are durable before a message is receipted, and no restart, graceful or a crash,
//! reopens one: an order's or a cancel's is journaled by the engine with its command (its
//! origin, in the same write), and the journal's windows are merged into the stored ones at
//! start, so an order the engine took is never taken twice nor lost; a report or an answer is
//! stored first (an upsert) and its window with the next batch, so a crash in between only
//! makes its resend store the same again; telemetry's window is in the transaction of its batch.
//!
//! **Fair intake.** Publishes wait in one queue per gateway, served in turn ([`FairQueue`]), so
//! a gateway flooding the market delays only itself: its neighbours' orders are checked and
//! matched in their turn instead of ageing out behind the flood. A full lane refuses (counted as
//! `lane_full`); nothing is lost, since what is not receipted is sent again.
//!
//! **Client id.** [`session_client_id`]: the configured prefix and a random suffix, new for each
//! start, so nobody can take the service's session by guessing its id (a fixed, known id let a
//! gateway's login kick the service off again and again). The session is clean, so nothing is
//! lost with it: what the broker held is sent again by the gateways for want of a receipt.
//!
//! **Order ids.** A gateway names its orders with its own ids; the market gives each its own.
//! The link is journaled with the order (and recorded in `gateway_orders`), and the links of
//! open orders come from the market at start, so a gateway can cancel by its id, and hears of
//! fills under it, across restarts of the service, crashes included.
//!
//! Files: this one connects, pumps publishes through the fair queue and the signature checks, and
//! sends receipts; `handle.rs` routes each checked message and commits telemetry batches;
//! `downlink.rs` publishes to gateways.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gridshare_domain::envelope::{Equivocation, SignedEnvelope};
use gridshare_domain::envelope::{FreshnessPolicy, MarketKey, Verifier};
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::Stored;
use gridshare_domain::{GatewayId, NodeId, OrderId, ParticipantId};
use gridshare_market::{Downlink, Live, Market, Metrics};
use gridshare_storage::Db;
use gridshare_storage::evidence::{self, LoggedEnvelope};
use gridshare_storage::gateways;
use gridshare_storage::readings::Reading;
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, Publish, QoS};
use std::collections::BTreeMap;
use tokio::sync::watch;

use crate::fair::{self, FairQueue, Lane};
use crate::ingest::{Ingest, IngestChecker, IngestError, Pipeline};
use crate::signing::Sealer;

mod downlink;
mod handle;

use downlink::{send_downlink, send_stored_preferences};
use handle::{flush_buffer, handle, publish_outcome};

pub use gridshare_domain::topics::Broker;

/// Telemetry rows buffered before a write.
const MAX_BATCH: usize = 5_000;
/// Longest a sample waits in the buffer. Commits come only this often (or at [`MAX_BATCH`]):
/// with hundreds of gateways a commit per arriving message, each with its own sync to disk, was
/// what capped the intake (about 200 messages a second on SQLite).
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Publishes whose signatures are being checked at once (on every core).
const MAX_INFLIGHT: usize = 256;
/// How often receipts go out: a gateway has [a window](gridshare_gateway) of messages ahead of
/// its receipts, so once a second is soon enough and keeps the signing work per message small.
const RECEIPT_EVERY: Duration = Duration::from_secs(1);
/// How often the registered gateways are reloaded (new commissions, revocations).
const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// How often while a gateway is held (commissioned, its key not on chain yet): it is taken within
/// a second of the registry mirror's mark, not up to ten.
const RELOAD_HELD_EVERY: Duration = Duration::from_secs(1);

/// Which gateways the intake takes messages from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The market's database: every gateway commissioned there and not revoked (no registry on
    /// chain: settlement or rewards are off).
    Market,
    /// The registry on chain (deployed with the incentive contracts): a gateway commissioned in
    /// the market is taken once the registry mirror has found its key on chain
    /// (`gateways.on_chain_at`); until then its messages are refused as `not_on_chain`, not
    /// receipted, and taken when its gateway sends them again.
    Chain,
}

struct State {
    db: Db,
    /// Which gateways are taken.
    authority: Authority,
    /// Gateways held at the last reload (commissioned, not on chain yet).
    held: usize,
    market: Market,
    metrics: Arc<Metrics>,
    ingest: Ingest,
    /// The stateless checks, renewed when gateways are reloaded.
    checker: IngestChecker,
    owners: HashMap<GatewayId, ParticipantId>,
    /// Each gateway's feeder node (its own price in an interval result goes to it).
    nodes: HashMap<GatewayId, NodeId>,
    /// (gateway, its order id) → the market's id (open orders from before a restart, and this run's).
    client_ids: HashMap<(GatewayId, OrderId), OrderId>,
    /// The market's id → (gateway, its order id), to route fills.
    by_market_id: HashMap<OrderId, (GatewayId, OrderId)>,
    buffer: Vec<Reading>,
    /// The envelopes accepted since the last commit, kept with it (the evidence log).
    logged: Vec<LoggedEnvelope>,
    /// Messages handled whose receipt waits for the next commit (the telemetry in `buffer`, and
    /// what came after it).
    uncommitted: Vec<(GatewayId, u64)>,
    /// Messages durable and not yet receipted, by gateway.
    receipts: BTreeMap<GatewayId, Vec<u64>>,
    touched: Vec<GatewayId>,
    /// Telemetry for the homes' live view.
    live: Option<tokio::sync::broadcast::Sender<Arc<Live>>>,
    /// Signs every downlink.
    sealer: Sealer,
    /// Gateways known to be revoked.
    revoked: std::collections::HashSet<GatewayId>,
    /// Installers' checks sent and not answered yet.
    pending_checks: downlink::PendingChecks,
}

/// Loads the active gateways (and the revoked ones, whose messages are refused as `revoked`
/// rather than from an unknown gateway); returns those new since the last load.
async fn load_gateways(st: &mut State) -> Result<Vec<GatewayId>, String> {
    let (active, revoked): (Vec<_>, Vec<_>) = gateways::all(&st.db)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .partition(|g| g.revoked_at.is_none());
    let on_chain = match st.authority {
        Authority::Market => None,
        Authority::Chain => Some(gateways::on_chain(&st.db).await.map_err(|e| e.to_string())?),
    };
    let live: std::collections::HashSet<GatewayId> = active.iter().map(|g| g.id).collect();
    for g in revoked {
        if !st.revoked.contains(&g.id) {
            st.ingest.verifier_mut().revoke(g.id);
            st.revoked.insert(g.id);
        }
    }
    for gone in st
        .owners
        .keys()
        .filter(|g| !live.contains(g))
        .copied()
        .collect::<Vec<_>>()
    {
        st.ingest.verifier_mut().revoke(gone);
        st.owners.remove(&gone);
        st.nodes.remove(&gone);
    }
    let mut new = Vec::new();
    st.held = 0;
    for g in active {
        if on_chain.as_ref().is_some_and(|on| !on.contains(&g.id)) {
            // commissioned in the market, not (yet) in the registry on chain
            st.ingest.verifier_mut().hold(g.id);
            st.held += 1;
            continue;
        }
        st.nodes.insert(g.id, g.feeder_node);
        if st.owners.insert(g.id, g.owner).is_none() {
            st.revoked.remove(&g.id);
            st.ingest.verifier_mut().register(g.id, g.public_key, g.window);
            new.push(g.id);
        }
    }
    Ok(new)
}

/// Remembers the digests of the envelopes each gateway had accepted within its replay window
/// (the evidence log), so that a conflicting envelope is recognised across a restart.
async fn load_recent(db: &Db, ingest: &mut Ingest) -> Result<(), String> {
    let logged = evidence::logged(db)
        .await
        .map_err(|e| format!("loading the envelope log: {e}"))?;
    for e in logged {
        match serde_json::from_str::<SignedEnvelope>(&e.json) {
            Ok(env) => ingest.remember(e.gateway, e.seq, env.signing_digest()),
            Err(err) => {
                tracing::warn!(gateway = %e.gateway, seq = e.seq, error = %err, "an unreadable envelope in the log")
            }
        }
    }
    Ok(())
}

/// A gateway signed two different envelopes with one sequence number: the proof is stored with
/// both envelopes as received and the gateway revoked (one transaction), and nothing more is
/// taken from it; the settlement task takes the proof on chain (`crate::slashing`).
async fn equivocated(st: &mut State, second: SignedEnvelope, raw: &[u8]) {
    let (gateway, seq) = (second.gateway, second.seq);
    let first = match st.logged.iter().rev().find(|e| e.gateway == gateway && e.seq == seq) {
        Some(e) => Some(e.json.clone()),
        None => evidence::logged_one(&st.db, gateway, seq).await.unwrap_or_else(|e| {
            tracing::warn!(%gateway, seq, error = %e, "reading the envelope log");
            None
        }),
    };
    let Some(first_json) = first else {
        tracing::warn!(%gateway, seq, "a conflicting envelope whose first is no longer kept; refused as replayed");
        return;
    };
    let Some(proof) = serde_json::from_str::<SignedEnvelope>(&first_json)
        .ok()
        .and_then(|first| Equivocation::of(first, second))
    else {
        return;
    };
    let evidence = proof.evidence_hex();
    let second_json = String::from_utf8_lossy(raw);
    let now = st.market.clock().now();
    match evidence::record(&st.db, gateway, seq, &evidence, &first_json, &second_json, now).await {
        Ok(new) => {
            st.ingest.forget(gateway);
            st.owners.remove(&gateway);
            st.checker = st.ingest.checker();
            if new {
                st.metrics.equivocations.inc();
                tracing::error!(%gateway, seq, %evidence, "equivocation: the gateway signed two different envelopes with one sequence number; it is stopped and its bond will be slashed");
            }
        }
        Err(e) => {
            tracing::error!(%gateway, seq, %evidence, error = %e, "storing proof of equivocation failed; the next conflicting envelope tries again")
        }
    }
}

/// The service's MQTT client id for this start: `prefix`, a dash and 16 random hex digits.
pub fn session_client_id(prefix: &str) -> String {
    let token = gridshare_web::auth::new_token(gridshare_web::auth::TokenKind::Session).token;
    let random: String = token.rsplit('_').next().unwrap_or_default().chars().take(16).collect();
    format!("{prefix}-{random}")
}

/// Runs the MQTT side until `shutdown`: then flushes the telemetry buffer, saves the replay
/// windows and disconnects.
#[expect(
    clippy::too_many_arguments,
    reason = "the intake's collaborators, each used once; a struct would only rename them"
)]
pub async fn run(
    broker: Broker,
    client_id: String,
    db: Db,
    market: Market,
    metrics: Arc<Metrics>,
    mut downlink: tokio::sync::mpsc::UnboundedReceiver<Downlink>,
    mut shutdown: watch::Receiver<bool>,
    live: Option<tokio::sync::broadcast::Sender<Arc<Live>>>,
    market_key: MarketKey,
    authority: Authority,
) -> Result<(), String> {
    let mut opts = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    // a busy broker answers a ping late; what is lost with a connection is sent again anyway
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(true);
    // room for a gate closure's fills to every gateway before packet ids wrap around
    opts.set_inflight(u16::MAX / 2);
    opts.set_max_packet_size(256 * 1024, 256 * 1024);
    if let (Some(u), Some(p)) = (&broker.username, &broker.password) {
        opts.set_credentials(u.clone(), p.clone());
    }
    if broker.tls {
        let tls = gridshare_domain::topics::tls::client_config(broker.ca_file.as_deref())
            .map_err(|e| format!("mqtt: {e}"))?;
        opts.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
            tls,
        )));
    }
    let (client, events) = AsyncClient::new(opts, 10_000);
    let (inbox_tx, mut inbox) = tokio::sync::mpsc::unbounded_channel();
    let publishes = Arc::new(FairQueue::new(fair::Limits::default()));
    let mut pump = tokio::spawn(pump(
        events,
        inbox_tx,
        publishes.clone(),
        metrics.clone(),
        broker.clone(),
    ));
    // freshness is real time: at the demo's 90x an order a second late is 90 s of market time late
    let freshness = FreshnessPolicy::default().at_speed(market.clock().speed());
    let mut st = State {
        db,
        authority,
        held: 0,
        market,
        metrics,
        ingest: Ingest::new(Verifier::new(freshness)),
        checker: Ingest::new(Verifier::new(freshness)).checker(),
        owners: HashMap::new(),
        nodes: HashMap::new(),
        client_ids: HashMap::new(),
        by_market_id: HashMap::new(),
        buffer: Vec::new(),
        logged: Vec::new(),
        uncommitted: Vec::new(),
        receipts: BTreeMap::new(),
        live,
        touched: Vec::new(),
        sealer: Sealer::new(market_key),
        revoked: std::collections::HashSet::new(),
        pending_checks: downlink::PendingChecks::default(),
    };
    load_gateways(&mut st).await?;
    load_recent(&st.db, &mut st.ingest).await?;
    // what the engine's journal holds: the sequence numbers of the orders and cancels it took
    // (also those whose windows were not stored before a crash) and the open orders' links
    let journal = st
        .market
        .intake_state()
        .await
        .map_err(|e| format!("reading the market's journal state: {e}"))?;
    for (gateway, journaled) in &journal.windows {
        if let Some(mut w) = st.ingest.verifier_mut().window(*gateway) {
            w.merge(journaled);
            st.ingest.verifier_mut().restore_window(*gateway, w);
        }
    }
    st.checker = st.ingest.checker();
    for (gateway, client_id, id) in journal.links {
        st.client_ids.insert((gateway, client_id), id);
        st.by_market_id.insert(id, (gateway, client_id));
    }
    let mut pipeline = Pipeline::new(MAX_INFLIGHT);
    let mut feed = st.market.subscribe();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut reload = tokio::time::interval(RELOAD_HELD_EVERY);
    let mut last_reload = tokio::time::Instant::now();
    let mut receipts = tokio::time::interval(RECEIPT_EVERY);
    let mut checks_again = tokio::time::interval(downlink::CHECK_ASKED_EVERY);
    checks_again.reset(); // not at once: nothing was sent yet
    loop {
        tokio::select! {
            // in this order: a stop, checked publishes, new publishes, then the rest; when
            // nothing arrives, commit what is buffered (see "Idle" below)
            biased;
            _ = shutdown.changed() => {
                while let Some((p, staged)) = pipeline.next().await {
                    handle(&mut st, &client, p, staged).await;
                }
                flush_buffer(&mut st).await;
                send_receipts(&mut st, &client);
                let _ = client.disconnect().await;
                // let the acknowledgements and the disconnect go out
                if tokio::time::timeout(Duration::from_secs(2), &mut pump).await.is_err() {
                    tracing::warn!("MQTT connection did not close within 2 s");
                    pump.abort();
                }
                return Ok(());
            }
            Some((p, staged)) = pipeline.next(), if !pipeline.is_empty() => {
                handle(&mut st, &client, p, staged).await;
                if st.buffer.len() >= MAX_BATCH {
                    flush_buffer(&mut st).await;
                }
            }
            p = publishes.pop(), if !pipeline.is_full() => pipeline.push(&st.checker, st.market.clock().now(), p),
            incoming = inbox.recv() => match incoming {
                Some(Incoming::Connected) => {
                    for ch in Channel::ALL.into_iter().filter(|c| c.is_upstream()) {
                        if let Err(e) = client.subscribe(topics::all_gateways(ch), QoS::AtLeastOnce).await {
                            tracing::error!(error = %e, "subscribing");
                        }
                    }
                    // an embedded broker keeps retained messages in memory only
                    let all: Vec<GatewayId> = st.owners.keys().copied().collect();
                    send_stored_preferences(&st, &client, &all).await;
                }
                None => return Err("the MQTT connection task ended".into()),
            },
            outcome = feed.recv() => match outcome {
                Ok(o) => publish_outcome(&st, &client, &o),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "MQTT fills fell behind the market; gateways can read their trades over the API");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {}
            },
            Some(d) = downlink.recv() => send_downlink(&mut st, &client, d),
            _ = checks_again.tick() => downlink::ask_again(&mut st, &client, None),
            _ = flush.tick() => flush_buffer(&mut st).await,
            _ = receipts.tick() => send_receipts(&mut st, &client),
            // every 10 s; every second while a gateway waits for its key to reach the chain
            _ = reload.tick() => if st.held > 0 || last_reload.elapsed() >= RELOAD_EVERY {
                last_reload = tokio::time::Instant::now();
                match load_gateways(&mut st).await {
                    Ok(new) if !new.is_empty() => send_stored_preferences(&st, &client, &new).await,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "reloading gateways"),
                }
                st.checker = st.ingest.checker();
            },
        }
    }
}

/// What the connection task passes on besides publishes.
enum Incoming {
    /// (Re)connected: subscribe.
    Connected,
}

/// Drives the MQTT connection on its own task, so that acknowledgements and answers queued by
/// the intake always go out, however busy the intake is: each publish goes at once into its
/// gateway's lane of the [fair queue](FairQueue), or is refused and counted when the lane is
/// full (not receipted, so its gateway sends it again), and a lost connection is retried with
/// backoff. Ends after the disconnect goes out.
async fn pump(
    mut events: rumqttc::EventLoop,
    inbox: tokio::sync::mpsc::UnboundedSender<Incoming>,
    publishes: Arc<FairQueue<Publish>>,
    metrics: Arc<Metrics>,
    broker: Broker,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let passed = match events.poll().await {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(200);
                tracing::info!(host = %broker.host, port = broker.port, "connected to the MQTT broker");
                inbox.send(Incoming::Connected)
            }
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                let lane = topics::parse(&p.topic).map_or(Lane::Other, |(g, _)| Lane::Gateway(g));
                let size = p.topic.len() + p.payload.len();
                if let Err(refused) = publishes.push(lane, p, size) {
                    metrics.reject(refused.reason());
                }
                Ok(())
            }
            Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "MQTT connection lost; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                Ok(())
            }
        };
        if passed.is_err() {
            return; // the intake has stopped
        }
    }
}

/// Marks a gateway's message handled: its receipt goes out once everything before it is
/// committed.
fn done(st: &mut State, message: Option<(GatewayId, u64)>) {
    st.uncommitted.extend(message);
}

/// The signer and sequence number of a publish whose signature checked but which was refused
/// for good for what it says or when (stale, unreadable): it is receipted so that the gateway
/// stops sending it.
fn refused_for_good(p: &Publish, e: &IngestError) -> Option<(GatewayId, u64)> {
    use gridshare_domain::envelope::EnvelopeError as E;
    // presence is not in the gateway's outbox: nothing to receipt
    if topics::parse(&p.topic).is_some_and(|(_, c)| c == Channel::Status) {
        return None;
    }
    match e {
        IngestError::Envelope(E::Stale { .. } | E::BadPayload(_)) | IngestError::WrongChannel { .. } => {
            let env: SignedEnvelope = serde_json::from_slice(&p.payload).ok()?;
            Some((env.gateway, env.seq))
        }
        _ => None,
    }
}

/// Sends each gateway a signed receipt of its durable messages (at most once a second; at most
/// once, since a lost receipt only makes the gateway send again, and that is receipted).
fn send_receipts(st: &mut State, client: &AsyncClient) {
    for (gateway, seqs) in std::mem::take(&mut st.receipts) {
        for receipt in Stored::of(seqs) {
            let body = serde_json::to_string(&receipt).unwrap_or_default();
            let Some(bytes) = st.sealer.seal(gateway, Channel::Stored, st.market.clock().now(), body) else {
                continue;
            };
            if let Err(e) = client.try_publish(topics::topic(gateway, Channel::Stored), QoS::AtMostOnce, false, bytes) {
                tracing::warn!(%gateway, error = %e, "sending a receipt; the gateway sends those messages again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;

    #[test]
    fn the_client_id_is_new_for_each_start() {
        let (a, b) = (
            session_client_id("gridshare-market"),
            session_client_id("gridshare-market"),
        );
        assert_ne!(a, b);
        let suffix = a.strip_prefix("gridshare-market-").unwrap();
        assert!(
            suffix.len() == 16 && suffix.bytes().all(|c| c.is_ascii_hexdigit()),
            "{a}"
        );
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            Broker::parse("mqtt://u:p@127.0.0.1:1884").unwrap(),
            Broker {
                tls: false,
                ca_file: None,
                host: "127.0.0.1".into(),
                port: 1884,
                username: Some("u".into()),
                password: Some("p".into())
            }
        );
        assert_eq!(Broker::parse("mqtt://broker").unwrap().port, 1883);
        assert!(Broker::parse("http://x").unwrap_err().contains("mqtt://"));
        assert!(Broker::parse("mqtt://h:port").unwrap_err().contains("port"));
        assert!(Broker::parse("mqtt://").is_err());
    }
}
