//! Broker access control (issue 17, items 1, 2 and 9), against the embedded broker and against
//! Mosquitto run with the shipped `deploy/mosquitto` configuration and ACL: one gateway's login
//! cannot read or write another gateway's topics, publish on its own downlinks, retain outside its
//! own status, or connect with the service's or another gateway's client id; the service's
//! client is not kicked off by any of that and stores every message a gateway sends meanwhile;
//! and the gateway can still do what it needs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gridshare::mqtt::{self, Broker};
use gridshare_domain::envelope::{DownlinkVerifier, GatewayKey, MarketKey};
use gridshare_domain::topics::{self, Channel};
use gridshare_domain::wire::{
    DeviceKind, DeviceStatus, Message, NewOrder, OrderAck, Presence, Quality, Telemetry, TelemetrySample,
};
use gridshare_domain::{
    DeliveryInterval, DeviceId, GatewayId, IntervalLength, MicroPerKwh, NodeId, OrderId, OrderMode, ParticipantId,
    Side, TimeInForce, Timestamp, W, Wh, ZoneId,
};
use gridshare_market::{Clock, Market, Metrics, add_participants, wall_clock as now};
use gridshare_matching_engine::{Command, MarketConfig};
use gridshare_storage::Db;
use gridshare_storage::readings;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use tokio::sync::mpsc::UnboundedReceiver;

fn interval() -> DeliveryInterval {
    DeliveryInterval::new(Timestamp(4_102_444_800_000), IntervalLength::Min15).unwrap()
}

fn key(g: u64) -> GatewayKey {
    GatewayKey::from_bytes(&[g as u8; 32]).unwrap()
}

fn market_key() -> MarketKey {
    MarketKey::from_bytes(&[99u8; 32]).unwrap()
}

fn sealed(g: u64, seq: u64, msg: &Message) -> Vec<u8> {
    serde_json::to_vec(&key(g).seal(GatewayId(g), seq, now(), msg).unwrap()).unwrap()
}

fn telemetry() -> Message {
    Message::Telemetry(Telemetry {
        samples: vec![TelemetrySample {
            device: DeviceId::new("meter").unwrap(),
            kind: DeviceKind::GridMeter,
            at: now(),
            power_w: Some(W(300)),
            energy_in_wh: Some(Wh(10)),
            energy_out_wh: Some(Wh(0)),
            soc_permille: None,
            status: DeviceStatus::Ok,
            quality: Quality::Good,
        }],
    })
}

async fn stored(db: &Db, g: u64) -> usize {
    readings::list(db, GatewayId(g), "meter", Timestamp(0), Timestamp(i64::MAX))
        .await
        .unwrap()
        .len()
}

