//! GridShare's HTTP face: one axum [`Router`] built by [`app`], shared by the
//! market service's `main` and by tests (which call it in-process with
//! `tower::ServiceExt::oneshot`, no port needed).
//!
//! ```text
//!  request ─▶ body limit ─▶ timeout ─▶ count (metrics) ─▶ same origin ─▶ route ─▶ handler ─▶ Result<_, ApiError>
//!                                                           └─ no route / wrong method ─▶ ApiError (404 / 405)
//! ```
//!
//! Every error, from a handler or from parsing the body, leaves as
//! `{ "error": { "code", "message" } }` (see [`error`]).

pub mod account;
pub mod api;
pub mod auth;
pub mod balances;
pub mod dr;
pub mod epochs;
pub mod error;
pub mod evidence;
pub mod feeder;
pub mod governance;
pub mod guard;
pub mod health;
pub mod installers;
pub mod openapi;
pub mod pages;
pub mod ratelimit;
pub mod readings;
pub mod remote;
pub mod routes;
pub mod server;
pub mod settlement;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::timeout::TimeoutLayer;

pub use error::{ApiError, ApiJson};
pub use gridshare_market::Metrics;
use gridshare_market::metrics;
pub use health::Readiness;

/// Largest request body accepted: 64 KiB (an order is ~300 bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests per second and burst allowed per API key by default.
pub const DEFAULT_RATE_LIMIT: ratelimit::RateLimit = ratelimit::RateLimit {
    per_second: 20.0,
    burst: 40.0,
};

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Component readiness.
    pub readiness: Arc<Readiness>,
    /// The database (None: API routes answer 503).
    pub db: Option<gridshare_storage::Db>,
    /// The market (None: order entry answers 503).
    pub market: Option<gridshare_market::Market>,
    /// Market time (the market's own clock when there is a market; the demo's runs faster).
    pub clock: gridshare_market::Clock,
    /// Rate limits per API key.
    pub limiter: Arc<ratelimit::RateLimiter>,
    /// Cookies, cross-site checks, the password queue, login throttling, `/metrics` access.
    pub security: Arc<guard::Security>,
    /// Where demand-response events, preferences and checks go to be sent to gateways (none: no
    /// MQTT side).
    pub downlink: gridshare_market::Downlinks,
    /// The market's lowest and highest price (for checking a homeowner's preferences).
    pub price_limits: Option<(gridshare_domain::MicroPerKwh, gridshare_domain::MicroPerKwh)>,
    /// The feeder tree with its limits (None: no network configured).
    pub network: Option<Arc<Vec<gridshare_matching_engine::NodeConfig>>>,
    /// The market's delivery interval length.
    pub interval_length: gridshare_domain::IntervalLength,
    /// The market's zones, as configured (the trader's page shows the first unless asked).
    pub zones: Vec<gridshare_domain::ZoneId>,
    /// The vault, to read on-chain balances (None: no chain).
    pub onchain: Option<Arc<dyn balances::OnChain>>,
    /// The dashboard's built browser part (`None`: pages are served without hydration).
    pub ui_pkg: Option<std::path::PathBuf>,
    /// The utility's import and export tariffs, µ/kWh (for "saved against the utility").
    pub tariff: Option<(i64, i64)>,
    /// The market's price tick, µ/kWh (for the dashboard's order form).
    pub price_tick: i64,
    /// Gateway telemetry as it arrives, for the homes' live view (WebSocket `power` frames).
    pub live: tokio::sync::broadcast::Sender<Arc<gridshare_market::Live>>,
}

impl AppState {
    /// The database, or the 503 every API route answers without one.
    pub fn db(&self) -> Result<&gridshare_storage::Db, ApiError> {
        self.db
            .as_ref()
            .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_database", "no database configured"))
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            metrics: Arc::default(),
            readiness: Arc::default(),
            db: None,
            market: None,
            clock: gridshare_market::Clock::wall(),
            limiter: Arc::new(ratelimit::RateLimiter::new(DEFAULT_RATE_LIMIT)),
            security: Arc::default(),
            downlink: gridshare_market::Downlinks::none(),
            price_limits: None,
            network: None,
            interval_length: gridshare_domain::IntervalLength::default(),
            // the service configuration's default (`market.zones = [1]`)
            zones: vec![gridshare_domain::ZoneId(1)],
            onchain: None,
            ui_pkg: None,
            tariff: None,
            price_tick: 1_000,
            live: gridshare_market::live_channel(),
        }
    }
}

/// Prometheus metrics in text format: with `http.metrics_token` set, to `Authorization: Bearer
/// <token>` only; without it, to clients on the same host only.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("api_key" = [])), responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain"),
    (status = 403, description = "Not the metrics token, or not from this host", body = error::ErrorBody),
))]
pub async fn metrics_text(
    State(state): State<AppState>,
    client: guard::ClientAddr,
    headers: axum::http::HeaderMap,
) -> Response {
    if !state.security.metrics_allowed(&headers, client.0) {
        state.metrics.refuse_http("metrics_token");
        return ApiError::forbidden("metrics are for this host, or for the metrics token (http.metrics_token)")
            .into_response();
    }
    match state.metrics.encode() {
        Ok(text) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(_) => ApiError::internal("metrics could not be encoded").into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /docs")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    let status = format!("{}xx", resp.status().as_u16() / 100);
    state
        .metrics
        .http_requests
        .get_or_create(&metrics::HttpLabels { method, status })
        .inc();
    resp
}

/// The whole HTTP application: the documented routes ([`routes::documented`], which also make
/// the OpenAPI document) and the dashboard's pages and `/docs`, which are not in the document.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(pages::router())
        .route("/docs", get(routes::docs))
        .merge(routes::documented().split_for_parts().0)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard::same_origin))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
