//! The MQTT topic tree, shared by gateways and the market service.
//!
//! ```text
//! gridshare/v1/gw/{gateway}/telemetry       gateway → service   signed Telemetry
//! gridshare/v1/gw/{gateway}/orders          gateway → service   signed Order / Cancel
//! gridshare/v1/gw/{gateway}/dr/report       gateway → service   signed DrReport
//! gridshare/v1/gw/{gateway}/status          gateway → service   signed Presence (retained; offline is the last will)
//! gridshare/v1/gw/{gateway}/dr/event        service → gateway   DrEvent
//! gridshare/v1/gw/{gateway}/orders/ack      service → gateway   order acknowledgements and fills
//! gridshare/v1/gw/{gateway}/market/result   service → gateway   IntervalResult, trades
//! gridshare/v1/gw/{gateway}/market/stored   service → gateway   Stored: receipts; the outbox deletes only these
//! gridshare/v1/gw/{gateway}/preferences      service → gateway   TradingPreferences (retained)
//! gridshare/v1/gw/{gateway}/command          service → gateway   CheckRequest
//! gridshare/v1/gw/{gateway}/command/result   gateway → service   signed PreferencesApplied / CheckResult
//! ```
//!
//! `{gateway}` is the bare number of the [`GatewayId`]; the broker's ACL lets a
//! gateway publish only below its own prefix: its MQTT username is its id, the same bare number
//! (Mosquitto's ACL patterns substitute `%u`).

use crate::ids::GatewayId;

/// Root of every GridShare topic, with the wire version.
pub const ROOT: &str = "gridshare/v1/gw";

/// One channel below a gateway's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Upstream: signed telemetry.
    Telemetry,
    /// Upstream: signed orders and cancels.
    Orders,
    /// Upstream: signed demand-response reports.
    DrReport,
    /// Upstream: online/offline presence (retained; last will).
    Status,
    /// Downstream: demand-response events.
    DrEvent,
    /// Downstream: order acknowledgements and fills.
    OrderAck,
    /// Downstream: market results.
    MarketResult,
    /// Downstream: the homeowner's trading preferences (retained: a gateway that connects gets
    /// the newest).
    Preferences,
    /// Downstream: commands (a remote check).
    Command,
    /// Upstream: signed answers to preferences and commands.
    CommandResult,
    /// Downstream: which of the gateway's messages the market has stored (or refused for good),
    /// so the gateway may delete them from its outbox ([`crate::wire::Stored`]).
    Stored,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Self; 11] = [
        Self::Telemetry,
        Self::Orders,
        Self::DrReport,
        Self::Status,
        Self::DrEvent,
        Self::OrderAck,
        Self::MarketResult,
        Self::Preferences,
        Self::Command,
        Self::CommandResult,
        Self::Stored,
    ];

    /// The path below the gateway prefix.
    pub const fn suffix(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Orders => "orders",
            Self::DrReport => "dr/report",
            Self::Status => "status",
            Self::DrEvent => "dr/event",
            Self::OrderAck => "orders/ack",
            Self::MarketResult => "market/result",
            Self::Preferences => "preferences",
            Self::Command => "command",
            Self::CommandResult => "command/result",
            Self::Stored => "market/stored",
        }
    }

    /// True for channels a gateway publishes on.
    pub const fn is_upstream(self) -> bool {
        matches!(
            self,
            Self::Telemetry | Self::Orders | Self::DrReport | Self::Status | Self::CommandResult
        )
    }
}

/// The full topic of `channel` for `gateway`.
pub fn topic(gateway: GatewayId, channel: Channel) -> String {
    format!("{ROOT}/{}/{}", gateway.0, channel.suffix())
}

/// Subscription filter for one channel of every gateway (`gridshare/v1/gw/+/telemetry`).
pub fn all_gateways(channel: Channel) -> String {
    format!("{ROOT}/+/{}", channel.suffix())
}

/// Split a topic into gateway and channel; `None` if it is not one of ours.
pub fn parse(topic: &str) -> Option<(GatewayId, Channel)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
    let (id, suffix) = rest.split_once('/')?;
    // Only canonical decimal ids: "007" or "+7" would alias another gateway's prefix.
    if id.is_empty()
        || id.len() > 20
        || !id.bytes().all(|b| b.is_ascii_digit())
        || (id.len() > 1 && id.starts_with('0'))
    {
        return None;
    }
    let gateway = GatewayId(id.parse().ok()?);
    let channel = Channel::ALL.into_iter().find(|c| c.suffix() == suffix)?;
    Some((gateway, channel))
}