async fn wait_stored(db: &Db, g: u64, want: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = stored(db, g).await;
        if got >= want {
            assert_eq!(got, want, "{what}: more stored than sent");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {got} of {want} messages of gateway {g} stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn refused(m: &Metrics, reason: &str) -> u64 {
    m.mqtt_refused
        .get_or_create(&gridshare_market::metrics::ReasonLabels {
            reason: reason.to_owned(),
        })
        .get()
}

/// A market with gateways `g7` and `g8` (keys 7 and 8) registered and an open book, and the
/// service's MQTT client running against `service` with a client id new for this start.
struct Rig {
    db: Db,
    metrics: Arc<Metrics>,
    client_id: String,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn rig(service: Broker, metrics: Arc<Metrics>, g7: u64, g8: u64) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().to_str().unwrap()).await.unwrap();
    for (p, g) in [(1u64, g7), (2, g8)] {
        common::home_with_gateway(&db, p, g, &key(g)).await;
    }
    let (market, _) = Market::start(MarketConfig::default(), None, db.clone(), Clock::wall())
        .await
        .unwrap();
    add_participants(&market, [(ParticipantId(1), NodeId(1)), (ParticipantId(2), NodeId(2))])
        .await
        .unwrap();
    market
        .command(Command::OpenBook {
            zone: ZoneId(1),
            interval: interval(),
            fees: None,
        })
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (_dr_out, dr_in) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(_dr_out); // no downlinks in these tests; the channel stays open
    let client_id = mqtt::session_client_id("gridshare-market");
    tokio::spawn(mqtt::run(
        service,
        client_id.clone(),
        db.clone(),
        market,
        metrics.clone(),
        dr_in,
        stopped,
        None,
        market_key(),
        mqtt::Authority::Market,
    ));
    Rig {
        db,
        metrics,
        client_id,
        _stop: stop,
        _dir: dir,
    }
}

/// A connected client and what it receives, or the broker's refusal.
struct Client {
    client: AsyncClient,
    incoming: UnboundedReceiver<Packet>,
}

async fn connect(
    port: u16,
    client_id: &str,
    user: &str,
    password: &str,
    will: Option<LastWill>,
) -> Result<Client, ConnectReturnCode> {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
    opts.set_credentials(user, password);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(512 * 1024, 512 * 1024);
    if let Some(w) = will {
        opts.set_last_will(w);
    }
    let (client, mut events) = AsyncClient::new(opts, 100);
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
                Err(e) => panic!("{client_id} as {user}: no CONNACK but {e}"),
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{client_id} as {user}: no answer to CONNECT in 10 s"));
    first?;
    let (tx, incoming) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = events.poll().await {
            if let Event::Incoming(p) = ev
                && tx.send(p).is_err()
            {
                return;
            }
        }
    });
    Ok(Client { client, incoming })
}

impl Client {
    /// Subscribes to `filter` and returns the broker's answer.
    async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(Packet::SubAck(a))) => return a.return_codes[0],
                Ok(Some(_)) => {}
                Ok(None) => panic!("connection lost while subscribing to {filter}"),
                Err(_) => panic!("no SUBACK for {filter} within 10 s"),
            }
        }
    }

    /// The publishes received within `wait`.
    async fn publishes(&mut self, wait: Duration) -> Vec<rumqttc::Publish> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut got = Vec::new();
        while let Ok(Some(p)) = tokio::time::timeout_at(deadline, self.incoming.recv()).await {
            if let Packet::Publish(p) = p {
                got.push(p);
            }
        }
        got
    }

    async fn publish(&self, topic: String, retain: bool, body: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, body)
            .await
            .expect("the client's connection is gone: was it taken over?");
    }
}

