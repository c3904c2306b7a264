//! The embedded MQTT broker (rumqttd), started in-process when no external broker is configured,
//! so a single `gridshare serve` is a whole market: gateways connect to it like to Mosquitto.
//!
//! ```text
//!  gateway ──MQTT──▶ front (mqtt.listen) ─┐
//!  gateway ──TLS───▶ front (tls_listen) ──┼─ allowed packets ─▶ rumqttd (127.0.0.1, internal port)
//!                                         │                        ▲
//!              refused: CONNACK / SUBACK failure / dropped        the service's own client
//! ```
//!
//! rumqttd 0.20 checks logins but has no topic ACLs, so it listens on an internal loopback port
//! only, and the addresses gateways reach are the service's own **front**: it reads each client's
//! MQTT 3.1.1 packets (rumqttc's codec), applies [`crate::acl`] for the CONNECT's login, and passes
//! allowed packets on unchanged; packets from the broker go back unchanged. What is refused:
//!
//! - a CONNECT with a wrong login: CONNACK 4 (bad user name or password); a login that is not a
//!   gateway id, or a last will outside the login's topics: CONNACK 5 (not authorized); a client
//!   id that is not the login's own: CONNACK 2 (identifier rejected). So no one but the service can
//!   take the service's client id, and no gateway another's.
//! - a SUBSCRIBE with any filter outside the login's downstream topics: refused whole, SUBACK
//!   failure (0x80) for every filter, and not passed on.
//! - a PUBLISH outside the login's upstream topics, or retained outside its `status`, or
//!   retained beyond [`acl::RetainedBudget`] (over 4 KiB, or from more than 10,000 gateways):
//!   dropped (MQTT 3.1.1 has no negative acknowledgement; QoS 1 gets its PUBACK, as Mosquitto
//!   does, so the client does not resend it forever; QoS 2 closes the connection). A last will
//!   is held to the same rules at CONNECT.
//!
//! Every refusal is counted in `gridshare_mqtt_refused{reason}` and logged. The front passes a
//! CONNECT on with an internal login whose password is random for each start, so the internal
//! port is of no use to anyone outside the process. The service's own client connects to the
//! internal port directly, as [`SERVICE_USER`] (password random for each start).
//!
//! Persistent sessions are kept in memory only: a restart of the service forgets what the broker
//! held, which is why gateways keep their own outbox and the service acknowledges only what it has
//! stored. For production, use Mosquitto (`mqtt.url`, `deploy/mosquitto`).
//!
//! With `mqtt.tls_listen` it takes MQTT over TLS as well ([`Embedded::start_tls`]): TLS is ended
//! in the service (rustls, the same as every other TLS here) and the connection handled by the
//! same front, so gateways on an untrusted network use `mqtts://` with the same logins.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use gridshare_market::Metrics;
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Packet, PubAck, SubAck, SubscribeReasonCode};
use rumqttc::mqttbytes::{self, QoS};
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::acl::{self, Login, Refusal, RetainedBudget};
use crate::mqtt::Broker;

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The address is taken or cannot be bound.
    #[error("embedded MQTT broker: cannot listen on {addr}: {source} (is another broker running? set {key})")]
    Bind {
        /// The setting that gives the address.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The broker's threads did not start or it did not accept connections in time.
    #[error("embedded MQTT broker on {addr}: {reason}")]
    Start {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// The largest publish the broker takes, in bytes: a telemetry batch of a few hundred samples.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// The user name the service itself connects as; its password is random for each start.
pub const SERVICE_USER: &str = "gridshare-market";

/// The internal login the front passes gateways' connections on with.
const FRONT_USER: &str = "gridshare-front";

/// The largest packet the front reads from a client (a publish of [`MAX_PAYLOAD`] and its topic).
const MAX_CLIENT_PACKET: usize = MAX_PAYLOAD + 64 * 1024;
/// The largest packet the front passes from the broker to a client.
const MAX_BROKER_PACKET: usize = 4 * 1024 * 1024;
/// How long a client has to send its CONNECT (and to finish the TLS handshake).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running embedded broker: its front's address and how the service's own client reaches it.
#[derive(Debug, Clone)]
pub struct Embedded {
    listen: SocketAddr,
    service: Broker,
    front: Arc<Front>,
    runtime: tokio::runtime::Handle,
}

impl Embedded {
    /// How the service's own client reaches the broker (the internal port, as [`SERVICE_USER`]).
    pub fn service(&self) -> Broker {
        self.service.clone()
    }

    /// The address gateways connect to (plain MQTT, through the access control).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Starts the broker's TLS listener on `listen`: each connection's TLS is ended here with
    /// `tls` and its MQTT handled by the same front as the plain listener (the same logins and
    /// access control). Returns the bound address; the listener runs for the rest of the process.
    pub async fn start_tls(
        &self,
        listen: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<SocketAddr, EmbeddedError> {
        let bind_error = |source| EmbeddedError::Bind {
            key: "mqtt.tls_listen",
            addr: listen,
            source,
        };
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let front = self.front.clone();
        self.runtime.spawn(accept_loop(listener, "TLS", move |stream, peer| {
            let acceptor = acceptor.clone();
            let front = front.clone();
            async move {
                let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                    .await
                    .map_err(|_| format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()))?
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                front.serve(tls, peer).await
            }
        }));
        tracing::info!(listen = %bound, "embedded MQTT broker listening over TLS");
        Ok(bound)
    }
}

/// The access control in front of rumqttd: the logins, the internal one, and where rumqttd is.
struct Front {
    /// Gateways' logins (`user → password`); empty: anonymous, a client is the gateway its client
    /// id names.
    users: HashMap<String, String>,
    service_password: String,
    front_password: String,
    internal: SocketAddr,
    metrics: Arc<Metrics>,
    retained: RetainedBudget,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("users", &self.users.len())
            .field("internal", &self.internal)
            .finish_non_exhaustive()
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_secret() -> String {
    gridshare_web::auth::new_token(gridshare_web::auth::TokenKind::Session).token
}

/// Starts the broker with the front on `listen` for these gateway logins (`user → password`, the
/// user name being the gateway's id; empty: anonymous) and waits until it accepts connections.
/// Refusals are counted in `metrics`. The broker and its front run on their own threads for the
/// rest of the process.
pub fn start(
    listen: SocketAddr,
    users: &HashMap<String, String>,
    metrics: Arc<Metrics>,
) -> Result<Embedded, EmbeddedError> {
    for user in users.keys() {
        if user != SERVICE_USER && acl::gateway_id(user).is_none() {
            tracing::warn!(%user, "mqtt.users: this login is not a gateway id; the broker refuses it");
        }
    }
    let public = TcpListener::bind(listen).map_err(|source| EmbeddedError::Bind {
        key: "mqtt.listen",
        addr: listen,
        source,
    })?;
    let start_error = |reason: String| EmbeddedError::Start { addr: listen, reason };
    let listen = public.local_addr().map_err(|e| start_error(e.to_string()))?;
    // rumqttd binds on its own thread and only logs a failure: find a free port here
    let internal = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| start_error(format!("no free internal port: {e}")))?;
    let front = Arc::new(Front {
        users: users.clone(),
        service_password: random_secret(),
        front_password: random_secret(),
        internal,
        metrics,
        retained: RetainedBudget::new(acl::MAX_RETAINING_GATEWAYS),
    });
    let logins = HashMap::from([
        (SERVICE_USER.to_owned(), front.service_password.clone()),
        (FRONT_USER.to_owned(), front.front_password.clone()),
    ]);
    start_rumqttd(internal, logins).map_err(start_error)?;
    let runtime = start_front(public, front.clone()).map_err(start_error)?;
    tracing::info!(%listen, %internal, users = users.len(), "embedded MQTT broker listening");
    Ok(Embedded {
        listen,
        service: Broker {
            tls: false,
            ca_file: None,
            host: internal.ip().to_string(),
            port: internal.port(),
            username: Some(SERVICE_USER.to_owned()),
            password: Some(front.service_password.clone()),
        },
        front,
        runtime,
    })
}

/// rumqttd on `internal` (loopback) with only the internal logins; returns once it accepts.
fn start_rumqttd(internal: SocketAddr, logins: HashMap<String, String>) -> Result<(), String> {
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 500,
        auth: Some(logins),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "gridshare-v4".into(),
        listen: internal,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 1_000,
            max_segment_size: 10 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&internal, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "the broker is not accepting connections on {internal} after 10 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The front's own runtime (two threads), so the broker works the same whoever starts it, and its
/// plain listener on `public`.
fn start_front(public: TcpListener, front: Arc<Front>) -> Result<tokio::runtime::Handle, String> {
    public.set_nonblocking(true).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mqtt-front")
        .enable_all()
        .build()
        .map_err(|e| format!("the front's runtime: {e}"))?;
    let handle = runtime.handle().clone();
    let listener = {
        let _entered = handle.enter();
        tokio::net::TcpListener::from_std(public).map_err(|e| e.to_string())?
    };
    handle.spawn(accept_loop(listener, "plain", move |stream, peer| {
        let front = front.clone();
        async move { front.serve(stream, peer).await }
    }));
    std::thread::Builder::new()
        .name("mqtt-front".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| e.to_string())?;
    Ok(handle)
}

/// Takes connections on `listener` for ever, each handled by `serve` on its own task.
async fn accept_loop<F, Fut>(listener: tokio::net::TcpListener, kind: &'static str, serve: F)
where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // out of file descriptors and the like: wait, then take connections again
                tracing::warn!(kind, error = %e, "embedded MQTT broker: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = serve(stream, peer);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::info!(%peer, kind, error = %e, "embedded MQTT broker: connection ended");
            }
        });
    }
}