/// Where the MQTT broker is, from `mqtt://user:password@host:port`, or `mqtts://…` for MQTT over
/// TLS (shared by the market service and the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// MQTT over TLS (`mqtts://`).
    pub tls: bool,
    /// Host (for TLS also the name the broker's certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// For TLS: the CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Broker {
    /// Parses `mqtt://[user:password@]host[:port]` (port 1883 by default) or `mqtts://…` (TLS,
    /// port 8883 by default).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = match (url.strip_prefix("mqtts://"), url.strip_prefix("mqtt://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => {
                return Err(format!(
                    "MQTT URL {url:?}: expected mqtt://[user:password@]host[:port] or mqtts://… for TLS"
                ));
            }
        };
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| format!("MQTT URL {url:?}: port {p:?} is not a number"))?,
            ),
            None => (hostport, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(format!("MQTT URL {url:?}: no host"));
        }
        let (username, password) = match auth {
            None => (None, None),
            Some(a) => match a.split_once(':') {
                Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                None => (Some(a.to_owned()), None),
            },
        };
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            username,
            password,
            ca_file: None,
        })
    }
}

/// TLS for MQTT clients, on rustls with the ring provider.
#[cfg(feature = "mqtt-tls")]
pub mod tls {
    use std::path::Path;
    use std::sync::Arc;

    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    /// A client configuration that trusts the CA certificates in `ca_file` (PEM), or the
    /// system's roots when there is none. Errors name the file and what is wrong with it.
    pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("CA file {}: no PEM certificate in it", path.display()));
                }
                for c in certs {
                    roots.add(c).map_err(|e| format!("CA file {}: {e}", path.display()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c); // the system's odd certificate is not our concern
                }
                if roots.is_empty() {
                    return Err("no system CA certificates found; give a CA file".into());
                }
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// A server configuration presenting the certificate chain in `cert_file` (PEM, the server's
    /// own first) with the private key in `key_file` (PEM: PKCS#8, PKCS#1 or SEC1). Errors name
    /// the file and what is wrong with it.
    pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
        use rustls::pki_types::PrivateKeyDer;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
            .map_err(|e| format!("certificate file {}: {e}", cert_file.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("certificate file {}: {e}", cert_file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "certificate file {}: no PEM certificate in it",
                cert_file.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_file(key_file)
            .map_err(|e| format!("key file {}: no usable PEM private key in it ({e})", key_file.display()))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "certificate {} and key {} do not go together: {e}",
                    cert_file.display(),
                    key_file.display()
                )
            })?;
        Ok(Arc::new(config))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn bad_server_files_are_named() {
            let dir = tempfile::tempdir().unwrap();
            let cert = dir.path().join("cert.pem");
            let key = dir.path().join("key.pem");
            std::fs::write(&cert, "not a certificate\n").unwrap();
            std::fs::write(&key, "not a key\n").unwrap();
            let err = server_config(&cert, &key).unwrap_err();
            assert!(err.contains("cert.pem") && err.contains("no PEM certificate"), "{err}");
            let missing = dir.path().join("missing.pem");
            assert!(server_config(&missing, &key).unwrap_err().contains("missing.pem"));
        }

        #[test]
        fn a_bad_ca_file_is_named() {
            let dir = tempfile::tempdir().unwrap();
            let missing = dir.path().join("missing.pem");
            assert!(client_config(Some(&missing)).unwrap_err().contains("missing.pem"));
            let empty = dir.path().join("empty.pem");
            std::fs::write(&empty, "not a certificate\n").unwrap();
            let err = client_config(Some(&empty)).unwrap_err();
            assert!(err.contains("empty.pem") && err.contains("no PEM certificate"), "{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_channel() {
        for c in Channel::ALL {
            let t = topic(GatewayId(42), c);
            assert_eq!(parse(&t), Some((GatewayId(42), c)), "{t}");
        }
        assert_eq!(topic(GatewayId(3), Channel::DrReport), "gridshare/v1/gw/3/dr/report");
        assert_eq!(all_gateways(Channel::Telemetry), "gridshare/v1/gw/+/telemetry");
    }

    #[test]
    fn broker_urls_with_and_without_tls() {
        let b = Broker::parse("mqtts://gw-7:secret@market.example.net").unwrap();
        assert!(b.tls && b.port == 8883 && b.host == "market.example.net");
        assert_eq!(b.username.as_deref(), Some("gw-7"));
        let b = Broker::parse("mqtt://localhost:1884").unwrap();
        assert!(!b.tls && b.port == 1884);
        assert!(Broker::parse("tcp://x").unwrap_err().contains("mqtts://"));
    }

    #[test]
    fn rejects_foreign_and_aliased_topics() {
        for bad in [
            "gridshare/v1/gw/42",
            "gridshare/v1/gw/42/",
            "gridshare/v1/gw/042/telemetry",
            "gridshare/v1/gw/+42/telemetry",
            "gridshare/v1/gw/x/telemetry",
            "gridshare/v2/gw/42/telemetry",
            "gridshare/v1/gw/42/telemetry/extra",
            "gridshare/v1/gw/99999999999999999999999/telemetry",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