/// The attacks of items 1 and 9 by gateway `g7`'s login, and its legitimate use, on a broker at
/// `port` where `login(g)` is gateway g's user name and password. `strict_suback`: the broker
/// answers a refused subscription with failure (the embedded one does; Mosquitto grants it and
/// delivers nothing, see the Mosquitto test). Either way nothing of `g8`'s reaches `g7`.
async fn gateway_stays_in_its_lane(
    rig: &Rig,
    port: u16,
    login: impl Fn(u64) -> (String, String),
    g7: u64,
    g8: u64,
    strict_suback: bool,
) {
    let (u7, p7) = login(g7);
    let (u8_, p8) = login(g8);
    let mut gw7 = connect(port, &format!("gridshare-gw-{g7}"), &u7, &p7, None)
        .await
        .unwrap();
    let mut gw8 = connect(port, &u8_, &u8_, &p8, None).await.unwrap();
    // gateway 8 listens on its own downlinks and leaves its status retained, which a wildcard
    // subscription would hand over at once
    let dr8 = topics::topic(GatewayId(g8), Channel::DrEvent);
    let prefs8 = topics::topic(GatewayId(g8), Channel::Preferences);
    for filter in [&dr8, &prefs8] {
        assert!(matches!(gw8.subscribe(filter).await, SubscribeReasonCode::Success(_)));
    }
    gw8.publish(topics::topic(GatewayId(g8), Channel::Status), true, b"online".to_vec())
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // reading: every topic, another gateway's, everyone's telemetry
    for filter in [
        "#".to_owned(),
        topics::topic(GatewayId(g8), Channel::OrderAck),
        topics::topic(GatewayId(g8), Channel::Telemetry),
        topics::all_gateways(Channel::Telemetry),
    ] {
        let code = gw7.subscribe(&filter).await;
        if strict_suback {
            assert_eq!(
                code,
                SubscribeReasonCode::Failure,
                "gateway {g7} subscribed to {filter}"
            );
        }
    }
    // its own downlinks: allowed
    let own_dr = topics::topic(GatewayId(g7), Channel::DrEvent);
    let own_ack = topics::topic(GatewayId(g7), Channel::OrderAck);
    for filter in [&own_dr, &own_ack] {
        assert!(
            matches!(gw7.subscribe(filter).await, SubscribeReasonCode::Success(_)),
            "gateway {g7} may subscribe to its own {filter}"
        );
    }

    // gateway 8's telemetry is stored, and gateway 7 hears nothing of it
    let tele8 = topics::topic(GatewayId(g8), Channel::Telemetry);
    let mut seq8 = 0;
    for _ in 0..50 {
        // until the service has subscribed
        seq8 += 1;
        gw8.publish(tele8.clone(), false, sealed(g8, seq8, &telemetry())).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stored(&rig.db, g8).await > 0 {
            break;
        }
    }
    let stored8 = stored(&rig.db, g8).await;
    assert!(stored8 > 0, "gateway {g8}'s telemetry stored");
    let heard = gw7.publishes(Duration::from_millis(500)).await;
    assert!(
        heard.iter().all(|p| !p.topic.contains(&format!("/{g8}/"))),
        "gateway {g7} received gateway {g8}'s messages: {:?}",
        heard.iter().map(|p| &p.topic).collect::<Vec<_>>()
    );

    // writing: a message genuinely signed by gateway 8 (the service would take it), sent by
    // gateway 7's login on 8's topic, never reaches the service
    gw7.publish(tele8.clone(), false, sealed(g8, seq8 + 1, &telemetry()))
        .await;
    // forged demand-response events on its own downlink and on 8's, and forged retained
    // preferences for 8
    gw7.publish(own_dr.clone(), false, br#"{"forged":true}"#.to_vec()).await;
    gw7.publish(dr8.clone(), false, br#"{"forged":true}"#.to_vec()).await;
    gw7.publish(prefs8.clone(), true, br#"{"forged":true}"#.to_vec()).await;
    // retained junk elsewhere, and retained telemetry on its own topic
    gw7.publish(format!("junk/{g7}"), true, vec![0; 200_000]).await;
    let tele7 = topics::topic(GatewayId(g7), Channel::Telemetry);
    gw7.publish(tele7.clone(), true, b"retained".to_vec()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        stored(&rig.db, g8).await,
        stored8,
        "gateway {g7} wrote on gateway {g8}'s topic"
    );
    let heard = gw7.publishes(Duration::from_millis(300)).await;
    assert!(
        heard.iter().all(|p| p.topic != own_dr),
        "gateway {g7} published on its own downlink"
    );
    let got = gw8.publishes(Duration::from_millis(300)).await;
    assert!(
        got.is_empty(),
        "gateway {g7}'s forgeries reached gateway {g8}: {:?}",
        got.iter().map(|p| &p.topic).collect::<Vec<_>>()
    );
    // gateway 8 (re)subscribing to its preferences gets nothing retained
    drop(gw8);
    let mut gw8 = connect(port, &u8_, &u8_, &p8, None).await.unwrap();
    assert!(matches!(gw8.subscribe(&prefs8).await, SubscribeReasonCode::Success(_)));
    let got = gw8.publishes(Duration::from_millis(500)).await;
    assert!(
        got.is_empty(),
        "gateway {g7} retained on gateway {g8}'s preferences: {got:?}"
    );

    // what gateway 7 needs still works: its telemetry is stored, its order answered, its status
    // retained
    let before = stored(&rig.db, g7).await;
    gw7.publish(tele7.clone(), false, sealed(g7, 1, &telemetry())).await;
    wait_stored(&rig.db, g7, before + 1, "gateway 7's own telemetry").await;
    let order = Message::Order(NewOrder {
        order_id: OrderId(71),
        zone: ZoneId(1),
        interval: interval(),
        side: Side::Sell,
        quantity: Wh(100),
        limit_price: MicroPerKwh(120_000),
        tif: TimeInForce::GoodTillGateClosure,
        mode: OrderMode::Continuous,
    });
    gw7.publish(
        topics::topic(GatewayId(g7), Channel::Orders),
        false,
        sealed(g7, 2, &order),
    )
    .await;
    let acks = gw7.publishes(Duration::from_secs(3)).await;
    let ack = acks
        .iter()
        .find(|p| p.topic == own_ack)
        .unwrap_or_else(|| panic!("gateway {g7}'s order not answered; got {acks:?}"));
    // answers are signed by the market (issue 17 item 1)
    let ack = DownlinkVerifier::new(Some(market_key().public()), GatewayId(g7), HashMap::new())
        .open(Channel::OrderAck, &ack.payload)
        .unwrap();
    let ack: OrderAck = serde_json::from_str(&ack.payload).unwrap();
    assert_eq!(
        (ack.client_order_id, ack.status.as_str()),
        (OrderId(71), "accepted"),
        "{ack:?}"
    );
    // item 14: presence is signed. Gateway 7's login may publish on its status topic, but the
    // market takes only what gateway 7's key sealed, and only when newer than what it took
    let status7 = topics::topic(GatewayId(g7), Channel::Status);
    let presence = |k: u64, online: bool, at: Timestamp| {
        let seq = if online {
            Presence::ONLINE_SEQ
        } else {
            Presence::OFFLINE_SEQ
        };
        let env = key(k)
            .seal(GatewayId(g7), seq, at, &Message::Status(Presence { online }))
            .unwrap();
        serde_json::to_vec(&env).unwrap()
    };
    let taken = || {
        rig.metrics
            .messages_in
            .get_or_create(&gridshare_market::metrics::KindLabels { kind: "status".into() })
            .get()
    };
    let rejected = |reason: &str| {
        rig.metrics
            .messages_rejected
            .get_or_create(&gridshare_market::metrics::ReasonLabels { reason: reason.into() })
            .get()
    };
    let (before, malformed, forged, old) = (
        taken(),
        rejected("malformed"),
        rejected("bad_signature"),
        rejected("old_status"),
    );
    let now = now();
    let online = presence(g7, true, now);
    gw7.publish(status7.clone(), true, online.clone()).await;
    gw7.publish(status7.clone(), false, b"offline".to_vec()).await;
    gw7.publish(status7.clone(), false, presence(g8, false, now)).await;
    gw7.publish(status7.clone(), false, online).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rejected("old_status") == old && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(taken(), before + 1, "gateway {g7}'s own signed presence is taken once");
    assert_eq!(rejected("malformed"), malformed + 1, "a plain `offline` is refused");
    assert_eq!(
        rejected("bad_signature"),
        forged + 1,
        "a presence sealed by another key is refused"
    );
    assert_eq!(rejected("old_status"), old + 1, "a replayed presence is refused");
}

/// Item 2: while `attacks` logins try to connect with the service's and other gateways' client
/// ids, gateway `g7` publishes 10 messages; every one is stored.
async fn no_takeover(rig: &Rig, port: u16, g7: u64, gw7_login: (String, String), attacks: &[(String, String, String)]) {
    let gw7 = connect(port, &format!("gridshare-gw-{g7}"), &gw7_login.0, &gw7_login.1, None)
        .await
        .unwrap();
    let tele7 = topics::topic(GatewayId(g7), Channel::Telemetry);
    // until the service has subscribed (sequence numbers 1000.. keep clear of other tests' ones)
    let mut seq = 1000;
    for _ in 0..50 {
        seq += 1;
        gw7.publish(tele7.clone(), false, sealed(g7, seq, &telemetry())).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stored(&rig.db, g7).await > 0 {
            break;
        }
    }
    let before = stored(&rig.db, g7).await;
    assert!(before > 0, "gateway {g7}'s telemetry stored before the takeover");
    for n in 0..10 {
        for (id, user, password) in attacks {
            // a refusal, or (on Mosquitto, which renames the client after its login) a connection
            // that takes nobody's place
            drop(connect(port, id, user, password, None).await);
        }
        seq += 1;
        gw7.publish(tele7.clone(), false, sealed(g7, seq, &telemetry())).await;
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    wait_stored(
        &rig.db,
        g7,
        before + 10,
        "messages published during the attempted takeover",
    )
    .await;
    // the service's client is still there: one more is stored at once
    gw7.publish(tele7.clone(), false, sealed(g7, seq + 1, &telemetry()))
        .await;
    wait_stored(&rig.db, g7, before + 11, "a message after the attempts").await;
}

// ---------------------------------------------------------------------------------------------
// the embedded broker

const PASSWORD: &str = "a gateway password";

fn embedded_rig_users() -> HashMap<String, String> {
    HashMap::from([
        ("7".to_owned(), PASSWORD.to_owned()),
        ("8".to_owned(), PASSWORD.to_owned()),
    ])
}

async fn embedded() -> (gridshare::broker::Embedded, Rig) {
    let metrics = Arc::new(Metrics::new());
    let listen = SocketAddr::from(([127, 0, 0, 1], gridshare_testkit::free_port().unwrap()));
    let broker = gridshare::broker::start(listen, &embedded_rig_users(), metrics.clone()).unwrap();
    let rig = rig(broker.service(), metrics, 7, 8).await;
    (broker, rig)
}

fn login(g: u64) -> (String, String) {
    (g.to_string(), PASSWORD.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_broker_a_gateway_reaches_only_its_own_topics() {
    let (broker, rig) = embedded().await;
    let port = broker.listen().port();
    gateway_stays_in_its_lane(&rig, port, login, 7, 8, true).await;
    // every refusal counted under its reason: 4 subscriptions; the publish on 8's telemetry, on
    // its own downlink and on 8's; retained on 8's preferences, junk and its own telemetry
    assert_eq!(refused(&rig.metrics, "subscribe"), 4);
    assert_eq!(refused(&rig.metrics, "publish"), 3);
    assert_eq!(refused(&rig.metrics, "retain"), 3);

    // item 9's bound: a gateway's own status, retained, at most 4 KiB
    let gw7 = connect(port, "7", "7", PASSWORD, None).await.unwrap();
    let status7 = topics::topic(GatewayId(7), Channel::Status);
    gw7.publish(
        status7.clone(),
        true,
        vec![b'x'; gridshare::acl::MAX_RETAINED_PAYLOAD + 1],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(refused(&rig.metrics, "retain_size"), 1);

    // nothing retained outside a gateway's own status: the service's login (which may read
    // everything) finds gateway 7's status and nothing else
    let service = broker.service();
    let mut reader = connect(
        port,
        "gridshare-market-reader",
        service.username.as_deref().unwrap(),
        service.password.as_deref().unwrap(),
        None,
    )
    .await
    .unwrap();
    assert!(matches!(reader.subscribe("#").await, SubscribeReasonCode::Success(_)));
    let retained: Vec<String> = reader
        .publishes(Duration::from_millis(800))
        .await
        .into_iter()
        .filter(|p| p.retain)
        .map(|p| p.topic)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        retained,
        vec![
            topics::topic(GatewayId(7), Channel::Status),
            topics::topic(GatewayId(8), Channel::Status),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_broker_nobody_takes_the_services_session_or_another_gateways_id() {
    let (broker, rig) = embedded().await;
    let port = broker.listen().port();
    let pw = PASSWORD.to_owned();
    let attacks = [
        // gateway 8's login with the service's old fixed id, its id of this start, and 7's ids
        ("gridshare-market".to_owned(), "8".to_owned(), pw.clone()),
        (rig.client_id.clone(), "8".to_owned(), pw.clone()),
        ("7".to_owned(), "8".to_owned(), pw.clone()),
        ("gridshare-gw-7".to_owned(), "8".to_owned(), pw.clone()),
        // the service's user name without its password
        (
            rig.client_id.clone(),
            gridshare::broker::SERVICE_USER.to_owned(),
            pw.clone(),
        ),
    ];
    for (id, user, password) in &attacks {
        let refusal = connect(port, id, user, password, None).await.err();
        let want = if user == gridshare::broker::SERVICE_USER {
            ConnectReturnCode::BadUserNamePassword
        } else {
            ConnectReturnCode::BadClientId
        };
        assert_eq!(refusal, Some(want), "{user} connecting as {id:?}");
    }
    // a last will on another gateway's topic, retained elsewhere than its status, or retained
    // larger than the bound
    let status7 = topics::topic(GatewayId(7), Channel::Status);
    for (topic, retain, size) in [
        (topics::topic(GatewayId(8), Channel::Status), true, 7),
        (topics::topic(GatewayId(7), Channel::Telemetry), true, 7),
        (status7.clone(), true, gridshare::acl::MAX_RETAINED_PAYLOAD + 1),
    ] {
        let will = LastWill::new(topic.clone(), vec![b'x'; size], QoS::AtLeastOnce, retain);
        let refusal = connect(port, "7", "7", PASSWORD, Some(will)).await.err();
        assert_eq!(refusal, Some(ConnectReturnCode::NotAuthorized), "will on {topic}");
    }
    // its own status, small: taken
    let will = LastWill::new(status7, "offline", QoS::AtLeastOnce, true);
    drop(connect(port, "7", "7", PASSWORD, Some(will)).await.unwrap());
    assert_eq!(refused(&rig.metrics, "client_id"), 4);
    assert_eq!(refused(&rig.metrics, "bad_login"), 1);
    assert_eq!(refused(&rig.metrics, "will"), 2);
    assert_eq!(refused(&rig.metrics, "retain_size"), 1);

    no_takeover(&rig, port, 7, login(7), &attacks).await;
    assert_eq!(refused(&rig.metrics, "client_id"), 4 + 40);
}

// ---------------------------------------------------------------------------------------------
// Mosquitto with the shipped configuration

/// Mosquitto run with `deploy/mosquitto/mosquitto.conf` and `deploy/mosquitto/acl` as shipped
/// (only the paths and the port changed), with logins `market` and gateways 7 and 8.
struct Mosquitto {
    port: u16,
    dir: std::path::PathBuf,
    _process: gridshare_testkit::Killed,
    _dir: tempfile::TempDir,
}

fn shipped_mosquitto() -> Option<Mosquitto> {
    let bin = gridshare_testkit::executable("GRIDSHARE_MOSQUITTO_BIN", "mosquitto")?;
    let passwd_bin = gridshare_testkit::executable("GRIDSHARE_MOSQUITTO_PASSWD_BIN", "mosquitto_passwd")?;
    let root = gridshare_testkit::workspace_root().join("deploy/mosquitto");
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    for (n, (user, password)) in [("market", PASSWORD), ("7", PASSWORD), ("8", PASSWORD)]
        .iter()
        .enumerate()
    {
        let mut cmd = std::process::Command::new(&passwd_bin);
        cmd.arg("-b");
        if n == 0 {
            cmd.arg("-c");
        }
        let out = cmd.arg(&passwd).arg(user).arg(password).output().unwrap();
        assert!(out.status.success(), "mosquitto_passwd: {out:?}");
    }
    let acl = dir.path().join("acl");
    std::fs::copy(root.join("acl"), &acl).unwrap();
    let port = gridshare_testkit::free_port().unwrap();
    let shipped = std::fs::read_to_string(root.join("mosquitto.conf")).unwrap();
    let mut conf = String::new();
    let mut replaced = 0;
    for line in shipped.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        let line = match key {
            "persistence_location" => format!("persistence_location {}/", dir.path().display()),
            "password_file" => format!("password_file {}", passwd.display()),
            "acl_file" => format!("acl_file {}", acl.display()),
            "listener" => format!("listener {port} 127.0.0.1"),
            "log_dest" => format!("log_dest file {}/log", dir.path().display()),
            _ => line.to_owned(),
        };
        replaced += usize::from(matches!(
            key,
            "persistence_location" | "password_file" | "acl_file" | "listener" | "log_dest"
        ));
        conf.push_str(&line);
        conf.push('\n');
    }
    assert_eq!(
        replaced, 5,
        "deploy/mosquitto/mosquitto.conf no longer has the five settings this test moves into a temporary folder"
    );
    std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
    // as root, Mosquitto drops to its own user: let it read its files
    if std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    {
        let _ = std::process::Command::new("chown")
            .arg("-R")
            .arg("mosquitto:")
            .arg(dir.path())
            .status();
    }
    let child = std::process::Command::new(bin)
        .arg("-c")
        .arg(dir.path().join("mosquitto.conf"))
        .spawn()
        .unwrap();
    let process = gridshare_testkit::Killed(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "Mosquitto with the shipped config did not listen on {port}: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // only the listener the test asked for: a listener setting above the first `listener` line
    // makes Mosquitto open a default one on 1883 with it, leaving ours without it
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
    let sockets: Vec<&str> = log.lines().filter(|l| l.contains("listen socket")).collect();
    assert!(
        !sockets.is_empty() && sockets.iter().all(|l| l.contains(&format!("port {port}."))),
        "Mosquitto with the shipped config opened other listeners than {port}: {sockets:?}"
    );
    Some(Mosquitto {
        port,
        dir: dir.path().to_owned(),
        _process: process,
        _dir: dir,
    })
}

async fn mosquitto_rig() -> Option<(Mosquitto, Rig)> {
    let mosquitto = shipped_mosquitto()?;
    let service = Broker::parse(&format!("mqtt://market:{PASSWORD}@127.0.0.1:{}", mosquitto.port)).unwrap();
    let rig = rig(service, Arc::new(Metrics::new()), 7, 8).await;
    Some((mosquitto, rig))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_shipped_mosquitto_config_a_gateway_reaches_only_its_own_topics() {
    let Some((mosquitto, rig)) = mosquitto_rig().await else {
        return;
    };
    // Mosquitto 2.0's acl_file does not check subscriptions at all: SUBACK grants `#` and other
    // gateways' topics, and the `read` rules are applied to each message as it is delivered
    // (retained ones included). So no SUBACK failure here; that nothing of gateway 8's reaches
    // gateway 7 is what the test asserts.
    gateway_stays_in_its_lane(&rig, mosquitto.port, login, 7, 8, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_shipped_mosquitto_config_nobody_takes_the_services_session() {
    let Some((mosquitto, rig)) = mosquitto_rig().await else {
        return;
    };
    let pw = PASSWORD.to_owned();
    // Mosquitto (use_username_as_clientid) renames each of these to "8", its own login: they take
    // no one's place
    let attacks = [
        ("gridshare-market".to_owned(), "8".to_owned(), pw.clone()),
        ("market".to_owned(), "8".to_owned(), pw.clone()),
        (rig.client_id.clone(), "8".to_owned(), pw.clone()),
        ("7".to_owned(), "8".to_owned(), pw.clone()),
        ("gridshare-gw-7".to_owned(), "8".to_owned(), pw.clone()),
    ];
    no_takeover(&rig, mosquitto.port, 7, login(7), &attacks).await;
    // and neither the service's session (client id "market", its login) nor gateway 7's ("7")
    // was ever closed for a newcomer: Mosquitto logs each takeover
    let log = std::fs::read_to_string(mosquitto.dir.join("log")).unwrap();
    assert!(log.contains("as market ("), "the service connected as market:\n{log}");
    for id in [
        "market",
        "7",
        rig.client_id.as_str(),
        "gridshare-gw-7",
        "gridshare-market",
    ] {
        assert!(
            !log.contains(&format!("Client {id} already connected")),
            "client id {id} taken over:\n{log}"
        );
    }
}