/// What reading one packet gave.
enum Read {
    /// A whole packet's bytes.
    Frame(BytesMut),
    /// The peer closed the connection between packets.
    Closed,
}

/// Reads one whole packet (framed by its fixed header, not decoded) from `r` into `buf`.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut, max: usize) -> Result<Read, String> {
    loop {
        match mqttbytes::check(buf.iter(), max) {
            Ok(header) => return Ok(Read::Frame(buf.split_to(header.frame_length()))),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(format!("bad MQTT packet: {e:?}")),
        }
        if r.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
            return if buf.is_empty() {
                Ok(Read::Closed)
            } else {
                Err("connection closed inside a packet".into())
            };
        }
    }
}

/// Decodes a whole frame.
fn decode(frame: &BytesMut, max: usize) -> Result<Packet, String> {
    let mut copy = frame.clone();
    Packet::read(&mut copy, max).map_err(|e| format!("bad MQTT packet: {e:?}"))
}

fn encode(packet: &Packet) -> Result<BytesMut, String> {
    let mut out = BytesMut::new();
    packet
        .write(&mut out, MAX_BROKER_PACKET)
        .map_err(|e| format!("encoding {packet:?}: {e:?}"))?;
    Ok(out)
}

impl Front {
    fn refuse(&self, login: Option<Login>, peer: SocketAddr, what: &str, refusal: Refusal) {
        self.metrics.mqtt_refuse(refusal.reason());
        tracing::warn!(%peer, ?login, what, reason = refusal.reason(), "embedded MQTT broker refused: {refusal}");
    }

