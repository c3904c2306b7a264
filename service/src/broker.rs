//! The embedded MQTT broker (rumqttd), started in-process when no external broker is configured,
//! so a single `gridshare serve` is a whole market: gateways connect to it like to Mosquitto.
//!
//! It listens for MQTT 3.1.1 on one address, with user names and passwords from the
//! configuration (none: anonymous). Persistent sessions are kept in memory only: a restart of the
//! service forgets what the broker held, which is why gateways keep their own outbox and the
//! service acknowledges only what it has stored. For production, use Mosquitto (`mqtt.url`).
//!
//! With `mqtt.tls_listen` it takes MQTT over TLS as well ([`start_tls`]): TLS is ended in the
//! service (rustls, the same as every other TLS here) and the connection passed on to the plain
//! listener, so gateways on an untrusted network use `mqtts://` with the same logins.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

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

/// The user name the service itself connects as when the broker has users; its password is
/// random for each start.
pub const SERVICE_USER: &str = "gridshare-market";

/// Starts the broker on `listen` with these gateway users (`user → password`; empty: anonymous)
/// and waits until it accepts connections. Returns how the service's own client reaches it.
/// The broker runs on its own threads for the rest of the process.
pub fn start(listen: SocketAddr, users: &HashMap<String, String>) -> Result<Broker, EmbeddedError> {
    let mut users = users.clone();
    let service_password = (!users.is_empty()).then(|| {
        let password = gridshare_web::auth::new_token(gridshare_web::auth::TokenKind::Session).token;
        users.insert(SERVICE_USER.to_owned(), password.clone());
        password
    });
    // rumqttd logs a bind failure on its own thread and carries on; find out here instead.
    drop(TcpListener::bind(listen).map_err(|source| EmbeddedError::Bind {
        key: "mqtt.listen",
        addr: listen,
        source,
    })?);
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 500,
        auth: (!users.is_empty()).then(|| users.clone()),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "gridshare-v4".into(),
        listen,
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
        .map_err(|e| EmbeddedError::Start {
            addr: listen,
            reason: e.to_string(),
        })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    while TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(EmbeddedError::Start {
                addr: listen,
                reason: "not accepting connections after 10 s".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!(%listen, users = users.len(), "embedded MQTT broker listening");
    Ok(Broker {
        tls: false,
        ca_file: None,
        host: probe.ip().to_string(),
        port: probe.port(),
        username: service_password.is_some().then(|| SERVICE_USER.to_owned()),
        password: service_password,
    })
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the embedded broker's TLS listener on `listen`: each connection's TLS is ended here with
/// `tls` and its MQTT passed on, unchanged, to the broker's plain listener at `broker` (the same
/// logins apply; the broker sees the client as local). Returns once `listen` is bound; the
/// listener runs for the rest of the process.
pub async fn start_tls(
    listen: SocketAddr,
    tls: std::sync::Arc<rustls::ServerConfig>,
    broker: SocketAddr,
) -> Result<SocketAddr, EmbeddedError> {
    let bind_error = |source| EmbeddedError::Bind {
        key: "mqtt.tls_listen",
        addr: listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // out of file descriptors and the like: wait, then take connections again
                    tracing::warn!(error = %e, "embedded MQTT broker (TLS): accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Err(e) = pass_on(acceptor, stream, broker).await {
                    tracing::info!(%peer, error = %e, "embedded MQTT broker (TLS): connection ended");
                }
            });
        }
    });
    tracing::info!(listen = %bound, "embedded MQTT broker listening over TLS");
    Ok(bound)
}

/// One TLS connection: the handshake, then MQTT both ways between the client and the broker.
async fn pass_on(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    broker: SocketAddr,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let mut tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()))?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let mut plain = tokio::net::TcpStream::connect(broker)
        .await
        .map_err(|e| format!("reaching the broker at {broker}: {e}"))?;
    let _ = plain.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut tls, &mut plain)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
