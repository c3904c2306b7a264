//! Prometheus metrics, served as text at `/metrics`.
//!
//! One registry per service; components hold cloned handles to the families
//! they update (counters are atomics, so updating never blocks a request or
//! the engine).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Metric, Registry};

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

/// Labels of an order outcome: `accepted`, or the reject code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `accepted` or a reject code (`price_off_tick`, `book_closed`, ...).
    pub result: String,
}

/// Labels of a settlement batch outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BatchLabels {
    /// `confirmed`, `parked` or `retrying`.
    pub status: String,
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
    /// Packets the embedded broker's access control refused, by reason (`publish`, `subscribe`,
    /// `retain`, `retain_size`, `retain_count`, `will`, `client_id`, `bad_login`,
    /// `not_a_gateway`).
    pub mqtt_refused: Family<ReasonLabels, Counter>,
    /// Orders and cancels/amends the engine took or refused, by result.
    pub orders: Family<ResultLabels, Counter>,
    /// Trades made.
    pub trades: Counter,
    /// Energy traded, Wh.
    pub traded_wh: Counter,
    /// Gates closed (books auctioned).
    pub gate_closures: Counter,
    /// WebSocket clients dropped for being too slow.
    pub ws_dropped: Counter,
    /// Proofs of equivocation found (a gateway signed two different envelopes with one
    /// sequence number; it is stopped and its bond slashed).
    pub equivocations: Counter,
    /// Settlement batches, by how a step ended for them.
    pub batches: Family<BatchLabels, Counter>,
    /// Commands waiting for the engine (sampled at each command).
    pub engine_queue: prometheus_client::metrics::gauge::Gauge,
    /// HTTP connections and requests a limit or check refused, by reason (`connection_cap`,
    /// `address_cap`, `cross_origin`, `hashing_busy`, `login_throttled`, `metrics_token`).
    pub http_refused: Family<ReasonLabels, Counter>,
    /// 1 once the engine's journal could not be written (the market refuses every command until
    /// a restart).
    pub journal_failed: prometheus_client::metrics::gauge::Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family registered.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("gridshare");
        // registered in this order, which is the order of the text output
        Self {
            orders: registered(&mut r, "orders", "Order commands by result"),
            trades: registered(&mut r, "trades", "Trades made"),
            traded_wh: registered(&mut r, "traded_wh", "Energy traded, Wh"),
            gate_closures: registered(&mut r, "gate_closures", "Books closed by their gate-closure auction"),
            ws_dropped: registered(&mut r, "ws_dropped", "WebSocket clients dropped as too slow"),
            equivocations: registered(
                &mut r,
                "equivocations",
                "Proofs of equivocation found: gateways that signed two different envelopes with one sequence number",
            ),
            batches: registered(&mut r, "settlement_batches", "Settlement batches by outcome"),
            engine_queue: registered(&mut r, "engine_queue", "Commands waiting for the engine"),
            http_requests: registered(&mut r, "http_requests", "HTTP requests answered"),
            messages_in: registered(&mut r, "messages_in", "Gateway messages accepted"),
            messages_rejected: registered(&mut r, "messages_rejected", "Gateway messages rejected"),
            http_refused: registered(
                &mut r,
                "http_refused",
                "HTTP connections and requests refused by a limit",
            ),
            journal_failed: registered(
                &mut r,
                "journal_failed",
                "1 when the engine's journal could not be written",
            ),
            mqtt_refused: registered(
                &mut r,
                "mqtt_refused",
                "MQTT packets refused by the embedded broker's access control",
            ),
            registry: r,
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

    /// Count an HTTP connection or request refused by a limit, under its reason code.
    pub fn refuse_http(&self, reason: &str) {
        self.http_refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Count a packet the embedded broker's access control refused, under its reason.
    pub fn mqtt_refuse(&self, reason: &str) {
        self.mqtt_refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Count one settlement batch outcome.
    pub fn batch(&self, status: &str) {
        self.batches
            .get_or_create(&BatchLabels {
                status: status.to_owned(),
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

/// A new metric, registered in `registry` under `name` with `help`.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}
