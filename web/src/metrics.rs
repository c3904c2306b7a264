//! Prometheus metrics, served as text at `/metrics`.
//!
//! One registry per service; components hold cloned handles to the families
//! they update (counters are atomics, so updating never blocks a request or
//! the engine).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of an HTTP request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// HTTP method.
    pub method: String,
    /// Status class: `2xx`, `4xx`, ...
    pub status: String,
}

/// Labels naming a message kind (`telemetry`, `order`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The message kind.
    pub kind: String,
}

/// Labels naming why a message was rejected (`bad_signature`, `replayed`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The reason code.
    pub reason: String,
}

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered, by method and status class.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Messages accepted from gateways, by kind.
    pub messages_in: Family<KindLabels, Counter>,
    /// Messages rejected, by reason.
    pub messages_rejected: Family<ReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gridshare");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let messages_in = Family::<KindLabels, Counter>::default();
        let messages_rejected = Family::<ReasonLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", http_requests.clone());
        registry.register("messages_in", "Gateway messages accepted", messages_in.clone());
        registry.register(
            "messages_rejected",
            "Gateway messages rejected",
            messages_rejected.clone(),
        );
        Self {
            registry,
            http_requests,
            messages_in,
            messages_rejected,
        }
    }

    /// Count a rejected message under its reason code.
    pub fn reject(&self, reason: &str) {
        self.messages_rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The registry in Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