    /// Who a CONNECT speaks for, or why it is refused (and with which CONNACK code).
    fn admit(&self, c: &rumqttc::mqttbytes::v4::Connect) -> Result<Login, (Refusal, ConnectReturnCode)> {
        let user = c.login.as_ref().map(|l| (l.username.as_str(), l.password.as_str()));
        let login = match user {
            Some((SERVICE_USER, p)) if same_secret(p, &self.service_password) => Login::Service,
            _ if self.users.is_empty() => match acl::gateway_of_client_id(&c.client_id) {
                Some(g) => Login::Gateway(g),
                None => return Err((Refusal::ClientId, ConnectReturnCode::BadClientId)),
            },
            Some((u, p)) if self.users.get(u).is_some_and(|want| same_secret(p, want)) => match acl::gateway_id(u) {
                Some(g) => Login::Gateway(g),
                None => return Err((Refusal::NotAGateway, ConnectReturnCode::NotAuthorized)),
            },
            _ => return Err((Refusal::BadLogin, ConnectReturnCode::BadUserNamePassword)),
        };
        login
            .may_use_client_id(&c.client_id)
            .map_err(|r| (r, ConnectReturnCode::BadClientId))?;
        if let Some(will) = &c.last_will {
            login
                .may_publish(&will.topic, will.retain)
                .map_err(|_| (Refusal::Will, ConnectReturnCode::NotAuthorized))?;
            if will.retain {
                self.retained
                    .admit(login, will.message.len())
                    .map_err(|r| (r, ConnectReturnCode::NotAuthorized))?;
            }
        }
        Ok(login)
    }

