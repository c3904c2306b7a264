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
    /// Settlement batches, by how a step ended for them.
    pub batches: Family<BatchLabels, Counter>,
    /// Commands waiting for the engine (sampled at each command).
    pub engine_queue: prometheus_client::metrics::gauge::Gauge,
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
        let orders = Family::<ResultLabels, Counter>::default();
        let trades = Counter::default();
        let traded_wh = Counter::default();
        let gate_closures = Counter::default();
        let ws_dropped = Counter::default();
        let batches = Family::<BatchLabels, Counter>::default();
        let engine_queue = prometheus_client::metrics::gauge::Gauge::default();
        registry.register("orders", "Order commands by result", orders.clone());
        registry.register("trades", "Trades made", trades.clone());
        registry.register("traded_wh", "Energy traded, Wh", traded_wh.clone());
        registry.register(
            "gate_closures",
            "Books closed by their gate-closure auction",
            gate_closures.clone(),
        );
        registry.register(
            "ws_dropped",
            "WebSocket clients dropped as too slow",
            ws_dropped.clone(),
        );
        registry.register("settlement_batches", "Settlement batches by outcome", batches.clone());
        registry.register("engine_queue", "Commands waiting for the engine", engine_queue.clone());
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
            orders,
            trades,
            traded_wh,
            gate_closures,
            ws_dropped,
            batches,
            engine_queue,
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