    /// One client connection: its CONNECT checked, then packets both ways between it and rumqttd,
    /// the client's checked against its login.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, client: S, peer: SocketAddr) -> Result<(), String> {
        let (mut from_client, mut to_client) = tokio::io::split(client);
        let mut client_buf = BytesMut::with_capacity(4096);
        let first = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            read_frame(&mut from_client, &mut client_buf, MAX_CLIENT_PACKET),
        )
        .await
        .map_err(|_| format!("no CONNECT within {} s", HANDSHAKE_TIMEOUT.as_secs()))??;
        let Read::Frame(first) = first else {
            return Ok(());
        };
        let Packet::Connect(mut connect) = decode(&first, MAX_CLIENT_PACKET)? else {
            return Err("the first packet is not a CONNECT".into());
        };
        let login = match self.admit(&connect) {
            Ok(login) => login,
            Err((refusal, code)) => {
                self.refuse(None, peer, &connect.client_id, refusal);
                let answer = encode(&Packet::ConnAck(ConnAck::new(code, false)))?;
                let _ = to_client.write_all(&answer).await;
                let _ = to_client.shutdown().await;
                return Err(format!("CONNECT refused ({code:?}): {refusal}"));
            }
        };
        if let Login::Gateway(g) = login {
            // one session per gateway, whichever of its own ids it used
            connect.client_id = g.0.to_string();
            connect.set_login(FRONT_USER, self.front_password.clone());
        }
        let broker = tokio::net::TcpStream::connect(self.internal)
            .await
            .map_err(|e| format!("reaching the broker at {}: {e}", self.internal))?;
        let _ = broker.set_nodelay(true);
        let (mut from_broker, mut to_broker) = broker.into_split();
        to_broker
            .write_all(&encode(&Packet::Connect(connect))?)
            .await
            .map_err(|e| e.to_string())?;
        let mut broker_buf = BytesMut::with_capacity(4096);
        loop {
            tokio::select! {
                frame = read_frame(&mut from_client, &mut client_buf, MAX_CLIENT_PACKET) => {
                    let Read::Frame(frame) = frame? else { return Ok(()) };
                    match self.check(login, peer, &frame)? {
                        Verdict::Pass => to_broker.write_all(&frame).await.map_err(|e| e.to_string())?,
                        Verdict::Answer(p) => to_client.write_all(&encode(&p)?).await.map_err(|e| e.to_string())?,
                        Verdict::Drop => {}
                        Verdict::Close(why) => return Err(why),
                    }
                }
                frame = read_frame(&mut from_broker, &mut broker_buf, MAX_BROKER_PACKET) => {
                    let Read::Frame(frame) = frame? else { return Ok(()) };
                    to_client.write_all(&frame).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }

    /// What to do with one packet from a client.
    fn check(&self, login: Login, peer: SocketAddr, frame: &BytesMut) -> Result<Verdict, String> {
        if login == Login::Service {
            return Ok(Verdict::Pass);
        }
        // only these packet types need a look; the rest (acks, pings, unsubscribe, disconnect)
        // pass as they are
        let kind = frame.first().map(|b| b >> 4);
        const CONNECT: u8 = 1;
        const PUBLISH: u8 = 3;
        const SUBSCRIBE: u8 = 8;
        if !matches!(kind, Some(CONNECT | PUBLISH | SUBSCRIBE)) {
            return Ok(Verdict::Pass);
        }
        Ok(match decode(frame, MAX_CLIENT_PACKET)? {
            Packet::Connect(_) => Verdict::Close("a second CONNECT".into()),
            Packet::Publish(p) => match login.may_publish(&p.topic, p.retain).and_then(|()| {
                if p.retain {
                    self.retained.admit(login, p.payload.len())
                } else {
                    Ok(())
                }
            }) {
                Ok(()) => Verdict::Pass,
                Err(refusal) => {
                    self.refuse(Some(login), peer, &p.topic, refusal);
                    match p.qos {
                        QoS::AtMostOnce => Verdict::Drop,
                        QoS::AtLeastOnce => Verdict::Answer(Packet::PubAck(PubAck::new(p.pkid))),
                        QoS::ExactlyOnce => Verdict::Close(format!("QoS 2 publish on {} refused: {refusal}", p.topic)),
                    }
                }
            },
            Packet::Subscribe(s) => {
                let refused = s
                    .filters
                    .iter()
                    .find_map(|f| login.may_subscribe(&f.path).err().map(|r| (f, r)));
                match refused {
                    None => Verdict::Pass,
                    Some((f, refusal)) => {
                        self.refuse(Some(login), peer, &f.path, refusal);
                        let codes = vec![SubscribeReasonCode::Failure; s.filters.len()];
                        Verdict::Answer(Packet::SubAck(SubAck::new(s.pkid, codes)))
                    }
                }
            }
            _ => Verdict::Pass,
        })
    }
}

/// The front's decision on one client packet.
enum Verdict {
    /// Pass it on to the broker unchanged.
    Pass,
    /// Do not pass it on; answer the client with this.
    Answer(Packet),
    /// Do not pass it on; no answer.
    Drop,
    /// Close the connection.
    Close(String),
}
